//! Chunks: the blocks of one stream over a span of time, as stored in the object store.
//!
//! Layout (version 2):
//! ```text
//! "FJCK" | u8 version (2)
//! block 0 | block 1 | …      (each self-describing and checksummed, see block.rs; their
//!                             trigram filter sections are empty)
//! summary: count, then per block: len, entries, min_ts, max_ts, raw_bytes, metadata_bytes,
//!          filter_len; then every block's trigram filter, back to back
//! u32 LE summary length | u32 LE crc32 of the summary
//! ```
//! The summary and the trailer after it, the chunk's *tail* (the store's index records its
//! length), are all a reader needs to plan: skip blocks by time, answer counts, and rule out
//! blocks whose filter excludes a search's literals. A search therefore reads the tail first
//! and then only the blocks that may match ([`ChunkSummary`]), instead of the whole chunk.
//! A writer may also store the tail apart from the body ([`encode_chunk_apart`]): a segment
//! gathers its chunks' tails so that one read fetches them all.
//!
//! Version 1, still read, kept each block's filter inside the block, and its footer had no
//! filter lengths and no filters.
//!
//! **Invariant:** a chunk knows nothing of tenants, streams or object keys; that is the store's
//! business. Opening a chunk or a tail validates the summary; each block validates its own
//! checksum when it is opened.

use std::ops::Range;

use bytes::Bytes;
use fjord_model::varint::{Reader, put_uvarint, put_varint};

use crate::ChunkError;
use crate::block::{BlockMeta, EncodedBlock, block_len};
use crate::filter::block_may_match;

const MAGIC: &[u8; 4] = b"FJCK";
/// Blocks with their filters inside.
const CHUNK_VERSION_INLINE_FILTERS: u8 = 1;
const CHUNK_VERSION: u8 = 2;
/// Magic and version.
const HEADER: usize = 5;
/// Summary length and checksum.
const TRAILER: usize = 8;

/// Which chunk version to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFormat {
    /// Version 1: each block keeps its filter; no tail to search by. For a rolling upgrade
    /// from binaries that cannot read version 2.
    InlineFilters,
    /// Version 2: filters in the chunk's tail.
    FiltersInTail,
}

/// Serializes blocks (in time order) into one chunk of the current version.
pub fn encode_chunk(blocks: &[EncodedBlock]) -> Result<Vec<u8>, ChunkError> {
    encode_chunk_version(blocks, ChunkFormat::FiltersInTail)
}

/// Serializes blocks (in time order) into one chunk of `format`.
pub fn encode_chunk_version(
    blocks: &[EncodedBlock],
    format: ChunkFormat,
) -> Result<Vec<u8>, ChunkError> {
    let body: usize = blocks.iter().map(|b| b.data.len()).sum();
    let mut out = Vec::with_capacity(HEADER + body + blocks.len() * 24 + TRAILER);
    encode_chunk_into(blocks, format, &mut out)?;
    Ok(out)
}

/// A chunk of `format` appended to `out`, e.g. a segment being written (the summary holds
/// block sizes, not offsets, so where it lands does not matter). Returns the length of the
/// chunk's tail (summary and trailer; 0 for version 1, which has none to search by).
pub fn encode_chunk_into(
    blocks: &[EncodedBlock],
    format: ChunkFormat,
    out: &mut Vec<u8>,
) -> Result<usize, ChunkError> {
    if format == ChunkFormat::InlineFilters {
        encode_inline_filter_chunk(blocks, out)?;
        return Ok(0);
    }
    let mut tail = Vec::with_capacity(16 + blocks.len() * 24);
    let tail_len = encode_chunk_apart(blocks, out, &mut tail)?;
    out.extend_from_slice(&tail);
    Ok(tail_len)
}

/// A version 2 chunk written in two places: its body (header and blocks) appended to `body`,
/// its tail (summary and trailer) to `tail`. The chunk is the body followed by the tail, so a
/// segment can gather its chunks' tails in one place (the body keeps no pointer to its tail,
/// and the tail lists block sizes, not offsets). Returns the length of the tail.
pub fn encode_chunk_apart(
    blocks: &[EncodedBlock],
    body: &mut Vec<u8>,
    tail: &mut Vec<u8>,
) -> Result<usize, ChunkError> {
    body.extend_from_slice(MAGIC);
    body.push(CHUNK_VERSION);
    let mut written = Vec::with_capacity(blocks.len());
    for b in blocks {
        let start = body.len();
        let filter = b.write_without_filter(body)?;
        written.push((body.len() - start, filter));
    }
    let summary_start = tail.len();
    put_uvarint(tail, blocks.len() as u64);
    for (b, (len, filter)) in blocks.iter().zip(&written) {
        put_uvarint(tail, *len as u64);
        put_block_meta(tail, &b.meta);
        put_uvarint(tail, filter.len() as u64);
    }
    for (_, filter) in &written {
        tail.extend_from_slice(filter);
    }
    close_summary(tail, summary_start)?;
    Ok(tail.len() - summary_start)
}

