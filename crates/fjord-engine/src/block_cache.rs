//! A cache of decoded blocks, and of parts of blocks (entry indexes, structured metadata), with
//! a byte budget.
//!
//! Dashboards repeat the same queries every refresh, and a filter on a common word (`|= "error"`)
//! cannot skip blocks by their trigram filter, so without a cache every refresh decompresses the
//! same text again (zstd was over a third of such a query's CPU). Entries are keyed by a 128-bit
//! hash of the encoded block's content (its compressed sections, not where its trigram filter
//! is kept), so a block is found whether it came from an ingester or from the store, and a
//! block that changed can never be served stale. Only compressed blocks
//! are cached: an ingester's head snapshot is stored uncompressed, changes with every push, and
//! costs a copy to decode.
//!
//! A metric query without a pipeline (`count_over_time`, `bytes_rate`, … of a plain selector)
//! reads a block's entry index only, its timestamps and line lengths, wherever the block spans
//! more than one of the query's windows (most blocks at a one-minute step), and, when it
//! groups by labels, the names of the block's structured metadata (which could be among them),
//! and, where they are (`sum by (detected_level)`, Grafana's logs-volume query), the metadata
//! itself: decompressing and decoding them was over half of such a query's CPU. The cache keeps
//! all three ([`part_through`]), each keyed by a hash of its tag, the header and that compressed
//! section alone (cheap to hash, where the whole block would not be); an index takes 12 bytes
//! an entry. A query read in several slices of its range decodes them once for a block that
//! crosses a cut.
//!
//! Blocks the compactor has not rewritten yet (everything from the last day, and everything an
//! ingester holds) carry no field columns, so a `| json | <label filter>` query parses every line
//! it reads in them; and no stored block has the text columns or `| logfmt` columns that let a
//! metric query such as `quantile_over_time(… | logfmt | unwrap duration …)` skip its parser.
//! When a query that columns could serve reads a cached block without the columns it needs, it
//! asks the cache to build them ([`BlockCache::build_field_columns_later`]): one background
//! thread parses the block with [`query_columns`] (the compactor's dictionary columns, plus text
//! columns, or the same for `| logfmt`) and replaces the cached entry with one that carries
//! them. The thread runs at the lowest scheduling priority, so it takes the
//! cores only while queries leave them idle; the next queries read the columns. The queue
//! holds weak references, so a block evicted while it waits is freed and skipped; requests
//! beyond its 4096 places are dropped (a later query asks again).
//!
//! **Invariant:** the cache changes how fast a block is decoded, never what it decodes to; the
//! budget counts the decoded bytes held (line text, timestamps, offsets, metadata, field columns).
//! Columns built here are [`query_columns`] of the same lines (the compactor's columns and
//! more), which the engine uses only where they give the pipeline's answer.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock, Weak};

