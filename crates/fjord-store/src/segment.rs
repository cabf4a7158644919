//! Segment objects: the chunks of many streams written by one flush, back to back.
//!
//! Version 2 (`storage.chunk_format: 3`):
//! ```text
//! "FJSG" | u8 version (2)
//! chunk body | chunk body | …            (each a version 2 chunk without its tail)
//! chunk tail | chunk tail | …            (the tails, in the same order)
//! footer: count, per chunk: label string, offset, len, tail offset, tail len
//! u32 LE footer length | u32 LE crc32 of the footer
//! ```
//! A chunk is its body followed by its tail (see `fjord_chunk::chunk`), wherever each lies; its
//! `len` counts both. Gathering the tails lets a search read every tail of a segment with one
//! request, then only the blocks that may match: a flush's chunks are small (tens of KiB), and
//! their tails spread between their bodies would cost one request each on an object store.
//! Bodies of consecutive chunks lie back to back, and so do their tails, so a query that reads
//! many chunks whole reads two runs of bytes. (A segment's lone chunk is laid out as in
//! version 1: its tail follows its body.)
//!
//! Version 1 (`chunk_format` 1 and 2) has the whole chunks back to back, each tail right after
//! its body, and a footer without tail fields.
//!
//! Queries read chunks with range requests at the offsets the index gives; the footer makes a
//! segment self-describing, so an index can be rebuilt from segments alone.

use fjord_chunk::{ChunkError, ChunkFormat, EncodedBlock, encode_chunk_apart, encode_chunk_into};
use fjord_model::Labels;
use fjord_model::varint::{put_bytes, put_uvarint};

const MAGIC: &[u8; 4] = b"FJSG";
/// Whole chunks back to back.
const VERSION_WHOLE_CHUNKS: u8 = 1;
/// Chunk bodies, then their tails.
const VERSION_TAILS_GATHERED: u8 = 2;

/// How segments are written (`storage.chunk_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFormat {
    /// `1`: version 1 chunks (each block keeps its trigram filter), which have no tail.
    InlineFilters,
    /// `2`: version 2 chunks, each tail right after its body (segment version 1).
    TailsInChunks,
    /// `3`: version 2 chunks with every tail gathered after all the bodies (segment version 2).
    TailsGathered,
}

impl SegmentFormat {
    /// The format `storage.chunk_format` names by `n`.
    pub fn from_setting(n: u8) -> Option<SegmentFormat> {
        match n {
            1 => Some(SegmentFormat::InlineFilters),
            2 => Some(SegmentFormat::TailsInChunks),
            3 => Some(SegmentFormat::TailsGathered),
            _ => None,
        }
    }
}

/// One chunk to be written: a stream's blocks in time order.
#[derive(Debug, Clone)]
pub struct FlushChunk {
    pub labels: Labels,
    pub blocks: Vec<EncodedBlock>,
}

/// A chunk's place in an encoded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    /// Where the chunk (its body, when its tail lies apart) starts.
    pub(crate) offset: u64,
    /// Bytes of the chunk, body and tail.
    pub(crate) len: u64,
    /// Bytes of the chunk's tail (see `fjord_chunk::ChunkSummary`); 0 for a version 1 chunk.
    pub(crate) tail_len: u32,
    /// Where the tail starts: right after the body, or among the gathered tails.
    pub(crate) tail_offset: u64,
}

/// Encodes chunks into one segment of `format`; returns the bytes and each chunk's placement.
pub(crate) fn encode_segment(
    chunks: &[FlushChunk],
    format: SegmentFormat,
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
            + names.iter().map(|n| n.len() + 48).sum::<usize>()
            + 64,
    );
    out.extend_from_slice(MAGIC);
    let gathered = format == SegmentFormat::TailsGathered;
    out.push(if gathered {
        VERSION_TAILS_GATHERED
    } else {
        VERSION_WHOLE_CHUNKS
    });
    let tail_len_u32 = |n: usize| {
        u32::try_from(n).map_err(|_| ChunkError::Corrupt("chunk summary over 4 GiB".into()))
    };
    let mut tails = Vec::new();
    let mut placements = Vec::with_capacity(chunks.len());
    for c in chunks {
        let offset = out.len() as u64;
        let placement = match format {
            SegmentFormat::TailsGathered => {
                let tail_offset = tails.len() as u64;
                let tail_len = encode_chunk_apart(&c.blocks, &mut out, &mut tails)?;
                Placement {
                    offset,
                    len: out.len() as u64 - offset + tail_len as u64,
                    tail_len: tail_len_u32(tail_len)?,
                    // Within the tails for now; moved once their place is known.
                    tail_offset,
                }
            }
            SegmentFormat::InlineFilters | SegmentFormat::TailsInChunks => {
                let chunk_format = if format == SegmentFormat::InlineFilters {
                    ChunkFormat::InlineFilters
                } else {
                    ChunkFormat::FiltersInTail
                };
                let tail_len = encode_chunk_into(&c.blocks, chunk_format, &mut out)?;
                Placement {
                    offset,
                    len: out.len() as u64 - offset,
                    tail_len: tail_len_u32(tail_len)?,
                    tail_offset: (out.len() - tail_len) as u64,
                }
            }
        };
        placements.push(placement);
    }
    if gathered {
        let tails_start = out.len() as u64;
        for p in &mut placements {
            p.tail_offset += tails_start;
        }
        out.extend_from_slice(&tails);
    }
    let footer_start = out.len();
    put_uvarint(&mut out, chunks.len() as u64);
    for (name, p) in names.iter().zip(&placements) {
        put_bytes(&mut out, name.as_bytes());
        put_uvarint(&mut out, p.offset);
        put_uvarint(&mut out, p.len);
        if gathered {
            put_uvarint(&mut out, p.tail_offset);
            put_uvarint(&mut out, u64::from(p.tail_len));
        }
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
    fn chunks_are_readable_at_their_placements_in_every_format() {
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
        for n in 1..=3 {
            let format = SegmentFormat::from_setting(n).unwrap();
            let (data, placements) = encode_segment(&chunks, format).unwrap();
            let data = Bytes::from(data);
            let mut body_end = 5;
            for (i, p) in placements.iter().enumerate() {
                let at = |from: u64, len: u64| data.slice(from as usize..(from + len) as usize);
                let tail_len = u64::from(p.tail_len);
                let body = at(p.offset, p.len - tail_len);
                let c = Chunk::open(Bytes::from(
                    [&body[..], &at(p.tail_offset, tail_len)[..]].concat(),
                ))
                .unwrap();
                assert_eq!(
                    c.block(0).decode().unwrap().line(0),
                    format!("line {i}").as_bytes()
                );
                // Only version 1 chunks have no tail; a tail follows its body unless gathered.
                assert_eq!(p.tail_len == 0, format == SegmentFormat::InlineFilters);
                let apart = p.tail_offset != p.offset + p.len - tail_len;
                assert_eq!(apart, format == SegmentFormat::TailsGathered);
                // Chunks (or their bodies) lie back to back, and so do gathered tails.
                assert_eq!(p.offset, body_end);
                body_end = p.offset + if apart { p.len - tail_len } else { p.len };
                if apart && i > 0 {
                    let prev = placements[i - 1];
                    assert_eq!(p.tail_offset, prev.tail_offset + u64::from(prev.tail_len));
                }
            }
        }
        assert_eq!(SegmentFormat::from_setting(4), None);
    }
}
