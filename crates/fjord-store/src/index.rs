//! The in-memory label index of one tenant and period, merged from its index files.
//!
//! Streams are held once each; postings map every label name and value to the streams that
//! carry it, so an equality matcher finds its streams without scanning. A stream's chunk refs
//! are de-duplicated by (segment, offset), so loading the same file twice is harmless.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use fjord_model::matcher::matches_all;
use fjord_model::{Fingerprint, LabelMatcher, Labels, MatchOp};

use crate::index_file::{ChunkRef, IndexFile};

/// One stream and the chunks that hold it.
#[derive(Debug, Clone)]
pub struct IndexedStream {
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

#[derive(Debug, Default)]
pub(crate) struct PeriodIndex {
    files: HashSet<Arc<str>>,
    streams: Vec<IndexedStream>,
    /// Fingerprint → stream ids (more than one only on a hash collision).
    by_fingerprint: HashMap<Fingerprint, Vec<u32>>,
    postings: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
    chunk_keys: HashSet<(Arc<str>, u64)>,
}

impl PeriodIndex {
    pub(crate) fn has_file(&self, segment: &str) -> bool {
        self.files.contains(segment)
    }

    pub(crate) fn add_file(&mut self, file: &IndexFile) {
        if !self.files.insert(file.segment.clone()) {
            return;
        }
        for (labels, chunks) in &file.streams {
            let id = self.stream_id(labels);
            let s = &mut self.streams[id as usize];
            for c in chunks {
                if self.chunk_keys.insert((c.segment.clone(), c.offset)) {
                    s.chunks.push(c.clone());
                }
            }
        }
    }

    fn stream_id(&mut self, labels: &Labels) -> u32 {
        let fp = labels.fingerprint();
        if let Some(ids) = self.by_fingerprint.get(&fp)
            && let Some(&id) = ids
                .iter()
                .find(|&&id| self.streams[id as usize].labels == *labels)
        {
            return id;
        }
        let id = self.streams.len() as u32;
        self.streams.push(IndexedStream {
            labels: labels.clone(),
            chunks: Vec::new(),
        });
        self.by_fingerprint.entry(fp).or_default().push(id);
        for l in labels {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .push(id);
        }
        id
    }

    /// Stream ids that may match: narrowed by the most selective equality-like matcher, if any.
    fn candidates(&self, matchers: &[LabelMatcher]) -> Vec<u32> {
        let mut best: Option<Vec<u32>> = None;
        for m in matchers {
            let values: Vec<&str> = match m.op {
                MatchOp::Eq if !m.value.is_empty() => vec![m.value.as_str()],
                MatchOp::Re if !m.matches_empty() => match m.literal_alternatives() {
                    Some(v) => v,
                    None => continue,
                },
                _ => continue,
            };
            let by_value = self.postings.get(&m.name);
            let mut ids: Vec<u32> = values
                .iter()
                .filter_map(|v| by_value.and_then(|bv| bv.get(*v)))
                .flat_map(|ids| ids.iter().copied())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if best.as_ref().is_none_or(|b| ids.len() < b.len()) {
                best = Some(ids);
            }
        }
        best.unwrap_or_else(|| (0..self.streams.len() as u32).collect())
    }

    /// Streams matching every matcher (with all their chunks).
    fn matching<'a>(
        &'a self,
        matchers: &'a [LabelMatcher],
    ) -> impl Iterator<Item = &'a IndexedStream> + 'a {
        self.candidates(matchers)
            .into_iter()
            .map(|id| &self.streams[id as usize])
            .filter(|s| matches_all(matchers, &s.labels))
    }

    /// Calls `f` with the labels of every stream matching every matcher with at least one chunk
    /// overlapping `[start, end)`: what the label and series APIs need, with no copy.
    pub(crate) fn for_each_series(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        mut f: impl FnMut(&Labels),
    ) {
        self.matching(matchers)
            .filter(|s| s.chunks.iter().any(|c| c.overlaps(start, end)))
            .for_each(|s| f(&s.labels));
    }

