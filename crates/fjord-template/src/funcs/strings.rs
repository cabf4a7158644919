//! String functions: Loki's Go `strings` wrappers (`ToLower`, `Replace`, `Trim*`), its regex,
//! URL, base64 and alignment functions, and sprig's string helpers.
//!
//! Go semantics kept: case mapping is per character (simple Unicode mapping, so `ß` stays `ß`
//! in `ToUpper`); sprig's `trunc` and `substr` slice *bytes* (cut characters become U+FFFD, and
//! `substr` out of range fails like Go's slice panic); Loki's `alignLeft`/`alignRight` count
//! characters; `b64dec` returns the decoder's error text as its result, as Loki does.

use std::borrow::Cow;

use super::{Func, MAX_STRING, arg_int, arg_str, take_str};
use crate::goquote::{byte_slice, lossy_go};
use crate::goregex::GoRegex;
use crate::value::Value;

pub(crate) fn call<'a>(
    f: Func,
    args: super::Args<'a>,
    regex: Option<&Result<GoRegex, String>>,
) -> Result<Value<'a>, String> {
    let mut it = args.into_iter();
    let mut next = || it.next().unwrap_or(Value::Invalid);
    let v = match f {
        Func::ToLower | Func::Lower => Value::Str(Cow::Owned(go_lower(arg_str(&next())))),
        Func::ToUpper | Func::Upper => Value::Str(Cow::Owned(go_upper(arg_str(&next())))),
        Func::Title => Value::Str(Cow::Owned(go_title(arg_str(&next())))),
        Func::Replace => {
            let (s, old, new, n) = (next(), next(), next(), next());
            replace(take_str(s), arg_str(&old), arg_str(&new), arg_int(&n))?
        }
        Func::SprigReplace => {
            let (old, new, src) = (next(), next(), next());
            replace(take_str(src), arg_str(&old), arg_str(&new), -1)?
        }
        Func::Trim => {
            let (s, cut) = (next(), next());
            let cut = arg_str(&cut).to_string();
            map_cow(take_str(s), |x| trim_cutset(x, &cut, true, true))
        }
        Func::TrimAll => {
            let (cut, s) = (next(), next());
            let cut = arg_str(&cut).to_string();
            map_cow(take_str(s), |x| trim_cutset(x, &cut, true, true))
        }
        Func::TrimLeft => {
            let (s, cut) = (next(), next());
            let cut = arg_str(&cut).to_string();
            map_cow(take_str(s), |x| trim_cutset(x, &cut, true, false))
        }
        Func::TrimRight => {
            let (s, cut) = (next(), next());
            let cut = arg_str(&cut).to_string();
            map_cow(take_str(s), |x| trim_cutset(x, &cut, false, true))
        }
        Func::TrimPrefix => {
            let (s, p) = (next(), next());
            let p = arg_str(&p).to_string();
            map_cow(take_str(s), |x| x.strip_prefix(p.as_str()).unwrap_or(x))
        }
        Func::TrimSuffix => {
            let (s, p) = (next(), next());
            let p = arg_str(&p).to_string();
            map_cow(take_str(s), |x| x.strip_suffix(p.as_str()).unwrap_or(x))
        }
        Func::SprigTrimPrefix => {
            let (p, s) = (next(), next());
            let p = arg_str(&p).to_string();
            map_cow(take_str(s), |x| x.strip_prefix(p.as_str()).unwrap_or(x))
        }
        Func::SprigTrimSuffix => {
            let (p, s) = (next(), next());
            let p = arg_str(&p).to_string();
            map_cow(take_str(s), |x| x.strip_suffix(p.as_str()).unwrap_or(x))
        }
        Func::TrimSpace | Func::SprigTrim => map_cow(take_str(next()), str::trim),
        Func::RegexReplaceAll | Func::RegexReplaceAllLiteral => {
            let (re, s, repl) = (next(), next(), next());
            let compiled;
            let r = match regex {
                Some(r) => r,
                None => {
                    compiled = GoRegex::compile(arg_str(&re));
                    &compiled
                }
            };
            let r = r.as_ref().map_err(Clone::clone)?;
            let out = r.replace_all(
                arg_str(&s),
                arg_str(&repl),
                f == Func::RegexReplaceAllLiteral,
            );
            Value::Str(Cow::Owned(out))
        }
        Func::Count => {
            let (re, s) = (next(), next());
            let compiled;
            let r = match regex {
                Some(r) => r,
                None => {
                    compiled = GoRegex::compile(arg_str(&re));
                    &compiled
                }
            };
            let r = r.as_ref().map_err(Clone::clone)?;
            Value::Int(r.count(arg_str(&s)) as i64)
        }
        Func::Urlencode => Value::Str(Cow::Owned(query_escape(arg_str(&next())))),
        Func::Urldecode => Value::Str(Cow::Owned(query_unescape(arg_str(&next()))?)),
        Func::B64enc => Value::Str(Cow::Owned(b64_encode(arg_str(&next()).as_bytes()))),
        Func::B64dec => {
            let mut s = arg_str(&next()).to_string();
            let rem = s.len() % 4;
            if rem != 0 && rem != 1 {
                s.push_str(&"=".repeat(4 - rem));
            }
            Value::Str(Cow::Owned(match b64_decode(s.as_bytes()) {
                Ok(bytes) => lossy_go(bytes),
                Err(pos) => format!("illegal base64 data at input byte {pos}"),
            }))
        }
        Func::AlignLeft | Func::AlignRight => {
            let (count, s) = (next(), next());
            align(take_str(s), arg_int(&count), f == Func::AlignLeft)?
        }
        Func::Trunc => {
            let (c, s) = (next(), next());
            trunc(take_str(s), arg_int(&c))
        }
        Func::Substr => {
            let (start, end, s) = (next(), next(), next());
            substr(take_str(s), arg_int(&start), arg_int(&end))?
        }
        Func::Contains => {
            let (sub, s) = (next(), next());
            Value::Bool(arg_str(&s).contains(arg_str(&sub)))
        }
        Func::HasPrefix => {
            let (p, s) = (next(), next());
            Value::Bool(arg_str(&s).starts_with(arg_str(&p)))
        }
        Func::HasSuffix => {
            let (p, s) = (next(), next());
            Value::Bool(arg_str(&s).ends_with(arg_str(&p)))
        }
        Func::Indent | Func::Nindent => {
            let (n, s) = (next(), next());
            let pad = repeat(" ", arg_int(&n))?;
            let body = arg_str(&s).replace('\n', &format!("\n{pad}"));
            let mut out = String::new();
            if f == Func::Nindent {
                out.push('\n');
            }
            check_len(pad.len() + body.len())?;
            out.push_str(&pad);
            out.push_str(&body);
            Value::Str(Cow::Owned(out))
        }
        Func::Repeat => {
            let (n, s) = (next(), next());
            Value::Str(Cow::Owned(repeat(arg_str(&s), arg_int(&n))?))
        }
        _ => return Err(format!("{} is not a string function", f.name())),
    };
    Ok(v)
}

