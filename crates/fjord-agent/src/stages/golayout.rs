//! Go's `time.Parse` layouts (reference time `Mon Jan 2 15:04:05 MST 2006`), as the
//! `timestamp` stage's `format` and `fallback_formats` use them.
//!
//! A layout is split once into elements (`2006`, `01`, `Jan`, `_2`, `15`, `.000`, `Z07:00`,
//! literal text …); parsing walks the elements over the value with Go's rules: `1`/`2`/`15`
//! take one or two digits, `01`/`02`/`04`/`05` exactly two, a run of spaces matches a run of
//! spaces, `.999…` fractions are optional and any length, fractional seconds after `05` are
//! accepted even when the layout has none, and a zone abbreviation other than UTC/GMT is taken
//! as offset zero (as Go does when the abbreviation is unknown to the location).

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem {
    Lit(String),
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    YearDay,
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
    /// Numeric zone: (Z allowed for UTC, with colons, fields: 1=hh, 2=hhmm, 3=hhmmss)
    Zone {
        z: bool,
        colon: bool,
        fields: u8,
    },
    /// Fraction with a fixed number of digits (`.000`) or any (`.999`).
    Frac {
        digits: usize,
        fixed: bool,
    },
}

/// A compiled Go layout.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    elems: Vec<Elem>,
    has_year: bool,
    source: String,
}

fn starts(s: &str, p: &str) -> bool {
    s.starts_with(p)
}

impl Layout {
    /// Splits a layout into elements.
    pub(crate) fn new(layout: &str) -> Layout {
        let mut elems = Vec::new();
        let mut lit = String::new();
        let mut s = layout;
        let push = |elems: &mut Vec<Elem>, lit: &mut String, e: Elem| {
            if !lit.is_empty() {
                elems.push(Elem::Lit(std::mem::take(lit)));
            }
            elems.push(e);
        };
        while !s.is_empty() {
            let (e, n) = if starts(s, "January") {
                (Some(Elem::LongMonth), 7)
            } else if starts(s, "Jan") {
                (Some(Elem::Month), 3)
            } else if starts(s, "Monday") {
                (Some(Elem::LongWeekDay), 6)
            } else if starts(s, "Mon") {
                (Some(Elem::WeekDay), 3)
            } else if starts(s, "MST") {
                (Some(Elem::TZ), 3)
            } else if starts(s, "01") {
                (Some(Elem::ZeroMonth), 2)
            } else if starts(s, "02") {
                (Some(Elem::ZeroDay), 2)
            } else if starts(s, "03") {
                (Some(Elem::ZeroHour12), 2)
            } else if starts(s, "04") {
                (Some(Elem::ZeroMinute), 2)
            } else if starts(s, "05") {
                (Some(Elem::ZeroSecond), 2)
            } else if starts(s, "06") {
                (Some(Elem::Year), 2)
            } else if starts(s, "002") {
                (Some(Elem::YearDay), 3)
            } else if starts(s, "2006") {
                (Some(Elem::LongYear), 4)
            } else if starts(s, "15") {
                (Some(Elem::Hour), 2)
            } else if starts(s, "_2") && !starts(s, "_2006") {
                (Some(Elem::UnderDay), 2)
            } else if starts(s, "1") {
                (Some(Elem::NumMonth), 1)
            } else if starts(s, "2") {
                (Some(Elem::Day), 1)
            } else if starts(s, "3") {
                (Some(Elem::Hour12), 1)
            } else if starts(s, "4") {
                (Some(Elem::Minute), 1)
            } else if starts(s, "5") {
                (Some(Elem::Second), 1)
            } else if starts(s, "PM") {
                (Some(Elem::PM), 2)
            } else if starts(s, "pm") {
                (Some(Elem::Pm), 2)
            } else if let Some((e, n)) = zone_elem(s) {
                (Some(e), n)
            } else if let Some((e, n)) = frac_elem(s) {
                (Some(e), n)
            } else {
                (None, s.chars().next().map(char::len_utf8).unwrap_or(1))
            };
            match e {
                Some(e) => push(&mut elems, &mut lit, e),
                None => lit.push_str(&s[..n]),
            }
            s = &s[n..];
        }
        if !lit.is_empty() {
            elems.push(Elem::Lit(lit));
        }
        let has_year = elems
            .iter()
            .any(|e| matches!(e, Elem::LongYear | Elem::Year));
        Layout {
            elems,
            has_year,
            source: layout.to_string(),
        }
    }

