//! The `template` stage: runs a Go `text/template` (Fjord's implementation, with Loki's and
//! sprig's functions) and stores the result in the extracted map under `source`; an empty
//! result removes the key. The template sees every extracted value by name, `.Value` (the
//! current value of `source`) and `.Entry` (the line). Promtail's own `Hash`/`Sha2Hash`
//! functions are not available.

use std::collections::HashMap;

use fjord_template::{Template, TemplateData};
use serde::Deserialize;
use serde_json::Value;

use super::{Entry, Out, Stage, StageError, value_string};

/// `template` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplateConfig {
    pub source: String,
    pub template: String,
}

/// Template data: extracted values as strings, plus the line and time.
pub(crate) struct Data<'a> {
    pub(crate) values: HashMap<String, String>,
    pub(crate) line: &'a str,
    pub(crate) ts: i64,
}

impl<'a> Data<'a> {
    pub(crate) fn from_entry(e: &'a Entry) -> Data<'a> {
        let values = e
            .extracted
            .iter()
            .filter_map(|(k, v)| value_string(v).map(|s| (k.clone(), s)))
            .collect();
        Data {
            values,
            line: &e.line,
            ts: e.ts,
        }
    }
}

impl TemplateData for Data<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    fn for_each_label(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in &self.values {
            f(k, v);
        }
    }
    fn line(&self) -> &str {
        self.line
    }
    fn timestamp_ns(&self) -> i64 {
        self.ts
    }
}

pub(crate) fn parse_template(stage: &'static str, src: &str) -> Result<Template, StageError> {
    Template::parse_named("pipeline_template", src)
        .map_err(|e| StageError::new(stage, format!("could not compile template: {e}")))
}

pub(crate) struct TemplateStage {
    source: String,
    template: Template,
}

impl TemplateStage {
    pub(crate) fn new(cfg: &TemplateConfig) -> Result<TemplateStage, StageError> {
        if cfg.source.is_empty() {
            return Err(StageError::new(
                "template",
                "template source value is required",
            ));
        }
        Ok(TemplateStage {
            source: cfg.source.clone(),
            template: parse_template("template", &cfg.template)?,
        })
    }
}

impl Stage for TemplateStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        let result = {
            let mut data = Data::from_entry(&e);
            if let Some(v) = data.values.get(&self.source).cloned() {
                data.values.insert("Value".into(), v);
            }
            data.values.insert("Entry".into(), e.line.clone());
            self.template.execute(&data)
        };
        match result {
            Ok(s) if s.is_empty() => {
                e.extracted.remove(&self.source);
            }
            Ok(s) => {
                e.extracted.insert(self.source.clone(), Value::String(s));
            }
            Err(err) => tracing::debug!(error = %err, "template stage: execution failed"),
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn templates() {
        let mut p = pipeline(
            r#"
- regex: {expression: '^(?P<level>\w+) (?P<app>\w+)'}
- template: {source: level, template: '{{ ToUpper .Value }}'}
- template: {source: combo, template: '{{ .app }}-{{ .level }}'}
- template: {source: app, template: ''}
- template: {source: whole, template: '{{ .Entry | len }}'}
"#,
        );
        let out = p.process_one(entry("warn api rest"));
        let e = &out[0];
        assert_eq!(ex(e, "level").as_deref(), Some("WARN"));
        assert_eq!(ex(e, "combo").as_deref(), Some("api-WARN"));
        assert_eq!(ex(e, "app"), None, "empty result removes the key");
        assert_eq!(ex(e, "whole").as_deref(), Some("13"));
        assert!(
            build_err("[{template: {source: a, template: '{{ .x'}}]")
                .contains("could not compile template")
        );
    }
}
