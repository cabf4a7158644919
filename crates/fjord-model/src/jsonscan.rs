//! A lenient JSON scanner with the exact behaviour of the `jsonparser` library Loki's `| json`
//! parser is built on.
//!
//! It is not a validating parser: it walks an object's keys and hands each value over as raw
//! bytes with a type, skipping nested blocks by bracket counting. What it accepts, what it
//! rejects, and the text of its errors all show up in query results (`__error_details__`), so
//! they follow the library exactly rather than the JSON specification.

use std::borrow::Cow;
use std::fmt;

/// The type of a scanned value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    NotExist,
    String,
    Number,
    Object,
    Array,
    Boolean,
    Null,
    Unknown,
}

/// How deep a walk that descends into nested objects (`| json`, which flattens them) may go:
/// the library's Go callers recurse on a stack that grows, Rust's does not, so deeper lines get
/// [`JsonError::TooDeep`] instead of the flattened label. Log lines nest a handful deep; a cap
/// of 128 (serde_json's default) also bounds the rescanning of nested blocks, which costs the
/// line's length at every level.
pub const MAX_OBJECT_DEPTH: usize = 128;

/// The library's errors; `Display` gives its exact messages. `TooDeep` is Fjord's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    KeyPathNotFound,
    UnknownValueType,
    MalformedJson,
    MalformedString,
    MalformedArray,
    MalformedObject,
    MalformedValue,
    MalformedStringEscape,
    TooDeep,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonError::KeyPathNotFound => "Key path not found",
            JsonError::UnknownValueType => "Unknown value type",
            JsonError::MalformedJson => "Malformed JSON error",
            JsonError::MalformedString => "Value is string, but can't find closing '\"' symbol",
            JsonError::MalformedArray => "Value is array, but can't find closing ']' symbol",
            JsonError::MalformedObject => {
                "Value looks like object, but can't find closing '}' symbol"
            }
            JsonError::MalformedValue => {
                "Value looks like Number/Boolean/None, but can't find its end: ',' or '}' symbol"
            }
            JsonError::MalformedStringEscape => {
                "Encountered an invalid escape sequence in a string"
            }
            JsonError::TooDeep => {
                return write!(f, "Objects nest more than {MAX_OBJECT_DEPTH} deep");
            }
        })
    }
}

