//! Time functions — Loki's `__timestamp__ unixEpochMillis unixEpochNanos toDateInZone
//! unixToTime duration duration_seconds` and sprig's `date toDate now unixEpoch` — and the
//! methods templates may call on `time.Time`, `time.Duration`, `time.Month` and
//! `time.Weekday` values (`{{ __timestamp__.Unix }}`, `{{ (now).Format "15:04" }}`).
//!
//! `date` formats in `Local`, which is UTC here as in Loki's images; `toDate` parses in
//! `Local`; `toDateInZone` parses in a named zone (unknown names fall back to UTC). Parse
//! failures yield Go's zero time (0001-01-01), as the Go functions ignore the error.

use std::borrow::Cow;

use super::{Func, Ty, arg_int, arg_str};
use crate::gotime::{GoDuration, GoTime, Loc, parse_in_location};
use crate::value::{TemplateData, Value};

pub(crate) fn call<'a>(
    data: &'a dyn TemplateData,
    f: Func,
    args: super::Args<'a>,
) -> Result<Value<'a>, String> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Invalid);
    let time = |i: usize| match args.get(i) {
        Some(Value::Time(t)) => t.clone(),
        _ => GoTime::zero(),
    };
    Ok(match f {
        Func::Timestamp => Value::Time(GoTime::from_unix_nanos(data.timestamp_ns())),
        Func::Now => Value::Time(GoTime::from_unix_nanos(data.now_ns())),
        Func::UnixEpochMillis => Value::Str(Cow::Owned(time(0).unix_milli().to_string())),
        Func::UnixEpochNanos => Value::Str(Cow::Owned(time(0).unix_nano().to_string())),
        Func::UnixEpoch => Value::Str(Cow::Owned(time(0).sec.to_string())),
        Func::ToDateInZone => {
            let (layout, zone, s) = (arg(0), arg(1), arg(2));
            let loc = Loc::load(arg_str(&zone)).unwrap_or(Loc::Utc);
            Value::Time(
                parse_in_location(arg_str(&layout), arg_str(&s), &loc)
                    .unwrap_or_else(|_| GoTime::zero()),
            )
        }
        Func::ToDate => {
            let (layout, s) = (arg(0), arg(1));
            Value::Time(
                parse_in_location(arg_str(&layout), arg_str(&s), &Loc::Local)
                    .unwrap_or_else(|_| GoTime::zero()),
            )
        }
        Func::Date => {
            let layout = arg(0);
            let t = match arg(1) {
                Value::Time(t) => t,
                Value::Int(i) | Value::Int64(i) => GoTime::unix(i, 0),
                _ => GoTime::from_unix_nanos(data.now_ns()),
            };
            Value::Str(Cow::Owned(t.in_loc(Loc::Local).format(arg_str(&layout))))
        }
        Func::UnixToTime => {
            let epoch = arg(0);
            let epoch = arg_str(&epoch);
            let i = crate::gostrconv::parse_int(epoch, 10)
                .map_err(|e| format!("unable to parse time '{epoch}': {e}"))?;
            let t = match epoch.len() {
                5 => GoTime::unix(i.wrapping_mul(86_400), 0),
                10 => GoTime::unix(i, 0),
                13 => GoTime::from_unix_nanos(i.wrapping_mul(1_000_000)),
                16 => GoTime::from_unix_nanos(i.wrapping_mul(1000)),
                19 => GoTime::from_unix_nanos(i),
                // Loki wraps a nil error here, which Go prints as %!w(<nil>).
                _ => return Err(format!("unable to parse time '{epoch}': %!w(<nil>)")),
            };
            Value::Time(t)
        }
        Func::Duration | Func::DurationSeconds => {
            let s = arg(0);
            Value::Float(GoDuration::parse(arg_str(&s))?.seconds())
        }
        _ => return Err(format!("{} is not a time function", f.name())),
    })
}

/// A method callable on a time value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Unix,
    UnixMilli,
    UnixMicro,
    UnixNano,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Nanosecond,
    YearDay,
    Weekday,
    Format,
    String,
    Utc,
    Local,
    IsZero,
    Add,
    AddDate,
    Sub,
    Before,
    After,
    Equal,
    Seconds,
    Minutes,
    Hours,
    Milliseconds,
    Microseconds,
    Nanoseconds,
}

