//! Decoding of Loki's protobuf `PushRequest` straight into [`PushRequest`], written out by hand
//! for the ingest hot path.
//!
//! A generated decoder builds an intermediate message per entry in vectors that grow by
//! doubling (each step a fresh allocation whose pages the kernel must fault in), and those are
//! then converted into [`Entry`] values. This one counts a message's repeated fields first, so
//! every vector is allocated once at its exact size, and builds the final types directly: a line
//! is a [`Bytes`] slice of the body, a metadata name or value an inline
//! [`CompactString`](compact_str::CompactString) when short.
//!
//! It accepts what the generated `proto::PushRequest` decoder accepts for the fields Fjord
//! reads (a property test compares the two): unknown fields are skipped by wire type, `string`
//! fields must be UTF-8, the line is kept as bytes, a field repeated on the wire overrides the
//! earlier one (an embedded timestamp merges field by field), and a field with the wrong wire
//! type is an error. Groups (a deprecated wire type no Loki client sends) in unknown fields are
//! skipped too, nested at most 64 deep (prost allows 100 levels of messages and groups together,
//! so everything accepted here it accepts too).
//!
//! Every allocation is charged to the push's memory [`Reservation`] before it is made: a vector
//! at its counted size, a stream's label string, an entry's metadata (bounded by the entry's own
//! bytes). An entry can take 64 bytes decoded for 2 on the wire, so without the charges a small
//! body of empty entries would take memory no limit on body sizes foresees.

use bytes::Bytes;

use super::{Entry, PushRequest, PushStream};
use crate::labels::Label;
use crate::memory_budget::{OverBudget, Reservation};
use crate::varint::Reader;

/// Why a protobuf body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("truncated message or a length past its end")]
    Truncated,
    #[error("invalid field key: field number 0 or a varint key out of range")]
    InvalidKey,
    #[error("field {field} of {message} has wire type {got}, expected {expected}")]
    WireType {
        message: &'static str,
        field: u32,
        got: u8,
        expected: u8,
    },
    #[error("unsupported wire type {0}")]
    UnsupportedWireType(u8),
    #[error("a group is not closed by its own end-group key, or nests more than 64 deep")]
    MalformedGroup,
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("decoding {0}")]
    Memory(#[from] OverBudget),
}

impl From<crate::varint::Truncated> for ProtobufError {
    fn from(_: crate::varint::Truncated) -> Self {
        ProtobufError::Truncated
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// How deep groups may nest inside a skipped field: under prost's limit of 100 levels of
/// messages and groups together, whatever message the field is in.
const MAX_GROUP_DEPTH: u32 = 64;

/// Reads a message's fields one by one.
struct Fields<'a> {
    message: &'static str,
    reader: Reader<'a>,
}

impl<'a> Fields<'a> {
    fn new(message: &'static str, body: &'a [u8]) -> Self {
        Fields {
            message,
            reader: Reader::new(body),
        }
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    fn next_key(&mut self) -> Result<Option<(u32, u8)>, ProtobufError> {
        if self.reader.is_empty() {
            return Ok(None);
        }
        let key = self.reader.uvarint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(ProtobufError::InvalidKey);
        }
        Ok(Some((number as u32, (key & 7) as u8)))
    }

    /// Checks the wire type of field `number`.
    fn expect(&self, number: u32, got: u8, expected: u8) -> Result<(), ProtobufError> {
        if got == expected {
            Ok(())
        } else {
            Err(ProtobufError::WireType {
                message: self.message,
                field: number,
                got,
                expected,
            })
        }
    }

    /// A length-delimited value of field `number`.
    fn len_delimited(&mut self, number: u32, wire_type: u8) -> Result<&'a [u8], ProtobufError> {
        self.expect(number, wire_type, LEN)?;
        Ok(self.reader.bytes()?)
    }

