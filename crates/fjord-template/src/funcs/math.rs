//! Numbers: sprig's casts (`int`, `float64`) and arithmetic (`add sub mul div mod max min`
//! on `int64`; `addf subf mulf divf` through exact decimals; `maxf minf ceil floor round`),
//! and Loki's `bytes`.
//!
//! Casting follows `spf13/cast` as vendored by Loki: strings parse with Go's base-0 integer
//! syntax after dropping a decimal part (`"2.5"` → 2), or as floats; bools are 0/1; anything
//! unparseable is 0 (no error). Integer division by zero fails like Go's runtime panic.

use super::Func;
use crate::decimal::Decimal;
use crate::gostrconv::{parse_float, parse_int};
use crate::value::Value;

/// `cast.ToInt64` (errors become 0).
pub(crate) fn to_int64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(_)
        | Value::Int64(_)
        | Value::Uint8(_)
        | Value::Duration(_)
        | Value::Month(_)
        | Value::Weekday(_) => v.int_of(),
        Value::Float(f) => float_to_int(*f),
        Value::Bool(b) => i64::from(*b),
        Value::Invalid | Value::NilIface => 0,
        Value::Str(s) => {
            if s.is_empty() {
                return 0;
            }
            parse_int(&trim_decimal(s), 0).unwrap_or(0)
        }
        _ => 0,
    }
}

/// Go's float64 → int64 conversion on amd64: out of range (and NaN) gives the minimum.
fn float_to_int(f: f64) -> i64 {
    if f.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
        return i64::MIN;
    }
    f as i64
}

/// `cast.ToFloat64` (errors become 0).
pub(crate) fn to_float64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(_)
        | Value::Int64(_)
        | Value::Uint8(_)
        | Value::Duration(_)
        | Value::Month(_)
        | Value::Weekday(_) => v.int_of() as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Invalid | Value::NilIface => 0.0,
        Value::Str(s) => {
            if s.is_empty() {
                return 0.0;
            }
            parse_float(s).unwrap_or(0.0)
        }
        _ => 0.0,
    }
}

/// cast's `trimDecimal`: `"12.50"` → `"12"`, `"-.5"` → `"-0"`; other text unchanged.
fn trim_decimal(s: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    if !s.contains('.') {
        return Cow::Borrowed(s);
    }
    // ^([-+]?\d*)(\.\d*)?$
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &s[..i];
    if i < b.len() && (b[i] != b'.' || !b[i + 1..].iter().all(u8::is_ascii_digit)) {
        return Cow::Borrowed(s);
    }
    match int_part {
        "-" | "+" => Cow::Owned(format!("{int_part}0")),
        "" => Cow::Borrowed("0"),
        p => Cow::Borrowed(p),
    }
}