use fjord_chunk::{
    ChunkError, DecodedBlock, EncodedBlock, EntryIndex, MetadataSet, SparseMetadata,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::field_columns::query_columns;

/// Blocks waiting for the column builder; requests beyond it are dropped. The queue holds
/// weak references, so a waiting block the cache evicts is freed (and skipped), not held
/// outside the byte budget: the queue can take every block of a query over many streams, whose
/// next run then finds them all with columns.
const COLUMN_QUEUE: usize = 4096;

/// Keys remembered as asked for (in the queue, being built, or found to yield no columns).
const ASKED_KEYS: u64 = 1 << 16;

/// What the cache holds under a key: a block's whole decoding ([`cache_key`]), or one of its
/// parts alone ([`part_key`]).
#[derive(Debug, Clone)]
pub(crate) enum Cached {
    Block(Arc<DecodedBlock>),
    Index(Arc<EntryIndex>),
    MetadataNames(Arc<Vec<String>>),
    Metadata(Arc<SparseMetadata>),
}

/// A part of a block the cache keeps apart from its whole decoding.
pub(crate) trait BlockPart: Sized {
    /// Tells the part's keys from every other kind's.
    const TAG: &'static [u8];
    /// The block's header and the compressed section the part is decoded from.
    fn parts(block: &EncodedBlock) -> Result<(Vec<u8>, &[u8]), ChunkError>;
    fn decode(block: &EncodedBlock) -> Result<Self, ChunkError>;
    fn cached(part: Arc<Self>) -> Cached;
    fn found(entry: Cached) -> Option<Arc<Self>>;
}

impl BlockPart for EntryIndex {
    const TAG: &'static [u8] = b"entry index";
    fn parts(block: &EncodedBlock) -> Result<(Vec<u8>, &[u8]), ChunkError> {
        block.index_parts()
    }
    fn decode(block: &EncodedBlock) -> Result<Self, ChunkError> {
        block.decode_index()
    }
    fn cached(part: Arc<Self>) -> Cached {
        Cached::Index(part)
    }
    fn found(entry: Cached) -> Option<Arc<Self>> {
        match entry {
            Cached::Index(i) => Some(i),
            _ => None,
        }
    }
}

impl BlockPart for Vec<String> {
    const TAG: &'static [u8] = b"metadata names";
    fn parts(block: &EncodedBlock) -> Result<(Vec<u8>, &[u8]), ChunkError> {
        block.metadata_parts()
    }
    fn decode(block: &EncodedBlock) -> Result<Self, ChunkError> {
        block.metadata_names()
    }
    fn cached(part: Arc<Self>) -> Cached {
        Cached::MetadataNames(part)
    }
    fn found(entry: Cached) -> Option<Arc<Self>> {
        match entry {
            Cached::MetadataNames(n) => Some(n),
            _ => None,
        }
    }
}

impl BlockPart for SparseMetadata {
    const TAG: &'static [u8] = b"metadata";
    fn parts(block: &EncodedBlock) -> Result<(Vec<u8>, &[u8]), ChunkError> {
        block.metadata_parts()
    }
    fn decode(block: &EncodedBlock) -> Result<Self, ChunkError> {
        block.decode_metadata()
    }
    fn cached(part: Arc<Self>) -> Cached {
        Cached::Metadata(part)
    }
    fn found(entry: Cached) -> Option<Arc<Self>> {
        match entry {
            Cached::Metadata(m) => Some(m),
            _ => None,
        }
    }
}

type Blocks = moka::sync::Cache<u128, Cached>;

/// Decoded blocks by content, within a byte budget.
pub struct BlockCache {
    blocks: Blocks,
    hits: Counter,
    misses: Counter,
    index_hits: Counter,
    index_misses: Counter,
    /// Decoded bytes held: added on insert, taken off when an entry is evicted or replaced.
    bytes: Gauge,
    /// Blocks already asked to get field columns; a key leaves once its columns are attached,
    /// so a block evicted and decoded again is asked for again.
    asked: moka::sync::Cache<u128, ()>,
    /// The column builder's queue, started on the first request.
    column_queue: OnceLock<SyncSender<(u128, Weak<DecodedBlock>)>>,
    /// Blocks in the column builder's queue or being parsed.
    columns_pending: Gauge,
    columns_built: Counter,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("entries", &self.blocks.entry_count())
            .field("bytes", &self.blocks.weighted_size())
            .finish()
    }
}

/// The key of `block`'s decoding: a hash of its content (see [`EncodedBlock::content_parts`]),
/// or of all its bytes should its header not parse (its decoding then fails anyway).
fn cache_key(block: &EncodedBlock) -> u128 {
    match block.content_parts() {
        Ok((header, sections)) => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(&header);
            for s in sections {
                h.update(s);
            }
            h.digest128()
        }
        Err(_) => xxhash_rust::xxh3::xxh3_128(&block.data),
    }
}

