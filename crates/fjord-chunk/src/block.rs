//! Blocks: the unit of compression, skipping and scanning.
//!
//! A block holds the entries of one stream sorted by timestamp, in three separately compressed
//! sections: the entry index (timestamps as first value then deltas, then every line's length),
//! the text (all lines back to back, so a filter scans one contiguous buffer), and sparse
//! structured metadata. Counting entries or bytes per time window needs only the small entry
//! index, never the text. An optional [`TrigramFilter`] lets substring filters skip the block,
//! and optional [`FieldColumns`] (written by the compactor) let label filters skip lines.
//!
//! Encoded layout (all integers LEB128 varints unless noted):
//! ```text
//! u8 version (1, or 2 with field columns) | u8 codec
//! count | min_ts (zigzag) | max_ts (zigzag) | raw_line_bytes | metadata_bytes
//! index_len | index_raw_len | text_len | text_raw_len | meta_len | meta_raw_len | filter_len
//! [version 2: fields_len | fields_raw_len]
//! index section | text section | meta section | filter section [| fields section]
//! u32 LE crc32 of everything above
//! ```
//! A block without field columns is written as version 1, so older readers still read it. In a
//! chunk (version 2) a block's filter section is empty and its filter is kept in the chunk's
//! summary instead ([`crate::chunk`]), so a reader can test the filter before fetching the block.
//!
//! **Invariants:** entries in a block are sorted by timestamp (ties keep arrival order) and no
//! two entries are exact duplicates (same timestamp, line and metadata); decoding validates
//! every length and the checksum and returns [`ChunkError`] instead of panicking.

use std::sync::Arc;

use bytes::Bytes;
use fjord_model::Label;
use fjord_model::varint::{Reader, put_bytes, put_uvarint, put_varint};

use crate::ChunkError;
use crate::codec::{Codec, MAX_SECTION_BYTES};
use crate::fields::FieldColumns;
use crate::filter::{TrigramFilter, block_may_match};

const BLOCK_VERSION: u8 = 1;
/// The version of a block that carries field columns.
const BLOCK_VERSION_FIELDS: u8 = 2;

/// One entry's structured metadata. Neighbouring entries of a stream nearly always carry the
/// same set (a stream's `detected_level` rarely changes), so equal neighbours share one
/// allocation instead of each holding a copy.
pub type MetadataSet = Arc<[Label]>;

/// A block's sparse structured metadata: (entry index, set), indexes ascending; entries
/// without metadata are absent.
pub type SparseMetadata = Vec<(u32, MetadataSet)>;

/// Appends `set` for entry `idx`, sharing the previous entry's allocation when equal; true when
/// a new set was allocated.
fn push_metadata(md: &mut SparseMetadata, idx: u32, set: &[Label]) -> bool {
    let (entry, allocated) = match md.last() {
        Some((_, prev)) if **prev == *set => (Arc::clone(prev), false),
        _ => (MetadataSet::from(set), true),
    };
    md.push((idx, entry));
    allocated
}

/// Summary of a block, readable without decompressing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockMeta {
    pub count: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    /// Sum of line lengths.
    pub raw_bytes: u64,
    /// Sum of structured metadata name and value lengths.
    pub metadata_bytes: u64,
}

impl BlockMeta {
    /// The summary of several blocks together (a chunk's, from its blocks'): counts and bytes
    /// added, the widest time range. `None` without blocks, or when a sum overflows.
    pub fn total<'a>(metas: impl IntoIterator<Item = &'a BlockMeta>) -> Option<BlockMeta> {
        let mut metas = metas.into_iter();
        let first = *metas.next()?;
        metas.try_fold(first, |m, b| {
            Some(BlockMeta {
                count: m.count.checked_add(b.count)?,
                min_ts: m.min_ts.min(b.min_ts),
                max_ts: m.max_ts.max(b.max_ts),
                raw_bytes: m.raw_bytes.checked_add(b.raw_bytes)?,
                metadata_bytes: m.metadata_bytes.checked_add(b.metadata_bytes)?,
            })
        })
    }

    /// Whether any entry may fall in `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.count > 0 && self.max_ts >= start && self.min_ts < end
    }
}

/// How blocks are encoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodeOptions {
    pub codec: Codec,
    /// Bits of trigram filter per byte of text; 0 disables the filter.
    pub filter_bits_per_byte: f64,
}

impl EncodeOptions {
    /// Options from config values: a codec name (`zstd`, `zstd:<1-19>`, `lz4`, `none`) and
    /// filter bits per byte (0 to 16). Errors name `key_prefix` (e.g. `ingester.chunk_`).
    pub fn from_config(
        key_prefix: &str,
        encoding: &str,
        filter_bits_per_byte: f64,
    ) -> Result<EncodeOptions, String> {
        let codec = Codec::parse(encoding).ok_or_else(|| {
            format!("{key_prefix}encoding must be zstd, zstd:<1-19>, lz4 or none, not `{encoding}`")
        })?;
        if !(0.0..=16.0).contains(&filter_bits_per_byte) {
            return Err(format!(
                "{key_prefix}filter_bits_per_byte must be between 0 and 16"
            ));
        }
        Ok(EncodeOptions {
            codec,
            filter_bits_per_byte,
        })
    }
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            codec: Codec::Zstd(1),
            filter_bits_per_byte: 0.25,
        }
    }
}

/// Room [`BlockBuilder::reserve_text`] leaves past the cut size, for the line that crosses it.
const CUT_SLACK: usize = 16 << 10;

/// Accumulates entries in arrival order (the ingester's open "head" block).
#[derive(Debug, Clone, Default)]
pub struct BlockBuilder {
    ts: Vec<i64>,
    /// `ends[i]` is the end offset of line `i` in `data`.
    ends: Vec<u32>,
    data: Vec<u8>,
    metadata: SparseMetadata,
    /// Sum of metadata name and value lengths over all entries (the block header's figure).
    metadata_bytes: u64,
    /// Heap bytes of the distinct metadata sets (shared sets counted once).
    metadata_heap: usize,
    sorted: bool,
}

