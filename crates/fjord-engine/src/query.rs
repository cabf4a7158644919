//! The engine's entry point: parse, check limits, evaluate, and shape the result as Loki does
//! (streams for log queries; matrix, vector or scalar for metric queries).

use std::time::Duration;

use fjord_logql::ast::{Expr, SampleExpr};
use fjord_logql::units::format_prometheus_duration;
use fjord_model::limits::Limits;

use crate::logquery::{self, LogQuery};
use crate::metric::{self, MetricLimits, Timing};
use crate::scan;
use crate::{DataSource, EngineError, QueryStats, QueryValue, Sample, Series};

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
            let stages = crate::compile::pipeline(&sel)?;
            let clauses = crate::compile::skippable_literals(&stages);
            let selected = source.select(&sel.matchers, start, end, &clauses).await?;
            stats.chunks_ref = selected.iter().map(|s| s.blocks.len() as u64).sum();
            let (forward, limit, interval, categorize) = (
                req.forward,
                req.limit as usize,
                req.interval,
                req.categorize,
            );
            let cache = source.block_cache();
            let (result, st) = tokio::task::spawn_blocking(move || -> Result<_, EngineError> {
                let streams: Vec<scan::StreamData> = selected
                    .into_iter()
                    .map(|s| scan::prepare(s, start, end, cache.as_ref()))
                    .collect::<Result<_, _>>()?;
                let mut st = QueryStats::default();
                let q = LogQuery {
                    stages: &stages,
                    skip_clauses: &clauses,
                    start,
                    end,
                    limit,
                    forward,
                    interval,
                    categorize,
                };
                let r = logquery::run(&streams, &q, &mut st)?;
                Ok((r, st))
            })
            .await
            .map_err(|e| EngineError::Execution(format!("evaluation task failed: {e}")))??;
            stats.add_scan(&st);
            stats.entries_returned += st.entries_returned;
            Ok((QueryValue::Streams(result), stats))
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

fn check_series(n: usize, limits: &Limits) -> Result<(), EngineError> {
    let max = limits.max_query_series;
    if max > 0 && n > max {
        return Err(series_limit_error(max));
    }
    Ok(())
}

/// Loki's refusal of a query whose result has more than `max` series.
pub(crate) fn series_limit_error(max: usize) -> EngineError {
    EngineError::BadRequest(format!(
        "maximum number of series ({max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()"
    ))
}
