//! Go (RE2) regular expressions on Rust's `regex` crate.
//!
//! Every regex a user writes (stream matchers, line and label filters, `regexp` parsers,
//! `label_replace`, template functions, relabel rules) is Go syntax, because Loki and
//! Prometheus are Go programs. The two dialects are close but differ in ways that change
//! results: Go's `\d`, `\w`, `\s` and `\b` are ASCII-only while Rust's are Unicode; Go accepts
//! `\Q…\E`; inside a class Go treats `[`, `&&` and `~~` literally; a `{` that starts no
//! repetition is a literal in Go; and Go allows group names that start with a digit.
//! [`to_rust`] rewrites a Go pattern into a Rust pattern with the same meaning.

/// The Rust regex equivalent of a Go regex.
pub fn to_rust(re: &str) -> String {
    translate_syntax(&rust_compatible(re))
}

/// Rewrites Go-valid constructs the Rust parser rejects without changing the meaning: a `{`
/// that does not start a repetition (`a{`, `{x}`) is a literal in Go and is escaped; group
/// names that start with a digit (`(?P<1a>x)`, valid in Go) get a `_` prefix. Capture groups
/// keep their order.
pub fn rust_compatible(re: &str) -> std::borrow::Cow<'_, str> {
    let braces = escape_literal_braces(re);
    match rename_digit_groups(&braces) {
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s),
        std::borrow::Cow::Borrowed(_) => braces,
    }
}

/// Whether `s` (starting at `{`) is a Go repetition `{n}`, `{n,}` or `{n,m}`.
fn is_repeat(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if i < b.len() && b[i] == b',' {
        i += 1;
        digits(&mut i);
    }
    i < b.len() && b[i] == b'}'
}

fn escape_literal_braces(re: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::new();
    let mut last = 0;
    let mut in_class = false;
    let mut class_start = false;
    let mut chars = re.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let just_opened = class_start;
        class_start = false;
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                if let Some(&(_, '^')) = chars.peek() {
                    chars.next();
                }
            }
            ']' if in_class && !just_opened => in_class = false,
            '{' if !in_class && !is_repeat(&re[i..]) => {
                out.push_str(&re[last..i]);
                out.push_str("\\{");
                last = i + 1;
            }
            _ => {}
        }
    }
    if last == 0 {
        return std::borrow::Cow::Borrowed(re);
    }
    out.push_str(&re[last..]);
    std::borrow::Cow::Owned(out)
}

fn rename_digit_groups(re: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::new();
    let mut last = 0;
    let mut search = 0;
    while let Some(i) = re[search..].find("(?") {
        let start = search + i;
        let after = start + 2;
        let name_start = if re[after..].starts_with("P<") {
            after + 2
        } else if re[after..].starts_with('<')
            && !re[after..].starts_with("<=")
            && !re[after..].starts_with("<!")
        {
            after + 1
        } else {
            search = after;
            continue;
        };
        if let Some(len) = re[name_start..].find('>') {
            let name = &re[name_start..name_start + len];
            if name.starts_with(|c: char| c.is_ascii_digit())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                out.push_str(&re[last..name_start]);
                out.push('_');
                last = name_start;
            }
        }
        search = name_start;
    }
    if last == 0 {
        return std::borrow::Cow::Borrowed(re);
    }
    out.push_str(&re[last..]);
    std::borrow::Cow::Owned(out)
}

const PERL_D: &str = "0-9";
const PERL_W: &str = "0-9A-Za-z_";
const PERL_S: &str = "\\t\\n\\f\\r ";

/// Rewrites Go RE2 syntax into the `regex` crate's dialect.
fn translate_syntax(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    let mut in_class = false;
    // Index of the first character inside the current class (after `[` and `^`).
    let mut class_body_start = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                out.push('\\');
                i += 1;
                continue;
            };
            let perl = match n {
                'd' => Some((false, PERL_D)),
                'D' => Some((true, PERL_D)),
                'w' => Some((false, PERL_W)),
                'W' => Some((true, PERL_W)),
                's' => Some((false, PERL_S)),
                'S' => Some((true, PERL_S)),
                _ => None,
            };
            if let Some((negated, set)) = perl {
                match (in_class, negated) {
                    (true, false) => out.push_str(set),
                    _ => {
                        out.push_str(if negated { "[^" } else { "[" });
                        out.push_str(set);
                        out.push(']');
                    }
                }
                i += 2;
                continue;
            }
            if !in_class && (n == 'b' || n == 'B') {
                out.push_str(if n == 'b' { "(?-u:\\b)" } else { "(?-u:\\B)" });
                i += 2;
                continue;
            }
            if n == 'Q' {
                i += 2;
                let mut lit = String::new();
                while i < chars.len() {
                    if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                        i += 2;
                        break;
                    }
                    lit.push(chars[i]);
                    i += 1;
                }
                out.push_str(&regex::escape(&lit));
                continue;
            }
            // Any other escape is copied whole, including `\p{…}` and `\x{…}` forms.
            out.push('\\');
            out.push(n);
            i += 2;
            if matches!(n, 'p' | 'P' | 'x') && chars.get(i) == Some(&'{') {
                while i < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                    if chars[i - 1] == '}' {
                        break;
                    }
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' if i > class_body_start => {
                    in_class = false;
                    out.push(']');
                }
                ']' => out.push_str("\\]"),
                '[' if chars.get(i + 1) == Some(&':') => {
                    // A POSIX class such as [:alpha:]: copy through ":]".
                    let mut j = i;
                    let mut closed = false;
                    while j + 1 < chars.len() {
                        if chars[j] == ':' && chars[j + 1] == ']' && j > i + 1 {
                            closed = true;
                            break;
                        }
                        j += 1;
                    }
                    if closed {
                        out.extend(&chars[i..j + 2]);
                        i = j + 2;
                        continue;
                    }
                    out.push_str("\\[");
                }
                '[' => out.push_str("\\["),
                '&' => out.push_str("\\&"),
                '~' => out.push_str("\\~"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        if c == '[' {
            in_class = true;
            out.push('[');
            i += 1;
            if chars.get(i) == Some(&'^') {
                out.push('^');
                i += 1;
            }
            class_body_start = i;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        regex::Regex::new(&to_rust(re)).unwrap().is_match(s)
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(m(r"^\d+$", "123"));
        assert!(!m(r"^\d+$", "١٢٣"), "Arabic-Indic digits are not \\d in Go");
        assert!(!m(r"^\w+$", "héllo"));
        assert!(m(r"^[\w.]+$", "a.b_c"));
        assert!(m(r"^[^\d]+$", "abc"));
        assert!(m(r"^[\D]+$", "abc"));
        assert!(!m(r"^\s$", "\u{a0}"));
        assert!(m(r"\bfoo\b", "a foo b"));
        assert!(m(r"^[[:alpha:]]+$", "abc"));
        assert!(m(r"^[]a]+$", "]a"));
        assert!(m(r"^\Qa.b\E$", "a.b"));
        assert!(
            m(r"^[[\]()]+$", "[]()"),
            "a `[` inside a class is a literal in Go"
        );
        assert!(!m(r"^\Qa.b\E$", "axb"));
    }
}