/// The key of `block`'s part `P`: a hash of the part's tag, the block's header and the
/// compressed section (see [`BlockPart::parts`]); or of all its bytes should its header not
/// parse (its decoding then fails anyway).
fn part_key<P: BlockPart>(block: &EncodedBlock) -> u128 {
    match P::parts(block) {
        Ok((header, section)) => {
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(P::TAG);
            h.update(&header);
            h.update(section);
            h.digest128()
        }
        Err(_) => xxhash_rust::xxh3::xxh3_128(&block.data),
    }
}

/// Part `P` of `block` ([`EntryIndex`], [`SparseMetadata`], or the metadata's names as a
/// `Vec<String>`): through `cache` when there is one, else decoded now.
pub(crate) fn part_through<P: BlockPart>(
    cache: Option<&BlockCache>,
    block: &EncodedBlock,
) -> Result<Arc<P>, ChunkError> {
    match cache {
        Some(cache) => cache.part(block),
        None => P::decode(block).map(Arc::new),
    }
}

/// Puts `entry` in `blocks` under `key` and adds its weight to `bytes`, the gauge of bytes
/// held (the eviction listener takes it off again, also when the entry is replaced).
fn insert(blocks: &Blocks, bytes: &Gauge, key: u128, entry: Cached) {
    bytes.inc_by(i64::from(weight(&entry)));
    blocks.insert(key, entry);
}

/// Bytes sparse metadata holds, for the budget (each entry's set counted whole, though
/// neighbours with equal sets share one).
fn metadata_weight(metadata: &SparseMetadata) -> usize {
    metadata
        .iter()
        .map(|(_, set)| std::mem::size_of::<(u32, MetadataSet)>() + set.len() * 48)
        .sum()
}

/// Bytes a cache entry holds, for the budget.
fn weight(c: &Cached) -> u32 {
    let bytes = match c {
        Cached::Block(d) => {
            let fields = d.fields.as_ref().map_or(0, |f| f.heap_bytes());
            d.data.len()
                + d.ts.len() * 8
                + d.offsets.len() * 4
                + metadata_weight(&d.metadata)
                + fields
        }
        Cached::Metadata(m) => metadata_weight(m),
        Cached::Index(i) => std::mem::size_of::<EntryIndex>() + i.ts.len() * 8 + i.lens.len() * 4,
        Cached::MetadataNames(n) => {
            std::mem::size_of::<Vec<String>>()
                + n.iter()
                    .map(|s| std::mem::size_of::<String>() + s.len())
                    .sum::<usize>()
        }
    };
    bytes.min(u32::MAX as usize) as u32
}

impl BlockCache {
    /// A cache holding at most `budget_bytes` of decoded blocks.
    pub fn new(budget_bytes: u64) -> Self {
        let bytes = Gauge::default();
        let released = bytes.clone();
        BlockCache {
            blocks: moka::sync::Cache::builder()
                .max_capacity(budget_bytes)
                .weigher(|_, c: &Cached| weight(c))
                .eviction_listener(move |_, c: Cached, _| {
                    released.dec_by(i64::from(weight(&c)));
                })
                .build(),
            hits: Counter::default(),
            misses: Counter::default(),
            index_hits: Counter::default(),
            index_misses: Counter::default(),
            bytes,
            asked: moka::sync::Cache::new(ASKED_KEYS),
            column_queue: OnceLock::new(),
            columns_pending: Gauge::default(),
            columns_built: Counter::default(),
        }
    }

