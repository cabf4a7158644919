//! The in-memory label index of one tenant and period, merged from its live index files.
//!
//! Streams are held once each; postings map every label name and value to the streams that
//! carry it, so an equality matcher finds its streams without scanning. A stream's chunk refs
//! are de-duplicated by (segment, offset), so loading the same file twice is harmless.
//!
//! A compaction's file replaces other files of the period: loading it drops every chunk ref
//! that only the replaced files listed, and a replaced file read later (listed before a
//! compactor deleted it) is ignored, so the order in which files are loaded never matters.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use fjord_model::matcher::matches_all;
use fjord_model::{Fingerprint, LabelMatcher, Labels, MatchOp};

use crate::index_file::{ChunkRef, IndexFile};

/// One stream and the chunks that hold it.
#[derive(Debug, Clone)]
pub struct IndexedStream {
    pub labels: Labels,
    pub chunks: Vec<ChunkRef>,
}

/// A live index file of a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFile {
    pub id: Arc<str>,
    /// When the file was written (its object's modification time).
    pub written: SystemTime,
    /// Whether it is a compaction's output.
    pub compacted: bool,
}

/// A file superseded by a compaction, whose object may still exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplacedFile {
    pub id: Arc<str>,
    /// When the file that replaced it was written.
    pub since: SystemTime,
}

#[derive(Debug, Default)]
pub(crate) struct PeriodIndex {
    files: HashMap<Arc<str>, LiveFile>,
    /// Superseded file id → when its replacement was written.
    replaced: HashMap<Arc<str>, SystemTime>,
    streams: Vec<IndexedStream>,
    /// Fingerprint → stream ids (more than one only on a hash collision).
    by_fingerprint: HashMap<Fingerprint, Vec<u32>>,
    postings: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
    /// Every listed chunk (segment, offset) → the live files listing it.
    chunk_files: HashMap<(Arc<str>, u64), Vec<Arc<str>>>,
}

impl PeriodIndex {
    /// Whether the file was loaded already, or superseded.
    pub(crate) fn has_file(&self, id: &str) -> bool {
        self.files.contains_key(id) || self.replaced.contains_key(id)
    }

    /// Loads a file written at `written`; a file already loaded or superseded is ignored.
    pub(crate) fn add_file(&mut self, file: &IndexFile, written: SystemTime) {
        if self.has_file(&file.id) {
            return;
        }
        let gone: HashSet<Arc<str>> = file
            .replaces
            .iter()
            .filter(|r| self.files.remove(&***r).is_some())
            .cloned()
            .collect();
        for r in &file.replaces {
            self.replaced.entry(r.clone()).or_insert(written);
        }
        if !gone.is_empty() {
            self.drop_chunks_of(&gone);
        }
        self.files.insert(
            file.id.clone(),
            LiveFile {
                id: file.id.clone(),
                written,
                compacted: file.is_compacted(),
            },
        );
        for (labels, chunks) in &file.streams {
            let id = self.stream_id(labels);
            let s = &mut self.streams[id as usize];
            for c in chunks {
                let listed_by = self
                    .chunk_files
                    .entry((c.segment.clone(), c.offset))
                    .or_default();
                if listed_by.is_empty() {
                    s.chunks.push(c.clone());
                }
                listed_by.push(file.id.clone());
            }
        }
    }

    /// Forgets the chunk refs listed only by the files in `gone`.
    fn drop_chunks_of(&mut self, gone: &HashSet<Arc<str>>) {
        let chunk_files = &mut self.chunk_files;
        for s in &mut self.streams {
            s.chunks.retain(|c| {
                let key = (c.segment.clone(), c.offset);
                let Some(listed_by) = chunk_files.get_mut(&key) else {
                    return false;
                };
                listed_by.retain(|f| !gone.contains(f));
                if listed_by.is_empty() {
                    chunk_files.remove(&key);
                    false
                } else {
                    true
                }
            });
        }
    }

    /// The files whose chunks this index holds.
    pub(crate) fn live_files(&self) -> impl Iterator<Item = &LiveFile> {
        self.files.values()
    }