fn check_len(n: usize) -> Result<(), String> {
    if n > MAX_STRING {
        return Err(format!(
            "output of {n} bytes exceeds the limit of {MAX_STRING} bytes"
        ));
    }
    Ok(())
}

/// Applies a slicing function without copying when the input is borrowed.
fn map_cow<'a>(s: Cow<'a, str>, f: impl FnOnce(&str) -> &str) -> Value<'a> {
    Value::Str(match s {
        Cow::Borrowed(b) => Cow::Borrowed(f(b)),
        Cow::Owned(o) => Cow::Owned(f(&o).to_string()),
    })
}

/// Go's `unicode.ToLower` on one character (simple case mapping).
pub(crate) fn lower_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{130}' {
        return 'i';
    }
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Go's `unicode.ToUpper` on one character (simple case mapping).
pub(crate) fn upper_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let u = c as u32;
    // Greek letters with ypogegrammeni map to their titlecase forms in Go's simple mapping.
    let special = match u {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => Some(u + 8),
        0x1FB3 => Some(0x1FBC),
        0x1FC3 => Some(0x1FCC),
        0x1FF3 => Some(0x1FFC),
        _ => None,
    };
    if let Some(s) = special.and_then(char::from_u32) {
        return s;
    }
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Go's `unicode.ToTitle` on one character.
fn title_char(c: char) -> char {
    match c as u32 {
        0x1C4..=0x1C6 => '\u{1C5}',
        0x1C7..=0x1C9 => '\u{1C8}',
        0x1CA..=0x1CC => '\u{1CB}',
        0x1F1..=0x1F3 => '\u{1F2}',
        _ => upper_char(c),
    }
}

