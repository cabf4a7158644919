//! LogQL conformance: loads the fixed dataset into a real `fjord` process and compares its
//! answers to real Loki's for every recorded case (`tests/data/conformance/`, copied from the
//! shared corpus). Runs three times: right after loading (data in the ingester), after a clean
//! restart (data only in the store, as the ingester flushed it), and after a compaction round
//! rewrote the store and deleted what it replaced, and another restart; all must agree with
//! Loki.
//!
//! Normalisation follows the corpus runner (`run.py`): non-200 answers compare by status;
//! streams are merged by label set and entries ordered by (time, line); series are compared
//! as sorted lists with a relative float tolerance of 1e-9.
//!
//! Cases Fjord is known to answer differently are listed, each with its reason, in
//! `known_differences.txt`; the test fails on any other difference, and also when a listed case
//! starts passing (so the list never goes stale).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use common::{Server, enc, http};
use serde_json::{Value, json};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conformance");
const T0: i64 = 1_705_312_800_000_000_000;
const WINDOW: i64 = 300_000_000_000;

fn load_dataset() -> Vec<Value> {
    let gz = std::fs::read(format!("{DATA}/dataset.jsonl.gz")).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Pushes the dataset as run.py does: five-minute windows in time order, streams in file order.
fn push_dataset(s: &Server, streams: &[Value]) -> usize {
    let mut buckets: BTreeMap<i64, Vec<(usize, Value)>> = BTreeMap::new();
    for (si, st) in streams.iter().enumerate() {
        for e in st["entries"].as_array().unwrap() {
            let ts: i64 = e[0].as_str().unwrap().parse().unwrap();
            buckets
                .entry((ts - T0).div_euclid(WINDOW))
                .or_default()
                .push((si, e.clone()));
        }
    }
    let mut n = 0;
    for (_, entries) in buckets {
        let mut per: Vec<(usize, Vec<Value>)> = Vec::new();
        for (si, e) in entries {
            match per.iter_mut().find(|(i, _)| *i == si) {
                Some((_, v)) => v.push(e),
                None => per.push((si, vec![e])),
            }
        }
        let body = json!({"streams": per.iter().map(|(si, vals)| json!({"stream": streams[*si]["labels"], "values": vals})).collect::<Vec<_>>()});
        n += per.iter().map(|(_, v)| v.len()).sum::<usize>();
        let (status, text) = s
            .post(
                "/loki/api/v1/push",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .unwrap();
        assert!(status / 100 == 2, "push failed: {status} {text}");
    }
    n
}

fn lkey(m: &Value) -> String {
    let mut pairs: Vec<(String, String)> = m
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    serde_json::to_string(&pairs).unwrap()
}

fn is_ordered(case: &Value) -> bool {
    let q = case["params"]["query"].as_str().unwrap_or("").trim_start();
    ["sort(", "sort_desc(", "sort (", "sort_desc ("]
        .iter()
        .any(|p| q.starts_with(p))
}

/// The runner's canonical form of an answer.
fn normalize(case: &Value, status: u16, body: &Value) -> Value {
    if status != 200 {
        return json!({"status": status});
    }
    let ep = case["endpoint"].as_str().unwrap();
    let data = &body["data"];
    if ep.ends_with("/query") || ep.ends_with("/query_range") {
        let rt = data["resultType"].as_str().unwrap_or("");
        let res = &data["result"];
        let out = match rt {
            "streams" => {
                let mut merged: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
                for s in res.as_array().unwrap() {
                    let st = s["stream"].clone();
                    let e = merged.entry(lkey(&st)).or_insert((st, Vec::new()));
                    e.1.extend(s["values"].as_array().cloned().unwrap_or_default());
                }
                let back = case["params"]["direction"]
                    .as_str()
                    .unwrap_or("backward")
                    .to_lowercase()
                    != "forward";
                let streams: Vec<Value> = merged
                    .into_values()
                    .map(|(st, mut vals)| {
                        vals.sort_by(|a, b| {
                            let ka = (
                                a[0].as_str().unwrap().parse::<i64>().unwrap(),
                                a[1].as_str().unwrap().to_string(),
                            );
                            let kb = (
                                b[0].as_str().unwrap().parse::<i64>().unwrap(),
                                b[1].as_str().unwrap().to_string(),
                            );
                            if back { kb.cmp(&ka) } else { ka.cmp(&kb) }
                        });
                        json!({"stream": st, "values": vals})
                    })
                    .collect();
                Value::Array(streams)
            }
            "matrix" => {
                let mut v: Vec<Value> = res
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| json!({"metric": s["metric"], "values": s["values"]}))
                    .collect();
                v.sort_by_key(|s| lkey(&s["metric"]));
                Value::Array(v)
            }
            "vector" => {
                let mut v: Vec<Value> = res
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| json!({"metric": s["metric"], "value": s["value"]}))
                    .collect();
                if !is_ordered(case) {
                    v.sort_by_key(|s| lkey(&s["metric"]));
                }
                Value::Array(v)
            }
            _ => res.clone(),
        };
        return json!({"status": 200, "resultType": rt, "result": out});
    }
    if ep.ends_with("/labels") || ep.contains("/label/") {
        let mut v: Vec<String> = data
            .as_array()
            .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        v.sort();
        return json!({"status": 200, "data": v});
    }
    if ep.ends_with("/series") {
        let mut v: Vec<Value> = data.as_array().cloned().unwrap_or_default();
        v.sort_by_key(lkey);
        return json!({"status": 200, "data": v});
    }
    if ep.contains("/index/volume") {
        let rt = data["resultType"].as_str().unwrap_or("");
        let mut v: Vec<Value> = data["result"].as_array().cloned().unwrap_or_default();
        v.sort_by_key(|s| lkey(&s["metric"]));
        return json!({"status": 200, "resultType": rt, "result": v});
    }
    json!({"status": 200, "body": body})
}

