//! The `logfmt` stage: scans the line (or an extracted `source`) as logfmt with Loki's scanner
//! and copies the mapped keys into the extracted map (`mapping: {name: logfmt_key}`; an empty
//! key means the same name). A key without a value extracts "".

use std::collections::{BTreeMap, HashMap};

use fjord_model::logfmt::{Decoder, Scan};
use serde::Deserialize;
use serde_json::Value;

use super::{Entry, Out, Stage, StageError, source_text};

/// `logfmt` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogfmtConfig {
    pub mapping: BTreeMap<String, Option<String>>,
    pub source: Option<String>,
}

pub(crate) struct LogfmtStage {
    /// logfmt key → extracted names.
    keys: HashMap<String, Vec<String>>,
    source: Option<String>,
}

impl LogfmtStage {
    pub(crate) fn new(cfg: &LogfmtConfig) -> Result<LogfmtStage, StageError> {
        if cfg.mapping.is_empty() {
            return Err(StageError::new("logfmt", "logfmt mapping is required"));
        }
        let mut keys: HashMap<String, Vec<String>> = HashMap::new();
        for (name, key) in &cfg.mapping {
            let key = key.as_deref().filter(|k| !k.is_empty()).unwrap_or(name);
            keys.entry(key.to_string()).or_default().push(name.clone());
        }
        Ok(LogfmtStage {
            keys,
            source: cfg.source.clone(),
        })
    }
}

impl Stage for LogfmtStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        if let Some(input) = source_text(&e, self.source.as_deref()) {
            let mut d = Decoder::new(input.as_bytes());
            loop {
                match d.next_pair() {
                    Scan::End => break,
                    Scan::Malformed => continue,
                    Scan::Pair(p) => {
                        let Some(k) = p.key else { continue };
                        let k = String::from_utf8_lossy(k);
                        if let Some(names) = self.keys.get(k.as_ref()) {
                            let v = p
                                .value
                                .map(|v| String::from_utf8_lossy(&v).into_owned())
                                .unwrap_or_default();
                            for n in names {
                                e.extracted.insert(n.clone(), Value::String(v.clone()));
                            }
                        }
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
    fn maps_keys() {
        let mut p = pipeline("[{logfmt: {mapping: {level: , msg: , user: user_id, flag: }}}]");
        let out = p.process_one(entry(
            r#"level=info msg="hello \"world\"" user_id=42 flag other=x"#,
        ));
        let e = &out[0];
        assert_eq!(ex(e, "level").as_deref(), Some("info"));
        assert_eq!(ex(e, "msg").as_deref(), Some("hello \"world\""));
        assert_eq!(ex(e, "user").as_deref(), Some("42"));
        assert_eq!(ex(e, "flag").as_deref(), Some(""));
        assert_eq!(ex(e, "other"), None);
        assert!(build_err("[{logfmt: {mapping: {}}}]").contains("mapping is required"));
    }
}
