//! Timestamp text in the layouts real software prints (RFC 3339, nginx, klog, Spring, Python,
//! Postgres, Redis). The calendar fields are computed once per second and reused, because a
//! stream's consecutive lines nearly always fall in the same second.

use std::io::Write;

use chrono::{DateTime, Datelike, Timelike};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil UTC time of one second plus the sub-second part of the current timestamp.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock {
    sec: i64,
    valid: bool,
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    s: u32,
    nanos: u32,
    /// Seconds since the start of the dataset, for the uptime-style stamps of JVM GC logs.
    pub(crate) uptime: f64,
}

impl Clock {
    /// Moves the clock to `ts_ns` (Unix ns); `origin_ns` is the dataset start, for uptimes.
    pub(crate) fn set(&mut self, ts_ns: i64, origin_ns: i64) {
        let sec = ts_ns.div_euclid(1_000_000_000);
        self.nanos = ts_ns.rem_euclid(1_000_000_000) as u32;
        self.uptime = (ts_ns - origin_ns) as f64 / 1e9 + 86_400.0;
        if self.valid && sec == self.sec {
            return;
        }
        // Out-of-range timestamps cannot come from the planner (it works within a few years of
        // now); the epoch is a harmless fallback rather than a panic.
        let dt = DateTime::from_timestamp(sec, 0).unwrap_or_default();
        self.sec = sec;
        self.valid = true;
        self.year = dt.year();
        self.month = dt.month();
        self.day = dt.day();
        self.hour = dt.hour();
        self.min = dt.minute();
        self.s = dt.second();
    }

    fn millis(&self) -> u32 {
        self.nanos / 1_000_000
    }

    fn micros(&self) -> u32 {
        self.nanos / 1_000
    }

    /// `2026-11-20T10:00:00.123Z`
    pub(crate) fn rfc3339_ms(&self, out: &mut Vec<u8>) {
        w(
            out,
            format_args!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                self.year,
                self.month,
                self.day,
                self.hour,
                self.min,
                self.s,
                self.millis()
            ),
        );
    }

    /// `2026-11-20T10:00:00.123456Z`
    pub(crate) fn rfc3339_us(&self, out: &mut Vec<u8>) {
        w(
            out,
            format_args!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                self.year,
                self.month,
                self.day,
                self.hour,
                self.min,
                self.s,
                self.micros()
            ),
        );
    }

    /// `2026-11-20T10:00:00.123456789Z` (Go's RFC3339Nano with all digits, as Grafana logs it).
    pub(crate) fn rfc3339_ns(&self, out: &mut Vec<u8>) {
        w(
            out,
            format_args!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                self.year, self.month, self.day, self.hour, self.min, self.s, self.nanos
            ),
        );
    }

    /// nginx `$time_local`: `20/Nov/2026:10:00:00 +0000`
    pub(crate) fn nginx_local(&self, out: &mut Vec<u8>) {
        let mon = MONTHS[(self.month as usize).saturating_sub(1) % 12];
        w(
            out,
            format_args!(
                "{:02}/{mon}/{:04}:{:02}:{:02}:{:02} +0000",
                self.day, self.year, self.hour, self.min, self.s
            ),
        );
    }

    /// nginx error log: `2026/11/20 10:00:00`
    pub(crate) fn slashed(&self, out: &mut Vec<u8>) {
        w(
            out,
            format_args!(
                "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
                self.year, self.month, self.day, self.hour, self.min, self.s
            ),
        );
    }

    /// `2026-11-20 10:00:00.123` with `sep` before the milliseconds (`.` Spring/Postgres,
    /// `,` Python logging).
    pub(crate) fn spaced_ms(&self, out: &mut Vec<u8>, sep: char) {
        w(
            out,
            format_args!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{sep}{:03}",
                self.year,
                self.month,
                self.day,
                self.hour,
                self.min,
                self.s,
                self.millis()
            ),
        );
    }

    /// klog header: `I1120 10:00:00.123456`
    pub(crate) fn klog(&self, out: &mut Vec<u8>, severity: char) {
        w(
            out,
            format_args!(
                "{severity}{:02}{:02} {:02}:{:02}:{:02}.{:06}",
                self.month,
                self.day,
                self.hour,
                self.min,
                self.s,
                self.micros()
            ),
        );
    }

    /// Redis: `20 Nov 2026 10:00:00.123`
    pub(crate) fn redis(&self, out: &mut Vec<u8>) {
        let mon = MONTHS[(self.month as usize).saturating_sub(1) % 12];
        w(
            out,
            format_args!(
                "{:02} {mon} {:04} {:02}:{:02}:{:02}.{:03}",
                self.day,
                self.year,
                self.hour,
                self.min,
                self.s,
                self.millis()
            ),
        );
    }

    /// Unix seconds with milliseconds, as a JSON number: `1763632800.123`
    pub(crate) fn epoch_ms(&self, out: &mut Vec<u8>) {
        w(out, format_args!("{}.{:03}", self.sec, self.millis()));
    }
}

/// Formats into a line buffer. Writing into a `Vec` cannot fail, so the result carries no
/// information worth propagating.
pub(crate) fn w(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    let _infallible = out.write_fmt(args);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl Fn(&Clock, &mut Vec<u8>)) -> String {
        let mut c = Clock::default();
        // 2026-11-20T10:00:05.123456789Z
        c.set(1_795_168_805_123_456_789, 1_795_168_800_000_000_000);
        let mut out = Vec::new();
        f(&c, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn layouts() {
        assert_eq!(render(|c, o| c.rfc3339_ms(o)), "2026-11-20T10:00:05.123Z");
        assert_eq!(
            render(|c, o| c.rfc3339_ns(o)),
            "2026-11-20T10:00:05.123456789Z"
        );
        assert_eq!(
            render(|c, o| c.nginx_local(o)),
            "20/Nov/2026:10:00:05 +0000"
        );
        assert_eq!(render(|c, o| c.slashed(o)), "2026/11/20 10:00:05");
        assert_eq!(
            render(|c, o| c.spaced_ms(o, ',')),
            "2026-11-20 10:00:05,123"
        );
        assert_eq!(render(|c, o| c.klog(o, 'I')), "I1120 10:00:05.123456");
        assert_eq!(render(|c, o| c.redis(o)), "20 Nov 2026 10:00:05.123");
        assert_eq!(render(|c, o| c.epoch_ms(o)), "1795168805.123");
    }
}
