//! The `*_over_time` functions: what one range window of samples evaluates to.
//!
//! Each function sees the samples of one series whose timestamps fall in the window
//! `(t − range, t]`, in time order, and returns the value at `t`. The arithmetic follows Loki's
//! implementations step for step (including Prometheus' extrapolation for `rate_counter` and
//! the incremental mean and variance), so results agree to the last bit where Loki's do.

/// A range aggregation operation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeOp {
    Count,
    /// `rate` over log lines: count ÷ range seconds; with `unwrap`, sum ÷ range seconds.
    Rate {
        unwrapped: bool,
    },
    RateCounter,
    Bytes,
    BytesRate,
    Sum,
    Avg,
    Min,
    Max,
    Stddev,
    Stdvar,
    Quantile(f64),
    First,
    Last,
    Absent,
}

/// One sample: time in ns and value.
pub type Point = (i64, f64);

/// Evaluates `op` over a non-empty window ending at `range_end` (ns) of length `range` (ns).
pub fn eval(op: RangeOp, samples: &[Point], range_end: i64, range: i64) -> f64 {
    let secs = range as f64 / 1e9;
    match op {
        RangeOp::Count => samples.len() as f64,
        RangeOp::Rate { unwrapped: false } => samples.len() as f64 / secs,
        RangeOp::Rate { unwrapped: true } => sum(samples) / secs,
        RangeOp::RateCounter => extrapolated_rate(samples, range, range_end),
        RangeOp::Bytes | RangeOp::Sum => sum(samples),
        RangeOp::BytesRate => sum(samples) / secs,
        RangeOp::Avg => avg(samples),
        RangeOp::Max => {
            let mut m = f64::NAN;
            for &(_, v) in samples {
                if v > m || m.is_nan() {
                    m = v;
                }
            }
            m
        }
        RangeOp::Min => {
            let mut m = f64::NAN;
            for &(_, v) in samples {
                if v < m || m.is_nan() {
                    m = v;
                }
            }
            m
        }
        RangeOp::Stdvar => stdvar(samples),
        RangeOp::Stddev => stdvar(samples).sqrt(),
        RangeOp::Quantile(q) => {
            let mut vals: Vec<f64> = samples.iter().map(|&(_, v)| v).collect();
            quantile(q, &mut vals)
        }
        RangeOp::First => samples.first().map_or(f64::NAN, |s| s.1),
        RangeOp::Last => samples.last().map_or(f64::NAN, |s| s.1),
        RangeOp::Absent => 1.0,
    }
}

fn sum(samples: &[Point]) -> f64 {
    samples.iter().map(|s| s.1).fold(0.0, |a, b| a + b)
}

/// Loki's incremental mean, which keeps an infinite mean stable.
fn avg(samples: &[Point]) -> f64 {
    let (mut mean, mut count) = (0.0f64, 0.0f64);
    for &(_, v) in samples {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// Welford's running variance (population).
fn stdvar(samples: &[Point]) -> f64 {
    let (mut aux, mut count, mut mean) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in samples {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        aux += delta * (v - mean);
    }
    aux / count
}

/// Prometheus' quantile with linear interpolation; NaN sorts first, as in Loki.
pub fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let order = |a: &f64, b: &f64| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    };
    let n = vals.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0) as usize;
    let weight = rank - rank.floor();
    // Only the two order statistics around the rank are needed, not the whole sorted window
    // (a window of a p99 over many samples is sorted once per step it belongs to otherwise).
    let (_, &mut low, above) = vals.select_nth_unstable_by(lower, order);
    let high = above.iter().copied().min_by(order).unwrap_or(low);
    low * (1.0 - weight) + high * weight
}

/// Prometheus' counter rate with extrapolation to the window edges.
fn extrapolated_rate(samples: &[Point], range: i64, range_end: i64) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let range_start = range_end - range;
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let mut result = last.1 - first.1;
    let mut last_value = 0.0f64;
    for &(_, v) in samples {
        if v < last_value {
            result += last_value;
        }
        last_value = v;
    }
    let mut to_start = (first.0 - range_start) as f64 / 1e9;
    let mut to_end = (range_end - last.0) as f64 / 1e9;
    let sampled = (last.0 - first.0) as f64 / 1e9;
    let avg_between = sampled / (samples.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    let mut to_zero = to_start;
    if result > 0.0 && first.1 >= 0.0 {
        to_zero = sampled * (first.1 / result);
    }
    if to_zero < to_start {
        to_start = to_zero;
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let extrapolate_to = sampled + to_start + to_end;
    result *= extrapolate_to / sampled;
    result / (range as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// The definition: sort the whole window (NaN first) and interpolate.
    fn quantile_by_sorting(q: f64, vals: &[f64]) -> f64 {
        let mut v = vals.to_vec();
        v.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
        });
        let rank = q * (v.len() as f64 - 1.0);
        let (lower, w) = (rank.floor() as usize, rank - rank.floor());
        let upper = (lower + 1).min(v.len() - 1);
        v[lower] * (1.0 - w) + v[upper] * w
    }

    #[test]
    fn quantile_selects_what_sorting_would() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 1..60 {
            let vals: Vec<f64> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 23 {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2..=6 => 5.0,
                        r => (x % 1000) as f64 / f64::from(r as u8),
                    }
                })
                .collect();
            for q in [0.0, 0.1, 0.25, 0.5, 0.9, 0.99, 1.0] {
                let want = quantile_by_sorting(q, &vals);
                let got = quantile(q, &mut vals.clone());
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "q={q} over {vals:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn basic_functions() {
        let w = [(S, 1.0), (2 * S, 4.0), (3 * S, 2.0)];
        assert_eq!(eval(RangeOp::Count, &w, 3 * S, 60 * S), 3.0);
        assert_eq!(
            eval(RangeOp::Rate { unwrapped: false }, &w, 3 * S, 60 * S),
            0.05
        );
        assert_eq!(eval(RangeOp::Sum, &w, 3 * S, 60 * S), 7.0);
        assert_eq!(eval(RangeOp::Max, &w, 3 * S, 60 * S), 4.0);
        assert_eq!(eval(RangeOp::Min, &w, 3 * S, 60 * S), 1.0);
        assert_eq!(eval(RangeOp::First, &w, 3 * S, 60 * S), 1.0);
        assert_eq!(eval(RangeOp::Last, &w, 3 * S, 60 * S), 2.0);
        assert!((eval(RangeOp::Avg, &w, 3 * S, 60 * S) - 7.0 / 3.0).abs() < 1e-12);
        assert!((eval(RangeOp::Stdvar, &w, 3 * S, 60 * S) - 1.5555555555555556).abs() < 1e-12);
        assert_eq!(eval(RangeOp::Quantile(0.5), &w, 3 * S, 60 * S), 2.0);
        assert_eq!(
            eval(RangeOp::Quantile(2.0), &w, 3 * S, 60 * S),
            f64::INFINITY
        );
    }

    #[test]
    fn counter_rate_handles_resets() {
        // 0,10,20 then reset to 5: increase = 20 + 5 = 25 over 30s sampled.
        let w = [(0, 0.0), (10 * S, 10.0), (20 * S, 20.0), (30 * S, 5.0)];
        let r = eval(RangeOp::RateCounter, &w, 30 * S, 30 * S);
        assert!((r - 25.0 / 30.0).abs() < 1e-9, "{r}");
        assert_eq!(eval(RangeOp::RateCounter, &w[..1], 30 * S, 30 * S), 0.0);
    }
}
