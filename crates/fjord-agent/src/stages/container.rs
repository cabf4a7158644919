//! The container log format stages, `docker` and `cri`.
//!
//! `docker: {}` is Promtail's shorthand for `json{output: log, stream: stream, timestamp:
//! time}` → `labels{stream}` → `timestamp{source: timestamp, format: RFC3339Nano}` →
//! `output{source: output}`; the `log` text keeps its trailing newline, as in Promtail.
//!
//! `cri: {}` is the shorthand for the regex
//! `^(?s)(?P<time>\S+?) (?P<stream>stdout|stderr) (?P<flags>\S+?) (?P<content>.*)$` followed by
//! the same labels/timestamp/output stages on `time` and `content`, then partial-line joining:
//! `P` pieces are held per stream and concatenated until the `F` piece. When more than
//! `max_partial_lines` streams hold pieces, everything held is emitted as it is.
//! `max_partial_line_size` with `max_partial_line_size_truncate` caps a joined line.
//!
//! Both parse the line by hand instead of through the generic stages (same results, no
//! regex or JSON tree per line); a line that does not parse passes through unchanged.

use std::collections::HashMap;

use fjord_model::limits::ByteSize;
use serde::Deserialize;
use serde_json::Value;

use super::labels::labels;
use super::output::output;
use super::timestamp::{TimestampConfig, TimestampStage};
use super::{Entry, NameMap, Out, OutputConfig, Stage, StageError};

/// `cri` config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriConfig {
    pub max_partial_lines: usize,
    pub max_partial_line_size: ByteSize,
    pub max_partial_line_size_truncate: bool,
}

impl Default for CriConfig {
    fn default() -> Self {
        CriConfig {
            max_partial_lines: 100,
            max_partial_line_size: ByteSize(0),
            max_partial_line_size_truncate: false,
        }
    }
}

fn common_tail(time_key: &str, output_key: &str) -> Result<Vec<Box<dyn Stage>>, StageError> {
    let mut m = NameMap::new();
    m.insert("stream".into(), None);
    Ok(vec![
        labels(&m)?,
        Box::new(TimestampStage::new(&TimestampConfig {
            source: time_key.into(),
            format: "RFC3339Nano".into(),
            ..Default::default()
        })?),
        output(&OutputConfig {
            source: output_key.into(),
        })?,
    ])
}

/// The stages `docker: {}` expands to.
pub(crate) fn docker() -> Result<Vec<Box<dyn Stage>>, StageError> {
    let mut v: Vec<Box<dyn Stage>> = vec![Box::new(DockerParse)];
    v.extend(common_tail("timestamp", "output")?);
    Ok(v)
}

/// The stages `cri: {...}` expands to.
pub(crate) fn cri(cfg: &CriConfig) -> Result<Vec<Box<dyn Stage>>, StageError> {
    let mut v: Vec<Box<dyn Stage>> = vec![Box::new(CriParse)];
    v.extend(common_tail("time", "content")?);
    let max_lines = if cfg.max_partial_lines == 0 {
        100
    } else {
        cfg.max_partial_lines
    };
    v.push(Box::new(CriJoin {
        max_lines,
        max_size: cfg.max_partial_line_size.0 as usize,
        truncate: cfg.max_partial_line_size_truncate,
        held: HashMap::new(),
        order: Vec::new(),
    }));
    Ok(v)
}

#[derive(Deserialize)]
struct DockerLine {
    log: Option<Value>,
    stream: Option<Value>,
    time: Option<Value>,
}

struct DockerParse;

impl Stage for DockerParse {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        // Promtail's json stage only accepts an object; anything else leaves the entry as is.
        if let Ok(d) = serde_json::from_str::<DockerLine>(&e.line) {
            for (k, v) in [
                ("output", d.log),
                ("stream", d.stream),
                ("timestamp", d.time),
            ] {
                if let Some(v) = v {
                    e.extracted.insert(k.into(), v);
                }
            }
        }
        out.push(e);
    }
}

/// Splits a CRI line into (time, stream, flags, content).
pub(crate) fn split_cri(line: &str) -> Option<(&str, &str, &str, &str)> {
    let (time, rest) = line.split_once(' ')?;
    if time.is_empty() || time.contains(char::is_whitespace) {
        return None;
    }
    let (stream, rest) = rest.split_once(' ')?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (flags, content) = rest.split_once(' ')?;
    if flags.is_empty() || flags.contains(char::is_whitespace) {
        return None;
    }
    Some((time, stream, flags, content))
}

struct CriParse;

impl Stage for CriParse {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        if let Some((time, stream, flags, content)) = split_cri(&e.line) {
            let fields = [
                ("time", time),
                ("stream", stream),
                ("flags", flags),
                ("content", content),
            ];
            let fields: Vec<(&str, String)> =
                fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
            for (k, v) in fields {
                e.extracted.insert(k.into(), Value::String(v));
            }
        }
        out.push(e);
    }
}