impl BlockBuilder {
    pub fn new() -> Self {
        BlockBuilder {
            sorted: true,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// Bytes of line text held.
    pub fn raw_bytes(&self) -> usize {
        self.data.len()
    }

    /// Approximate heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
            + self.ts.capacity() * 8
            + self.ends.capacity() * 4
            + self.metadata.capacity() * std::mem::size_of::<(u32, MetadataSet)>()
            + self.metadata_heap
    }

    pub fn min_ts(&self) -> Option<i64> {
        self.ts.iter().copied().min()
    }

    pub fn max_ts(&self) -> Option<i64> {
        self.ts.iter().copied().max()
    }

    /// The timestamp of the most recently appended entry.
    pub fn last_ts(&self) -> Option<i64> {
        self.ts.last().copied()
    }

    /// Whether the last appended entry is exactly this one (Loki drops such repeats at ingest).
    pub fn is_repeat_of_last(&self, ts: i64, line: &[u8], metadata: &[Label]) -> bool {
        let Some(&last) = self.ts.last() else {
            return false;
        };
        let i = self.ts.len() - 1;
        last == ts && self.line(i) == line && self.metadata_of(i) == metadata
    }

    /// Makes room for `additional` more bytes of text in a head that is cut into a block once
    /// it holds `cut_at` bytes. Grows by doubling like a `Vec`, but not past `cut_at` and
    /// [`CUT_SLACK`]: a block cut at 256 KiB then lives in a buffer of about 272 KiB that was
    /// never copied into, instead of in a 512 KiB one that was.
    pub fn reserve_text(&mut self, additional: usize, cut_at: usize) {
        let needed = self.data.len() + additional;
        if needed <= self.data.capacity() {
            return;
        }
        let doubled = (self.data.capacity() * 2).max(needed);
        let room = doubled.min(cut_at.saturating_add(CUT_SLACK)).max(needed);
        self.data.reserve_exact(room - self.data.len());
    }

    /// Appends one entry. Lines longer than 4 GiB in total cannot be held by one block; callers
    /// cut blocks long before that.
    pub fn push(&mut self, ts: i64, line: &[u8], metadata: &[Label]) {
        if let Some(&last) = self.ts.last()
            && ts < last
        {
            self.sorted = false;
        }
        if !metadata.is_empty() {
            let set_bytes = metadata
                .iter()
                .map(|l| l.name.len() + l.value.len())
                .sum::<usize>();
            self.metadata_bytes += set_bytes as u64;
            if push_metadata(&mut self.metadata, self.ts.len() as u32, metadata) {
                self.metadata_heap += set_bytes + std::mem::size_of_val(metadata);
            }
        }
        self.ts.push(ts);
        self.data.extend_from_slice(line);
        self.ends.push(self.data.len() as u32);
    }

    fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.data[start..self.ends[i] as usize]
    }

    fn metadata_of(&self, i: usize) -> &[Label] {
        match self
            .metadata
            .binary_search_by_key(&(i as u32), |(idx, _)| *idx)
        {
            Ok(p) => &self.metadata[p].1,
            Err(_) => &[],
        }
    }

    /// Entries in timestamp order with exact duplicates removed, as a decoded block. Used both
    /// to encode and to serve queries from the head without compressing it.
    pub fn to_decoded(&self) -> DecodedBlock {
        let n = self.ts.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        if !self.sorted {
            order.sort_by_key(|&i| self.ts[i as usize]);
        }
        let mut out = DecodedBlock {
            ts: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n + 1),
            data: Vec::with_capacity(self.data.len()),
            metadata: Vec::new(),
            fields: None,
        };
        out.offsets.push(0);
        let mut run_start = 0usize; // index in `out` where the current equal-ts run begins
        for &i in &order {
            let i = i as usize;
            let (ts, line, md) = (self.ts[i], self.line(i), self.metadata_of(i));
            if out.ts.last() != Some(&ts) {
                run_start = out.ts.len();
            } else if (run_start..out.ts.len())
                .any(|j| out.line(j) == line && out.metadata(j) == md)
            {
                continue;
            }
            if !md.is_empty() {
                push_metadata(&mut out.metadata, out.ts.len() as u32, md);
            }
            out.ts.push(ts);
            out.data.extend_from_slice(line);
            out.offsets.push(out.data.len() as u32);
        }
        out
    }

    /// Encodes the entries into a block. Entries that arrived in order and hold no exact
    /// duplicates (the usual case) are encoded straight from the builder's buffers.
    pub fn encode(&self, opts: &EncodeOptions) -> EncodedBlock {
        if !self.sorted || self.has_duplicates() {
            return self.to_decoded().encode(opts);
        }
        Columns {
            meta: BlockMeta {
                count: self.ts.len() as u32,
                min_ts: self.ts.first().copied().unwrap_or(0),
                max_ts: self.ts.last().copied().unwrap_or(0),
                raw_bytes: self.data.len() as u64,
                metadata_bytes: self.metadata_bytes,
            },
            ts: &self.ts,
            first_offset: 0,
            ends: &self.ends,
            text: &self.data,
            metadata: &self.metadata,
            fields: None,
        }
        .encode(opts)
    }

    /// Whether two entries (in timestamp order) are exact duplicates.
    fn has_duplicates(&self) -> bool {
        let mut run_start = 0;
        for i in 1..self.ts.len() {
            if self.ts[i] != self.ts[i - 1] {
                run_start = i;
                continue;
            }
            let (line, md) = (self.line(i), self.metadata_of(i));
            if (run_start..i).any(|j| self.line(j) == line && self.metadata_of(j) == md) {
                return true;
            }
        }
        false
    }

    /// Drops all entries, keeping allocations for reuse.
    pub fn clear(&mut self) {
        self.ts.clear();
        self.ends.clear();
        self.data.clear();
        self.metadata.clear();
        self.metadata_bytes = 0;
        self.metadata_heap = 0;
        self.sorted = true;
    }
}

