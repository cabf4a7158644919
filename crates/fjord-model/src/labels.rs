//! Label sets: the identity of a stream.
//!
//! A [`Labels`] is a set of name/value pairs kept sorted by name, with unique names and no empty
//! values (Loki drops empty-valued labels at ingest). Its canonical text form is Loki's:
//! `{a="1", b="2"}` with Go-quoted values, and its [`Fingerprint`] is a hash of the pairs.
//!
//! **Invariant:** two label sets are equal exactly when their canonical strings are equal, and
//! the fingerprint is a function of the canonical pairs alone.

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::gostr;

/// A 64-bit hash of a label set; used as the stream identity inside one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One name/value pair. Names and values are [`CompactString`]s, which hold up to 24 bytes
/// inline: most label names and values, and the `detected_level` every entry gets at ingest,
/// cost no allocation to create, clone or drop.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub name: CompactString,
    pub value: CompactString,
}

impl Label {
    pub fn new(name: impl Into<CompactString>, value: impl Into<CompactString>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// Label sets up to this size are searched by a scan instead of a binary search.
const SCAN_AT_MOST: usize = 12;

/// A sorted set of labels with unique names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// The empty set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a set from pairs: sorts by name, drops empty values, and keeps the last value of a
    /// repeated name. Use [`Labels::parse`] where duplicates must be reported instead.
    pub fn from_pairs<N: Into<CompactString>, V: Into<CompactString>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        // Keep the last occurrence of each name, as map insertion would.
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(out)
    }

    /// Builds a set from pairs keeping empty values (sorted by name; the last value of a
    /// repeated name wins). Query results can carry empty labels (`| logfmt --keep-empty`);
    /// stored streams never do.
    pub fn from_pairs_keep_empty<N: Into<CompactString>, V: Into<CompactString>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        Labels(out)
    }

    /// Wraps pairs that are already sorted by name and unique.
    ///
    /// Callers that cannot promise this must use [`Labels::from_pairs`].
    pub fn from_sorted_unchecked(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name));
        Labels(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes the set holds on the heap: its pairs, and names and values too long to be kept
    /// inline.
    pub fn heap_bytes(&self) -> usize {
        let spilled = |s: &CompactString| {
            if s.is_heap_allocated() {
                s.capacity()
            } else {
                0
            }
        };
        self.0.capacity() * std::mem::size_of::<Label>()
            + self
                .0
                .iter()
                .map(|l| spilled(&l.name) + spilled(&l.value))
                .sum::<usize>()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Query pipelines look names up several times per line in small sets (a stream's
        // labels), where a scan that compares lengths first touches fewer bytes than the
        // binary search's ordered comparisons.
        if self.0.len() <= SCAN_AT_MOST {
            return self
                .0
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.value.as_str());
        }
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.into(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, Label::new(name, value)),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// The stream's hash, stable across processes and versions (it names objects on disk).
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        Fingerprint(h.digest())
    }

    /// Parses a label string as Loki's distributor does (`{a="1", b='2'}`; PromQL metric
    /// syntax without a metric name). Empty values are dropped; a repeated name is an error
    /// reported as [`LabelsError::Duplicate`] so the caller can word it like Loki.
    pub fn parse(s: &str) -> Result<Labels, LabelsError> {
        let pairs = parse_pairs(s)?;
        let mut v: Vec<Label> = pairs.into_iter().filter(|l| !l.value.is_empty()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = v.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelsError::Duplicate(w[0].name.to_string()));
        }
        Ok(Labels(v))
    }
}

impl fmt::Display for Labels {
    /// Loki's canonical form: `{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(self.0.len() * 16 + 2);
        write_label_string(
            &mut s,
            self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        );
        f.write_str(&s)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Writes `{a="1", b="2"}` for pairs in the given order.
pub fn write_label_string<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (n, v)) in pairs.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(n);
        out.push('=');
        gostr::quote_into(out, v);
    }
    out.push('}');
}

/// Whether `name` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Why a label string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("1:{pos}: parse error: {msg}")]
    Syntax { pos: usize, msg: String },
    #[error("duplicate label name: {0}")]
    Duplicate(String),
}

fn syntax(pos: usize, msg: impl Into<String>) -> LabelsError {
    LabelsError::Syntax {
        pos: pos + 1,
        msg: msg.into(),
    }
}