/// Go's `strings.ToLower`.
pub(crate) fn go_lower(s: &str) -> String {
    s.chars().map(lower_char).collect()
}

/// Go's `strings.ToUpper`.
pub(crate) fn go_upper(s: &str) -> String {
    s.chars().map(upper_char).collect()
}

/// Go's `isSeparator` for `strings.Title`.
fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphabetic() || c.is_numeric() {
        return false;
    }
    c.is_whitespace()
}

/// Go's `strings.Title`.
pub(crate) fn go_title(s: &str) -> String {
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) { title_char(c) } else { c };
            prev = c;
            out
        })
        .collect()
}

/// Go's `strings.Replace(s, old, new, n)`.
fn replace<'a>(s: Cow<'a, str>, old: &str, new: &str, n: i64) -> Result<Value<'a>, String> {
    if old == new || n == 0 {
        return Ok(Value::Str(s));
    }
    let m = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    if m == 0 {
        return Ok(Value::Str(s));
    }
    let n = if n < 0 || (m as i64) < n {
        m
    } else {
        n as usize
    };
    check_len(s.len().saturating_add(n.saturating_mul(new.len())))?;
    let mut b = String::with_capacity(s.len() + n * new.len());
    let mut start = 0;
    for i in 0..n {
        let mut j = start;
        if old.is_empty() {
            if i > 0 {
                j += s[start..].chars().next().map_or(0, char::len_utf8);
            }
        } else {
            j += s[start..].find(old).unwrap_or(0);
        }
        b.push_str(&s[start..j]);
        b.push_str(new);
        start = j + old.len();
    }
    b.push_str(&s[start..]);
    Ok(Value::Str(Cow::Owned(b)))
}

/// Go's `strings.Trim`/`TrimLeft`/`TrimRight` with a cutset.
fn trim_cutset<'s>(s: &'s str, cutset: &str, left: bool, right: bool) -> &'s str {
    if s.is_empty() || cutset.is_empty() {
        return s;
    }
    let mut out = s;
    if left {
        out = out.trim_start_matches(|c: char| cutset.contains(c));
    }
    if right {
        out = out.trim_end_matches(|c: char| cutset.contains(c));
    }
    out
}

/// Go's `strings.Repeat`, with Go's panics as errors and a size limit.
fn repeat(s: &str, count: i64) -> Result<String, String> {
    if count < 0 {
        return Err("strings: negative Repeat count".into());
    }
    let total = (s.len() as u128) * (count as u128);
    if total > MAX_STRING as u128 {
        return Err("strings: Repeat output length overflow".into());
    }
    Ok(s.repeat(count as usize))
}