fn token_end(data: &[u8]) -> usize {
    data.iter()
        .position(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .unwrap_or(data.len())
}

/// Position of the next non-whitespace byte.
fn next_token(data: &[u8]) -> Option<usize> {
    data.iter()
        .position(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
}

/// End (exclusive, after the closing quote) of a string whose opening quote was consumed, and
/// whether it contains escapes.
fn string_end(data: &[u8]) -> (Option<usize>, bool) {
    let mut escaped = false;
    for (i, &c) in data.iter().enumerate() {
        if c == b'"' {
            if !escaped {
                return (Some(i + 1), false);
            }
            let mut j = i as isize - 1;
            loop {
                if j < 0 || data[j as usize] != b'\\' {
                    return (Some(i + 1), true);
                }
                j -= 1;
                if j < 0 || data[j as usize] != b'\\' {
                    break;
                }
                j -= 1;
            }
        } else if c == b'\\' {
            escaped = true;
        }
    }
    (None, escaped)
}

/// End (exclusive) of the block starting at `data[0]`.
fn block_end(data: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut level = 0i32;
    let mut i = 0;
    while i < data.len() {
        let c = data[i];
        if c == b'"' {
            let (se, _) = string_end(&data[i + 1..]);
            i += se?;
        } else if c == open {
            level += 1;
        } else if c == close {
            level -= 1;
            if level == 0 {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

/// The value at `data[offset..]`: its bytes (strings with quotes), type and end offset.
fn get_type(data: &[u8], offset: usize) -> Result<(&[u8], ValueType, usize), JsonError> {
    match data[offset] {
        b'"' => match string_end(&data[offset + 1..]).0 {
            Some(idx) => Ok((
                &data[offset..offset + idx + 1],
                ValueType::String,
                offset + idx + 1,
            )),
            None => Err(JsonError::MalformedString),
        },
        b'[' => match block_end(&data[offset..], b'[', b']') {
            Some(e) => Ok((&data[offset..offset + e], ValueType::Array, offset + e)),
            None => Err(JsonError::MalformedArray),
        },
        b'{' => match block_end(&data[offset..], b'{', b'}') {
            Some(e) => Ok((&data[offset..offset + e], ValueType::Object, offset + e)),
            None => Err(JsonError::MalformedObject),
        },
        first => {
            let end = token_end(&data[offset..]);
            let value = &data[offset..offset + end];
            let t = match first {
                b't' | b'f' if value == b"true" || value == b"false" => ValueType::Boolean,
                b'u' | b'n' if value == b"null" => ValueType::Null,
                b'0'..=b'9' | b'-' => ValueType::Number,
                _ => return Err(JsonError::UnknownValueType),
            };
            Ok((value, t, offset + end))
        }
    }
}

/// The value nearest the start of `data`: bytes (strings without quotes), type and the offset
/// just past it.
pub fn get_value(data: &[u8]) -> Result<(&[u8], ValueType, usize), JsonError> {
    let offset = next_token(data).ok_or(JsonError::MalformedJson)?;
    let (v, t, end) = get_type(data, offset)?;
    let v = if t == ValueType::String {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Ok((v, t, end))
}

/// The value at a path of keys (`"[0]"` selects an array element), as `jsonparser.Get`.
pub fn get<'a>(data: &'a [u8], keys: &[&str]) -> Result<(&'a [u8], ValueType), JsonError> {
    let offset = if keys.is_empty() {
        0
    } else {
        search_keys(data, keys).ok_or(JsonError::KeyPathNotFound)?
    };
    let (v, t, _) = get_value(&data[offset..])?;
    Ok((v, t))
}

fn search_keys(data: &[u8], keys: &[&str]) -> Option<usize> {
    // Signed like the library's ints: stray closing braces drive the level negative.
    let mut key_level = 0isize;
    let mut level = 0isize;
    let mut i = 0usize;
    let lk = keys.len();
    let mut last_matched = true;
    if lk == 0 {
        return Some(0);
    }
    while i < data.len() {
        match data[i] {
            b'"' => {
                i += 1;
                let key_begin = i;
                let (end, escaped) = string_end(&data[i..]);
                i += end?;
                let key_end = i - 1;
                i += next_token(&data[i..])?;
                if data[i] == b':' {
                    if level < 1 {
                        return None;
                    }
                    let key = &data[key_begin..key_end];
                    let key: Cow<[u8]> = if escaped {
                        unescape(key).ok()?
                    } else {
                        Cow::Borrowed(key)
                    };
                    if level <= lk as isize {
                        if *key == *keys[(level - 1) as usize].as_bytes() {
                            last_matched = true;
                            if key_level == level - 1 {
                                key_level += 1;
                                if key_level == lk as isize {
                                    return Some(i + 1);
                                }
                            }
                        } else {
                            last_matched = false;
                        }
                    } else {
                        return None;
                    }
                } else {
                    i -= 1;
                }
            }
            b'{' => {
                if !last_matched {
                    let end = block_end(&data[i..], b'{', b'}')?;
                    i += end - 1;
                } else {
                    level += 1;
                }
            }
            b'}' => {
                level -= 1;
                if level == key_level {
                    key_level -= 1;
                }
            }
            b'[' => {
                let at = usize::try_from(level).ok().filter(|_| key_level == level);
                if let Some(k) = at.and_then(|l| keys.get(l)).filter(|k| k.starts_with('[')) {
                    let level = level as usize;
                    if k.len() < 3 || !k.ends_with(']') {
                        return None;
                    }
                    let idx: usize = k[1..k.len() - 1].parse().ok()?;
                    let (found, value_offset) = array_element(&data[i..], idx)?;
                    let sub = search_keys(found, &keys[level + 1..])?;
                    return Some(i + value_offset + sub);
                } else {
                    let skip = block_end(&data[i..], b'[', b']')?;
                    i += skip - 1;
                }
            }
            b':' => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Element `idx` of the array starting at `data[0]`, with strings keeping their quotes, and
/// its offset in `data`.
fn array_element(data: &[u8], idx: usize) -> Option<(&[u8], usize)> {
    let mut offset = next_token(data)? + 1;
    offset += next_token(&data[offset..])?;
    if data[offset] == b']' {
        return None;
    }
    let mut cur = 0;
    loop {
        let start = offset + next_token(&data[offset..])?;
        let (v, _, end) = get_type(data, start).ok()?;
        if cur == idx {
            return Some((v, start));
        }
        cur += 1;
        offset = end;
        offset += next_token(&data[offset..])?;
        match data[offset] {
            b']' => return None,
            b',' => offset += 1,
            _ => return None,
        }
    }
}

/// Calls `f(key, value, type)` for each member of the object at the start of `data`, as
/// `jsonparser.ObjectEach`. `f` may stop the walk by returning `Err(stop)`, which is passed on.
pub fn object_each<E: From<JsonError>>(
    data: &[u8],
    mut f: impl FnMut(&[u8], &[u8], ValueType) -> Result<(), E>,
) -> Result<(), E> {
    let mut offset = next_token(data).ok_or(JsonError::MalformedObject)?;
    if data[offset] != b'{' {
        return Err(JsonError::MalformedObject.into());
    }
    offset += 1;
    offset += next_token(&data[offset..]).ok_or(JsonError::MalformedJson)?;
    if data[offset] == b'}' {
        return Ok(());
    }
    while offset < data.len() {
        match data[offset] {
            b'"' => offset += 1,
            b'}' => return Ok(()),
            _ => return Err(JsonError::MalformedObject.into()),
        }
        let (end, escaped) = string_end(&data[offset..]);
        let end = end.ok_or(JsonError::MalformedJson)?;
        let raw_key = &data[offset..offset + end - 1];
        offset += end;
        let key: Cow<[u8]> = if escaped {
            unescape(raw_key).map_err(|_| JsonError::MalformedStringEscape)?
        } else {
            Cow::Borrowed(raw_key)
        };
        offset += next_token(&data[offset..]).ok_or(JsonError::MalformedJson)?;
        if data[offset] != b':' {
            return Err(JsonError::MalformedJson.into());
        }
        offset += 1;
        let (value, t, end) = get_value(&data[offset..])?;
        f(&key, value, t)?;
        offset += end;
        offset += next_token(&data[offset..]).ok_or(JsonError::MalformedArray)?;
        match data[offset] {
            b'}' => return Ok(()),
            b',' => offset += 1,
            _ => return Err(JsonError::MalformedObject.into()),
        }
        offset += next_token(&data[offset..]).ok_or(JsonError::MalformedArray)?;
    }
    Err(JsonError::MalformedObject.into())
}

fn hex(c: u8) -> Option<u32> {
    (c as char).to_digit(16)
}

fn unicode_escape(s: &[u8]) -> Option<u32> {
    if s.len() < 6 {
        return None;
    }
    Some(hex(s[2])? << 12 | hex(s[3])? << 8 | hex(s[4])? << 4 | hex(s[5])?)
}

/// Interprets JSON escapes; invalid sequences are an error, surrogate pairs are combined, and
/// values that are not valid characters become U+FFFD.
pub fn unescape(s: &[u8]) -> Result<Cow<'_, [u8]>, JsonError> {
    let Some(first) = memchr::memchr(b'\\', s) else {
        return Ok(Cow::Borrowed(s));
    };
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while i < s.len() {
        if s[i] != b'\\' {
            let next = memchr::memchr(b'\\', &s[i..]).map_or(s.len(), |p| i + p);
            out.extend_from_slice(&s[i..next]);
            i = next;
            continue;
        }
        let e = *s.get(i + 1).ok_or(JsonError::MalformedStringEscape)?;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
            continue;
        }
        if e != b'u' {
            return Err(JsonError::MalformedStringEscape);
        }
        let r = unicode_escape(&s[i..]).ok_or(JsonError::MalformedStringEscape)?;
        let (cp, used) = if r <= 0xFFFF && !(0xD800..=0xDFFF).contains(&r) {
            (r, 6)
        } else {
            let r2 = unicode_escape(&s[i + 6..]).ok_or(JsonError::MalformedStringEscape)?;
            if r2 < 0xDC00 {
                return Err(JsonError::MalformedStringEscape);
            }
            (
                0x10000 + ((r.wrapping_sub(0xD800)) << 10) + r2.wrapping_sub(0xDC00),
                12,
            )
        };
        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        i += used;
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &str) -> Result<Vec<(String, String, ValueType)>, JsonError> {
        let mut out = Vec::new();
        object_each::<JsonError>(s.as_bytes(), |k, v, t| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
                t,
            ));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn walks_objects_like_jsonparser() {
        let m = members(r#" {"a":"x\"y", "n": -1.5e3, "t":true, "z":null, "arr":[1,{"b":2}], "o":{"k":"v"}} trailing"#).unwrap();
        assert_eq!(m[0], ("a".into(), "x\\\"y".into(), ValueType::String));
        assert_eq!(m[1], ("n".into(), "-1.5e3".into(), ValueType::Number));
        assert_eq!(m[2].2, ValueType::Boolean);
        assert_eq!(m[3].2, ValueType::Null);
        assert_eq!(
            m[4],
            ("arr".into(), "[1,{\"b\":2}]".into(), ValueType::Array)
        );
        assert_eq!(
            m[5],
            ("o".into(), "{\"k\":\"v\"}".into(), ValueType::Object)
        );
    }

    #[test]
    fn errors_have_the_librarys_texts() {
        assert_eq!(
            members("not json").unwrap_err().to_string(),
            "Value looks like object, but can't find closing '}' symbol"
        );
        assert_eq!(
            members(r#"{"a":"unterminated"#).unwrap_err().to_string(),
            "Value is string, but can't find closing '\"' symbol"
        );
        assert_eq!(
            members(r#"{"a":{"b":1}"#).unwrap_err(),
            JsonError::MalformedArray
        );
        assert_eq!(
            members(r#"{"a":{"b":1"#).unwrap_err(),
            JsonError::MalformedObject
        );
        assert_eq!(
            members(r#"{"a":xyz}"#).unwrap_err(),
            JsonError::UnknownValueType
        );
        // Partial results before the error are kept by the caller.
        let mut seen = 0;
        let r = object_each::<JsonError>(br#"{"a":1,"b":"#, |_, _, _| {
            seen += 1;
            Ok(())
        });
        assert!(r.is_err());
        assert_eq!(seen, 1);
    }

    #[test]
    fn paths() {
        let doc = br#"{"a":{"b":[10,{"c":"deep"}]},"x y":"sp"}"#;
        assert_eq!(
            get(doc, &["a", "b", "[0]"]).unwrap(),
            (&b"10"[..], ValueType::Number)
        );
        assert_eq!(
            get(doc, &["a", "b", "[1]", "c"]).unwrap(),
            (&b"deep"[..], ValueType::String)
        );
        assert_eq!(get(doc, &["x y"]).unwrap().0, b"sp");
        assert_eq!(
            get(doc, &["a", "missing"]).unwrap_err(),
            JsonError::KeyPathNotFound
        );
        assert_eq!(get(doc, &["a"]).unwrap().1, ValueType::Object);
    }

    #[test]
    fn unescapes() {
        assert_eq!(
            &*unescape(br#"a\"b\\c\/\n\u00e9\ud83d\ude00"#).unwrap(),
            "a\"b\\c/\né😀".as_bytes()
        );
        assert!(unescape(br#"\x"#).is_err());
        assert_eq!(&*unescape(b"plain").unwrap(), b"plain");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = object_each::<JsonError>(&s, |_, _, _| Ok(()));
            let _ = get(&s, &["a", "[0]", "b"]);
            let _ = unescape(&s);
        }

        #[test]
        fn never_panics_on_jsonish(s in r#"[{}\[\]":,a-c0-9\\ ]{0,40}"#) {
            let _ = object_each::<JsonError>(s.as_bytes(), |_, _, _| Ok(()));
            let _ = get(s.as_bytes(), &["a", "[1]"]);
        }

        /// The scans find exactly what the definition says: a string ends at the first quote
        /// after an even run of backslashes; a block at the close that balances its opens,
        /// quoted text aside.
        #[test]
        fn scans_match_their_definition(s in r#"[{}"a\\ ]{0,40}"#) {
            let b = s.as_bytes();
            let by_definition = b.iter().enumerate().find_map(|(i, &c)| {
                let run = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
                (c == b'"' && run % 2 == 0).then_some(i + 1)
            });
            let escaped = b[..by_definition.unwrap_or(b.len())].contains(&b'\\');
            proptest::prop_assert_eq!(string_end(b), (by_definition, escaped));

            let mut level = 0i32;
            let mut i = 0;
            let mut block = None;
            while i < b.len() && block.is_none() {
                match b[i] {
                    b'"' => match string_end(&b[i + 1..]).0 {
                        Some(e) => i += e,
                        None => break,
                    },
                    b'{' => level += 1,
                    b'}' => {
                        level -= 1;
                        if level == 0 {
                            block = Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            proptest::prop_assert_eq!(block_end(b, b'{', b'}'), block);
        }
    }
}
