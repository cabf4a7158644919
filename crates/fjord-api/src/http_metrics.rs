//! `loki_request_duration_seconds` and `loki_inflight_requests`, labelled by Loki's route names
//! (`loki_api_v1_push`, `loki_api_v1_label_name_values`, …) so request dashboards work.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status_code: String,
    pub ws: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InflightLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone)]
pub struct HttpMetrics {
    duration: Family<RequestLabels, Histogram>,
    inflight: Family<InflightLabels, Gauge>,
}

impl HttpMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0,
            ])
        });
        let inflight = Family::<InflightLabels, Gauge>::default();
        r.register(
            "loki_request_duration_seconds",
            "Time (in seconds) spent serving HTTP requests",
            duration.clone(),
        );
        r.register(
            "loki_inflight_requests",
            "Current number of inflight requests",
            inflight.clone(),
        );
        HttpMetrics { duration, inflight }
    }
}

/// Loki's route name for a path template: `/loki/api/v1/label/{name}/values` →
/// `loki_api_v1_label_name_values`.
pub fn route_name(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    for c in template.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && c != '{' && c != '}' {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

impl HttpMetrics {
    fn inflight(&self, method: &str, route: &str) -> Gauge {
        self.inflight
            .get_or_create(&InflightLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .clone()
    }

    fn observe(&self, labels: &RequestLabels, secs: f64) {
        self.duration.get_or_create(labels).observe(secs);
    }
}

/// Middleware recording each request.
pub async fn track(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| route_name(p.as_str()))
        .unwrap_or_else(|| "other".into());
    let method = req.method().to_string();
    let ws = req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let inflight = m.inflight(&method, &route);
    inflight.inc();
    let started = Instant::now();
    let resp = next.run(req).await;
    inflight.dec();
    let labels = RequestLabels {
        method,
        route,
        status_code: resp.status().as_u16().to_string(),
        ws: ws.to_string(),
    };
    m.observe(&labels, started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_match_loki() {
        assert_eq!(route_name("/loki/api/v1/push"), "loki_api_v1_push");
        assert_eq!(
            route_name("/loki/api/v1/label/{name}/values"),
            "loki_api_v1_label_name_values"
        );
        assert_eq!(route_name("/api/prom/push"), "api_prom_push");
        assert_eq!(route_name("/ready"), "ready");
    }
}