/// Go's `math.Max`.
fn go_max(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x > 0.0 || y.is_infinite() && y > 0.0 {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y { x } else { y }
}

/// Go's `math.Min`.
fn go_min(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x < 0.0 || y.is_infinite() && y < 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && x == y {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y { x } else { y }
}

/// Sprig's `execDecimalOp`.
fn decimal_op(
    first: f64,
    rest: &[Value<'_>],
    op: fn(&Decimal, &Decimal) -> Result<Decimal, String>,
) -> Result<f64, String> {
    let mut acc = Decimal::from_f64(first)?;
    for v in rest {
        let d = Decimal::from_f64(to_float64(v))?;
        acc = op(&acc, &d)?;
    }
    Ok(acc.to_f64())
}

/// humanize's `ParseBytes`, as Loki's `bytes` function returns it.
pub(crate) fn parse_bytes(s: &str) -> Result<f64, String> {
    let mut last_digit = 0usize;
    let mut has_comma = false;
    for c in s.chars() {
        if !(c.is_ascii_digit() || c == '.' || c == ',' || (!c.is_ascii() && c.is_numeric())) {
            break;
        }
        if c == ',' {
            has_comma = true;
        }
        // humanize counts characters but slices bytes; identical for ASCII.
        last_digit += 1;
    }
    let cut = last_digit.min(s.len());
    let (num, rest) = if s.is_char_boundary(cut) {
        s.split_at(cut)
    } else {
        (s, "")
    };
    let num = if has_comma {
        num.replace(',', "")
    } else {
        num.to_string()
    };
    let f = parse_float(&num).map_err(|e| e.to_string())?;
    let extra = crate::funcs::strings::go_lower(rest.trim());
    let m: f64 = match extra.as_str() {
        "b" | "" => 1.0,
        "kib" | "ki" => 1024.0,
        "kb" | "k" => 1e3,
        "mib" | "mi" => 1_048_576.0,
        "mb" | "m" => 1e6,
        "gib" | "gi" => 1_073_741_824.0,
        "gb" | "g" => 1e9,
        "tib" | "ti" => 1_099_511_627_776.0,
        "tb" | "t" => 1e12,
        "pib" | "pi" => 1_125_899_906_842_624.0,
        "pb" | "p" => 1e15,
        "eib" | "ei" => 1_152_921_504_606_846_976.0,
        "eb" | "e" => 1e18,
        _ => return Err(format!("unhandled size name: {extra}")),
    };
    let f = f * m;
    if f >= 18_446_744_073_709_551_615.0 {
        return Err(format!("too large: {s}"));
    }
    // uint64(f): truncation; negative values are impossible (no sign is accepted).
    Ok((f as u64) as f64)
}

pub(crate) fn call<'a>(f: Func, args: super::Args<'a>) -> Result<Value<'a>, String> {
    let first = args.first().cloned().unwrap_or(Value::Invalid);
    let rest = args.get(1..).unwrap_or(&[]);
    Ok(match f {
        Func::Int => Value::Int(to_int64(&first)),
        Func::Float64 => Value::Float(to_float64(&first)),
        Func::Add => Value::Int64(args.iter().fold(0i64, |a, v| a.wrapping_add(to_int64(v)))),
        Func::Sub => Value::Int64(
            to_int64(&first).wrapping_sub(to_int64(rest.first().unwrap_or(&Value::Invalid))),
        ),
        Func::Mul => Value::Int64(
            rest.iter()
                .fold(to_int64(&first), |a, v| a.wrapping_mul(to_int64(v))),
        ),
        Func::Div | Func::Mod => {
            let b = to_int64(rest.first().unwrap_or(&Value::Invalid));
            if b == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            let a = to_int64(&first);
            Value::Int64(if f == Func::Div {
                a.wrapping_div(b)
            } else {
                a.wrapping_rem(b)
            })
        }
        Func::Max => Value::Int64(
            rest.iter()
                .fold(to_int64(&first), |a, v| a.max(to_int64(v))),
        ),
        Func::Min => Value::Int64(
            rest.iter()
                .fold(to_int64(&first), |a, v| a.min(to_int64(v))),
        ),
        Func::Maxf => Value::Float(
            rest.iter()
                .fold(to_float64(&first), |a, v| go_max(a, to_float64(v))),
        ),
        Func::Minf => Value::Float(
            rest.iter()
                .fold(to_float64(&first), |a, v| go_min(a, to_float64(v))),
        ),
        Func::Addf => Value::Float(decimal_op(0.0, &args, |a, b| Ok(a.add(b)))?),
        Func::Subf => Value::Float(decimal_op(to_float64(&first), rest, |a, b| Ok(a.sub(b)))?),
        Func::Mulf => Value::Float(decimal_op(to_float64(&first), rest, |a, b| Ok(a.mul(b)))?),
        Func::Divf => Value::Float(decimal_op(to_float64(&first), rest, |a, b| a.div(b))?),
        Func::Ceil => Value::Float(to_float64(&first).ceil()),
        Func::Floor => Value::Float(to_float64(&first).floor()),
        Func::Round => {
            let round_on = match args.get(2) {
                Some(Value::Float(r)) => *r,
                _ => 0.5,
            };
            let val = to_float64(&first);
            let places = args.get(1).map_or(0, Value::int_of) as f64;
            let pow = 10f64.powf(places);
            let digit = pow * val;
            let div = digit.fract();
            let r = if div >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Value::Float(r / pow)
        }
        Func::Bytes => Value::Float(parse_bytes(super::arg_str(&first))?),
        _ => return Err(format!("{} is not a number function", f.name())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_like_spf13_cast() {
        let s = |x: &str| Value::str(x.to_string());
        assert_eq!(to_int64(&s("42")), 42);
        assert_eq!(to_int64(&s("2.5")), 2);
        assert_eq!(to_int64(&s("-.5")), 0);
        assert_eq!(to_int64(&s("0x1F")), 31);
        assert_eq!(to_int64(&s("010")), 8);
        assert_eq!(to_int64(&s("1e3")), 0);
        assert_eq!(to_int64(&s("abc")), 0);
        assert_eq!(to_int64(&s("")), 0);
        assert_eq!(to_int64(&Value::Float(-2.9)), -2);
        assert_eq!(to_int64(&Value::Bool(true)), 1);
        assert_eq!(to_float64(&s("1e3")), 1000.0);
        assert_eq!(to_float64(&s("2.3924")), 2.3924);
        assert_eq!(to_float64(&s("x")), 0.0);
        assert_eq!(to_float64(&Value::Int(3)), 3.0);
    }

    #[test]
    fn bytes_like_humanize() {
        assert_eq!(parse_bytes("3 kB"), Ok(3000.0));
        assert_eq!(parse_bytes("3MB"), Ok(3e6));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536.0));
        assert_eq!(parse_bytes("166KB"), Ok(166_000.0));
        assert_eq!(parse_bytes("1,024"), Ok(1024.0));
        assert_eq!(parse_bytes("1.9 B"), Ok(1.0));
        assert_eq!(
            parse_bytes("12 parsecs"),
            Err("unhandled size name: parsecs".into())
        );
        assert_eq!(
            parse_bytes("kb"),
            Err("strconv.ParseFloat: parsing \"\": invalid syntax".into())
        );
    }

    #[test]
    fn go_min_max() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(-0.0, 0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(go_min(-0.0, 0.0).to_bits(), (-0.0f64).to_bits());
    }
}