    /// Exposes hits, misses, bytes held and the budget as `fjord_querier_block_cache_*`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let budget = Gauge::<i64>::default();
        let budget_bytes = self.blocks.policy().max_capacity().unwrap_or(0);
        budget.set(i64::try_from(budget_bytes).unwrap_or(i64::MAX));
        registry.register(
            "fjord_querier_block_cache_budget_bytes",
            "Decoded bytes the block cache may hold (querier.block_cache_size_mb)",
            budget,
        );
        registry.register(
            "fjord_querier_block_cache_hits",
            "Blocks found decoded in the block cache",
            self.hits.clone(),
        );
        registry.register(
            "fjord_querier_block_cache_misses",
            "Compressed blocks decoded because the block cache did not hold them",
            self.misses.clone(),
        );
        registry.register(
            "fjord_querier_block_cache_index_hits",
            "Entry indexes (timestamps and line lengths), structured metadata and its names found decoded in the block cache",
            self.index_hits.clone(),
        );
        registry.register(
            "fjord_querier_block_cache_index_misses",
            "Entry indexes, structured metadata and its names decoded because the block cache did not hold them",
            self.index_misses.clone(),
        );
        registry.register(
            "fjord_querier_block_cache_bytes",
            "Decoded bytes the block cache holds",
            self.bytes.clone(),
        );
        registry.register(
            "fjord_querier_block_cache_field_columns_built",
            "Cached blocks given field columns in the background",
            self.columns_built.clone(),
        );
        registry.register(
            "fjord_querier_block_cache_field_columns_pending",
            "Cached blocks waiting for the background builder of field columns",
            self.columns_pending.clone(),
        );
    }

    /// The block decoded: from the cache when it holds these exact bytes, else decoded now (and
    /// kept, if compressed).
    pub fn decode(&self, block: &EncodedBlock) -> Result<Arc<DecodedBlock>, ChunkError> {
        if !block.is_compressed() {
            return block.decode().map(Arc::new);
        }
        let key = cache_key(block);
        if let Some(Cached::Block(hit)) = self.blocks.get(&key) {
            self.hits.inc();
            return Ok(hit);
        }
        self.misses.inc();
        let decoded = Arc::new(block.decode()?);
        insert(
            &self.blocks,
            &self.bytes,
            key,
            Cached::Block(Arc::clone(&decoded)),
        );
        Ok(decoded)
    }

    /// Part `P` of the block (its entry index, its structured metadata or the metadata's
    /// names): from the cache when it holds one of these exact bytes, else decoded now (and
    /// kept, if compressed).
    fn part<P: BlockPart>(&self, block: &EncodedBlock) -> Result<Arc<P>, ChunkError> {
        if !block.is_compressed() {
            return P::decode(block).map(Arc::new);
        }
        let key = part_key::<P>(block);
        if let Some(hit) = self.blocks.get(&key).and_then(P::found) {
            self.index_hits.inc();
            return Ok(hit);
        }
        self.index_misses.inc();
        let part = Arc::new(P::decode(block)?);
        insert(&self.blocks, &self.bytes, key, P::cached(Arc::clone(&part)));
        Ok(part)
    }

    /// Asks for field columns with text columns to be built for `decoded`, the decoding of
    /// `block`, and attached to its cache entry in the background. Does nothing for a block that
    /// has such columns, is not cached (uncompressed), or was asked for already.
    pub fn build_field_columns_later(&self, block: &EncodedBlock, decoded: &Arc<DecodedBlock>) {
        if decoded.fields.as_ref().is_some_and(|f| f.with_texts) || !block.is_compressed() {
            return;
        }
        let key = cache_key(block);
        if !self.asked.entry(key).or_insert(()).is_fresh() {
            return;
        }
        let queue = self.column_queue.get_or_init(|| {
            let (queue, requests) = sync_channel(COLUMN_QUEUE);
            let builder = ColumnBuilder {
                blocks: self.blocks.clone(),
                asked: self.asked.clone(),
                bytes: self.bytes.clone(),
                pending: self.columns_pending.clone(),
                built: self.columns_built.clone(),
            };
            // Without the thread every request finds the queue disconnected and is dropped.
            let _ = std::thread::Builder::new()
                .name("fjord-field-columns".into())
                .spawn(move || builder.run(requests));
            queue
        });
        self.columns_pending.inc();
        match queue.try_send((key, Arc::downgrade(decoded))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.columns_pending.dec();
                self.asked.invalidate(&key);
            }
        }
    }

    /// Blocks waiting for the background column builder, or being parsed by it.
    pub fn field_columns_pending(&self) -> i64 {
        self.columns_pending.get()
    }

    /// Decoded bytes held now (after pending evictions are applied).
    pub fn held_bytes(&self) -> u64 {
        self.blocks.run_pending_tasks();
        self.blocks.weighted_size()
    }
}

