//! The store: writes flushed chunks as segments plus index files, and answers "which chunks
//! hold streams matching these matchers in this time range" from the merged index.
//!
//! Write order is segment first, then index files: a crash in between leaves an unreferenced
//! segment (garbage, never a dangling reference), and the data is still in the ingester's WAL.
//! On the local filesystem each object is fsynced with its directory before the write counts
//! as done, because the ingester truncates its WAL once a flush is acknowledged.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fjord_chunk::BlockMeta;
use fjord_model::{LabelMatcher, Labels, TenantId};
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::{Mutex, RwLock};

use crate::StoreError;
use crate::config::{Backend, StorageConfig};
use crate::index::{IndexedStream, LiveFile, PeriodIndex, ReplacedFile};
use crate::index_file::{ChunkRef, IndexFile};
use crate::layout;
use crate::segment::{FlushChunk, SegmentFormat, encode_segment};

mod fetch;

use fetch::CachedChunk;
pub use fetch::ReadPart;

/// The index files of one period: what decides whether it needs compacting, and what a
/// compaction replaced.
#[derive(Debug, Clone)]
pub struct PeriodFiles {
    pub live: Vec<LiveFile>,
    pub replaced: Vec<ReplacedFile>,
}

/// What a compaction of one period reads.
#[derive(Debug, Clone)]
pub struct PeriodSnapshot {
    pub files: PeriodFiles,
    pub streams: Vec<IndexedStream>,
    /// Chunks, as (segment, offset), that only compactions' files list.
    pub settled: HashSet<(Arc<str>, u64)>,
}

/// An object found by listing.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub id: Arc<str>,
    pub written: SystemTime,
    pub size: u64,
}

/// A segment just written: each chunk's ref, in the order given, and the object's size.
/// Holding it keeps the segment pinned.
#[derive(Debug)]
pub struct WrittenSegment {
    pub refs: Vec<ChunkRef>,
    pub bytes: u64,
    pin: SegmentPin,
}

impl WrittenSegment {
    pub fn id(&self) -> &Arc<str> {
        &self.pin.id
    }
}

/// Keeps a segment id in the store's pinned set while alive.
#[derive(Debug)]
struct SegmentPin {
    pinned: Arc<Mutex<HashSet<Arc<str>>>>,
    id: Arc<str>,
}

impl SegmentPin {
    fn new(pinned: &Arc<Mutex<HashSet<Arc<str>>>>, id: Arc<str>) -> SegmentPin {
        pinned.lock().insert(id.clone());
        SegmentPin {
            pinned: pinned.clone(),
            id,
        }
    }
}

