//! The memory a metric query's series hold is charged to the data source's series budget: a
//! query that finds it held by others is refused as busy (429), one that alone needs more than
//! all of it is refused outright (400), and every byte is given back when a query ends.

use std::sync::Arc;

use async_trait::async_trait;
use fjord_chunk::{BlockBuilder, EncodeOptions};
use fjord_engine::{DataSource, EngineError, QueryRequest, QueryValue, SelectedStream, execute};
use fjord_model::limits::Limits;
use fjord_model::matcher::matches_all;
use fjord_model::memory_budget::MemoryBudget;
use fjord_model::{LabelMatcher, Labels};

const SEC: i64 = 1_000_000_000;
/// Distinct lines in the one stream, a second apart from t = 1000 s.
const LINES: i64 = 5_000;

/// Four streams of distinct 200-byte lines (line `i` in stream `i % 4`), and a series budget.
struct Source {
    streams: Vec<SelectedStream>,
    memory: Arc<MemoryBudget>,
}

impl Source {
    fn new(memory: Arc<MemoryBudget>) -> Self {
        let streams = (0..4)
            .map(|part| {
                let lines: Vec<i64> = (part..LINES).step_by(4).collect();
                let blocks = lines
                    .chunks(250)
                    .map(|chunk| {
                        let mut b = BlockBuilder::new();
                        for &i in chunk {
                            let pad = "x".repeat(190 - i as usize % 7);
                            let line = format!("line {:04} {pad} {i}", i % 10);
                            b.push((1_000 + i) * SEC, line.as_bytes(), &[]);
                        }
                        b.encode(&EncodeOptions::default())
                    })
                    .collect();
                SelectedStream {
                    labels: Labels::from_pairs([
                        ("app", "a".to_string()),
                        ("part", part.to_string()),
                    ]),
                    blocks,
                }
            })
            .collect();
        Source { streams, memory }
    }
}

#[async_trait]
impl DataSource for Source {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        _start: i64,
        _end: i64,
        _clauses: &[Vec<Vec<u8>>],
    ) -> Result<Vec<SelectedStream>, EngineError> {
        Ok(self
            .streams
            .iter()
            .filter(|s| matches_all(matchers, &s.labels))
            .cloned()
            .collect())
    }

    fn series_memory(&self) -> Option<Arc<MemoryBudget>> {
        Some(self.memory.clone())
    }
}

/// Evaluates `query` at the end of the data.
fn instant(source: &Source, query: &str) -> Result<QueryValue, EngineError> {
    let end = (1_000 + LINES) * SEC;
    let req = QueryRequest {
        query: query.into(),
        start: end,
        end,
        step: 0,
        interval: 0,
        limit: 100,
        forward: false,
        instant: true,
        categorize: false,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(execute(source, &req, &Limits::default()))
        .map(|(value, _)| value)
}

/// A series per line, aggregated after the range aggregation: no series limit applies to what
/// the range aggregation holds, only the budget.
const SERIES_PER_LINE: &str =
    r#"max(count_over_time({app="a"} | label_format l="{{__line__}}" [2h]))"#;

#[test]
fn series_past_the_budget_are_refused_and_their_memory_given_back() {
    // 5,000 series of about 300 bytes each do not fit in 1 MiB, and the partial results of the
    // query's workers together are what does not fit: refused outright, not as busy.
    let budget = MemoryBudget::new(1 << 20);
    let source = Source::new(budget.clone());
    match instant(&source, SERIES_PER_LINE) {
        Err(EngineError::BadRequest(msg)) => assert!(
            msg.starts_with(
                "the series this query holds while it is evaluated need more than the 1048576 bytes all queries' series may hold (querier.max_inflight_series_bytes)"
            ),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(budget.in_use(), 0);
    assert!(budget.refused() >= 1);

    // Twenty series fit, and the query answers: each holds the 250 lines of one stream whose
    // number ends in one digit.
    let few = r#"max(count_over_time({app="a"} | regexp `^line (?P<l>\d+)` [2h]))"#;
    match instant(&source, few) {
        Ok(QueryValue::Vector(v)) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].value, (LINES / 20) as f64);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(budget.in_use(), 0);

    // With room for them all, the series-per-line query answers too.
    let roomy = Source::new(MemoryBudget::new(64 << 20));
    match instant(&roomy, SERIES_PER_LINE) {
        Ok(QueryValue::Vector(v)) => assert_eq!(v[0].value, 1.0),
        other => panic!("{other:?}"),
    }
    assert_eq!(roomy.memory.in_use(), 0);
}

#[test]
fn a_query_finding_the_budget_held_by_others_is_refused_as_busy() {
    let budget = MemoryBudget::new(64 << 20);
    let source = Source::new(budget.clone());
    // Other queries hold all but 100 KB.
    let mut others = budget.reservation();
    others.grow((64 << 20) - 100_000).unwrap();
    match instant(&source, SERIES_PER_LINE) {
        Err(EngineError::Busy(msg)) => assert!(
            msg.starts_with("queries in flight hold the memory their series may use: ")
                && msg.contains(" of 67108864 bytes are free (querier.max_inflight_series_bytes); try again later"),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(budget.in_use(), others.bytes());
    drop(others);
    assert!(matches!(
        instant(&source, SERIES_PER_LINE),
        Ok(QueryValue::Vector(_))
    ));
    assert_eq!(budget.in_use(), 0);
}

#[test]
fn samples_kept_per_line_are_charged_as_they_come() {
    // `quantile_over_time` keeps a sample of each of the 5,000 lines in its one series: about
    // 120 KB, past a budget of 100 KB. `count_over_time` keeps a total per step and fits.
    let budget = MemoryBudget::new(100_000);
    let source = Source::new(budget.clone());
    let per_line =
        r#"quantile_over_time(0.5, {app="a"} | regexp `(?P<n>\d+)$` | unwrap n [2h]) by (app)"#;
    match instant(&source, per_line) {
        Err(EngineError::BadRequest(msg)) => assert!(
            msg.starts_with(
                "the series this query holds while it is evaluated need more than the 100000 bytes"
            ),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(budget.in_use(), 0);
    let totals = r#"sum by (app) (count_over_time({app="a"} | regexp `(?P<n>\d+)$` [2h]))"#;
    match instant(&source, totals) {
        Ok(QueryValue::Vector(v)) => assert_eq!(v[0].value, LINES as f64),
        other => panic!("{other:?}"),
    }

    // With room for the samples, the quantile answers (the median of 0..5000 by Prometheus'
    // interpolation), and the budget is whole again afterwards.
    let roomy = Source::new(MemoryBudget::new(1 << 20));
    match instant(&roomy, per_line) {
        Ok(QueryValue::Vector(v)) => assert_eq!(v[0].value, 2_499.5),
        other => panic!("{other:?}"),
    }
    assert_eq!(roomy.memory.in_use(), 0);
}
