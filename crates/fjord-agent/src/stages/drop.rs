//! The `drop` stage: drops entries that meet *all* of its configured conditions (several
//! `drop` stages express OR). Conditions: `source` (one key or a list joined by `separator`)
//! with `value` (equality) or `expression` (Go regex, unanchored); `expression` alone tests
//! the line; `source` alone tests presence; `older_than` tests the entry time against now;
//! `longer_than` the line length in bytes. Dropped entries are counted in
//! `logentry_dropped_lines_total{reason}` (`drop_stage` unless `drop_counter_reason`).

use std::time::Duration;

use fjord_model::limits::ByteSize;
use regex::Regex;
use serde::Deserialize;

use super::regex::go_regex;
use super::{BuildContext, Entry, Out, Stage, StageError, value_string};
use crate::metrics::Metrics;

/// `source` as one key or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Sources {
    One(String),
    Many(Vec<String>),
}

/// `drop` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    pub source: Option<Sources>,
    pub separator: Option<String>,
    pub expression: Option<String>,
    pub value: Option<String>,
    pub older_than: Option<String>,
    pub longer_than: Option<ByteSize>,
    pub drop_counter_reason: Option<String>,
}

pub(crate) struct DropStage {
    sources: Vec<String>,
    separator: String,
    regex: Option<Regex>,
    value: Option<String>,
    older_than: Option<Duration>,
    longer_than: Option<usize>,
    reason: String,
    metrics: std::sync::Arc<Metrics>,
}

impl DropStage {
    pub(crate) fn new(cfg: &DropConfig, ctx: &BuildContext) -> Result<DropStage, StageError> {
        let err = |m: &str| StageError::new("drop", m);
        let sources = match &cfg.source {
            None => Vec::new(),
            Some(Sources::One(s)) => vec![s.clone()],
            Some(Sources::Many(v)) => v.clone(),
        };
        if sources.is_empty()
            && cfg.expression.is_none()
            && cfg.older_than.is_none()
            && cfg.longer_than.is_none()
            && cfg.value.is_none()
        {
            return Err(err(
                "drop stage config must contain at least one of `source`, `expression`, `older_than` or `longer_than`",
            ));
        }
        if cfg.expression.is_some() && cfg.value.is_some() {
            return Err(err(
                "drop stage config cannot have both `value` and `expression`",
            ));
        }
        if cfg.value.is_some() && sources.is_empty() {
            return Err(err("drop stage config using `value` requires `source`"));
        }
        let regex = cfg
            .expression
            .as_deref()
            .map(|e| go_regex("drop", e))
            .transpose()?;
        let older_than = cfg
            .older_than
            .as_deref()
            .map(|d| {
                fjord_model::duration::parse_duration(d)
                    .map_err(|e| StageError::new("drop", format!("invalid older_than: {e}")))
            })
            .transpose()?;
        Ok(DropStage {
            sources,
            separator: cfg.separator.clone().unwrap_or_else(|| ";".into()),
            regex,
            value: cfg.value.clone(),
            older_than,
            longer_than: cfg.longer_than.map(|b| b.0 as usize),
            reason: cfg
                .drop_counter_reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "drop_stage".into()),
            metrics: ctx.metrics.clone(),
        })
    }

    fn should_drop(&self, e: &Entry) -> bool {
        if let Some(d) = self.older_than {
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
            if e.ts >= now.saturating_sub(d.as_nanos() as i64) {
                return false;
            }
        }
        if let Some(n) = self.longer_than
            && e.line.len() <= n
        {
            return false;
        }
        if self.sources.is_empty() {
            if let Some(re) = &self.regex {
                return re.is_match(&e.line);
            }
            return true;
        }
        // Every source must be present.
        let mut vals = Vec::with_capacity(self.sources.len());
        for s in &self.sources {
            match e.extracted.get(s).and_then(value_string) {
                Some(v) => vals.push(v),
                None => return false,
            }
        }
        let joined = vals.join(&self.separator);
        if let Some(v) = &self.value {
            return &joined == v;
        }
        if let Some(re) = &self.regex {
            return re.is_match(&joined);
        }
        true
    }
}

impl Stage for DropStage {
    fn process(&mut self, e: Entry, out: &mut Out) {
        if self.should_drop(&e) {
            self.metrics.dropped_lines(&self.reason);
        } else {
            out.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    fn kept(yaml: &str, e: super::Entry) -> bool {
        pipeline(yaml).process_one(e).len() == 1
    }

    #[test]
    fn table() {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap();
        let lvl = "[{logfmt: {mapping: {level: , app: }}}, {drop: DROP}]";
        let cases: Vec<(&str, super::Entry, bool)> = vec![
            ("{expression: debug}", entry("a debug line"), false),
            ("{expression: debug}", entry("an info line"), true),
            ("{source: level, value: debug}", entry("level=debug"), false),
            ("{source: level, value: debug}", entry("level=info"), true),
            ("{source: level}", entry("level=info"), false),
            ("{source: level}", entry("msg=x"), true),
            (
                "{source: [level, app], separator: '/', value: debug/api}",
                entry("level=debug app=api"),
                false,
            ),
            (
                "{source: [level, app], value: 'debug;api'}",
                entry("level=debug app=web"),
                true,
            ),
            (
                "{source: level, expression: 'deb.*'}",
                entry("level=debug"),
                false,
            ),
            ("{longer_than: 8}", entry("123456789"), false),
            ("{longer_than: 8}", entry("12345678"), true),
            (
                "{older_than: 1h}",
                entry_with(&[], "x", now - 7_200_000_000_000),
                false,
            ),
            ("{older_than: 1h}", entry_with(&[], "x", now), true),
            (
                "{older_than: 1h, longer_than: 100}",
                entry_with(&[], "x", now - 7_200_000_000_000),
                true,
            ),
        ];
        for (cfg, e, want_kept) in cases {
            let yaml = lvl.replace("DROP", cfg);
            assert_eq!(kept(&yaml, e), want_kept, "{cfg}");
        }
    }

    #[test]
    fn counts_reason_and_validates() {
        let mut p = pipeline("[{drop: {expression: x, drop_counter_reason: noisy}}]");
        p.process_one(entry("x"));
        assert!(build_err("[{drop: {}}]").contains("at least one"));
        assert!(build_err("[{drop: {value: a}}]").contains("requires `source`"));
    }
}
