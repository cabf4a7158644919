//! Go's `time` package, as far as templates reach it.
//!
//! * [`GoTime`]: an instant (Unix seconds + nanoseconds) with a location. `Local` behaves as
//!   UTC, as in Loki's container images (no `TZ`, no `/etc/localtime`), and prints the zone as
//!   `UTC`. Named zones come from the compiled-in IANA database (`chrono-tz`); no files are read.
//! * Layout-based `Format` and `Parse` (`"2006-01-02T15:04:05Z07:00"`), chunk for chunk Go's
//!   `nextStdChunk`, including Go's parse error texts.
//! * [`GoDuration`]: `ParseDuration` and `String` (`1h2m3.5s`).
//!
//! Arithmetic wraps where Go's does (`UnixNano` of far dates), never panics.

use std::fmt::Write;
use std::sync::Arc;

use chrono::{Offset, TimeZone};
use chrono_tz::OffsetName;

/// A time zone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Loc {
    Utc,
    /// Go's `time.Local`; UTC here.
    Local,
    Fixed(Arc<str>, i32),
    Named(chrono_tz::Tz),
}

impl Loc {
    /// Go's `time.LoadLocation`.
    pub(crate) fn load(name: &str) -> Option<Loc> {
        match name {
            "" | "UTC" => Some(Loc::Utc),
            "Local" => Some(Loc::Local),
            _ => name.parse::<chrono_tz::Tz>().ok().map(Loc::Named),
        }
    }

    /// The zone abbreviation and offset (seconds east of UTC) in effect at `unix`.
    pub(crate) fn lookup(&self, unix: i64) -> (String, i32) {
        match self {
            Loc::Utc | Loc::Local => ("UTC".into(), 0),
            Loc::Fixed(name, off) => (name.to_string(), *off),
            Loc::Named(tz) => match chrono::DateTime::from_timestamp(unix, 0) {
                Some(dt) => {
                    let off = tz.offset_from_utc_datetime(&dt.naive_utc());
                    let secs = off.fix().local_minus_utc();
                    let name = match off.abbreviation() {
                        Some(a) => a.to_string(),
                        None => numeric_abbrev(secs),
                    };
                    (name, secs)
                }
                None => ("UTC".into(), 0),
            },
        }
    }
}

/// The numeric abbreviation tzdata uses for zones without a name (`+03`, `+0530`).
fn numeric_abbrev(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let m = secs.unsigned_abs() / 60;
    if m.is_multiple_of(60) {
        format!("{sign}{:02}", m / 60)
    } else {
        format!("{sign}{:02}{:02}", m / 60, m % 60)
    }
}

/// A Go `time.Time`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GoTime {
    pub(crate) sec: i64,
    pub(crate) nsec: u32,
    pub(crate) loc: Loc,
}

/// Seconds from 0001-01-01 to 1970-01-01: Go's zero `time.Time` is year 1.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Days since 1970-01-01 of a proleptic Gregorian date (month may be out of 1..=12).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Normalise the month first, as Go's Date does.
    let m0 = m - 1;
    let y = y.wrapping_add(m0.div_euclid(12));
    let m = m0.rem_euclid(12) + 1;
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.wrapping_mul(146_097)
        .wrapping_add(doe)
        .wrapping_sub(719_468)
}

/// The civil date of a day number (days since 1970-01-01).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z.wrapping_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Go's `Month.String()`.
pub(crate) fn month_name(m: i64) -> String {
    match usize::try_from(m - 1).ok().and_then(|i| LONG_MONTHS.get(i)) {
        Some(n) => (*n).to_string(),
        None => format!("%!Month({m})"),
    }
}

/// Go's `Weekday.String()`.
pub(crate) fn weekday_name(d: i64) -> String {
    match usize::try_from(d).ok().and_then(|i| LONG_DAYS.get(i)) {
        Some(n) => (*n).to_string(),
        None => format!("%!Weekday({d})"),
    }
}

/// Broken-down fields of a time in its zone.
struct Fields {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nsec: u32,
    yday: u32,
    wday: u32,
    zone: String,
    offset: i32,
}

impl GoTime {
    /// Go's `time.Unix(sec, nsec)` in `Local`.
    pub(crate) fn unix(sec: i64, nsec: i64) -> GoTime {
        let (sec, nsec) = (
            sec.wrapping_add(nsec.div_euclid(1_000_000_000)),
            nsec.rem_euclid(1_000_000_000),
        );
        GoTime {
            sec,
            nsec: nsec as u32,
            loc: Loc::Local,
        }
    }

    /// Go's `time.Unix(0, ns)`.
    pub(crate) fn from_unix_nanos(ns: i64) -> GoTime {
        GoTime::unix(0, ns)
    }

    /// Go's zero `time.Time{}` (0001-01-01 UTC).
    pub(crate) fn zero() -> GoTime {
        GoTime {
            sec: ZERO_TIME_UNIX,
            nsec: 0,
            loc: Loc::Utc,
        }
    }

    pub(crate) fn unix_nano(&self) -> i64 {
        self.sec
            .wrapping_mul(1_000_000_000)
            .wrapping_add(i64::from(self.nsec))
    }

    pub(crate) fn unix_milli(&self) -> i64 {
        self.sec
            .wrapping_mul(1000)
            .wrapping_add(i64::from(self.nsec / 1_000_000))
    }

    pub(crate) fn unix_micro(&self) -> i64 {
        self.sec
            .wrapping_mul(1_000_000)
            .wrapping_add(i64::from(self.nsec / 1000))
    }

