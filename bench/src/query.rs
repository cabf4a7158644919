//! `query`: runs the suite several times against one or two servers and reports per query the
//! first (cold), minimum and median latency, the size of the answer, and — with two servers —
//! the ratio of medians and whether the answers agree.
//!
//! Runs are interleaved (run → query → server) so both servers see the same conditions. A
//! latency is the wall time from sending the request to having read the whole body. Answers are
//! compared on the first run only (they must not change between runs).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::compare::{self, Answer};
use crate::dataset::Manifest;
use crate::suite::{self, Case, Range};

#[derive(Debug, Clone)]
pub(crate) struct QueryOptions {
    pub(crate) urls: Vec<String>,
    pub(crate) runs: usize,
    pub(crate) data: Option<std::path::PathBuf>,
    pub(crate) only: Vec<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) tolerance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct QueryReport {
    pub(crate) servers: Vec<String>,
    pub(crate) runs: usize,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) dataset_raw_bytes: Option<u64>,
    pub(crate) dataset_lines: Option<u64>,
    pub(crate) cases: Vec<CaseReport>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CaseReport {
    pub(crate) name: String,
    pub(crate) endpoint: String,
    pub(crate) query: String,
    pub(crate) expect_lines: Option<u64>,
    /// One entry per server, in the order given.
    pub(crate) servers: Vec<Timing>,
    /// Second server's median / first server's median.
    pub(crate) ratio: Option<f64>,
    /// Whether the answers agree; a tie-breaking query (`topk`) also agrees when only the
    /// series kept among equal values differ (then `difference` says so).
    pub(crate) agree: Option<bool>,
    pub(crate) difference: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Timing {
    pub(crate) url: String,
    pub(crate) seconds: Vec<f64>,
    pub(crate) first: f64,
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) status: u16,
    pub(crate) result_size: u64,
    pub(crate) error: Option<String>,
    /// False when `expect_lines` is set and the answer has a different number of lines.
    pub(crate) expected_ok: Option<bool>,
}

pub(crate) fn run(opts: &QueryOptions) -> Result<QueryReport> {
    if opts.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let manifest = opts.data.as_deref().map(Manifest::read).transpose()?;
    let range = match &manifest {
        Some(m) => Range::from_manifest(m),
        None => {
            eprintln!(
                "query: no --data given; assuming the default `gen` time range (2h ending 2026-11-20T12:00:00Z)"
            );
            Range::default_dataset()
        }
    };
    let mut cases = suite::cases(&range);
    if !opts.only.is_empty() {
        let unknown: Vec<&String> = opts
            .only
            .iter()
            .filter(|o| !cases.iter().any(|c| c.name == o.as_str()))
            .collect();
        if !unknown.is_empty() {
            bail!(
                "unknown query name(s) {unknown:?}; the suite has: {}",
                cases.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            );
        }
        cases.retain(|c| opts.only.iter().any(|o| o == c.name));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run_suite(opts, &range, manifest.as_ref(), cases))
}

struct Slot {
    seconds: Vec<f64>,
    status: u16,
    answer: Option<Answer>,
    error: Option<String>,
}

