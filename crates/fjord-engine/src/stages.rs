//! Pipeline stages: what happens to one log entry after the stream selector, stage by stage,
//! with Loki's exact semantics.
//!
//! A stage takes the entry's time, its current line and its [`LabelsBuilder`], and either keeps
//! the entry (possibly with a new line and labels) or drops it. Parsers add labels and record
//! failures in `__error__`/`__error_details__` without dropping the line. Metric queries run
//! parsers under [`Hints`] that limit extraction to the labels the query needs, which (as in
//! Loki) also decides whether a late parse error is noticed.

use std::borrow::Cow;

use fjord_logql::units::{parse_bytes, parse_go_duration, parse_go_float};
use fjord_model::logfmt::{Decoder, Scan};
use fjord_model::{Label, LabelMatcher};
use regex::bytes::Regex;

use crate::ip::IpPattern;
use crate::label_regex::LabelRegex;
use crate::labels_builder::{
    Category, ERROR_DETAILS_LABEL, ERROR_LABEL, EXTRACTED_SUFFIX, LabelsBuilder,
};
use crate::line_filter::LineFilter;
use crate::pattern::Pattern;
use crate::template_stage::{LabelsFormatter, LineFormatter};
use fjord_model::jsonscan::{self, JsonError, ValueType};

pub const ERR_JSON: &str = "JSONParserErr";
pub const ERR_LOGFMT: &str = "LogfmtParserErr";
pub const ERR_LABEL_FILTER: &str = "LabelFilterErr";
pub const ERR_SAMPLE_EXTRACTION: &str = "SampleExtractionErr";
pub const ERR_TEMPLATE_FORMAT: &str = "TemplateFormatErr";
/// Set by parsers when the query asked to keep errors (`| __error__ != ""` style hints).
pub const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// Comparison of a numeric, duration or bytes label filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn test<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
        }
    }
}

/// A label filter expression (`| status >= 500 and path =~ "/api.*"`).
#[derive(Debug, Clone)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name = "v"`, `!=`, `=~`, `!~` (regexes anchored; `.` does not match a newline).
    String {
        name: String,
        matcher: StringMatch,
    },
    Numeric {
        name: String,
        cmp: Cmp,
        value: f64,
    },
    /// Duration in nanoseconds.
    Duration {
        name: String,
        cmp: Cmp,
        value: i64,
    },
    Bytes {
        name: String,
        cmp: Cmp,
        value: u64,
    },
    /// `name = ip("…")` (`negate` for `!=`).
    Ip {
        name: String,
        negate: bool,
        pattern: IpPattern,
    },
    /// Always true (a matcher that accepts anything).
    Noop,
}

/// The string forms of a label filter.
#[derive(Debug, Clone)]
pub enum StringMatch {
    Eq(String),
    Ne(String),
    Re(LabelRegex),
    Nre(LabelRegex),
}

impl StringMatch {
    fn matches(&self, v: &str) -> bool {
        match self {
            StringMatch::Eq(s) => v == s,
            StringMatch::Ne(s) => v != s,
            StringMatch::Re(r) => r.matches(v.as_bytes()),
            StringMatch::Nre(r) => !r.matches(v.as_bytes()),
        }
    }
}

impl LabelFilter {
    /// Whether the entry passes; numeric conversions that fail set `LabelFilterErr` and pass.
    pub fn process(&self, lbs: &mut LabelsBuilder) -> bool {
        match self {
            LabelFilter::And(a, b) => {
                let l = a.process(lbs);
                let r = b.process(lbs);
                l && r
            }
            LabelFilter::Or(a, b) => a.process(lbs) || b.process(lbs),
            LabelFilter::String { name, matcher } => {
                let v = if name == ERROR_LABEL {
                    lbs.err().to_string()
                } else {
                    lbs.get(name).unwrap_or("").to_string()
                };
                matcher.matches(&v)
            }
            LabelFilter::Numeric { name, cmp, value } => {
                let Some(v) = lbs.get(name).map(str::to_string) else {
                    return false;
                };
                match parse_go_float(&v) {
                    Ok(x) => cmp.test(x, *value),
                    Err(e) => conversion_failed(lbs, &e.to_string()),
                }
            }
            LabelFilter::Duration { name, cmp, value } => {
                let Some(v) = lbs.get(name).map(str::to_string) else {
                    return false;
                };
                match parse_go_duration(&v) {
                    Ok(x) => cmp.test(x, *value),
                    Err(e) => conversion_failed(lbs, &e),
                }
            }
            LabelFilter::Bytes { name, cmp, value } => {
                let Some(v) = lbs.get(name).map(str::to_string) else {
                    return false;
                };
                match parse_bytes(&v) {
                    Ok(x) => cmp.test(x, *value),
                    Err(e) => conversion_failed(lbs, &e),
                }
            }
            LabelFilter::Ip {
                name,
                negate,
                pattern,
            } => {
                if lbs.has_err() {
                    return true;
                }
                let Some(v) = lbs.get(name) else { return false };
                let ip = v.parse::<std::net::IpAddr>().ok();
                let hit =
                    ip.is_some_and(|ip| pattern.contains(&ip)) || pattern.matches_in(v.as_bytes());
                hit != *negate
            }
            LabelFilter::Noop => true,
        }
    }

    /// Names this filter reads (for parser hints).
    pub fn required_names(&self, out: &mut Vec<String>) {
        match self {
            LabelFilter::And(a, b) | LabelFilter::Or(a, b) => {
                a.required_names(out);
                b.required_names(out);
            }
            LabelFilter::String { name, .. }
            | LabelFilter::Numeric { name, .. }
            | LabelFilter::Duration { name, .. }
            | LabelFilter::Bytes { name, .. }
            | LabelFilter::Ip { name, .. } => out.push(name.clone()),
            LabelFilter::Noop => {}
        }
    }
}

fn conversion_failed(lbs: &mut LabelsBuilder, details: &str) -> bool {
    if !lbs.has_err() {
        lbs.set_err(ERR_LABEL_FILTER);
        lbs.set_err_details(details);
    }
    true
}

/// `drop`/`keep` terms: a bare name, or a matcher on a label's value.
#[derive(Debug, Clone)]
pub enum NamedMatcher {
    Name(String),
    Matcher(LabelMatcher),
}

/// A stage of a pipeline.
#[derive(Debug, Clone)]
pub enum Stage {
    LineFilter(Box<LineFilter>),
    Json,
    /// `| json a="x.y", b` — identifiers and their paths (`"[0]"` for array indexes).
    JsonExpr {
        ids: Vec<String>,
        paths: Vec<Vec<String>>,
    },
    Logfmt {
        strict: bool,
        keep_empty: bool,
    },
    /// `| logfmt a="key", b` — identifiers and the keys they read.
    LogfmtExpr {
        exprs: Vec<(String, String)>,
        strict: bool,
    },
    Regexp {
        re: Regex,
        names: Vec<(usize, String)>,
    },
    Pattern(Pattern),
    Unpack,
    LabelFilter(LabelFilter),
    LineFormat(Box<LineFormatter>),
    LabelFormat(Box<LabelsFormatter>),
    Decolorize(Regex),
    Drop(Vec<NamedMatcher>),
    Keep(Vec<NamedMatcher>),
}

