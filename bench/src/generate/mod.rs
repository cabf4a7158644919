//! `gen`: writes a deterministic Kubernetes-like dataset of a requested size.
//!
//! Planning happens first and sequentially (cluster, error bursts, per-stream line counts, needle
//! positions); then every stream is generated independently, in parallel, from its own RNG
//! stream, so the output is a pure function of the options, whatever the thread count.
//!
//! Sizing: each stream gets a share of the byte budget proportional to its weight; its line
//! count is the share divided by the mean length of a sample of its lines, so the total lands
//! within a few percent of the request (the manifest records the exact figures).

mod clock;
mod formats;
mod tables;
mod topology;
mod vocab;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dataset::{Burst, FORMAT, Manifest, Needle, StreamFile, StreamWriter};
use formats::LineGen;
use tables::Tables;
use topology::{APPS, App, Cluster};

/// The end of the default time range: a fixed, recent instant (2026-11-20T12:00:00Z), so the
/// default dataset never changes. Servers must accept old samples (see bench/fjord-bench.yaml).
pub(crate) const DEFAULT_END_NS: i64 = 1_795_176_000 * 1_000_000_000;

/// Rare strings planted in a handful of lines each; the query suite searches for the first.
pub(crate) const NEEDLES: &[(&str, u64)] = &[
    ("NEEDLE-7f3a9c", 7),
    ("NEEDLE-2b81d4", 1),
    ("NEEDLE-c0ffee", 40),
];

/// Bump when the output for a given seed changes, so old datasets are recognisably different.
const GENERATOR_VERSION: u64 = 1;

#[derive(Debug, Clone)]
pub(crate) struct GenOptions {
    pub(crate) size: u64,
    pub(crate) out: PathBuf,
    pub(crate) seed: u64,
    pub(crate) streams: usize,
    pub(crate) duration_ns: i64,
    pub(crate) start_ns: i64,
}

/// A failure scenario that can be replayed as a burst.
struct Scenario {
    name: &'static str,
    namespace: &'static str,
    apps: &'static [App],
    /// Lines per second during the burst relative to normal.
    intensity: f64,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "payment provider outage",
        namespace: "prod",
        apps: &[App::Payments, App::Checkout, App::ApiGateway, App::Nginx],
        intensity: 3.0,
    },
    Scenario {
        name: "database failover",
        namespace: "prod",
        apps: &[App::Postgres, App::Inventory, App::Checkout, App::Worker],
        intensity: 2.5,
    },
    Scenario {
        name: "auth dependency timeouts",
        namespace: "prod",
        apps: &[App::Auth, App::ApiGateway, App::Nginx],
        intensity: 3.0,
    },
    Scenario {
        name: "staging crash loop",
        namespace: "staging",
        apps: &[App::Search, App::Notifications, App::Worker],
        intensity: 4.0,
    },
    Scenario {
        name: "dns upstream timeouts",
        namespace: "kube-system",
        apps: &[App::Coredns],
        intensity: 4.0,
    },
];

struct PlannedBurst {
    scenario: usize,
    start_ns: i64,
    end_ns: i64,
}

/// Everything decided before lines are written, per stream.
struct StreamPlan {
    live: (i64, i64),
    base_lines: u64,
    /// (burst index, overlap start, overlap end, extra lines inside it)
    extras: Vec<(usize, i64, i64, u64)>,
    /// (line index, needle index), sorted by line index.
    needles: Vec<(u64, usize)>,
}

impl StreamPlan {
    fn lines(&self) -> u64 {
        self.base_lines + self.extras.iter().map(|e| e.3).sum::<u64>()
    }
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ GENERATOR_VERSION.rotate_left(56));
    rng.set_stream(stream);
    rng
}

