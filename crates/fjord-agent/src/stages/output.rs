//! The `output` stage: replaces the line with an extracted value (unchanged when the value is
//! missing or null).

use serde::Deserialize;

use super::{Entry, FnStage, Stage, StageError, value_string};

/// `output` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    pub source: String,
}

pub(crate) fn output(cfg: &OutputConfig) -> Result<Box<dyn Stage>, StageError> {
    if cfg.source.is_empty() {
        return Err(StageError::new("output", "output source value is required"));
    }
    let source = cfg.source.clone();
    Ok(Box::new(FnStage(move |e: &mut Entry| {
        if let Some(v) = e.extracted.get(&source).and_then(value_string) {
            e.line = v;
        }
        true
    })))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn replaces_line() {
        let mut p =
            pipeline("[{json: {expressions: {msg: message, n: }}}, {output: {source: msg}}]");
        assert_eq!(
            p.process_one(entry(r#"{"message":"hi","n":null}"#))[0].line,
            "hi"
        );
        assert_eq!(
            p.process_one(entry(r#"{"other":1}"#))[0].line,
            r#"{"other":1}"#
        );
        let mut p = pipeline("[{json: {expressions: {n: }}}, {output: {source: n}}]");
        assert_eq!(
            p.process_one(entry(r#"{"n":null}"#))[0].line,
            r#"{"n":null}"#,
            "null is not text"
        );
        assert!(build_err("[{output: {}}]").contains("required"));
    }
}