    /// A UTF-8 string value of field `number`.
    fn string(
        &mut self,
        number: u32,
        wire_type: u8,
        what: &'static str,
    ) -> Result<&'a str, ProtobufError> {
        std::str::from_utf8(self.len_delimited(number, wire_type)?)
            .map_err(|_| ProtobufError::Utf8(what))
    }

    /// A varint value of field `number`.
    fn varint(&mut self, number: u32, wire_type: u8) -> Result<u64, ProtobufError> {
        self.expect(number, wire_type, VARINT)?;
        Ok(self.reader.uvarint()?)
    }

    /// Skips a field Fjord does not read: field `number` of type `wire_type`, whose key was
    /// just read.
    fn skip(&mut self, number: u32, wire_type: u8) -> Result<(), ProtobufError> {
        self.skip_nested(number, wire_type, 0)
    }

    /// [`Fields::skip`] inside `depth` enclosing groups.
    fn skip_nested(&mut self, number: u32, wire_type: u8, depth: u32) -> Result<(), ProtobufError> {
        match wire_type {
            VARINT => {
                self.reader.uvarint()?;
            }
            FIXED64 => {
                self.reader.take(8)?;
            }
            LEN => {
                self.reader.bytes()?;
            }
            FIXED32 => {
                self.reader.take(4)?;
            }
            START_GROUP if depth < MAX_GROUP_DEPTH => loop {
                match self.next_key()? {
                    Some((field, END_GROUP)) if field == number => break,
                    Some((_, END_GROUP)) | None => return Err(ProtobufError::MalformedGroup),
                    Some((field, inner)) => self.skip_nested(field, inner, depth + 1)?,
                }
            },
            START_GROUP => return Err(ProtobufError::MalformedGroup),
            other => return Err(ProtobufError::UnsupportedWireType(other)),
        }
        Ok(())
    }

    /// How many times field `number` occurs in the rest of the message (checking every key).
    fn count(&self, number: u32) -> Result<usize, ProtobufError> {
        let mut scan = Fields {
            message: self.message,
            reader: self.reader.clone(),
        };
        let mut n = 0;
        while let Some((field, wire_type)) = scan.next_key()? {
            n += usize::from(field == number);
            scan.skip(field, wire_type)?;
        }
        Ok(n)
    }
}

/// Bytes of `count` values of `T`, to charge before allocating them.
fn size_of_n<T>(count: usize) -> u64 {
    (count as u64).saturating_mul(size_of::<T>() as u64)
}

/// Decodes an uncompressed `logproto.PushRequest`; lines are slices of `body`. What it
/// allocates is charged to `memory` first.
pub(super) fn decode_push_request(
    body: &Bytes,
    memory: &mut Reservation,
) -> Result<PushRequest, ProtobufError> {
    let mut fields = Fields::new("PushRequest", body);
    let count = fields.count(1)?;
    memory.grow(size_of_n::<PushStream>(count))?;
    let mut streams = Vec::with_capacity(count);
    while let Some((number, wire_type)) = fields.next_key()? {
        match number {
            1 => streams.push(decode_stream(
                body,
                fields.len_delimited(number, wire_type)?,
                memory,
            )?),
            2 => {
                fields.string(number, wire_type, "the push format")?;
            }
            _ => fields.skip(number, wire_type)?,
        }
    }
    Ok(PushRequest { streams })
}

fn decode_stream(
    body: &Bytes,
    message: &[u8],
    memory: &mut Reservation,
) -> Result<PushStream, ProtobufError> {
    let mut fields = Fields::new("StreamAdapter", message);
    let count = fields.count(2)?;
    memory.grow(size_of_n::<Entry>(count))?;
    let mut stream = PushStream {
        labels: String::new(),
        entries: Vec::with_capacity(count),
    };
    while let Some((number, wire_type)) = fields.next_key()? {
        match number {
            1 => {
                let labels = fields.string(number, wire_type, "stream labels")?;
                memory.grow(labels.len() as u64)?;
                stream.labels = labels.to_owned();
            }
            2 => {
                let entry = fields.len_delimited(number, wire_type)?;
                stream.entries.push(decode_entry(body, entry, memory)?);
            }
            3 => {
                fields.varint(number, wire_type)?;
            }
            _ => fields.skip(number, wire_type)?,
        }
    }
    Ok(stream)
}

fn decode_entry(
    body: &Bytes,
    message: &[u8],
    memory: &mut Reservation,
) -> Result<Entry, ProtobufError> {
    let mut fields = Fields::new("EntryAdapter", message);
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut line: &[u8] = &[];
    let mut metadata = Vec::new();
    while let Some((number, wire_type)) = fields.next_key()? {
        match number {
            1 => decode_timestamp(
                fields.len_delimited(number, wire_type)?,
                &mut seconds,
                &mut nanos,
            )?,
            2 => line = fields.len_delimited(number, wire_type)?,
            3 => {
                let pair = decode_label_pair(fields.len_delimited(number, wire_type)?)?;
                if metadata.capacity() == 0 {
                    // This pair and the ones after it; their names and values that do not
                    // fit inline take at most the entry's own bytes.
                    let count = 1 + fields.count(3)?;
                    memory.grow(size_of_n::<Label>(count).saturating_add(message.len() as u64))?;
                    metadata.reserve_exact(count);
                }
                metadata.push(pair);
            }
            4 => {
                // `parsed` labels are a query-time field; a push's are ignored.
                decode_label_pair(fields.len_delimited(number, wire_type)?)?;
            }
            _ => fields.skip(number, wire_type)?,
        }
    }
    Ok(Entry {
        ts: seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos)),
        line: body.slice_ref(line),
        metadata,
    })
}