/// A block's entries in memory, columns uncompressed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedBlock {
    pub ts: Vec<i64>,
    /// `offsets[i]..offsets[i+1]` is line `i` in `data`; `offsets.len() == ts.len() + 1`.
    pub offsets: Vec<u32>,
    /// All line bytes back to back, from `offsets[0]` to `offsets[len]`.
    pub data: Vec<u8>,
    pub metadata: SparseMetadata,
    /// Field columns, entry for entry (blocks the compactor wrote).
    pub fields: Option<Arc<FieldColumns>>,
}

impl DecodedBlock {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    pub fn line(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub fn metadata(&self, i: usize) -> &[Label] {
        match self
            .metadata
            .binary_search_by_key(&(i as u32), |(idx, _)| *idx)
        {
            Ok(p) => &self.metadata[p].1,
            Err(_) => &[],
        }
    }

    /// A reader of the entries' metadata for a scan that visits entries in order, forward or
    /// backward: each step moves from the previous entry's place instead of searching.
    pub fn metadata_cursor(&self) -> MetadataCursor<'_> {
        MetadataCursor {
            metadata: &self.metadata,
            pos: 0,
        }
    }

    /// The index of the entry whose line contains byte `pos` of `data`.
    pub fn entry_at_byte(&self, pos: usize) -> usize {
        // offsets is sorted; the entry is the last whose start is <= pos.
        self.offsets
            .partition_point(|&o| o as usize <= pos)
            .saturating_sub(1)
    }

    /// All line text back to back.
    pub fn text(&self) -> &[u8] {
        let start = self.offsets.first().copied().unwrap_or(0) as usize;
        let end = self.offsets.last().copied().unwrap_or(0) as usize;
        &self.data[start..end]
    }

    pub fn meta(&self) -> BlockMeta {
        BlockMeta {
            count: self.ts.len() as u32,
            min_ts: self.ts.first().copied().unwrap_or(0),
            max_ts: self.ts.last().copied().unwrap_or(0),
            raw_bytes: u64::from(
                self.offsets.last().copied().unwrap_or(0)
                    - self.offsets.first().copied().unwrap_or(0),
            ),
            metadata_bytes: self
                .metadata
                .iter()
                .flat_map(|(_, m)| m.iter())
                .map(|l| (l.name.len() + l.value.len()) as u64)
                .sum(),
        }
    }

    /// Encodes these (already sorted, de-duplicated) entries, with their field columns if
    /// they have them.
    pub fn encode(&self, opts: &EncodeOptions) -> EncodedBlock {
        let first = self.offsets.first().copied().unwrap_or(0);
        Columns {
            meta: self.meta(),
            ts: &self.ts,
            first_offset: first,
            ends: self.offsets.get(1..).unwrap_or(&[]),
            text: self.text(),
            metadata: &self.metadata,
            fields: self.fields.as_deref().filter(|f| f.len() == self.len()),
        }
        .encode(opts)
    }
}

/// See [`DecodedBlock::metadata_cursor`].
#[derive(Debug, Clone)]
pub struct MetadataCursor<'a> {
    metadata: &'a [(u32, MetadataSet)],
    /// Where the last lookup ended: the first set at or after that entry.
    pos: usize,
}

impl<'a> MetadataCursor<'a> {
    /// Entry `i`'s metadata, as [`DecodedBlock::metadata`] gives it; cheap when `i` is near the
    /// entry asked for last.
    pub fn get(&mut self, i: usize) -> &'a [Label] {
        let (md, i) = (self.metadata, i as u32);
        let mut p = self.pos.min(md.len());
        while p < md.len() && md[p].0 < i {
            p += 1;
        }
        while p > 0 && md[p - 1].0 >= i {
            p -= 1;
        }
        self.pos = p;
        match md.get(p) {
            Some((idx, set)) if *idx == i => set,
            _ => &[],
        }
    }
}

/// The columns of sorted, de-duplicated entries, borrowed from wherever they are held.
struct Columns<'a> {
    meta: BlockMeta,
    ts: &'a [i64],
    /// Offset in the owner's buffer where `text` starts; `ends` are relative to the same buffer.
    first_offset: u32,
    /// `ends[i]` is where line `i` ends.
    ends: &'a [u32],
    text: &'a [u8],
    metadata: &'a [(u32, MetadataSet)],
    fields: Option<&'a FieldColumns>,
}

impl Columns<'_> {
    fn encode(&self, opts: &EncodeOptions) -> EncodedBlock {
        let meta = self.meta;

        let mut index_raw = Vec::with_capacity(self.ts.len() * 4);
        let mut prev = 0i64;
        for (i, &t) in self.ts.iter().enumerate() {
            if i == 0 {
                put_varint(&mut index_raw, t);
            } else {
                put_uvarint(&mut index_raw, t.wrapping_sub(prev) as u64);
            }
            prev = t;
        }
        let mut prev_end = self.first_offset;
        for &end in self.ends {
            put_uvarint(&mut index_raw, u64::from(end - prev_end));
            prev_end = end;
        }
        let text = self.text;

        let meta_raw = encode_metadata(self.metadata);

        // The lines lie back to back in `text`, so the filter reads it in one pass; the two
        // windows across each line boundary only add bits, never lose one.
        let filter = (opts.filter_bits_per_byte > 0.0 && meta.raw_bytes > 0).then(|| {
            TrigramFilter::build(
                std::iter::once(text),
                meta.raw_bytes as usize,
                opts.filter_bits_per_byte,
            )
        });

        let mut index_c = Vec::new();
        opts.codec.compress(&index_raw, &mut index_c);
        let mut text_c = Vec::new();
        opts.codec.compress(text, &mut text_c);
        let mut meta_c = Vec::new();
        if !meta_raw.is_empty() {
            opts.codec.compress(&meta_raw, &mut meta_c);
        }
        let mut filter_b = Vec::new();
        if let Some(f) = &filter {
            f.encode(&mut filter_b);
        }
        let fields_raw = self.fields.map(FieldColumns::encode);
        let mut fields_c = Vec::new();
        if let Some(raw) = &fields_raw {
            opts.codec.compress(raw, &mut fields_c);
        }

        let mut out = Vec::with_capacity(
            64 + index_c.len() + text_c.len() + meta_c.len() + filter_b.len() + fields_c.len(),
        );
        put_header(
            &mut out,
            &HeaderSizes {
                codec: opts.codec,
                meta,
                sections: [
                    (index_c.len(), index_raw.len()),
                    (text_c.len(), text.len()),
                    (meta_c.len(), meta_raw.len()),
                ],
                filter: filter_b.len(),
                fields: fields_raw.as_ref().map(|raw| (fields_c.len(), raw.len())),
            },
        );
        out.extend_from_slice(&index_c);
        out.extend_from_slice(&text_c);
        out.extend_from_slice(&meta_c);
        out.extend_from_slice(&filter_b);
        out.extend_from_slice(&fields_c);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        EncodedBlock {
            meta,
            data: Bytes::from(out),
            detached_filter: None,
        }
    }
}

