//! Template execution: Go's `text/template` `exec.go`, step for step.
//!
//! The executor walks the tree with a *dot* value and a variable stack, evaluates pipelines
//! (the previous command's result becomes the last argument of the next), checks and converts
//! arguments by the callee's Go parameter types, and prints action results with Go's `fmt`
//! rules. Options match Loki's: `missingkey=zero`, so a missing label is `""`.
//!
//! Errors carry Go's text, including the location and node Go names:
//! `template: line:1:2: executing "line" at <.foo>: foo is not a method but has arguments`.
//! To produce them the executor tracks the node being evaluated ([`At`]), as Go's `state.at`
//! does. `{{break}}`/`{{continue}}` travel as [`Flow`] signals, never as panics.

use std::borrow::Cow;
use std::rc::Rc;

use crate::ast::{Action, Arg, ArgKind, Branch, Command, List, Node, Number, Pipe, TemplateCall};
use crate::funcs::dates::Method;
use crate::funcs::{Func, Ty};
use crate::goquote::quote;
use crate::value::{Kind, TemplateData, Value, sorted_labels};

/// How deeply execution may recurse — `{{template}}` calls, `if`/`range`/`with` bodies and
/// parenthesized pipelines together — before stopping with Go's "exceeded maximum template
/// depth" error. Go allows 100000 template calls on its growable stacks; native thread stacks
/// are fixed (this bound keeps a debug build within 1 MiB).
pub(crate) const MAX_EXEC_DEPTH: usize = 200;

/// Non-local exits from a walk.
pub(crate) enum Flow {
    Break,
    Continue,
    Err(String),
}

pub(crate) type R<T> = Result<T, Flow>;

