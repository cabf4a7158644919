//! Object store access: flushed chunks are packed into segment objects, and a label index per
//! tenant and day maps matchers to chunk refs, so queries find their chunks without listing
//! segments.
//!
//! Modules: [`config`] (backends), [`layout`] (object keys), [`segment`] (the segment object),
//! [`index_file`] (one flush's index), [`index`] (the merged in-memory index), [`store`] (the
//! read/write API).
//!
//! **Invariants:** a chunk ref is published in an index file only after its segment is durable;
//! index files are immutable; a segment is deleted only when no live index file references it
//! (see the compactor); tenant IDs are validated before they become keys.

pub mod config;
pub mod index;
pub mod index_file;
pub mod layout;
pub mod segment;
pub mod store;

pub use config::StorageConfig;
pub use index::{IndexedStream, LiveFile, ReplacedFile};
pub use index_file::{ChunkRef, IndexFile};
pub use segment::{FlushChunk, SegmentFormat};
pub use store::{
    PeriodFiles, PeriodSnapshot, ReadPart, Store, StoredObject, WriteStats, WrittenSegment,
};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage configuration: {0}")]
    Config(String),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("corrupt object: {0}")]
    Corrupt(String),
    #[error("i/o: {0}")]
    Io(String),
}
