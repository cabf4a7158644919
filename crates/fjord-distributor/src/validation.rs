//! Validation of pushed streams and entries, with Loki's rules and messages.
//!
//! Each failure drops only what it concerns (a stream for label problems, an entry for entry
//! problems) and yields a message; everything valid in the same request still goes through.

use fjord_model::labels::{Labels, LabelsError};
use fjord_model::limits::Limits;
use fjord_model::{Entry, Label};

/// A validation failure: Loki's `reason` (metric label) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
    pub entries: usize,
    pub bytes: usize,
}

/// Loki's RFC3339 rendering (`time.RFC3339`: seconds, `Z` or offset).
fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    .unwrap_or_else(|| ns.to_string())
}

fn entries_bytes(entries: &[Entry]) -> usize {
    entries.iter().map(Entry::accounted_bytes).sum()
}

/// Parses and validates a stream's label string.
pub fn validate_labels(raw: &str, entries: &[Entry], limits: &Limits) -> Result<Labels, Invalid> {
    let fail = |reason, message: String| Invalid {
        reason,
        message,
        entries: entries.len(),
        bytes: entries_bytes(entries),
    };
    let labels = match Labels::parse(raw) {
        Ok(l) => l,
        Err(LabelsError::Duplicate(name)) => {
            return Err(fail(
                "duplicate_label_names",
                format!("stream '{raw}' has duplicate label name: '{name}'"),
            ));
        }
        Err(e) => {
            return Err(fail(
                "invalid_labels",
                format!("error parsing labels '{raw}' with error: {e}"),
            ));
        }
    };
    if labels.is_empty() {
        return Err(fail(
            "missing_labels",
            "error at least one label pair is required per stream".into(),
        ));
    }
    let mut names = labels.len();
    if labels.contains("service_name") {
        names -= 1;
    }
    if names > limits.max_label_names_per_series {
        return Err(fail(
            "max_label_names_per_series",
            format!(
                "entry for stream '{raw}' has {names} label names; limit {}",
                limits.max_label_names_per_series
            ),
        ));
    }
    for l in &labels {
        if l.name.len() > limits.max_label_name_length {
            return Err(fail(
                "label_name_too_long",
                format!("stream '{raw}' has label name too long: '{}'", l.name),
            ));
        }
        if l.value.len() > limits.max_label_value_length {
            return Err(fail(
                "label_value_too_long",
                format!("stream '{raw}' has label value too long: '{}'", l.value),
            ));
        }
    }
    Ok(labels)
}

/// Adds `service_name` from the first configured label that is present, as Loki does.
pub fn discover_service_name(labels: &mut Labels, limits: &Limits) {
    if limits.discover_service_name.is_empty() || labels.contains("service_name") {
        return;
    }
    let value = limits
        .discover_service_name
        .iter()
        .find_map(|n| labels.get(n).filter(|v| !v.is_empty()))
        .unwrap_or("unknown_service")
        .to_string();
    labels.set("service_name", &value);
}

/// The bounds an entry's timestamp must respect, fixed once per request.
#[derive(Debug, Clone, Copy)]
pub struct TimeBounds {
    /// Oldest acceptable timestamp, when old samples are rejected.
    pub oldest: Option<i64>,
    /// Newest acceptable timestamp.
    pub newest: i64,
}

impl TimeBounds {
    pub fn new(now_ns: i64, limits: &Limits) -> Self {
        let ns = |d: std::time::Duration| d.as_nanos().min(i64::MAX as u128) as i64;
        TimeBounds {
            oldest: limits
                .reject_old_samples
                .then(|| now_ns.saturating_sub(ns(limits.reject_old_samples_max_age))),
            newest: now_ns.saturating_add(ns(limits.creation_grace_period)),
        }
    }
}

/// Validates one entry in place (it may be truncated or have metadata names normalised).
pub fn validate_entry(
    e: &mut Entry,
    stream: &str,
    bounds: TimeBounds,
    limits: &Limits,
) -> Result<(), Invalid> {
    let fail = |reason, message: String, e: &Entry| Invalid {
        reason,
        message,
        entries: 1,
        bytes: e.accounted_bytes(),
    };
    if let Some(oldest) = bounds.oldest
        && e.ts < oldest
    {
        return Err(fail(
            "greater_than_max_sample_age",
            format!(
                "entry for stream '{stream}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                rfc3339(e.ts),
                rfc3339(oldest)
            ),
            e,
        ));
    }
    if e.ts > bounds.newest {
        return Err(fail(
            "too_far_in_future",
            format!(
                "entry for stream '{stream}' has timestamp too new: {}",
                rfc3339(e.ts)
            ),
            e,
        ));
    }
    let max_line = limits.max_line_size.0 as usize;
    if max_line != 0 && e.line.len() > max_line {
        if limits.max_line_size_truncate {
            let mut cut = max_line;
            while cut > 0 && cut < e.line.len() && (e.line[cut] & 0xC0) == 0x80 {
                cut -= 1;
            }
            e.line.truncate(cut);
        } else {
            return Err(fail(
                "line_too_long",
                format!(
                    "max entry size '{max_line}' bytes exceeded for stream '{stream}' while adding an entry with length '{}' bytes",
                    e.line.len()
                ),
                e,
            ));
        }
    }
    if !e.metadata.is_empty() {
        if !limits.allow_structured_metadata {
            return Err(fail(
                "disallowed_structured_metadata",
                format!(
                    "stream '{stream}' includes structured metadata, but this feature is disallowed. Please see `limits_config.allow_structured_metadata` or contact your Loki administrator to enable it"
                ),
                e,
            ));
        }
        let size = e.metadata_bytes();
        let max = limits.max_structured_metadata_size.0 as usize;
        if max != 0 && size > max {
            return Err(fail(
                "structured_metadata_too_large",
                format!(
                    "stream '{stream}' has structured metadata too large: '{size}' bytes, limit: '{max}' bytes. Please see `limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it"
                ),
                e,
            ));
        }
        let count = e.metadata.len();
        let max = limits.max_structured_metadata_entries_count;
        if max != 0 && count > max {
            return Err(fail(
                "structured_metadata_too_many",
                format!(
                    "stream '{stream}' has too many structured metadata labels: '{count}', limit: '{max}'. Please see `limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to increase it"
                ),
                e,
            ));
        }
        normalize_metadata_names(&mut e.metadata);
    }
    Ok(())
}