/// Merges a `google.protobuf.Timestamp` into `seconds` and `nanos`.
fn decode_timestamp(
    message: &[u8],
    seconds: &mut i64,
    nanos: &mut i32,
) -> Result<(), ProtobufError> {
    let mut fields = Fields::new("Timestamp", message);
    while let Some((number, wire_type)) = fields.next_key()? {
        match number {
            // int64 and int32 are two's complement varints; int32 keeps the low 32 bits.
            1 => *seconds = fields.varint(number, wire_type)? as i64,
            2 => *nanos = fields.varint(number, wire_type)? as i32,
            _ => fields.skip(number, wire_type)?,
        }
    }
    Ok(())
}

fn decode_label_pair(message: &[u8]) -> Result<Label, ProtobufError> {
    let mut fields = Fields::new("LabelPairAdapter", message);
    let (mut name, mut value) = ("", "");
    while let Some((number, wire_type)) = fields.next_key()? {
        match number {
            1 => name = fields.string(number, wire_type, "a metadata name")?,
            2 => value = fields.string(number, wire_type, "a metadata value")?,
            _ => fields.skip(number, wire_type)?,
        }
    }
    Ok(Label::new(name, value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::Message;

    use super::super::proto;
    use super::*;

    fn decode(body: &Bytes) -> Result<PushRequest, ProtobufError> {
        decode_push_request(body, &mut Reservation::unbounded())
    }

    /// What the generated decoder makes of `raw`, in Fjord's types.
    fn reference(raw: &Bytes) -> Result<PushRequest, prost::DecodeError> {
        let wire = proto::PushRequest::decode(raw.clone())?;
        Ok(PushRequest {
            streams: wire
                .streams
                .into_iter()
                .map(|s| PushStream {
                    labels: s.labels,
                    entries: s
                        .entries
                        .into_iter()
                        .map(|e| {
                            let t = e.timestamp.unwrap_or_default();
                            Entry {
                                ts: t
                                    .seconds
                                    .saturating_mul(1_000_000_000)
                                    .saturating_add(i64::from(t.nanos)),
                                line: e.line,
                                metadata: e
                                    .structured_metadata
                                    .into_iter()
                                    .map(|l| Label::new(l.name, l.value))
                                    .collect(),
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    fn pair() -> impl Strategy<Value = proto::LabelPairAdapter> {
        (".{0,30}", ".{0,30}").prop_map(|(name, value)| proto::LabelPairAdapter { name, value })
    }

    fn entry() -> impl Strategy<Value = proto::EntryAdapter> {
        (
            proptest::option::of((any::<i64>(), any::<i32>())),
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(pair(), 0..3),
            proptest::collection::vec(pair(), 0..2),
        )
            .prop_map(
                |(ts, line, structured_metadata, parsed)| proto::EntryAdapter {
                    timestamp: ts.map(|(seconds, nanos)| proto::Timestamp { seconds, nanos }),
                    line: line.into(),
                    structured_metadata,
                    parsed,
                },
            )
    }

    fn request() -> impl Strategy<Value = proto::PushRequest> {
        let stream = (
            "\\PC{0,20}",
            proptest::collection::vec(entry(), 0..6),
            any::<u64>(),
        )
            .prop_map(|(labels, entries, hash)| proto::StreamAdapter {
                labels,
                entries,
                hash,
            });
        (proptest::collection::vec(stream, 0..4), "[a-z]{0,5}")
            .prop_map(|(streams, format)| proto::PushRequest { streams, format })
    }

    proptest! {
        #[test]
        fn decodes_what_the_generated_decoder_decodes(req in request()) {
            let raw = Bytes::from(req.encode_to_vec());
            prop_assert_eq!(decode(&raw).unwrap(), reference(&raw).unwrap());
        }

        /// Corrupted input never panics, and whatever is accepted is what the generated
        /// decoder makes of it.
        #[test]
        fn accepts_no_more_than_the_generated_decoder(
            req in request(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut raw = req.encode_to_vec();
            if raw.is_empty() {
                return Ok(());
            }
            for (at, byte) in edits {
                let i = at.index(raw.len());
                raw[i] = byte;
            }
            raw.truncate(cut.index(raw.len() + 1));
            let raw = Bytes::from(raw);
            if let Ok(ours) = decode(&raw) {
                prop_assert_eq!(Ok(ours), reference(&raw).map_err(|e| e.to_string()));
            }
        }
    }

    /// Appends a field key.
    fn key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
        crate::varint::put_uvarint(out, u64::from(number) << 3 | u64::from(wire_type));
    }

    /// Appends a length-delimited field.
    fn len_field(out: &mut Vec<u8>, number: u32, value: &[u8]) {
        key(out, number, LEN);
        crate::varint::put_bytes(out, value);
    }

    #[test]
    fn skips_unknown_fields_of_every_wire_type() {
        let mut entry = Vec::new();
        key(&mut entry, 9, VARINT);
        crate::varint::put_uvarint(&mut entry, 300);
        len_field(&mut entry, 2, b"the line");
        key(&mut entry, 10, FIXED64);
        entry.extend_from_slice(&[1; 8]);
        key(&mut entry, 11, FIXED32);
        entry.extend_from_slice(&[2; 4]);
        len_field(&mut entry, 12, b"ignored");
        let mut stream = Vec::new();
        len_field(&mut stream, 1, br#"{app="a"}"#);
        len_field(&mut stream, 2, &entry);
        let mut req = Vec::new();
        len_field(&mut req, 1, &stream);
        let raw = Bytes::from(req);
        let got = decode(&raw).unwrap();
        assert_eq!(got, reference(&raw).unwrap());
        assert_eq!(got.streams[0].entries[0].line, "the line");
    }

    #[test]
    fn skips_groups_of_unknown_fields_as_the_generated_decoder_does() {
        // Field 15 as a group holding a varint, a string and a nested group of field 16.
        let mut group = Vec::new();
        key(&mut group, 15, START_GROUP);
        key(&mut group, 1, VARINT);
        group.push(7);
        len_field(&mut group, 2, b"inside");
        key(&mut group, 16, START_GROUP);
        key(&mut group, 16, END_GROUP);
        key(&mut group, 15, END_GROUP);
        let mut entry = group.clone();
        len_field(&mut entry, 2, b"the line");
        let mut stream = group.clone();
        len_field(&mut stream, 1, br#"{app="a"}"#);
        len_field(&mut stream, 2, &entry);
        let mut req = group;
        len_field(&mut req, 1, &stream);
        let raw = Bytes::from(req);
        let got = decode(&raw).unwrap();
        assert_eq!(got, reference(&raw).unwrap());
        assert_eq!(got.streams[0].entries[0].line, "the line");

        // Nesting: 64 groups deep is skipped, 65 is refused (prost allows up to 100 levels).
        let nested = |depth: u32| {
            let mut b = Vec::new();
            for _ in 0..depth {
                key(&mut b, 15, START_GROUP);
            }
            for _ in 0..depth {
                key(&mut b, 15, END_GROUP);
            }
            Bytes::from(b)
        };
        assert_eq!(
            decode(&nested(64)),
            Ok(PushRequest {
                streams: Vec::new()
            })
        );
        assert!(reference(&nested(64)).is_ok());
        assert_eq!(decode(&nested(65)), Err(ProtobufError::MalformedGroup));
    }

    #[test]
    fn reports_what_is_wrong() {
        let mut req = Vec::new();
        key(&mut req, 1, VARINT);
        req.push(1);
        assert_eq!(
            decode(&Bytes::from(req)).unwrap_err().to_string(),
            "field 1 of PushRequest has wire type 0, expected 2"
        );

        let mut stream = Vec::new();
        len_field(&mut stream, 1, b"{a=\"\xff\"}");
        let mut req = Vec::new();
        len_field(&mut req, 1, &stream);
        assert_eq!(
            decode(&Bytes::from(req)),
            Err(ProtobufError::Utf8("stream labels"))
        );

        let mut req = Vec::new();
        len_field(&mut req, 1, b"");
        req.pop();
        assert_eq!(decode(&Bytes::from(req)), Err(ProtobufError::Truncated));

        assert_eq!(
            decode(&Bytes::from_static(&[0x03])),
            Err(ProtobufError::InvalidKey)
        );
        // A group of an unknown field that never ends, or ends with another field's key.
        assert_eq!(
            decode(&Bytes::from_static(&[0x7b])),
            Err(ProtobufError::MalformedGroup)
        );
        assert_eq!(
            decode(&Bytes::from_static(&[0x7b, 0x84, 0x01])),
            Err(ProtobufError::MalformedGroup)
        );
        // An end-group key without a group.
        assert_eq!(
            decode(&Bytes::from_static(&[0x7c])),
            Err(ProtobufError::UnsupportedWireType(4))
        );
    }
}
