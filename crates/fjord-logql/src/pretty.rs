//! Multi-line formatting, matching Loki's `syntax.Prettify` (served by
//! `/loki/api/v1/format_query`).
//!
//! A node whose one-line form ([`Display`](std::fmt::Display)) is at most 100 bytes stays on one
//! line, indented two spaces per level; a longer one is split: pipeline stages one per line,
//! function arguments and binary-operation legs on their own lines. Loki's oddities are kept so
//! the output is identical: `| decolorize` is never indented, a split line filter loses its `or`
//! alternatives, a split grouping prints `by ()` as nothing, and `on ()` without labels
//! disappears from a split binary operation.

use crate::ast::*;
use crate::printer::LineFilters;
use crate::units::{self, go_quote};

const MAX_CHARS_PER_LINE: usize = 100;

/// Formats a query as Loki's `Prettify` does.
pub fn pretty(expr: &Expr) -> String {
    match expr {
        Expr::Log(l) => pretty_selector(l, 0),
        Expr::Sample(s) => pretty_sample(s, 0),
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

fn need_split(s: &str) -> bool {
    s.len() > MAX_CHARS_PER_LINE
}

fn pretty_selector(l: &LogSelectorExpr, level: usize) -> String {
    let one_line = l.to_string();
    if l.stages.is_empty() || !need_split(&one_line) {
        return indent(level) + &one_line;
    }
    let matchers_only = LogSelectorExpr {
        matchers: l.matchers.clone(),
        stages: Vec::new(),
    };
    let mut s = format!("{}{}\n", indent(level), matchers_only);
    let stages: Vec<String> = l
        .stages
        .iter()
        .map(|st| pretty_stage(st, level + 1))
        .collect();
    s.push_str(&stages.join("\n"));
    s
}

fn pretty_stage(st: &Stage, level: usize) -> String {
    match st {
        Stage::LineFilters(filters) => pretty_line_filters(filters, level),
        Stage::Decolorize => st.to_string(),
        _ => indent(level) + &st.to_string(),
    }
}

/// Loki's `LineFilterExpr.Pretty`: the chain is split from its end; the split-off filters are
/// printed one per line without their `or` alternatives, the longest prefix that fits stays on
/// one line. (Loki recurses; this computes the same lines iteratively.)
fn pretty_line_filters(filters: &[LineFilter], level: usize) -> String {
    let ind = indent(level);
    // Length of the one-line form of filters[..j] for each j, to find the longest fitting prefix.
    let mut fitting = 0;
    let mut len = 0;
    for (j, f) in filters.iter().enumerate() {
        len += f.to_string().len() + usize::from(j > 0);
        if len > MAX_CHARS_PER_LINE {
            break;
        }
        fitting = j + 1;
    }
    let mut lines = Vec::new();
    if fitting > 0 {
        lines.push(format!("{ind}{}", LineFilters(&filters[..fitting])));
    }
    for f in &filters[fitting..] {
        lines.push(format!("{ind}{} {}", f.op.as_str(), f.value));
    }
    lines.join("\n")
}

fn pretty_grouping(g: &Grouping) -> String {
    let mut s = String::new();
    if g.without {
        s.push_str(" without");
    } else if !g.labels.is_empty() {
        s.push_str(" by");
    }
    if !g.labels.is_empty() {
        s.push_str(&format!(" ({})", g.labels.join(", ")));
    }
    s
}

fn pretty_range(r: &LogRange, level: usize) -> String {
    let mut s = pretty_selector(&r.selector, level);
    if let Some(u) = &r.unwrap {
        s.push('\n');
        let lvl = level + 1;
        s.push_str(&indent(lvl));
        match u.conversion {
            Some(c) => s.push_str(&format!("| unwrap {}({})", c.as_str(), u.label)),
            None => s.push_str(&format!("| unwrap {}", u.label)),
        }
        for pf in &u.post_filters {
            s.push_str(&format!("\n{}| {}", indent(lvl), pf));
        }
    }
    s.push_str(&format!(
        " [{}]",
        units::format_prometheus_duration(r.range)
    ));
    if r.offset != 0 {
        s.push_str(&format!(
            " offset {}",
            units::format_prometheus_duration(r.offset)
        ));
    }
    s
}

fn binop_operator(b: &BinOp) -> String {
    let mut op = b.op.as_str().to_string();
    if b.modifier.return_bool {
        op.push_str(" bool");
    }
    let m = &b.modifier.matching;
    let mut group = match m.card {
        Cardinality::OneToOne => String::new(),
        Cardinality::ManyToOne => "group_left".to_string(),
        Cardinality::OneToMany => "group_right".to_string(),
    };
    if !m.include.is_empty() {
        group = format!("{group} ({})", m.include.join(", "));
    }
    if !m.labels.is_empty() {
        let kw = if m.on { "on" } else { "ignoring" };
        op = format!("{op} {kw} ({}) {group}", m.labels.join(", "));
    }
    op
}

fn pretty_sample(e: &SampleExpr, level: usize) -> String {
    let one_line = e.to_string();
    let ind = indent(level);
    if !need_split(&one_line) {
        return ind + &one_line;
    }
    match e {
        SampleExpr::RangeAggregation(r) => {
            let mut s = format!("{ind}{}(\n", r.op.as_str());
            if let Some(p) = r.param {
                s.push_str(&format!(
                    "{}{},\n",
                    indent(level + 1),
                    units::format_float_v(p)
                ));
            }
            s.push_str(&pretty_range(&r.range, level + 1));
            s.push_str(&format!("\n{ind})"));
            if let Some(g) = &r.grouping {
                s.push_str(&pretty_grouping(g));
            }
            s
        }
        SampleExpr::VectorAggregation(v) => {
            let left = pretty_sample(&v.inner, level + 1);
            let mut params = Vec::new();
            if let Some(k) = v.param {
                params.push(format!("{}{k}", indent(level + 1)));
            }
            params.push(left);
            let mut s = format!("{ind}{}{}(\n", v.op.as_str(), pretty_grouping(&v.grouping));
            let n = params.len();
            for (i, p) in params.into_iter().enumerate() {
                s.push_str(&p);
                if i + 1 < n {
                    s.push(',');
                }
                s.push('\n');
            }
            s.push_str(&ind);
            s.push(')');
            s
        }
        SampleExpr::BinOp(b) => {
            format!(
                "{}\n{ind}{}\n{}",
                pretty_sample(&b.lhs, level + 1),
                binop_operator(b),
                pretty_sample(&b.rhs, level + 1)
            )
        }
        SampleExpr::LabelReplace(l) => {
            let inner = indent(level + 1);
            let params = [
                pretty_sample(&l.inner, level + 1),
                format!("{inner}{}", go_quote(&l.dst)),
                format!("{inner}{}", go_quote(&l.replacement)),
                format!("{inner}{}", go_quote(&l.src)),
                format!("{inner}{}", go_quote(&l.regex)),
            ];
            format!("{ind}label_replace(\n{}\n{ind})", params.join(",\n"))
        }
        SampleExpr::Literal(_) | SampleExpr::Vector(_) => ind + &one_line,
    }
}
