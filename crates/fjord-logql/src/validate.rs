//! Pipeline-stage checks that Loki performs when it builds a query's pipeline rather than while
//! parsing: line-filter regexes, patterns and IP patterns, label-filter IP patterns, JSON and
//! logfmt extraction paths, and `label_format` target names.
//!
//! Loki runs them when the query executes, so a bad stage is still a 400 "parse error" there;
//! [`crate::parse_expr`] runs them right after parsing so every tree it returns can be evaluated.
//! The order and wording follow Loki: stages are visited after Loki's line-filter reordering
//! (consecutive line filters, and line filters that can move before a parser, are merged into
//! one stage whose text is printed in the error), and a merged stage reports the failure of its
//! last filter first. Go templates (`line_format`, `label_format`) are not checked here; the
//! template crate reports those.

use crate::ast::*;
use crate::error::ParseError;
use crate::printer::LineFilters;
use crate::{goregex, paths, pattern};

/// Runs Loki's pipeline-construction checks on every pipeline of the query.
pub fn validate_stages(expr: &Expr) -> Result<(), ParseError> {
    match expr {
        Expr::Log(l) => validate_pipeline(&l.stages),
        Expr::Sample(s) => {
            for range in s.log_ranges() {
                validate_pipeline(&range.selector.stages)?;
            }
            Ok(())
        }
    }
}

/// A stage after Loki's reordering.
enum Reordered<'a> {
    Filters(Vec<LineFilter>),
    Other(&'a Stage),
}

/// The stages in the order Loki runs them (`reorderStages`): every line filter moves up to just
/// after the previous label filter, `line_format` or `unpack` (the stages that can change what a
/// line filter sees), and adjacent line filters merge into one stage. Note that `decolorize` is
/// not a barrier in Loki: a line filter written after it runs before it, on the coloured line.
pub fn execution_order(stages: &[Stage]) -> Vec<Stage> {
    reorder(stages)
        .into_iter()
        .map(|s| match s {
            Reordered::Filters(fs) => Stage::LineFilters(fs),
            Reordered::Other(st) => st.clone(),
        })
        .collect()
}

/// Loki's `reorderStages`: line filters move up to the last label filter, `line_format` or
/// `unpack`, and adjacent line filters merge.
fn reorder(stages: &[Stage]) -> Vec<Reordered<'_>> {
    let mut out = Vec::new();
    let mut filters: Vec<LineFilter> = Vec::new();
    let mut others: Vec<&Stage> = Vec::new();
    fn flush<'a>(
        out: &mut Vec<Reordered<'a>>,
        filters: &mut Vec<LineFilter>,
        others: &mut Vec<&'a Stage>,
    ) {
        if !filters.is_empty() {
            out.push(Reordered::Filters(std::mem::take(filters)));
        }
        out.extend(others.drain(..).map(Reordered::Other));
    }
    for stage in stages {
        match stage {
            Stage::LabelFilter(_) => {
                flush(&mut out, &mut filters, &mut others);
                out.push(Reordered::Other(stage));
            }
            Stage::LineFilters(fs) => filters.extend(fs.iter().cloned()),
            Stage::LineFormat(_) | Stage::Unpack => {
                others.push(stage);
                flush(&mut out, &mut filters, &mut others);
            }
            _ => others.push(stage),
        }
    }
    flush(&mut out, &mut filters, &mut others);
    out
}

fn validate_pipeline(stages: &[Stage]) -> Result<(), ParseError> {
    for stage in reorder(stages) {
        match stage {
            Reordered::Filters(fs) => {
                if let Err(e) = check_line_filters(&fs) {
                    return Err(ParseError::stage(&LineFilters(&fs).to_string(), e));
                }
            }
            Reordered::Other(st) => {
                if let Err(e) = check_stage(st) {
                    return Err(ParseError::stage(&st.to_string(), e));
                }
            }
        }
    }
    Ok(())
}

/// Loki builds a filter chain from its last element backwards.
fn check_line_filters(filters: &[LineFilter]) -> Result<(), String> {
    for f in filters.iter().rev() {
        check_line_match(f.op, &f.value)?;
        for alt in &f.or {
            check_line_match(f.op, alt)?;
        }
    }
    Ok(())
}

fn check_line_match(op: LineFilterOp, m: &LineMatch) -> Result<(), String> {
    match m {
        LineMatch::Text(s) => match op {
            LineFilterOp::Regex | LineFilterOp::NotRegex => goregex::validate(s),
            LineFilterOp::Pattern | LineFilterOp::NotPattern => pattern::validate_filter_pattern(s),
            LineFilterOp::Contains | LineFilterOp::NotContains => Ok(()),
        },
        LineMatch::Ip(p) => {
            if !matches!(op, LineFilterOp::Contains | LineFilterOp::NotContains) {
                return Err("ip: invalid operation".to_string());
            }
            check_ip_pattern(p)
        }
    }
}

