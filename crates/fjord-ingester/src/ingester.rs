//! The ingester: accepts validated streams, makes them durable in the WAL, keeps them in memory
//! until they are flushed to the store, and answers queries for what it holds.
//!
//! Write path of one push: take the checkpoint gate (shared), decide per entry whether the
//! stream accepts it (stream limit, per-stream rate, out-of-order window), append the accepted
//! entries to the WAL and wait for it, then apply them to the streams in memory.
//!
//! **Invariants:**
//! - A push is acknowledged only after its WAL record is written (and fsynced, per policy).
//! - A checkpoint rotates the WAL while holding the gate exclusively, so no push is between its
//!   WAL append and its memory apply at that instant: the snapshot taken then holds exactly
//!   what the segments up to the rotation hold, and those segments can be deleted.
//! - A chunk leaves memory only after the store acknowledged it (segment and index durable).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use fjord_chunk::EncodedBlock;
use fjord_model::limits::Limits;
use fjord_model::matcher::matches_all;
use fjord_model::rate::TokenBucket;
use fjord_model::service::{
    IngesterService, PushOutcome, Rejection, SelectRequest, ServiceError, StreamBlocks,
    ValidatedStream,
};
use fjord_model::{Entry, LabelMatcher, Labels, TenantId};
use fjord_store::{FlushChunk, Store};
use parking_lot::{Mutex, RwLock};
use prometheus_client::registry::Registry;

use crate::config::IngesterConfig;
use crate::metrics::IngesterMetrics;
use crate::stream::{CloseReason, CutPolicy, Stream};
use crate::wal::record::{self, BlockState, Record};
use crate::wal::{self, Wal};

type StreamRef = Arc<Mutex<Stream>>;

#[derive(Default)]
struct Tenant {
    streams: RwLock<HashMap<Labels, StreamRef>>,
}

/// Why the ingester could not take a push.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingester is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Wal(std::io::Error),
}

/// Why the ingester could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("invalid ingester config: {0}")]
    Config(String),
    #[error(transparent)]
    Replay(#[from] wal::ReplayError),
    #[error("opening the WAL: {0}")]
    Wal(std::io::Error),
}

/// What one flush cycle did.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlushStats {
    pub chunks: usize,
    pub bytes: u64,
    pub failures: usize,
}

/// What startup recovery restored.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecoveryStats {
    pub wal: wal::ReplayStats,
    pub entries: u64,
    pub streams: usize,
    pub elapsed: Duration,
}

pub struct Ingester {
    cfg: IngesterConfig,
    policy: CutPolicy,
    limits: Arc<Limits>,
    store: Arc<Store>,
    wal: OnceLock<Wal>,
    gate: tokio::sync::RwLock<()>,
    tenants: RwLock<HashMap<TenantId, Arc<Tenant>>>,
    metrics: IngesterMetrics,
    flush_lock: tokio::sync::Mutex<()>,
    stopping: AtomicBool,
    recovery: Mutex<RecoveryStats>,
    /// Sum of every stream's [`Stream::held_bytes`]: kept up to date by pushes, recounted
    /// after every flush.
    held_bytes: AtomicI64,
    /// Woken when `held_bytes` passes `max_chunk_memory`.
    memory_pressure: tokio::sync::Notify,
    /// Woken when shutdown begins, to end the flush loop at once.
    stop_loop: tokio::sync::Notify,
}

/// Loki's RFC3339 rendering of an entry time in messages.
fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    .unwrap_or_else(|| ns.to_string())
}