    /// Whether the layout has a year (Promtail fills in the current year otherwise).
    pub(crate) fn has_year(&self) -> bool {
        self.has_year
    }

    /// Parses `value`; returns Unix nanoseconds. Without a zone in the value, the time is in
    /// `loc` (UTC when `None`). `year_if_missing` replaces Go's year 0 when the layout has no
    /// year.
    pub(crate) fn parse(&self, value: &str, loc: Option<Tz>) -> Result<ParsedTime, String> {
        let bad = || format!("parsing time {value:?} as {:?}: cannot parse", self.source);
        let mut v = value;
        let mut year: i64 = 0;
        let mut month: u32 = 1;
        let mut day: u32 = 1;
        let mut yday: Option<u32> = None;
        let mut hour: u32 = 0;
        let mut min: u32 = 0;
        let mut sec: u32 = 0;
        let mut nsec: u32 = 0;
        let mut pm: Option<bool> = None;
        let mut offset: Option<i32> = None;
        for (idx, e) in self.elems.iter().enumerate() {
            match e {
                Elem::Lit(l) => v = skip(v, l).ok_or_else(bad)?,
                Elem::LongYear => {
                    if v.len() < 4 || !v.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
                        return Err(bad());
                    }
                    year = v[..4].parse().map_err(|_| bad())?;
                    v = &v[4..];
                }
                Elem::Year => {
                    let (n, rest) = getnum(v, true, 2).ok_or_else(bad)?;
                    year = if n >= 69 {
                        1900 + n as i64
                    } else {
                        2000 + n as i64
                    };
                    v = rest;
                }
                Elem::LongMonth | Elem::Month => {
                    let (m, rest) = lookup(
                        v,
                        if *e == Elem::LongMonth {
                            &LONG_MONTHS
                        } else {
                            &SHORT_MONTHS
                        },
                    )
                    .ok_or_else(bad)?;
                    month = m as u32 + 1;
                    v = rest;
                }
                Elem::NumMonth | Elem::ZeroMonth => {
                    let (n, rest) = getnum(v, *e == Elem::ZeroMonth, 2).ok_or_else(bad)?;
                    if !(1..=12).contains(&n) {
                        return Err(format!("parsing time {value:?}: month out of range"));
                    }
                    month = n;
                    v = rest;
                }
                Elem::LongWeekDay | Elem::WeekDay => {
                    let (_, rest) = lookup(
                        v,
                        if *e == Elem::LongWeekDay {
                            &LONG_DAYS
                        } else {
                            &SHORT_DAYS
                        },
                    )
                    .ok_or_else(bad)?;
                    v = rest;
                }
                Elem::Day | Elem::UnderDay | Elem::ZeroDay => {
                    if *e == Elem::UnderDay && v.starts_with(' ') {
                        v = &v[1..];
                    }
                    let (n, rest) = getnum(v, *e == Elem::ZeroDay, 2).ok_or_else(bad)?;
                    day = n;
                    v = rest;
                }
                Elem::YearDay => {
                    let (n, rest) = getnum(v, true, 3).ok_or_else(bad)?;
                    yday = Some(n);
                    v = rest;
                }
                Elem::Hour => {
                    let (n, rest) = getnum(v, false, 2).ok_or_else(bad)?;
                    if n > 23 {
                        return Err(format!("parsing time {value:?}: hour out of range"));
                    }
                    hour = n;
                    v = rest;
                }
                Elem::Hour12 | Elem::ZeroHour12 => {
                    let (n, rest) = getnum(v, *e == Elem::ZeroHour12, 2).ok_or_else(bad)?;
                    if n > 12 {
                        return Err(format!("parsing time {value:?}: hour out of range"));
                    }
                    hour = n;
                    v = rest;
                }
                Elem::Minute | Elem::ZeroMinute => {
                    let (n, rest) = getnum(v, *e == Elem::ZeroMinute, 2).ok_or_else(bad)?;
                    if n > 59 {
                        return Err(format!("parsing time {value:?}: minute out of range"));
                    }
                    min = n;
                    v = rest;
                }
                Elem::Second | Elem::ZeroSecond => {
                    let (n, rest) = getnum(v, *e == Elem::ZeroSecond, 2).ok_or_else(bad)?;
                    if n > 59 {
                        return Err(format!("parsing time {value:?}: second out of range"));
                    }
                    sec = n;
                    v = rest;
                    // Go accepts a fraction here when the layout does not spell one.
                    let next_is_frac = matches!(self.elems.get(idx + 1), Some(Elem::Frac { .. }));
                    if !next_is_frac
                        && v.len() >= 2
                        && (v.as_bytes()[0] == b'.' || v.as_bytes()[0] == b',')
                        && v.as_bytes()[1].is_ascii_digit()
                    {
                        let n = 1 + v[1..].bytes().take_while(u8::is_ascii_digit).count();
                        nsec = frac_nanos(&v[1..n]);
                        v = &v[n..];
                    }
                }
                Elem::Frac { digits, fixed } => {
                    if *fixed {
                        if v.len() < digits + 1 || !(v.starts_with('.') || v.starts_with(',')) {
                            return Err(bad());
                        }
                        let d = &v[1..digits + 1];
                        if !d.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(bad());
                        }
                        nsec = frac_nanos(d);
                        v = &v[digits + 1..];
                    } else if v.len() >= 2
                        && (v.starts_with('.') || v.starts_with(','))
                        && v.as_bytes()[1].is_ascii_digit()
                    {
                        let n = 1 + v[1..].bytes().take_while(u8::is_ascii_digit).count();
                        nsec = frac_nanos(&v[1..n]);
                        v = &v[n..];
                    }
                }
                Elem::PM | Elem::Pm => {
                    if v.len() < 2 {
                        return Err(bad());
                    }
                    let (p, a) = if *e == Elem::PM {
                        ("PM", "AM")
                    } else {
                        ("pm", "am")
                    };
                    if v.starts_with(p) {
                        pm = Some(true);
                    } else if v.starts_with(a) {
                        pm = Some(false);
                    } else {
                        return Err(bad());
                    }
                    v = &v[2..];
                }
                Elem::TZ => {
                    if v.len() >= 3 && &v[..3] == "UTC" {
                        offset = Some(0);
                        v = &v[3..];
                    } else {
                        let n = v.bytes().take_while(|b| b.is_ascii_uppercase()).count();
                        if !(3..=5).contains(&n) {
                            return Err(bad());
                        }
                        // Unknown abbreviations get offset zero, as in Go.
                        offset = Some(0);
                        v = &v[n..];
                    }
                }
                Elem::Zone { z, colon, fields } => {
                    if *z && v.starts_with('Z') {
                        offset = Some(0);
                        v = &v[1..];
                        continue;
                    }
                    let sign = match v.as_bytes().first() {
                        Some(b'+') => 1,
                        Some(b'-') => -1,
                        _ => return Err(bad()),
                    };
                    v = &v[1..];
                    let mut parts = [0i32; 3];
                    for (i, p) in parts.iter_mut().enumerate().take(*fields as usize) {
                        if i > 0 && *colon {
                            v = v.strip_prefix(':').ok_or_else(bad)?;
                        }
                        let (n, rest) = getnum(v, true, 2).ok_or_else(bad)?;
                        *p = n as i32;
                        v = rest;
                    }
                    offset = Some(sign * (parts[0] * 3600 + parts[1] * 60 + parts[2]));
                }
            }
        }
        if !v.is_empty() {
            return Err(format!("parsing time {value:?}: extra text: {v:?}"));
        }
        if let Some(p) = pm {
            if p && hour < 12 {
                hour += 12;
            } else if !p && hour == 12 {
                hour = 0;
            }
        }
        let date = match yday {
            Some(yd) => NaiveDate::from_yo_opt(year as i32, yd),
            None => NaiveDate::from_ymd_opt(year as i32, month, day),
        }
        .ok_or_else(|| format!("parsing time {value:?}: day out of range"))?;
        let naive = date
            .and_hms_nano_opt(hour, min, sec, nsec)
            .ok_or_else(bad)?;
        Ok(ParsedTime { naive, offset, loc })
    }
}

