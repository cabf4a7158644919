//! Ingester metrics, named as Loki names them so existing dashboards work.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Default)]
pub struct IngesterMetrics {
    pub streams_created: Family<TenantLabel, Counter>,
    pub streams_removed: Family<TenantLabel, Counter>,
    pub memory_streams: Family<TenantLabel, Gauge>,
    pub memory_chunks: Gauge,
    pub memory_held_bytes: Gauge,
    pub chunks_created: Counter,
    pub chunks_flushed: Family<ReasonLabel, Counter>,
    pub chunks_stored: Family<TenantLabel, Counter>,
    pub chunk_stored_bytes: Family<TenantLabel, Counter>,
    pub flush_failures: Counter,
    pub wal_records_logged: Counter,
    pub wal_logged_bytes: Counter,
    pub wal_disk_full_failures: Counter,
    pub checkpoints: Counter,
    pub checkpoint_failures: Counter,
    pub replayed_entries: Counter,
}

impl IngesterMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = IngesterMetrics::default();
        let r = registry;
        r.register(
            "loki_ingester_streams_created",
            "Streams created, by tenant",
            m.streams_created.clone(),
        );
        r.register(
            "loki_ingester_streams_removed",
            "Streams removed after being flushed and idle",
            m.streams_removed.clone(),
        );
        r.register(
            "loki_ingester_memory_streams",
            "Streams held in memory, by tenant",
            m.memory_streams.clone(),
        );
        r.register(
            "loki_ingester_memory_chunks",
            "Chunks (open and awaiting flush) held in memory",
            m.memory_chunks.clone(),
        );
        r.register(
            "fjord_ingester_memory_held_bytes",
            "Bytes of unflushed data held in memory (head buffers and compressed chunks), as of the last flush",
            m.memory_held_bytes.clone(),
        );
        r.register(
            "loki_ingester_chunks_created",
            "Chunks started",
            m.chunks_created.clone(),
        );
        r.register(
            "loki_ingester_chunks_flushed",
            "Chunks flushed, by reason (full, idle, max_age, forced, memory)",
            m.chunks_flushed.clone(),
        );
        r.register(
            "loki_ingester_chunks_stored",
            "Chunks written to the store, by tenant",
            m.chunks_stored.clone(),
        );
        r.register(
            "loki_ingester_chunk_stored_bytes",
            "Bytes of segments written to the store, by tenant",
            m.chunk_stored_bytes.clone(),
        );
        r.register(
            "loki_ingester_chunks_flush_failures",
            "Flushes that failed and will be retried",
            m.flush_failures.clone(),
        );
        r.register(
            "loki_ingester_wal_records_logged",
            "Records appended to the WAL",
            m.wal_records_logged.clone(),
        );
        r.register(
            "loki_ingester_wal_logged_bytes",
            "Bytes appended to the WAL",
            m.wal_logged_bytes.clone(),
        );
        r.register(
            "loki_ingester_wal_disk_full_failures",
            "WAL appends that failed for lack of disk space",
            m.wal_disk_full_failures.clone(),
        );
        r.register(
            "loki_ingester_checkpoint_creations",
            "WAL checkpoints written",
            m.checkpoints.clone(),
        );
        r.register(
            "loki_ingester_checkpoint_creations_failed",
            "WAL checkpoints that failed",
            m.checkpoint_failures.clone(),
        );
        r.register(
            "loki_ingester_wal_replayed_entries",
            "Entries restored from the WAL at startup",
            m.replayed_entries.clone(),
        );
        m
    }

    pub fn tenant(t: &str) -> TenantLabel {
        TenantLabel {
            tenant: t.to_string(),
        }
    }

    pub fn reason(r: &str) -> ReasonLabel {
        ReasonLabel {
            reason: r.to_string(),
        }
    }
}
