//! Go's `strconv` quoting: `Quote`, `QuoteToASCII`, `QuoteRune`, `Unquote`, `UnquoteChar`.
//!
//! Template string literals are read with Go's rules (`"…"` with escapes, `` `…` `` raw), and
//! `printf "%q"` writes Go-quoted text. Go strings may hold bytes that are not UTF-8 (`"\xff"`);
//! ours are Rust strings, so such bytes become U+FFFD, one per byte, exactly as Loki's JSON
//! encoder later renders them ([`lossy_go`]).

/// Converts bytes to a string the way Go's JSON encoders print a Go string: each byte that is
/// not part of a valid UTF-8 sequence becomes one U+FFFD.
pub(crate) fn lossy_go(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let bytes = e.into_bytes();
            let mut out = String::with_capacity(bytes.len() + 8);
            let mut rest: &[u8] = &bytes;
            loop {
                match std::str::from_utf8(rest) {
                    Ok(s) => {
                        out.push_str(s);
                        break;
                    }
                    Err(err) => {
                        let good = err.valid_up_to();
                        // The prefix is valid UTF-8 by construction.
                        out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                        let bad = err.error_len().unwrap_or(rest.len() - good);
                        for _ in 0..bad {
                            out.push('\u{FFFD}');
                        }
                        rest = &rest[good + bad..];
                    }
                }
            }
            out
        }
    }
}

/// Slices `s[start..end]` by bytes as Go does; cut multi-byte characters turn into U+FFFD.
pub(crate) fn byte_slice(s: &str, start: usize, end: usize) -> String {
    match s.get(start..end) {
        Some(sub) => sub.to_string(),
        None => lossy_go(s.as_bytes()[start..end].to_vec()),
    }
}

/// An approximation of Go's `strconv.IsPrint` (Unicode letters, marks, numbers, punctuation,
/// symbols and U+0020): control, format, separator, surrogate and private-use characters are
/// not printable.
pub(crate) fn is_print(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    !(c.is_control()
        || matches!(u,
            0xa0 | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2
            | 0x1680 | 0x180e | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000
            | 0xd800..=0xdfff | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb
            | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a
            | 0xe0001 | 0xe0020..=0xe007f | 0xf0000..=0x10ffff)
        || (u & 0xfffe) == 0xfffe)
}

fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    use std::fmt::Write;
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if (c as u32) < 0x80 && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        push_escaped(out, c, '"', false);
    }
    out.push('"');
}

/// Go's `strconv.QuoteToASCII`.
pub(crate) fn quote_ascii_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        push_escaped(out, c, '"', true);
    }
    out.push('"');
}

/// Go's `strconv.Quote` returning a new string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// Go's `strconv.QuoteRune` (`ascii_only`: `QuoteRuneToASCII`). Invalid code points print as
/// U+FFFD.
pub(crate) fn quote_rune_into(out: &mut String, r: i64, ascii_only: bool) {
    let c = u32::try_from(r)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}');
    out.push('\'');
    push_escaped(out, c, '\'', ascii_only);
    out.push('\'');
}

/// Go's `strconv.CanBackquote`.
pub(crate) fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| {
        if (c as u32) > 0x7f {
            return c != '\u{FEFF}';
        }
        !((c < ' ' && c != '\t') || c == '`' || c == '\x7f')
    })
}

/// The error Go's `strconv.Unquote` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxError;

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid syntax")
    }
}

/// One decoded unit of a quoted literal: a character or a raw byte from `\x`/octal escapes.
enum Unit {
    Char(char),
    Byte(u8),
}

