//! `static_configs`: fixed target groups. Each `targets` entry becomes a target with
//! `__address__` set to it and the config's `labels` (Promtail's `localhost` convention); a
//! config without targets still yields one target carrying the labels.

use crate::config::StaticConfig;
use crate::relabel::LabelMap;

use super::{Group, Update};

/// The single update a job's static configs produce.
pub fn update(job: usize, cfgs: &[StaticConfig]) -> Update {
    let groups = cfgs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let base: LabelMap = c
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let targets = if c.targets.is_empty() {
                vec![base]
            } else {
                c.targets
                    .iter()
                    .map(|t| {
                        let mut l = base.clone();
                        l.insert("__address__".into(), t.clone());
                        l
                    })
                    .collect()
            };
            Group {
                source: format!("static/{i}"),
                targets,
            }
        })
        .collect();
    Update {
        job,
        provider: "static".into(),
        groups,
        full: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_carry_labels_and_address() {
        let cfgs: Vec<StaticConfig> =
            serde_yaml::from_str("[{targets: [localhost], labels: {job: varlogs, __path__: /var/log/*.log}}, {labels: {a: b}}]").unwrap();
        let u = update(0, &cfgs);
        assert!(u.full);
        assert_eq!(u.groups.len(), 2);
        let t = &u.groups[0].targets[0];
        assert_eq!(t.get("__address__").map(String::as_str), Some("localhost"));
        assert_eq!(
            t.get("__path__").map(String::as_str),
            Some("/var/log/*.log")
        );
        assert_eq!(
            u.groups[1].targets[0].get("a").map(String::as_str),
            Some("b")
        );
    }
}