/// The background thread that gives cached blocks their field columns.
struct ColumnBuilder {
    blocks: Blocks,
    asked: moka::sync::Cache<u128, ()>,
    bytes: Gauge,
    pending: Gauge,
    built: Counter,
}

impl ColumnBuilder {
    /// Builds columns for each block asked for, until the cache is dropped.
    fn run(self, requests: Receiver<(u128, Weak<DecodedBlock>)>) {
        lower_this_threads_priority();
        for (key, decoded) in requests {
            self.attach(key, &decoded);
            self.pending.dec();
        }
    }

    /// Gives the cached block `key` (decoded as `decoded`) its columns.
    fn attach(&self, key: u128, decoded: &Weak<DecodedBlock>) {
        // A block evicted while it waited is not brought back.
        let Some(decoded) = decoded.upgrade().filter(|_| self.blocks.contains_key(&key)) else {
            self.asked.invalidate(&key);
            return;
        };
        // A block that yields no columns keeps its key asked, so it is not parsed again.
        let Some(columns) = query_columns(&decoded) else {
            return;
        };
        let with_columns = Cached::Block(Arc::new(DecodedBlock {
            fields: Some(Arc::new(columns)),
            ..DecodedBlock::clone(&decoded)
        }));
        insert(&self.blocks, &self.bytes, key, with_columns);
        self.asked.invalidate(&key);
        self.built.inc();
    }
}

