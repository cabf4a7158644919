//! LogQL evaluation.
//!
//! The engine takes a parsed query (from `fjord-logql`), asks a [`DataSource`] for the blocks of
//! the matching streams, and evaluates the query over them: log pipelines for log queries,
//! range and vector aggregations and binary operations for metric queries.
//!
//! Modules, from the bottom up: [`pattern`], [`ip`] and [`line_filter`] are the
//! matching primitives; [`labels_builder`] holds an entry's labels through a pipeline;
//! [`stages`] and [`template_stage`] are the pipeline stages; [`compile`] turns the AST into
//! stages; [`scan`] prepares a stream's blocks, decoded through a [`block_cache`] when the
//! data source offers one; [`field_columns`] lets queries drop lines from a block's
//! parsed fields without parsing them, and [`column_labels`] lets metric queries read the
//! labels they need from those fields instead of parsing; [`logquery`] and [`metric`] evaluate the two
//! kinds of query (with [`range_fns`] for the `*_over_time` functions, [`step_totals`] for
//! the additive ones, and [`series_slots`] holding a range aggregation's series within its
//! bounds); [`query`] is the entry point.
//!
//! **Invariants:** the engine does no network or disk I/O of its own (only through the
//! `DataSource`); CPU-heavy evaluation runs on the blocking pool, never on the async reactor;
//! results are deterministic for the same data.

pub mod block_cache;
pub mod column_labels;
pub mod compile;
pub mod field_columns;
pub mod ip;
pub mod label_regex;
pub mod labels_builder;
pub mod line_filter;
pub mod logquery;
pub mod metric;
pub mod pattern;
pub mod query;
pub mod range_fns;
pub mod read_slices;
pub mod scan;
pub mod series_slots;
pub mod source;
pub mod stages;
pub mod step_totals;
pub mod template_stage;
pub mod value;
pub mod volume;

pub use block_cache::BlockCache;
pub use query::{QueryRequest, execute};
pub use source::{DataSource, DataSpan, SelectedStream};
pub use value::{LogEntry, QueryStats, QueryValue, Sample, Series, StreamResult};

/// Why a query failed; the API maps each kind to an HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The request is wrong (bad query, limits exceeded): 400.
    #[error("{0}")]
    BadRequest(String),
    /// Evaluation failed in a way Loki reports as a server error (e.g. vector matching): 500.
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout: 504.
    #[error(
        "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed"
    )]
    Timeout,
    /// Reading data failed: 500.
    #[error("{0}")]
    Storage(String),
    /// Queries in flight hold the resources this one needs; it may succeed later: 429.
    #[error("{0}")]
    Busy(String),
}

/// Runs `work` on the blocking pool, so a query's evaluation does not hold up the runtime's
/// threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| EngineError::Execution(format!("evaluation task failed: {e}")))?
}