/// The sizes a block header records: (stored, raw) bytes of the index, text and metadata
/// sections, the filter's bytes, and (stored, raw) bytes of the field columns when present.
struct HeaderSizes {
    codec: Codec,
    meta: BlockMeta,
    sections: [(usize, usize); 3],
    filter: usize,
    fields: Option<(usize, usize)>,
}

/// Writes a block's header: everything before its sections. A block with field columns is
/// version 2, any other version 1.
fn put_header(out: &mut Vec<u8>, h: &HeaderSizes) {
    out.push(if h.fields.is_some() {
        BLOCK_VERSION_FIELDS
    } else {
        BLOCK_VERSION
    });
    out.push(h.codec.id());
    put_uvarint(out, u64::from(h.meta.count));
    put_varint(out, h.meta.min_ts);
    put_varint(out, h.meta.max_ts);
    put_uvarint(out, h.meta.raw_bytes);
    put_uvarint(out, h.meta.metadata_bytes);
    for (stored, raw) in h.sections {
        put_uvarint(out, stored as u64);
        put_uvarint(out, raw as u64);
    }
    put_uvarint(out, h.filter as u64);
    if let Some((stored, raw)) = h.fields {
        put_uvarint(out, stored as u64);
        put_uvarint(out, raw as u64);
    }
}

fn encode_metadata(md: &[(u32, MetadataSet)]) -> Vec<u8> {
    if md.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = md
        .iter()
        .flat_map(|(_, m)| m.iter().map(|l| l.name.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    put_uvarint(&mut out, names.len() as u64);
    for n in &names {
        put_bytes(&mut out, n.as_bytes());
    }
    put_uvarint(&mut out, md.len() as u64);
    let mut prev = 0u32;
    for (idx, pairs) in md {
        put_uvarint(&mut out, u64::from(idx - prev));
        prev = *idx;
        put_uvarint(&mut out, pairs.len() as u64);
        for l in pairs.iter() {
            let ni = names.binary_search(&l.name.as_str()).unwrap_or(0);
            put_uvarint(&mut out, ni as u64);
            put_bytes(&mut out, l.value.as_bytes());
        }
    }
    out
}

fn decode_metadata(raw: &[u8], count: usize) -> Result<SparseMetadata, ChunkError> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(raw);
    let n_names = r.len_at_most(raw.len())?;
    let mut names = Vec::with_capacity(n_names);
    for _ in 0..n_names {
        names.push(r.str()?.to_string());
    }
    let n = r.len_at_most(count)?;
    let mut out: SparseMetadata = Vec::with_capacity(n);
    // Sets seen in this block, as (name index, value) pairs, so entries with equal metadata
    // share one set (and queries can key on the set's address). A block's entries usually
    // carry a handful of sets (one per `detected_level`); past `SHARED_SETS` the rest are
    // built per entry.
    const SHARED_SETS: usize = 32;
    let mut seen: Vec<(Vec<(usize, &str)>, MetadataSet)> = Vec::new();
    let mut pairs_of_entry: Vec<(usize, &str)> = Vec::new();
    let mut idx = 0u64;
    for i in 0..n {
        let delta = r.uvarint()?;
        if i > 0 && delta == 0 {
            return Err(ChunkError::Corrupt("metadata entries out of order".into()));
        }
        idx += delta;
        if idx >= count as u64 {
            return Err(ChunkError::Corrupt(
                "metadata entry index out of range".into(),
            ));
        }
        let pairs = r.len_at_most(raw.len())?;
        pairs_of_entry.clear();
        for _ in 0..pairs {
            let ni = r.len_at_most(names.len().saturating_sub(1))?;
            pairs_of_entry.push((ni, r.str()?));
        }
        let set = match seen.iter().find(|(pairs, _)| *pairs == pairs_of_entry) {
            Some((_, set)) => Arc::clone(set),
            None => {
                let set: MetadataSet = pairs_of_entry
                    .iter()
                    .map(|&(ni, v)| Label::new(names[ni].clone(), v))
                    .collect();
                if seen.len() < SHARED_SETS {
                    seen.push((pairs_of_entry.clone(), Arc::clone(&set)));
                }
                set
            }
        };
        out.push((idx as u32, set));
    }
    Ok(out)
}

/// An encoded block with its summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedBlock {
    pub meta: BlockMeta,
    pub data: Bytes,
    /// The block's trigram filter when it is stored apart from the block, in the summary of a
    /// version 2 chunk (the block's own filter section is then empty).
    detached_filter: Option<Bytes>,
}

/// Stored (compressed) bytes of a block's sections; the rest of the block is its header and
/// checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectionSizes {
    pub index: usize,
    pub text: usize,
    pub metadata: usize,
    pub filter: usize,
    pub fields: usize,
}

