//! End to end: the real `fjord` binary takes pushes in protobuf+snappy and JSON, answers log
//! queries exactly (directions, limits, bounds, selectors, filters), keeps every acknowledged
//! line through `kill -9`, and flushes everything to the store on a clean shutdown; hostile
//! lines are stored, queried and compacted without taking the server down.

mod common;

use std::collections::BTreeMap;

use common::{Server, enc, json_push, protobuf_push};

const APPS: [&str; 5] = ["api", "web", "db", "auth", "worker"];
const NAMESPACES: [&str; 2] = ["prod", "dev"];
const STREAMS_PER: usize = 2;
const LINES_PER_STREAM: usize = 150;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Line {
    labels: BTreeMap<String, String>,
    ts: i64,
    line: String,
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// 20 streams of 150 lines, every timestamp distinct, within the last 30 minutes.
fn dataset(base: i64) -> Vec<Line> {
    let mut out = Vec::new();
    let mut i = 0i64;
    for ns in NAMESPACES {
        for app in APPS {
            for pod in 0..STREAMS_PER {
                let labels: BTreeMap<String, String> = [
                    ("app", app.to_string()),
                    ("namespace", ns.to_string()),
                    ("pod", format!("{app}-{pod}")),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                for n in 0..LINES_PER_STREAM {
                    let level = if n % 10 == 0 { "error" } else { "info" };
                    let line = format!(
                        "level={level} app={app} n={n} msg=\"request <{i}> done\" user=u{}",
                        (i * 7) % 13
                    );
                    out.push(Line {
                        labels: labels.clone(),
                        ts: base + (n as i64 * 20 + i % 20) * 1_000_000_000 / 2 + i,
                        line,
                    });
                    i += 1;
                }
            }
        }
    }
    out
}

fn label_string(l: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Pushes half the streams as protobuf+snappy and half as JSON, in batches.
fn push_all(s: &Server, data: &[Line]) {
    let mut by_stream: BTreeMap<String, Vec<&Line>> = BTreeMap::new();
    for l in data {
        by_stream
            .entry(label_string(&l.labels))
            .or_default()
            .push(l);
    }
    for (i, (labels, lines)) in by_stream.iter().enumerate() {
        for batch in lines.chunks(50) {
            let entries: Vec<(i64, String)> =
                batch.iter().map(|l| (l.ts, l.line.clone())).collect();
            let (status, body) = if i % 2 == 0 {
                let body = protobuf_push(&[(labels.as_str(), entries)]);
                s.post(
                    "/loki/api/v1/push",
                    &[("Content-Type", "application/x-protobuf")],
                    &body,
                )
                .unwrap()
            } else {
                let pairs: Vec<(&str, &str)> = batch[0]
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let body = json_push(&[(&pairs, entries)]);
                s.post(
                    "/loki/api/v1/push",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                )
                .unwrap()
            };
            assert_eq!(status, 204, "push failed: {body}");
        }
    }
}

/// Runs a log query and flattens the answer.
fn query(s: &Server, q: &str, start: i64, end: i64, limit: usize, forward: bool) -> Vec<Line> {
    let dir = if forward { "forward" } else { "backward" };
    let path = format!(
        "/loki/api/v1/query_range?query={}&start={start}&end={end}&limit={limit}&direction={dir}",
        enc(q)
    );
    let j = s.get_json(&path);
    assert_eq!(j["status"], "success");
    assert_eq!(j["data"]["resultType"], "streams", "{j}");
    let mut out = Vec::new();
    let mut prev_key: Option<String> = None;
    for stream in j["data"]["result"].as_array().unwrap() {
        let labels: BTreeMap<String, String> = stream["stream"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let key = label_string(&labels);
        assert!(
            prev_key.as_ref().is_none_or(|p| *p < key),
            "streams are sorted by labels"
        );
        prev_key = Some(key);
        let values = stream["values"].as_array().unwrap();
        let times: Vec<i64> = values
            .iter()
            .map(|v| v[0].as_str().unwrap().parse().unwrap())
            .collect();
        if forward {
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "entries ascend in a forward query"
            );
        } else {
            assert!(
                times.windows(2).all(|w| w[0] >= w[1]),
                "entries descend in a backward query"
            );
        }
        for v in values {
            out.push(Line {
                labels: labels.clone(),
                ts: v[0].as_str().unwrap().parse().unwrap(),
                line: v[1].as_str().unwrap().to_string(),
            });
        }
    }
    out.sort();
    out
}

/// The expected answer: matching lines in `[start, end)`, the `limit` newest (backward) or
/// oldest (forward).
fn expect(
    data: &[Line],
    keep: impl Fn(&Line) -> bool,
    start: i64,
    end: i64,
    limit: usize,
    forward: bool,
) -> Vec<Line> {
    let mut m: Vec<Line> = data
        .iter()
        .filter(|l| l.ts >= start && l.ts < end && keep(l))
        .cloned()
        .collect();
    m.sort_by_key(|l| l.ts);
    if !forward {
        m.reverse();
    }
    m.truncate(limit);
    m.sort();
    m
}

/// Compares answers, reporting only the first difference (answers hold thousands of lines).
#[track_caller]
fn assert_same(got: Vec<Line>, want: Vec<Line>, what: &str) {
    if got == want {
        return;
    }
    let first = got
        .iter()
        .zip(&want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    panic!(
        "{what}: got {} lines, want {}; first difference at {first}:\n  got  {:?}\n  want {:?}",
        got.len(),
        want.len(),
        got.get(first),
        want.get(first)
    );
}

/// Server flags for this suite: no label discovery, so answers carry exactly the pushed labels.
const PLAIN: &[&str] = &[
    "--set",
    "limits_config.discover_service_name=[]",
    "--set",
    "limits_config.discover_log_levels=false",
];

fn data_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The whole query suite, used before and after restarts.
fn check_queries(s: &Server, data: &[Line], base: i64) {
    let end = base + 3600 * 1_000_000_000;
    let all = |_: &Line| true;
    let prod_api = |l: &Line| l.labels["app"] == "api" && l.labels["namespace"] == "prod";
    // Everything, both directions, a limit above the total.
    for forward in [false, true] {
        assert_same(
            query(s, r#"{namespace=~".+"}"#, base, end, 5000, forward),
            expect(data, all, base, end, 5000, forward),
            "all streams",
        );
    }
    // Limits cut at the newest/oldest entries across streams.
    for forward in [false, true] {
        assert_same(
            query(s, r#"{namespace=~"prod|dev"}"#, base, end, 37, forward),
            expect(data, all, base, end, 37, forward),
            "limit across streams",
        );
    }
    // Equality selector and time bounds (start inclusive, end exclusive).
    let (t0, t1) = (data[200].ts, data[2500].ts);
    assert_same(
        query(s, r#"{app="api", namespace="prod"}"#, t0, t1, 5000, true),
        expect(data, prod_api, t0, t1, 5000, true),
        "equality selector and bounds",
    );
    let exact = data.iter().find(|l| prod_api(l)).unwrap();
    let got = query(
        s,
        r#"{app="api", namespace="prod"}"#,
        exact.ts,
        exact.ts + 1,
        10,
        false,
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].line, exact.line);
    let after = query(
        s,
        r#"{app="api", namespace="prod"}"#,
        exact.ts + 1,
        exact.ts + 2,
        10,
        false,
    );
    assert_same(
        after,
        expect(data, prod_api, exact.ts + 1, exact.ts + 2, 10, false),
        "one-nanosecond window",
    );
    // Negative matchers.
    let not_api = |l: &Line| l.labels["app"] != "api" && !l.labels["namespace"].starts_with('d');
    assert_same(
        query(
            s,
            r#"{app!="api", namespace!~"d.*", pod=~".+"}"#,
            base,
            end,
            5000,
            false,
        ),
        expect(data, not_api, base, end, 5000, false),
        "negative matchers",
    );
    // Line filters, chained.
    let errors = |l: &Line| l.line.contains("level=error") && !l.line.contains("app=db");
    assert_same(
        query(
            s,
            r#"{namespace=~".+"} |= "level=error" != "app=db""#,
            base,
            end,
            5000,
            false,
        ),
        expect(data, errors, base, end, 5000, false),
        "chained substring filters",
    );
    let re = regex::Regex::new(r"user=u(1|12)$").unwrap();
    let by_re = |l: &Line| re.is_match(&l.line) && !l.line.contains("n=1 ");
    assert_same(
        query(
            s,
            r#"{namespace=~".+"} |~ "user=u(1|12)$" !~ "n=1 ""#,
            base,
            end,
            100,
            true,
        ),
        expect(data, by_re, base, end, 100, true),
        "regex filters",
    );
}

#[test]
fn pushes_are_queryable_exactly_and_survive_kill_and_restart() {
    let dir = data_dir();
    let base = now_ns() - 1800 * 1_000_000_000;
    let data = dataset(base);
    assert_eq!(data.len(), 3000);

    let mut s = Server::start(dir.path(), PLAIN);
    push_all(&s, &data);
    check_queries(&s, &data, base);

    // Crash right after the last acknowledged push: everything comes back from the WAL.
    s.kill9();
    let mut s = Server::start(dir.path(), PLAIN);
    check_queries(&s, &data, base);

    // Half flushed, half not: queries spanning both return each line once.
    let (status, body) = s.post("/flush", &[], b"").unwrap();
    assert_eq!(status, 204, "{body}");
    let more: Vec<Line> = dataset(base + 1)
        .into_iter()
        .map(|mut l| {
            l.line.push_str(" second");
            l
        })
        .collect();
    push_all(&s, &more);
    let both: Vec<Line> = data.iter().chain(more.iter()).cloned().collect();
    check_queries(&s, &both, base);

    // A clean shutdown flushes everything; the next start replays nothing.
    assert_eq!(s.terminate(), 0, "clean exit; log:\n{}", s.log());
    let s = Server::start(dir.path(), PLAIN);
    assert!(
        s.log().contains("entries=0"),
        "nothing left to replay after a clean shutdown; log:\n{}",
        s.log()
    );
    check_queries(&s, &both, base);

    // Read in slices of about 1 KiB of compressed chunks (at least a minute each): the same
    // answers, for log queries and a metric query alike.
    let end = base + 3600 * 1_000_000_000;
    let errors_per_app = format!(
        "/loki/api/v1/query_range?query={}&start={base}&end={end}&step=60",
        enc(r#"sum by (app) (count_over_time({namespace=~".+"} |= "level=error" [5m]))"#)
    );
    let at_once = s.get_json(&errors_per_app)["data"]["result"].clone();
    assert_eq!(at_once.as_array().map(Vec::len), Some(APPS.len()));
    let (_, metrics) = s.get("/metrics").unwrap();
    assert!(
        metrics.contains(&format!(
            "fjord_store_chunk_cache_limit_bytes {}",
            256 << 20
        )),
        "{metrics}"
    );
    let mut s = s;
    assert_eq!(s.terminate(), 0, "clean exit; log:\n{}", s.log());
    let sliced: Vec<&str> = PLAIN
        .iter()
        .copied()
        .chain(["--set", "querier.read_slice_bytes=1KB"])
        .collect();
    let s = Server::start(dir.path(), &sliced);
    assert!(
        s.log().contains("slice_bytes=1024"),
        "the slice budget is logged; log:\n{}",
        s.log()
    );
    check_queries(&s, &both, base);
    assert_eq!(s.get_json(&errors_per_app)["data"]["result"], at_once);
}

/// A line whose JSON nests 40,000 objects deep (240 KB, under the default line limit) overflowed
/// the stack of whichever thread walked it with `| json`: a query worker, or the compactor
/// building field columns, which then aborted again after every restart.
#[test]
fn deeply_nested_json_is_a_parser_error_in_queries_and_compaction() {
    let dir = data_dir();
    let s = Server::start(dir.path(), PLAIN);
    let base = now_ns() - 2 * 86_400_000_000_000;
    let depth = 40_000;
    let deep = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    let stream = r#"{app="hostile"}"#;
    s.push_and_flush(
        stream,
        vec![(base, r#"{"msg":"fine"}"#.to_string()), (base + 1, deep)],
    );
    let (st, body) = s.post("/compactor/run", &[], b"").unwrap();
    assert_eq!(st, 200, "{body}; log:\n{}", s.log());
    assert!(body.contains(r#""periods_compacted":1"#), "{body}");
    let q = s.get_json(&format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&direction=forward",
        enc(r#"{app="hostile"} | json"#),
        base,
        base + 2
    ));
    let streams = q["data"]["result"].as_array().unwrap();
    let parsed = |key: &str| streams.iter().find(|r| r["stream"].get(key).is_some());
    assert_eq!(parsed("msg").unwrap()["stream"]["msg"], "fine", "{q}");
    let failed = parsed("__error__").unwrap_or_else(|| panic!("{q}"));
    assert_eq!(failed["stream"]["__error__"], "JSONParserErr");
    assert_eq!(
        failed["stream"]["__error_details__"],
        "Objects nest more than 128 deep"
    );
}