/// Which labels parsers should extract in a metric query, and label filters that may stop a
/// parse early (Loki's `ParserHint`).
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// Extract nothing at all.
    pub no_labels: bool,
    /// Only these (empty: everything).
    pub required: Vec<String>,
    pub preserve_error: bool,
    /// Single-label filters consulted as soon as their label is extracted.
    pub filters: Vec<(String, LabelFilter)>,
    /// Labels extracted so far for the current entry.
    extracted: EntryNames,
    /// For each required name, text a key must hold to yield it, when it is one of Loki's
    /// reserved `__…` names ([`witness`]): keys rarely yield those, so a parse can often stop
    /// without them.
    witnesses: Vec<Option<memchr::memmem::Finder<'static>>>,
}

/// For a reserved name `r` (`__error__`), text every key that names label `r` holds, byte for
/// byte: the longest run of letters and digits of `r` without the collision suffix (sanitizing
/// keeps those and turns everything else into `_`). `None` for other names, or when `r` has
/// no such run.
fn witness(r: &str) -> Option<memchr::memmem::Finder<'static>> {
    let base = r.strip_suffix(EXTRACTED_SUFFIX).unwrap_or(r);
    let run = base
        .strip_prefix("__")?
        .split(|c: char| !c.is_ascii_alphanumeric())
        .max_by_key(|run| run.len())
        .filter(|run| !run.is_empty())?;
    Some(memchr::memmem::Finder::new(run).into_owned())
}

/// Names recorded for one entry at a time; the strings' buffers survive [`EntryNames::clear`],
/// so recording the labels of the next entry does not allocate. A parser asks for every name
/// it extracts whether it has it already, so a 128-bit sketch of the names (by length and end
/// bytes) answers most of those questions without comparing strings.
#[derive(Debug, Clone, Default)]
struct EntryNames {
    names: Vec<String>,
    /// `names[..len]` are this entry's; the rest are spare buffers.
    len: usize,
    sketch: u128,
}

impl EntryNames {
    fn sketch_bit(name: &str) -> u128 {
        let b = name.as_bytes();
        let (first, last) = (
            b.first().copied().unwrap_or(0),
            b.last().copied().unwrap_or(0),
        );
        let h = (b.len() as u32)
            .wrapping_mul(31)
            .wrapping_add(u32::from(first).wrapping_mul(7))
            .wrapping_add(u32::from(last));
        1 << (h % 128)
    }

    fn clear(&mut self) {
        self.len = 0;
        self.sketch = 0;
    }

    fn contains(&self, name: &str) -> bool {
        self.sketch & Self::sketch_bit(name) != 0
            && self.names[..self.len].iter().any(|n| n == name)
    }

    fn insert(&mut self, name: &str) {
        if self.contains(name) {
            return;
        }
        self.sketch |= Self::sketch_bit(name);
        match self.names.get_mut(self.len) {
            Some(spare) => {
                spare.clear();
                spare.push_str(name);
            }
            None => self.names.push(name.to_owned()),
        }
        self.len += 1;
    }
}

impl Hints {
    pub fn none() -> Hints {
        Hints::default()
    }

    /// Builds hints as Loki's `NewParserHint` does.
    pub fn new(
        mut required: Vec<String>,
        groups: &[String],
        without: bool,
        no_labels: bool,
        metric_label: Option<&str>,
        stages: &[Stage],
        post: Option<&LabelFilter>,
    ) -> Hints {
        let mut hints = Vec::new();
        required.extend(groups.iter().cloned());
        if let Some(m) = metric_label {
            required.push(m.to_string());
        }
        for l in required {
            if let Some(base) = l.strip_suffix(EXTRACTED_SUFFIX) {
                let base = base.to_string();
                hints.push(l);
                hints.push(base);
            } else {
                hints.push(l);
            }
        }
        let mut uniq: Vec<String> = Vec::new();
        for h in hints {
            if !uniq.contains(&h) {
                uniq.push(h);
            }
        }
        let hints = uniq;
        let mut filters = Vec::new();
        for f in stages
            .iter()
            .filter_map(|s| match s {
                Stage::LabelFilter(f) => Some(f),
                _ => None,
            })
            .chain(post)
        {
            if matches!(f, LabelFilter::And(..) | LabelFilter::Or(..)) {
                continue;
            }
            let mut names = Vec::new();
            f.required_names(&mut names);
            if names.len() == 1 {
                filters.push((names[0].clone(), f.clone()));
            }
        }
        let preserve_error = hints.iter().any(|h| h == ERROR_LABEL);
        let mut out = if no_labels {
            if hints.is_empty() {
                Hints {
                    no_labels: true,
                    ..Default::default()
                }
            } else {
                Hints {
                    required: hints,
                    preserve_error,
                    filters,
                    ..Default::default()
                }
            }
        } else if without || groups.is_empty() {
            Hints {
                filters,
                ..Default::default()
            }
        } else {
            Hints {
                required: hints,
                preserve_error,
                ..Default::default()
            }
        };
        out.witnesses = out.required.iter().map(|r| witness(r)).collect();
        out
    }

    pub fn reset(&mut self) {
        self.extracted.clear();
    }

    /// Whether a parser extracts label `key` at all (a metric query may need only a few).
    pub(crate) fn should_extract(&self, key: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r == key)
    }

    /// Whether a parsed label `plain`, or `plain` with the collision suffix, is extracted.
    fn may_extract(&self, plain: &[u8]) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| names_either(r, plain))
    }

    fn should_extract_prefix(&self, prefix: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r.starts_with(prefix))
    }

    fn extracted(&self, key: &str) -> bool {
        self.extracted.contains(key)
    }

    fn record(&mut self, key: &str) {
        self.extracted.insert(key);
    }

    fn all_required_extracted(&self) -> bool {
        !self.required.is_empty() && self.required.iter().all(|r| self.extracted(r))
    }

    /// Whether a parser that sets no error could still set a required label it has not set,
    /// from a key in `rest` (the part of the line not parsed yet): not if every such label is a
    /// reserved name whose [`witness`] is not in `rest`. With nothing required (extract
    /// everything), anything may follow.
    fn rest_may_yield_required(&self, rest: &[u8]) -> bool {
        self.required.is_empty()
            || self.required.iter().zip(&self.witnesses).any(|(r, w)| {
                !self.extracted(r) && w.as_ref().is_none_or(|w| w.find(rest).is_some())
            })
    }

    fn no_labels(&self) -> bool {
        self.no_labels || self.all_required_extracted()
    }

    /// Whether a parsed label `name` (or `name` with the collision suffix) has a filter hint.
    fn may_be_filtered(&self, name: &[u8]) -> bool {
        self.filters.iter().any(|(n, _)| names_either(n, name))
    }

    fn continue_parsing(&self, name: &str, lbs: &mut LabelsBuilder) -> bool {
        match self.filters.iter().find(|(n, _)| n == name) {
            Some((_, f)) => f.process(lbs),
            None => true,
        }
    }
}

/// Whether label name `n` is `plain` or `plain` with the collision suffix: the two names a
/// parsed field can end up under.
fn names_either(n: &str, plain: &[u8]) -> bool {
    n.as_bytes() == plain || n.strip_suffix(EXTRACTED_SUFFIX).map(str::as_bytes) == Some(plain)
}

