//! A small JSON writer for response bodies, producing what Loki's Go encoder produces.
//!
//! Query responses can hold millions of lines, so they are written straight into a byte buffer
//! instead of through an intermediate tree. Strings are escaped as Go's `encoding/json` does
//! (HTML-safe `\u003c`, `\u003e`, `\u0026`; invalid UTF-8 becomes U+FFFD); sample values are
//! Go's shortest float text (`"NaN"`, `"+Inf"`); sample times are seconds with at most three
//! decimals.

use std::fmt::Write as _;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes that [`write_str`] must look at: everything escaped, and every byte from 0x80 up
/// (multi-byte sequences, validated). Runs of other bytes (DEL included, which Go leaves as it
/// is) are copied as they are.
const SPECIAL: [bool; 256] = {
    let mut special = [false; 256];
    let mut b = 0;
    while b < 256 {
        special[b] = b < 0x20 || b >= 0x80 || matches!(b as u8, b'"' | b'\\' | b'<' | b'>' | b'&');
        b += 1;
    }
    special
};

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        // Skip the plain run with one table lookup per byte.
        while i < s.len() && !SPECIAL[s[i] as usize] {
            i += 1;
        }
        let Some(&b) = s.get(i) else {
            break;
        };
        if b < 0x80 {
            out.extend_from_slice(&s[start..i]);
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                // Other control bytes, and `<`, `>`, `&` (HTML-safe, as Go).
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 15) as usize],
                ]),
            }
            i += 1;
            start = i;
            continue;
        }
        // Multi-byte sequence: validate, and escape U+2028/U+2029 like Go.
        let width = utf8_width(&s[i..]);
        if width == 0 {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(b"\\ufffd");
            i += 1;
            start = i;
            continue;
        }
        if width == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9)
        {
            out.extend_from_slice(&s[start..i]);
            out.extend_from_slice(if s[i + 2] == 0xA8 {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            i += 3;
            start = i;
            continue;
        }
        i += width;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Length of the valid UTF-8 sequence at the start of `s`, or 0 if invalid.
fn utf8_width(s: &[u8]) -> usize {
    let w = match s[0] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return 0,
    };
    if s.len() < w {
        return 0;
    }
    match std::str::from_utf8(&s[..w]) {
        Ok(_) => w,
        Err(_) => 0,
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with Prometheus' `+Inf`/`-Inf`/`NaN`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Appends a sample value as a JSON string.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    out.push(b'"');
    out.extend_from_slice(format_value(v).as_bytes());
    out.push(b'"');
}

/// Appends a time in ns as a JSON number of seconds with millisecond precision, as
/// Prometheus' `model.Time` marshals (`1700000000`, `1700000000.5`).
pub fn write_time_secs(out: &mut Vec<u8>, ns: i64) {
    let ms = ns.div_euclid(1_000_000);
    let (secs, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let mut s = String::new();
    if frac == 0 {
        let _ = write!(s, "{secs}");
    } else {
        // model.Time renders via strconv.FormatFloat(float64(t)/1000, 'f', -1, 64).
        let f = ms as f64 / 1000.0;
        let _ = write!(s, "{f}");
    }
    out.extend_from_slice(s.as_bytes());
}

/// Appends an integer as a JSON string (`"1700000000123456789"`).
pub fn write_int_str(out: &mut Vec<u8>, v: i64) {
    out.push(b'"');
    out.extend_from_slice(v.to_string().as_bytes());
    out.push(b'"');
}

/// Appends `{"k":"v",…}` for pairs in the given order.
pub fn write_label_map<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    out.push(b'{');
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k.as_bytes());
        out.push(b':');
        write_str(out, v.as_bytes());
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        let mut out = Vec::new();
        write_str(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_like_go() {
        assert_eq!(s(b"plain"), r#""plain""#);
        assert_eq!(s(b"a\"b\\c\n\t<x>&"), r#""a\"b\\c\n\t\u003cx\u003e\u0026""#);
        assert_eq!(s(b"\x01\x1b[31m"), r#""\u0001\u001b[31m""#);
        assert_eq!(s(b"a\x7fb"), "\"a\x7fb\"");
        assert_eq!(s("héllo ✓".as_bytes()), "\"héllo ✓\"");
        assert_eq!(s(b"bad\xff\xfe!"), r#""bad\ufffd\ufffd!""#);
        assert_eq!(s("\u{2028}".as_bytes()), r#""\u2028""#);
        let parsed: String = serde_json::from_str(&s(b"a\xffb\x00")).unwrap();
        assert_eq!(parsed, "a\u{fffd}b\u{0}");
    }

    proptest::proptest! {
        /// Any text reads back unchanged, with nothing HTML-unsafe or raw control left in it.
        #[test]
        fn text_round_trips_escaped(text in "(\\PC|[<>&\"\\\\\u{0}-\u{1f}\u{7f}\u{2028}\u{2029}])*") {
            let out = s(text.as_bytes());
            let back: String = serde_json::from_str(&out).unwrap();
            proptest::prop_assert_eq!(&back, &text);
            proptest::prop_assert!(!out.bytes().any(|b| b < 0x20 || b"<>&".contains(&b)), "{}", out);
        }
    }

    #[test]
    fn values_and_times() {
        assert_eq!(format_value(7.823333333333333), "7.823333333333333");
        assert_eq!(format_value(-1500.0), "-1500");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1e-7), "0.0000001");
        let mut out = Vec::new();
        write_time_secs(&mut out, 1_705_314_599_999_000_000);
        out.push(b' ');
        write_time_secs(&mut out, 1_705_316_400_000_000_000);
        out.push(b' ');
        write_time_secs(&mut out, 1_705_316_400_500_600_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1705314599.999 1705316400 1705316400.5"
        );
    }
}
