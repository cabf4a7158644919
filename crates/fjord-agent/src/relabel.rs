//! Prometheus relabeling (`relabel_configs`), with Prometheus' semantics exactly: source label
//! values joined by `separator`, a fully anchored regex (`^(?s:re)$`, Go RE2 syntax),
//! `$1`/`${1}`/`$name` expansion in `replacement` and `target_label`, and an empty result
//! deleting the target label.
//!
//! Label sets are plain ordered maps here; a value of "" never stays in a set (setting a label
//! to "" deletes it, as Prometheus' label builder does).

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use regex::Regex;
use serde::Deserialize;

/// A mutable label set (name → value).
pub type LabelMap = BTreeMap<String, String>;

/// One `relabel_configs` entry as written in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: String,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: String,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".into(),
            regex: "(.*)".into(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".into(),
            action: "replace".into(),
        }
    }
}

/// The relabel actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

/// A rule that failed validation; the message says which field is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relabel_configs[{index}]: {message}")]
pub struct RelabelError {
    pub index: usize,
    pub message: String,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    default_regex: bool,
    modulus: u64,
    target_label: String,
    replacement: String,
    action: Action,
}

/// Compiles a Go regex anchored at both ends the way Prometheus does (`^(?s:re)$`).
pub fn anchored_regex(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{})$", fjord_model::goregex::to_rust(re)))
}

fn valid_label_name(s: &str) -> bool {
    fjord_model::labels::is_valid_label_name(s)
}

impl Rule {
    /// Validates and compiles one config entry (`index` is its position, for errors).
    pub fn compile(cfg: &RelabelConfig, index: usize) -> Result<Rule, RelabelError> {
        let err = |message: String| RelabelError { index, message };
        let action = match cfg.action.to_ascii_lowercase().as_str() {
            "replace" => Action::Replace,
            "keep" => Action::Keep,
            "drop" => Action::Drop,
            "keepequal" => Action::KeepEqual,
            "dropequal" => Action::DropEqual,
            "hashmod" => Action::HashMod,
            "labelmap" => Action::LabelMap,
            "labeldrop" => Action::LabelDrop,
            "labelkeep" => Action::LabelKeep,
            "lowercase" => Action::Lowercase,
            "uppercase" => Action::Uppercase,
            other => return Err(err(format!("unknown relabel action {other:?}"))),
        };
        let regex = anchored_regex(&cfg.regex)
            .map_err(|e| err(format!("invalid regex {:?}: {e}", cfg.regex)))?;
        let needs_target = matches!(
            action,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && cfg.target_label.is_empty() {
            return Err(err(format!(
                "relabel configuration for {} action requires 'target_label' value",
                cfg.action
            )));
        }
        if matches!(
            action,
            Action::Lowercase
                | Action::Uppercase
                | Action::HashMod
                | Action::KeepEqual
                | Action::DropEqual
        ) && !valid_label_name(&cfg.target_label)
        {
            return Err(err(format!(
                "{:?} is invalid 'target_label' for {} action",
                cfg.target_label, cfg.action
            )));
        }
        if action == Action::Replace
            && !cfg.target_label.contains('$')
            && !valid_label_name(&cfg.target_label)
        {
            return Err(err(format!(
                "{:?} is invalid 'target_label' for replace action",
                cfg.target_label
            )));
        }
        if action == Action::HashMod && cfg.modulus == 0 {
            return Err(err(
                "relabel configuration for hashmod requires non-zero modulus".into(),
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (!cfg.source_labels.is_empty()
                || !cfg.target_label.is_empty()
                || cfg.modulus != 0
                || cfg.separator != ";"
                || cfg.replacement != "$1")
        {
            return Err(err(format!(
                "{} action requires only 'regex', and no other fields",
                cfg.action
            )));
        }
        Ok(Rule {
            source_labels: cfg.source_labels.clone(),
            separator: cfg.separator.clone(),
            default_regex: cfg.regex == "(.*)",
            regex,
            modulus: cfg.modulus,
            target_label: cfg.target_label.clone(),
            replacement: cfg.replacement.clone(),
            action,
        })
    }

    /// Applies the rule; returns false when the target is dropped.
    pub fn apply(&self, lb: &mut LabelMap) -> bool {
        let mut val = String::new();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                val.push_str(&self.separator);
            }
            if let Some(v) = lb.get(name) {
                val.push_str(v);
            }
        }
        match self.action {
            Action::Drop => return !self.regex.is_match(&val),
            Action::Keep => return self.regex.is_match(&val),
            Action::DropEqual => {
                return lb.get(&self.target_label).map(String::as_str).unwrap_or("") != val;
            }
            Action::KeepEqual => {
                return lb.get(&self.target_label).map(String::as_str).unwrap_or("") == val;
            }
            Action::Replace => {
                if val.is_empty()
                    && self.default_regex
                    && !self.target_label.contains('$')
                    && !self.replacement.contains('$')
                {
                    set(lb, &self.target_label, self.replacement.clone());
                    return true;
                }
                let Some(caps) = self.regex.captures(&val) else {
                    return true;
                };
                let mut target = String::new();
                caps.expand(&self.target_label, &mut target);
                if !valid_label_name(&target) {
                    return true;
                }
                let mut res = String::new();
                caps.expand(&self.replacement, &mut res);
                set(lb, &target, res);
            }
            Action::Lowercase => set(lb, &self.target_label, val.to_lowercase()),
            Action::Uppercase => set(lb, &self.target_label, val.to_uppercase()),
            Action::HashMod => {
                let sum = Md5::digest(val.as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&sum[8..16]);
                let m = u64::from_be_bytes(tail) % self.modulus;
                set(lb, &self.target_label, m.to_string());
            }
            Action::LabelMap => {
                let renamed: Vec<(String, String)> = lb
                    .iter()
                    .filter(|(name, _)| self.regex.is_match(name))
                    .map(|(name, value)| {
                        (
                            self.regex
                                .replace_all(name, self.replacement.as_str())
                                .into_owned(),
                            value.clone(),
                        )
                    })
                    .collect();
                for (name, value) in renamed {
                    set(lb, &name, value);
                }
            }
            Action::LabelDrop => lb.retain(|name, _| !self.regex.is_match(name)),
            Action::LabelKeep => lb.retain(|name, _| self.regex.is_match(name)),
        }
        true
    }
}

fn set(lb: &mut LabelMap, name: &str, value: String) {
    if value.is_empty() {
        lb.remove(name);
    } else {
        lb.insert(name.to_string(), value);
    }
}

/// A compiled `relabel_configs` list.
#[derive(Debug, Clone, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
}

impl Relabeler {
    pub fn new(cfgs: &[RelabelConfig]) -> Result<Relabeler, RelabelError> {
        let rules = cfgs
            .iter()
            .enumerate()
            .map(|(i, c)| Rule::compile(c, i))
            .collect::<Result<_, _>>()?;
        Ok(Relabeler { rules })
    }