/// Parses `{name="value", …}` into pairs in input order.
fn parse_pairs(s: &str) -> Result<Vec<Label>, LabelsError> {
    let b = s.as_bytes();
    let mut i = skip_ws(b, 0);
    if i >= b.len() || b[i] != b'{' {
        return Err(syntax(i, "unexpected input, expected \"{\""));
    }
    i += 1;
    let mut out = Vec::new();
    loop {
        i = skip_ws(b, i);
        if i < b.len() && b[i] == b'}' {
            i += 1;
            break;
        }
        // name
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        let name = &s[start..i];
        if !is_valid_label_name(name) {
            return Err(syntax(
                start,
                format!(
                    "unexpected character in label name: {:?}",
                    char_at(s, start)
                ),
            ));
        }
        i = skip_ws(b, i);
        if i >= b.len() || b[i] != b'=' {
            return Err(syntax(
                i,
                format!(
                    "unexpected {} in label matching, expected \"=\"",
                    describe(s, i)
                ),
            ));
        }
        i = skip_ws(b, i + 1);
        let (value, next) = read_quoted(s, i)?;
        out.push(Label {
            name: name.into(),
            value: value.into(),
        });
        i = skip_ws(b, next);
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        if i < b.len() && b[i] == b'}' {
            i += 1;
            break;
        }
        return Err(syntax(
            i,
            format!(
                "unexpected {} in label matching, expected \",\" or \"}}\"",
                describe(s, i)
            ),
        ));
    }
    i = skip_ws(b, i);
    if i != b.len() {
        return Err(syntax(
            i,
            format!("unexpected {} after labels", describe(s, i)),
        ));
    }
    Ok(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn char_at(s: &str, i: usize) -> char {
    s[i..].chars().next().unwrap_or('\0')
}

fn describe(s: &str, i: usize) -> String {
    if i >= s.len() {
        "end of input".to_string()
    } else {
        format!("character {:?}", char_at(s, i))
    }
}

/// Reads a quoted string starting at byte `i`; returns the value and the index after it.
fn read_quoted(s: &str, i: usize) -> Result<(String, usize), LabelsError> {
    let b = s.as_bytes();
    let q = match b.get(i) {
        Some(&q @ (b'"' | b'\'' | b'`')) => q,
        _ => {
            return Err(syntax(
                i,
                format!(
                    "unexpected {} in label matching, expected string",
                    describe(s, i)
                ),
            ));
        }
    };
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' && q != b'`' {
            j += 2;
            continue;
        }
        if b[j] == q {
            let lit = &s[i..=j];
            let v = gostr::unquote(lit)
                .map_err(|_| syntax(i, format!("invalid string literal {lit}")))?;
            return Ok((v, j + 1));
        }
        j += 1;
    }
    Err(syntax(i, "unterminated quoted string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_finds_every_name_in_small_and_large_sets() {
        for n in [0, 1, 5, SCAN_AT_MOST, SCAN_AT_MOST + 1, 40] {
            let labels = Labels::from_pairs((0..n).map(|i| (format!("n{i:02}"), format!("v{i}"))));
            for i in 0..n {
                assert_eq!(
                    labels.get(&format!("n{i:02}")),
                    Some(format!("v{i}").as_str())
                );
            }
            for absent in ["", "n", "n0", "n99", "zz"] {
                assert_eq!(labels.get(absent), None, "{absent} in {n}");
            }
        }
    }

    #[test]
    fn parses_and_prints_canonically() {
        let l = Labels::parse(r#"{job="x",app="a\"b", empty=""}"#).unwrap();
        assert_eq!(l.to_string(), r#"{app="a\"b", job="x"}"#);
        assert_eq!(l.get("job"), Some("x"));
        assert_eq!(l.get("empty"), None);
        assert_eq!(Labels::parse("{}").unwrap(), Labels::empty());
        assert_eq!(
            Labels::parse(" { a = 'v' , } ").unwrap().to_string(),
            r#"{a="v"}"#
        );
    }

    #[test]
    fn rejects_bad_label_strings() {
        assert!(Labels::parse("{a=b}").is_err());
        assert!(Labels::parse("a=\"b\"").is_err());
        assert!(Labels::parse("{a.b=\"c\"}").is_err());
        assert!(Labels::parse("{a=\"b\"").is_err());
        assert!(Labels::parse("{a=\"b\"} x").is_err());
        assert_eq!(
            Labels::parse(r#"{a="1", a="2"}"#),
            Err(LabelsError::Duplicate("a".into()))
        );
    }

    #[test]
    fn set_and_remove_keep_order() {
        let mut l = Labels::from_pairs([("b", "2"), ("a", "1")]);
        l.set("c", "3");
        l.set("a", "");
        assert_eq!(l.to_string(), r#"{b="2", c="3"}"#);
        l.remove("b");
        assert_eq!(l.to_string(), r#"{c="3"}"#);
    }

    #[test]
    fn fingerprint_depends_on_content_only() {
        let a = Labels::from_pairs([("x", "1"), ("y", "2")]);
        let b = Labels::parse(r#"{y="2", x="1"}"#).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(
            a.fingerprint(),
            Labels::from_pairs([("x", "12")]).fingerprint()
        );
    }

    proptest::proptest! {
        #[test]
        fn print_then_parse_round_trips(pairs in proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", ".{0,12}"), 0..6)) {
            let l = Labels::from_pairs(pairs);
            proptest::prop_assert_eq!(Labels::parse(&l.to_string()).unwrap(), l);
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = Labels::parse(&s);
        }
    }
}