/// Loki's `alignLeft`/`alignRight`: pad with spaces or cut to `count` characters.
fn align(src: Cow<'_, str>, count: i64, left: bool) -> Result<Value<'_>, String> {
    let l = src.chars().count() as i64;
    if count < 0 || count == l {
        return Ok(Value::Str(src));
    }
    let pad = count - l;
    if pad > 0 {
        let spaces = repeat(" ", pad)?;
        let out = if left {
            format!("{src}{spaces}")
        } else {
            format!("{spaces}{src}")
        };
        return Ok(Value::Str(Cow::Owned(out)));
    }
    let cut: String = if left {
        src.chars().take(count as usize).collect()
    } else {
        src.chars().skip((l - count) as usize).collect()
    };
    Ok(Value::Str(Cow::Owned(cut)))
}

/// Sprig's byte-based `trunc`.
fn trunc(s: Cow<'_, str>, c: i64) -> Value<'_> {
    let len = s.len() as i64;
    let range = if c < 0 && len + c > 0 {
        Some(((len + c) as usize, s.len()))
    } else if c >= 0 && len > c {
        Some((0, c as usize))
    } else {
        None
    };
    match range {
        None => Value::Str(s),
        Some((a, b)) => match s {
            Cow::Borrowed(x) if x.is_char_boundary(a) && x.is_char_boundary(b) => {
                Value::Str(Cow::Borrowed(&x[a..b]))
            }
            other => Value::Str(Cow::Owned(byte_slice(&other, a, b))),
        },
    }
}

/// Sprig's byte-based `substr`; out-of-range bounds fail with Go's slice panic text.
fn substr(s: Cow<'_, str>, start: i64, end: i64) -> Result<Value<'_>, String> {
    let len = s.len() as i64;
    let (a, b) = if start < 0 {
        if end < 0 {
            return Err(format!("runtime error: slice bounds out of range [:{end}]"));
        }
        if end > len {
            return Err(format!(
                "runtime error: slice bounds out of range [:{end}] with length {len}"
            ));
        }
        (0, end)
    } else if end < 0 || end > len {
        if start > len {
            return Err(format!(
                "runtime error: slice bounds out of range [{start}:{len}]"
            ));
        }
        (start, len)
    } else {
        if start > end {
            return Err(format!(
                "runtime error: slice bounds out of range [{start}:{end}]"
            ));
        }
        (start, end)
    };
    let (a, b) = (a as usize, b as usize);
    Ok(match s {
        Cow::Borrowed(x) if x.is_char_boundary(a) && x.is_char_boundary(b) => {
            Value::Str(Cow::Borrowed(&x[a..b]))
        }
        other => Value::Str(Cow::Owned(byte_slice(&other, a, b))),
    })
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

fn unhex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `url.QueryUnescape`.
pub(crate) fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || unhex(b[i + 1]).is_none() || unhex(b[i + 2]).is_none() {
                let end = (i + 3).min(b.len());
                let bad = lossy_go(b[i..end].to_vec());
                return Err(format!(
                    "invalid URL escape {}",
                    crate::goquote::quote(&bad)
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = unhex(b[i + 1]).unwrap_or(0);
                let lo = unhex(b[i + 2]).unwrap_or(0);
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(lossy_go(out))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Go's `base64.StdEncoding.EncodeToString`.
pub(crate) fn b64_encode(src: &[u8]) -> String {
    let mut out = String::with_capacity(src.len().div_ceil(3) * 4);
    for chunk in src.chunks(3) {
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        out.push(B64[(v >> 18) as usize & 63] as char);
        out.push(B64[(v >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(v >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[v as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn b64_val(c: u8) -> Option<u8> {
    B64.iter().position(|&x| x == c).map(|p| p as u8)
}

/// Go's `base64.StdEncoding.DecodeString`; the error is the input offset Go reports
/// (`illegal base64 data at input byte N`). Newlines are skipped, as Go does.
pub(crate) fn b64_decode(src: &[u8]) -> Result<Vec<u8>, usize> {
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    while si < src.len() {
        let mut dbuf = [0u8; 4];
        let mut dlen = 4;
        let mut j = 0;
        let mut trailing_err = None;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(out);
                }
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if let Some(v) = b64_val(c) {
                dbuf[j] = v;
                j += 1;
                continue;
            }
            if c == b'\n' || c == b'\r' {
                continue;
            }
            if c != b'=' {
                return Err(si - 1);
            }
            // Padding.
            match j {
                0 | 1 => return Err(si - 1),
                2 => {
                    while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                        si += 1;
                    }
                    if si == src.len() {
                        return Err(src.len());
                    }
                    if src[si] != b'=' {
                        return Err(si - 1);
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && (src[si] == b'\n' || src[si] == b'\r') {
                si += 1;
            }
            if si < src.len() {
                trailing_err = Some(si);
            }
            dlen = j;
            break;
        }
        let val = (u32::from(dbuf[0]) << 18)
            | (u32::from(dbuf[1]) << 12)
            | (u32::from(dbuf[2]) << 6)
            | u32::from(dbuf[3]);
        let bytes = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
        out.extend_from_slice(&bytes[..dlen.saturating_sub(1)]);
        if let Some(e) = trailing_err {
            return Err(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_mapping_like_go() {
        assert_eq!(go_upper("straße ǆ"), "STRAßE Ǆ");
        assert_eq!(go_lower("İSTANBUL ΣΑΣ"), "istanbul σασ");
        assert_eq!(go_title("hello wOrld_x-y ǆa"), "Hello WOrld_x-Y ǅa");
    }

    #[test]
    fn replace_like_go() {
        let r =
            |s: &str, o: &str, n: &str, c: i64| match replace(Cow::Owned(s.to_string()), o, n, c)
                .unwrap()
            {
                Value::Str(s) => s.into_owned(),
                _ => String::new(),
            };
        assert_eq!(r("blop", "blop", "bar", -1), "bar");
        assert_eq!(r("aaa", "a", "b", 2), "bba");
        assert_eq!(r("ab", "", "-", -1), "-a-b-");
        assert_eq!(r("ab", "", "-", 2), "-a-b");
    }

    #[test]
    fn url_and_base64() {
        assert_eq!(query_escape("a b/c?d=é~"), "a+b%2Fc%3Fd%3D%C3%A9~");
        assert_eq!(query_unescape("a+b%2Fc").unwrap(), "a b/c");
        assert_eq!(
            query_unescape("%zz").unwrap_err(),
            "invalid URL escape \"%zz\""
        );
        assert_eq!(
            query_unescape("ab%4").unwrap_err(),
            "invalid URL escape \"%4\""
        );
        assert_eq!(
            b64_encode(b"i'm a string, encode me!"),
            "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh"
        );
        assert_eq!(b64_encode(b"ab"), "YWI=");
        assert_eq!(b64_decode(b"Zm9vYmE=").unwrap(), b"fooba");
        assert_eq!(b64_decode(b"Zm9vYg==").unwrap(), b"foob");
        assert_eq!(b64_decode(b"Zm9v\nYg==").unwrap(), b"foob");
        assert_eq!(b64_decode(b"Zm9vY"), Err(4));
        assert_eq!(b64_decode(b"Zm!v"), Err(2));
        assert_eq!(b64_decode(b"Zg==Zg=="), Err(4));
    }

    #[test]
    fn slicing_like_sprig() {
        let s = |v: Value<'_>| match v {
            Value::Str(s) => s.into_owned(),
            _ => String::new(),
        };
        assert_eq!(s(trunc(Cow::Borrowed("blop"), 3)), "blo");
        assert_eq!(s(trunc(Cow::Borrowed("blop"), -1)), "p");
        assert_eq!(s(trunc(Cow::Borrowed("blop"), -10)), "blop");
        assert_eq!(s(trunc(Cow::Borrowed("世界"), 4)), "世\u{FFFD}");
        assert_eq!(s(substr(Cow::Borrowed("blip"), 1, 3).unwrap()), "li");
        assert_eq!(s(substr(Cow::Borrowed("blip"), 2, -1).unwrap()), "ip");
        assert_eq!(s(substr(Cow::Borrowed("blip"), -1, 2).unwrap()), "bl");
        assert_eq!(
            substr(Cow::Borrowed("abc"), 0, 5).map(s).unwrap(),
            "abc",
            "end past the length falls back to s[start:]"
        );
        assert_eq!(
            substr(Cow::Borrowed("abc"), -1, 5).unwrap_err(),
            "runtime error: slice bounds out of range [:5] with length 3"
        );
        assert_eq!(
            substr(Cow::Borrowed("abc"), 5, 9).unwrap_err(),
            "runtime error: slice bounds out of range [5:3]"
        );
        assert_eq!(
            substr(Cow::Borrowed("abc"), 2, 1).unwrap_err(),
            "runtime error: slice bounds out of range [2:1]"
        );
        assert_eq!(
            s(align(Cow::Borrowed("Hello, 世界"), 8, true).unwrap()),
            "Hello, 世"
        );
        assert_eq!(
            s(align(Cow::Borrowed("Hello, 世界"), 2, false).unwrap()),
            "世界"
        );
        assert_eq!(s(align(Cow::Borrowed("ab"), 4, false).unwrap()), "  ab");
    }
}