/// A version 1 chunk: blocks with their filters inside, and a footer of their sizes and
/// summaries.
fn encode_inline_filter_chunk(
    blocks: &[EncodedBlock],
    out: &mut Vec<u8>,
) -> Result<(), ChunkError> {
    out.extend_from_slice(MAGIC);
    out.push(CHUNK_VERSION_INLINE_FILTERS);
    let mut lens = Vec::with_capacity(blocks.len());
    for b in blocks {
        let start = out.len();
        b.write_with_filter_inside(out)?;
        lens.push(out.len() - start);
    }
    let footer_start = out.len();
    put_uvarint(out, blocks.len() as u64);
    for (b, len) in blocks.iter().zip(lens) {
        put_uvarint(out, len as u64);
        put_block_meta(out, &b.meta);
    }
    close_summary(out, footer_start)
}

/// Writes a block's summary fields (after its length) as a chunk's summary or footer lists them.
fn put_block_meta(out: &mut Vec<u8>, meta: &BlockMeta) {
    put_uvarint(out, u64::from(meta.count));
    put_varint(out, meta.min_ts);
    put_varint(out, meta.max_ts);
    put_uvarint(out, meta.raw_bytes);
    put_uvarint(out, meta.metadata_bytes);
}

/// Appends the trailer (length and checksum) of the summary or footer that starts at `start`.
fn close_summary(out: &mut Vec<u8>, start: usize) -> Result<(), ChunkError> {
    let len = u32::try_from(out.len() - start)
        .map_err(|_| ChunkError::Corrupt("chunk summary over 4 GiB".into()))?;
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The checked trailer of a chunk's bytes or tail: the summary it closes, as a range of `data`.
fn summary_range(data: &[u8], lowest_start: usize) -> Result<Range<usize>, ChunkError> {
    let end = data
        .len()
        .checked_sub(TRAILER)
        .ok_or_else(|| ChunkError::Corrupt("chunk too short".into()))?;
    let mut t = Reader::new(&data[end..]);
    let len = t.u32_le()? as usize;
    let crc = t.u32_le()?;
    let start = end
        .checked_sub(len)
        .filter(|&s| s >= lowest_start)
        .ok_or(ChunkError::Checksum)?;
    if crc32fast::hash(&data[start..end]) != crc {
        return Err(ChunkError::Checksum);
    }
    Ok(start..end)
}

/// Reads one block's size and summary from a chunk's summary (or version 1 footer); the block
/// starts at `pos`, which moves past it, and must end by `body_end`.
fn read_block_entry(
    r: &mut Reader<'_>,
    pos: &mut usize,
    body_end: usize,
) -> Result<(Range<usize>, BlockMeta), ChunkError> {
    let len = r.len_at_most(body_end)?;
    let meta = BlockMeta {
        count: r.len_at_most(u32::MAX as usize)? as u32,
        min_ts: r.varint()?,
        max_ts: r.varint()?,
        raw_bytes: r.uvarint()?,
        metadata_bytes: r.uvarint()?,
    };
    let start = *pos;
    *pos += len;
    if *pos > body_end {
        return Err(ChunkError::Corrupt(
            "a block extends past the chunk body".into(),
        ));
    }
    Ok((start..*pos, meta))
}

/// Where one block of a version 2 chunk lies and what it holds, from the chunk's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockSummary {
    /// The block's bytes within the chunk.
    pub range: Range<usize>,
    pub meta: BlockMeta,
    /// The block's trigram filter; empty when it has none.
    filter: Bytes,
}

impl BlockSummary {
    /// Whether a line of the block may satisfy `clauses` (see
    /// [`FilterView::may_match`](crate::filter::FilterView::may_match)).
    pub fn may_match(&self, clauses: &[Vec<Vec<u8>>]) -> bool {
        block_may_match(&self.filter, clauses)
    }
}

