//! The `timestamp` stage: sets the entry's time from an extracted value.
//!
//! `format` is a Go layout, one of Go's named layouts (`RFC3339`, `RFC3339Nano`, `ANSIC`,
//! `UnixDate`, `RubyDate`, `RFC822`, `RFC822Z`, `RFC850`, `RFC1123`, `RFC1123Z`) or `Unix`,
//! `UnixMs`, `UnixUs`, `UnixNs`. `fallback_formats` are tried in order when `format` fails.
//! `location` (an IANA zone) applies to custom layouts whose value has no zone; named layouts
//! ignore it, as in Promtail. A layout without a year gets the current year (the previous one
//! when a December time is read in January, the next one for January read in December).
//!
//! On failure, `action_on_failure: fudge` (the default) sets the time to the last good time of
//! the same stream plus 1ns (or leaves the read time when there is none yet); `skip` leaves the
//! time unchanged.

use std::collections::HashMap;

use chrono::Datelike;
use chrono_tz::Tz;
use serde::Deserialize;

use super::golayout::Layout;
use super::{Entry, Out, Stage, StageError, value_string};

/// `timestamp` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimestampConfig {
    pub source: String,
    pub format: String,
    pub fallback_formats: Vec<String>,
    pub location: Option<String>,
    pub action_on_failure: Option<String>,
}

/// A compiled time parser.
#[derive(Debug, Clone)]
pub(crate) enum TimeParser {
    Unix,
    UnixMs,
    UnixUs,
    UnixNs,
    Rfc3339,
    Layout { layout: Layout, loc: Option<Tz> },
}

fn named(format: &str) -> Option<&'static str> {
    Some(match format {
        "ANSIC" => "Mon Jan _2 15:04:05 2006",
        "UnixDate" => "Mon Jan _2 15:04:05 MST 2006",
        "RubyDate" => "Mon Jan 02 15:04:05 -0700 2006",
        "RFC822" => "02 Jan 06 15:04 MST",
        "RFC822Z" => "02 Jan 06 15:04 -0700",
        "RFC850" => "Monday, 02-Jan-06 15:04:05 MST",
        "RFC1123" => "Mon, 02 Jan 2006 15:04:05 MST",
        "RFC1123Z" => "Mon, 02 Jan 2006 15:04:05 -0700",
        _ => return None,
    })
}

impl TimeParser {
    pub(crate) fn new(format: &str, loc: Option<Tz>) -> TimeParser {
        match format {
            "Unix" => TimeParser::Unix,
            "UnixMs" => TimeParser::UnixMs,
            "UnixUs" => TimeParser::UnixUs,
            "UnixNs" => TimeParser::UnixNs,
            "RFC3339" | "RFC3339Nano" => TimeParser::Rfc3339,
            other => match named(other) {
                Some(l) => TimeParser::Layout {
                    layout: Layout::new(l),
                    loc: None,
                },
                None => TimeParser::Layout {
                    layout: Layout::new(other),
                    loc,
                },
            },
        }
    }

    /// Parses `s` into Unix nanoseconds; `now` supplies the year for layouts without one.
    pub(crate) fn parse(&self, s: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
        let int = |s: &str| s.parse::<i64>().ok();
        match self {
            TimeParser::Unix => {
                if let Some((sec, frac)) = s.split_once('.') {
                    let sec = int(sec)?;
                    let f = int(frac)?;
                    if frac.len() > 18 {
                        return None;
                    }
                    let nsec = (f as f64 * 10f64.powi(9 - frac.len() as i32)) as i64;
                    sec.checked_mul(1_000_000_000)?.checked_add(nsec)
                } else {
                    int(s)?.checked_mul(1_000_000_000)
                }
            }
            TimeParser::UnixMs => int(s)?.checked_mul(1_000_000),
            TimeParser::UnixUs => int(s)?.checked_mul(1_000),
            TimeParser::UnixNs => int(s),
            TimeParser::Rfc3339 => chrono::DateTime::parse_from_rfc3339(s)
                .ok()?
                .timestamp_nanos_opt(),
            TimeParser::Layout { layout, loc } => {
                let p = layout.parse(s, *loc).ok()?;
                if layout.has_year() {
                    return p.unix_nanos();
                }
                if p.year() != 0 {
                    return None;
                }
                let years = match (p.month(), now.month()) {
                    (12, 1) => now.year() - 1,
                    (1, 12) => now.year() + 1,
                    _ => now.year(),
                };
                p.add_years(years)?.unix_nanos()
            }
        }
    }
}

pub(crate) struct TimestampStage {
    source: String,
    parsers: Vec<TimeParser>,
    fudge: bool,
    last: HashMap<u64, i64>,
}

