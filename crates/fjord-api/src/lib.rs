//! The Loki-compatible HTTP API.
//!
//! [`router`] maps Loki's endpoints onto the components a process runs: push to the
//! distributor, queries and metadata to the querier, `/flush` to the ingester, plus the
//! operational endpoints. Every request is measured in `loki_request_duration_seconds`.
//!
//! **Invariant:** this is the only crate that knows HTTP and the JSON response shapes; the
//! components below it speak Rust types.

pub mod handlers;
pub mod http_metrics;
pub mod json;
pub mod params;
pub mod push;
pub mod render;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use http_metrics::HttpMetrics;
pub use push::PushLimits;
pub use state::{ApiState, BuildInfo};

/// Builds the router. `request_metrics` must be registered in `state.registry` already.
pub fn router(state: Arc<ApiState>, request_metrics: HttpMetrics) -> Router {
    use handlers::*;
    let api = Router::new()
        .route("/loki/api/v1/push", post(push::push_v1))
        .route("/api/prom/push", post(push::push_legacy))
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/query", get(query_instant).post(query_instant))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route("/loki/api/v1/label", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route("/api/prom/label", get(labels))
        .route("/api/prom/label/{name}/values", get(label_values))
        .route("/api/prom/series", get(series).post(series))
        .route(
            "/loki/api/v1/index/volume",
            get(index_volume).post(index_volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(index_volume_range).post(index_volume_range),
        )
        .route(
            "/loki/api/v1/format_query",
            get(format_query).post(format_query),
        )
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/config", get(config))
        .route("/services", get(services))
        .route("/flush", get(flush).post(flush))
        .route("/compactor/run", post(run_compaction))
        .fallback(not_found)
        // Bodies are read with explicit limits in the handlers (Loki's sizes and messages).
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    api.layer(axum::middleware::from_fn_with_state(
        request_metrics,
        http_metrics::track,
    ))
}
