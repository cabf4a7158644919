//! Log queries: the `limit` entries nearest to one end of `[start, end)` that pass the
//! pipeline, grouped into streams by their final label sets.
//!
//! Entries of all streams are ordered as Loki's merge orders them: by time in the query
//! direction, then by the stream's label hash, then by position within the stream (reversed
//! for backward queries). The range is read in time windows from its near end, growing until
//! `limit` entries are held, so a query whose hits are recent reads little beyond them; within
//! a window, blocks are visited nearest-first, and once `limit` entries are held, blocks that
//! cannot hold anything nearer are skipped without being decoded, as are blocks whose trigram
//! filter rules out the query's line filters. In blocks with field columns,
//! a [`ColumnFilter`] drops the lines a `| json | <label filter>` certainly drops before they
//! are parsed; a line it knows the whole pipeline keeps is held by position and run through
//! the pipeline only if it is among the `limit` results.

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use bytes::Bytes;
use fjord_chunk::BlockMeta;
use fjord_model::{Label, Labels};
use rayon::prelude::*;

use crate::field_columns::{ColumnFilter, Verdict, json_columns_could_decide};
use crate::labels_builder::{CategorizedLabels, LabelsBuilder};
use crate::scan::{StreamData, entry_range};
use crate::stages::{Hints, Stage, run_pipeline};
use crate::{EngineError, LogEntry, QueryStats, StreamResult};

