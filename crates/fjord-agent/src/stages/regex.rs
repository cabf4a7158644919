//! The `regex` stage: a Go RE2 expression with named groups run over the line (or an
//! extracted value, `source`); each named group goes into the extracted map, "" when the group
//! did not take part in the match. No match changes nothing.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::{Entry, Out, Stage, StageError, source_text};

/// `regex` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegexConfig {
    pub expression: String,
    pub source: Option<String>,
}

/// Compiles a user regex with Go's semantics.
pub(crate) fn go_regex(stage: &'static str, re: &str) -> Result<Regex, StageError> {
    Regex::new(&fjord_model::goregex::to_rust(re)).map_err(|e| {
        StageError::new(
            stage,
            format!("could not compile regular expression {re:?}: {e}"),
        )
    })
}

pub(crate) struct RegexStage {
    re: Regex,
    names: Vec<(usize, String)>,
    source: Option<String>,
}

impl RegexStage {
    pub(crate) fn new(cfg: &RegexConfig) -> Result<RegexStage, StageError> {
        if cfg.expression.is_empty() {
            return Err(StageError::new("regex", "expression is required"));
        }
        if cfg.source.as_deref() == Some("") {
            return Err(StageError::new("regex", "source cannot be empty"));
        }
        let re = go_regex("regex", &cfg.expression)?;
        let names = re
            .capture_names()
            .enumerate()
            .filter_map(|(i, n)| n.map(|n| (i, n.to_string())))
            .collect();
        Ok(RegexStage {
            re,
            names,
            source: cfg.source.clone(),
        })
    }
}

impl Stage for RegexStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        if let Some(input) = source_text(&e, self.source.as_deref())
            && let Some(caps) = self.re.captures(&input)
        {
            for (i, name) in &self.names {
                let v = caps.get(*i).map(|m| m.as_str()).unwrap_or("");
                e.extracted
                    .insert(name.clone(), Value::String(v.to_string()));
            }
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn named_groups_from_line_and_source() {
        let mut p = pipeline(
            r#"
- regex: {expression: '^(?P<ip>\S+) (?P<method>[A-Z]+) (?P<path>\S+)(?: (?P<opt>x))?'}
- regex: {expression: '^/(?P<area>\w+)/', source: path}
- regex: {expression: 'nomatch(?P<never>.)'}
"#,
        );
        let out = p.process_one(entry("10.0.0.1 GET /api/v1 200"));
        let e = &out[0];
        assert_eq!(ex(e, "ip").as_deref(), Some("10.0.0.1"));
        assert_eq!(ex(e, "method").as_deref(), Some("GET"));
        assert_eq!(ex(e, "opt").as_deref(), Some(""));
        assert_eq!(ex(e, "area").as_deref(), Some("api"));
        assert_eq!(ex(e, "never"), None);
        assert_eq!(e.line, "10.0.0.1 GET /api/v1 200");
    }

    #[test]
    fn missing_source_is_skipped_and_bad_regex_rejected() {
        let mut p = pipeline("[{regex: {expression: '(?P<a>.+)', source: nothere}}]");
        assert!(p.process_one(entry("x"))[0].extracted.is_empty());
        assert!(build_err("[{regex: {expression: '(?P<a>'}}]").contains("could not compile"));
        assert!(build_err("[{regex: {}}]").contains("expression is required"));
    }
}