impl Ingester {
    /// Creates the ingester and restores its state from the WAL under `data_dir`.
    pub async fn open(
        cfg: IngesterConfig,
        limits: Arc<Limits>,
        store: Arc<Store>,
        data_dir: &Path,
        registry: &mut Registry,
    ) -> Result<Arc<Ingester>, OpenError> {
        cfg.validate().map_err(OpenError::Config)?;
        let policy = CutPolicy {
            block_size: cfg.chunk_block_size.0 as usize,
            target_size: cfg.chunk_target_size.0 as usize,
            max_age_ns: cfg.max_chunk_age.as_nanos().min(i64::MAX as u128) as i64,
            encode: cfg.encode_options().map_err(OpenError::Config)?,
        };
        let ing = Arc::new(Ingester {
            policy,
            limits,
            store,
            wal: OnceLock::new(),
            gate: tokio::sync::RwLock::new(()),
            tenants: RwLock::new(HashMap::new()),
            metrics: IngesterMetrics::register(registry),
            flush_lock: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
            recovery: Mutex::new(RecoveryStats::default()),
            held_bytes: AtomicI64::new(0),
            memory_pressure: tokio::sync::Notify::new(),
            stop_loop: tokio::sync::Notify::new(),
            cfg,
        });
        if ing.cfg.wal.enabled {
            let dir = ing.cfg.wal.dir(data_dir);
            let started = Instant::now();
            let replayer = ing.clone();
            let replay_dir = dir.clone();
            let (stats, entries) = tokio::task::spawn_blocking(move || {
                let mut entries = 0u64;
                let stats =
                    wal::replay(&replay_dir, |rec| entries += replayer.apply_replayed(rec))?;
                Ok::<_, wal::ReplayError>((stats, entries))
            })
            .await
            .map_err(|e| OpenError::Wal(std::io::Error::other(e.to_string())))??;
            let streams = ing
                .tenants
                .read()
                .values()
                .map(|t| t.streams.read().len())
                .sum();
            let rec = RecoveryStats {
                wal: stats,
                entries,
                streams,
                elapsed: started.elapsed(),
            };
            ing.metrics.replayed_entries.inc_by(entries);
            tracing::info!(
                checkpoint = ?stats.checkpoint, segments = stats.segments, records = stats.records,
                wal_bytes = stats.bytes, entries, streams, elapsed_ms = rec.elapsed.as_millis() as u64,
                "WAL replayed"
            );
            *ing.recovery.lock() = rec;
            ing.recount_held_bytes();
            let policy = ing.cfg.wal.fsync_policy().map_err(OpenError::Config)?;
            let w = Wal::open(&dir, policy, ing.cfg.wal.segment_size.0).map_err(OpenError::Wal)?;
            let _ = ing.wal.set(w);
        }
        Ok(ing)
    }

    pub fn recovery_stats(&self) -> RecoveryStats {
        *self.recovery.lock()
    }

    fn tenant(&self, tenant: &TenantId) -> Arc<Tenant> {
        if let Some(t) = self.tenants.read().get(tenant) {
            return t.clone();
        }
        self.tenants
            .write()
            .entry(tenant.clone())
            .or_default()
            .clone()
    }

    fn new_stream(&self, labels: Labels) -> Stream {
        let rate = self.limits.per_stream_rate_limit.0 as f64;
        let burst = (self.limits.per_stream_rate_limit_burst.0 as f64).max(rate);
        Stream::new(labels, TokenBucket::new(rate, burst))
    }

    /// The stream for `labels`, created if the tenant's stream limit allows.
    fn get_or_create(
        &self,
        tenant: &TenantId,
        t: &Tenant,
        labels: &Labels,
        enforce_limit: bool,
    ) -> Option<StreamRef> {
        if let Some(s) = t.streams.read().get(labels) {
            return Some(s.clone());
        }
        let mut streams = t.streams.write();
        if let Some(s) = streams.get(labels) {
            return Some(s.clone());
        }
        if enforce_limit
            && self
                .limits
                .stream_limit()
                .is_some_and(|l| streams.len() >= l)
        {
            return None;
        }
        let s = Arc::new(Mutex::new(self.new_stream(labels.clone())));
        streams.insert(labels.clone(), s.clone());
        let tl = IngesterMetrics::tenant(tenant.as_str());
        self.metrics.streams_created.get_or_create(&tl).inc();
        self.metrics
            .memory_streams
            .get_or_create(&tl)
            .set(streams.len() as i64);
        self.metrics.chunks_created.inc();
        Some(s)
    }

