//! Every push validation error, end to end against the real binary: status code, Loki's message,
//! the discard metric, and that the valid part of a partly-bad push is still stored; and the
//! per-tenant query limits, refused with Loki's messages.

mod common;

use common::{Server, enc, http, json_push, protobuf_push};

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const PROTO: (&str, &str) = ("Content-Type", "application/x-protobuf");

/// Pushes a JSON body whose single stream has the given raw label string (as in protobuf).
fn push_proto(s: &Server, labels: &str, entries: Vec<(i64, String)>) -> (u16, String) {
    s.post(
        "/loki/api/v1/push",
        &[PROTO],
        &protobuf_push(&[(labels, entries)]),
    )
    .unwrap()
}

fn metric(s: &Server, line_prefix: &str) -> f64 {
    let (_, body) = s.get("/metrics").unwrap();
    body.lines()
        .filter(|l| l.starts_with(line_prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "--set",
        "limits_config.discover_service_name=[]",
        "--set",
        "limits_config.discover_log_levels=false",
    ];
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

#[test]
fn every_validation_error_has_lokis_status_and_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            "--set",
            "limits_config.max_line_size=100",
            "--set",
            "limits_config.max_label_names_per_series=3",
            "--set",
            "limits_config.max_label_name_length=10",
            "--set",
            "limits_config.max_label_value_length=20",
            "--set",
            "distributor.max_recv_msg_size=4096",
            "--set",
            "distributor.max_decompressed_size=8192",
        ],
    );
    let now = now_ns();
    let ok = |ts| vec![(ts, "hello".to_string())];

    // Label syntax.
    let (st, body) = push_proto(&s, "{app=api", ok(now));
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with("error parsing labels '{app=api' with error: "),
        "{body}"
    );
    let (st, body) = push_proto(&s, "{}", ok(now));
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "error at least one label pair is required per stream\n"
        )
    );
    let (st, body) = push_proto(&s, r#"{a="1", a="2"}"#, ok(now));
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "stream '{a=\"1\", a=\"2\"}' has duplicate label name: 'a'\n"
        )
    );
    let (st, body) = push_proto(&s, r#"{a="1", b="2", c="3", d="4"}"#, ok(now));
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "entry for stream '{a=\"1\", b=\"2\", c=\"3\", d=\"4\"}' has 4 label names; limit 3\n"
        )
    );
    let (st, body) = push_proto(&s, r#"{averyverylongname="1"}"#, ok(now));
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "stream '{averyverylongname=\"1\"}' has label name too long: 'averyverylongname'\n"
        )
    );
    let long_value = "v".repeat(21);
    let (st, body) = push_proto(&s, &format!(r#"{{a="{long_value}"}}"#), ok(now));
    assert_eq!(
        (st, body),
        (
            400,
            format!("stream '{{a=\"{long_value}\"}}' has label value too long: '{long_value}'\n")
        )
    );

    // Entries.
    let (st, body) = push_proto(&s, r#"{app="api"}"#, vec![(now, "x".repeat(101))]);
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "max entry size '100' bytes exceeded for stream '{app=\"api\"}' while adding an entry with length '101' bytes\n"
        )
    );
    let week_ago = now - 8 * 86_400 * 1_000_000_000;
    let (st, body) = push_proto(&s, r#"{app="api"}"#, ok(week_ago));
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with("entry for stream '{app=\"api\"}' has timestamp too old: ")
            && body.contains(", oldest acceptable timestamp is: "),
        "{body}"
    );
    let (st, body) = push_proto(&s, r#"{app="api"}"#, ok(now + 3600 * 1_000_000_000));
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with("entry for stream '{app=\"api\"}' has timestamp too new: "),
        "{body}"
    );

    // Request-level errors.
    let (st, body) = s
        .post("/loki/api/v1/push", &[JSON], br#"{"streams":[]}"#)
        .unwrap();
    assert_eq!(
        (st, body.as_str()),
        (
            422,
            "error at least one valid stream is required for ingestion\n"
        )
    );
    let (st, body) = s
        .post("/loki/api/v1/push", &[], br#"{"streams":[]}"#)
        .unwrap();
    assert_eq!((st, body.as_str()), (400, "mime: no media type\n"));
    let (st, body) = s
        .post("/loki/api/v1/push", &[JSON], br#"{"streams":[{"stream":"#)
        .unwrap();
    assert_eq!(st, 400, "{body}");
    let (st, body) = s
        .post("/loki/api/v1/push", &[PROTO], b"definitely not snappy")
        .unwrap();
    assert_eq!(st, 400, "{body}");
    let (st, body) = s
        .post(
            "/loki/api/v1/push",
            &[JSON, ("Content-Encoding", "br")],
            b"{}",
        )
        .unwrap();
    assert_eq!(st, 400, "{body}");
    let (st, body) = s
        .post(
            "/loki/api/v1/push",
            &[JSON, ("Content-Encoding", "gzip")],
            b"not gzip at all",
        )
        .unwrap();
    assert_eq!(st, 400, "{body}");

    // Body size: 413 on the wire size, and on the inflated size before inflating it all.
    let big = json_push(&[(&[("app", "api")], vec![(now, "y".repeat(5000))])]);
    let (st, body) = s
        .post("/loki/api/v1/push", &[JSON], big.as_bytes())
        .unwrap();
    assert_eq!(st, 413, "{body}");
    assert!(body.contains("limit: 4096 bytes"), "{body}");
    let bomb = gzip(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 4096);
    let (st, body) = s
        .post(
            "/loki/api/v1/push",
            &[JSON, ("Content-Encoding", "gzip")],
            &bomb,
        )
        .unwrap();
    assert_eq!(st, 413, "{body}");
    assert!(body.contains("limit: 8192 bytes"), "{body}");
    // A snappy header declaring more than its few bytes can expand to: 400 before the
    // declared length is allocated (8000 bytes here; the same check refuses gigabytes).
    let (st, body) = s
        .post("/loki/api/v1/push", &[PROTO], b"\xc0\x3e\x00A")
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("4 bytes cannot decompress to the 8000 bytes"),
        "{body}"
    );

    // A push mixing good and bad streams: 400 naming the bad one, the good one is stored.
    let body = json_push(&[
        (&[("app", "good")], vec![(now, "kept line".into())]),
        (&[("app", "bad")], vec![(now, "z".repeat(200))]),
    ]);
    let (st, msg) = s
        .post("/loki/api/v1/push", &[JSON], body.as_bytes())
        .unwrap();
    assert_eq!(st, 400, "{msg}");
    assert!(msg.contains("stream '{app=\"bad\"}'"), "{msg}");
    let q = s.get_json(&format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}",
        enc(r#"{app=~"good|bad"}"#),
        now - 1_000_000_000,
        now + 1_000_000_000
    ));
    let result = q["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{q}");
    assert_eq!(result[0]["stream"]["app"], "good");
    assert_eq!(result[0]["values"][0][1], "kept line");

    // Several errors are grouped by message, as Loki's `GroupedErrors` writes them.
    let long = |n: usize| (now, "w".repeat(n));
    let (st, msg) = push_proto(&s, r#"{app="api"}"#, vec![long(101), long(101), long(102)]);
    assert_eq!(
        (st, msg.as_str()),
        (
            400,
            "2 errors like: max entry size '100' bytes exceeded for stream '{app=\"api\"}' while adding an entry with length '101' bytes; \
             1 errors like: max entry size '100' bytes exceeded for stream '{app=\"api\"}' while adding an entry with length '102' bytes\n"
        )
    );

    // Every refusal was counted under Loki's discard metric and reason.
    for reason in [
        "line_too_long",
        "greater_than_max_sample_age",
        "too_far_in_future",
        "missing_labels",
        "duplicate_label_names",
        "max_label_names_per_series",
        "label_name_too_long",
        "label_value_too_long",
        "invalid_labels",
    ] {
        let n = metric(
            &s,
            &format!("loki_discarded_samples_total{{reason=\"{reason}\""),
        );
        assert!(
            n >= 1.0,
            "no discarded sample counted for {reason}:\n{}",
            s.get("/metrics").unwrap().1
        );
    }
}

#[test]
fn auth_enabled_requires_a_tenant_and_isolates_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &["--set", "auth_enabled=true"]);
    let now = now_ns();
    let body = protobuf_push(&[(r#"{app="a"}"#, vec![(now, "secret of t1".into())])]);

    let (st, msg) = s.post("/loki/api/v1/push", &[PROTO], &body).unwrap();
    assert_eq!((st, msg.as_str()), (401, "no org id\n"));
    let (st, _) = s.get("/loki/api/v1/labels").unwrap();
    assert_eq!(st, 401);

    let (st, msg) = s
        .post(
            "/loki/api/v1/push",
            &[PROTO, ("X-Scope-OrgID", "t1")],
            &body,
        )
        .unwrap();
    assert_eq!(st, 204, "{msg}");

    let query = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}",
        enc(r#"{app="a"}"#),
        now - 1_000_000_000,
        now + 1_000_000_000
    );
    let as_tenant = |t: &str| {
        let (st, body) = http(
            "GET",
            &format!("{}{query}", s.url),
            &[("X-Scope-OrgID", t)],
            &[],
        )
        .unwrap();
        assert_eq!(st, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"].as_array().unwrap().len()
    };
    assert_eq!(as_tenant("t1"), 1);
    assert_eq!(as_tenant("t2"), 0);
}

#[test]
fn rate_limited_tenant_gets_429_with_lokis_message() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            "--set",
            "limits_config.ingestion_rate_mb=0.001",
            "--set",
            "limits_config.ingestion_burst_size_mb=0.001",
        ],
    );
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..100).map(|i| (now + i, "x".repeat(100))).collect();
    let (st, msg) = push_proto(&s, r#"{app="a"}"#, lines);
    assert_eq!(st, 429, "{msg}");
    assert!(
        msg.starts_with("ingestion rate limit exceeded for user fake (limit: 1048 bytes/sec) while attempting to ingest '100' lines totaling '10000' bytes"),
        "{msg}"
    );
    assert!(metric(&s, "loki_discarded_samples_total{reason=\"rate_limited\"") >= 100.0);
}

