//! Per-tenant limits: the `limits_config` section, with Loki's key names and defaults so a
//! Loki limits block carries over unchanged.
//!
//! Keys Fjord enforces are typed fields below. Loki keys that concern machinery Fjord does not
//! have (bloom gateways, Kafka partitions, the ruler…) are accepted and listed by
//! [`Limits::inert_keys`] so the server can say at startup that they have no effect; any other
//! key is an error naming it.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::serde_duration;

/// A byte size written as an integer or with a unit (`256KB`, `3MB`, `1.5GiB`). Units are
/// binary, as in Loki (`256KB` is 262144 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Option<ByteSize> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let num: f64 = num.parse().ok()?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            _ => return None,
        };
        (num >= 0.0).then(|| ByteSize((num * mult as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        for (unit, size) in [("GB", 1u64 << 30), ("MB", 1 << 20), ("KB", 1 << 10)] {
            if v >= size && v.is_multiple_of(size) {
                return write!(f, "{}{unit}", v / size);
            }
        }
        write!(f, "{v}B")
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Num(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid byte size {s:?} (examples: 256KB, 3MB, 1048576)"
                ))
            }),
        }
    }
}

/// A memory limit setting: a byte size, or `auto`, which each setting sizes from the memory
/// the process may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryLimitSetting {
    #[default]
    Auto,
    Bytes(ByteSize),
}

impl MemoryLimitSetting {
    /// The limit in bytes, `auto()` for `auto`.
    pub fn bytes(self, auto: impl FnOnce() -> u64) -> u64 {
        match self {
            MemoryLimitSetting::Bytes(b) => b.0,
            MemoryLimitSetting::Auto => auto(),
        }
    }
}

impl Serialize for MemoryLimitSetting {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MemoryLimitSetting::Auto => s.serialize_str("auto"),
            MemoryLimitSetting::Bytes(b) => b.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MemoryLimitSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Auto(AutoWord),
            Bytes(ByteSize),
        }
        #[derive(Deserialize)]
        enum AutoWord {
            #[serde(rename = "auto")]
            Auto,
        }
        match Raw::deserialize(d) {
            Ok(Raw::Auto(AutoWord::Auto)) => Ok(MemoryLimitSetting::Auto),
            Ok(Raw::Bytes(b)) => Ok(MemoryLimitSetting::Bytes(b)),
            Err(_) => Err(serde::de::Error::custom(
                "invalid memory limit: a byte size (examples: 512MB, 2GB) or auto",
            )),
        }
    }
}

