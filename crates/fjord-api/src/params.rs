//! Query parameters of the read endpoints, parsed exactly as Loki parses them.
//!
//! Parameters come from the query string and, for POST, a form body; both are merged (Go's
//! `r.Form`). Timestamps accept float seconds (`1700000000.5`), integer seconds (up to 10
//! digits), integer nanoseconds (longer) and RFC3339; durations accept float seconds or
//! Prometheus durations.

use std::time::{SystemTime, UNIX_EPOCH};

use fjord_model::duration::parse_duration_ns;

/// Merged request parameters; repeated keys keep every value in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

/// A bad parameter; the message is the 400 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

fn err(msg: impl Into<String>) -> ParamError {
    ParamError(msg.into())
}

pub const NS_PER_SEC: i64 = 1_000_000_000;

pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A range query's `end` may not come before its `start`; Loki's message.
pub fn check_range_order(start: i64, end: i64) -> Result<(), ParamError> {
    if end < start {
        return Err(err(
            "end timestamp must not be before or equal to start time",
        ));
    }
    Ok(())
}

impl Params {
    /// Parses a query string and an optional `application/x-www-form-urlencoded` body.
    pub fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Params {
        let mut v: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            v.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        if let Some(b) = form_body {
            v.extend(url::form_urlencoded::parse(b).into_owned());
        }
        Params(v)
    }

    /// The first value of `key`, or `""` (Go's `Form.Get`).
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn limit(&self) -> Result<u32, ParamError> {
        let l = parse_int(self.get("limit"), 100)?;
        if l <= 0 {
            return Err(err("limit must be a positive value"));
        }
        u32::try_from(l)
            .map_err(|_| err(format!("limit value {l} is out of range [0, {}]", u32::MAX)))
    }

    /// `direction`: `true` for forward. Default backward.
    pub fn forward(&self) -> Result<bool, ParamError> {
        match self.get("direction").to_ascii_uppercase().as_str() {
            "" | "BACKWARD" => Ok(false),
            "FORWARD" => Ok(true),
            _ => Err(err(format!(
                "invalid direction '{}'",
                self.get("direction")
            ))),
        }
    }

    /// `start`/`end`/`since` → `[start, end]` in ns, with Loki's defaults (end = now,
    /// start = min(end, now) − since, since = 1h).
    pub fn bounds(&self, now: i64) -> Result<(i64, i64), ParamError> {
        let since = match self.get("since") {
            "" => 3600 * NS_PER_SEC,
            s => parse_prom_duration(s)
                .map_err(|e| err(format!("could not parse 'since' parameter: {e}")))?,
        };
        let end = parse_timestamp(self.get("end"), now)
            .map_err(|e| err(format!("could not parse 'end' parameter: {e}")))?;
        let end_or_now = end.min(now);
        let start = parse_timestamp(self.get("start"), end_or_now.saturating_sub(since))
            .map_err(|e| err(format!("could not parse 'start' parameter: {e}")))?;
        Ok((start, end))
    }

    /// `time` of an instant query, default now.
    pub fn time(&self, now: i64) -> Result<i64, ParamError> {
        parse_timestamp(self.get("time"), now).map_err(|e| err(e.to_string()))
    }

    /// `step` in ns, default `max(floor((end−start)/250s), 1)` seconds.
    pub fn step(&self, start: i64, end: i64) -> Result<i64, ParamError> {
        match self.get("step") {
            "" => Ok((((end - start) as f64 / 1e9 / 250.0).floor().max(1.0) as i64) * NS_PER_SEC),
            s => parse_seconds_or_duration(s),
        }
    }

    /// The `step` of a range query over `[start, end]`, validated as Loki validates a range
    /// query's: positive, and at most 11,000 points per series. Without the cap a step of a
    /// microsecond asks for billions of points.
    pub fn range_step(&self, start: i64, end: i64) -> Result<i64, ParamError> {
        let step = self.step(start, end)?;
        if step <= 0 {
            return Err(err(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end.saturating_sub(start) / step > 11000 {
            return Err(err(
                "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter",
            ));
        }
        Ok(step)
    }

    /// `interval` in ns, default 0.
    pub fn interval(&self) -> Result<i64, ParamError> {
        match self.get("interval") {
            "" => Ok(0),
            s => parse_seconds_or_duration(s),
        }
    }
}

fn parse_int(v: &str, default: i64) -> Result<i64, ParamError> {
    if v.is_empty() {
        return Ok(default);
    }
    v.parse::<i64>()
        .map_err(|_| err(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))
}

/// A Prometheus duration (`5m`, `1h30m`, `1d`), in ns.
pub fn parse_prom_duration(s: &str) -> Result<i64, String> {
    if s.contains('.') || s.starts_with('-') || s.starts_with('+') {
        return Err(format!("not a valid duration string: {s:?}"));
    }
    parse_duration_ns(s).map_err(|_| format!("not a valid duration string: {s:?}"))
}

/// Float seconds or a Prometheus duration, in ns.
pub fn parse_seconds_or_duration(s: &str) -> Result<i64, ParamError> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            )));
        }
        return Ok(ns as i64);
    }
    parse_prom_duration(s).map_err(|_| err(format!("cannot parse {s:?} to a valid duration")))
}

