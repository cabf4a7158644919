//! The compactor: rewrites each quiet period's chunks into large blocks with a strong codec,
//! then deletes the index files and segments that the rewrite superseded.
//!
//! Ingesters flush small blocks compressed for speed (256 KiB, zstd level 1), because flushing
//! is on the write path and bounded by memory. Once a period (one UTC day of the index) has
//! received no new index file for `quiet_period`, the compactor merges every stream's chunks of
//! that period in time order and re-encodes them in blocks of `block_size` with
//! `chunk_encoding` (512 KiB, zstd level 6 by default): about 12 % fewer bytes on disk for the
//! benchmark dataset, fewer objects, and fewer blocks for a search to check.
//!
//! Modules: [`config`] (the `compactor` config section), [`rewrite`] (one period's rewrite),
//! [`collect`] (deleting superseded objects), [`compactor`] (rounds, the loop, metrics).
//!
//! **Invariants:**
//! - A rewrite changes no query answer: overlapping blocks are merged, and exact duplicates
//!   dropped, by the query path's own merge (`fjord_engine::scan::prepare`).
//! - The new index file is published only after its segments are durable, and it names the
//!   files it replaces, so readers switch in one step whichever files they load first.
//! - Nothing is deleted before `delete_delay` has passed since it was superseded (or, for an
//!   unreferenced segment, since it was written), and never a segment this process is still
//!   publishing.

pub mod collect;
pub mod compactor;
pub mod config;
pub mod rewrite;

pub use compactor::{Compactor, CompactorMetrics, RoundReport};
pub use config::CompactorConfig;

/// Why a compaction round failed.
#[derive(Debug, thiserror::Error)]
pub enum CompactorError {
    #[error(transparent)]
    Store(#[from] fjord_store::StoreError),
    #[error("corrupt chunk data: {0}")]
    Data(String),
    #[error("compaction task failed: {0}")]
    Task(String),
}