/// Per-tenant limits (`limits_config`). Defaults are Loki's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Limits {
    /// `global` or `local`; with one distributor both mean the same.
    pub ingestion_rate_strategy: String,
    /// Tenant ingestion rate in MB/s (line plus structured metadata bytes).
    pub ingestion_rate_mb: f64,
    /// Tenant burst size in MB.
    pub ingestion_burst_size_mb: f64,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub max_label_names_per_series: usize,
    pub reject_old_samples: bool,
    #[serde(with = "serde_duration")]
    pub reject_old_samples_max_age: Duration,
    /// How far into the future an entry may be.
    #[serde(with = "serde_duration")]
    pub creation_grace_period: Duration,
    /// Longest accepted line; 0 disables the check.
    pub max_line_size: ByteSize,
    /// Truncate long lines instead of rejecting them.
    pub max_line_size_truncate: bool,
    /// Add 1ns to an entry whose timestamp equals the previous entry's in the same stream.
    pub increment_duplicate_timestamp: bool,
    /// Labels from which `service_name` is derived when a stream lacks it; empty disables.
    pub discover_service_name: Vec<String>,
    /// Add `detected_level` structured metadata from level-like fields or words in the line.
    pub discover_log_levels: bool,
    /// Per-ingester stream limit; 0 disables.
    pub max_streams_per_user: usize,
    /// Cluster-wide stream limit; 0 disables.
    pub max_global_streams_per_user: usize,
    /// Accept out-of-order entries within the window (`max_chunk_age / 2`).
    pub unordered_writes: bool,
    pub per_stream_rate_limit: ByteSize,
    pub per_stream_rate_limit_burst: ByteSize,
    pub allow_structured_metadata: bool,
    pub max_structured_metadata_size: ByteSize,
    pub max_structured_metadata_entries_count: usize,
    /// Largest `limit` a log query may ask for.
    pub max_entries_limit_per_query: usize,
    /// Most series a metric query may return.
    pub max_query_series: usize,
    /// Longest query time range; 0 disables.
    #[serde(with = "serde_duration")]
    pub max_query_length: Duration,
    /// How far back queries may reach; 0 disables.
    #[serde(with = "serde_duration")]
    pub max_query_lookback: Duration,
    /// Longest `[range]` inside a query; 0 disables.
    #[serde(with = "serde_duration")]
    pub max_query_range: Duration,
    #[serde(with = "serde_duration")]
    pub query_timeout: Duration,
    pub max_streams_matchers_per_query: usize,
    pub max_chunks_per_query: usize,
    pub max_concurrent_tail_requests: usize,
    pub volume_enabled: bool,
    pub volume_max_series: usize,
    /// Time split of range queries run in parallel; 0 disables.
    #[serde(with = "serde_duration")]
    pub split_queries_by_interval: Duration,
    /// Retention applied by the compactor; 0 keeps data forever.
    #[serde(with = "serde_duration")]
    pub retention_period: Duration,
    /// Loki keys accepted for compatibility that have no effect in Fjord.
    #[serde(flatten, skip_serializing)]
    inert: BTreeMap<String, serde::de::IgnoredAny>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            ingestion_rate_strategy: "global".into(),
            ingestion_rate_mb: 4.0,
            ingestion_burst_size_mb: 6.0,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_label_names_per_series: 15,
            reject_old_samples: true,
            reject_old_samples_max_age: Duration::from_secs(7 * 86400),
            creation_grace_period: Duration::from_secs(600),
            max_line_size: ByteSize(256 << 10),
            max_line_size_truncate: false,
            increment_duplicate_timestamp: false,
            discover_service_name: [
                "service",
                "app",
                "application",
                "app_name",
                "name",
                "app_kubernetes_io_name",
                "container",
                "container_name",
                "k8s_container_name",
                "component",
                "workload",
                "job",
                "k8s_job_name",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            discover_log_levels: true,
            max_streams_per_user: 0,
            max_global_streams_per_user: 5000,
            unordered_writes: true,
            per_stream_rate_limit: ByteSize(3 << 20),
            per_stream_rate_limit_burst: ByteSize(15 << 20),
            allow_structured_metadata: true,
            max_structured_metadata_size: ByteSize(64 << 10),
            max_structured_metadata_entries_count: 128,
            max_entries_limit_per_query: 5000,
            max_query_series: 500,
            max_query_length: Duration::from_secs(721 * 3600),
            max_query_lookback: Duration::ZERO,
            max_query_range: Duration::ZERO,
            query_timeout: Duration::from_secs(60),
            max_streams_matchers_per_query: 1000,
            max_chunks_per_query: 2_000_000,
            max_concurrent_tail_requests: 10,
            volume_enabled: true,
            volume_max_series: 1000,
            split_queries_by_interval: Duration::from_secs(3600),
            retention_period: Duration::ZERO,
            inert: BTreeMap::new(),
        }
    }
}

/// Loki `limits_config` keys that Fjord accepts but does not act on.
const INERT_LOKI_KEYS: &[&str] = &[
    "block_ingestion_policy_until",
    "block_ingestion_status_code",
    "block_ingestion_until",
    "blocked_queries",
    "bloom_block_encoding",
    "bloom_build_builder_response_timeout",
    "bloom_build_max_builders",
    "bloom_build_task_max_retries",
    "bloom_creation_enabled",
    "bloom_gateway_enable_filtering",
    "bloom_max_block_size",
    "bloom_max_bloom_size",
    "bloom_planning_strategy",
    "bloom_prefetch_blocks",
    "bloom_split_series_keyspace_by",
    "bloom_task_target_series_chunk_size",
    "cardinality_limit",
    "dataobj_index_compaction_enabled",
    "dataobj_log_compaction_enabled",
    "debug_engine_streams",
    "debug_engine_tasks",
    "deletion_mode",
    "discover_generic_fields",
    "enforced_labels",
    "engine_results_cache_time_bucket_interval",
    "index_gateway_max_capacity",
    "index_gateway_shard_size",
    "ingestion_partitions_tenant_shard_size",
    "log_level_fields",
    "log_level_from_json_max_depth",
    "max_cache_freshness_per_query",
    "max_line_size_truncate_identifier",
    "max_metadata_cache_freshness",
    "max_querier_bytes_read",
    "max_queriers_per_tenant",
    "max_query_bytes_read",
    "max_query_capacity",
    "max_query_parallelism",
    "max_stats_cache_freshness",
    "metric_aggregation_enabled",
    "min_sharding_lookback",
    "otlp_config",
    "pattern_ingester_tokenizable_json_fields_append",
    "pattern_ingester_tokenizable_json_fields_default",
    "pattern_ingester_tokenizable_json_fields_delete",
    "pattern_persistence_enabled",
    "pattern_persistence_granularity",
    "pattern_rate_threshold",
    "policy_enforced_labels",
    "policy_override_limits",
    "policy_stream_mapping",
    "query_ready_index_num_days",
    "recent_metadata_query_window",
    "retention_stream",
    "ruler_alertmanager_config",
    "ruler_max_rule_groups_per_tenant",
    "ruler_max_rules_per_rule_group",
    "ruler_remote_evaluation_max_response_size",
    "ruler_remote_evaluation_timeout",
    "ruler_remote_write_config",
    "ruler_remote_write_disabled",
    "ruler_tenant_shard_size",
    "s3_sse_kms_encryption_context",
    "s3_sse_kms_key_id",
    "s3_sse_type",
    "shard_aggregations",
    "shard_streams",
    "simulated_push_latency",
    "split_ingester_queries_by_interval",
    "split_instant_metric_queries_by_interval",
    "split_metadata_queries_by_interval",
    "split_recent_metadata_queries_by_interval",
    "tsdb_max_bytes_per_shard",
    "tsdb_max_query_parallelism",
    "tsdb_precompute_chunks",
    "tsdb_sharding_strategy",
    "use_owned_stream_count",
    "required_labels",
    "minimum_labels_number",
];

