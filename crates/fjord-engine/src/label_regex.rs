//! Regex label filters (`| name =~ "re"`) with Loki's exact matching behaviour.
//!
//! Loki does not always run such a regex as written. Its "regex simplifier" first tries to
//! turn the regex into literal comparisons, and those comparisons are not always anchored:
//! `name =~ "ab.*"` becomes *contains "ab"* (so it matches `cab`), `name =~ "a|b"` becomes
//! *equals a or equals b*, `name =~ ""` and `name =~ ".*"` match everything, and `name =~ ".+"`
//! any non-empty value. Only regexes the simplifier cannot handle run as the anchored regex
//! `^(?:re)$`. Because query results depend on this, Fjord reproduces the simplifier over the
//! regex's syntax tree, including Go's factoring of common literal prefixes in alternations
//! (`foo|foobar` parses as `foo(?:|bar)`, which simplifies to *contains*).

use regex::bytes::Regex;
use regex_syntax::ast::{self, Ast};

/// A compiled regex label filter.
#[derive(Debug, Clone)]
pub enum LabelRegex {
    Equal {
        text: Vec<u8>,
        fold: bool,
    },
    Contains {
        text: Vec<u8>,
        fold: bool,
    },
    Or(Vec<LabelRegex>),
    /// Matches any value.
    True,
    /// Matches any non-empty value.
    Exists,
    /// The anchored regex.
    Regex(Regex),
}

impl LabelRegex {
    /// Compiles `re` as Loki would for a label filter.
    pub fn new(re: &str) -> Result<LabelRegex, regex::Error> {
        if let Some(s) = simplify_source(re) {
            return Ok(s);
        }
        Ok(LabelRegex::Regex(Regex::new(&format!(
            "^(?:{})$",
            fjord_model::goregex::to_rust(re)
        ))?))
    }

    pub fn matches(&self, v: &[u8]) -> bool {
        match self {
            LabelRegex::Equal { text, fold } => v.len() == text.len() && contains(v, text, *fold),
            LabelRegex::Contains { text, fold } => contains(v, text, *fold),
            LabelRegex::Or(fs) => fs.iter().any(|f| f.matches(v)),
            LabelRegex::True => true,
            LabelRegex::Exists => !v.is_empty(),
            LabelRegex::Regex(r) => r.is_match(v),
        }
    }
}

fn contains(hay: &[u8], needle: &[u8], fold: bool) -> bool {
    if !fold {
        return memchr::memmem::find(hay, needle).is_some();
    }
    let hay = String::from_utf8_lossy(hay).to_lowercase();
    memchr::memmem::find(hay.as_bytes(), needle).is_some()
}

/// A node of the small regex tree the simplifier understands (Go's `syntax.Regexp` ops).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Empty,
    Literal {
        text: String,
        fold: bool,
    },
    /// `.*` without the `s` flag.
    StarAny,
    /// `.+` without the `s` flag.
    PlusAny,
    Concat(Vec<Node>),
    Alternate(Vec<Node>),
    /// Anything else.
    Other,
}

#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    fold: bool,
    dot_nl: bool,
}

fn simplify_source(re: &str) -> Option<LabelRegex> {
    let ast = ast::parse::Parser::new()
        .parse(&fjord_model::goregex::to_rust(re))
        .ok()?;
    let mut flags = Flags::default();
    let node = to_node(&ast, &mut flags);
    let node = factor(node);
    simplify(&node)
}

