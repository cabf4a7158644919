//! Regex validation with Go's (RE2) rules and Go's error messages.
//!
//! Loki compiles every regex of a query with Go's `regexp` package and returns Go's error text
//! (`error parsing regexp: missing closing ): `(unclosed``). Fjord evaluates with the Rust
//! `regex` crate, whose syntax is close to RE2; this module parses with `regex-syntax` and maps
//! its errors onto Go's error codes, adding the checks Go does and Rust does not (repeat counts
//! over 1000, unsupported flags). Known gaps, accepted by one side only: `\Q...\E`, `[[]`-style
//! class nesting, and literal braces such as `a{` (Go takes them literally, Rust rejects them).
//!
//! It also decides how Loki prints a label-filter regex: Loki prints `name=~`re`` (backquoted)
//! when its regex simplifier cannot turn the regex into literal comparisons, and `name=~"re"`
//! otherwise; [`label_regex_is_raw`] approximates that simplifier on the Rust regex tree.

use regex_syntax::ast::{self, ErrorKind};
use regex_syntax::hir::{self, Hir, HirKind};

/// Checks a regex; the error is Go's message, ``error parsing regexp: <code>: `<expr>` ``.
pub fn validate(re: &str) -> Result<(), String> {
    parse_ast(re).map(|_| ())
}

