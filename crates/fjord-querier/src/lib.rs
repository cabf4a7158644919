//! The querier: reads what ingesters hold in memory and what the store holds, as one
//! [`DataSource`] per tenant for the engine, and answers the label, label-values and series
//! endpoints from the same two places.
//!
//! **Invariant:** the querier never decides query semantics (that is the engine's job); it only
//! gathers blocks and label sets, and entries that appear in both places are left for the
//! engine's duplicate removal.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fjord_chunk::EncodedBlock;
use fjord_engine::{BlockCache, DataSource, DataSpan, EngineError, SelectedStream};
use fjord_model::duration::serde_duration;
use fjord_model::limits::{ByteSize, MemoryLimitSetting};
use fjord_model::memory_budget::{BudgetMetricNames, MemoryBudget};
use fjord_model::service::{IngesterService, SelectRequest};
use fjord_model::{LabelMatcher, Labels, TenantId};
use fjord_store::Store;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `querier` config section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuerierConfig {
    /// Ask ingesters only for queries reaching into this recent window; `0s` asks them always
    /// (the right choice for a single process, whose ingester may hold old, backfilled data).
    #[serde(with = "serde_duration")]
    pub query_ingesters_within: Duration,
    /// Store segments read at once per query (on object stores each with up to 8 ranged
    /// requests at a time).
    pub max_concurrent_fetches: usize,
    /// Byte budget of decoded blocks kept between queries, so repeated queries skip
    /// decompression.
    pub block_cache_size_mb: BlockCacheSize,
    /// Memory the series of all metric queries in flight may hold together while they are
    /// evaluated: a byte size, or `auto` (see [`auto_series_memory_bytes`]). A query that
    /// finds too little free gets 429; one that alone needs more than the whole limit, 400.
    pub max_inflight_series_bytes: MemoryLimitSetting,
    /// About how many compressed bytes of stored chunks a query reads into memory at once: a
    /// query whose range holds more reads and evaluates it in time slices of about this much
    /// (see [`fjord_engine::read_slices`]). A byte size, or `auto` (see
    /// [`auto_read_slice_bytes`]).
    pub read_slice_bytes: MemoryLimitSetting,
}

impl QuerierConfig {
    /// Checks values that serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_inflight_series_bytes == MemoryLimitSetting::Bytes(ByteSize(0)) {
            return Err("querier.max_inflight_series_bytes must be above 0 (or auto)".into());
        }
        if self.read_slice_bytes == MemoryLimitSetting::Bytes(ByteSize(0)) {
            return Err("querier.read_slice_bytes must be above 0 (or auto)".into());
        }
        Ok(())
    }
}

/// The `auto` of `querier.max_inflight_series_bytes` under a memory limit of `limit` bytes: a
/// quarter of it, at least 64 MiB; 1 GiB where the limit cannot be read.
pub fn auto_series_memory_bytes(limit: Option<u64>) -> u64 {
    limit.map_or(1 << 30, |l| (l / 4).max(64 << 20))
}

/// The `auto` of `querier.read_slice_bytes` under a memory limit of `limit` bytes: a sixteenth
/// of it, at least 64 MiB and at most 1 GiB; 256 MiB where the limit cannot be read.
pub fn auto_read_slice_bytes(limit: Option<u64>) -> u64 {
    limit.map_or(256 << 20, |l| (l / 16).clamp(64 << 20, 1 << 30))
}

/// `querier.block_cache_size_mb`: a size in MiB (`0` disables the cache), or `auto`: an eighth
/// of the memory the process may use (its cgroup's limit, else physical memory), at least
/// 64 MiB and at most 4 GiB; 256 MiB where that memory cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockCacheSize {
    #[default]
    Auto,
    Mib(u64),
}

impl BlockCacheSize {
    /// The budget in bytes for a process that may use `memory_limit` bytes (`None`: unknown).
    pub fn bytes(self, memory_limit: Option<u64>) -> u64 {
        match self {
            BlockCacheSize::Mib(mib) => mib.saturating_mul(1 << 20),
            BlockCacheSize::Auto => auto_block_cache_bytes(memory_limit),
        }
    }
}

