//! The agent's own HTTP endpoint: `/metrics` (Prometheus text), `/ready` (200 once a file is
//! being tailed, as Promtail), `/targets` (an HTML page, or JSON with `Accept:
//! application/json` or `?format=json`) and `/api/v1/targets` (JSON).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::metrics::Metrics;
use crate::targets::TargetsView;

/// What the handlers read.
pub struct ServerState {
    pub metrics: Arc<Metrics>,
    pub targets: Arc<TargetsView>,
    pub health_check_target: bool,
}

/// The router, under `prefix` (`server.http_path_prefix`).
pub fn router(state: Arc<ServerState>, prefix: &str) -> Router {
    let r = Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .route("/targets", get(targets))
        .route("/api/v1/targets", get(targets_json))
        .route(
            "/",
            get(|| async {
                Html("<a href=\"targets\">targets</a> <a href=\"metrics\">metrics</a>")
            }),
        )
        .with_state(state);
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        r
    } else {
        Router::new().nest(prefix, r)
    }
}

async fn metrics(State(s): State<Arc<ServerState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}

async fn ready(State(s): State<Arc<ServerState>>) -> Response {
    if !s.health_check_target || s.targets.ready() {
        (StatusCode::OK, "Ready").into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Not ready: Unable to find any logs to tail. Please verify permissions, volumes, scrape_config, etc.",
        )
            .into_response()
    }
}

fn json(s: &ServerState) -> Response {
    let jobs = s.targets.jobs.read().clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&serde_json::json!({"status": "success", "data": jobs}))
            .unwrap_or_default(),
    )
        .into_response()
}

async fn targets_json(State(s): State<Arc<ServerState>>) -> Response {
    json(&s)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn targets(
    State(s): State<Arc<ServerState>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let wants_json = q.get("format").is_some_and(|f| f == "json")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return json(&s);
    }
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fjord agent targets</title>\
         <style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:2em}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
         .ok{color:#197a19}.no{color:#a11}code{font-size:90%}</style></head><body><h1>Targets</h1>",
    );
    for job in s.targets.jobs.read().iter() {
        html.push_str(&format!(
            "<h2>{} <small>({} active, {} dropped)</small></h2><table><tr><th>State</th><th>Labels</th><th>Path</th><th>Files</th></tr>",
            esc(&job.job),
            job.active.len(),
            job.dropped
        ));
        for t in &job.active {
            let labels: Vec<String> = t
                .labels
                .iter()
                .map(|(k, v)| format!("{}=\"{}\"", esc(k), esc(v)))
                .collect();
            html.push_str(&format!(
                "<tr><td class=\"{}\">{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                if t.ready { "ok" } else { "no" },
                if t.ready { "ready" } else { "no files" },
                labels.join(", "),
                esc(&t.path),
                t.files.iter().map(|f| format!("<code>{}</code>", esc(f))).collect::<Vec<_>>().join("<br>")
            ));
        }
        html.push_str("</table>");
    }
    html.push_str("</body></html>");
    Html(html).into_response()
}
