//! Rewriting one period. Each stream's chunks that lie wholly inside the period are read in
//! time order, merged where they overlap (by the query path's own merge, so exact duplicates go
//! and ties keep their order), and cut into blocks of `block_size` raw bytes with the
//! compactor's codec. Chunks that cross into another period are also listed in that period's
//! index, so they are carried over as they are, and so are the chunks of a stream that no flush
//! has touched since the last compaction (a late flush into one stream rewrites that stream,
//! not the whole day). The result is one new index file that replaces every file the period
//! had.
//!
//! Memory stays bounded by one group of overlapping chunks of one stream, one block being
//! built, and one segment being filled: streams are read one at a time, and within a stream
//! chunks that do not overlap are read one after the other.

use std::sync::Arc;

use fjord_chunk::{BlockBuilder, EncodeOptions, EncodedBlock};
use fjord_engine::SelectedStream;
use fjord_engine::field_columns::json_columns;
use fjord_engine::scan::prepare;
use fjord_model::{Labels, TenantId};
use fjord_store::layout::PERIOD_NS;
use fjord_store::{ChunkRef, FlushChunk, IndexFile, PeriodSnapshot, Store, WrittenSegment};
use futures_util::{StreamExt, TryStreamExt};

use crate::CompactorError;

/// How rewritten chunks are built.
#[derive(Debug, Clone, Copy)]
pub struct RewriteOptions {
    pub encode: EncodeOptions,
    pub block_size: usize,
    pub chunk_target_size: usize,
    pub max_segment_size: usize,
    /// Store `| json` field columns in rewritten blocks.
    pub field_columns: bool,
}

/// What rewriting a period did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeriodRewrite {
    /// Chunks read and rewritten, and their bytes as stored.
    pub chunks_read: usize,
    pub bytes_read: u64,
    /// Chunks carried over unchanged: they cross into another period, or belong to a stream
    /// already compacted and untouched since.
    pub chunks_carried: usize,
    /// Chunks and segment bytes written.
    pub chunks_written: usize,
    pub bytes_written: u64,
}

/// Rewrites the period `snapshot` shows and publishes the index file replacing its live files.
pub async fn rewrite_period(
    store: &Store,
    tenant: &TenantId,
    period: i64,
    snapshot: &PeriodSnapshot,
    opts: &RewriteOptions,
) -> Result<PeriodRewrite, CompactorError> {
    let first = period.saturating_mul(PERIOD_NS);
    let last = first.saturating_add(PERIOD_NS - 1);
    let mut report = PeriodRewrite::default();
    let mut segments = SegmentFiller::new(store, tenant, opts.max_segment_size);
    let mut carried: Vec<(Labels, Vec<ChunkRef>)> = Vec::new();
    let mut streams: Vec<_> = snapshot.streams.iter().collect();
    streams.sort_by(|a, b| a.labels.cmp(&b.labels));
    for s in streams {
        let (mut inside, crossing): (Vec<ChunkRef>, Vec<ChunkRef>) = s
            .chunks
            .iter()
            .cloned()
            .partition(|c| c.min_ts >= first && c.max_ts <= last);
        let settled = |c: &ChunkRef| snapshot.settled.contains(&(c.segment.clone(), c.offset));
        if inside.iter().all(settled) {
            report.chunks_carried += inside.len() + crossing.len();
            carried.push((s.labels.clone(), [inside, crossing].concat()));
            continue;
        }
        report.chunks_carried += crossing.len();
        if !crossing.is_empty() {
            carried.push((s.labels.clone(), crossing));
        }
        inside.sort_by_key(|c| (c.min_ts, c.max_ts));
        let mut cutter = StreamCutter::new(s.labels.clone(), opts);
        for group in overlapping_groups(&inside) {
            let blocks = read_blocks(store, tenant, group).await?;
            report.chunks_read += group.len();
            report.bytes_read += group.iter().map(|c| c.len).sum::<u64>();
            cutter = run_blocking(move || cutter.absorb(blocks).map(|()| cutter)).await?;
            for chunk in cutter.take_finished() {
                segments.add(chunk).await?;
            }
        }
        let chunks = run_blocking(move || Ok(cutter.finish())).await?;
        for chunk in chunks {
            segments.add(chunk).await?;
        }
    }
    let (written, pins) = segments.finish().await?;
    report.chunks_written = written.len();
    report.bytes_written = pins.iter().map(|w| w.bytes).sum();
    let file = IndexFile {
        id: Arc::from(store.next_object_id()),
        // Every file the period ever replaced, not only the live ones: a reader that never
        // loaded an earlier compaction must still drop the files that one replaced.
        replaces: snapshot
            .files
            .live
            .iter()
            .map(|f| f.id.clone())
            .chain(snapshot.files.replaced.iter().map(|f| f.id.clone()))
            .collect(),
        streams: by_stream(
            written
                .into_iter()
                .map(|(labels, r)| (labels, vec![r]))
                .chain(carried),
        ),
    };
    store.publish_index(tenant, period, &file).await?;
    drop(pins);
    Ok(report)
}

