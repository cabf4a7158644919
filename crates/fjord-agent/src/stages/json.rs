//! The `json` stage: parses the line (or an extracted `source`) as a JSON object and puts the
//! result of each JMESPath expression into the extracted map. Strings, numbers, booleans and
//! null are kept as they are; objects and arrays are stored as their JSON text. A line that is
//! not a JSON object extracts nothing, and is dropped when `drop_malformed` is set.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::jmespath::Path;
use super::{Entry, Out, Stage, StageError, source_text};

/// `json` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonConfig {
    pub expressions: BTreeMap<String, Option<String>>,
    pub source: Option<String>,
    pub drop_malformed: bool,
}

pub(crate) struct JsonStage {
    exprs: Vec<(String, Path)>,
    source: Option<String>,
    drop_malformed: bool,
}

impl JsonStage {
    pub(crate) fn new(cfg: &JsonConfig) -> Result<JsonStage, StageError> {
        if cfg.expressions.is_empty() {
            return Err(StageError::new("json", "expressions are required"));
        }
        let mut exprs = Vec::new();
        for (name, expr) in &cfg.expressions {
            let expr = expr.as_deref().filter(|s| !s.is_empty()).unwrap_or(name);
            let path = Path::parse(expr).map_err(|e| {
                StageError::new(
                    "json",
                    format!("could not compile JMES expression {expr:?}: {e}"),
                )
            })?;
            exprs.push((name.clone(), path));
        }
        Ok(JsonStage {
            exprs,
            source: cfg.source.clone(),
            drop_malformed: cfg.drop_malformed,
        })
    }
}

impl Stage for JsonStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        let Some(input) = source_text(&e, self.source.as_deref()) else {
            out.push(e);
            return;
        };
        match serde_json::from_str::<Value>(&input) {
            Ok(doc @ Value::Object(_)) => {
                for (name, path) in &self.exprs {
                    let v = match path.search(&doc) {
                        v
                        @ (Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null) => v,
                        other => Value::String(other.to_string()),
                    };
                    e.extracted.insert(name.clone(), v);
                }
            }
            _ if self.drop_malformed => return,
            _ => {}
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn extracts_paths() {
        let mut p = pipeline(
            r#"
- json:
    expressions:
      level:
      user: req.user.name
      first: tags[0]
      obj: req.user
      dotted: '"k8s.pod"'
- json: {expressions: {name: }, source: obj}
"#,
        );
        let out = p.process_one(entry(
            r#"{"level":"info","req":{"user":{"name":"ann"}},"tags":["a","b"],"k8s.pod":"p1"}"#,
        ));
        let e = &out[0];
        assert_eq!(ex(e, "level").as_deref(), Some("info"));
        assert_eq!(ex(e, "user").as_deref(), Some("ann"));
        assert_eq!(ex(e, "first").as_deref(), Some("a"));
        assert_eq!(ex(e, "obj").as_deref(), Some(r#"{"name":"ann"}"#));
        assert_eq!(ex(e, "dotted").as_deref(), Some("p1"));
        assert_eq!(ex(e, "name").as_deref(), Some("ann"));
    }

    #[test]
    fn malformed() {
        let mut p = pipeline("[{json: {expressions: {a: }}}]");
        assert_eq!(p.process_one(entry("not json")).len(), 1);
        assert_eq!(p.process_one(entry("[1,2]")).len(), 1);
        let mut p = pipeline("[{json: {expressions: {a: }, drop_malformed: true}}]");
        assert_eq!(p.process_one(entry("not json")).len(), 0);
        assert_eq!(p.process_one(entry("{\"a\":1}")).len(), 1);
        assert!(
            build_err("[{json: {expressions: {a: 'b | c'}}}]").contains("could not compile JMES")
        );
    }
}