struct CriJoin {
    max_lines: usize,
    max_size: usize,
    truncate: bool,
    held: HashMap<u64, Entry>,
    /// Stream keys in the order their pieces started (emission order on overflow).
    order: Vec<u64>,
}

impl CriJoin {
    fn truncate(truncate: bool, max_size: usize, e: &mut Entry) {
        if truncate && max_size > 0 && e.line.len() > max_size {
            let mut cut = max_size;
            while !e.line.is_char_boundary(cut) {
                cut -= 1;
            }
            e.line.truncate(cut);
        }
    }
}

impl Stage for CriJoin {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        let key = e.stream_key();
        let partial = matches!(e.extracted.get("flags"), Some(Value::String(f)) if f == "P");
        if partial {
            if !self.held.contains_key(&key) && self.held.len() >= self.max_lines {
                tracing::warn!(
                    threshold = self.max_lines,
                    "cri stage: partial lines upperbound exceeded, emitting held lines"
                );
                for k in std::mem::take(&mut self.order) {
                    if let Some(h) = self.held.remove(&k) {
                        out.push(h);
                    }
                }
            }
            match self.held.get_mut(&key) {
                Some(prev) => {
                    prev.line.push_str(&e.line);
                    prev.absorb_acks(&mut e);
                    // Like Promtail, the newest piece's fields (time, labels) win.
                    let mut merged = std::mem::take(prev);
                    merged.ts = e.ts;
                    merged.extracted = e.extracted;
                    merged.metadata = e.metadata;
                    Self::truncate(self.truncate, self.max_size, &mut merged);
                    *prev = merged;
                }
                None => {
                    Self::truncate(self.truncate, self.max_size, &mut e);
                    self.order.push(key);
                    self.held.insert(key, e);
                }
            }
            return;
        }
        if let Some(mut prev) = self.held.remove(&key) {
            self.order.retain(|k| k != &key);
            prev.line.push_str(&e.line);
            e.line = std::mem::take(&mut prev.line);
            e.acks.extend(prev.acks.drain(..));
            Self::truncate(self.truncate, self.max_size, &mut e);
        }
        out.push(e);
    }
    // Held pieces are not flushed at shutdown: their file position is not acknowledged, so
    // they are read again (and joined properly) after a restart.
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn docker_json_file() {
        let mut p = pipeline("[{docker: {}}]");
        let out = p.process(vec![
            entry(r#"{"log":"hello world\n","stream":"stderr","time":"2019-04-30T02:12:41.8443515Z"}"#),
            entry("not json at all"),
        ]);
        assert_eq!(out[0].line, "hello world\n");
        assert_eq!(label(&out[0], "stream"), Some("stderr"));
        assert_eq!(out[0].ts, 1556590361844351500);
        assert_eq!(out[1].line, "not json at all");
        assert_eq!(label(&out[1], "stream"), None);
        assert_eq!(out[1].ts, 1_000);
    }

    #[test]
    fn cri_lines_and_partials() {
        let mut p = pipeline("[{cri: {}}]");
        let out = p.process(vec![
            entry("2019-01-01T01:00:00.000000001Z stderr F full line"),
            entry("2019-01-01T01:00:00.000000002Z stdout P part one "),
            entry("2019-01-01T01:00:00.000000003Z stderr F err in between"),
            entry("2019-01-01T01:00:00.000000004Z stdout P part two "),
            entry("2019-01-01T01:00:00.000000005Z stdout F end"),
            entry("2019-01-01T01:00:00.000000006Z stdout F "),
            entry("garbage"),
        ]);
        let lines: Vec<(&str, Option<&str>, i64)> = out
            .iter()
            .map(|e| (e.line.as_str(), label(e, "stream"), e.ts))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("full line", Some("stderr"), 1546304400000000001),
                ("err in between", Some("stderr"), 1546304400000000003),
                ("part one part two end", Some("stdout"), 1546304400000000005),
                ("", Some("stdout"), 1546304400000000006),
                ("garbage", None, 1_000),
            ]
        );
    }

    #[test]
    fn cri_partial_overflow_and_truncate() {
        let mut p = pipeline(
            "[{cri: {max_partial_lines: 1, max_partial_line_size: 8, max_partial_line_size_truncate: true}}]",
        );
        let mut a = entry_with(&[("f", "a")], "2019-01-01T01:00:00Z stdout P aaaaaa", 1);
        a.labels.insert("f".into(), "a".into());
        let b = entry_with(&[("f", "b")], "2019-01-01T01:00:00Z stdout P bbbbbb", 1);
        let c = entry_with(&[("f", "b")], "2019-01-01T01:00:00Z stdout F cccccc", 1);
        let out = p.process(vec![a, b, c]);
        let lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(lines, vec!["aaaaaa", "bbbbbbcc"]);
    }
}