/// Runs CPU-heavy work (decoding and encoding blocks) off the async workers.
async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CompactorError> + Send + 'static,
) -> Result<T, CompactorError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CompactorError::Task(e.to_string()))?
}

/// Splits chunks sorted by (min_ts, max_ts) into runs whose time ranges intersect or touch,
/// the same grouping the query path applies to blocks.
fn overlapping_groups(chunks: &[ChunkRef]) -> impl Iterator<Item = &[ChunkRef]> {
    let mut rest = chunks;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut max_ts = first.max_ts;
        let n = 1 + rest[1..]
            .iter()
            .take_while(|c| {
                let joins = c.min_ts <= max_ts;
                max_ts = max_ts.max(c.max_ts);
                joins
            })
            .count();
        let (group, tail) = rest.split_at(n);
        rest = tail;
        Some(group)
    })
}

async fn read_blocks(
    store: &Store,
    tenant: &TenantId,
    chunks: &[ChunkRef],
) -> Result<Vec<EncodedBlock>, CompactorError> {
    let reads: Vec<_> = chunks
        .iter()
        .cloned()
        .map(|c| async move { store.read_chunk_blocks(tenant, &c).await })
        .collect();
    let read: Vec<Vec<EncodedBlock>> = futures_util::stream::iter(reads)
        .buffered(8)
        .try_collect()
        .await?;
    Ok(read.into_iter().flatten().collect())
}

/// Builds one stream's rewritten chunks from its entries in time order.
struct StreamCutter {
    labels: Labels,
    opts: RewriteOptions,
    builder: BlockBuilder,
    blocks: Vec<EncodedBlock>,
    blocks_bytes: usize,
    finished: Vec<FlushChunk>,
}

impl StreamCutter {
    fn new(labels: Labels, opts: &RewriteOptions) -> StreamCutter {
        StreamCutter {
            labels,
            opts: *opts,
            builder: BlockBuilder::new(),
            blocks: Vec::new(),
            blocks_bytes: 0,
            finished: Vec::new(),
        }
    }

    /// Adds the entries of blocks that may overlap each other but lie after every entry added
    /// so far.
    fn absorb(&mut self, blocks: Vec<EncodedBlock>) -> Result<(), CompactorError> {
        let data = |e: fjord_engine::EngineError| CompactorError::Data(e.to_string());
        let stream = SelectedStream {
            labels: self.labels.clone(),
            blocks,
        };
        for unit in prepare(stream, i64::MIN, i64::MAX, None)
            .map_err(data)?
            .units
        {
            let d = unit.decode().map_err(data)?;
            for i in 0..d.len() {
                self.push(d.ts[i], d.line(i), d.metadata(i));
            }
        }
        Ok(())
    }

    /// Appends one entry. A full block is cut between different timestamps, so rewritten
    /// blocks do not overlap and queries need not merge them again; only a run of equal
    /// timestamps four times the block size is cut inside (queries then merge those blocks).
    fn push(&mut self, ts: i64, line: &[u8], metadata: &[fjord_model::Label]) {
        let size = self.builder.raw_bytes();
        if size >= self.opts.block_size
            && (self.builder.last_ts().is_some_and(|last| ts > last)
                || size >= 4 * self.opts.block_size)
        {
            self.cut_block();
        }
        self.builder.push(ts, line, metadata);
    }

    fn cut_block(&mut self) {
        let block = if self.opts.field_columns {
            let mut decoded = self.builder.to_decoded();
            decoded.fields = json_columns(&decoded).map(Arc::new);
            decoded.encode(&self.opts.encode)
        } else {
            self.builder.encode(&self.opts.encode)
        };
        self.builder.clear();
        self.blocks_bytes += block.data.len();
        self.blocks.push(block);
        if self.blocks_bytes >= self.opts.chunk_target_size {
            self.cut_chunk();
        }
    }

    fn cut_chunk(&mut self) {
        if self.blocks.is_empty() {
            return;
        }
        self.finished.push(FlushChunk {
            labels: self.labels.clone(),
            blocks: std::mem::take(&mut self.blocks),
        });
        self.blocks_bytes = 0;
    }

    fn take_finished(&mut self) -> Vec<FlushChunk> {
        std::mem::take(&mut self.finished)
    }

