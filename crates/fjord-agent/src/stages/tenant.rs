//! The `tenant` stage: sets the tenant (`X-Scope-OrgID`) of an entry from a fixed `value`, an
//! extracted `source` or a stream `label`, through the reserved `__tenant_id__` label that the
//! client reads and removes.

use serde::Deserialize;

use super::{Entry, FnStage, Stage, StageError, TENANT_LABEL, value_string};

/// `tenant` config: exactly one of `source`, `value`, `label`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantConfig {
    pub source: Option<String>,
    pub value: Option<String>,
    pub label: Option<String>,
}

pub(crate) fn tenant(cfg: &TenantConfig) -> Result<Box<dyn Stage>, StageError> {
    let set = [&cfg.source, &cfg.value, &cfg.label]
        .iter()
        .filter(|o| o.as_deref().is_some_and(|s| !s.is_empty()))
        .count();
    if set != 1 {
        return Err(StageError::new(
            "tenant",
            "exactly one of source, value or label must be set",
        ));
    }
    let cfg = cfg.clone();
    Ok(Box::new(FnStage(move |e: &mut Entry| {
        let t = if let Some(v) = &cfg.value {
            Some(v.clone())
        } else if let Some(s) = &cfg.source {
            e.extracted.get(s).and_then(value_string)
        } else {
            cfg.label.as_ref().and_then(|l| e.labels.get(l).cloned())
        };
        if let Some(t) = t.filter(|t| !t.is_empty()) {
            e.labels.insert(TENANT_LABEL.into(), t);
        }
        true
    })))
}

#[cfg(test)]
mod tests {
    use super::super::TENANT_LABEL;
    use super::super::testutil::*;

    #[test]
    fn sets_tenant() {
        let mut p = pipeline("[{tenant: {value: team-a}}]");
        assert_eq!(
            label(&p.process_one(entry("x"))[0], TENANT_LABEL),
            Some("team-a")
        );
        let mut p = pipeline("[{regex: {expression: '^(?P<t>\\w+):'}}, {tenant: {source: t}}]");
        assert_eq!(
            label(&p.process_one(entry("acme: hi"))[0], TENANT_LABEL),
            Some("acme")
        );
        assert_eq!(
            label(&p.process_one(entry("no tenant"))[0], TENANT_LABEL),
            None
        );
        let mut p = pipeline("[{tenant: {label: namespace}}]");
        assert_eq!(
            label(
                &p.process_one(entry_with(&[("namespace", "ns1")], "x", 1))[0],
                TENANT_LABEL
            ),
            Some("ns1")
        );
        assert!(build_err("[{tenant: {value: a, source: b}}]").contains("exactly one"));
    }
}