fn num(v: &Value) -> Option<f64> {
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
}

fn num_eq(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (Some(x), Some(y)) = (num(a), num(b)) else {
        return false;
    };
    if x.is_nan() && y.is_nan() {
        return true;
    }
    if x.is_infinite() || y.is_infinite() {
        return x == y;
    }
    (x - y).abs() <= 1e-9 * 1f64.max(x.abs()).max(y.abs())
}

fn pairs_eq(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(p, q)| {
            let (p, q) = (p.as_array(), q.as_array());
            matches!((p, q), (Some(p), Some(q)) if p.len() == 2 && q.len() == 2 && num_eq(&p[0], &q[0]) && num_eq(&p[1], &q[1]))
        })
}

/// `None` when equal, else a short reason (the runner's rules).
fn compare(exp: &Value, got: &Value) -> Option<String> {
    if exp["status"] != got["status"] {
        return Some(format!(
            "status {} != expected {}",
            got["status"], exp["status"]
        ));
    }
    if exp["status"] != 200 {
        return None;
    }
    if exp.get("resultType").is_some() && exp["resultType"] != got["resultType"] {
        return Some(format!(
            "resultType {} != expected {}",
            got["resultType"], exp["resultType"]
        ));
    }
    let rt = exp["resultType"].as_str().unwrap_or("");
    if (rt == "matrix" || rt == "vector") && exp.get("result").is_some() {
        let (e, g) = (
            exp["result"].as_array().unwrap(),
            got["result"].as_array().cloned().unwrap_or_default(),
        );
        if e.len() != g.len() {
            return Some(format!("series count {} != expected {}", g.len(), e.len()));
        }
        for (e, g) in e.iter().zip(&g) {
            if e["metric"] != g["metric"] {
                return Some(format!(
                    "labels {} != expected {}",
                    lkey(&g["metric"]),
                    lkey(&e["metric"])
                ));
            }
            let ok = if rt == "matrix" {
                pairs_eq(
                    e["values"].as_array().unwrap(),
                    g["values"].as_array().map(|v| v.as_slice()).unwrap_or(&[]),
                )
            } else {
                pairs_eq(
                    std::slice::from_ref(&e["value"]),
                    std::slice::from_ref(&g["value"]),
                )
            };
            if !ok {
                return Some(format!("values differ for {}", lkey(&e["metric"])));
            }
        }
        return None;
    }
    if rt == "scalar" {
        return if pairs_eq(
            std::slice::from_ref(&exp["result"]),
            std::slice::from_ref(&got["result"]),
        ) {
            None
        } else {
            Some("scalar differs".into())
        };
    }
    if exp == got {
        return None;
    }
    if rt == "streams" {
        let (e, g) = (
            exp["result"].as_array().unwrap(),
            got["result"].as_array().cloned().unwrap_or_default(),
        );
        let count = |v: &[Value]| {
            v.iter()
                .map(|s| s["values"].as_array().map_or(0, |a| a.len()))
                .sum::<usize>()
        };
        if count(e) != count(&g) {
            return Some(format!(
                "entry count {} != expected {} (streams {} vs {})",
                count(&g),
                count(e),
                g.len(),
                e.len()
            ));
        }
        if e.len() != g.len() {
            return Some(format!("stream count {} != expected {}", g.len(), e.len()));
        }
        for (e, g) in e.iter().zip(&g) {
            if e["stream"] != g["stream"] {
                return Some(format!(
                    "stream labels {} != expected {}",
                    lkey(&g["stream"]),
                    lkey(&e["stream"])
                ));
            }
            if e["values"] != g["values"] {
                return Some(format!("entries differ in {}", lkey(&e["stream"])));
            }
        }
    }
    Some("answer differs".into())
}

