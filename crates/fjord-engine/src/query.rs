//! The engine's entry point: one query request, evaluated against a data source.

use fjord_model::limits::Limits;

use crate::{DataSource, EngineError, QueryStats, QueryValue};

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
}

/// Parses and evaluates a query.
pub async fn execute(source: &dyn DataSource, req: &QueryRequest, limits: &Limits) -> Result<(QueryValue, QueryStats), EngineError> {
    let _ = (source, limits);
    Err(EngineError::BadRequest(format!("query evaluation is not built yet: {}", req.query)))
}