    /// Streams matching every matcher with at least one chunk overlapping `[start, end)`,
    /// carrying only those chunks.
    pub(crate) fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Vec<IndexedStream> {
        self.matching(matchers)
            .filter_map(|s| {
                let chunks: Vec<ChunkRef> = s
                    .chunks
                    .iter()
                    .filter(|c| c.overlaps(start, end))
                    .cloned()
                    .collect();
                (!chunks.is_empty()).then(|| IndexedStream {
                    labels: s.labels.clone(),
                    chunks,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (labels, min time, max time) of one stream's single chunk.
    type TestStream<'a> = (&'a [(&'a str, &'a str)], i64, i64);

    fn file(seg: &str, streams: &[TestStream<'_>]) -> IndexFile {
        let segment: Arc<str> = Arc::from(seg);
        IndexFile {
            segment: segment.clone(),
            streams: streams
                .iter()
                .enumerate()
                .map(|(i, (labels, min, max))| {
                    (
                        Labels::from_pairs(labels.iter().copied()),
                        vec![ChunkRef {
                            segment: segment.clone(),
                            offset: i as u64 * 100,
                            len: 100,
                            entries: 1,
                            min_ts: *min,
                            max_ts: *max,
                            raw_bytes: 1,
                            metadata_bytes: 0,
                        }],
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn selects_by_matchers_and_time() {
        let mut idx = PeriodIndex::default();
        idx.add_file(&file(
            "s1",
            &[
                (&[("app", "api"), ("ns", "prod")], 0, 10),
                (&[("app", "web"), ("ns", "prod")], 5, 20),
            ],
        ));
        idx.add_file(&file("s2", &[(&[("app", "api"), ("ns", "prod")], 30, 40)]));
        idx.add_file(&file("s2", &[(&[("app", "api"), ("ns", "prod")], 30, 40)]));
        let api = [LabelMatcher::eq("app", "api")];
        let got = idx.select(&api, 0, 100);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].chunks.len(), 2);
        assert_eq!(idx.select(&api, 11, 30).len(), 0);
        assert_eq!(idx.select(&api, 11, 31).len(), 1);
        let re = [LabelMatcher::new("app", MatchOp::Re, "api|web").unwrap()];
        assert_eq!(idx.select(&re, 0, 100).len(), 2);
        let neq = [
            LabelMatcher::new("ns", MatchOp::Re, ".+").unwrap(),
            LabelMatcher::new("app", MatchOp::Neq, "api").unwrap(),
        ];
        let got = idx.select(&neq, 0, 100);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("app"), Some("web"));
    }

    /// The labels-only walk sees exactly the streams `select` returns, for any matchers and
    /// time range.
    #[test]
    fn series_walk_agrees_with_select() {
        let mut idx = PeriodIndex::default();
        idx.add_file(&file(
            "s1",
            &[
                (&[("app", "api"), ("ns", "prod")], 0, 10),
                (&[("app", "web"), ("ns", "prod")], 5, 20),
                (&[("app", "db"), ("ns", "dev")], 15, 50),
            ],
        ));
        idx.add_file(&file("s2", &[(&[("app", "api"), ("ns", "prod")], 30, 40)]));
        let selectors = [
            vec![],
            vec![LabelMatcher::eq("ns", "prod")],
            vec![LabelMatcher::new("app", MatchOp::Re, "api|db").unwrap()],
            vec![LabelMatcher::new("app", MatchOp::Neq, "api").unwrap()],
        ];
        for m in &selectors {
            for (start, end) in [(0, 100), (11, 30), (11, 31), (21, 30), (50, 60)] {
                let mut walked = Vec::new();
                idx.for_each_series(m, start, end, |l| walked.push(l.clone()));
                let mut selected: Vec<Labels> = idx
                    .select(m, start, end)
                    .into_iter()
                    .map(|s| s.labels)
                    .collect();
                walked.sort();
                selected.sort();
                assert_eq!(walked, selected, "{m:?} in [{start}, {end})");
            }
        }
    }
}
