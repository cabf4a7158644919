//! Field columns: the labels a parser extracts from a block's lines, stored beside the text so
//! a label filter can rule lines out without decompressing or parsing them.
//!
//! What a parser extracts, and when a column may stand in for it, is the query engine's
//! business (`fjord_engine::field_columns`); this module only holds and lays out the result.
//! For every entry it records whether the parser read the line without error; for those
//! entries the columns hold exactly the values the parser yields (when no stream label or
//! structured metadata renames them). `names` lists every label name the parser yields on any
//! such entry, so a name missing from it is known to be absent. Names whose values repeat
//! get a dictionary column (at most 255 distinct, and at most 8 or half as many as the entries
//! that have the name; dictionary codes, one byte per entry). A name with more values gets a
//! text column only when the builder was given a test for text values
//! ([`FieldColumnsBuilder::with_text_columns`]) and every value passes it and is at most
//! [`MAX_TEXT_VALUE_LEN`] bytes long: the query engine keeps numbers, durations and byte sizes
//! this way, what `| unwrap` reads, so that `quantile_over_time(… | logfmt | unwrap duration …)`
//! need not parse the lines. Ids and other long or free text stay only in the text.
//!
//! Raw layout (compressed as one block section; integers LEB128 varints unless noted):
//! ```text
//! u8 parser (1 = `| json`, 2 = `| logfmt`) | count
//! parsed bitmap: ceil(count / 8) bytes, entry i is bit i % 8 of byte i / 8
//! n_names | names (length-prefixed, strictly ascending)
//! n_columns | per column: name index | n_values (1..=255) | values (length-prefixed)
//!             | count bytes of codes (0: absent, k: value k - 1)
//! [n_text_columns | per column: name index | per entry: 0 (absent) or 1 + length, then the bytes]
//! ```
//! The text columns are present exactly when the builder had a test for text values (even
//! if no name passed it), so blocks written before they existed still read. The compactor
//! stores no text columns (unique values cost their entropy on disk: with them and logfmt
//! columns the benchmark's compacted store grew from 0.197 to 0.211 bytes per raw byte); the
//! query engine's block cache builds them for the blocks queries read.

use std::collections::HashMap;

use fjord_model::Label;
use fjord_model::varint::{Reader, put_bytes, put_uvarint};

use crate::ChunkError;

/// Most distinct values a column holds; a name with more stays in the text only.
pub const MAX_COLUMN_VALUES: usize = 255;

/// Most names a block's field list holds; a block whose lines yield more gets no columns.
pub const MAX_NAMES: usize = 1024;

/// Longest value a text column holds; a name with a longer value gets no text column.
pub const MAX_TEXT_VALUE_LEN: usize = 32;

/// The parser whose output the columns hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldParser {
    /// LogQL's `| json` without arguments.
    Json,
    /// LogQL's `| logfmt` without flags or arguments.
    Logfmt,
}

impl FieldParser {
    fn id(self) -> u8 {
        match self {
            FieldParser::Json => 1,
            FieldParser::Logfmt => 2,
        }
    }

    fn from_id(id: u8) -> Result<FieldParser, ChunkError> {
        match id {
            1 => Ok(FieldParser::Json),
            2 => Ok(FieldParser::Logfmt),
            _ => Err(ChunkError::Corrupt(format!("unknown field parser {id}"))),
        }
    }
}

/// One name's values, dictionary-coded per entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldColumn {
    pub name: String,
    pub values: Vec<String>,
    /// Per entry: 0 when the entry has no such label, else 1 + the index of its value.
    pub codes: Vec<u8>,
}

impl FieldColumn {
    /// Entry `i`'s value, if it has the label.
    pub fn value(&self, i: usize) -> Option<&str> {
        match self.codes.get(i).copied().unwrap_or(0) {
            0 => None,
            c => self.values.get(usize::from(c) - 1).map(String::as_str),
        }
    }
}

