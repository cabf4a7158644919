//! Chunks: the blocks of one stream over a span of time, as stored in the object store.
//!
//! Layout:
//! ```text
//! "FJCK" | u8 version (1)
//! block 0 | block 1 | …                     (each self-describing and checksummed, see block.rs)
//! footer: count, then per block: len, entries, min_ts, max_ts, raw_bytes, metadata_bytes
//! u32 LE footer length | u32 LE crc32 of the footer
//! ```
//! The footer repeats each block's summary so a reader can plan (skip by time, answer counts)
//! from the footer alone.
//!
//! **Invariant:** a chunk knows nothing of tenants, streams or object keys; that is the store's
//! business. Opening a chunk validates the footer; each block validates its own checksum when
//! it is read.

use bytes::Bytes;
use fjord_model::varint::{Reader, put_uvarint, put_varint};

use crate::ChunkError;
use crate::block::{BlockMeta, EncodedBlock};

const MAGIC: &[u8; 4] = b"FJCK";
const CHUNK_VERSION: u8 = 1;
const TRAILER: usize = 8;

/// Serializes blocks (in time order) into one chunk.
pub fn encode_chunk(blocks: &[EncodedBlock]) -> Vec<u8> {
    let body: usize = blocks.iter().map(|b| b.data.len()).sum();
    let mut out = Vec::with_capacity(5 + body + blocks.len() * 24 + TRAILER);
    encode_chunk_into(blocks, &mut out);
    out
}

/// [`encode_chunk`] appended to `out`, e.g. a segment being written (the chunk's footer holds
/// block sizes, not offsets, so where it lands does not matter).
pub fn encode_chunk_into(blocks: &[EncodedBlock], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    out.push(CHUNK_VERSION);
    for b in blocks {
        out.extend_from_slice(&b.data);
    }
    let footer_start = out.len();
    put_uvarint(out, blocks.len() as u64);
    for b in blocks {
        put_uvarint(out, b.data.len() as u64);
        put_uvarint(out, u64::from(b.meta.count));
        put_varint(out, b.meta.min_ts);
        put_varint(out, b.meta.max_ts);
        put_uvarint(out, b.meta.raw_bytes);
        put_uvarint(out, b.meta.metadata_bytes);
    }
    let footer_len = (out.len() - footer_start) as u32;
    let crc = crc32fast::hash(&out[footer_start..]);
    out.extend_from_slice(&footer_len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
}

/// An opened chunk: its bytes and the parsed footer.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Size of the encoded chunk.
    len: usize,
    /// Every block, its checksum verified once when the chunk was opened.
    blocks: Vec<EncodedBlock>,
}

impl Chunk {
    /// Parses the header and footer.
    pub fn open(data: Bytes) -> Result<Chunk, ChunkError> {
        if data.len() < 5 + TRAILER || &data[..4] != MAGIC {
            return Err(ChunkError::Corrupt("not a chunk (bad magic)".into()));
        }
        if data[4] != CHUNK_VERSION {
            return Err(ChunkError::UnsupportedVersion(data[4]));
        }
        let mut t = Reader::new(&data[data.len() - TRAILER..]);
        let footer_len = t.u32_le()? as usize;
        let crc = t.u32_le()?;
        let footer_end = data.len() - TRAILER;
        let footer_start = footer_end
            .checked_sub(footer_len)
            .filter(|&s| s >= 5)
            .ok_or(ChunkError::Checksum)?;
        let footer = &data[footer_start..footer_end];
        if crc32fast::hash(footer) != crc {
            return Err(ChunkError::Checksum);
        }
        let mut r = Reader::new(footer);
        let n = r.len_at_most(footer_len)?;
        let mut blocks = Vec::with_capacity(n);
        let mut pos = 5usize;
        for _ in 0..n {
            let len = r.len_at_most(footer_start)?;
            let meta = BlockMeta {
                count: r.len_at_most(u32::MAX as usize)? as u32,
                min_ts: r.varint()?,
                max_ts: r.varint()?,
                raw_bytes: r.uvarint()?,
                metadata_bytes: r.uvarint()?,
            };
            let end = pos + len;
            if end > footer_start {
                return Err(ChunkError::Corrupt("block extends into the footer".into()));
            }
            let block = EncodedBlock::from_bytes(data.slice(pos..end))?;
            if block.meta != meta {
                return Err(ChunkError::Corrupt(
                    "block header disagrees with the chunk footer".into(),
                ));
            }
            blocks.push(block);
            pos = end;
        }
        if pos != footer_start || !r.is_empty() {
            return Err(ChunkError::Corrupt(
                "chunk footer does not cover the blocks".into(),
            ));
        }
        Ok(Chunk {
            len: data.len(),
            blocks,
        })
    }

    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    pub fn block_meta(&self, i: usize) -> &BlockMeta {
        &self.blocks[i].meta
    }

    pub fn block_metas(&self) -> impl Iterator<Item = &BlockMeta> {
        self.blocks.iter().map(|b| &b.meta)
    }

    /// Block `i` (a cheap reference-counted view of the chunk's bytes).
    pub fn block(&self, i: usize) -> EncodedBlock {
        self.blocks[i].clone()
    }

    /// All blocks.
    pub fn blocks(&self) -> &[EncodedBlock] {
        &self.blocks
    }

    /// Summary over all blocks.
    pub fn meta(&self) -> BlockMeta {
        let mut m = BlockMeta {
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            ..Default::default()
        };
        for b in self.block_metas() {
            m.count += b.count;
            m.min_ts = m.min_ts.min(b.min_ts);
            m.max_ts = m.max_ts.max(b.max_ts);
            m.raw_bytes += b.raw_bytes;
            m.metadata_bytes += b.metadata_bytes;
        }
        m
    }

    pub fn len_bytes(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockBuilder, EncodeOptions};

    fn blocks() -> Vec<EncodedBlock> {
        (0..3)
            .map(|b| {
                let mut bb = BlockBuilder::new();
                for i in 0..100 {
                    bb.push(b * 1000 + i, format!("block {b} line {i}").as_bytes(), &[]);
                }
                bb.encode(&EncodeOptions::default())
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let bs = blocks();
        let c = Chunk::open(Bytes::from(encode_chunk(&bs))).unwrap();
        assert_eq!(c.block_count(), 3);
        assert_eq!(c.blocks(), bs);
        let m = c.meta();
        assert_eq!((m.count, m.min_ts, m.max_ts), (300, 0, 2099));
    }

    #[test]
    fn every_single_byte_corruption_is_an_error() {
        let data = encode_chunk(&blocks()[..1]);
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x01;
            let ok = Chunk::open(Bytes::from(bad)).map(|_| ());
            assert!(ok.is_err(), "flip at byte {i} not detected");
        }
    }
}
