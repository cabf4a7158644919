//! The distributor: validates a push, applies the tenant's ingestion rate, and hands valid
//! streams to the ingester, answering with Loki's status codes and messages.
//!
//! Status precedence follows Loki: an empty request is 422; a tenant over its rate gets 429 and
//! nothing is ingested; otherwise valid entries are ingested, and the answer is the ingester's
//! refusal if any (429 or 400), else the validation errors (400), else 204. Validation errors are
//! grouped by message as Loki groups them (`grouped_errors`).

use std::collections::HashMap;
use std::sync::Arc;

use fjord_model::limits::Limits;
use fjord_model::rate::TokenBucket;
use fjord_model::service::{IngesterService, ValidatedStream};
use fjord_model::{PushRequest, TenantId};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use crate::grouped_errors::GroupedErrors;
use crate::levels;
use crate::metrics::{DiscardTally, DistributorMetrics, ReceivedBytesLabels, ReceivedLinesLabels};
use crate::validation::{self, TimeBounds};

/// What the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReply {
    pub status: u16,
    /// Plain-text body; empty for 204.
    pub body: String,
}

impl PushReply {
    fn ok() -> Self {
        PushReply {
            status: 204,
            body: String::new(),
        }
    }

    fn error(status: u16, body: impl Into<String>) -> Self {
        PushReply {
            status,
            body: body.into(),
        }
    }

    /// A 400 with `message`, newline terminated.
    fn invalid(message: String) -> Self {
        PushReply::error(400, message + "\n")
    }
}

/// A validated push: the streams that go on to the ingester, and the grouped message about the
/// entries that did not.
#[derive(Debug)]
pub struct ValidatedPush {
    streams: Vec<ValidatedStream>,
    validation_error: Option<String>,
    bytes: usize,
    lines: usize,
    metadata_bytes: usize,
}

pub struct Distributor {
    limits: Arc<Limits>,
    ingester: Arc<dyn IngesterService>,
    tenant_rates: Mutex<HashMap<TenantId, TokenBucket>>,
    metrics: DistributorMetrics,
    retention_hours: String,
}

impl Distributor {
    pub fn new(
        limits: Arc<Limits>,
        ingester: Arc<dyn IngesterService>,
        registry: &mut Registry,
    ) -> Self {
        let retention_hours = (limits.retention_period.as_secs() / 3600).to_string();
        Distributor {
            limits,
            ingester,
            tenant_rates: Mutex::new(HashMap::new()),
            metrics: DistributorMetrics::register(registry),
            retention_hours,
        }
    }

