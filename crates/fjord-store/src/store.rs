//! The store: writes flushed chunks as segments plus index files, and answers "which chunks
//! hold streams matching these matchers in this time range" from the merged index.
//!
//! Write order is segment first, then index files: a crash in between leaves an unreferenced
//! segment (garbage, never a dangling reference), and the data is still in the ingester's WAL.
//! On the local filesystem each object is fsynced with its directory before the write counts
//! as done, because the ingester truncates its WAL once a flush is acknowledged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fjord_chunk::Chunk;
use fjord_model::{LabelMatcher, Labels, TenantId};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::{Mutex, RwLock};

use crate::StoreError;
use crate::config::{Backend, StorageConfig};
use crate::index::{IndexedStream, PeriodIndex};
use crate::index_file::{ChunkRef, IndexFile};
use crate::layout;
use crate::segment::{FlushChunk, encode_segment};

/// Figures a flush reports back, for metrics and logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteStats {
    pub chunks: usize,
    pub bytes: u64,
}

struct PeriodState {
    index: RwLock<PeriodIndex>,
    /// When the store was last listed for this period; held while listing so that one task
    /// lists and the others wait for its result.
    listed_at: tokio::sync::Mutex<Option<Instant>>,
}

/// The periods in which a tenant has index files, as last listed.
#[derive(Default)]
struct TenantPeriods {
    periods: std::collections::BTreeSet<i64>,
    listed_at: Option<Instant>,
}

/// Object-store-backed chunk and index storage, shared by ingesters (writes) and queriers.
pub struct Store {
    objects: Arc<dyn ObjectStore>,
    tenant_periods: tokio::sync::Mutex<HashMap<TenantId, TenantPeriods>>,
    /// The directory behind a filesystem backend, for fsync after writes.
    local_root: Option<PathBuf>,
    periods: Mutex<HashMap<(TenantId, i64), Arc<PeriodState>>>,
    chunk_cache: moka::sync::Cache<(Arc<str>, u64), Chunk>,
    refresh_interval: Duration,
    instance: String,
    seq: AtomicU64,
}

impl Store {
    /// Opens the configured backend. `instance` names this writer in segment ids.
    pub fn open(
        config: &StorageConfig,
        data_dir: &std::path::Path,
        instance: &str,
    ) -> Result<Store, StoreError> {
        let objects = config.build(data_dir)?;
        let local_root =
            (config.backend == Backend::Filesystem).then(|| config.filesystem_dir(data_dir));
        Ok(Store::with_objects(objects, local_root, config, instance))
    }