#[test]
fn query_limits_are_refused_with_lokis_messages() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            "--set",
            "limits_config.max_entries_limit_per_query=100",
            "--set",
            "limits_config.max_query_series=2",
            "--set",
            "limits_config.max_query_length=1h",
        ],
    );
    let now = now_ns();
    for app in ["a", "b", "c"] {
        let (st, msg) = push_proto(&s, &format!(r#"{{app="{app}"}}"#), vec![(now, "x".into())]);
        assert_eq!(st, 204, "{msg}");
    }
    let minute = 60_000_000_000i64;
    let query = |q: &str, start: i64, limit: usize| {
        s.get(&format!(
            "/loki/api/v1/query_range?query={}&start={start}&end={}&limit={limit}&step=60",
            enc(q),
            now + minute
        ))
        .unwrap()
    };

    let (st, body) = query(r#"{app=~".+"}"#, now - minute, 100);
    assert_eq!(st, 200, "{body}");
    let (st, body) = query(r#"{app=~".+"}"#, now - minute, 101);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query (101 > 100)"
        ),
        "{body}"
    );

    let (st, body) = query(r#"{app=~".+"}"#, now - 2 * 60 * minute, 100);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("the query time range exceeds the limit (query length: 2h1m, limit: 1h)"),
        "{body}"
    );

    let (st, body) = query(
        r#"sum by (app) (count_over_time({app=~"a|b"}[1m]))"#,
        now - minute,
        100,
    );
    assert_eq!(st, 200, "{body}");
    let (st, body) = query(r#"count_over_time({app=~".+"}[1m])"#, now - minute, 100);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("maximum number of series (2) reached for a single query"),
        "{body}"
    );

    // A step of a microsecond asks for 3.6 billion points an hour: volume_range allocated its
    // buckets and was killed for running out of memory. Both range endpoints refuse it.
    for path in [
        "/loki/api/v1/query_range",
        "/loki/api/v1/index/volume_range",
    ] {
        let url = |step: &str| {
            format!(
                "{path}?query={}&start={}&end={now}&step={step}",
                enc(r#"{app=~".+"}"#),
                now - 60 * minute
            )
        };
        let (st, body) = s.get(&url("0.000001")).unwrap();
        assert_eq!(st, 400, "{path}: {body}");
        assert!(
            body.contains("exceeded maximum resolution of 11,000 points per time series"),
            "{path}: {body}"
        );
        let (st, body) = s.get(&url("60")).unwrap();
        assert_eq!(st, 200, "{path}: {body}");
        // Both refuse an end before the start with Loki's message.
        let (st, body) = s
            .get(&format!(
                "{path}?query={}&start={now}&end={}&step=60",
                enc(r#"{app=~".+"}"#),
                now - 60 * minute
            ))
            .unwrap();
        assert_eq!(
            (st, body.as_str()),
            (
                400,
                "end timestamp must not be before or equal to start time\n"
            ),
            "{path}"
        );
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn pushes_in_flight_share_a_memory_budget() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &["--set", "distributor.max_inflight_push_bytes=1MB"],
    );
    let now = now_ns();
    let inflight = |s: &Server| metric(s, "fjord_distributor_inflight_push_bytes ");
    assert_eq!(
        metric(&s, "fjord_distributor_inflight_push_bytes_limit "),
        1048576.0
    );

    // 100,000 empty lines: a 400 KB protobuf body that decodes to 6.4 MB of entries.
    let empty: Vec<(i64, String)> = (0..100_000).map(|i| (now + i, String::new())).collect();
    let (st, body) = push_proto(&s, r#"{app="empty"}"#, empty);
    assert_eq!(st, 413, "{body}");
    assert!(
        body.starts_with("push refused: decoding needs at least ")
            && body.ends_with(
                "bytes of memory, more than the whole limit of 1048576 bytes for pushes in flight (distributor.max_inflight_push_bytes)\n"
            ),
        "{body}"
    );

    // A push held in flight: 800,000 of its 1,000,000 bytes sent.
    let addr = s.url.strip_prefix("http://").unwrap().to_string();
    let mut held = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        held,
        "POST /loki/api/v1/push HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: 1000000\r\n\r\n"
    )
    .unwrap();
    held.write_all(&vec![0u8; 800_000]).unwrap();
    common::wait_for(30, "the held body to be charged", || {
        (inflight(&s) >= 800_000.0).then_some(())
    });

    // What fits beside it is taken; what does not gets 429 until it is done.
    let lines = |n: i64, app: &str| {
        let entries = (0..n).map(|i| (now + i, "x".repeat(100))).collect();
        push_proto(&s, &format!(r#"{{app="{app}"}}"#), entries)
    };
    assert_eq!(lines(100, "small"), (204, String::new()));
    let (st, body) = lines(2_000, "large");
    assert_eq!(st, 429, "{body}");
    assert!(
        body.starts_with("push refused: ")
            && body.contains(" of the limit of 1048576 bytes are free"),
        "{body}"
    );
    held.write_all(&vec![0u8; 200_000]).unwrap();
    let mut answer = String::new();
    held.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert_eq!(inflight(&s), 0.0);
    assert_eq!(lines(2_000, "large"), (204, String::new()));
    assert_eq!(
        metric(&s, "fjord_distributor_push_memory_refused_total "),
        2.0
    );

    // Nothing of the refused pushes was stored; everything acknowledged was.
    let count = |app: &str| {
        let q = enc(&format!(r#"sum(count_over_time({{app="{app}"}}[1h]))"#));
        let v = s.get_json(&format!(
            "/loki/api/v1/query?query={q}&time={}",
            now + 1_800_000_000_000
        ));
        v["data"]["result"][0]["value"][1]
            .as_str()
            .map(|n| n.parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(
        (count("empty"), count("small"), count("large")),
        (0, 100, 2_000)
    );
}

#[test]
fn increment_duplicate_timestamp_skips_refused_entries() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &[
            "--set",
            "limits_config.increment_duplicate_timestamp=true",
            "--set",
            "limits_config.max_line_size=100",
        ],
    );
    let t = now_ns();
    let entries = vec![
        (t, "a".to_string()),
        (t, "b".to_string()),
        (t, "x".repeat(101)),
        (t, "c".to_string()),
        (t + 10, "d".to_string()),
    ];
    let (st, body) = push_proto(&s, r#"{app="dup"}"#, entries);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with("max entry size '100' bytes exceeded"),
        "{body}"
    );
    let v = s.get_json(&format!(
        "/loki/api/v1/query_range?query={}&direction=forward&limit=100&start={}&end={}",
        enc(r#"{app="dup"}"#),
        t - 1_000_000_000,
        t + 1_000_000_000
    ));
    let got: Vec<(i64, String)> = v["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().parse::<i64>().unwrap() - t,
                p[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Each duplicate of a timestamp moves one past the entry before it, and the refused line
    // is not "the entry before".
    let want: Vec<(i64, String)> = [(0, "a"), (1, "b"), (2, "c"), (10, "d")]
        .iter()
        .map(|&(d, l)| (d, l.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_push_of_many_entries_is_validated_off_the_request_thread_with_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &["--set", "limits_config.max_line_size=100"]);
    let t = now_ns();
    // More entries than are validated inline (64K), one of them too long.
    let mut entries: Vec<(i64, String)> =
        (0..70_000).map(|i| (t + i, format!("line {i}"))).collect();
    entries[12_345].1 = "x".repeat(101);
    let (st, body) = push_proto(&s, r#"{app="many"}"#, entries);
    assert_eq!(
        (st, body.as_str()),
        (
            400,
            "max entry size '100' bytes exceeded for stream '{app=\"many\"}' while adding an entry with length '101' bytes\n"
        )
    );
    let q = enc(r#"sum(count_over_time({app="many"}[1h]))"#);
    let v = s.get_json(&format!(
        "/loki/api/v1/query?query={q}&time={}",
        t + 1_800_000_000_000
    ));
    assert_eq!(v["data"]["result"][0]["value"][1], "69999");
}

#[test]
fn metric_queries_whose_series_would_outgrow_memory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]);
    let t0 = now_ns() - 3_600_000_000_000;
    // 10,000 distinct lines over the last hour.
    let lines: Vec<(i64, String)> = (0..10_000)
        .map(|i| (t0 + i * 360_000_000, format!("v{i} {i}")))
        .collect();
    let (st, body) = push_proto(&s, r#"{app="many"}"#, lines);
    assert_eq!(st, 204, "{body}");
    let range = |q: &str, step: &str| {
        s.get(&format!(
            "/loki/api/v1/query_range?query={}&start={t0}&end={}&step={step}",
            enc(q),
            t0 + 3_600_000_000_000
        ))
        .unwrap()
    };
    // A series per line at 3,601 steps: past the 8 M values a query may hold. Both the
    // per-step totals (count_over_time) and the samples (avg_over_time) paths stop early. Where
    // those series are the result's, the refusal is Loki's series limit, which they pass too.
    for q in [
        r#"count_over_time({app="many"} | regexp "(?P<l>.*)" [1m])"#,
        r#"sum by (l) (count_over_time({app="many"} | regexp "(?P<l>.*)" [1m]))"#,
        r#"avg_over_time({app="many"} | regexp "(?P<l>\\w+) (?P<n>\\d+)" | unwrap n [1m])"#,
    ] {
        let (st, body) = range(q, "1s");
        assert_eq!(st, 400, "{q}: {body}");
        assert!(
            body.starts_with("maximum number of series (500) reached for a single query"),
            "{q}: {body}"
        );
    }
    // An aggregation evaluated after the range aggregation could have fewer series, as in Loki;
    // the refusal says what was exceeded.
    let (st, body) = range(
        r#"max(count_over_time({app="many"} | regexp "(?P<l>.*)" [1m]))"#,
        "1s",
    );
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with(
            "maximum number of values (8388608) held for a single query reached: more than 2329 series at 3601 steps"
        ),
        "{body}"
    );
    // Aggregated away, or at a coarser step, the same extraction answers.
    let (st, body) = range(
        r#"sum(count_over_time({app="many"} | regexp "(?P<l>.*)" [1h]))"#,
        "1s",
    );
    assert_eq!(st, 200, "{body}");
    let (st, body) = range(
        r#"count_over_time({app="many"} | regexp "(?P<l>.*)" [1m])"#,
        "60s",
    );
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with("maximum number of series (500) reached for a single query"),
        "{body}"
    );
    // Windows with gaps between them: the series of lines between windows are in no step's
    // answer, so the range aggregation holds them without being refused at Loki's limit, and
    // the query answers with the series its windows saw.
    let (st, body) = range(
        r#"count_over_time({app="many"} | regexp "(?P<l>.*)" [1s])"#,
        "60s",
    );
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = v["data"]["result"].as_array().unwrap().len();
    assert!((61..500).contains(&series), "{series} series");
}

#[test]
fn metric_queries_share_a_series_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(
        dir.path(),
        &["--set", "querier.max_inflight_series_bytes=1MB"],
    );
    assert_eq!(
        metric(&s, "fjord_querier_inflight_series_bytes_limit "),
        1048576.0
    );
    let t0 = now_ns() - 3_600_000_000_000;
    // 5,000 distinct lines of 200 bytes: a series of each takes more than 1 MB.
    let lines: Vec<(i64, String)> = (0..5_000)
        .map(|i| (t0 + i * 600_000_000, format!("{i:05} {}", "y".repeat(194))))
        .collect();
    let (st, body) = push_proto(&s, r#"{app="long"}"#, lines);
    assert_eq!(st, 204, "{body}");
    let instant = |q: &str| {
        s.get(&format!(
            "/loki/api/v1/query?query={}&time={}",
            enc(q),
            t0 + 3_600_000_000_000
        ))
        .unwrap()
    };
    let (st, body) =
        instant(r#"max(count_over_time({app="long"} | label_format l="{{__line__}}" [2h]))"#);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with(
            "the series this query holds while it is evaluated need more than the 1048576 bytes all queries' series may hold (querier.max_inflight_series_bytes)"
        ),
        "{body}"
    );
    assert!(metric(&s, "fjord_querier_series_memory_refused_total ") >= 1.0);
    // Where the series are the result's, Loki's limit refuses the query first, at 501 series.
    let (st, body) =
        instant(r#"count_over_time({app="long"} | label_format l="{{__line__}}" [2h])"#);
    assert_eq!(st, 400, "{body}");
    assert!(
        body.starts_with("maximum number of series (500) reached for a single query"),
        "{body}"
    );
    // Fewer series fit.
    let (st, body) = instant(r#"max(count_over_time({app="long"} | regexp "^(?P<l>\\d)" [2h]))"#);
    assert_eq!(st, 200, "{body}");
    assert!(body.contains(r#""value":["#), "{body}");
    assert_eq!(metric(&s, "fjord_querier_inflight_series_bytes "), 0.0);
}