/// Prometheus' `labels.StableHash`: xxhash64 over `name 0xff value 0xff …`. Loki breaks ties
/// between equal timestamps of different streams with it.
pub fn stable_hash(labels: &Labels) -> u64 {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for l in labels {
        h.update(l.name.as_bytes());
        h.update(&[0xff]);
        h.update(l.value.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

/// Sort key: smaller comes first in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// Time, negated for backward queries.
    time: i64,
    stream_hash: u64,
    /// Position in the stream (unit, entry), negated for backward queries.
    pos: (i64, i64),
}

struct Hit {
    key: Key,
    ts: i64,
    /// (stream, unit, entry): where a hit without a body is read from.
    at: (usize, usize, usize),
    /// The line and labels the pipeline made; `None` until a hit the field columns kept is
    /// among the results ([`materialize`]).
    body: Option<HitBody>,
}

struct HitBody {
    line: Bytes,
    labels: Arc<CategorizedLabels>,
}

impl PartialEq for Hit {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Hit {}
impl PartialOrd for Hit {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Hit {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// Parameters of one log query.
pub struct LogQuery<'a> {
    pub stages: &'a [Stage],
    /// Literal requirements for block skipping (see `compile::skippable_literals`).
    pub skip_clauses: &'a [Vec<Vec<u8>>],
    pub start: i64,
    pub end: i64,
    pub limit: usize,
    pub forward: bool,
    pub interval: i64,
    /// Group by stream labels only and report metadata and parsed labels per entry.
    pub categorize: bool,
}

/// Runs a log query over prepared streams.
///
/// Units whose trigram filter rules out the query's line filters are set aside first, checked
/// in parallel (a rare needle rules out nearly every block, so this is most of its work). The
/// query range is then read in [`Windows`] from its near end, until `limit` hits are held.
/// Within a window the units are taken nearest-first in batches of a few per core; the units
/// of a batch are scanned in parallel, each keeping its own best `limit` hits below the
/// cut-off known when the batch started, and the results are merged. A batch starts only while
/// the nearest unit left could still hold something better than the worst hit kept.
pub fn run(
    streams: &[StreamData],
    q: &LogQuery<'_>,
    stats: &mut QueryStats,
) -> Result<Vec<StreamResult>, EngineError> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    // Units of every stream that may match, nearest to the query's starting end first.
    let units: Vec<(usize, usize)> = streams
        .iter()
        .enumerate()
        .flat_map(|(s, d)| (0..d.units.len()).map(move |u| (s, u)))
        .collect();
    let readable: Vec<bool> = if q.skip_clauses.is_empty() {
        vec![true; units.len()]
    } else {
        units
            .par_iter()
            .map(|&(s, u)| streams[s].units[u].may_match(q.skip_clauses))
            .collect()
    };
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(units.len());
    for (unit, readable) in units.into_iter().zip(readable) {
        if readable {
            order.push(unit);
        } else {
            stats.blocks_skipped += 1;
        }
    }
    if q.forward {
        order.sort_by_key(|&(s, u)| streams[s].units[u].meta().min_ts);
    } else {
        order.sort_by_key(|&(s, u)| std::cmp::Reverse(streams[s].units[u].meta().max_ts));
    }
    let hashes: Vec<u64> = streams.iter().map(|s| stable_hash(&s.labels)).collect();
    // Loki runs log pipelines with hints too: a single-label filter is also checked the moment
    // a parser extracts its label (and can drop the line then, whatever later stages do).
    let hints = Hints::new(Vec::new(), &[], false, false, None, q.stages, None);
    let mut heap: BinaryHeap<Hit> = BinaryHeap::with_capacity(q.limit + 1);
    let batch = rayon::current_num_threads().max(1) * 2;
    let metas: Vec<_> = order
        .iter()
        .map(|&(s, u)| streams[s].units[u].meta())
        .collect();
    let mut counted = vec![false; order.len()];
    for window in Windows::new(&metas, q) {
        // Units with entries in this window, nearest first.
        let in_window: Vec<usize> = (0..order.len())
            .filter(|&k| metas[k].overlaps(window.start, window.end))
            .collect();
        let mut next = 0;
        while next < in_window.len() {
            let cutoff = (heap.len() >= q.limit)
                .then(|| heap.peek().map(|h| h.key))
                .flatten();
            if let Some(worst) = cutoff {
                let meta = &metas[in_window[next]];
                let best_possible = if q.forward {
                    meta.min_ts.max(window.start)
                } else {
                    -meta.max_ts.min(window.end - 1)
                };
                if best_possible > worst.time {
                    break;
                }
            }
            let end = (next + batch).min(in_window.len());
            for &k in &in_window[next..end] {
                if !std::mem::replace(&mut counted[k], true) {
                    stats.decompressed_bytes += metas[k].raw_bytes;
                }
            }
            let found: Vec<Result<UnitHits, EngineError>> = in_window[next..end]
                .par_iter()
                .map(|&k| {
                    let (s, u) = order[k];
                    let unit = UnitRef {
                        stream: &streams[s],
                        stream_index: s,
                        index: u,
                        hash: hashes[s],
                    };
                    scan_unit(unit, q, window.clone(), &hints, cutoff)
                })
                .collect();
            for f in found {
                let f = f?;
                stats.add_scan(&f.stats);
                for h in f.hits {
                    keep_best(&mut heap, q.limit, h);
                }
            }
            next = end;
        }
        // Every entry of a later window is farther than every hit held.
        if heap.len() >= q.limit {
            break;
        }
    }
    let mut hits = heap.into_sorted_vec();
    if q.interval > 0 {
        hits = apply_interval(hits, q.interval, q.forward);
    }
    stats.entries_returned = hits.len() as u64;
    Ok(group(materialize(streams, hits, q, &hints)?, q.categorize))
}

/// The hits' lines and labels, running the pipeline on those the field columns kept unrun.
fn materialize(
    streams: &[StreamData],
    mut hits: Vec<Hit>,
    q: &LogQuery<'_>,
    hints: &Hints,
) -> Result<Vec<(i64, HitBody)>, EngineError> {
    // (stream, unit) -> (position in hits, entry)
    let mut pending: BTreeMap<(usize, usize), Vec<(usize, usize)>> = BTreeMap::new();
    for (n, h) in hits.iter().enumerate() {
        if h.body.is_none() {
            let (s, u, i) = h.at;
            pending.entry((s, u)).or_default().push((n, i));
        }
    }
    let pending: Vec<_> = pending.into_iter().collect();
    let made: Vec<Result<Vec<(usize, HitBody)>, EngineError>> = pending
        .into_par_iter()
        .map(|((s, u), entries)| {
            let block = streams[s].units[u].decode()?;
            let mut builder = LabelsBuilder::new(streams[s].labels.clone());
            let mut hints = hints.clone();
            entries
                .into_iter()
                .map(|(n, i)| {
                    let (line, metadata) = (block.line(i), block.metadata(i));
                    let line = run_pipeline(
                        q.stages,
                        block.ts[i],
                        line,
                        metadata,
                        &mut builder,
                        &mut hints,
                        false,
                    )
                    .ok_or_else(|| {
                        EngineError::Execution(
                            "field columns kept an entry the pipeline drops".into(),
                        )
                    })?;
                    let body = HitBody {
                        line: Bytes::copy_from_slice(&line),
                        labels: Arc::new(final_labels(&builder, q.categorize)),
                    };
                    Ok((n, body))
                })
                .collect()
        })
        .collect();
    for m in made {
        for (n, body) in m? {
            hits[n].body = Some(body);
        }
    }
    Ok(hits
        .into_iter()
        .filter_map(|h| Some((h.ts, h.body?)))
        .collect())
}

/// Entries wanted in the first window of a log query, per entry of its limit.
const FIRST_WINDOW_ENTRIES_PER_LIMIT: u64 = 2;

/// The query range cut into windows from its near end, scanned one after the other until
/// `limit` hits are held: the first holds about [`FIRST_WINDOW_ENTRIES_PER_LIMIT`] × `limit`
/// entries at the units' average density, and each next one is twice as long as the one
/// before, so a query that finds its hits early reads little more than it returns, and one
/// that must read everything takes a few dozen windows at most.
struct Windows {
    forward: bool,
    /// The part of the query range the units cover: `[lo, hi)`.
    lo: i64,
    hi: i64,
    /// Where the next window starts (its near edge).
    edge: i64,
    len: i64,
}

impl Windows {
    fn new(metas: &[BlockMeta], q: &LogQuery<'_>) -> Windows {
        let lo = metas
            .iter()
            .map(|m| m.min_ts)
            .min()
            .unwrap_or(q.start)
            .max(q.start);
        let hi = metas
            .iter()
            .map(|m| m.max_ts.saturating_add(1))
            .max()
            .unwrap_or(q.end)
            .min(q.end);
        let entries: u64 = metas.iter().map(|m| u64::from(m.count)).sum();
        let wanted = (q.limit as u64).saturating_mul(FIRST_WINDOW_ENTRIES_PER_LIMIT);
        let span = hi.saturating_sub(lo).max(1);
        let len = if wanted >= entries {
            span
        } else {
            ((span as f64) * (wanted as f64 / entries as f64)).ceil() as i64
        };
        Windows {
            forward: q.forward,
            lo,
            hi,
            edge: if q.forward { lo } else { hi },
            len: len.max(1),
        }
    }
}

impl Iterator for Windows {
    type Item = std::ops::Range<i64>;

    fn next(&mut self) -> Option<Self::Item> {
        // The edge starts at `lo` or `hi` and moves toward the other, clamped.
        if self.lo >= self.hi {
            return None;
        }
        let window = if self.forward {
            if self.edge == self.hi {
                return None;
            }
            let end = self.edge.saturating_add(self.len).min(self.hi);
            let w = self.edge..end;
            self.edge = end;
            w
        } else {
            if self.edge == self.lo {
                return None;
            }
            let start = self.edge.saturating_sub(self.len).max(self.lo);
            let w = start..self.edge;
            self.edge = start;
            w
        };
        self.len = self.len.saturating_mul(2);
        Some(window)
    }
}

/// One unit of one stream.
#[derive(Clone, Copy)]
struct UnitRef<'a> {
    stream: &'a StreamData,
    stream_index: usize,
    index: usize,
    hash: u64,
}

/// The best hits of one unit, and what scanning it cost.
#[derive(Default)]
struct UnitHits {
    hits: Vec<Hit>,
    stats: QueryStats,
}

/// Scans the entries of one unit in `window`: its best `limit` hits that sort before `cutoff`.
fn scan_unit(
    unit: UnitRef<'_>,
    q: &LogQuery<'_>,
    window: std::ops::Range<i64>,
    hints: &Hints,
    cutoff: Option<Key>,
) -> Result<UnitHits, EngineError> {
    let mut out = UnitHits::default();
    let data = &unit.stream.units[unit.index];
    let block = data.decode()?;
    let range = entry_range(&block.ts, window.start, window.end);
    let mut builder = LabelsBuilder::new(unit.stream.labels.clone());
    let mut columns = block
        .fields
        .as_deref()
        .and_then(|f| ColumnFilter::new(q.stages, hints, &unit.stream.labels, f));
    if block.fields.is_none() && json_columns_could_decide(q.stages, hints) {
        data.want_field_columns(&block);
    }
    let defer = columns.as_ref().is_some_and(ColumnFilter::pass_is_final);
    let mut hints = hints.clone();
    let mut heap: BinaryHeap<Hit> = BinaryHeap::new();
    let indices: Box<dyn Iterator<Item = usize>> = if q.forward {
        Box::new(range)
    } else {
        Box::new(range.rev())
    };
    let u = unit.index as i64;
    // With nothing but line filters in the pipeline an entry's labels depend only on its
    // metadata set, which the block's entries with equal metadata share (one allocation): build
    // them once per set, for the first few sets met.
    let labels_follow_metadata = q.stages.iter().all(|s| matches!(s, Stage::LineFilter(_)));
    let mut labels_of_set: Vec<(*const [Label], Arc<CategorizedLabels>)> = Vec::new();
    let mut metadata_of = block.metadata_cursor();
    for i in indices {
        let ts = block.ts[i];
        let key = Key {
            time: if q.forward { ts } else { -ts },
            stream_hash: unit.hash,
            pos: if q.forward {
                (u, i as i64)
            } else {
                (-u, -(i as i64))
            },
        };
        let worst = if heap.len() >= q.limit {
            heap.peek().map(|h| h.key)
        } else {
            cutoff
        };
        if let Some(w) = worst
            && key >= w
        {
            // Entries of this unit only get worse from here in this direction.
            if key.time > w.time {
                break;
            }
            continue;
        }
        let line = block.line(i);
        out.stats.lines_processed += 1;
        out.stats.bytes_processed += line.len() as u64;
        let metadata = metadata_of.get(i);
        let verdict = columns
            .as_mut()
            .map_or(Verdict::Unknown, |c| c.verdict(i, metadata));
        let at = (unit.stream_index, unit.index, i);
        let body = match verdict {
            Verdict::Drop => continue,
            Verdict::Pass if defer => None,
            _ => {
                let probe = verdict == Verdict::Unknown;
                let Some(cur) = run_pipeline(
                    q.stages,
                    ts,
                    line,
                    metadata,
                    &mut builder,
                    &mut hints,
                    probe,
                ) else {
                    continue;
                };
                let known = labels_follow_metadata
                    .then(|| {
                        labels_of_set
                            .iter()
                            .find(|(set, _)| std::ptr::eq(*set, metadata))
                    })
                    .flatten();
                let labels = match known {
                    Some((_, labels)) => Arc::clone(labels),
                    None => {
                        let labels = Arc::new(final_labels(&builder, q.categorize));
                        if labels_follow_metadata && labels_of_set.len() < MEMO_SETS {
                            labels_of_set.push((metadata, Arc::clone(&labels)));
                        }
                        labels
                    }
                };
                Some(HitBody {
                    line: Bytes::copy_from_slice(&cur),
                    labels,
                })
            }
        };
        out.stats.post_filter_lines += 1;
        keep_best(&mut heap, q.limit, Hit { key, ts, at, body });
    }
    out.hits = heap.into_vec();
    Ok(out)
}

/// Most metadata sets per block whose entries' labels [`scan_unit`] remembers.
const MEMO_SETS: usize = 16;

/// An entry's labels as the result needs them: split by category only when categorizing.
fn final_labels(builder: &LabelsBuilder, categorize: bool) -> CategorizedLabels {
    if categorize {
        builder.result()
    } else {
        CategorizedLabels {
            all: builder.result_all(),
            stream: Labels::empty(),
            structured_metadata: Labels::empty(),
            parsed: Labels::empty(),
        }
    }
}

/// Adds `hit` to a heap of the best `limit` hits (the worst on top).
fn keep_best(heap: &mut BinaryHeap<Hit>, limit: usize, hit: Hit) {
    heap.push(hit);
    if heap.len() > limit {
        heap.pop();
    }
}

/// Keeps an entry only if it is at least `interval` after the previously kept one (in query
/// direction), as Loki's interval iterator does across the merged result.
fn apply_interval(hits: Vec<Hit>, interval: i64, forward: bool) -> Vec<Hit> {
    let mut out = Vec::with_capacity(hits.len());
    let mut next_allowed: Option<i64> = None;
    for h in hits {
        let ts = h.ts;
        let ok = match next_allowed {
            None => true,
            Some(n) => {
                if forward {
                    ts >= n
                } else {
                    ts <= n
                }
            }
        };
        if ok {
            next_allowed = Some(if forward {
                ts + interval
            } else {
                ts - interval
            });
            out.push(h);
        }
    }
    out
}

fn group(hits: Vec<(i64, HitBody)>, categorize: bool) -> Vec<StreamResult> {
    let mut streams: BTreeMap<String, StreamResult> = BTreeMap::new();
    for (ts, h) in hits {
        // Most hits hold the only reference to their labels: take them instead of copying.
        let labels = Arc::try_unwrap(h.labels).unwrap_or_else(|shared| (*shared).clone());
        let (labels, structured_metadata, parsed) = if categorize {
            (
                labels.stream,
                labels.structured_metadata.into_vec(),
                labels.parsed.into_vec(),
            )
        } else {
            (labels.all, Vec::new(), Vec::new())
        };
        let entry = LogEntry {
            ts,
            line: h.line,
            structured_metadata,
            parsed,
        };
        streams
            .entry(labels.to_string())
            .or_insert_with(|| StreamResult {
                labels,
                entries: Vec::new(),
            })
            .entries
            .push(entry);
    }
    streams.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(count: u32, min_ts: i64, max_ts: i64) -> BlockMeta {
        BlockMeta {
            count,
            min_ts,
            max_ts,
            raw_bytes: 0,
            metadata_bytes: 0,
        }
    }

    fn windows(
        metas: &[BlockMeta],
        start: i64,
        end: i64,
        limit: usize,
        forward: bool,
    ) -> Vec<std::ops::Range<i64>> {
        let q = LogQuery {
            stages: &[],
            skip_clauses: &[],
            start,
            end,
            limit,
            forward,
            interval: 0,
            categorize: false,
        };
        Windows::new(metas, &q).collect()
    }

    #[test]
    fn windows_tile_the_covered_range_from_the_near_end_doubling() {
        // 1000 entries over [0, 1001): the first window holds about 2 × 10 entries (rounded up).
        let metas = [meta(600, 0, 599), meta(400, 600, 1000)];
        let back = windows(&metas, -50, 2000, 10, false);
        assert_eq!(back[0], 980..1001);
        assert_eq!(back[1], 938..980);
        assert_eq!(back[2], 854..938);
        assert_eq!(back.last().unwrap().start, 0, "reaches the far end");
        for pair in back.windows(2) {
            assert_eq!(pair[1].end, pair[0].start, "contiguous");
            assert!(pair[1].end - pair[1].start <= 2 * (pair[0].end - pair[0].start));
        }
        let fwd = windows(&metas, 100, 2000, 10, true);
        assert_eq!(fwd[0], 100..119);
        assert_eq!(fwd[1], 119..157);
        assert_eq!(fwd.last().unwrap().end, 1001);
        for pair in fwd.windows(2) {
            assert_eq!(pair[1].start, pair[0].end, "contiguous");
        }
    }

    #[test]
    fn one_window_when_the_limit_covers_every_entry() {
        let metas = [meta(5, 10, 20)];
        assert_eq!(windows(&metas, 0, 100, 1000, false), vec![10..21]);
        assert_eq!(windows(&metas, 15, 18, 3, true).first(), Some(&(15..18)));
        assert!(windows(&[], 0, 100, 10, false).len() <= 1);
    }
}
