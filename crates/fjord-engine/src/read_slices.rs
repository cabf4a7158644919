//! Reading a query's range in slices whose data fits a byte budget.
//!
//! A source hands the engine the compressed blocks of everything a select asks for before
//! evaluation starts, so a query over a long range would hold all of its range's blocks at
//! once, and its memory would grow with the data it selects. Before selecting, the engine asks
//! the source where its data lies ([`DataSource::layout`]): each stored chunk's time range and
//! size, read from the index without touching the chunks. [`cuts`] places cuts so that about
//! [`DataSource::slice_bytes`] lie between two of them, taking each chunk's bytes as spread
//! evenly over its time range, and the query selects, evaluates and lets go of one slice at a
//! time. A chunk crossing a cut is read by both slices, each for its own blocks. A range whose
//! data fits the budget, the common case, is one slice: one select, as without slicing.

use fjord_model::LabelMatcher;

use crate::source::DataSpan;
use crate::{DataSource, EngineError};

/// Shortest slice (one minute): a cut closer than this to the one before waits, so dense data
/// is not cut finer than its blocks, which each slice would then read again.
pub const MIN_SLICE: i64 = 60_000_000_000;

/// The cuts of `[start, end)` for a query selecting `matchers`: none where the source reads
/// any range at once or the range's data fits its slice budget.
pub async fn plan(
    source: &dyn DataSource,
    matchers: &[LabelMatcher],
    start: i64,
    end: i64,
) -> Result<Vec<i64>, EngineError> {
    let budget = source.slice_bytes();
    if budget == u64::MAX || start >= end {
        return Ok(Vec::new());
    }
    let spans = source.layout(matchers, start, end).await?;
    if spans.iter().map(|s| s.bytes).sum::<u64>() <= budget {
        return Ok(Vec::new());
    }
    Ok(cuts(&spans, start, end, budget))
}

/// Times in `(start, end)`, ascending, that cut `[start, end)` into slices each holding about
/// `budget` bytes of `spans` (more where data is denser than `budget` per [`MIN_SLICE`]).
pub fn cuts(spans: &[DataSpan], start: i64, end: i64, budget: u64) -> Vec<i64> {
    // Where the bytes per nanosecond change: each span adds its rate over its part of the range.
    let mut changes: Vec<(i64, f64)> = Vec::with_capacity(spans.len() * 2 + 1);
    for s in spans {
        let (lo, hi) = (s.min_ts, s.max_ts.saturating_add(1));
        let (from, to) = (lo.max(start), hi.min(end));
        if from >= to || s.bytes == 0 {
            continue;
        }
        let rate = s.bytes as f64 / (hi as f64 - lo as f64).max(1.0);
        changes.push((from, rate));
        changes.push((to, -rate));
    }
    changes.push((end, 0.0));
    changes.sort_by_key(|&(t, _)| t);
    let budget = budget.max(1) as f64;
    let mut cuts = Vec::new();
    // Bytes per nanosecond from `at` on; bytes since the last cut up to `at`.
    let (mut rate, mut held, mut at, mut last_cut) = (0.0f64, 0.0f64, start, start);
    for (t, change) in changes {
        // Cuts within `[at, t)`, where the bytes come at `rate`.
        if rate > 0.0 {
            loop {
                let reach = at.saturating_add(((budget - held) / rate).round() as i64);
                let cut = reach.max(last_cut.saturating_add(MIN_SLICE)).max(at + 1);
                if cut > t || cut >= end {
                    break;
                }
                cuts.push(cut);
                (held, at, last_cut) = (0.0, cut, cut);
            }
        }
        held += rate * (t - at) as f64;
        at = t;
        rate += change;
    }
    cuts
}

/// `slices` (in reading order) each cut further at the `cuts` inside it, in reading order:
/// ascending when `forward`, descending otherwise.
pub fn split(slices: Vec<(i64, i64)>, cuts: &[i64], forward: bool) -> Vec<(i64, i64)> {
    let mut out = Vec::with_capacity(slices.len() + cuts.len());
    for (lo, hi) in slices {
        let inside = &cuts[cuts.partition_point(|&c| c <= lo)..cuts.partition_point(|&c| c < hi)];
        let bounds: Vec<i64> = std::iter::once(lo)
            .chain(inside.iter().copied())
            .chain(std::iter::once(hi))
            .collect();
        let pieces = bounds.windows(2).map(|w| (w[0], w[1]));
        if forward {
            out.extend(pieces);
        } else {
            out.extend(pieces.rev());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = MIN_SLICE;

    fn span(min_ts: i64, max_ts: i64, bytes: u64) -> DataSpan {
        DataSpan {
            min_ts,
            max_ts,
            bytes,
        }
    }

    #[test]
    fn data_within_the_budget_is_not_cut() {
        assert!(cuts(&[span(0, 10 * MIN, 100)], 0, 10 * MIN, 100).is_empty());
        assert!(cuts(&[], 0, 10 * MIN, 1).is_empty());
    }

    #[test]
    fn evenly_spread_data_is_cut_into_equal_slices() {
        // 1,000 bytes over [0, 100 min): 250 bytes per 25 minutes.
        let got = cuts(&[span(0, 100 * MIN - 1, 1000)], 0, 100 * MIN, 250);
        assert_eq!(got, vec![25 * MIN, 50 * MIN, 75 * MIN]);
    }

    #[test]
    fn spans_overlapping_add_up_and_only_their_part_in_range_counts() {
        // Two streams' chunks over the same 40 minutes, 400 bytes each, and a chunk mostly
        // before the range; the range holds 800 + 100 bytes.
        let spans = [
            span(0, 40 * MIN - 1, 400),
            span(0, 40 * MIN - 1, 400),
            span(-90 * MIN, 10 * MIN - 1, 1000),
        ];
        let got = cuts(&spans, 0, 40 * MIN, 300);
        // The first 10 minutes hold 300 bytes, the rest 20 bytes a minute.
        assert_eq!(got, vec![10 * MIN, 25 * MIN]);
    }

    #[test]
    fn dense_data_is_cut_no_finer_than_the_shortest_slice() {
        let got = cuts(&[span(0, 5 * MIN - 1, 1_000_000)], 0, 5 * MIN, 10);
        assert_eq!(got, vec![MIN, 2 * MIN, 3 * MIN, 4 * MIN]);
    }

    #[test]
    fn a_gap_without_data_stays_in_one_slice() {
        let spans = [span(0, MIN - 1, 100), span(100 * MIN, 101 * MIN - 1, 100)];
        assert_eq!(cuts(&spans, 0, 200 * MIN, 150), vec![100 * MIN + MIN / 2]);
    }

    #[test]
    fn slices_are_split_at_the_cuts_inside_them_in_reading_order() {
        let slices = vec![(0, 10), (10, 30)];
        assert_eq!(
            split(slices.clone(), &[5, 10, 20, 25], true),
            vec![(0, 5), (5, 10), (10, 20), (20, 25), (25, 30)]
        );
        let backward = vec![(10, 30), (0, 10)];
        assert_eq!(
            split(backward, &[5, 20], false),
            vec![(20, 30), (10, 20), (5, 10), (0, 5)]
        );
        assert_eq!(split(slices.clone(), &[], true), slices);
    }
}
