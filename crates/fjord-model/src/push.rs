//! Push requests: Loki's `logproto.PushRequest` in protobuf (snappy block compressed) and its
//! JSON forms (v1 `{"streams":[{"stream":{…},"values":[…]}]}` and legacy v0).
//!
//! Decoding never trusts sizes from the wire: the snappy header's declared length is checked
//! against the caller's limit, and against the most the body's bytes can expand to, before any
//! buffer is allocated. Lines are kept as [`Bytes`]
//! slices of the decompressed body, so decoding a protobuf push copies no line text; the
//! protobuf decoder is written out by hand (`push/protobuf.rs`) for the ingest hot path.
//!
//! Every decoder charges the memory it takes to the push's [`Reservation`] before taking it:
//! the decompressed body, then what decoding allocates. The protobuf decoder charges each
//! allocation as it counts it. The JSON decoders cannot see serde's allocations, so they charge
//! an upper bound counted from the body's bytes first ([`json_decoding_bound`]) and give back
//! what the decoded request turns out not to need.

use bytes::Bytes;
use prost::Message;
use serde::Deserialize;

use crate::buffer_pool::BufferPool;
use crate::labels::{Label, write_label_string};
use crate::memory_budget::{OverBudget, Reservation};

mod protobuf;

pub use protobuf::ProtobufError;

/// One log line with its timestamp (Unix ns) and optional structured metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ts: i64,
    pub line: Bytes,
    pub metadata: Vec<Label>,
}

impl Entry {
    pub fn new(ts: i64, line: impl Into<Bytes>) -> Self {
        Entry {
            ts,
            line: line.into(),
            metadata: Vec::new(),
        }
    }

    /// Bytes counted against rate limits and reported as volume: line plus metadata text.
    pub fn accounted_bytes(&self) -> usize {
        self.line.len() + self.metadata_bytes()
    }

    /// Bytes of structured metadata names and values.
    pub fn metadata_bytes(&self) -> usize {
        self.metadata
            .iter()
            .map(|l| l.name.len() + l.value.len())
            .sum()
    }
}

/// The entries of one stream in a push, with the stream's label string as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushStream {
    pub labels: String,
    pub entries: Vec<Entry>,
}

/// A decoded push request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushRequest {
    pub streams: Vec<PushStream>,
}

impl PushRequest {
    pub fn entry_count(&self) -> usize {
        self.streams.iter().map(|s| s.entries.len()).sum()
    }

    /// Encodes as snappy-compressed protobuf, the body Promtail sends.
    pub fn encode_protobuf_snappy(&self) -> Vec<u8> {
        let wire = proto::PushRequest {
            streams: self
                .streams
                .iter()
                .map(|s| proto::StreamAdapter {
                    labels: s.labels.clone(),
                    entries: s
                        .entries
                        .iter()
                        .map(|e| proto::EntryAdapter {
                            timestamp: Some(proto::Timestamp {
                                seconds: e.ts.div_euclid(1_000_000_000),
                                nanos: e.ts.rem_euclid(1_000_000_000) as i32,
                            }),
                            line: e.line.clone(),
                            structured_metadata: e
                                .metadata
                                .iter()
                                .map(|l| proto::LabelPairAdapter {
                                    name: l.name.to_string(),
                                    value: l.value.to_string(),
                                })
                                .collect(),
                            parsed: Vec::new(),
                        })
                        .collect(),
                    hash: 0,
                })
                .collect(),
            format: String::new(),
        };
        let raw = wire.encode_to_vec();
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .unwrap_or_default()
    }
}

/// Why a push body could not be decoded. The texts are what the client sees in the 400.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("request body too large: decompressed size {size} exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("snappy: {0}")]
    Snappy(String),
    #[error("protobuf: {0}")]
    Protobuf(#[from] ProtobufError),
    #[error("{0}")]
    Json(String),
    #[error("{0}")]
    Gzip(String),
    /// The push's memory reservation could not hold what decoding needs.
    #[error("decoding {0}")]
    Memory(OverBudget),
}

impl From<OverBudget> for DecodeError {
    fn from(e: OverBudget) -> Self {
        DecodeError::Memory(e)
    }
}

