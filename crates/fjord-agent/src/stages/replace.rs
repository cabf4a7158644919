//! The `replace` stage: replaces every match of each capture group of a Go regex in the line
//! (or an extracted `source`) with the result of the `replace` template, in which `.Value` is
//! the captured text and extracted values are available by name. Named groups also put their
//! replaced text into the extracted map. With `source`, the result goes back into the
//! extracted value instead of the line.

use std::collections::HashMap;

use fjord_template::Template;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::regex::go_regex;
use super::template::{Data, parse_template};
use super::{Entry, Out, Stage, StageError, source_text};

/// `replace` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaceConfig {
    pub expression: String,
    pub source: Option<String>,
    pub replace: String,
}

pub(crate) struct ReplaceStage {
    re: Regex,
    template: Template,
    source: Option<String>,
}

impl ReplaceStage {
    pub(crate) fn new(cfg: &ReplaceConfig) -> Result<ReplaceStage, StageError> {
        if cfg.expression.is_empty() {
            return Err(StageError::new("replace", "expression is required"));
        }
        Ok(ReplaceStage {
            re: go_regex("replace", &cfg.expression)?,
            template: parse_template("replace", &cfg.replace)?,
            source: cfg.source.clone(),
        })
    }

    fn replace(&self, e: &Entry, input: &str) -> Option<(String, HashMap<String, String>)> {
        let mut data = Data::from_entry(e);
        let mut result = String::new();
        let mut prev_end = 0usize;
        let mut captured: HashMap<String, String> = HashMap::new();
        let mut any = false;
        for caps in self.re.captures_iter(input) {
            any = true;
            for i in 1..caps.len() {
                let Some(m) = caps.get(i) else { continue };
                data.values.insert("Value".into(), m.as_str().to_string());
                let st = self.template.execute(&data).ok()?;
                if prev_end == 0 || prev_end <= m.start() {
                    result.push_str(&input[prev_end..m.start()]);
                    result.push_str(&st);
                    prev_end = m.end();
                }
                captured.insert(m.as_str().to_string(), st);
            }
        }
        if !any {
            return None;
        }
        result.push_str(&input[prev_end..]);
        Some((result, captured))
    }
}

impl Stage for ReplaceStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        if let Some(input) = source_text(&e, self.source.as_deref())
            && let Some((result, captured)) = self.replace(&e, &input)
        {
            let first = self.re.captures(&input);
            match &self.source {
                Some(s) => {
                    e.extracted.insert(s.clone(), Value::String(result));
                }
                None => e.line = result,
            }
            if let Some(caps) = first {
                for (i, name) in self.re.capture_names().enumerate() {
                    if let (Some(name), Some(m)) = (name, caps.get(i))
                        && let Some(v) = captured.get(m.as_str())
                    {
                        e.extracted
                            .insert(name.to_string(), Value::String(v.clone()));
                    }
                }
            }
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn promtail_examples() {
        // From Promtail's docs: mask an IP and redact a user.
        let mut p = pipeline(
            r#"[{replace: {expression: '^(?P<ip>\S+) (?P<identd>\S+) (?P<user>\S+)', replace: '{{ if eq .Value "frank" }}redacted{{ else }}{{ .Value }}{{ end }}'}}]"#,
        );
        let out = p.process_one(entry("11.11.11.11 - frank [25/Jan/2000:14:00:01 -0500]"));
        assert_eq!(
            out[0].line,
            "11.11.11.11 - redacted [25/Jan/2000:14:00:01 -0500]"
        );
        assert_eq!(ex(&out[0], "user").as_deref(), Some("redacted"));
        assert_eq!(ex(&out[0], "ip").as_deref(), Some("11.11.11.11"));
        // Every match is replaced.
        let mut p = pipeline(
            r#"[{replace: {expression: '(\d{2}\.\d{2}\.\d{2}\.\d{2})', replace: '*IP*'}}]"#,
        );
        let out = p.process_one(entry("11.11.11.11 - frank 12.12.12.12 - frank"));
        assert_eq!(out[0].line, "*IP* - frank *IP* - frank");
        // With a source, the extracted value changes and the line does not.
        let mut p = pipeline(
            r#"[{regex: {expression: 'msg=(?P<msg>\S+)'}}, {replace: {expression: '(secret)', source: msg, replace: '***'}}]"#,
        );
        let out = p.process_one(entry("msg=my-secret-x"));
        assert_eq!(out[0].line, "msg=my-secret-x");
        assert_eq!(ex(&out[0], "msg").as_deref(), Some("my-***-x"));
        // Empty replacement deletes the match.
        let mut p = pipeline(r#"[{replace: {expression: '(\s+debug)', replace: ''}}]"#);
        assert_eq!(p.process_one(entry("x debug y"))[0].line, "x y");
    }
}
