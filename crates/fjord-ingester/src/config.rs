//! The `ingester` config section. Key names and defaults follow Loki where Loki has the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fjord_chunk::EncodeOptions;
use fjord_model::duration::serde_duration;
use fjord_model::limits::ByteSize;
use serde::{Deserialize, Serialize};

use crate::wal::FsyncPolicy;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngesterConfig {
    /// Raw bytes of line text at which the open head block is compressed into a block.
    pub chunk_block_size: ByteSize,
    /// Compressed bytes at which a chunk is closed and queued for flushing.
    pub chunk_target_size: ByteSize,
    /// Longest span of entry timestamps in one chunk; also sets the out-of-order window
    /// (entries older than the stream's newest minus half of this are refused).
    #[serde(with = "serde_duration")]
    pub max_chunk_age: Duration,
    /// A chunk that received nothing for this long is closed and flushed.
    #[serde(with = "serde_duration")]
    pub chunk_idle_period: Duration,
    /// How often closed chunks are looked for and flushed.
    #[serde(with = "serde_duration")]
    pub flush_check_period: Duration,
    /// Block compression: `zstd` (level 1), `zstd:<1-19>`, `lz4` or `none`.
    pub chunk_encoding: String,
    /// Largest trigram filter per block, in bits per byte of text (0 disables the filter);
    /// filters are folded smaller for repetitive text. Filters let substring searches skip
    /// blocks; see fjord-chunk's filter module.
    pub chunk_filter_bits_per_byte: f64,
    /// Largest segment object one flush writes; more closed chunks go into further segments.
    pub max_segment_size: ByteSize,
    /// Memory all streams' unflushed data may take (head buffers and compressed chunks). Past
    /// it, the largest streams' chunks are closed early and flushed until half of it is free,
    /// so memory stays bounded however many streams are written at once. 0 disables the limit.
    pub max_chunk_memory: ByteSize,
    pub wal: WalConfig,
}

impl Default for IngesterConfig {
    fn default() -> Self {
        IngesterConfig {
            chunk_block_size: ByteSize(256 << 10),
            chunk_target_size: ByteSize(1536 << 10),
            max_chunk_age: Duration::from_secs(2 * 3600),
            chunk_idle_period: Duration::from_secs(30 * 60),
            flush_check_period: Duration::from_secs(30),
            chunk_encoding: "zstd".into(),
            chunk_filter_bits_per_byte: 0.25,
            max_segment_size: ByteSize(64 << 20),
            max_chunk_memory: ByteSize(48 << 20),
            wal: WalConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Disabling the WAL loses every unflushed entry on a crash; only for throwaway setups.
    pub enabled: bool,
    /// WAL directory; empty means `<data_dir>/wal`.
    pub dir: String,
    /// `always` (fsync before acknowledging, batched across concurrent pushes), `interval`
    /// (acknowledge once written, fsync every `fsync_interval`: survives a killed process but
    /// not a lost machine) or `never`.
    pub fsync: String,
    #[serde(with = "serde_duration")]
    pub fsync_interval: Duration,
    /// Size at which a WAL segment file is closed and a new one started.
    pub segment_size: ByteSize,
    /// How often the in-memory state is checkpointed so that older segments can be deleted.
    #[serde(with = "serde_duration")]
    pub checkpoint_duration: Duration,
    /// Flush all chunks to the store on shutdown (the WAL is then empty).
    pub flush_on_shutdown: bool,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            enabled: true,
            dir: String::new(),
            fsync: "always".into(),
            fsync_interval: Duration::from_secs(1),
            segment_size: ByteSize(64 << 20),
            checkpoint_duration: Duration::from_secs(300),
            flush_on_shutdown: true,
        }
    }
}

impl WalConfig {
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        if self.dir.is_empty() {
            data_dir.join("wal")
        } else {
            PathBuf::from(&self.dir)
        }
    }

    pub fn fsync_policy(&self) -> Result<FsyncPolicy, String> {
        match self.fsync.as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "interval" => Ok(FsyncPolicy::Interval(self.fsync_interval)),
            "never" => Ok(FsyncPolicy::Never),
            other => Err(format!(
                "ingester.wal.fsync must be always, interval or never, not `{other}`"
            )),
        }
    }
}

impl IngesterConfig {
    pub fn encode_options(&self) -> Result<EncodeOptions, String> {
        EncodeOptions::from_config(
            "ingester.chunk_",
            &self.chunk_encoding,
            self.chunk_filter_bits_per_byte,
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        self.encode_options()?;
        self.wal.fsync_policy()?;
        if self.chunk_block_size.0 < 1024 {
            return Err("ingester.chunk_block_size must be at least 1KB".into());
        }
        if self.flush_check_period.is_zero() {
            return Err("ingester.flush_check_period must be positive".into());
        }
        Ok(())
    }
}
