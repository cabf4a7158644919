//! Line filters: `|= "s"`, `!= "s"`, `|~ "re"`, `!~ "re"`, `|> "pat"`, `!> "pat"`, `ip("…")`
//! and their `or` chains, compiled once and run on raw line bytes.
//!
//! Regexes use Go's syntax and semantics (see `fjord_model::goregex`): unanchored, `.` does not
//! match a newline unless `(?s)` is given — the same as Loki, which parses with Perl flags.
//! [`LineFilter::required`] reports the literals a matching line must contain, which lets a
//! reader skip blocks whose trigram filter rules them out.

use fjord_model::goregex;
use memchr::memmem;
use regex::bytes::Regex;

use crate::ip::IpPattern;
use crate::pattern::Pattern;

/// A compiled line filter.
#[derive(Debug, Clone)]
pub enum LineFilter {
    Contains(Box<memmem::Finder<'static>>),
    Regex(Regex),
    Pattern(Pattern),
    Ip(IpPattern),
    Not(Box<LineFilter>),
    /// Any of them (an `or` chain).
    Or(Vec<LineFilter>),
    /// All of them (consecutive filters).
    And(Vec<LineFilter>),
}

/// Compiles a Go regex for line matching.
pub fn compile_regex(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&goregex::to_rust(re))
}

impl LineFilter {
    pub fn contains(s: &[u8]) -> LineFilter {
        LineFilter::Contains(Box::new(memmem::Finder::new(s).into_owned()))
    }

    pub fn negate(self) -> LineFilter {
        LineFilter::Not(Box::new(self))
    }

    pub fn matches(&self, line: &[u8]) -> bool {
        match self {
            LineFilter::Contains(f) => f.find(line).is_some(),
            LineFilter::Regex(r) => r.is_match(line),
            LineFilter::Pattern(p) => p.test(line),
            LineFilter::Ip(p) => p.matches_in(line),
            LineFilter::Not(f) => !f.matches(line),
            LineFilter::Or(fs) => fs.iter().any(|f| f.matches(line)),
            LineFilter::And(fs) => fs.iter().all(|f| f.matches(line)),
        }
    }

    /// Literal requirements in conjunctive normal form: every inner list must have at least one
    /// of its literals in a matching line. Empty when nothing is required.
    pub fn required(&self) -> Vec<Vec<Vec<u8>>> {
        match self {
            LineFilter::Contains(f) if !f.needle().is_empty() => vec![vec![f.needle().to_vec()]],
            LineFilter::Regex(r) => regex_required(r.as_str())
                .map(|alts| vec![alts])
                .unwrap_or_default(),
            LineFilter::Pattern(p) => p
                .literals()
                .filter(|l| !l.is_empty())
                .map(|l| vec![l.to_vec()])
                .collect(),
            LineFilter::And(fs) => fs.iter().flat_map(|f| f.required()).collect(),
            LineFilter::Or(fs) => {
                // One alternative set per branch is needed; use each branch's first clause.
                let mut alts = Vec::new();
                for f in fs {
                    match f.required().into_iter().next() {
                        Some(clause) => alts.extend(clause),
                        None => return Vec::new(),
                    }
                }
                if alts.is_empty() {
                    Vec::new()
                } else {
                    vec![alts]
                }
            }
            _ => Vec::new(),
        }
    }
}

/// Literals one of which every match of `re` contains, when they can be determined.
fn regex_required(re: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    let hir = regex_syntax::ParserBuilder::new().build().parse(re).ok()?;
    // Case-insensitive literals cannot be tested against a case-sensitive trigram filter.
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix);
    let seq = ex.extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.iter().any(|l| l.as_bytes().len() < 3) {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = LineFilter::And(vec![
            LineFilter::contains(b"error"),
            LineFilter::Or(vec![
                LineFilter::contains(b"db"),
                LineFilter::contains(b"api"),
            ])
            .negate(),
        ]);
        assert!(f.matches(b"error in web"));
        assert!(!f.matches(b"error in db"));
        assert!(!f.matches(b"info"));
        let r = LineFilter::Regex(compile_regex(r"status=\d{3}").unwrap());
        assert!(r.matches(b"x status=500 y"));
        let dot = LineFilter::Regex(compile_regex("a.b").unwrap());
        assert!(
            !dot.matches(b"a\nb"),
            "`.` does not match a newline, as in Go"
        );
    }

    #[test]
    fn required_literals() {
        let f = LineFilter::And(vec![
            LineFilter::contains(b"NEEDLE"),
            LineFilter::Regex(compile_regex("foo(bar|baz)").unwrap()),
        ]);
        let req = f.required();
        assert_eq!(req[0], vec![b"NEEDLE".to_vec()]);
        assert!(req[1].iter().all(|l| l.starts_with(b"foo")));
        assert!(LineFilter::contains(b"x").negate().required().is_empty());
        let ci = LineFilter::Regex(compile_regex("(?i)needle").unwrap()).required();
        assert!(
            ci.is_empty() || ci[0].iter().any(|l| l == b"NEEDLE"),
            "case variants are alternatives"
        );
    }
}
