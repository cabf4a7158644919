//! Presenting results: aligned text tables for the terminal, Markdown sections ready to paste
//! into BENCHMARKS.md (with the machine, the dataset and the exact command line), and the JSON
//! file with every figure.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::compress::CompressReport;
use crate::dataset::Manifest;
use crate::ingest::IngestReport;
use crate::procfs::{self, Machine};
use crate::query::QueryReport;

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;

/// A table rendered either as aligned text or as Markdown. Numeric-looking cells align right.
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A short figure such as `12.3 ms`, `0.85×` or `-`.
    fn numeric(cell: &str) -> bool {
        cell.chars().count() <= 16
            && cell
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == '-')
    }

    /// Columns after the first whose cells are all figures align right.
    fn right_aligned(&self) -> Vec<bool> {
        (0..self.headers.len())
            .map(|c| {
                c > 0
                    && self
                        .rows
                        .iter()
                        .all(|r| r.get(c).is_none_or(|s| s.is_empty() || Self::numeric(s)))
            })
            .collect()
    }

    pub(crate) fn text(&self) -> String {
        let cols = self.headers.len();
        let width: Vec<usize> = (0..cols)
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                    .chain([self.headers[c].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let right = self.right_aligned();
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (c, w) in width.iter().enumerate() {
                let cell = cells.get(c).map_or("", String::as_str);
                let pad = w - cell.chars().count();
                if c > 0 {
                    out.push_str("  ");
                }
                if right[c] {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        };
        line(&self.headers, &mut out);
        out.push_str(
            &width
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }

    pub(crate) fn markdown(&self) -> String {
        let esc = |s: &str| s.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let align: Vec<&str> = self
            .right_aligned()
            .iter()
            .map(|r| if *r { "---:" } else { "---" })
            .collect();
        out.push_str(&format!("|{}|\n", align.join("|")));
        for r in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
            ));
        }
        out
    }
}

