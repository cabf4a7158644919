//! Request handlers: read the request the way Loki does, call the component, write Loki's
//! answer. Errors are plain text with Loki's status codes and messages.

// Helpers return `Result<_, Response>` so a failed step is the reply itself; boxing the
// response would only add noise on paths that end the request anyway.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fjord_engine::{EngineError, QueryRequest};
use fjord_model::memory_budget::Reservation;
use fjord_model::{LabelMatcher, TenantId};
use http_body_util::BodyExt;

use crate::params::{Params, now_ns};
use crate::push;
use crate::render;
use crate::state::ApiState;

/// A plain-text error response, as Go's `http.Error` writes it.
pub fn text_error(status: StatusCode, msg: impl AsRef<str>) -> Response {
    let mut body = msg.as_ref().to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub(crate) fn bad_request(msg: impl AsRef<str>) -> Response {
    text_error(StatusCode::BAD_REQUEST, msg)
}

fn json(body: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

fn engine_error(e: EngineError) -> Response {
    let status = match e {
        EngineError::BadRequest(_) => StatusCode::BAD_REQUEST,
        EngineError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        EngineError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
        EngineError::Execution(_) | EngineError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text_error(status, e.to_string())
}

/// The request's tenant: `fake` without auth, else the `X-Scope-OrgID` header.
pub(crate) fn tenant(state: &ApiState, headers: &HeaderMap) -> Result<TenantId, Response> {
    if !state.auth_enabled {
        return Ok(state.default_tenant.clone());
    }
    let Some(h) = headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
    else {
        return Err(text_error(StatusCode::UNAUTHORIZED, "no org id"));
    };
    TenantId::from_header_single(h).map_err(|e| text_error(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Reads a body of up to `limit` bytes (413 with Loki's message beyond it), charging its buffer
/// to `memory` before allocating it: once at its `Content-Length`, or as it doubles while a
/// chunked body arrives.
pub(crate) async fn read_body(
    mut body: Body,
    limit: u64,
    memory: &mut Reservation,
) -> Result<Bytes, Response> {
    let too_large = || {
        text_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: more than {limit} bytes, limit: {limit} bytes"),
        )
    };
    let refused = |e| push::refused("reading the body", e);
    let mut buf = Vec::new();
    if let Some(length) = body.size_hint().exact() {
        if length > limit {
            return Err(too_large());
        }
        memory
            .reserve_in(&mut buf, length as usize, length as usize)
            .map_err(refused)?;
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| bad_request(format!("reading request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if (buf.len() + data.len()) as u64 > limit {
            return Err(too_large());
        }
        memory
            .reserve_in(&mut buf, data.len(), limit as usize)
            .map_err(refused)?;
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

/// Merges the query string with a form body (POST).
async fn read_params(
    method: &Method,
    headers: &HeaderMap,
    query: Option<String>,
    body: Body,
) -> Result<Params, Response> {
    let form = if method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
    {
        // Form bodies of queries are small; they draw on no shared budget.
        Some(read_body(body, 10 << 20, &mut Reservation::unbounded()).await?)
    } else {
        None
    };
    Ok(Params::parse(query.as_deref(), form.as_deref()))
}

// ---------------------------------------------------------------- queries

pub async fn query_range(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let params = match read_params(&method, &headers, q, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = now_ns();
    let parsed = (|| {
        let (start, end) = params.bounds(now)?;
        crate::params::check_range_order(start, end)?;
        let limit = params.limit()?;
        let forward = params.forward()?;
        let step = params.range_step(start, end)?;
        let interval = params.interval()?;
        if interval < 0 {
            return Err(crate::params::ParamError("interval must be >= 0".into()));
        }
        Ok(QueryRequest {
            query: params.get("query").to_string(),
            start,
            end,
            step,
            interval,
            limit,
            forward,
            instant: false,
            categorize: false,
        })
    })();
    match parsed {
        Ok(req) => run_query(state, headers, req).await,
        Err(e) => bad_request(e.0),
    }
}

pub async fn query_instant(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let params = match read_params(&method, &headers, q, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let parsed = (|| {
        let limit = params.limit()?;
        let time = params.time(now_ns())?;
        let forward = params.forward()?;
        Ok::<_, crate::params::ParamError>(QueryRequest {
            query: params.get("query").to_string(),
            start: time,
            end: time,
            step: 0,
            interval: 0,
            limit,
            forward,
            instant: true,
            categorize: false,
        })
    })();
    match parsed {
        Ok(req) => run_query(state, headers, req).await,
        Err(e) => bad_request(e.0),
    }
}

async fn run_query(state: Arc<ApiState>, headers: HeaderMap, req: QueryRequest) -> Response {
    let Some(querier) = state.querier.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the querier",
        );
    };
    let tenant = match tenant(&state, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let categorize = headers
        .get("x-loki-response-encoding-flags")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|f| f.trim() == "categorize-labels"));
    let req = QueryRequest { categorize, ..req };
    let started = Instant::now();
    let source = querier.source(tenant);
    let limits = state.limits.clone();
    let timeout = limits.query_timeout;
    let fut = fjord_engine::execute(&source, &req, &limits);
    let result = if timeout.is_zero() {
        fut.await
    } else {
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(EngineError::Timeout),
        }
    };
    match result {
        Ok((value, mut stats)) => {
            stats.exec_time_secs = started.elapsed().as_secs_f64();
            json(render::query_response(&value, &stats, categorize))
        }
        Err(e) => engine_error(e),
    }
}

// ---------------------------------------------------------------- metadata

/// Matchers of an optional selector parameter; `{}` or empty means all streams.
fn selector(s: &str) -> Result<Vec<LabelMatcher>, Response> {
    let t = s.trim();
    if t.is_empty() || t == "{}" {
        return Ok(Vec::new());
    }
    fjord_logql::parse_matchers(t).map_err(|e| bad_request(e.to_string()))
}

pub async fn labels(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    metadata(state, method, headers, q, body, None).await
}

pub async fn label_values(
    State(state): State<Arc<ApiState>>,
    Path(name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    metadata(state, method, headers, q, body, Some(name)).await
}

async fn metadata(
    state: Arc<ApiState>,
    method: Method,
    headers: HeaderMap,
    q: Option<String>,
    body: Body,
    name: Option<String>,
) -> Response {
    let Some(querier) = state.querier.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the querier",
        );
    };
    let tenant = match tenant(&state, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let params = match read_params(&method, &headers, q, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (start, end) = match params.bounds(now_ns()) {
        Ok(b) => b,
        Err(e) => return bad_request(e.0),
    };
    let matchers = match selector(params.get("query")) {
        Ok(m) => m,
        Err(r) => return r,
    };
    // Metadata ranges include `end`.
    let end = end.saturating_add(1);
    let res = match &name {
        None => querier.label_names(&tenant, &matchers, start, end).await,
        Some(n) => {
            querier
                .label_values(&tenant, n, &matchers, start, end)
                .await
        }
    };
    match res {
        Ok(v) => json(render::string_list(&v)),
        Err(e) => engine_error(e),
    }
}

pub async fn series(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let Some(querier) = state.querier.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the querier",
        );
    };
    let tenant = match tenant(&state, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let params = match read_params(&method, &headers, q, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (start, end) = match params.bounds(now_ns()) {
        Ok(b) => b,
        Err(e) => return bad_request(e.0),
    };
    let mut raw = params.all("match[]");
    raw.extend(params.all("match"));
    let mut selectors = Vec::with_capacity(raw.len());
    for s in raw {
        match selector(s) {
            Ok(m) => selectors.push(m),
            Err(r) => return r,
        }
    }
    match querier
        .series(&tenant, &selectors, start, end.saturating_add(1))
        .await
    {
        Ok(v) => json(render::series_list(&v)),
        Err(e) => engine_error(e),
    }
}

/// `/loki/api/v1/index/volume` and `/index/volume_range`.
async fn volume(
    state: Arc<ApiState>,
    method: Method,
    headers: HeaderMap,
    q: Option<String>,
    body: Body,
    range: bool,
) -> Response {
    use fjord_engine::volume::{self, AggregateBy};
    let Some(querier) = state.querier.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the querier",
        );
    };
    let tenant = match tenant(&state, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let params = match read_params(&method, &headers, q, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !state.limits.volume_enabled {
        return text_error(StatusCode::NOT_FOUND, "volume disabled");
    }
    let (start, end) = match params.bounds(now_ns()) {
        Ok(b) => b,
        Err(e) => return bad_request(e.0),
    };
    let matchers = match params.get("query") {
        "" => return bad_request("query is required"),
        s => match selector(s) {
            Ok(m) => m,
            Err(r) => return r,
        },
    };
    let by = match params.get("aggregateBy") {
        "" | "series" => AggregateBy::Series,
        "labels" => AggregateBy::Labels,
        _ => return bad_request("invalid aggregation option"),
    };
    let limit = match params.get("limit") {
        "" | "0" => 100,
        l => match l.parse::<usize>() {
            Ok(n) => n.min(state.limits.volume_max_series.max(1)),
            Err(_) => return bad_request(format!("strconv.Atoi: parsing {l:?}: invalid syntax")),
        },
    };
    let targets: Vec<String> = params
        .get("targetLabels")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let source = querier.source(tenant);
    let buckets = if range {
        let step = match crate::params::check_range_order(start, end)
            .and_then(|()| params.range_step(start, end))
        {
            Ok(s) => s,
            Err(e) => return bad_request(e.0),
        };
        volume::volume_range(&source, &matchers, start, end, step, &targets, by, limit).await
    } else {
        volume::volume(&source, &matchers, start, end, &targets, by, limit)
            .await
            .map(|v| vec![(end, v)])
    };
    match buckets {
        Ok(b) => json(render::volume_response(&b)),
        Err(e) => engine_error(e),
    }
}

pub async fn index_volume(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    volume(state, method, headers, q, body, false).await
}

pub async fn index_volume_range(
    State(state): State<Arc<ApiState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    volume(state, method, headers, q, body, true).await
}

pub async fn format_query(
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Response {
    let params = match read_params(&method, &headers, q, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match fjord_logql::parse_expr(params.get("query")) {
        Ok(expr) => {
            let mut out = br#"{"status":"success","data":"#.to_vec();
            crate::json::write_str(&mut out, fjord_logql::pretty(&expr).as_bytes());
            out.push(b'}');
            json(out)
        }
        Err(e) => bad_request(e.to_string()),
    }
}

// ---------------------------------------------------------------- operations

pub async fn ready(State(state): State<Arc<ApiState>>) -> Response {
    if state.stopping.load(Ordering::Acquire) {
        return text_error(StatusCode::SERVICE_UNAVAILABLE, "Application is stopping");
    }
    (StatusCode::OK, "ready\n").into_response()
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {e}"),
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

pub async fn config(State(state): State<Arc<ApiState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        state.config_yaml.clone(),
    )
        .into_response()
}

pub async fn buildinfo(State(state): State<Arc<ApiState>>) -> Response {
    let b = &state.build;
    let body = serde_json::json!({
        "version": b.loki_compatible_version,
        "revision": b.revision,
        "branch": b.branch,
        "buildUser": "fjord",
        "buildDate": b.build_date,
        "goVersion": format!("fjord {}", b.fjord_version),
    });
    json(body.to_string().into_bytes())
}

pub async fn services(State(state): State<Arc<ApiState>>) -> Response {
    let state_word = if state.stopping.load(Ordering::Acquire) {
        "Stopping"
    } else {
        "Running"
    };
    let body: String = state
        .services
        .iter()
        .map(|s| format!("{s} => {state_word}\n"))
        .collect();
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

pub async fn flush(State(state): State<Arc<ApiState>>) -> Response {
    let Some(ing) = state.ingester.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the ingester",
        );
    };
    let stats = ing.flush(true).await;
    if stats.failures > 0 {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "{} flush batches failed; they will be retried",
                stats.failures
            ),
        );
    }
    // Everything is in the store now: a checkpoint truncates the WAL to what is still open.
    if let Err(e) = ing.checkpoint().await {
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("flushed, but the WAL checkpoint failed: {e}"),
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /compactor/run` (Fjord's own): one compaction round now, compacting every period not
/// compacted yet however recently it was written; answers with what the round did (500 when
/// some period failed; the others are done).
pub async fn run_compaction(State(state): State<Arc<ApiState>>) -> Response {
    let Some(compactor) = state.compactor.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the compactor",
        );
    };
    let report = compactor.run_round(true).await;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (status, axum::Json(report)).into_response()
}

pub async fn not_found() -> Response {
    text_error(StatusCode::NOT_FOUND, "404 page not found")
}
