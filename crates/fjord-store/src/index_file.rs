//! Index files: the streams and chunk refs one flush, or one compaction, wrote in one period.
//!
//! ```text
//! "FJIX" | u8 version (4) | file id
//! replaced count | per replaced file: its id
//! segment count | per segment: its id
//! stream count | per stream: label string, chunk count, per chunk:
//!     segment number, offset, len, entries, min_ts, max_ts, raw_bytes, metadata_bytes,
//!     tail_len, tail_offset
//! u32 LE crc32 of everything above
//! ```
//! A flush's file is named after the one segment it wrote and replaces nothing. A compaction's
//! file names the files of its period it supersedes, and its chunks may live in several
//! segments (the ones it wrote, and older ones holding chunks that cross into another period,
//! which it carries over as they are).
//!
//! Older versions are still read: version 3 is version 4 without the tail offsets (every tail
//! follows its chunk's body), version 2 is version 3 without the tail lengths (its chunks are
//! version 1 chunks, read whole), and version 1, written for flushes before, is version 2
//! without the replaced list, segment table and segment numbers. A file is written in the
//! oldest version that holds its refs, so `storage.chunk_format` 1 and 2 write files that
//! binaries from before each later version read.
//!
//! Files are immutable; a querier merges every live file of a period into an in-memory index.

use std::collections::HashMap;
use std::sync::Arc;

use fjord_model::Labels;
use fjord_model::varint::{Reader, put_bytes, put_uvarint, put_varint};

use crate::StoreError;

const MAGIC: &[u8; 4] = b"FJIX";
const VERSION: u8 = 4;
/// The first version with tail lengths.
const VERSION_TAIL_LEN: u8 = 3;
/// The first version with segment tables (and replaced lists).
const VERSION_SEGMENT_TABLE: u8 = 2;

/// Where one chunk lives and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkRef {
    pub segment: Arc<str>,
    pub offset: u64,
    pub len: u64,
    pub entries: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub raw_bytes: u64,
    pub metadata_bytes: u64,
    /// Bytes of the chunk's tail (its summary, see [`fjord_chunk::ChunkSummary`]), which a
    /// search reads first to fetch only the blocks that may match; 0 for a version 1 chunk,
    /// which is read whole.
    pub tail_len: u32,
    /// Where the tail starts in the segment: right after the chunk's body (`offset + len -
    /// tail_len`), or among the tails a segment of version 2 gathers after all its chunks'
    /// bodies (see [`crate::segment`]). Meaningless without a tail.
    pub tail_offset: u64,
}

impl ChunkRef {
    /// Whether the tail lies apart from the body, so that the chunk is read in two pieces.
    pub fn tail_apart(&self) -> bool {
        self.tail_len != 0 && Some(self.tail_offset) != self.tail_after_body()
    }

    /// Where the tail starts when it follows the body.
    fn tail_after_body(&self) -> Option<u64> {
        self.offset
            .checked_add(self.len)?
            .checked_sub(u64::from(self.tail_len))
    }

    /// Whether the chunk may hold entries in `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.max_ts >= start && self.min_ts < end
    }
}

/// The decoded content of one index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// The file's name within its period: a flush's segment id, or a compaction's id.
    pub id: Arc<str>,
    /// Files of the same period this one supersedes; empty for a flush.
    pub replaces: Vec<Arc<str>>,
    pub streams: Vec<(Labels, Vec<ChunkRef>)>,
}

