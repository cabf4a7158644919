//! Stages that edit the label set or structured metadata: `labels`, `structured_metadata`,
//! `static_labels`, `labeldrop`, `labelallow`.
//!
//! `labels` and `structured_metadata` take `{name: source}` where an empty source means the
//! extracted key of the same name; a missing or null extracted value sets nothing.

use std::collections::{BTreeMap, HashSet};

use super::{Entry, FnStage, NameMap, Stage, StageError, value_string};

fn check_names<'a>(
    stage: &'static str,
    names: impl Iterator<Item = &'a String>,
) -> Result<(), StageError> {
    for n in names {
        if !fjord_model::labels::is_valid_label_name(n) {
            return Err(StageError::new(stage, format!("invalid label name: {n}")));
        }
    }
    Ok(())
}

fn resolve(map: &NameMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, src)| {
            let src = src.as_deref().filter(|s| !s.is_empty()).unwrap_or(name);
            (name.clone(), src.to_string())
        })
        .collect()
}

/// `labels`: sets stream labels from extracted values.
pub(crate) fn labels(map: &NameMap) -> Result<Box<dyn Stage>, StageError> {
    if map.is_empty() {
        return Err(StageError::new("labels", "label map is empty"));
    }
    check_names("labels", map.keys())?;
    let pairs = resolve(map);
    Ok(Box::new(FnStage(move |e: &mut Entry| {
        for (name, src) in &pairs {
            if let Some(v) = e.extracted.get(src).and_then(value_string) {
                if v.is_empty() {
                    e.labels.remove(name);
                } else {
                    e.labels.insert(name.clone(), v);
                }
            }
        }
        true
    })))
}

/// `structured_metadata`: attaches extracted values as structured metadata.
pub(crate) fn structured_metadata(map: &NameMap) -> Result<Box<dyn Stage>, StageError> {
    if map.is_empty() {
        return Err(StageError::new("structured_metadata", "label map is empty"));
    }
    check_names("structured_metadata", map.keys())?;
    let pairs = resolve(map);
    Ok(Box::new(FnStage(move |e: &mut Entry| {
        for (name, src) in &pairs {
            if let Some(v) = e.extracted.get(src).and_then(value_string) {
                e.metadata.retain(|(n, _)| n != name);
                e.metadata.push((name.clone(), v));
            }
        }
        true
    })))
}

/// `static_labels`: sets fixed labels.
pub(crate) fn static_labels(
    map: &BTreeMap<String, Option<String>>,
) -> Result<Box<dyn Stage>, StageError> {
    check_names("static_labels", map.keys())?;
    let mut pairs = Vec::new();
    for (k, v) in map {
        match v {
            Some(v) if !v.is_empty() => pairs.push((k.clone(), v.clone())),
            _ => {
                return Err(StageError::new(
                    "static_labels",
                    format!("label {k} has no value"),
                ));
            }
        }
    }
    Ok(Box::new(FnStage(move |e: &mut Entry| {
        for (k, v) in &pairs {
            e.labels.insert(k.clone(), v.clone());
        }
        true
    })))
}

/// `labeldrop`: removes the listed labels.
pub(crate) fn labeldrop(names: &[String]) -> Box<dyn Stage> {
    let names: Vec<String> = names.to_vec();
    Box::new(FnStage(move |e: &mut Entry| {
        for n in &names {
            e.labels.remove(n);
        }
        true
    }))
}

/// `labelallow`: keeps only the listed labels.
pub(crate) fn labelallow(names: &[String]) -> Result<Box<dyn Stage>, StageError> {
    if names.is_empty() {
        return Err(StageError::new(
            "labelallow",
            "labelallow stage config cannot be empty",
        ));
    }
    let keep: HashSet<String> = names.iter().cloned().collect();
    Ok(Box::new(FnStage(move |e: &mut Entry| {
        e.labels.retain(|k, _| keep.contains(k));
        true
    })))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn labels_from_extracted() {
        let mut p = pipeline(
            "[{regex: {expression: '^(?P<level>\\w+) (?P<user>\\w*) (?P<n>\\d+)'}}, {labels: {level: , who: user, num: n, missing: }}]",
        );
        let out = p.process_one(entry_with(&[("app", "x")], "warn  7 rest", 1));
        let e = &out[0];
        assert_eq!(label(e, "level"), Some("warn"));
        assert_eq!(label(e, "who"), None, "empty value sets no label");
        assert_eq!(label(e, "num"), Some("7"));
        assert_eq!(label(e, "missing"), None);
        assert_eq!(label(e, "app"), Some("x"));
    }

    #[test]
    fn json_numbers_and_bools_become_text() {
        let mut p = pipeline(
            "[{json: {expressions: {code: status, ok: ok, lat: latency}}}, {labels: {code: , ok: , lat: }}]",
        );
        let out = p.process_one(entry(r#"{"status":200,"ok":true,"latency":0.25}"#));
        assert_eq!(label(&out[0], "code"), Some("200"));
        assert_eq!(label(&out[0], "ok"), Some("true"));
        assert_eq!(label(&out[0], "lat"), Some("0.25"));
    }

    #[test]
    fn structured_metadata_static_drop_allow() {
        let mut p = pipeline(
            "[{logfmt: {mapping: {trace: trace_id}}}, {structured_metadata: {trace: }}, {static_labels: {env: prod, team: core}}, {labeldrop: [team]}]",
        );
        let out = p.process_one(entry_with(&[("app", "x")], "msg=hi trace_id=abc", 1));
        assert_eq!(
            out[0].metadata,
            vec![("trace".to_string(), "abc".to_string())]
        );
        assert_eq!(label(&out[0], "env"), Some("prod"));
        assert_eq!(label(&out[0], "team"), None);
        let mut p = pipeline("[{labelallow: [app, env]}]");
        let out = p.process_one(entry_with(
            &[("app", "x"), ("env", "p"), ("pod", "q")],
            "l",
            1,
        ));
        assert_eq!(out[0].labels.len(), 2);
    }

    #[test]
    fn invalid_names() {
        assert!(build_err("[{labels: {'bad-name': x}}]").contains("invalid label name"));
        assert!(build_err("[{static_labels: {a: }}]").contains("no value"));
        assert!(build_err("[{labelallow: []}]").contains("empty"));
    }
}
