//! Label matchers: the `{name op "value"}` terms of a stream selector.
//!
//! Regex matchers are fully anchored, as in Prometheus and Loki: `app=~"api"` matches only the
//! value `api`, never `api-gateway`. The compiled regex is kept beside its source text so a
//! matcher can be printed back exactly as written.

use std::fmt;

use regex::Regex;

use crate::gostr;
use crate::labels::Labels;

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

/// One matcher, e.g. `namespace=~"prod|staging"`.
#[derive(Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl LabelMatcher {
    /// Builds a matcher; regex operators compile `value` anchored at both ends.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(compile_anchored(&value)?),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(LabelMatcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// An equality matcher; never fails.
    pub fn eq(name: impl Into<String>, value: impl Into<String>) -> Self {
        LabelMatcher {
            name: name.into(),
            op: MatchOp::Eq,
            value: value.into(),
            regex: None,
        }
    }

    /// Whether a label value (`""` when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Eq => value == self.value,
            MatchOp::Neq => value != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// Whether the matcher accepts a missing label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a label set satisfies the matcher.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }

    /// For `=~` matchers that are a plain alternation of literals (`a|b|c`), those literals:
    /// the index can then look them up instead of testing every value.
    pub fn literal_alternatives(&self) -> Option<Vec<&str>> {
        if self.op != MatchOp::Re {
            return None;
        }
        let special = |c: char| "\\.+*?()[]{}^$".contains(c);
        if self.value.chars().any(special) {
            return None;
        }
        Some(self.value.split('|').collect())
    }
}

impl fmt::Debug for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            gostr::quote(&self.value)
        )
    }
}

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for LabelMatcher {}

/// Compiles a fully anchored regex where `.` also matches `\n`, as Prometheus label matchers do
/// (Go regex syntax, see [`crate::goregex`]).
pub fn compile_anchored(re: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?s:{})$", crate::goregex::to_rust(re)))
}

/// Whether every matcher in a selector accepts a label set.
pub fn matches_all(matchers: &[LabelMatcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches_labels(labels))
}

/// Writes a selector `{a="1", b=~"x"}` in matcher order.
pub fn selector_string(matchers: &[LabelMatcher]) -> String {
    let parts: Vec<String> = matchers.iter().map(|m| m.to_string()).collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored() {
        let m = LabelMatcher::new("app", MatchOp::Re, "api").unwrap();
        assert!(m.matches("api"));
        assert!(!m.matches("api-gw"));
        let m = LabelMatcher::new("app", MatchOp::Nre, "a.*").unwrap();
        assert!(!m.matches("abc"));
        assert!(m.matches("xa"));
    }

    #[test]
    fn empty_compatibility() {
        assert!(
            LabelMatcher::new("a", MatchOp::Re, ".*")
                .unwrap()
                .matches_empty()
        );
        assert!(
            !LabelMatcher::new("a", MatchOp::Re, ".+")
                .unwrap()
                .matches_empty()
        );
        assert!(
            LabelMatcher::new("a", MatchOp::Neq, "x")
                .unwrap()
                .matches_empty()
        );
        assert!(LabelMatcher::eq("a", "").matches_empty());
    }

    #[test]
    fn literal_alternatives_only_for_plain_alternations() {
        let m = LabelMatcher::new("a", MatchOp::Re, "x|yy").unwrap();
        assert_eq!(m.literal_alternatives(), Some(vec!["x", "yy"]));
        assert_eq!(
            LabelMatcher::new("a", MatchOp::Re, "x.*")
                .unwrap()
                .literal_alternatives(),
            None
        );
    }

    #[test]
    fn prints_like_loki() {
        let m = LabelMatcher::new("a", MatchOp::Re, "x\"y").unwrap();
        assert_eq!(m.to_string(), r#"a=~"x\"y""#);
    }
}