/// A timestamp in any form Loki accepts; `default` when empty.
pub fn parse_timestamp(v: &str, default: i64) -> Result<i64, ParamError> {
    if v.is_empty() {
        return Ok(default);
    }
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round() / 1000.0;
        return Ok((secs as i64)
            .saturating_mul(NS_PER_SEC)
            .saturating_add((frac * 1e9) as i64));
    }
    match v.parse::<i64>() {
        Ok(n) if v.len() <= 10 => Ok(n.saturating_mul(NS_PER_SEC)),
        Ok(n) => Ok(n),
        Err(_) => chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
            .ok_or_else(|| err(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_form() {
        assert_eq!(
            parse_timestamp("1705312800", 0).unwrap(),
            1_705_312_800 * NS_PER_SEC
        );
        assert_eq!(
            parse_timestamp("1705312800.5", 0).unwrap(),
            1_705_312_800_500_000_000
        );
        assert_eq!(
            parse_timestamp("1705312800000000000", 0).unwrap(),
            1_705_312_800 * NS_PER_SEC
        );
        assert_eq!(
            parse_timestamp("2024-01-15T10:00:00Z", 0).unwrap(),
            1_705_312_800 * NS_PER_SEC
        );
        assert_eq!(
            parse_timestamp("2024-01-15T10:00:00.123456789Z", 0).unwrap(),
            1_705_312_800_123_456_789
        );
        assert_eq!(parse_timestamp("", 7).unwrap(), 7);
        assert!(parse_timestamp("yesterday", 0).is_err());
    }

    #[test]
    fn bounds_defaults() {
        let now = 10_000 * NS_PER_SEC;
        let p = Params::parse(Some(""), None);
        assert_eq!(p.bounds(now).unwrap(), (now - 3600 * NS_PER_SEC, now));
        let p = Params::parse(Some("end=5000&since=10m"), None);
        assert_eq!(
            p.bounds(now).unwrap(),
            (4400 * NS_PER_SEC, 5000 * NS_PER_SEC)
        );
        let p = Params::parse(Some("start=1&end=2"), Some(b"start=3"));
        assert_eq!(p.bounds(now).unwrap(), (NS_PER_SEC, 2 * NS_PER_SEC));
    }

    #[test]
    fn steps_limits_directions() {
        let p = Params::parse(Some("step=300&limit=0&direction=FORWARD"), None);
        assert_eq!(p.step(0, 1).unwrap(), 300 * NS_PER_SEC);
        assert_eq!(p.limit().unwrap_err().0, "limit must be a positive value");
        assert!(p.forward().unwrap());
        let p = Params::parse(Some("step=1m30s&direction=sideways"), None);
        assert_eq!(p.step(0, 1).unwrap(), 90 * NS_PER_SEC);
        assert_eq!(p.forward().unwrap_err().0, "invalid direction 'sideways'");
        let p = Params::parse(Some("step=250ms"), None);
        assert_eq!(p.step(0, 1).unwrap(), 250_000_000);
        let p = Params::parse(None, None);
        assert_eq!(p.step(0, 1000 * NS_PER_SEC).unwrap(), 4 * NS_PER_SEC);
        assert_eq!(p.limit().unwrap(), 100);
    }

    #[test]
    fn range_steps_are_positive_and_at_most_11000_points() {
        let hour = 3600 * NS_PER_SEC;
        let step =
            |q: &str, start: i64, end: i64| Params::parse(Some(q), None).range_step(start, end);
        assert_eq!(step("step=1", 0, 11000 * NS_PER_SEC).unwrap(), NS_PER_SEC);
        assert!(
            step("step=1", 0, 11001 * NS_PER_SEC)
                .unwrap_err()
                .0
                .starts_with("exceeded maximum resolution of 11,000 points")
        );
        assert!(
            step("step=0.000001", 0, hour)
                .unwrap_err()
                .0
                .contains("11,000 points")
        );
        assert!(
            step("step=1", i64::MIN, i64::MAX)
                .unwrap_err()
                .0
                .contains("11,000 points")
        );
        assert!(
            step("step=0", 0, hour)
                .unwrap_err()
                .0
                .starts_with("zero or negative")
        );
        assert_eq!(step("", 0, hour).unwrap(), 14 * NS_PER_SEC);
    }
}
