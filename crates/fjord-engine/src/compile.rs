//! Compiling a parsed pipeline (`fjord_logql` AST) into executable [`Stage`]s: regexes,
//! patterns, templates and IP ranges are built once per query here, not per line.

use fjord_logql::ast;

use crate::EngineError;
use crate::ip::IpPattern;
use crate::label_regex::LabelRegex;
use crate::line_filter::{LineFilter, compile_regex};
use crate::pattern::Pattern;
use crate::stages::{Cmp, LabelFilter, NamedMatcher, Stage, StringMatch, decolorize_regex};
use crate::template_stage::{LabelsFormatter, LineFormatter};

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::BadRequest(msg.into())
}

fn cmp(op: ast::CmpOp) -> Cmp {
    match op {
        ast::CmpOp::Eq => Cmp::Eq,
        ast::CmpOp::Neq => Cmp::Ne,
        ast::CmpOp::Gt => Cmp::Gt,
        ast::CmpOp::Gte => Cmp::Ge,
        ast::CmpOp::Lt => Cmp::Lt,
        ast::CmpOp::Lte => Cmp::Le,
    }
}

fn line_match(op: ast::LineFilterOp, m: &ast::LineMatch) -> Result<LineFilter, EngineError> {
    use ast::LineFilterOp as Op;
    let positive = match m {
        ast::LineMatch::Ip(p) => LineFilter::Ip(IpPattern::parse(p).map_err(bad)?),
        ast::LineMatch::Text(t) => match op {
            Op::Contains | Op::NotContains => LineFilter::contains(t.as_bytes()),
            Op::Regex | Op::NotRegex => LineFilter::Regex(
                compile_regex(t).map_err(|e| bad(format!("error parsing regexp: {e}")))?,
            ),
            Op::Pattern | Op::NotPattern => {
                LineFilter::Pattern(Pattern::filter(t).map_err(|e| bad(e.0))?)
            }
        },
    };
    Ok(positive)
}

/// One line filter with its `or` alternatives.
pub fn line_filter(f: &ast::LineFilter) -> Result<LineFilter, EngineError> {
    let first = line_match(f.op, &f.value)?;
    let combined = if f.or.is_empty() {
        first
    } else {
        let mut alts = vec![first];
        for m in &f.or {
            alts.push(line_match(f.op, m)?);
        }
        LineFilter::Or(alts)
    };
    Ok(if f.op.is_positive() {
        combined
    } else {
        combined.negate()
    })
}

pub fn label_filter(f: &ast::LabelFilter) -> Result<LabelFilter, EngineError> {
    Ok(match f {
        ast::LabelFilter::And(a, b) => {
            LabelFilter::And(Box::new(label_filter(a)?), Box::new(label_filter(b)?))
        }
        ast::LabelFilter::Or(a, b) => {
            LabelFilter::Or(Box::new(label_filter(a)?), Box::new(label_filter(b)?))
        }
        ast::LabelFilter::String(m) => {
            use fjord_model::MatchOp;
            let re =
                || LabelRegex::new(&m.value).map_err(|e| bad(format!("error parsing regexp: {e}")));
            let matcher = match m.op {
                MatchOp::Eq => StringMatch::Eq(m.value.clone()),
                MatchOp::Neq => StringMatch::Ne(m.value.clone()),
                MatchOp::Re => StringMatch::Re(re()?),
                MatchOp::Nre => StringMatch::Nre(re()?),
            };
            LabelFilter::String {
                name: m.name.clone(),
                matcher,
            }
        }
        ast::LabelFilter::Number { name, op, value } => LabelFilter::Numeric {
            name: name.clone(),
            cmp: cmp(*op),
            value: *value,
        },
        ast::LabelFilter::Duration { name, op, value } => LabelFilter::Duration {
            name: name.clone(),
            cmp: cmp(*op),
            value: *value,
        },
        ast::LabelFilter::Bytes { name, op, value } => LabelFilter::Bytes {
            name: name.clone(),
            cmp: cmp(*op),
            value: *value,
        },
        ast::LabelFilter::Ip {
            name,
            negated,
            pattern,
        } => LabelFilter::Ip {
            name: name.clone(),
            negate: *negated,
            pattern: IpPattern::parse(pattern).map_err(bad)?,
        },
    })
}

fn named(ms: &[ast::NamedMatcher]) -> Vec<NamedMatcher> {
    ms.iter()
        .map(|m| match m {
            ast::NamedMatcher::Name(n) => NamedMatcher::Name(n.clone()),
            ast::NamedMatcher::Matcher(m) => NamedMatcher::Matcher(m.clone()),
        })
        .collect()
}

