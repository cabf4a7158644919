//! Compaction rounds: every `compaction_interval`, each tenant's periods that are due are
//! rewritten one at a time, then superseded objects past `delete_delay` are deleted. One round
//! runs at a time; `POST /compactor/run` starts one at once, compacting every period that is
//! not compacted yet however recently it was written.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fjord_model::TenantId;
use fjord_store::{PeriodFiles, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::CompactorError;
use crate::collect::{CollectorState, collect};
use crate::config::CompactorConfig;
use crate::rewrite::{RewriteOptions, rewrite_period};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Default)]
pub struct CompactorMetrics {
    pub rounds: Counter,
    pub failures: Counter,
    pub last_success: Gauge,
    pub periods_compacted: Counter,
    pub bytes_read: Counter,
    pub bytes_written: Counter,
    pub deleted_objects: Family<KindLabel, Counter>,
}

impl CompactorMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = CompactorMetrics::default();
        let r = registry;
        r.register(
            "fjord_compactor_rounds",
            "Compaction rounds run",
            m.rounds.clone(),
        );
        r.register(
            "fjord_compactor_failures",
            "Periods or collections that failed in a round (the next round retries them)",
            m.failures.clone(),
        );
        r.register(
            "loki_compactor_last_successful_run_timestamp_seconds",
            "Unix time of the last compaction round that succeeded",
            m.last_success.clone(),
        );
        r.register(
            "fjord_compactor_periods_compacted",
            "Periods (tenant and day) rewritten",
            m.periods_compacted.clone(),
        );
        r.register(
            "fjord_compactor_read_bytes",
            "Stored chunk bytes read by rewrites",
            m.bytes_read.clone(),
        );
        r.register(
            "fjord_compactor_written_bytes",
            "Segment bytes written by rewrites",
            m.bytes_written.clone(),
        );
        r.register(
            "fjord_compactor_deleted_objects",
            "Superseded objects deleted, by kind (index_file, segment)",
            m.deleted_objects.clone(),
        );
        m
    }
}

/// What one round did, as `POST /compactor/run` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoundReport {
    pub periods_compacted: usize,
    pub chunks_read: usize,
    pub bytes_read: u64,
    pub chunks_carried: usize,
    pub chunks_written: usize,
    pub bytes_written: u64,
    pub index_files_deleted: usize,
    pub segments_deleted: usize,
    pub segment_bytes_deleted: u64,
    /// What failed (each period or tenant on its own; the rest of the round went on).
    pub errors: Vec<String>,
}

pub struct Compactor {
    store: Arc<Store>,
    cfg: CompactorConfig,
    opts: RewriteOptions,
    metrics: CompactorMetrics,
    /// What collection remembers, per tenant; held for the whole round, which also keeps
    /// rounds from overlapping.
    collectors: tokio::sync::Mutex<HashMap<TenantId, CollectorState>>,
}

impl Compactor {
    pub fn new(
        store: Arc<Store>,
        cfg: CompactorConfig,
        registry: &mut Registry,
    ) -> Result<Arc<Compactor>, String> {
        cfg.validate()?;
        let opts = RewriteOptions {
            encode: cfg.encode_options()?,
            block_size: cfg.block_size.0 as usize,
            chunk_target_size: cfg.chunk_target_size.0 as usize,
            max_segment_size: cfg.max_segment_size.0 as usize,
            field_columns: cfg.field_columns,
        };
        Ok(Arc::new(Compactor {
            store,
            cfg,
            opts,
            metrics: CompactorMetrics::register(registry),
            collectors: Default::default(),
        }))
    }

