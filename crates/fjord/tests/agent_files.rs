//! End to end: the real `fjord agent` tails docker json-file and CRI files into the real
//! `fjord server`, through appends, rename rotation, copy-truncate rotation, a `kill -9` of the
//! agent and a server outage — and every line arrives exactly once, in order per stream, with
//! the right labels (checked through `/loki/api/v1/query_range`).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{Agent, Server, enc, free_port, wait_for};

/// Lines written so far, per (job, stream): what the server must end up with.
#[derive(Default)]
struct Expect {
    /// (job, filename, stream) → lines.
    lines: BTreeMap<(String, String, String), Vec<String>>,
    ts: i64,
}

fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.9fZ")
        .to_string()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Expect {
    fn next_ts(&mut self) -> i64 {
        self.ts += 1_000_000;
        self.ts
    }

    /// Appends `n` docker json-file lines, alternating stdout and stderr.
    fn docker(&mut self, path: &Path, tag: &str, n: usize) {
        let mut text = String::new();
        for i in 0..n {
            let stream = if i % 3 == 0 { "stderr" } else { "stdout" };
            let ts = self.next_ts();
            let msg = format!("{tag} docker line {i} \"quoted\" ünïcode");
            text.push_str(&serde_json::json!({"log": format!("{msg}\n"), "stream": stream, "time": rfc3339(ts)}).to_string());
            text.push('\n');
            self.lines
                .entry((
                    "docker".into(),
                    path.to_string_lossy().into(),
                    stream.into(),
                ))
                .or_default()
                .push(format!("{msg}\n"));
        }
        append(path, &text);
    }

    /// Appends `n` CRI lines; every fifth is split into P + F pieces.
    fn cri(&mut self, path: &Path, tag: &str, n: usize) {
        let mut text = String::new();
        for i in 0..n {
            let stream = if i % 4 == 0 { "stderr" } else { "stdout" };
            let msg = format!("{tag} cri line {i} level=info");
            if i % 5 == 0 {
                let (a, b) = msg.split_at(msg.len() / 2);
                let t1 = self.next_ts();
                let t2 = self.next_ts();
                text.push_str(&format!(
                    "{} {stream} P {a}\n{} {stream} F {b}\n",
                    rfc3339(t1),
                    rfc3339(t2)
                ));
            } else {
                let ts = self.next_ts();
                text.push_str(&format!("{} {stream} F {msg}\n", rfc3339(ts)));
            }
            self.lines
                .entry(("cri".into(), path.to_string_lossy().into(), stream.into()))
                .or_default()
                .push(msg);
        }
        append(path, &text);
    }

    fn total(&self) -> usize {
        self.lines.values().map(Vec::len).sum()
    }
}

/// (filename, stream) → (labels, line) in order.
type StreamsByFile = BTreeMap<(String, String), Vec<(BTreeMap<String, String>, String)>>;

