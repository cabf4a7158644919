//! Go's `text/template`, as Loki's `line_format` and `label_format` stages use it.
//!
//! A [`Template`] is parsed once per query and executed once per log line. It behaves like
//! `template.New(name).Option("missingkey=zero").Funcs(lokiFuncs).Parse(src)` in Loki
//! (`pkg/logql/log/fmt.go`): the data (`.`) is the entry's label set as a
//! `map[string]string`, a missing label reads as `""`, and the functions are exactly Loki's —
//! text/template's built-ins, Loki's own (`__line__`, `__timestamp__`, `regexReplaceAll`,
//! `unixToTime`, `alignLeft`, …) and the sprig subset Loki registers (`default`, `addf`,
//! `date`, `trunc`, …). Output, values and error texts are Go's, byte for byte where it
//! matters (`3e+06`, `<no value>`, `template: line:1:2: executing "line" at <.foo>: …`).
//!
//! ```
//! use fjord_template::{MapData, Template};
//!
//! let t = Template::parse(r#"{{ .method | upper }} {{ .status | default "-" }}"#).unwrap();
//! let data = MapData::new([("method", "get")]);
//! assert_eq!(t.execute(&data).unwrap(), "GET -");
//! ```
//!
//! Module map: `lexer` → `parser` → `ast`; `exec` walks the tree over `value`s, calling
//! `funcs`; Go library behaviour lives in `gofmt` (fmt), `gostrconv`
//! (strconv), `goquote`, `gotime` (time), `goregex` (regexp) and `decimal`
//! (shopspring/decimal).
//!
//! The crate is pure: no I/O, no global state. Templates are `Send + Sync`; execution
//! allocates only for output and for values functions build. Literal regex patterns are
//! compiled at parse time; a computed pattern is cached per command.
//!
//! # What the engine provides ([`TemplateData`])
//!
//! * `label(name)`: the entry's current labels — stream labels, structured metadata and parsed
//!   labels, as Loki's `LabelsBuilder.Map()` holds them at this stage (including `__error__` if
//!   set). `for_each_label` enumerates the same set (order irrelevant; used by `{{ . }}`,
//!   `range`, `len .` and `index .`).
//! * `line()`: the line as it is at this stage (after earlier `line_format`s), for `__line__`.
//! * `timestamp_ns()`: the entry's timestamp, for `__timestamp__`.
//! * `now_ns()` (optional): wall-clock time for `now`.
//!
//! Stage semantics stay in the engine, as in Loki: for `line_format`, parse with
//! [`Template::parse`] (name `line`) and, on [`ExecError`], keep the line and set
//! `__error__=TemplateFormatErr`, `__error_details__=<message>`; for `label_format`, parse each
//! template with [`Template::parse_named`]`("label", …)`, build the label map once per entry
//! before the stage's first template (later templates of the same stage do not see earlier
//! results), and on error leave the label unchanged. Loki prefixes parse errors with
//! `invalid line template: ` or `invalid template for label '<name>': `.
//!
//! # Known differences from Go/Loki
//!
//! * `Local` is UTC (Loki's container images have no local zone); named zones come from the
//!   IANA database compiled into `chrono-tz`, whose version may differ from Go's.
//! * Nesting is bounded — 100 levels of parentheses/`if`/`range`/`with` when parsing and 200
//!   levels of execution (template calls included) — where Go allows 10000 and 100000; the
//!   errors are Go's messages. Functions refuse to build strings over 64 MiB.
//! * Strings are UTF-8: bytes a Go template would produce that are not UTF-8 (`trunc`/`substr`
//!   cutting a character, `"\xff"` literals, `b64dec` of binary) become U+FFFD, one per byte,
//!   as Loki's JSON output renders them.
//! * Complex number literals (`1i`) are rejected at parse time; `%x`/`%b` of floats print as
//!   `%g`; `%#v` quotes strings only. Go's simple case mapping is approximated with Rust's
//!   Unicode tables (`ß` stays `ß` in `upper`, as in Go).
//! * Error messages follow Go's wording and positions; the few places where Go reports the
//!   `interface {}` type of a value (other than fields of JSON members) name the concrete type.

mod ast;
mod decimal;
mod exec;
mod funcs;
#[cfg(test)]
mod fuzz_tests;
mod gofmt;
mod goquote;
mod goregex;
mod gostrconv;
mod gotime;
mod lexer;
mod parser;
mod value;

use std::sync::Arc;

pub use value::{MapData, TemplateData};

