//! Log level discovery at ingest (`discover_log_levels`): each entry gets a `detected_level`
//! structured metadata field, which Grafana uses to colour lines and build the level histogram.
//!
//! The level comes, in this order, from an existing `detected_level` (normalised), a level-like
//! stream label, a level-like metadata field, a level-like field of a JSON or logfmt line, or a
//! level word standing alone in the text; otherwise it is `unknown`. This follows Loki's field
//! detector.

use fjord_model::logfmt::{Decoder, Scan};
use fjord_model::{Entry, Label, Labels};

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

/// Maps spellings to Loki's level names; other values pass through unchanged.
pub fn normalize(level: &str) -> Option<&'static str> {
    let l = level.to_ascii_lowercase();
    Some(match l.as_str() {
        "trace" | "trc" => "trace",
        "debug" | "dbg" => "debug",
        "info" | "inf" | "information" => "info",
        "warn" | "wrn" | "warning" => "warn",
        "error" | "err" => "error",
        "critical" => "critical",
        "fatal" => "fatal",
        _ => return None,
    })
}

/// Adds (or normalises) `detected_level` on an entry of a stream with `labels`.
pub fn add_detected_level(labels: &Labels, e: &mut Entry) {
    if let Some(existing) = e.metadata.iter_mut().find(|l| l.name == LEVEL_LABEL) {
        if let Some(n) = normalize(&existing.value) {
            existing.value = n.to_string();
        }
        return;
    }
    let from = |get: &dyn Fn(&str) -> Option<String>| LEVEL_FIELDS.iter().find_map(|f| get(f));
    let level = if let Some(v) = from(&|f| labels.get(f).map(str::to_string)) {
        normalize(&v).map(str::to_string).unwrap_or(v)
    } else if let Some(v) = from(&|f| {
        e.metadata
            .iter()
            .find(|l| l.name == f)
            .map(|l| l.value.clone())
    }) {
        normalize(&v).map(str::to_string).unwrap_or(v)
    } else {
        from_line(&e.line).to_string()
    };
    if !level.is_empty() {
        e.metadata.push(Label::new(LEVEL_LABEL, level));
    }
}

fn from_line(line: &[u8]) -> &'static str {
    let field = if looks_like_json(line) {
        json_level(line)
    } else if line.contains(&b'=') {
        logfmt_level(line)
    } else {
        return from_words(line);
    };
    field
        .as_deref()
        .and_then(normalize)
        .unwrap_or_else(|| from_words(line))
}

fn looks_like_json(line: &[u8]) -> bool {
    let t = line.trim_ascii();
    t.first() == Some(&b'{') && t.last() == Some(&b'}')
}

/// The first level-like string field within the first two levels of a JSON object.
fn json_level(line: &[u8]) -> Option<String> {
    fn walk(v: &serde_json::Value, depth: usize) -> Option<String> {
        let obj = v.as_object()?;
        for (k, v) in obj {
            match v {
                serde_json::Value::String(s) if LEVEL_FIELDS.contains(&k.as_str()) => {
                    return Some(s.clone());
                }
                serde_json::Value::Object(_) if depth + 1 < 2 => {
                    if let Some(s) = walk(v, depth + 1) {
                        return Some(s);
                    }
                }
                _ => {}
            }
        }
        None
    }
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    walk(&v, 0)
}

/// The value of the highest-priority level field of a logfmt line (keys compared ignoring case).
fn logfmt_level(line: &[u8]) -> Option<String> {
    let mut d = Decoder::new(line);
    let mut best: Option<(usize, Vec<u8>)> = None;
    loop {
        match d.next_pair() {
            Scan::End => break,
            Scan::Malformed => break,
            Scan::Pair(p) => {
                if let Some(k) = p.key
                    && let Some(i) = LEVEL_FIELDS
                        .iter()
                        .position(|f| f.as_bytes().eq_ignore_ascii_case(k))
                    && best.as_ref().is_none_or(|(b, _)| i < *b)
                {
                    best = Some((i, p.value.map(|v| v.into_owned()).unwrap_or_default()));
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
    best.map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

fn is_left_boundary(b: &[u8], pos: Option<usize>) -> bool {
    match pos {
        None => true,
        Some(p) => b.get(p).is_none_or(|c| b" \t\n[({\"'=|".contains(c)),
    }
}

fn is_right_boundary(b: &[u8], pos: usize) -> bool {
    b.get(pos)
        .is_none_or(|c| b" \t\n[]{}():,!\"'=|".contains(c))
}

/// The earliest level word that stands alone in the line.
fn from_words(line: &[u8]) -> &'static str {
    let lower = line.to_ascii_lowercase();
    let mut best = (lower.len(), "unknown");
    for (word, level) in LEVEL_WORDS {
        let w = word.as_bytes();
        let mut offset = 0;
        while let Some(p) = memchr_find(&lower[offset..], w) {
            let abs = offset + p;
            if is_left_boundary(&lower, abs.checked_sub(1))
                && is_right_boundary(&lower, abs + w.len())
            {
                if abs < best.0 {
                    best = (abs, level);
                }
                break;
            }
            offset = abs + 1;
        }
        if best.0 == 0 {
            break;
        }
    }
    best.1
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(labels: &[(&str, &str)], line: &str, md: &[(&str, &str)]) -> String {
        let labels = Labels::from_pairs(labels.iter().copied());
        let mut e = Entry::new(0, line.to_string());
        e.metadata = md.iter().map(|(k, v)| Label::new(*k, *v)).collect();
        add_detected_level(&labels, &mut e);
        e.metadata
            .iter()
            .find(|l| l.name == LEVEL_LABEL)
            .map(|l| l.value.clone())
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
}