async fn run_suite(
    opts: &QueryOptions,
    range: &Range,
    manifest: Option<&Manifest>,
    cases: Vec<Case>,
) -> Result<QueryReport> {
    let client = reqwest::Client::builder()
        .timeout(opts.timeout)
        .user_agent(concat!("fjord-bench/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let bases: Vec<String> = opts
        .urls
        .iter()
        .map(|u| u.trim_end_matches('/').to_string())
        .collect();
    let mut slots: Vec<Vec<Slot>> = cases
        .iter()
        .map(|_| {
            bases
                .iter()
                .map(|_| Slot {
                    seconds: Vec::new(),
                    status: 0,
                    answer: None,
                    error: None,
                })
                .collect()
        })
        .collect();
    for run in 0..opts.runs {
        eprintln!("query: run {}/{}", run + 1, opts.runs);
        for (ci, case) in cases.iter().enumerate() {
            for (si, base) in bases.iter().enumerate() {
                let (secs, status, body) =
                    execute(&client, base, case, opts.tenant.as_deref()).await;
                let slot = &mut slots[ci][si];
                slot.seconds.push(secs);
                if run == 0 {
                    slot.status = status;
                    let json: Option<Value> = body
                        .as_ref()
                        .ok()
                        .and_then(|b| serde_json::from_slice(b).ok());
                    slot.answer = Some(compare::normalise(
                        &case.endpoint,
                        case.query(),
                        case.direction(),
                        status,
                        json.as_ref(),
                    ));
                    slot.error = match (&body, status) {
                        (Err(e), _) => Some(e.clone()),
                        (Ok(b), s) if s != 200 => Some(format!(
                            "HTTP {s}: {}",
                            String::from_utf8_lossy(b)
                                .trim()
                                .chars()
                                .take(300)
                                .collect::<String>()
                        )),
                        _ => None,
                    };
                    if let Some(e) = &slot.error {
                        eprintln!("query: {} on {base}: {e}", case.name);
                    }
                }
            }
        }
    }

    let mut reports = Vec::new();
    for (case, row) in cases.iter().zip(slots) {
        let timings: Vec<Timing> = row
            .iter()
            .zip(&bases)
            .map(|(s, url)| {
                let mut sorted = s.seconds.clone();
                sorted.sort_by(f64::total_cmp);
                let size = s.answer.as_ref().map_or(0, Answer::size);
                Timing {
                    url: url.clone(),
                    seconds: s.seconds.clone(),
                    first: s.seconds.first().copied().unwrap_or(0.0),
                    min: sorted.first().copied().unwrap_or(0.0),
                    median: median(&sorted),
                    status: s.status,
                    result_size: size,
                    error: s.error.clone(),
                    expected_ok: case.expect_lines.map(|e| s.status == 200 && e == size),
                }
            })
            .collect();
        let (ratio, agree, difference) =
            match (row.first(), row.get(1), timings.first(), timings.get(1)) {
                (Some(a), Some(b), Some(ta), Some(tb)) => {
                    let (agree, diff) = match (&a.answer, &b.answer) {
                        (Some(x), Some(y)) => match compare::differ(x, y, opts.tolerance) {
                            Some(d)
                                if compare::breaks_ties(case.query())
                                    && compare::same_values_per_timestamp(x, y, opts.tolerance) =>
                            {
                                (true, Some(format!("{d}, equal up to tie-breaking")))
                            }
                            d => (d.is_none(), d),
                        },
                        _ => (false, Some("no answer".into())),
                    };
                    (Some(tb.median / ta.median.max(1e-9)), Some(agree), diff)
                }
                _ => (None, None, None),
            };
        reports.push(CaseReport {
            name: case.name.to_string(),
            endpoint: case.endpoint.clone(),
            query: case.query().to_string(),
            expect_lines: case.expect_lines,
            servers: timings,
            ratio,
            agree,
            difference,
        });
    }
    Ok(QueryReport {
        servers: bases,
        runs: opts.runs,
        start_ns: range.start_ns,
        end_ns: range.end_ns,
        dataset_raw_bytes: manifest.map(|m| m.raw_bytes),
        dataset_lines: manifest.map(|m| m.lines),
        cases: reports,
    })
}

/// Median of sorted values: the middle one, or the mean of the two middle ones.
pub(crate) fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// One request: (seconds, HTTP status or 0 on a transport error, body or error text).
async fn execute(
    client: &reqwest::Client,
    base: &str,
    case: &Case,
    tenant: Option<&str>,
) -> (f64, u16, Result<bytes::Bytes, String>) {
    let url = match url::Url::parse_with_params(&format!("{base}{}", case.endpoint), &case.params) {
        Ok(u) => u,
        Err(e) => return (0.0, 0, Err(format!("bad URL {base}{}: {e}", case.endpoint))),
    };
    let mut req = client.get(url);
    if let Some(t) = tenant {
        req = req.header("X-Scope-OrgID", t);
    }
    let t = Instant::now();
    match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| format!("reading the body: {e}"));
            (t.elapsed().as_secs_f64(), status, body)
        }
        Err(e) => (
            t.elapsed().as_secs_f64(),
            0,
            Err(format!("request failed: {e}")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0]), 3.0);
        assert_eq!(median(&[1.0, 2.0]), 1.5);
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
    }
}