/// Generates the dataset and returns its manifest (also written to `out/manifest.json`).
pub(crate) fn run(opts: &GenOptions) -> Result<Manifest> {
    let began = Instant::now();
    let streams_dir = opts.out.join("streams");
    std::fs::create_dir_all(&streams_dir)
        .with_context(|| format!("creating {}", streams_dir.display()))?;
    let tables = Tables::new();
    let mut rng = rng_for(opts.seed, 0);
    let cluster = topology::build(opts.streams, &mut rng);
    let (start, end) = (opts.start_ns, opts.start_ns + opts.duration_ns);
    let bursts = plan_bursts(&mut rng, start, end);
    let mut plans = plan_streams(opts, &tables, &cluster, &bursts);
    let needle_counts = place_needles(&mut rng, &mut plans);
    let planned: u64 = plans.iter().map(StreamPlan::lines).sum();
    eprintln!(
        "gen: {} streams ({} pods, {} nodes), {} error bursts, ~{} lines planned for ~{:.1} MiB over {}..{}",
        cluster.streams.len(),
        cluster.pods.len(),
        cluster.nodes,
        bursts.len(),
        planned,
        opts.size as f64 / (1 << 20) as f64,
        rfc3339(start),
        rfc3339(end)
    );

    let done = AtomicUsize::new(0);
    let bytes_done = AtomicU64::new(0);
    let total = plans.len();
    let files: Vec<StreamFile> = plans
        .par_iter()
        .enumerate()
        .map(|(i, plan)| {
            let f = write_stream(opts, &tables, &cluster, &bursts, i, plan)?;
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            let b = bytes_done.fetch_add(f.bytes, Ordering::Relaxed) + f.bytes;
            if n.is_multiple_of((total / 10).max(1)) || n == total {
                eprintln!(
                    "gen: {n}/{total} streams, {:.1} MiB, {:.1}s",
                    b as f64 / (1 << 20) as f64,
                    began.elapsed().as_secs_f64()
                );
            }
            Ok(f)
        })
        .collect::<Result<Vec<_>>>()?;

    let manifest = Manifest {
        format: FORMAT.to_string(),
        seed: opts.seed,
        raw_bytes: files.iter().map(|f| f.bytes).sum(),
        lines: files.iter().map(|f| f.lines).sum(),
        streams: files.len(),
        start_ns: start,
        end_ns: end,
        start: rfc3339(start),
        end: rfc3339(end),
        needles: NEEDLES
            .iter()
            .zip(&needle_counts)
            .map(|((t, _), n)| Needle {
                text: (*t).to_string(),
                lines: *n,
            })
            .collect(),
        bursts: bursts
            .iter()
            .map(|b| {
                let s = &SCENARIOS[b.scenario];
                Burst {
                    scenario: s.name.to_string(),
                    namespace: s.namespace.to_string(),
                    apps: s.apps.iter().map(|a| app_name(*a).to_string()).collect(),
                    start: rfc3339(b.start_ns),
                    end: rfc3339(b.end_ns),
                    start_ns: b.start_ns,
                    end_ns: b.end_ns,
                }
            })
            .collect(),
        rollout: rfc3339(start + (opts.duration_ns as f64 * cluster.rollout_at) as i64),
        files,
    };
    manifest.write(&opts.out)?;
    Ok(manifest)
}

fn app_name(app: App) -> &'static str {
    APPS.iter()
        .find(|a| a.app == app)
        .map_or("unknown", |a| a.name)
}

/// RFC 3339 with nanoseconds, UTC.
pub(crate) fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// About one burst per 24 minutes, each 1–4 minutes long, cycling through the scenarios.
fn plan_bursts(rng: &mut ChaCha8Rng, start: i64, end: i64) -> Vec<PlannedBurst> {
    let span = end - start;
    let count = ((span as f64 / 1.44e12).round() as usize).max(1);
    let first = rng.random_range(0..SCENARIOS.len());
    (0..count)
        .map(|k| {
            let len = rng
                .random_range(60_000_000_000i64..240_000_000_000)
                .min(span / 4)
                .max(1);
            let at = start + (span as f64 * rng.random_range(0.05..0.92)) as i64;
            PlannedBurst {
                scenario: (first + k) % SCENARIOS.len(),
                start_ns: at,
                end_ns: (at + len).min(end),
            }
        })
        .collect()
}