fn run_case(s: &Server, case: &Value) -> Option<String> {
    let mut q = Vec::new();
    for (k, v) in case["params"].as_object().unwrap() {
        match v {
            Value::Array(vs) => q.extend(
                vs.iter()
                    .map(|x| format!("{}={}", enc(k), enc(x.as_str().unwrap()))),
            ),
            v => q.push(format!(
                "{}={}",
                enc(k),
                enc(v.as_str().unwrap_or(&v.to_string()))
            )),
        }
    }
    let url = format!(
        "{}{}?{}",
        s.url,
        case["endpoint"].as_str().unwrap(),
        q.join("&")
    );
    let headers: Vec<(String, String)> = case["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text) = match http("GET", &url, &hdrs, b"") {
        Ok(r) => r,
        Err(e) => return Some(format!("request failed: {e}")),
    };
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    let got = normalize(case, status, &body);
    compare(&case["normalized"], &got)
}

/// Known differences: `<case id> <reason>` per line; `#` comments.
fn known_differences() -> HashMap<String, String> {
    let text = std::fs::read_to_string(format!("{DATA}/known_differences.txt")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((id, why)) => (id.to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// Runs every case; returns the failures as (id, reason) and prints per-category counts.
fn run_all(s: &Server, cases: &[Value], phase: &str) -> Vec<(String, String)> {
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for c in cases {
        let id = c["id"].as_str().unwrap().to_string();
        let cat = per
            .entry(c["category"].as_str().unwrap().to_string())
            .or_default();
        match run_case(s, c) {
            None => cat.0 += 1,
            Some(why) => {
                cat.1 += 1;
                failures.push((id, why));
            }
        }
    }
    eprintln!("conformance ({phase}):");
    let (mut p, mut f) = (0, 0);
    for (cat, (ok, bad)) in &per {
        eprintln!("  {cat:<24} {ok:>4} passed {bad:>4} failed");
        p += ok;
        f += bad;
    }
    eprintln!("  {p} passed, {f} failed");
    failures
}

#[test]
fn loki_conformance_corpus() {
    let cases: Vec<Value> = std::fs::read_to_string(format!("{DATA}/cases.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fjord.yaml");
    // The reference server's settings that affect answers (see UPSTREAM-README.md).
    std::fs::write(
        &cfg,
        "limits_config:\n  reject_old_samples: false\n  ingestion_rate_mb: 1024\n  ingestion_burst_size_mb: 1024\n  \
         per_stream_rate_limit: 1GB\n  per_stream_rate_limit_burst: 1GB\n  max_entries_limit_per_query: 100000\n  \
         max_query_series: 100000\n  max_query_length: 0s\n  discover_service_name: []\n  discover_log_levels: false\n  \
         max_line_size: 0\ncompactor:\n  delete_delay: 0s\n",
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let cfg_arg = cfg.to_str().unwrap().to_string();
    let mut s = Server::start(&data_dir, &["--config", &cfg_arg]);
    let pushed = push_dataset(&s, &load_dataset());
    assert_eq!(pushed, 172_104);

    let known = known_differences();
    let mut report = Vec::new();
    for phase in ["ingester", "store", "compacted"] {
        if phase == "compacted" {
            let (status, body) = s.post("/compactor/run", &[], b"").unwrap();
            assert_eq!(status, 200, "{body}");
            let round: Value = serde_json::from_str(&body).unwrap();
            assert!(round["periods_compacted"].as_u64() >= Some(1), "{body}");
            assert!(round["segments_deleted"].as_u64() >= Some(1), "{body}");
        }
        if phase != "ingester" {
            assert_eq!(s.terminate(), 0);
            s = Server::start(&data_dir, &["--config", &cfg_arg]);
        }
        let failures = run_all(&s, &cases, phase);
        for (id, why) in &failures {
            if !known.contains_key(id) {
                report.push(format!("[{phase}] {id}: {why}"));
            }
        }
        let failed: std::collections::HashSet<&String> =
            failures.iter().map(|(id, _)| id).collect();
        for id in known.keys() {
            if !failed.contains(id) {
                report.push(format!(
                    "[{phase}] {id} passes but is listed in known_differences.txt; remove it"
                ));
            }
        }
    }
    assert!(
        report.is_empty(),
        "{} conformance problems:\n{}",
        report.len(),
        report.join("\n")
    );
}
