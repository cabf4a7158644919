//! The push endpoints (`/loki/api/v1/push`, legacy `/api/prom/push`): read the body, inflate and
//! decode it as its headers say, hand it to the distributor, answer as Loki does.
//!
//! The memory a push takes while it is in flight (its body as sent, the body decompressed, and
//! the decoded request) is charged to one [`MemoryBudget`] shared by all pushes, before it is
//! allocated (`distributor.max_inflight_push_bytes`). Body sizes alone do not bound it: many
//! pushes arrive at once, and a decoded entry takes 64 bytes for as few as 2 on the wire. A
//! push that finds the budget full gets 429, which every Loki client retries with backoff; one
//! that alone needs more than the whole budget gets 413. Loki has no such bound.
//!
//! A push of more than `VALIDATE_INLINE` (64K) entries is validated on dedicated push threads, so
//! the async worker that received it keeps serving other requests; smaller ones, such as a
//! 1 MiB batch of typical lines (about 4,500 entries), are validated inline.

#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fjord_model::memory_budget::{BudgetMetricNames, MemoryBudget, OverBudget, Reservation};
use fjord_model::push::{self as decode, DecodeError, Inflate};
use prometheus_client::registry::Registry;

use crate::handlers::{bad_request, read_body, tenant, text_error};
use crate::state::ApiState;

/// What a push may take.
#[derive(Debug)]
pub struct PushLimits {
    /// Largest accepted body as sent (compressed).
    pub max_recv_msg_size: u64,
    /// Largest accepted body after decompression.
    pub max_decompressed_size: u64,
    /// Memory all pushes in flight may take together.
    pub memory: Arc<MemoryBudget>,
}

impl PushLimits {
    /// Registers the memory budget's gauges and refusal counter in `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        self.memory.register_metrics(
            registry,
            BudgetMetricNames {
                in_use: (
                    "fjord_distributor_inflight_push_bytes",
                    "Memory the pushes in flight hold: bodies, decompressed bodies, decoded requests",
                ),
                limit: (
                    "fjord_distributor_inflight_push_bytes_limit",
                    "Memory all pushes in flight may hold (distributor.max_inflight_push_bytes)",
                ),
                refused: (
                    "fjord_distributor_push_memory_refused",
                    "Pushes refused because the memory of pushes in flight would pass its limit",
                ),
            },
        );
    }
}

pub async fn push_v1(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(state, headers, body, false).await
}

pub async fn push_legacy(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    push(state, headers, body, true).await
}

async fn push(state: Arc<ApiState>, headers: HeaderMap, body: Body, legacy: bool) -> Response {
    let Some(distributor) = state.distributor.clone() else {
        return text_error(
            StatusCode::NOT_FOUND,
            "this process does not run the distributor",
        );
    };
    let tenant = match tenant(&state, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    // Held until the distributor is done with the request: its lines are slices of the body.
    let mut memory = state.push.memory.reservation();
    let body = match read_body(body, state.push.max_recv_msg_size, &mut memory).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let req = match decode_body(&headers, body, legacy, &state.push, &mut memory) {
        Ok(r) => r,
        Err(r) => return r,
    };
    // Validation is CPU work in proportion to the push's entries, seconds for millions: a push
    // of more than `VALIDATE_INLINE` entries is validated on the push threads, leaving the async
    // workers free for other requests (readiness probes, queries). What follows is bounded by
    // the tenant's burst.
    let validated = if req.entry_count() <= VALIDATE_INLINE {
        distributor.validate(&tenant, req)
    } else {
        let (send, done) = tokio::sync::oneshot::channel();
        let (distributor, tenant) = (distributor.clone(), tenant.clone());
        PUSH_THREADS.spawn(move || {
            let _ = send.send(distributor.validate(&tenant, req));
        });
        match done.await {
            Ok(v) => v,
            Err(_) => {
                return text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "push failed: its validation did not finish",
                );
            }
        }
    };
    let reply = match validated {
        Ok(push) => distributor.ingest(&tenant, push).await,
        Err(reply) => reply,
    };
    drop(memory);
    if reply.status == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    text_error(
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
}

/// Entries a push may have and still be validated on the async worker that received it: 15
/// times a typical 1 MiB batch of 230-byte lines, a few milliseconds of work.
const VALIDATE_INLINE: usize = 64 << 10;

/// Threads (one per core) that validate the pushes too large to validate inline. Dedicated
/// threads rather than Tokio's blocking pool, whose changing threads each keep an allocator
/// heap: validating every push there cost 15 MiB of RSS in the ingest benchmark.
static PUSH_THREADS: std::sync::LazyLock<rayon::ThreadPool> = std::sync::LazyLock::new(|| {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("fjord-push-{i}"))
        .build()
        .expect("the push threads start")
});

/// Inflates and decodes `body` as the request's `Content-Encoding` and `Content-Type` say.
fn decode_body(
    headers: &HeaderMap,
    body: Bytes,
    legacy: bool,
    limits: &PushLimits,
    memory: &mut Reservation,
) -> Result<fjord_model::PushRequest, Response> {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let inflate = match header_text(header::CONTENT_ENCODING)
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "snappy" => None,
        "gzip" => Some(Inflate::Gzip),
        "deflate" => Some(Inflate::Deflate),
        other => {
            return Err(bad_request(format!(
                "Content-Encoding {other:?} not supported"
            )));
        }
    };
    let media = header_text(header::CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media.is_empty() {
        return Err(bad_request("mime: no media type"));
    }
    let body = match inflate {
        Some(kind) => Bytes::from(
            decode::inflate(&body, kind, limits.max_decompressed_size, memory)
                .map_err(decode_error)?,
        ),
        None => body,
    };
    let decoded = if media == "application/json" {
        if legacy {
            decode::decode_json_v0(&body, memory)
        } else {
            decode::decode_json(&body, memory)
        }
    } else {
        decode::decode_protobuf_snappy(&body, limits.max_decompressed_size, memory)
    };
    decoded.map_err(decode_error)
}

/// The answer to a body that could not be decoded.
fn decode_error(e: DecodeError) -> Response {
    match e {
        DecodeError::TooLarge { size, limit } => text_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body too large: {size} bytes, limit: {limit} bytes"),
        ),
        DecodeError::Memory(over) => refused("decoding", over),
        e => bad_request(e.to_string()),
    }
}

/// The answer to a push the memory budget cannot hold while doing `step`: 413 when it never
/// could, 429 (retried by clients) when other pushes hold the memory now.
pub(crate) fn refused(step: &str, over: OverBudget) -> Response {
    let status = match over {
        OverBudget::Never { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        OverBudget::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
    };
    text_error(
        status,
        format!(
            "push refused: {step} {over} for pushes in flight (distributor.max_inflight_push_bytes)"
        ),
    )
}