fn go_error(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

fn parse_ast(re: &str) -> Result<Option<ast::Ast>, String> {
    let mut parser = ast::parse::ParserBuilder::new().nest_limit(1000).build();
    let rewritten = to_rust(re);
    match parser.parse(&rewritten) {
        Ok(ast) => {
            check_posix_classes(re)?;
            check_go_rules(&rewritten, &ast)?;
            Ok(Some(ast))
        }
        // Report errors against the query's own text.
        Err(_) => parse_ast_exact(re),
    }
}

use fjord_model::goregex::rust_compatible;
/// The Rust regex equivalent of a Go regex from a query (see `fjord_model::goregex`).
pub use fjord_model::goregex::to_rust;

fn parse_ast_exact(re: &str) -> Result<Option<ast::Ast>, String> {
    let mut parser = ast::parse::ParserBuilder::new().nest_limit(1000).build();
    match parser.parse(re) {
        Ok(ast) => {
            check_go_rules(re, &ast)?;
            Ok(Some(ast))
        }
        Err(e) => {
            let span = e.span();
            let text = re.get(span.start.offset..span.end.offset).unwrap_or("");
            let from_start = re.get(span.start.offset..).unwrap_or("");
            Err(match e.kind() {
                ErrorKind::GroupUnclosed => go_error("missing closing )", re),
                ErrorKind::GroupUnopened => go_error("unexpected )", re),
                ErrorKind::ClassUnclosed => go_error("missing closing ]", from_start),
                ErrorKind::ClassRangeInvalid
                | ErrorKind::ClassRangeLiteral
                | ErrorKind::UnicodeClassInvalid => go_error("invalid character class range", text),
                ErrorKind::EscapeUnexpectedEof => {
                    go_error("trailing backslash at end of expression", "")
                }
                ErrorKind::EscapeUnrecognized
                | ErrorKind::EscapeHexEmpty
                | ErrorKind::EscapeHexInvalid
                | ErrorKind::EscapeHexInvalidDigit
                | ErrorKind::ClassEscapeInvalid
                | ErrorKind::UnsupportedBackreference => go_error("invalid escape sequence", text),
                ErrorKind::RepetitionMissing => go_error(
                    "missing argument to repetition operator",
                    repetition_op_at(from_start),
                ),
                ErrorKind::RepetitionCountInvalid => go_error("invalid repeat count", text),
                ErrorKind::GroupNameEmpty
                | ErrorKind::GroupNameInvalid
                | ErrorKind::GroupNameUnexpectedEof
                | ErrorKind::FlagUnrecognized
                | ErrorKind::FlagDanglingNegation
                | ErrorKind::FlagDuplicate { .. }
                | ErrorKind::FlagRepeatedNegation { .. }
                | ErrorKind::FlagUnexpectedEof
                | ErrorKind::UnsupportedLookAround => perl_group_error(re, span.start.offset),
                ErrorKind::NestLimitExceeded(_) => go_error("expression nests too deeply", re),
                ErrorKind::CaptureLimitExceeded => go_error("expression too large", re),
                // Go accepts duplicate group names (Loki's regexp parser rejects them itself).
                ErrorKind::GroupNameDuplicate { .. } => return Ok(None),
                // Go reads these as literal text; Rust cannot. Reported in Go's words for the
                // closest construct so the query is still rejected clearly.
                ErrorKind::RepetitionCountUnclosed
                | ErrorKind::RepetitionCountDecimalEmpty
                | ErrorKind::DecimalEmpty
                | ErrorKind::DecimalInvalid => go_error("invalid repeat count", from_start),
                _ => go_error("invalid or unsupported Perl syntax", text),
            })
        }
    }
}

/// Go's error for a bad `(?...` group containing byte offset `at`: a named capture
/// (`(?P<name>`/`(?<name>`) with a bad or unterminated name, or unknown flags.
fn perl_group_error(re: &str, at: usize) -> String {
    let at = at.min(re.len());
    let found = if re.get(at..).is_some_and(|t| t.starts_with("(?")) {
        Some(at)
    } else {
        re.get(..at).and_then(|s| s.rfind("(?"))
    };
    let Some(start) = found else {
        return go_error(
            "invalid or unsupported Perl syntax",
            re.get(at..).unwrap_or(""),
        );
    };
    let t = &re[start..];
    if t.starts_with("(?P<") || t.starts_with("(?<") {
        return match t.find('>') {
            Some(end) => go_error("invalid named capture", &t[..=end]),
            None => go_error("invalid named capture", t),
        };
    }
    let mut end = 2;
    for c in t[2..].chars() {
        end += c.len_utf8();
        if !matches!(c, 'i' | 'm' | 's' | 'U' | '-') {
            break;
        }
    }
    go_error("invalid or unsupported Perl syntax", &t[..end])
}

/// The repetition operator text at the start of `s` (`*`, `+?`, `{2,3}`).
fn repetition_op_at(s: &str) -> &str {
    let len = if s.starts_with('{') {
        s.find('}').map_or(s.len(), |i| i + 1)
    } else {
        s.chars().next().map_or(0, char::len_utf8)
    };
    let len = if s[len..].starts_with('?') {
        len + 1
    } else {
        len
    };
    &s[..len]
}

/// Go rejects unknown POSIX class names inside a class (`[[:foo:]]`); Rust reads them as a
/// nested class.
fn check_posix_classes(re: &str) -> Result<(), String> {
    const NAMES: [&str; 14] = [
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
        "space", "upper", "word", "xdigit",
    ];
    let b = re.as_bytes();
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b'[' if b.get(i + 1) == Some(&b':') => {
                if let Some(end) = re[i + 2..].find(":]") {
                    let text = &re[i..i + 2 + end + 2];
                    let name = &re[i + 2..i + 2 + end];
                    if !NAMES.contains(&name.strip_prefix('^').unwrap_or(name)) {
                        return Err(go_error("invalid character class range", text));
                    }
                    i += 2 + end + 1;
                }
            }
            b']' if in_class => in_class = false,
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Go-only restrictions on a tree Rust accepted.
fn check_go_rules(re: &str, tree: &ast::Ast) -> Result<(), String> {
    let mut err = None;
    visit_ast(tree, &mut |node| {
        if err.is_some() {
            return;
        }
        match node {
            ast::Ast::Repetition(r) => {
                if let ast::RepetitionKind::Range(range) = &r.op.kind {
                    let too_big = match *range {
                        ast::RepetitionRange::Exactly(n) | ast::RepetitionRange::AtLeast(n) => {
                            n > 1000
                        }
                        ast::RepetitionRange::Bounded(a, b) => a > 1000 || b > 1000,
                    };
                    if too_big {
                        let s = r.op.span;
                        err = Some(go_error(
                            "invalid repeat count",
                            re.get(s.start.offset..s.end.offset).unwrap_or(""),
                        ));
                    }
                }
                if let ast::Ast::Repetition(_) = *r.ast {
                    let s = r.op.span;
                    let inner_op = match &*r.ast {
                        ast::Ast::Repetition(inner) => inner.op.span,
                        _ => s,
                    };
                    let text = re.get(inner_op.start.offset..s.end.offset).unwrap_or("");
                    err = Some(go_error("invalid nested repetition operator", text));
                }
            }
            ast::Ast::Flags(f) => err = check_flags(re, &f.flags),
            ast::Ast::Group(g) => {
                if let ast::GroupKind::NonCapturing(flags) = &g.kind {
                    err = check_flags(re, flags);
                }
            }
            _ => {}
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Go knows the flags `i m s U` only.
fn check_flags(re: &str, flags: &ast::Flags) -> Option<String> {
    for item in &flags.items {
        if let ast::FlagsItemKind::Flag(flag) = &item.kind
            && !matches!(
                flag,
                ast::Flag::CaseInsensitive
                    | ast::Flag::MultiLine
                    | ast::Flag::DotMatchesNewLine
                    | ast::Flag::SwapGreed
            )
        {
            return Some(perl_group_error(re, item.span.start.offset));
        }
    }
    None
}

fn visit_ast(node: &ast::Ast, f: &mut impl FnMut(&ast::Ast)) {
    f(node);
    match node {
        ast::Ast::Repetition(r) => visit_ast(&r.ast, f),
        ast::Ast::Group(g) => visit_ast(&g.ast, f),
        ast::Ast::Alternation(a) => a.asts.iter().for_each(|x| visit_ast(x, f)),
        ast::Ast::Concat(c) => c.asts.iter().for_each(|x| visit_ast(x, f)),
        _ => {}
    }
}

/// Validates the regex of `| regexp "..."` as Loki's `NewRegexpParser`: it must compile and
/// have at least one named group, with unique names. Returns the group names.
pub fn validate_regexp_parser(re: &str) -> Result<Vec<String>, String> {
    let tree = match parse_ast(re)? {
        Some(t) => t,
        None => {
            // Duplicate group names: Go compiles, Loki rejects.
            let names = scan_group_names(re);
            let mut seen = std::collections::HashSet::new();
            for n in &names {
                if !seen.insert(n.clone()) {
                    return Err(format!("duplicate extracted label name '{n}'"));
                }
            }
            return Ok(names);
        }
    };
    let renamed = rust_compatible(re) != re;
    let mut names = Vec::new();
    visit_ast(&tree, &mut |node| {
        if let ast::Ast::Group(g) = node
            && let ast::GroupKind::CaptureName { name, .. } = &g.kind
        {
            let n = name.name.as_str();
            let original = match n.strip_prefix('_') {
                Some(rest) if renamed && rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
                _ => n,
            };
            names.push(original.to_string());
        }
    });
    if names.is_empty() {
        return Err("at least one named capture must be supplied".to_string());
    }
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n.clone()) {
            return Err(format!("duplicate extracted label name '{n}'"));
        }
    }
    Ok(names)
}

/// Group names written `(?P<name>` or `(?<name>`, in order.
fn scan_group_names(re: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = re;
    while let Some(i) = rest.find("(?") {
        let after = &rest[i + 2..];
        let body = after.strip_prefix("P<").or_else(|| after.strip_prefix('<'));
        if let Some(body) = body
            && let Some(end) = body.find('>')
        {
            out.push(body[..end].to_string());
        }
        rest = after;
    }
    out
}

/// Text for a regex the validator accepted but the `regex` crate could not build (size limits).
pub fn describe_rust_error(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(_) => "error parsing regexp: expression too large".to_string(),
        other => format!("error parsing regexp: {other}"),
    }
}

/// Whether Loki prints the label filter `name=~"re"` as `name=~`re`` (its simplifier could not
/// reduce the regex to literal tests). An approximation of Go's parse-and-simplify on the Rust
/// regex tree.
pub fn label_regex_is_raw(re: &str) -> bool {
    let Ok(hir) = regex_syntax::ParserBuilder::new().build().parse(re) else {
        return false;
    };
    !simplifiable(&hir)
}

/// Loki's `RegexSimplifier.Simplify` on a Rust `Hir`.
fn simplifiable(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty => true,
        HirKind::Literal(_) => true,
        HirKind::Capture(c) => simplifiable(&c.sub),
        HirKind::Alternation(alts) => alts.iter().all(simplifiable),
        HirKind::Concat(subs) => concat_simplifiable(subs),
        HirKind::Repetition(r) => {
            is_dot_star(h) || (r.min == 1 && r.max.is_none() && is_any_not_nl(&r.sub))
        }
        HirKind::Class(c) => fold_class_char(c).is_some(),
        HirKind::Look(_) => false,
    }
}

fn concat_simplifiable(subs: &[Hir]) -> bool {
    // `.*lit.*`, `lit.*`, `.*lit`, and literal runs (case-folded letters count as literals).
    let mut literal_seen = false;
    let mut in_literal = false;
    let mut parts = 0;
    for s in subs {
        let is_lit = matches!(s.kind(), HirKind::Literal(_))
            || matches!(s.kind(), HirKind::Class(c) if fold_class_char(c).is_some());
        if is_lit {
            if !in_literal {
                if literal_seen {
                    return false;
                }
                literal_seen = true;
                in_literal = true;
                parts += 1;
            }
            continue;
        }
        in_literal = false;
        if is_dot_star(s) {
            parts += 1;
            continue;
        }
        if let HirKind::Alternation(alts) = s.kind()
            && literal_seen
        {
            if !alts.iter().all(|a| {
                matches!(a.kind(), HirKind::Literal(_) | HirKind::Empty)
                    || is_dot_star(a)
                    || matches!(a.kind(), HirKind::Concat(c) if concat_simplifiable(c))
            }) {
                return false;
            }
            parts += 1;
            continue;
        }
        return false;
    }
    parts <= 3 && literal_seen
}

fn is_any_not_nl(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Class(hir::Class::Unicode(c)) => {
            let r = c.ranges();
            r.len() == 2 && r[0].start() == '\0' && r[0].end() == '\u{9}' && r[1].start() == '\u{b}'
        }
        HirKind::Class(hir::Class::Bytes(c)) => {
            let r = c.ranges();
            r.len() == 2 && r[0].start() == 0 && r[0].end() == 9 && r[1].start() == 11
        }
        _ => false,
    }
}

fn is_dot_star(h: &Hir) -> bool {
    matches!(h.kind(), HirKind::Repetition(r) if r.min == 0 && r.max.is_none() && is_any_not_nl(&r.sub))
}

/// A class that is exactly one letter in both cases (`(?i)a`), which Go keeps as a literal.
fn fold_class_char(c: &hir::Class) -> Option<char> {
    let hir::Class::Unicode(u) = c else {
        return None;
    };
    let chars: Vec<char> = u
        .iter()
        .flat_map(|r| (r.start()..=r.end()).take(4))
        .collect();
    if chars.len() < 2 || chars.len() > 3 {
        return None;
    }
    // Unicode simple case folding adds e.g. `ſ` to `s` and the Kelvin sign to `k`.
    let lower: Vec<char> = chars.iter().flat_map(|c| c.to_lowercase()).collect();
    let upper: Vec<char> = chars.iter().flat_map(|c| c.to_uppercase()).collect();
    if lower.iter().all(|&l| l == lower[0]) || upper.iter().all(|&u| u == upper[0]) {
        Some(lower[0])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_messages() {
        assert_eq!(
            validate("(unclosed").unwrap_err(),
            "error parsing regexp: missing closing ): `(unclosed`"
        );
        assert_eq!(
            validate("a)").unwrap_err(),
            "error parsing regexp: unexpected ): `a)`"
        );
        assert_eq!(
            validate("x[ab").unwrap_err(),
            "error parsing regexp: missing closing ]: `[ab`"
        );
        assert_eq!(
            validate("*a").unwrap_err(),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(
            validate("\\q").unwrap_err(),
            "error parsing regexp: invalid escape sequence: `\\q`"
        );
        assert_eq!(
            validate("a{1001}").unwrap_err(),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert!(validate("a.*b|c").is_ok());
        assert!(validate("[[:alpha:][:^digit:]]").is_ok());
        assert_eq!(
            validate("[[:foo:]]").unwrap_err(),
            "error parsing regexp: invalid character class range: `[:foo:]`"
        );
        assert!(validate("(?P<a>x)(?P<a>y)").is_ok());
    }

    #[test]
    fn regexp_parser_rules() {
        assert_eq!(
            validate_regexp_parser("(?P<a>x)"),
            Ok(vec!["a".to_string()])
        );
        assert_eq!(
            validate_regexp_parser("no named groups").unwrap_err(),
            "at least one named capture must be supplied"
        );
        assert_eq!(
            validate_regexp_parser("(x)").unwrap_err(),
            "at least one named capture must be supplied"
        );
        assert_eq!(
            validate_regexp_parser("(?P<a>x)(?P<a>y)").unwrap_err(),
            "duplicate extracted label name 'a'"
        );
        assert_eq!(
            validate_regexp_parser("(?P<1a>x)"),
            Ok(vec!["1a".to_string()])
        );
        assert_eq!(rust_compatible("(?P<1a>x)(?<b>y)"), "(?P<_1a>x)(?<b>y)");
        assert_eq!(rust_compatible("a{ b{2} c{x} [{]"), "a\\{ b{2} c\\{x} [{]");
        assert!(validate("{oo\\.bar").is_ok());
        assert_eq!(
            validate("(?=<foo>x)").unwrap_err(),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
        );
        assert_eq!(
            validate("(?ir").unwrap_err(),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?ir`"
        );
        assert_eq!(
            validate("(?Pge>x)").unwrap_err(),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?P`"
        );
        assert_eq!(
            validate("(?P<a b>x)").unwrap_err(),
            "error parsing regexp: invalid named capture: `(?P<a b>`"
        );
        assert_eq!(
            validate("(?P<ab|c)").unwrap_err(),
            "error parsing regexp: invalid named capture: `(?P<ab|c)`"
        );
    }

    #[test]
    fn raw_printing_decision() {
        assert!(!label_regex_is_raw("x.*"));
        assert!(label_regex_is_raw("x.y"));
        assert!(label_regex_is_raw("x|y"));
        assert!(!label_regex_is_raw("(?i)xy"));
        assert!(!label_regex_is_raw(".*"));
        assert!(!label_regex_is_raw(".+"));
        assert!(label_regex_is_raw("\\d+"));
        assert!(!label_regex_is_raw("foo|bar"));
        assert!(!label_regex_is_raw("(?i).*|UNSET"));
        assert!(!label_regex_is_raw("(?i).*|UNSET"));
    }
}
