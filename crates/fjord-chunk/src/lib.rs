//! The chunk format: how Fjord lays out log entries in memory and in the object store.
//!
//! A stream's entries are cut into [`block`]s (the unit of compression and skipping): columns
//! for timestamps, lines and structured metadata, each compressed on its own, with a summary
//! ([`BlockMeta`]), an optional [`filter::TrigramFilter`] and optional [`fields`] columns. A
//! [`chunk`] is a run of blocks of one stream with a footer that repeats every block's summary.
//!
//! **Invariants:** this crate knows no tenants, streams, HTTP or object keys; every decoder
//! validates lengths and checksums and returns [`ChunkError`] on bad input, never panics.

pub mod block;
pub mod chunk;
pub mod codec;
pub mod fields;
pub mod filter;

pub use block::{
    BlockBuilder, BlockMeta, DecodedBlock, EncodeOptions, EncodedBlock, EntryIndex, MetadataCursor,
    MetadataSet, SectionSizes, SparseMetadata,
};
pub use chunk::{
    BlockSummary, Chunk, ChunkFormat, ChunkSummary, encode_chunk, encode_chunk_apart,
    encode_chunk_into, encode_chunk_version, open_body_blocks,
};
pub use codec::Codec;
pub use fields::{FieldColumn, FieldColumns, FieldColumnsBuilder, FieldParser, TextColumn};

/// Why stored data could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("checksum mismatch: the data is corrupt")]
    Checksum,
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    #[error("corrupt data: {0}")]
    Corrupt(String),
}

impl From<fjord_model::varint::Truncated> for ChunkError {
    fn from(_: fjord_model::varint::Truncated) -> Self {
        ChunkError::Corrupt("truncated".into())
    }
}