fn plan_streams(
    opts: &GenOptions,
    tables: &Tables,
    cluster: &Cluster,
    bursts: &[PlannedBurst],
) -> Vec<StreamPlan> {
    let total_weight: f64 = cluster.streams.iter().map(|s| s.weight).sum();
    let span = opts.duration_ns as f64;
    cluster
        .streams
        .par_iter()
        .enumerate()
        .map(|(i, s)| {
            let pod = &cluster.pods[s.pod];
            let live = (
                opts.start_ns + (span * pod.live.0) as i64,
                opts.start_ns + (span * pod.live.1) as i64,
            );
            // Mean line length from a sample drawn with an RNG stream of its own.
            let mut g = LineGen::new(
                tables,
                rng_for(opts.seed, 1 + 2 * i as u64),
                pod,
                s.kind,
                cluster.nodes,
                opts.start_ns,
            );
            let mut buf = Vec::new();
            let sample = 64;
            let mut sum = 0usize;
            for k in 0..sample {
                g.line(
                    &mut buf,
                    live.0 + (live.1 - live.0) / sample * k,
                    false,
                    None,
                );
                sum += buf.len();
            }
            let mean = (sum as f64 / sample as f64).max(1.0);
            let budget = opts.size as f64 * s.weight / total_weight;
            let wanted = (budget / mean).round().max(1.0);

            let spec = &APPS[pod.app];
            let live_len = (live.1 - live.0).max(1) as f64;
            let mut overlaps = Vec::new();
            for (bi, b) in bursts.iter().enumerate() {
                let sc = &SCENARIOS[b.scenario];
                if sc.namespace != pod.namespace || !sc.apps.contains(&spec.app) {
                    continue;
                }
                let (from, to) = (b.start_ns.max(live.0), b.end_ns.min(live.1));
                if to > from {
                    overlaps.push((
                        bi,
                        from,
                        to,
                        (to - from) as f64 / live_len * (sc.intensity - 1.0),
                    ));
                }
            }
            let extra_share: f64 = overlaps.iter().map(|o| o.3).sum();
            let base = (wanted / (1.0 + extra_share)).round().max(1.0);
            StreamPlan {
                live,
                base_lines: base as u64,
                extras: overlaps
                    .into_iter()
                    .map(|(bi, f, t, share)| (bi, f, t, (base * share).round() as u64))
                    .collect(),
                needles: Vec::new(),
            }
        })
        .collect()
}

/// Chooses distinct (stream, line) positions for each needle occurrence; returns how many lines
/// got each needle (fewer than asked only if the dataset is tiny).
fn place_needles(rng: &mut ChaCha8Rng, plans: &mut [StreamPlan]) -> Vec<u64> {
    let mut counts = vec![0u64; NEEDLES.len()];
    let capacity: u64 = plans.iter().map(StreamPlan::lines).sum();
    let mut used = 0u64;
    for (ni, (_, want)) in NEEDLES.iter().enumerate() {
        let mut placed = 0;
        let mut attempts = 0;
        while placed < *want && used < capacity && attempts < want * 100 {
            attempts += 1;
            let si = rng.random_range(0..plans.len());
            let n = plans[si].lines();
            let line = rng.random_range(0..n.max(1));
            if n == 0 || plans[si].needles.iter().any(|(l, _)| *l == line) {
                continue;
            }
            plans[si].needles.push((line, ni));
            placed += 1;
            used += 1;
        }
        counts[ni] = placed;
    }
    for p in plans.iter_mut() {
        p.needles.sort_unstable();
    }
    counts
}