    /// Closes the last block and chunk; returns the chunks not yet taken.
    fn finish(mut self) -> Vec<FlushChunk> {
        if !self.builder.is_empty() {
            self.cut_block();
        }
        self.cut_chunk();
        self.finished
    }
}

/// Collects chunks into segments of about `max_bytes` and writes each when full.
struct SegmentFiller<'a> {
    store: &'a Store,
    tenant: &'a TenantId,
    max_bytes: usize,
    pending: Vec<FlushChunk>,
    pending_bytes: usize,
    written: Vec<(Labels, ChunkRef)>,
    segments: Vec<WrittenSegment>,
}

impl<'a> SegmentFiller<'a> {
    fn new(store: &'a Store, tenant: &'a TenantId, max_bytes: usize) -> SegmentFiller<'a> {
        SegmentFiller {
            store,
            tenant,
            max_bytes,
            pending: Vec::new(),
            pending_bytes: 0,
            written: Vec::new(),
            segments: Vec::new(),
        }
    }

    async fn add(&mut self, chunk: FlushChunk) -> Result<(), CompactorError> {
        self.pending_bytes += chunk.blocks.iter().map(|b| b.data.len()).sum::<usize>();
        self.pending.push(chunk);
        if self.pending_bytes >= self.max_bytes {
            self.write().await?;
        }
        Ok(())
    }

    async fn write(&mut self) -> Result<(), CompactorError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let segment = self.store.write_segment(self.tenant, &chunks).await?;
        self.written.extend(
            chunks
                .into_iter()
                .map(|c| c.labels)
                .zip(segment.refs.iter().cloned()),
        );
        self.segments.push(segment);
        Ok(())
    }

    /// Writes what is pending; returns every chunk's ref with its stream, and the written
    /// segments (pinned while held).
    async fn finish(
        mut self,
    ) -> Result<(Vec<(Labels, ChunkRef)>, Vec<WrittenSegment>), CompactorError> {
        self.write().await?;
        Ok((self.written, self.segments))
    }
}

/// One entry per stream, in label order, with all its chunks.
fn by_stream(
    chunks: impl Iterator<Item = (Labels, Vec<ChunkRef>)>,
) -> Vec<(Labels, Vec<ChunkRef>)> {
    let mut grouped: std::collections::BTreeMap<Labels, Vec<ChunkRef>> = Default::default();
    for (labels, refs) in chunks {
        grouped.entry(labels).or_default().extend(refs);
    }
    grouped.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_at(min_ts: i64, max_ts: i64) -> ChunkRef {
        ChunkRef {
            segment: Arc::from("s"),
            offset: min_ts as u64,
            len: 1,
            entries: 1,
            min_ts,
            max_ts,
            raw_bytes: 1,
            metadata_bytes: 0,
            tail_len: 0,
            tail_offset: 0,
        }
    }

    #[test]
    fn groups_join_chunks_that_intersect_or_touch() {
        let chunks = [
            chunk_at(0, 10),
            chunk_at(10, 12),
            chunk_at(5, 6),
            chunk_at(13, 20),
            chunk_at(30, 40),
            chunk_at(35, 36),
        ];
        let sizes: Vec<usize> = overlapping_groups(&chunks).map(<[ChunkRef]>::len).collect();
        assert_eq!(sizes, [3, 1, 2]);
        assert_eq!(overlapping_groups(&[]).count(), 0);
    }

    /// Blocks are cut at `block_size` but never between equal timestamps, so no two rewritten
    /// blocks share a timestamp; chunks close at `chunk_target_size`.
    #[test]
    fn cuts_blocks_only_between_timestamps() {
        let opts = RewriteOptions {
            encode: EncodeOptions::default(),
            block_size: 100,
            chunk_target_size: 1,
            max_segment_size: 1 << 20,
            field_columns: true,
        };
        let mut cutter = StreamCutter::new(Labels::from_pairs([("app", "a")]), &opts);
        for (i, ts) in [1, 2, 3, 3, 3, 3, 4, 5, 6, 7].into_iter().enumerate() {
            cutter.push(ts, format!("{i:040}").as_bytes(), &[]);
        }
        let chunks = cutter.finish();
        let blocks: Vec<(i64, i64, u32)> = chunks
            .iter()
            .flat_map(|c| &c.blocks)
            .map(|b| (b.meta.min_ts, b.meta.max_ts, b.meta.count))
            .collect();
        assert_eq!(blocks, [(1, 3, 6), (4, 6, 3), (7, 7, 1)]);
        assert!(chunks.iter().all(|c| c.blocks.len() == 1));
    }
}
