//! Segment objects: the chunks of many streams written by one flush, back to back.
//!
//! ```text
//! "FJSG" | u8 version (1)
//! chunk | chunk | …                       (see fjord_chunk::chunk)
//! footer: count, per chunk: label string, offset, len
//! u32 LE footer length | u32 LE crc32 of the footer
//! ```
//! Queries read chunks with range requests at the offsets the index gives; the footer makes a
//! segment self-describing, so an index can be rebuilt from segments alone.

use fjord_chunk::{ChunkError, ChunkFormat, EncodedBlock, encode_chunk_into};
use fjord_model::Labels;
use fjord_model::varint::{put_bytes, put_uvarint};

const MAGIC: &[u8; 4] = b"FJSG";
const VERSION: u8 = 1;

/// One chunk to be written: a stream's blocks in time order.
#[derive(Debug, Clone)]
pub struct FlushChunk {
    pub labels: Labels,
    pub blocks: Vec<EncodedBlock>,
}

/// A chunk's place in an encoded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    /// Bytes of the chunk's tail (see `fjord_chunk::ChunkSummary`).
    pub(crate) tail_len: u32,
}

/// Encodes chunks of `format` into one segment; returns the bytes and each chunk's placement.
pub(crate) fn encode_segment(
    chunks: &[FlushChunk],
    format: ChunkFormat,
) -> Result<(Vec<u8>, Vec<Placement>), ChunkError> {
    let names: Vec<String> = chunks.iter().map(|c| c.labels.to_string()).collect();
    // Room for every chunk's blocks and footer and the segment's footer, so the buffer (tens
    // of MiB) is never copied to grow.
    let mut out = Vec::with_capacity(
        chunks
            .iter()
            .flat_map(|c| &c.blocks)
            .map(|b| b.data.len() + 48)
            .sum::<usize>()
            + names.iter().map(|n| n.len() + 32).sum::<usize>()
            + 64,
    );
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    let mut placements = Vec::with_capacity(chunks.len());
    for c in chunks {
        let offset = out.len() as u64;
        let tail_len = encode_chunk_into(&c.blocks, format, &mut out)?;
        placements.push(Placement {
            offset,
            len: out.len() as u64 - offset,
            tail_len: u32::try_from(tail_len)
                .map_err(|_| ChunkError::Corrupt("chunk summary over 4 GiB".into()))?,
        });
    }
    let footer_start = out.len();
    put_uvarint(&mut out, chunks.len() as u64);
    for (name, p) in names.iter().zip(&placements) {
        put_bytes(&mut out, name.as_bytes());
        put_uvarint(&mut out, p.offset);
        put_uvarint(&mut out, p.len);
    }
    let footer_len = (out.len() - footer_start) as u32;
    let crc = crc32fast::hash(&out[footer_start..]);
    out.extend_from_slice(&footer_len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    Ok((out, placements))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use fjord_chunk::{BlockBuilder, Chunk, EncodeOptions};

    #[test]
    fn chunks_are_readable_at_their_placements() {
        let chunks: Vec<FlushChunk> = (0..3)
            .map(|i| {
                let mut b = BlockBuilder::new();
                b.push(i, format!("line {i}").as_bytes(), &[]);
                FlushChunk {
                    labels: Labels::from_pairs([("i", i.to_string())]),
                    blocks: vec![b.encode(&EncodeOptions::default())],
                }
            })
            .collect();
        let (data, placements) = encode_segment(&chunks, ChunkFormat::FiltersInTail).unwrap();
        for (i, p) in placements.iter().enumerate() {
            let c = Chunk::open(Bytes::copy_from_slice(
                &data[p.offset as usize..(p.offset + p.len) as usize],
            ))
            .unwrap();
            assert_eq!(
                c.block(0).decode().unwrap().line(0),
                format!("line {i}").as_bytes()
            );
        }
    }
}