/// A version 2 chunk's plan, read from its tail alone: every block's place, summary and filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSummary {
    blocks: Vec<BlockSummary>,
    tail_len: usize,
    chunk_len: usize,
}

impl ChunkSummary {
    /// Parses `tail`, the last bytes of a version 2 chunk of `chunk_len` bytes (as many as
    /// [`encode_chunk_into`] returned).
    pub fn parse(tail: Bytes, chunk_len: usize) -> Result<ChunkSummary, ChunkError> {
        let body_end = chunk_len
            .checked_sub(tail.len())
            .filter(|&e| e >= HEADER)
            .ok_or_else(|| ChunkError::Corrupt("chunk tail longer than the chunk".into()))?;
        let summary = summary_range(&tail, 0)?;
        if summary.start != 0 {
            return Err(ChunkError::Corrupt(
                "chunk tail length disagrees with its trailer".into(),
            ));
        }
        let mut r = Reader::new(&tail[..summary.end]);
        let n = r.len_at_most(summary.end)?;
        let mut blocks = Vec::with_capacity(n);
        let mut filter_lens = Vec::with_capacity(n);
        let mut pos = HEADER;
        for _ in 0..n {
            let (range, meta) = read_block_entry(&mut r, &mut pos, body_end)?;
            filter_lens.push(r.len_at_most(summary.end)?);
            blocks.push(BlockSummary {
                range,
                meta,
                filter: Bytes::new(),
            });
        }
        if pos != body_end {
            return Err(ChunkError::Corrupt(
                "chunk summary does not cover the blocks".into(),
            ));
        }
        let mut at = r.position();
        for (b, len) in blocks.iter_mut().zip(filter_lens) {
            if at + len > summary.end {
                return Err(ChunkError::Corrupt(
                    "trigram filters overrun the summary".into(),
                ));
            }
            b.filter = tail.slice(at..at + len);
            at += len;
        }
        if at != summary.end {
            return Err(ChunkError::Corrupt(
                "trailing bytes in the chunk summary".into(),
            ));
        }
        Ok(ChunkSummary {
            blocks,
            tail_len: tail.len(),
            chunk_len,
        })
    }

    pub fn blocks(&self) -> &[BlockSummary] {
        &self.blocks
    }

    /// Bytes of the tail this summary was read from.
    pub fn tail_len(&self) -> usize {
        self.tail_len
    }

    /// Whether this is the summary of a chunk of `chunk_len` bytes with a tail of `tail_len`
    /// (a cached summary is used only for a chunk it describes).
    pub fn describes(&self, chunk_len: u64, tail_len: u32) -> bool {
        self.chunk_len as u64 == chunk_len && self.tail_len as u64 == u64::from(tail_len)
    }

    /// Opens the whole chunk from `body`, its bytes before the tail.
    pub fn open_chunk(&self, body: Bytes) -> Result<Chunk, ChunkError> {
        if body.len() < HEADER || &body[..4] != MAGIC || body[4] != CHUNK_VERSION {
            return Err(ChunkError::Corrupt("not a version 2 chunk".into()));
        }
        let blocks = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let data = body
                    .get(b.range.clone())
                    .map(|_| body.slice(b.range.clone()));
                self.open_block(i, data.unwrap_or_default())
            })
            .collect::<Result<_, _>>()?;
        if self.blocks.last().map_or(HEADER, |b| b.range.end) != body.len() {
            return Err(ChunkError::Corrupt(
                "chunk body length disagrees with its summary".into(),
            ));
        }
        Ok(Chunk {
            len: body.len() + self.tail_len,
            blocks,
        })
    }

    /// Opens block `i` from its bytes (its `range` of the chunk), verifying them against the
    /// summary and attaching its filter.
    pub fn open_block(&self, i: usize, data: Bytes) -> Result<EncodedBlock, ChunkError> {
        let s = self
            .blocks
            .get(i)
            .ok_or_else(|| ChunkError::Corrupt(format!("no block {i} in the chunk")))?;
        if data.len() != s.range.len() {
            return Err(ChunkError::Corrupt("short block read".into()));
        }
        let block = EncodedBlock::from_bytes(data)?;
        if block.meta != s.meta {
            return Err(ChunkError::Corrupt(
                "block header disagrees with the chunk summary".into(),
            ));
        }
        block.with_detached_filter((!s.filter.is_empty()).then(|| s.filter.clone()))
    }
}

