//! Go string literal quoting and unquoting.
//!
//! Loki is written in Go, and its wire formats carry Go-quoted strings: a stream's label string
//! (`{app="a\"b"}`) is written with `strconv.Quote` and read with `strconv.Unquote`, and LogQL
//! string literals follow the same escapes. Matching Go byte for byte keeps label strings and
//! error messages identical to Loki's.

use std::fmt::Write;

/// Appends `s` to `out` as a double-quoted Go string literal, exactly as `strconv.Quote` does.
pub fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
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
    out.push('"');
}

/// Returns `s` as a double-quoted Go string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and
/// the ASCII space. Control and format characters and other separators are escaped.
fn is_go_printable(c: char) -> bool {
    if (c as u32) < 0x80 {
        return (' '..='~').contains(&c);
    }
    !(c.is_control()
        || matches!(c as u32,
            0x80..=0x9f | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
            | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000
            | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xa0 | 0x1680)
        || (0xd800..=0xdfff).contains(&(c as u32)))
}

/// Why a quoted string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnquoteError {
    #[error("invalid syntax")]
    InvalidSyntax,
}

/// Reads a Go string literal: `"…"` with escapes, `` `…` `` raw, or `'…'` (PromQL also accepts
/// single quotes for label values). The whole input must be the literal.
pub fn unquote(s: &str) -> Result<String, UnquoteError> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 {
        return Err(UnquoteError::InvalidSyntax);
    }
    let quote = bytes[0];
    if bytes[bytes.len() - 1] != quote {
        return Err(UnquoteError::InvalidSyntax);
    }
    let inner = &s[1..s.len() - 1];
    match quote {
        b'`' => {
            if inner.contains('`') {
                return Err(UnquoteError::InvalidSyntax);
            }
            Ok(inner.replace('\r', ""))
        }
        b'"' | b'\'' => unescape(inner, quote as char),
        _ => Err(UnquoteError::InvalidSyntax),
    }
}

/// Interprets Go escape sequences in the body of a quoted literal. `\x` and octal escapes give
/// raw bytes, which may combine into UTF-8 sequences; invalid UTF-8 becomes U+FFFD.
fn unescape(inner: &str, quote: char) -> Result<String, UnquoteError> {
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    let mut utf8 = [0u8; 4];
    let mut push_char =
        |out: &mut Vec<u8>, c: char| out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    while let Some(c) = chars.next() {
        if c == quote || c == '\n' {
            return Err(UnquoteError::InvalidSyntax);
        }
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let esc = chars.next().ok_or(UnquoteError::InvalidSyntax)?;
        let decoded = match esc {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' => '\\',
            '\'' | '"' if esc == quote => esc,
            'x' => {
                out.push(take_hex(&mut chars, 2)? as u8);
                continue;
            }
            'u' | 'U' => {
                let v = take_hex(&mut chars, if esc == 'u' { 4 } else { 8 })?;
                char::from_u32(v).ok_or(UnquoteError::InvalidSyntax)?
            }
            '0'..='7' => {
                let mut v = esc.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|c| c.to_digit(8))
                        .ok_or(UnquoteError::InvalidSyntax)?;
                    v = v * 8 + d;
                }
                out.push(u8::try_from(v).map_err(|_| UnquoteError::InvalidSyntax)?);
                continue;
            }
            _ => return Err(UnquoteError::InvalidSyntax),
        };
        push_char(&mut out, decoded);
    }
    Ok(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn take_hex(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    n: usize,
) -> Result<u32, UnquoteError> {
    let mut v = 0u32;
    for _ in 0..n {
        let d = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or(UnquoteError::InvalidSyntax)?;
        v = v * 16 + d;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("plain"), r#""plain""#);
        assert_eq!(quote("a\"b\\c\n\t"), r#""a\"b\\c\n\t""#);
        assert_eq!(quote("\x01"), r#""\x01""#);
        assert_eq!(quote("héllo ✓"), "\"héllo ✓\"");
        assert_eq!(quote("\u{200b}"), r#""\u200b""#);
    }

    #[test]
    fn unquotes_all_forms() {
        assert_eq!(unquote(r#""a\"b\n""#).unwrap(), "a\"b\n");
        assert_eq!(unquote("`raw\\n`").unwrap(), "raw\\n");
        assert_eq!(unquote("'single'").unwrap(), "single");
        assert_eq!(unquote(r#""\u00e9\x41\101""#).unwrap(), "éAA");
        assert_eq!(unquote(r#""\xc3\xa9""#).unwrap(), "é");
        assert!(unquote(r#""bad\q""#).is_err());
        assert!(unquote(r#""unterminated"#).is_err());
        assert!(unquote("\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn quote_then_unquote_round_trips(s in ".*") {
            proptest::prop_assert_eq!(unquote(&quote(&s)).unwrap(), s);
        }

        #[test]
        fn unquote_never_panics(s in ".*") {
            let _ = unquote(&s);
        }
    }
}
