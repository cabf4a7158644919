//! Go `regexp` (RE2 syntax) on top of the `regex` crate.
//!
//! The two dialects differ in ways that change results: Go's `\d`, `\w`, `\s` and `\b` are
//! ASCII-only while Rust's are Unicode, Go's `\s` excludes `\v`, Go accepts `\Q…\E`, and inside
//! a class Go treats `[`, `&&` and `~~` literally. A Go pattern is rewritten into an
//! equivalent Rust one (`fjord_model::goregex::to_rust`). Replacement and counting follow Go's loops exactly (an empty match
//! right after a previous match is skipped; `$name`/`${name}` expansion per `Regexp.Expand`).
//! Compile errors are reported in Go's form (`error parsing regexp: …`).

use regex::{CaptureLocations, Regex};

/// A compiled Go regular expression.
#[derive(Debug, Clone)]
pub(crate) struct GoRegex {
    re: Regex,
    names: Vec<Option<String>>,
}

/// Go's error code for a syntax error, and the fragment Go quotes.
fn go_error(pattern: &str, translated: &str, err: &regex::Error) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let parsed = regex_syntax::ast::parse::Parser::new().parse(translated);
    let (code, frag) = match parsed {
        Err(e) => {
            let span = e.span();
            let text = translated
                .get(span.start.offset..span.end.offset)
                .unwrap_or("")
                .to_string();
            match e.kind() {
                K::EscapeUnrecognized | K::UnsupportedBackreference => {
                    ("invalid escape sequence", text)
                }
                K::EscapeUnexpectedEof => {
                    ("trailing backslash at end of expression", String::new())
                }
                K::EscapeHexInvalid | K::EscapeHexInvalidDigit | K::EscapeHexEmpty => {
                    ("invalid escape sequence", text)
                }
                K::GroupUnclosed => ("missing closing )", pattern.to_string()),
                K::GroupUnopened => ("unexpected )", pattern.to_string()),
                K::ClassUnclosed => (
                    "missing closing ]",
                    translated
                        .get(span.start.offset..)
                        .unwrap_or("")
                        .to_string(),
                ),
                K::ClassRangeInvalid => ("invalid character class range", text),
                K::ClassEscapeInvalid => ("invalid escape sequence", text),
                K::RepetitionMissing => {
                    // Go quotes the operator itself.
                    let rest = translated.get(span.start.offset..).unwrap_or("");
                    let op = match rest.find('}') {
                        Some(end) if rest.starts_with('{') => rest[..=end].to_string(),
                        _ => rest.chars().next().map(String::from).unwrap_or_default(),
                    };
                    (
                        "missing argument to repetition operator",
                        if text.is_empty() { op } else { text },
                    )
                }
                K::RepetitionCountInvalid
                | K::RepetitionCountDecimalEmpty
                | K::RepetitionCountUnclosed => ("invalid repeat count", text),
                K::GroupNameDuplicate { .. } => ("duplicate capture group name", text),
                K::GroupNameEmpty | K::GroupNameInvalid | K::GroupNameUnexpectedEof => {
                    ("invalid named capture", text)
                }
                K::NestLimitExceeded(_) => ("expression nests too deeply", pattern.to_string()),
                _ => ("invalid or unsupported Perl syntax", text),
            }
        }
        Ok(_) => ("invalid or unsupported Perl syntax", err.to_string()),
    };
    format!("error parsing regexp: {code}: `{frag}`")
}

impl GoRegex {
    /// Compiles a Go pattern; the error is Go's message.
    pub(crate) fn compile(pattern: &str) -> Result<GoRegex, String> {
        let translated = fjord_model::goregex::to_rust(pattern);
        match regex::RegexBuilder::new(&translated)
            .size_limit(64 << 20)
            .build()
        {
            Ok(re) => {
                let names = re.capture_names().map(|n| n.map(str::to_string)).collect();
                Ok(GoRegex { re, names })
            }
            Err(e) => Err(go_error(pattern, &translated, &e)),
        }
    }

    /// Go's `FindAllStringIndex(s, -1)` length.
    pub(crate) fn count(&self, s: &str) -> usize {
        let end = s.len();
        let mut pos = 0;
        let mut prev_end: Option<usize> = None;
        let mut n = 0;
        while pos <= end {
            let Some(m) = self.re.find_at(s, pos) else {
                break;
            };
            let mut accept = true;
            if m.end() == pos {
                // An empty match: skip it right after a previous match.
                if Some(m.start()) == prev_end {
                    accept = false;
                }
                pos += s[pos..].chars().next().map_or(1, char::len_utf8);
            } else {
                pos = m.end();
            }
            prev_end = Some(m.end());
            if accept {
                n += 1;
            }
        }
        n
    }

