//! The parse tree: Go's `text/template/parse` nodes, resolved for execution.
//!
//! Function names are resolved to [`Func`] at parse time, number literals are parsed once, and
//! literal regular expressions of `regexReplaceAll`, `regexReplaceAllLiteral` and `count` are
//! compiled once ([`Command::regex`]); computed patterns are cached per command. Every node keeps its byte offset in the source (`pos`)
//! and prints back as Go's `Node.String()` does ([`std::fmt::Display`]), which is what Go's
//! execution errors quote (`executing "line" at <.foo>: …`).

use std::fmt;
use std::sync::Arc;

use crate::funcs::Func;
use crate::goregex::GoRegex;

/// A list of nodes (a template body, or the body of an `if`/`range`/`with`).
pub(crate) type List = Vec<Node>;

/// A statement-level node.
#[derive(Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Action),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template(TemplateCall),
    Break,
    Continue,
}

/// `{{pipeline}}`.
#[derive(Debug)]
pub(crate) struct Action {
    pub(crate) pos: usize,
    pub(crate) pipe: Pipe,
}

/// The shared shape of `if`, `range` and `with`.
#[derive(Debug)]
pub(crate) struct Branch {
    pub(crate) pos: usize,
    pub(crate) pipe: Pipe,
    pub(crate) list: List,
    pub(crate) else_list: Option<List>,
}

/// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place).
#[derive(Debug)]
pub(crate) struct TemplateCall {
    pub(crate) pos: usize,
    pub(crate) name: String,
    pub(crate) pipe: Option<Pipe>,
}

/// `$x, $y := cmd | cmd | …`.
#[derive(Debug)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    pub(crate) is_assign: bool,
    pub(crate) decl: Vec<String>,
    pub(crate) cmds: Vec<Command>,
}

/// One stage of a pipeline: a function, field or value with its arguments.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
    /// The compiled first argument when the command calls a regex function with a literal
    /// pattern; a compile failure is kept and reported when the command runs, as Go does.
    pub(crate) regex: Option<Arc<Result<GoRegex, String>>>,
    /// For a regex function whose pattern is computed (`regexReplaceAll .re …`): the last
    /// pattern seen and its compilation, so a pattern repeated line after line compiles once.
    pub(crate) regex_cache: Option<RegexCache>,
}

/// The last computed pattern of one command and its compiled form.
pub(crate) type RegexCache = std::sync::Mutex<Option<(String, Arc<Result<GoRegex, String>>)>>;

/// An operand.
#[derive(Debug)]
pub(crate) struct Arg {
    pub(crate) pos: usize,
    pub(crate) kind: ArgKind,
}

/// What an operand is.
#[derive(Debug)]
pub(crate) enum ArgKind {
    /// `.a.b` (identifiers without the dots).
    Field(Vec<String>),
    /// `(pipe).a.b` or `fn.a.b`.
    Chain(Box<Arg>, Vec<String>),
    /// `$x.a.b` (the first identifier keeps its `$`).
    Variable(Vec<String>),
    Ident(Func),
    Dot,
    Nil,
    Bool(bool),
    Number(Box<Number>),
    Str {
        quoted: String,
        text: String,
    },
    Pipe(Box<Pipe>),
}

/// A number literal under every type that can hold it (Go's `NumberNode`).
#[derive(Debug, Clone)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) is_int: bool,
    pub(crate) int: i64,
    pub(crate) is_uint: bool,
    pub(crate) uint: u64,
    pub(crate) is_float: bool,
    pub(crate) float: f64,
}