fn hex_val(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// Go's `strconv.UnquoteChar`: decodes the first character or escape of `s` inside a literal
/// quoted with `quote`, returning the unit and the rest.
fn unquote_char(s: &str, quote: u8) -> Result<(Unit, &str), SyntaxError> {
    let bytes = s.as_bytes();
    let first = *bytes.first().ok_or(SyntaxError)?;
    if first == quote && (quote == b'\'' || quote == b'"') {
        return Err(SyntaxError);
    }
    if first != b'\\' {
        let c = s.chars().next().ok_or(SyntaxError)?;
        return Ok((Unit::Char(c), &s[c.len_utf8()..]));
    }
    let c = *bytes.get(1).ok_or(SyntaxError)?;
    if !c.is_ascii() {
        // No escape starts with a non-ASCII character.
        return Err(SyntaxError);
    }
    let rest = &s[2..];
    let simple = match c {
        b'a' => Some('\x07'),
        b'b' => Some('\x08'),
        b'f' => Some('\x0c'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'v' => Some('\x0b'),
        b'\\' => Some('\\'),
        b'\'' | b'"' => {
            if c != quote {
                return Err(SyntaxError);
            }
            Some(c as char)
        }
        _ => None,
    };
    if let Some(ch) = simple {
        return Ok((Unit::Char(ch), rest));
    }
    match c {
        b'x' | b'u' | b'U' => {
            let n = match c {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let digits = rest.as_bytes().get(..n).ok_or(SyntaxError)?;
            let mut v: u32 = 0;
            for &d in digits {
                v = v * 16 + hex_val(d).ok_or(SyntaxError)?;
            }
            let rest = &rest[n..];
            if c == b'x' {
                return Ok((Unit::Byte(v as u8), rest));
            }
            let ch = char::from_u32(v).ok_or(SyntaxError)?;
            Ok((Unit::Char(ch), rest))
        }
        b'0'..=b'7' => {
            let digits = s.as_bytes().get(1..4).ok_or(SyntaxError)?;
            let mut v: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return Err(SyntaxError);
                }
                v = v * 8 + u32::from(d - b'0');
            }
            if v > 255 {
                return Err(SyntaxError);
            }
            Ok((Unit::Byte(v as u8), &s[4..]))
        }
        _ => Err(SyntaxError),
    }
}

/// Go's `strconv.Unquote` for `"…"` and `` `…` `` literals.
pub(crate) fn unquote(s: &str) -> Result<String, SyntaxError> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 {
        return Err(SyntaxError);
    }
    let q = bytes[0];
    if q != bytes[bytes.len() - 1] {
        return Err(SyntaxError);
    }
    let body = &s[1..s.len() - 1];
    match q {
        b'`' => {
            if body.contains('`') {
                return Err(SyntaxError);
            }
            // Go drops carriage returns from raw strings.
            Ok(body.replace('\r', ""))
        }
        b'"' => {
            if body.contains('\n') {
                return Err(SyntaxError);
            }
            if !body.contains('\\') && !body.contains('"') {
                return Ok(body.to_string());
            }
            let mut out: Vec<u8> = Vec::with_capacity(body.len());
            let mut rest = body;
            while !rest.is_empty() {
                let (unit, tail) = unquote_char(rest, b'"')?;
                match unit {
                    Unit::Char(c) => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    Unit::Byte(b) => out.push(b),
                }
                rest = tail;
            }
            Ok(lossy_go(out))
        }
        _ => Err(SyntaxError),
    }
}

/// Reads a Go character constant such as `'a'`, `'\n'` or `'\u00e9'`, returning its code point.
pub(crate) fn unquote_char_constant(text: &str) -> Result<i64, String> {
    let body = text
        .strip_prefix('\'')
        .ok_or_else(|| SyntaxError.to_string())?;
    let (unit, tail) = unquote_char(body, b'\'').map_err(|e| e.to_string())?;
    if tail != "'" {
        return Err(format!("malformed character constant: {text}"));
    }
    Ok(match unit {
        Unit::Char(c) => i64::from(c as u32),
        Unit::Byte(b) => i64::from(b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(quote("é\u{0}\u{7f}"), "\"é\\x00\\x7f\"");
        assert_eq!(quote("\u{200b}"), "\"\\u200b\"");
        let mut s = String::new();
        quote_ascii_into(&mut s, "é");
        assert_eq!(s, "\"\\u00e9\"");
        let mut r = String::new();
        quote_rune_into(&mut r, 'x' as i64, false);
        assert_eq!(r, "'x'");
    }

    #[test]
    fn unquotes_like_go() {
        assert_eq!(unquote(r#""a\tb""#).unwrap(), "a\tb");
        assert_eq!(unquote(r#""\u00e9\x41\101""#).unwrap(), "éAA");
        assert_eq!(unquote("`a\\n\r`").unwrap(), "a\\n");
        assert!(unquote(r#""\'""#).is_err());
        assert!(unquote(r#""\q""#).is_err());
        assert!(unquote("\"\\ල\"").is_err());
        assert!(unquote_char_constant("'\\ල'").is_err());
        assert_eq!(unquote(r#""\xff""#).unwrap(), "\u{FFFD}");
        assert_eq!(unquote_char_constant("'a'").unwrap(), 97);
        assert_eq!(unquote_char_constant(r"'\n'").unwrap(), 10);
        assert!(unquote_char_constant("'ab'").is_err());
    }

    #[test]
    fn lossy_replaces_each_bad_byte() {
        assert_eq!(lossy_go(vec![b'a', 0xe4, 0xb8, b'b']), "a\u{FFFD}\u{FFFD}b");
        assert_eq!(lossy_go(vec![0xe4, 0xb8]), "\u{FFFD}\u{FFFD}");
        assert_eq!(byte_slice("世界", 0, 4), "世\u{FFFD}");
    }
}