impl IndexFile {
    /// Whether this file is a compaction's output.
    pub fn is_compacted(&self) -> bool {
        !self.replaces.is_empty()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut segments: Vec<&Arc<str>> = Vec::new();
        let mut segment_no: HashMap<&str, u64> = HashMap::new();
        for c in self.streams.iter().flat_map(|(_, chunks)| chunks) {
            segment_no.entry(&c.segment).or_insert_with(|| {
                segments.push(&c.segment);
                segments.len() as u64 - 1
            });
        }
        let chunks = || self.streams.iter().flat_map(|(_, chunks)| chunks);
        let version = if chunks().any(ChunkRef::tail_apart) {
            VERSION
        } else if chunks().any(|c| c.tail_len != 0) {
            VERSION_TAIL_LEN
        } else if self.replaces.is_empty() && segments.iter().all(|s| **s == self.id) {
            1
        } else {
            VERSION_SEGMENT_TABLE
        };
        let mut out = Vec::with_capacity(64 + self.streams.len() * 96);
        out.extend_from_slice(MAGIC);
        out.push(version);
        put_bytes(&mut out, self.id.as_bytes());
        if version >= VERSION_SEGMENT_TABLE {
            put_uvarint(&mut out, self.replaces.len() as u64);
            for r in &self.replaces {
                put_bytes(&mut out, r.as_bytes());
            }
            put_uvarint(&mut out, segments.len() as u64);
            for s in &segments {
                put_bytes(&mut out, s.as_bytes());
            }
        }
        put_uvarint(&mut out, self.streams.len() as u64);
        for (labels, chunks) in &self.streams {
            put_bytes(&mut out, labels.to_string().as_bytes());
            put_uvarint(&mut out, chunks.len() as u64);
            for c in chunks {
                if version >= VERSION_SEGMENT_TABLE {
                    put_uvarint(&mut out, segment_no[&*c.segment]);
                }
                put_uvarint(&mut out, c.offset);
                put_uvarint(&mut out, c.len);
                put_uvarint(&mut out, u64::from(c.entries));
                put_varint(&mut out, c.min_ts);
                put_varint(&mut out, c.max_ts);
                put_uvarint(&mut out, c.raw_bytes);
                put_uvarint(&mut out, c.metadata_bytes);
                if version >= VERSION_TAIL_LEN {
                    put_uvarint(&mut out, u64::from(c.tail_len));
                }
                if version >= VERSION {
                    put_uvarint(&mut out, c.tail_offset);
                }
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(data: &[u8]) -> Result<IndexFile, StoreError> {
        let corrupt = |why: &str| StoreError::Corrupt(format!("index file: {why}"));
        if data.len() < MAGIC.len() + 5 || &data[..4] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let (body, crc) = data.split_at(data.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err(corrupt("checksum mismatch"));
        }
        let version = body[4];
        if !(1..=VERSION).contains(&version) {
            return Err(corrupt(&format!("unsupported version {version}")));
        }
        let mut r = Reader::new(&body[5..]);
        let t = |_| corrupt("truncated");
        let id: Arc<str> = Arc::from(r.str().map_err(t)?);
        let mut replaces = Vec::new();
        let mut segments = vec![id.clone()];
        if version >= VERSION_SEGMENT_TABLE {
            let n = r.len_at_most(body.len()).map_err(t)?;
            for _ in 0..n {
                replaces.push(Arc::from(r.str().map_err(t)?));
            }
            let n = r.len_at_most(body.len()).map_err(t)?;
            segments = Vec::with_capacity(n);
            for _ in 0..n {
                segments.push(Arc::from(r.str().map_err(t)?));
            }
        }
        let n = r.len_at_most(body.len()).map_err(t)?;
        let mut streams = Vec::with_capacity(n);
        for _ in 0..n {
            let labels = Labels::parse(r.str().map_err(t)?)
                .map_err(|e| corrupt(&format!("bad labels: {e}")))?;
            let nc = r.len_at_most(body.len()).map_err(t)?;
            let mut chunks = Vec::with_capacity(nc);
            for _ in 0..nc {
                let segment = if version >= VERSION_SEGMENT_TABLE {
                    let no = r.uvarint().map_err(t)?;
                    segments
                        .get(usize::try_from(no).unwrap_or(usize::MAX))
                        .ok_or_else(|| corrupt("segment number out of range"))?
                        .clone()
                } else {
                    id.clone()
                };
                let mut chunk = ChunkRef {
                    segment,
                    offset: r.uvarint().map_err(t)?,
                    len: r.uvarint().map_err(t)?,
                    entries: r.len_at_most(u32::MAX as usize).map_err(t)? as u32,
                    min_ts: r.varint().map_err(t)?,
                    max_ts: r.varint().map_err(t)?,
                    raw_bytes: r.uvarint().map_err(t)?,
                    metadata_bytes: r.uvarint().map_err(t)?,
                    tail_len: if version >= VERSION_TAIL_LEN {
                        r.len_at_most(u32::MAX as usize).map_err(t)? as u32
                    } else {
                        0
                    },
                    tail_offset: 0,
                };
                // In older versions every tail follows its body. A ref whose numbers overflow
                // is refused when its chunk is read, as it always was, not here.
                chunk.tail_offset = if version >= VERSION {
                    r.uvarint().map_err(t)?
                } else {
                    chunk.tail_after_body().unwrap_or(u64::MAX)
                };
                chunks.push(chunk);
            }
            streams.push((labels, chunks));
        }
        if !r.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(IndexFile {
            id,
            replaces,
            streams,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(segment: &Arc<str>, offset: u64) -> ChunkRef {
        ChunkRef {
            segment: segment.clone(),
            offset,
            len: 100,
            entries: 3,
            min_ts: -1,
            max_ts: 9,
            raw_bytes: 30,
            metadata_bytes: 0,
            tail_len: 0,
            tail_offset: offset + 100,
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let (own, older): (Arc<str>, Arc<str>) = (Arc::from("c-1"), Arc::from("seg-0"));
        let f = IndexFile {
            id: own.clone(),
            replaces: vec![Arc::from("seg-0"), Arc::from("seg-1")],
            streams: vec![
                (
                    Labels::from_pairs([("app", "a\"b"), ("ns", "prod")]),
                    vec![chunk(&own, 5), chunk(&older, 7)],
                ),
                (Labels::from_pairs([("app", "c")]), vec![chunk(&older, 9)]),
            ],
        };
        assert!(f.is_compacted());
        let mut with_tails = f.clone();
        for (stream, tail_len) in [(0, 77), (1, 30)] {
            let c = &mut with_tails.streams[stream].1[0];
            c.tail_len = tail_len;
            c.tail_offset = c.offset + c.len - u64::from(tail_len);
        }
        assert!(!with_tails.streams[0].1[0].tail_apart());
        let mut tails_apart = with_tails.clone();
        tails_apart.streams[1].1[0].tail_offset = 5000;
        assert!(tails_apart.streams[1].1[0].tail_apart());
        for (f, version) in [
            (f, VERSION_SEGMENT_TABLE),
            (with_tails, VERSION_TAIL_LEN),
            (tails_apart, VERSION),
        ] {
            let data = f.encode();
            assert_eq!(data[4], version);
            assert_eq!(IndexFile::decode(&data).unwrap(), f);
            for i in 0..data.len() {
                let mut bad = data.clone();
                bad[i] ^= 0x10;
                assert!(IndexFile::decode(&bad).is_err());
            }
        }
    }

    /// Version 1 (no replaced list, no segment table) reads as a flush's file of its one
    /// segment, and a flush's file is still written that way.
    #[test]
    fn reads_version_one() {
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC);
        v1.push(1);
        put_bytes(&mut v1, b"seg-1");
        put_uvarint(&mut v1, 1);
        put_bytes(&mut v1, b"{app=\"api\"}");
        put_uvarint(&mut v1, 1);
        for v in [5u64, 100, 3] {
            put_uvarint(&mut v1, v);
        }
        put_varint(&mut v1, -1);
        put_varint(&mut v1, 9);
        put_uvarint(&mut v1, 30);
        put_uvarint(&mut v1, 0);
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        let seg: Arc<str> = Arc::from("seg-1");
        let flush = IndexFile {
            id: seg.clone(),
            replaces: vec![],
            streams: vec![(Labels::from_pairs([("app", "api")]), vec![chunk(&seg, 5)])],
        };
        assert_eq!(IndexFile::decode(&v1).unwrap(), flush);
        assert_eq!(flush.encode(), v1, "a flush's file is written as version 1");
    }
}
