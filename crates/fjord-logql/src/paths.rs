//! The small expression languages inside `| json a="..."` and `| logfmt a="..."`.
//!
//! `json` extraction paths (`a.b[0]`, `["key with spaces"]`, `a["b"][2]`) and `logfmt` key
//! expressions (`key`, `"quoted"`) have their own grammars in Loki (`jsonexpr`, `logfmt`
//! packages). They are parsed here so a query with a bad path is rejected with Loki's message
//! (`cannot parse expression [a..b]: syntax error: unexpected DOT, expecting FIELD`), and so the
//! evaluator gets the path already split.
//!
//! Loki's scanners have quirks kept here: quoted keys have no escapes and end at `"` or `]`;
//! a scanner error is replaced by the parser's syntax error when the input cannot end where the
//! scanner stopped.

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonPathSegment {
    /// An object key (`a`, `["a b"]`).
    Key(String),
    /// An array index (`[0]`).
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
enum JTok {
    End,
    Dot,
    Lsb,
    Rsb,
    Str(String),
    Field(String),
    Index(usize),
}

impl JTok {
    fn name(&self) -> &'static str {
        match self {
            JTok::End => "$end",
            JTok::Dot => "DOT",
            JTok::Lsb => "LSB",
            JTok::Rsb => "RSB",
            JTok::Str(_) => "STRING",
            JTok::Field(_) => "FIELD",
            JTok::Index(_) => "INDEX",
        }
    }
}

fn is_start_ident(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    is_start_ident(c) || c.is_ascii_digit()
}

/// A scanner shared by both languages: it records the first scanner error and then reports end
/// of input, like Loki's.
struct Scan<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    err: Option<String>,
}

impl<'a> Scan<'a> {
    fn new(s: &'a str) -> Self {
        Scan {
            chars: s.chars().peekable(),
            err: None,
        }
    }

    fn field(&mut self) -> String {
        let mut out = String::new();
        while let Some(&c) = self.chars.peek() {
            if !is_ident(c) || c == '\0' {
                break;
            }
            out.push(c);
            self.chars.next();
        }
        out
    }

    fn string(&mut self) -> String {
        self.chars.next(); // the opening quote
        let mut out = String::new();
        for c in self.chars.by_ref() {
            if c == '\0' || c == '"' || c == ']' {
                break;
            }
            out.push(c);
        }
        out
    }

    fn fail(&mut self, msg: String) -> JTok {
        self.err = Some(msg);
        JTok::End
    }

    fn json_token(&mut self) -> JTok {
        loop {
            let Some(&c) = self.chars.peek() else {
                return JTok::End;
            };
            if c == '\0' {
                return JTok::End;
            }
            if c == ' ' || c == '\t' || c == '\n' {
                self.chars.next();
                continue;
            }
            if c.is_ascii_digit() {
                let mut digits = String::new();
                loop {
                    let r = self.chars.peek().copied().unwrap_or('\0');
                    if r == '.' && !digits.is_empty() {
                        return self.fail("cannot use float as array index".to_string());
                    }
                    if r == ' ' || r == '\t' || r == '\n' || r == '.' || r == ']' {
                        break;
                    }
                    if !r.is_ascii_digit() {
                        return self.fail(format!("non-integer value: {r}"));
                    }
                    digits.push(r);
                    self.chars.next();
                }
                return match digits.parse() {
                    Ok(i) => JTok::Index(i),
                    Err(_) => self.fail(format!(
                        "strconv.Atoi: parsing \"{digits}\": value out of range"
                    )),
                };
            }
            return match c {
                '[' => {
                    self.chars.next();
                    JTok::Lsb
                }
                ']' => {
                    self.chars.next();
                    JTok::Rsb
                }
                '.' => {
                    self.chars.next();
                    JTok::Dot
                }
                '"' => JTok::Str(self.string()),
                c if is_start_ident(c) => JTok::Field(self.field()),
                other => {
                    self.chars.next();
                    self.fail(format!("unexpected char {other}"))
                }
            };
        }
    }
}

/// Parses a `json` extraction path. The error is Loki's text after `cannot parse expression [..]: `.
pub fn parse_json_path(expr: &str) -> Result<Vec<JsonPathSegment>, String> {
    let mut sc = Scan::new(expr);
    let mut out = Vec::new();
    let syntax = |tok: &JTok, expecting: &str| {
        let mut m = format!("syntax error: unexpected {}", tok.name());
        if !expecting.is_empty() {
            m.push_str(", expecting ");
            m.push_str(expecting);
        }
        m
    };
    // First element: FIELD or [..].
    let mut tok = sc.json_token();
    let mut first = true;
    loop {
        match tok {
            JTok::Field(f) if first => out.push(JsonPathSegment::Key(f)),
            JTok::Lsb => {
                let inner = sc.json_token();
                let seg = match inner {
                    JTok::Str(s) => JsonPathSegment::Key(s),
                    JTok::Index(i) => JsonPathSegment::Index(i),
                    other => return Err(syntax(&other, "STRING or INDEX")),
                };
                let close = sc.json_token();
                if close != JTok::Rsb {
                    return Err(syntax(&close, "RSB"));
                }
                out.push(seg);
            }
            JTok::Dot if !first => {
                let f = sc.json_token();
                match f {
                    JTok::Field(f) => out.push(JsonPathSegment::Key(f)),
                    other => return Err(syntax(&other, "FIELD")),
                }
            }
            JTok::End if !first => {
                return match sc.err {
                    Some(e) => Err(e),
                    None => Ok(out),
                };
            }
            other => return Err(syntax(&other, if first { "LSB or FIELD" } else { "" })),
        }
        first = false;
        tok = sc.json_token();
    }
}