/// The parsed header of an encoded block.
struct Header {
    version: u8,
    codec: Codec,
    meta: BlockMeta,
    /// (offset, compressed len, raw len) of the index, text and metadata sections.
    sections: [(usize, usize, usize); 3],
    filter: (usize, usize),
    /// (offset, compressed len, raw len) of the field columns; raw len 0 when absent.
    fields: (usize, usize, usize),
}

impl EncodedBlock {
    /// Wraps encoded bytes read from storage, verifying the checksum and header.
    pub fn from_bytes(data: Bytes) -> Result<EncodedBlock, ChunkError> {
        verify_checksum(&data)?;
        let h = parse_header(&data)?;
        Ok(EncodedBlock {
            meta: h.meta,
            data,
            detached_filter: None,
        })
    }

    /// Attaches the filter stored apart from this block (see [`crate::chunk`]); the block must
    /// not hold one itself.
    pub(crate) fn with_detached_filter(
        mut self,
        filter: Option<Bytes>,
    ) -> Result<EncodedBlock, ChunkError> {
        if parse_header(&self.data)?.filter.1 != 0 {
            return Err(ChunkError::Corrupt(
                "block holds a trigram filter its chunk stores apart".into(),
            ));
        }
        self.detached_filter = filter;
        Ok(self)
    }

    /// Appends the block to `out` without its trigram filter section (re-checksummed), and
    /// returns the filter's bytes (empty when it has none), for a chunk that stores filters
    /// apart from the blocks.
    pub(crate) fn write_without_filter(&self, out: &mut Vec<u8>) -> Result<&[u8], ChunkError> {
        self.write_with(&parse_header(&self.data)?, &[], out);
        self.filter_bytes()
    }

    /// Appends the block to `out` with its trigram filter inside it, as a version 1 chunk
    /// keeps it.
    pub(crate) fn write_with_filter_inside(&self, out: &mut Vec<u8>) -> Result<(), ChunkError> {
        match &self.detached_filter {
            None => out.extend_from_slice(&self.data),
            Some(filter) => self.write_with(&parse_header(&self.data)?, filter, out),
        }
        Ok(())
    }

    /// Appends the block, whose parsed header is `h`, to `out` with `filter` as its filter
    /// section, re-checksummed.
    fn write_with(&self, h: &Header, filter: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        put_header(out, &h.sizes_with_filter(filter.len()));
        out.extend_from_slice(&self.data[h.sections[0].0..h.filter.0]);
        out.extend_from_slice(filter);
        out.extend_from_slice(&self.data[h.fields.0..h.fields.0 + h.fields.1]);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// What identifies the block's content wherever its filter is stored (a flushed block is
    /// stored without it, see [`crate::chunk`]), for cache keys: its header as written without
    /// a filter (which gives every section's size), and its compressed sections before and
    /// after the filter. Blocks with equal parts decode to equal blocks.
    pub fn content_parts(&self) -> Result<(Vec<u8>, [&[u8]; 2]), ChunkError> {
        let h = parse_header(&self.data)?;
        Ok((
            header_without_filter(&h),
            [
                &self.data[h.sections[0].0..h.filter.0],
                &self.data[h.fields.0..h.fields.0 + h.fields.1],
            ],
        ))
    }

    /// What [`EncodedBlock::decode_index`] decodes, for cache keys: the header as
    /// [`EncodedBlock::content_parts`] gives it, and the compressed entry index. Blocks with
    /// equal parts decode to equal entry indexes.
    pub fn index_parts(&self) -> Result<(Vec<u8>, &[u8]), ChunkError> {
        self.section_parts(0)
    }

    /// What [`EncodedBlock::metadata_names`] decodes, for cache keys: the header and the
    /// compressed structured metadata.
    pub fn metadata_parts(&self) -> Result<(Vec<u8>, &[u8]), ChunkError> {
        self.section_parts(2)
    }

    /// The header as [`EncodedBlock::content_parts`] gives it, and the compressed section `i`.
    fn section_parts(&self, i: usize) -> Result<(Vec<u8>, &[u8]), ChunkError> {
        let h = parse_header(&self.data)?;
        let (off, len, _) = h.sections[i];
        Ok((header_without_filter(&h), &self.data[off..off + len]))
    }

    /// The bytes of the trigram filter: the detached filter, else the block's own section.
    fn filter_bytes(&self) -> Result<&[u8], ChunkError> {
        Ok(match &self.detached_filter {
            Some(f) => f,
            None => {
                let h = parse_header(&self.data)?;
                &self.data[h.filter.0..h.filter.0 + h.filter.1]
            }
        })
    }

    /// Whether the sections are compressed (a head snapshot is not), i.e. whether decoding is
    /// worth caching.
    pub fn is_compressed(&self) -> bool {
        parse_header(&self.data).is_ok_and(|h| h.codec != Codec::None)
    }

    /// Stored bytes of each section, for studies of the format (`fjord-bench compress`).
    pub fn section_sizes(&self) -> Result<SectionSizes, ChunkError> {
        let h = parse_header(&self.data)?;
        let [index, text, metadata] = h.sections.map(|(_, stored, _)| stored);
        Ok(SectionSizes {
            index,
            text,
            metadata,
            filter: self.filter_bytes()?.len(),
            fields: h.fields.1,
        })
    }

    /// The trigram filter, when the block has one.
    pub fn filter(&self) -> Result<Option<TrigramFilter>, ChunkError> {
        let bytes = self.filter_bytes()?;
        if bytes.is_empty() {
            return Ok(None);
        }
        TrigramFilter::decode(bytes)
            .map(Some)
            .ok_or_else(|| ChunkError::Corrupt("bad trigram filter".into()))
    }

    /// Whether a line of the block may satisfy `clauses` (see
    /// [`FilterView::may_match`](crate::filter::FilterView::may_match));
    /// false means: skip the block. A block without a filter, or with one that cannot be
    /// read, may match.
    pub fn may_match(&self, clauses: &[Vec<Vec<u8>>]) -> bool {
        self.filter_bytes()
            .map_or(true, |filter| block_may_match(filter, clauses))
    }

    /// Decodes only the timestamps.
    pub fn decode_timestamps(&self) -> Result<Vec<i64>, ChunkError> {
        let h = parse_header(&self.data)?;
        Ok(decode_index(&h, &self.data)?.ts)
    }

    /// Decodes timestamps and line lengths, leaving the text compressed.
    pub fn decode_index(&self) -> Result<EntryIndex, ChunkError> {
        let h = parse_header(&self.data)?;
        decode_index(&h, &self.data)
    }

    /// Decodes the sparse structured metadata only.
    pub fn decode_metadata(&self) -> Result<SparseMetadata, ChunkError> {
        let h = parse_header(&self.data)?;
        decode_metadata_section(&h, &self.data)
    }

    /// The distinct structured metadata names used in the block, without decoding the values.
    pub fn metadata_names(&self) -> Result<Vec<String>, ChunkError> {
        let h = parse_header(&self.data)?;
        let (off, len, raw_len) = h.sections[2];
        if raw_len == 0 {
            return Ok(Vec::new());
        }
        let raw = h.codec.decompress(&self.data[off..off + len], raw_len)?;
        let mut r = Reader::new(&raw);
        let n = r.len_at_most(raw.len())?;
        (0..n).map(|_| Ok(r.str()?.to_string())).collect()
    }

    /// Decodes every column.
    pub fn decode(&self) -> Result<DecodedBlock, ChunkError> {
        let h = parse_header(&self.data)?;
        let index = decode_index(&h, &self.data)?;
        let (off, len, raw_len) = h.sections[1];
        if raw_len as u64 != h.meta.raw_bytes {
            return Err(ChunkError::Corrupt(
                "text size does not match the block header".into(),
            ));
        }
        let data = h.codec.decompress(&self.data[off..off + len], raw_len)?;
        let mut offsets = Vec::with_capacity(index.lens.len() + 1);
        let mut pos = 0u32;
        offsets.push(0);
        for l in &index.lens {
            pos += l;
            offsets.push(pos);
        }
        let metadata = decode_metadata_section(&h, &self.data)?;
        let (off, len, raw_len) = h.fields;
        let fields = if raw_len == 0 {
            None
        } else {
            let raw = h.codec.decompress(&self.data[off..off + len], raw_len)?;
            Some(Arc::new(FieldColumns::decode(&raw, index.ts.len())?))
        };
        Ok(DecodedBlock {
            ts: index.ts,
            offsets,
            data,
            metadata,
            fields,
        })
    }
}

/// Timestamps and line lengths of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryIndex {
    pub ts: Vec<i64>,
    pub lens: Vec<u32>,
}