impl Number {
    /// Go's `newNumber`.
    pub(crate) fn parse(text: &str, char_constant: bool) -> Result<Number, String> {
        use crate::gostrconv::{parse_float, parse_int, parse_uint};
        let mut n = Number {
            text: text.to_string(),
            is_int: false,
            int: 0,
            is_uint: false,
            uint: 0,
            is_float: false,
            float: 0.0,
        };
        if char_constant {
            let r = crate::goquote::unquote_char_constant(text)?;
            n.int = r;
            n.is_int = true;
            n.uint = r as u64;
            n.is_uint = true;
            n.float = r as f64;
            n.is_float = true;
            return Ok(n);
        }
        if text.ends_with('i') && parse_float(&text[..text.len() - 1]).is_ok() {
            return Err(format!(
                "complex numbers are not supported: {}",
                crate::goquote::quote(text)
            ));
        }
        let u = parse_uint(text, 0);
        if let Ok(u) = u {
            n.is_uint = true;
            n.uint = u;
        }
        if let Ok(i) = parse_int(text, 0) {
            n.is_int = true;
            n.int = i;
            if i == 0 {
                n.is_uint = true;
                n.uint = 0;
            }
        }
        if n.is_int {
            n.is_float = true;
            n.float = n.int as f64;
        } else if n.is_uint {
            n.is_float = true;
            n.float = n.uint as f64;
        } else if let Ok(f) = parse_float(text) {
            if !text.contains(['.', 'e', 'E', 'p', 'P']) {
                return Err(format!("integer overflow: {}", crate::goquote::quote(text)));
            }
            n.is_float = true;
            n.float = f;
            if !n.is_int
                && f.fract() == 0.0
                && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
            {
                n.is_int = true;
                n.int = f as i64;
            }
            if !n.is_uint && f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
                n.is_uint = true;
                n.uint = f as u64;
            }
        }
        if !n.is_int && !n.is_uint && !n.is_float {
            return Err(format!(
                "illegal number syntax: {}",
                crate::goquote::quote(text)
            ));
        }
        Ok(n)
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &List) -> fmt::Result {
    for n in list {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text(t) => f.write_str(t),
            Node::Action(a) => write!(f, "{a}"),
            Node::If(b) => b.write(f, "if"),
            Node::Range(b) => b.write(f, "range"),
            Node::With(b) => b.write(f, "with"),
            Node::Template(t) => write!(f, "{t}"),
            Node::Break => f.write_str("{{break}}"),
            Node::Continue => f.write_str("{{continue}}"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{{}}}}}", self.pipe)
    }
}

impl Branch {
    pub(crate) fn write(&self, f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
        write!(f, "{{{{{name} {}}}}}", self.pipe)?;
        write_list(f, &self.list)?;
        if let Some(else_list) = &self.else_list {
            f.write_str("{{else}}")?;
            write_list(f, else_list)?;
        }
        f.write_str("{{end}}")
    }
}

impl fmt::Display for TemplateCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{{template {}", crate::goquote::quote(&self.name))?;
        if let Some(p) = &self.pipe {
            write!(f, " {p}")?;
        }
        f.write_str("}}")
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if let ArgKind::Pipe(p) = &a.kind {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ArgKind::Field(idents) => {
                for id in idents {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            ArgKind::Chain(node, fields) => {
                if let ArgKind::Pipe(p) = &node.kind {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for id in fields {
                    write!(f, ".{id}")?;
                }
                Ok(())
            }
            ArgKind::Variable(idents) => f.write_str(&idents.join(".")),
            ArgKind::Ident(func) => f.write_str(func.name()),
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Number(n) => f.write_str(&n.text),
            ArgKind::Str { quoted, .. } => f.write_str(quoted),
            ArgKind::Pipe(p) => write!(f, "{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_like_go() {
        let n = Number::parse("42", false).unwrap();
        assert!(n.is_int && n.is_uint && n.is_float);
        let n = Number::parse("1.5", false).unwrap();
        assert!(!n.is_int && n.is_float);
        let n = Number::parse("1e3", false).unwrap();
        assert!(n.is_int && n.int == 1000 && n.is_float);
        let n = Number::parse("-1", false).unwrap();
        assert!(n.is_int && !n.is_uint);
        let n = Number::parse("0x10", false).unwrap();
        assert_eq!(n.int, 16);
        assert!(
            Number::parse("99999999999999999999", false)
                .unwrap_err()
                .contains("integer overflow")
        );
        let n = Number::parse("'a'", true).unwrap();
        assert_eq!(n.int, 97);
        assert!(Number::parse("1i", false).is_err());
    }
}