/// The blocks of a version 2 chunk's `body` (its bytes before the tail), found by reading
/// each block's header in turn: for a reader that decodes every block and does not need the
/// tail (the compactor), whose tail a segment may keep elsewhere. The blocks carry no trigram
/// filter (it lives in the tail); each one's checksum is verified.
pub fn open_body_blocks(body: Bytes) -> Result<Vec<EncodedBlock>, ChunkError> {
    if body.len() < HEADER || &body[..4] != MAGIC || body[4] != CHUNK_VERSION {
        return Err(ChunkError::Corrupt("not a version 2 chunk".into()));
    }
    let mut blocks = Vec::new();
    let mut pos = HEADER;
    while pos < body.len() {
        let end = block_len(&body[pos..])?
            .checked_add(pos)
            .filter(|&end| end <= body.len())
            .ok_or_else(|| ChunkError::Corrupt("a block extends past the chunk body".into()))?;
        blocks.push(EncodedBlock::from_bytes(body.slice(pos..end))?);
        pos = end;
    }
    Ok(blocks)
}

/// An opened chunk: its blocks, each a view of the chunk's bytes.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Size of the encoded chunk.
    len: usize,
    /// Every block, its checksum verified once when the chunk was opened.
    blocks: Vec<EncodedBlock>,
}