/// The command line as typed, shell-quoted where needed, with the program shown as
/// `fjord-bench`.
pub(crate) fn command_line() -> String {
    let mut args = std::env::args();
    let _program = args.next();
    std::iter::once("fjord-bench".to_string())
        .chain(args.map(|a| shell_quote(&a)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value).context("serialising the report")?;
    text.push(b'\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The JSON report: the figures plus the context they were measured in.
#[derive(Serialize)]
pub(crate) struct Envelope<'a, T: Serialize> {
    pub(crate) command: String,
    pub(crate) machine: Machine,
    pub(crate) dataset: Option<&'a Manifest>,
    pub(crate) results: &'a T,
}

pub(crate) fn machine_line(m: &Machine) -> String {
    format!(
        "{}, nproc {}, {:.1} GiB RAM, Linux {}",
        m.cpu_model,
        m.cpus,
        m.mem_bytes as f64 / GIB,
        m.kernel
    )
}

pub(crate) fn dataset_line(m: &Manifest) -> String {
    format!(
        "{:.1} MiB of line text ({} bytes), {} lines, {} streams, {} .. {} (seed {})",
        m.raw_bytes as f64 / MIB,
        m.raw_bytes,
        group(m.lines),
        m.streams,
        m.start,
        m.end,
        m.seed
    )
}

/// `1234567` → `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / MIB)
}

/// Rows of the ingest table: (measure, value).
fn ingest_rows(r: &IngestReport) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            "raw data pushed".to_string(),
            format!(
                "{} in {} lines, {} batches, {} connections",
                mib(r.raw_bytes),
                group(r.lines),
                r.batches,
                r.connections
            ),
        ),
        (
            "wire size (snappy protobuf)".into(),
            format!(
                "{} ({:.2}× smaller)",
                mib(r.wire_bytes),
                r.raw_bytes as f64 / r.wire_bytes.max(1) as f64
            ),
        ),
        ("push time".into(), format!("{:.2} s", r.push_seconds)),
        (
            "throughput".into(),
            format!(
                "{:.1} MiB/s raw, {} lines/s",
                r.mib_per_sec,
                group(r.lines_per_sec as u64)
            ),
        ),
        (
            "push latency p50 / p99 / max".into(),
            format!(
                "{:.0} / {:.0} / {:.0} ms",
                r.request_latency_ms.p50, r.request_latency_ms.p99, r.request_latency_ms.max
            ),
        ),
    ];
    if let Some(s) = &r.server {
        rows.push((
            "server CPU per GiB raw (push)".into(),
            format!(
                "{:.1} CPU-s ({:.1} s total)",
                s.cpu_seconds_per_gib_push, s.cpu_seconds_push
            ),
        ));
        rows.push((
            "server CPU per GiB raw (push + flush)".into(),
            format!(
                "{:.1} CPU-s ({:.1} s total)",
                s.cpu_seconds_per_gib_total, s.cpu_seconds_total
            ),
        ));
        rows.push((
            "server peak RSS (sampled every 20 ms)".into(),
            format!(
                "{} while pushing, {} incl. flush (VmHWM {}, before {}, after {})",
                mib(s.peak_rss_push_bytes),
                mib(s.peak_rss_bytes),
                mib(s.vm_hwm_bytes),
                mib(s.rss_before_bytes),
                mib(s.rss_after_bytes)
            ),
        ));
    }
    if let Some(f) = &r.flush {
        rows.push((
            "flush".into(),
            format!(
                "HTTP {} in {:.2} s; data settled after {:.1} s{}",
                f.status,
                f.request_seconds,
                f.settle_seconds,
                if f.settled { "" } else { " (still changing)" }
            ),
        ));
    }
    if let Some(d) = &r.disk {
        rows.push((
            "bytes on disk per raw byte".into(),
            format!(
                "{:.3} (du; apparent {:.3}) = {} in {} files",
                d.bytes_per_raw_byte,
                d.apparent_bytes_per_raw_byte,
                mib(d.after.allocated.saturating_sub(d.before.allocated)),
                d.after.files
            ),
        ));
    }
    if let Some(c) = &r.compaction {
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.3}{unit}"));
        rows.push((
            "compaction after the flush".into(),
            format!(
                "HTTP {} in {:.1} s; {} CPU-s per GiB raw; peak RSS {}; bytes on disk per raw byte after it {}",
                c.status,
                c.seconds,
                opt(c.cpu_seconds_per_gib, ""),
                c.peak_rss_bytes.map_or("-".to_string(), mib),
                opt(c.bytes_per_raw_byte, "")
            ),
        ));
    }
    let retries: u64 = r.retries.values().sum();
    let detail = r
        .retries
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    rows.push((
        "retries".into(),
        if retries == 0 {
            "0".into()
        } else {
            format!("{retries} ({detail})")
        },
    ));
    rows.push((
        "failed batches".into(),
        if r.failed_batches == 0 {
            "0".into()
        } else {
            format!(
                "{} ({} lines): {}",
                r.failed_batches,
                group(r.failed_lines),
                r.first_error.clone().unwrap_or_default()
            )
        },
    ));
    rows.push((
        "client CPU during push".into(),
        format!(
            "{:.1} s (encoding beforehand took {:.1} s)",
            r.client_cpu_seconds, r.encode_seconds
        ),
    ));
    rows
}

pub(crate) fn ingest_text(r: &IngestReport) -> String {
    let mut t = Table::new(&["measure", "value"]);
    for (k, v) in ingest_rows(r) {
        t.row(vec![k, v]);
    }
    t.text()
}

pub(crate) fn ingest_markdown(r: &IngestReport, m: &Manifest) -> String {
    let mut t = Table::new(&["measure", "value"]);
    for (k, v) in ingest_rows(r) {
        t.row(vec![k, v]);
    }
    format!("{}\n{}", context_block(m), t.markdown())
}

fn context_block(m: &Manifest) -> String {
    format!(
        "- Date: {}\n- Machine: {}\n- Dataset: {}\n- Command: `{}`\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine_line(&procfs::machine()),
        dataset_line(m),
        command_line()
    )
}

fn secs(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1000.0)
    }
}