/// The node being evaluated, for error messages.
#[derive(Clone, Copy)]
pub(crate) enum At<'a> {
    Nothing,
    Action(&'a Action),
    Branch(&'a Branch, &'static str),
    Template(&'a TemplateCall),
    Pipe(&'a Pipe),
    Cmd(&'a Command),
    Arg(&'a Arg),
}

impl At<'_> {
    fn pos(&self) -> Option<usize> {
        match self {
            At::Nothing => None,
            At::Action(a) => Some(a.pos),
            At::Branch(b, _) => Some(b.pos),
            At::Template(t) => Some(t.pos),
            At::Pipe(p) => Some(p.pos),
            At::Cmd(c) => Some(c.pos),
            At::Arg(a) => Some(a.pos),
        }
    }

    fn context(&self) -> String {
        struct B<'x>(&'x Branch, &'static str);
        impl std::fmt::Display for B<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.write(f, self.1)
            }
        }
        match self {
            At::Nothing => String::new(),
            At::Action(a) => a.to_string(),
            At::Branch(b, kind) => B(b, kind).to_string(),
            At::Template(t) => t.to_string(),
            At::Pipe(p) => p.to_string(),
            At::Cmd(c) => c.to_string(),
            At::Arg(a) => a.to_string(),
        }
    }
}

/// What a call invokes: a function of the map, or a method of a value.
#[derive(Clone)]
pub(crate) enum Callee<'a> {
    Func(Func),
    Method(Method, Value<'a>),
}

/// The execution state.
pub(crate) struct Exec<'a, 'o> {
    pub(crate) trees: &'a crate::parser::TreeSet,
    pub(crate) parse_name: &'a str,
    pub(crate) source: &'a str,
    pub(crate) data: &'a dyn TemplateData,
    pub(crate) out: &'o mut String,
    vars: smallvec::SmallVec<[(&'a str, Value<'a>); 4]>,
    at: At<'a>,
    name: &'a str,
    depth: usize,
}

impl<'a, 'o> Exec<'a, 'o> {
    pub(crate) fn new(
        trees: &'a crate::parser::TreeSet,
        parse_name: &'a str,
        source: &'a str,
        data: &'a dyn TemplateData,
        out: &'o mut String,
    ) -> Self {
        Exec {
            trees,
            parse_name,
            source,
            data,
            out,
            vars: smallvec::smallvec![("$", Value::Labels)],
            at: At::Nothing,
            name: parse_name,
            depth: 0,
        }
    }

    /// Runs the main template.
    pub(crate) fn run(&mut self, root: &'a List) -> Result<(), String> {
        match self.walk(&Value::Labels, root) {
            Ok(()) => Ok(()),
            Err(Flow::Err(e)) => Err(e),
            // The parser rejects break/continue outside range; stay defensive.
            Err(Flow::Break | Flow::Continue) => Ok(()),
        }
    }

    /// Go's `state.errorf`: prefixes the location and context of the current node.
    pub(crate) fn errorf(&self, msg: impl std::fmt::Display) -> Flow {
        Flow::Err(match self.at.pos() {
            None => format!("template: {}: {}", self.name, msg),
            Some(pos) => {
                let text = self.source.get(..pos).unwrap_or(self.source);
                let (line, col) = match text.rfind('\n') {
                    None => (1, pos),
                    Some(nl) => (1 + text.matches('\n').count(), pos - (nl + 1)),
                };
                format!(
                    "template: {}:{}:{}: executing {} at <{}>: {}",
                    self.parse_name,
                    line,
                    col,
                    quote(self.name),
                    self.at.context(),
                    msg
                )
            }
        })
    }

    fn walk(&mut self, dot: &Value<'a>, list: &'a [Node]) -> R<()> {
        for node in list {
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(a) => {
                    self.at = At::Action(a);
                    let val = self.eval_pipeline(dot, &a.pipe)?;
                    if a.pipe.decl.is_empty() {
                        self.at = At::Action(a);
                        crate::gofmt::print_value(self.out, &val, self.data);
                    }
                }
                Node::If(b) => self.walk_if_or_with(dot, b, false)?,
                Node::With(b) => self.walk_if_or_with(dot, b, true)?,
                Node::Range(b) => self.walk_range(dot, b)?,
                Node::Template(t) => self.walk_template(dot, t)?,
                Node::Break => return Err(Flow::Break),
                Node::Continue => return Err(Flow::Continue),
            }
        }
        Ok(())
    }

    fn enter(&mut self) -> R<()> {
        if self.depth >= MAX_EXEC_DEPTH {
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    fn walk_if_or_with(&mut self, dot: &Value<'a>, b: &'a Branch, with: bool) -> R<()> {
        self.enter()?;
        let r = self.walk_if_or_with_inner(dot, b, with);
        self.depth -= 1;
        r
    }

    fn walk_if_or_with_inner(&mut self, dot: &Value<'a>, b: &'a Branch, with: bool) -> R<()> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let val = val.indirect_interface();
        let r = if val.truth(self.data) {
            if with {
                self.walk(&val, &b.list)
            } else {
                self.walk(dot, &b.list)
            }
        } else if let Some(el) = &b.else_list {
            self.walk(dot, el)
        } else {
            Ok(())
        };
        self.vars.truncate(mark);
        r
    }

    fn set_top_var(&mut self, n: usize, v: Value<'a>) {
        let len = self.vars.len();
        if let Some(slot) = len.checked_sub(n).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = v;
        }
    }

    fn set_var(&mut self, name: &str, v: Value<'a>) -> R<()> {
        match self.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            Some(slot) => {
                slot.1 = v;
                Ok(())
            }
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    fn var_value(&self, name: &str) -> R<Value<'a>> {
        match self.vars.iter().rev().find(|(n, _)| *n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(self.errorf(format!("undefined variable: {name}"))),
        }
    }

    /// One iteration of a range body; returns whether the loop must stop (`break`).
    fn range_iteration(
        &mut self,
        b: &'a Branch,
        mark: usize,
        index: Value<'a>,
        elem: Value<'a>,
    ) -> R<bool> {
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0], index.clone())?;
                } else {
                    self.set_var(&decl[0], elem.clone())?;
                }
            } else {
                self.set_top_var(1, elem.clone());
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(&decl[1], elem.clone())?;
            } else {
                self.set_top_var(2, index);
            }
        }
        let r = self.walk(&elem, &b.list);
        self.vars.truncate(mark);
        match r {
            Ok(()) | Err(Flow::Continue) => Ok(false),
            Err(Flow::Break) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn walk_range(&mut self, dot: &Value<'a>, b: &'a Branch) -> R<()> {
        self.at = At::Branch(b, "range");
        self.enter()?;
        let r = self.walk_range_inner(dot, b);
        self.depth -= 1;
        r
    }

    fn walk_range_inner(&mut self, dot: &Value<'a>, b: &'a Branch) -> R<()> {
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?.indirect_interface();
        let mark = self.vars.len();
        let mut ran = false;
        let r: R<()> = (|| {
            match &val {
                Value::Int(_)
                | Value::Int64(_)
                | Value::Uint8(_)
                | Value::Duration(_)
                | Value::Month(_)
                | Value::Weekday(_) => {
                    if b.pipe.decl.len() > 1 {
                        let shown = crate::gofmt::sprint(std::slice::from_ref(&val), self.data);
                        return Err(self.errorf(format!(
                            "can't use {shown} to iterate over more than one variable"
                        )));
                    }
                    let n = val.int_of();
                    for i in 0..n.max(0) {
                        ran = true;
                        let elem = match &val {
                            Value::Int64(_) => Value::Int64(i),
                            Value::Uint8(_) => Value::Uint8(i as u8),
                            Value::Duration(_) => Value::Duration(crate::gotime::GoDuration(i)),
                            Value::Month(_) => Value::Month(i),
                            Value::Weekday(_) => Value::Weekday(i),
                            _ => Value::Int(i),
                        };
                        if self.range_iteration(b, mark, Value::Invalid, elem)? {
                            break;
                        }
                    }
                }
                Value::List(l) => {
                    let l = Rc::clone(l);
                    for (i, e) in l.iter().enumerate() {
                        ran = true;
                        if self.range_iteration(
                            b,
                            mark,
                            Value::Int(i as i64),
                            Value::from_json(e),
                        )? {
                            break;
                        }
                    }
                }
                Value::Map(m) => {
                    let m = Rc::clone(m);
                    for (k, e) in m.iter() {
                        ran = true;
                        let key = Value::Str(Cow::Owned(k.clone()));
                        if self.range_iteration(b, mark, key, Value::from_json(e))? {
                            break;
                        }
                    }
                }
                Value::Labels => {
                    for (k, v) in sorted_labels(self.data) {
                        ran = true;
                        if self.range_iteration(
                            b,
                            mark,
                            Value::Str(Cow::Owned(k)),
                            Value::Str(Cow::Owned(v)),
                        )? {
                            break;
                        }
                    }
                }
                Value::Invalid | Value::NilIface => {}
                other => {
                    // The context stays on the pipeline's last node, as in Go.
                    let shown = crate::gofmt::sprint(std::slice::from_ref(other), self.data);
                    return Err(self.errorf(format!("range can't iterate over {shown}")));
                }
            }
            Ok(())
        })();
        r?;
        if !ran && let Some(el) = &b.else_list {
            let r = self.walk(dot, el);
            self.vars.truncate(outer);
            return r;
        }
        self.vars.truncate(outer);
        Ok(())
    }

    fn walk_template(&mut self, dot: &Value<'a>, t: &'a TemplateCall) -> R<()> {
        self.at = At::Template(t);
        let Some(tree) = self.trees.get(&t.name) else {
            return Err(self.errorf(format!("template {} not defined", quote(&t.name))));
        };
        if self.depth >= MAX_EXEC_DEPTH {
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({MAX_EXEC_DEPTH})"
            )));
        }
        let new_dot = match &t.pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Value::Invalid,
        };
        let saved_vars =
            std::mem::replace(&mut self.vars, smallvec::smallvec![("$", new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, t.name.as_str());
        self.depth += 1;
        let r = self.walk(&new_dot, tree);
        self.depth -= 1;
        self.name = saved_name;
        self.vars = saved_vars;
        r
    }

    fn eval_pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> R<Value<'a>> {
        self.at = At::Pipe(pipe);
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // A nil interface{} result is dug into: no value.
            value = Some(v.indirect_interface());
        }
        let value = value.unwrap_or(Value::Invalid);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone())?;
            } else {
                self.vars.push((name.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &'a [Arg], fin: &Option<Value<'a>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(ToString::to_string).unwrap_or_default();
            return Err(self.errorf(format!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let Some(first) = cmd.args.first() else {
            return Err(self.errorf("empty command"));
        };
        match &first.kind {
            ArgKind::Field(idents) => {
                return self.eval_field_node(dot, first, idents, &cmd.args, fin);
            }
            ArgKind::Chain(inner, fields) => {
                return self.eval_chain_node(dot, first, inner, fields, &cmd.args, fin);
            }
            ArgKind::Ident(f) => {
                return self.eval_function(dot, first, *f, Some(cmd), &cmd.args, fin);
            }
            ArgKind::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.enter()?;
                let v = self.eval_pipeline(dot, p);
                self.depth -= 1;
                return v;
            }
            ArgKind::Variable(idents) => {
                return self.eval_variable_node(dot, first, idents, &cmd.args, fin);
            }
            _ => {}
        }
        self.at = At::Arg(first);
        self.not_a_function(&cmd.args, &fin)?;
        match &first.kind {
            ArgKind::Bool(b) => Ok(Value::Bool(*b)),
            ArgKind::Dot => Ok(dot.clone()),
            ArgKind::Nil => Err(self.errorf("nil is not a command")),
            ArgKind::Number(n) => self.ideal_constant(n),
            ArgKind::Str { text, .. } => Ok(Value::Str(Cow::Borrowed(text.as_str()))),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                quote(&first.to_string())
            ))),
        }
    }

    fn ideal_constant(&self, n: &Number) -> R<Value<'a>> {
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && matches!(t.as_bytes()[1], b'x' | b'X')
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if n.is_float && !is_hex_int && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(Value::Float(n.float));
        }
        if n.is_int {
            return Ok(Value::Int(n.int));
        }
        if n.is_uint {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(Value::Invalid)
    }

    fn eval_field_node(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        self.at = At::Arg(node);
        self.eval_field_chain(dot, dot.clone(), node, idents, args, fin)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        inner: &'a Arg,
        fields: &'a [String],
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        self.at = At::Arg(node);
        if matches!(inner.kind, ArgKind::Nil) {
            return Err(self.errorf(format!("indirection through explicit nil in {node}")));
        }
        let recv = self.eval_arg(dot, None, inner)?;
        self.eval_field_chain(dot, recv, node, fields, args, fin)
    }

    fn eval_variable_node(
        &mut self,
        dot: &Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        self.at = At::Arg(node);
        let value = self.var_value(&idents[0])?;
        if idents.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, node, &idents[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &Value<'a>,
        mut recv: Value<'a>,
        node: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let n = idents.len();
        // An element of a JSON object is typed interface{} in Go until a pipeline ends; error
        // messages about it name that type.
        let mut iface = false;
        for id in &idents[..n.saturating_sub(1)] {
            let from_map = matches!(recv, Value::Map(_));
            recv = self.eval_field(dot, id, node, &[], None, recv, iface)?;
            iface = from_map;
        }
        match idents.last() {
            Some(last) => self.eval_field(dot, last, node, args, fin, recv, iface),
            None => Ok(recv),
        }
    }

    fn eval_field(
        &mut self,
        dot: &Value<'a>,
        name: &'a str,
        node: &'a Arg,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
        recv: Value<'a>,
        iface: bool,
    ) -> R<Value<'a>> {
        if matches!(recv, Value::Invalid) {
            return Ok(Value::Invalid);
        }
        if matches!(recv, Value::NilIface) {
            return Err(self.errorf(format!("nil pointer evaluating interface {{}}.{name}")));
        }
        if let Some(m) = Method::lookup(&recv, name) {
            return self.eval_call(dot, Callee::Method(m, recv), At::Arg(node), name, args, fin);
        }
        let has_args = args.len() > 1 || fin.is_some();
        match &recv {
            Value::Labels => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                let data: &'a dyn TemplateData = self.data;
                Ok(Value::Str(Cow::Borrowed(data.label(name).unwrap_or(""))))
            }
            Value::Map(m) => {
                if has_args {
                    return Err(self.errorf(format!("{name} is not a method but has arguments")));
                }
                Ok(m.get(name).map_or(Value::NilIface, Value::from_json))
            }
            other => Err(self.errorf(format!(
                "can't evaluate field {name} in type {}",
                if iface {
                    "interface {}"
                } else {
                    other.type_name()
                }
            ))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value<'a>,
        ident: &'a Arg,
        f: Func,
        cmd: Option<&'a Command>,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        self.at = At::Arg(ident);
        let node = match cmd {
            Some(c) => At::Cmd(c),
            None => At::Arg(ident),
        };
        self.eval_call(dot, Callee::Func(f), node, f.name(), args, fin)
    }

    /// Go's `evalCall`: arity check, argument evaluation by parameter type, the call.
    fn eval_call(
        &mut self,
        dot: &Value<'a>,
        callee: Callee<'a>,
        node: At<'a>,
        name: &str,
        args: &'a [Arg],
        fin: Option<Value<'a>>,
    ) -> R<Value<'a>> {
        let args = args.get(1..).unwrap_or(&[]);
        let sig = match &callee {
            Callee::Func(f) => f.sig(),
            Callee::Method(m, _) => m.sig(),
        };
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = if sig.variadic.is_some() {
            sig.params.len()
        } else {
            args.len()
        };
        if sig.variadic.is_some() {
            if num_in < num_fixed {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    sig.params.len(),
                    args.len()
                )));
            }
        } else if num_in != sig.params.len() {
            return Err(self.errorf(format!(
                "wrong number of args for {name}: want {} got {num_in}",
                sig.params.len()
            )));
        }

        if let Callee::Func(f @ (Func::And | Func::Or)) = callee {
            let is_or = f == Func::Or;
            let mut v = Value::Invalid;
            for a in args {
                v = self.eval_arg(dot, Some(Ty::RValue), a)?;
                if v.clone().indirect_interface().truth(self.data) == is_or {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = self.validate_type(fv, Some(Ty::RValue))?;
            }
            return Ok(v);
        }

        let mut argv: crate::funcs::Args<'a> = crate::funcs::Args::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, Some(sig.params[i]), &args[i])?);
            i += 1;
        }
        if let Some(vt) = sig.variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, Some(vt), &args[i])?);
                i += 1;
            }
        }
        if let Some(fv) = fin {
            let t = match sig.variadic {
                Some(vt) if num_in > num_fixed => vt,
                _ => sig.params.get(num_in - 1).copied().unwrap_or(Ty::Any),
            };
            argv.push(self.validate_type(fv, Some(t))?);
        }
        if let Callee::Func(Func::Call) = callee {
            // No template value is a Go function, so `call` always fails, with Go's message.
            let callee_name = match (args.first(), argv.first()) {
                (Some(a), _) => a.to_string(),
                (None, Some(Value::Str(s))) => s.to_string(),
                (None, Some(v)) => format!("<{} Value>", v.type_name()),
                (None, None) => String::new(),
            };
            let msg = match argv
                .first()
                .cloned()
                .unwrap_or(Value::Invalid)
                .indirect_interface()
            {
                Value::Invalid => "call of nil".to_string(),
                v => format!("non-function {callee_name} of type {}", v.type_name()),
            };
            self.at = node;
            return Err(self.errorf(format!("error calling call: {msg}")));
        }
        let cached;
        let regex = match node {
            At::Cmd(c) => match (&c.regex, &c.regex_cache, argv.first()) {
                (Some(r), _, _) => Some(&**r),
                (None, Some(cache), Some(Value::Str(pattern))) => {
                    cached = cached_regex(cache, pattern);
                    Some(&*cached)
                }
                _ => None,
            },
            _ => None,
        };
        let result = match callee {
            Callee::Func(f) => crate::funcs::call(self, f, argv, regex),
            Callee::Method(m, recv) => m.call(recv, argv),
        };
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.at = node;
                Err(self.errorf(format!("error calling {name}: {e}")))
            }
        }
    }

    fn validate_type(&self, value: Value<'a>, typ: Option<Ty>) -> R<Value<'a>> {
        let Some(typ) = typ else { return Ok(value) };
        if matches!(value, Value::Invalid) {
            return match typ {
                Ty::Any => Ok(Value::NilIface),
                Ty::RValue => Ok(Value::Invalid),
                _ => Err(self.errorf(format!("invalid value; expected {}", typ.go_name()))),
            };
        }
        let ok = match typ {
            Ty::Any | Ty::RValue => true,
            Ty::Str => matches!(value, Value::Str(_)),
            Ty::Int => matches!(value, Value::Int(_)),
            Ty::Float => matches!(value, Value::Float(_)),
            Ty::Time => matches!(value, Value::Time(_)),
            Ty::Duration => matches!(value, Value::Duration(_)),
        };
        if ok {
            Ok(value)
        } else {
            Err(self.errorf(format!(
                "wrong type for value; expected {}; got {}",
                typ.go_name(),
                value.type_name()
            )))
        }
    }

    /// Go's `evalArg`.
    fn eval_arg(&mut self, dot: &Value<'a>, typ: Option<Ty>, n: &'a Arg) -> R<Value<'a>> {
        self.at = At::Arg(n);
        match &n.kind {
            ArgKind::Dot => return self.validate_type(dot.clone(), typ),
            ArgKind::Nil => {
                return match typ {
                    Some(Ty::Any) => Ok(Value::NilIface),
                    Some(Ty::RValue) => Ok(Value::Invalid),
                    None => Ok(Value::Invalid),
                    Some(t) => Err(self.errorf(format!("cannot assign nil to {}", t.go_name()))),
                };
            }
            ArgKind::Field(idents) => {
                let v = self.eval_field_node(dot, n, idents, std::slice::from_ref(n), None)?;
                return self.validate_type(v, typ);
            }
            ArgKind::Variable(idents) => {
                let v = self.eval_variable_node(dot, n, idents, &[], None)?;
                return self.validate_type(v, typ);
            }
            ArgKind::Pipe(p) => {
                self.enter()?;
                let v = self.eval_pipeline(dot, p);
                self.depth -= 1;
                return self.validate_type(v?, typ);
            }
            ArgKind::Ident(f) => {
                let v = self.eval_function(dot, n, *f, None, &[], None)?;
                return self.validate_type(v, typ);
            }
            ArgKind::Chain(inner, fields) => {
                let v = self.eval_chain_node(dot, n, inner, fields, &[], None)?;
                return self.validate_type(v, typ);
            }
            _ => {}
        }
        match typ {
            Some(Ty::Float) => match &n.kind {
                ArgKind::Number(num) if num.is_float => Ok(Value::Float(num.float)),
                _ => Err(self.errorf(format!("expected float; found {n}"))),
            },
            Some(Ty::Int) => match &n.kind {
                ArgKind::Number(num) if num.is_int => Ok(Value::Int(num.int)),
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            Some(Ty::Duration) => match &n.kind {
                ArgKind::Number(num) if num.is_int => {
                    Ok(Value::Duration(crate::gotime::GoDuration(num.int)))
                }
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            Some(Ty::Str) => match &n.kind {
                ArgKind::Str { text, .. } => Ok(Value::Str(Cow::Borrowed(text.as_str()))),
                _ => Err(self.errorf(format!("expected string; found {n}"))),
            },
            Some(Ty::Any | Ty::RValue) | None => match &n.kind {
                ArgKind::Bool(b) => Ok(Value::Bool(*b)),
                ArgKind::Number(num) => self.ideal_constant(num),
                ArgKind::Str { text, .. } => Ok(Value::Str(Cow::Borrowed(text.as_str()))),
                _ => Err(self.errorf(format!(
                    "can't handle assignment of {n} to empty interface argument"
                ))),
            },
            Some(t @ Ty::Time) => {
                Err(self.errorf(format!("can't handle {n} for arg of type {}", t.go_name())))
            }
        }
    }
}

/// Compiles a computed pattern, reusing the previous compilation when the pattern repeats.
fn cached_regex(
    cache: &crate::ast::RegexCache,
    pattern: &str,
) -> std::sync::Arc<Result<crate::goregex::GoRegex, String>> {
    // A poisoned lock only means another thread panicked mid-update; the cache is advisory.
    let mut slot = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((p, r)) = slot.as_ref()
        && p == pattern
    {
        return std::sync::Arc::clone(r);
    }
    let compiled = std::sync::Arc::new(crate::goregex::GoRegex::compile(pattern));
    *slot = Some((pattern.to_string(), std::sync::Arc::clone(&compiled)));
    compiled
}

/// Go's `basicKind` error for values that cannot be ordered.
pub(crate) fn comparable_kind(v: &Value<'_>) -> Result<Kind, String> {
    match v.kind() {
        Kind::Other | Kind::Invalid => Err("invalid type for comparison".into()),
        k => Ok(k),
    }
}