/// Sets a parsed label (recording it for hints).
fn set_parsed(lbs: &mut LabelsBuilder, hints: &mut Hints, key: &str, value: &str) {
    lbs.set(Category::Parsed, key, value);
    hints.record(key);
}

fn add_error(lbs: &mut LabelsBuilder, hints: &mut Hints, kind: &str, details: Option<&str>) {
    lbs.set_err(kind);
    if let Some(d) = details {
        lbs.set_err_details(d);
    }
    if hints.preserve_error {
        set_parsed(lbs, hints, PRESERVE_ERROR_LABEL, "true");
    }
}

/// Loki's key sanitizer: trims space, prefixes a leading digit with `_` and replaces every
/// character outside `[a-zA-Z0-9_]` with `_`.
pub fn sanitize_label_key(key: &str, is_prefix: bool) -> String {
    let mut out = String::with_capacity(key.len() + 1);
    sanitize_bytes_into(&mut out, key.as_bytes(), is_prefix);
    out
}

/// Like [`sanitize_label_key`] for raw bytes: invalid UTF-8 becomes one `_` per byte, as Go's
/// rune iteration does.
fn sanitize_bytes_into(out: &mut String, key: &[u8], first: bool) {
    let key = trim_space_bytes(key);
    if key.is_empty() {
        return;
    }
    if first && key[0].is_ascii_digit() {
        out.push('_');
    }
    if key.is_ascii() {
        // One character per byte, without decoding UTF-8.
        out.extend(key.iter().map(|&b| sanitized_char(char::from(b))));
        return;
    }
    for chunk in key.utf8_chunks() {
        out.extend(chunk.valid().chars().map(sanitized_char));
        out.extend(chunk.invalid().iter().map(|_| '_'));
    }
}

/// A character of a label name as sanitizing leaves it: `[a-zA-Z0-9_]` kept, the rest `_`.
fn sanitized_char(c: char) -> char {
    if c.is_ascii_alphanumeric() || c == '_' {
        c
    } else {
        '_'
    }
}

fn trim_space_bytes(b: &[u8]) -> &[u8] {
    // Trimming cannot start or stop at an ASCII byte that is not space (the usual key).
    let kept = |c: &u8| c.is_ascii() && !matches!(c, b'\t'..=b'\r' | b' ');
    if b.first().is_some_and(kept) && b.last().is_some_and(kept) {
        return b;
    }
    match std::str::from_utf8(b) {
        Ok(s) => s.trim().as_bytes(),
        Err(_) => b.trim_ascii(),
    }
}

/// Replaces invalid UTF-8 with spaces, as Loki does for parsed values.
fn clean_value(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) if s.is_ascii() || !s.contains('\u{fffd}') => Cow::Borrowed(s),
        _ => Cow::Owned(String::from_utf8_lossy(v).replace('\u{fffd}', " ")),
    }
}

/// A JSON string value unescaped (empty on a bad escape), invalid UTF-8 as spaces; borrowed
/// from the line when it holds no escape.
fn json_string_text(raw: &[u8]) -> Cow<'_, str> {
    match jsonscan::unescape(raw) {
        Ok(Cow::Borrowed(v)) => clean_value(v),
        Ok(Cow::Owned(v)) => Cow::Owned(clean_value(&v).into_owned()),
        Err(_) => Cow::Borrowed(""),
    }
}

fn json_string_value(raw: &[u8]) -> String {
    json_string_text(raw).into_owned()
}

fn json_value_text(v: &[u8], t: ValueType) -> Cow<'_, str> {
    match t {
        ValueType::String => json_string_text(v),
        ValueType::Number => String::from_utf8_lossy(v),
        ValueType::Boolean => Cow::Borrowed(if v == b"true" { "true" } else { "false" }),
        _ => Cow::Borrowed(""),
    }
}

/// `key` itself when sanitizing would leave it unchanged (the usual JSON key), so it needs no
/// copy.
fn plain_label_name(key: &[u8]) -> Option<&str> {
    is_plain_label_name(key)
        .then(|| std::str::from_utf8(key).ok())
        .flatten()
}

/// Whether `key` is already a valid label name, so sanitizing leaves it as it is.
fn is_plain_label_name(key: &[u8]) -> bool {
    key.first().is_some_and(|b| !b.is_ascii_digit())
        && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

/// Why the JSON walk stopped early.
enum JsonStop {
    Err(JsonError),
    AllFound,
    FilteredOut,
}

impl From<JsonError> for JsonStop {
    fn from(e: JsonError) -> Self {
        JsonStop::Err(e)
    }
}

/// The `| json` parser: flattens nested objects with `_`, skips arrays and nulls.
fn json_parse(line: &[u8], lbs: &mut LabelsBuilder, hints: &mut Hints) -> bool {
    if hints.no_labels() {
        return true;
    }
    match with_json_path(false, |path| json_walk(line, path, lbs, hints)) {
        Ok(()) | Err(JsonStop::AllFound) => true,
        Err(JsonStop::FilteredOut) => false,
        Err(JsonStop::Err(e)) => {
            add_error(lbs, hints, ERR_JSON, Some(&e.to_string()));
            true
        }
    }
}

/// Every label `| json` extracts from `line` when no stream label or structured metadata
/// renames one (`lbs` is a builder of a stream without labels); `None` when the parser reports
/// an error. The compactor stores these as field columns ([`crate::field_columns`]).
pub fn json_fields<'b>(line: &[u8], lbs: &'b mut LabelsBuilder) -> Option<&'b [Label]> {
    lbs.reset();
    with_json_path(false, |path| json_walk(line, path, lbs, &mut Hints::none())).ok()?;
    Some(lbs.labels_in(Category::Parsed))
}

/// Every label `| logfmt` (without flags) extracts from `line` when no stream label or
/// structured metadata renames one (`lbs` is a builder of a stream without labels; `hints` is
/// reused from line to line and must hold no hints). The block cache keeps these as field
/// columns ([`crate::field_columns::query_columns`]).
pub fn logfmt_fields<'b>(
    line: &[u8],
    lbs: &'b mut LabelsBuilder,
    hints: &mut Hints,
) -> &'b [Label] {
    lbs.reset();
    hints.reset();
    logfmt_parse(line, false, false, lbs, hints);
    lbs.labels_in(Category::Parsed)
}

/// Whether `| json` with filter hints certainly drops `line`: the same walk as [`json_parse`],
/// but only labels a filter hint reads are set. Run on an entry's fresh builder; the caller
/// starts the entry afresh before the real parse of a line this lets through.
///
/// Exact because, up to the moment a hint drops the line, the walk visits the same keys in the
/// same order and stops at the same JSON error; label names depend only on the key path and
/// the stream and metadata labels, never on labels parsed before; and a hint reads nothing but
/// its own label and the error state, which only a hint sets. Skipping every other label is
/// what makes it cheap: most lines of a selective filter are dropped here.
fn json_drops(line: &[u8], lbs: &mut LabelsBuilder, hints: &mut Hints) -> bool {
    matches!(
        with_json_path(true, |path| json_walk(line, path, lbs, hints)),
        Err(JsonStop::FilteredOut)
    )
}

