//! Loki's pattern syntax (`| pattern "<ip> - <_> [<ts>]"` and `|> "<_> error <_>"`).
//!
//! A pattern is a sequence of literal text and captures. `<name>` (name = `[A-Za-z_][A-Za-z0-9_]*`)
//! is a named capture, `<_>` an unnamed one; any other `<` is literal text. The evaluator matches
//! a line by finding each literal in turn after the previous one; a capture takes the text in
//! between. Validation rules and messages are Loki's:
//! * the `pattern` parser needs at least one named capture, unique names, and no two captures
//!   next to each other;
//! * a pattern line filter (`|>`/`!>`) may be empty, may not have named captures, and may not
//!   have two captures next to each other.

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternNode {
    /// Text that must appear literally.
    Literal(String),
    /// `<name>` (`Some`) or `<_>` (`None`).
    Capture(Option<String>),
}

/// Parses a pattern into literals and captures (adjacent literal characters merged).
pub fn parse_pattern(p: &str) -> Result<Vec<PatternNode>, String> {
    if p.is_empty() {
        return Err(
            "parse error at line 1, col 1: syntax error: unexpected $end, expecting IDENTIFIER or LITERAL".to_string()
        );
    }
    let mut nodes: Vec<PatternNode> = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(name) = capture_at(rest) {
            rest = &rest[name.len() + 2..];
            nodes.push(PatternNode::Capture(if name == "_" {
                None
            } else {
                Some(name.to_string())
            }));
            continue;
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or_default();
        rest = chars.as_str();
        match nodes.last_mut() {
            Some(PatternNode::Literal(s)) => s.push(c),
            _ => nodes.push(PatternNode::Literal(c.to_string())),
        }
    }
    Ok(nodes)
}

/// The name of a `<name>` capture at the start of `s`.
fn capture_at(s: &str) -> Option<&str> {
    let body = s.strip_prefix('<')?;
    let end = body.find('>')?;
    let name = &body[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    Some(name)
}

fn capture_text(name: &Option<String>) -> String {
    format!("<{}>", name.as_deref().unwrap_or("_"))
}

fn check_consecutive(nodes: &[PatternNode]) -> Result<(), String> {
    for pair in nodes.windows(2) {
        if let [PatternNode::Capture(a), PatternNode::Capture(b)] = pair {
            return Err(format!(
                "found consecutive capture '{}{}': invalid expression",
                capture_text(a),
                capture_text(b)
            ));
        }
    }
    Ok(())
}

/// Validates the pattern of `| pattern "..."`; returns the capture names in order.
pub fn validate_parser_pattern(p: &str) -> Result<Vec<String>, String> {
    let nodes = parse_pattern(p)?;
    let names: Vec<String> = nodes
        .iter()
        .filter_map(|n| match n {
            PatternNode::Capture(Some(name)) => Some(name.clone()),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Err("at least one capture is required".to_string());
    }
    check_consecutive(&nodes)?;
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n) {
            return Err(format!("duplicate capture name ({n}): invalid expression"));
        }
    }
    Ok(names)
}

/// Validates the pattern of a `|>`/`!>` line filter.
pub fn validate_filter_pattern(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    let nodes = parse_pattern(p)?;
    check_consecutive(&nodes)?;
    if let Some(PatternNode::Capture(Some(name))) = nodes
        .iter()
        .find(|n| matches!(n, PatternNode::Capture(Some(_))))
    {
        return Err(format!("named captures are not allowed: found '<{name}>'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_literals_and_captures() {
        assert_eq!(
            parse_pattern("<ip> - <_> [<ts>] <a-b>").unwrap(),
            vec![
                PatternNode::Capture(Some("ip".into())),
                PatternNode::Literal(" - ".into()),
                PatternNode::Capture(None),
                PatternNode::Literal(" [".into()),
                PatternNode::Capture(Some("ts".into())),
                PatternNode::Literal("] <a-b>".into()),
            ]
        );
    }

    #[test]
    fn loki_rules() {
        assert_eq!(
            validate_parser_pattern("<_>").unwrap_err(),
            "at least one capture is required"
        );
        assert_eq!(
            validate_parser_pattern("<a><b>").unwrap_err(),
            "found consecutive capture '<a><b>': invalid expression"
        );
        assert_eq!(
            validate_parser_pattern("<a> <a>").unwrap_err(),
            "duplicate capture name (a): invalid expression"
        );
        assert!(validate_parser_pattern("<_> <a> <_>").is_ok());
        assert_eq!(
            validate_filter_pattern("<a>").unwrap_err(),
            "named captures are not allowed: found '<a>'"
        );
        assert_eq!(
            validate_filter_pattern("<_><_>").unwrap_err(),
            "found consecutive capture '<_><_>': invalid expression"
        );
        assert!(validate_filter_pattern("").is_ok());
    }
}