    /// Go's `ReplaceAllString` (`literal == false`, `$` expands) or `ReplaceAllLiteralString`.
    pub(crate) fn replace_all(&self, src: &str, repl: &str, literal: bool) -> String {
        let mut locs = self.re.capture_locations();
        let mut buf = String::with_capacity(src.len());
        let mut last_match_end = 0;
        let mut search_pos = 0;
        let end = src.len();
        while search_pos <= end {
            let Some(m) = self.re.captures_read_at(&mut locs, src, search_pos) else {
                break;
            };
            let (a0, a1) = (m.start(), m.end());
            buf.push_str(&src[last_match_end..a0]);
            if a1 > last_match_end || a0 == 0 {
                if literal {
                    buf.push_str(repl);
                } else {
                    self.expand(&mut buf, repl, src, &locs);
                }
            }
            last_match_end = a1;
            let width = src[search_pos..].chars().next().map_or(0, char::len_utf8);
            if search_pos + width > a1 {
                search_pos += width;
            } else if search_pos + 1 > a1 {
                search_pos += 1;
            } else {
                search_pos = a1;
            }
        }
        buf.push_str(&src[last_match_end..]);
        buf
    }

    /// Go's `Regexp.expand`.
    fn expand(&self, dst: &mut String, mut template: &str, src: &str, locs: &CaptureLocations) {
        while let Some(i) = template.find('$') {
            dst.push_str(&template[..i]);
            template = &template[i + 1..];
            if let Some(rest) = template.strip_prefix('$') {
                dst.push('$');
                template = rest;
                continue;
            }
            let Some((name, num, rest)) = extract(template) else {
                dst.push('$');
                continue;
            };
            template = rest;
            let group = match num {
                Some(n) => Some(n),
                None => self.names.iter().position(|g| g.as_deref() == Some(name)),
            };
            if let Some((s, e)) = group.and_then(|g| locs.get(g)) {
                dst.push_str(&src[s..e]);
            }
        }
        dst.push_str(template);
    }
}

/// Go's `extract`: a group reference `name` or `{name}` at the start of `s`; the number is set
/// when the name is a decimal without leading zeros.
fn extract(s: &str) -> Option<(&str, Option<usize>, &str)> {
    let (brace, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| *c == '_' || c.is_alphabetic() || c.is_numeric())
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let mut rest = &body[len..];
    if brace {
        rest = rest.strip_prefix('}')?;
    }
    let mut num: Option<usize> = Some(0);
    for b in name.bytes() {
        match num {
            Some(n) if b.is_ascii_digit() && n < 100_000_000 => {
                num = Some(n * 10 + usize::from(b - b'0'))
            }
            _ => {
                num = None;
                break;
            }
        }
    }
    if name.len() > 1 && name.starts_with('0') {
        num = None;
    }
    Some((name, num, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(p: &str) -> GoRegex {
        GoRegex::compile(p).unwrap()
    }

    #[test]
    fn ascii_classes() {
        assert_eq!(re(r"\d+").replace_all("a١23", "N", false), "a١N");
        assert_eq!(re(r"\w").count("é_a"), 2);
        assert_eq!(re(r"\s").count("\u{b} \t"), 2);
        assert_eq!(re(r"[\d.]+").replace_all("v1.2x", "#", false), "v#x");
        assert_eq!(re(r"[^\s]+").count("a b"), 2);
        assert_eq!(re(r"\Qa.b\E").count("a.b axb"), 1);
        assert_eq!(re(r"[[:alpha:]]+").count("ab1cd"), 2);
        assert_eq!(re(r"[a&&b]").count("&"), 1);
        assert_eq!(re(r"\bfoo\b").count("foo éfoo"), 2);
    }

    #[test]
    fn go_empty_match_rules() {
        assert_eq!(re("a*").replace_all("baaac", "-", false), "-b-c-");
        assert_eq!(re("a*").count("baaac"), 3);
        assert_eq!(re("").replace_all("abc", "-", false), "-a-b-c-");
        assert_eq!(re("x*").replace_all("", "-", false), "-");
    }

    #[test]
    fn expansion() {
        let r = re(r"(?P<k>\w+)=(\w+)");
        assert_eq!(r.replace_all("a=1 b=2", "$2:$k", false), "1:a 2:b");
        assert_eq!(r.replace_all("a=1", "${1}x $1x $$ $", false), "ax  $ $");
        assert_eq!(r.replace_all("a=1", "${1}x", true), "${1}x");
    }

    #[test]
    fn go_errors() {
        assert_eq!(
            GoRegex::compile(r"a|b|\q").unwrap_err(),
            "error parsing regexp: invalid escape sequence: `\\q`"
        );
        assert_eq!(
            GoRegex::compile("(a").unwrap_err(),
            "error parsing regexp: missing closing ): `(a`"
        );
        assert_eq!(
            GoRegex::compile("a)").unwrap_err(),
            "error parsing regexp: unexpected ): `a)`"
        );
        assert_eq!(
            GoRegex::compile("[a").unwrap_err(),
            "error parsing regexp: missing closing ]: `[a`"
        );
        assert_eq!(
            GoRegex::compile("*").unwrap_err(),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert!(GoRegex::compile(r"\h").is_err());
        assert!(GoRegex::compile(r"a|b|\K").is_err());
    }
}