/// Makes the calling thread yield the CPU to queries: the builder parses blocks only while the
/// cores have nothing else to do, so the query that asked for columns runs at full speed. On
/// Linux a thread id given to `setpriority` renices that thread alone.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // Failing leaves the thread at normal priority, which is still correct.
        let _ = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_chunk::{BlockBuilder, Codec, EncodeOptions};
    use fjord_model::Label;

    fn block(lines: &[&str], codec: Codec) -> EncodedBlock {
        let mut b = BlockBuilder::new();
        for (i, l) in lines.iter().enumerate() {
            b.push(
                i as i64,
                l.as_bytes(),
                &[Label::new("detected_level", "info")],
            );
        }
        let enc = b.encode(&EncodeOptions {
            codec,
            filter_bits_per_byte: 0.0,
        });
        EncodedBlock::from_bytes(enc.data).unwrap()
    }

    #[test]
    fn hits_return_the_same_decoding_and_different_bytes_never_collide() {
        let cache = BlockCache::new(1 << 20);
        let a = block(&["alpha one", "alpha two"], Codec::Zstd(3));
        let b = block(&["beta one", "beta two"], Codec::Zstd(3));
        let first = cache.decode(&a).unwrap();
        let again = cache.decode(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "second decode is a hit");
        assert_eq!((cache.hits.get(), cache.misses.get()), (1, 1));
        assert_eq!(*first, a.decode().unwrap());
        let other = cache.decode(&b).unwrap();
        assert_eq!(*other, b.decode().unwrap());
        assert!(cache.held_bytes() > 0);
    }

    #[test]
    fn entry_indexes_and_metadata_are_kept_apart_from_whole_blocks() {
        let cache = BlockCache::new(1 << 20);
        let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let a = block(&lines, Codec::Zstd(3));
        let first = cache.part::<EntryIndex>(&a).unwrap();
        let again = cache.part::<EntryIndex>(&a).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "second decode is a hit");
        assert_eq!(*first, a.decode_index().unwrap());
        assert_eq!((cache.index_hits.get(), cache.index_misses.get()), (1, 1));
        // 100 entries at 12 bytes, and the struct.
        let index_bytes = cache.held_bytes();
        assert!((1200..1300).contains(&index_bytes), "{index_bytes}");
        // The whole block is another entry, and so is another block's index.
        let whole = cache.decode(&a).unwrap();
        assert_eq!((cache.hits.get(), cache.misses.get()), (0, 1));
        assert_eq!(*whole, a.decode().unwrap());
        assert!(Arc::ptr_eq(&cache.part::<EntryIndex>(&a).unwrap(), &first));
        let b = block(&lines[1..], Codec::Zstd(3));
        assert_eq!(
            *cache.part::<EntryIndex>(&b).unwrap(),
            b.decode_index().unwrap()
        );
        assert_eq!((cache.index_hits.get(), cache.index_misses.get()), (2, 2));
        let names = cache.part::<Vec<String>>(&a).unwrap();
        assert_eq!(*names, vec!["detected_level".to_string()]);
        assert!(Arc::ptr_eq(&cache.part::<Vec<String>>(&a).unwrap(), &names));
        assert_eq!((cache.index_hits.get(), cache.index_misses.get()), (3, 3));
        // The metadata itself is a part of its own, keyed apart from its names.
        let metadata = cache.part::<SparseMetadata>(&a).unwrap();
        assert_eq!(*metadata, a.decode_metadata().unwrap());
        assert!(Arc::ptr_eq(
            &cache.part::<SparseMetadata>(&a).unwrap(),
            &metadata
        ));
        assert_eq!((cache.index_hits.get(), cache.index_misses.get()), (4, 4));
        assert_eq!(cache.bytes.get(), cache.held_bytes() as i64);
        // A head snapshot's index is decoded every time, not kept.
        let head = block(&lines, Codec::None);
        let (one, two) = (
            cache.part::<EntryIndex>(&head).unwrap(),
            cache.part::<EntryIndex>(&head).unwrap(),
        );
        assert!(!Arc::ptr_eq(&one, &two));
    }

    #[test]
    fn a_block_is_found_whether_its_filter_is_inside_it_or_stored_apart() {
        let cache = BlockCache::new(1 << 20);
        let mut b = BlockBuilder::new();
        for i in 0..50 {
            b.push(i, format!("request {i} served").as_bytes(), &[]);
        }
        let in_memory = b.encode(&EncodeOptions::default());
        let chunk = fjord_chunk::encode_chunk(std::slice::from_ref(&in_memory)).unwrap();
        let stored = fjord_chunk::Chunk::open(chunk.into()).unwrap().block(0);
        assert_ne!(
            stored.data, in_memory.data,
            "the stored block lacks its filter"
        );
        let first = cache.decode(&in_memory).unwrap();
        let again = cache.decode(&stored).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!((cache.hits.get(), cache.misses.get()), (1, 1));
        let first = cache.part::<EntryIndex>(&in_memory).unwrap();
        let again = cache.part::<EntryIndex>(&stored).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!((cache.index_hits.get(), cache.index_misses.get()), (1, 1));
    }

    #[test]
    fn field_columns_are_built_in_the_background() {
        let cache = BlockCache::new(1 << 20);
        let plain = block(&["plain text", "more text"], Codec::Zstd(3));
        let json = block(
            &[
                r#"{"status":500,"path":"/a"}"#,
                r#"{"status":200,"path":"/b"}"#,
                "not json",
            ],
            Codec::Zstd(3),
        );
        let plain_decoded = cache.decode(&plain).unwrap();
        cache.build_field_columns_later(&plain, &plain_decoded);
        let first = cache.decode(&json).unwrap();
        assert!(first.fields.is_none());
        cache.build_field_columns_later(&json, &first);
        wait_for_builder(&cache);
        let with_columns = cache.decode(&json).unwrap();
        let mut expected = json.decode().unwrap();
        expected.fields = query_columns(&expected).map(Arc::new);
        assert_eq!(*with_columns, expected);
        assert!(expected.fields.as_ref().unwrap().column("status").is_some());
        assert_eq!(cache.columns_built.get(), 1);

        // A block of neither JSON nor logfmt lines gets no columns and is not asked for again.
        assert!(cache.decode(&plain).unwrap().fields.is_none());
        assert!(cache.asked.contains_key(&cache_key(&plain)));
        // The replaced entry's bytes were taken off the gauge.
        let held = cache.held_bytes() as i64;
        assert_eq!(cache.bytes.get(), held);

        // A stored block with the compactor's columns gets text columns too, once.
        let mut stored = json.decode().unwrap();
        stored.fields = crate::field_columns::json_columns(&stored).map(Arc::new);
        let stored = stored.encode(&EncodeOptions::default());
        let first = cache.decode(&stored).unwrap();
        assert!(first.fields.as_ref().is_some_and(|f| !f.with_texts));
        cache.build_field_columns_later(&stored, &first);
        wait_for_builder(&cache);
        let rebuilt = cache.decode(&stored).unwrap();
        assert!(rebuilt.fields.as_ref().is_some_and(|f| f.with_texts));
        cache.build_field_columns_later(&stored, &rebuilt);
        wait_for_builder(&cache);
        assert_eq!(cache.columns_built.get(), 2);
    }

    #[test]
    fn a_block_evicted_while_it_waits_for_columns_is_not_brought_back() {
        let cache = BlockCache::new(1 << 20);
        let builder = ColumnBuilder {
            blocks: cache.blocks.clone(),
            asked: cache.asked.clone(),
            bytes: cache.bytes.clone(),
            pending: cache.columns_pending.clone(),
            built: cache.columns_built.clone(),
        };
        let json = block(&[r#"{"status":500}"#, r#"{"status":200}"#], Codec::Zstd(3));
        let key = cache_key(&json);
        // (When the cache frees an evicted entry is up to its own garbage collection, so the
        // freed case is made here with a decoding nothing holds any more.)

        // Evicted and freed: the queue's weak reference no longer reaches it.
        let freed = Arc::downgrade(&Arc::new(json.decode().unwrap()));
        cache.asked.insert(key, ());
        builder.attach(key, &freed);
        assert!(!cache.blocks.contains_key(&key));
        assert!(!cache.asked.contains_key(&key));

        // Evicted while a query still holds it: not put back.
        let decoded = cache.decode(&json).unwrap();
        cache.asked.insert(key, ());
        cache.blocks.invalidate(&key);
        builder.attach(key, &Arc::downgrade(&decoded));
        assert!(!cache.blocks.contains_key(&key));
        assert!(!cache.asked.contains_key(&key));
        assert_eq!(cache.columns_built.get(), 0);

        // Still cached, it gets its columns.
        let decoded = cache.decode(&json).unwrap();
        cache.asked.insert(key, ());
        builder.attach(key, &Arc::downgrade(&decoded));
        assert!(cache.decode(&json).unwrap().fields.is_some());
        assert_eq!(cache.columns_built.get(), 1);
    }

    fn wait_for_builder(cache: &BlockCache) {
        for _ in 0..2000 {
            if cache.field_columns_pending() == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn uncompressed_blocks_are_not_kept_and_the_budget_holds() {
        let cache = BlockCache::new(1 << 20);
        let head = block(&["head line"], Codec::None);
        let one = cache.decode(&head).unwrap();
        let two = cache.decode(&head).unwrap();
        assert!(!Arc::ptr_eq(&one, &two));
        assert_eq!(cache.held_bytes(), 0);

        let small = BlockCache::new(4096);
        for i in 0..64 {
            let text = format!("{i} {}", "x".repeat(200));
            small
                .decode(&block(&[&text, &text], Codec::Zstd(3)))
                .unwrap();
        }
        assert!(small.held_bytes() <= 4096, "{}", small.held_bytes());
        assert_eq!(small.bytes.get(), small.held_bytes() as i64);
    }
}