/// Splits a JSON path expression (`a.b[0]`, `["k-y"].c`) into `jsonparser` keys.
pub fn json_path(expr: &str) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    while i < b.len() {
        match b[i] {
            b'.' => {
                flush(&mut cur, &mut out);
                i += 1;
            }
            b'[' => {
                flush(&mut cur, &mut out);
                let end = expr[i..]
                    .find(']')
                    .map(|e| i + e)
                    .ok_or_else(|| bad(format!("cannot parse expression [{expr}]")))?;
                let inner = expr[i + 1..end].trim();
                if let Some(q) = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                    out.push(q.replace("\\\"", "\""));
                } else if inner.parse::<usize>().is_ok() {
                    out.push(format!("[{inner}]"));
                } else {
                    return Err(bad(format!("cannot parse expression [{expr}]")));
                }
                i = end + 1;
            }
            _ => {
                let c = expr[i..].chars().next().unwrap_or(' ');
                cur.push(c);
                i += c.len_utf8();
            }
        }
    }
    flush(&mut cur, &mut out);
    Ok(out)
}

/// Compiles the stages of a pipeline in the order Loki runs them (line filters move ahead of
/// parsers up to the next label filter, `line_format` or `unpack`). Consecutive line filters
/// become one AND filter.
pub fn pipeline(sel: &ast::LogSelectorExpr) -> Result<Vec<Stage>, EngineError> {
    let stages = sel.stages_in_execution_order();
    let mut out: Vec<Stage> = Vec::with_capacity(stages.len());
    for s in &stages {
        out.push(match s {
            ast::Stage::LineFilters(fs) => {
                let mut compiled = fs.iter().map(line_filter).collect::<Result<Vec<_>, _>>()?;
                Stage::LineFilter(Box::new(if compiled.len() == 1 {
                    compiled.remove(0)
                } else {
                    LineFilter::And(compiled)
                }))
            }
            ast::Stage::Logfmt(p) if p.extractions.is_empty() => Stage::Logfmt {
                strict: p.strict,
                keep_empty: p.keep_empty,
            },
            ast::Stage::Logfmt(p) => Stage::LogfmtExpr {
                exprs: p
                    .extractions
                    .iter()
                    .map(|e| (e.name.clone(), e.expression.clone()))
                    .collect(),
                strict: p.strict,
            },
            ast::Stage::Json(ex) if ex.is_empty() => Stage::Json,
            ast::Stage::Json(ex) => Stage::JsonExpr {
                ids: ex.iter().map(|e| e.name.clone()).collect(),
                paths: ex
                    .iter()
                    .map(|e| json_path(&e.expression))
                    .collect::<Result<Vec<_>, _>>()?,
            },
            ast::Stage::Regexp(re) => {
                let re =
                    compile_regex(re).map_err(|e| bad(format!("invalid regexp parser: {e}")))?;
                let names = re
                    .capture_names()
                    .enumerate()
                    .filter_map(|(i, n)| n.map(|n| (i, n.to_string())))
                    .collect();
                Stage::Regexp { re, names }
            }
            ast::Stage::Pattern(p) => Stage::Pattern(
                Pattern::parser(p).map_err(|e| bad(format!("invalid pattern parser: {e}")))?,
            ),
            ast::Stage::Unpack => Stage::Unpack,
            ast::Stage::Decolorize => Stage::Decolorize(decolorize_regex()),
            ast::Stage::LabelFilter(f) => Stage::LabelFilter(label_filter(f)?),
            ast::Stage::LineFormat(t) => {
                Stage::LineFormat(Box::new(LineFormatter::new(t).map_err(bad)?))
            }
            ast::Stage::LabelFormat(fs) => {
                let terms: Vec<(String, String, bool)> = fs
                    .iter()
                    .map(|f| match &f.value {
                        ast::LabelFormatValue::Rename(src) => (f.name.clone(), src.clone(), true),
                        ast::LabelFormatValue::Template(t) => (f.name.clone(), t.clone(), false),
                    })
                    .collect();
                Stage::LabelFormat(Box::new(LabelsFormatter::new(&terms).map_err(bad)?))
            }
            ast::Stage::Drop(ms) => Stage::Drop(named(ms)),
            ast::Stage::Keep(ms) => Stage::Keep(named(ms)),
        });
    }
    Ok(out)
}

/// The literal requirements of the line filters that run before anything can change the line
/// (for block skipping): CNF clauses, see [`LineFilter::required`].
pub fn skippable_literals(stages: &[Stage]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for s in stages {
        match s {
            Stage::LineFilter(f) => out.extend(f.required()),
            Stage::LineFormat(_) | Stage::Unpack | Stage::Decolorize(_) => break,
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        assert_eq!(json_path("a.b[0]").unwrap(), vec!["a", "b", "[0]"]);
        assert_eq!(json_path(r#"["k-y"].c"#).unwrap(), vec!["k-y", "c"]);
        assert_eq!(json_path("plain").unwrap(), vec!["plain"]);
        assert!(json_path("a[x]").is_err());
    }
}