/// Validates a `logfmt` key expression (`key` or `"key"`, optionally followed by quoted
/// strings); returns the key.
pub fn parse_logfmt_key(expr: &str) -> Result<String, String> {
    let mut sc = Scan::new(expr);
    let next = |sc: &mut Scan<'_>| loop {
        let Some(&c) = sc.chars.peek() else {
            return JTok::End;
        };
        if c == '\0' {
            return JTok::End;
        }
        if c == ' ' || c == '\t' || c == '\n' {
            sc.chars.next();
            continue;
        }
        if is_start_ident(c) {
            return JTok::Field(sc.field());
        }
        if c == '"' {
            return JTok::Str(sc.string());
        }
        sc.chars.next();
        return sc.fail(format!("unexpected char {c}"));
    };
    let name = |t: &JTok| match t {
        JTok::Field(_) => "KEY",
        other => other.name(),
    };
    let key = match next(&mut sc) {
        JTok::Field(k) | JTok::Str(k) => k,
        other => {
            return Err(format!(
                "syntax error: unexpected {}, expecting STRING or KEY",
                name(&other)
            ));
        }
    };
    loop {
        match next(&mut sc) {
            JTok::Str(_) => continue,
            JTok::End => {
                return match sc.err {
                    Some(e) => Err(e),
                    None => Ok(key),
                };
            }
            other => return Err(format!("syntax error: unexpected {}", name(&other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &str) -> String {
        parse_json_path(p).unwrap_err()
    }

    #[test]
    fn json_paths() {
        use JsonPathSegment::*;
        assert_eq!(
            parse_json_path("a.b[0].c"),
            Ok(vec![
                Key("a".into()),
                Key("b".into()),
                Index(0),
                Key("c".into())
            ])
        );
        assert_eq!(
            parse_json_path("[\"a b\"][2]"),
            Ok(vec![Key("a b".into()), Index(2)])
        );
        assert_eq!(parse_json_path("[ 0 ]"), Ok(vec![Index(0)]));
        assert_eq!(err("a b"), "syntax error: unexpected FIELD");
        assert_eq!(
            err(".a"),
            "syntax error: unexpected DOT, expecting LSB or FIELD"
        );
        assert_eq!(err("a."), "syntax error: unexpected $end, expecting FIELD");
        assert_eq!(err("a..b"), "syntax error: unexpected DOT, expecting FIELD");
        assert_eq!(
            err("["),
            "syntax error: unexpected $end, expecting STRING or INDEX"
        );
        assert_eq!(
            err("[0"),
            "syntax error: unexpected $end, expecting STRING or INDEX"
        );
        assert_eq!(
            err("[\"a\""),
            "syntax error: unexpected $end, expecting RSB"
        );
        assert_eq!(
            err("[a]"),
            "syntax error: unexpected FIELD, expecting STRING or INDEX"
        );
        assert_eq!(err("a.5"), "syntax error: unexpected $end, expecting FIELD");
        assert_eq!(err("a-b"), "unexpected char -");
        assert_eq!(
            err(""),
            "syntax error: unexpected $end, expecting LSB or FIELD"
        );
        assert_eq!(
            err("\"x\""),
            "syntax error: unexpected STRING, expecting LSB or FIELD"
        );
        assert_eq!(
            err("[\"a]b\"]"),
            "syntax error: unexpected FIELD, expecting RSB"
        );
    }

    #[test]
    fn logfmt_keys() {
        assert_eq!(parse_logfmt_key("a"), Ok("a".into()));
        assert_eq!(parse_logfmt_key("\"a\" \"b\""), Ok("a".into()));
        assert_eq!(
            parse_logfmt_key("a b").unwrap_err(),
            "syntax error: unexpected KEY"
        );
        assert_eq!(parse_logfmt_key("a.b").unwrap_err(), "unexpected char .");
        assert_eq!(
            parse_logfmt_key("").unwrap_err(),
            "syntax error: unexpected $end, expecting STRING or KEY"
        );
        assert_eq!(
            parse_logfmt_key("1").unwrap_err(),
            "syntax error: unexpected $end, expecting STRING or KEY"
        );
    }
}
