//! The engine's entry point: parse, check limits, evaluate, and shape the result as Loki does
//! (streams for log queries; matrix, vector or scalar for metric queries).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fjord_logql::ast::{Expr, SampleExpr};
use fjord_logql::units::format_prometheus_duration;
use fjord_model::limits::Limits;

use crate::logquery::{self, LogQuery};
use crate::metric::{self, MetricLimits, Timing};
use crate::scan;
use crate::stages::Stage;
use crate::{
    DataSource, EngineError, QueryStats, QueryValue, Sample, Series, StreamResult, blocking,
    read_slices,
};

/// A query as the HTTP layer received it. Times are Unix ns.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    pub query: String,
    pub start: i64,
    pub end: i64,
    /// Step between evaluations of a range metric query.
    pub step: i64,
    /// Minimum spacing of returned log entries (0: every entry).
    pub interval: i64,
    pub limit: u32,
    pub forward: bool,
    /// An instant query (`/query`): metric queries evaluate once at `end`.
    pub instant: bool,
    /// Loki's `categorize-labels` encoding: streams keyed by stream labels only.
    pub categorize: bool,
}

fn ns(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Parses and evaluates a query.
pub async fn execute(
    source: &dyn DataSource,
    req: &QueryRequest,
    limits: &Limits,
) -> Result<(QueryValue, QueryStats), EngineError> {
    let expr =
        fjord_logql::parse_expr(&req.query).map_err(|e| EngineError::BadRequest(e.to_string()))?;
    let mut stats = QueryStats::default();
    let (mut start, end) = (req.start, req.end);
    let max_len = ns(limits.max_query_length);
    if max_len > 0 && end - start > max_len {
        return Err(EngineError::BadRequest(format!(
            "the query time range exceeds the limit (query length: {}, limit: {})",
            format_prometheus_duration(end - start),
            format_prometheus_duration(max_len)
        )));
    }
    let lookback = ns(limits.max_query_lookback);
    if lookback > 0 {
        start = start.max(now_ns() - lookback);
    }
    match expr {
        Expr::Log(sel) => {
            if req.instant {
                return Err(EngineError::BadRequest(
                    "log queries are not supported as an instant query type, please change your query to a range query type".into(),
                ));
            }
            let max_entries = limits.max_entries_limit_per_query;
            if max_entries > 0 && req.limit as usize > max_entries {
                return Err(EngineError::BadRequest(format!(
                    "max entries limit per query exceeded, limit > max_entries_limit_per_query ({} > {max_entries})",
                    req.limit
                )));
            }
            if start >= end {
                return Ok((QueryValue::Streams(Vec::new()), stats));
            }
            let stages = Arc::new(crate::compile::pipeline(&sel)?);
            let clauses = Arc::new(crate::compile::skippable_literals(&stages));
            let (forward, limit, interval, categorize) = (
                req.forward,
                req.limit as usize,
                req.interval,
                req.categorize,
            );
            // Slices are read one after the other from the query's starting end, each with what
            // is left of the limit, until it is reached: every entry of a later slice is farther
            // than every entry of an earlier one, so the answer is the whole range's. Time
            // slices pay off where the newest entries are the answer, a pipeline that keeps
            // every line; one that may drop lines often reads far back for its limit, and each
            // slice costs a select, so it is sliced only where its data is past the source's
            // slice budget. With an `interval`, spacing crosses slices: read at once.
            let drops_lines = stages
                .iter()
                .any(|s| matches!(s, Stage::LineFilter(_) | Stage::LabelFilter(_)));
            let slices = if interval > 0 {
                vec![(start, end)]
            } else {
                let cuts = read_slices::plan(source, &sel.matchers, start, end).await?;
                let by_time = if drops_lines {
                    vec![(start, end)]
                } else {
                    log_slices(start, end, forward)
                };
                read_slices::split(by_time, &cuts, forward)
            };
            let mut answers: Vec<Vec<StreamResult>> = Vec::new();
            let mut remaining = limit;
            for (lo, hi) in slices {
                let selected = source.select(&sel.matchers, lo, hi, &clauses).await?;
                stats.chunks_ref += selected.iter().map(|s| s.blocks.len() as u64).sum::<u64>();
                let cache = source.block_cache();
                let (stages, clauses) = (stages.clone(), clauses.clone());
                let (result, st) = blocking(move || {
                    let streams: Vec<scan::StreamData> = selected
                        .into_iter()
                        .map(|s| scan::prepare(s, lo, hi, cache.as_ref()))
                        .collect::<Result<_, _>>()?;
                    let mut st = QueryStats::default();
                    let q = LogQuery {
                        stages: &stages,
                        skip_clauses: &clauses,
                        start: lo,
                        end: hi,
                        limit: remaining,
                        forward,
                        interval,
                        categorize,
                    };
                    let r = logquery::run(&streams, &q, &mut st)?;
                    Ok((r, st))
                })
                .await?;
                stats.add_scan(&st);
                stats.entries_returned += st.entries_returned;
                remaining = remaining.saturating_sub(st.entries_returned as usize);
                answers.push(result);
                if remaining == 0 {
                    break;
                }
            }
            Ok((QueryValue::Streams(merge_slices(answers)), stats))
        }
        Expr::Sample(s) => {
            let timing = if req.instant {
                Timing {
                    start: end,
                    end,
                    step: 1,
                }
            } else {
                Timing {
                    start,
                    end,
                    step: req.step.max(1),
                }
            };
            let mlimits = MetricLimits {
                max_series: limits.max_query_series,
                max_range: ns(limits.max_query_range),
                max_values: metric::MAX_VALUES,
                range_is_result: metric::range_is_result(&s),
            };
            let value = if req.instant {
                let steps = metric::eval(&s, source, timing, &mlimits, &mut stats).await?;
                if let SampleExpr::Literal(v) = s {
                    QueryValue::Scalar { ts: end, value: v }
                } else {
                    let t = steps.times.first().copied().unwrap_or(end);
                    let vec: Vec<Sample> = steps
                        .vectors
                        .into_iter()
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(labels, value)| Sample {
                            labels,
                            ts: t,
                            value,
                        })
                        .collect();
                    check_series(vec.len(), limits)?;
                    QueryValue::Vector(vec)
                }
            } else {
                let answer = metric::eval_series(&s, source, timing, &mlimits, &mut stats).await?;
                check_series(answer.series.len(), limits)?;
                let times = answer.times;
                QueryValue::Matrix(
                    answer
                        .series
                        .into_iter()
                        .map(|(labels, points)| Series {
                            labels,
                            points: points.into_iter().map(|(i, v)| (times[i], v)).collect(),
                        })
                        .collect(),
                )
            };
            Ok((value, stats))
        }
    }
}