/// `h` as written for a block stored without its filter: every section's size, the codec and
/// the block's meta.
fn header_without_filter(h: &Header) -> Vec<u8> {
    let mut header = Vec::with_capacity(64);
    put_header(&mut header, &h.sizes_with_filter(0));
    header
}

fn decode_metadata_section(h: &Header, data: &[u8]) -> Result<SparseMetadata, ChunkError> {
    let (off, len, raw_len) = h.sections[2];
    if raw_len == 0 {
        return Ok(Vec::new());
    }
    decode_metadata(
        &h.codec.decompress(&data[off..off + len], raw_len)?,
        h.meta.count as usize,
    )
}

fn decode_index(h: &Header, data: &[u8]) -> Result<EntryIndex, ChunkError> {
    let n = h.meta.count as usize;
    let (off, len, raw_len) = h.sections[0];
    let raw = h.codec.decompress(&data[off..off + len], raw_len)?;
    let mut r = Reader::new(&raw);
    let mut ts = Vec::with_capacity(n);
    let mut prev = 0i64;
    for i in 0..n {
        let t = if i == 0 {
            r.varint()?
        } else {
            prev.wrapping_add(r.uvarint()? as i64)
        };
        ts.push(t);
        prev = t;
    }
    let mut lens = Vec::with_capacity(n);
    let mut total = 0u64;
    for _ in 0..n {
        let l = r.len_at_most(u32::MAX as usize)? as u32;
        total += u64::from(l);
        lens.push(l);
    }
    if !r.is_empty()
        || total != h.meta.raw_bytes
        || ts.first().is_some_and(|&t| t != h.meta.min_ts)
        || ts.last().is_some_and(|&t| t != h.meta.max_ts)
    {
        return Err(ChunkError::Corrupt(
            "entry index does not match the block header".into(),
        ));
    }
    Ok(EntryIndex { ts, lens })
}

impl Header {
    /// The sizes to write for this block with a filter section of `filter` bytes.
    fn sizes_with_filter(&self, filter: usize) -> HeaderSizes {
        HeaderSizes {
            codec: self.codec,
            meta: self.meta,
            sections: self.sections.map(|(_, stored, raw)| (stored, raw)),
            filter,
            fields: (self.version == BLOCK_VERSION_FIELDS)
                .then_some((self.fields.1, self.fields.2)),
        }
    }
}

