//! A cache of decoded blocks with a byte budget.
//!
//! Dashboards repeat the same queries every refresh, and a filter on a common word (`|= "error"`)
//! cannot skip blocks by their trigram filter, so without a cache every refresh decompresses the
//! same text again (zstd was over a third of such a query's CPU). Entries are keyed by a 128-bit
//! hash of the encoded block's bytes, so a block is found whether it came from an ingester or
//! from the store, and a block that changed can never be served stale. Only compressed blocks
//! are cached: an ingester's head snapshot is stored uncompressed, changes with every push, and
//! costs a copy to decode.
//!
//! **Invariant:** the cache changes how fast a block is decoded, never what it decodes to; the
//! budget counts the decoded bytes held (line text, timestamps, offsets, metadata, field columns).

use std::sync::Arc;

use fjord_chunk::{ChunkError, DecodedBlock, EncodedBlock, MetadataSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Decoded blocks by content, within a byte budget.
pub struct BlockCache {
    blocks: moka::sync::Cache<u128, Arc<DecodedBlock>>,
    hits: Counter,
    misses: Counter,
    /// Decoded bytes held: added on insert, taken off when an entry is evicted or replaced.
    bytes: Gauge,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("entries", &self.blocks.entry_count())
            .field("bytes", &self.blocks.weighted_size())
            .finish()
    }
}

/// Bytes a decoded block holds, for the budget.
fn weight(d: &DecodedBlock) -> u32 {
    let metadata: usize = d
        .metadata
        .iter()
        .map(|(_, set)| std::mem::size_of::<(u32, MetadataSet)>() + set.len() * 48)
        .sum();
    let fields = d.fields.as_ref().map_or(0, |f| f.heap_bytes());
    let bytes = d.data.len() + d.ts.len() * 8 + d.offsets.len() * 4 + metadata + fields;
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
                .weigher(|_, d: &Arc<DecodedBlock>| weight(d))
                .eviction_listener(move |_, d: Arc<DecodedBlock>, _| {
                    released.dec_by(i64::from(weight(&d)));
                })
                .build(),
            hits: Counter::default(),
            misses: Counter::default(),
            bytes,
        }
    }

    /// Exposes hits, misses and bytes held as `fjord_querier_block_cache_*`.
    pub fn register_metrics(&self, registry: &mut Registry) {
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
            "fjord_querier_block_cache_bytes",
            "Decoded bytes the block cache holds",
            self.bytes.clone(),
        );
    }

    /// The block decoded: from the cache when it holds these exact bytes, else decoded now (and
    /// kept, if compressed).
    pub fn decode(&self, block: &EncodedBlock) -> Result<Arc<DecodedBlock>, ChunkError> {
        if !block.is_compressed() {
            return block.decode().map(Arc::new);
        }
        let key = xxhash_rust::xxh3::xxh3_128(&block.data);
        if let Some(hit) = self.blocks.get(&key) {
            self.hits.inc();
            return Ok(hit);
        }
        self.misses.inc();
        let decoded = Arc::new(block.decode()?);
        self.bytes.inc_by(i64::from(weight(&decoded)));
        self.blocks.insert(key, Arc::clone(&decoded));
        Ok(decoded)
    }

    /// Decoded bytes held now (after pending evictions are applied).
    pub fn held_bytes(&self) -> u64 {
        self.blocks.run_pending_tasks();
        self.blocks.weighted_size()
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
