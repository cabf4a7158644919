//! The `compactor` config section.

use std::time::Duration;

use fjord_chunk::EncodeOptions;
use fjord_model::duration::serde_duration;
use fjord_model::limits::ByteSize;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CompactorConfig {
    /// How often periods are checked for compaction and superseded objects for deletion.
    #[serde(with = "serde_duration")]
    pub compaction_interval: Duration,
    /// A period is compacted once no index file has been added to it for this long, so a day
    /// is rewritten once, after its last flush, rather than again after every flush.
    #[serde(with = "serde_duration")]
    pub quiet_period: Duration,
    /// How long superseded index files and unreferenced segments are kept before deletion.
    /// It must exceed the longest query, every querier's `storage.index_refresh_interval` and,
    /// when ingesters run in other processes, their longest flush.
    #[serde(with = "serde_duration")]
    pub delete_delay: Duration,
    /// Raw bytes of line text per rewritten block.
    pub block_size: ByteSize,
    /// Compressed bytes at which a rewritten chunk is closed.
    pub chunk_target_size: ByteSize,
    /// Codec of rewritten blocks: `zstd:<1-19>`, `zstd` (level 1), `lz4` or `none`.
    pub chunk_encoding: String,
    /// Largest trigram filter per rewritten block, in bits per byte of text (0: none).
    pub chunk_filter_bits_per_byte: f64,
    /// Largest segment object a rewrite writes; a period's chunks fill as many as they need.
    pub max_segment_size: ByteSize,
    /// Store the labels `| json` extracts from JSON lines as columns of rewritten blocks
    /// (names with at most 255 distinct values in a block), so `| json | <label filter>`
    /// queries skip lines without parsing them.
    pub field_columns: bool,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            compaction_interval: Duration::from_secs(600),
            quiet_period: Duration::from_secs(3600),
            delete_delay: Duration::from_secs(2 * 3600),
            block_size: ByteSize(512 << 10),
            chunk_target_size: ByteSize(1536 << 10),
            chunk_encoding: "zstd:6".into(),
            chunk_filter_bits_per_byte: 0.25,
            max_segment_size: ByteSize(32 << 20),
            field_columns: true,
        }
    }
}

impl CompactorConfig {
    pub fn encode_options(&self) -> Result<EncodeOptions, String> {
        EncodeOptions::from_config(
            "compactor.chunk_",
            &self.chunk_encoding,
            self.chunk_filter_bits_per_byte,
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        self.encode_options()?;
        if self.compaction_interval.is_zero() {
            return Err("compactor.compaction_interval must be positive".into());
        }
        if self.block_size.0 < 1024 {
            return Err("compactor.block_size must be at least 1KB".into());
        }
        Ok(())
    }
}