/// A parsed time before its year is fixed and its zone applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParsedTime {
    naive: NaiveDateTime,
    offset: Option<i32>,
    loc: Option<Tz>,
}

impl ParsedTime {
    /// Moves the date by whole years (Promtail's year fill-in for layouts without a year).
    pub(crate) fn add_years(mut self, years: i32) -> Option<ParsedTime> {
        use chrono::Datelike;
        self.naive = self.naive.with_year(self.naive.year() + years)?;
        Some(self)
    }

    pub(crate) fn year(&self) -> i32 {
        use chrono::Datelike;
        self.naive.year()
    }

    pub(crate) fn month(&self) -> u32 {
        use chrono::Datelike;
        self.naive.month()
    }

    /// Unix nanoseconds.
    pub(crate) fn unix_nanos(&self) -> Option<i64> {
        let utc = match (self.offset, self.loc) {
            (Some(off), _) => self.naive - chrono::Duration::seconds(off as i64),
            (None, Some(tz)) => tz.from_local_datetime(&self.naive).earliest()?.naive_utc(),
            (None, None) => self.naive,
        };
        utc.and_utc().timestamp_nanos_opt()
    }
}

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
const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

fn zone_elem(s: &str) -> Option<(Elem, usize)> {
    const Z: [(&str, bool, bool, u8); 10] = [
        ("Z07:00:00", true, true, 3),
        ("-07:00:00", false, true, 3),
        ("Z070000", true, false, 3),
        ("-070000", false, false, 3),
        ("Z07:00", true, true, 2),
        ("-07:00", false, true, 2),
        ("Z0700", true, false, 2),
        ("-0700", false, false, 2),
        ("Z07", true, false, 1),
        ("-07", false, false, 1),
    ];
    Z.iter()
        .find(|(p, ..)| s.starts_with(p))
        .map(|(p, z, colon, fields)| {
            (
                Elem::Zone {
                    z: *z,
                    colon: *colon,
                    fields: *fields,
                },
                p.len(),
            )
        })
}

