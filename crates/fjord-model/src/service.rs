//! Service contracts between components.
//!
//! In one process (`--target all`) the distributor and querier hold the ingester behind these
//! traits; when components run as separate processes the same traits are implemented by
//! network clients. Everything crossing them is plain data: label sets, entries, time bounds
//! and encoded blocks (`Bytes` in the fjord-chunk block format), so they serialize directly.

use async_trait::async_trait;
use bytes::Bytes;

use crate::push::Entry;
use crate::{LabelMatcher, Labels, TenantId};

/// A stream's entries after the distributor's validation: parsed labels, accepted entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedStream {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

/// Why an ingester refused some entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status class the client should see (400 or 429).
    pub status: u16,
    /// Loki's reason label for `loki_discarded_samples_total`.
    pub reason: &'static str,
    pub message: String,
    pub entries: usize,
    pub bytes: usize,
}

/// What became of a push at an ingester.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    pub accepted_entries: usize,
    pub rejections: Vec<Rejection>,
}

/// A time-bounded stream selection: matchers and `[start, end)` in Unix ns.
#[derive(Debug, Clone)]
pub struct SelectRequest {
    pub matchers: Vec<LabelMatcher>,
    pub start: i64,
    pub end: i64,
}

/// The data one source holds for one stream: encoded blocks that may overlap in time and with
/// blocks from other sources (readers merge and de-duplicate).
#[derive(Debug, Clone)]
pub struct StreamBlocks {
    pub labels: Labels,
    pub blocks: Vec<Bytes>,
}

/// A failure of a remote or local service call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The ingester as seen by distributors (writes) and queriers (reads of unflushed data).
#[async_trait]
pub trait IngesterService: Send + Sync {
    /// Appends entries; returns once they are durable in the write-ahead log.
    async fn push(
        &self,
        tenant: &TenantId,
        streams: Vec<ValidatedStream>,
    ) -> Result<PushOutcome, ServiceError>;

    /// Blocks of streams matching the request that this ingester holds in memory.
    async fn select(
        &self,
        tenant: &TenantId,
        req: &SelectRequest,
    ) -> Result<Vec<StreamBlocks>, ServiceError>;

    /// Label sets of streams matching the request that this ingester holds in memory.
    async fn series(
        &self,
        tenant: &TenantId,
        req: &SelectRequest,
    ) -> Result<Vec<Labels>, ServiceError>;
}
