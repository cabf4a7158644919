//! Log level discovery at ingest (`discover_log_levels`): each entry gets a `detected_level`
//! structured metadata field, which Grafana uses to colour lines and build the level histogram.
//!
//! The level comes, in this order, from an existing `detected_level` (normalised), a level-like
//! stream label, a level-like metadata field, a level-like field of a JSON or logfmt line, or a
//! level word standing alone in the text; otherwise it is `unknown`. This follows Loki's field
//! detector.

use std::borrow::Cow;

use fjord_model::jsonscan::{self, JsonError, ValueType};
use fjord_model::logfmt::{Decoder, Scan};
use fjord_model::{CompactString, Entry, Label, Labels};

/// The metadata name Loki writes.
pub const LEVEL_LABEL: &str = "detected_level";

/// Field names that hold a level, in priority order.
const LEVEL_FIELDS: &[&str] = &[
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// [`LEVEL_FIELDS`] as logfmt keys are matched, ASCII case ignored: each distinct spelling once,
/// lowercase, in the priority order of its first appearance there.
const LOGFMT_LEVEL_KEYS: &[&str] = &[
    "level",
    "log.level",
    "severity",
    "severitytext",
    "lvl",
    "severity_text",
];

/// Level words looked for in plain text, in Loki's order.
const LEVEL_WORDS: &[(&str, &str)] = &[
    ("trace", "trace"),
    ("debug", "debug"),
    ("fatal", "fatal"),
    ("critical", "critical"),
    ("error", "error"),
    ("err", "error"),
    ("warning", "warn"),
    ("warn", "warn"),
    ("info", "info"),
];

/// Spellings of each level Loki recognises (ASCII case ignored), and the name it maps them to.
const LEVEL_SPELLINGS: &[(&str, &str)] = &[
    ("trace", "trace"),
    ("trc", "trace"),
    ("debug", "debug"),
    ("dbg", "debug"),
    ("info", "info"),
    ("inf", "info"),
    ("information", "info"),
    ("warn", "warn"),
    ("wrn", "warn"),
    ("warning", "warn"),
    ("error", "error"),
    ("err", "error"),
    ("critical", "critical"),
    ("fatal", "fatal"),
];

/// Maps spellings to Loki's level names; other values pass through unchanged.
pub fn normalize(level: &str) -> Option<&'static str> {
    normalize_bytes(level.as_bytes())
}

/// [`normalize`] on raw bytes, without allocating (bytes that are not UTF-8 match nothing).
fn normalize_bytes(level: &[u8]) -> Option<&'static str> {
    LEVEL_SPELLINGS
        .iter()
        .find(|(spelling, _)| spelling.as_bytes().eq_ignore_ascii_case(level))
        .map(|&(_, name)| name)
}

/// Adds (or normalises) `detected_level` on the entries of one stream. The stream's labels are
/// looked at once, when the detector is made.
pub struct LevelDetector {
    /// The level a level-like stream label gives every entry, if any.
    from_stream: Option<CompactString>,
}

impl LevelDetector {
    pub fn new(labels: &Labels) -> Self {
        let from_stream = LEVEL_FIELDS
            .iter()
            .find_map(|f| labels.get(f))
            .map(|v| normalize(v).map_or_else(|| v.into(), CompactString::const_new));
        LevelDetector { from_stream }
    }

    /// Adds `detected_level` to one entry, unless it has one (which is normalised instead).
    pub fn add(&self, e: &mut Entry) {
        if let Some(existing) = e.metadata.iter_mut().find(|l| l.name == LEVEL_LABEL) {
            if let Some(n) = normalize(&existing.value) {
                existing.value = CompactString::const_new(n);
            }
            return;
        }
        let level = if let Some(v) = &self.from_stream {
            v.clone()
        } else if let Some(v) = LEVEL_FIELDS
            .iter()
            .find_map(|f| e.metadata.iter().find(|l| l.name == *f))
        {
            normalize(&v.value).map_or_else(|| v.value.clone(), CompactString::const_new)
        } else {
            CompactString::const_new(from_line(&e.line))
        };
        if !level.is_empty() {
            // Most entries arrive without metadata: room for exactly this one label, not the
            // four a first push would make room for (the entry lives until the push is done).
            e.metadata.reserve_exact(1);
            e.metadata.push(Label {
                name: CompactString::const_new(LEVEL_LABEL),
                value: level,
            });
        }
    }
}

