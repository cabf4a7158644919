//! `fjord-bench`: the benchmark driver for Fjord and any other Loki-compatible server.
//!
//! - `gen` writes a deterministic Kubernetes-like dataset once;
//! - `ingest URL` pushes it (snappy protobuf, N connections) and measures the server through
//!   `/proc/<pid>`: throughput, CPU per GiB, peak RSS, bytes on disk per raw byte;
//! - `query URL [--compare URL2]` runs the fixed LogQL suite and compares answers;
//! - `compress` encodes the dataset into Fjord blocks offline under several codecs and block
//!   sizes (the compression study).
//!
//! Figures go to stdout as a table, to `--json FILE`, and with `--markdown` as a section for
//! BENCHMARKS.md. See bench/README.md.

mod compare;
mod compress;
mod dataset;
mod generate;
mod ingest;
mod procfs;
mod query;
mod report;
mod suite;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use fjord_model::duration::parse_duration;
use fjord_model::limits::ByteSize;

#[derive(Parser)]
#[command(
    name = "fjord-bench",
    version,
    about = "Dataset generator and ingest/query benchmark for Loki-compatible servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a deterministic Kubernetes-like log dataset.
    Gen(GenArgs),
    /// Push a dataset to a server and measure throughput, CPU, memory and disk.
    Ingest(IngestArgs),
    /// Run the query suite against one server, or two side by side.
    Query(QueryArgs),
    /// Encode a dataset into Fjord blocks offline under several codecs and block sizes.
    Compress(CompressArgs),
}

#[derive(Args)]
struct GenArgs {
    /// Bytes of line text to generate (binary units as in Loki: 280MB = 280 MiB).
    #[arg(long, default_value = "280MB", value_parser = parse_size)]
    size: u64,
    /// Output directory (created if missing; keep it outside the repository).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of streams (exact).
    #[arg(long, default_value_t = 500)]
    streams: usize,
    /// Length of the time range (Prometheus duration: 2h, 90m…).
    #[arg(long, default_value = "2h", value_parser = parse_dur)]
    duration: Duration,
    /// Start of the time range (RFC 3339); default: the range ends at 2026-11-20T12:00:00Z.
    #[arg(long)]
    start: Option<String>,
    #[command(flatten)]
    out_opts: ReportArgs,
}

#[derive(Args)]
struct IngestArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:3100.
    url: String,
    /// Dataset directory written by `gen`.
    #[arg(long)]
    data: PathBuf,
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Raw line bytes per push request.
    #[arg(long, default_value = "1MB", value_parser = parse_size)]
    batch_bytes: u64,
    /// Server process id, for CPU and memory figures.
    #[arg(long)]
    pid: Option<u32>,
    /// POST URL/flush after pushing, then wait until the server's data directory stops changing.
    #[arg(long)]
    flush: bool,
    /// After the flush, POST URL/compactor/run (Fjord's compactor) and measure its CPU, peak
    /// RSS and the bytes on disk after it.
    #[arg(long, requires = "flush")]
    compact: bool,
    /// The server's store directory (chunks and index; leave the WAL out) for bytes on disk.
    #[arg(long)]
    data_dir_of_server: Option<PathBuf>,
    /// X-Scope-OrgID header for servers with auth enabled.
    #[arg(long)]
    tenant: Option<String>,
    /// Retries per batch on 429, 5xx and connection errors.
    #[arg(long, default_value_t = 10)]
    max_retries: u32,
    /// Longest wait for the data directory to settle after the flush.
    #[arg(long, default_value = "5m", value_parser = parse_dur)]
    settle_timeout: Duration,
    #[command(flatten)]
    out_opts: ReportArgs,
}

#[derive(Args)]
struct QueryArgs {
    /// Base URL of the server (A).
    url: String,
    /// A second server (B), run side by side; prints B/A ratios and whether answers agree.
    #[arg(long)]
    compare: Option<String>,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Dataset directory (its manifest gives the time range and the needle).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Run only these queries (repeatable), by name.
    #[arg(long)]
    only: Vec<String>,
    #[arg(long)]
    tenant: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "120s", value_parser = parse_dur)]
    timeout: Duration,
    /// Relative tolerance when comparing sample values.
    #[arg(long, default_value_t = 1e-6)]
    tolerance: f64,
    #[command(flatten)]
    out_opts: ReportArgs,
}

#[derive(Args)]
struct CompressArgs {
    /// Dataset directory written by `gen`.
    #[arg(long)]
    data: PathBuf,
    /// Codecs as `ingester.chunk_encoding` names them.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "lz4,zstd:1,zstd:3,zstd:9"
    )]
    codecs: Vec<String>,
    /// Raw line bytes at which a stream's block is cut.
    #[arg(long, value_delimiter = ',', default_value = "64KB,256KB,1MB", value_parser = parse_size)]
    block_sizes: Vec<u64>,
    /// Trigram filter size before folding (as `ingester.chunk_filter_bits_per_byte`).
    #[arg(long, default_value_t = 0.25)]
    filter_bits_per_byte: f64,
    /// Also measure a zstd dictionary per app on the text (16 KiB, trained on 5 % of it).
    #[arg(long)]
    dictionary: bool,
    #[command(flatten)]
    out_opts: ReportArgs,
}

