//! LogQL evaluation.
//!
//! The engine takes a parsed query (from `fjord-logql`), asks a [`DataSource`] for the blocks of
//! the matching streams, and evaluates the query over them: log pipelines for log queries,
//! range and vector aggregations and binary operations for metric queries.
//!
//! **Invariants:** the engine does no network or disk I/O of its own (only through the
//! `DataSource`); results are deterministic for the same data.

pub mod ip;
pub mod jsonscan;
pub mod labels_builder;
pub mod line_filter;
pub mod pattern;
pub mod query;
pub mod range_fns;
pub mod source;
pub mod value;

pub use query::{QueryRequest, execute};
pub use source::{DataSource, SelectedStream};
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
    #[error("request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed")]
    Timeout,
    /// Reading data failed: 500.
    #[error("{0}")]
    Storage(String),
}
