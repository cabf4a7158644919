//! `ingest`: pushes a generated dataset to a Loki-compatible `/loki/api/v1/push` as
//! snappy-compressed protobuf over N connections and measures the server while it works.
//!
//! Streams are sharded over the connections (stream i → connection i mod N) and each connection
//! sends its batches one after another in time order, so every stream's entries arrive in order,
//! as from N independent agents. All request bodies are encoded before the clock starts, so the
//! client's cost during the timed phase is only HTTP.
//!
//! Server figures come from `/proc/<pid>`: CPU ticks before and after, RSS sampled every 20 ms.
//! After an optional `POST /flush`, the server's data directory is polled until its size stops
//! changing, then its size gives bytes on disk per raw byte.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use fjord_model::{Entry, PushRequest, PushStream};
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Manifest, StreamData};
use crate::procfs::{self, DiskUsage, RssSampler};

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Clone)]
pub(crate) struct IngestOptions {
    pub(crate) url: String,
    pub(crate) data: PathBuf,
    pub(crate) connections: usize,
    pub(crate) batch_bytes: u64,
    pub(crate) pid: Option<u32>,
    pub(crate) flush: bool,
    pub(crate) compact: bool,
    pub(crate) server_data_dir: Option<PathBuf>,
    pub(crate) tenant: Option<String>,
    pub(crate) max_retries: u32,
    pub(crate) settle_timeout: Duration,
}

/// Everything `ingest` measured; serialised as the JSON report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IngestReport {
    pub(crate) url: String,
    pub(crate) connections: usize,
    pub(crate) batch_bytes: u64,
    pub(crate) streams: usize,
    pub(crate) lines: u64,
    pub(crate) raw_bytes: u64,
    pub(crate) batches: usize,
    /// Bytes on the wire (snappy protobuf bodies).
    pub(crate) wire_bytes: u64,
    pub(crate) encode_seconds: f64,
    pub(crate) push_seconds: f64,
    pub(crate) mib_per_sec: f64,
    pub(crate) lines_per_sec: f64,
    pub(crate) request_latency_ms: Latency,
    /// Retried responses by cause (`429`, `503`, `connection`…).
    pub(crate) retries: BTreeMap<String, u64>,
    pub(crate) failed_batches: u64,
    pub(crate) failed_lines: u64,
    pub(crate) first_error: Option<String>,
    pub(crate) client_cpu_seconds: f64,
    pub(crate) server: Option<ServerFigures>,
    pub(crate) flush: Option<FlushFigures>,
    pub(crate) disk: Option<DiskFigures>,
    pub(crate) compaction: Option<CompactionFigures>,
}