fn to_node(a: &Ast, flags: &mut Flags) -> Node {
    match a {
        Ast::Empty(_) => Node::Empty,
        Ast::Literal(l) => Node::Literal {
            text: l.c.to_string(),
            fold: flags.fold,
        },
        Ast::Dot(_) => Node::Other,
        Ast::Repetition(r) => match (&r.op.kind, &*r.ast) {
            (ast::RepetitionKind::ZeroOrMore, Ast::Dot(_)) if !flags.dot_nl => Node::StarAny,
            (ast::RepetitionKind::OneOrMore, Ast::Dot(_)) if !flags.dot_nl => Node::PlusAny,
            _ => Node::Other,
        },
        Ast::Group(g) => {
            let mut inner = *flags;
            if let ast::GroupKind::NonCapturing(f) = &g.kind
                && !apply_flags(f, &mut inner)
            {
                return Node::Other;
            }
            to_node(&g.ast, &mut inner)
        }
        Ast::Flags(f) => {
            if apply_flags(&f.flags, flags) {
                Node::Empty
            } else {
                Node::Other
            }
        }
        Ast::Concat(c) => {
            let mut out: Vec<Node> = Vec::new();
            for item in &c.asts {
                let n = to_node(item, flags);
                match (out.last_mut(), n) {
                    // Go merges adjacent literals with the same flags into one literal.
                    (Some(Node::Literal { text, fold }), Node::Literal { text: t2, fold: f2 })
                        if *fold == f2 =>
                    {
                        text.push_str(&t2)
                    }
                    (_, Node::Empty) => {}
                    (_, n) => out.push(n),
                }
            }
            match out.len() {
                0 => Node::Empty,
                1 => out.remove(0),
                _ => Node::Concat(out),
            }
        }
        Ast::Alternation(alt) => Node::Alternate(
            alt.asts
                .iter()
                .map(|x| to_node(x, &mut flags.clone()))
                .collect(),
        ),
        _ => Node::Other,
    }
}

/// Applies `(?i)`/`(?s)` style flags; other flags make the regex not simplifiable.
fn apply_flags(f: &ast::Flags, flags: &mut Flags) -> bool {
    let mut negate = false;
    for item in &f.items {
        match &item.kind {
            ast::FlagsItemKind::Negation => negate = true,
            ast::FlagsItemKind::Flag(ast::Flag::CaseInsensitive) => flags.fold = !negate,
            ast::FlagsItemKind::Flag(ast::Flag::DotMatchesNewLine) => flags.dot_nl = !negate,
            ast::FlagsItemKind::Flag(_) => return false,
        }
    }
    true
}

/// Go's first factoring round: alternatives sharing a literal prefix become
/// `prefix(?:rest1|rest2)`.
fn factor(n: Node) -> Node {
    match n {
        Node::Alternate(subs) => {
            let subs: Vec<Node> = subs.into_iter().map(factor).collect();
            let mut out: Vec<Node> = Vec::new();
            let mut i = 0;
            while i < subs.len() {
                let Some((p0, f0)) = leading_literal(&subs[i]) else {
                    out.push(subs[i].clone());
                    i += 1;
                    continue;
                };
                let mut prefix = p0.to_string();
                let mut j = i + 1;
                while j < subs.len() {
                    match leading_literal(&subs[j]) {
                        Some((p, f)) if f == f0 => {
                            let common = common_prefix(&prefix, p);
                            if common.is_empty() {
                                break;
                            }
                            prefix = common;
                            j += 1;
                        }
                        _ => break,
                    }
                }
                if j - i > 1 {
                    let rests: Vec<Node> = subs[i..j]
                        .iter()
                        .map(|s| strip_prefix(s, &prefix))
                        .collect();
                    out.push(Node::Concat(vec![
                        Node::Literal {
                            text: prefix,
                            fold: f0,
                        },
                        Node::Alternate(rests),
                    ]));
                } else {
                    out.push(subs[i].clone());
                }
                i = j;
            }
            if out.len() == 1 {
                out.remove(0)
            } else {
                Node::Alternate(out)
            }
        }
        Node::Concat(v) => Node::Concat(v.into_iter().map(factor).collect()),
        other => other,
    }
}

fn leading_literal(n: &Node) -> Option<(&str, bool)> {
    match n {
        Node::Literal { text, fold } => Some((text, *fold)),
        Node::Concat(v) => match v.first() {
            Some(Node::Literal { text, fold }) => Some((text, *fold)),
            _ => None,
        },
        _ => None,
    }
}

