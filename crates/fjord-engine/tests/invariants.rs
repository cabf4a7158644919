//! Properties of evaluation that must hold for any data:
//!
//! - **time splits**: a range query over `[s, e]` equals the concatenation of the same query over
//!   `[s, m]` and `[m + step, e]`; a forward log query over `[s, e)` equals its halves;
//! - **stream shards**: `sum by (…)` over all streams equals the sum of the per-shard results
//!   when the streams are split into disjoint shards;
//! - **fast paths**: the additive range functions computed from block headers and entry indexes
//!   equal the same functions computed entry by entry through a pipeline (a line filter that
//!   keeps every line forces that path);
//! - **series by series**: binary operations answered series by series give exactly the
//!   step-by-step answers, errors included;
//! - **byte slices**: log and metric queries read in slices cut by bytes answer as they do
//!   read at once;
//! - **field columns**: `| json | <label filter>` log queries give the same answer, for any
//!   limit and direction, over blocks with the compactor's field columns as over blocks without
//!   them, both decoded through a block cache, before and after that cache has built columns
//!   for the second in the background; and so do metric queries over them, grouped and not.
//!
//! The data are random streams cut into small blocks (so blocks span many windows, few windows,
//! or lie inside one), with overlapping duplicate blocks and structured metadata on some
//! entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use fjord_chunk::{BlockBuilder, EncodeOptions, EncodedBlock};
use fjord_engine::logquery::{self, LogQuery};
use fjord_engine::{
    BlockCache, DataSource, DataSpan, EngineError, QueryRequest, QueryStats, QueryValue,
    SelectedStream, StreamResult, compile, execute, metric, scan,
};
use fjord_logql::ast::Expr;
use fjord_model::limits::Limits;
use fjord_model::matcher::matches_all;
use fjord_model::{Label, LabelMatcher, Labels};
use proptest::prelude::*;

const SEC: i64 = 1_000_000_000;

/// Streams held in memory.
struct MemSource {
    streams: Vec<SelectedStream>,
    /// The cache the engine decodes blocks through, if any.
    cache: Option<Arc<BlockCache>>,
    /// The bytes a query reads at once; each block is one span of the layout.
    slice_bytes: u64,
}

impl MemSource {
    /// `streams`, read at once and decoded without a cache.
    fn new(streams: Vec<SelectedStream>) -> Self {
        MemSource {
            streams,
            cache: None,
            slice_bytes: u64::MAX,
        }
    }
}

#[async_trait]
impl DataSource for MemSource {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        clauses: &[Vec<Vec<u8>>],
    ) -> Result<Vec<SelectedStream>, EngineError> {
        // Leaves out the blocks the clauses rule out, as the store does.
        Ok(self
            .streams
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .map(|s| SelectedStream {
                labels: s.labels.clone(),
                blocks: s
                    .blocks
                    .iter()
                    .filter(|b| b.meta.overlaps(start, end) && b.may_match(clauses))
                    .cloned()
                    .collect(),
            })
            .filter(|s| !s.blocks.is_empty())
            .collect())
    }

    async fn layout(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<DataSpan>, EngineError> {
        Ok(self
            .streams
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .flat_map(|s| &s.blocks)
            .filter(|b| b.meta.overlaps(start, end))
            .map(|b| DataSpan {
                min_ts: b.meta.min_ts,
                max_ts: b.meta.max_ts,
                bytes: b.data.len() as u64,
            })
            .collect())
    }

    fn slice_bytes(&self) -> u64 {
        self.slice_bytes
    }

    fn block_cache(&self) -> Option<Arc<BlockCache>> {
        self.cache.clone()
    }
}

