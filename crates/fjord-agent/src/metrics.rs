//! The agent's metrics, with Promtail's names and labels so its dashboards and alerts work:
//! `promtail_read_bytes_total{path}`, `promtail_read_lines_total{path}`,
//! `promtail_file_bytes_total{path}`, `promtail_files_active_total`,
//! `promtail_targets_active_total`, `promtail_sent_entries_total{host}`,
//! `promtail_sent_bytes_total{host}`, `promtail_encoded_bytes_total{host}`,
//! `promtail_dropped_entries_total{host,reason}`, `promtail_dropped_bytes_total{host,reason}`,
//! `promtail_batch_retries_total{host}`, `promtail_request_duration_seconds{status_code,host}`
//! and `logentry_dropped_lines_total{reason}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabel {
    pub path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabel {
    pub host: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    pub host: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub status_code: String,
    pub host: String,
}

fn request_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// All agent metrics and the registry that exposes them.
pub struct Metrics {
    pub registry: Registry,
    pub read_bytes: Family<PathLabel, Counter>,
    pub read_lines: Family<PathLabel, Counter>,
    pub file_bytes: Family<PathLabel, Gauge>,
    pub files_active: Gauge,
    pub targets_active: Gauge,
    pub sent_entries: Family<HostLabel, Counter>,
    pub sent_bytes: Family<HostLabel, Counter>,
    pub encoded_bytes: Family<HostLabel, Counter>,
    pub dropped_entries: Family<DropLabels, Counter>,
    pub dropped_bytes: Family<DropLabels, Counter>,
    pub batch_retries: Family<HostLabel, Counter>,
    pub request_duration: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pub stage_dropped: Family<ReasonLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            read_bytes: Family::default(),
            read_lines: Family::default(),
            file_bytes: Family::default(),
            files_active: Gauge::default(),
            targets_active: Gauge::default(),
            sent_entries: Family::default(),
            sent_bytes: Family::default(),
            encoded_bytes: Family::default(),
            dropped_entries: Family::default(),
            dropped_bytes: Family::default(),
            batch_retries: Family::default(),
            request_duration: Family::new_with_constructor(request_histogram as fn() -> Histogram),
            stage_dropped: Family::default(),
            registry: Registry::default(),
        };
        // prometheus-client appends `_total` to counters itself.
        registry.register(
            "promtail_read_bytes",
            "Number of bytes read",
            m.read_bytes.clone(),
        );
        registry.register(
            "promtail_read_lines",
            "Number of lines read",
            m.read_lines.clone(),
        );
        registry.register(
            "promtail_file_bytes",
            "Number of bytes total",
            m.file_bytes.clone(),
        );
        registry.register(
            "promtail_files_active_total",
            "Number of active files",
            m.files_active.clone(),
        );
        registry.register(
            "promtail_targets_active_total",
            "Number of active total",
            m.targets_active.clone(),
        );
        registry.register(
            "promtail_sent_entries",
            "Number of log entries sent to the ingester",
            m.sent_entries.clone(),
        );
        registry.register(
            "promtail_sent_bytes",
            "Number of bytes sent",
            m.sent_bytes.clone(),
        );
        registry.register(
            "promtail_encoded_bytes",
            "Number of bytes encoded and ready to send",
            m.encoded_bytes.clone(),
        );
        registry.register(
            "promtail_dropped_entries",
            "Number of log entries dropped because failed to be sent to the ingester after all retries",
            m.dropped_entries.clone(),
        );
        registry.register(
            "promtail_dropped_bytes",
            "Number of bytes dropped because failed to be sent to the ingester after all retries",
            m.dropped_bytes.clone(),
        );
        registry.register(
            "promtail_batch_retries",
            "Number of times batches has had to be retried",
            m.batch_retries.clone(),
        );
        registry.register(
            "promtail_request_duration_seconds",
            "Duration of send requests",
            m.request_duration.clone(),
        );
        registry.register(
            "logentry_dropped_lines",
            "A count of all log lines dropped as a result of a pipeline stage",
            m.stage_dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a line dropped by a pipeline stage.
    pub fn dropped_lines(&self, reason: &str) {
        self.stage_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
