//! The fixed query suite, defined together with the generator: every selector, field and string
//! below is one `gen` produces (namespaces, apps, `stream`, nginx access lines, logfmt
//! `duration=`/`path=`, nested JSON `http.status`, the needles). Time ranges come from the
//! dataset's manifest, so the same suite runs unchanged on any size of dataset.

use serde::Serialize;

use crate::dataset::Manifest;
use crate::generate::{DEFAULT_END_NS, NEEDLES};

/// One HTTP request of the suite.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Case {
    /// Short stable identifier (used by `--only` and in reports).
    pub(crate) name: &'static str,
    pub(crate) endpoint: String,
    pub(crate) params: Vec<(String, String)>,
    /// Exact number of result lines the dataset guarantees, where known (the needles).
    pub(crate) expect_lines: Option<u64>,
}

impl Case {
    pub(crate) fn query(&self) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == "query" || k == "match[]")
            .map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn direction(&self) -> &str {
        self.params
            .iter()
            .find(|(k, _)| k == "direction")
            .map_or("backward", |(_, v)| v.as_str())
    }
}

/// The time range and needle the suite runs over.
#[derive(Debug, Clone)]
pub(crate) struct Range {
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) needle: String,
    pub(crate) needle_lines: Option<u64>,
}

impl Range {
    pub(crate) fn from_manifest(m: &Manifest) -> Range {
        let needle = m.needles.first();
        Range {
            start_ns: m.start_ns,
            end_ns: m.end_ns,
            needle: needle.map_or_else(|| NEEDLES[0].0.to_string(), |n| n.text.clone()),
            needle_lines: needle.map(|n| n.lines),
        }
    }

    /// The default `gen` time range (2h ending at the fixed anchor), for runs without `--data`.
    pub(crate) fn default_dataset() -> Range {
        Range {
            start_ns: DEFAULT_END_NS - 7_200_000_000_000,
            end_ns: DEFAULT_END_NS,
            needle: NEEDLES[0].0.to_string(),
            needle_lines: None,
        }
    }
}

const QUERY_RANGE: &str = "/loki/api/v1/query_range";

fn log_query(name: &'static str, q: &str, from: i64, to: i64, limit: u32, direction: &str) -> Case {
    Case {
        name,
        endpoint: QUERY_RANGE.into(),
        params: vec![
            ("query".into(), q.into()),
            ("start".into(), from.to_string()),
            ("end".into(), to.to_string()),
            ("limit".into(), limit.to_string()),
            ("direction".into(), direction.into()),
        ],
        expect_lines: None,
    }
}

fn metric_query(name: &'static str, q: &str, r: &Range) -> Case {
    Case {
        name,
        endpoint: QUERY_RANGE.into(),
        params: vec![
            ("query".into(), q.into()),
            ("start".into(), r.start_ns.to_string()),
            ("end".into(), r.end_ns.to_string()),
            ("step".into(), "60s".into()),
        ],
        expect_lines: None,
    }
}

fn meta(name: &'static str, endpoint: &str, r: &Range, extra: &[(&str, &str)]) -> Case {
    let mut params = vec![
        ("start".to_string(), r.start_ns.to_string()),
        ("end".to_string(), r.end_ns.to_string()),
    ];
    params.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
    );
    Case {
        name,
        endpoint: endpoint.into(),
        params,
        expect_lines: None,
    }
}

