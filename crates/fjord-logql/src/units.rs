//! Durations, byte sizes and numbers exactly as Loki reads and writes them.
//!
//! LogQL mixes three Go conventions, and printing a query back (Loki's `String()`) must reproduce
//! each one byte for byte:
//! * `[range]` and `offset` read Prometheus durations (`model.ParseDuration`: integer counts,
//!   units `y w d h m s ms` from largest to smallest) and print them with `model.Duration`'s
//!   `String` (millisecond precision, `1h30m`).
//! * Label-filter durations try the Prometheus form first and fall back to Go's
//!   `time.ParseDuration` (signed, fractional, units `ns us µs ms s m h`); they print with
//!   `time.Duration.String` (`1h30m0s`), as does `offset` inside `String()`.
//! * Byte sizes are read by go-humanize's `ParseBytes` and printed by its `Bytes` (SI units).
//!
//! All durations here are signed nanoseconds (`i64`), Go's `time.Duration`. Nothing here panics:
//! overflow is reported as an error, as Go does.

use std::fmt::Write;

const NS_PER_MS: i64 = 1_000_000;
const NS_PER_S: u64 = 1_000_000_000;

/// Parses a Prometheus duration (`model.ParseDuration`) into nanoseconds.
///
/// The error text is Prometheus' own, e.g. `unknown unit "x" in duration "5x"`.
pub fn parse_prometheus_duration(s: &str) -> Result<i64, String> {
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".to_string()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", go_quote(s));
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_pos = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            return Err(invalid());
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let value: u64 = s[start..i].parse().map_err(|_| invalid())?;
        let unit_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == unit_start {
            return Err(invalid());
        }
        let unit = &s[unit_start..i];
        let (pos, mult): (u32, u64) = match unit {
            "ms" => (7, 1_000_000),
            "s" => (6, NS_PER_S),
            "m" => (5, 60 * NS_PER_S),
            "h" => (4, 3600 * NS_PER_S),
            "d" => (3, 86_400 * NS_PER_S),
            "w" => (2, 7 * 86_400 * NS_PER_S),
            "y" => (1, 365 * 86_400 * NS_PER_S),
            _ => {
                return Err(format!(
                    "unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(s)
                ));
            }
        };
        if pos <= last_pos {
            return Err(invalid());
        }
        last_pos = pos;
        if value > (1u64 << 63) / mult {
            return Err("duration out of range".to_string());
        }
        total = total.saturating_add(value * mult);
        if total > i64::MAX as u64 {
            return Err("duration out of range".to_string());
        }
    }
    i64::try_from(total).map_err(|_| "duration out of range".to_string())
}

/// Parses a Go duration (`time.ParseDuration`) into nanoseconds.
pub fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next()
        && (c == '-' || c == '+')
    {
        neg = c == '-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // leading integer
        let mut i = 0;
        let mut v: u64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            if v > (1u64 << 63) / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b[i] - b'0');
            if v > 1u64 << 63 {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // fraction
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.as_bytes().first() == Some(&b'.') {
            s = &s[1..];
            let b = s.as_bytes();
            let mut j = 0;
            let mut overflow = false;
            while j < b.len() && b[j].is_ascii_digit() {
                if !overflow {
                    if f > ((1u64 << 63) - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(b[j] - b'0');
                        if y > 1u64 << 63 {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                j += 1;
            }
            post = j > 0;
            s = &s[j..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let mult: u64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NS_PER_S,
            "m" => 60 * NS_PER_S,
            "h" => 3600 * NS_PER_S,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(orig)
                ));
            }
        };
        if v > (1u64 << 63) / mult {
            return Err(invalid());
        }
        v *= mult;
        if f > 0 {
            v = v.saturating_add((f as f64 * (mult as f64 / scale)) as u64);
            if v > 1u64 << 63 {
                return Err(invalid());
            }
        }
        d = d.saturating_add(v);
        if d > 1u64 << 63 {
            return Err(invalid());
        }
    }
    if neg {
        // d <= 2^63 here, so the negation fits.
        return Ok((d as i64).wrapping_neg());
    }
    i64::try_from(d).map_err(|_| invalid())
}

/// Loki's label-filter duration reader: Prometheus form first, then Go's.
pub fn parse_loki_duration(s: &str) -> Result<i64, String> {
    match parse_prometheus_duration(s) {
        Ok(d) => Ok(d),
        Err(_) => parse_go_duration(s),
    }
}

