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

/// Where a source's data lies, without reading it: a stored chunk's time range (both ends
/// included) and its compressed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataSpan {
    pub min_ts: i64,
    pub max_ts: i64,
    pub bytes: u64,
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

    /// Where the data [`DataSource::select`] would return for `matchers` in `[start, end)`
    /// lies, read without touching it, for the engine to read a long range in slices (see
    /// [`crate::read_slices`]). Data a source holds in memory anyway may be left out. None by
    /// default.
    async fn layout(
        &self,
        _matchers: &[LabelMatcher],
        _start: i64,
        _end: i64,
    ) -> Result<Vec<DataSpan>, EngineError> {
        Ok(Vec::new())
    }

    /// About how many compressed bytes of [`DataSource::layout`]'s data a query selects at
    /// once; unbounded (a range is read at once) by default.
    fn slice_bytes(&self) -> u64 {
        u64::MAX
    }

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