fn check_stage(stage: &Stage) -> Result<(), String> {
    match stage {
        Stage::LabelFilter(LabelFilter::Ip { pattern, .. }) => check_ip_pattern(pattern),
        Stage::LabelFormat(formats) => {
            let mut seen = std::collections::HashSet::new();
            for f in formats {
                if f.name == "__error__" {
                    return Err("__error__ cannot be formatted".to_string());
                }
                if !seen.insert(f.name.as_str()) {
                    return Err(format!(
                        "multiple label name '{}' not allowed in a single format operation",
                        f.name
                    ));
                }
            }
            Ok(())
        }
        Stage::Json(exprs) => {
            for e in exprs {
                paths::parse_json_path(&e.expression)
                    .map_err(|err| format!("cannot parse expression [{}]: {err}", e.expression))?;
            }
            Ok(())
        }
        Stage::Logfmt(p) => {
            for e in &p.extractions {
                paths::parse_logfmt_key(&e.expression)
                    .map_err(|err| format!("cannot parse expression [{}]: {err}", e.expression))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An IP filter pattern: one address, a CIDR prefix, or a range `from-to` (Go's
/// `netip.ParseAddr`, `netip.ParsePrefix`, `netipx.ParseIPRange`).
pub(crate) fn check_ip_pattern(p: &str) -> Result<(), String> {
    if parse_ip_pattern(p).is_some() {
        Ok(())
    } else {
        Err(format!(
            "ip: invalid pattern: {}",
            crate::units::go_quote(p)
        ))
    }
}

/// A parsed IP filter pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPattern {
    /// One address.
    Addr(std::net::IpAddr),
    /// An address prefix (`10.0.0.0/8`).
    Prefix(std::net::IpAddr, u8),
    /// An inclusive range (`10.0.0.1-10.0.0.9`), both ends of one family.
    Range(std::net::IpAddr, std::net::IpAddr),
}

fn parse_addr(s: &str) -> Option<std::net::IpAddr> {
    // Go accepts an IPv6 zone (`fe80::1%eth0`); the zone does not take part in matching.
    let s = match s.split_once('%') {
        Some((addr, zone)) if addr.contains(':') && !zone.is_empty() => addr,
        Some(_) => return None,
        None => s,
    };
    s.parse().ok()
}

/// Parses an `ip("...")` pattern as Loki does.
pub fn parse_ip_pattern(p: &str) -> Option<IpPattern> {
    if let Some(a) = parse_addr(p) {
        return Some(IpPattern::Addr(a));
    }
    if let Some((addr, bits)) = p.split_once('/') {
        let a: std::net::IpAddr = addr.parse().ok()?;
        if bits.is_empty()
            || !bits.bytes().all(|b| b.is_ascii_digit())
            || (bits.len() > 1 && bits.starts_with('0'))
        {
            return None;
        }
        let n: u8 = bits.parse().ok()?;
        let max = if a.is_ipv4() { 32 } else { 128 };
        return if n <= max {
            Some(IpPattern::Prefix(a, n))
        } else {
            None
        };
    }
    let (from, to) = p.split_once('-')?;
    let (from, to) = (parse_addr(from)?, parse_addr(to)?);
    if from.is_ipv4() != to.is_ipv4() || to < from {
        return None;
    }
    Some(IpPattern::Range(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_order_moves_line_filters_up() {
        let q =
            r#"{a="b"} | json |= "x" | decolorize != "y" | line_format "z" |~ "w" | c="d" |= "v""#;
        let sel = crate::parse_log_selector(q).unwrap();
        let order: Vec<String> = execution_order(&sel.stages)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            order,
            [
                r#"|= "x" != "y""#,
                "| json",
                "| decolorize",
                r#"| line_format "z""#,
                r#"|~ "w""#,
                r#"| c="d""#,
                r#"|= "v""#
            ]
        );
    }

    #[test]
    fn ip_patterns() {
        assert!(parse_ip_pattern("192.168.0.1").is_some());
        assert!(parse_ip_pattern("10.0.0.0/8").is_some());
        assert!(parse_ip_pattern("10.0.0.1-10.0.0.9").is_some());
        assert!(parse_ip_pattern("::1").is_some());
        assert!(parse_ip_pattern("10.0.0.9-10.0.0.1").is_none());
        assert!(parse_ip_pattern("10.0.0.0/33").is_none());
        assert!(parse_ip_pattern("abc").is_none());
        assert_eq!(
            check_ip_pattern("abc").unwrap_err(),
            "ip: invalid pattern: \"abc\""
        );
    }
}