/// Where the JSON walk is: the raw keys of the enclosing objects, and the same keys sanitized
/// and joined with `_` as [`sanitized_prefix`] joins them, kept up to date as objects are
/// entered and left, so a nested field's label name is one append. One per thread is reused
/// from line to line ([`with_json_path`]), so entering an object does not allocate.
#[derive(Default)]
struct JsonPath {
    /// The raw keys, back to back; `key_ends[i]` is where key `i` ends.
    raw_keys: Vec<u8>,
    key_ends: Vec<usize>,
    joined: String,
    /// Set only labels a filter hint reads ([`json_drops`]).
    hinted_only: bool,
}

thread_local! {
    static JSON_PATH: std::cell::RefCell<JsonPath> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's [`JsonPath`], emptied and set to `hinted_only`. Not re-entrant:
/// `f` must not parse JSON lines itself (the walk only recurses through [`json_walk`]).
fn with_json_path<R>(hinted_only: bool, f: impl FnOnce(&mut JsonPath) -> R) -> R {
    JSON_PATH.with_borrow_mut(|path| {
        path.raw_keys.clear();
        path.key_ends.clear();
        path.joined.clear();
        path.hinted_only = hinted_only;
        f(path)
    })
}

impl JsonPath {
    fn is_empty(&self) -> bool {
        self.key_ends.is_empty()
    }

    /// Enters object `key`; returns what [`JsonPath::leave`] needs.
    fn enter(&mut self, key: &[u8]) -> usize {
        let mark = self.joined.len();
        self.raw_keys.extend_from_slice(key);
        self.key_ends.push(self.raw_keys.len());
        append_sanitized_part(&mut self.joined, key);
        mark
    }

    fn leave(&mut self, mark: usize) {
        self.key_ends.pop();
        self.raw_keys
            .truncate(self.key_ends.last().copied().unwrap_or(0));
        self.joined.truncate(mark);
    }

    /// The raw keys of the enclosing objects, outermost first.
    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.key_ends.iter().copied());
        starts
            .zip(&self.key_ends)
            .map(|(start, &end)| &self.raw_keys[start..end])
    }
}

/// Appends one key to a sanitized `_`-joined path (keys blank after trimming are skipped).
fn append_sanitized_part(out: &mut String, part: &[u8]) {
    if trim_space_bytes(part).is_empty() {
        return;
    }
    let first = out.is_empty();
    if !first {
        out.push('_');
    }
    sanitize_bytes_into(out, part, first);
}

fn sanitized_prefix<'k>(prefix: impl IntoIterator<Item = &'k [u8]>) -> String {
    let mut out = String::new();
    for part in prefix {
        append_sanitized_part(&mut out, part);
    }
    out
}

fn json_walk(
    data: &[u8],
    path: &mut JsonPath,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) -> Result<(), JsonStop> {
    jsonscan::object_each(data, |key, value, t| -> Result<(), JsonStop> {
        match t {
            ValueType::String | ValueType::Number | ValueType::Boolean => {
                json_label(key, value, t, path, lbs, hints)?
            }
            ValueType::Object => {
                // Objects open: the line's own, each entered one, and this one.
                if path.key_ends.len() + 2 > jsonscan::MAX_OBJECT_DEPTH {
                    return Err(JsonError::TooDeep.into());
                }
                let mark = path.enter(key);
                let res = if hints.should_extract_prefix(&path.joined) {
                    json_walk(value, path, lbs, hints)
                } else {
                    Ok(())
                };
                path.leave(mark);
                return res;
            }
            _ => {}
        }
        if hints.all_required_extracted() {
            return Err(JsonStop::AllFound);
        }
        Ok(())
    })
}

fn json_label(
    key: &[u8],
    value: &[u8],
    t: ValueType,
    path: &mut JsonPath,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) -> Result<(), JsonStop> {
    if path.is_empty() {
        // Most fields of a probed line are not filtered on: rule them out before converting.
        if path.hinted_only && is_plain_label_name(key) && !hints.may_be_filtered(key) {
            return Ok(());
        }
        let mut name = match plain_label_name(key) {
            Some(k) => Cow::Borrowed(k),
            None => {
                let mut k = sanitize_label_key(&String::from_utf8_lossy(key), true);
                if key.is_empty() || k.is_empty() {
                    return Ok(());
                }
                if std::str::from_utf8(key).is_err() {
                    k.clear();
                    sanitize_bytes_into(&mut k, key, true);
                }
                Cow::Owned(k)
            }
        };
        if path.hinted_only && !hints.may_be_filtered(name.as_bytes()) {
            return Ok(());
        }
        if lbs.collides(&name) {
            name.to_mut().push_str(EXTRACTED_SUFFIX);
        }
        return json_extract(&name, value, t, lbs, hints);
    }
    let mark = path.joined.len();
    append_sanitized_part(&mut path.joined, key);
    let name = &path.joined;
    let res = if path.hinted_only && !hints.may_be_filtered(name.as_bytes()) {
        Ok(())
    } else if lbs.collides(name) {
        // Rare: the suffix goes on the last key before sanitizing, as Loki does.
        let mut suffixed = key.to_vec();
        suffixed.extend_from_slice(EXTRACTED_SUFFIX.as_bytes());
        let name = sanitized_prefix(path.keys().chain([&suffixed[..]]));
        json_extract(&name, value, t, lbs, hints)
    } else {
        json_extract(name, value, t, lbs, hints)
    };
    path.joined.truncate(mark);
    res
}

/// Sets the parsed label `name` from a JSON value, if the query needs it.
fn json_extract(
    name: &str,
    value: &[u8],
    t: ValueType,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) -> Result<(), JsonStop> {
    if !hints.should_extract(name) || hints.extracted(name) {
        return Ok(());
    }
    let v = json_value_text(value, t);
    set_parsed(lbs, hints, name, &v);
    if !hints.continue_parsing(name, lbs) {
        return Err(JsonStop::FilteredOut);
    }
    Ok(())
}

fn json_expr_parse(
    line: &[u8],
    ids: &[String],
    paths: &[Vec<String>],
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) {
    if line.is_empty() || hints.no_labels() {
        return;
    }
    if !matches!(line[0], b'"' | b'{' | b'[') {
        add_error(lbs, hints, ERR_JSON, None);
        return;
    }
    let mut matches = 0;
    for (id, path) in ids.iter().zip(paths) {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        let found = jsonscan::get(line, &keys);
        let (data, t) = match found {
            Ok(v) => v,
            Err(JsonError::KeyPathNotFound) => continue,
            Err(e) => {
                add_error(lbs, hints, ERR_JSON, Some(&e.to_string()));
                continue;
            }
        };
        let mut key = id.clone();
        if lbs.collides(&key) {
            key.push_str(EXTRACTED_SUFFIX);
        }
        let v = match t {
            ValueType::Null => String::new(),
            ValueType::Object => String::from_utf8_lossy(data).into_owned(),
            _ => json_string_value(data),
        };
        set_parsed(lbs, hints, &key, &v);
        matches += 1;
    }
    if matches < ids.len() {
        for id in ids {
            if lbs.get(id).is_none() {
                set_parsed(lbs, hints, id, "");
            }
        }
    }
}