/// Decodes a snappy block compressed protobuf body, refusing to inflate past `max_decompressed`
/// and charging the decompressed body and the decoded request to `memory`.
pub fn decode_protobuf_snappy(
    body: &[u8],
    max_decompressed: u64,
    memory: &mut Reservation,
) -> Result<PushRequest, DecodeError> {
    let len =
        snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))? as u64;
    if len > max_decompressed {
        return Err(DecodeError::TooLarge {
            size: len,
            limit: max_decompressed,
        });
    }
    // The buffer is zeroed at its declared length, so a few bytes declaring gigabytes would
    // make the server write gigabytes of memory before finding out they were lies.
    if len > body.len() as u64 * SNAPPY_MAX_EXPANSION {
        return Err(DecodeError::Snappy(format!(
            "corrupt input: {} bytes cannot decompress to the {len} bytes their header declares",
            body.len()
        )));
    }
    memory.grow(len)?;
    let mut raw = BODY_BUFFERS.take_filled(len as usize);
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut raw)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    raw.truncate(n);
    decode_protobuf(BODY_BUFFERS.bytes(raw), memory)
}

/// More than any snappy block can expand per byte of input: a 3-byte copy tag writes at most 64
/// bytes, a 5-byte one 64 and a 2-byte one 11, and a literal writes its own bytes.
const SNAPPY_MAX_EXPANSION: u64 = 22;

/// Decompressed push bodies; entries' lines are slices of them until the push is done. The
/// budget holds about three 1 MiB pushes.
static BODY_BUFFERS: BufferPool = BufferPool::new(4 << 20);

/// Decodes an uncompressed protobuf `PushRequest`, charging what it allocates to `memory`.
pub fn decode_protobuf(raw: Bytes, memory: &mut Reservation) -> Result<PushRequest, DecodeError> {
    protobuf::decode_push_request(&raw, memory).map_err(|e| match e {
        ProtobufError::Memory(over) => DecodeError::Memory(over),
        other => DecodeError::Protobuf(other),
    })
}

/// Inflates a gzip (or zlib/deflate) body, refusing to go past `max_decompressed` bytes and
/// charging the output buffer to `memory` as it grows.
pub fn inflate(
    body: &[u8],
    encoding: Inflate,
    max_decompressed: u64,
    memory: &mut Reservation,
) -> Result<Vec<u8>, DecodeError> {
    use std::io::Read;
    let mut reader: Box<dyn Read + '_> = match encoding {
        Inflate::Gzip => Box::new(flate2::read::MultiGzDecoder::new(body)),
        Inflate::Deflate => Box::new(flate2::read::ZlibDecoder::new(body)),
    };
    let mut out = Vec::new();
    let mut piece = vec![0u8; INFLATE_PIECE];
    loop {
        let n = reader
            .read(&mut piece)
            .map_err(|e| DecodeError::Gzip(format!("gzip: {e}")))?;
        if n == 0 {
            return Ok(out);
        }
        let size = (out.len() + n) as u64;
        if size > max_decompressed {
            return Err(DecodeError::TooLarge {
                size,
                limit: max_decompressed,
            });
        }
        memory.reserve_in(&mut out, n, max_decompressed as usize)?;
        out.extend_from_slice(&piece[..n]);
    }
}

/// How much inflated output is read at a time.
const INFLATE_PIECE: usize = 64 << 10;

/// The compressed body encodings a push may carry besides snappy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inflate {
    Gzip,
    Deflate,
}

/// Decodes a v1 JSON push body. Stream label maps are written out as label strings
/// (`{k="v", …}`, keys sorted) so that they are validated exactly like protobuf label strings.
/// Memory is charged to `memory` as the module documentation says.
pub fn decode_json(body: &[u8], memory: &mut Reservation) -> Result<PushRequest, DecodeError> {
    charge_json(body, memory, decode_json_unbounded)
}

/// Decodes a legacy v0 JSON push body (`/api/prom/push`), charging `memory` as
/// [`decode_json`] does.
pub fn decode_json_v0(body: &[u8], memory: &mut Reservation) -> Result<PushRequest, DecodeError> {
    charge_json(body, memory, decode_json_v0_unbounded)
}

/// Runs a JSON `decode` of `body` with its [`json_decoding_bound`] charged to `memory`, then
/// keeps only what the decoded request holds.
fn charge_json(
    body: &[u8],
    memory: &mut Reservation,
    decode: fn(&[u8]) -> Result<PushRequest, DecodeError>,
) -> Result<PushRequest, DecodeError> {
    let before = memory.bytes();
    memory.grow(json_decoding_bound(body))?;
    let req = decode(body)?;
    memory.shrink_to(before.saturating_add(owned_bytes(&req)));
    Ok(req)
}

