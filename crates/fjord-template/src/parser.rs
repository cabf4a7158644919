//! The template parser: Go's `text/template/parse` grammar and checks, with Go's messages.
//!
//! Input is the token list from [`crate::lexer`]. Output is the set of named trees: the main
//! template under its own name plus every `{{define}}`/`{{block}}` body, combined with Go's
//! rules (an empty definition never replaces a non-empty one; two non-empty definitions of one
//! name are an error). Checks done here, as in Go: functions must exist, variables must be
//! declared, `break`/`continue` only inside `range`, no literal as a later pipeline stage.
//!
//! Errors read `template: <name>:<line>: <message>`, exactly like Go's.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{Action, Arg, ArgKind, Branch, Command, List, Node, Number, Pipe, TemplateCall};
use crate::funcs::Func;
use crate::goquote::unquote;
use crate::lexer::{Item, ItemType, lex};

/// How deeply parentheses, `if`/`range`/`with` bodies (an `else if` counts as one more level)
/// and definitions may nest. Go allows 10000 parentheses and unbounded control nesting on its
/// growable stacks; native threads have fixed stacks, so Fjord stops earlier with Go's message.
pub(crate) const MAX_NESTING: usize = 100;

/// The named trees a source defines.
pub(crate) type TreeSet = HashMap<String, Arc<List>>;

/// Parses `text` as the template `name`.
pub(crate) fn parse(name: &str, text: &str) -> Result<TreeSet, String> {
    let items = lex(text);
    let mut p = Parser {
        name,
        items,
        idx: 0,
        hw: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        trees: HashMap::new(),
    };
    let root = p.parse_top()?;
    p.add(name, root)?;
    Ok(p.trees.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
}

/// Go's `IsEmptyTree`: only white space (and comments, which never reach the tree).
fn is_empty_tree(list: &List) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => t.trim_matches(|c: char| c.is_whitespace()).is_empty(),
        _ => false,
    })
}

struct Parser<'s> {
    name: &'s str,
    items: Vec<Item<'s>>,
    idx: usize,
    /// The furthest token fetched; its line is the line Go reports (`token[0].line`).
    hw: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Current nesting (parentheses and control structures), bounded by [`MAX_NESTING`].
    depth: usize,
    action_line: usize,
    trees: HashMap<String, List>,
}

type PResult<T> = Result<T, String>;

