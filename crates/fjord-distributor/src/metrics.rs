//! Distributor metrics with Loki's names and label sets, so Loki dashboards work unchanged.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedBytesLabels {
    pub tenant: String,
    pub retention_hours: String,
    pub is_internal_stream: String,
    pub policy: String,
    pub format: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedLinesLabels {
    pub tenant: String,
    pub is_internal_stream: String,
    pub policy: String,
    pub format: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DiscardLabels {
    pub reason: String,
    pub tenant: String,
    pub retention_hours: String,
    pub policy: String,
    pub format: String,
}

#[derive(Default)]
pub struct DistributorMetrics {
    pub bytes_received: Family<ReceivedBytesLabels, Counter>,
    pub structured_metadata_bytes_received: Family<ReceivedBytesLabels, Counter>,
    pub lines_received: Family<ReceivedLinesLabels, Counter>,
    pub discarded_samples: Family<DiscardLabels, Counter>,
    pub discarded_bytes: Family<DiscardLabels, Counter>,
}

impl DistributorMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let m = DistributorMetrics::default();
        r.register(
            "loki_distributor_bytes_received",
            "Bytes received (line plus structured metadata), by tenant",
            m.bytes_received.clone(),
        );
        r.register(
            "loki_distributor_structured_metadata_bytes_received",
            "Structured metadata bytes received, by tenant",
            m.structured_metadata_bytes_received.clone(),
        );
        r.register(
            "loki_distributor_lines_received",
            "Lines received, by tenant",
            m.lines_received.clone(),
        );
        r.register(
            "loki_discarded_samples",
            "Entries discarded, by reason and tenant",
            m.discarded_samples.clone(),
        );
        r.register(
            "loki_discarded_bytes",
            "Bytes discarded, by reason and tenant",
            m.discarded_bytes.clone(),
        );
        m
    }

    pub fn discard(
        &self,
        reason: &str,
        tenant: &str,
        retention_hours: &str,
        entries: usize,
        bytes: usize,
    ) {
        let l = DiscardLabels {
            reason: reason.to_string(),
            tenant: tenant.to_string(),
            retention_hours: retention_hours.to_string(),
            policy: String::new(),
            format: "loki".into(),
        };
        self.discarded_samples
            .get_or_create(&l)
            .inc_by(entries as u64);
        self.discarded_bytes.get_or_create(&l).inc_by(bytes as u64);
    }
}

/// Entries and bytes discarded by reason while one push is validated, added to the metrics
/// once at its end: a push of millions of bad entries would otherwise update them per entry.
#[derive(Debug, Default)]
pub struct DiscardTally(Vec<(&'static str, usize, usize)>);

impl DiscardTally {
    pub fn add(&mut self, reason: &'static str, entries: usize, bytes: usize) {
        match self.0.iter_mut().find(|(r, _, _)| *r == reason) {
            Some((_, e, b)) => {
                *e += entries;
                *b += bytes;
            }
            None => self.0.push((reason, entries, bytes)),
        }
    }

    /// Adds the tally to `metrics` under `tenant`.
    pub fn record(self, metrics: &DistributorMetrics, tenant: &str, retention_hours: &str) {
        for (reason, entries, bytes) in self.0 {
            metrics.discard(reason, tenant, retention_hours, entries, bytes);
        }
    }
}