/// The first slice of a log query's range read at once, from its starting end.
const FIRST_LOG_SLICE: i64 = 3_600_000_000_000;
/// The longest slice: each is twice the one before, up to this.
const MAX_LOG_SLICE: i64 = 8 * FIRST_LOG_SLICE;

/// `[start, end)` cut into slices from the end a log query starts at (`end` backward, `start`
/// forward), in the order they are read: the first an hour long, each next one twice as long
/// as the one before, up to eight hours. A query that finds its `limit` entries in the newest
/// hour asks the store for that hour's chunks only.
fn log_slices(start: i64, end: i64, forward: bool) -> Vec<(i64, i64)> {
    let mut slices = Vec::new();
    let (mut near, mut len) = (if forward { start } else { end }, FIRST_LOG_SLICE);
    while start < end && (if forward { near < end } else { near > start }) {
        let (lo, hi) = if forward {
            (near, near.saturating_add(len).min(end))
        } else {
            (near.saturating_sub(len).max(start), near)
        };
        slices.push((lo, hi));
        near = if forward { hi } else { lo };
        len = len.saturating_mul(2).min(MAX_LOG_SLICE);
    }
    slices
}

/// The streams of a log query's slices, in the order they were read, as one answer: a stream
/// met in several slices has their entries one after the other. One slice's answer is taken as
/// it is.
fn merge_slices(mut answers: Vec<Vec<StreamResult>>) -> Vec<StreamResult> {
    if answers.len() <= 1 {
        return answers.pop().unwrap_or_default();
    }
    let mut merged: BTreeMap<String, StreamResult> = BTreeMap::new();
    for r in answers.into_iter().flatten() {
        merged
            .entry(r.labels.to_string())
            .or_insert_with(|| StreamResult {
                labels: r.labels,
                entries: Vec::new(),
            })
            .entries
            .extend(r.entries);
    }
    merged.into_values().collect()
}

fn check_series(n: usize, limits: &Limits) -> Result<(), EngineError> {
    let max = limits.max_query_series;
    if max > 0 && n > max {
        return Err(series_limit_error(max));
    }
    Ok(())
}

/// Loki's refusal of a query whose result has more than `max` series.
pub fn series_limit_error(max: usize) -> EngineError {
    EngineError::BadRequest(format!(
        "maximum number of series ({max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = FIRST_LOG_SLICE;

    #[test]
    fn log_slices_grow_from_the_starting_end_and_cover_the_range_once() {
        assert_eq!(
            log_slices(0, 20 * H, false),
            vec![
                (19 * H, 20 * H),
                (17 * H, 19 * H),
                (13 * H, 17 * H),
                (5 * H, 13 * H),
                (0, 5 * H)
            ]
        );
        assert_eq!(
            log_slices(0, 4 * H, true),
            vec![(0, H), (H, 3 * H), (3 * H, 4 * H)]
        );
        assert_eq!(log_slices(5, 7, false), vec![(5, 7)]);
        assert_eq!(log_slices(7, 7, true), vec![]);
        // Eight hours at most, however long the range.
        let week = log_slices(0, 7 * 24 * H, false);
        assert!(week.iter().all(|&(lo, hi)| hi - lo <= MAX_LOG_SLICE));
        assert_eq!(week.first().unwrap().1, 7 * 24 * H);
        assert_eq!(week.last().unwrap().0, 0);
        assert!(week.windows(2).all(|w| w[1].1 == w[0].0));
    }
}
