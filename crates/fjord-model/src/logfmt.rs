//! A logfmt scanner with exactly the tokenizing rules of Loki's decoder (`key=value`,
//! `key="quoted \"value\""`, bare `key`), shared by the `| logfmt` parser, the agent's logfmt
//! stage and log-level discovery at ingest.
//!
//! Keys and unescaped values borrow from the line; only quoted values with escapes allocate.

use std::borrow::Cow;

/// One scanned pair. `value` is `None` for a bare key or `key=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<Cow<'a, [u8]>>,
}

/// A syntax problem at a 1-based byte position, worded as Loki words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: usize,
    pub msg: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "logfmt syntax error at pos {} : {}", self.pos, self.msg)
    }
}

/// Iterates over the pairs of one line.
pub struct Decoder<'a> {
    line: &'a [u8],
    pos: usize,
    err: Option<SyntaxError>,
}

/// The result of one scan step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan<'a> {
    /// A pair was read (the key may still be absent, as in Loki).
    Pair(Pair<'a>),
    /// A malformed pair was skipped; [`Decoder::error`] says why.
    Malformed,
    /// End of line.
    End,
}

impl<'a> Decoder<'a> {
    pub fn new(line: &'a [u8]) -> Self {
        Decoder {
            line,
            pos: 0,
            err: None,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// The part of the line not scanned yet: every later pair lies in it.
    pub fn rest(&self) -> &'a [u8] {
        self.line.get(self.pos..).unwrap_or_default()
    }

    /// The last syntax error seen.
    pub fn error(&self) -> Option<&SyntaxError> {
        self.err.as_ref()
    }

    fn fail(&mut self, msg: String) {
        self.err = Some(SyntaxError {
            pos: self.pos + 1,
            msg,
        });
    }

    fn unexpected(&mut self, c: u8) {
        self.fail(format!("unexpected {}", go_quote_byte(c)));
    }

    fn skip_value(&mut self) -> Scan<'a> {
        let line = self.line;
        match line[self.pos..].iter().position(|&c| c <= b' ') {
            Some(p) => self.pos += p,
            None => self.pos = line.len(),
        }
        Scan::Malformed
    }

    fn key_has_invalid_utf8(key: &[u8], multibyte: bool) -> bool {
        multibyte && String::from_utf8_lossy(key).contains('\u{fffd}')
    }

    /// Scans the next pair.
    pub fn next_pair(&mut self) -> Scan<'a> {
        let line = self.line;
        // Skip to the first byte above space.
        match line[self.pos..].iter().position(|&c| c > b' ') {
            Some(p) => self.pos += p,
            None => {
                self.pos = line.len();
                return Scan::End;
            }
        }
        let start = self.pos;
        let mut multibyte = false;
        let mut key: Option<&'a [u8]> = None;
        let mut i = self.pos;
        loop {
            if i >= line.len() {
                self.pos = line.len();
                if self.pos > start {
                    let k = &line[start..self.pos];
                    if Self::key_has_invalid_utf8(k, multibyte) {
                        self.fail("invalid key".into());
                        return Scan::Malformed;
                    }
                    key = Some(k);
                }
                return Scan::Pair(Pair { key, value: None });
            }
            let c = line[i];
            if c == b'=' {
                self.pos = i;
                if self.pos > start {
                    let k = &line[start..self.pos];
                    if Self::key_has_invalid_utf8(k, multibyte) {
                        self.fail("invalid key".into());
                        return self.skip_value();
                    }
                    key = Some(k);
                }
                if key.is_none() {
                    self.unexpected(c);
                    return self.skip_value();
                }
                break;
            } else if c == b'"' {
                self.pos = i;
                self.unexpected(c);
                return self.skip_value();
            } else if c <= b' ' {
                self.pos = i;
                if self.pos > start {
                    let k = &line[start..self.pos];
                    if Self::key_has_invalid_utf8(k, multibyte) {
                        self.fail("invalid key".into());
                        return Scan::Malformed;
                    }
                    key = Some(k);
                }
                return Scan::Pair(Pair { key, value: None });
            } else if c >= 0x80 {
                multibyte = true;
            }
            i += 1;
        }
        // After '='.
        self.pos += 1;
        if self.pos >= line.len() {
            return Scan::Pair(Pair { key, value: None });
        }
        let c = line[self.pos];
        if c <= b' ' {
            return Scan::Pair(Pair { key, value: None });
        }
        if c == b'"' {
            return self.quoted_value(key);
        }
        let start = self.pos;
        for (p, &c) in line[start..].iter().enumerate() {
            if c == b'=' || c == b'"' {
                self.pos = start + p;
                self.unexpected(c);
                return self.skip_value();
            }
            if c <= b' ' {
                self.pos = start + p;
                let value = (self.pos > start).then(|| Cow::Borrowed(&line[start..self.pos]));
                return Scan::Pair(Pair { key, value });
            }
        }
        self.pos = line.len();
        let value = (self.pos > start).then(|| Cow::Borrowed(&line[start..]));
        Scan::Pair(Pair { key, value })
    }

    fn quoted_value(&mut self, key: Option<&'a [u8]>) -> Scan<'a> {
        let line = self.line;
        let start = self.pos;
        let mut has_esc = false;
        let mut esc = false;
        for (p, &c) in line[start + 1..].iter().enumerate() {
            if esc {
                esc = false;
            } else if c == b'\\' {
                has_esc = true;
                esc = true;
            } else if c == b'"' {
                self.pos = start + p + 2;
                if has_esc {
                    match unquote_json_bytes(&line[start..self.pos]) {
                        Some(v) => {
                            return Scan::Pair(Pair {
                                key,
                                value: Some(v),
                            });
                        }
                        None => {
                            self.fail("invalid quoted value".into());
                            return Scan::Malformed;
                        }
                    }
                }
                let (s, e) = (start + 1, self.pos - 1);
                let value = (e > s).then(|| Cow::Borrowed(&line[s..e]));
                return Scan::Pair(Pair { key, value });
            }
        }
        self.pos = line.len();
        self.fail("unterminated quoted value".into());
        Scan::Malformed
    }
}