fn write_stream(
    opts: &GenOptions,
    tables: &Tables,
    cluster: &Cluster,
    bursts: &[PlannedBurst],
    i: usize,
    plan: &StreamPlan,
) -> Result<StreamFile> {
    let spec = &cluster.streams[i];
    let pod = &cluster.pods[spec.pod];
    let mut rng = rng_for(opts.seed, 2 + 2 * i as u64);
    let mut ts: Vec<i64> = Vec::with_capacity(plan.lines() as usize);
    for _ in 0..plan.base_lines {
        ts.push(rng.random_range(plan.live.0..plan.live.1.max(plan.live.0 + 1)));
    }
    for &(_, from, to, n) in &plan.extras {
        for _ in 0..n {
            ts.push(rng.random_range(from..to));
        }
    }
    ts.sort_unstable();
    let in_burst: Vec<(i64, i64)> = plan
        .extras
        .iter()
        .map(|&(bi, ..)| (bursts[bi].start_ns, bursts[bi].end_ns))
        .collect();

    let file = format!("streams/{i:05}.bin");
    let mut w = StreamWriter::create(&opts.out, &file, &spec.labels, ts.len() as u64)?;
    let mut g = LineGen::new(tables, rng, pod, spec.kind, cluster.nodes, opts.start_ns);
    let mut buf = Vec::with_capacity(1024);
    let mut needles = plan.needles.iter().peekable();
    for (k, &t) in ts.iter().enumerate() {
        let burst = in_burst.iter().any(|&(a, b)| t >= a && t < b);
        let needle = match needles.peek() {
            Some(&&(line, ni)) if line == k as u64 => {
                needles.next();
                Some(NEEDLES[ni].0)
            }
            _ => None,
        };
        g.line(&mut buf, t, burst, needle);
        w.push(t, &buf)?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::StreamData;

    fn opts(dir: &std::path::Path, seed: u64, size: u64, streams: usize) -> GenOptions {
        GenOptions {
            size,
            out: dir.to_path_buf(),
            seed,
            streams,
            duration_ns: 7_200_000_000_000,
            start_ns: DEFAULT_END_NS - 7_200_000_000_000,
        }
    }

    fn digest(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![(
            "manifest.json".to_string(),
            std::fs::read(dir.join("manifest.json")).unwrap(),
        )];
        let mut names: Vec<_> = std::fs::read_dir(dir.join("streams"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for n in names {
            files.push((
                n.clone(),
                std::fs::read(dir.join("streams").join(&n)).unwrap(),
            ));
        }
        files
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        run(&opts(a.path(), 5, 400_000, 60)).unwrap();
        run(&opts(b.path(), 5, 400_000, 60)).unwrap();
        run(&opts(c.path(), 6, 400_000, 60)).unwrap();
        assert!(
            digest(a.path()) == digest(b.path()),
            "byte-identical for the same seed"
        );
        assert!(
            digest(a.path()) != digest(c.path()),
            "a different seed gives different data"
        );
    }

    #[test]
    fn dataset_properties() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), 42, 3_000_000, 120);
        let m = run(&o).unwrap();
        assert_eq!(m.streams, 120);
        let ratio = m.raw_bytes as f64 / o.size as f64;
        assert!(
            (0.9..1.1).contains(&ratio),
            "size within 10% of the request: {ratio}"
        );

        let mut needle_hits = vec![0u64; NEEDLES.len()];
        let (mut lines, mut bytes) = (0u64, 0u64);
        let mut saw = [false; 5]; // nginx access, logfmt duration, nested json, stack trace, stderr
        for f in &m.files {
            let d = StreamData::read(&dir.path().join(&f.file)).unwrap();
            assert_eq!(d.labels, f.labels);
            assert_eq!(d.entries.len() as u64, f.lines);
            assert!(d.entries.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
            assert!(
                d.entries
                    .iter()
                    .all(|e| e.0 >= m.start_ns && e.0 < m.end_ns),
                "inside the range"
            );
            for i in 0..d.entries.len() {
                let line = d.line(i);
                let text = std::str::from_utf8(&line).unwrap();
                lines += 1;
                bytes += line.len() as u64;
                for (ni, (n, _)) in NEEDLES.iter().enumerate() {
                    if text.contains(n) {
                        needle_hits[ni] += 1;
                    }
                }
                saw[0] |= text.contains("HTTP/1.1\" ") && text.contains(" - - [");
                saw[1] |= text.contains(" duration=")
                    && text.contains("ms ")
                    && text.contains("path=/api");
                saw[2] |= text.starts_with('{') && text.contains("\"http\":{\"method\"");
                saw[3] |= text.contains("\n\tat ");
                saw[4] |= f.labels.contains("stream=\"stderr\"");
            }
        }
        assert_eq!((lines, bytes), (m.lines, m.raw_bytes));
        assert_eq!(
            needle_hits,
            m.needles.iter().map(|n| n.lines).collect::<Vec<_>>(),
            "needles appear exactly as recorded"
        );
        assert_eq!(m.needles[0].lines, 7);
        assert!(saw.iter().all(|s| *s), "all formats present: {saw:?}");
        assert!(!m.bursts.is_empty());
    }
}
