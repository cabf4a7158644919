//! Log volume (`/loki/api/v1/index/volume` and `volume_range`): how many bytes matching
//! streams hold, grouped by series or by label name.
//!
//! The figure follows Loki's accounting so that dashboards show the same numbers: a stream's
//! size is its line bytes, plus 8 bytes per structured metadata pair, plus the bytes of each
//! distinct metadata name and value once (Loki stores metadata as symbol references), and a
//! time range that covers only part of a stream gets the same share of that size as of the
//! stream's time span (Loki spreads a chunk's size evenly over its span).

use std::collections::{HashMap, HashSet};

use fjord_model::{LabelMatcher, Labels};

use crate::scan;
use crate::{DataSource, EngineError};

/// How volumes are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateBy {
    /// One result per distinct set of the selected labels.
    Series,
    /// One result per label name.
    Labels,
}

/// One stream's size and time bounds.
struct StreamSize {
    labels: Labels,
    size: u64,
    min_ts: i64,
    max_ts: i64,
}

/// Loki's share of a span `[min, max]` that `[from, through]` covers.
fn factor(from: i64, through: i64, min: i64, max: i64) -> f64 {
    if from > max || through < min {
        return 0.0;
    }
    if min == max {
        return 1.0;
    }
    let total = (max - min) as f64;
    let leading = (from - min).max(0) as f64;
    let trailing = (max - through).max(0) as f64;
    (total - (leading + trailing)) / total
}

async fn stream_sizes(
    source: &dyn DataSource,
    matchers: &[LabelMatcher],
    start: i64,
    end: i64,
) -> Result<Vec<StreamSize>, EngineError> {
    let selected = source
        .select(matchers, start, end.saturating_add(1), &[])
        .await?;
    let mut out = Vec::with_capacity(selected.len());
    for s in selected {
        let data = scan::prepare(s, i64::MIN, i64::MAX, None)?;
        let mut size = 0u64;
        let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
        let mut symbols: HashSet<String> = HashSet::new();
        for unit in &data.units {
            let meta = unit.meta();
            min_ts = min_ts.min(meta.min_ts);
            max_ts = max_ts.max(meta.max_ts);
            size += meta.raw_bytes;
            let metadata = unit.decode_metadata()?;
            for (_, pairs) in metadata.iter() {
                size += 8 * pairs.len() as u64;
                for l in pairs.iter() {
                    for s in [&l.name, &l.value] {
                        if symbols.insert(s.to_string()) {
                            size += s.len() as u64;
                        }
                    }
                }
            }
        }
        if min_ts <= max_ts {
            out.push(StreamSize {
                labels: (*data.labels).clone(),
                size,
                min_ts,
                max_ts,
            });
        }
    }
    Ok(out)
}

/// The label names volumes are grouped by: the target labels if given, else the names the
/// selector mentions.
fn group_names(matchers: &[LabelMatcher], targets: &[String]) -> Vec<String> {
    if targets.is_empty() {
        matchers.iter().map(|m| m.name.clone()).collect()
    } else {
        targets.to_vec()
    }
}

fn volumes_in(
    streams: &[StreamSize],
    from: i64,
    through: i64,
    names: &[String],
    targets: &[String],
    by: AggregateBy,
) -> HashMap<Labels, u64> {
    let mut out: HashMap<Labels, u64> = HashMap::new();
    for s in streams {
        if !(through > s.min_ts && from <= s.max_ts) {
            continue;
        }
        let size = (s.size as f64 * factor(from, through, s.min_ts, s.max_ts)) as u64;
        match by {
            AggregateBy::Series => {
                let key = Labels::from_pairs(
                    s.labels
                        .iter()
                        .filter(|l| names.iter().any(|n| *n == l.name))
                        .map(|l| (l.name.clone(), l.value.clone())),
                );
                *out.entry(key).or_default() += size;
            }
            AggregateBy::Labels => {
                for l in &s.labels {
                    if targets.is_empty() || names.iter().any(|n| *n == l.name) {
                        let key = Labels::from_pairs_keep_empty([(l.name.clone(), String::new())]);
                        *out.entry(key).or_default() += size;
                    }
                }
            }
        }
    }
    out
}

/// Sorted by volume descending, then by labels; at most `limit` entries.
fn ranked(v: HashMap<Labels, u64>, limit: usize) -> Vec<(Labels, u64)> {
    let mut v: Vec<(Labels, u64)> = v.into_iter().collect();
    v.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    v.truncate(limit);
    v
}

/// Volumes over `[start, end]`.
pub async fn volume(
    source: &dyn DataSource,
    matchers: &[LabelMatcher],
    start: i64,
    end: i64,
    targets: &[String],
    by: AggregateBy,
    limit: usize,
) -> Result<Vec<(Labels, u64)>, EngineError> {
    let streams = stream_sizes(source, matchers, start, end).await?;
    let names = group_names(matchers, targets);
    Ok(ranked(
        volumes_in(&streams, start, end, &names, targets, by),
        limit,
    ))
}

/// Volumes per step bucket, as Loki's frontend computes them: buckets are aligned to the step,
/// each bucket but the last ends 1 ms before the next starts, and bucket bounds are truncated
/// to whole seconds for the lookup. Returns (bucket end, volumes) pairs.
pub async fn volume_range(
    source: &dyn DataSource,
    matchers: &[LabelMatcher],
    start: i64,
    end: i64,
    step: i64,
    targets: &[String],
    by: AggregateBy,
    limit: usize,
) -> Result<Vec<(i64, Vec<(Labels, u64)>)>, EngineError> {
    let streams = stream_sizes(source, matchers, start, end).await?;
    let names = group_names(matchers, targets);
    let secs = |t: i64| t.div_euclid(1_000_000_000) * 1_000_000_000;
    let mut out = Vec::new();
    let mut bucket_start = start - start.rem_euclid(step.max(1));
    let mut first = true;
    while bucket_start < end {
        let mut bucket_end = bucket_start + step;
        if bucket_end >= end {
            bucket_end = end;
        } else {
            bucket_end -= 1_000_000;
        }
        let from = if first { start } else { bucket_start };
        first = false;
        let v = volumes_in(&streams, secs(from), secs(bucket_end), &names, targets, by);
        out.push((bucket_end, ranked(v, limit)));
        bucket_start += step.max(1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_spreads_evenly() {
        assert_eq!(factor(0, 100, 0, 100), 1.0);
        assert_eq!(factor(50, 100, 0, 100), 0.5);
        assert_eq!(factor(200, 300, 0, 100), 0.0);
        assert_eq!(factor(0, 10, 5, 5), 1.0);
    }
}