/// The `auto` budget under a memory limit of `limit` bytes.
fn auto_block_cache_bytes(limit: Option<u64>) -> u64 {
    limit.map_or(256 << 20, |l| (l / 8).clamp(64 << 20, 4 << 30))
}

impl Serialize for BlockCacheSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BlockCacheSize::Auto => s.serialize_str("auto"),
            BlockCacheSize::Mib(mib) => s.serialize_u64(*mib),
        }
    }
}

impl<'de> Deserialize<'de> for BlockCacheSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Mib(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Mib(mib) => Ok(BlockCacheSize::Mib(mib)),
            Raw::Text(t) if t == "auto" => Ok(BlockCacheSize::Auto),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "invalid block cache size {t:?}: a number of MiB (0 disables the cache) or auto"
            ))),
        }
    }
}

impl Default for QuerierConfig {
    fn default() -> Self {
        QuerierConfig {
            query_ingesters_within: Duration::ZERO,
            max_concurrent_fetches: 32,
            block_cache_size_mb: BlockCacheSize::Auto,
            max_inflight_series_bytes: MemoryLimitSetting::Auto,
            read_slice_bytes: MemoryLimitSetting::Auto,
        }
    }
}

pub struct Querier {
    cfg: QuerierConfig,
    ingester: Option<Arc<dyn IngesterService>>,
    store: Arc<Store>,
    block_cache: Option<Arc<BlockCache>>,
    series_memory: Arc<MemoryBudget>,
    /// Compressed bytes of stored chunks a query reads at once (`querier.read_slice_bytes`).
    read_slice_bytes: u64,
}