/// More memory than serde and the conversion into [`PushRequest`] can take to decode `body`.
///
/// Every entry, stream or request is a JSON array or object, and every name-value pair has a
/// colon, so counting those bytes (in strings too, which only overcounts) bounds how many
/// values of each kind decoding makes. An entry or stream costs its intermediate value, twice
/// over because vectors grow by doubling, plus its final one; a pair costs its intermediate
/// pair twice over plus a [`Label`]. Strings are copied out of the body at most twice (serde's
/// scratch buffer for escapes, then the value).
fn json_decoding_bound(body: &[u8]) -> u64 {
    const ITEM: usize = 2 * max(
        max(size_of::<Option<json::Value>>(), size_of::<json::EntryV0>()),
        size_of::<Option<json::Stream>>(),
    ) + max(size_of::<Entry>(), size_of::<PushStream>());
    const PAIR: usize = 2 * size_of::<(String, String)>() + size_of::<Label>();
    const fn max(a: usize, b: usize) -> usize {
        if a > b { a } else { b }
    }
    let items = memchr::memchr2_iter(b'[', b'{', body).count() as u64;
    let pairs = memchr::memchr_iter(b':', body).count() as u64;
    (2 * body.len() as u64)
        .saturating_add(items.saturating_mul(ITEM as u64))
        .saturating_add(pairs.saturating_mul(PAIR as u64))
}

/// Bytes a request decoded from JSON holds: its vectors, and the text it owns.
fn owned_bytes(req: &PushRequest) -> u64 {
    let streams = req.streams.capacity() * size_of::<PushStream>();
    let rest: usize = req
        .streams
        .iter()
        .map(|s| {
            s.labels.capacity()
                + s.entries.capacity() * size_of::<Entry>()
                + s.entries
                    .iter()
                    .map(|e| {
                        e.line.len()
                            + e.metadata.capacity() * size_of::<Label>()
                            + e.metadata_bytes()
                    })
                    .sum::<usize>()
        })
        .sum();
    (streams + rest) as u64
}

fn decode_json_unbounded(body: &[u8]) -> Result<PushRequest, DecodeError> {
    let req: json::PushRequest =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams.into_iter().flatten() {
        let mut labels = String::new();
        // Sorted by name already, each name once.
        let pairs = s.stream.0.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        write_label_string(&mut labels, pairs);
        let entries = s
            .values
            .into_iter()
            .flatten()
            .flatten()
            .map(|v| Entry {
                ts: v.ts,
                line: Bytes::from(v.line),
                metadata: v.metadata,
            })
            .collect();
        streams.push(PushStream { labels, entries });
    }
    Ok(PushRequest { streams })
}

fn decode_json_v0_unbounded(body: &[u8]) -> Result<PushRequest, DecodeError> {
    let req: json::PushRequestV0 =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    let mut streams = Vec::with_capacity(req.streams.len());
    for s in req.streams {
        let mut entries = Vec::with_capacity(s.entries.len());
        for e in s.entries {
            let ts = chrono::DateTime::parse_from_rfc3339(&e.ts)
                .map_err(|err| DecodeError::Json(format!("invalid timestamp {:?}: {err}", e.ts)))?;
            let ns = ts
                .timestamp_nanos_opt()
                .ok_or_else(|| DecodeError::Json(format!("timestamp {:?} out of range", e.ts)))?;
            entries.push(Entry::new(ns, e.line));
        }
        streams.push(PushStream {
            labels: s.labels,
            entries,
        });
    }
    Ok(PushRequest { streams })
}

/// JSON wire shapes.
mod json {
    use std::fmt;

    use serde::de::{self, MapAccess, SeqAccess, Visitor};

    use super::{Deserialize, Label};

    #[derive(Deserialize)]
    pub(super) struct PushRequest {
        #[serde(default)]
        pub(super) streams: Vec<Option<Stream>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Stream {
        #[serde(default)]
        pub(super) stream: Pairs,
        #[serde(default)]
        pub(super) values: Option<Vec<Option<Value>>>,
    }