impl<'s> Parser<'s> {
    fn item(&self, i: usize) -> Item<'s> {
        match self.items.get(i) {
            Some(it) => it.clone(),
            // Past the end the lexer keeps returning its last item (EOF or the error).
            None => self.items.last().cloned().unwrap_or(Item {
                typ: ItemType::Eof,
                pos: 0,
                val: "".into(),
                line: 1,
            }),
        }
    }

    fn next(&mut self) -> Item<'s> {
        let it = self.item(self.idx);
        self.hw = self.hw.max(self.idx);
        self.idx += 1;
        it
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn peek(&mut self) -> Item<'s> {
        self.hw = self.hw.max(self.idx);
        self.item(self.idx)
    }

    fn next_non_space(&mut self) -> Item<'s> {
        loop {
            let t = self.next();
            if t.typ != ItemType::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item<'s> {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, msg: impl std::fmt::Display) -> String {
        let line = self.item(self.hw).line;
        format!("template: {}:{}: {}", self.name, line, msg)
    }

    fn unexpected(&self, token: &Item<'_>, context: &str) -> String {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at {}:{}", self.name, self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, expected: ItemType, context: &str) -> PResult<Item<'s>> {
        let t = self.next_non_space();
        if t.typ != expected {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    /// Go's `Tree.add`: installs a finished tree under `name`.
    fn add(&mut self, name: &str, root: List) -> PResult<()> {
        match self.trees.get(name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&root) {
                    return Err(self.errorf(format!(
                        "template: multiple definition of template {}",
                        crate::goquote::quote(name)
                    )));
                }
                Ok(())
            }
            _ => {
                self.trees.insert(name.to_string(), root);
                Ok(())
            }
        }
    }

    /// Go's `parse`: the top level, where `{{define}}` may appear.
    fn parse_top(&mut self) -> PResult<List> {
        let mut root = Vec::new();
        while self.peek().typ != ItemType::Eof {
            if self.peek().typ == ItemType::LeftDelim {
                let mark = self.idx;
                self.next();
                if self.next_non_space().typ == ItemType::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = mark;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(root)
    }

    /// Runs `f` as the parse of a separate tree (a define or block body): fresh variables and
    /// range depth, restored afterwards.
    fn in_new_tree<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        self.enter()?;
        let vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let depth = std::mem::replace(&mut self.range_depth, 0);
        let r = f(self);
        self.vars = vars;
        self.range_depth = depth;
        self.depth -= 1;
        r
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let t = self.next_non_space();
        if t.typ != ItemType::String && t.typ != ItemType::RawString {
            return Err(self.unexpected(&t, CONTEXT));
        }
        let name = unquote(&t.val).map_err(|e| self.errorf(e))?;
        self.expect(ItemType::RightDelim, CONTEXT)?;
        let root = self.in_new_tree(|p| {
            let (list, end) = p.item_list()?;
            if !matches!(end, Parsed::End) {
                return Err(p.errorf(format!("unexpected {} in {CONTEXT}", end.describe())));
            }
            Ok(list)
        })?;
        self.add(&name, root)
    }

    /// `textOrAction*` up to `{{end}}` or `{{else}}`, which is returned separately.
    fn item_list(&mut self) -> PResult<(List, Parsed)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != ItemType::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(token.val.into_owned()))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.typ {
            ItemType::Block => return self.block_control().map(Parsed::Node),
            ItemType::Break | ItemType::Continue => {
                let what = if token.typ == ItemType::Break {
                    "break"
                } else {
                    "continue"
                };
                let t = self.next_non_space();
                if t.typ != ItemType::RightDelim {
                    return Err(self.unexpected(&t, &format!("{{{{{what}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(self.errorf(format!("{{{{{what}}}}} outside {{{{range}}}}")));
                }
                return Ok(Parsed::Node(if what == "break" {
                    Node::Break
                } else {
                    Node::Continue
                }));
            }
            ItemType::Else => return self.else_control(),
            ItemType::End => {
                self.expect(ItemType::RightDelim, "end")?;
                return Ok(Parsed::End);
            }
            ItemType::If => return self.if_control().map(Parsed::Node),
            ItemType::Range => return self.range_control().map(Parsed::Node),
            ItemType::Template => return self.template_control().map(Parsed::Node),
            ItemType::With => return self.with_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let token = self.peek();
        let pipe = self.pipeline("command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action(Action {
            pos: token.pos,
            pipe,
        })))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::Else);
        }
        self.expect(ItemType::RightDelim, "else")?;
        Ok(Parsed::Else)
    }

    fn pipeline(&mut self, context: &str, end: ItemType) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ != ItemType::Variable {
                break;
            }
            let mark = self.idx;
            // `peek_non_space` left the index on the variable itself.
            self.next();
            let token_after = self.peek();
            let next = self.peek_non_space();
            match next.typ {
                ItemType::Assign | ItemType::Declare => {
                    pipe.is_assign = next.typ == ItemType::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.to_string());
                    self.vars.push(v.val.to_string());
                    break 'decls;
                }
                ItemType::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.to_string());
                    self.vars.push(v.val.to_string());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                                continue 'decls;
                            }
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    let _ = token_after;
                    self.idx = mark;
                    break 'decls;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            if token.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.typ {
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(first) = c.args.first()
                && matches!(
                    first.kind,
                    ArgKind::Bool(_)
                        | ArgKind::Dot
                        | ArgKind::Nil
                        | ArgKind::Number(_)
                        | ArgKind::Str { .. }
                )
            {
                return Err(self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    /// Parses the pipeline and body of `if`/`range`/`with`; variables declared in the
    /// pipeline go out of scope at `{{end}}`.
    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let saved_vars = self.vars.len();
        let r = self.parse_control_inner(context);
        self.vars.truncate(saved_vars);
        self.depth -= 1;
        r
    }

    fn enter(&mut self) -> PResult<()> {
        if self.depth >= MAX_NESTING {
            return Err(self.errorf("max expression depth exceeded"));
        }
        self.depth += 1;
        Ok(())
    }

    fn parse_control_inner(&mut self, context: &str) -> PResult<Branch> {
        let pipe = self.pipeline(context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let r = self.item_list();
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = r?;
        let mut else_list = None;
        if matches!(next, Parsed::Else) {
            if context == "if" && self.peek().typ == ItemType::If {
                self.next();
                else_list = Some(vec![self.if_control()?]);
            } else if context == "with" && self.peek().typ == ItemType::With {
                self.next();
                else_list = Some(vec![self.with_control()?]);
            } else {
                let (el, next) = self.item_list()?;
                if !matches!(next, Parsed::End) {
                    return Err(self.errorf(format!("expected end; found {}", next.describe())));
                }
                else_list = Some(el);
            }
        }
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn if_control(&mut self) -> PResult<Node> {
        self.parse_control("if").map(Node::If)
    }

    fn range_control(&mut self) -> PResult<Node> {
        self.parse_control("range").map(Node::Range)
    }

    fn with_control(&mut self) -> PResult<Node> {
        self.parse_control("with").map(Node::With)
    }

    fn parse_template_name(&self, token: &Item<'_>, context: &str) -> PResult<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => {
                unquote(&token.val).map_err(|e| self.errorf(e))
            }
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template(TemplateCall {
            pos: token.pos,
            name,
            pipe,
        }))
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemType::RightDelim)?;
        let root = self.in_new_tree(|p| {
            let (list, end) = p.item_list()?;
            if !matches!(end, Parsed::End) {
                return Err(p.errorf(format!("unexpected {} in {CONTEXT}", end.describe())));
            }
            Ok(list)
        })?;
        self.add(&name, root)?;
        Ok(Node::Template(TemplateCall {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        }))
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        let regex = match (args.first().map(|a| &a.kind), args.get(1).map(|a| &a.kind)) {
            (Some(ArgKind::Ident(f)), Some(ArgKind::Str { text, .. })) if f.takes_regex() => {
                Some(Arc::new(crate::goregex::GoRegex::compile(text)))
            }
            _ => None,
        };
        let regex_cache = match args.first().map(|a| &a.kind) {
            Some(ArgKind::Ident(f)) if f.takes_regex() && regex.is_none() => {
                Some(std::sync::Mutex::new(None))
            }
            _ => None,
        };
        Ok(Command {
            pos,
            args,
            regex,
            regex_cache,
        })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ != ItemType::Field {
            return Ok(Some(node));
        }
        let chain_pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().typ == ItemType::Field {
            let f = self.next();
            fields.extend(f.val[1..].split('.').map(str::to_string));
        }
        let kind = match node.kind {
            ArgKind::Field(mut idents) => {
                idents.extend(fields);
                ArgKind::Field(idents)
            }
            ArgKind::Variable(mut idents) => {
                idents.extend(fields);
                ArgKind::Variable(idents)
            }
            ArgKind::Bool(_)
            | ArgKind::Str { .. }
            | ArgKind::Number(_)
            | ArgKind::Nil
            | ArgKind::Dot => {
                return Err(self.errorf(format!(
                    "unexpected . after term {}",
                    crate::goquote::quote(&node.to_string())
                )));
            }
            other => ArgKind::Chain(
                Box::new(Arg {
                    pos: node.pos,
                    kind: other,
                }),
                fields,
            ),
        };
        Ok(Some(Arg {
            pos: chain_pos,
            kind,
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        let kind = match token.typ {
            ItemType::Identifier => match Func::lookup(&token.val) {
                Some(f) => ArgKind::Ident(f),
                None => {
                    return Err(self.errorf(format!(
                        "function {} not defined",
                        crate::goquote::quote(&token.val)
                    )));
                }
            },
            ItemType::Dot => ArgKind::Dot,
            ItemType::Nil => ArgKind::Nil,
            ItemType::Variable => {
                let idents: Vec<String> = token.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| *v == idents[0]) {
                    return Err(self.errorf(format!(
                        "undefined variable {}",
                        crate::goquote::quote(&idents[0])
                    )));
                }
                ArgKind::Variable(idents)
            }
            ItemType::Field => {
                ArgKind::Field(token.val[1..].split('.').map(str::to_string).collect())
            }
            ItemType::Bool => ArgKind::Bool(token.val == "true"),
            ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                let n = Number::parse(&token.val, token.typ == ItemType::CharConstant)
                    .map_err(|e| self.errorf(e))?;
                ArgKind::Number(Box::new(n))
            }
            ItemType::LeftParen => {
                self.enter()?;
                let r = self.pipeline("parenthesized pipeline", ItemType::RightParen);
                self.depth -= 1;
                ArgKind::Pipe(Box::new(r?))
            }
            ItemType::String | ItemType::RawString => {
                let text = unquote(&token.val).map_err(|e| self.errorf(e))?;
                ArgKind::Str {
                    quoted: token.val.into_owned(),
                    text,
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(Arg { pos, kind }))
    }
}

/// What `textOrAction` produced: a node, or a terminator the caller must handle.
#[derive(Debug)]
enum Parsed {
    Node(Node),
    End,
    Else,
}

impl Parsed {
    fn describe(&self) -> String {
        match self {
            Parsed::Node(n) => n.to_string(),
            Parsed::End => "{{end}}".into(),
            Parsed::Else => "{{else}}".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(src: &str) -> String {
        parse("line", src).err().unwrap_or_default()
    }

    fn main_str(src: &str) -> String {
        let trees = parse("line", src).unwrap();
        trees["line"].iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn round_trips() {
        assert_eq!(main_str("a{{.foo | upper}}b"), "a{{.foo | upper}}b");
        assert_eq!(
            main_str("{{if .a}}x{{else if .b}}y{{else}}z{{end}}"),
            "{{if .a}}x{{else}}{{if .b}}y{{else}}z{{end}}{{end}}"
        );
        assert_eq!(
            main_str("{{range $i, $e := .}}{{$i}}{{end}}"),
            "{{range $i, $e := .}}{{$i}}{{end}}"
        );
        assert_eq!(main_str("{{ (len .a).x }}"), "{{(len .a).x}}");
        assert_eq!(main_str("{{ printf \"%d\" 3 }}"), "{{printf \"%d\" 3}}");
        assert_eq!(
            main_str("{{ $x := 1 }}{{ $x = 2 }}"),
            "{{$x := 1}}{{$x = 2}}"
        );
    }

    #[test]
    fn errors_like_go() {
        assert_eq!(err("{{.foo"), "template: line:1: unclosed action");
        assert_eq!(
            err("{{ nope .x }}"),
            "template: line:1: function \"nope\" not defined"
        );
        assert_eq!(
            err("{{ $x }}"),
            "template: line:1: undefined variable \"$x\""
        );
        assert_eq!(err("{{end}}"), "template: line:1: unexpected {{end}}");
        assert_eq!(err("{{if .a}}"), "template: line:1: unexpected EOF");
        assert_eq!(
            err("{{break}}"),
            "template: line:1: {{break}} outside {{range}}"
        );
        assert_eq!(
            err("{{ .a | 3 }}"),
            "template: line:1: non executable command in pipeline stage 2"
        );
        assert_eq!(err("{{}}"), "template: line:1: missing value for command");
        assert_eq!(
            err("{{ \"a\".b }}"),
            "template: line:1: unexpected . after term \"\\\"a\\\"\""
        );
        assert_eq!(
            err("a\n{{ .x\n}"),
            "template: line:3: unexpected \"}\" in operand"
        );
        assert_eq!(
            err("a\n{{ .x\n"),
            "template: line:3: unclosed action started at line:2"
        );
        assert_eq!(
            err("{{range $a, $b, $c := .}}{{end}}"),
            "template: line:1: too many declarations in range"
        );
        assert_eq!(
            err("{{define \"a\"}}x{{end}}{{define \"a\"}}y{{end}}"),
            "template: line:1: template: multiple definition of template \"a\""
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}x{}", "{{if 1}}".repeat(n), "{{end}}".repeat(n));
        assert!(parse("line", &deep(MAX_NESTING)).is_ok());
        assert_eq!(
            err(&deep(MAX_NESTING + 1)),
            "template: line:1: max expression depth exceeded"
        );
        let parens = |n: usize| format!("{{{{ {}1{} }}}}", "(".repeat(n), ")".repeat(n));
        assert!(parse("line", &parens(MAX_NESTING)).is_ok());
        assert_eq!(
            err(&parens(MAX_NESTING + 1)),
            "template: line:1: max expression depth exceeded"
        );
    }

    #[test]
    fn defines_and_blocks() {
        let t = parse(
            "line",
            "{{define \"x\"}}X{{end}}{{template \"x\"}}{{block \"y\" .}}Y{{end}}",
        )
        .unwrap();
        assert!(t.contains_key("x") && t.contains_key("y") && t.contains_key("line"));
        // An empty main template does not replace a definition with the same name.
        let t = parse("line", "{{define \"line\"}}L{{end}}").unwrap();
        assert_eq!(t["line"].len(), 1);
    }
}
