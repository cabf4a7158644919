//! Preparing a stream's blocks for evaluation: blocks that overlap in time (the same data in an
//! ingester and in the store, or out-of-order writes) are merged into one block with exact
//! duplicates removed, so that afterwards a stream is a list of time-disjoint units and every
//! entry is seen once.

use std::sync::Arc;

use fjord_chunk::{
    BlockBuilder, BlockMeta, DecodedBlock, EncodedBlock, EntryIndex, SparseMetadata,
};
use fjord_model::Labels;

use crate::block_cache::{BlockPart, part_through};
use crate::{BlockCache, EngineError, SelectedStream};

/// Part `P` of an encoded unit's block, through the query's block cache when it has one.
fn encoded_part<P: BlockPart>(
    block: &EncodedBlock,
    cache: &Option<Arc<BlockCache>>,
) -> Result<Arc<P>, EngineError> {
    part_through(cache.as_deref(), block).map_err(|e| EngineError::Storage(e.to_string()))
}

/// A unit of a stream's data: an untouched encoded block (decoded through the query's block
/// cache, when it has one), or several overlapping blocks merged.
#[derive(Debug, Clone)]
pub enum Unit {
    Encoded(EncodedBlock, Option<Arc<BlockCache>>),
    Merged(Arc<DecodedBlock>),
}

impl Unit {
    pub fn meta(&self) -> BlockMeta {
        match self {
            Unit::Encoded(b, _) => b.meta,
            Unit::Merged(d) => d.meta(),
        }
    }

    /// All columns, decoded.
    pub fn decode(&self) -> Result<Arc<DecodedBlock>, EngineError> {
        match self {
            Unit::Encoded(b, cache) => match cache {
                Some(cache) => cache.decode(b),
                None => b.decode().map(Arc::new),
            }
            .map_err(|e| EngineError::Storage(e.to_string())),
            Unit::Merged(d) => Ok(d.clone()),
        }
    }

    /// Asks the block cache to give this unit's cached decoding field columns in the
    /// background (see [`BlockCache::build_field_columns_later`]); merged units are not cached.
    pub fn want_field_columns(&self, decoded: &Arc<DecodedBlock>) {
        if let Unit::Encoded(b, Some(cache)) = self {
            cache.build_field_columns_later(b, decoded);
        }
    }

    /// Timestamps and line lengths, without the text (through the query's block cache, when
    /// it has one).
    pub fn decode_index(&self) -> Result<Arc<EntryIndex>, EngineError> {
        match self {
            Unit::Encoded(b, cache) => encoded_part(b, cache),
            Unit::Merged(d) => Ok(Arc::new(EntryIndex {
                ts: d.ts.clone(),
                lens: d.offsets.windows(2).map(|w| w[1] - w[0]).collect(),
            })),
        }
    }

    /// The sparse structured metadata, without the text (through the query's block cache, when
    /// it has one).
    pub fn decode_metadata(&self) -> Result<Arc<SparseMetadata>, EngineError> {
        match self {
            Unit::Encoded(b, cache) => encoded_part(b, cache),
            Unit::Merged(d) => Ok(Arc::new(d.metadata.clone())),
        }
    }

    /// The distinct structured metadata names in the unit (through the query's block cache,
    /// when it has one).
    pub fn metadata_names(&self) -> Result<Arc<Vec<String>>, EngineError> {
        match self {
            Unit::Encoded(b, cache) => encoded_part(b, cache),
            Unit::Merged(d) => {
                let mut names: Vec<String> = d
                    .metadata
                    .iter()
                    .flat_map(|(_, md)| md.iter().map(|l| l.name.to_string()))
                    .collect();
                names.sort();
                names.dedup();
                Ok(Arc::new(names))
            }
        }
    }

    /// Whether the block may contain a line satisfying every clause (each clause: one of its
    /// literals). Merged blocks are always read.
    pub fn may_match(&self, clauses: &[Vec<Vec<u8>>]) -> bool {
        match self {
            Unit::Encoded(b, _) => b.may_match(clauses),
            Unit::Merged(_) => true,
        }
    }
}

/// One stream ready for evaluation.
#[derive(Debug, Clone)]
pub struct StreamData {
    pub labels: Arc<Labels>,
    /// Time-disjoint, in ascending time order.
    pub units: Vec<Unit>,
}

/// Merges overlapping blocks (closed time intervals that intersect or touch).
pub fn prepare(
    stream: SelectedStream,
    start: i64,
    end: i64,
    cache: Option<&Arc<BlockCache>>,
) -> Result<StreamData, EngineError> {
    let mut blocks: Vec<EncodedBlock> = stream
        .blocks
        .into_iter()
        .filter(|b| b.meta.overlaps(start, end))
        .collect();
    blocks.sort_by_key(|b| (b.meta.min_ts, b.meta.max_ts));
    let mut units: Vec<Unit> = Vec::with_capacity(blocks.len());
    let mut group: Vec<EncodedBlock> = Vec::new();
    let mut group_max = i64::MIN;
    for b in blocks {
        if !group.is_empty() && b.meta.min_ts > group_max {
            units.push(close_group(std::mem::take(&mut group), cache)?);
        }
        group_max = if group.is_empty() {
            b.meta.max_ts
        } else {
            group_max.max(b.meta.max_ts)
        };
        group.push(b);
    }
    if !group.is_empty() {
        units.push(close_group(group, cache)?);
    }
    Ok(StreamData {
        labels: Arc::new(stream.labels),
        units,
    })
}

fn close_group(
    mut group: Vec<EncodedBlock>,
    cache: Option<&Arc<BlockCache>>,
) -> Result<Unit, EngineError> {
    if group.len() == 1 {
        return Ok(Unit::Encoded(group.remove(0), cache.cloned()));
    }
    let mut builder = BlockBuilder::new();
    for b in &group {
        let d = b
            .decode()
            .map_err(|e| EngineError::Storage(e.to_string()))?;
        for i in 0..d.len() {
            builder.push(d.ts[i], d.line(i), d.metadata(i));
        }
    }
    Ok(Unit::Merged(Arc::new(builder.to_decoded())))
}

/// Index range of entries of a decoded block within `[start, end)`.
pub fn entry_range(ts: &[i64], start: i64, end: i64) -> std::ops::Range<usize> {
    let lo = ts.partition_point(|&t| t < start);
    let hi = ts.partition_point(|&t| t < end);
    lo..hi.max(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_chunk::EncodeOptions;

    fn block(entries: &[(i64, &str)]) -> EncodedBlock {
        let mut b = BlockBuilder::new();
        for (t, l) in entries {
            b.push(*t, l.as_bytes(), &[]);
        }
        b.encode(&EncodeOptions::default())
    }

    #[test]
    fn overlapping_blocks_merge_without_duplicates() {
        let s = SelectedStream {
            labels: Labels::from_pairs([("a", "b")]),
            blocks: vec![
                block(&[(1, "x"), (5, "y")]),
                block(&[(5, "y"), (6, "z")]),
                block(&[(10, "w")]),
                block(&[(20, "out")]),
            ],
        };
        let d = prepare(s, 0, 15, None).unwrap();
        assert_eq!(d.units.len(), 2);
        let merged = d.units[0].decode().unwrap();
        assert_eq!(merged.ts, vec![1, 5, 6]);
        assert_eq!(entry_range(&[1, 5, 6], 5, 6), 1..2);
    }
}