/// A template that failed to parse. The message is Go's (`template: line:1: unclosed action`);
/// Loki reports it as a query parse error, prefixed by the stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    message: String,
}

impl ParseError {
    /// Go's error text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A template that failed while running on one entry. The message is Go's and is what Loki
/// stores in `__error_details__`, with `__error__="TemplateFormatErr"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExecError {
    message: String,
}

impl ExecError {
    /// Go's error text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A parsed template, ready to run any number of times (from any number of threads).
#[derive(Debug, Clone)]
pub struct Template {
    name: Arc<str>,
    source: Arc<str>,
    trees: Arc<parser::TreeSet>,
    /// `{{.label}}` alone: Loki copies the label without running the template.
    simple_key: Option<String>,
}

impl Template {
    /// Parses a `line_format` template (Go template name `line`).
    pub fn parse(src: &str) -> Result<Template, ParseError> {
        Self::parse_named("line", src)
    }

    /// Parses a template under a Go template name: Loki uses `line` for `line_format` and
    /// `label` for `label_format`; the name appears in error messages.
    pub fn parse_named(name: &str, src: &str) -> Result<Template, ParseError> {
        let trees = parser::parse(name, src).map_err(|message| ParseError { message })?;
        let simple_key = trees.get(name).and_then(|root| match root.as_slice() {
            [ast::Node::Action(a)] if a.pipe.decl.is_empty() && a.pipe.cmds.len() == 1 => {
                match a.pipe.cmds[0].args.as_slice() {
                    [
                        ast::Arg {
                            kind: ast::ArgKind::Field(idents),
                            ..
                        },
                    ] if idents.len() == 1 => Some(idents[0].clone()),
                    _ => None,
                }
            }
            _ => None,
        });
        Ok(Template {
            name: name.into(),
            source: src.into(),
            trees: Arc::new(trees),
            simple_key,
        })
    }

    /// The Go template name (`line` or `label`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The template text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The label a template of the form `{{.label}}` copies, if that is all it does.
    pub fn simple_key(&self) -> Option<&str> {
        self.simple_key.as_deref()
    }

    /// Runs the template on one entry and returns the output.
    pub fn execute(&self, data: &dyn TemplateData) -> Result<String, ExecError> {
        let mut out = String::new();
        self.execute_into(data, &mut out)?;
        Ok(out)
    }

    /// Runs the template, appending the output to `out` (reuse one buffer across lines). On
    /// error `out` may hold partial output, as Go's writer would; Loki then keeps the original
    /// line (or label value) and sets `__error__`.
    pub fn execute_into(&self, data: &dyn TemplateData, out: &mut String) -> Result<(), ExecError> {
        if let Some(key) = &self.simple_key {
            out.push_str(data.label(key).unwrap_or(""));
            return Ok(());
        }
        let Some(root) = self.trees.get(&*self.name) else {
            return Err(ExecError {
                message: format!(
                    "template: {}: {} is an incomplete or empty template",
                    self.name,
                    goquote::quote(&self.name)
                ),
            });
        };
        let mut ex = exec::Exec::new(&self.trees, &self.name, &self.source, data, out);
        ex.run(root).map_err(|message| ExecError { message })
    }

    /// The label names the template reads as `.name` fields, in order of first appearance
    /// (Loki's `RequiredLabelNames`; fields chained on a function result or variable are not
    /// included, as in Loki).
    pub fn required_labels(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(root) = self.trees.get(&*self.name) {
            collect_fields_list(root, &mut out);
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|n| seen.insert(n.clone()));
        out
    }
}

fn collect_fields_list(list: &[ast::Node], out: &mut Vec<String>) {
    for n in list {
        match n {
            ast::Node::Action(a) => collect_fields_pipe(&a.pipe, out),
            ast::Node::If(b) | ast::Node::Range(b) | ast::Node::With(b) => {
                collect_fields_pipe(&b.pipe, out);
                collect_fields_list(&b.list, out);
                if let Some(e) = &b.else_list {
                    collect_fields_list(e, out);
                }
            }
            _ => {}
        }
    }
}

fn collect_fields_pipe(p: &ast::Pipe, out: &mut Vec<String>) {
    for c in &p.cmds {
        for a in &c.args {
            match &a.kind {
                ast::ArgKind::Field(idents) => out.extend(idents.iter().cloned()),
                ast::ArgKind::Pipe(inner) => collect_fields_pipe(inner, out),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Template>();
    }
}