fn frac_elem(s: &str) -> Option<(Elem, usize)> {
    let b = s.as_bytes();
    if b.len() < 2 || !(b[0] == b'.' || b[0] == b',') || !(b[1] == b'0' || b[1] == b'9') {
        return None;
    }
    let c = b[1];
    let n = b[1..].iter().take_while(|&&x| x == c).count();
    // Go only treats it as a fraction when the run is not followed by another digit.
    if b.get(1 + n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some((
        Elem::Frac {
            digits: n,
            fixed: c == b'0',
        },
        1 + n,
    ))
}

fn frac_nanos(d: &str) -> u32 {
    let mut n: u64 = 0;
    for (i, b) in d.bytes().enumerate() {
        if i >= 9 {
            break;
        }
        n = n * 10 + (b - b'0') as u64;
    }
    let len = d.len().min(9);
    (n * 10u64.pow((9 - len) as u32)) as u32
}

fn getnum(v: &str, fixed: bool, max_digits: usize) -> Option<(u32, &str)> {
    let b = v.as_bytes();
    let n = b
        .iter()
        .take(max_digits)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n == 0 || (fixed && n != max_digits) {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

fn lookup<'a>(v: &'a str, names: &[&str]) -> Option<(usize, &'a str)> {
    for (i, name) in names.iter().enumerate() {
        if v.len() >= name.len()
            && v.is_char_boundary(name.len())
            && v[..name.len()].eq_ignore_ascii_case(name)
        {
            return Some((i, &v[name.len()..]));
        }
    }
    None
}

/// Go's `skip`: a run of spaces in the layout matches a run of spaces in the value; other
/// text must match exactly.
fn skip<'a>(mut v: &'a str, mut prefix: &str) -> Option<&'a str> {
    while !prefix.is_empty() {
        if prefix.starts_with(' ') {
            if !v.is_empty() && !v.starts_with(' ') {
                return None;
            }
            prefix = prefix.trim_start_matches(' ');
            v = v.trim_start_matches(' ');
            continue;
        }
        let c = prefix.chars().next()?;
        if !v.starts_with(c) {
            return None;
        }
        prefix = &prefix[c.len_utf8()..];
        v = &v[c.len_utf8()..];
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(layout: &str, value: &str) -> Option<i64> {
        Layout::new(layout)
            .parse(value, None)
            .ok()
            .and_then(|p| p.unix_nanos())
    }

    #[test]
    fn go_layouts() {
        // 2019-04-30T02:12:41.8443515Z
        let want = 1556590361844351500;
        assert_eq!(
            ns(
                "2006-01-02T15:04:05.999999999Z07:00",
                "2019-04-30T02:12:41.8443515Z"
            ),
            Some(want)
        );
        assert_eq!(
            ns("2006-01-02T15:04:05Z07:00", "2019-04-30T02:12:41.8443515Z"),
            Some(want)
        );
        assert_eq!(
            ns(
                "2006-01-02T15:04:05Z07:00",
                "2019-04-30T04:12:41.8443515+02:00"
            ),
            Some(want)
        );
        assert_eq!(
            ns("2006-01-02 15:04:05.000", "2019-04-30 02:12:41.844"),
            Some(1556590361844000000)
        );
        assert_eq!(
            ns("2006-01-02 15:04:05,000", "2019-04-30 02:12:41,844"),
            Some(1556590361844000000)
        );
        assert_eq!(
            ns("02/Jan/2006:15:04:05 -0700", "30/Apr/2019:04:12:41 +0200"),
            Some(1556590361000000000)
        );
        assert_eq!(
            ns("Mon Jan _2 15:04:05 2006", "Tue Apr  2 02:12:41 2019"),
            Some(1554171161000000000)
        );
        assert_eq!(
            ns(
                "Mon Jan _2 15:04:05 MST 2006",
                "Tue Apr 30 02:12:41 UTC 2019"
            ),
            Some(1556590361000000000)
        );
        assert_eq!(
            ns("02 Jan 06 15:04 MST", "30 Apr 19 02:12 UTC"),
            Some(1556590320000000000)
        );
        assert_eq!(
            ns(
                "Monday, 02-Jan-06 15:04:05 MST",
                "Tuesday, 30-Apr-19 02:12:41 UTC"
            ),
            Some(1556590361000000000)
        );
        assert_eq!(
            ns("3:04PM 2006-01-02", "2:12AM 2019-04-30"),
            Some(1556590320000000000)
        );
        assert_eq!(
            ns("3:04PM 2006-01-02", "2:12PM 2019-04-30"),
            Some(1556590320000000000 + 12 * 3600 * 1_000_000_000)
        );
        // Errors: wrong literal, out of range, trailing text.
        assert_eq!(ns("2006-01-02", "2019/04/30"), None);
        assert_eq!(ns("2006-01-02", "2019-13-30"), None);
        assert_eq!(ns("2006-01-02", "2019-02-30"), None);
        assert_eq!(ns("2006-01-02", "2019-04-30x"), None);
        assert_eq!(
            ns("2006-01-02T15:04:05.000Z", "2019-04-30T02:12:41.84Z"),
            None
        );
    }

    #[test]
    fn in_location() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let p = Layout::new("2006-01-02 15:04:05")
            .parse("2019-04-30 02:12:41", Some(tz))
            .unwrap();
        assert_eq!(
            p.unix_nanos(),
            Some(1556590361000000000 + 4 * 3600 * 1_000_000_000)
        );
    }

    #[test]
    fn without_year() {
        let l = Layout::new("Jan _2 15:04:05");
        assert!(!l.has_year());
        let p = l.parse("Apr 30 02:12:41", None).unwrap();
        assert_eq!(p.year(), 0);
        assert_eq!(
            p.add_years(2019).unwrap().unix_nanos(),
            Some(1556590361000000000)
        );
    }
}
