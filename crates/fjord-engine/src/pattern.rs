//! Loki's pattern language, used by the `| pattern "…"` parser and the `|> "…"` / `!> "…"`
//! line filters: `<name>` captures up to the next literal, `<_>` skips, everything else is
//! literal text.
//!
//! Extraction is anchored at the start of the line and stops at the first literal that is not
//! found, keeping the captures made so far. The filter form requires every literal in order,
//! with text between literals wherever a capture stands between them; like Loki's, it is not
//! anchored at the start.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Capture(String),
    Literal(Literal),
}

/// A literal part with its substring searcher built once: building one per line cost more
/// than the search on short log lines. Boxed: a searcher is a few hundred bytes.
#[derive(Debug, Clone)]
struct Literal(Box<memchr::memmem::Finder<'static>>);

impl Literal {
    fn new(bytes: &[u8]) -> Literal {
        Literal(Box::new(memchr::memmem::Finder::new(bytes).into_owned()))
    }

    fn bytes(&self) -> &[u8] {
        self.0.needle()
    }

    fn find(&self, hay: &[u8]) -> Option<usize> {
        self.0.find(hay)
    }
}

impl PartialEq for Literal {
    fn eq(&self, other: &Literal) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Literal {}

impl Node {
    fn is_unnamed_capture(&self) -> bool {
        matches!(self, Node::Capture(n) if n == "_")
    }
}

/// Why a pattern was refused; texts are Loki's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    nodes: Vec<Node>,
    names: Vec<String>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Tokenizes a pattern into captures and literal runs.
fn lex(input: &[u8]) -> Result<Vec<Node>, PatternError> {
    if std::str::from_utf8(input).is_err() {
        return Err(PatternError(
            "syntax error: invalid UTF-8 in pattern".into(),
        ));
    }
    // Literals are collected as bytes, then given their searchers.
    let mut nodes: Vec<Result<String, Vec<u8>>> = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'<' && i + 1 < input.len() && is_ident_start(input[i + 1]) {
            let mut j = i + 2;
            while j < input.len() && is_ident(input[j]) {
                j += 1;
            }
            if j < input.len() && input[j] == b'>' {
                nodes.push(Ok(String::from_utf8_lossy(&input[i + 1..j]).into_owned()));
                i = j + 1;
                continue;
            }
        }
        match nodes.last_mut() {
            Some(Err(l)) => l.push(input[i]),
            _ => nodes.push(Err(vec![input[i]])),
        }
        i += 1;
    }
    Ok(nodes
        .into_iter()
        .map(|n| match n {
            Ok(name) => Node::Capture(name),
            Err(bytes) => Node::Literal(Literal::new(&bytes)),
        })
        .collect())
}

fn no_consecutive_captures(nodes: &[Node]) -> Result<(), PatternError> {
    for w in nodes.windows(2) {
        if let (Node::Capture(a), Node::Capture(b)) = (&w[0], &w[1]) {
            return Err(PatternError(format!(
                "found consecutive capture '<{a}><{b}>': invalid expression"
            )));
        }
    }
    Ok(())
}

impl Pattern {
    /// A pattern for the `| pattern` parser: at least one named capture, no two captures side
    /// by side, no name twice.
    pub fn parser(input: &str) -> Result<Pattern, PatternError> {
        let nodes = lex(input.as_bytes())?;
        let names: Vec<String> = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(c) if c != "_" => Some(c.clone()),
                _ => None,
            })
            .collect();
        if names.is_empty() {
            return Err(PatternError("at least one capture is required".into()));
        }
        no_consecutive_captures(&nodes)?;
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                return Err(PatternError(format!(
                    "duplicate capture name ({n}): invalid expression"
                )));
            }
        }
        Ok(Pattern { nodes, names })
    }

    /// A pattern for the `|>`/`!>` line filters: only `<_>` captures allowed.
    pub fn filter(input: &str) -> Result<Pattern, PatternError> {
        let nodes = lex(input.as_bytes())?;
        no_consecutive_captures(&nodes)?;
        if let Some(Node::Capture(c)) = nodes
            .iter()
            .find(|n| matches!(n, Node::Capture(c) if c != "_"))
        {
            return Err(PatternError(format!(
                "named captures are not allowed: found '<{c}>'"
            )));
        }
        Ok(Pattern {
            nodes,
            names: Vec::new(),
        })
    }

    /// Names of the named captures, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The literal parts, e.g. for block skipping.
    pub fn literals(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Literal(l) => Some(l.bytes()),
            Node::Capture(_) => None,
        })
    }

    /// Calls `f(index, capture)` for the named captures of `line` in order of
    /// [`Pattern::names`] (possibly fewer), up to the first `wanted` of them, until `f` returns
    /// false. A capture's text depends only on the nodes up to the literal after it, so the
    /// captures before a stop are those a full match makes.
    pub fn for_each_capture<'a>(
        &self,
        mut line: &'a [u8],
        wanted: usize,
        mut f: impl FnMut(usize, &'a [u8]) -> bool,
    ) {
        if line.is_empty() || self.nodes.is_empty() {
            return;
        }
        let mut nodes = &self.nodes[..];
        if let Node::Literal(l) = &nodes[0] {
            if !line.starts_with(l.bytes()) {
                return;
            }
            line = &line[l.bytes().len()..];
            nodes = &nodes[1..];
        }
        let mut index = 0;
        while !nodes.is_empty() && index < wanted {
            if nodes.len() == 1 {
                if !nodes[0].is_unnamed_capture() {
                    f(index, line);
                }
                return;
            }
            let named = !nodes[0].is_unnamed_capture();
            let Node::Literal(lit) = &nodes[1] else {
                return;
            };
            nodes = &nodes[2..];
            match lit.find(line) {
                None => {
                    if named {
                        f(index, line);
                    }
                    return;
                }
                Some(i) => {
                    if named {
                        if !f(index, &line[..i]) {
                            return;
                        }
                        index += 1;
                    }
                    line = &line[i + lit.bytes().len()..];
                }
            }
        }
    }

    /// Whether a line matches as a `|>` filter.
    pub fn test(&self, line: &[u8]) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let mut off = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            let Node::Literal(lit) = n else { continue };
            let Some(j) = lit.find(&line[off..]) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.bytes().len();
        }
        let ends_with_capture = matches!(self.nodes.last(), Some(Node::Capture(_)));
        ends_with_capture == (off != line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(p: &str, line: &str) -> Vec<String> {
        caps_up_to(p, line, usize::MAX)
    }

    fn caps_up_to(p: &str, line: &str, wanted: usize) -> Vec<String> {
        let p = Pattern::parser(p).unwrap();
        let mut out = Vec::new();
        p.for_each_capture(line.as_bytes(), wanted, |i, c| {
            assert_eq!(i, out.len());
            out.push(String::from_utf8_lossy(c).into_owned());
            true
        });
        out
    }

    #[test]
    fn captures_stop_after_those_wanted_and_agree_with_a_full_match() {
        let nginx = r#"10.0.0.1 - - [15/Jan/2024:10:00:00 +0000] "GET /api/x HTTP/1.1" 200 512"#;
        let p = r#"<ip> - <_> [<ts>] "<method> <path> <_>" <status> <size>"#;
        let all = caps(p, nginx);
        for wanted in 0..=all.len() {
            assert_eq!(caps_up_to(p, nginx, wanted), all[..wanted]);
        }
        // A literal missing later does not change the captures before it.
        let cut = &nginx[..nginx.len() - 8];
        assert_eq!(caps_up_to(p, cut, 3), all[..3]);
    }

    #[test]
    fn extracts_like_loki() {
        let nginx = r#"10.0.0.1 - - [15/Jan/2024:10:00:00 +0000] "GET /api/x HTTP/1.1" 200 512"#;
        assert_eq!(
            caps(
                r#"<ip> - <_> [<ts>] "<method> <path> <_>" <status> <size>"#,
                nginx
            ),
            vec![
                "10.0.0.1",
                "15/Jan/2024:10:00:00 +0000",
                "GET",
                "/api/x",
                "200",
                "512"
            ]
        );
        // Stops at the first literal not found, keeping what it has.
        assert_eq!(caps("<a> x <b> y <c>", "1 x 2 z"), vec!["1", "2 z"]);
        // Anchored at the start.
        assert!(caps("foo <a>", "bar foo 1").is_empty());
    }

    #[test]
    fn validation() {
        assert_eq!(
            Pattern::parser("<_>").unwrap_err().0,
            "at least one capture is required"
        );
        assert!(
            Pattern::parser("<a><b>")
                .unwrap_err()
                .0
                .contains("consecutive capture")
        );
        assert!(Pattern::parser("<a> <a>").is_err());
        assert!(Pattern::filter("<a> x").is_err());
        assert!(Pattern::filter("<_> x <_>").is_ok());
    }

    #[test]
    fn filter_semantics() {
        let p = Pattern::filter("<_> error <_>").unwrap();
        assert!(p.test(b"disk error here"));
        assert!(!p.test(b"error here"));
        assert!(!p.test(b"disk error"));
        let p = Pattern::filter("GET <_>").unwrap();
        assert!(p.test(b"GET /x"));
        // Loki does not anchor the filter form: a leading literal may appear anywhere.
        assert!(p.test(b"POST /x GET /y"));
    }
}