/// Go's `%q` of a byte: `'='`, `'"'`.
fn go_quote_byte(c: u8) -> String {
    match c {
        b'"' => "'\"'".to_string(),
        b'\'' => "'\\''".to_string(),
        c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        c => format!("'\\x{c:02x}'"),
    }
}

/// Unquotes a JSON-style quoted string (with the quotes); `None` if malformed. Invalid UTF-8 is
/// replaced, as Go's decoder does.
fn unquote_json_bytes(s: &[u8]) -> Option<Cow<'_, [u8]>> {
    if s.len() < 2 || s[0] != b'"' || s[s.len() - 1] != b'"' {
        return None;
    }
    let s = &s[1..s.len() - 1];
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut r = 0;
    while r < s.len() {
        let c = s[r];
        match c {
            b'\\' => {
                r += 1;
                let e = *s.get(r)?;
                match e {
                    b'"' | b'\\' | b'/' | b'\'' => out.push(e),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let cp = hex4(s.get(r + 1..r + 5)?)?;
                        r += 4;
                        let ch = if (0xD800..0xDC00).contains(&cp) {
                            let low = s
                                .get(r + 1..r + 7)
                                .filter(|l| l.starts_with(b"\\u"))
                                .and_then(|l| hex4(&l[2..]));
                            match low.filter(|l| (0xDC00..0xE000).contains(l)) {
                                Some(lo) => {
                                    r += 6;
                                    char::from_u32(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00))
                                        .unwrap_or('\u{fffd}')
                                }
                                None => '\u{fffd}',
                            }
                        } else {
                            char::from_u32(cp).unwrap_or('\u{fffd}')
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return None,
                }
                r += 1;
            }
            b'"' => return None,
            _ => {
                out.push(c);
                r += 1;
            }
        }
    }
    Some(Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s.into_bytes(),
        Err(e) => String::from_utf8_lossy(e.as_bytes())
            .into_owned()
            .into_bytes(),
    }))
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() != 4 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(line: &str) -> Vec<(Option<String>, Option<String>)> {
        let mut d = Decoder::new(line.as_bytes());
        let mut out = Vec::new();
        loop {
            match d.next_pair() {
                Scan::End => break,
                Scan::Malformed => out.push((None, Some("<malformed>".to_string()))),
                Scan::Pair(p) => out.push((
                    p.key.map(|k| String::from_utf8_lossy(k).into_owned()),
                    p.value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                )),
            }
            if d.at_end() {
                break;
            }
        }
        out
    }

    fn kv(k: &str, v: Option<&str>) -> (Option<String>, Option<String>) {
        (Some(k.to_string()), v.map(|s| s.to_string()))
    }

    #[test]
    fn scans_like_loki() {
        assert_eq!(
            scan(r#"level=info msg="hello \"world\"" flag empty= dur=1.5s"#),
            vec![
                kv("level", Some("info")),
                kv("msg", Some("hello \"world\"")),
                kv("flag", None),
                kv("empty", None),
                kv("dur", Some("1.5s"))
            ]
        );
        assert_eq!(
            scan(r#"a="unterminated"#),
            vec![(None, Some("<malformed>".into()))]
        );
        assert_eq!(
            scan("a=b=c d=e"),
            vec![(None, Some("<malformed>".into())), kv("d", Some("e"))]
        );
        assert_eq!(
            scan(r#"a="\u00e9\ud83d\ude00""#),
            vec![kv("a", Some("é😀"))]
        );
        assert_eq!(
            scan("=x y=1"),
            vec![(None, Some("<malformed>".into())), kv("y", Some("1"))]
        );
    }

    #[test]
    fn reports_position() {
        let mut d = Decoder::new(b"a=b\"c");
        assert_eq!(d.next_pair(), Scan::Malformed);
        assert_eq!(
            d.error().unwrap().to_string(),
            "logfmt syntax error at pos 4 : unexpected '\"'"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let mut d = Decoder::new(&s);
            for _ in 0..100 {
                if d.next_pair() == Scan::End || d.at_end() { break; }
            }
        }
    }
}