/// Prints a duration as Prometheus' `model.Duration.String` does (`5m`, `1h30m`, `2w`).
pub fn format_prometheus_duration(ns: i64) -> String {
    let mut ms = ns / NS_PER_MS;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = ms.saturating_neg();
    }
    let mut emit = |unit: &str, mult: i64, exact: bool, ms: &mut i64| {
        if exact && *ms % mult != 0 {
            return;
        }
        let v = *ms / mult;
        if v > 0 {
            let _ = write!(out, "{v}{unit}");
            *ms -= v * mult;
        }
    };
    emit("y", 1000 * 60 * 60 * 24 * 365, true, &mut ms);
    emit("w", 1000 * 60 * 60 * 24 * 7, true, &mut ms);
    emit("d", 1000 * 60 * 60 * 24, false, &mut ms);
    emit("h", 1000 * 60 * 60, false, &mut ms);
    emit("m", 1000 * 60, false, &mut ms);
    emit("s", 1000, false, &mut ms);
    emit("ms", 1, false, &mut ms);
    out
}

/// Prints a duration as Go's `time.Duration.String` does (`1h30m0s`, `1.5s`, `100ms`).
pub fn format_go_duration(ns: i64) -> String {
    let neg = ns < 0;
    let mut u = ns.unsigned_abs();
    // Built right to left, as Go does.
    let mut buf: Vec<u8> = Vec::with_capacity(32);
    if u < NS_PER_S {
        if u == 0 {
            return "0s".to_string();
        }
        let (prec, unit): (usize, &str) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "\u{b5}s")
        } else {
            (6, "ms")
        };
        for b in unit.as_bytes().iter().rev() {
            buf.push(*b);
        }
        u = fmt_frac(&mut buf, u, prec);
        fmt_int(&mut buf, u);
    } else {
        buf.push(b's');
        u = fmt_frac(&mut buf, u, 9);
        fmt_int(&mut buf, u % 60);
        u /= 60;
        if u > 0 {
            buf.push(b'm');
            fmt_int(&mut buf, u % 60);
            u /= 60;
            if u > 0 {
                buf.push(b'h');
                fmt_int(&mut buf, u);
            }
        }
    }
    if neg {
        buf.push(b'-');
    }
    buf.reverse();
    String::from_utf8_lossy(&buf).into_owned()
}

/// Pushes (reversed) the fraction of `v / 10^prec` without trailing zeros; returns `v / 10^prec`.
fn fmt_frac(buf: &mut Vec<u8>, mut v: u64, prec: usize) -> u64 {
    let mut printed = false;
    for _ in 0..prec {
        let digit = v % 10;
        printed = printed || digit != 0;
        if printed {
            buf.push(b'0' + digit as u8);
        }
        v /= 10;
    }
    if printed {
        buf.push(b'.');
    }
    v
}

/// Pushes (reversed) the decimal digits of `v`.
fn fmt_int(buf: &mut Vec<u8>, mut v: u64) {
    if v == 0 {
        buf.push(b'0');
        return;
    }
    while v > 0 {
        buf.push(b'0' + (v % 10) as u8);
        v /= 10;
    }
}

/// go-humanize's `ParseBytes`: `42MB`, `1.5KiB`, `20B`, `1,000 kB` (case-insensitive units).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let mut last_digit = 0;
    let mut has_comma = false;
    for c in s.chars() {
        if !(c.is_numeric() && is_unicode_digit(c) || c == '.' || c == ',') {
            break;
        }
        if c == ',' {
            has_comma = true;
        }
        last_digit += c.len_utf8();
    }
    let mut num = s[..last_digit].to_string();
    if has_comma {
        num = num.replace(',', "");
    }
    let f = parse_go_float(&num).map_err(|e| e.to_string())?;
    let extra = s[last_digit..].trim().to_lowercase();
    let mult: u64 = match extra.as_str() {
        "b" | "" => 1,
        "kib" | "ki" => 1 << 10,
        "kb" | "k" => 1_000,
        "mib" | "mi" => 1 << 20,
        "mb" | "m" => 1_000_000,
        "gib" | "gi" => 1 << 30,
        "gb" | "g" => 1_000_000_000,
        "tib" | "ti" => 1 << 40,
        "tb" | "t" => 1_000_000_000_000,
        "pib" | "pi" => 1 << 50,
        "pb" | "p" => 1_000_000_000_000_000,
        "eib" | "ei" => 1 << 60,
        "eb" | "e" => 1_000_000_000_000_000_000,
        _ => return Err(format!("unhandled size name: {extra}")),
    };
    let v = f * mult as f64;
    if v >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    // Go converts with truncation; negative or NaN values are not reachable from the lexer.
    Ok(if v.is_nan() || v <= 0.0 { 0 } else { v as u64 })
}