fn common_prefix(a: &str, b: &str) -> String {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

fn strip_prefix(n: &Node, prefix: &str) -> Node {
    match n {
        Node::Literal { text, fold } => {
            let rest = &text[prefix.len()..];
            if rest.is_empty() {
                Node::Empty
            } else {
                Node::Literal {
                    text: rest.to_string(),
                    fold: *fold,
                }
            }
        }
        Node::Concat(v) => {
            let mut v = v.clone();
            if let Some(Node::Literal { text, fold }) = v.first().cloned() {
                let rest = &text[prefix.len()..];
                if rest.is_empty() {
                    v.remove(0);
                } else {
                    v[0] = Node::Literal {
                        text: rest.to_string(),
                        fold,
                    };
                }
            }
            match v.len() {
                0 => Node::Empty,
                1 => v.remove(0),
                _ => Node::Concat(v),
            }
        }
        other => other.clone(),
    }
}

fn lit(text: &str, fold: bool, equal: bool) -> LabelRegex {
    let t = if fold {
        text.to_lowercase().into_bytes()
    } else {
        text.as_bytes().to_vec()
    };
    if equal {
        LabelRegex::Equal { text: t, fold }
    } else if t.is_empty() {
        LabelRegex::True
    } else {
        LabelRegex::Contains { text: t, fold }
    }
}

/// Loki's `Simplify` with `isLabel = true`.
fn simplify(n: &Node) -> Option<LabelRegex> {
    match n {
        Node::Alternate(subs) => Some(LabelRegex::Or(
            subs.iter().map(simplify).collect::<Option<Vec<_>>>()?,
        )),
        Node::Concat(subs) => simplify_concat(subs, None),
        Node::Literal { text, fold } => Some(lit(text, *fold, true)),
        Node::StarAny | Node::Empty => Some(LabelRegex::True),
        Node::PlusAny => Some(LabelRegex::Exists),
        Node::Other => None,
    }
}

fn simplify_concat(subs: &[Node], base: Option<(String, bool)>) -> Option<LabelRegex> {
    let subs: Vec<&Node> = subs.iter().filter(|s| **s != Node::Empty).collect();
    if subs.len() > 3 {
        return None;
    }
    let mut base = base;
    let mut literals = 0;
    let mut curr: Option<Vec<LabelRegex>> = None;
    for s in subs {
        match s {
            Node::Literal { text, fold } => {
                if literals != 0 {
                    return None;
                }
                literals += 1;
                let b = base.get_or_insert_with(|| (String::new(), *fold));
                b.0.push_str(text);
                b.1 = *fold;
            }
            Node::Alternate(alts) if base.is_some() => {
                let (lit_text, lit_fold) = base.clone()?;
                let acc = curr.get_or_insert_with(Vec::new);
                for alt in alts {
                    let alt_fold = match alt {
                        Node::Literal { fold, .. } => *fold,
                        _ => false,
                    };
                    if !lit_fold && alt_fold {
                        return None;
                    }
                    match alt {
                        Node::Empty | Node::StarAny => acc.push(lit(&lit_text, lit_fold, false)),
                        Node::Literal { text, .. } => {
                            acc.push(lit(&format!("{lit_text}{text}"), lit_fold, false))
                        }
                        Node::Concat(inner) => {
                            acc.push(simplify_concat(inner, Some((lit_text.clone(), lit_fold)))?)
                        }
                        _ => return None,
                    }
                }
            }
            Node::StarAny => {}
            _ => return None,
        }
    }
    if let Some(c) = curr {
        return Some(if c.len() == 1 {
            c.into_iter().next()?
        } else {
            LabelRegex::Or(c)
        });
    }
    base.map(|(t, f)| lit(&t, f, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, v: &str) -> bool {
        LabelRegex::new(re).unwrap().matches(v.as_bytes())
    }

    /// Each case was checked against Loki's own pipeline code (see the engine's notes).
    #[test]
    fn matches_like_loki() {
        assert!(!m("ca", "carol"));
        assert!(m("carol", "carol"));
        assert!(m("a.*", "carol"), "literal.* simplifies to contains");
        assert!(m("ar.*", "carol"));
        assert!(m(".*ar.*", "carol"));
        assert!(
            m("c.*l", "carol"),
            "two literals: the anchored regex, which matches"
        );
        assert!(!m("c.*x", "carol"));
        assert!(m("(?i)CAR.*", "carol"));
        assert!(!m("car|bob", "carol"));
        assert!(m("car|carol", "carol"));
        assert!(
            m("foo|foobar", "xfoox"),
            "factored prefix turns equality into contains"
        );
        assert!(m("", "anything"));
        assert!(m(".*", "anything"));
        assert!(m(".+", "x"));
        assert!(!m(".+", ""));
        assert!(m("[a-c]+rol", "carol"));
        assert!(!m("[a-c]+rol", "xcarol"));
    }
}