/// The compaction round run after the flush (`--compact`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompactionFigures {
    pub(crate) status: u16,
    pub(crate) seconds: f64,
    /// The server's answer (Fjord's round report) or error text.
    pub(crate) answer: String,
    pub(crate) cpu_seconds: Option<f64>,
    pub(crate) cpu_seconds_per_gib: Option<f64>,
    pub(crate) peak_rss_bytes: Option<u64>,
    /// Bytes on disk per raw byte once the round is done (against the same baseline as `disk`).
    pub(crate) bytes_per_raw_byte: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerFigures {
    pub(crate) pid: u32,
    /// Server CPU (user+system) while pushing.
    pub(crate) cpu_seconds_push: f64,
    /// Server CPU from the first push to the end of flush and settling.
    pub(crate) cpu_seconds_total: f64,
    pub(crate) cpu_seconds_per_gib_push: f64,
    pub(crate) cpu_seconds_per_gib_total: f64,
    /// Largest sampled RSS during push, flush and settling.
    pub(crate) peak_rss_bytes: u64,
    /// Largest sampled RSS while pushing only.
    pub(crate) peak_rss_push_bytes: u64,
    /// The kernel's lifetime peak (VmHWM) at the end; includes anything before the run.
    pub(crate) vm_hwm_bytes: u64,
    pub(crate) rss_before_bytes: u64,
    pub(crate) rss_after_bytes: u64,
    pub(crate) rss_samples: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlushFigures {
    pub(crate) status: u16,
    pub(crate) request_seconds: f64,
    /// Time from the flush request until the data directory stopped changing.
    pub(crate) settle_seconds: f64,
    pub(crate) settled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DiskFigures {
    pub(crate) dir: String,
    pub(crate) before: DiskUsage,
    pub(crate) after: DiskUsage,
    /// (after − before allocated bytes) / raw bytes: the `du` view.
    pub(crate) bytes_per_raw_byte: f64,
    /// The same with apparent file sizes.
    pub(crate) apparent_bytes_per_raw_byte: f64,
}

/// One encoded push body.
struct Batch {
    body: Bytes,
    raw: u64,
    lines: u64,
}

/// Outcome counters of one connection.
#[derive(Default)]
struct ConnStats {
    latencies: Vec<f64>,
    retries: BTreeMap<String, u64>,
    failed_batches: u64,
    failed_lines: u64,
    first_error: Option<String>,
}

pub(crate) fn run(opts: &IngestOptions) -> Result<IngestReport> {
    if opts.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let manifest = Manifest::read(&opts.data)?;
    let t0 = Instant::now();
    let streams: Vec<StreamData> = manifest
        .files
        .par_iter()
        .map(|f| StreamData::read(&opts.data.join(&f.file)))
        .collect::<Result<_>>()?;
    eprintln!(
        "ingest: read {} streams, {:.1} MiB of lines, in {:.1}s",
        streams.len(),
        manifest.raw_bytes as f64 / MIB,
        t0.elapsed().as_secs_f64()
    );

    let t1 = Instant::now();
    let per_conn = build_batches(&streams, opts.connections, opts.batch_bytes);
    let encode_seconds = t1.elapsed().as_secs_f64();
    let batches: usize = per_conn.iter().map(Vec::len).sum();
    let wire_bytes: u64 = per_conn.iter().flatten().map(|b| b.body.len() as u64).sum();
    let raw_bytes: u64 = per_conn.iter().flatten().map(|b| b.raw).sum();
    let lines: u64 = per_conn.iter().flatten().map(|b| b.lines).sum();
    drop(streams);
    eprintln!(
        "ingest: encoded {batches} batches ({:.1} MiB snappy protobuf, {:.2}x) in {encode_seconds:.1}s",
        wire_bytes as f64 / MIB,
        raw_bytes as f64 / wire_bytes.max(1) as f64
    );

    let base = opts.url.trim_end_matches('/').to_string();
    let disk_before = match &opts.server_data_dir {
        Some(d) => Some(
            procfs::disk_usage(d)
                .with_context(|| format!("measuring --data-dir-of-server {}", d.display()))?,
        ),
        None => None,
    };
    let tps = procfs::clock_ticks_per_sec() as f64;
    let cpu_before = opts.pid.map(procfs::read_cpu).transpose()?;
    let rss_before = opts.pid.map(procfs::read_mem).transpose()?;
    let sampler = opts
        .pid
        .map(|p| RssSampler::start(p, Duration::from_millis(20)));
    let me = std::process::id();
    let client_cpu_before = procfs::read_cpu(me)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = Instant::now();
    let stats = runtime.block_on(push_all(&base, opts, per_conn, raw_bytes, sampler.as_ref()))?;
    let push_seconds = started.elapsed().as_secs_f64();
    let peak_rss_push = sampler.as_ref().map_or(0, RssSampler::peak);
    let cpu_after_push = opts.pid.map(procfs::read_cpu).transpose()?;
    let client_cpu = (procfs::read_cpu(me)?
        .total()
        .saturating_sub(client_cpu_before.total())) as f64
        / tps;

    let flush = if opts.flush {
        Some(runtime.block_on(flush_and_settle(&base, opts))?)
    } else {
        None
    };
    let cpu_end = opts.pid.map(procfs::read_cpu).transpose()?;
    let rss_after = opts.pid.map(procfs::read_mem).transpose()?;
    let disk_after = match &opts.server_data_dir {
        Some(d) => Some(procfs::disk_usage(d)?),
        None => None,
    };

    let mut latencies: Vec<f64> = stats
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut retries = BTreeMap::new();
    for s in &stats {
        for (k, v) in &s.retries {
            *retries.entry(k.clone()).or_insert(0) += v;
        }
    }
    let gib = raw_bytes as f64 / GIB;
    let server = match (
        opts.pid,
        sampler,
        cpu_before,
        cpu_after_push,
        cpu_end,
        rss_before,
        rss_after,
    ) {
        (Some(pid), Some(sampler), Some(c0), Some(c1), Some(c2), Some(m0), Some(m1)) => {
            let (peak, samples) = sampler.finish();
            let push = c1.total().saturating_sub(c0.total()) as f64 / tps;
            let total = c2.total().saturating_sub(c0.total()) as f64 / tps;
            Some(ServerFigures {
                pid,
                cpu_seconds_push: push,
                cpu_seconds_total: total,
                cpu_seconds_per_gib_push: push / gib,
                cpu_seconds_per_gib_total: total / gib,
                peak_rss_bytes: peak.max(m1.rss),
                peak_rss_push_bytes: peak_rss_push,
                vm_hwm_bytes: m1.hwm,
                rss_before_bytes: m0.rss,
                rss_after_bytes: m1.rss,
                rss_samples: samples,
            })
        }
        _ => None,
    };
    let disk = match (&opts.server_data_dir, disk_before, disk_after) {
        (Some(d), Some(before), Some(after)) => Some(DiskFigures {
            dir: d.display().to_string(),
            before,
            after,
            bytes_per_raw_byte: after.allocated.saturating_sub(before.allocated) as f64
                / raw_bytes.max(1) as f64,
            apparent_bytes_per_raw_byte: after.apparent.saturating_sub(before.apparent) as f64
                / raw_bytes.max(1) as f64,
        }),
        _ => None,
    };
    let compaction = if opts.compact {
        let baseline = disk.as_ref().map(|d| d.before.allocated);
        Some(runtime.block_on(compact(&base, opts, raw_bytes, baseline))?)
    } else {
        None
    };

    Ok(IngestReport {
        url: base,
        connections: opts.connections,
        batch_bytes: opts.batch_bytes,
        streams: manifest.streams,
        lines,
        raw_bytes,
        batches,
        wire_bytes,
        encode_seconds,
        push_seconds,
        mib_per_sec: raw_bytes as f64 / MIB / push_seconds,
        lines_per_sec: lines as f64 / push_seconds,
        request_latency_ms: Latency {
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(0.0),
        },
        retries,
        failed_batches: stats.iter().map(|s| s.failed_batches).sum(),
        failed_lines: stats.iter().map(|s| s.failed_lines).sum(),
        first_error: stats.iter().find_map(|s| s.first_error.clone()),
        client_cpu_seconds: client_cpu,
        server,
        flush,
        disk,
        compaction,
    })
}

/// `POST /compactor/run`, measuring the server's CPU and RSS during the round and the bytes on
/// disk after it.
async fn compact(
    base: &str,
    opts: &IngestOptions,
    raw_bytes: u64,
    disk_baseline: Option<u64>,
) -> Result<CompactionFigures> {
    eprintln!("ingest: POST {base}/compactor/run");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3600))
        .build()
        .context("building the HTTP client")?;
    let cpu_before = opts.pid.map(procfs::read_cpu).transpose()?;
    let sampler = opts
        .pid
        .map(|p| RssSampler::start(p, Duration::from_millis(20)));
    let t = Instant::now();
    let resp = client
        .post(format!("{base}/compactor/run"))
        .send()
        .await
        .context("POST /compactor/run")?;
    let status = resp.status().as_u16();
    let answer = resp.text().await.unwrap_or_default().trim().to_string();
    let seconds = t.elapsed().as_secs_f64();
    eprintln!("ingest: compaction answered HTTP {status} after {seconds:.1}s: {answer}");
    let cpu_after = opts.pid.map(procfs::read_cpu).transpose()?;
    let tps = procfs::clock_ticks_per_sec() as f64;
    let cpu_seconds = cpu_before
        .zip(cpu_after)
        .map(|(a, b)| b.total().saturating_sub(a.total()) as f64 / tps);
    let bytes_per_raw_byte = match (&opts.server_data_dir, disk_baseline) {
        (Some(dir), Some(base)) => Some(
            procfs::disk_usage(dir)?.allocated.saturating_sub(base) as f64
                / raw_bytes.max(1) as f64,
        ),
        _ => None,
    };
    Ok(CompactionFigures {
        status,
        seconds,
        answer,
        cpu_seconds,
        cpu_seconds_per_gib: cpu_seconds.map(|c| c / (raw_bytes as f64 / GIB)),
        peak_rss_bytes: sampler.map(|s| s.finish().0),
        bytes_per_raw_byte,
    })
}