/// One generated entry: seconds offset, line, optional level metadata.
type GenEntry = (i64, String, Option<&'static str>);

fn stream_entries() -> impl Strategy<Value = Vec<GenEntry>> {
    prop::collection::vec(
        (
            0i64..600,
            "[a-z ]{0,30}",
            prop_oneof![Just(None), Just(Some("info")), Just(Some("error"))],
        ),
        0..120,
    )
}

fn dataset() -> impl Strategy<Value = (Vec<Vec<GenEntry>>, usize, bool)> {
    (
        prop::collection::vec(stream_entries(), 1..6),
        // entries per block
        1usize..40,
        // also store the first block of each stream a second time (a chunk seen in both the
        // ingester and the store)
        any::<bool>(),
    )
}

fn build(streams: &[Vec<GenEntry>], per_block: usize, duplicate: bool) -> Vec<SelectedStream> {
    build_spaced(streams, per_block, duplicate, SEC)
}

/// [`build`] with the generated offsets `spacing` ns apart instead of a second.
fn build_spaced(
    streams: &[Vec<GenEntry>],
    per_block: usize,
    duplicate: bool,
    spacing: i64,
) -> Vec<SelectedStream> {
    streams
        .iter()
        .enumerate()
        .map(|(i, entries)| {
            let mut entries = entries.clone();
            entries.sort_by_key(|e| e.0);
            let mut blocks: Vec<EncodedBlock> = entries
                .chunks(per_block)
                .map(|part| {
                    let mut b = BlockBuilder::new();
                    for (t, line, level) in part {
                        let md: Vec<Label> = level
                            .iter()
                            .map(|l| Label::new("detected_level", *l))
                            .collect();
                        b.push(1_000 * SEC + t * spacing, line.as_bytes(), &md);
                    }
                    b.encode(&EncodeOptions::default())
                })
                .collect();
            if duplicate && let Some(first) = blocks.first().cloned() {
                blocks.push(first);
            }
            SelectedStream {
                labels: Labels::from_pairs([
                    ("app", format!("app{}", i % 3)),
                    ("pod", format!("pod{i}")),
                ]),
                blocks,
            }
        })
        .collect()
}

fn run(source: &MemSource, query: &str, start: i64, end: i64, step: i64) -> QueryValue {
    run_limited(source, query, start, end, step, 5_000, true)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn run_limited(
    source: &MemSource,
    query: &str,
    start: i64,
    end: i64,
    step: i64,
    limit: u32,
    forward: bool,
) -> Result<QueryValue, String> {
    let req = QueryRequest {
        query: query.into(),
        start,
        end,
        step,
        interval: 0,
        limit,
        forward,
        instant: false,
        categorize: false,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(execute(source, &req, &Limits::default()))
        .map(|(value, _)| value)
        .map_err(|e| e.to_string())
}

/// A matrix as series → points.
fn matrix(v: QueryValue) -> BTreeMap<String, Vec<(i64, f64)>> {
    match v {
        QueryValue::Matrix(series) => series
            .into_iter()
            .map(|s| (s.labels.to_string(), s.points))
            .collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

/// A log result as (stream, ts, line), sorted.
fn entries(v: QueryValue) -> Vec<(String, i64, String)> {
    let mut out = in_order(v);
    out.sort();
    out
}

/// A log result as (stream, ts, line) in result order: streams by labels, each stream's
/// entries in the query's direction.
fn in_order(v: QueryValue) -> Vec<(String, i64, String)> {
    match v {
        QueryValue::Streams(streams) => streams
            .into_iter()
            .flat_map(|s| {
                let l = s.labels.to_string();
                s.entries.into_iter().map(move |e| {
                    (
                        l.clone(),
                        e.ts,
                        String::from_utf8_lossy(&e.line).into_owned(),
                    )
                })
            })
            .collect(),
        other => panic!("not streams: {other:?}"),
    }
}

/// A log query's answer from one read of `[start, end)`, without the slices `execute` reads.
fn whole_range(
    source: &MemSource,
    query: &str,
    start: i64,
    end: i64,
    limit: usize,
    forward: bool,
) -> Vec<StreamResult> {
    let Ok(Expr::Log(sel)) = fjord_logql::parse_expr(query) else {
        panic!("not a log query: {query}");
    };
    let stages = compile::pipeline(&sel).unwrap();
    let clauses = compile::skippable_literals(&stages);
    let streams: Vec<_> = source
        .streams
        .iter()
        .filter(|s| matches_all(&sel.matchers, &s.labels))
        .map(|s| scan::prepare(s.clone(), start, end, None).unwrap())
        .collect();
    let q = LogQuery {
        stages: &stages,
        skip_clauses: &clauses,
        start,
        end,
        limit,
        forward,
        interval: 0,
        categorize: false,
    };
    logquery::run(&streams, &q, &mut QueryStats::default()).unwrap()
}

const START: i64 = 1_000 * SEC;
const END: i64 = 1_600 * SEC;

const METRIC_QUERIES: &[&str] = &[
    "count_over_time({app=~\".+\"}[1m])",
    "sum by (app) (rate({app=~\".+\"}[2m]))",
    "sum by (detected_level) (bytes_over_time({app=~\".+\"}[45s]))",
    "bytes_rate({app=\"app0\"}[10s])",
    "sum(count_over_time({app=~\".+\"} |= \"a\" [3m]))",
    "max_over_time({app=~\".+\"} | label_format n=`{{ len __line__ }}` | unwrap n [90s])",
];

/// Operations and aggregations the engine answers series by series, with matching errors
/// among them.
const SERIES_QUERIES: &[&str] = &[
    "sum by (app) (count_over_time({app=~\".+\"} |= \"a\" [1m])) / sum by (app) (count_over_time({app=~\".+\"}[1m]))",
    "(sum by (pod) (rate({app=~\".+\"} |= \"e\" [2m])) / sum by (pod) (rate({app=~\".+\"}[2m]))) * 100",
    "count_over_time({app=~\".+\"}[1m]) > bool 2",
    "3 < sum by (detected_level) (bytes_over_time({app=~\".+\"}[45s]))",
    "count_over_time({app=~\".+\"}[1m]) / on (app) group_left sum by (app) (count_over_time({app=~\".+\"}[1m]))",
    "sum by (app) (count_over_time({app=~\".+\"}[1m])) - on (app) group_right count_over_time({app=~\".+\"}[1m])",
    "count_over_time({app=~\".+\"}[1m]) + on (app) count_over_time({app=~\".+\"}[1m])",
    "max_over_time({app=~\".+\"} | label_format n=`{{ len __line__ }}` | unwrap n [90s]) by (app) % sum by (app) (count_over_time({app=~\".+\"}[90s]))",
    "count_over_time({app=~\".+\"} |= \"a\" [1m]) and on (app) sum by (app) (count_over_time({app=\"app1\"} |= \"e\" [30s]))",
    "(sum by (pod) (count_over_time({app=~\".+\"} |= \"e\" [1m])) or sum by (pod) (count_over_time({app=~\".+\"} |= \"o\" [2m]))) / 2",
    "count_over_time({app=~\".+\"}[1m]) unless ignoring (pod) count_over_time({app=\"app0\"} |= \"a\" [1m])",
    "sum(sum by (pod) (rate({app=~\".+\"} |= \"e\" [1m])) / sum by (pod) (rate({app=~\".+\"}[1m])))",
    "avg by (app) (rate({app=~\".+\"}[1m]) > bool 0.05)",
    "topk(2, sum by (pod) (rate({app=~\".+\"} |= \"a\" [1m])) / sum by (pod) (rate({app=~\".+\"}[1m])))",
    "stddev(sum by (app) (max by (app, pod) (rate({app=~\".+\"}[1m]))))",
    "count(rate({app=~\".+\"}[1m]) * on (app) group_left sum by (app) (rate({app=~\".+\"}[1m])))",
    "bottomk(1, max by (app) (count_over_time({app=~\".+\"}[1m])))",
    "sum by (app) (rate({app=~\".+\"}[1m]) + ignoring (app) sum without (app) (rate({app=~\".+\"}[30s])))",
    "label_replace(sum by (app) (rate({app=~\".+\"}[1m])), \"svc\", \"s-$1\", \"app\", \"app(.*)\")",
    "label_replace(count_over_time({app=~\".+\"}[1m]), \"pod\", \"any\", \"app\", \"app[01]\")",
    "label_replace(rate({app=~\".+\"}[1m]) * 3, \"pod\", \"\", \"pod\", \".*\")",
    "sum by (pod) (label_replace(rate({app=~\".+\"} |= \"e\" [1m]), \"pod\", \"$1\", \"app\", \"(.*)\"))",
    "stddev without (pod) (label_replace(bytes_over_time({app=~\".+\"}[45s]), \"tier\", \"t$1\", \"app\", \"app([01])\"))",
    "avg by (app) (label_replace(sum by (pod, app) (rate({app=~\".+\"}[1m])) / 7, \"app\", \"x\", \"app\", \"app1\"))",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn range_queries_split_at_any_step((streams, per_block, dup) in dataset(), split in 1i64..40, step_s in prop_oneof![Just(7i64), Just(15), Just(60)]) {
        let source = MemSource::new(build(&streams, per_block, dup));
        let step = step_s * SEC;
        let mid = START + split * step;
        prop_assume!(mid < END);
        for q in METRIC_QUERIES {
            let whole = matrix(run(&source, q, START, END, step));
            let mut halves = matrix(run(&source, q, START, mid, step));
            for (k, pts) in matrix(run(&source, q, mid + step, END, step)) {
                halves.entry(k).or_default().extend(pts);
            }
            prop_assert_eq!(&whole, &halves, "{}", q);
        }
    }

    #[test]
    fn log_queries_read_in_slices_answer_as_the_whole_range_read_at_once((streams, per_block, dup) in dataset(), limit in 1u32..150, forward in any::<bool>()) {
        // 600 offsets 30 s apart: five hours, which the engine reads in three slices.
        let source = MemSource::new(build_spaced(&streams, per_block, dup, 30 * SEC));
        let end = START + 600 * 30 * SEC;
        for q in ["{app=~\".+\"}", "{app=~\".+\"} |= \"e\"", "{app=\"app1\"} | detected_level=\"error\""] {
            let sliced = run_limited(&source, q, START, end, SEC, limit, forward).unwrap();
            let whole = whole_range(&source, q, START, end, limit as usize, forward);
            prop_assert_eq!(in_order(sliced), in_order(QueryValue::Streams(whole)), "{}", q);
        }
    }

    #[test]
    fn queries_read_in_byte_slices_answer_as_the_whole_range_read_at_once((streams, per_block, dup) in dataset(), parts in 2u64..12, limit in 1u32..150, forward in any::<bool>(), step_s in prop_oneof![Just(60i64), Just(300)]) {
        // Five hours of data cut into about `parts` slices by bytes (no slice under a minute).
        let built = build_spaced(&streams, per_block, dup, 30 * SEC);
        let bytes: u64 = built.iter().flat_map(|s| &s.blocks).map(|b| b.data.len() as u64).sum();
        let whole = MemSource::new(built.clone());
        let sliced = MemSource { slice_bytes: (bytes / parts).max(1), ..MemSource::new(built) };
        let end = START + 600 * 30 * SEC;
        for q in METRIC_QUERIES {
            let step = step_s * SEC;
            prop_assert_eq!(matrix(run(&sliced, q, START, end, step)), matrix(run(&whole, q, START, end, step)), "{}", q);
        }
        for q in ["{app=~\".+\"}", "{app=~\".+\"} |= \"e\"", "{app=\"app1\"} | detected_level=\"error\""] {
            let got = run_limited(&sliced, q, START, end, SEC, limit, forward).unwrap();
            let want = run_limited(&whole, q, START, end, SEC, limit, forward).unwrap();
            prop_assert_eq!(in_order(got), in_order(want), "{}", q);
        }
    }

    #[test]
    fn operations_and_aggregations_answer_series_by_series_as_step_by_step((streams, per_block, dup) in dataset(), step_s in prop_oneof![Just(15i64), Just(60)], max_series in prop_oneof![Just(0usize), Just(4)]) {
        let source = MemSource::new(build(&streams, per_block, dup));
        let timing = metric::Timing { start: START, end: END, step: step_s * SEC };
        for q in SERIES_QUERIES {
            let Ok(Expr::Sample(e)) = fjord_logql::parse_expr(q) else { panic!("{q}") };
            let limits = metric::MetricLimits {
                max_series,
                max_range: 0,
                max_values: metric::MAX_VALUES,
                range_is_result: metric::range_is_result(&e),
            };
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let by_series = rt
                .block_on(metric::eval_series(&e, &source, timing, &limits, &mut QueryStats::default()))
                .map(|s| s.series.into_iter().map(|(l, p)| (l.to_string(), p.into_iter().map(|(i, v)| (i, v.to_bits())).collect::<Vec<_>>())).collect::<BTreeMap<_, _>>())
                .map_err(|e| e.to_string());
            let by_step = rt
                .block_on(metric::eval(&e, &source, timing, &limits, &mut QueryStats::default()))
                .map_err(|e| e.to_string())
                .and_then(|steps| {
                    let mut series: BTreeMap<String, Vec<(usize, u64)>> = BTreeMap::new();
                    for (i, vector) in steps.vectors.into_iter().enumerate() {
                        for (l, v) in vector {
                            series.entry(l.to_string()).or_default().push((i, v.to_bits()));
                        }
                        if max_series > 0 && series.len() > max_series {
                            return Err(fjord_engine::query::series_limit_error(max_series).to_string());
                        }
                    }
                    Ok(series)
                });
            prop_assert_eq!(by_series, by_step, "{}", q);
        }
    }

    #[test]
    fn drops_without_a_parser_answer_as_the_labels_they_leave((streams, per_block, dup) in dataset(), step_s in prop_oneof![Just(15i64), Just(60)]) {
        let source = MemSource::new(build(&streams, per_block, dup));
        let step = step_s * SEC;
        // Some entries carry `detected_level` metadata and some do not, so a drop of it changes
        // some blocks and not others; a drop of `pod` changes every stream.
        for (dropping, same) in [
            (
                "sum by (app, detected_level) (count_over_time({app=~\".+\"} | drop __error__ [1m]))",
                "sum by (app, detected_level) (count_over_time({app=~\".+\"}[1m]))",
            ),
            (
                "bytes_over_time({app=~\".+\"} | drop __error__, __error_details__ | drop zone [1m])",
                "bytes_over_time({app=~\".+\"}[1m])",
            ),
            (
                "count_over_time({app=~\".+\"} | drop detected_level [1m])",
                "sum without (detected_level) (count_over_time({app=~\".+\"}[1m]))",
            ),
            (
                "count_over_time({app=~\".+\"} | drop __error__, pod [1m])",
                "sum without (pod) (count_over_time({app=~\".+\"}[1m]))",
            ),
        ] {
            prop_assert_eq!(
                matrix(run(&source, dropping, START, END, step)),
                matrix(run(&source, same, START, END, step)),
                "{}", dropping
            );
        }
    }

    #[test]
    fn log_queries_split_in_time((streams, per_block, dup) in dataset(), split in 1i64..600) {
        let source = MemSource::new(build(&streams, per_block, dup));
        let mid = START + split * SEC;
        for q in ["{app=~\".+\"}", "{app=~\".+\"} |= \"e\"", "{app=\"app1\"} | detected_level=\"error\""] {
            let whole = entries(run(&source, q, START, END, SEC));
            let mut halves = entries(run(&source, q, START, mid, SEC));
            halves.extend(entries(run(&source, q, mid, END, SEC)));
            halves.sort();
            prop_assert_eq!(&whole, &halves, "{}", q);
        }
    }

    #[test]
    fn sums_over_stream_shards_equal_the_whole((streams, per_block, dup) in dataset()) {
        let all = build(&streams, per_block, dup);
        let whole_source = MemSource::new(all.clone());
        let (even, odd): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let shards = [
            MemSource::new(even.into_iter().map(|(_, s)| s).collect()),
            MemSource::new(odd.into_iter().map(|(_, s)| s).collect()),
        ];
        for q in [
            "sum by (app) (count_over_time({app=~\".+\"}[1m]))",
            "sum(bytes_over_time({app=~\".+\"} |~ \"[a-m]\" [2m]))",
            "sum by (detected_level) (count_over_time({app=~\".+\"}[30s]))",
        ] {
            let whole = matrix(run(&whole_source, q, START, END, 20 * SEC));
            let mut summed: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
            for shard in &shards {
                for (k, pts) in matrix(run(shard, q, START, END, 20 * SEC)) {
                    for (t, v) in pts {
                        *summed.entry(k.clone()).or_default().entry(t).or_default() += v;
                    }
                }
            }
            let summed: BTreeMap<String, Vec<(i64, f64)>> =
                summed.into_iter().map(|(k, m)| (k, m.into_iter().collect())).collect();
            prop_assert_eq!(&whole, &summed, "{}", q);
        }
    }

    #[test]
    fn header_and_index_fast_paths_equal_the_pipeline((streams, per_block, dup) in dataset(), step_s in prop_oneof![Just(10i64), Just(60), Just(300)], range in prop_oneof![Just("10s"), Just("1m"), Just("5m")]) {
        let source = MemSource::new(build(&streams, per_block, dup));
        // `!= "\u{1}"` keeps every line but makes each entry go through the pipeline.
        for (fast, slow) in [
            (format!("count_over_time({{app=~\".+\"}}[{range}])"), format!("count_over_time({{app=~\".+\"}} != \"\\u0001\" [{range}])")),
            (format!("sum by (app) (bytes_rate({{app=~\".+\"}}[{range}]))"), format!("sum by (app) (bytes_rate({{app=~\".+\"}} != \"\\u0001\" [{range}]))")),
            (format!("sum by (detected_level) (rate({{app=~\".+\"}}[{range}]))"), format!("sum by (detected_level) (rate({{app=~\".+\"}} != \"\\u0001\" [{range}]))")),
            (format!("sum without (pod) (bytes_over_time({{app=~\".+\"}}[{range}]))"), format!("sum without (pod) (bytes_over_time({{app=~\".+\"}} != \"\\u0001\" [{range}]))")),
        ] {
            let a = matrix(run(&source, &fast, START, END, step_s * SEC));
            let b = matrix(run(&source, &slow, START, END, step_s * SEC));
            prop_assert_eq!(&a, &b, "{} vs {}", fast, slow);
        }
    }
}

/// A JSON line with few statuses and levels, an id of many values, sometimes a nested object,
/// a duplicate key or broken syntax.
fn json_line() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("200"),
            Just("404"),
            Just("500"),
            Just("503"),
            Just("\"abc\"")
        ],
        prop_oneof![Just("info"), Just("error"), Just("warn")],
        0u32..1000,
        0u8..6,
    )
        .prop_map(|(status, level, id, shape)| match shape {
            0 => format!(r#"{{"level":"{level}","status":{status},"id":"{id}"}}"#),
            1 => format!(r#"{{"http":{{"status":{status}}},"level":"{level}","ms":"{id}"}}"#),
            2 => format!(r#"{{"status":{status},"status":200,"level":"{level}"}}"#),
            3 => format!(r#"{{"level":"{level}","status":{status} "id":{id}}}"#),
            4 => format!("level={level} status={status}"),
            _ => format!(
                r#"{{"app":"x{}","status":{status},"level":"{level}"}}"#,
                id % 3
            ),
        })
}

/// A logfmt line with few paths and levels, durations and sizes of many values (rarely not a
/// number: a block with such a value gets no text column for the name), a repeated or empty
/// key, a key that sanitizes, or no pairs at all.
fn logfmt_line() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("/a"), Just("/b"), Just("/c d")],
        prop_oneof![Just("info"), Just("error"), Just("warn")],
        0u32..5000,
        prop_oneof![40 => 0u8..2, 1 => Just(2u8), 20 => 3u8..4, 1 => Just(4u8), 40 => 5u8..8],
    )
        .prop_map(|(path, level, n, shape)| match shape {
            0 => format!("level={level} path=\"{path}\" duration={n}.5ms size={n}"),
            1 => format!("path=\"{path}\" duration={n}us level={level} path=/x size={n}KB"),
            2 => format!("level= level={level} duration={}s size=abc", n % 7),
            3 => format!("msg=\"no duration\" trace=t{n} level={level} detected_level={level}"),
            4 => format!("level={level} duration=fast path=\"{path}\""),
            5 => format!("plain text {n}"),
            6 => format!("lev-el={level} dura.tion={n}ms path=\"{path}\" duration={n}ms"),
            _ => format!("level={level} path=\"{path}\" duration={n}ms size={n}B trace=t{n}"),
        })
}

/// The same streams stored four ways: `plain` without columns or a block cache (every line
/// goes through the pipeline, the reference); `stored` with the compactor's columns and
/// `cached` without columns, both through a block cache (which builds the columns a query asks
/// for in the background); `full` with the columns the block cache builds, from the start.
struct ColumnSources {
    plain: MemSource,
    stored: MemSource,
    cached: MemSource,
    full: MemSource,
}

impl ColumnSources {
    fn new(streams: &[Vec<(i64, String, bool)>], per_block: usize) -> ColumnSources {
        use fjord_engine::field_columns::{json_columns, query_columns};
        let (mut plain, mut stored, mut full) = (Vec::new(), Vec::new(), Vec::new());
        for (i, entries) in streams.iter().enumerate() {
            let mut entries = entries.clone();
            entries.sort_by_key(|e| e.0);
            let (mut p, mut s, mut f) = (Vec::new(), Vec::new(), Vec::new());
            for part in entries.chunks(per_block) {
                let mut builder = BlockBuilder::new();
                for (t, line, md) in part {
                    let md: Vec<Label> = md
                        .then(|| Label::new("detected_level", "error"))
                        .into_iter()
                        .collect();
                    builder.push(1_000 * SEC + t * SEC, line.as_bytes(), &md);
                }
                let mut decoded = builder.to_decoded();
                p.push(decoded.encode(&EncodeOptions::default()));
                decoded.fields = json_columns(&decoded).map(Arc::new);
                s.push(decoded.encode(&EncodeOptions::default()));
                decoded.fields = query_columns(&decoded).map(Arc::new);
                f.push(decoded.encode(&EncodeOptions::default()));
            }
            // Every third stream has a `level` label, which renames the parsed `level`.
            let mut labels = vec![("app", format!("app{}", i % 2)), ("pod", format!("pod{i}"))];
            if i % 3 == 2 {
                labels.push(("level", "stream".into()));
            }
            let labels = Labels::from_pairs(labels);
            let stream = |blocks| SelectedStream {
                labels: labels.clone(),
                blocks,
            };
            plain.push(stream(p));
            stored.push(stream(s));
            full.push(stream(f));
        }
        let cache = || Some(Arc::new(BlockCache::new(64 << 20)));
        ColumnSources {
            cached: MemSource {
                cache: cache(),
                ..MemSource::new(plain.clone())
            },
            plain: MemSource::new(plain),
            stored: MemSource {
                cache: cache(),
                ..MemSource::new(stored)
            },
            full: MemSource::new(full),
        }
    }

    /// Runs `query` on every source; fails unless each answers as `plain` does. The second
    /// round (after [`ColumnSources::wait_for_builders`]) reads the columns the caches built.
    fn check(&self, q: &str, step: i64, limit: u32, forward: bool) -> Result<(), TestCaseError> {
        let want = run_limited(&self.plain, q, START, END, step, limit, forward);
        for (name, source) in [
            ("stored", &self.stored),
            ("cached", &self.cached),
            ("full", &self.full),
        ] {
            let got = run_limited(source, q, START, END, step, limit, forward);
            prop_assert_eq!(&got, &want, "{} ({})", q, name);
        }
        Ok(())
    }

    fn wait_for_builders(&self) {
        wait_for_column_builder(&self.stored);
        wait_for_column_builder(&self.cached);
    }
}

/// Waits until the source's block cache has built every `| json` column asked for.
fn wait_for_column_builder(source: &MemSource) {
    let cache = source.cache.as_ref().expect("a source with a block cache");
    for _ in 0..2000 {
        if cache.field_columns_pending() == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("columns still pending after 10 s");
}

const JSON_QUERIES: &[&str] = &[
    r#"{app=~".+"} | json | status >= 500"#,
    r#"{app=~".+"} | json | status >= 500 | line_format "{{.level}} {{.status}}""#,
    r#"{app=~".+"} | json | http_status = 404 or level = "warn""#,
    r#"{app=~".+"} | json | level = "error" | status != 200 | keep status"#,
    r#"{app=~".+"} | json | level > 3 | status >= 500"#,
    r#"{app=~".+"} | json | level_extracted = "info""#,
    r#"{app=~".+"} | json | detected_level = "error" | status < 300"#,
    r#"{app=~".+"} |= "error" | json | status >= 500 |= "5""#,
];

const JSON_METRIC_QUERIES: &[&str] = &[
    r#"sum(count_over_time({app=~".+"} | json | status >= 500 [1m]))"#,
    r#"sum(count_over_time({app=~".+"} | json | status >= 500 | __error__ = "" [1m]))"#,
    r#"sum by (level) (count_over_time({app=~".+"} | json | status > 200 | __error__ = "" [1m]))"#,
    r#"sum by (app) (bytes_over_time({app=~".+"} | json | level = "warn" [1m]))"#,
    r#"sum by (level) (count_over_time({app=~".+"} | json | status >= 500 [1m]))"#,
    r#"count_over_time({app=~".+"} | json | level = "error" | status != 200 [2m])"#,
    r#"sum by (status) (rate({app=~".+"} | json | level =~ "err.*|warn" [1m]))"#,
    r#"max_over_time({app=~".+"} | json | level = "error" | unwrap status [1m]) by (app)"#,
    r#"sum(sum_over_time({app=~".+"} | json | level != "info" | unwrap status | status > 400 [1m]))"#,
    r#"quantile_over_time(0.9, {app=~".+"} | json | unwrap ms | __error__="" [1m]) by (level)"#,
    r#"sum by (http_status) (count_over_time({app=~".+"} |= "level" | json [1m]))"#,
];

const LOGFMT_METRIC_QUERIES: &[&str] = &[
    r#"quantile_over_time(0.99, {app=~".+"} | logfmt | unwrap duration(duration) | __error__="" [1m]) by (path)"#,
    r#"max_over_time({app=~".+"} | logfmt | unwrap duration_seconds(duration) [1m]) by (path, level)"#,
    r#"sum by (level) (sum_over_time({app=~".+"} |= "ms" | logfmt | unwrap size | __error__="" [1m]))"#,
    r#"sum(sum_over_time({app=~".+"} | logfmt | unwrap bytes(size) | __error__="" [1m]))"#,
    r#"sum by (level) (count_over_time({app=~".+"} | logfmt [1m]))"#,
    r#"sum by (path) (bytes_over_time({app=~".+"} != "plain" | logfmt [1m]))"#,
    r#"avg_over_time({app=~".+"} | logfmt | unwrap duration(duration) | __error__="" [1m]) by (lev_el)"#,
    r#"sum by (level_extracted) (count_over_time({app=~".+"} | logfmt [1m]))"#,
    r#"min_over_time({app=~".+"} | logfmt | unwrap size [1m]) by (path)"#,
    r#"sum by (detected_level, level) (count_over_time({app=~".+"} | logfmt [1m]))"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn logfmt_field_columns_change_no_answer(
        streams in prop::collection::vec(prop::collection::vec((0i64..600, logfmt_line(), any::<bool>()), 0..300), 1..5),
        per_block in 5usize..300,
    ) {
        let sources = ColumnSources::new(&streams, per_block);
        for _ in 0..2 {
            // Sizes that are not numbers make some of these fail as Loki fails them: the same
            // way.
            for q in LOGFMT_METRIC_QUERIES {
                sources.check(q, 30 * SEC, 5_000, true)?;
            }
            sources.wait_for_builders();
        }
    }

    #[test]
    fn field_columns_change_no_answer(
        streams in prop::collection::vec(prop::collection::vec((0i64..600, json_line(), any::<bool>()), 0..300), 1..5),
        per_block in 5usize..300,
        limit in 1u32..80,
        forward in any::<bool>(),
    ) {
        let sources = ColumnSources::new(&streams, per_block);
        for _ in 0..2 {
            for q in JSON_QUERIES {
                sources.check(q, 0, limit, forward)?;
            }
            // Unconvertible statuses make some of these fail as Loki fails them: the same way.
            for q in JSON_METRIC_QUERIES {
                sources.check(q, 30 * SEC, 5_000, true)?;
            }
            sources.wait_for_builders();
        }
    }
}
