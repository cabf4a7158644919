//! Go's `strconv.ParseInt`, `ParseUint` and `ParseFloat`, with Go's error messages.
//!
//! Number literals in templates, sprig's casts (`int`, `add`, …), `bytes` and `unixToTime` all
//! parse text with these rules: base prefixes (`0x`, `0o`, `0b`, a bare leading `0` is octal)
//! and `_` digit separators when the base is 0, hexadecimal floats, `inf`/`nan` spellings.

use crate::goquote::quote;

/// A `strconv.NumError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumError {
    pub(crate) func: &'static str,
    pub(crate) num: String,
    pub(crate) range: bool,
}

impl std::fmt::Display for NumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "strconv.{}: parsing {}: {}",
            self.func,
            quote(&self.num),
            if self.range {
                "value out of range"
            } else {
                "invalid syntax"
            }
        )
    }
}

fn syntax(func: &'static str, s: &str) -> NumError {
    NumError {
        func,
        num: s.to_string(),
        range: false,
    }
}

fn range_err(func: &'static str, s: &str) -> NumError {
    NumError {
        func,
        num: s.to_string(),
        range: true,
    }
}

/// Go's `underscoreOK`: underscores only between digits (or after a base prefix).
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    if !b.is_empty() && (b[0] == b'-' || b[0] == b'+') {
        b = &b[1..];
    }
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&c.to_ascii_lowercase())) {
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
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, base, 64)` for base 0 or 2..=36.
pub(crate) fn parse_uint(s: &str, base: u32) -> Result<u64, NumError> {
    parse_uint_named(s, base, "ParseUint")
}

fn parse_uint_named(s0: &str, base: u32, func: &'static str) -> Result<u64, NumError> {
    if s0.is_empty() {
        return Err(syntax(func, s0));
    }
    let base0 = base == 0;
    let mut s = s0.as_bytes();
    let mut base = base;
    if base0 {
        base = 10;
        if s[0] == b'0' {
            if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'b') {
                base = 2;
                s = &s[2..];
            } else if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'o') {
                base = 8;
                s = &s[2..];
            } else if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'x') {
                base = 16;
                s = &s[2..];
            } else {
                base = 8;
                s = &s[1..];
            }
        }
    } else if !(2..=36).contains(&base) {
        return Err(syntax(func, s0));
    }
    let mut underscores = false;
    let mut n: u64 = 0;
    let mut overflow = false;
    for &c in s {
        let d = match c {
            b'_' if base0 => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u32::from(c - b'0'),
            _ if c.is_ascii_alphabetic() => u32::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return Err(syntax(func, s0)),
        };
        if d >= base {
            return Err(syntax(func, s0));
        }
        if !overflow {
            match n
                .checked_mul(u64::from(base))
                .and_then(|m| m.checked_add(u64::from(d)))
            {
                Some(v) => n = v,
                None => overflow = true,
            }
        }
    }
    if overflow {
        return Err(range_err(func, s0));
    }
    if underscores && !underscore_ok(s0) {
        return Err(syntax(func, s0));
    }
    Ok(n)
}

/// Go's `strconv.ParseInt(s, base, 64)`.
pub(crate) fn parse_int(s0: &str, base: u32) -> Result<i64, NumError> {
    if s0.is_empty() {
        return Err(syntax("ParseInt", s0));
    }
    let (neg, s) = match s0.as_bytes()[0] {
        b'+' => (false, &s0[1..]),
        b'-' => (true, &s0[1..]),
        _ => (false, s0),
    };
    let un = match parse_uint_named(s, base, "ParseInt") {
        Ok(v) => v,
        Err(e) if e.range => u64::MAX,
        Err(_) => return Err(syntax("ParseInt", s0)),
    };
    let cutoff: u64 = 1 << 63;
    if !neg && un >= cutoff {
        return Err(range_err("ParseInt", s0));
    }
    if neg && un > cutoff {
        return Err(range_err("ParseInt", s0));
    }
    Ok(if neg {
        (un as i64).wrapping_neg()
    } else {
        un as i64
    })
}

/// Length of the common prefix of `s` and `word`, ignoring ASCII case.
fn common_prefix_ignore_case(s: &str, word: &str) -> usize {
    s.bytes()
        .zip(word.bytes())
        .take_while(|(a, b)| a.to_ascii_lowercase() == *b)
        .count()
}

/// Go's `special`: infinities and NaN spelled out.
fn special(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let first = *b.first()?;
    let (sign, body, nsign) = match first {
        b'+' => (1.0, &s[1..], 1),
        b'-' => (-1.0, &s[1..], 1),
        _ => (1.0, s, 0),
    };
    let c = body.as_bytes().first()?.to_ascii_lowercase();
    if c == b'i' {
        let mut n = common_prefix_ignore_case(body, "infinity");
        if 3 < n && n < 8 {
            n = 3;
        }
        if (n == 3 || n == 8) && nsign + n == s.len() {
            return Some(sign * f64::INFINITY);
        }
        return None;
    }
    if c == b'n' && nsign == 0 && common_prefix_ignore_case(body, "nan") == 3 && s.len() == 3 {
        return Some(f64::NAN);
    }
    None
}

/// Checks Go's decimal float syntax: `[+-]digits[.digits][e[+-]digits]`, at least one digit.
fn decimal_float_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut digits = false;
    let mut dot = false;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => digits = true,
            b'_' => {}
            b'.' if !dot => dot = true,
            _ => break,
        }
        i += 1;
    }
    if !digits {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    i == b.len()
}

/// Parses a hexadecimal float `[+-]0x<hex>[.<hex>]p[+-]<dec>`; Go requires the exponent.
fn hex_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let body = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))?;
    let body = body.replace('_', "");
    let p = body.find(['p', 'P'])?;
    let (mant, exp) = (&body[..p], &body[p + 1..]);
    let exp: i64 = exp.parse().ok()?;
    let (int_part, frac_part) = match mant.find('.') {
        Some(d) => (&mant[..d], &mant[d + 1..]),
        None => (mant, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut v = 0f64;
    let mut any = false;
    for c in int_part.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
        any = true;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
        any = true;
    }
    if !any {
        return None;
    }
    let e = i32::try_from(exp.clamp(-10000, 10000)).ok()?;
    let r = v * 2f64.powi(e.clamp(-1100, 1100));
    Some(if neg { -r } else { r })
}

/// Go's `strconv.ParseFloat(s, 64)`.
pub(crate) fn parse_float(s: &str) -> Result<f64, NumError> {
    if let Some(v) = special(s) {
        return Ok(v);
    }
    let lower_body = s.trim_start_matches(['+', '-']);
    let is_hex =
        lower_body.len() > 2 && (lower_body.starts_with("0x") || lower_body.starts_with("0X"));
    if s.contains('_') && !underscore_ok(s) {
        return Err(syntax("ParseFloat", s));
    }
    let v = if is_hex {
        hex_float(s).ok_or_else(|| syntax("ParseFloat", s))?
    } else {
        if !decimal_float_syntax(s) {
            return Err(syntax("ParseFloat", s));
        }
        let cleaned;
        let text = if s.contains('_') {
            cleaned = s.replace('_', "");
            cleaned.as_str()
        } else {
            s
        };
        text.parse::<f64>().map_err(|_| syntax("ParseFloat", s))?
    };
    if v.is_infinite() {
        return Err(range_err("ParseFloat", s));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert_eq!(parse_int("42", 0), Ok(42));
        assert_eq!(parse_int("-0x1f", 0), Ok(-31));
        assert_eq!(parse_int("0o17", 0), Ok(15));
        assert_eq!(parse_int("017", 0), Ok(15));
        assert_eq!(parse_int("1_000", 0), Ok(1000));
        assert!(parse_int("1__0", 0).is_err());
        assert!(parse_int("08", 0).is_err());
        assert_eq!(parse_int("-9223372036854775808", 10), Ok(i64::MIN));
        assert_eq!(
            parse_int("9223372036854775808", 10)
                .unwrap_err()
                .to_string(),
            "strconv.ParseInt: parsing \"9223372036854775808\": value out of range"
        );
        assert_eq!(
            parse_int("abc", 10).unwrap_err().to_string(),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(parse_uint("0x10", 0), Ok(16));
        assert!(parse_uint("-1", 0).is_err());
    }

    #[test]
    fn floats() {
        assert_eq!(parse_float("1.5"), Ok(1.5));
        assert_eq!(parse_float(".5"), Ok(0.5));
        assert_eq!(parse_float("1e3"), Ok(1000.0));
        assert_eq!(parse_float("-Inf"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("0x1.8p1"), Ok(3.0));
        assert!(parse_float("0x1").is_err());
        assert!(parse_float("1e").is_err());
        assert!(parse_float("").is_err());
        assert!(parse_float("abc").is_err());
        assert!(parse_float("1e400").unwrap_err().range);
        assert_eq!(parse_float("1_000.5"), Ok(1000.5));
        assert_eq!(
            parse_float("").unwrap_err().to_string(),
            "strconv.ParseFloat: parsing \"\": invalid syntax"
        );
    }
}