fn from_line(line: &[u8]) -> &'static str {
    let field = if looks_like_json(line) {
        json_level(line)
    } else if may_hold_level_pair(line) {
        logfmt_level(line)
    } else {
        return from_words(line);
    };
    field
        .as_deref()
        .and_then(normalize_bytes)
        .unwrap_or_else(|| from_words(line))
}

fn looks_like_json(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    t.first() == Some(&b'{') && t.last() == Some(&b'}')
}

/// The first level-like string field within the first two levels of a JSON object, raw as it
/// appears in the line (Loki's `jsonparser.ObjectEach` walk).
fn json_level(line: &[u8]) -> Option<Cow<'_, [u8]>> {
    struct Found;
    impl From<JsonError> for Found {
        fn from(_: JsonError) -> Self {
            Found
        }
    }
    /// Where the value lies in `data`, as a byte range (the walk's callback only lends it).
    fn walk(data: &[u8], depth: usize) -> Option<std::ops::Range<usize>> {
        let base = data.as_ptr() as usize;
        let mut found = None;
        let _ = jsonscan::object_each::<Found>(data, |key, value, t| {
            let start = value.as_ptr() as usize - base;
            match t {
                ValueType::String if LEVEL_FIELDS.iter().any(|f| f.as_bytes() == key) => {
                    found = Some(start..start + value.len());
                    Err(Found)
                }
                ValueType::Object if depth + 1 < 2 => match walk(value, depth + 1) {
                    Some(r) => {
                        found = Some(start + r.start..start + r.end);
                        Err(Found)
                    }
                    None => Ok(()),
                },
                _ => Ok(()),
            }
        });
        found
    }
    walk(line, 0).map(|r| Cow::Borrowed(&line[r]))
}

/// Whether some `=` follows a byte that can end a level key (every one of [`LOGFMT_LEVEL_KEYS`]
/// ends in `l`, `y` or `t`). When none does, a level key in the line has no value, which gives
/// no level either, so the logfmt scan is skipped and the words decide, as they would after it.
///
/// The `=`s are found with `memchr` (a vector search, ~4× faster over the dataset's lines than
/// a byte loop); a `=` at the start or right after another `=` follows no key.
fn may_hold_level_pair(line: &[u8]) -> bool {
    memchr::memchr_iter(b'=', line)
        .any(|i| i > 0 && matches!(line[i - 1] | 0x20, b'l' | b'y' | b't'))
}

/// The value of the highest-priority level field of a logfmt line (keys compared ignoring case).
fn logfmt_level(line: &[u8]) -> Option<Cow<'_, [u8]>> {
    let mut d = Decoder::new(line);
    let mut best: Option<(usize, Cow<'_, [u8]>)> = None;
    loop {
        match d.next_pair() {
            Scan::End => break,
            Scan::Malformed => break,
            Scan::Pair(p) => {
                if let Some(k) = p.key
                    && let Some(i) = LOGFMT_LEVEL_KEYS
                        .iter()
                        .position(|f| f.as_bytes().eq_ignore_ascii_case(k))
                    && best.as_ref().is_none_or(|(b, _)| i < *b)
                {
                    best = Some((i, p.value.unwrap_or(Cow::Borrowed(&[]))));
                    if i == 0 {
                        break;
                    }
                }
            }
        }
        if d.at_end() {
            break;
        }
    }
    best.map(|(_, v)| v)
}