fn logfmt_parse(
    line: &[u8],
    strict: bool,
    keep_empty: bool,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) -> bool {
    if hints.no_labels() {
        return true;
    }
    let mut dec = Decoder::new(line);
    while !dec.at_end() {
        let pair = match dec.next_pair() {
            Scan::End => break,
            Scan::Malformed => {
                if strict {
                    break;
                }
                continue;
            }
            Scan::Pair(p) => p,
        };
        let Some(raw_key) = pair.key else { continue };
        // Most keys of a line are not needed: rule them out before converting.
        if is_plain_label_name(raw_key) && !hints.may_extract(raw_key) {
            continue;
        }
        let mut key = match plain_label_name(raw_key) {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(sanitize_label_key(&String::from_utf8_lossy(raw_key), true)),
        };
        if key.is_empty() || !hints.may_extract(key.as_bytes()) {
            continue;
        }
        if lbs.collides(&key) {
            key.to_mut().push_str(EXTRACTED_SUFFIX);
        }
        if !hints.should_extract(&key) || hints.extracted(&key) {
            continue;
        }
        let val = pair
            .value
            .as_deref()
            .map(clean_value)
            .unwrap_or(Cow::Borrowed(""));
        if !keep_empty && val.is_empty() {
            continue;
        }
        set_parsed(lbs, hints, &key, &val);
        if !hints.continue_parsing(&key, lbs) {
            return false;
        }
        // Loki stops here only once every required label is set, and `__error__` (required by
        // `| __error__=""`) never is; but without `strict` nothing later sets an error either,
        // so the rest of the line only matters if it could still set a required label.
        if hints.all_required_extracted() || (!strict && !hints.rest_may_yield_required(dec.rest()))
        {
            break;
        }
    }
    if strict && let Some(e) = dec.error() {
        let msg = e.to_string();
        add_error(lbs, hints, ERR_LOGFMT, Some(&msg));
        if !hints.continue_parsing(ERROR_LABEL, lbs) {
            return false;
        }
    }
    true
}

fn logfmt_expr_parse(
    line: &[u8],
    exprs: &[(String, String)],
    strict: bool,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) {
    if hints.no_labels() {
        return;
    }
    for (id, _) in exprs {
        if !lbs.collides(id) {
            set_parsed(lbs, hints, id, "");
        }
    }
    let mut dec = Decoder::new(line);
    while !dec.at_end() {
        let pair = match dec.next_pair() {
            Scan::End => break,
            Scan::Malformed => {
                if strict {
                    break;
                }
                continue;
            }
            Scan::Pair(p) => p,
        };
        let Some(raw_key) = pair.key else { continue };
        let sanitized = sanitize_label_key(&String::from_utf8_lossy(raw_key), true);
        if sanitized.is_empty() {
            continue;
        }
        let always = exprs.iter().any(|(_, k)| *k == sanitized);
        if !always && (!hints.should_extract(&sanitized) || hints.extracted(&sanitized)) {
            continue;
        }
        let val: String = match pair.value.as_deref() {
            Some(v) if String::from_utf8_lossy(v).contains('\u{fffd}') => String::new(),
            Some(v) => String::from_utf8_lossy(v).into_owned(),
            None => String::new(),
        };
        let mut key = exprs
            .iter()
            .find(|(_, k)| *k == sanitized)
            .map(|(id, _)| id.clone())
            .unwrap_or(sanitized);
        if exprs.iter().any(|(id, _)| *id == key) {
            if lbs.collides(&key) {
                key.push_str(EXTRACTED_SUFFIX);
                if hints.extracted(&key) || !hints.should_extract(&key) {
                    break;
                }
            }
            set_parsed(lbs, hints, &key, &val);
            if hints.all_required_extracted() {
                break;
            }
        }
    }
    if strict && let Some(e) = dec.error() {
        let msg = e.to_string();
        add_error(lbs, hints, ERR_LOGFMT, Some(&msg));
    }
}

fn regexp_parse(
    line: &[u8],
    re: &Regex,
    names: &[(usize, String)],
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) -> bool {
    let Some(caps) = re.captures(line) else {
        return true;
    };
    for (i, name) in names {
        let Some(m) = caps.get(*i) else { continue };
        let mut key = sanitize_label_key(name, true);
        if key.is_empty() {
            continue;
        }
        if lbs.collides(&key) {
            key.push_str(EXTRACTED_SUFFIX);
        }
        if !hints.should_extract(&key) || hints.extracted(&key) {
            continue;
        }
        let v = String::from_utf8_lossy(m.as_bytes()).into_owned();
        set_parsed(lbs, hints, &key, &v);
        if !hints.continue_parsing(&key, lbs) {
            return false;
        }
    }
    true
}

fn pattern_parse(line: &[u8], p: &Pattern, lbs: &mut LabelsBuilder, hints: &mut Hints) -> bool {
    if hints.no_labels() {
        return true;
    }
    let names = p.names();
    // Captures after the last one the query reads need not be matched (a metric query
    // grouping by one capture needs only that one).
    let wanted = names
        .iter()
        .rposition(|n| hints.may_extract(n.as_bytes()))
        .map_or(0, |i| i + 1);
    let mut keep = true;
    p.for_each_capture(line, wanted, |i, m| {
        let plain = &names[i];
        // A capture the query reads under neither of its possible names is skipped before the
        // collision lookup.
        if !hints.may_extract(plain.as_bytes()) {
            return true;
        }
        let name: Cow<'_, str> = if lbs.collides(plain) {
            Cow::Owned(format!("{plain}{EXTRACTED_SUFFIX}"))
        } else {
            Cow::Borrowed(plain)
        };
        if hints.extracted(&name) || !hints.should_extract(&name) {
            return true;
        }
        set_parsed(lbs, hints, &name, &String::from_utf8_lossy(m));
        keep = hints.continue_parsing(&name, lbs);
        keep
    });
    keep
}