impl Limits {
    /// Checks the values and the keys; returns the accepted Loki keys that have no effect.
    pub fn validate(&self) -> Result<Vec<String>, String> {
        let mut inert = Vec::new();
        for k in self.inert.keys() {
            if INERT_LOKI_KEYS.contains(&k.as_str()) {
                inert.push(k.clone());
            } else {
                return Err(format!("limits_config: unknown key `{k}`"));
            }
        }
        if !matches!(self.ingestion_rate_strategy.as_str(), "global" | "local") {
            return Err(format!(
                "limits_config.ingestion_rate_strategy: must be `global` or `local`, not `{}`",
                self.ingestion_rate_strategy
            ));
        }
        if self.ingestion_rate_mb < 0.0 || self.ingestion_burst_size_mb < 0.0 {
            return Err("limits_config: ingestion rates must not be negative".into());
        }
        Ok(inert)
    }

    /// Loki keys present in the config that Fjord accepts but does not act on.
    pub fn inert_keys(&self) -> impl Iterator<Item = &str> {
        self.inert.keys().map(|k| k.as_str())
    }

    /// The ingester's stream limit for one tenant (single-ingester view of the global limit).
    pub fn stream_limit(&self) -> Option<usize> {
        let limits = [self.max_streams_per_user, self.max_global_streams_per_user];
        limits.into_iter().filter(|&l| l > 0).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("256KB"), Some(ByteSize(262_144)));
        assert_eq!(ByteSize::parse("3MB"), Some(ByteSize(3 << 20)));
        assert_eq!(ByteSize::parse("1.5kib"), Some(ByteSize(1536)));
        assert_eq!(ByteSize::parse("42"), Some(ByteSize(42)));
        assert_eq!(ByteSize::parse("3 parsecs"), None);
        assert_eq!(ByteSize(262_144).to_string(), "256KB");
    }

    #[test]
    fn stream_limit_takes_the_smallest_set_limit() {
        let mut l = Limits::default();
        assert_eq!(l.stream_limit(), Some(5000));
        l.max_streams_per_user = 100;
        assert_eq!(l.stream_limit(), Some(100));
        l.max_streams_per_user = 0;
        l.max_global_streams_per_user = 0;
        assert_eq!(l.stream_limit(), None);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn known_loki_keys_are_accepted_and_unknown_ones_named() {
        let l: Limits = serde_json::from_str(r#"{"reject_old_samples": false, "max_line_size": "1MB", "bloom_creation_enabled": true}"#).unwrap();
        assert!(!l.reject_old_samples);
        assert_eq!(l.max_line_size, ByteSize(1 << 20));
        assert_eq!(
            l.validate().unwrap(),
            vec!["bloom_creation_enabled".to_string()]
        );
        let l: Limits = serde_json::from_str(r#"{"reject_old_sample": false}"#).unwrap();
        assert_eq!(
            l.validate().unwrap_err(),
            "limits_config: unknown key `reject_old_sample`"
        );
    }
}
