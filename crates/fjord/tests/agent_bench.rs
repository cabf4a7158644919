//! Agent throughput benchmark: the real `fjord agent` ships N pre-written CRI files to a local
//! `fjord server`; the figures are lines/s and MB/s (wall clock, and per core from the agent's
//! CPU time in `/proc/<pid>/stat`) and the agent's RSS while tailing every file.
//!
//! Without `FJORD_AGENT_BENCH=1` it runs a small smoke version (20 files) so the harness
//! itself stays tested. The figures in BENCHMARKS.md come from
//! `FJORD_AGENT_BENCH=1 cargo test --release -p fjord --test agent_bench -- --nocapture`
//! (`FJORD_AGENT_BENCH_FILES` and `FJORD_AGENT_BENCH_LINES` override 1000 × 1000).

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{Agent, Server, wait_for};

fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    let clk = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    (ticks(11) + ticks(12)) / clk
}

fn proc_status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn agent_throughput() {
    let full = std::env::var("FJORD_AGENT_BENCH").is_ok_and(|v| v == "1");
    let env_num = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (files, lines) = if full {
        (
            env_num("FJORD_AGENT_BENCH_FILES", 1000),
            env_num("FJORD_AGENT_BENCH_LINES", 1000),
        )
    } else {
        (20, 200)
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"), &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let base = now - 3_000 * 1_000_000_000;
    let mut bytes = 0u64;
    for f in 0..files {
        let d = dir.join(format!("pods/ns_pod-{f}_uid-{f}/app"));
        std::fs::create_dir_all(&d).unwrap();
        let mut w = std::io::BufWriter::new(std::fs::File::create(d.join("0.log")).unwrap());
        for i in 0..lines {
            let ts = base + (i as i64) * 1_000_000 + f as i64;
            let t = chrono::DateTime::from_timestamp(
                ts.div_euclid(1_000_000_000),
                ts.rem_euclid(1_000_000_000) as u32,
            )
            .unwrap();
            let line = format!(
                "{} stdout F level=info ts={i} caller=handler.go:42 msg=\"request served\" path=/api/v1/items/{i} status=200 duration_ms={}\n",
                t.format("%Y-%m-%dT%H:%M:%S%.9fZ"),
                i % 997
            );
            bytes += line.len() as u64;
            w.write_all(line.as_bytes()).unwrap();
        }
    }
    let total = (files * lines) as f64;
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"
server: {{health_check_target: false}}
clients:
  - url: {}/loki/api/v1/push
    batchwait: 1s
    batchsize: 1048576
    backoff_config: {{min_period: 100ms, max_period: 2s, max_retries: 0}}
positions: {{filename: {}/positions.yaml}}
scrape_configs:
  - job_name: bench
    pipeline_stages: [{{cri: {{}}}}]
    static_configs:
      - labels: {{job: bench, __path__: "{}/pods/*/*/*.log"}}
"#,
            server.url,
            dir.display(),
            dir.display()
        ),
    )
    .unwrap();
    let start = Instant::now();
    let agent = Agent::start(&cfg);
    let pid = agent.pid().unwrap();
    wait_for(1800, "every line sent", || {
        (agent.metric("promtail_sent_entries_total") >= total).then_some(())
    });
    let wall = start.elapsed().as_secs_f64();
    let cpu = proc_cpu_seconds(pid);
    let rss_peak = proc_status_kb(pid, "VmHWM:");
    // Steady state: every file open and idle.
    std::thread::sleep(Duration::from_secs(2));
    let rss = proc_status_kb(pid, "VmRSS:");
    let active = agent.metric("promtail_files_active_total");
    let mb = bytes as f64 / 1e6;
    println!(
        "agent bench: files={files} lines={} bytes={:.1}MB wall={wall:.2}s agent_cpu={cpu:.2}s \
         lines/s={:.0} MB/s={:.2} lines/s/core={:.0} MB/s/core={:.2} rss_idle={}MiB rss_peak={}MiB files_active={active}",
        files * lines,
        mb,
        total / wall,
        mb / wall,
        total / cpu.max(1e-9),
        mb / cpu.max(1e-9),
        rss / 1024,
        rss_peak / 1024
    );
    assert_eq!(active as usize, files);
}