#[derive(Args)]
struct ReportArgs {
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also print a Markdown section for BENCHMARKS.md.
    #[arg(long)]
    markdown: bool,
}

fn parse_size(s: &str) -> Result<u64, String> {
    ByteSize::parse(s)
        .map(|b| b.0)
        .ok_or_else(|| format!("invalid size {s:?} (examples: 280MB, 1GB, 1048576)"))
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Gen(a) => cmd_gen(a),
        Command::Ingest(a) => cmd_ingest(a),
        Command::Query(a) => cmd_query(a),
        Command::Compress(a) => cmd_compress(a),
    }
}

fn cmd_gen(a: GenArgs) -> Result<()> {
    let duration_ns = i64::try_from(a.duration.as_nanos()).context("--duration too long")?;
    if duration_ns <= 0 {
        bail!("--duration must be positive");
    }
    let start_ns = match &a.start {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| {
                format!("--start {s:?} is not RFC 3339 (example: 2026-11-20T10:00:00Z)")
            })?
            .timestamp_nanos_opt()
            .context("--start out of range")?,
        None => generate::DEFAULT_END_NS - duration_ns,
    };
    if a.streams == 0 {
        bail!("--streams must be at least 1");
    }
    let started = std::time::Instant::now();
    let opts = generate::GenOptions {
        size: a.size,
        out: a.out.clone(),
        seed: a.seed,
        streams: a.streams,
        duration_ns,
        start_ns,
    };
    let m = generate::run(&opts)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "wrote {} in {secs:.1}s ({:.1} MiB/s)",
        a.out.display(),
        m.raw_bytes as f64 / (1 << 20) as f64 / secs
    );
    println!("{}", report::dataset_line(&m));
    for n in &m.needles {
        println!("needle {:?} in {} lines", n.text, n.lines);
    }
    if let Some(p) = &a.out_opts.json {
        report::write_json(p, &m)?;
    }
    Ok(())
}

fn cmd_ingest(a: IngestArgs) -> Result<()> {
    let opts = ingest::IngestOptions {
        url: a.url,
        data: a.data.clone(),
        connections: a.connections,
        batch_bytes: a.batch_bytes,
        pid: a.pid,
        flush: a.flush,
        compact: a.compact,
        server_data_dir: a.data_dir_of_server,
        tenant: a.tenant,
        max_retries: a.max_retries,
        settle_timeout: a.settle_timeout,
    };
    let r = ingest::run(&opts)?;
    let m = dataset::Manifest::read(&a.data)?;
    print!("{}", report::ingest_text(&r));
    if a.out_opts.markdown {
        println!("\n{}", report::ingest_markdown(&r, &m));
    }
    write_json_report(&a.out_opts, Some(&m), &r)?;
    if r.failed_batches > 0 {
        bail!(
            "{} of {} batches were not accepted: {}",
            r.failed_batches,
            r.batches,
            r.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

fn cmd_query(a: QueryArgs) -> Result<()> {
    let mut urls = vec![a.url];
    urls.extend(a.compare);
    let opts = query::QueryOptions {
        urls,
        runs: a.runs,
        data: a.data.clone(),
        only: a.only,
        tenant: a.tenant,
        timeout: a.timeout,
        tolerance: a.tolerance,
    };
    let r = query::run(&opts)?;
    let m = a.data.as_deref().map(dataset::Manifest::read).transpose()?;
    print!("{}", report::query_text(&r));
    if a.out_opts.markdown {
        println!("\n{}", report::query_markdown(&r, m.as_ref()));
    }
    write_json_report(&a.out_opts, m.as_ref(), &r)?;
    Ok(())
}

fn cmd_compress(a: CompressArgs) -> Result<()> {
    let r = compress::run(&compress::CompressOptions {
        data: a.data.clone(),
        codecs: a.codecs,
        block_sizes: a.block_sizes,
        filter_bits_per_byte: a.filter_bits_per_byte,
        dictionary: a.dictionary,
    })?;
    let m = dataset::Manifest::read(&a.data)?;
    let table = report::compress_table(&r);
    print!("{}", table.text());
    if a.out_opts.markdown {
        println!("\n{}", report::compress_markdown(&table, &m));
    }
    write_json_report(&a.out_opts, Some(&m), &r)?;
    Ok(())
}

/// Writes `--json FILE` when asked: the results with the command line, machine and dataset.
fn write_json_report<T: serde::Serialize>(
    out: &ReportArgs,
    dataset: Option<&dataset::Manifest>,
    results: &T,
) -> Result<()> {
    match &out.json {
        Some(p) => report::write_json(
            p,
            &report::Envelope {
                command: report::command_line(),
                machine: procfs::machine(),
                dataset,
                results,
            },
        ),
        None => Ok(()),
    }
}