impl Drop for SegmentPin {
    fn drop(&mut self) {
        self.pinned.lock().remove(&self.id);
    }
}

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
    /// The directory behind a filesystem backend, for fsync after writes and for reads
    /// ([`fetch`]'s `read_local_ranges`).
    local_root: Option<PathBuf>,
    periods: Mutex<HashMap<(TenantId, i64), Arc<PeriodState>>>,
    chunk_cache: moka::sync::Cache<(Arc<str>, u64), CachedChunk>,
    /// Chunks whose tail follows their body are searched tail first from this length (see
    /// [`Store::fetch_blocks`]); a tail a segment gathers apart always is.
    search_tails_from: u64,
    /// How far apart ranges of a segment may lie and be read with one request
    /// ([`fetch::merge_gap`]).
    merge_gap: u64,
    /// How segments are written (`storage.chunk_format`).
    segment_format: SegmentFormat,
    reads: fetch::ReadMetrics,
    refresh_interval: Duration,
    /// Segments written but not yet published (see [`WrittenSegment`]).
    pinned: Arc<Mutex<HashSet<Arc<str>>>>,
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
        Store::with_objects(objects, local_root, config, instance)
    }

    /// Wraps an already-built object store; fails on an invalid `storage.chunk_format`.
    pub fn with_objects(
        objects: Arc<dyn ObjectStore>,
        local_root: Option<PathBuf>,
        config: &StorageConfig,
        instance: &str,
    ) -> Result<Store, StoreError> {
        let budget = config.chunk_cache_size_mb.saturating_mul(1 << 20);
        Ok(Store {
            objects,
            tenant_periods: tokio::sync::Mutex::new(HashMap::new()),
            local_root,
            periods: Mutex::new(HashMap::new()),
            chunk_cache: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(|_, c: &CachedChunk| c.len_bytes().min(u32::MAX as usize) as u32)
                .build(),
            refresh_interval: config.index_refresh_interval,
            search_tails_from: fetch::search_tails_from(config.backend),
            merge_gap: fetch::merge_gap(config.backend),
            segment_format: config.write_format()?,
            reads: fetch::ReadMetrics::default(),
            pinned: Arc::default(),
            // A random part keeps ids apart between processes with the same instance name.
            instance: format!(
                "{}-{:08x}",
                sanitize_instance(instance),
                rand::random::<u32>()
            ),
            seq: AtomicU64::new(0),
        })
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
        let written = self.write_segment(tenant, chunks).await?;
        let mut by_period: HashMap<i64, Vec<(Labels, Vec<ChunkRef>)>> = HashMap::new();
        for (c, r) in chunks.iter().zip(&written.refs) {
            for period in layout::periods(r.min_ts, r.max_ts) {
                by_period
                    .entry(period)
                    .or_default()
                    .push((c.labels.clone(), vec![r.clone()]));
            }
        }
        for (period, streams) in by_period {
            let file = IndexFile {
                id: written.id().clone(),
                replaces: Vec::new(),
                streams,
            };
            self.publish_index(tenant, period, &file).await?;
        }
        Ok(WriteStats {
            chunks: chunks.len(),
            bytes: written.bytes,
        })
    }

    /// Writes chunks as one durable segment object, not yet referenced by any index file. The
    /// segment stays pinned (safe from garbage collection in this process) until the returned
    /// value is dropped, which the caller does once the index files naming it are published.
    pub async fn write_segment(
        &self,
        tenant: &TenantId,
        chunks: &[FlushChunk],
    ) -> Result<WrittenSegment, StoreError> {
        let segment: Arc<str> = Arc::from(self.next_object_id());
        let pin = SegmentPin::new(&self.pinned, segment.clone());
        let (data, placements) = encode_segment(chunks, self.segment_format)
            .map_err(|e| StoreError::Corrupt(format!("encoding a segment: {e}")))?;
        let bytes = data.len() as u64;
        self.put_durable(&layout::segment_path(tenant, &segment), Bytes::from(data))
            .await?;
        let refs = chunks
            .iter()
            .zip(&placements)
            .map(|(c, p)| {
                let total = BlockMeta::total(c.blocks.iter().map(|b| &b.meta)).unwrap_or_default();
                ChunkRef {
                    segment: segment.clone(),
                    offset: p.offset,
                    len: p.len,
                    entries: total.count,
                    min_ts: total.min_ts,
                    max_ts: total.max_ts,
                    raw_bytes: total.raw_bytes,
                    metadata_bytes: total.metadata_bytes,
                    tail_len: p.tail_len,
                    tail_offset: p.tail_offset,
                }
            })
            .collect();
        Ok(WrittenSegment { refs, bytes, pin })
    }

    /// Segments this process has written but not yet published in an index file.
    pub fn pinned_segments(&self) -> HashSet<Arc<str>> {
        self.pinned.lock().clone()
    }

    /// Writes an index file of `period` durably and adds it to this process's index. Every
    /// segment it references must be durable already.
    pub async fn publish_index(
        &self,
        tenant: &TenantId,
        period: i64,
        file: &IndexFile,
    ) -> Result<(), StoreError> {
        self.put_durable(
            &layout::index_path(tenant, period, &file.id),
            Bytes::from(file.encode()),
        )
        .await?;
        self.period_state(tenant, period)
            .index
            .write()
            .add_file(file, SystemTime::now());
        self.tenant_periods
            .lock()
            .await
            .entry(tenant.clone())
            .or_default()
            .periods
            .insert(period);
        Ok(())
    }

    /// A fresh id for a segment or a compaction's index file: the time, this writer's name and
    /// a sequence number, so ids sort by age and never collide between writers.
    pub fn next_object_id(&self) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("{ms:013}-{}-{seq:06}", self.instance)
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
        let missing: Vec<(Path, SystemTime)> = {
            let idx = state.index.read();
            metas
                .into_iter()
                .filter(|m| layout::index_file_id(&m.location).is_some_and(|id| !idx.has_file(id)))
                .map(|m| (m.location, m.last_modified.into()))
                .collect()
        };
        // A file listed here may be deleted before it is read, once a compaction replaced it;
        // the compaction's own file is then listed (or loaded already) instead.
        let files: Vec<Option<(IndexFile, SystemTime)>> = futures_util::stream::iter(missing)
            .map(|(p, written)| async move {
                let data = match self.objects.get(&p).await {
                    Ok(got) => got.bytes().await?,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                let file = IndexFile::decode(&data)
                    .map_err(|e| StoreError::Corrupt(format!("{p}: {e}")))?;
                if layout::index_file_id(&p) != Some(&*file.id) {
                    return Err(StoreError::Corrupt(format!(
                        "{p}: the file calls itself {}",
                        file.id
                    )));
                }
                Ok(Some((file, written)))
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        {
            let mut idx = state.index.write();
            for (f, written) in files.iter().flatten() {
                idx.add_file(f, *written);
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
        for state in self.period_states(tenant, start, end).await? {
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
        let states = self.period_states(tenant, start, end).await?;
        if let [state] = &states[..] {
            // One period's index lists each stream once, and each of its chunks once.
            return Ok(state.index.read().select(matchers, start, end));
        }
        let mut merged: HashMap<Labels, Vec<ChunkRef>> = HashMap::new();
        for state in states {
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

    /// The refreshed index of every period with index files overlapping `[start, end)`.
    async fn period_states(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
    ) -> Result<Vec<Arc<PeriodState>>, StoreError> {
        if end <= start {
            return Ok(Vec::new());
        }
        let mut states = Vec::new();
        for period in self.periods_in(tenant, start, end - 1).await? {
            states.push(self.refresh(tenant, period).await?);
        }
        Ok(states)
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

    /// Every period in which `tenant` has index files.
    pub async fn periods(&self, tenant: &TenantId) -> Result<Vec<i64>, StoreError> {
        self.periods_in(tenant, i64::MIN, i64::MAX).await
    }

    /// The live and superseded index files of a period, after loading the files other
    /// processes wrote.
    pub async fn period_files(
        &self,
        tenant: &TenantId,
        period: i64,
    ) -> Result<PeriodFiles, StoreError> {
        let state = self.refresh(tenant, period).await?;
        Ok(files_of(&state.index.read()))
    }

    /// A period's files and its streams with all their chunks, after loading the files other
    /// processes wrote.
    pub async fn period_snapshot(
        &self,
        tenant: &TenantId,
        period: i64,
    ) -> Result<PeriodSnapshot, StoreError> {
        let state = self.refresh(tenant, period).await?;
        let idx = state.index.read();
        Ok(PeriodSnapshot {
            files: files_of(&idx),
            streams: idx.streams().cloned().collect(),
            settled: idx.settled_chunks(),
        })
    }

    /// The segments a period's live index files reference.
    pub async fn referenced_segments(
        &self,
        tenant: &TenantId,
        period: i64,
    ) -> Result<HashSet<Arc<str>>, StoreError> {
        let state = self.refresh(tenant, period).await?;
        Ok(state.index.read().referenced_segments())
    }

    /// Every segment object of `tenant` with its modification time.
    pub async fn segments(&self, tenant: &TenantId) -> Result<Vec<StoredObject>, StoreError> {
        let metas: Vec<object_store::ObjectMeta> = self
            .objects
            .list(Some(&layout::segments_prefix(tenant)))
            .try_collect()
            .await?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                Some(StoredObject {
                    id: Arc::from(m.location.filename()?),
                    written: m.last_modified.into(),
                    size: m.size,
                })
            })
            .collect())
    }

    /// Deletes a segment object; one already gone counts as deleted.
    pub async fn delete_segment(&self, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
        self.delete(&layout::segment_path(tenant, id)).await
    }

    /// Deletes an index file object; one already gone counts as deleted.
    pub async fn delete_index_file(
        &self,
        tenant: &TenantId,
        period: i64,
        id: &str,
    ) -> Result<(), StoreError> {
        self.delete(&layout::index_path(tenant, period, id)).await
    }

    async fn delete(&self, path: &Path) -> Result<(), StoreError> {
        match self.objects.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
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

fn files_of(idx: &PeriodIndex) -> PeriodFiles {
    PeriodFiles {
        live: idx.live_files().cloned().collect(),
        replaced: idx.replaced_files().collect(),
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