    fn now_ns() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    }

    /// Validates a push: the first half of handling it, CPU work in proportion to its entries
    /// (seconds for millions) with no waiting, so callers run it where it stalls no other
    /// request. `Err` is the whole answer when nothing goes on to the ingester.
    pub fn validate(
        &self,
        tenant: &TenantId,
        req: PushRequest,
    ) -> Result<ValidatedPush, PushReply> {
        if req.streams.is_empty() {
            return Err(PushReply::error(
                422,
                "error at least one valid stream is required for ingestion",
            ));
        }
        let limits = &*self.limits;
        let bounds = TimeBounds::new(Self::now_ns(), limits);
        let mut errors = GroupedErrors::default();
        let mut discarded = DiscardTally::default();
        let mut valid: Vec<ValidatedStream> = Vec::with_capacity(req.streams.len());
        let (mut valid_bytes, mut valid_lines, mut valid_md_bytes) = (0usize, 0usize, 0usize);
        let discover_levels = limits.discover_log_levels && limits.allow_structured_metadata;

        for stream in req.streams {
            let mut labels =
                match validation::validate_labels(&stream.labels, &stream.entries, limits) {
                    Ok(l) => l,
                    Err(inv) => {
                        discarded.add(inv.reason, inv.entries, inv.bytes);
                        errors.add(inv.message);
                        continue;
                    }
                };
            validation::discover_service_name(&mut labels, limits);
            // Valid entries are moved to the front of the decoded vector and the rest cut off,
            // so validation allocates nothing (the push's memory was charged as decoded).
            let mut entries = stream.entries;
            let mut kept = 0;
            // Loki's increment_duplicate_timestamp compares with the original timestamp of
            // the previous entry as well as its (possibly incremented) stored one.
            let mut prev_original_ts = i64::MIN;
            let levels = discover_levels.then(|| levels::LevelDetector::new(&labels));
            for i in 0..entries.len() {
                let (done, rest) = entries.split_at_mut(i);
                let e = &mut rest[0];
                if let Err(inv) = validation::validate_entry(e, &stream.labels, bounds, limits) {
                    discarded.add(inv.reason, inv.entries, inv.bytes);
                    errors.add(inv.message);
                    continue;
                }
                if let Some(levels) = &levels {
                    levels.add(e);
                }
                if limits.increment_duplicate_timestamp {
                    if let Some(prev) = done[..kept].last() {
                        if prev.line != e.line && (e.ts == prev_original_ts || e.ts == prev.ts) {
                            e.ts = prev.ts + 1;
                        } else {
                            prev_original_ts = e.ts;
                        }
                    } else {
                        prev_original_ts = e.ts;
                    }
                }
                valid_bytes += e.accounted_bytes();
                valid_md_bytes += e.metadata_bytes();
                entries.swap(kept, i);
                kept += 1;
            }
            entries.truncate(kept);
            if !entries.is_empty() {
                valid_lines += entries.len();
                valid.push(ValidatedStream { labels, entries });
            }
        }

        discarded.record(&self.metrics, tenant.as_str(), &self.retention_hours);
        let validation_error = errors.message();
        if valid.is_empty() {
            return Err(validation_error.map_or_else(PushReply::ok, PushReply::invalid));
        }
        Ok(ValidatedPush {
            streams: valid,
            validation_error,
            bytes: valid_bytes,
            lines: valid_lines,
            metadata_bytes: valid_md_bytes,
        })
    }

    /// The second half of handling a push: applies the tenant's ingestion rate to its valid
    /// entries and hands them to the ingester. Its work is bounded by the rate's burst.
    pub async fn ingest(&self, tenant: &TenantId, push: ValidatedPush) -> PushReply {
        let limits = &*self.limits;
        let ValidatedPush {
            streams: valid,
            validation_error,
            bytes: valid_bytes,
            lines: valid_lines,
            metadata_bytes: valid_md_bytes,
        } = push;
        if !self.take_rate(tenant, valid_bytes) {
            self.metrics.discard(
                "rate_limited",
                tenant.as_str(),
                &self.retention_hours,
                valid_lines,
                valid_bytes,
            );
            return PushReply::error(
                429,
                format!(
                    "ingestion rate limit exceeded for user {tenant} (limit: {} bytes/sec) while attempting to ingest '{valid_lines}' lines totaling '{valid_bytes}' bytes, reduce log volume or contact your Loki administrator to see if the limit can be increased\n",
                    (limits.ingestion_rate_mb * 1024.0 * 1024.0) as u64
                ),
            );
        }

        let outcome = match self.ingester.push(tenant, valid).await {
            Ok(o) => o,
            Err(e) => return PushReply::error(500, format!("{e}\n")),
        };
        let (rejected_lines, rejected_bytes): (usize, usize) = outcome
            .rejections
            .iter()
            .fold((0, 0), |(l, b), r| (l + r.entries, b + r.bytes));
        for r in &outcome.rejections {
            self.metrics.discard(
                r.reason,
                tenant.as_str(),
                &self.retention_hours,
                r.entries,
                r.bytes,
            );
        }
        self.count_received(
            tenant,
            valid_lines - rejected_lines.min(valid_lines),
            valid_bytes - rejected_bytes.min(valid_bytes),
            valid_md_bytes,
        );
        if let Some(r) = outcome.rejections.iter().find(|r| r.status == 429) {
            return PushReply::error(429, format!("{}\n", r.message));
        }
        if !outcome.rejections.is_empty() {
            let msgs: Vec<String> = validation_error
                .into_iter()
                .chain(outcome.rejections.into_iter().map(|r| r.message))
                .collect();
            return PushReply::invalid(msgs.join("\n"));
        }
        validation_error.map_or_else(PushReply::ok, PushReply::invalid)
    }

    fn take_rate(&self, tenant: &TenantId, bytes: usize) -> bool {
        let rate = self.limits.ingestion_rate_mb * 1024.0 * 1024.0;
        let burst = (self.limits.ingestion_burst_size_mb * 1024.0 * 1024.0).max(rate);
        let mut buckets = self.tenant_rates.lock();
        buckets
            .entry(tenant.clone())
            .or_insert_with(|| TokenBucket::new(rate, burst))
            .try_take(bytes as f64)
    }

    fn count_received(&self, tenant: &TenantId, lines: usize, bytes: usize, md_bytes: usize) {
        let b = ReceivedBytesLabels {
            tenant: tenant.to_string(),
            retention_hours: self.retention_hours.clone(),
            is_internal_stream: "false".into(),
            policy: String::new(),
            format: "loki".into(),
        };
        self.metrics
            .bytes_received
            .get_or_create(&b)
            .inc_by(bytes as u64);
        self.metrics
            .structured_metadata_bytes_received
            .get_or_create(&b)
            .inc_by(md_bytes as u64);
        let l = ReceivedLinesLabels {
            tenant: tenant.to_string(),
            is_internal_stream: "false".into(),
            policy: String::new(),
            format: "loki".into(),
        };
        self.metrics
            .lines_received
            .get_or_create(&l)
            .inc_by(lines as u64);
    }
}