impl TimestampStage {
    pub(crate) fn new(cfg: &TimestampConfig) -> Result<TimestampStage, StageError> {
        let err = |m: String| StageError::new("timestamp", m);
        if cfg.source.is_empty() {
            return Err(err("source cannot be empty".into()));
        }
        if cfg.format.is_empty() {
            return Err(err("format cannot be empty".into()));
        }
        let loc =
            match &cfg.location {
                Some(l) if !l.is_empty() => Some(l.parse::<Tz>().map_err(|_| {
                    err(format!("failed to load location {l:?}: unknown time zone"))
                })?),
                _ => None,
            };
        let fudge = match cfg.action_on_failure.as_deref() {
            None | Some("") | Some("fudge") => true,
            Some("skip") => false,
            Some(o) => {
                return Err(err(format!(
                    "invalid action_on_failure {o:?}: must be fudge or skip"
                )));
            }
        };
        let mut parsers = vec![TimeParser::new(&cfg.format, loc)];
        parsers.extend(cfg.fallback_formats.iter().map(|f| TimeParser::new(f, loc)));
        Ok(TimestampStage {
            source: cfg.source.clone(),
            parsers,
            fudge,
            last: HashMap::new(),
        })
    }

    fn parse(&self, e: &Entry) -> Option<i64> {
        let s = value_string(e.extracted.get(&self.source)?)?;
        let now = chrono::Utc::now();
        self.parsers.iter().find_map(|p| p.parse(&s, now))
    }
}

impl Stage for TimestampStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        match self.parse(&e) {
            Some(ts) => {
                e.ts = ts;
                if self.fudge {
                    self.last.insert(e.stream_key(), ts);
                }
            }
            None if self.fudge => {
                let key = e.stream_key();
                if let Some(last) = self.last.get_mut(&key) {
                    *last += 1;
                    e.ts = *last;
                }
            }
            None => {}
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn ts_of(yaml: &str, fields: &[(&str, &str)]) -> i64 {
        let mut p = pipeline(yaml);
        let mut e = entry("x");
        for (k, v) in fields {
            e.extracted
                .insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
        p.process_one(e)[0].ts
    }

    #[test]
    fn formats() {
        let cases: &[(&str, &str, i64)] = &[
            (
                "RFC3339Nano",
                "2019-04-30T02:12:41.8443515Z",
                1556590361844351500,
            ),
            ("RFC3339", "2019-04-30T02:12:41Z", 1556590361000000000),
            (
                "RFC1123",
                "Tue, 30 Apr 2019 02:12:41 UTC",
                1556590361000000000,
            ),
            (
                "RFC1123Z",
                "Tue, 30 Apr 2019 04:12:41 +0200",
                1556590361000000000,
            ),
            (
                "RubyDate",
                "Tue Apr 30 02:12:41 +0000 2019",
                1556590361000000000,
            ),
            ("Unix", "1556590361", 1556590361000000000),
            ("Unix", "1556590361.844", 1556590361844000000),
            ("UnixMs", "1556590361844", 1556590361844000000),
            ("UnixUs", "1556590361844351", 1556590361844351000),
            ("UnixNs", "1556590361844351500", 1556590361844351500),
            (
                "2006-01-02 15:04:05.000",
                "2019-04-30 02:12:41.844",
                1556590361844000000,
            ),
        ];
        for (format, value, want) in cases {
            let yaml = format!("[{{timestamp: {{source: t, format: '{format}'}}}}]");
            assert_eq!(ts_of(&yaml, &[("t", value)]), *want, "{format} {value}");
        }
    }

    #[test]
    fn fallback_and_location() {
        let yaml = "[{timestamp: {source: t, format: UnixMs, fallback_formats: ['2006-01-02 15:04:05'], location: Europe/Berlin}}]";
        assert_eq!(
            ts_of(yaml, &[("t", "2019-04-30 04:12:41")]),
            1556590361000000000
        );
        // Named layouts ignore the location.
        let yaml = "[{timestamp: {source: t, format: RFC3339, location: Europe/Berlin}}]";
        assert_eq!(
            ts_of(yaml, &[("t", "2019-04-30T02:12:41Z")]),
            1556590361000000000
        );
    }

    #[test]
    fn fudge_and_skip() {
        let mut p = pipeline("[{timestamp: {source: t, format: RFC3339}}]");
        let mut a = entry_with(&[("app", "a")], "1", 5);
        a.extracted
            .insert("t".into(), "2019-04-30T02:12:41Z".into());
        let b = entry_with(&[("app", "a")], "2", 7);
        let c = entry_with(&[("app", "other")], "3", 9);
        let out = p.process(vec![a, b.clone(), b, c]);
        assert_eq!(out[0].ts, 1556590361000000000);
        assert_eq!(out[1].ts, 1556590361000000001);
        assert_eq!(out[2].ts, 1556590361000000002);
        assert_eq!(
            out[3].ts, 9,
            "no known time for this stream: read time stays"
        );
        let mut p =
            pipeline("[{timestamp: {source: t, format: RFC3339, action_on_failure: skip}}]");
        let out = p.process(vec![entry_with(&[], "x", 7)]);
        assert_eq!(out[0].ts, 7);
    }

    #[test]
    fn invalid_config() {
        assert!(
            build_err("[{timestamp: {source: t, format: RFC3339, location: Mars/Base}}]")
                .contains("location")
        );
        assert!(build_err("[{timestamp: {format: RFC3339}}]").contains("source"));
        assert!(
            build_err("[{timestamp: {source: t, format: RFC3339, action_on_failure: panic}}]")
                .contains("action_on_failure")
        );
    }
}