/// `| unpack`: the string fields of a JSON object become labels, and `_entry` (if present)
/// becomes the line. Labels are only set for packed lines, as in Loki.
fn unpack<'a>(
    line: Cow<'a, [u8]>,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
) -> (Cow<'a, [u8]>, bool) {
    if line.is_empty() || hints.no_labels() {
        return (line, true);
    }
    if line[0] != b'{' {
        add_error(
            lbs,
            hints,
            ERR_JSON,
            Some("expecting json object(6), but it is not"),
        );
        return (line, true);
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut entry: Option<Vec<u8>> = None;
    let res = jsonscan::object_each::<JsonError>(&line, |key, value, t| {
        if t != ValueType::String {
            return Ok(());
        }
        if key == b"_entry" {
            entry = Some(jsonscan::unescape(value)?.into_owned());
            return Ok(());
        }
        let mut k = String::from_utf8_lossy(key).into_owned();
        if lbs.collides(&k) {
            k.push_str(EXTRACTED_SUFFIX);
        }
        if !hints.should_extract(&k) || hints.extracted(&k) {
            return Ok(());
        }
        fields.push((sanitize_label_key(&k, true), json_string_value(value)));
        Ok(())
    });
    if let Err(e) = res {
        add_error(lbs, hints, ERR_JSON, Some(&e.to_string()));
        return (line, true);
    }
    let Some(entry) = entry else {
        return (line, true);
    };
    for (k, v) in fields {
        set_parsed(lbs, hints, &k, &v);
        if !hints.continue_parsing(&k, lbs) {
            return (Cow::Owned(entry), false);
        }
    }
    (Cow::Owned(entry), true)
}

fn drop_labels(terms: &[NamedMatcher], lbs: &mut LabelsBuilder) {
    for t in terms {
        match t {
            NamedMatcher::Name(n) => match n.as_str() {
                ERROR_LABEL => lbs.reset_err(),
                ERROR_DETAILS_LABEL => lbs.reset_err_details(),
                _ => {
                    if lbs.get(n).is_some() {
                        lbs.del(n);
                    }
                }
            },
            NamedMatcher::Matcher(m) => match m.name.as_str() {
                ERROR_LABEL => {
                    if m.matches(lbs.err()) {
                        lbs.reset_err();
                    }
                }
                ERROR_DETAILS_LABEL => {
                    if m.matches(lbs.err_details()) {
                        lbs.reset_err_details();
                    }
                }
                name => {
                    let v = lbs.get(name).unwrap_or("").to_string();
                    if m.matches(&v) {
                        lbs.del(name);
                    }
                }
            },
        }
    }
}

fn keep_labels(terms: &[NamedMatcher], lbs: &mut LabelsBuilder) {
    if terms.is_empty() {
        return;
    }
    let mut all = Vec::new();
    lbs.unsorted(&mut all);
    for l in all {
        if matches!(
            l.name.as_str(),
            ERROR_LABEL | ERROR_DETAILS_LABEL | PRESERVE_ERROR_LABEL
        ) {
            continue;
        }
        let keep = terms.iter().any(|t| match t {
            NamedMatcher::Name(n) => *n == l.name,
            NamedMatcher::Matcher(m) => m.name == l.name && m.matches(&l.value),
        });
        if !keep {
            lbs.del(&l.name);
        }
    }
}

impl Stage {
    /// Runs the stage; returns the (possibly new) line, or `None` when the entry is dropped.
    pub fn process<'a>(
        &self,
        ts: i64,
        line: Cow<'a, [u8]>,
        lbs: &mut LabelsBuilder,
        hints: &mut Hints,
    ) -> Option<Cow<'a, [u8]>> {
        match self {
            Stage::LineFilter(f) => f.matches(&line).then_some(line),
            Stage::Json => json_parse(&line, lbs, hints).then_some(line),
            Stage::JsonExpr { ids, paths } => {
                json_expr_parse(&line, ids, paths, lbs, hints);
                Some(line)
            }
            Stage::Logfmt { strict, keep_empty } => {
                logfmt_parse(&line, *strict, *keep_empty, lbs, hints).then_some(line)
            }
            Stage::LogfmtExpr { exprs, strict } => {
                logfmt_expr_parse(&line, exprs, *strict, lbs, hints);
                Some(line)
            }
            Stage::Regexp { re, names } => {
                regexp_parse(&line, re, names, lbs, hints).then_some(line)
            }
            Stage::Pattern(p) => pattern_parse(&line, p, lbs, hints).then_some(line),
            Stage::Unpack => {
                let (l, keep) = unpack(line, lbs, hints);
                keep.then_some(l)
            }
            Stage::LabelFilter(f) => f.process(lbs).then_some(line),
            Stage::LineFormat(f) => Some(Cow::Owned(f.format(ts, &line, lbs))),
            Stage::LabelFormat(f) => {
                f.apply(ts, &line, lbs);
                Some(line)
            }
            Stage::Decolorize(re) => Some(match re.replace_all(&line, &b""[..]) {
                Cow::Borrowed(_) => line,
                Cow::Owned(v) => Cow::Owned(v),
            }),
            Stage::Drop(terms) => {
                drop_labels(terms, lbs);
                Some(line)
            }
            Stage::Keep(terms) => {
                keep_labels(terms, lbs);
                Some(line)
            }
        }
    }

    /// Label names this stage reads (Loki's `RequiredLabelNames`), for parser hints.
    pub fn required_names(&self, out: &mut Vec<String>) {
        match self {
            Stage::LabelFilter(f) => f.required_names(out),
            Stage::LineFormat(f) => out.extend(f.referenced_labels()),
            Stage::LabelFormat(f) => out.extend(f.referenced_labels()),
            _ => {}
        }
    }
}

/// The ANSI escape pattern Loki's `decolorize` removes.
pub fn decolorize_regex() -> Regex {
    static ANSI: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        const PATTERN: &str = "[\u{1b}\u{9b}][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\u{7})|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))";
        Regex::new(&fjord_model::goregex::to_rust(PATTERN))
            .expect("the constant ANSI pattern compiles")
    });
    ANSI.clone()
}

/// Structured metadata of an entry, added to a fresh builder state.
fn start_entry(lbs: &mut LabelsBuilder, hints: &mut Hints, metadata: &[Label]) {
    hints.reset();
    start_labels(lbs, metadata);
}

/// An entry's labels as the pipeline starts them: the stream's, then its structured metadata.
pub(crate) fn start_labels(lbs: &mut LabelsBuilder, metadata: &[Label]) {
    lbs.reset();
    if !metadata.is_empty() {
        lbs.add(Category::StructuredMetadata, metadata);
    }
}

/// Whether every one of `filters` (the line filters at a pipeline's head) keeps `line`.
pub(crate) fn line_filters_keep(filters: &[Stage], line: &[u8]) -> bool {
    filters
        .iter()
        .all(|s| matches!(s, Stage::LineFilter(f) if f.matches(line)))
}

