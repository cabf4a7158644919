//! `Display` for every syntax node: the canonical single-line form, byte for byte what Loki's
//! `String()` methods print.
//!
//! Loki's printing is not always the query as written, and Fjord prints the same way because
//! the text shows up in API answers (`format_query`), error messages (`stage '...'`) and cache
//! keys. Notable cases: binary operations are fully parenthesised; vector aggregations print the
//! grouping before the arguments with no space (`sum by (a)(...)`); `vector(1)` prints as
//! `vector(1.000000)`; numeric label filters print `==` for `=`; a bytes filter prints its value
//! in SI units (`1KiB` becomes `1.0kB`, a lossy rewrite Loki also does); `offset` prints Go's
//! duration form (`offset 1h0m0s`) while ranges print Prometheus' (`[1h]`); `ignoring ()` is
//! dropped; a label-filter regex that Loki cannot simplify prints backquoted (`a=~`\d+``).

use std::fmt::{self, Display, Formatter, Write};

use fjord_model::{LabelMatcher, MatchOp};

use crate::ast::*;
use crate::goregex;
use crate::units::{self, go_quote};

/// Prints a stream matcher as Prometheus does: the name is quoted when it is not a plain
/// `[a-zA-Z_][a-zA-Z0-9_]*` name.
pub(crate) fn write_matcher(f: &mut impl Write, m: &LabelMatcher) -> fmt::Result {
    let plain = !m.name.is_empty()
        && m.name
            .char_indices()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if plain {
        f.write_str(&m.name)?;
    } else {
        f.write_str(&go_quote(&m.name))?;
    }
    f.write_str(m.op.as_str())?;
    f.write_str(&go_quote(&m.value))
}

pub(crate) fn write_selector(f: &mut impl Write, matchers: &[LabelMatcher]) -> fmt::Result {
    f.write_char('{')?;
    for (i, m) in matchers.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_matcher(f, m)?;
    }
    f.write_char('}')
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(l) => l.fmt(f),
            Expr::Sample(s) => s.fmt(f),
        }
    }
}

impl Display for LogSelectorExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_selector(f, &self.matchers)?;
        for stage in &self.stages {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

impl Display for LineMatch {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LineMatch::Text(s) => f.write_str(&go_quote(s)),
            LineMatch::Ip(s) => write!(f, "ip({})", go_quote(s)),
        }
    }
}

impl Display for LineFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.as_str(), self.value)?;
        for alt in &self.or {
            write!(f, " or {alt}")?;
        }
        Ok(())
    }
}

/// Line filters joined by spaces, as one Loki line-filter stage prints.
pub(crate) struct LineFilters<'a>(pub(crate) &'a [LineFilter]);

impl Display for LineFilters<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, lf) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            lf.fmt(f)?;
        }
        Ok(())
    }
}

fn write_extractions(f: &mut Formatter<'_>, exprs: &[LabelExtraction]) -> fmt::Result {
    for (i, e) in exprs.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{}={}", e.name, go_quote(&e.expression))?;
    }
    Ok(())
}

fn write_named_matchers(f: &mut Formatter<'_>, items: &[NamedMatcher]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        match item {
            NamedMatcher::Name(n) => f.write_str(n)?,
            NamedMatcher::Matcher(m) => write_matcher(f, m)?,
        }
    }
    Ok(())
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilters(filters) => LineFilters(filters).fmt(f),
            Stage::Logfmt(p) => {
                if p.extractions.is_empty() {
                    f.write_str("| logfmt")?;
                    if p.strict {
                        f.write_str(" --strict")?;
                    }
                    if p.keep_empty {
                        f.write_str(" --keep-empty")?;
                    }
                    Ok(())
                } else {
                    f.write_str("| logfmt ")?;
                    if p.strict {
                        f.write_str("--strict ")?;
                    }
                    if p.keep_empty {
                        f.write_str("--keep-empty ")?;
                    }
                    write_extractions(f, &p.extractions)
                }
            }
            Stage::Json(exprs) if exprs.is_empty() => f.write_str("| json"),
            Stage::Json(exprs) => {
                f.write_str("| json ")?;
                write_extractions(f, exprs)
            }
            Stage::Regexp(re) => write!(f, "| regexp {}", go_quote(re)),
            Stage::Pattern(p) => write!(f, "| pattern {}", go_quote(p)),
            Stage::Unpack => f.write_str("| unpack"),
            Stage::Decolorize => f.write_str("| decolorize"),
            Stage::LabelFilter(lf) => write!(f, "| {lf}"),
            Stage::LineFormat(t) => write!(f, "| line_format {}", go_quote(t)),
            Stage::LabelFormat(formats) => {
                f.write_str("| label_format ")?;
                for (i, lf) in formats.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    match &lf.value {
                        LabelFormatValue::Rename(src) => write!(f, "{}={}", lf.name, src)?,
                        LabelFormatValue::Template(t) => write!(f, "{}={}", lf.name, go_quote(t))?,
                    }
                }
                Ok(())
            }
            Stage::Drop(items) => {
                f.write_str("| drop ")?;
                write_named_matchers(f, items)
            }
            Stage::Keep(items) => {
                f.write_str("| keep ")?;
                write_named_matchers(f, items)
            }
        }
    }
}