/// One name's values as text, per entry (for names with too many values for a dictionary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextColumn {
    pub name: String,
    /// The values back to back; entry `i`'s is `text[bounds[i]..bounds[i + 1]]`.
    text: String,
    bounds: Vec<u32>,
    /// Per entry: whether it has the label.
    present: Vec<bool>,
}

impl TextColumn {
    /// Entry `i`'s value, if it has the label.
    pub fn value(&self, i: usize) -> Option<&str> {
        if !self.present.get(i).copied().unwrap_or(false) {
            return None;
        }
        let (start, end) = (self.bounds[i] as usize, self.bounds[i + 1] as usize);
        self.text.get(start..end)
    }

    fn heap_bytes(&self) -> usize {
        self.name.len() + self.text.len() + self.bounds.len() * 4 + self.present.len()
    }
}

/// Builds a [`TextColumn`] entry by entry.
#[derive(Debug)]
struct TextColumnBuilder {
    column: TextColumn,
}

impl TextColumnBuilder {
    fn new(name: &str) -> TextColumnBuilder {
        TextColumnBuilder {
            column: TextColumn {
                name: name.to_string(),
                text: String::new(),
                bounds: vec![0],
                present: Vec::new(),
            },
        }
    }

    /// Adds absent entries until `rows` entries are held.
    fn pad_to(&mut self, rows: usize) {
        let c = &mut self.column;
        let end = c.text.len() as u32;
        c.bounds.resize(rows + 1, end);
        c.present.resize(rows, false);
    }

    fn push(&mut self, value: &str) {
        let c = &mut self.column;
        c.text.push_str(value);
        c.bounds.push(c.text.len() as u32);
        c.present.push(true);
    }

    fn finish(mut self, rows: usize) -> TextColumn {
        self.pad_to(rows);
        self.column
    }
}

/// The field columns of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldColumns {
    pub parser: FieldParser,
    /// Per entry: whether the parser read the line without error.
    pub parsed: Vec<bool>,
    /// Every label name the parser yields on some parsed entry, ascending.
    pub names: Vec<String>,
    pub columns: Vec<FieldColumn>,
    pub texts: Vec<TextColumn>,
    /// Whether the builder was given a test for text values, so `texts` holds every name that
    /// passes it (else names without a dictionary column may have no column only for want of
    /// the test).
    pub with_texts: bool,
}

/// Whether a name with `distinct` values over `present` entries gets a column: when its values
/// repeat (a column of nearly unique values would store the text a second time).
fn worth_a_column(distinct: usize, present: usize) -> bool {
    distinct <= 8 || distinct * 2 <= present
}

/// Builds a block's field columns from each entry's parser output, in entry order.
#[derive(Debug)]
pub struct FieldColumnsBuilder {
    parser: FieldParser,
    parsed: Vec<bool>,
    names: HashMap<String, NameValues>,
    /// Which values a text column may hold; `None`: no text columns.
    text_value: Option<fn(&str) -> bool>,
}

/// One name's values so far: `None` once past [`MAX_COLUMN_VALUES`].
#[derive(Debug, Default)]
struct NameValues {
    dictionary: Option<HashMap<String, u8>>,
    /// Codes of the entries up to the last that has the name.
    codes: Vec<u8>,
    /// The values as text, while every one may go into a text column.
    text: Option<TextColumnBuilder>,
}

impl FieldColumnsBuilder {
    pub fn new(parser: FieldParser) -> FieldColumnsBuilder {
        FieldColumnsBuilder {
            parser,
            parsed: Vec::new(),
            names: HashMap::new(),
            text_value: None,
        }
    }

    /// Also keeps names with too many values for a dictionary as text columns, when every
    /// value passes `text_value` and is at most [`MAX_TEXT_VALUE_LEN`] bytes long.
    pub fn with_text_columns(mut self, text_value: fn(&str) -> bool) -> FieldColumnsBuilder {
        self.text_value = Some(text_value);
        self
    }