/// Whether `c` is a Unicode decimal digit (Go's `unicode.IsDigit`, category Nd).
fn is_unicode_digit(c: char) -> bool {
    c.is_ascii_digit()
        || (!c.is_ascii() && c.is_numeric() && c.to_digit(10).is_none() && char_is_nd(c))
}

/// A small approximation of the Nd category for non-ASCII characters: the ranges of decimal
/// digit blocks in the BMP. Go's `strconv.ParseFloat` rejects them anyway, so only the point
/// where the number ends matters.
fn char_is_nd(c: char) -> bool {
    let u = c as u32;
    [
        0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6,
        0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0xFF10,
    ]
    .iter()
    .any(|&start| (start..start + 10).contains(&u))
}

/// go-humanize's `Bytes` with the spaces removed, as Loki prints a bytes label filter (`20MB`,
/// `1.5kB`, `7B`).
pub fn format_bytes(v: u64) -> String {
    if v < 10 {
        return format!("{v}B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let f = v as f64;
    let e = (f.ln() / 1000f64.ln()).floor();
    let idx = (e as usize).min(SIZES.len() - 1);
    let val = (f / 1000f64.powf(e) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1}{}", SIZES[idx])
    } else {
        format!("{val:.0}{}", SIZES[idx])
    }
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal and hexadecimal (`0x1p-2`) floats, `inf`, `nan`,
/// `_` separators only after a base prefix. Errors read like Go's.
pub fn parse_go_float(s: &str) -> Result<f64, GoNumError> {
    let orig = s;
    let syntax = || GoNumError {
        func: "ParseFloat",
        input: orig.to_string(),
        kind: NumErrorKind::Syntax,
    };
    let range = || GoNumError {
        func: "ParseFloat",
        input: orig.to_string(),
        kind: NumErrorKind::Range,
    };
    let stripped;
    let s = if s.contains('_') {
        if !underscore_ok(s) {
            return Err(syntax());
        }
        stripped = s.replace('_', "");
        stripped.as_str()
    } else {
        s
    };
    let (sign, body) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => return Ok(sign * f64::INFINITY),
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    if let Some(hex) = lower.strip_prefix("0x") {
        return parse_hex_float(hex)
            .map(|v| sign * v)
            .ok_or_else(syntax)
            .and_then(|v| if v.is_infinite() { Err(range()) } else { Ok(v) });
    }
    // Decimal: digits with optional '.' and optional exponent (underscores were checked above).
    let b = lower.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return Err(syntax());
    }
    if i < b.len() && b[i] == b'e' {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(syntax());
        }
    }
    if i != b.len() {
        return Err(syntax());
    }
    let v: f64 = lower.parse().map_err(|_| syntax())?;
    if v.is_infinite() {
        return Err(range());
    }
    Ok(sign * v)
}

/// Go's `underscoreOK`: `_` only between digits, or between a base prefix and a digit.
fn underscore_ok(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s).as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// Parses the part after `0x` of a Go hexadecimal float; the `p` exponent is required when a
/// fraction is present and `_` may separate digits.
fn parse_hex_float(s: &str) -> Option<f64> {
    let s: String = s.chars().filter(|&c| c != '_').collect();
    let (mant, exp) = match s.find('p') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s.as_str(), None),
    };
    exp?; // Go: "hexadecimal mantissa requires a 'p' exponent"
    let (int_part, frac_part) = match mant.find('.') {
        Some(d) => (&mant[..d], &mant[d + 1..]),
        None => (mant, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int_part.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let exp: i32 = exp?.parse().ok()?;
    Some(v * 2f64.powi(exp))
}

/// A number conversion error, printed like Go's `*strconv.NumError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoNumError {
    func: &'static str,
    input: String,
    kind: NumErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumErrorKind {
    Syntax,
    Range,
}

impl std::fmt::Display for GoNumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            NumErrorKind::Syntax => "invalid syntax",
            NumErrorKind::Range => "value out of range",
        };
        write!(
            f,
            "strconv.{}: parsing {}: {}",
            self.func,
            go_quote(&self.input),
            what
        )
    }
}

/// Go's `strconv.Atoi` (base 10, optional sign, no separators).
pub fn parse_go_int(s: &str) -> Result<i64, GoNumError> {
    let err = |kind| GoNumError {
        func: "Atoi",
        input: s.to_string(),
        kind,
    };
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(NumErrorKind::Syntax));
    }
    s.parse::<i64>().map_err(|_| err(NumErrorKind::Range))
}