    pub(crate) fn in_loc(&self, loc: Loc) -> GoTime {
        GoTime {
            sec: self.sec,
            nsec: self.nsec,
            loc,
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.sec == ZERO_TIME_UNIX && self.nsec == 0
    }

    /// Adds nanoseconds (Go's `Time.Add`).
    pub(crate) fn add(&self, d: i64) -> GoTime {
        let mut sec = self.sec.wrapping_add(d / 1_000_000_000);
        let mut nsec = i64::from(self.nsec) + d % 1_000_000_000;
        if nsec >= 1_000_000_000 {
            sec = sec.wrapping_add(1);
            nsec -= 1_000_000_000;
        } else if nsec < 0 {
            sec = sec.wrapping_sub(1);
            nsec += 1_000_000_000;
        }
        GoTime {
            sec,
            nsec: nsec as u32,
            loc: self.loc.clone(),
        }
    }

    /// Go's `Time.Sub`, saturating like Go.
    pub(crate) fn sub(&self, u: &GoTime) -> i64 {
        let d = i128::from(self.sec - u.sec) * 1_000_000_000 + i128::from(self.nsec)
            - i128::from(u.nsec);
        d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    fn fields(&self) -> Fields {
        let (zone, offset) = self.loc.lookup(self.sec);
        let local = self.sec.wrapping_add(i64::from(offset));
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        let yday = (days - days_from_civil(year, 1, 1) + 1) as u32;
        let wday = (days + 4).rem_euclid(7) as u32;
        Fields {
            year,
            month,
            day,
            hour: secs / 3600,
            min: secs / 60 % 60,
            sec: secs % 60,
            nsec: self.nsec,
            yday,
            wday,
            zone,
            offset,
        }
    }

    pub(crate) fn year(&self) -> i64 {
        self.fields().year
    }
    pub(crate) fn month(&self) -> i64 {
        i64::from(self.fields().month)
    }
    pub(crate) fn day(&self) -> i64 {
        i64::from(self.fields().day)
    }
    pub(crate) fn hour(&self) -> i64 {
        i64::from(self.fields().hour)
    }
    pub(crate) fn minute(&self) -> i64 {
        i64::from(self.fields().min)
    }
    pub(crate) fn second(&self) -> i64 {
        i64::from(self.fields().sec)
    }
    pub(crate) fn year_day(&self) -> i64 {
        i64::from(self.fields().yday)
    }
    pub(crate) fn weekday(&self) -> i64 {
        i64::from(self.fields().wday)
    }

    /// Go's `Time.AddDate`.
    pub(crate) fn add_date(&self, years: i64, months: i64, days: i64) -> GoTime {
        let f = self.fields();
        date(
            f.year.wrapping_add(years),
            i64::from(f.month).wrapping_add(months),
            i64::from(f.day).wrapping_add(days),
            i64::from(f.hour),
            i64::from(f.min),
            i64::from(f.sec),
            i64::from(f.nsec),
            self.loc.clone(),
        )
    }

    /// Go's `Time.String()`.
    pub(crate) fn go_string(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    /// Go's `Time.Format(layout)`.
    pub(crate) fn format(&self, layout: &str) -> String {
        let f = self.fields();
        let mut b = String::with_capacity(layout.len() + 10);
        let mut rest = layout;
        loop {
            let (prefix, std, suffix) = next_std_chunk(rest);
            b.push_str(prefix);
            let Some(std) = std else { break };
            rest = suffix;
            format_chunk(&mut b, std, &f);
        }
        b
    }
}

/// Go's `time.Date`: normalises out-of-range fields and resolves the zone offset.
pub(crate) fn date(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    nsec: i64,
    loc: Loc,
) -> GoTime {
    let sec = sec.wrapping_add(nsec.div_euclid(1_000_000_000));
    let nsec = nsec.rem_euclid(1_000_000_000);
    let days = days_from_civil(year, month, 1).wrapping_add(day - 1);
    let local = days
        .wrapping_mul(86_400)
        .wrapping_add(hour.wrapping_mul(3600))
        .wrapping_add(min.wrapping_mul(60))
        .wrapping_add(sec);
    let (_, offset) = loc.lookup(local);
    let mut unix = local - i64::from(offset);
    if offset != 0 {
        // If the guessed offset does not hold at the resulting instant, use the one that does.
        let (_, off2) = loc.lookup(unix);
        if off2 != offset {
            unix = local - i64::from(off2);
        }
    }
    GoTime {
        sec: unix,
        nsec: nsec as u32,
        loc,
    }
}

/// One layout element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    Iso8601TZ,
    Iso8601SecondsTZ,
    Iso8601ShortTZ,
    Iso8601ColonTZ,
    Iso8601ColonSecondsTZ,
    NumTZ,
    NumSecondsTz,
    NumShortTZ,
    NumColonTZ,
    NumColonSecondsTZ,
    /// `.000` (digits, separator `.` or `,`): trailing zeros kept.
    Frac0(usize, u8),
    /// `.999`: trailing zeros dropped.
    Frac9(usize, u8),
}

fn starts_with_lower(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the text before the first layout element, the element, the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let has = |i: usize, s: &str| layout.get(i..).is_some_and(|r| r.starts_with(s));
    for i in 0..b.len() {
        let c = b[i];
        let found = match c {
            b'J' if has(i, "Jan") => {
                if has(i, "January") {
                    Some((Std::LongMonth, 7))
                } else if !starts_with_lower(&layout[i + 3..]) {
                    Some((Std::Month, 3))
                } else {
                    None
                }
            }
            b'M' => {
                if has(i, "Mon") {
                    if has(i, "Monday") {
                        Some((Std::LongWeekDay, 6))
                    } else if !starts_with_lower(&layout[i + 3..]) {
                        Some((Std::WeekDay, 3))
                    } else if has(i, "MST") {
                        Some((Std::TZ, 3))
                    } else {
                        None
                    }
                } else if has(i, "MST") {
                    Some((Std::TZ, 3))
                } else {
                    None
                }
            }
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year, 2)),
                Some(b'0') if b.get(i + 2) == Some(&b'2') => Some((Std::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    Some((Std::Hour, 2))
                } else {
                    Some((Std::NumMonth, 1))
                }
            }
            b'2' => {
                if has(i, "2006") {
                    Some((Std::LongYear, 4))
                } else {
                    Some((Std::Day, 1))
                }
            }
            b'_' => {
                if b.get(i + 1) == Some(&b'2') {
                    if has(i + 1, "2006") {
                        // "_2006" is a literal underscore followed by the year.
                        return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                    }
                    Some((Std::UnderDay, 2))
                } else if b.get(i + 1) == Some(&b'_') && b.get(i + 2) == Some(&b'2') {
                    Some((Std::UnderYearDay, 3))
                } else {
                    None
                }
            }
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if b.get(i + 1) == Some(&b'M') => Some((Std::PM, 2)),
            b'p' if b.get(i + 1) == Some(&b'm') => Some((Std::Pm, 2)),
            b'-' => {
                if has(i, "-070000") {
                    Some((Std::NumSecondsTz, 7))
                } else if has(i, "-07:00:00") {
                    Some((Std::NumColonSecondsTZ, 9))
                } else if has(i, "-0700") {
                    Some((Std::NumTZ, 5))
                } else if has(i, "-07:00") {
                    Some((Std::NumColonTZ, 6))
                } else if has(i, "-07") {
                    Some((Std::NumShortTZ, 3))
                } else {
                    None
                }
            }
            b'Z' => {
                if has(i, "Z070000") {
                    Some((Std::Iso8601SecondsTZ, 7))
                } else if has(i, "Z07:00:00") {
                    Some((Std::Iso8601ColonSecondsTZ, 9))
                } else if has(i, "Z0700") {
                    Some((Std::Iso8601TZ, 5))
                } else if has(i, "Z07:00") {
                    Some((Std::Iso8601ColonTZ, 6))
                } else if has(i, "Z07") {
                    Some((Std::Iso8601ShortTZ, 3))
                } else {
                    None
                }
            }
            b'.' | b',' => match b.get(i + 1) {
                Some(&ch @ (b'0' | b'9')) => {
                    let mut j = i + 1;
                    while j < b.len() && b[j] == ch {
                        j += 1;
                    }
                    if b.get(j).is_some_and(u8::is_ascii_digit) {
                        None
                    } else {
                        let n = j - (i + 1);
                        let std = if ch == b'0' {
                            Std::Frac0(n, c)
                        } else {
                            Std::Frac9(n, c)
                        };
                        return (&layout[..i], Some(std), &layout[j..]);
                    }
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

fn append_int(b: &mut String, x: i64, width: usize) {
    if x < 0 {
        b.push('-');
    }
    let u = x.unsigned_abs();
    let _ = write!(b, "{u:0width$}");
}

fn format_chunk(b: &mut String, std: Std, f: &Fields) {
    match std {
        Std::Year => append_int(b, (f.year % 100).abs(), 2),
        Std::LongYear => append_int(b, f.year, 4),
        Std::Month => b.push_str(&LONG_MONTHS[(f.month as usize + 11) % 12][..3]),
        Std::LongMonth => b.push_str(LONG_MONTHS[(f.month as usize + 11) % 12]),
        Std::NumMonth => append_int(b, i64::from(f.month), 0),
        Std::ZeroMonth => append_int(b, i64::from(f.month), 2),
        Std::WeekDay => b.push_str(&LONG_DAYS[f.wday as usize % 7][..3]),
        Std::LongWeekDay => b.push_str(LONG_DAYS[f.wday as usize % 7]),
        Std::Day => append_int(b, i64::from(f.day), 0),
        Std::UnderDay => {
            if f.day < 10 {
                b.push(' ');
            }
            append_int(b, i64::from(f.day), 0);
        }
        Std::ZeroDay => append_int(b, i64::from(f.day), 2),
        Std::UnderYearDay => {
            if f.yday < 100 {
                b.push(' ');
                if f.yday < 10 {
                    b.push(' ');
                }
            }
            append_int(b, i64::from(f.yday), 0);
        }
        Std::ZeroYearDay => append_int(b, i64::from(f.yday), 3),
        Std::Hour => append_int(b, i64::from(f.hour), 2),
        Std::Hour12 | Std::ZeroHour12 => {
            let mut hr = f.hour % 12;
            if hr == 0 {
                hr = 12;
            }
            append_int(b, i64::from(hr), if std == Std::Hour12 { 0 } else { 2 });
        }
        Std::Minute => append_int(b, i64::from(f.min), 0),
        Std::ZeroMinute => append_int(b, i64::from(f.min), 2),
        Std::Second => append_int(b, i64::from(f.sec), 0),
        Std::ZeroSecond => append_int(b, i64::from(f.sec), 2),
        Std::PM => b.push_str(if f.hour >= 12 { "PM" } else { "AM" }),
        Std::Pm => b.push_str(if f.hour >= 12 { "pm" } else { "am" }),
        Std::Iso8601TZ
        | Std::Iso8601ColonTZ
        | Std::Iso8601SecondsTZ
        | Std::Iso8601ShortTZ
        | Std::Iso8601ColonSecondsTZ
        | Std::NumTZ
        | Std::NumColonTZ
        | Std::NumSecondsTz
        | Std::NumShortTZ
        | Std::NumColonSecondsTZ => {
            let iso = matches!(
                std,
                Std::Iso8601TZ
                    | Std::Iso8601ColonTZ
                    | Std::Iso8601SecondsTZ
                    | Std::Iso8601ShortTZ
                    | Std::Iso8601ColonSecondsTZ
            );
            if f.offset == 0 && iso {
                b.push('Z');
                return;
            }
            let mut zone = f.offset / 60;
            let mut abs = f.offset;
            if zone < 0 {
                b.push('-');
                zone = -zone;
                abs = -abs;
            } else {
                b.push('+');
            }
            append_int(b, i64::from(zone / 60), 2);
            if matches!(
                std,
                Std::Iso8601ColonTZ
                    | Std::NumColonTZ
                    | Std::Iso8601ColonSecondsTZ
                    | Std::NumColonSecondsTZ
            ) {
                b.push(':');
            }
            if std != Std::NumShortTZ && std != Std::Iso8601ShortTZ {
                append_int(b, i64::from(zone % 60), 2);
            }
            if matches!(
                std,
                Std::Iso8601SecondsTZ
                    | Std::NumSecondsTz
                    | Std::NumColonSecondsTZ
                    | Std::Iso8601ColonSecondsTZ
            ) {
                if matches!(std, Std::NumColonSecondsTZ | Std::Iso8601ColonSecondsTZ) {
                    b.push(':');
                }
                append_int(b, i64::from(abs % 60), 2);
            }
        }
        Std::TZ => {
            if !f.zone.is_empty() {
                b.push_str(&f.zone);
                return;
            }
            let mut zone = f.offset / 60;
            if zone < 0 {
                b.push('-');
                zone = -zone;
            } else {
                b.push('+');
            }
            append_int(b, i64::from(zone / 60), 2);
            append_int(b, i64::from(zone % 60), 2);
        }
        Std::Frac0(n, sep) | Std::Frac9(n, sep) => {
            let trim = matches!(std, Std::Frac9(..));
            if trim && (n == 0 || f.nsec == 0) {
                return;
            }
            let n = n.min(9);
            let start = b.len();
            b.push(sep as char);
            let _ = write!(b, "{:09}", f.nsec);
            b.truncate(start + 1 + n);
            if trim {
                while b.len() > start && b.ends_with('0') {
                    b.pop();
                }
                if b.len() == start + 1 {
                    b.pop();
                }
            }
        }
    }
}

/// Go's `time.ParseError` message.
fn parse_error(
    layout: &str,
    value: &str,
    layout_elem: &str,
    value_elem: &str,
    message: &str,
) -> String {
    use crate::goquote::quote;
    if message.is_empty() {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            quote(value),
            quote(layout),
            quote(value_elem),
            quote(layout_elem)
        )
    } else {
        format!("parsing time {}{}", quote(value), message)
    }
}

fn is_digit(s: &str, i: usize) -> bool {
    s.as_bytes().get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (`fixed`: exactly two).
fn getnum(s: &str, fixed: bool) -> Option<(i64, &str)> {
    if !is_digit(s, 0) {
        return None;
    }
    let d0 = i64::from(s.as_bytes()[0] - b'0');
    if !is_digit(s, 1) {
        if fixed {
            return None;
        }
        return Some((d0, &s[1..]));
    }
    Some((d0 * 10 + i64::from(s.as_bytes()[1] - b'0'), &s[2..]))
}

/// Go's `getnum3`: one to three digits (`fixed`: exactly three).
fn getnum3(s: &str, fixed: bool) -> Option<(i64, &str)> {
    let mut n = 0;
    let mut i = 0;
    while i < 3 && is_digit(s, i) {
        n = n * 10 + i64::from(s.as_bytes()[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return None;
    }
    Some((n, &s[i..]))
}

/// Go's time-package `atoi` (optional sign, all digits).
fn atoi(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: i64 = body.parse().ok()?;
    Some(if neg { -v } else { v })
}

fn cutspace(s: &str) -> &str {
    s.trim_start_matches(' ')
}

/// Go's `skip`: matches the literal layout text, where runs of spaces match any spaces.
fn skip<'v>(mut value: &'v str, mut prefix: &str) -> Option<&'v str> {
    while !prefix.is_empty() {
        if prefix.as_bytes()[0] == b' ' {
            if !value.is_empty() && value.as_bytes()[0] != b' ' {
                return None;
            }
            prefix = cutspace(prefix);
            value = cutspace(value);
            continue;
        }
        if value.is_empty() || value.as_bytes()[0] != prefix.as_bytes()[0] {
            return None;
        }
        // Advance by whole characters so slicing stays on boundaries.
        let w = prefix.chars().next().map_or(1, char::len_utf8);
        if value.len() < w || value.as_bytes()[..w] != prefix.as_bytes()[..w] {
            return None;
        }
        prefix = &prefix[w..];
        value = &value[w..];
    }
    Some(value)
}

/// Go's `lookup`: a case-insensitive prefix match against a name table.
fn lookup<'v>(tab: &[&str], val: &'v str) -> Option<(usize, &'v str)> {
    for (i, v) in tab.iter().enumerate() {
        if val.len() >= v.len() && val.as_bytes()[..v.len()].eq_ignore_ascii_case(v.as_bytes()) {
            return Some((i, &val[v.len()..]));
        }
    }
    None
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `value`.
fn parse_time_zone(value: &str) -> Option<usize> {
    let b = value.as_bytes();
    if b.len() < 3 {
        return None;
    }
    if b.starts_with(b"ChST") || b.starts_with(b"MeST") {
        return Some(4);
    }
    if b.starts_with(b"GMT") {
        return Some(parse_gmt(value));
    }
    if b[0] == b'+' || b[0] == b'-' {
        let n = parse_signed_offset(value);
        return if n > 0 { Some(n) } else { None };
    }
    let n_upper = b
        .iter()
        .take(6)
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    match n_upper {
        0..=2 | 6 => None,
        5 if b[4] == b'T' => Some(5),
        4 if b[3] == b'T' || b.starts_with(b"WITA") => Some(4),
        3 => Some(3),
        _ => None,
    }
}

fn parse_gmt(value: &str) -> usize {
    let rest = &value[3..];
    if rest.is_empty() {
        return 3;
    }
    3 + parse_signed_offset(rest)
}

fn parse_signed_offset(value: &str) -> usize {
    let b = value.as_bytes();
    if b.is_empty() || (b[0] != b'+' && b[0] != b'-') {
        return 0;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return 0;
    }
    match value[1..1 + digits].parse::<i64>() {
        Ok(x) if x <= 23 => 1 + digits,
        _ => 0,
    }
}

/// Go's `parseNanoseconds`.
fn parse_nanoseconds(value: &str, nbytes: usize) -> Result<i64, &'static str> {
    if !matches!(value.as_bytes().first(), Some(b'.' | b',')) {
        return Err("");
    }
    let nbytes = nbytes.min(10);
    let ns = atoi(value.get(1..nbytes).ok_or("")?).ok_or("")?;
    if ns < 0 {
        return Err("fractional second");
    }
    let mut ns = ns;
    for _ in 0..(10 - nbytes) {
        ns *= 10;
    }
    Ok(ns)
}

const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Go's `time.ParseInLocation(layout, value, loc)`.
pub(crate) fn parse_in_location(layout0: &str, value0: &str, loc: &Loc) -> Result<GoTime, String> {
    let mut layout = layout0;
    let mut value = value0;
    let mut am_set = false;
    let mut pm_set = false;
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut min, mut sec, mut nsec) = (0i64, 0i64, 0i64, 0i64);
    let mut z: Option<Loc> = None;
    let mut zone_offset: i64 = -1;
    let mut zone_name = String::new();
    loop {
        let (prefix, std, suffix) = next_std_chunk(layout);
        let stdstr = &layout[prefix.len()..layout.len() - suffix.len()];
        value = match skip(value, prefix) {
            Some(v) => v,
            None => return Err(parse_error(layout0, value0, prefix, value, "")),
        };
        let Some(std) = std else {
            if !value.is_empty() {
                return Err(parse_error(
                    layout0,
                    value0,
                    "",
                    value,
                    &format!(": extra text: {}", crate::goquote::quote(value)),
                ));
            }
            break;
        };
        layout = suffix;
        let hold = value;
        let mut range_err = "";
        let mut ok = true;
        match std {
            Std::Year => {
                if value.len() < 2 || !value.is_char_boundary(2) {
                    ok = false;
                } else {
                    match atoi(&value[..2]) {
                        Some(y) => {
                            year = if y >= 69 { y + 1900 } else { y + 2000 };
                            value = &value[2..];
                        }
                        None => ok = false,
                    }
                }
            }
            Std::LongYear => {
                if value.len() < 4 || !is_digit(value, 0) || !value.is_char_boundary(4) {
                    ok = false;
                } else {
                    match atoi(&value[..4]) {
                        Some(y) => {
                            year = y;
                            value = &value[4..];
                        }
                        None => ok = false,
                    }
                }
            }
            Std::Month | Std::LongMonth => {
                let tab: Vec<&str> = if std == Std::Month {
                    SHORT_MONTHS.to_vec()
                } else {
                    LONG_MONTHS.to_vec()
                };
                match lookup(&tab, value) {
                    Some((i, rest)) => {
                        month = i as i64 + 1;
                        value = rest;
                    }
                    None => ok = false,
                }
            }
            Std::NumMonth | Std::ZeroMonth => match getnum(value, std == Std::ZeroMonth) {
                Some((m, rest)) => {
                    month = m;
                    value = rest;
                    if !(1..=12).contains(&m) {
                        range_err = "month";
                    }
                }
                None => ok = false,
            },
            Std::WeekDay | Std::LongWeekDay => {
                let tab: Vec<&str> = if std == Std::WeekDay {
                    SHORT_DAYS.to_vec()
                } else {
                    LONG_DAYS.to_vec()
                };
                match lookup(&tab, value) {
                    Some((_, rest)) => value = rest,
                    None => ok = false,
                }
            }
            Std::Day | Std::UnderDay | Std::ZeroDay => {
                if std == Std::UnderDay && value.starts_with(' ') {
                    value = &value[1..];
                }
                match getnum(value, std == Std::ZeroDay) {
                    Some((d, rest)) => {
                        day = d;
                        value = rest;
                    }
                    None => ok = false,
                }
            }
            Std::UnderYearDay | Std::ZeroYearDay => {
                for _ in 0..2 {
                    if std == Std::UnderYearDay && value.starts_with(' ') {
                        value = &value[1..];
                    }
                }
                match getnum3(value, std == Std::ZeroYearDay) {
                    Some((d, rest)) => {
                        yday = d;
                        value = rest;
                    }
                    None => ok = false,
                }
            }
            Std::Hour => match getnum(value, false) {
                Some((h, rest)) => {
                    hour = h;
                    value = rest;
                    if !(0..24).contains(&h) {
                        range_err = "hour";
                    }
                }
                None => ok = false,
            },
            Std::Hour12 | Std::ZeroHour12 => match getnum(value, std == Std::ZeroHour12) {
                Some((h, rest)) => {
                    hour = h;
                    value = rest;
                    if !(0..=12).contains(&h) {
                        range_err = "hour";
                    }
                }
                None => ok = false,
            },
            Std::Minute | Std::ZeroMinute => match getnum(value, std == Std::ZeroMinute) {
                Some((m, rest)) => {
                    min = m;
                    value = rest;
                    if !(0..60).contains(&m) {
                        range_err = "minute";
                    }
                }
                None => ok = false,
            },
            Std::Second | Std::ZeroSecond => match getnum(value, std == Std::ZeroSecond) {
                Some((s, rest)) => {
                    sec = s;
                    value = rest;
                    if !(0..60).contains(&s) {
                        range_err = "second";
                    } else if value.len() >= 2
                        && matches!(value.as_bytes()[0], b'.' | b',')
                        && is_digit(value, 1)
                    {
                        // A fractional second in the input but not in the layout.
                        let (_, next, _) = next_std_chunk(layout);
                        if !matches!(next, Some(Std::Frac0(..) | Std::Frac9(..))) {
                            let mut n = 2;
                            while is_digit(value, n) {
                                n += 1;
                            }
                            match parse_nanoseconds(value, n) {
                                Ok(ns) => nsec = ns,
                                Err("") => ok = false,
                                Err(r) => range_err = r,
                            }
                            value = &value[n..];
                        }
                    }
                }
                None => ok = false,
            },
            Std::PM | Std::Pm => {
                if value.len() < 2 || !value.is_char_boundary(2) {
                    ok = false;
                } else {
                    let p = &value[..2];
                    value = &value[2..];
                    let (pm, am) = if std == Std::PM {
                        ("PM", "AM")
                    } else {
                        ("pm", "am")
                    };
                    if p == pm {
                        pm_set = true;
                    } else if p == am {
                        am_set = true;
                    } else {
                        ok = false;
                    }
                }
            }
            Std::Iso8601TZ
            | Std::Iso8601ShortTZ
            | Std::Iso8601ColonTZ
            | Std::Iso8601SecondsTZ
            | Std::Iso8601ColonSecondsTZ
            | Std::NumTZ
            | Std::NumShortTZ
            | Std::NumColonTZ
            | Std::NumSecondsTz
            | Std::NumColonSecondsTZ => {
                let iso = matches!(
                    std,
                    Std::Iso8601TZ
                        | Std::Iso8601ShortTZ
                        | Std::Iso8601ColonTZ
                        | Std::Iso8601SecondsTZ
                        | Std::Iso8601ColonSecondsTZ
                );
                if iso && value.starts_with('Z') {
                    value = &value[1..];
                    z = Some(Loc::Utc);
                } else {
                    // Offsets are ASCII: look only at the ASCII prefix, so slicing stays on
                    // character boundaries.
                    let ascii_len = value.bytes().take_while(u8::is_ascii).count();
                    let vb = &value.as_bytes()[..ascii_len];
                    let parts: Option<(u8, &str, &str, &str, usize)> = match std {
                        Std::Iso8601ColonTZ | Std::NumColonTZ => (vb.len() >= 6 && vb[3] == b':')
                            .then(|| (vb[0], &value[1..3], &value[4..6], "00", 6)),
                        Std::NumShortTZ | Std::Iso8601ShortTZ => {
                            (vb.len() >= 3).then(|| (vb[0], &value[1..3], "00", "00", 3))
                        }
                        Std::Iso8601ColonSecondsTZ | Std::NumColonSecondsTZ => {
                            (vb.len() >= 9 && vb[3] == b':' && vb[6] == b':')
                                .then(|| (vb[0], &value[1..3], &value[4..6], &value[7..9], 9))
                        }
                        Std::Iso8601SecondsTZ | Std::NumSecondsTz => (vb.len() >= 7)
                            .then(|| (vb[0], &value[1..3], &value[3..5], &value[5..7], 7)),
                        _ => (vb.len() >= 5).then(|| (vb[0], &value[1..3], &value[3..5], "00", 5)),
                    };
                    // Byte slicing above may split a character: only ASCII values qualify.
                    match parts.filter(|p| value.is_char_boundary(p.4)) {
                        None => ok = false,
                        Some((sign, h, m, s, n)) => {
                            let num = |t: &str| getnum(t, true).map(|(v, _)| v);
                            match (num(h), num(m), num(s)) {
                                (Some(hr), Some(mm), Some(ss)) => {
                                    if hr > 24 {
                                        range_err = "time zone offset hour";
                                    }
                                    if mm > 60 {
                                        range_err = "time zone offset minute";
                                    }
                                    if ss > 60 {
                                        range_err = "time zone offset second";
                                    }
                                    zone_offset = (hr * 60 + mm) * 60 + ss;
                                    match sign {
                                        b'+' => {}
                                        b'-' => zone_offset = -zone_offset,
                                        _ => ok = false,
                                    }
                                    value = &value[n..];
                                }
                                _ => ok = false,
                            }
                        }
                    }
                }
            }
            Std::TZ => {
                if value.starts_with("UTC") {
                    z = Some(Loc::Utc);
                    value = &value[3..];
                } else {
                    match parse_time_zone(value) {
                        Some(n) if value.is_char_boundary(n) => {
                            zone_name = value[..n].to_string();
                            value = &value[n..];
                        }
                        _ => ok = false,
                    }
                }
            }
            Std::Frac0(n, _) => {
                let ndigit = 1 + n;
                if value.len() < ndigit || !value.is_char_boundary(ndigit) {
                    ok = false;
                } else {
                    match parse_nanoseconds(value, ndigit) {
                        Ok(ns) => nsec = ns,
                        Err("") => ok = false,
                        Err(r) => range_err = r,
                    }
                    value = &value[ndigit..];
                }
            }
            Std::Frac9(..) => {
                let vb = value.as_bytes();
                if vb.len() >= 2 && matches!(vb[0], b'.' | b',') && vb[1].is_ascii_digit() {
                    let mut i = 0;
                    while i + 1 < vb.len() && vb[i + 1].is_ascii_digit() {
                        i += 1;
                    }
                    match parse_nanoseconds(value, 1 + i) {
                        Ok(ns) => nsec = ns,
                        Err("") => ok = false,
                        Err(r) => range_err = r,
                    }
                    value = &value[1 + i..];
                }
            }
        }
        if !range_err.is_empty() {
            return Err(parse_error(
                layout0,
                value0,
                stdstr,
                value,
                &format!(": {range_err} out of range"),
            ));
        }
        if !ok {
            return Err(parse_error(layout0, value0, stdstr, hold, ""));
        }
    }
    if pm_set && hour < 12 {
        hour += 12;
    } else if am_set && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let mut d = 0;
        let mut m = 0;
        if is_leap(year) {
            if yday == 31 + 29 {
                m = 2;
                d = 29;
            } else if yday > 31 + 29 {
                yday -= 1;
            }
        }
        if !(1..=365).contains(&yday) {
            return Err(parse_error(
                layout0,
                value0,
                "",
                value,
                ": day-of-year out of range",
            ));
        }
        if m == 0 {
            m = (yday - 1) / 31 + 1;
            if days_before(m + 1) < yday {
                m += 1;
            }
            d = yday - days_before(m);
        }
        if month >= 0 && month != m {
            return Err(parse_error(
                layout0,
                value0,
                "",
                value,
                ": day-of-year does not match month",
            ));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(parse_error(
                layout0,
                value0,
                "",
                value,
                ": day-of-year does not match day",
            ));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(parse_error(
            layout0,
            value0,
            "",
            value,
            ": day out of range",
        ));
    }
    if let Some(z) = z {
        return Ok(date(year, month, day, hour, min, sec, nsec, z));
    }
    if zone_offset != -1 {
        let t = date(year, month, day, hour, min, sec, nsec, Loc::Utc);
        let unix = t.sec - zone_offset;
        let (name, offset) = loc.lookup(unix);
        if i64::from(offset) == zone_offset && (zone_name.is_empty() || name == zone_name) {
            return Ok(GoTime {
                sec: unix,
                nsec: t.nsec,
                loc: loc.clone(),
            });
        }
        let off = i32::try_from(zone_offset).unwrap_or(0);
        return Ok(GoTime {
            sec: unix,
            nsec: t.nsec,
            loc: Loc::Fixed(zone_name.into(), off),
        });
    }
    if !zone_name.is_empty() {
        let t = date(year, month, day, hour, min, sec, nsec, Loc::Utc);
        let (name, offset) = loc.lookup(t.sec - i64::from(loc.lookup(t.sec).1));
        if name == zone_name {
            return Ok(GoTime {
                sec: t.sec - i64::from(offset),
                nsec: t.nsec,
                loc: loc.clone(),
            });
        }
        let mut offset = 0;
        if zone_name.len() > 3 && zone_name.starts_with("GMT") {
            offset = atoi(&zone_name[3..]).unwrap_or(0) * 3600;
        }
        let off = i32::try_from(offset).unwrap_or(0);
        return Ok(GoTime {
            sec: t.sec - offset,
            nsec: t.nsec,
            loc: Loc::Fixed(zone_name.into(), off),
        });
    }
    Ok(date(year, month, day, hour, min, sec, nsec, loc.clone()))
}

/// Days before the first of month `m` in a non-leap year.
fn days_before(m: i64) -> i64 {
    const DB: [i64; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
    DB[usize::try_from(m - 1).unwrap_or(0).min(12)]
}

/// A Go `time.Duration` (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GoDuration(pub(crate) i64);

impl GoDuration {
    /// Go's `Duration.Seconds()`.
    pub(crate) fn seconds(self) -> f64 {
        let sec = self.0 / 1_000_000_000;
        let nsec = self.0 % 1_000_000_000;
        sec as f64 + nsec as f64 / 1e9
    }

    /// Go's `Duration.String()`.
    pub(crate) fn go_string(self) -> String {
        let mut u = self.0.unsigned_abs();
        let neg = self.0 < 0;
        let mut out: Vec<u8> = Vec::with_capacity(32);
        // Built back to front, then reversed.
        fn frac(out: &mut Vec<u8>, mut v: u64, prec: u32) -> u64 {
            let mut print = false;
            for _ in 0..prec {
                let digit = (v % 10) as u8;
                print = print || digit != 0;
                if print {
                    out.push(b'0' + digit);
                }
                v /= 10;
            }
            if print {
                out.push(b'.');
            }
            v
        }
        fn int(out: &mut Vec<u8>, mut v: u64) {
            if v == 0 {
                out.push(b'0');
                return;
            }
            while v > 0 {
                out.push(b'0' + (v % 10) as u8);
                v /= 10;
            }
        }
        if u < 1_000_000_000 {
            out.push(b's');
            let prec;
            if u == 0 {
                return "0s".into();
            } else if u < 1_000 {
                prec = 0;
                out.push(b'n');
            } else if u < 1_000_000 {
                prec = 3;
                // "µ" (U+00B5) reversed.
                out.push(0xb5);
                out.push(0xc2);
            } else {
                prec = 6;
                out.push(b'm');
            }
            u = frac(&mut out, u, prec);
            int(&mut out, u);
        } else {
            out.push(b's');
            u = frac(&mut out, u, 9);
            int(&mut out, u % 60);
            u /= 60;
            if u > 0 {
                out.push(b'm');
                int(&mut out, u % 60);
                u /= 60;
                if u > 0 {
                    out.push(b'h');
                    int(&mut out, u);
                }
            }
        }
        if neg {
            out.push(b'-');
        }
        out.reverse();
        String::from_utf8(out).unwrap_or_default()
    }

    /// Go's `time.ParseDuration`.
    pub(crate) fn parse(orig: &str) -> Result<GoDuration, String> {
        use crate::goquote::quote;
        let invalid = || format!("time: invalid duration {}", quote(orig));
        let mut s = orig;
        let mut neg = false;
        if let Some(c) = s.as_bytes().first()
            && (*c == b'-' || *c == b'+')
        {
            neg = *c == b'-';
            s = &s[1..];
        }
        if s == "0" {
            return Ok(GoDuration(0));
        }
        if s.is_empty() {
            return Err(invalid());
        }
        const LIMIT: u64 = 1 << 63;
        let mut d: u64 = 0;
        while !s.is_empty() {
            let b = s.as_bytes();
            if !(b[0] == b'.' || b[0].is_ascii_digit()) {
                return Err(invalid());
            }
            // Leading integer.
            let mut v: u64 = 0;
            let mut i = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                if v > LIMIT / 10 {
                    return Err(invalid());
                }
                v = v * 10 + u64::from(b[i] - b'0');
                if v > LIMIT {
                    return Err(invalid());
                }
                i += 1;
            }
            let pre = i > 0;
            s = &s[i..];
            let mut f: u64 = 0;
            let mut scale = 1f64;
            let mut post = false;
            if s.starts_with('.') {
                s = &s[1..];
                let b = s.as_bytes();
                let mut i = 0;
                let mut overflow = false;
                while i < b.len() && b[i].is_ascii_digit() {
                    if !overflow {
                        if f > (LIMIT - 1) / 10 {
                            overflow = true;
                        } else {
                            let y = f * 10 + u64::from(b[i] - b'0');
                            if y > LIMIT {
                                overflow = true;
                            } else {
                                f = y;
                                scale *= 10.0;
                            }
                        }
                    }
                    i += 1;
                }
                post = i > 0;
                s = &s[i..];
            }
            if !pre && !post {
                return Err(invalid());
            }
            let ub = s.as_bytes();
            let mut i = 0;
            while i < ub.len() && !(ub[i] == b'.' || ub[i].is_ascii_digit()) {
                i += 1;
            }
            if i == 0 {
                return Err(format!("time: missing unit in duration {}", quote(orig)));
            }
            let u = &s[..i];
            s = &s[i..];
            let unit: u64 = match u {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => {
                    return Err(format!(
                        "time: unknown unit {} in duration {}",
                        quote(u),
                        quote(orig)
                    ));
                }
            };
            if v > LIMIT / unit {
                return Err(invalid());
            }
            v *= unit;
            if f > 0 {
                v += (f as f64 * (unit as f64 / scale)) as u64;
                if v > LIMIT {
                    return Err(invalid());
                }
            }
            d += v;
            if d > LIMIT {
                return Err(invalid());
            }
        }
        if neg {
            return Ok(GoDuration((d as i64).wrapping_neg()));
        }
        if d > LIMIT - 1 {
            return Err(invalid());
        }
        Ok(GoDuration(d as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: i64, ns: u32) -> GoTime {
        GoTime {
            sec: s,
            nsec: ns,
            loc: Loc::Utc,
        }
    }

    #[test]
    fn civil_round_trip() {
        for d in [-800_000i64, -1, 0, 1, 59, 365, 11_016, 19_503, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(dd)), d);
        }
        assert_eq!(civil_from_days(19_503), (2023, 5, 26));
    }

    #[test]
    fn formats_like_go() {
        let t = utc(1_705_319_990, 0);
        assert_eq!(
            t.format("2006-01-02T15:04:05.000Z07:00"),
            "2024-01-15T11:59:50.000Z"
        );
        assert_eq!(t.go_string(), "2024-01-15 11:59:50 +0000 UTC");
        let t = utc(1_678_411_960, 340_485_723);
        assert_eq!(
            t.format("Mon Jan _2 3:04:05.999 PM MST 2006"),
            "Fri Mar 10 1:32:40.34 AM UTC 2023"
        );
        assert_eq!(
            t.format("02/01/06 15h04 .000000 ,9"),
            "10/03/23 01h32 .340485 ,3"
        );
        assert_eq!(t.format("Monday January 002 __2"), "Friday March 069  69");
        let t = GoTime {
            sec: 0,
            nsec: 0,
            loc: Loc::Fixed("".into(), -7 * 3600),
        };
        assert_eq!(t.go_string(), "1969-12-31 17:00:00 -0700 -0700");
        assert_eq!(t.format("Z07:00 -07 Z0700"), "-07:00 -07 -0700");
        assert_eq!(
            GoTime::zero().format("2006-01-02 15:04:05"),
            "0001-01-01 00:00:00"
        );
    }

    #[test]
    fn named_zones() {
        let berlin = Loc::load("Europe/Berlin").unwrap();
        let t = utc(1_678_411_960, 0).in_loc(berlin.clone());
        assert_eq!(t.go_string(), "2023-03-10 02:32:40 +0100 CET");
        let t = utc(1_688_000_000, 0).in_loc(berlin);
        assert!(t.go_string().ends_with("+0200 CEST"));
        assert!(Loc::load("Nowhere/Atlantis").is_none());
    }

    #[test]
    fn parses_like_go() {
        let t = parse_in_location(
            "2006-01-02T15:04:05.999999999Z",
            "2023-03-10T01:32:40.340485723Z",
            &Loc::Utc,
        )
        .unwrap();
        assert_eq!(t.unix_nano(), 1_678_411_960_340_485_723);
        let t = parse_in_location("2006-01-02", "2021-11-02", &Loc::Local).unwrap();
        assert_eq!(t.sec, 1_635_811_200);
        let t =
            parse_in_location(time_rfc3339(), "2021-11-02T10:00:00+02:00", &Loc::Local).unwrap();
        assert_eq!(t.sec, 1_635_840_000);
        assert_eq!(t.go_string(), "2021-11-02 10:00:00 +0200 +0200");
        let t = parse_in_location("Jan 2 2006 3:04PM", "feb 29 2024 12:30AM", &Loc::Utc).unwrap();
        assert_eq!(t.format("2006-01-02 15:04"), "2024-02-29 00:30");
        let t =
            parse_in_location("2006-01-02 15:04:05", "2023-03-10 01:32:40.5", &Loc::Utc).unwrap();
        assert_eq!(t.nsec, 500_000_000);
        let berlin = Loc::load("Europe/Berlin").unwrap();
        let t = parse_in_location("2006-01-02 15:04", "2023-07-01 12:00", &berlin).unwrap();
        assert_eq!(t.sec, 1_688_205_600);
        assert_eq!(
            parse_in_location("2006-01-02", "2021-13-02", &Loc::Utc).unwrap_err(),
            "parsing time \"2021-13-02\": month out of range"
        );
        assert_eq!(
            parse_in_location("2006-01-02", "21-11-02", &Loc::Utc).unwrap_err(),
            "parsing time \"21-11-02\" as \"2006-01-02\": cannot parse \"21-11-02\" as \"2006\""
        );
        assert_eq!(
            parse_in_location("2006-01-02", "2021-02-30", &Loc::Utc).unwrap_err(),
            "parsing time \"2021-02-30\": day out of range"
        );
        assert!(
            parse_in_location("2006", "2021x", &Loc::Utc)
                .unwrap_err()
                .contains("extra text")
        );
        // Non-ASCII where an offset or zone is expected is a parse error, not a panic.
        for layout in ["Z07:00", "-0700", "-07", "Z07:00:00", "-070000", "MST"] {
            assert!(parse_in_location(layout, "+€€", &Loc::Utc).is_err());
            assert!(parse_in_location(layout, "€UTC", &Loc::Utc).is_err());
        }
    }

    fn time_rfc3339() -> &'static str {
        "2006-01-02T15:04:05Z07:00"
    }

    #[test]
    fn durations() {
        let p = |s: &str| GoDuration::parse(s).map(|d| d.0);
        assert_eq!(p("3ms"), Ok(3_000_000));
        assert_eq!(p("3m10s"), Ok(190_000_000_000));
        assert_eq!(p("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(p("-1µs"), Ok(-1000));
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("1"), Err("time: missing unit in duration \"1\"".into()));
        assert_eq!(
            p("1x"),
            Err("time: unknown unit \"x\" in duration \"1x\"".into())
        );
        assert_eq!(p(""), Err("time: invalid duration \"\"".into()));
        assert_eq!(GoDuration(3_000_000).seconds(), 0.003);
        let s = |n: i64| GoDuration(n).go_string();
        assert_eq!(s(0), "0s");
        assert_eq!(s(1500), "1.5µs");
        assert_eq!(s(3_000_000), "3ms");
        assert_eq!(s(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(s(-60_000_000_000), "-1m0s");
        assert_eq!(s(999), "999ns");
    }
}