/// Nearest-rank percentile of sorted values (0 for none).
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Splits the streams over connections and cuts each connection's time-ordered entry sequence
/// into batches of about `batch_bytes` raw bytes, encoded in parallel.
fn build_batches(streams: &[StreamData], connections: usize, batch_bytes: u64) -> Vec<Vec<Batch>> {
    (0..connections)
        .into_par_iter()
        .map(|c| {
            let mine: Vec<usize> = (c..streams.len()).step_by(connections).collect();
            let mut order: Vec<(i64, u32, u32)> = Vec::new();
            for (local, &si) in mine.iter().enumerate() {
                order.extend(
                    streams[si]
                        .entries
                        .iter()
                        .enumerate()
                        .map(|(ei, e)| (e.0, local as u32, ei as u32)),
                );
            }
            // Stable: equal timestamps keep file order within a stream.
            order.sort_by_key(|&(ts, s, _)| (ts, s));
            let mut cuts = Vec::new();
            let (mut from, mut acc) = (0usize, 0u64);
            for (i, &(_, s, e)) in order.iter().enumerate() {
                acc += streams[mine[s as usize]].entries[e as usize].2 as u64;
                if acc >= batch_bytes {
                    cuts.push(from..i + 1);
                    from = i + 1;
                    acc = 0;
                }
            }
            if from < order.len() {
                cuts.push(from..order.len());
            }
            cuts.into_par_iter()
                .map(|range| {
                    let mut req = PushRequest::default();
                    let mut slot: Vec<Option<usize>> = vec![None; mine.len()];
                    let mut raw = 0u64;
                    for &(ts, s, e) in &order[range.clone()] {
                        let sd = &streams[mine[s as usize]];
                        let idx = *slot[s as usize].get_or_insert_with(|| {
                            req.streams.push(PushStream {
                                labels: sd.labels.clone(),
                                entries: Vec::new(),
                            });
                            req.streams.len() - 1
                        });
                        let line = sd.line(e as usize);
                        raw += line.len() as u64;
                        req.streams[idx].entries.push(Entry::new(ts, line));
                    }
                    Batch {
                        body: Bytes::from(req.encode_protobuf_snappy()),
                        raw,
                        lines: range.len() as u64,
                    }
                })
                .collect()
        })
        .collect()
}