fn query_table(r: &QueryReport) -> Table {
    let two = r.servers.len() > 1;
    let mut headers = vec!["query", "first", "min", "median", "rows"];
    if two {
        headers.extend(["B first", "B min", "B median", "B rows", "B/A", "agree"]);
    }
    let mut t = Table::new(&headers);
    for c in &r.cases {
        let mut row = vec![c.name.clone()];
        for s in &c.servers {
            let rows = match (&s.error, s.expected_ok) {
                (Some(_), _) => format!("HTTP {}", s.status),
                (None, Some(false)) => format!(
                    "{} (expected {})",
                    s.result_size,
                    c.expect_lines.unwrap_or(0)
                ),
                _ => s.result_size.to_string(),
            };
            row.extend([secs(s.first), secs(s.min), secs(s.median), rows]);
        }
        if two {
            row.push(c.ratio.map_or("-".into(), |x| format!("{x:.2}×")));
            row.push(match (c.agree, &c.difference) {
                (Some(true), Some(_)) => "yes (ties)".into(),
                (Some(true), None) => "yes".into(),
                (_, Some(d)) => format!("no: {d}"),
                _ => "-".into(),
            });
        }
        t.row(row);
    }
    t
}

fn servers_legend(r: &QueryReport) -> String {
    let names = ["A", "B"];
    r.servers
        .iter()
        .zip(names)
        .map(|(u, n)| format!("{n} = {u}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn query_text(r: &QueryReport) -> String {
    format!(
        "{} runs per query; {}\n{}",
        r.runs,
        servers_legend(r),
        query_table(r).text()
    )
}

pub(crate) fn query_markdown(r: &QueryReport, m: Option<&Manifest>) -> String {
    let ctx = match m {
        Some(m) => context_block(m),
        None => format!(
            "- Machine: {}\n- Command: `{}`\n",
            machine_line(&procfs::machine()),
            command_line()
        ),
    };
    format!(
        "{ctx}- Servers: {}; {} runs per query (first = cold, min and median over all runs)\n\n{}",
        servers_legend(r),
        r.runs,
        query_table(r).markdown()
    )
}

/// One row per codec and block size: bytes per raw byte in all and by section, speeds.
pub(crate) fn compress_table(r: &CompressReport) -> Table {
    let mut t = Table::new(&[
        "codec",
        "block",
        "blocks",
        "bytes/raw",
        "index",
        "text",
        "filter",
        "text, app dict",
        "encode MiB/s",
        "decode MiB/s",
    ]);
    for row in &r.rows {
        t.row(vec![
            row.codec.clone(),
            format!("{} KiB", row.block_size >> 10),
            group(row.blocks as u64),
            format!("{:.4}", row.total_ratio),
            format!("{:.4}", row.index_ratio),
            format!("{:.4}", row.text_ratio),
            format!("{:.4}", row.filter_ratio),
            row.text_ratio_with_dictionary
                .map_or("-".into(), |d| format!("{d:.4}")),
            format!("{:.0}", row.encode_mib_s),
            format!("{:.0}", row.decode_mib_s),
        ]);
    }
    t
}

pub(crate) fn compress_markdown(table: &Table, m: &Manifest) -> String {
    format!(
        "{}- Encode and decode speeds are one core's, whole blocks (filter included)\n\n{}",
        context_block(m),
        table.markdown()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_escape() {
        let mut t = Table::new(&["name", "value"]);
        t.row(vec!["a".into(), "1.5 ms".into()]);
        t.row(vec!["longer|name".into(), "12.0 ms".into()]);
        assert_eq!(
            t.text(),
            "name           value\n-----------  -------\na             1.5 ms\nlonger|name  12.0 ms\n"
        );
        assert_eq!(
            t.markdown(),
            "| name | value |\n|---|---:|\n| a | 1.5 ms |\n| longer\\|name | 12.0 ms |\n"
        );
    }

    #[test]
    fn quoting_and_grouping() {
        assert_eq!(shell_quote("--size"), "--size");
        assert_eq!(
            shell_quote("http://127.0.0.1:3100"),
            "http://127.0.0.1:3100"
        );
        assert_eq!(shell_quote("{a=\"b\"}"), "'{a=\"b\"}'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(group(0), "0");
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(100), "100");
        assert_eq!(secs(0.0123), "12.3 ms");
        assert_eq!(secs(2.0), "2.00 s");
    }
}
