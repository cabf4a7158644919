//! Whether two servers gave the same answer, by the rules of the shared conformance runner
//! (`conformance/run.py`): series and streams are compared as sets (sorted by label set, unless
//! the query is a top-level `sort`/`sort_desc`), streams with equal labels are merged and their
//! entries ordered by (timestamp, line) in the query's direction, and sample values are equal
//! within a relative tolerance. Query statistics are ignored, and so is anything in an entry
//! beyond its timestamp and line (structured metadata depends on response encoding flags).

use serde_json::{Value, json};

/// A canonical form of one response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Answer(Value);

fn label_key(m: Option<&Value>) -> String {
    let mut pairs: Vec<(String, String)> = m
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    serde_json::to_string(&pairs).unwrap_or_default()
}

fn is_ordered(query: &str) -> bool {
    let q = query.trim_start();
    ["sort(", "sort_desc(", "sort (", "sort_desc ("]
        .iter()
        .any(|p| q.starts_with(p))
}

/// Normalises a response of `endpoint` (status and parsed JSON body, if any).
pub(crate) fn normalise(
    endpoint: &str,
    query: &str,
    direction: &str,
    status: u16,
    body: Option<&Value>,
) -> Answer {
    let Some(body) = body.filter(|_| status == 200) else {
        return Answer(json!({ "status": status }));
    };
    let data = body.get("data");
    if endpoint.ends_with("/query") || endpoint.ends_with("/query_range") {
        let rt = data
            .and_then(|d| d.get("resultType"))
            .cloned()
            .unwrap_or(Value::Null);
        let res: Vec<Value> = data
            .and_then(|d| d.get("result"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let out = match rt.as_str() {
            Some("streams") => {
                let mut merged: std::collections::BTreeMap<String, (Value, Vec<(i128, String)>)> =
                    Default::default();
                for s in &res {
                    let labels = s.get("stream").cloned().unwrap_or_else(|| json!({}));
                    let entry = merged
                        .entry(label_key(Some(&labels)))
                        .or_insert_with(|| (labels, Vec::new()));
                    for v in s
                        .get("values")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let ts = v
                            .get(0)
                            .and_then(Value::as_str)
                            .and_then(|t| t.parse::<i128>().ok())
                            .unwrap_or(i128::MIN);
                        let line = v
                            .get(1)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        entry.1.push((ts, line));
                    }
                }
                let backward = !direction.eq_ignore_ascii_case("forward");
                let streams: Vec<Value> = merged
                    .into_values()
                    .map(|(labels, mut vals)| {
                        vals.sort();
                        if backward {
                            vals.reverse();
                        }
                        let values: Vec<Value> = vals
                            .into_iter()
                            .map(|(t, l)| json!([t.to_string(), l]))
                            .collect();
                        json!({ "stream": labels, "values": values })
                    })
                    .collect();
                Value::Array(streams)
            }
            Some("matrix") | Some("vector") => {
                let key = if rt.as_str() == Some("matrix") {
                    "values"
                } else {
                    "value"
                };
                let mut series: Vec<Value> = res.iter().map(|s| json!({ "metric": s.get("metric").cloned().unwrap_or_else(|| json!({})), key: s.get(key).cloned().unwrap_or(Value::Null) })).collect();
                if rt.as_str() == Some("matrix") || !is_ordered(query) {
                    series.sort_by_cached_key(|s| label_key(s.get("metric")));
                }
                Value::Array(series)
            }
            _ => data
                .and_then(|d| d.get("result"))
                .cloned()
                .unwrap_or(Value::Null),
        };
        return Answer(json!({ "status": 200, "resultType": rt, "result": out }));
    }
    if endpoint.ends_with("/labels") || endpoint.contains("/label/") || endpoint.ends_with("/label")
    {
        let mut names: Vec<String> = data
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        names.sort();
        return Answer(json!({ "status": 200, "data": names }));
    }
    if endpoint.ends_with("/series") {
        let mut series: Vec<Value> = data.and_then(Value::as_array).cloned().unwrap_or_default();
        series.sort_by_cached_key(|s| label_key(Some(s)));
        return Answer(json!({ "status": 200, "data": series }));
    }
    Answer(json!({ "status": 200, "body": body }))
}

impl Answer {
    /// Number of result items: log lines for streams, series otherwise, names for label lists.
    pub(crate) fn size(&self) -> u64 {
        let v = &self.0;
        if let Some(res) = v.get("result").and_then(Value::as_array) {
            if v.get("resultType").and_then(Value::as_str) == Some("streams") {
                return res
                    .iter()
                    .map(|s| {
                        s.get("values")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len) as u64
                    })
                    .sum();
            }
            return res.len() as u64;
        }
        v.get("data")
            .and_then(Value::as_array)
            .map_or(0, |a| a.len() as u64)
    }
}