async fn push_all(
    base: &str,
    opts: &IngestOptions,
    per_conn: Vec<Vec<Batch>>,
    raw_total: u64,
    sampler: Option<&RssSampler>,
) -> Result<Vec<ConnStats>> {
    let url = format!("{base}/loki/api/v1/push");
    let sent = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for batches in per_conn {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("fjord-bench/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        let (url, tenant, sent, retried, max_retries) = (
            url.clone(),
            opts.tenant.clone(),
            sent.clone(),
            retried.clone(),
            opts.max_retries,
        );
        tasks.push(tokio::spawn(async move {
            let mut st = ConnStats::default();
            for b in batches {
                send_one(
                    &client,
                    &url,
                    tenant.as_deref(),
                    &b,
                    max_retries,
                    &mut st,
                    &retried,
                )
                .await;
                sent.fetch_add(b.raw, Ordering::Relaxed);
            }
            st
        }));
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    ticker.tick().await;
    let all = futures_join(tasks);
    tokio::pin!(all);
    loop {
        tokio::select! {
            res = &mut all => return res,
            _ = ticker.tick() => {
                let s = sent.load(Ordering::Relaxed) as f64;
                let rss = sampler.map(|x| format!(", server peak RSS {:.0} MiB", x.peak() as f64 / MIB)).unwrap_or_default();
                eprintln!(
                    "ingest: {:.1}/{:.1} MiB ({:.0}%), {:.1} MiB/s{rss}, {} retries",
                    s / MIB,
                    raw_total as f64 / MIB,
                    100.0 * s / raw_total.max(1) as f64,
                    s / MIB / started.elapsed().as_secs_f64(),
                    retried.load(Ordering::Relaxed)
                );
            }
        }
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<ConnStats>>) -> Result<Vec<ConnStats>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.context("a push connection task failed")?);
    }
    Ok(out)
}

