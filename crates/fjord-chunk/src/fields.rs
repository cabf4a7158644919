//! Field columns: the labels a parser extracts from a block's lines, stored beside the text so
//! a label filter can rule lines out without decompressing or parsing them.
//!
//! What a parser extracts, and when a column may stand in for it, is the query engine's
//! business (`fjord_engine::field_columns`); this module only holds and lays out the result.
//! For every entry it records whether the parser read the line without error; for those
//! entries the columns hold exactly the values the parser yields (when no stream label or
//! structured metadata renames them). `names` lists every label name the parser yields on any
//! such entry, so a name missing from it is known to be absent. Only names whose values repeat
//! get a column (at most 255 distinct, and at most 8 or half as many as the entries that have
//! the name; dictionary codes, one byte per entry): ids, amounts and durations stay in the
//! text, where they already are.
//!
//! Raw layout (compressed as one block section; integers LEB128 varints unless noted):
//! ```text
//! u8 parser (1 = `| json`) | count | parsed bitmap: ceil(count / 8) bytes, entry i is bit i % 8 of byte i / 8
//! n_names | names (length-prefixed, strictly ascending)
//! n_columns | per column: name index | n_values (1..=255) | values (length-prefixed)
//!             | count bytes of codes (0: absent, k: value k - 1)
//! ```

use std::collections::HashMap;

use fjord_model::Label;
use fjord_model::varint::{Reader, put_bytes, put_uvarint};

use crate::ChunkError;

/// Most distinct values a column holds; a name with more stays in the text only.
pub const MAX_COLUMN_VALUES: usize = 255;

/// Most names a block's field list holds; a block whose lines yield more gets no columns.
pub const MAX_NAMES: usize = 1024;

/// The parser whose output the columns hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldParser {
    /// LogQL's `| json` without arguments.
    Json,
}

impl FieldParser {
    fn id(self) -> u8 {
        match self {
            FieldParser::Json => 1,
        }
    }

    fn from_id(id: u8) -> Result<FieldParser, ChunkError> {
        match id {
            1 => Ok(FieldParser::Json),
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

/// The field columns of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldColumns {
    pub parser: FieldParser,
    /// Per entry: whether the parser read the line without error.
    pub parsed: Vec<bool>,
    /// Every label name the parser yields on some parsed entry, ascending.
    pub names: Vec<String>,
    pub columns: Vec<FieldColumn>,
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
}

/// One name's values so far: `None` once past [`MAX_COLUMN_VALUES`].
#[derive(Debug, Default)]
struct NameValues {
    dictionary: Option<HashMap<String, u8>>,
    /// Codes of the entries up to the last that has the name.
    codes: Vec<u8>,
}

impl FieldColumnsBuilder {
    pub fn new(parser: FieldParser) -> FieldColumnsBuilder {
        FieldColumnsBuilder {
            parser,
            parsed: Vec::new(),
            names: HashMap::new(),
        }
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
            let values = match self.names.get_mut(&l.name) {
                Some(v) => v,
                None => self.names.entry(l.name.clone()).or_insert(NameValues {
                    dictionary: Some(HashMap::new()),
                    codes: Vec::new(),
                }),
            };
            let Some(dictionary) = &mut values.dictionary else {
                continue;
            };
            let code = match dictionary.get(&l.value) {
                Some(&code) => code,
                None if dictionary.len() < MAX_COLUMN_VALUES => {
                    let code = dictionary.len() as u8 + 1;
                    dictionary.insert(l.value.clone(), code);
                    code
                }
                None => {
                    *values = NameValues::default();
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
        for (name, values) in &mut names {
            let Some(dictionary) = values.dictionary.take() else {
                continue;
            };
            let present = values.codes.iter().filter(|&&c| c != 0).count();
            if !worth_a_column(dictionary.len(), present) {
                continue;
            }
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

    /// Approximate heap bytes, for cache accounting.
    pub fn heap_bytes(&self) -> usize {
        self.parsed.len()
            + self.names.iter().map(|n| n.len() + 24).sum::<usize>()
            + self
                .columns
                .iter()
                .map(|c| c.codes.len() + c.values.iter().map(|v| v.len() + 24).sum::<usize>())
                .sum::<usize>()
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
        if !r.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(FieldColumns {
            parser,
            parsed,
            names,
            columns,
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
