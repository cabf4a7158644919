//! The `match` stage: runs nested stages only on entries that a LogQL selector matches.
//!
//! `selector` is a stream selector with optional line filters (`{app="api"} |= "error"`),
//! parsed by `fjord-logql` exactly as Loki parses it. With `action: keep` (the default)
//! matching entries go through the nested `stages` and the others pass unchanged; with `action:
//! drop` matching entries are dropped and counted in `logentry_dropped_lines_total{reason}`
//! (`match_stage` unless `drop_counter_reason`).

use std::sync::Arc;
use std::time::Instant;

use fjord_engine::line_filter::LineFilter;
use fjord_logql::LabelMatcher;
use serde::Deserialize;

use super::{BuildContext, Entry, Out, Pipeline, Stage, StageConfig, StageError};
use crate::metrics::Metrics;

/// `match` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    pub selector: String,
    pub pipeline_name: Option<String>,
    pub action: Option<String>,
    pub drop_counter_reason: Option<String>,
    pub stages: Vec<StageConfig>,
}

pub(crate) struct MatchStage {
    matchers: Vec<LabelMatcher>,
    filters: Vec<LineFilter>,
    /// `None` for `action: drop`.
    pipeline: Option<Pipeline>,
    reason: String,
    metrics: Arc<Metrics>,
}

impl MatchStage {
    pub(crate) fn new(cfg: &MatchConfig, ctx: &BuildContext) -> Result<MatchStage, StageError> {
        let err = |m: String| StageError::new("match", m);
        if cfg.pipeline_name.as_deref() == Some("") {
            return Err(err(
                "match stage pipeline name can be omitted but cannot be an empty string".into(),
            ));
        }
        if cfg.selector.is_empty() {
            return Err(err("selector statement required for match stage".into()));
        }
        let drop = match cfg.action.as_deref() {
            None | Some("") | Some("keep") => false,
            Some("drop") => true,
            Some(_) => return Err(err("match stage action should be 'keep' or 'drop'".into())),
        };
        if !drop && cfg.stages.is_empty() {
            return Err(err(
                "match stage requires at least one additional stage to be defined in '- stages'"
                    .into(),
            ));
        }
        if drop && !cfg.stages.is_empty() {
            return Err(err(
                "match stage configured to drop entries cannot contains stages".into(),
            ));
        }
        let sel = fjord_logql::parse_log_selector(&cfg.selector)
            .map_err(|e| err(format!("invalid selector syntax for match stage: {e}")))?;
        let mut filters = Vec::new();
        for st in &sel.stages {
            match st {
                fjord_logql::Stage::LineFilters(fs) => {
                    for f in fs {
                        filters.push(
                            fjord_engine::compile::line_filter(f)
                                .map_err(|e| err(format!("error parsing pipeline: {e}")))?,
                        );
                    }
                }
                _ => {
                    return Err(err(format!(
                        "selector {:?}: only line filters may follow the stream selector",
                        cfg.selector
                    )));
                }
            }
        }
        let pipeline = if drop {
            None
        } else {
            Some(
                Pipeline::new(&cfg.stages, ctx)
                    .map_err(|e| err(format!("match stage failed to create pipeline: {e}")))?,
            )
        };
        Ok(MatchStage {
            matchers: sel.matchers,
            filters,
            pipeline,
            reason: cfg
                .drop_counter_reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "match_stage".into()),
            metrics: ctx.metrics.clone(),
        })
    }

    fn matches(&self, e: &Entry) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(e.labels.get(&m.name).map(String::as_str).unwrap_or("")))
            && self.filters.iter().all(|f| f.matches(e.line.as_bytes()))
    }
}

impl Stage for MatchStage {
    fn process(&mut self, e: Entry, out: &mut Out) {
        if !self.matches(&e) {
            out.push(e);
            return;
        }
        match &mut self.pipeline {
            Some(p) => out.extend(p.process_one(e)),
            None => self.metrics.dropped_lines(&self.reason),
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Out) {
        if let Some(p) = &mut self.pipeline {
            out.extend(p.tick(now));
        }
    }

    fn flush(&mut self, out: &mut Out) {
        if let Some(p) = &mut self.pipeline {
            out.extend(p.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn keep_runs_nested_stages() {
        let mut p = pipeline(
            r#"
- match:
    selector: '{app="api"} |= "error" != "ignore"'
    stages:
      - regex: {expression: 'code=(?P<code>\d+)'}
      - labels: {code: }
"#,
        );
        let out = p.process(vec![
            entry_with(&[("app", "api")], "error code=500", 1),
            entry_with(&[("app", "api")], "info code=200", 2),
            entry_with(&[("app", "web")], "error code=501", 3),
            entry_with(&[("app", "api")], "error code=502 ignore", 4),
        ]);
        let codes: Vec<Option<&str>> = out.iter().map(|e| label(e, "code")).collect();
        assert_eq!(codes, vec![Some("500"), None, None, None]);
    }

    #[test]
    fn drop_action_and_regex_matchers() {
        let mut p = pipeline(
            "[{match: {selector: '{app=~\"a.*\", env!=\"prod\"} |~ \"(?i)debug\"', action: drop}}]",
        );
        let out = p.process(vec![
            entry_with(&[("app", "api")], "DEBUG x", 1),
            entry_with(&[("app", "api"), ("env", "prod")], "DEBUG x", 1),
            entry_with(&[("app", "api")], "info", 1),
            entry_with(&[("app", "web")], "debug", 1),
        ]);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn nested_match_and_errors() {
        let mut p = pipeline(
            r#"
- match:
    selector: '{a="1"}'
    stages:
      - match:
          selector: '{b="2"}'
          stages: [{static_labels: {hit: yes}}]
"#,
        );
        let out = p.process(vec![
            entry_with(&[("a", "1"), ("b", "2")], "x", 1),
            entry_with(&[("a", "1")], "x", 1),
        ]);
        assert_eq!(label(&out[0], "hit"), Some("yes"));
        assert_eq!(label(&out[1], "hit"), None);
        assert!(build_err("[{match: {selector: '{a=\"1\"'}}]").contains("requires at least one"));
        assert!(
            build_err("[{match: {selector: '{a=\"1\"', stages: [{output: {source: x}}]}}]")
                .contains("invalid selector")
        );
        assert!(
            build_err("[{match: {selector: '{a=\"1\"} | json', stages: [{output: {source: x}}]}}]")
                .contains("only line filters")
        );
        assert!(
            build_err(
                "[{match: {selector: '{a=\"1\"}', action: drop, stages: [{output: {source: x}}]}}]"
            )
            .contains("cannot contains")
        );
    }
}
