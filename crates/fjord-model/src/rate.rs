//! A token bucket for byte-rate limits (tenant ingestion rate, per-stream rate).

use std::time::Instant;

/// Refills at `rate` tokens per second up to `burst`; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens if available at `now`; a request larger than the burst never fits.
    pub fn try_take_at(&mut self, n: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    pub fn try_take(&mut self, n: f64) -> bool {
        self.try_take_at(n, Instant::now())
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn refills_at_the_rate_up_to_the_burst() {
        let t0 = Instant::now();
        let mut b = TokenBucket {
            rate: 100.0,
            burst: 200.0,
            tokens: 200.0,
            last: t0,
        };
        assert!(b.try_take_at(150.0, t0));
        assert!(!b.try_take_at(100.0, t0));
        assert!(b.try_take_at(100.0, t0 + Duration::from_millis(500)));
        assert!(!b.try_take_at(201.0, t0 + Duration::from_secs(100)));
        assert!(b.try_take_at(200.0, t0 + Duration::from_secs(100)));
    }
}
