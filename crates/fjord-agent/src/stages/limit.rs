//! The `limit` stage: a token bucket of `rate` lines per second with `burst`. With `drop:
//! true` lines over the rate are dropped (counted with reason `ratelimit`); otherwise the
//! pipeline waits, which back-pressures the files. With `by_label_name` each value of that
//! label gets its own bucket (entries without the label are not limited, and over-rate entries
//! are always dropped, as in Promtail); `max_distinct_labels` (at least 10000) bounds the
//! number of buckets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{BuildContext, Entry, Out, Stage, StageError};
use crate::metrics::Metrics;

/// `limit` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitConfig {
    pub rate: f64,
    pub burst: u64,
    pub drop: bool,
    pub by_label_name: Option<String>,
    pub max_distinct_labels: Option<usize>,
}

/// A token bucket (golang.org/x/time/rate semantics: starts full).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: f64, burst: u64) -> Bucket {
        Bucket {
            rate,
            burst: burst as f64,
            tokens: burst as f64,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token if one is available.
    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Takes a token, returning how long to wait before the token is really available.
    pub(crate) fn reserve(&mut self, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 || self.rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

pub(crate) struct LimitStage {
    rate: f64,
    burst: u64,
    drop: bool,
    by_label: Option<String>,
    max_labels: usize,
    bucket: Bucket,
    by_value: HashMap<String, Bucket>,
    metrics: Arc<Metrics>,
}

impl LimitStage {
    pub(crate) fn new(cfg: &LimitConfig, ctx: &BuildContext) -> Result<LimitStage, StageError> {
        if cfg.rate <= 0.0 {
            return Err(StageError::new("limit", "rate must be greater than 0"));
        }
        if cfg.burst == 0 {
            return Err(StageError::new("limit", "burst must be greater than 0"));
        }
        Ok(LimitStage {
            rate: cfg.rate,
            burst: cfg.burst,
            drop: cfg.drop,
            by_label: cfg.by_label_name.clone().filter(|s| !s.is_empty()),
            max_labels: cfg.max_distinct_labels.unwrap_or(10_000).max(10_000),
            bucket: Bucket::new(cfg.rate, cfg.burst),
            by_value: HashMap::new(),
            metrics: ctx.metrics.clone(),
        })
    }
}

impl Stage for LimitStage {
    fn process(&mut self, e: Entry, out: &mut Out) {
        let now = Instant::now();
        if let Some(name) = &self.by_label {
            let Some(v) = e.labels.get(name) else {
                out.push(e);
                return;
            };
            if !self.by_value.contains_key(v) && self.by_value.len() >= self.max_labels {
                self.by_value.clear();
            }
            let (rate, burst) = (self.rate, self.burst);
            let b = self
                .by_value
                .entry(v.clone())
                .or_insert_with(|| Bucket::new(rate, burst));
            if b.allow(now) {
                out.push(e);
            } else {
                self.metrics.dropped_lines("ratelimit");
            }
            return;
        }
        if self.drop {
            if self.bucket.allow(now) {
                out.push(e);
            } else {
                self.metrics.dropped_lines("ratelimit");
            }
            return;
        }
        // Pipelines run on their own threads, so waiting here only holds back this job.
        let wait = self.bucket.reserve(now);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        out.push(e);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::super::testutil::*;

    #[test]
    fn drops_over_burst() {
        let mut p = pipeline("[{limit: {rate: 1, burst: 3, drop: true}}]");
        let out = p.process((0..10).map(|i| entry(&i.to_string())).collect());
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn by_label() {
        let mut p = pipeline("[{limit: {rate: 1, burst: 2, by_label_name: app}}]");
        let mut input = Vec::new();
        for _ in 0..5 {
            input.push(entry_with(&[("app", "a")], "x", 1));
            input.push(entry_with(&[("app", "b")], "x", 1));
            input.push(entry_with(&[], "x", 1));
        }
        assert_eq!(p.process(input).len(), 2 + 2 + 5);
    }

    #[test]
    fn waits_without_drop() {
        let mut p = pipeline("[{limit: {rate: 100, burst: 1}}]");
        let start = Instant::now();
        let out = p.process((0..6).map(|i| entry(&i.to_string())).collect());
        assert_eq!(out.len(), 6);
        assert!(
            start.elapsed().as_millis() >= 40,
            "5 lines over the burst at 100/s take ~50ms"
        );
        assert!(build_err("[{limit: {rate: 0, burst: 1}}]").contains("rate"));
    }
}
