//! The ingester: streams in memory, the write-ahead log, chunk cutting and flushing.
//!
//! Modules: [`wal`] (durability), [`stream`] (one stream's head, blocks and closed chunks),
//! [`ingester`] (push, query, flush, checkpoint, recovery), [`config`], [`metrics`].
//!
//! **Invariant:** the ingester never talks HTTP; it is reached through
//! [`fjord_model::service::IngesterService`].

pub mod config;
pub mod ingester;
pub mod metrics;
pub mod stream;
pub mod wal;

pub use config::IngesterConfig;
pub use ingester::{FlushStats, Ingester, OpenError, RecoveryStats};
