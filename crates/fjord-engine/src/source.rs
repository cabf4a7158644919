//! Where the engine's data comes from: a [`DataSource`] turns a selector and time range into
//! the blocks of every matching stream. The querier implements it over ingesters and the store.

use std::sync::Arc;

use async_trait::async_trait;
use fjord_chunk::EncodedBlock;
use fjord_model::memory_budget::MemoryBudget;
use fjord_model::{LabelMatcher, Labels};

use crate::{BlockCache, EngineError};

/// A stream and the blocks holding its entries in the requested range. Blocks may overlap in
/// time and may repeat entries (a chunk both in an ingester and in the store); the engine merges
/// them and drops exact duplicates.
#[derive(Debug, Clone)]
pub struct SelectedStream {
    pub labels: Labels,
    pub blocks: Vec<EncodedBlock>,
}

#[async_trait]
pub trait DataSource: Send + Sync {
    /// Blocks of streams matching `matchers` that may hold entries in `[start, end)`.
    ///
    /// `clauses` are the literals the query's line filters require (see
    /// `compile::skippable_literals`): a block whose trigram filter shows that no line of it
    /// satisfies them may be left out (a store can then skip reading it). The engine checks
    /// every block it gets again, so leaving out none is correct too.
    async fn select(
        &self,
        matchers: &[LabelMatcher],
        start: i64,
        end: i64,
        clauses: &[Vec<Vec<u8>>],
    ) -> Result<Vec<SelectedStream>, EngineError>;

    /// The cache through which the selected blocks are decoded; none by default.
    fn block_cache(&self) -> Option<Arc<BlockCache>> {
        None
    }

    /// The budget the series of metric queries in flight share (see
    /// [`crate::series_slots`]); none, for no bound, by default.
    fn series_memory(&self) -> Option<Arc<MemoryBudget>> {
        None
    }
}