    /// Runs every rule in order; `None` when a rule drops the target.
    pub fn process(&self, mut labels: LabelMap) -> Option<LabelMap> {
        for r in &self.rules {
            if !r.apply(&mut labels) {
                return None;
            }
        }
        Some(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lm(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rc(yaml: &str) -> RelabelConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn run(rules: &[&str], input: &[(&str, &str)]) -> Option<LabelMap> {
        let cfgs: Vec<RelabelConfig> = rules.iter().map(|r| rc(r)).collect();
        Relabeler::new(&cfgs).unwrap().process(lm(input))
    }

    #[test]
    fn table() {
        // (rules, input, expected output or None for dropped)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, Option<Vec<(&str, &str)>>)> = vec![
            // replace with default regex copies the joined value
            (
                vec!["{source_labels: [a, b], target_label: c}"],
                vec![("a", "x"), ("b", "y")],
                Some(vec![("a", "x"), ("b", "y"), ("c", "x;y")]),
            ),
            // regex is anchored: "o" does not match "foo"
            (
                vec!["{source_labels: [a], regex: o, target_label: c, replacement: hit}"],
                vec![("a", "foo")],
                Some(vec![("a", "foo")]),
            ),
            // ${1} and $name expansion
            (
                vec![
                    "{source_labels: [a], regex: '(?P<first>[a-z]+)-(\\d+)', target_label: c, replacement: '${first}_${2}'}",
                ],
                vec![("a", "web-42")],
                Some(vec![("a", "web-42"), ("c", "web_42")]),
            ),
            // $1x is group "1x", which does not exist: empty result deletes the target
            (
                vec!["{source_labels: [a], regex: '(.*)', target_label: a, replacement: '$1x'}"],
                vec![("a", "v")],
                Some(vec![]),
            ),
            // empty replacement deletes the target label
            (
                vec!["{source_labels: [a], target_label: b, replacement: ''}"],
                vec![("a", "1"), ("b", "2")],
                Some(vec![("a", "1")]),
            ),
            // empty source with default regex sets the literal replacement
            (
                vec!["{source_labels: [missing], target_label: b, replacement: static}"],
                vec![],
                Some(vec![("b", "static")]),
            ),
            // target label expanded from a group
            (
                vec![
                    "{source_labels: [a], regex: '(.+)=(.+)', target_label: '$1', replacement: '$2'}",
                ],
                vec![("a", "k=v")],
                Some(vec![("a", "k=v"), ("k", "v")]),
            ),
            // keep / drop
            (
                vec!["{source_labels: [ns], regex: prod|dev, action: keep}"],
                vec![("ns", "test")],
                None,
            ),
            (
                vec!["{source_labels: [ns], regex: prod|dev, action: keep}"],
                vec![("ns", "dev")],
                Some(vec![("ns", "dev")]),
            ),
            (
                vec!["{source_labels: [ns], regex: kube-.*, action: drop}"],
                vec![("ns", "kube-system")],
                None,
            ),
            // keep on a missing label sees ""
            (
                vec!["{source_labels: [x], regex: '.+', action: keep}"],
                vec![("a", "1")],
                None,
            ),
            // labelmap
            (
                vec!["{action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}"],
                vec![("__meta_kubernetes_pod_label_app", "api")],
                Some(vec![
                    ("__meta_kubernetes_pod_label_app", "api"),
                    ("app", "api"),
                ]),
            ),
            // labeldrop / labelkeep
            (
                vec!["{action: labeldrop, regex: 'tmp_.*'}"],
                vec![("tmp_a", "1"), ("b", "2")],
                Some(vec![("b", "2")]),
            ),
            (
                vec!["{action: labelkeep, regex: 'a|b'}"],
                vec![("a", "1"), ("b", "2"), ("c", "3")],
                Some(vec![("a", "1"), ("b", "2")]),
            ),
            // lowercase / uppercase
            (
                vec!["{source_labels: [a], target_label: b, action: lowercase}"],
                vec![("a", "MiXed")],
                Some(vec![("a", "MiXed"), ("b", "mixed")]),
            ),
            (
                vec!["{source_labels: [a], target_label: b, action: uppercase}"],
                vec![("a", "MiXed")],
                Some(vec![("a", "MiXed"), ("b", "MIXED")]),
            ),
            // keepequal / dropequal
            (
                vec!["{source_labels: [a], target_label: b, action: keepequal}"],
                vec![("a", "1"), ("b", "1")],
                Some(vec![("a", "1"), ("b", "1")]),
            ),
            (
                vec!["{source_labels: [a], target_label: b, action: dropequal}"],
                vec![("a", "1"), ("b", "1")],
                None,
            ),
            // the Helm chart's controller-name rule strips the ReplicaSet hash
            (
                vec![
                    "{source_labels: [c], regex: '([0-9a-z-.]+?)(-[0-9a-f]{8,10})?', target_label: t}",
                ],
                vec![("c", "api-server-7d9c8b5f4d")],
                Some(vec![("c", "api-server-7d9c8b5f4d"), ("t", "api-server")]),
            ),
            // the chart's first-non-empty rule
            (
                vec!["{source_labels: [a, b, c], regex: '^;*([^;]+)(;.*)?$', target_label: app}"],
                vec![("b", "web"), ("c", "ctl")],
                Some(vec![("app", "web"), ("b", "web"), ("c", "ctl")]),
            ),
            // the chart's __path__ rule
            (
                vec![
                    "{source_labels: [uid, ctr], separator: /, target_label: __path__, replacement: '/var/log/pods/*$1/*.log'}",
                ],
                vec![("uid", "1234"), ("ctr", "app")],
                Some(vec![
                    ("__path__", "/var/log/pods/*1234/app/*.log"),
                    ("ctr", "app"),
                    ("uid", "1234"),
                ]),
            ),
            // regex sees newlines with (?s)
            (
                vec!["{source_labels: [a], regex: 'x.y', action: keep}"],
                vec![("a", "x\ny")],
                Some(vec![("a", "x\ny")]),
            ),
            // Go's \d is ASCII only
            (
                vec!["{source_labels: [a], regex: '\\d+', action: keep}"],
                vec![("a", "١٢")],
                None,
            ),
        ];
        for (rules, input, want) in cases {
            let got = run(&rules, &input);
            let want = want.map(|w| lm(&w));
            assert_eq!(got, want, "rules {rules:?} on {input:?}");
        }
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; last 8 bytes 0xedef654fccc4a4d8.
        let out = run(
            &["{source_labels: [a], target_label: h, action: hashmod, modulus: 1000}"],
            &[("a", "foo")],
        )
        .unwrap();
        assert_eq!(
            out.get("h").map(String::as_str),
            Some(&(0xedef654fccc4a4d8u64 % 1000).to_string()[..])
        );
    }

    #[test]
    fn invalid_rules_are_rejected() {
        for (yaml, needle) in [
            (
                "{action: replace, source_labels: [a]}",
                "requires 'target_label'",
            ),
            (
                "{action: hashmod, source_labels: [a], target_label: b}",
                "non-zero modulus",
            ),
            ("{action: explode}", "unknown relabel action"),
            ("{regex: '(', target_label: a}", "invalid regex"),
            (
                "{action: labeldrop, regex: a, source_labels: [b]}",
                "requires only 'regex'",
            ),
        ] {
            let e = Rule::compile(&rc(yaml), 3).unwrap_err();
            assert!(e.to_string().contains(needle), "{yaml}: {e}");
            assert!(e.to_string().starts_with("relabel_configs[3]"));
        }
    }
}