impl Chunk {
    /// Parses the header and summary and opens every block.
    pub fn open(data: Bytes) -> Result<Chunk, ChunkError> {
        if data.len() < HEADER + TRAILER || &data[..4] != MAGIC {
            return Err(ChunkError::Corrupt("not a chunk (bad magic)".into()));
        }
        let blocks = match data[4] {
            CHUNK_VERSION => {
                let tail_start = summary_range(&data, HEADER)?.start;
                let summary = ChunkSummary::parse(data.slice(tail_start..), data.len())?;
                return summary.open_chunk(data.slice(..tail_start));
            }
            CHUNK_VERSION_INLINE_FILTERS => open_inline_filter_blocks(&data)?,
            v => return Err(ChunkError::UnsupportedVersion(v)),
        };
        Ok(Chunk {
            len: data.len(),
            blocks,
        })
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

    /// Summary over all blocks ([`BlockMeta::total`]; an empty time range without blocks).
    pub fn meta(&self) -> BlockMeta {
        BlockMeta::total(self.block_metas()).unwrap_or(BlockMeta {
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            ..Default::default()
        })
    }

    pub fn len_bytes(&self) -> usize {
        self.len
    }
}

/// The blocks of a version 1 chunk, whose footer lists each block's size and summary.
fn open_inline_filter_blocks(data: &Bytes) -> Result<Vec<EncodedBlock>, ChunkError> {
    let footer = summary_range(data, HEADER)?;
    let mut r = Reader::new(&data[footer.clone()]);
    let n = r.len_at_most(footer.len())?;
    let mut blocks = Vec::with_capacity(n);
    let mut pos = HEADER;
    for _ in 0..n {
        let (range, meta) = read_block_entry(&mut r, &mut pos, footer.start)?;
        let block = EncodedBlock::from_bytes(data.slice(range))?;
        if block.meta != meta {
            return Err(ChunkError::Corrupt(
                "block header disagrees with the chunk footer".into(),
            ));
        }
        blocks.push(block);
    }
    if pos != footer.start || !r.is_empty() {
        return Err(ChunkError::Corrupt(
            "chunk footer does not cover the blocks".into(),
        ));
    }
    Ok(blocks)
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

    fn decoded(blocks: &[EncodedBlock]) -> Vec<crate::DecodedBlock> {
        blocks.iter().map(|b| b.decode().unwrap()).collect()
    }

    #[test]
    fn round_trip() {
        let bs = blocks();
        let c = Chunk::open(Bytes::from(encode_chunk(&bs).unwrap())).unwrap();
        assert_eq!(c.blocks().len(), 3);
        assert_eq!(decoded(c.blocks()), decoded(&bs));
        for (stored, built) in c.blocks().iter().zip(&bs) {
            assert_eq!(stored.meta, built.meta);
            assert_eq!(stored.filter().unwrap(), built.filter().unwrap());
            assert!(stored.filter().unwrap().is_some());
        }
        let m = c.meta();
        assert_eq!((m.count, m.min_ts, m.max_ts), (300, 0, 2099));
        // Written again, a stored block (its filter held apart) gives the same chunk.
        assert_eq!(
            encode_chunk(c.blocks()).unwrap(),
            encode_chunk(&bs).unwrap()
        );
    }

    #[test]
    fn version_1_chunks_are_still_read() {
        let bs = blocks();
        let c = Chunk::open(Bytes::from(
            encode_chunk_version(&bs, ChunkFormat::InlineFilters).unwrap(),
        ))
        .unwrap();
        assert_eq!(c.blocks(), bs);
    }

    #[test]
    fn the_tail_alone_plans_reads_of_single_blocks() {
        let bs = blocks();
        let mut data = Vec::new();
        let tail_len = encode_chunk_into(&bs, ChunkFormat::FiltersInTail, &mut data).unwrap();
        let data = Bytes::from(data);
        let summary = ChunkSummary::parse(data.slice(data.len() - tail_len..), data.len()).unwrap();
        assert_eq!(summary.tail_len(), tail_len);
        let whole = Chunk::open(data.clone()).unwrap();
        assert_eq!(summary.blocks().len(), 3);
        for (i, s) in summary.blocks().iter().enumerate() {
            assert_eq!(s.meta, bs[i].meta);
            let block = summary.open_block(i, data.slice(s.range.clone())).unwrap();
            assert_eq!(block, whole.block(i));
            let needle = format!("block {i} line 42").into_bytes();
            assert!(s.may_match(&[vec![needle.clone()]]));
            assert!(s.may_match(&[]));
            assert!(!s.may_match(&[vec![b"nowhere in any block".to_vec()]]));
            // Another block's bytes are refused.
            let other = &summary.blocks()[(i + 1) % 3].range;
            assert!(summary.open_block(i, data.slice(other.clone())).is_err());
        }
        // A tail cut short or taken too long is refused.
        assert!(ChunkSummary::parse(data.slice(data.len() - tail_len + 1..), data.len()).is_err());
        assert!(ChunkSummary::parse(data.slice(data.len() - tail_len - 1..), data.len()).is_err());
    }

    #[test]
    fn a_chunk_written_apart_is_its_body_then_its_tail() {
        let bs = blocks();
        let (mut body, mut tail) = (b"before".to_vec(), b"other tails".to_vec());
        let tail_len = encode_chunk_apart(&bs, &mut body, &mut tail).unwrap();
        let (body, tail) = (Bytes::from(body).slice(6..), Bytes::from(tail).slice(11..));
        assert_eq!(tail.len(), tail_len);
        let whole = Bytes::from(encode_chunk(&bs).unwrap());
        assert_eq!([&body[..], &tail[..]].concat(), whole);
        let summary = ChunkSummary::parse(tail, body.len() + tail_len).unwrap();
        assert_eq!(
            summary.open_chunk(body).unwrap().blocks(),
            Chunk::open(whole).unwrap().blocks()
        );
    }

    #[test]
    fn a_body_alone_gives_the_chunks_blocks() {
        let bs = blocks();
        let (mut body, mut tail) = (Vec::new(), Vec::new());
        encode_chunk_apart(&bs, &mut body, &mut tail).unwrap();
        let body = Bytes::from(body);
        let found = open_body_blocks(body.clone()).unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(decoded(&found), decoded(&bs));
        for (f, b) in found.iter().zip(&bs) {
            assert_eq!(f.meta, b.meta);
            assert_eq!(f.filter().unwrap(), None);
        }
        // Cut short, extended, or with any byte changed: an error, never a panic.
        assert!(open_body_blocks(body.slice(..body.len() - 1)).is_err());
        assert!(open_body_blocks(Bytes::from([&body[..], b"x"].concat())).is_err());
        for i in 0..body.len() {
            let mut bad = body.to_vec();
            bad[i] ^= 0x41;
            assert!(open_body_blocks(Bytes::from(bad)).is_err(), "byte {i}");
        }
        // A whole chunk (with its tail) is not a body.
        assert!(open_body_blocks(Bytes::from(encode_chunk(&bs).unwrap())).is_err());
    }

    #[test]
    fn every_single_byte_corruption_is_an_error() {
        for data in [
            encode_chunk(&blocks()[..1]).unwrap(),
            encode_chunk_version(&blocks()[..1], ChunkFormat::InlineFilters).unwrap(),
        ] {
            for i in 0..data.len() {
                let mut bad = data.clone();
                bad[i] ^= 0x01;
                let ok = Chunk::open(Bytes::from(bad)).map(|_| ());
                assert!(ok.is_err(), "flip at byte {i} not detected");
            }
        }
    }
}