    /// Appends streams; returns once accepted entries are durable.
    pub async fn push(
        &self,
        tenant: &TenantId,
        streams: Vec<ValidatedStream>,
    ) -> Result<PushOutcome, IngestError> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(IngestError::ShuttingDown);
        }
        let _gate = self.gate.read().await;
        let t = self.tenant(tenant);
        let mut outcome = PushOutcome::default();
        let mut accepted: Vec<(StreamRef, ValidatedStream)> = Vec::with_capacity(streams.len());
        for vs in streams {
            let Some(stream) = self.get_or_create(tenant, &t, &vs.labels, true) else {
                let bytes = vs.entries.iter().map(Entry::accounted_bytes).sum();
                outcome.rejections.push(Rejection {
                    status: 429,
                    reason: "stream_limit",
                    message: format!(
                        "maximum active stream limit exceeded when trying to create stream {}, reduce the number of active streams (reduce labels or reduce label values), or contact your Loki administrator to see if the limit can be increased, user: '{tenant}'",
                        vs.labels
                    ),
                    entries: vs.entries.len(),
                    bytes,
                });
                continue;
            };
            let kept = self.admit(tenant, &stream, vs, &mut outcome);
            if !kept.entries.is_empty() {
                accepted.push((stream, kept));
            }
        }
        if accepted.is_empty() {
            return Ok(outcome);
        }
        if let Some(wal) = self.wal.get() {
            let label_strings: Vec<String> = accepted
                .iter()
                .map(|(s, _)| s.lock().label_string.clone())
                .collect();
            // Sized for the whole record (varints at their widest) so it is never regrown.
            let entry_bytes = |e: &Entry| {
                e.line.len()
                    + 16
                    + e.metadata
                        .iter()
                        .map(|l| l.name.len() + l.value.len() + 10)
                        .sum::<usize>()
            };
            let capacity = accepted
                .iter()
                .flat_map(|(_, v)| &v.entries)
                .map(entry_bytes)
                .sum::<usize>()
                + label_strings.iter().map(|l| l.len() + 20).sum::<usize>()
                + tenant.as_str().len()
                + 64;
            let mut buf = wal.buffer(capacity);
            record::encode_entries(
                &mut buf,
                tenant.as_str(),
                label_strings
                    .iter()
                    .zip(&accepted)
                    .map(|(l, (_, v))| (l.as_str(), &v.entries[..])),
            );
            debug_assert!(buf.len() <= capacity, "WAL record outgrew its estimate");
            let len = buf.len() as u64;
            if let Err(e) = wal.append(buf).await {
                if e.kind() == std::io::ErrorKind::StorageFull {
                    self.metrics.wal_disk_full_failures.inc();
                }
                return Err(IngestError::Wal(e));
            }
            self.metrics.wal_records_logged.inc();
            self.metrics.wal_logged_bytes.inc_by(len);
        }
        let mut grown = 0i64;
        for (stream, vs) in accepted {
            outcome.accepted_entries += vs.entries.len();
            let mut s = stream.lock();
            let before = s.held_bytes() as i64;
            let closed = s.append(&vs.entries, &self.policy);
            grown += s.held_bytes() as i64 - before;
            drop(s);
            self.metrics.chunks_created.inc_by(closed as u64);
        }
        let held = self.held_bytes.fetch_add(grown, Ordering::Relaxed) + grown;
        let budget = self.cfg.max_chunk_memory.0 as i64;
        if budget > 0 && held > budget {
            self.memory_pressure.notify_one();
        }
        Ok(outcome)
    }

    /// Applies the stream's own limits to one pushed stream; returns what it accepts.
    fn admit(
        &self,
        tenant: &TenantId,
        stream: &StreamRef,
        vs: ValidatedStream,
        outcome: &mut PushOutcome,
    ) -> ValidatedStream {
        let mut s = stream.lock();
        let total = vs.entries.len();
        let bytes: usize = vs.entries.iter().map(Entry::accounted_bytes).sum();
        if self.limits.per_stream_rate_limit.0 > 0 && !s.rate.try_take(bytes as f64) {
            outcome.rejections.push(Rejection {
                status: 429,
                reason: "per_stream_rate_limit",
                message: format!(
                    "Per stream rate limit exceeded (limit: {}/sec) while attempting to ingest for stream '{}' totaling {}B, consider splitting a stream via additional labels or contact your Loki administrator to see if the limit can be increased",
                    self.limits.per_stream_rate_limit, s.label_string, bytes
                ),
                entries: total,
                bytes,
            });
            return ValidatedStream {
                labels: vs.labels,
                entries: Vec::new(),
            };
        }
        let window = self.policy.max_age_ns / 2;
        let cutoff = if s.newest_ts == i64::MIN {
            i64::MIN
        } else if self.limits.unordered_writes {
            s.newest_ts.saturating_sub(window)
        } else {
            s.newest_ts
        };
        if vs.entries.iter().all(|e| e.ts >= cutoff) {
            return vs;
        }
        let mut kept = Vec::with_capacity(total);
        let mut lines = Vec::new();
        let mut rejected_bytes = 0;
        for e in vs.entries {
            if e.ts >= cutoff {
                kept.push(e);
            } else {
                rejected_bytes += e.accounted_bytes();
                lines.push(format!(
                    "entry with timestamp {} ignored, reason: 'entry too far behind, entry timestamp is: {}, oldest acceptable timestamp is: {}',",
                    rfc3339(e.ts),
                    rfc3339(e.ts),
                    rfc3339(cutoff)
                ));
            }
        }
        let n = lines.len();
        lines.push(format!(
            "user '{tenant}', total ignored: {n} out of {total} for stream: {}",
            s.label_string
        ));
        outcome.rejections.push(Rejection {
            status: 400,
            reason: "too_far_behind",
            message: lines.join("\n"),
            entries: n,
            bytes: rejected_bytes,
        });
        ValidatedStream {
            labels: vs.labels,
            entries: kept,
        }
    }

    /// Streams of `tenant` matching `matchers`, in no particular order.
    fn matching(&self, tenant: &TenantId, matchers: &[LabelMatcher]) -> Vec<StreamRef> {
        let Some(t) = self.tenants.read().get(tenant).cloned() else {
            return Vec::new();
        };
        let streams = t.streams.read();
        streams
            .iter()
            .filter(|(l, _)| matches_all(matchers, l))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Blocks of matching streams that overlap the request's time range.
    pub fn select_blocks(&self, tenant: &TenantId, req: &SelectRequest) -> Vec<StreamBlocks> {
        self.matching(tenant, &req.matchers)
            .into_iter()
            .filter_map(|s| {
                let mut s = s.lock();
                let blocks = s.blocks_in(req.start, req.end);
                (!blocks.is_empty()).then(|| StreamBlocks {
                    labels: s.labels.clone(),
                    blocks,
                })
            })
            .collect()
    }

    /// Label sets of matching streams holding data in the request's time range.
    pub fn series(&self, tenant: &TenantId, req: &SelectRequest) -> Vec<Labels> {
        self.matching(tenant, &req.matchers)
            .into_iter()
            .filter_map(|s| {
                let s = s.lock();
                s.overlaps(req.start, req.end).then(|| s.labels.clone())
            })
            .collect()
    }

    /// Closes idle chunks (or all, when forced), writes closed chunks to the store, and drops
    /// streams that hold nothing and have been idle.
    pub async fn flush(&self, force: bool) -> FlushStats {
        let _one_at_a_time = self.flush_lock.lock().await;
        let idle = self.cfg.chunk_idle_period;
        let tenants: Vec<(TenantId, Arc<Tenant>)> = self
            .tenants
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut stats = FlushStats::default();
        for (tenant, t) in &tenants {
            let streams: Vec<StreamRef> = t.streams.read().values().cloned().collect();
            let mut batch: Vec<(StreamRef, u64, FlushChunk, CloseReason)> = Vec::new();
            for sref in &streams {
                let mut s = sref.lock();
                if force {
                    s.close_open_chunk(CloseReason::Forced, &self.policy);
                } else if s.last_append.elapsed() >= idle {
                    s.close_open_chunk(CloseReason::Idle, &self.policy);
                }
                let labels = s.labels.clone();
                for c in s.pending.iter_mut().filter(|c| !c.flushing) {
                    c.flushing = true;
                    batch.push((
                        sref.clone(),
                        c.id,
                        FlushChunk {
                            labels: labels.clone(),
                            blocks: c.blocks.clone(),
                        },
                        c.reason,
                    ));
                }
            }
            // Write in segments of at most max_segment_size.
            let limit = self.cfg.max_segment_size.0 as usize;
            let mut start = 0;
            while start < batch.len() {
                let mut end = start;
                let mut size = 0usize;
                while end < batch.len()
                    && (end == start || size + chunk_size(&batch[end].2) <= limit)
                {
                    size += chunk_size(&batch[end].2);
                    end += 1;
                }
                let part = &batch[start..end];
                let chunks: Vec<FlushChunk> = part.iter().map(|(_, _, c, _)| c.clone()).collect();
                match self.store.write_chunks(tenant, &chunks).await {
                    Ok(w) => {
                        stats.chunks += w.chunks;
                        stats.bytes += w.bytes;
                        let tl = IngesterMetrics::tenant(tenant.as_str());
                        self.metrics
                            .chunks_stored
                            .get_or_create(&tl)
                            .inc_by(w.chunks as u64);
                        self.metrics
                            .chunk_stored_bytes
                            .get_or_create(&tl)
                            .inc_by(w.bytes);
                        for (sref, id, _, reason) in part {
                            sref.lock().pending.retain(|c| c.id != *id);
                            self.metrics
                                .chunks_flushed
                                .get_or_create(&IngesterMetrics::reason(reason.as_str()))
                                .inc();
                        }
                    }
                    Err(e) => {
                        stats.failures += 1;
                        self.metrics.flush_failures.inc();
                        tracing::error!(tenant = %tenant, chunks = chunks.len(), error = %e, "flush failed; will retry");
                        for (sref, id, _, _) in part {
                            if let Some(c) = sref.lock().pending.iter_mut().find(|c| c.id == *id) {
                                c.flushing = false;
                            }
                        }
                    }
                }
                start = end;
            }
            // Drop streams that hold nothing and have been idle.
            let mut map = t.streams.write();
            let before = map.len();
            map.retain(|_, s| {
                let s = s.lock();
                !(s.is_empty() && s.last_append.elapsed() >= idle)
            });
            let removed = before - map.len();
            let tl = IngesterMetrics::tenant(tenant.as_str());
            if removed > 0 {
                self.metrics
                    .streams_removed
                    .get_or_create(&tl)
                    .inc_by(removed as u64);
            }
            self.metrics
                .memory_streams
                .get_or_create(&tl)
                .set(map.len() as i64);
        }
        let chunks: usize = tenants
            .iter()
            .flat_map(|(_, t)| t.streams.read().values().cloned().collect::<Vec<_>>())
            .map(|s| s.lock().chunk_count())
            .sum();
        self.metrics.memory_chunks.set(chunks as i64);
        self.recount_held_bytes();
        stats
    }

    fn all_streams(&self) -> Vec<StreamRef> {
        let tenants: Vec<Arc<Tenant>> = self.tenants.read().values().cloned().collect();
        tenants
            .iter()
            .flat_map(|t| t.streams.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Recounts the memory held by all streams (pushes only add their own growth to it).
    fn recount_held_bytes(&self) {
        let held: usize = self
            .all_streams()
            .iter()
            .map(|s| s.lock().held_bytes())
            .sum();
        self.held_bytes.store(held as i64, Ordering::Relaxed);
        self.metrics.memory_held_bytes.set(held as i64);
    }

    /// Closes the chunks of the streams holding the most memory until at most half of
    /// `max_chunk_memory` is left in open data, then flushes.
    async fn relieve_memory_pressure(&self) {
        let budget = self.cfg.max_chunk_memory.0 as usize;
        let mut streams: Vec<(usize, StreamRef)> = self
            .all_streams()
            .into_iter()
            .map(|s| {
                let held = s.lock().held_bytes();
                (held, s)
            })
            .collect();
        let mut held: usize = streams.iter().map(|(b, _)| b).sum();
        if held <= budget {
            return;
        }
        streams.sort_by_key(|(b, _)| std::cmp::Reverse(*b));
        let mut closed = 0;
        for (bytes, s) in &streams {
            if held <= budget / 2 {
                break;
            }
            if s.lock().close_open_chunk(CloseReason::Memory, &self.policy) {
                closed += 1;
            }
            held = held.saturating_sub(*bytes);
        }
        tracing::debug!(closed, budget, "chunk memory over budget: flushing early");
        self.flush(false).await;
    }

    /// Writes a checkpoint of everything in memory and deletes the WAL segments it replaces.
    pub async fn checkpoint(&self) -> std::io::Result<u64> {
        let Some(wal) = self.wal.get() else {
            return Ok(0);
        };
        let (upto, snapshot) = {
            let _exclusive = self.gate.write().await;
            let upto = wal.rotate().await?;
            (upto, self.snapshot())
        };
        let mut writer = wal.checkpoint(upto)?;
        let res = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            for s in snapshot {
                buf.clear();
                for chunk in &s.pending {
                    record::encode_blocks(
                        &mut buf,
                        &s.tenant,
                        &s.labels,
                        BlockState::Closed,
                        chunk,
                    );
                }
                if !s.open.is_empty() {
                    record::encode_blocks(
                        &mut buf,
                        &s.tenant,
                        &s.labels,
                        BlockState::Open,
                        &s.open,
                    );
                }
                if !s.head.is_empty() {
                    record::encode_entries(
                        &mut buf,
                        &s.tenant,
                        [(s.labels.as_str(), &s.head[..])].into_iter(),
                    );
                }
                writer.write(&buf)?;
            }
            writer.finish()
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        match &res {
            Ok(bytes) => {
                self.metrics.checkpoints.inc();
                tracing::debug!(upto, bytes, "WAL checkpoint written");
            }
            Err(e) => {
                self.metrics.checkpoint_failures.inc();
                tracing::error!(error = %e, "WAL checkpoint failed");
            }
        }
        res
    }

    fn snapshot(&self) -> Vec<StreamSnapshot> {
        let tenants: Vec<(TenantId, Arc<Tenant>)> = self
            .tenants
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::new();
        for (tenant, t) in tenants {
            for s in t.streams.read().values() {
                let s = s.lock();
                if s.is_empty() {
                    continue;
                }
                out.push(StreamSnapshot {
                    tenant: tenant.to_string(),
                    labels: s.label_string.clone(),
                    pending: s
                        .pending
                        .iter()
                        .map(|c| c.blocks.iter().map(|b| b.data.clone()).collect())
                        .collect(),
                    open: s.open_blocks().iter().map(|b| b.data.clone()).collect(),
                    head: s.head_entries(),
                });
            }
        }
        out
    }

    /// Applies one replayed WAL record; returns the entries it restored.
    fn apply_replayed(&self, rec: Record) -> u64 {
        match rec {
            Record::Entries { tenant, streams } => {
                let Ok(tenant) = TenantId::new(&tenant) else {
                    return 0;
                };
                let t = self.tenant(&tenant);
                let mut n = 0;
                for (labels, entries) in streams {
                    let Ok(labels) = Labels::parse(&labels) else {
                        continue;
                    };
                    if let Some(s) = self.get_or_create(&tenant, &t, &labels, false) {
                        n += entries.len() as u64;
                        s.lock().append(&entries, &self.policy);
                    }
                }
                n
            }
            Record::Blocks {
                tenant,
                labels,
                state,
                blocks,
            } => {
                let (Ok(tenant), Ok(labels)) = (TenantId::new(&tenant), Labels::parse(&labels))
                else {
                    return 0;
                };
                let blocks: Vec<EncodedBlock> = blocks.into_iter().filter_map(|b| match EncodedBlock::from_bytes(b) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        tracing::error!(error = %e, stream = %labels, "corrupt block in WAL checkpoint skipped");
                        None
                    }
                }).collect();
                let n = blocks.iter().map(|b| u64::from(b.meta.count)).sum();
                let t = self.tenant(&tenant);
                if let Some(s) = self.get_or_create(&tenant, &t, &labels, false) {
                    s.lock().restore_blocks(blocks, state == BlockState::Closed);
                }
                n
            }
        }
    }

    /// Runs the periodic flush and checkpoint loop until shutdown begins.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let ing = self.clone();
        tokio::spawn(async move {
            let mut flush_tick = tokio::time::interval(ing.cfg.flush_check_period);
            let mut checkpoint_tick =
                tokio::time::interval(ing.cfg.wal.checkpoint_duration.max(Duration::from_secs(1)));
            flush_tick.tick().await;
            checkpoint_tick.tick().await;
            loop {
                tokio::select! {
                    _ = flush_tick.tick() => {
                        if ing.stopping.load(Ordering::Acquire) { break; }
                        ing.flush(false).await;
                    }
                    _ = checkpoint_tick.tick() => {
                        if ing.stopping.load(Ordering::Acquire) { break; }
                        let _ = ing.checkpoint().await;
                    }
                    _ = ing.stop_loop.notified() => break,
                    _ = ing.memory_pressure.notified() => {
                        if ing.stopping.load(Ordering::Acquire) { break; }
                        ing.relieve_memory_pressure().await;
                    }
                }
            }
        })
    }

    /// Stops taking pushes, flushes everything (if configured) and leaves the WAL empty or
    /// compact. Returns the figures of the final flush.
    pub async fn shutdown(&self) -> FlushStats {
        self.stopping.store(true, Ordering::Release);
        self.stop_loop.notify_one();
        // Wait for in-flight pushes.
        drop(self.gate.write().await);
        let stats = if self.cfg.wal.flush_on_shutdown || !self.cfg.wal.enabled {
            self.flush(true).await
        } else {
            FlushStats::default()
        };
        if stats.failures > 0 {
            tracing::error!(
                failures = stats.failures,
                "some chunks could not be flushed at shutdown; they stay in the WAL"
            );
        }
        if let Err(e) = self.checkpoint().await {
            tracing::error!(error = %e, "final checkpoint failed; the WAL will be replayed in full");
        }
        if let Some(wal) = self.wal.get()
            && let Err(e) = wal.close().await
        {
            tracing::error!(error = %e, "closing the WAL failed");
        }
        stats
    }

    /// Bytes of WAL on disk.
    pub fn wal_disk_bytes(&self) -> u64 {
        self.wal.get().map(|w| w.disk_bytes()).unwrap_or(0)
    }
}

fn chunk_size(c: &FlushChunk) -> usize {
    c.blocks.iter().map(|b| b.data.len()).sum()
}

struct StreamSnapshot {
    tenant: String,
    labels: String,
    pending: Vec<Vec<Bytes>>,
    open: Vec<Bytes>,
    head: Vec<Entry>,
}

#[async_trait]
impl IngesterService for Ingester {
    async fn push(
        &self,
        tenant: &TenantId,
        streams: Vec<ValidatedStream>,
    ) -> Result<PushOutcome, ServiceError> {
        Ingester::push(self, tenant, streams)
            .await
            .map_err(|e| match e {
                IngestError::ShuttingDown => ServiceError::Unavailable(e.to_string()),
                IngestError::Wal(_) => ServiceError::Internal(e.to_string()),
            })
    }

    async fn select(
        &self,
        tenant: &TenantId,
        req: &SelectRequest,
    ) -> Result<Vec<StreamBlocks>, ServiceError> {
        Ok(self.select_blocks(tenant, req))
    }

    async fn series(
        &self,
        tenant: &TenantId,
        req: &SelectRequest,
    ) -> Result<Vec<Labels>, ServiceError> {
        Ok(Ingester::series(self, tenant, req))
    }
}