    /// Runs rounds every `compaction_interval` until the task is aborted. A round stopped
    /// half-way leaves only unreferenced segments, which a later round deletes.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.cfg.compaction_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.run_round(false).await;
            }
        })
    }

    /// One round over every tenant. With `force`, periods are compacted however recently they
    /// received an index file. A period or tenant that fails is logged, counted and reported,
    /// and the round goes on with the others.
    pub async fn run_round(&self, force: bool) -> RoundReport {
        let mut collectors = self.collectors.lock().await;
        self.metrics.rounds.inc();
        let started = Instant::now();
        let mut report = RoundReport::default();
        self.round(force, &mut collectors, &mut report).await;
        let m = &self.metrics;
        m.deleted_objects
            .get_or_create(&KindLabel {
                kind: "index_file".into(),
            })
            .inc_by(report.index_files_deleted as u64);
        m.deleted_objects
            .get_or_create(&KindLabel {
                kind: "segment".into(),
            })
            .inc_by(report.segments_deleted as u64);
        if report.errors.is_empty() {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            m.last_success.set(now.as_secs() as i64);
        }
        if report != RoundReport::default() {
            tracing::info!(
                periods = report.periods_compacted,
                read_bytes = report.bytes_read,
                written_bytes = report.bytes_written,
                deleted_segments = report.segments_deleted,
                deleted_index_files = report.index_files_deleted,
                failures = report.errors.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "compaction round done"
            );
        }
        report
    }

    async fn round(
        &self,
        force: bool,
        collectors: &mut HashMap<TenantId, CollectorState>,
        report: &mut RoundReport,
    ) {
        let tenants = match self.store.tenants().await {
            Ok(t) => t,
            Err(e) => return self.failed(report, format!("listing tenants: {e}")),
        };
        for tenant in tenants {
            match self.store.periods(&tenant).await {
                Ok(periods) => {
                    for period in periods {
                        if let Err(e) = self.compact_period(&tenant, period, force, report).await {
                            self.failed(report, format!("tenant {tenant}, period {period}: {e}"));
                        }
                    }
                }
                Err(e) => self.failed(report, format!("tenant {tenant}: listing periods: {e}")),
            }
            let state = collectors.entry(tenant.clone()).or_default();
            let now = SystemTime::now();
            match collect(&self.store, &tenant, self.cfg.delete_delay, now, state).await {
                Ok(c) => {
                    report.index_files_deleted += c.index_files;
                    report.segments_deleted += c.segments;
                    report.segment_bytes_deleted += c.segment_bytes;
                }
                Err(e) => self.failed(
                    report,
                    format!("tenant {tenant}: deleting superseded objects: {e}"),
                ),
            }
        }
    }

    fn failed(&self, report: &mut RoundReport, error: String) {
        tracing::warn!(%error, "compaction failed; the next round retries");
        self.metrics.failures.inc();
        report.errors.push(error);
    }

    async fn compact_period(
        &self,
        tenant: &TenantId,
        period: i64,
        force: bool,
        report: &mut RoundReport,
    ) -> Result<(), CompactorError> {
        if !self.is_due(&self.store.period_files(tenant, period).await?, force) {
            return Ok(());
        }
        let snapshot = self.store.period_snapshot(tenant, period).await?;
        let r = rewrite_period(&self.store, tenant, period, &snapshot, &self.opts).await?;
        tracing::debug!(%tenant, period, ?r, "period compacted");
        self.metrics.periods_compacted.inc();
        self.metrics.bytes_read.inc_by(r.bytes_read);
        self.metrics.bytes_written.inc_by(r.bytes_written);
        report.periods_compacted += 1;
        report.chunks_read += r.chunks_read;
        report.bytes_read += r.bytes_read;
        report.chunks_carried += r.chunks_carried;
        report.chunks_written += r.chunks_written;
        report.bytes_written += r.bytes_written;
        Ok(())
    }

    /// A period is due when it holds a flush's file or several files, and (unless forced) its
    /// newest file is older than `quiet_period`.
    fn is_due(&self, files: &PeriodFiles, force: bool) -> bool {
        let uncompacted = files.live.len() > 1 || files.live.iter().any(|f| !f.compacted);
        let quiet = || {
            files.live.iter().all(|f| {
                f.written
                    .elapsed()
                    .is_ok_and(|age| age >= self.cfg.quiet_period)
            })
        };
        uncompacted && (force || quiet())
    }
}
