//! Reading chunks for queries: whole chunks through the chunk cache, in runs where they lie
//! back to back ([`Store::fetch_chunks`]), and for searches, chunk tails first and then only
//! the blocks that may match ([`Store::fetch_blocks`]).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use fjord_chunk::{BlockMeta, Chunk, ChunkSummary, EncodedBlock};
use fjord_model::TenantId;
use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Store;
use crate::StoreError;
use crate::config::Backend;
use crate::index_file::ChunkRef;
use crate::layout;

/// What a read fetched, for `fjord_store_read_bytes_total`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ReadPart {
    /// Whole chunks (or, after their tail, a chunk's blocks).
    Chunk,
    /// Chunk tails, which searches read first.
    Tail,
    /// Single blocks a search's tails showed may match.
    Block,
    /// Bytes between wanted ranges, read to save a request ([`merge_gap`]).
    Gap,
}

impl ReadPart {
    fn label(self) -> PartLabel {
        PartLabel {
            part: match self {
                ReadPart::Chunk => "chunk",
                ReadPart::Tail => "tail",
                ReadPart::Block => "block",
                ReadPart::Gap => "gap",
            },
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartLabel {
    part: &'static str,
}

/// Reads from the object store: bytes by part, and requests.
#[derive(Debug, Clone, Default)]
pub(super) struct ReadMetrics {
    bytes: Family<PartLabel, Counter>,
    requests: Counter,
}

impl ReadMetrics {
    fn count(&self, part: ReadPart, bytes: usize) {
        self.bytes.get_or_create(&part.label()).inc_by(bytes as u64);
    }
}

/// On object stores a request costs about as much as transferring this many bytes (which is
/// why `object_store`'s `get_ranges` merges ranges less than this far apart).
const OBJECT_STORE_REQUEST_BYTES: u64 = 1 << 20;

/// GETs a store issues at once for one [`Store::read_ranges`] call.
const RANGE_READS_AT_ONCE: usize = 8;

/// The longest read that ranges are merged into on object stores: one request for a whole
/// segment of tens of MiB would transfer it over one connection, where several requests in
/// parallel go faster. (A single range longer than this is still read with one request.)
const MAX_MERGED_READ: u64 = 8 << 20;

/// The smallest chunk whose tail, when it follows the chunk's body, is worth reading first for
/// a search on `backend`: any on local storage, where a read costs its bytes; on object stores
/// only chunks long enough that skipping their blocks saves more than the extra request for
/// the tail costs. (Tails a segment gathers are read together, one request for all of them,
/// so they are always read first.)
pub(super) fn search_tails_from(backend: Backend) -> u64 {
    match backend {
        Backend::Filesystem | Backend::Memory => 0,
        Backend::S3 | Backend::Gcs | Backend::Azure => OBJECT_STORE_REQUEST_BYTES,
    }
}

/// How far apart two ranges of one segment may lie on `backend` and still be read with one
/// request: on object stores, where a request costs about as much as 1 MiB of transfer, up to
/// a quarter of that (a query over some of a segment's streams wants chunks, or tails, a few
/// KiB apart); none on local storage, where a read costs its bytes.
pub(super) fn merge_gap(backend: Backend) -> u64 {
    match backend {
        Backend::Filesystem | Backend::Memory => 0,
        Backend::S3 | Backend::Gcs | Backend::Azure => OBJECT_STORE_REQUEST_BYTES / 4,
    }
}

/// Bytes of chunk `r` lying in one piece at its offset: all of it, or its body when its tail
/// lies apart (a segment of version 2 gathers the tails after all the bodies).
fn piece_len(r: &ChunkRef) -> u64 {
    if r.tail_apart() {
        r.len.saturating_sub(u64::from(r.tail_len))
    } else {
        r.len
    }
}

/// The byte range of chunk `r`'s piece at its offset ([`piece_len`]) in its segment at `path`.
fn piece_range(path: &Path, r: &ChunkRef) -> Result<Range<u64>, StoreError> {
    checked_range(path, r.offset, piece_len(r))
}

/// The byte range of chunk `r`'s tail in its segment at `path`.
fn tail_range(path: &Path, r: &ChunkRef) -> Result<Range<u64>, StoreError> {
    checked_range(path, r.tail_offset, u64::from(r.tail_len))
}

fn checked_range(path: &Path, start: u64, len: u64) -> Result<Range<u64>, StoreError> {
    let end = start
        .checked_add(len)
        .ok_or_else(|| StoreError::Corrupt(format!("{path}: chunk ref at {start} overflows")))?;
    Ok(start..end)
}

/// The error for chunk `r` of the segment at `path` being unreadable.
fn corrupt_chunk(path: &Path, r: &ChunkRef, e: fjord_chunk::ChunkError) -> StoreError {
    StoreError::Corrupt(format!("{path} at {}: {e}", r.offset))
}

/// Parses `tail`, read for chunk `r`, against the chunk's length.
fn parse_tail(r: &ChunkRef, tail: Bytes) -> Result<ChunkSummary, fjord_chunk::ChunkError> {
    ChunkSummary::parse(tail, usize::try_from(r.len).unwrap_or(usize::MAX))
}

/// The bytes read for one range ([`Store::read_ranges`]).
#[derive(Debug, Clone, Default)]
struct Piece {
    bytes: Bytes,
    /// Whether `bytes` are a slice of a buffer read for several ranges (a run of an object
    /// store's adjacent ranges, read with one request), rather than an allocation of their own.
    shared: bool,
}

impl Piece {
    /// The bytes in an allocation of their own, for what the chunk cache keeps: a cached chunk
    /// or summary holding a slice of a shared buffer (the whole segment, for a query over all of
    /// its chunks) would keep all of it alive while the cache counts only the slice (a cache of
    /// 8 MiB held 80 MiB after a few queries). Bytes already alone are kept as they are, not
    /// copied: a cold query over every stream would otherwise write each chunk twice.
    fn owned(self) -> Bytes {
        if self.shared {
            Bytes::copy_from_slice(&self.bytes)
        } else {
            self.bytes
        }
    }
}

/// Opens the bytes read for chunk `r` of the segment at `path`.
fn open_read_chunk(path: &Path, r: &ChunkRef, data: Bytes) -> Result<Chunk, StoreError> {
    Chunk::open(data).map_err(|e| corrupt_chunk(path, r, e))
}

/// The bytes of `range` of the object at `path`, out of `data`, which was read from offset
/// `base`; a read that came back short is an error.
fn slice_read(
    path: &Path,
    data: &Bytes,
    base: u64,
    range: &Range<u64>,
) -> Result<Bytes, StoreError> {
    let from = usize::try_from(range.start.wrapping_sub(base)).ok();
    let to = usize::try_from(range.end.wrapping_sub(base)).ok();
    from.zip(to)
        .filter(|(from, to)| from <= to && *to <= data.len())
        .map(|(from, to)| data.slice(from..to))
        .ok_or_else(|| StoreError::Corrupt(format!("{path}: short read at {}", range.start)))
}

/// Reads `ranges` of the local file `file` (`path` in the store) with one open on a blocking
/// thread, into buffers allocated here, on the calling task's thread.
///
/// `object_store`'s local `get_ranges` allocates them on the blocking thread. The allocator
/// returns a buffer another thread frees to the heap of the thread that allocated it, and that
/// heap takes it back only when its thread allocates again; tokio's blocking threads sit idle
/// between reads, so under a steady query load each of them kept its last reads' buffers and
/// RSS stood far above the live heap. The threads that run tasks allocate all the time.
async fn read_local_ranges(
    file: PathBuf,
    path: &Path,
    ranges: &[Range<u64>],
) -> Result<Vec<Piece>, StoreError> {
    let mut buffers = Vec::with_capacity(ranges.len());
    for r in ranges {
        let mut buffer: Vec<u8> = Vec::new();
        usize::try_from(r.end.saturating_sub(r.start))
            .ok()
            .and_then(|len| buffer.try_reserve_exact(len).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{path}: cannot read {}..{}", r.start, r.end))
            })?;
        buffers.push((r.clone(), buffer));
    }
    let filled = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut f = std::fs::File::open(&file)?;
        for (r, buffer) in &mut buffers {
            f.seek(SeekFrom::Start(r.start))?;
            (&mut f)
                .take(r.end.saturating_sub(r.start))
                .read_to_end(buffer)?;
        }
        Ok(buffers)
    })
    .await
    .map_err(|e| StoreError::Io(e.to_string()))?
    .map_err(|e| StoreError::Io(format!("{path}: {e}")))?;
    filled
        .into_iter()
        .map(|(r, buffer)| {
            if buffer.len() as u64 == r.end.saturating_sub(r.start) {
                Ok(Piece {
                    bytes: Bytes::from(buffer),
                    shared: false,
                })
            } else {
                Err(StoreError::Corrupt(format!(
                    "{path}: short read at {}",
                    r.start
                )))
            }
        })
        .collect()
}