/// Byte classes for the word scan: [`LEFT_BOUNDARY`], [`RIGHT_BOUNDARY`] and [`WORD_START`] bits.
const BYTE_CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let sets: [(&[u8], u8); 3] = [
        (b" \t\n[({\"'=|", LEFT_BOUNDARY),
        (b" \t\n[]{}():,!\"'=|", RIGHT_BOUNDARY),
        (b"tdfcewiTDFCEWI", WORD_START),
    ];
    let mut s = 0;
    while s < sets.len() {
        let (bytes, bit) = sets[s];
        let mut i = 0;
        while i < bytes.len() {
            class[bytes[i] as usize] |= bit;
            i += 1;
        }
        s += 1;
    }
    class
};
/// May precede a level word.
const LEFT_BOUNDARY: u8 = 1;
/// May follow a level word (the end of the line may too).
const RIGHT_BOUNDARY: u8 = 2;
/// First letter of a word in [`LEVEL_WORDS`], either case.
const WORD_START: u8 = 4;

/// The earliest level word that stands alone in the line (ASCII case ignored): one pass over
/// the bytes with one table lookup each, without lowercasing a copy of the line. Only a word
/// start right after a boundary is compared against the words that begin with its letter.
fn from_words(line: &[u8]) -> &'static str {
    let mut after_boundary = true;
    for (start, &b) in line.iter().enumerate() {
        let class = BYTE_CLASS[b as usize];
        if after_boundary && class & WORD_START != 0 {
            let first = b.to_ascii_lowercase();
            let rest = &line[start..];
            for (word, level) in LEVEL_WORDS {
                let w = word.as_bytes();
                if w[0] == first
                    && rest.len() >= w.len()
                    && rest[1..w.len()].eq_ignore_ascii_case(&w[1..])
                    && line
                        .get(start + w.len())
                        .is_none_or(|&c| BYTE_CLASS[c as usize] & RIGHT_BOUNDARY != 0)
                {
                    return level;
                }
            }
        }
        after_boundary = class & LEFT_BOUNDARY != 0;
    }
    "unknown"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(labels: &[(&str, &str)], line: &str, md: &[(&str, &str)]) -> String {
        let labels = Labels::from_pairs(labels.iter().copied());
        let mut e = Entry::new(0, line.to_string());
        e.metadata = md.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        LevelDetector::new(&labels).add(&mut e);
        e.metadata
            .iter()
            .find(|l| l.name == LEVEL_LABEL)
            .map(|l| l.value.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn sources_in_priority_order() {
        assert_eq!(level(&[("level", "WARN")], "error here", &[]), "warn");
        assert_eq!(level(&[], "x", &[("severity", "Error")]), "error");
        assert_eq!(level(&[], r#"{"msg":"x","level":"DBG"}"#, &[]), "debug");
        assert_eq!(level(&[], r#"{"a":{"lvl":"fatal"}}"#, &[]), "fatal");
        assert_eq!(
            level(&[], "ts=1 level=info msg=\"error later\"", &[]),
            "info"
        );
        assert_eq!(level(&[], "2024 [ERROR] disk full, warning", &[]), "error");
        assert_eq!(level(&[], "terror in the nights", &[]), "unknown");
        assert_eq!(level(&[], "x", &[("detected_level", "WRN")]), "warn");
    }

    #[test]
    fn logfmt_keys_are_the_level_fields_distinct_spellings_in_order() {
        let mut derived: Vec<String> = Vec::new();
        for f in LEVEL_FIELDS {
            let lower = f.to_ascii_lowercase();
            if !derived.contains(&lower) {
                derived.push(lower);
            }
        }
        assert_eq!(derived, LOGFMT_LEVEL_KEYS);
    }

    #[test]
    fn logfmt_keys_match_in_priority_order_ignoring_case() {
        assert_eq!(level(&[], "ts=1 LVL=Warn msg=x", &[]), "warn");
        assert_eq!(level(&[], "lvl=debug LEVEL=error", &[]), "error");
        assert_eq!(level(&[], "Severity_Text=ERR x=1", &[]), "error");
        assert_eq!(level(&[], "SEVERITYTEXT=information", &[]), "info");
        assert_eq!(level(&[], "Log.Level=dbg", &[]), "debug");
        // A value that is no level falls back to the words of the line.
        assert_eq!(level(&[], "level=loud msg=\"fatal crash\"", &[]), "fatal");
        assert_eq!(normalize("WaRnInG"), Some("warn"));
        assert_eq!(normalize_bytes(b"err\xff"), None);
    }

    #[test]
    fn level_keys_end_in_the_letters_the_pair_check_looks_for() {
        for key in LOGFMT_LEVEL_KEYS {
            assert!(may_hold_level_pair(format!("{key}=x").as_bytes()), "{key}");
            assert!(may_hold_level_pair(
                format!("a=1 {}=x", key.to_ascii_uppercase()).as_bytes()
            ));
        }
        assert!(!may_hold_level_pair(b"GET /a?b=1&c=2 level"));
        assert!(!may_hold_level_pair(b"no pairs at all"));
        // A `=` at the start, or right after another, follows no key.
        assert!(!may_hold_level_pair(b"=x a==y"));
        assert!(may_hold_level_pair(b"=x level==y"));
    }

    proptest::proptest! {
        /// Skipping the logfmt scan when no `=` follows a level key's last letter decides
        /// every line as the scan followed by the word fallback does.
        #[test]
        fn skipping_the_logfmt_scan_changes_no_level(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "level", "LVL", "Severity", "log.level", "severity_text", "=", " ", "\"",
                    "info", "ERROR", "warn", "x", "t", "y", "l", "=\"dbg\"", "msg=", "\\",
                ]),
                0..10,
            )
        ) {
            let line = parts.concat();
            let scanned = logfmt_level(line.as_bytes())
                .as_deref()
                .and_then(normalize_bytes)
                .unwrap_or_else(|| from_words(line.as_bytes()));
            proptest::prop_assert_eq!(from_line(line.as_bytes()), scanned, "{:?}", line);
        }
    }

    /// The word scan as the definition reads: every start after a boundary, every word.
    fn from_words_by_definition(line: &[u8]) -> &'static str {
        let left = b" \t\n[({\"'=|";
        let right = b" \t\n[]{}():,!\"'=|";
        for start in 0..line.len() {
            if start > 0 && !left.contains(&line[start - 1]) {
                continue;
            }
            for (word, level) in LEVEL_WORDS {
                let end = start + word.len();
                if line.len() >= end
                    && line[start..end].eq_ignore_ascii_case(word.as_bytes())
                    && line.get(end).is_none_or(|c| right.contains(c))
                {
                    return level;
                }
            }
        }
        "unknown"
    }

    proptest::proptest! {
        #[test]
        fn word_scan_agrees_with_its_definition(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "err", "ERROR", "Warn", "warning", "info", "INF", "trace", "debu", "fatal",
                    "critical", "e", "w", "x", " ", "[", "]", "=", "|", "\"", ":", "s", "\u{e9}",
                ]),
                0..12,
            )
        ) {
            let line = parts.concat();
            proptest::prop_assert_eq!(
                from_words(line.as_bytes()),
                from_words_by_definition(line.as_bytes()),
                "{:?}", line
            );
        }
    }

    #[test]
    fn word_scan_sees_every_level_word_at_every_boundary() {
        for (word, expected) in LEVEL_WORDS {
            assert!(
                BYTE_CLASS[word.as_bytes()[0] as usize] & WORD_START != 0,
                "{word}"
            );
            let upper = word.to_ascii_uppercase();
            for line in [
                word.to_string(),
                format!("x [{upper}] y"),
                format!("a={word}|b"),
                format!("(\"{word}\")"),
                format!("\t{word}:"),
            ] {
                assert_eq!(from_words(line.as_bytes()), *expected, "{line}");
            }
            assert_eq!(from_words(format!("x{word} y").as_bytes()), "unknown");
            assert_eq!(from_words(format!("{word}s").as_bytes()), "unknown");
        }
    }
}