impl Display for LabelFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::And(l, r) => write!(f, "( {l} , {r} )"),
            LabelFilter::Or(l, r) => write!(f, "( {l} or {r} )"),
            LabelFilter::String(m) => {
                if m.op == MatchOp::Re && goregex::label_regex_is_raw(&m.value) {
                    if m.value.contains('`') {
                        write!(f, "{}=~{}", m.name, go_quote(&m.value))
                    } else {
                        write!(f, "{}=~`{}`", m.name, m.value)
                    }
                } else {
                    write_matcher(f, m)
                }
            }
            LabelFilter::Number { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), units::format_float_f(*value))
            }
            LabelFilter::Duration { name, op, value } => {
                write!(
                    f,
                    "{name}{}{}",
                    op.as_str(),
                    units::format_go_duration(*value)
                )
            }
            LabelFilter::Bytes { name, op, value } => {
                write!(f, "{name}{}{}", op.as_str(), units::format_bytes(*value))
            }
            LabelFilter::Ip {
                name,
                negated,
                pattern,
            } => {
                write!(
                    f,
                    "{name}{}ip({})",
                    if *negated { "!=" } else { "=" },
                    go_quote(pattern)
                )
            }
        }
    }
}

impl Display for Unwrap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.conversion {
            Some(c) => write!(f, " | unwrap {}({})", c.as_str(), self.label)?,
            None => write!(f, " | unwrap {}", self.label)?,
        }
        for pf in &self.post_filters {
            write!(f, " | {pf}")?;
        }
        Ok(())
    }
}

impl Display for LogRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.selector.fmt(f)?;
        if let Some(u) = &self.unwrap {
            u.fmt(f)?;
        }
        write!(f, "[{}]", units::format_prometheus_duration(self.range))?;
        if self.offset != 0 {
            write!(f, " offset {}", units::format_go_duration(self.offset))?;
        }
        Ok(())
    }
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let kw = if self.without { "without" } else { "by" };
        write!(f, " {kw} ({})", self.labels.join(","))
    }
}

impl Display for BinOpModifier {
    /// The operator suffix after the operator symbol, as Loki's `BinOpExpr.String` builds it
    /// (including its double space after `on (...)` without a group modifier).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.return_bool {
            f.write_str(" bool")?;
        }
        let m = &self.matching;
        if m.on || !m.labels.is_empty() {
            let mut group = match m.card {
                Cardinality::OneToOne => String::new(),
                Cardinality::ManyToOne => "group_left".to_string(),
                Cardinality::OneToMany => "group_right".to_string(),
            };
            if !m.include.is_empty() {
                group = format!("{group} ({})", m.include.join(","));
            }
            let kw = if m.on { "on" } else { "ignoring" };
            write!(f, " {kw} ({}) {group}", m.labels.join(","))?;
        }
        Ok(())
    }
}

impl Display for SampleExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SampleExpr::RangeAggregation(r) => {
                write!(f, "{}(", r.op.as_str())?;
                if let Some(p) = r.param {
                    write!(f, "{},", units::format_float_f(p))?;
                }
                write!(f, "{})", r.range)?;
                if let Some(g) = &r.grouping {
                    g.fmt(f)?;
                }
                Ok(())
            }
            SampleExpr::VectorAggregation(v) => {
                f.write_str(v.op.as_str())?;
                if !v.grouping.is_singleton() {
                    v.grouping.fmt(f)?;
                }
                f.write_char('(')?;
                if let Some(k) = v.param {
                    write!(f, "{k},")?;
                }
                write!(f, "{})", v.inner)
            }
            SampleExpr::BinOp(b) => {
                write!(f, "({} {}{} {})", b.lhs, b.op.as_str(), b.modifier, b.rhs)
            }
            SampleExpr::Literal(v) => f.write_str(&units::format_float_v(*v)),
            SampleExpr::Vector(v) => write!(f, "vector({})", units::format_float_6(*v)),
            SampleExpr::LabelReplace(l) => write!(
                f,
                "label_replace({},{},{},{},{})",
                l.inner,
                go_quote(&l.dst),
                go_quote(&l.replacement),
                go_quote(&l.src),
                go_quote(&l.regex)
            ),
        }
    }
}