/// `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    fjord_model::gostr::quote(s)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest exact decimal, never an exponent.
pub fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // Rust's Display for f64 is the shortest round-trip representation without exponent.
    let s = format!("{v}");
    if s == "-0" { "-0".to_string() } else { s }
}

/// Go's `fmt.Sprint(v)` for a float64 (`%v`, i.e. `%g` shortest): exponent form when the decimal
/// exponent is < -4 or >= 6 (`1e+06`, `1.234567e+06`, `1e-05`), plain otherwise (`123456`).
pub fn format_float_v(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    // Shortest digits and decimal exponent via Rust's `{:e}` (shortest round-trip).
    let e_form = format!("{v:e}");
    let (mantissa, exp) = match e_form.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (e_form.as_str(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let abs = exp.unsigned_abs();
        return if abs < 10 {
            format!("{mantissa}e{sign}0{abs}")
        } else {
            format!("{mantissa}e{sign}{abs}")
        };
    }
    format!("{v}")
}

/// Go's `fmt.Sprintf("%f", v)`: six decimals.
pub fn format_float_6(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    format!("{v:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations() {
        assert_eq!(parse_prometheus_duration("5m"), Ok(300_000_000_000));
        assert_eq!(parse_prometheus_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_prometheus_duration("0"), Ok(0));
        assert_eq!(
            parse_prometheus_duration("5x"),
            Err(r#"unknown unit "x" in duration "5x""#.to_string())
        );
        assert_eq!(
            parse_prometheus_duration("30m1h"),
            Err(r#"not a valid duration string: "30m1h""#.to_string())
        );
        assert_eq!(
            parse_prometheus_duration(""),
            Err("empty duration string".to_string())
        );
        assert_eq!(
            parse_prometheus_duration("1.5h"),
            Err(r#"unknown unit "." in duration "1.5h""#.to_string())
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("-5m"), Ok(-300_000_000_000));
        assert_eq!(parse_go_duration("-0"), Ok(0));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("1us"), Ok(1_000));
        assert!(parse_go_duration("-5").is_err());
        assert!(parse_go_duration("5d").is_err());
    }

    #[test]
    fn duration_printing() {
        assert_eq!(format_prometheus_duration(300_000_000_000), "5m");
        assert_eq!(format_prometheus_duration(5_400_000_000_000), "1h30m");
        assert_eq!(format_prometheus_duration(7 * 86_400_000_000_000), "1w");
        assert_eq!(format_prometheus_duration(0), "0s");
        assert_eq!(format_go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_go_duration(1_500_000_000), "1.5s");
        assert_eq!(format_go_duration(100_000_000), "100ms");
        assert_eq!(format_go_duration(1_500), "1.5\u{b5}s");
        assert_eq!(format_go_duration(-90_000_000_000), "-1m30s");
        assert_eq!(format_go_duration(0), "0s");
    }

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("42MB"), Ok(42_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert_eq!(parse_bytes("20B"), Ok(20));
        assert_eq!(parse_bytes("1k"), Ok(1000));
        assert!(parse_bytes("1x").is_err());
        assert_eq!(format_bytes(20_000_000), "20MB");
        assert_eq!(format_bytes(1024), "1.0kB");
        assert_eq!(format_bytes(5), "5B");
        assert_eq!(format_bytes(999), "999B");
    }

    #[test]
    fn floats() {
        assert_eq!(format_float_v(1.0), "1");
        assert_eq!(format_float_v(1e6), "1e+06");
        assert_eq!(format_float_v(123456.0), "123456");
        assert_eq!(format_float_v(1e21), "1e+21");
        assert_eq!(format_float_v(1234567.0), "1.234567e+06");
        assert_eq!(format_float_v(0.00001), "1e-05");
        assert_eq!(format_float_v(0.0001), "0.0001");
        assert_eq!(format_float_v(-2.5), "-2.5");
        assert_eq!(format_float_v(f64::INFINITY), "+Inf");
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(0.5), "0.5");
        assert_eq!(format_float_6(1.0), "1.000000");
        assert_eq!(parse_go_float("1e3"), Ok(1000.0));
        assert_eq!(parse_go_float("0x1p-2"), Ok(0.25));
        assert!(parse_go_float("0x1f").is_err());
        assert_eq!(parse_go_float("1_000"), Ok(1000.0));
        assert!(parse_go_float("1__000").is_err());
        assert!(parse_go_float("_1").is_err());
        assert_eq!(
            parse_go_float("1e999").unwrap_err().to_string(),
            r#"strconv.ParseFloat: parsing "1e999": value out of range"#
        );
        assert_eq!(parse_go_int("5"), Ok(5));
        assert!(parse_go_int("5.0").is_err());
    }
}