/// The suite, in run order.
pub(crate) fn cases(r: &Range) -> Vec<Case> {
    let hour_ago = (r.end_ns - 3_600_000_000_000).max(r.start_ns);
    let needle_re = match r.needle.len() {
        // Keep a literal prefix (block skipping can use it) and vary the last character.
        n if n > 1 => format!("{}[0-9a-f]", &r.needle[..n - 1]),
        _ => r.needle.clone(),
    };
    let mut needle = log_query(
        "needle_substring",
        &format!("{{namespace=~\".+\"}} |= \"{}\"", r.needle),
        r.start_ns,
        r.end_ns,
        1000,
        "backward",
    );
    needle.expect_lines = r.needle_lines;
    let mut needle_regex = log_query(
        "needle_regex",
        &format!("{{namespace=~\".+\"}} |~ \"{needle_re}\""),
        r.start_ns,
        r.end_ns,
        1000,
        "backward",
    );
    needle_regex.expect_lines = r.needle_lines;
    vec![
        log_query(
            "recent_backward",
            r#"{namespace="prod", app="nginx"}"#,
            hour_ago,
            r.end_ns,
            1000,
            "backward",
        ),
        log_query(
            "recent_forward",
            r#"{namespace="prod", app="nginx"}"#,
            hour_ago,
            r.end_ns,
            500,
            "forward",
        ),
        needle,
        needle_regex,
        log_query(
            "negative_filter",
            r#"{namespace="prod", app="api-gateway"} != "level=info" != "level=debug""#,
            r.start_ns,
            r.end_ns,
            1000,
            "backward",
        ),
        log_query(
            "json_filter",
            r#"{namespace="prod", app="checkout"} | json | http_status >= 500 | line_format "{{.http_method}} {{.http_path}} {{.http_status}} {{.http_latency_ms}}ms""#,
            r.start_ns,
            r.end_ns,
            1000,
            "backward",
        ),
        metric_query(
            "count_by_app",
            r#"sum by (app) (count_over_time({namespace="prod"}[1m]))"#,
            r,
        ),
        metric_query(
            "bytes_rate",
            r#"sum(bytes_rate({namespace="prod"}[5m]))"#,
            r,
        ),
        metric_query(
            "pattern_status_rate",
            r#"sum by (status) (rate({namespace="prod", app="nginx", stream="stdout"} | pattern "<ip> - <user> [<_>] \"<method> <path> <_>\" <status> <size> <_>" [5m]))"#,
            r,
        ),
        metric_query(
            "p99_unwrap",
            r#"quantile_over_time(0.99, {namespace="prod", app="api-gateway"} | logfmt | unwrap duration(duration) | __error__="" [5m]) by (path)"#,
            r,
        ),
        metric_query(
            "topk",
            r#"topk(5, sum by (pod) (rate({namespace="prod"} |= "error" [5m])))"#,
            r,
        ),
        metric_query(
            "error_ratio",
            r#"sum by (app) (rate({namespace="prod"} |= "error" [5m])) / sum by (app) (rate({namespace="prod"}[5m]))"#,
            r,
        ),
        meta("labels", "/loki/api/v1/labels", r, &[]),
        meta("label_values", "/loki/api/v1/label/pod/values", r, &[]),
        meta(
            "series",
            "/loki/api/v1/series",
            r,
            &[("match[]", r#"{namespace="prod", app="api-gateway"}"#)],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_covers_the_issue_list() {
        let r = Range {
            start_ns: 0,
            end_ns: 7_200_000_000_000,
            needle: "NEEDLE-7f3a9c".into(),
            needle_lines: Some(7),
        };
        let c = cases(&r);
        let names: Vec<&str> = c.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 15);
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len(), "names are unique");
        let regex = c.iter().find(|c| c.name == "needle_regex").unwrap();
        assert_eq!(
            regex.query(),
            r#"{namespace=~".+"} |~ "NEEDLE-7f3a9[0-9a-f]""#
        );
        assert_eq!(regex.expect_lines, Some(7));
        let fwd = c.iter().find(|c| c.name == "recent_forward").unwrap();
        assert_eq!(fwd.direction(), "forward");
        assert!(
            fwd.params
                .contains(&("start".into(), "3600000000000".into())),
            "recent = last hour"
        );
    }

    /// Every literal the suite filters on is produced by the generator.
    #[test]
    fn suite_literals_exist_in_generated_data() {
        let dir = tempfile::tempdir().unwrap();
        let o = crate::generate::GenOptions {
            size: 2_000_000,
            out: dir.path().to_path_buf(),
            seed: 11,
            streams: 100,
            duration_ns: 7_200_000_000_000,
            start_ns: DEFAULT_END_NS - 7_200_000_000_000,
        };
        let m = crate::generate::run(&o).unwrap();
        let mut labels = String::new();
        let mut text = Vec::new();
        for f in &m.files {
            labels.push_str(&f.labels);
            let d = crate::dataset::StreamData::read(&dir.path().join(&f.file)).unwrap();
            for i in 0..d.entries.len() {
                text.extend_from_slice(&d.line(i));
                text.push(b'\n');
            }
        }
        let text = String::from_utf8(text).unwrap();
        for l in [
            r#"namespace="prod""#,
            r#"app="nginx""#,
            r#"app="api-gateway""#,
            r#"app="checkout""#,
            r#"stream="stdout""#,
            "pod=\"",
        ] {
            assert!(labels.contains(l), "{l}");
        }
        for t in [
            "level=info",
            "level=debug",
            "level=error",
            "\"http\":{\"method\"",
            "\"status\":5",
            " duration=",
            " path=/api/",
            "\"error\"",
            "NEEDLE-7f3a9c",
        ] {
            assert!(text.contains(t), "{t}");
        }
    }
}