/// Runs a pipeline on one entry; `None` when a stage drops it. Line filters at the head of
/// the pipeline read nothing but the line, so they run first, on the raw line: a line they
/// drop never has its labels set up (for `|= "error"` over mostly other lines, that setup was
/// most of the per-line cost). With `json_probe`, a `| json` right after them with filter
/// hints first walks the line setting only the hinted labels ([`json_drops`]); callers that
/// already know the hints keep the line (from field columns) pass false.
pub fn run_pipeline<'a>(
    stages: &[Stage],
    ts: i64,
    line: &'a [u8],
    metadata: &[Label],
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
    json_probe: bool,
) -> Option<Cow<'a, [u8]>> {
    let filters = stages
        .iter()
        .take_while(|s| matches!(s, Stage::LineFilter(_)))
        .count();
    let (filters, rest) = stages.split_at(filters);
    if !line_filters_keep(filters, line) {
        return None;
    }
    start_entry(lbs, hints, metadata);
    if json_probe && matches!(rest.first(), Some(Stage::Json)) && !hints.filters.is_empty() {
        if json_drops(line, lbs, hints) {
            return None;
        }
        start_entry(lbs, hints, metadata);
    }
    let mut cur = Cow::Borrowed(line);
    for stage in rest {
        cur = stage.process(ts, cur, lbs, hints)?;
    }
    Some(cur)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use fjord_model::Labels;
    use std::sync::Arc;

    fn builder() -> LabelsBuilder {
        LabelsBuilder::new(Arc::new(Labels::from_pairs([
            ("app", "api"),
            ("level", "info"),
        ])))
    }

    fn run(stage: &Stage, line: &str) -> (Option<String>, String) {
        let mut lbs = builder();
        let mut hints = Hints::none();
        let out = stage
            .process(0, Cow::Borrowed(line.as_bytes()), &mut lbs, &mut hints)
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        (out, lbs.result().all.to_string())
    }

    #[test]
    fn json_flattens_and_marks_collisions() {
        let (_, labels) = run(
            &Stage::Json,
            r#"{"level":"warn","req":{"path":"/x","ms":12},"tags":["a"],"ok":true,"n":null}"#,
        );
        assert_eq!(
            labels,
            r#"{app="api", level="info", level_extracted="warn", ok="true", req_ms="12", req_path="/x"}"#
        );
        let mut lbs = LabelsBuilder::new(Arc::new(Labels::from_pairs([("req_ms", "1")])));
        let line = br#"{"req":{"ms":12,"sub":{"ms":3}},"req_id":"r"}"#;
        assert!(json_parse(line, &mut lbs, &mut Hints::none()));
        assert_eq!(
            lbs.result().all.to_string(),
            r#"{req_id="r", req_ms="1", req_ms_extracted="12", req_sub_ms="3"}"#
        );
        let (_, labels) = run(&Stage::Json, "not json");
        assert!(labels.contains(r#"__error__="JSONParserErr""#), "{labels}");
        assert!(labels.contains("Value looks like object"), "{labels}");
    }

    #[test]
    fn json_nested_past_the_depth_cap_is_a_parser_error_not_a_stack_overflow() {
        let nested = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
        let (_, labels) = run(&Stage::Json, &nested(jsonscan::MAX_OBJECT_DEPTH));
        let flattened = vec!["a"; jsonscan::MAX_OBJECT_DEPTH].join("_");
        assert!(labels.contains(&format!("{flattened}=\"1\"")), "{labels}");
        let (_, labels) = run(&Stage::Json, &nested(jsonscan::MAX_OBJECT_DEPTH + 1));
        assert!(labels.contains(r#"__error__="JSONParserErr""#), "{labels}");
        assert!(
            labels.contains("Objects nest more than 128 deep"),
            "{labels}"
        );
        // 40,000 levels overflowed a 2 MiB worker stack and aborted the server.
        let deep = nested(40_000);
        let on_a_small_stack = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || run(&Stage::Json, &deep).1)
            .unwrap()
            .join()
            .unwrap();
        assert!(
            on_a_small_stack.contains("Objects nest more than"),
            "{on_a_small_stack}"
        );
    }

    #[test]
    fn logfmt_strict_and_keep_empty() {
        let (_, l) = run(
            &Stage::Logfmt {
                strict: false,
                keep_empty: false,
            },
            "a=1 b= c=\"x y\" bad=\"unterminated",
        );
        assert_eq!(l, r#"{a="1", app="api", c="x y", level="info"}"#);
        let (_, l) = run(
            &Stage::Logfmt {
                strict: false,
                keep_empty: true,
            },
            "b= flag",
        );
        assert_eq!(l, r#"{app="api", b="", flag="", level="info"}"#);
        let (_, l) = run(
            &Stage::Logfmt {
                strict: true,
                keep_empty: false,
            },
            "a=1 b=\"x",
        );
        assert!(l.contains("LogfmtParserErr"), "{l}");
    }

    #[test]
    fn label_filters_convert_and_flag_errors() {
        let f = LabelFilter::Numeric {
            name: "status".into(),
            cmp: Cmp::Ge,
            value: 500.0,
        };
        let mut lbs = builder();
        lbs.set(Category::Parsed, "status", "503");
        assert!(f.process(&mut lbs));
        lbs.set(Category::Parsed, "status", "abc");
        assert!(f.process(&mut lbs), "a failed conversion keeps the line");
        assert_eq!(lbs.err(), ERR_LABEL_FILTER);
        assert_eq!(
            lbs.err_details(),
            "strconv.ParseFloat: parsing \"abc\": invalid syntax"
        );
        let missing = LabelFilter::Numeric {
            name: "nope".into(),
            cmp: Cmp::Gt,
            value: 1.0,
        };
        assert!(!missing.process(&mut builder()));
    }

    #[test]
    fn unpack_only_labels_packed_lines() {
        let (line, labels) = run(&Stage::Unpack, r#"{"_entry":"original line","pod":"p1"}"#);
        assert_eq!(line.as_deref(), Some("original line"));
        assert_eq!(labels, r#"{app="api", level="info", pod="p1"}"#);
        let (line, labels) = run(&Stage::Unpack, r#"{"pod":"p1"}"#);
        assert_eq!(line.as_deref(), Some(r#"{"pod":"p1"}"#));
        assert_eq!(labels, r#"{app="api", level="info"}"#);
    }

    #[test]
    fn drop_and_keep() {
        let mut lbs = builder();
        lbs.set(Category::Parsed, "x", "1");
        lbs.set_err("JSONParserErr");
        keep_labels(&[NamedMatcher::Name("x".into())], &mut lbs);
        assert_eq!(
            lbs.result().all.to_string(),
            r#"{__error__="JSONParserErr", x="1"}"#
        );
        drop_labels(
            &[
                NamedMatcher::Name(ERROR_LABEL.into()),
                NamedMatcher::Matcher(LabelMatcher::eq("x", "1")),
            ],
            &mut lbs,
        );
        assert_eq!(lbs.result().all.to_string(), "{}");
    }

    #[test]
    fn decolorize() {
        let (line, _) = run(
            &Stage::Decolorize(decolorize_regex()),
            "\u{1b}[31mred\u{1b}[0m text",
        );
        assert_eq!(line.as_deref(), Some("red text"));
    }

    #[test]
    fn sanitizing() {
        assert_eq!(sanitize_label_key(" 1bad-key ", true), "_1bad_key");
        assert_eq!(sanitize_label_key("a.b c", true), "a_b_c");
    }

    /// A metric query grouping by some parsed labels sets only those, under the name the
    /// collision rule gives them; with no grouping every label is set. Same for `pattern` and
    /// `logfmt`, which skip unread labels before the collision lookup.
    #[test]
    fn parsers_set_only_the_labels_a_query_reads() {
        let parsers = [
            (
                Stage::Pattern(crate::pattern::Pattern::parser("<ip> <level> <status>").unwrap()),
                "10.0.0.1 warn 500",
            ),
            (
                Stage::Logfmt {
                    strict: false,
                    keep_empty: false,
                },
                "ip=10.0.0.1 level=warn status=500",
            ),
        ];
        let cases: [(&[&str], &str); 4] = [
            (&["status"], r#"{app="api", level="info", status="500"}"#),
            (&["ip"], r#"{app="api", ip="10.0.0.1", level="info"}"#),
            (
                &["level_extracted"],
                r#"{app="api", level="info", level_extracted="warn"}"#,
            ),
            (
                &[],
                r#"{app="api", ip="10.0.0.1", level="info", level_extracted="warn", status="500"}"#,
            ),
        ];
        for (stage, line) in &parsers {
            for (groups, want) in cases {
                let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
                let mut hints = Hints::new(Vec::new(), &groups, false, false, None, &[], None);
                let mut lbs = builder();
                let line = Cow::Borrowed(line.as_bytes());
                assert!(stage.process(0, line, &mut lbs, &mut hints).is_some());
                assert_eq!(
                    lbs.result().all.to_string(),
                    want,
                    "{stage:?} by {groups:?}"
                );
            }
        }
    }

    /// JSON lines that drop, pass, fail to parse before or after the filtered key, repeat it,
    /// collide with a stream or metadata label, or hold an unconvertible value; shared with the
    /// field column tests.
    pub(crate) const JSON_EDGE_LINES: [&str; 12] = [
        r#"{"level":"error","http":{"status":503,"path":"/a"},"ms":"12"}"#,
        r#"{"level":"info","http":{"status":200,"path":"/b"},"ms":"3"}"#,
        r#"{"level":"info","http":{"path":"/c"}}"#,
        r#"{"http":{"status":"abc"},"level":"warn"}"#,
        r#"{"level":"info" "http":{"status":200}}"#,
        r#"{"http":{"status":200},"level":"info" oops}"#,
        r#"{"http":{"status":200},"http_status":"504","app":"x"}"#,
        r#"{"http_status":"502","http":{"status":100}}"#,
        r#"{"app":"web","level":"debug","ms":"900"}"#,
        r#"{"http":{"status":5e2},"trace":{"id":"t1"}}"#,
        "not json at all",
        r#"{"detected_level":"error","http":{"status":500}}"#,
    ];

    /// `run_pipeline` (which lets `json_drops` discard lines first) agrees with running every
    /// stage in turn on lines that drop, pass, fail to parse before or after the filtered key,
    /// repeat it, collide with a stream or metadata label, or hold an unconvertible value.
    #[test]
    fn json_drop_probe_agrees_with_the_full_parse() {
        let lines = JSON_EDGE_LINES;
        let queries = [
            r#"{app="api"} | json | http_status >= 500"#,
            r#"{app="api"} | json | http_status = "200""#,
            r#"{app="api"} | json | http_status >= 500 | ms > 10"#,
            r#"{app="api"} | json | level_extracted = "info""#,
            r#"{app="api"} | json | app_extracted = "x" | line_format "{{.http_status}}""#,
            r#"{app="api"} | json | detected_level_extracted = "error""#,
            r#"{app="api"} | json | __error__ = "" | http_status < 300"#,
            r#"{app="api"} |= "http" | json | http_status != 200 or level = "warn""#,
            r#"{app="api"} | json | trace_id =~ "t.*""#,
        ];
        let metadata = [Label::new("detected_level", "error")];
        for q in queries {
            let sel = fjord_logql::parse_log_selector(q).unwrap();
            let stages = crate::compile::pipeline(&sel).unwrap();
            let mut hints = Hints::new(Vec::new(), &[], false, false, None, &stages, None);
            let (mut with_probe, mut stage_by_stage) = (builder(), builder());
            for line in lines {
                for md in [&metadata[..], &[]] {
                    let probed = run_pipeline(
                        &stages,
                        0,
                        line.as_bytes(),
                        md,
                        &mut with_probe,
                        &mut hints,
                        true,
                    )
                    .map(|l| (l.into_owned(), with_probe.result().all.to_string()));
                    start_entry(&mut stage_by_stage, &mut hints, md);
                    let mut cur = Some(Cow::Borrowed(line.as_bytes()));
                    for stage in &stages {
                        cur =
                            cur.and_then(|l| stage.process(0, l, &mut stage_by_stage, &mut hints));
                    }
                    let full =
                        cur.map(|l| (l.into_owned(), stage_by_stage.result().all.to_string()));
                    assert_eq!(probed, full, "{q} on {line} with metadata {md:?}");
                }
            }
        }
        // The probe does drop lines (and only where the full parse would).
        let sel = fjord_logql::parse_log_selector(queries[0]).unwrap();
        let stages = crate::compile::pipeline(&sel).unwrap();
        let mut hints = Hints::new(Vec::new(), &[], false, false, None, &stages, None);
        let drops = lines.map(|line| {
            let mut lbs = builder();
            start_entry(&mut lbs, &mut hints, &[]);
            json_drops(line.as_bytes(), &mut lbs, &mut hints)
        });
        assert_eq!(
            drops,
            [
                false, true, false, false, false, true, true, false, false, false, false, false
            ]
        );
    }

    #[test]
    fn json_keeps_the_first_value_of_a_repeated_name() {
        let (_, l) = run(
            &Stage::Json,
            r#"{"a":"1","b":{"c":"x"},"a":"2","b_c":"y","n":{"a":{"b":"z"}},"n_a_b":"w"}"#,
        );
        assert_eq!(l, r#"{a="1", app="api", b_c="x", level="info", n_a_b="z"}"#);
    }

    proptest::proptest! {
        // The cases that stop early on a reserved name are a few percent of the generated ones.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// A metric query's hints only narrow what `| logfmt` extracts, stopping early included:
        /// the parsed labels are those of a full parse that the query requires.
        #[test]
        fn logfmt_with_hints_extracts_the_required_part_of_a_full_parse(
            pairs in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "a", "b", "dur", "__error__", "error", "level", "app", "x-y", "x_y",
                        "\u{e9}\u{e9}error\u{e9}\u{e9}", "a_extracted", "2x", "..x_y",
                    ]),
                    proptest::sample::select(vec!["1", "", "\"q x\"", "error", "=bad", "\"a=b\""]),
                ),
                0..8,
            ),
            required in proptest::sample::subsequence(
                vec!["a", "x_y", "__error__", "app_extracted", "level_extracted", "dur", "_2x", "__x_y"],
                0..=4,
            ),
        ) {
            let line: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let line = line.join(" ");
            let stage = Stage::Logfmt { strict: false, keep_empty: false };
            let groups: Vec<String> = required.iter().map(|r| r.to_string()).collect();
            let parsed = |hints: &mut Hints| {
                let mut lbs = builder();
                stage.process(0, Cow::Borrowed(line.as_bytes()), &mut lbs, hints);
                let mut labels: Vec<(String, String)> = lbs
                    .labels_in(Category::Parsed)
                    .iter()
                    .filter(|l| groups.iter().any(|g| *g == l.name))
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                labels.sort();
                (labels, lbs.err().to_string())
            };
            let mut hints = Hints::new(Vec::new(), &groups, false, false, None, &[], None);
            proptest::prop_assert_eq!(parsed(&mut hints), parsed(&mut Hints::none()));
        }
    }

    proptest::proptest! {
        /// The ASCII shortcuts of key sanitizing change nothing: the result is what trimming
        /// Unicode space (ASCII space only in invalid UTF-8) and replacing each character, or
        /// each byte of invalid UTF-8, outside `[a-zA-Z0-9_]` gives.
        #[test]
        fn sanitizing_keys_matches_its_definition(
            key in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(b" _a0.\t\x0b\x85\xc2\xa0".to_vec()),
                ],
                0..12,
            ),
            first: bool,
        ) {
            let trimmed = match std::str::from_utf8(&key) {
                Ok(s) => s.trim().as_bytes(),
                Err(_) => key.trim_ascii(),
            };
            let mut expected = String::new();
            if first && trimmed.first().is_some_and(u8::is_ascii_digit) {
                expected.push('_');
            }
            for chunk in trimmed.utf8_chunks() {
                for c in chunk.valid().chars() {
                    expected.push(if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' });
                }
                expected.extend(chunk.invalid().iter().map(|_| '_'));
            }
            let mut out = String::new();
            sanitize_bytes_into(&mut out, &key, first);
            proptest::prop_assert_eq!(out, expected);
            proptest::prop_assert_eq!(trim_space_bytes(&key), trimmed);
        }
    }
}