/// The chunk cache's size, read on each scrape.
#[derive(Debug)]
struct ChunkCacheCollector {
    cache: moka::sync::Cache<(Arc<str>, u64), CachedChunk>,
}

impl Collector for ChunkCacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let limit = self.cache.policy().max_capacity().unwrap_or(0);
        for (name, help, value) in [
            (
                "fjord_store_chunk_cache_bytes",
                "Bytes of chunks and chunk tails the chunk cache holds (storage.chunk_cache_size_mb); updated as the cache settles its writes",
                self.cache.weighted_size(),
            ),
            (
                "fjord_store_chunk_cache_entries",
                "Chunks and chunk tails the chunk cache holds",
                self.cache.entry_count(),
            ),
            (
                "fjord_store_chunk_cache_limit_bytes",
                "Bytes the chunk cache may hold (storage.chunk_cache_size_mb)",
                limit,
            ),
        ] {
            let gauge = ConstGauge::new(value as f64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// What the chunk cache holds of a chunk: all of it, or the summary a search read first.
#[derive(Debug, Clone)]
pub(super) enum CachedChunk {
    Whole(Chunk),
    Summary(Arc<ChunkSummary>),
}

impl CachedChunk {
    pub(super) fn len_bytes(&self) -> usize {
        match self {
            CachedChunk::Whole(c) => c.len_bytes(),
            CachedChunk::Summary(s) => s.tail_len(),
        }
    }
}

/// The blocks of `chunk` that may hold entries in `[start, end)`.
fn blocks_overlapping(chunk: &Chunk, start: i64, end: i64) -> Vec<EncodedBlock> {
    chunk
        .blocks()
        .iter()
        .filter(|b| b.meta.overlaps(start, end))
        .cloned()
        .collect()
}

/// Groups `(segment, item)` pairs by segment.
fn by_segment<T>(items: impl IntoIterator<Item = (Arc<str>, T)>) -> Vec<(Arc<str>, Vec<T>)> {
    let mut groups: HashMap<Arc<str>, Vec<T>> = HashMap::new();
    for (segment, item) in items {
        groups.entry(segment).or_default().push(item);
    }
    groups.into_iter().collect()
}

/// A chunk to search: its index in the refs, and its summary if the cache holds it.
type PlannedChunk = (usize, Option<Arc<ChunkSummary>>);

/// One segment's part of a search ([`Store::fetch_blocks`]).
struct SegmentSearch<'a> {
    path: Path,
    refs: &'a [ChunkRef],
    /// `[start, end)`.
    range: (i64, i64),
    clauses: &'a [Vec<Vec<u8>>],
}

impl SegmentSearch<'_> {
    /// The blocks of the chunk that overlap the range and may match.
    fn plan(&self, summary: &ChunkSummary) -> Vec<usize> {
        let (start, end) = self.range;
        (0..summary.blocks().len())
            .filter(|&b| {
                let block = &summary.blocks()[b];
                block.meta.overlaps(start, end) && block.may_match(self.clauses)
            })
            .collect()
    }
}

