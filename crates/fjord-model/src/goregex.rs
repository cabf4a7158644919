//! Go (RE2) regular expressions on Rust's `regex` crate.
//!
//! The two syntaxes are nearly the same, but Go's Perl classes (`\d`, `\w`, `\s`) and word
//! boundaries (`\b`, `\B`) are ASCII-only, while Rust's are Unicode by default; and Go accepts
//! `\Q…\E` literal quoting. [`translate`] rewrites those constructs so a pattern means in Fjord
//! exactly what it means in Loki and Prometheus.

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = "\\t\\n\\f\\r ";

/// Rewrites a Go regex into an equivalent Rust regex.
pub fn translate(re: &str) -> String {
    let mut out = String::with_capacity(re.len() + 16);
    let mut chars = re.chars().peekable();
    // Whether we are inside a character class (0 or 1: Go classes do not nest).
    let mut class_depth = 0usize;
    let mut class_just_opened = false;
    while let Some(c) = chars.next() {
        let opened = class_just_opened;
        class_just_opened = false;
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let inside = class_depth > 0;
                let set = match e {
                    'd' | 'D' => Some(DIGIT),
                    'w' | 'W' => Some(WORD),
                    's' | 'S' => Some(SPACE),
                    _ => None,
                };
                match (set, inside) {
                    (Some(s), false) => {
                        out.push('[');
                        if e.is_ascii_uppercase() {
                            out.push('^');
                        }
                        out.push_str(s);
                        out.push(']');
                    }
                    (Some(s), true) if e.is_ascii_lowercase() => out.push_str(s),
                    (Some(s), true) => {
                        out.push_str("[^");
                        out.push_str(s);
                        out.push(']');
                    }
                    (None, _) => match e {
                        'b' if !inside => out.push_str("(?-u:\\b)"),
                        'B' if !inside => out.push_str("(?-u:\\B)"),
                        'Q' => {
                            // Literal text up to \E (or the end).
                            let mut lit = String::new();
                            while let Some(q) = chars.next() {
                                if q == '\\' && chars.peek() == Some(&'E') {
                                    chars.next();
                                    break;
                                }
                                lit.push(q);
                            }
                            out.push_str(&regex_escape(&lit));
                        }
                        _ => {
                            out.push('\\');
                            out.push(e);
                        }
                    },
                }
            }
            '[' if class_depth > 0 => {
                // Go has no nested classes: inside a class `[` is a literal, unless it opens a
                // POSIX class such as `[:alpha:]`.
                if chars.peek() == Some(&':') {
                    out.push('[');
                    for p in chars.by_ref() {
                        out.push(p);
                        if p == ']' {
                            break;
                        }
                    }
                } else {
                    out.push_str("\\[");
                }
            }
            '[' => {
                class_depth += 1;
                class_just_opened = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                // A `]` right after `[` or `[^` is a literal in Go.
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str("\\]");
                }
            }
            ']' if class_depth > 0 && !opened => {
                class_depth -= 1;
                out.push(']');
            }
            _ => out.push(c),
        }
    }
    out
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~ \t\n".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        regex::Regex::new(&translate(re)).unwrap().is_match(s)
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
