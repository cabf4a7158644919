//! Test harness: runs the real `fjord` binary on a loopback port with a temporary data
//! directory, and talks HTTP to it like a client would.

#![allow(dead_code, unreachable_pub)] // shared by several test binaries, each using a part

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// A running `fjord server`.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub data_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `fjord server` on 127.0.0.1 (a free port) with `data_dir` and extra arguments,
    /// and waits until it is ready.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_on(data_dir, "127.0.0.1:0", extra)
    }

    /// Like [`Server::start`], on a given address (to restart a server where its clients
    /// expect it).
    pub fn start_on(data_dir: &Path, addr: &str, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.arg("server")
            .arg("--http-listen-address")
            .arg(addr)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("fjord binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(i) = line.find("listening on http://") {
                        let url = line[i + "listening on ".len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send(url);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "fjord did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        let s = Server {
            child: Some(child),
            url,
            data_dir: data_dir.to_path_buf(),
            log,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = self.get("/ready") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("fjord never became ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> i32 {
        let mut c = self.child.take().expect("running");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("kill command runs");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("fjord did not exit after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path_and_query: &str) -> Result<(u16, String), String> {
        http("GET", &format!("{}{}", self.url, path_and_query), &[], &[])
    }

    pub fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, String), String> {
        http("POST", &format!("{}{}", self.url, path), headers, body)
    }

    /// Pushes `lines` of `stream` as protobuf and flushes them, so they land in one segment of
    /// the store; both must succeed.
    pub fn push_and_flush(&self, stream: &str, lines: Vec<(i64, String)>) {
        self.push_streams_and_flush(&[(stream, lines)]);
    }

    /// [`Server::push_and_flush`] for several streams, all in one segment.
    pub fn push_streams_and_flush(&self, streams: &[(&str, Vec<(i64, String)>)]) {
        let (st, body) = self
            .post(
                "/loki/api/v1/push",
                &[("Content-Type", "application/x-protobuf")],
                &protobuf_push(streams),
            )
            .unwrap();
        assert_eq!(st, 204, "{body}");
        let (st, body) = self.post("/flush", &[], b"").unwrap();
        assert_eq!(st, 204, "{body}");
    }

    /// GET that must succeed with 200; returns the JSON body.
    pub fn get_json(&self, path_and_query: &str) -> serde_json::Value {
        let (status, body) = self.get(path_and_query).expect("request");
        assert_eq!(status, 200, "GET {path_and_query}: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path_and_query}: bad JSON ({e}): {body}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal blocking HTTP/1.1 client over a loopback TCP connection, so tests need no async
/// runtime. Handles `Content-Length` and chunked responses.
pub fn http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = std::net::TcpStream::connect(hostport).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| e.to_string())?;
    stream.write_all(body).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut payload = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload)?;
    }
    Ok((status, String::from_utf8_lossy(&payload).to_string()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let nl = b.windows(2).position(|w| w == b"\r\n").ok_or("bad chunk")?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16)
            .map_err(|e| e.to_string())?;
        b = &b[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// URL-encodes a query parameter value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a protobuf+snappy push body, as Promtail sends it.
pub fn protobuf_push(streams: &[(&str, Vec<(i64, String)>)]) -> Vec<u8> {
    let req = fjord_model::PushRequest {
        streams: streams
            .iter()
            .map(|(labels, entries)| fjord_model::PushStream {
                labels: labels.to_string(),
                entries: entries
                    .iter()
                    .map(|(ts, l)| fjord_model::Entry::new(*ts, l.clone()))
                    .collect(),
            })
            .collect(),
    };
    req.encode_protobuf_snappy()
}

/// A stream to push: its labels and (timestamp, line) entries.
pub type JsonStream<'a> = (&'a [(&'a str, &'a str)], Vec<(i64, String)>);

/// Builds a v1 JSON push body.
pub fn json_push(streams: &[JsonStream<'_>]) -> String {
    let streams: Vec<serde_json::Value> = streams
        .iter()
        .map(|(labels, entries)| {
            let stream: serde_json::Map<String, serde_json::Value> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                .collect();
            let values: Vec<serde_json::Value> = entries
                .iter()
                .map(|(ts, l)| serde_json::json!([ts.to_string(), l]))
                .collect();
            serde_json::json!({"stream": stream, "values": values})
        })
        .collect();
    serde_json::json!({ "streams": streams }).to_string()
}

/// A time before now after which at least a minute stays within the same UTC day, so a few
/// lines written from it land in one day of the index (a chunk crossing midnight would be
/// listed in two): a minute after today's midnight, or early in the day, yesterday's noon.
pub fn earlier_today_ns() -> i64 {
    const DAY: i64 = 86_400_000_000_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let midnight = now - now % DAY;
    if now - midnight > 120_000_000_000 {
        midnight + 60_000_000_000
    } else {
        midnight - DAY / 2
    }
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A running `fjord agent`.
pub struct Agent {
    child: Option<Child>,
    pub url: String,
    pub config: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    /// Starts `fjord agent --config <config>` with its HTTP server on a free loopback port and
    /// waits until it listens.
    pub fn start(config: &Path) -> Agent {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fjord"));
        cmd.arg("agent")
            .arg("--config")
            .arg(config)
            .arg("--config.expand-env=true")
            .arg("--http-listen-address")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("fjord binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(i) = line.find("listening on http://") {
                        let url = line[i + "listening on ".len()..]
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_string();
                        let _ = tx.send(url);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "fjord agent did not start; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Agent {
            child: Some(child),
            url,
            config: config.to_path_buf(),
            log,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        http("GET", &format!("{}{}", self.url, path), &[], &[])
    }

    /// Sum of every series of a metric on the agent's /metrics.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics").unwrap_or_default();
        body.lines()
            .filter(|l| {
                l.starts_with(name)
                    && (l[name.len()..].starts_with('{') || l[name.len()..].starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum()
    }

    /// Kills the agent with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit code.
    pub fn terminate(&mut self) -> i32 {
        let mut c = self.child.take().expect("running");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("kill command runs");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!(
                    "fjord agent did not exit after SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` every 100ms until it returns `Some`, or panics with `what` after `secs`.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sum of the samples of `name` in Prometheus text whose labels include every one of `labels`.
pub fn sample_sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `fjord_store_read_bytes_total` of `part` (`chunk`, `tail`, `block`, `gap`) in Prometheus text.
pub fn store_read_bytes(metrics: &str, part: &str) -> f64 {
    sample_sum(
        metrics,
        "fjord_store_read_bytes_total{",
        &[&format!("part=\"{part}\"")],
    )
}