    /// Wraps an already-built object store.
    pub fn with_objects(
        objects: Arc<dyn ObjectStore>,
        local_root: Option<PathBuf>,
        config: &StorageConfig,
        instance: &str,
    ) -> Store {
        let budget = config.chunk_cache_size_mb.saturating_mul(1 << 20);
        Store {
            objects,
            tenant_periods: tokio::sync::Mutex::new(HashMap::new()),
            local_root,
            periods: Mutex::new(HashMap::new()),
            chunk_cache: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_, c: &Chunk| c.len_bytes().min(u32::MAX as usize) as u32)
                .build(),
            refresh_interval: config.index_refresh_interval,
            instance: sanitize_instance(instance),
            seq: AtomicU64::new(0),
        }
    }

    fn next_segment_id(&self) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{ms:013}-{}-{seq:06}", self.instance)
    }

    async fn put_durable(&self, path: &Path, data: Bytes) -> Result<(), StoreError> {
        self.objects.put(path, PutPayload::from(data)).await?;
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            tokio::task::spawn_blocking(move || fsync_file_and_dir(&file))
                .await
                .map_err(|e| StoreError::Io(e.to_string()))??;
        }
        Ok(())
    }

    /// Writes chunks of one tenant as one segment and its index files; returns when both are
    /// durable and visible to queries in this process.
    pub async fn write_chunks(
        &self,
        tenant: &TenantId,
        chunks: &[FlushChunk],
    ) -> Result<WriteStats, StoreError> {
        if chunks.is_empty() {
            return Ok(WriteStats::default());
        }
        let segment: Arc<str> = Arc::from(self.next_segment_id());
        let (data, placements) = encode_segment(chunks);
        let bytes = data.len() as u64;
        self.put_durable(&layout::segment_path(tenant, &segment), Bytes::from(data))
            .await?;

        let mut by_period: HashMap<i64, Vec<(Labels, Vec<ChunkRef>)>> = HashMap::new();
        for (c, p) in chunks.iter().zip(&placements) {
            let min_ts = c.blocks.iter().map(|b| b.meta.min_ts).min().unwrap_or(0);
            let max_ts = c.blocks.iter().map(|b| b.meta.max_ts).max().unwrap_or(0);
            let r = ChunkRef {
                segment: segment.clone(),
                offset: p.offset,
                len: p.len,
                entries: c.blocks.iter().map(|b| b.meta.count).sum(),
                min_ts,
                max_ts,
                raw_bytes: c.blocks.iter().map(|b| b.meta.raw_bytes).sum(),
                metadata_bytes: c.blocks.iter().map(|b| b.meta.metadata_bytes).sum(),
            };
            for period in layout::periods(min_ts, max_ts) {
                by_period
                    .entry(period)
                    .or_default()
                    .push((c.labels.clone(), vec![r.clone()]));
            }
        }
        for (period, streams) in by_period {
            let file = IndexFile {
                segment: segment.clone(),
                streams,
            };
            self.put_durable(
                &layout::index_path(tenant, period, &segment),
                Bytes::from(file.encode()),
            )
            .await?;
            self.period_state(tenant, period)
                .index
                .write()
                .add_file(&file);
            self.tenant_periods
                .lock()
                .await
                .entry(tenant.clone())
                .or_default()
                .periods
                .insert(period);
        }
        Ok(WriteStats {
            chunks: chunks.len(),
            bytes,
        })
    }

    fn period_state(&self, tenant: &TenantId, period: i64) -> Arc<PeriodState> {
        self.periods
            .lock()
            .entry((tenant.clone(), period))
            .or_insert_with(|| {
                Arc::new(PeriodState {
                    index: RwLock::new(PeriodIndex::default()),
                    listed_at: tokio::sync::Mutex::new(None),
                })
            })
            .clone()
    }

    /// Loads index files of a period written by other processes (or before a restart).
    async fn refresh(
        &self,
        tenant: &TenantId,
        period: i64,
    ) -> Result<Arc<PeriodState>, StoreError> {
        let state = self.period_state(tenant, period);
        let mut listed_at = state.listed_at.lock().await;
        if listed_at.is_some_and(|t| t.elapsed() < self.refresh_interval) {
            return Ok(state.clone());
        }
        let started = Instant::now();
        let metas: Vec<object_store::ObjectMeta> = self
            .objects
            .list(Some(&layout::index_prefix(tenant, period)))
            .try_collect()
            .await?;
        let missing: Vec<Path> = {
            let idx = state.index.read();
            metas
                .into_iter()
                .map(|m| m.location)
                .filter(|p| layout::segment_of_index_path(p).is_some_and(|s| !idx.has_file(s)))
                .collect()
        };
        let files: Vec<IndexFile> = futures_util::stream::iter(missing)
            .map(|p| async move {
                let data = self.objects.get(&p).await?.bytes().await?;
                IndexFile::decode(&data).map_err(|e| StoreError::Corrupt(format!("{p}: {e}")))
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        {
            let mut idx = state.index.write();
            for f in &files {
                idx.add_file(f);
            }
        }
        *listed_at = Some(started);
        Ok(state.clone())
    }

    /// Calls `f` with the labels of every stream matching `matchers` with chunks overlapping
    /// `[start, end)`, without copying chunk references; a stream indexed in several periods is
    /// seen once per period.
    pub async fn for_each_series(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        mut f: impl FnMut(&Labels),
    ) -> Result<(), StoreError> {
        if end <= start {
            return Ok(());
        }
        for period in self.periods_in(tenant, start, end - 1).await? {
            let state = self.refresh(tenant, period).await?;
            state
                .index
                .read()
                .for_each_series(matchers, start, end, &mut f);
        }
        Ok(())
    }

    /// Streams matching `matchers` with chunks overlapping `[start, end)`. A stream indexed in
    /// several periods appears once, with each chunk once.
    pub async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<IndexedStream>, StoreError> {
        if end <= start {
            return Ok(Vec::new());
        }
        let mut merged: HashMap<Labels, Vec<ChunkRef>> = HashMap::new();
        for period in self.periods_in(tenant, start, end - 1).await? {
            let state = self.refresh(tenant, period).await?;
            for s in state.index.read().select(matchers, start, end) {
                let chunks = merged.entry(s.labels).or_default();
                for c in s.chunks {
                    if !chunks.contains(&c) {
                        chunks.push(c);
                    }
                }
            }
        }
        Ok(merged
            .into_iter()
            .map(|(labels, chunks)| IndexedStream { labels, chunks })
            .collect())
    }

    /// Periods with index files for `tenant` within `[min_ts, max_ts]`, from one listing of the
    /// tenant's index prefix (refreshed like index files), so a wide time range costs nothing
    /// for the days without data.
    async fn periods_in(
        &self,
        tenant: &TenantId,
        min_ts: i64,
        max_ts: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut all = self.tenant_periods.lock().await;
        let tp = all.entry(tenant.clone()).or_default();
        if tp
            .listed_at
            .is_none_or(|t| t.elapsed() >= self.refresh_interval)
        {
            let started = Instant::now();
            let res = self
                .objects
                .list_with_delimiter(Some(&Path::from(format!("index/{tenant}"))))
                .await?;
            tp.periods.extend(
                res.common_prefixes
                    .iter()
                    .filter_map(|p| p.filename()?.parse::<i64>().ok()),
            );
            tp.listed_at = Some(started);
        }
        Ok(tp
            .periods
            .range(layout::period_of(min_ts)..=layout::period_of(max_ts))
            .copied()
            .collect())
    }

    /// Reads one chunk (through the cache).
    pub async fn fetch_chunk(&self, tenant: &TenantId, r: &ChunkRef) -> Result<Chunk, StoreError> {
        let key = (r.segment.clone(), r.offset);
        if let Some(c) = self.chunk_cache.get(&key) {
            return Ok(c);
        }
        let path = layout::segment_path(tenant, &r.segment);
        let data = self
            .objects
            .get_range(&path, r.offset..r.offset + r.len)
            .await?;
        let chunk = Chunk::open(data)
            .map_err(|e| StoreError::Corrupt(format!("{path} at {}: {e}", r.offset)))?;
        self.chunk_cache.insert(key, chunk.clone());
        Ok(chunk)
    }

    /// Every tenant with data in the store, by listing `index/`.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, StoreError> {
        let res = self
            .objects
            .list_with_delimiter(Some(&Path::from("index")))
            .await?;
        Ok(res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter_map(|t| TenantId::new(t).ok())
            .collect())
    }
}

fn sanitize_instance(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(32)
        .collect();
    if clean.is_empty() {
        "fjord".to_string()
    } else {
        clean
    }
}

fn fsync_file_and_dir(file: &std::path::Path) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::Io(format!("fsync {}: {e}", file.display()));
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io)?;
    }
    Ok(())
}