    /// Adds the next entry: `None` for a line the parser rejected, else its labels (each
    /// name once).
    pub fn push(&mut self, labels: Option<&[Label]>) {
        let row = self.parsed.len();
        self.parsed.push(labels.is_some());
        for l in labels.unwrap_or_default() {
            if self.names.len() > MAX_NAMES {
                return;
            }
            let values = match self.names.get_mut(l.name.as_str()) {
                Some(v) => v,
                None => self.names.entry(l.name.to_string()).or_insert(NameValues {
                    dictionary: Some(HashMap::new()),
                    codes: Vec::new(),
                    text: self.text_value.map(|_| TextColumnBuilder::new(&l.name)),
                }),
            };
            if let Some(text) = &mut values.text {
                if self
                    .text_value
                    .is_some_and(|ok| l.value.len() <= MAX_TEXT_VALUE_LEN && ok(&l.value))
                {
                    text.pad_to(row);
                    text.push(&l.value);
                } else {
                    values.text = None;
                }
            }
            let Some(dictionary) = &mut values.dictionary else {
                continue;
            };
            let code = match dictionary.get(l.value.as_str()) {
                Some(&code) => code,
                None if dictionary.len() < MAX_COLUMN_VALUES => {
                    let code = dictionary.len() as u8 + 1;
                    dictionary.insert(l.value.to_string(), code);
                    code
                }
                None => {
                    values.dictionary = None;
                    values.codes = Vec::new();
                    continue;
                }
            };
            values.codes.resize(row, 0);
            values.codes.push(code);
        }
    }

    /// The columns; `None` when no line parsed or the lines yield more than [`MAX_NAMES`]
    /// names.
    pub fn finish(self) -> Option<FieldColumns> {
        if self.names.len() > MAX_NAMES || !self.parsed.contains(&true) {
            return None;
        }
        let n = self.parsed.len();
        let mut names: Vec<(String, NameValues)> = self.names.into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        let mut columns = Vec::new();
        let mut texts = Vec::new();
        for (name, values) in &mut names {
            let dictionary = values.dictionary.take().filter(|d| {
                let present = values.codes.iter().filter(|&&c| c != 0).count();
                worth_a_column(d.len(), present)
            });
            let Some(dictionary) = dictionary else {
                if let Some(text) = values.text.take() {
                    texts.push(text.finish(n));
                }
                continue;
            };
            let mut by_code: Vec<(u8, String)> =
                dictionary.into_iter().map(|(v, c)| (c, v)).collect();
            by_code.sort_unstable();
            let mut codes = std::mem::take(&mut values.codes);
            codes.resize(n, 0);
            columns.push(FieldColumn {
                name: name.clone(),
                values: by_code.into_iter().map(|(_, v)| v).collect(),
                codes,
            });
        }
        Some(FieldColumns {
            parser: self.parser,
            parsed: self.parsed,
            names: names.into_iter().map(|(n, _)| n).collect(),
            columns,
            texts,
            with_texts: self.text_value.is_some(),
        })
    }
}

impl FieldColumns {
    pub fn len(&self) -> usize {
        self.parsed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parsed.is_empty()
    }

    /// Whether the parser yields `name` on some parsed entry.
    pub fn has_name(&self, name: &str) -> bool {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok()
    }

    pub fn column(&self, name: &str) -> Option<&FieldColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn text_column(&self, name: &str) -> Option<&TextColumn> {
        self.texts.iter().find(|c| c.name == name)
    }