    /// A JSON object of string values, as pairs sorted by name. A name given twice keeps its
    /// last value, as Go's map decoding in Loki does. A vector rather than a map: a tree node
    /// takes hundreds of bytes for a pair of a few.
    #[derive(Default)]
    pub(super) struct Pairs(pub(super) Vec<(String, String)>);

    impl<'de> Deserialize<'de> for Pairs {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Pairs;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                    let mut pairs = Vec::new();
                    while let Some(pair) = map.next_entry::<String, String>()? {
                        pairs.push(pair);
                    }
                    // A stable sort keeps the values of one name in the order given.
                    pairs.sort_by(|a: &(String, String), b| a.0.cmp(&b.0));
                    pairs.dedup_by(|later, earlier| {
                        let same = later.0 == earlier.0;
                        if same {
                            std::mem::swap(&mut later.1, &mut earlier.1);
                        }
                        same
                    });
                    Ok(Pairs(pairs))
                }
            }
            d.deserialize_map(V)
        }
    }

    /// `["<ns as string>", "<line>", {optional metadata}]`
    pub(super) struct Value {
        pub(super) ts: i64,
        pub(super) line: String,
        pub(super) metadata: Vec<Label>,
    }

    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_seq(ValueVisitor)
        }
    }

    struct ValueVisitor;

    /// The timestamp must be a JSON string holding integer nanoseconds, as Loki requires.
    struct NsString(i64);

    impl<'de> Deserialize<'de> for NsString {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = NsString;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a timestamp as a string of Unix nanoseconds")
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<NsString, E> {
                    s.parse::<i64>().map(NsString).map_err(|_| {
                        E::custom(format!(
                            "invalid timestamp {s:?}: expected Unix nanoseconds"
                        ))
                    })
                }
            }
            d.deserialize_str(V)
        }
    }

    impl<'de> Visitor<'de> for ValueVisitor {
        type Value = Value;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an entry [\"<unix ns>\", \"<line>\", {structured metadata}]")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let ts: NsString = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(0, &self))?;
            let line: String = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(1, &self))?;
            let md: Option<Option<Pairs>> = seq.next_element()?;
            if seq.next_element::<de::IgnoredAny>()?.is_some() {
                return Err(de::Error::invalid_length(4, &self));
            }
            let metadata = md
                .flatten()
                .map(|m| {
                    m.0.into_iter()
                        .map(|(name, value)| Label::new(name, value))
                        .collect()
                })
                .unwrap_or_default();
            Ok(Value {
                ts: ts.0,
                line,
                metadata,
            })
        }
    }

    #[derive(Deserialize)]
    pub(super) struct PushRequestV0 {
        #[serde(default)]
        pub(super) streams: Vec<StreamV0>,
    }

    #[derive(Deserialize)]
    pub(super) struct StreamV0 {
        pub(super) labels: String,
        #[serde(default)]
        pub(super) entries: Vec<EntryV0>,
    }

    #[derive(Deserialize)]
    pub(super) struct EntryV0 {
        pub(super) ts: String,
        pub(super) line: String,
    }
}