impl Store {
    /// Exposes the store's reads as `fjord_store_read_bytes_total{part}` and
    /// `fjord_store_read_requests_total`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "fjord_store_read_bytes",
            "Bytes read from the object store, by part: whole chunks, chunk tails, single blocks, \
             and gaps between them read to save requests",
            self.reads.bytes.clone(),
        );
        registry.register(
            "fjord_store_read_requests",
            "Ranged read requests sent to the object store",
            self.reads.requests.clone(),
        );
        registry.register_collector(Box::new(ChunkCacheCollector {
            cache: self.chunk_cache.clone(),
        }));
    }

    /// Bytes this store has read of `part` (what `fjord_store_read_bytes_total` reports).
    pub fn bytes_read(&self, part: ReadPart) -> u64 {
        self.reads.bytes.get_or_create(&part.label()).get()
    }

    /// Read requests this store has sent (what `fjord_store_read_requests_total` reports).
    pub fn read_requests(&self) -> u64 {
        self.reads.requests.get()
    }

    /// Reads `ranges` of the object at `path`: on the filesystem with one open and one read
    /// per range ([`read_local_ranges`]), elsewhere with one GET per run of
    /// ranges that follow each other at most `gap` bytes apart, up to [`MAX_MERGED_READ`] per
    /// run, a few at a time. The slices of a run with gaps are copied out, so the bytes between
    /// them are not kept alive.
    /// `object_store`'s `get_ranges` on object stores would merge ranges up to 1 MiB apart and
    /// keep every merged byte alive in the returned slices (and a range past the object's end
    /// panics there). Counts requests and the bytes of gaps; callers count the bytes they
    /// asked for, by part.
    async fn read_ranges(
        &self,
        path: &Path,
        ranges: &[Range<u64>],
        gap: u64,
    ) -> Result<Vec<Piece>, StoreError> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let mut runs: Vec<(Range<u64>, Vec<usize>)> = Vec::new();
        for (i, r) in ranges.iter().enumerate() {
            match runs.last_mut() {
                Some((run, members))
                    if r.start >= run.end
                        && r.start - run.end <= gap
                        && r.end.saturating_sub(run.start) <= MAX_MERGED_READ =>
                {
                    run.end = r.end;
                    members.push(i);
                }
                _ => runs.push((r.clone(), vec![i])),
            }
        }
        if let Some(root) = &self.local_root {
            self.reads.requests.inc_by(runs.len() as u64);
            return read_local_ranges(root.join(path.as_ref()), path, ranges).await;
        }
        let spans: Vec<Range<u64>> = runs.iter().map(|(run, _)| run.clone()).collect();
        let fetched: Vec<Bytes> = futures_util::stream::iter(spans)
            .map(|run| self.objects.get_range(path, run))
            .buffered(RANGE_READS_AT_ONCE)
            .try_collect()
            .await?;
        self.reads.requests.inc_by(runs.len() as u64);
        let mut out = vec![Piece::default(); ranges.len()];
        for ((run, members), data) in runs.iter().zip(fetched) {
            let wanted: u64 = members
                .iter()
                .map(|&i| ranges[i].end - ranges[i].start)
                .sum();
            let gaps = (run.end - run.start).saturating_sub(wanted);
            self.reads.count(ReadPart::Gap, gaps as usize);
            let tiled = gaps == 0;
            for &i in members {
                let slice = slice_read(path, &data, run.start, &ranges[i])?;
                out[i] = if tiled {
                    Piece {
                        bytes: slice,
                        shared: true,
                    }
                } else {
                    Piece {
                        bytes: Bytes::copy_from_slice(&slice),
                        shared: false,
                    }
                };
            }
        }
        Ok(out)
    }

    /// Reads chunks (through the cache), in the order of `refs`. The chunks the cache lacks are
    /// read segment by segment, `concurrency` segments at a time, with one [`Store::read_ranges`]
    /// call each ([`Store::read_whole`]): a flush writes a segment's chunks back to back, so a
    /// query over many streams wants long runs of them, read with one request per run.
    pub async fn fetch_chunks(
        &self,
        tenant: &TenantId,
        refs: &[ChunkRef],
        concurrency: usize,
    ) -> Result<Vec<Chunk>, StoreError> {
        let mut found: Vec<Option<Chunk>> = refs
            .iter()
            .map(
                |r| match self.chunk_cache.get(&(r.segment.clone(), r.offset)) {
                    Some(CachedChunk::Whole(chunk)) => Some(chunk),
                    _ => None,
                },
            )
            .collect();
        let missing = (0..refs.len()).filter(|&i| found[i].is_none());
        let read: Vec<Vec<(usize, Chunk)>> =
            futures_util::stream::iter(by_segment(missing.map(|i| (refs[i].segment.clone(), i))))
                .map(|(segment, chunks)| {
                    self.read_whole(layout::segment_path(tenant, &segment), refs, chunks)
                })
                .buffer_unordered(concurrency.max(1))
                .try_collect()
                .await?;
        for (i, chunk) in read.into_iter().flatten() {
            let r = &refs[i];
            self.chunk_cache.insert(
                (r.segment.clone(), r.offset),
                CachedChunk::Whole(chunk.clone()),
            );
            found[i] = Some(chunk);
        }
        found
            .into_iter()
            .map(|c| c.ok_or_else(|| StoreError::Corrupt("a chunk was not read".into())))
            .collect()
    }

    /// For each chunk of `refs`, in order, its blocks that overlap `[start, end)` and may hold
    /// a line satisfying `clauses` (see `fjord_chunk::filter::FilterView::may_match`);
    /// blocks ruled out may be left out, and without clauses none are.
    ///
    /// A search does not need the blocks its filters rule out. For each segment, the tails of
    /// its chunks (version 2) are read first (where the segment gathers them, with one request
    /// for all of them), or taken from the cache, which holds them like chunks so a repeated
    /// search reads them from memory; then the blocks in the range that may match, and whole
    /// (then cached) the chunks all of whose blocks are wanted, as any query reading all of a
    /// chunk does ([`Store::read_ranges`]: on the filesystem one call per segment and step).
    /// Segments are read `concurrency` at a time. Chunks cached whole, chunks without a tail,
    /// chunks on an object store whose tail follows their body (in segments of version 1, or
    /// alone in theirs) and that are too short to be worth a request of their own
    /// ([`search_tails_from`]), and, for a query without clauses, every chunk that lies within
    /// the range are read whole ([`Store::fetch_chunks`]); a chunk reaching past the range is
    /// searched as above, so only its blocks in the range are read (a log query asks for its
    /// range a slice at a time).
    pub async fn fetch_blocks(
        &self,
        tenant: &TenantId,
        refs: &[ChunkRef],
        (start, end): (i64, i64),
        clauses: &[Vec<Vec<u8>>],
        concurrency: usize,
    ) -> Result<Vec<Vec<EncodedBlock>>, StoreError> {
        let mut out: Vec<Vec<EncodedBlock>> = vec![Vec::new(); refs.len()];
        let mut whole: Vec<usize> = Vec::new();
        let mut planned: Vec<(Arc<str>, PlannedChunk)> = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            // Without literals to look for, only a chunk reaching past the range has blocks
            // worth leaving unread.
            let all_wanted = clauses.is_empty() && start <= r.min_ts && r.max_ts < end;
            match self.chunk_cache.get(&(r.segment.clone(), r.offset)) {
                Some(CachedChunk::Whole(chunk)) => out[i] = blocks_overlapping(&chunk, start, end),
                _ if all_wanted
                    || r.tail_len == 0
                    || (!r.tail_apart() && r.len < self.search_tails_from) =>
                {
                    whole.push(i)
                }
                Some(CachedChunk::Summary(s)) if s.describes(r.len, r.tail_len) => {
                    planned.push((r.segment.clone(), (i, Some(s))))
                }
                _ => planned.push((r.segment.clone(), (i, None))),
            }
        }
        let whole_refs: Vec<ChunkRef> = whole.iter().map(|&i| refs[i].clone()).collect();
        let searched = futures_util::stream::iter(by_segment(planned))
            .map(|(segment, chunks)| {
                let search = SegmentSearch {
                    path: layout::segment_path(tenant, &segment),
                    refs,
                    range: (start, end),
                    clauses,
                };
                self.search_segment(search, chunks)
            })
            .buffer_unordered(concurrency.max(1))
            .try_collect::<Vec<_>>();
        let (chunks, searched) = futures_util::try_join!(
            self.fetch_chunks(tenant, &whole_refs, concurrency),
            searched,
        )?;
        for (i, chunk) in whole.into_iter().zip(chunks) {
            out[i] = blocks_overlapping(&chunk, start, end);
        }
        for (i, blocks) in searched.into_iter().flatten() {
            out[i] = blocks;
        }
        Ok(out)
    }

    /// [`Store::fetch_blocks`] for chunks `refs[i]` of one segment, given as `(i, its summary
    /// if cached)`: reads the missing tails, then what may match.
    async fn search_segment(
        &self,
        s: SegmentSearch<'_>,
        chunks: Vec<PlannedChunk>,
    ) -> Result<Vec<(usize, Vec<EncodedBlock>)>, StoreError> {
        let SegmentSearch { path, refs, .. } = &s;
        let mut chunks = chunks;
        chunks.sort_unstable_by_key(|&(i, _)| refs[i].offset);
        let corrupt = |i: usize, e| corrupt_chunk(path, &refs[i], e);
        let missing: Vec<usize> = chunks
            .iter()
            .filter(|(_, summary)| summary.is_none())
            .map(|&(i, _)| i)
            .collect();
        let tail_ranges = missing
            .iter()
            .map(|&i| tail_range(path, &refs[i]))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let tails = self.read_ranges(path, &tail_ranges, self.merge_gap).await?;
        self.reads
            .count(ReadPart::Tail, tails.iter().map(|t| t.bytes.len()).sum());
        let mut tails = tails.into_iter();
        // Each chunk with its summary and the blocks to read: all of them as one range, or some.
        let mut reads: Vec<(usize, Arc<ChunkSummary>, Option<Vec<usize>>)> = Vec::new();
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for (i, cached) in chunks {
            let r = &refs[i];
            let summary = match cached {
                Some(summary) => summary,
                None => {
                    let tail = tails.next().ok_or_else(|| {
                        StoreError::Corrupt(format!("{path}: a chunk tail was not read"))
                    })?;
                    let summary = Arc::new(parse_tail(r, tail.owned()).map_err(|e| corrupt(i, e))?);
                    self.chunk_cache.insert(
                        (r.segment.clone(), r.offset),
                        CachedChunk::Summary(summary.clone()),
                    );
                    summary
                }
            };
            let wanted = s.plan(&summary);
            if wanted.is_empty() {
                continue;
            }
            // The summary describes this ref (parsed for it, or checked against it), so the
            // tail is no longer than the chunk and every block lies within the body.
            let body = checked_range(path, r.offset, r.len - summary.tail_len() as u64)?;
            if wanted.len() == summary.blocks().len() {
                ranges.push(body);
                reads.push((i, summary, None));
            } else {
                ranges.extend(wanted.iter().map(|&b| {
                    let within = &summary.blocks()[b].range;
                    body.start + within.start as u64..body.start + within.end as u64
                }));
                reads.push((i, summary, Some(wanted)));
            }
        }
        let mut data = self
            .read_ranges(path, &ranges, self.merge_gap)
            .await?
            .into_iter();
        let mut next = |part: ReadPart| {
            let bytes = data
                .next()
                .ok_or_else(|| StoreError::Corrupt(format!("{path}: a block was not read")))?;
            self.reads.count(part, bytes.bytes.len());
            Ok::<_, StoreError>(bytes)
        };
        let mut out = Vec::with_capacity(reads.len());
        for (i, summary, wanted) in reads {
            let blocks = match wanted {
                None => {
                    let body = next(ReadPart::Chunk)?.owned();
                    let chunk = summary.open_chunk(body).map_err(|e| corrupt(i, e))?;
                    let blocks = blocks_overlapping(&chunk, s.range.0, s.range.1);
                    let r = &refs[i];
                    self.chunk_cache
                        .insert((r.segment.clone(), r.offset), CachedChunk::Whole(chunk));
                    blocks
                }
                Some(wanted) => wanted
                    .into_iter()
                    .map(|b| {
                        summary
                            .open_block(b, next(ReadPart::Block)?.bytes)
                            .map_err(|e| corrupt(i, e))
                    })
                    .collect::<Result<_, _>>()?,
            };
            out.push((i, blocks));
        }
        Ok(out)
    }

    /// Reads the chunks `refs[i]` for each `i` of `chunks`, all in the segment at `path`, with
    /// one [`Store::read_ranges`] call: each chunk's bytes at its offset, and its tail where
    /// the segment gathers tails apart. Bodies of consecutive chunks lie back to back, and so
    /// do their tails, so a query over many of a segment's streams reads a few long runs.
    async fn read_whole(
        &self,
        path: Path,
        refs: &[ChunkRef],
        mut chunks: Vec<usize>,
    ) -> Result<Vec<(usize, Chunk)>, StoreError> {
        let path = &path;
        chunks.sort_unstable_by_key(|&i| refs[i].offset);
        let mut ranges = chunks
            .iter()
            .map(|&i| piece_range(path, &refs[i]))
            .collect::<Result<Vec<_>, StoreError>>()?;
        // The tails of a segment follow all its bodies, in the same order.
        for &i in &chunks {
            if refs[i].tail_apart() {
                ranges.push(tail_range(path, &refs[i])?);
            }
        }
        let read = self.read_ranges(path, &ranges, self.merge_gap).await?;
        self.reads
            .count(ReadPart::Chunk, read.iter().map(|p| p.bytes.len()).sum());
        let mut pieces = read;
        let mut tails = pieces.split_off(chunks.len()).into_iter();
        chunks
            .iter()
            .zip(pieces)
            .map(|(&i, piece)| {
                let r = &refs[i];
                let chunk = if r.tail_apart() {
                    let tail = tails.next().map(Piece::owned).unwrap_or_default();
                    parse_tail(r, tail)
                        .and_then(|summary| summary.open_chunk(piece.owned()))
                        .map_err(|e| corrupt_chunk(path, r, e))?
                } else {
                    open_read_chunk(path, r, piece.owned())?
                };
                Ok((i, chunk))
            })
            .collect()
    }

    /// The blocks of one chunk, read from the object store bypassing the cache, for a reader
    /// that decodes them all once (the compactor, which would only evict what queries need).
    /// A chunk whose tail lies apart is read without it, with one request for its body
    /// ([`fjord_chunk::open_body_blocks`]); its blocks then carry no trigram filter.
    pub async fn read_chunk_blocks(
        &self,
        tenant: &TenantId,
        r: &ChunkRef,
    ) -> Result<Vec<EncodedBlock>, StoreError> {
        if !r.tail_apart() {
            return Ok(self.read_chunk(tenant, r).await?.blocks().to_vec());
        }
        let path = layout::segment_path(tenant, &r.segment);
        let mut read = self
            .read_ranges(&path, &[piece_range(&path, r)?], 0)
            .await?;
        let body = read.pop().unwrap_or_default().bytes;
        self.reads.count(ReadPart::Chunk, body.len());
        let blocks = fjord_chunk::open_body_blocks(body).map_err(|e| corrupt_chunk(&path, r, e))?;
        // Without the tail nothing else says where the body ends: a ref too short by whole
        // blocks would read as fewer blocks, so they must add up to what the index recorded.
        let recorded = BlockMeta::total(blocks.iter().map(|b| &b.meta)).is_some_and(|m| {
            m.count == r.entries
                && m.raw_bytes == r.raw_bytes
                && m.metadata_bytes == r.metadata_bytes
                && (m.min_ts, m.max_ts) == (r.min_ts, r.max_ts)
        });
        if !recorded {
            return Err(StoreError::Corrupt(format!(
                "{path} at {}: the chunk's blocks disagree with its index entry",
                r.offset
            )));
        }
        Ok(blocks)
    }

    /// Reads one chunk from the object store, bypassing the cache.
    pub async fn read_chunk(&self, tenant: &TenantId, r: &ChunkRef) -> Result<Chunk, StoreError> {
        let path = layout::segment_path(tenant, &r.segment);
        let mut read = self
            .read_whole(path, std::slice::from_ref(r), vec![0])
            .await?;
        read.pop()
            .map(|(_, chunk)| chunk)
            .ok_or_else(|| StoreError::Corrupt("a chunk was not read".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_alone_are_kept_as_they_are_and_slices_of_a_shared_read_are_copied() {
        let alone = Bytes::from(vec![1u8; 64]);
        let kept = Piece {
            bytes: alone.clone(),
            shared: false,
        }
        .owned();
        assert_eq!(kept.as_ptr(), alone.as_ptr());

        let run = Bytes::from(vec![2u8; 128]);
        let copied = Piece {
            bytes: run.slice(64..),
            shared: true,
        }
        .owned();
        assert_eq!(copied, run.slice(64..));
        assert!(!run.as_ptr_range().contains(&copied.as_ptr()));
    }
}