    /// Approximate heap bytes, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.parsed.len()
            + self.names.iter().map(|n| n.len() + 24).sum::<usize>()
            + self
                .columns
                .iter()
                .map(|c| c.codes.len() + c.values.iter().map(|v| v.len() + 24).sum::<usize>())
                .sum::<usize>()
            + self.texts.iter().map(TextColumn::heap_bytes).sum::<usize>()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let n = self.parsed.len();
        let mut out = Vec::with_capacity(n / 8 + n * self.columns.len() + 256);
        out.push(self.parser.id());
        put_uvarint(&mut out, n as u64);
        let mut bitmap = vec![0u8; n.div_ceil(8)];
        for (i, _) in self.parsed.iter().enumerate().filter(|(_, p)| **p) {
            bitmap[i / 8] |= 1 << (i % 8);
        }
        out.extend_from_slice(&bitmap);
        put_uvarint(&mut out, self.names.len() as u64);
        for name in &self.names {
            put_bytes(&mut out, name.as_bytes());
        }
        put_uvarint(&mut out, self.columns.len() as u64);
        for c in &self.columns {
            let index = self.names.binary_search(&c.name).unwrap_or(0);
            put_uvarint(&mut out, index as u64);
            put_uvarint(&mut out, c.values.len() as u64);
            for v in &c.values {
                put_bytes(&mut out, v.as_bytes());
            }
            out.extend_from_slice(&c.codes);
        }
        if self.with_texts {
            put_uvarint(&mut out, self.texts.len() as u64);
            for c in &self.texts {
                let index = self.names.binary_search(&c.name).unwrap_or(0);
                put_uvarint(&mut out, index as u64);
                for i in 0..n {
                    match c.value(i) {
                        Some(v) => {
                            put_uvarint(&mut out, v.len() as u64 + 1);
                            out.extend_from_slice(v.as_bytes());
                        }
                        None => out.push(0),
                    }
                }
            }
        }
        out
    }

    /// Decodes and validates the columns of a block of `count` entries.
    pub(crate) fn decode(raw: &[u8], count: usize) -> Result<FieldColumns, ChunkError> {
        let corrupt = |what: &str| ChunkError::Corrupt(format!("field columns: {what}"));
        let mut r = Reader::new(raw);
        let parser = FieldParser::from_id(r.u8()?)?;
        if r.len_at_most(count)? != count {
            return Err(corrupt("entry count does not match the block"));
        }
        let bitmap = r.take(count.div_ceil(8))?;
        let parsed = (0..count)
            .map(|i| bitmap[i / 8] & (1 << (i % 8)) != 0)
            .collect();
        let n_names = r.len_at_most(raw.len())?;
        let mut names: Vec<String> = Vec::with_capacity(n_names);
        for _ in 0..n_names {
            let name = r.str()?;
            if names.last().is_some_and(|prev| prev.as_str() >= name) {
                return Err(corrupt("names out of order"));
            }
            names.push(name.to_string());
        }
        let n_columns = r.len_at_most(n_names)?;
        let mut columns = Vec::with_capacity(n_columns);
        for _ in 0..n_columns {
            let name = names[r.len_at_most(n_names.saturating_sub(1))?].clone();
            let n_values = r.len_at_most(MAX_COLUMN_VALUES)?;
            let values = (0..n_values)
                .map(|_| r.str().map(str::to_string))
                .collect::<Result<Vec<_>, _>>()?;
            let codes = r.take(count)?.to_vec();
            if codes.iter().any(|&c| usize::from(c) > n_values) {
                return Err(corrupt("value code out of range"));
            }
            columns.push(FieldColumn {
                name,
                values,
                codes,
            });
        }
        let mut texts = Vec::new();
        let with_texts = !r.is_empty();
        if with_texts {
            let n_texts = r.len_at_most(n_names)?;
            for _ in 0..n_texts {
                let name = &names[r.len_at_most(n_names.saturating_sub(1))?];
                let mut text = TextColumnBuilder::new(name);
                for row in 0..count {
                    match r.len_at_most(MAX_TEXT_VALUE_LEN + 1)? {
                        0 => text.pad_to(row + 1),
                        len => text.push(
                            std::str::from_utf8(r.take(len - 1)?)
                                .map_err(|_| corrupt("text value is not UTF-8"))?,
                        ),
                    }
                }
                texts.push(text.finish(count));
            }
        }
        if !r.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(FieldColumns {
            parser,
            parsed,
            names,
            columns,
            texts,
            with_texts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(rows: &[Option<Vec<(&str, String)>>]) -> Option<FieldColumns> {
        let mut b = FieldColumnsBuilder::new(FieldParser::Json);
        for row in rows {
            let labels: Option<Vec<Label>> = row
                .as_ref()
                .map(|r| r.iter().map(|(n, v)| Label::new(*n, v.as_str())).collect());
            b.push(labels.as_deref());
        }
        b.finish()
    }

    #[test]
    fn columns_hold_low_cardinality_names_and_round_trip() {
        let mut rows = vec![
            None,
            Some(vec![("status", "200".into()), ("id", "0".into())]),
        ];
        for i in 1..=MAX_COLUMN_VALUES {
            rows.push(Some(vec![("status", "500".into()), ("id", i.to_string())]));
        }
        let cols = columns(&rows).unwrap();
        assert_eq!(cols.names, ["id", "status"]);
        assert!(cols.has_name("id") && !cols.has_name("level"));
        // `id` has 256 distinct values: listed, but no column.
        assert!(cols.column("id").is_none());
        let status = cols.column("status").unwrap();
        assert_eq!((status.value(0), status.value(1)), (None, Some("200")));
        assert_eq!(status.value(7), Some("500"));
        assert_eq!(cols.parsed[..2], [false, true]);

        let raw = cols.encode();
        assert_eq!(FieldColumns::decode(&raw, cols.len()).unwrap(), cols);
        assert!(FieldColumns::decode(&raw, cols.len() + 1).is_err());
        for cut in 0..raw.len() {
            assert!(FieldColumns::decode(&raw[..cut], cols.len()).is_err());
        }
    }

    #[test]
    fn text_columns_hold_many_valued_names_whose_values_pass() {
        let digits = |v: &str| v.bytes().all(|b| b.is_ascii_digit());
        let mut b = FieldColumnsBuilder::new(FieldParser::Logfmt).with_text_columns(digits);
        for i in 0..600 {
            let mut row = vec![
                Label::new("ms", i.to_string()),
                Label::new("id", format!("x{i}")),
            ];
            if i == 3 {
                row.push(Label::new("long", "1".repeat(MAX_TEXT_VALUE_LEN + 1)));
            }
            if i % 3 != 0 {
                row.push(Label::new("n", (i * 7).to_string()));
            }
            b.push(Some(&row));
        }
        let cols = b.finish().unwrap();
        assert_eq!(cols.names, ["id", "long", "ms", "n"]);
        // `id` fails the test, `long` is too long: listed, but no column of either kind.
        assert!(cols.text_column("id").is_none() && cols.text_column("long").is_none());
        assert!(cols.column("ms").is_none());
        let ms = cols.text_column("ms").unwrap();
        assert_eq!((ms.value(0), ms.value(599)), (Some("0"), Some("599")));
        let n = cols.text_column("n").unwrap();
        assert_eq!(
            (n.value(0), n.value(1), n.value(599)),
            (None, Some("7"), Some("4193"))
        );

        let raw = cols.encode();
        assert_eq!(FieldColumns::decode(&raw, cols.len()).unwrap(), cols);
        for cut in 0..raw.len() {
            // Cutting exactly before the text columns leaves a valid block without them.
            if let Ok(back) = FieldColumns::decode(&raw[..cut], cols.len()) {
                assert!(!back.with_texts && back.columns == cols.columns);
            }
        }
        let mut bad = raw.clone();
        let at = bad.windows(4).rposition(|w| w == b"4193").unwrap();
        bad[at] = 0xff; // not UTF-8
        assert!(FieldColumns::decode(&bad, cols.len()).is_err());
    }

    #[test]
    fn nothing_parsed_means_no_columns() {
        assert!(columns(&[None, None]).is_none());
    }

    #[test]
    fn bad_codes_and_names_are_corrupt() {
        let cols = columns(&[Some(vec![("a", "x".into()), ("b", "y".into())])]).unwrap();
        let mut raw = cols.encode();
        let last = raw.len() - 1;
        raw[last] = 9; // code 9 of a one-value column
        assert!(FieldColumns::decode(&raw, 1).is_err());
        let swapped = FieldColumns {
            names: vec!["b".into(), "a".into()],
            ..cols
        };
        assert!(FieldColumns::decode(&swapped.encode(), 1).is_err());
    }
}