/// Sends one batch, retrying 429, 5xx and connection errors with exponential backoff (as
/// Promtail does); other statuses fail the batch.
async fn send_one(
    client: &reqwest::Client,
    url: &str,
    tenant: Option<&str>,
    b: &Batch,
    max_retries: u32,
    st: &mut ConnStats,
    retried: &AtomicU64,
) {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        let mut req = client
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .body(b.body.clone());
        if let Some(t) = tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let t = Instant::now();
        let (cause, message) = match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                // Drain the (empty) body so the connection is reused.
                let _body = resp.bytes().await;
                st.latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                return;
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let msg = format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    text.trim().chars().take(300).collect::<String>()
                );
                if status.as_u16() == 429 || status.is_server_error() {
                    (status.as_u16().to_string(), msg)
                } else {
                    st.failed_batches += 1;
                    st.failed_lines += b.lines;
                    st.first_error.get_or_insert(msg);
                    return;
                }
            }
            Err(e) => ("connection".to_string(), format!("{e}")),
        };
        *st.retries.entry(cause).or_insert(0) += 1;
        retried.fetch_add(1, Ordering::Relaxed);
        attempt += 1;
        if attempt > max_retries {
            st.failed_batches += 1;
            st.failed_lines += b.lines;
            st.first_error
                .get_or_insert(format!("gave up after {max_retries} retries: {message}"));
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// `POST /flush`, then waits until the server's data directory stops changing (three equal
/// readings one second apart), up to the settle timeout.
async fn flush_and_settle(base: &str, opts: &IngestOptions) -> Result<FlushFigures> {
    eprintln!("ingest: POST {base}/flush");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .context("building the HTTP client")?;
    let t = Instant::now();
    let mut req = client.post(format!("{base}/flush"));
    if let Some(tenant) = &opts.tenant {
        req = req.header("X-Scope-OrgID", tenant);
    }
    let resp = req.send().await.context("POST /flush")?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    if status >= 300 {
        eprintln!("ingest: flush answered HTTP {status}: {}", text.trim());
    }
    let request_seconds = t.elapsed().as_secs_f64();
    let Some(dir) = &opts.server_data_dir else {
        return Ok(FlushFigures {
            status,
            request_seconds,
            settle_seconds: request_seconds,
            settled: true,
        });
    };
    let mut last = procfs::disk_usage(dir)?;
    let mut same = 0;
    while t.elapsed() < opts.settle_timeout {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = procfs::disk_usage(dir)?;
        if now == last {
            same += 1;
            if same >= 3 {
                let settle_seconds = t.elapsed().as_secs_f64() - 3.0;
                eprintln!(
                    "ingest: data directory settled at {:.1} MiB after {settle_seconds:.1}s",
                    now.allocated as f64 / MIB
                );
                return Ok(FlushFigures {
                    status,
                    request_seconds,
                    settle_seconds,
                    settled: true,
                });
            }
        } else {
            same = 0;
            last = now;
        }
    }
    eprintln!(
        "ingest: data directory still changing after {:?}; measuring anyway",
        opts.settle_timeout
    );
    Ok(FlushFigures {
        status,
        request_seconds,
        settle_seconds: t.elapsed().as_secs_f64(),
        settled: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn batches_keep_per_stream_order_and_cover_everything() {
        let dir = tempfile::tempdir().unwrap();
        let o = crate::generate::GenOptions {
            size: 300_000,
            out: dir.path().to_path_buf(),
            seed: 1,
            streams: 30,
            duration_ns: 3_600_000_000_000,
            start_ns: 1_795_168_800_000_000_000,
        };
        let m = crate::generate::run(&o).unwrap();
        let streams: Vec<StreamData> = m
            .files
            .iter()
            .map(|f| StreamData::read(&dir.path().join(&f.file)).unwrap())
            .collect();
        let per_conn = build_batches(&streams, 4, 16 << 10);
        let mut last: std::collections::HashMap<String, i64> = Default::default();
        let (mut lines, mut raw) = (0u64, 0u64);
        for conn in &per_conn {
            for b in conn {
                let req = fjord_model::push::decode_protobuf_snappy(
                    &b.body,
                    1 << 30,
                    &mut fjord_model::memory_budget::Reservation::unbounded(),
                )
                .unwrap();
                assert_eq!(req.entry_count() as u64, b.lines);
                for s in &req.streams {
                    for e in &s.entries {
                        let prev = last.insert(s.labels.clone(), e.ts).unwrap_or(i64::MIN);
                        assert!(e.ts >= prev, "stream order kept");
                        raw += e.line.len() as u64;
                    }
                }
                lines += b.lines;
            }
        }
        assert_eq!((lines, raw), (m.lines, m.raw_bytes));
        assert_eq!(last.len(), 30);
    }
}
