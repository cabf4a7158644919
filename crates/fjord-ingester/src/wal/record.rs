//! WAL records and their framing.
//!
//! Every record is self-contained (it names its tenant and stream labels), so segments can be
//! rotated and deleted without any cross-segment state:
//! ```text
//! frame   := u32 LE payload length | u32 LE crc32(payload) | payload
//! payload := u8 kind | …
//!   kind 1, entries: tenant | stream count | per stream: label string | entry count |
//!                    per entry: ts (zigzag) | line | metadata count | (name, value)…
//!   kind 2, blocks (checkpoints only): tenant | label string | u8 state (0 open chunk,
//!                    1 closed chunk awaiting flush) | block count | block bytes…
//! ```
//! Strings and byte strings are varint length-prefixed.
//!
//! **Invariant:** decoding never panics; a frame that is short or fails its checksum ends the
//! readable part of a file (a torn write at the tail of the last segment is expected after a
//! crash, and it only ever holds unacknowledged data).

use bytes::Bytes;
use fjord_model::varint::{Reader, Truncated, put_bytes, put_uvarint, put_varint};
use fjord_model::{Entry, Label};

const KIND_ENTRIES: u8 = 1;
const KIND_BLOCKS: u8 = 2;
const FRAME_HEADER: usize = 8;
/// No single record may exceed this; a larger length is treated as corruption.
const MAX_RECORD: usize = 1 << 30;

/// Where a checkpointed block belongs in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Part of the stream's open chunk.
    Open,
    /// Part of a closed chunk waiting to be flushed.
    Closed,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Entries {
        tenant: String,
        streams: Vec<(String, Vec<Entry>)>,
    },
    Blocks {
        tenant: String,
        labels: String,
        state: BlockState,
        blocks: Vec<Bytes>,
    },
}

/// Appends a framed entries record. `streams` pairs a label string with its entries.
pub fn encode_entries<'a>(
    out: &mut Vec<u8>,
    tenant: &str,
    streams: impl ExactSizeIterator<Item = (&'a str, &'a [Entry])>,
) {
    let start = begin_frame(out);
    out.push(KIND_ENTRIES);
    put_bytes(out, tenant.as_bytes());
    put_uvarint(out, streams.len() as u64);
    for (labels, entries) in streams {
        put_bytes(out, labels.as_bytes());
        put_uvarint(out, entries.len() as u64);
        for e in entries {
            put_varint(out, e.ts);
            put_bytes(out, &e.line);
            put_uvarint(out, e.metadata.len() as u64);
            for l in &e.metadata {
                put_bytes(out, l.name.as_bytes());
                put_bytes(out, l.value.as_bytes());
            }
        }
    }
    end_frame(out, start);
}

/// Appends a framed blocks record.
pub fn encode_blocks(
    out: &mut Vec<u8>,
    tenant: &str,
    labels: &str,
    state: BlockState,
    blocks: &[Bytes],
) {
    let start = begin_frame(out);
    out.push(KIND_BLOCKS);
    put_bytes(out, tenant.as_bytes());
    put_bytes(out, labels.as_bytes());
    out.push(match state {
        BlockState::Open => 0,
        BlockState::Closed => 1,
    });
    put_uvarint(out, blocks.len() as u64);
    for b in blocks {
        put_bytes(out, b);
    }
    end_frame(out, start);
}

fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    start
}