/// Protobuf wire messages of `pkg/push/push.proto` (package `logproto`), field numbers exact.
pub mod proto {
    use bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
        #[prost(string, tag = "2")]
        pub format: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        #[prost(string, tag = "1")]
        pub labels: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
        #[prost(uint64, tag = "3")]
        pub hash: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// Declared `string` in Loki's proto; read as bytes so a line with invalid UTF-8 is kept
        /// (the wire format of the two is identical).
        #[prost(bytes = "bytes", tag = "2")]
        pub line: Bytes,
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
        #[prost(message, repeated, tag = "4")]
        pub parsed: Vec<LabelPairAdapter>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// `google.protobuf.Timestamp`.
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Timestamp {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_budget::MemoryBudget;

    fn sample() -> PushRequest {
        PushRequest {
            streams: vec![PushStream {
                labels: r#"{app="a"}"#.into(),
                entries: vec![
                    Entry::new(1_700_000_000_123_456_789, "hello"),
                    Entry {
                        ts: -5,
                        line: Bytes::from_static(b"\xffbad utf8"),
                        metadata: vec![Label::new("trace_id", "t1")],
                    },
                ],
            }],
        }
    }

    #[test]
    fn protobuf_round_trip() {
        let req = sample();
        let body = req.encode_protobuf_snappy();
        assert_eq!(
            decode_protobuf_snappy(&body, 1 << 20, &mut Reservation::unbounded()).unwrap(),
            req
        );
    }

    #[test]
    fn protobuf_size_limit_is_checked_before_inflating() {
        let body = sample().encode_protobuf_snappy();
        assert!(matches!(
            decode_protobuf_snappy(&body, 10, &mut Reservation::unbounded()),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(
            decode_protobuf_snappy(
                b"\xff\xff\xff\xff\x0fgarbage",
                1 << 30,
                &mut Reservation::unbounded()
            )
            .is_err()
        );
    }

    #[test]
    fn snappy_length_beyond_what_the_input_can_hold_is_refused_before_allocating() {
        // Header: a declared length of 4e9 bytes (LEB128), then a one-byte literal.
        let mut body = Vec::new();
        crate::varint::put_uvarint(&mut body, 4_000_000_000);
        body.extend_from_slice(&[0x00, b'A']);
        let err =
            decode_protobuf_snappy(&body, 5000 << 20, &mut Reservation::unbounded()).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Snappy(m) if m.contains("4000000000")),
            "{err}"
        );
    }

    #[test]
    fn snappy_at_its_highest_ratio_still_decodes() {
        let mut req = sample();
        req.streams[0].entries[0].line = Bytes::from(vec![b'a'; 4 << 20]);
        let body = req.encode_protobuf_snappy();
        let ratio = snap::raw::decompress_len(&body).unwrap() as f64 / body.len() as f64;
        assert!(
            ratio > 20.0,
            "the test needs a body near the bound, got {ratio:.1}"
        );
        assert_eq!(
            decode_protobuf_snappy(&body, 1 << 30, &mut Reservation::unbounded()).unwrap(),
            req
        );
    }

    #[test]
    fn json_v1() {
        let body = br#"{"streams":[{"stream":{"b":"2","a":"x\"y"},"values":[["17","l1"],["18","l2",{"k":"v"}],null]},null,{"stream":{"c":"3"},"values":null}]}"#;
        let req = decode_json(body, &mut Reservation::unbounded()).unwrap();
        assert_eq!(req.streams.len(), 2);
        assert_eq!(req.streams[0].labels, r#"{a="x\"y", b="2"}"#);
        assert_eq!(
            req.streams[0].entries[1].metadata,
            vec![Label::new("k", "v")]
        );
        assert_eq!(req.streams[0].entries[1].ts, 18);
        assert!(req.streams[1].entries.is_empty());
    }

    #[test]
    fn json_rejects_numeric_timestamps_and_bad_shapes() {
        assert!(
            decode_json(
                br#"{"streams":[{"stream":{"a":"b"},"values":[[17,"l"]]}]}"#,
                &mut Reservation::unbounded()
            )
            .is_err()
        );
        assert!(
            decode_json(
                br#"{"streams":[{"stream":{"a":"b"},"values":[["x","l"]]}]}"#,
                &mut Reservation::unbounded()
            )
            .is_err()
        );
        assert!(
            decode_json(
                br#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
                &mut Reservation::unbounded()
            )
            .is_err()
        );
        assert!(
            decode_json(
                br#"{"streams":[{"stream":{"a":1}}]}"#,
                &mut Reservation::unbounded()
            )
            .is_err()
        );
        assert!(decode_json(b"not json", &mut Reservation::unbounded()).is_err());
    }

    #[test]
    fn json_v0() {
        let body = br#"{"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"2024-01-15T10:00:00.5Z","line":"x"}]}]}"#;
        let req = decode_json_v0(body, &mut Reservation::unbounded()).unwrap();
        assert_eq!(req.streams[0].entries[0].ts, 1_705_312_800_500_000_000);
    }

    #[test]
    fn gzip_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(
            inflate(&gz, Inflate::Gzip, 10_000, &mut Reservation::unbounded())
                .unwrap()
                .len(),
            10_000
        );
        assert!(matches!(
            inflate(&gz, Inflate::Gzip, 9_999, &mut Reservation::unbounded()),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    /// A push of `n` entries with empty lines at time 0: 4 bytes each on the wire, the entry's
    /// key and length and those of its empty timestamp.
    fn empty_entries(n: usize) -> PushRequest {
        PushRequest {
            streams: vec![PushStream {
                labels: r#"{a="b"}"#.into(),
                entries: vec![Entry::new(0, ""); n],
            }],
        }
    }

    #[test]
    fn protobuf_decoding_charges_what_it_allocates_before_allocating_it() {
        let body = empty_entries(100_000).encode_protobuf_snappy();
        let decompressed = snap::raw::decompress_len(&body).unwrap() as u64;
        assert_eq!(decompressed, 400_013);
        assert!(body.len() < 40_000, "{}", body.len());

        let budget = MemoryBudget::new(u64::MAX);
        let mut memory = budget.reservation();
        let req = decode_protobuf_snappy(&body, 1 << 30, &mut memory).unwrap();
        let expected = decompressed
            + size_of::<PushStream>() as u64
            + req.streams[0].labels.len() as u64
            + 100_000 * size_of::<Entry>() as u64;
        assert_eq!(memory.bytes(), expected);

        // 6.4 MB of entries from a body of tens of KB: refused by a 1 MiB budget before
        // being allocated.
        let budget = MemoryBudget::new(1 << 20);
        let err = decode_protobuf_snappy(&body, 1 << 30, &mut budget.reservation()).unwrap_err();
        assert!(
            matches!(err, DecodeError::Memory(OverBudget::Never { limit, .. }) if limit == 1 << 20),
            "{err}"
        );
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn protobuf_metadata_is_charged() {
        let mut req = sample();
        req.streams[0].entries[0].metadata = (0..50)
            .map(|i| Label::new(format!("name_{i}"), "a value longer than twenty-four bytes"))
            .collect();
        let body = req.encode_protobuf_snappy();
        let mut memory = Reservation::unbounded();
        assert_eq!(
            decode_protobuf_snappy(&body, 1 << 30, &mut memory).unwrap(),
            req
        );
        let metadata = 51 * size_of::<Label>() as u64;
        let entries = 2 * size_of::<Entry>() as u64;
        assert!(
            memory.bytes() > metadata + entries + req.streams[0].entries[0].metadata_bytes() as u64
        );
    }

    #[test]
    fn json_decoding_holds_its_bound_then_what_it_decoded() {
        let values: Vec<String> = (0..10_000)
            .map(|i| format!(r#"["{i}","line {i}",{{"k":"v{i}","k2":"w"}}]"#))
            .collect();
        let body = format!(
            r#"{{"streams":[{{"stream":{{"app":"x","pod":"y"}},"values":[{}]}}]}}"#,
            values.join(",")
        );
        let bound = json_decoding_bound(body.as_bytes());
        let budget = MemoryBudget::new(u64::MAX);
        let mut memory = budget.reservation();
        let req = decode_json(body.as_bytes(), &mut memory).unwrap();
        assert_eq!(req.entry_count(), 10_000);
        assert_eq!(memory.bytes(), owned_bytes(&req));
        assert!(owned_bytes(&req) < bound);

        // The bound is charged first: a budget that holds the decoded request but not the
        // bound refuses the push.
        let budget = MemoryBudget::new(bound - 1);
        assert!(matches!(
            decode_json(body.as_bytes(), &mut budget.reservation()),
            Err(DecodeError::Memory(OverBudget::Never { .. }))
        ));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn json_objects_keep_the_last_value_of_a_name_given_twice() {
        let body = br#"{"streams":[{"stream":{"b":"1","a":"2","b":"3"},"values":[["1","l",{"z":"1","y":"2","z":"3"}]]}]}"#;
        let req = decode_json(body, &mut Reservation::unbounded()).unwrap();
        assert_eq!(req.streams[0].labels, r#"{a="2", b="3"}"#);
        assert_eq!(
            req.streams[0].entries[0].metadata,
            vec![Label::new("y", "2"), Label::new("z", "3")]
        );
    }

    #[test]
    fn inflating_charges_the_output_as_it_grows() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        let mut memory = Reservation::unbounded();
        let out = inflate(&gz, Inflate::Gzip, 1 << 30, &mut memory).unwrap();
        assert_eq!(memory.bytes(), out.capacity() as u64);
        let budget = MemoryBudget::new(256 << 10);
        assert!(matches!(
            inflate(&gz, Inflate::Gzip, 1 << 30, &mut budget.reservation()),
            Err(DecodeError::Memory(OverBudget::Never { .. }))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = decode_protobuf_snappy(&body, 1 << 20, &mut Reservation::unbounded());
            let _ = decode_json(&body, &mut Reservation::unbounded());
            let _ = decode_json_v0(&body, &mut Reservation::unbounded());
        }
    }
}