/// All lines of `{job=...}` per (filename, stream), oldest first.
fn query_job(s: &Server, job: &str, start: i64, end: i64) -> StreamsByFile {
    let q = format!("{{job=\"{job}\"}}");
    let v = s.get_json(&format!(
        "/loki/api/v1/query_range?query={}&start={start}&end={end}&limit=5000&direction=forward",
        enc(&q)
    ));
    let mut out: StreamsByFile = BTreeMap::new();
    for r in v["data"]["result"].as_array().cloned().unwrap_or_default() {
        let labels: BTreeMap<String, String> = r["stream"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        let stream = (
            labels.get("filename").cloned().unwrap_or_default(),
            labels.get("stream").cloned().unwrap_or_default(),
        );
        for val in r["values"].as_array().unwrap() {
            out.entry(stream.clone())
                .or_default()
                .push((labels.clone(), val[1].as_str().unwrap().to_string()));
        }
    }
    out
}

fn count_all(s: &Server, start: i64, end: i64) -> usize {
    ["docker", "cri"]
        .iter()
        .map(|j| {
            query_job(s, j, start, end)
                .values()
                .map(Vec::len)
                .sum::<usize>()
        })
        .sum()
}

fn write_config(dir: &Path, server_url: &str) -> PathBuf {
    let cfg = format!(
        r#"
server:
  http_listen_port: 0
  health_check_target: false
clients:
  - url: {server_url}/loki/api/v1/push
    batchwait: 100ms
    batchsize: 65536
    backoff_config: {{min_period: 100ms, max_period: 500ms, max_retries: 0}}
    external_labels: {{cluster: ${{CLUSTER:-test}}}}
positions:
  filename: {dir}/state/positions.yaml
  sync_period: 500ms
target_config:
  sync_period: 300ms
global:
  file_watch_config: {{min_poll_frequency: 50ms, max_poll_frequency: 50ms}}
scrape_configs:
  - job_name: docker
    pipeline_stages: [{{docker: {{}}}}]
    static_configs:
      - targets: [localhost]
        labels: {{job: docker, __path__: "{dir}/docker/*.log"}}
  - job_name: cri
    pipeline_stages: [{{cri: {{}}}}]
    static_configs:
      - targets: [localhost]
        labels: {{job: cri, __path__: "{dir}/pods/**/*.log", __path_exclude__: "{dir}/pods/**/skip.log"}}
"#,
        dir = dir.display()
    );
    let p = dir.join("agent.yaml");
    std::fs::write(&p, cfg).unwrap();
    p
}

#[test]
fn agent_ships_every_line_exactly_once_through_rotation_crash_and_outage() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("docker")).unwrap();
    std::fs::create_dir_all(dir.join("pods/ns_pod_uid/app")).unwrap();
    let data = dir.join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut server = Server::start_on(&data, &addr, &[]);
    let cfg = write_config(dir, &server.url);
    let docker = dir.join("docker/c1-json.log");
    let cri = dir.join("pods/ns_pod_uid/app/0.log");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let mut exp = Expect {
        ts: now - 600 * 1_000_000_000,
        ..Default::default()
    };
    let (start, end) = (exp.ts, now + 600 * 1_000_000_000);
    let all_arrived = |s: &Server, exp: &Expect, what: &str| {
        let want = exp.total();
        wait_for(60, what, || {
            (count_all(s, start, end) >= want).then_some(())
        });
    };

    // Files that exist before the agent starts, and an excluded one.
    exp.docker(&docker, "a", 200);
    exp.cri(&cri, "a", 200);
    append(
        &dir.join("pods/ns_pod_uid/app/skip.log"),
        "2024-01-01T00:00:00Z stdout F excluded\n",
    );
    let mut agent = Agent::start_with_env(&cfg, &[("CLUSTER", "c-1")]);
    all_arrived(&server, &exp, "initial lines");

    // A new file picked up while running.
    let docker2 = dir.join("docker/c2-json.log");
    exp.docker(&docker2, "new-file", 50);
    all_arrived(&server, &exp, "lines of a new file");

    // A file deleted while open is drained: lines written just before the unlink still arrive.
    exp.docker(&docker2, "before-delete", 40);
    std::fs::remove_file(&docker2).unwrap();
    all_arrived(&server, &exp, "lines of a deleted file");

    // Rename rotation: the old file is drained, the new one followed.
    exp.docker(&docker, "before-rename", 30);
    std::fs::rename(&docker, dir.join("docker/c1-json.log.1")).unwrap();
    exp.docker(&docker, "after-rename", 60);
    all_arrived(&server, &exp, "lines around a rename rotation");

    // Copy-truncate rotation.
    std::fs::copy(&cri, dir.join("pods/ns_pod_uid/app/0.log.20240101")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&cri)
        .unwrap();
    exp.cri(&cri, "after-truncate", 40);
    all_arrived(&server, &exp, "lines after copy-truncate");

    // kill -9 while lines are being written, then restart: nothing lost, nothing repeated.
    // The agent is killed right after a burst, while it is still reading and pushing.
    for round in 0..3 {
        exp.docker(&docker, &format!("crash-{round}"), 400);
        exp.cri(&cri, &format!("crash-{round}"), 400);
    }
    agent.kill9();
    exp.docker(&docker, "while-down", 25);
    exp.cri(&cri, "while-down", 25);
    let mut agent = Agent::start_with_env(&cfg, &[("CLUSTER", "c-1")]);
    all_arrived(&server, &exp, "lines across kill -9");

    // Server outage: the agent retries and delivers once the server is back.
    assert_eq!(server.terminate(), 0);
    exp.docker(&docker, "outage", 80);
    exp.cri(&cri, "outage", 80);
    wait_for(30, "a failed push retried", || {
        (agent.metric("promtail_batch_retries_total") > 0.0).then_some(())
    });
    let server = Server::start_on(&data, &addr, &[]);
    exp.docker(&docker, "after-outage", 20);
    all_arrived(&server, &exp, "lines after the outage");

    // Exactly once, in order, with the right labels.
    let mut seen = 0;
    for job in ["docker", "cri"] {
        let got = query_job(&server, job, start, end);
        for ((file, stream), lines) in &got {
            let want = exp
                .lines
                .get(&(job.to_string(), file.clone(), stream.clone()))
                .unwrap_or_else(|| panic!("unexpected stream {job} {file} {stream}"));
            let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            assert_eq!(texts.len(), want.len(), "{job} {file} {stream}: line count");
            assert_eq!(
                texts, want,
                "{job} {file} {stream}: lines in order, exactly once"
            );
            seen += 1;
            for (labels, _) in lines {
                // service_name and detected_level are added by the server (Loki's discovery).
                let keys: Vec<&str> = labels
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !matches!(*k, "service_name" | "detected_level"))
                    .collect();
                assert_eq!(
                    keys,
                    vec!["cluster", "filename", "job", "stream"],
                    "{labels:?}"
                );
                assert_eq!(labels["job"], job);
                assert_eq!(labels["cluster"], "c-1");
            }
        }
    }
    assert_eq!(seen, exp.lines.len(), "every (file, stream) arrived");
    let (_, body) = server
        .get(&format!(
            "/loki/api/v1/query_range?query={}&start={start}&end={end}&limit=10",
            enc("{job=\"cri\"} |= \"excluded\"")
        ))
        .unwrap();
    assert!(
        !body.contains("excluded\""),
        "__path_exclude__ file was shipped: {body}"
    );

    // The agent's metrics use Promtail's names.
    for m in [
        "promtail_read_bytes_total",
        "promtail_read_lines_total",
        "promtail_sent_entries_total",
        "promtail_files_active_total",
    ] {
        assert!(
            agent.metric(m) > 0.0,
            "{m} missing:\n{}",
            agent.get("/metrics").unwrap().1
        );
    }
    assert_eq!(agent.terminate(), 0);
    // The positions file is Promtail's format.
    let pos = std::fs::read_to_string(dir.join("state/positions.yaml")).unwrap();
    assert!(pos.starts_with("positions:"), "{pos}");
    assert!(pos.contains(&cri.to_string_lossy().to_string()), "{pos}");
}