fn end_frame(out: &mut [u8], start: usize) {
    let payload = &out[start + FRAME_HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads frames from a file's bytes.
pub struct FrameReader {
    data: Bytes,
    pos: usize,
}

/// A short or corrupt frame starts at this offset; nothing after it can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn(pub usize);

impl FrameReader {
    pub fn new(data: Bytes) -> Self {
        FrameReader { data, pos: 0 }
    }

    /// The next record, `Ok(None)` at the end, or `Err` when the rest is unreadable.
    pub fn next_record(&mut self) -> Result<Option<Record>, Torn> {
        let rest = self.data.len() - self.pos;
        if rest == 0 {
            return Ok(None);
        }
        let torn = Torn(self.pos);
        if rest < FRAME_HEADER {
            return Err(torn);
        }
        let h = &self.data[self.pos..self.pos + FRAME_HEADER];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if len > MAX_RECORD || len > rest - FRAME_HEADER {
            return Err(torn);
        }
        let start = self.pos + FRAME_HEADER;
        let payload = self.data.slice(start..start + len);
        if crc32fast::hash(&payload) != crc {
            return Err(torn);
        }
        let rec = decode_payload(&payload).map_err(|_| torn)?;
        self.pos = start + len;
        Ok(Some(rec))
    }
}

fn decode_payload(p: &Bytes) -> Result<Record, Truncated> {
    let mut r = Reader::new(p);
    match r.u8()? {
        KIND_ENTRIES => {
            let tenant = r.str()?.to_string();
            let n = r.len_at_most(p.len())?;
            let mut streams = Vec::with_capacity(n);
            for _ in 0..n {
                let labels = r.str()?.to_string();
                let ne = r.len_at_most(p.len())?;
                let mut entries = Vec::with_capacity(ne);
                for _ in 0..ne {
                    let ts = r.varint()?;
                    let line = r.bytes()?;
                    let line = p.slice_ref(line);
                    let nm = r.len_at_most(p.len())?;
                    let mut metadata = Vec::with_capacity(nm);
                    for _ in 0..nm {
                        let name = r.str()?;
                        let value = r.str()?;
                        metadata.push(Label::new(name, value));
                    }
                    entries.push(Entry { ts, line, metadata });
                }
                streams.push((labels, entries));
            }
            Ok(Record::Entries { tenant, streams })
        }
        KIND_BLOCKS => {
            let tenant = r.str()?.to_string();
            let labels = r.str()?.to_string();
            let state = match r.u8()? {
                0 => BlockState::Open,
                1 => BlockState::Closed,
                _ => return Err(Truncated),
            };
            let n = r.len_at_most(p.len())?;
            let mut blocks = Vec::with_capacity(n);
            for _ in 0..n {
                let b = r.bytes()?;
                blocks.push(p.slice_ref(b));
            }
            Ok(Record::Blocks {
                tenant,
                labels,
                state,
                blocks,
            })
        }
        _ => Err(Truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(buf: &mut Vec<u8>) -> Vec<Record> {
        let e1 = vec![
            Entry::new(5, "a"),
            Entry {
                ts: -3,
                line: Bytes::from_static(b"b"),
                metadata: vec![Label::new("k", "v")],
            },
        ];
        encode_entries(buf, "t1", [("{a=\"1\"}", &e1[..])].into_iter());
        encode_blocks(
            buf,
            "t1",
            "{a=\"1\"}",
            BlockState::Closed,
            &[Bytes::from_static(b"blockbytes")],
        );
        vec![
            Record::Entries {
                tenant: "t1".into(),
                streams: vec![("{a=\"1\"}".into(), e1)],
            },
            Record::Blocks {
                tenant: "t1".into(),
                labels: "{a=\"1\"}".into(),
                state: BlockState::Closed,
                blocks: vec![Bytes::from_static(b"blockbytes")],
            },
        ]
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        let want = sample(&mut buf);
        let mut r = FrameReader::new(Bytes::from(buf));
        assert_eq!(r.next_record().unwrap(), Some(want[0].clone()));
        assert_eq!(r.next_record().unwrap(), Some(want[1].clone()));
        assert_eq!(r.next_record().unwrap(), None);
    }

    #[test]
    fn torn_tail_stops_reading_at_the_last_good_frame() {
        let mut buf = Vec::new();
        let want = sample(&mut buf);
        let first_len = {
            let mut b = Vec::new();
            encode_entries(
                &mut b,
                "t1",
                [(
                    "{a=\"1\"}",
                    &[
                        Entry::new(5, "a"),
                        Entry {
                            ts: -3,
                            line: Bytes::from_static(b"b"),
                            metadata: vec![Label::new("k", "v")],
                        },
                    ][..],
                )]
                .into_iter(),
            );
            b.len()
        };
        for cut in first_len..buf.len() {
            let mut r = FrameReader::new(Bytes::copy_from_slice(&buf[..cut]));
            assert_eq!(r.next_record().unwrap(), Some(want[0].clone()));
            if cut > first_len {
                assert_eq!(r.next_record(), Err(Torn(first_len)));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut r = FrameReader::new(Bytes::from(data));
            while let Ok(Some(_)) = r.next_record() {}
        }
    }
}
