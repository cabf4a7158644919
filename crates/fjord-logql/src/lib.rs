//! LogQL, Loki's query language: lexer, parser, syntax tree, printer and errors.
//!
//! This crate turns query text into a validated [`Expr`] exactly as Grafana Loki 3.x's `syntax`
//! package does — same accepted queries, same rejected ones, the same error text (which Loki
//! returns as the HTTP 400 body) and the same canonical printing ([`std::fmt::Display`], Loki's
//! `String()`) and multi-line formatting ([`pretty`], Loki's `Prettify`). It is pure: no I/O,
//! no async.
//!
//! How the pieces fit:
//! * `lexer` reproduces Loki's tokenizer (Go's `text/scanner` underneath), so
//!   keywords, durations, byte sizes and error positions come out as in Loki.
//! * `parser` is a recursive-descent parser for Loki's yacc grammar, with
//!   Loki's error precedence and its parse-time rewrites (literal folding, `!= a or b` splitting).
//! * [`validate`] runs the pipeline checks Loki does when it builds a pipeline (line-filter
//!   regexes, IP patterns, JSON paths, `label_format` names).
//! * [`ast`] is the tree the evaluator walks; `printer` and [`pretty`] print it.
//! * [`units`], [`goregex`], [`pattern`] and [`paths`] hold Loki's sub-languages (durations,
//!   byte sizes, Go regexes, patterns, JSON/logfmt paths) for the evaluator to reuse.
//!
//! # Known differences from Loki
//!
//! Measured against Loki's own parser on 6,197 queries (`tests/loki_reference.rs`) and the
//! conformance corpus (`tests/conformance.rs`), where everything matches, these remain:
//! * Go templates (`line_format`, `label_format`) are not parsed here; Loki rejects a bad
//!   template when it builds the pipeline (`stage '| line_format ...' : invalid line template:
//!   ...`), so the evaluator/template crate must report it, with [`ParseError::stage`].
//! * Queries nesting deeper than [`MAX_NESTING`] levels, or with trees deeper than
//!   [`MAX_DEPTH`], are rejected (`expression nests too deeply`); Loki has no limit.
//! * Regexes: Go's RE2 rules are emulated on the Rust `regex` parser ([`goregex`]); rare
//!   constructs may be accepted or rejected differently. A stream matcher whose regex is valid
//!   in Go but not for `fjord_model::LabelMatcher` (a literal `{` such as `a{`, a group name
//!   starting with a digit) is rejected.
//! * Folding `x ^ y` between literals uses Rust's `powf`, which can differ from Go's `math.Pow`
//!   in the last bit.
//! * Yacc error recovery (after a bad matcher list or `label_format` item, Loki keeps parsing and
//!   may report a later error instead) is emulated in a simplified form.
//! * The label-filter regex printing choice (`a=~"re"` or `` a=~`re` ``) follows Loki's regex
//!   simplifier approximately ([`goregex::label_regex_is_raw`]).
//!
//! ```
//! let expr = fjord_logql::parse_expr(r#"sum by (app) (rate({app="api"} |= "error" [5m]))"#).unwrap();
//! assert_eq!(expr.to_string(), r#"sum by (app)(rate({app="api"} |= "error"[5m]))"#);
//! assert!(!expr.is_log());
//! let err = fjord_logql::parse_expr(r#"{app="nginx""#).unwrap_err();
//! assert_eq!(err.to_string(), "parse error at line 1, col 13: syntax error: unexpected $end, expecting } or ,");
//! ```

pub mod ast;
mod error;
pub mod goregex;
mod lexer;
mod parser;
pub mod paths;
pub mod pattern;
mod pretty;
mod printer;
pub mod units;
pub mod validate;

pub use ast::*;
pub use error::ParseError;
pub use fjord_model::{LabelMatcher, MatchOp};
pub use parser::{MAX_DEPTH, MAX_NESTING};
pub use pretty::pretty;

/// Parses and fully validates a query: syntax, Loki's parse-time validation, and the pipeline
/// checks Loki does before running it. A tree returned here can be evaluated.
pub fn parse_expr(input: &str) -> Result<Expr, ParseError> {
    let expr = parser::parse_syntax(input)?;
    validate::validate_stages(&expr)?;
    Ok(expr)
}

/// Parses with exactly Loki's `ParseExpr` checks, leaving out the pipeline-construction checks
/// ([`validate::validate_stages`]) that Loki only runs when it executes the query.
pub fn parse_expr_syntax(input: &str) -> Result<Expr, ParseError> {
    parser::parse_syntax(input)
}

/// Parses a log query (`{...} | stages`), as Loki's `ParseLogSelector(input, true)` plus the
/// pipeline checks. Metric queries are rejected with `only log selector is supported`.
pub fn parse_log_selector(input: &str) -> Result<LogSelectorExpr, ParseError> {
    let sel = parser::parse_log_selector_unvalidated(input)?;
    parser::validate_selector(&sel.matchers)?;
    validate::validate_stages(&Expr::Log(sel.clone()))?;
    Ok(sel)
}

/// Parses a bare stream selector (`{a="b", c=~"d"}`), as Loki's `ParseMatchers(input, true)`
/// used for `match[]`: anything with a pipeline, or a metric query, is rejected with
/// `only label matchers are supported`; at least one matcher must not match the empty string.
pub fn parse_matchers(input: &str) -> Result<Vec<LabelMatcher>, ParseError> {
    let expr = parser::parse_syntax(input)?;
    match expr {
        Expr::Log(l) if l.stages.is_empty() => Ok(l.matchers),
        _ => Err(ParseError::plain("only label matchers are supported")),
    }
}