fn num_eq(a: &Value, b: &Value, tol: f64) -> bool {
    if a == b {
        return true;
    }
    let parse = |v: &Value| -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(f64::NAN),
                "+Inf" | "Inf" => Some(f64::INFINITY),
                "-Inf" => Some(f64::NEG_INFINITY),
                s => s.parse().ok(),
            },
            _ => None,
        }
    };
    let (Some(x), Some(y)) = (parse(a), parse(b)) else {
        return false;
    };
    if x.is_nan() && y.is_nan() {
        return true;
    }
    if x.is_infinite() || y.is_infinite() {
        return x == y;
    }
    (x - y).abs() <= tol * 1f64.max(x.abs()).max(y.abs())
}

fn pairs_eq(a: &[Value], b: &[Value], tol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(p, q)| match (p.as_array(), q.as_array()) {
                (Some(p), Some(q)) => {
                    p.len() == 2
                        && q.len() == 2
                        && num_eq(&p[0], &q[0], tol)
                        && num_eq(&p[1], &q[1], tol)
                }
                _ => false,
            })
}

/// `None` if the answers agree, else a short reason.
pub(crate) fn differ(a: &Answer, b: &Answer, tol: f64) -> Option<String> {
    let (a, b) = (&a.0, &b.0);
    if a.get("status") != b.get("status") {
        return Some(format!("status {} vs {}", a["status"], b["status"]));
    }
    if a.get("status").and_then(Value::as_u64) != Some(200) {
        return None;
    }
    if a.get("resultType") != b.get("resultType") {
        return Some(format!(
            "resultType {} vs {}",
            a["resultType"], b["resultType"]
        ));
    }
    let rt = a.get("resultType").and_then(Value::as_str);
    let empty = Vec::new();
    let (ea, eb) = (
        a.get("result").and_then(Value::as_array).unwrap_or(&empty),
        b.get("result").and_then(Value::as_array).unwrap_or(&empty),
    );
    match rt {
        Some("matrix") | Some("vector") => {
            if ea.len() != eb.len() {
                return Some(format!("series count {} vs {}", ea.len(), eb.len()));
            }
            for (x, y) in ea.iter().zip(eb) {
                if x.get("metric") != y.get("metric") {
                    return Some(format!(
                        "labels {} vs {}",
                        label_key(x.get("metric")),
                        label_key(y.get("metric"))
                    ));
                }
                let ok = if rt == Some("matrix") {
                    pairs_eq(
                        x["values"].as_array().unwrap_or(&empty),
                        y["values"].as_array().unwrap_or(&empty),
                        tol,
                    )
                } else {
                    pairs_eq(
                        std::slice::from_ref(&x["value"]),
                        std::slice::from_ref(&y["value"]),
                        tol,
                    )
                };
                if !ok {
                    return Some(format!("values differ for {}", label_key(x.get("metric"))));
                }
            }
            None
        }
        Some("scalar") => (!pairs_eq(
            std::slice::from_ref(&a["result"]),
            std::slice::from_ref(&b["result"]),
            tol,
        ))
        .then(|| "scalar differs".to_string()),
        Some("streams") => {
            if a == b {
                return None;
            }
            let count = |r: &Vec<Value>| {
                r.iter()
                    .map(|s| s["values"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            };
            if count(ea) != count(eb) {
                return Some(format!(
                    "entry count {} vs {} (streams {} vs {})",
                    count(ea),
                    count(eb),
                    ea.len(),
                    eb.len()
                ));
            }
            if ea.len() != eb.len() {
                return Some(format!("stream count {} vs {}", ea.len(), eb.len()));
            }
            for (x, y) in ea.iter().zip(eb) {
                if x.get("stream") != y.get("stream") {
                    return Some(format!(
                        "stream labels {} vs {}",
                        label_key(x.get("stream")),
                        label_key(y.get("stream"))
                    ));
                }
                if x.get("values") != y.get("values") {
                    return Some(format!("entries differ in {}", label_key(x.get("stream"))));
                }
            }
            Some("answer differs".into())
        }
        _ => (a != b).then(|| "answer differs".to_string()),
    }
}

/// Whether a query's answer may depend on how ties are broken: `topk` and `bottomk` keep `k`
/// series per step, and which of several equal values is kept is unspecified (Loki's choice
/// varies from call to call).
pub(crate) fn breaks_ties(query: &str) -> bool {
    let q = query.trim_start();
    ["topk", "bottomk"].iter().any(|p| q.starts_with(p))
}

/// Whether two matrix or vector answers hold the same values at every timestamp, whichever
/// series hold them: what two correct answers of a tie-breaking query share.
pub(crate) fn same_values_per_timestamp(a: &Answer, b: &Answer, tol: f64) -> bool {
    fn by_time(a: &Answer) -> Option<std::collections::BTreeMap<String, Vec<f64>>> {
        let mut out: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        for s in a.0.get("result")?.as_array()? {
            let points: Vec<&Value> = match (s.get("values"), s.get("value")) {
                (Some(Value::Array(v)), _) => v.iter().collect(),
                (_, Some(v)) => vec![v],
                _ => return None,
            };
            for p in points {
                let t = p.get(0)?.to_string();
                let v: f64 = p.get(1)?.as_str()?.parse().ok()?;
                out.entry(t).or_default().push(v);
            }
        }
        for v in out.values_mut() {
            v.sort_by(f64::total_cmp);
        }
        Some(out)
    }
    let (Some(x), Some(y)) = (by_time(a), by_time(b)) else {
        return false;
    };
    x.len() == y.len()
        && x.iter().zip(&y).all(|((tx, vx), (ty, vy))| {
            tx == ty
                && vx.len() == vy.len()
                && vx
                    .iter()
                    .zip(vy)
                    .all(|(p, q)| num_eq(&json!(p), &json!(q), tol))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two `topk(1, …)` answers that keep different series where their values tie agree up to
    /// tie-breaking; one that keeps a smaller value does not.
    #[test]
    fn tie_breaking_differences_are_recognised() {
        let q = "topk(1, sum by (pod) (rate({app=\"x\"}[1m])))";
        let answer = |series: Value| {
            n(
                json!({"status":"success","data":{"resultType":"matrix","result":series}}),
                q,
                "",
            )
        };
        let a = answer(json!([
            {"metric":{"pod":"a"},"values":[[1,"2"],[2,"5"]]},
            {"metric":{"pod":"c"},"values":[[3,"1"]]}]));
        let b = answer(json!([
            {"metric":{"pod":"a"},"values":[[1,"2"]]},
            {"metric":{"pod":"b"},"values":[[2,"5"]]},
            {"metric":{"pod":"c"},"values":[[3,"1"]]}]));
        let c = answer(json!([
            {"metric":{"pod":"a"},"values":[[1,"2"],[2,"4"]]},
            {"metric":{"pod":"c"},"values":[[3,"1"]]}]));
        assert!(breaks_ties(q) && !breaks_ties("sum(rate({a=\"b\"}[1m]))"));
        assert!(differ(&a, &b, 1e-9).is_some());
        assert!(same_values_per_timestamp(&a, &b, 1e-9));
        assert!(!same_values_per_timestamp(&a, &c, 1e-9));
    }

    const QR: &str = "/loki/api/v1/query_range";

    fn n(body: Value, query: &str, dir: &str) -> Answer {
        normalise(QR, query, dir, 200, Some(&body))
    }

    #[test]
    fn streams_merge_and_order_by_direction() {
        let a = json!({"status":"success","data":{"resultType":"streams","result":[
            {"stream":{"b":"2","a":"1"},"values":[["30","z"],["10","x"]]},
            {"stream":{"a":"1","b":"2"},"values":[["20","y"]]},
            {"stream":{"a":"0"},"values":[["5","w"]]}],"stats":{"summary":{"execTime":0.1}}}});
        let b = json!({"status":"success","data":{"resultType":"streams","result":[
            {"stream":{"a":"0"},"values":[["5","w"]]},
            {"stream":{"a":"1","b":"2"},"values":[["30","z"],["20","y"],["10","x",{"meta":"ignored"}]]}]}});
        let (na, nb) = (
            n(a, "{a=~\".+\"}", "backward"),
            n(b, "{a=~\".+\"}", "backward"),
        );
        assert_eq!(differ(&na, &nb, 1e-9), None);
        assert_eq!(na.size(), 4);
        let streams = na.0["result"].as_array().unwrap();
        assert_eq!(
            streams[1]["values"],
            json!([["30", "z"], ["20", "y"], ["10", "x"]])
        );
        let fwd = n(
            json!({"data":{"resultType":"streams","result":[{"stream":{"a":"1"},"values":[["30","z"],["10","x"]]}]}}),
            "q",
            "FORWARD",
        );
        assert_eq!(
            fwd.0["result"][0]["values"],
            json!([["10", "x"], ["30", "z"]])
        );
    }

    #[test]
    fn streams_report_what_differs() {
        let a = n(
            json!({"data":{"resultType":"streams","result":[{"stream":{"a":"1"},"values":[["1","x"]]}]}}),
            "q",
            "backward",
        );
        let b = n(
            json!({"data":{"resultType":"streams","result":[{"stream":{"a":"1"},"values":[["1","x"],["2","y"]]}]}}),
            "q",
            "backward",
        );
        let c = n(
            json!({"data":{"resultType":"streams","result":[{"stream":{"a":"2"},"values":[["1","x"]]}]}}),
            "q",
            "backward",
        );
        assert!(
            differ(&a, &b, 1e-9)
                .unwrap()
                .starts_with("entry count 1 vs 2")
        );
        assert!(differ(&a, &c, 1e-9).unwrap().starts_with("stream labels"));
    }

    #[test]
    fn matrix_sorted_with_tolerance() {
        let a = n(
            json!({"data":{"resultType":"matrix","result":[
            {"metric":{"app":"b"},"values":[[1,"0.30000000000000004"],[2,"NaN"]]},
            {"metric":{"app":"a"},"values":[[1,"1"]]}]}}),
            "sum by (app) (x)",
            "backward",
        );
        let b = n(
            json!({"data":{"resultType":"matrix","result":[
            {"metric":{"app":"a"},"values":[[1,"1.0000000001"]]},
            {"metric":{"app":"b"},"values":[[1,"0.3"],[2,"NaN"]]}]}}),
            "sum by (app) (x)",
            "backward",
        );
        assert_eq!(differ(&a, &b, 1e-6), None);
        assert!(differ(&a, &b, 1e-12).unwrap().starts_with("values differ"));
        let c = n(
            json!({"data":{"resultType":"matrix","result":[{"metric":{"app":"a"},"values":[[1,"1"]]}]}}),
            "q",
            "backward",
        );
        assert_eq!(differ(&a, &c, 1e-6).unwrap(), "series count 2 vs 1");
        assert_eq!(a.size(), 2);
    }

    #[test]
    fn vectors_keep_order_only_under_sort() {
        let v1 = json!({"data":{"resultType":"vector","result":[{"metric":{"x":"2"},"value":[1,"2"]},{"metric":{"x":"1"},"value":[1,"1"]}]}});
        let v2 = json!({"data":{"resultType":"vector","result":[{"metric":{"x":"1"},"value":[1,"1"]},{"metric":{"x":"2"},"value":[1,"2"]}]}});
        assert_eq!(
            differ(
                &n(v1.clone(), "sum by (x) (y)", ""),
                &n(v2.clone(), "sum by (x) (y)", ""),
                0.0
            ),
            None
        );
        assert!(
            differ(
                &n(v1, "sort_desc(sum by (x) (y))", ""),
                &n(v2, "sort_desc(sum by (x) (y))", ""),
                0.0
            )
            .is_some()
        );
        assert!(
            num_eq(&json!("+Inf"), &json!("+Inf"), 0.0)
                && !num_eq(&json!("+Inf"), &json!("-Inf"), 1.0)
        );
    }

    #[test]
    fn metadata_endpoints_and_errors() {
        let a = normalise(
            "/loki/api/v1/labels",
            "",
            "",
            200,
            Some(&json!({"status":"success","data":["pod","app"]})),
        );
        let b = normalise(
            "/loki/api/v1/labels",
            "",
            "",
            200,
            Some(&json!({"status":"success","data":["app","pod"]})),
        );
        assert_eq!(differ(&a, &b, 0.0), None);
        assert_eq!(a.size(), 2);
        let s1 = normalise(
            "/loki/api/v1/series",
            "",
            "",
            200,
            Some(&json!({"data":[{"b":"1","a":"2"},{"a":"1"}]})),
        );
        let s2 = normalise(
            "/loki/api/v1/series",
            "",
            "",
            200,
            Some(&json!({"data":[{"a":"1"},{"a":"2","b":"1"}]})),
        );
        assert_eq!(differ(&s1, &s2, 0.0), None);
        let e400 = normalise(QR, "q", "", 400, None);
        let e500 = normalise(QR, "q", "", 500, Some(&json!("boom")));
        assert_eq!(e400.0["status"], 400);
        assert_eq!(differ(&e400, &e500, 0.0).unwrap(), "status 400 vs 500");
        assert_eq!(
            differ(&e400, &normalise(QR, "other", "", 400, None), 0.0),
            None
        );
        assert_eq!(differ(&a, &e400, 0.0).unwrap(), "status 200 vs 400");
    }
}