    /// Files superseded by a live compaction.
    pub(crate) fn replaced_files(&self) -> impl Iterator<Item = ReplacedFile> + '_ {
        self.replaced.iter().map(|(id, since)| ReplacedFile {
            id: id.clone(),
            since: *since,
        })
    }

    /// The chunks (segment, offset) that only compactions' files list: already rewritten, or
    /// carried over as crossing into another period.
    pub(crate) fn settled_chunks(&self) -> HashSet<(Arc<str>, u64)> {
        self.chunk_files
            .iter()
            .filter(|(_, listed_by)| {
                listed_by
                    .iter()
                    .all(|f| self.files.get(f).is_some_and(|l| l.compacted))
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The segments holding the chunks live files list.
    pub(crate) fn referenced_segments(&self) -> HashSet<Arc<str>> {
        self.chunk_files
            .keys()
            .map(|(segment, _)| segment.clone())
            .collect()
    }

    /// Every stream that has chunks, with all of them.
    pub(crate) fn streams(&self) -> impl Iterator<Item = &IndexedStream> {
        self.streams.iter().filter(|s| !s.chunks.is_empty())
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
                .entry(l.name.to_string())
                .or_default()
                .entry(l.value.to_string())
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
    use std::time::{Duration, UNIX_EPOCH};

    /// (labels, min time, max time) of one stream's single chunk.
    type TestStream<'a> = (&'a [(&'a str, &'a str)], i64, i64);

    fn file(seg: &str, streams: &[TestStream<'_>]) -> IndexFile {
        let segment: Arc<str> = Arc::from(seg);
        IndexFile {
            id: segment.clone(),
            replaces: Vec::new(),
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
                            tail_len: 0,
                            tail_offset: 0,
                        }],
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn selects_by_matchers_and_time() {
        let mut idx = PeriodIndex::default();
        idx.add_file(
            &file(
                "s1",
                &[
                    (&[("app", "api"), ("ns", "prod")], 0, 10),
                    (&[("app", "web"), ("ns", "prod")], 5, 20),
                ],
            ),
            UNIX_EPOCH,
        );
        idx.add_file(
            &file("s2", &[(&[("app", "api"), ("ns", "prod")], 30, 40)]),
            UNIX_EPOCH,
        );
        idx.add_file(
            &file("s2", &[(&[("app", "api"), ("ns", "prod")], 30, 40)]),
            UNIX_EPOCH,
        );
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
        idx.add_file(
            &file(
                "s1",
                &[
                    (&[("app", "api"), ("ns", "prod")], 0, 10),
                    (&[("app", "web"), ("ns", "prod")], 5, 20),
                    (&[("app", "db"), ("ns", "dev")], 15, 50),
                ],
            ),
            UNIX_EPOCH,
        );
        idx.add_file(
            &file("s2", &[(&[("app", "api"), ("ns", "prod")], 30, 40)]),
            UNIX_EPOCH,
        );
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

    /// The chunks a period shows, as (segment, offset), sorted.
    fn shown(idx: &PeriodIndex) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = idx
            .select(&[], i64::MIN, i64::MAX)
            .iter()
            .flat_map(|s| s.chunks.iter().map(|c| (c.segment.to_string(), c.offset)))
            .collect();
        v.sort();
        v
    }

    /// A compaction's file that replaces two flush files and carries one of their chunks: the
    /// period shows the same chunks whichever order the three files are loaded in, and the
    /// replaced files stay ignored when read again.
    #[test]
    fn compaction_replaces_files_in_any_load_order() {
        let api: &[(&str, &str)] = &[("app", "api")];
        let web: &[(&str, &str)] = &[("app", "web")];
        let f1 = file("s1", &[(api, 0, 10), (web, 0, 10)]);
        let f2 = file("s2", &[(api, 20, 30)]);
        let f3 = file("s3", &[(web, 40, 50)]);
        let mut compacted = file("c1", &[(api, 0, 30)]);
        compacted.replaces = vec![Arc::from("s1"), Arc::from("s2")];
        // Carried as it was: s1's chunk of `web`.
        compacted.streams.push((
            Labels::from_pairs(web.iter().copied()),
            f1.streams[1].1.clone(),
        ));
        let expected = vec![
            ("c1".to_string(), 0),
            ("s1".to_string(), 100),
            ("s3".to_string(), 0),
        ];
        let orders: [[&IndexFile; 4]; 3] = [
            [&f1, &f2, &f3, &compacted],
            [&compacted, &f1, &f2, &f3],
            [&f2, &compacted, &f3, &f1],
        ];
        for order in orders {
            let mut idx = PeriodIndex::default();
            for (i, f) in order.iter().enumerate() {
                idx.add_file(f, UNIX_EPOCH + Duration::from_secs(i as u64));
            }
            idx.add_file(&f1, UNIX_EPOCH);
            assert_eq!(shown(&idx), expected);
            let mut live: Vec<String> = idx.live_files().map(|f| f.id.to_string()).collect();
            live.sort();
            assert_eq!(live, ["c1", "s3"]);
            let mut replaced: Vec<String> =
                idx.replaced_files().map(|f| f.id.to_string()).collect();
            replaced.sort();
            assert_eq!(replaced, ["s1", "s2"]);
            let mut settled: Vec<(String, u64)> = idx
                .settled_chunks()
                .into_iter()
                .map(|(seg, off)| (seg.to_string(), off))
                .collect();
            settled.sort();
            assert_eq!(settled, expected[..2], "what only the compaction lists");
        }
    }
}