/// Makes structured metadata names Prometheus-safe: invalid characters become `_`, and a name
/// starting with a digit gets a `key_` prefix.
fn normalize_metadata_names(md: &mut [Label]) {
    for l in md.iter_mut() {
        if fjord_model::labels::is_valid_label_name(&l.name) {
            continue;
        }
        let mut n: String = l
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if n.starts_with(|c: char| c.is_ascii_digit()) {
            n.insert_str(0, "key_");
        }
        if n.is_empty() {
            n = "_".into();
        }
        l.name = n.into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_model::limits::ByteSize;

    fn e(ts: i64, line: &str) -> Entry {
        Entry::new(ts, line.to_string())
    }

    #[test]
    fn label_errors_use_lokis_messages() {
        let l = Limits::default();
        let err = validate_labels("{}", &[], &l).unwrap_err();
        assert_eq!(
            err.message,
            "error at least one label pair is required per stream"
        );
        let err = validate_labels("{a=\"1\", a=\"2\"}", &[], &l).unwrap_err();
        assert_eq!(
            err.message,
            "stream '{a=\"1\", a=\"2\"}' has duplicate label name: 'a'"
        );
        let err = validate_labels("{a.b=\"1\"}", &[], &l).unwrap_err();
        assert!(
            err.message
                .starts_with("error parsing labels '{a.b=\"1\"}' with error: "),
            "{}",
            err.message
        );
        let many: Vec<String> = (0..16).map(|i| format!("l{i}=\"v\"")).collect();
        let raw = format!("{{{}}}", many.join(", "));
        let err = validate_labels(&raw, &[], &l).unwrap_err();
        assert_eq!(
            err.message,
            format!("entry for stream '{raw}' has 16 label names; limit 15")
        );
        let long = format!("{{a=\"{}\"}}", "v".repeat(2049));
        assert_eq!(
            validate_labels(&long, &[], &l).unwrap_err().reason,
            "label_value_too_long"
        );
    }

    #[test]
    fn service_name_discovery() {
        let l = Limits::default();
        let mut labels = Labels::from_pairs([("app", "api"), ("job", "x")]);
        discover_service_name(&mut labels, &l);
        assert_eq!(labels.get("service_name"), Some("api"));
        let mut labels = Labels::from_pairs([("foo", "bar")]);
        discover_service_name(&mut labels, &l);
        assert_eq!(labels.get("service_name"), Some("unknown_service"));
    }

    #[test]
    fn entry_errors_use_lokis_messages() {
        let mut l = Limits::default();
        let now = 1_705_312_800_000_000_000;
        let b = TimeBounds::new(now, &l);
        let err = validate_entry(
            &mut e(now - 8 * 86_400_000_000_000, "x"),
            "{a=\"b\"}",
            b,
            &l,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "entry for stream '{a=\"b\"}' has timestamp too old: 2024-01-07T10:00:00Z, oldest acceptable timestamp is: 2024-01-08T10:00:00Z"
        );
        let err =
            validate_entry(&mut e(now + 11 * 60_000_000_000, "x"), "{a=\"b\"}", b, &l).unwrap_err();
        assert_eq!(
            err.message,
            "entry for stream '{a=\"b\"}' has timestamp too new: 2024-01-15T10:11:00Z"
        );
        l.max_line_size = ByteSize(4);
        let err = validate_entry(&mut e(now, "12345"), "{a=\"b\"}", b, &l).unwrap_err();
        assert_eq!(
            err.message,
            "max entry size '4' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '5' bytes"
        );
        l.max_line_size_truncate = true;
        let mut entry = e(now, "12345");
        validate_entry(&mut entry, "{a=\"b\"}", b, &l).unwrap();
        assert_eq!(&entry.line[..], b"1234");
    }

    #[test]
    fn metadata_names_are_normalised() {
        let mut md = vec![
            Label::new("trace.id", "1"),
            Label::new("1x", "2"),
            Label::new("ok", "3"),
        ];
        normalize_metadata_names(&mut md);
        let names: Vec<&str> = md.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["trace_id", "key_1x", "ok"]);
    }
}
