//! What an operator sees: `--help`, `--print-config`, config errors, the operations
//! endpoints (`/ready`, `/metrics` with Loki's metric names, buildinfo, `/config`, `/flush`),
//! and the compactor working in the background.

mod common;

use std::process::{Command, Stdio};

use common::{Server, enc, protobuf_push, sample_sum, store_read_bytes};

fn fjord(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("fjord runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[test]
fn help_explains_every_server_flag() {
    let (code, out, _) = fjord(&["--help"]);
    assert_eq!(code, 0);
    for sub in ["server", "agent"] {
        assert!(out.contains(sub), "fjord --help lacks {sub}:\n{out}");
    }
    let (code, out, _) = fjord(&["server", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--config",
        "--config.expand-env",
        "--http-listen-address",
        "--data-dir",
        "--target",
        "--set",
        "--print-config",
    ] {
        assert!(
            out.contains(flag),
            "fjord server --help lacks {flag}:\n{out}"
        );
    }
}

#[test]
fn print_config_shows_the_effective_config_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fjord.yaml");
    std::fs::write(&cfg, "limits_config: {reject_old_samples: false}\n").unwrap();
    let (code, out, err) = fjord(&[
        "server",
        "--config",
        cfg.to_str().unwrap(),
        "--http-listen-address",
        "127.0.0.1:4100",
        "--data-dir",
        "/tmp/somewhere",
        "--set",
        "limits_config.max_line_size=1KB",
        "--print-config",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_yaml::Value = serde_yaml::from_str(&out).expect("printed config is YAML");
    assert_eq!(v["limits_config"]["reject_old_samples"], false);
    assert_eq!(v["limits_config"]["max_line_size"], "1KB");
    assert_eq!(v["server"]["http_listen_address"], "127.0.0.1");
    assert_eq!(v["server"]["http_listen_port"], 4100);
    assert_eq!(v["common"]["path_prefix"], "/tmp/somewhere");
    // Untouched keys keep Loki's defaults.
    assert_eq!(v["limits_config"]["max_label_names_per_series"], 15);
    assert_eq!(v["limits_config"]["reject_old_samples_max_age"], "1w");
}

#[test]
fn config_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("fjord.yaml");
    std::fs::write(&cfg, "limits_config:\n  max_line_sise: 10\n").unwrap();
    let (code, _, err) = fjord(&[
        "server",
        "--config",
        cfg.to_str().unwrap(),
        "--print-config",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("max_line_sise"), "{err}");
    let (code, _, err) = fjord(&["server", "--config", "/nonexistent/fjord.yaml"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/fjord.yaml"), "{err}");
    let (code, _, err) = fjord(&["server", "--set", "nonsense", "--print-config"]);
    assert_ne!(code, 0);
    assert!(err.contains("nonsense"), "{err}");
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[]);
    let (code, _, err) = fjord(&[
        "server",
        "--http-listen-address",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("is in use by another fjord process"), "{err}");
}

#[test]
fn operations_endpoints_answer_like_loki() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);

    let (st, body) = s.get("/ready").unwrap();
    assert_eq!((st, body.trim()), (200, "ready"));

    let info = s.get_json("/loki/api/v1/status/buildinfo");
    let version = info["version"].as_str().unwrap();
    assert!(
        version.starts_with("3."),
        "Grafana needs a Loki 3 version: {info}"
    );
    for key in ["revision", "branch", "buildUser", "buildDate", "goVersion"] {
        assert!(info.get(key).is_some(), "buildinfo lacks {key}: {info}");
    }

    let (st, cfg) = s.get("/config").unwrap();
    assert_eq!(st, 200);
    let cfg: serde_yaml::Value = serde_yaml::from_str(&cfg).unwrap();
    assert!(cfg["limits_config"]["max_line_size"].is_string());

    // Push, query, then check the counters Loki's dashboards use.
    let now = now_ns();
    let lines: Vec<(i64, String)> = (0..10).map(|i| (now + i, format!("line {i}"))).collect();
    let (st, _) = s
        .post(
            "/loki/api/v1/push",
            &[("Content-Type", "application/x-protobuf")],
            &protobuf_push(&[(r#"{app="ops"}"#, lines)]),
        )
        .unwrap();
    assert_eq!(st, 204);
    let query = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}",
        enc(r#"{app="ops"}"#),
        now - 1_000_000_000,
        now + 1_000_000_000
    );
    s.get_json(&query);
    let (st, metrics) = s.get("/metrics").unwrap();
    assert_eq!(st, 200);
    let value_with = |name: &str, labels: &[&str]| sample_sum(&metrics, name, labels);
    let value = |name: &str| value_with(name, &[]);
    assert_eq!(value("loki_distributor_lines_received_total{"), 10.0);
    // Line bytes plus structured metadata bytes, as Loki counts them: level discovery gave
    // each line `detected_level="unknown"` (21 bytes).
    assert_eq!(
        value("loki_distributor_bytes_received_total{"),
        (60 + 10 * 21) as f64
    );
    assert_eq!(value("loki_ingester_streams_created_total{"), 1.0);
    assert_eq!(value("loki_ingester_memory_streams{"), 1.0);
    assert!(
        value_with(
            "loki_request_duration_seconds_count{",
            &[
                "route=\"loki_api_v1_push\"",
                "method=\"POST\"",
                "status_code=\"204\""
            ]
        ) >= 1.0,
        "push not counted:\n{metrics}"
    );
    assert!(
        value_with(
            "loki_request_duration_seconds_count{",
            &["route=\"loki_api_v1_query_range\"", "status_code=\"200\""]
        ) >= 1.0,
        "query not counted:\n{metrics}"
    );
    assert!(value("process_resident_memory_bytes") > 0.0);

    // /flush empties memory into the store and truncates the WAL.
    let (st, body) = s.post("/flush", &[], b"").unwrap();
    assert_eq!(st, 204, "{body}");
    assert!(
        wal_bytes(&dir.path().join("wal")) < 4096,
        "WAL not truncated after /flush"
    );

    // A search over the store reads the chunk's tail; its filter rules the block out.
    let search = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}",
        enc(r#"{app="ops"} |= "in no line at all""#),
        now - 1_000_000_000,
        now + 1_000_000_000
    );
    assert_eq!(s.get_json(&search)["data"]["result"], serde_json::json!([]));
    let metrics = s.get("/metrics").unwrap().1;
    let read = |part: &str| store_read_bytes(&metrics, part);
    assert!(read("tail") > 0.0, "{metrics}");
    assert_eq!(read("block") + read("chunk"), 0.0, "{metrics}");

    // Flushed blocks are compressed: the first query decodes them (block cache misses), the
    // same query again finds them decoded (hits), with the same answer.
    let first = s.get_json(&query);
    let again = s.get_json(&query);
    assert_eq!(first["data"]["result"], again["data"]["result"]);
    let metrics = s.get("/metrics").unwrap().1;
    let value = |name: &str| sample_sum(&metrics, name, &[]);
    assert!(
        value("fjord_querier_block_cache_misses_total") >= 1.0,
        "{metrics}"
    );
    assert!(
        value("fjord_querier_block_cache_hits_total") >= 1.0,
        "{metrics}"
    );
    assert!(value("fjord_querier_block_cache_bytes") > 0.0, "{metrics}");
    // The default budget is an eighth of the memory limit, at least 64 MiB.
    assert!(
        value("fjord_querier_block_cache_budget_bytes") >= (64 << 20) as f64,
        "{metrics}"
    );
    assert_eq!(cfg["querier"]["block_cache_size_mb"].as_str(), Some("auto"));
}

/// With a short quiet period the server's own compaction loop rewrites a flushed day and
/// deletes what it replaced; the lines read back the same, also after a restart.
#[test]
fn the_compactor_rewrites_a_quiet_day_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--set",
        "compactor.compaction_interval=1s",
        "--set",
        "compactor.quiet_period=5s",
        "--set",
        "compactor.delete_delay=0s",
    ];
    let mut s = Server::start(dir.path(), &args);
    // All lines in one UTC day: a chunk crossing midnight would be carried, keeping its segment.
    let base = common::earlier_today_ns();
    for batch in 0..3i64 {
        let lines: Vec<(i64, String)> = (0..200)
            .map(|i| (base + batch * 1000 + i, format!("batch {batch} line {i}")))
            .collect();
        s.push_and_flush(r#"{app="quiet"}"#, lines);
    }
    let query = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit=1000",
        enc(r#"{app="quiet"}"#),
        base,
        base + 10_000
    );
    let before = s.get_json(&query)["data"]["result"].clone();
    let store = dir.path().join("store/segments/fake");
    let segments = || std::fs::read_dir(&store).unwrap().count();
    assert_eq!(segments(), 3, "one segment per flush");
    common::wait_for(30, "the compaction loop", || {
        let metrics = s.get("/metrics").unwrap().1;
        (sample_sum(&metrics, "fjord_compactor_periods_compacted_total", &[]) >= 1.0
            && segments() == 1)
            .then_some(())
    });
    let metrics = s.get("/metrics").unwrap().1;
    assert!(
        sample_sum(
            &metrics,
            "loki_compactor_last_successful_run_timestamp_seconds",
            &[]
        ) > 0.0
    );
    assert_eq!(
        sample_sum(
            &metrics,
            "fjord_compactor_deleted_objects_total",
            &["kind=\"segment\""]
        ),
        3.0,
        "{metrics}"
    );
    assert_eq!(s.get_json(&query)["data"]["result"], before);
    assert_eq!(s.terminate(), 0);
    let s = Server::start(dir.path(), &args);
    let after = s.get_json(&query)["data"]["result"].clone();
    assert_eq!(after, before);
    assert_eq!(
        after[0]["values"].as_array().map(Vec::len),
        Some(600),
        "{after}"
    );
}

fn wal_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            wal_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}