/// Checks the block's CRC; done once, when bytes come from outside ([`EncodedBlock::from_bytes`]).
fn verify_checksum(data: &[u8]) -> Result<(), ChunkError> {
    if data.len() < 6 {
        return Err(ChunkError::Corrupt("block too short".into()));
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let want = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != want {
        return Err(ChunkError::Checksum);
    }
    Ok(())
}

/// Parses (and bounds-checks) the header of a block whose checksum is already verified.
fn parse_header(data: &[u8]) -> Result<Header, ChunkError> {
    if data.len() < 6 {
        return Err(ChunkError::Corrupt("block too short".into()));
    }
    let body = &data[..data.len() - 4];
    let (header, end) = parse_header_in(body)?;
    if end != body.len() {
        return Err(ChunkError::Corrupt("block sections do not add up".into()));
    }
    Ok(header)
}

/// The length of the block that starts `data` (its header, sections and checksum), from its
/// header alone: how a chunk's blocks are found without the chunk's tail. The bytes are not
/// verified; [`EncodedBlock::from_bytes`] does that.
pub(crate) fn block_len(data: &[u8]) -> Result<usize, ChunkError> {
    let (_, end) = parse_header_in(data)?;
    Ok(end + 4)
}

/// Parses the header at the start of `body` (a block without its checksum, or more bytes),
/// each section bounded by `body`'s length; returns it and where the block's last section ends.
fn parse_header_in(body: &[u8]) -> Result<(Header, usize), ChunkError> {
    let mut r = Reader::new(body);
    let version = r.u8()?;
    if version != BLOCK_VERSION && version != BLOCK_VERSION_FIELDS {
        return Err(ChunkError::UnsupportedVersion(version));
    }
    let codec = Codec::from_id(r.u8()?)?;
    let count = r.len_at_most(u32::MAX as usize)? as u32;
    let min_ts = r.varint()?;
    let max_ts = r.varint()?;
    let raw_bytes = r.uvarint()?;
    let metadata_bytes = r.uvarint()?;
    let mut lens = [(0usize, 0usize); 3];
    for l in &mut lens {
        *l = (
            r.len_at_most(body.len())?,
            r.len_at_most(MAX_SECTION_BYTES)?,
        );
    }
    let filter_len = r.len_at_most(body.len())?;
    let (fields_len, fields_raw) = if version == BLOCK_VERSION_FIELDS {
        (
            r.len_at_most(body.len())?,
            r.len_at_most(MAX_SECTION_BYTES)?,
        )
    } else {
        (0, 0)
    };
    let overrun = || ChunkError::Corrupt("block sections overrun the block".into());
    let mut off = r.position();
    let mut sections = [(0, 0, 0); 3];
    for (s, (len, raw)) in sections.iter_mut().zip(lens) {
        *s = (off, len, raw);
        off = off.checked_add(len).ok_or_else(overrun)?;
    }
    let filter_off = off;
    off = off.checked_add(filter_len).ok_or_else(overrun)?;
    let end = off.checked_add(fields_len).ok_or_else(overrun)?;
    if end > body.len() {
        return Err(overrun());
    }
    if min_ts > max_ts {
        return Err(ChunkError::Corrupt("block min time after max time".into()));
    }
    let header = Header {
        version,
        codec,
        meta: BlockMeta {
            count,
            min_ts,
            max_ts,
            raw_bytes,
            metadata_bytes,
        },
        sections,
        filter: (filter_off, filter_len),
        fields: (off, fields_len, fields_raw),
    };
    Ok((header, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(entries: &[(i64, &str)]) -> BlockBuilder {
        let mut b = BlockBuilder::new();
        for (t, l) in entries {
            b.push(*t, l.as_bytes(), &[]);
        }
        b
    }

    #[test]
    fn block_meta_totals_add_counts_and_bytes_and_widen_the_time_range() {
        let meta = |count, min_ts, max_ts, raw_bytes| BlockMeta {
            count,
            min_ts,
            max_ts,
            raw_bytes,
            metadata_bytes: 2,
        };
        let total = BlockMeta::total(&[meta(3, 10, 20, 30), meta(4, 5, 15, 40)]).unwrap();
        assert_eq!(
            total,
            BlockMeta {
                metadata_bytes: 4,
                ..meta(7, 5, 20, 70)
            }
        );
        assert_eq!(BlockMeta::total(&[]), None);
        assert_eq!(
            BlockMeta::total(&[meta(u32::MAX, 0, 0, 0), meta(1, 0, 0, 0)]),
            None
        );
    }

    #[test]
    fn reserved_text_stops_growing_at_the_cut_size() {
        let cut_at = 64 << 10;
        let mut b = BlockBuilder::new();
        let mut i = 0;
        while b.raw_bytes() < cut_at {
            let line = format!("line {i} {}", "x".repeat(i % 300));
            b.reserve_text(line.len(), cut_at);
            b.push(i as i64, line.as_bytes(), &[]);
            i += 1;
        }
        assert!(
            b.data.capacity() <= cut_at + CUT_SLACK,
            "{}",
            b.data.capacity()
        );
        // A line longer than the slack still gets its room.
        let long = vec![b'y'; 2 * CUT_SLACK];
        b.reserve_text(long.len(), cut_at);
        b.push(i as i64, &long, &[]);
        assert_eq!(b.line(i), &long[..]);
        assert_eq!(b.to_decoded().len(), i + 1);
    }

    #[test]
    fn sorts_and_drops_exact_duplicates() {
        let mut b = builder(&[(5, "e"), (1, "a"), (3, "c"), (3, "d"), (3, "c")]);
        b.push(3, b"c", &[Label::new("k", "v")]);
        let d = b.to_decoded();
        assert_eq!(d.ts, vec![1, 3, 3, 3, 5]);
        let lines: Vec<&[u8]> = (0..d.len()).map(|i| d.line(i)).collect();
        assert_eq!(lines, vec![&b"a"[..], b"c", b"d", b"c", b"e"]);
        assert_eq!(d.metadata(3), &[Label::new("k", "v")]);
        assert!(d.metadata(1).is_empty());
    }

    #[test]
    fn encode_decode_and_filter() {
        let mut b = builder(&[(10, "hello world"), (20, ""), (30, "NEEDLE here")]);
        b.push(
            40,
            b"with md",
            &[Label::new("trace_id", "abc"), Label::new("user", "u")],
        );
        for codec in [Codec::None, Codec::Zstd(3), Codec::Lz4] {
            let enc = b.encode(&EncodeOptions {
                codec,
                filter_bits_per_byte: 1.0,
            });
            let back = EncodedBlock::from_bytes(enc.data.clone()).unwrap();
            assert_eq!(back.meta, enc.meta);
            let decoded = back.decode().unwrap();
            assert_eq!(decoded.ts, b.to_decoded().ts);
            assert_eq!(decoded.text(), b.to_decoded().text());
            assert_eq!(decoded.metadata, b.to_decoded().metadata);
            assert_eq!(decoded.line(2), b"NEEDLE here");
            assert_eq!(back.decode_timestamps().unwrap(), vec![10, 20, 30, 40]);
            assert!(back.may_match(&[vec![b"NEEDLE".to_vec()]]));
            assert!(!back.may_match(&[vec![b"absent-string".to_vec()]]));
        }
        assert_eq!(b.to_decoded().entry_at_byte(11), 2);
    }

    /// A block written without its filter carries the filter apart, decodes the same, and has
    /// the same content parts, which are exactly its bytes before the checksum.
    #[test]
    fn a_block_without_its_filter_has_the_same_content() {
        let mut b = builder(&[(10, "hello world"), (30, "NEEDLE here")]);
        b.push(40, b"with md", &[Label::new("trace_id", "abc")]);
        let mut d = b.to_decoded();
        let mut fields = crate::FieldColumnsBuilder::new(crate::FieldParser::Json);
        for _ in 0..3 {
            fields.push(Some(&[Label::new("status", "200")]));
        }
        d.fields = fields.finish().map(Arc::new);
        for enc in [
            b.encode(&EncodeOptions::default()),
            d.encode(&EncodeOptions::default()),
        ] {
            let mut out = Vec::new();
            let filter = enc.write_without_filter(&mut out).unwrap().to_vec();
            assert!(!filter.is_empty());
            let apart = EncodedBlock::from_bytes(Bytes::from(out.clone()))
                .unwrap()
                .with_detached_filter(Some(Bytes::from(filter)))
                .unwrap();
            assert_eq!(apart.decode().unwrap(), enc.decode().unwrap());
            assert_eq!(apart.filter().unwrap(), enc.filter().unwrap());
            let (header, sections) = enc.content_parts().unwrap();
            assert_eq!(apart.content_parts().unwrap(), (header.clone(), sections));
            assert_eq!(
                [&header[..], sections[0], sections[1]].concat(),
                out[..out.len() - 4]
            );
            // A block holding its own filter cannot take another.
            assert!(enc.clone().with_detached_filter(None).is_err());
        }
    }

    #[test]
    fn field_columns_make_a_version_2_block() {
        let b = builder(&[(1, "a"), (2, "b"), (3, "c")]);
        let mut fields = crate::FieldColumnsBuilder::new(crate::FieldParser::Json);
        for v in ["200", "500", "200"] {
            fields.push(Some(&[Label::new("status", v)]));
        }
        let mut d = b.to_decoded();
        d.fields = fields.finish().map(Arc::new);
        let enc = d.encode(&EncodeOptions::default());
        assert_eq!(enc.data[0], BLOCK_VERSION_FIELDS);
        let back = EncodedBlock::from_bytes(enc.data.clone()).unwrap();
        assert!(back.section_sizes().unwrap().fields > 0);
        assert_eq!(back.decode().unwrap(), d);
        let status = back
            .decode()
            .unwrap()
            .fields
            .unwrap()
            .column("status")
            .cloned();
        assert_eq!(status.unwrap().value(1), Some("500"));
        // Without columns the block stays version 1, readable by older binaries.
        assert_eq!(b.encode(&EncodeOptions::default()).data[0], BLOCK_VERSION);
        for i in 0..enc.data.len() {
            let mut bad = enc.data.to_vec();
            bad[i] ^= 0x40;
            assert!(EncodedBlock::from_bytes(Bytes::from(bad)).is_err());
        }
    }

    #[test]
    fn metadata_cursor_agrees_with_the_search_in_any_order() {
        let mut b = BlockBuilder::new();
        for i in 0..40 {
            let md = (i % 3 != 0).then(|| Label::new("n", format!("{}", i / 5)));
            b.push(i, b"x", md.as_slice());
        }
        let d = b.to_decoded();
        let mut cursor = d.metadata_cursor();
        let order = (0..40)
            .chain((0..40).rev())
            .chain([7, 33, 0, 39, 12, 12, 5]);
        for i in order {
            assert_eq!(cursor.get(i), d.metadata(i), "entry {i}");
        }
        assert!(
            BlockBuilder::new()
                .to_decoded()
                .metadata_cursor()
                .get(3)
                .is_empty()
        );
    }

    #[test]
    fn equal_metadata_shares_one_set() {
        let info = [Label::new("detected_level", "info")];
        let warn = [Label::new("detected_level", "warn")];
        let mut b = BlockBuilder::new();
        for (t, md) in [(1, &info), (2, &info), (3, &warn), (4, &info), (5, &info)] {
            b.push(t, b"line", md);
        }
        let shared = |md: &SparseMetadata| -> Vec<bool> {
            md.windows(2)
                .map(|w| Arc::ptr_eq(&w[0].1, &w[1].1))
                .collect()
        };
        let decoded = b.to_decoded();
        assert_eq!(shared(&decoded.metadata), [true, false, false, true]);
        let back = EncodedBlock::from_bytes(b.encode(&EncodeOptions::default()).data)
            .unwrap()
            .decode()
            .unwrap();
        assert_eq!(shared(&back.metadata), [true, false, false, true]);
        // Decoding shares equal sets across the whole block, not only between neighbours.
        assert!(Arc::ptr_eq(&back.metadata[0].1, &back.metadata[4].1));
        assert_eq!(back.metadata(2), &warn);
        assert_eq!(back.metadata(4), &info);
        // The header counts every entry's metadata; memory counts each distinct set once.
        assert_eq!(back.meta().metadata_bytes, 5 * 18);
        assert_eq!(b.metadata_heap, 3 * (18 + std::mem::size_of::<Label>()));
    }

    #[test]
    fn detects_corruption() {
        let enc = builder(&[(1, "a"), (2, "b")]).encode(&EncodeOptions::default());
        for i in 0..enc.data.len() {
            let mut bad = enc.data.to_vec();
            bad[i] ^= 0x40;
            assert!(
                EncodedBlock::from_bytes(Bytes::from(bad)).is_err(),
                "flip at {i} not detected"
            );
        }
        assert!(EncodedBlock::from_bytes(enc.data.slice(..enc.data.len() - 1)).is_err());
    }
}
