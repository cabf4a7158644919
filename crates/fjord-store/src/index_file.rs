//! Index files: the streams and chunk refs one flush wrote in one period.
//!
//! ```text
//! "FJIX" | u8 version (1) | segment id
//! stream count | per stream: label string, chunk count, per chunk:
//!     offset, len, entries, min_ts, max_ts, raw_bytes, metadata_bytes
//! u32 LE crc32 of everything above
//! ```
//! Files are immutable; a querier merges every file of a period into an in-memory index.

use std::sync::Arc;

use fjord_model::Labels;
use fjord_model::varint::{Reader, put_bytes, put_uvarint, put_varint};

use crate::StoreError;

const MAGIC: &[u8; 4] = b"FJIX";
const VERSION: u8 = 1;

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
}

impl ChunkRef {
    /// Whether the chunk may hold entries in `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.max_ts >= start && self.min_ts < end
    }
}

/// The decoded content of one index file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    pub segment: Arc<str>,
    pub streams: Vec<(Labels, Vec<ChunkRef>)>,
}

impl IndexFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.streams.len() * 96);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_bytes(&mut out, self.segment.as_bytes());
        put_uvarint(&mut out, self.streams.len() as u64);
        for (labels, chunks) in &self.streams {
            put_bytes(&mut out, labels.to_string().as_bytes());
            put_uvarint(&mut out, chunks.len() as u64);
            for c in chunks {
                put_uvarint(&mut out, c.offset);
                put_uvarint(&mut out, c.len);
                put_uvarint(&mut out, u64::from(c.entries));
                put_varint(&mut out, c.min_ts);
                put_varint(&mut out, c.max_ts);
                put_uvarint(&mut out, c.raw_bytes);
                put_uvarint(&mut out, c.metadata_bytes);
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
        if body[4] != VERSION {
            return Err(corrupt(&format!("unsupported version {}", body[4])));
        }
        let mut r = Reader::new(&body[5..]);
        let t = |_| corrupt("truncated");
        let segment: Arc<str> = Arc::from(r.str().map_err(t)?);
        let n = r.len_at_most(body.len()).map_err(t)?;
        let mut streams = Vec::with_capacity(n);
        for _ in 0..n {
            let labels = Labels::parse(r.str().map_err(t)?)
                .map_err(|e| corrupt(&format!("bad labels: {e}")))?;
            let nc = r.len_at_most(body.len()).map_err(t)?;
            let mut chunks = Vec::with_capacity(nc);
            for _ in 0..nc {
                chunks.push(ChunkRef {
                    segment: segment.clone(),
                    offset: r.uvarint().map_err(t)?,
                    len: r.uvarint().map_err(t)?,
                    entries: r.len_at_most(u32::MAX as usize).map_err(t)? as u32,
                    min_ts: r.varint().map_err(t)?,
                    max_ts: r.varint().map_err(t)?,
                    raw_bytes: r.uvarint().map_err(t)?,
                    metadata_bytes: r.uvarint().map_err(t)?,
                });
            }
            streams.push((labels, chunks));
        }
        if !r.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(IndexFile { segment, streams })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let seg: Arc<str> = Arc::from("seg-1");
        let f = IndexFile {
            segment: seg.clone(),
            streams: vec![(
                Labels::from_pairs([("app", "a\"b"), ("ns", "prod")]),
                vec![ChunkRef {
                    segment: seg,
                    offset: 5,
                    len: 100,
                    entries: 3,
                    min_ts: -1,
                    max_ts: 9,
                    raw_bytes: 30,
                    metadata_bytes: 0,
                }],
            )],
        };
        let data = f.encode();
        assert_eq!(IndexFile::decode(&data).unwrap(), f);
        for i in 0..data.len() {
            let mut bad = data.clone();
            bad[i] ^= 0x10;
            assert!(IndexFile::decode(&bad).is_err());
        }
    }
}