impl Method {
    /// The method `name` of the receiver's type, if it has one.
    pub(crate) fn lookup(recv: &Value<'_>, name: &str) -> Option<Method> {
        use Method::*;
        match recv {
            Value::Time(_) => Some(match name {
                "Unix" => Unix,
                "UnixMilli" => UnixMilli,
                "UnixMicro" => UnixMicro,
                "UnixNano" => UnixNano,
                "Year" => Year,
                "Month" => Month,
                "Day" => Day,
                "Hour" => Hour,
                "Minute" => Minute,
                "Second" => Second,
                "Nanosecond" => Nanosecond,
                "YearDay" => YearDay,
                "Weekday" => Weekday,
                "Format" => Format,
                "String" => String,
                "UTC" => Utc,
                "Local" => Local,
                "IsZero" => IsZero,
                "Add" => Add,
                "AddDate" => AddDate,
                "Sub" => Sub,
                "Before" => Before,
                "After" => After,
                "Equal" => Equal,
                _ => return None,
            }),
            Value::Duration(_) => Some(match name {
                "String" => String,
                "Seconds" => Seconds,
                "Minutes" => Minutes,
                "Hours" => Hours,
                "Milliseconds" => Milliseconds,
                "Microseconds" => Microseconds,
                "Nanoseconds" => Nanoseconds,
                _ => return None,
            }),
            Value::Month(_) | Value::Weekday(_) if name == "String" => Some(String),
            _ => None,
        }
    }

    pub(crate) fn sig(self) -> super::Sig {
        use Method::*;
        let params: &'static [Ty] = match self {
            Format => &[Ty::Str],
            Add => &[Ty::Duration],
            AddDate => &[Ty::Int, Ty::Int, Ty::Int],
            Sub | Before | After | Equal => &[Ty::Time],
            _ => &[],
        };
        super::Sig {
            params,
            variadic: None,
        }
    }

    pub(crate) fn call<'a>(
        self,
        recv: Value<'a>,
        args: super::Args<'a>,
    ) -> Result<Value<'a>, String> {
        use Method::*;
        let other = || match args.first() {
            Some(Value::Time(t)) => t.clone(),
            _ => GoTime::zero(),
        };
        match recv {
            Value::Time(t) => Ok(match self {
                Unix => Value::Int64(t.sec),
                UnixMilli => Value::Int64(t.unix_milli()),
                UnixMicro => Value::Int64(t.unix_micro()),
                UnixNano => Value::Int64(t.unix_nano()),
                Year => Value::Int(t.year()),
                Month => Value::Month(t.month()),
                Day => Value::Int(t.day()),
                Hour => Value::Int(t.hour()),
                Minute => Value::Int(t.minute()),
                Second => Value::Int(t.second()),
                Nanosecond => Value::Int(i64::from(t.nsec)),
                YearDay => Value::Int(t.year_day()),
                Weekday => Value::Weekday(t.weekday()),
                Format => Value::Str(Cow::Owned(
                    t.format(args.first().map(arg_str).unwrap_or("")),
                )),
                String => Value::Str(Cow::Owned(t.go_string())),
                Utc => Value::Time(t.in_loc(Loc::Utc)),
                Local => Value::Time(t.in_loc(Loc::Local)),
                IsZero => Value::Bool(t.is_zero()),
                Add => Value::Time(t.add(args.first().map_or(0, Value::int_of))),
                AddDate => {
                    let a = |i: usize| args.get(i).map_or(0, arg_int);
                    Value::Time(t.add_date(a(0), a(1), a(2)))
                }
                Sub => Value::Duration(GoDuration(t.sub(&other()))),
                Before => Value::Bool(t.sub(&other()) < 0),
                After => Value::Bool(t.sub(&other()) > 0),
                Equal => Value::Bool(t.sub(&other()) == 0),
                _ => return Err("no such method".into()),
            }),
            Value::Duration(d) => Ok(match self {
                String => Value::Str(Cow::Owned(d.go_string())),
                Seconds => Value::Float(d.seconds()),
                Minutes => {
                    let (m, ns) = (d.0 / 60_000_000_000, d.0 % 60_000_000_000);
                    Value::Float(m as f64 + ns as f64 / 6e10)
                }
                Hours => {
                    let (h, ns) = (d.0 / 3_600_000_000_000, d.0 % 3_600_000_000_000);
                    Value::Float(h as f64 + ns as f64 / 3.6e12)
                }
                Milliseconds => Value::Int64(d.0 / 1_000_000),
                Microseconds => Value::Int64(d.0 / 1000),
                Nanoseconds => Value::Int64(d.0),
                _ => return Err("no such method".into()),
            }),
            Value::Month(m) => Ok(Value::Str(Cow::Owned(crate::gotime::month_name(m)))),
            Value::Weekday(w) => Ok(Value::Str(Cow::Owned(crate::gotime::weekday_name(w)))),
            _ => Err("no such method".into()),
        }
    }
}