fn storage(e: impl std::fmt::Display) -> EngineError {
    EngineError::Storage(e.to_string())
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Querier {
    /// A querier over an optional ingester and the store, in a process that may use
    /// `memory_limit` bytes (`None`: unknown), which sizes an `auto` block cache; its metrics go
    /// to `registry`.
    pub fn new(
        cfg: QuerierConfig,
        memory_limit: Option<u64>,
        ingester: Option<Arc<dyn IngesterService>>,
        store: Arc<Store>,
        registry: &mut Registry,
    ) -> Self {
        let budget = cfg.block_cache_size_mb.bytes(memory_limit);
        tracing::info!(
            budget_mib = budget >> 20,
            setting = ?cfg.block_cache_size_mb,
            "querier block cache"
        );
        let block_cache = (budget > 0).then(|| {
            let cache = BlockCache::new(budget);
            cache.register_metrics(registry);
            Arc::new(cache)
        });
        let series_memory = MemoryBudget::new(
            cfg.max_inflight_series_bytes
                .bytes(|| auto_series_memory_bytes(memory_limit)),
        );
        tracing::info!(
            limit_mib = series_memory.limit() >> 20,
            setting = ?cfg.max_inflight_series_bytes,
            "memory of metric queries' series in flight"
        );
        series_memory.register_metrics(
            registry,
            BudgetMetricNames {
                in_use: (
                    "fjord_querier_inflight_series_bytes",
                    "Memory the series of metric queries in flight hold while they are evaluated",
                ),
                limit: (
                    "fjord_querier_inflight_series_bytes_limit",
                    "Memory the series of metric queries in flight may hold (querier.max_inflight_series_bytes)",
                ),
                refused: (
                    "fjord_querier_series_memory_refused",
                    "Series refused because the memory of metric queries' series would pass its limit",
                ),
            },
        );
        let read_slice_bytes = cfg
            .read_slice_bytes
            .bytes(|| auto_read_slice_bytes(memory_limit));
        tracing::info!(
            slice_bytes = read_slice_bytes,
            setting = ?cfg.read_slice_bytes,
            "compressed bytes a query reads at once"
        );
        Querier {
            cfg,
            ingester,
            store,
            block_cache,
            series_memory,
            read_slice_bytes,
        }
    }

    /// The data of one tenant, for the engine.
    pub fn source(&self, tenant: TenantId) -> TenantSource<'_> {
        TenantSource {
            querier: self,
            tenant,
        }
    }

    fn ingester_for(&self, end: i64) -> Option<&Arc<dyn IngesterService>> {
        let within = self.cfg.query_ingesters_within;
        let ing = self.ingester.as_ref()?;
        if within.is_zero() || end >= now_ns() - within.as_nanos() as i64 {
            Some(ing)
        } else {
            None
        }
    }

    /// Label sets of streams matching any of `selectors` (all streams when empty) with data
    /// in `[start, end)`.
    pub async fn series(
        &self,
        tenant: &TenantId,
        selectors: &[Vec<LabelMatcher>],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, EngineError> {
        let mut out: BTreeSet<Labels> = BTreeSet::new();
        self.for_each_series(tenant, selectors, start, end, |l| {
            if !out.contains(l) {
                out.insert(l.clone());
            }
        })
        .await?;
        Ok(out.into_iter().collect())
    }

    /// Label names present on matching streams, sorted.
    pub async fn label_names(
        &self,
        tenant: &TenantId,
        selector: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, EngineError> {
        let mut names: BTreeSet<String> = BTreeSet::new();
        self.for_each_series(tenant, &[selector.to_vec()], start, end, |l| {
            for label in l.iter() {
                if !names.contains(label.name.as_str()) {
                    names.insert(label.name.to_string());
                }
            }
        })
        .await?;
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` on matching streams, sorted.
    pub async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        selector: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, EngineError> {
        let mut values: BTreeSet<String> = BTreeSet::new();
        self.for_each_series(tenant, &[selector.to_vec()], start, end, |l| {
            if let Some(v) = l.get(name)
                && !values.contains(v)
            {
                values.insert(v.to_string());
            }
        })
        .await?;
        Ok(values.into_iter().collect())
    }

    /// Calls `f` with the labels of every stream matching any of `selectors` (all streams when
    /// there are none) with data in `[start, end)`, from the ingester and the store; a stream
    /// may be seen more than once. The label and series APIs read labels only, so nothing else
    /// of the index is copied.
    async fn for_each_series(
        &self,
        tenant: &TenantId,
        selectors: &[Vec<LabelMatcher>],
        start: i64,
        end: i64,
        mut f: impl FnMut(&Labels),
    ) -> Result<(), EngineError> {
        let all = [Vec::new()];
        let selectors = if selectors.is_empty() {
            &all[..]
        } else {
            selectors
        };
        for matchers in selectors {
            if let Some(ing) = self.ingester_for(end) {
                let req = SelectRequest {
                    matchers: matchers.clone(),
                    start,
                    end,
                };
                ing.series(tenant, &req)
                    .await
                    .map_err(storage)?
                    .iter()
                    .for_each(&mut f);
            }
            self.store
                .for_each_series(tenant, matchers, start, end, &mut f)
                .await
                .map_err(storage)?;
        }
        Ok(())
    }
}

/// One tenant's view of the data.
pub struct TenantSource<'a> {
    querier: &'a Querier,
    tenant: TenantId,
}

#[async_trait]
impl DataSource for TenantSource<'_> {
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        clauses: &[Vec<Vec<u8>>],
    ) -> Result<Vec<SelectedStream>, EngineError> {
        let q = self.querier;
        // The ingester's streams by labels; each store stream is looked up once, not per chunk.
        let mut streams: HashMap<Labels, Vec<EncodedBlock>> = HashMap::new();
        if let Some(ing) = q.ingester_for(end) {
            let req = SelectRequest {
                matchers: matchers.to_vec(),
                start,
                end,
            };
            for s in ing.select(&self.tenant, &req).await.map_err(storage)? {
                let blocks = streams.entry(s.labels).or_default();
                for b in s.blocks {
                    blocks.push(EncodedBlock::from_bytes(b).map_err(storage)?);
                }
            }
        }
        let stored = q
            .store
            .select(&self.tenant, matchers, start, end)
            .await
            .map_err(storage)?;
        let refs: Vec<fjord_store::ChunkRef> = stored
            .iter()
            .flat_map(|s| s.chunks.iter().cloned())
            .collect();
        let mut chunks = q
            .store
            .fetch_blocks(
                &self.tenant,
                &refs,
                (start, end),
                clauses,
                q.cfg.max_concurrent_fetches,
            )
            .await
            .map_err(storage)?
            .into_iter();
        // The store lists each stream once, its chunks in `refs` order.
        let mut selected = Vec::with_capacity(stored.len() + streams.len());
        for s in stored {
            let mut blocks = if streams.is_empty() {
                Vec::new()
            } else {
                streams.remove(&s.labels).unwrap_or_default()
            };
            for _ in 0..s.chunks.len() {
                blocks.extend(chunks.next().unwrap_or_default());
            }
            selected.push(SelectedStream {
                labels: s.labels,
                blocks,
            });
        }
        selected.extend(
            streams
                .into_iter()
                .map(|(labels, blocks)| SelectedStream { labels, blocks }),
        );
        Ok(selected)
    }

    async fn layout(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<DataSpan>, EngineError> {
        // The store's chunks only: what ingesters hold is in memory anyway, bounded by their
        // own limits.
        let stored = self
            .querier
            .store
            .select(&self.tenant, matchers, start, end)
            .await
            .map_err(storage)?;
        Ok(stored
            .iter()
            .flat_map(|s| &s.chunks)
            .map(|c| DataSpan {
                min_ts: c.min_ts,
                max_ts: c.max_ts,
                bytes: c.len,
            })
            .collect())
    }

    fn slice_bytes(&self) -> u64 {
        self.querier.read_slice_bytes
    }

    fn block_cache(&self) -> Option<Arc<BlockCache>> {
        self.querier.block_cache.clone()
    }

    fn series_memory(&self) -> Option<Arc<MemoryBudget>> {
        Some(self.querier.series_memory.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_block_cache_is_an_eighth_of_the_memory_limit_within_bounds() {
        assert_eq!(auto_block_cache_bytes(Some(16 << 30)), 2 << 30);
        assert_eq!(auto_block_cache_bytes(Some(256 << 20)), 64 << 20);
        assert_eq!(auto_block_cache_bytes(Some(256 << 30)), 4 << 30);
        assert_eq!(auto_block_cache_bytes(None), 256 << 20);
        assert_eq!(BlockCacheSize::Mib(0).bytes(Some(16 << 30)), 0);
        assert_eq!(BlockCacheSize::Mib(3).bytes(None), 3 << 20);
        assert_eq!(BlockCacheSize::Auto.bytes(Some(1 << 30)), 128 << 20);
    }

    #[test]
    fn auto_series_memory_is_a_quarter_of_the_memory_limit_at_least_64_mib() {
        assert_eq!(auto_series_memory_bytes(Some(16 << 30)), 4 << 30);
        assert_eq!(auto_series_memory_bytes(Some(128 << 20)), 64 << 20);
        assert_eq!(auto_series_memory_bytes(None), 1 << 30);
    }

    #[test]
    fn auto_read_slice_is_a_sixteenth_of_the_memory_limit_within_bounds() {
        assert_eq!(auto_read_slice_bytes(Some(8 << 30)), 512 << 20);
        assert_eq!(auto_read_slice_bytes(Some(256 << 20)), 64 << 20);
        assert_eq!(auto_read_slice_bytes(Some(64 << 30)), 1 << 30);
        assert_eq!(auto_read_slice_bytes(None), 256 << 20);
    }

    #[test]
    fn block_cache_size_reads_a_number_or_auto() {
        let read = |text: &str| serde_yaml::from_str::<BlockCacheSize>(text);
        assert_eq!(read("auto").unwrap(), BlockCacheSize::Auto);
        assert_eq!(read("768").unwrap(), BlockCacheSize::Mib(768));
        assert_eq!(read("0").unwrap(), BlockCacheSize::Mib(0));
        let err = read("lots").unwrap_err().to_string();
        assert!(
            err.contains("a number of MiB (0 disables the cache) or auto"),
            "{err}"
        );
        for size in [BlockCacheSize::Auto, BlockCacheSize::Mib(512)] {
            let text = serde_yaml::to_string(&size).unwrap();
            assert_eq!(read(&text).unwrap(), size);
        }
    }
}
