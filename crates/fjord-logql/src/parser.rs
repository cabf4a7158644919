//! The LogQL parser: a hand-written recursive-descent parser (Pratt-style for binary operators)
//! that accepts exactly Loki's yacc grammar (`pkg/logql/syntax/syntax.y`) and reports errors the
//! way Loki does.
//!
//! Error reporting follows Loki's three tiers, in Loki's order of precedence:
//! 1. **Immediate** errors stop the parse at once, like Loki's panics during grammar reductions:
//!    a bad matcher regex, an invalid `regexp`/`pattern` parser, a number literal in a label
//!    filter that is not a float. They win over everything.
//! 2. **Syntax** errors (`syntax error: unexpected X[, expecting ...]`) at the offending token;
//!    but a lexer error recorded earlier (bad escape, bad number, bad range) is reported instead,
//!    as Loki reports its first recorded error.
//! 3. **Deferred** errors are found while building a node but reported after the whole query
//!    parsed, in the order Loki's `validateExpr` visits the tree (pre-order, a node's own error
//!    before its children's): binary-operation leg types, aggregation parameters and grouping,
//!    `unwrap` rules, `label_replace` regexes, number literals, and the rule that a selector
//!    needs one matcher that does not match the empty string.
//!
//! Pipeline stages that Loki only checks when it builds the pipeline (line-filter regexes,
//! patterns and IPs, JSON/logfmt paths, `label_format` names) are checked afterwards by
//! [`crate::validate`].
//!
//! Loki's grammar quirks kept on purpose: `!=` and `!~` right after a selector or pipeline are
//! always line filters; label filter `,` and juxtaposition group to the right and bind looser
//! than everything after them; a unary sign only applies to a number literal; `topk(5 ...)`'s
//! parameter must be a plain number token.

use fjord_model::{LabelMatcher, MatchOp};

use crate::ast::*;
use crate::error::ParseError;
use crate::lexer::{Lexer, Tok, Token};
use crate::units;
use crate::{goregex, pattern};

/// Loki's query size limit (`maxInputSize`).
pub(crate) const MAX_INPUT_SIZE: usize = 131072;

/// How deep a syntax tree may get (nesting plus operator chains). Loki's table-driven parser has
/// no limit; the printers and the evaluator recurse over the tree, so it is kept shallow enough
/// for a 2 MiB thread stack (Tokio's default), even in debug builds. Real queries stay far below.
pub const MAX_DEPTH: usize = 512;

/// How deeply the parser itself may recurse: parentheses, function arguments and `^` chains.
pub const MAX_NESTING: usize = 100;

const ERR_NO_SELECTING_MATCHER: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Why parsing stopped.
enum Fail {
    /// A syntax error at a token (superseded by an earlier lexer error).
    Syntax(ParseError),
    /// An error raised while building a node; reported as is.
    Immediate(ParseError),
}

type PResult<T> = Result<T, Fail>;

/// A parsed expression before Loki's type check: log expressions may still appear as
/// binary-operation legs until validation rejects them.
#[derive(Debug)]
enum Node {
    Log(LogSelectorExpr),
    /// A sample expression and the first deferred error in its subtree (validation order).
    Sample(SampleExpr, Option<ParseError>),
}

/// A parse without the pipeline-stage checks, as Loki's `ParseExpr`.
pub(crate) fn parse_syntax(input: &str) -> Result<Expr, ParseError> {
    let node = parse_node(input)?;
    match node {
        Node::Log(l) => {
            validate_selector(&l.matchers)?;
            Ok(Expr::Log(l))
        }
        Node::Sample(s, None) => Ok(Expr::Sample(s)),
        Node::Sample(_, Some(e)) => Err(e),
    }
}

/// A parse that only checks syntax and immediate errors (Loki's
/// `ParseExprWithoutValidation`): log selectors may lack a selecting matcher; sample
/// expressions with deferred errors are rejected.
pub(crate) fn parse_log_selector_unvalidated(input: &str) -> Result<LogSelectorExpr, ParseError> {
    match parse_node(input)? {
        Node::Log(l) => Ok(l),
        Node::Sample(_, _) => Err(ParseError::plain("only log selector is supported")),
    }
}

fn parse_node(input: &str) -> Result<Node, ParseError> {
    if input.len() >= MAX_INPUT_SIZE {
        return Err(ParseError::new(format!(
            "input size too long ({} > {MAX_INPUT_SIZE})",
            input.len()
        )));
    }
    let mut p = Parser {
        lx: Lexer::new(input),
        peeked: None,
        depth: 0,
        nesting: 0,
    };
    let result = p.parse_root();
    match result {
        Ok(node) => match p.lx.errors.first() {
            Some(e) => Err(e.clone()),
            None => Ok(node),
        },
        Err(Fail::Syntax(e)) => Err(p.lx.errors.first().cloned().unwrap_or(e)),
        Err(Fail::Immediate(e)) => Err(e),
    }
}

/// Loki's `validateMatchers`: at least one matcher must not match the empty string.
pub(crate) fn validate_selector(matchers: &[LabelMatcher]) -> Result<(), ParseError> {
    if matchers.iter().any(is_selecting) {
        Ok(())
    } else {
        Err(ParseError::new(ERR_NO_SELECTING_MATCHER))
    }
}

struct Parser {
    lx: Lexer,
    peeked: Option<Token>,
    /// Depth of the tree being built along the current path (see [`MAX_DEPTH`]).
    depth: usize,
    /// Current recursion depth of the parser (see [`MAX_NESTING`]).
    nesting: usize,
}

/// Binary operator precedence (higher binds tighter), Loki's `%left`/`%right` order.
fn binop_of(tok: &Tok) -> Option<(BinOpKind, u8)> {
    Some(match tok {
        Tok::Or => (BinOpKind::Or, 1),
        Tok::And => (BinOpKind::And, 2),
        Tok::Unless => (BinOpKind::Unless, 2),
        Tok::CmpEq => (BinOpKind::CmpEq, 3),
        Tok::Neq => (BinOpKind::Neq, 3),
        Tok::Gt => (BinOpKind::Gt, 3),
        Tok::Gte => (BinOpKind::Gte, 3),
        Tok::Lt => (BinOpKind::Lt, 3),
        Tok::Lte => (BinOpKind::Lte, 3),
        Tok::Add => (BinOpKind::Add, 4),
        Tok::Sub => (BinOpKind::Sub, 4),
        Tok::Mul => (BinOpKind::Mul, 5),
        Tok::Div => (BinOpKind::Div, 5),
        Tok::Mod => (BinOpKind::Mod, 5),
        Tok::Pow => (BinOpKind::Pow, 6),
        _ => return None,
    })
}

/// What may follow a selector's pipeline inside a range aggregation.
struct PipelineEnd {
    stages: Vec<Stage>,
    unwrap: Option<Unwrap>,
}

impl Parser {
    // ---- token plumbing ----

    fn peek(&mut self) -> &Token {
        if self.peeked.is_none() {
            self.peeked = Some(self.lx.next_token());
        }
        // Just filled above.
        self.peeked.get_or_insert(Token {
            tok: Tok::Eof,
            line: 0,
            col: 0,
        })
    }

    fn peek_tok(&mut self) -> &Tok {
        &self.peek().tok
    }

    fn bump(&mut self) -> Token {
        self.peek();
        self.peeked.take().unwrap_or(Token {
            tok: Tok::Eof,
            line: 0,
            col: 0,
        })
    }

    fn at(&mut self, tok: &Tok) -> bool {
        self.peek_tok() == tok
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.at(tok) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// `syntax error: unexpected X[, expecting A or B]` at the look-ahead token.
    fn unexpected(&mut self, expecting: &str) -> Fail {
        let t = self.peek().clone();
        let mut msg = format!("syntax error: unexpected {}", t.tok.name());
        if !expecting.is_empty() {
            msg.push_str(", expecting ");
            msg.push_str(expecting);
        }
        Fail::Syntax(ParseError::at(msg, t.line, t.col))
    }

    fn expect(&mut self, tok: &Tok, expecting: &str) -> PResult<()> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected(expecting))
        }
    }

    fn expect_ident(&mut self, expecting: &str) -> PResult<String> {
        match self.peek_tok() {
            Tok::Ident(_) => match self.bump().tok {
                Tok::Ident(s) => Ok(s),
                _ => Err(self.unexpected(expecting)),
            },
            _ => Err(self.unexpected(expecting)),
        }
    }

    fn expect_string(&mut self, expecting: &str) -> PResult<String> {
        match self.peek_tok() {
            Tok::Str(_) => match self.bump().tok {
                Tok::Str(s) => Ok(s),
                _ => Err(self.unexpected(expecting)),
            },
            _ => Err(self.unexpected(expecting)),
        }
    }

    /// Goes one level deeper; errors past [`MAX_DEPTH`]. Callers restore `depth` on success
    /// (an error ends the parse).
    fn descend(&mut self, levels: usize) -> PResult<()> {
        self.depth += levels;
        if self.depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(())
    }

    /// Enters a recursive parse; errors past [`MAX_NESTING`]. Callers call [`Self::leave`] on
    /// success.
    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(too_deep());
        }
        self.descend(1)
    }

    fn leave(&mut self) {
        self.nesting -= 1;
        self.depth -= 1;
    }

    // ---- expressions ----

    fn parse_root(&mut self) -> PResult<Node> {
        let node = self.parse_expr(0)?;
        if !self.at(&Tok::Eof) {
            return Err(self.unexpected(""));
        }
        Ok(node)
    }

    fn parse_expr(&mut self, min_prec: u8) -> PResult<Node> {
        self.enter()?;
        let left = self.parse_operand()?;
        let node = self.parse_binops(left, min_prec)?;
        self.leave();
        Ok(node)
    }

    fn parse_binops(&mut self, mut left: Node, min_prec: u8) -> PResult<Node> {
        // Each operator in a chain makes the left spine one level deeper.
        let start_depth = self.depth;
        loop {
            let Some((op, prec)) = binop_of(self.peek_tok()) else {
                self.depth = start_depth;
                return Ok(left);
            };
            if prec < min_prec {
                self.depth = start_depth;
                return Ok(left);
            }
            self.descend(1)?;
            self.bump();
            let modifier = self.parse_bin_modifier()?;
            let next_min = if op == BinOpKind::Pow { prec } else { prec + 1 };
            let right = self.parse_expr(next_min)?;
            left = make_binop(op, modifier, left, right);
        }
    }

    fn parse_operand(&mut self) -> PResult<Node> {
        match self.peek_tok().clone() {
            Tok::LBrace => {
                let matchers = self.parse_selector()?;
                let stages = self.parse_pipeline(false)?.stages;
                Ok(Node::Log(LogSelectorExpr { matchers, stages }))
            }
            Tok::LParen => {
                self.bump();
                let inner = self.parse_expr(0)?;
                self.expect(&Tok::RParen, "")?;
                Ok(inner)
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => {
                let (v, err) = self.parse_literal()?;
                Ok(Node::Sample(SampleExpr::Literal(v), err))
            }
            Tok::RangeOp(op) => self.parse_range_aggregation(op),
            Tok::VectorOp(op) => self.parse_vector_aggregation(op),
            Tok::LabelReplace => self.parse_label_replace(),
            Tok::Vector => self.parse_vector(),
            _ => Err(self.unexpected("")),
        }
    }

    /// `NUMBER`, `+NUMBER` or `-NUMBER`; the error is Loki's deferred literal error.
    fn parse_literal(&mut self) -> PResult<(f64, Option<ParseError>)> {
        let negate = match self.peek_tok() {
            Tok::Add => {
                self.bump();
                false
            }
            Tok::Sub => {
                self.bump();
                true
            }
            _ => false,
        };
        let Tok::Number(text) = self.peek_tok().clone() else {
            return Err(self.unexpected("NUMBER"));
        };
        self.bump();
        Ok(literal_value(&text, negate))
    }

    fn parse_bin_modifier(&mut self) -> PResult<BinOpModifier> {
        let mut m = BinOpModifier {
            return_bool: self.eat(&Tok::Bool),
            ..Default::default()
        };
        let on = match self.peek_tok() {
            Tok::On => true,
            Tok::Ignoring => false,
            _ => return Ok(m),
        };
        self.bump();
        m.matching.on = on;
        m.matching.labels = self.parse_label_list()?;
        let card = match self.peek_tok() {
            Tok::GroupLeft => Cardinality::ManyToOne,
            Tok::GroupRight => Cardinality::OneToMany,
            _ => return Ok(m),
        };
        self.bump();
        m.matching.card = card;
        if self.at(&Tok::LParen) {
            m.matching.include = self.parse_label_list()?;
        }
        Ok(m)
    }

    /// `( [a, b, ...] )`.
    fn parse_label_list(&mut self) -> PResult<Vec<String>> {
        self.expect(&Tok::LParen, "(")?;
        let mut labels = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(labels);
        }
        labels.push(self.expect_ident("IDENTIFIER or )")?);
        loop {
            match self.peek_tok() {
                Tok::RParen => {
                    self.bump();
                    return Ok(labels);
                }
                Tok::Comma => {
                    self.bump();
                    labels.push(self.expect_ident("IDENTIFIER")?);
                }
                _ => return Err(self.unexpected(", or )")),
            }
        }
    }

    fn parse_grouping(&mut self) -> PResult<Option<Grouping>> {
        let without = match self.peek_tok() {
            Tok::By => false,
            Tok::Without => true,
            _ => return Ok(None),
        };
        self.bump();
        let labels = self.parse_label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    fn parse_range_aggregation(&mut self, op: RangeOp) -> PResult<Node> {
        self.bump();
        self.expect(&Tok::LParen, "(")?;
        let mut param_text = None;
        if let Tok::Number(n) = self.peek_tok().clone() {
            self.bump();
            self.expect(&Tok::Comma, ",")?;
            param_text = Some(n);
        }
        let expecting = if param_text.is_some() {
            "{ or ("
        } else {
            "NUMBER or { or ("
        };
        let range = self.parse_log_range(expecting)?;
        self.expect(&Tok::RParen, ")")?;
        let grouping = self.parse_grouping()?;
        let (expr, err) = make_range_aggregation(op, param_text, range, grouping);
        Ok(Node::Sample(expr, err))
    }

    /// Loki's `logRangeExpr` in all its forms: the range after the selector or after the
    /// pipeline, optional `offset`, optional `| unwrap`, and the parenthesised variants.
    fn parse_log_range(&mut self, expecting: &str) -> PResult<LogRange> {
        self.enter()?;
        let range = self.parse_log_range_inner(expecting)?;
        self.leave();
        Ok(range)
    }

    fn parse_log_range_inner(&mut self, expecting: &str) -> PResult<LogRange> {
        match self.peek_tok() {
            Tok::LBrace => {
                let matchers = self.parse_selector()?;
                self.parse_log_range_after_selector(matchers, false)
            }
            Tok::LParen => {
                self.bump();
                if self.at(&Tok::LParen) {
                    let inner = self.parse_log_range("{ or (")?;
                    self.expect(&Tok::RParen, ")")?;
                    return Ok(inner);
                }
                if !self.at(&Tok::LBrace) {
                    return Err(self.unexpected("{ or ("));
                }
                let matchers = self.parse_selector()?;
                if matches!(self.peek_tok(), Tok::Range(_)) {
                    let inner = self.parse_log_range_after_selector(matchers, false)?;
                    self.expect(&Tok::RParen, ")")?;
                    return Ok(inner);
                }
                let PipelineEnd { stages, unwrap } = self.parse_pipeline(true)?;
                if matches!(self.peek_tok(), Tok::Range(_)) {
                    // `( selector pipeline [unwrap] RANGE [offset] )`
                    let inner =
                        self.finish_log_range(LogSelectorExpr { matchers, stages }, unwrap)?;
                    self.expect(&Tok::RParen, ")")?;
                    return Ok(inner);
                }
                let bare = stages.is_empty() && unwrap.is_none();
                if !self.eat(&Tok::RParen) {
                    return Err(self.unexpected(if unwrap.is_some() {
                        "RANGE or ) or |"
                    } else {
                        ""
                    }));
                }
                let Tok::Range(range) = *self.peek_tok() else {
                    return Err(self.unexpected("RANGE"));
                };
                self.bump();
                let offset = self.parse_offset()?;
                let mut unwrap = unwrap;
                if bare && self.at(&Tok::Pipe) {
                    // `( selector ) RANGE [offset] | unwrap ...`
                    self.bump();
                    if !self.at(&Tok::Unwrap) {
                        return Err(self.unexpected("unwrap"));
                    }
                    unwrap = Some(self.parse_unwrap()?);
                }
                Ok(LogRange {
                    selector: LogSelectorExpr { matchers, stages },
                    range,
                    offset,
                    unwrap,
                })
            }
            _ => Err(self.unexpected(expecting)),
        }
    }

    fn parse_log_range_after_selector(
        &mut self,
        matchers: Vec<LabelMatcher>,
        _in_parens: bool,
    ) -> PResult<LogRange> {
        let PipelineEnd { stages, unwrap } = self.parse_pipeline(true)?;
        let bare = stages.is_empty() && unwrap.is_none();
        if bare && let Tok::Range(range) = *self.peek_tok() {
            // `selector RANGE [offset] [pipeline] [unwrap]`
            self.bump();
            let offset = self.parse_offset()?;
            let PipelineEnd { stages, unwrap } = self.parse_pipeline(true)?;
            return Ok(LogRange {
                selector: LogSelectorExpr { matchers, stages },
                range,
                offset,
                unwrap,
            });
        }
        self.finish_log_range(LogSelectorExpr { matchers, stages }, unwrap)
    }

    /// `RANGE [offset]` after a selector with its pipeline and unwrap.
    fn finish_log_range(
        &mut self,
        selector: LogSelectorExpr,
        unwrap: Option<Unwrap>,
    ) -> PResult<LogRange> {
        let Tok::Range(range) = *self.peek_tok() else {
            return Err(self.unexpected(if unwrap.is_some() { "RANGE or |" } else { "" }));
        };
        self.bump();
        let offset = self.parse_offset()?;
        Ok(LogRange {
            selector,
            range,
            offset,
            unwrap,
        })
    }

    fn parse_offset(&mut self) -> PResult<i64> {
        if !self.eat(&Tok::Offset) {
            return Ok(0);
        }
        match *self.peek_tok() {
            Tok::Duration(d) => {
                self.bump();
                Ok(d)
            }
            _ => Err(self.unexpected("DURATION")),
        }
    }

    /// After `| unwrap` (the pipe is consumed, `unwrap` is the look-ahead).
    fn parse_unwrap(&mut self) -> PResult<Unwrap> {
        self.bump();
        let (label, conversion) = match self.peek_tok().clone() {
            Tok::Ident(name) => {
                self.bump();
                (name, None)
            }
            Tok::Conv(conv) => {
                self.bump();
                self.expect(&Tok::LParen, "(")?;
                let name = self.expect_ident("IDENTIFIER")?;
                self.expect(&Tok::RParen, ")")?;
                (name, Some(conv))
            }
            _ => {
                return Err(self.unexpected(
                    "IDENTIFIER or BYTES_CONV or DURATION_CONV or DURATION_SECONDS_CONV",
                ));
            }
        };
        let mut post_filters = Vec::new();
        while self.eat(&Tok::Pipe) {
            if !matches!(self.peek_tok(), Tok::Ident(_) | Tok::LParen) {
                return Err(self.unexpected("IDENTIFIER or ("));
            }
            post_filters.push(self.parse_label_filter()?);
        }
        Ok(Unwrap {
            label,
            conversion,
            post_filters,
        })
    }

    fn parse_vector_aggregation(&mut self, op: VectorOp) -> PResult<Node> {
        self.bump();
        let before = self.parse_grouping()?;
        self.expect(&Tok::LParen, "(")?;
        let mut param_text = None;
        let inner = if let Tok::Number(text) = self.peek_tok().clone() {
            self.bump();
            if self.eat(&Tok::Comma) {
                param_text = Some(text);
                self.parse_expr(0)?
            } else {
                let (v, err) = literal_value(&text, false);
                self.parse_binops(Node::Sample(SampleExpr::Literal(v), err), 0)?
            }
        } else {
            self.parse_expr(0)?
        };
        let (inner, inner_err) = match inner {
            Node::Sample(s, e) => (s, e),
            Node::Log(_) => return Err(self.unexpected("")),
        };
        self.expect(&Tok::RParen, "")?;
        let grouping = match before {
            Some(g) => Some(g),
            None => self.parse_grouping()?,
        };
        let (expr, err) = make_vector_aggregation(op, param_text, inner, inner_err, grouping);
        Ok(Node::Sample(expr, err))
    }

    fn parse_label_replace(&mut self) -> PResult<Node> {
        self.bump();
        self.expect(&Tok::LParen, "(")?;
        let inner = self.parse_expr(0)?;
        let (inner, inner_err) = match inner {
            Node::Sample(s, e) => (s, e),
            Node::Log(_) => return Err(self.unexpected("")),
        };
        self.expect(&Tok::Comma, "")?;
        let dst = self.expect_string("STRING")?;
        self.expect(&Tok::Comma, ",")?;
        let replacement = self.expect_string("STRING")?;
        self.expect(&Tok::Comma, ",")?;
        let src = self.expect_string("STRING")?;
        self.expect(&Tok::Comma, ",")?;
        let regex = self.expect_string("STRING")?;
        self.expect(&Tok::RParen, ")")?;
        let own_err = goregex::validate(&format!("^(?:{regex})$"))
            .err()
            .map(|e| ParseError::new(format!("invalid regex in label_replace: {e}")));
        let err = own_err.or(inner_err);
        Ok(Node::Sample(
            SampleExpr::LabelReplace(LabelReplace {
                inner: Box::new(inner),
                dst,
                replacement,
                src,
                regex,
            }),
            err,
        ))
    }

    fn parse_vector(&mut self) -> PResult<Node> {
        self.bump();
        self.expect(&Tok::LParen, "(")?;
        let Tok::Number(text) = self.peek_tok().clone() else {
            return Err(self.unexpected("NUMBER"));
        };
        self.bump();
        self.expect(&Tok::RParen, ")")?;
        match units::parse_go_float(&text) {
            Ok(v) => Ok(Node::Sample(SampleExpr::Vector(v), None)),
            Err(e) => Ok(Node::Sample(
                SampleExpr::Vector(0.0),
                Some(ParseError::new(format!(
                    "unable to parse vectorExpr as a float: {e}"
                ))),
            )),
        }
    }

    // ---- selectors and pipelines ----

    /// `{ matcher, ... }` (the `{` is the look-ahead).
    fn parse_selector(&mut self) -> PResult<Vec<LabelMatcher>> {
        self.bump();
        let mut matchers = Vec::new();
        if self.eat(&Tok::RBrace) {
            return Ok(matchers);
        }
        let name = self.expect_ident("IDENTIFIER or }")?;
        matchers.push(self.parse_matcher_after_name(name)?);
        // Loki's grammar recovers from an error after the first matcher (`OPEN_BRACE matchers
        // error`): the selector ends there and parsing goes on.
        match self.parse_more_matchers(&mut matchers) {
            Err(Fail::Syntax(e)) => self.recover(e)?,
            other => other?,
        }
        Ok(matchers)
    }

    fn parse_more_matchers(&mut self, matchers: &mut Vec<LabelMatcher>) -> PResult<()> {
        loop {
            match self.peek_tok() {
                Tok::RBrace => {
                    self.bump();
                    return Ok(());
                }
                Tok::Comma => {
                    self.bump();
                    let name = self.expect_ident("IDENTIFIER")?;
                    matchers.push(self.parse_matcher_after_name(name)?);
                }
                _ => return Err(self.unexpected("} or ,")),
            }
        }
    }

    /// Loki's yacc error recovery, simplified: the syntax error is recorded (the first recorded
    /// error is what Loki reports, unless a later grammar action fails with its own error),
    /// tokens that cannot follow the recovered construct are skipped, and parsing resumes.
    /// A syntax error outside the recovering constructs still ends the parse.
    fn recover(&mut self, e: ParseError) -> PResult<()> {
        self.lx.errors.push(e);
        loop {
            match self.peek_tok() {
                Tok::Eof
                | Tok::Pipe
                | Tok::PipeExact
                | Tok::PipeMatch
                | Tok::PipePattern
                | Tok::Neq
                | Tok::Nre
                | Tok::Npa
                | Tok::Range(_)
                | Tok::RParen => return Ok(()),
                t if binop_of(t).is_some() => return Ok(()),
                _ => {
                    self.bump();
                }
            }
        }
    }

    fn match_op(tok: &Tok) -> Option<MatchOp> {
        match tok {
            Tok::Eq => Some(MatchOp::Eq),
            Tok::Neq => Some(MatchOp::Neq),
            Tok::Re => Some(MatchOp::Re),
            Tok::Nre => Some(MatchOp::Nre),
            _ => None,
        }
    }

    fn parse_matcher_after_name(&mut self, name: String) -> PResult<LabelMatcher> {
        let Some(op) = Self::match_op(self.peek_tok()) else {
            return Err(self.unexpected("= or =~ or !~ or !="));
        };
        self.bump();
        let value = self.expect_string("STRING")?;
        new_matcher(name, op, value).map_err(Fail::Immediate)
    }

    /// Pipeline stages after a selector. With `allow_unwrap`, a `| unwrap ...` ends the pipeline
    /// and is returned; otherwise `unwrap` is a syntax error.
    fn parse_pipeline(&mut self, allow_unwrap: bool) -> PResult<PipelineEnd> {
        let mut stages = Vec::new();
        loop {
            match self.peek_tok() {
                Tok::PipeExact
                | Tok::PipeMatch
                | Tok::PipePattern
                | Tok::Neq
                | Tok::Nre
                | Tok::Npa => {
                    let filters = self.parse_line_filters()?;
                    stages.push(Stage::LineFilters(filters));
                }
                Tok::Pipe => {
                    self.bump();
                    if allow_unwrap && self.at(&Tok::Unwrap) {
                        let unwrap = self.parse_unwrap()?;
                        return Ok(PipelineEnd {
                            stages,
                            unwrap: Some(unwrap),
                        });
                    }
                    stages.push(self.parse_stage()?);
                }
                _ => {
                    return Ok(PipelineEnd {
                        stages,
                        unwrap: None,
                    });
                }
            }
        }
    }

    fn line_filter_op(tok: &Tok) -> Option<LineFilterOp> {
        Some(match tok {
            Tok::PipeExact => LineFilterOp::Contains,
            Tok::Neq => LineFilterOp::NotContains,
            Tok::PipeMatch => LineFilterOp::Regex,
            Tok::Nre => LineFilterOp::NotRegex,
            Tok::PipePattern => LineFilterOp::Pattern,
            Tok::Npa => LineFilterOp::NotPattern,
            _ => return None,
        })
    }

    /// A run of consecutive line filters (one Loki stage).
    fn parse_line_filters(&mut self) -> PResult<Vec<LineFilter>> {
        let mut out = Vec::new();
        while let Some(op) = Self::line_filter_op(self.peek_tok()) {
            self.bump();
            let value = self.parse_line_match()?;
            let mut alternatives = Vec::new();
            while self.eat(&Tok::Or) {
                alternatives.push(self.parse_line_match()?);
            }
            if op.is_positive() {
                out.push(LineFilter {
                    op,
                    value,
                    or: alternatives,
                });
            } else {
                // Loki rewrites `!= "a" or "b"` into `!= "a" != "b"`.
                out.push(LineFilter {
                    op,
                    value,
                    or: Vec::new(),
                });
                out.extend(alternatives.into_iter().map(|value| LineFilter {
                    op,
                    value,
                    or: Vec::new(),
                }));
            }
        }
        Ok(out)
    }

    fn parse_line_match(&mut self) -> PResult<LineMatch> {
        match self.peek_tok().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(LineMatch::Text(s))
            }
            Tok::Ip => {
                self.bump();
                self.expect(&Tok::LParen, "(")?;
                let s = self.expect_string("STRING")?;
                self.expect(&Tok::RParen, ")")?;
                Ok(LineMatch::Ip(s))
            }
            _ => Err(self.unexpected("STRING or ip")),
        }
    }

    /// One stage after `|`.
    fn parse_stage(&mut self) -> PResult<Stage> {
        match self.peek_tok().clone() {
            Tok::Logfmt => {
                self.bump();
                let mut parser = LogfmtParser::default();
                while let Tok::Flag(f) = self.peek_tok().clone() {
                    self.bump();
                    match f.as_str() {
                        "--strict" => parser.strict = true,
                        _ => parser.keep_empty = true,
                    }
                }
                if matches!(self.peek_tok(), Tok::Ident(_)) {
                    parser.extractions = self.parse_extractions()?;
                }
                Ok(Stage::Logfmt(parser))
            }
            Tok::Json => {
                self.bump();
                if matches!(self.peek_tok(), Tok::Ident(_)) {
                    return Ok(Stage::Json(self.parse_extractions()?));
                }
                Ok(Stage::Json(Vec::new()))
            }
            Tok::Regexp => {
                self.bump();
                let re = self.expect_string("STRING")?;
                if let Err(e) = goregex::validate_regexp_parser(&re) {
                    return Err(Fail::Immediate(ParseError::new(format!(
                        "invalid regexp parser: {e}"
                    ))));
                }
                Ok(Stage::Regexp(re))
            }
            Tok::Pattern => {
                self.bump();
                let p = self.expect_string("STRING")?;
                if let Err(e) = pattern::validate_parser_pattern(&p) {
                    return Err(Fail::Immediate(ParseError::new(format!(
                        "invalid pattern parser: {e}"
                    ))));
                }
                Ok(Stage::Pattern(p))
            }
            Tok::Unpack => {
                self.bump();
                Ok(Stage::Unpack)
            }
            Tok::Decolorize => {
                self.bump();
                Ok(Stage::Decolorize)
            }
            Tok::LineFmt => {
                self.bump();
                Ok(Stage::LineFormat(self.expect_string("STRING")?))
            }
            Tok::LabelFmt => {
                self.bump();
                let mut formats = vec![self.parse_label_format()?];
                while self.eat(&Tok::Comma) {
                    // Loki's grammar recovers here (`labelsFormat COMMA error`).
                    match self.parse_label_format() {
                        Ok(f) => formats.push(f),
                        Err(Fail::Syntax(e)) => {
                            self.recover(e)?;
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(Stage::LabelFormat(formats))
            }
            Tok::Drop => {
                self.bump();
                Ok(Stage::Drop(self.parse_named_matchers()?))
            }
            Tok::Keep => {
                self.bump();
                Ok(Stage::Keep(self.parse_named_matchers()?))
            }
            Tok::Ident(_) | Tok::LParen => Ok(Stage::LabelFilter(self.parse_label_filter()?)),
            _ => Err(self.unexpected("")),
        }
    }

    /// `a="x", b, ...` after `json` or `logfmt`.
    fn parse_extractions(&mut self) -> PResult<Vec<LabelExtraction>> {
        let mut out = Vec::new();
        loop {
            let name = self.expect_ident("IDENTIFIER")?;
            if self.eat(&Tok::Eq) {
                let expression = self.expect_string("STRING")?;
                out.push(LabelExtraction { name, expression });
            } else {
                out.push(LabelExtraction {
                    expression: name.clone(),
                    name,
                });
            }
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    fn parse_label_format(&mut self) -> PResult<LabelFormat> {
        let name = self.expect_ident("IDENTIFIER")?;
        self.expect(&Tok::Eq, "=")?;
        match self.peek_tok().clone() {
            Tok::Ident(src) => {
                self.bump();
                Ok(LabelFormat {
                    name,
                    value: LabelFormatValue::Rename(src),
                })
            }
            Tok::Str(tmpl) => {
                self.bump();
                Ok(LabelFormat {
                    name,
                    value: LabelFormatValue::Template(tmpl),
                })
            }
            _ => Err(self.unexpected("IDENTIFIER or STRING")),
        }
    }

    fn parse_named_matchers(&mut self) -> PResult<Vec<NamedMatcher>> {
        let mut out = Vec::new();
        loop {
            let name = self.expect_ident("IDENTIFIER")?;
            if Self::match_op(self.peek_tok()).is_some() {
                out.push(NamedMatcher::Matcher(self.parse_matcher_after_name(name)?));
            } else {
                out.push(NamedMatcher::Name(name));
            }
            if !self.eat(&Tok::Comma) {
                return Ok(out);
            }
        }
    }

    // ---- label filters ----

    /// A label filter expression with Loki's (yacc-resolved) grouping: `and` binds tighter than
    /// `or`, both left-associative; after `,` or juxtaposition everything to the right groups
    /// first; after `and`/`or` a following `,`/juxtaposition also groups first.
    fn parse_label_filter(&mut self) -> PResult<LabelFilter> {
        // Shift-reduce emulation: a stack of (left operand, operator) pairs. Every operator can
        // add a level to the tree.
        let start_depth = self.depth;
        self.enter()?;
        let mut stack: Vec<(LabelFilter, LfOp)> = Vec::new();
        let mut current = self.parse_label_filter_primary()?;
        loop {
            let op = match self.peek_tok() {
                Tok::And => LfOp::And,
                Tok::Or => LfOp::Or,
                Tok::Comma => LfOp::Comma,
                Tok::Ident(_) | Tok::LParen => LfOp::Juxtapose,
                _ => break,
            };
            while let Some((_, top)) = stack.last() {
                if !top.reduces_before(op) {
                    break;
                }
                if let Some((left, top)) = stack.pop() {
                    current = top.combine(left, current);
                }
            }
            if op != LfOp::Juxtapose {
                self.bump();
            }
            self.descend(1)?;
            stack.push((current, op));
            if op != LfOp::Juxtapose && !matches!(self.peek_tok(), Tok::Ident(_) | Tok::LParen) {
                return Err(self.unexpected("IDENTIFIER or ("));
            }
            current = self.parse_label_filter_primary()?;
        }
        while let Some((left, op)) = stack.pop() {
            current = op.combine(left, current);
        }
        self.nesting -= 1;
        self.depth = start_depth;
        Ok(current)
    }

    fn parse_label_filter_primary(&mut self) -> PResult<LabelFilter> {
        let name = match self.peek_tok().clone() {
            Tok::LParen => {
                self.bump();
                if !matches!(self.peek_tok(), Tok::Ident(_) | Tok::LParen) {
                    return Err(self.unexpected("IDENTIFIER or ("));
                }
                let inner = self.parse_label_filter()?;
                self.expect(&Tok::RParen, "")?;
                return Ok(inner);
            }
            Tok::Ident(name) => {
                self.bump();
                name
            }
            _ => return Err(self.unexpected("")),
        };
        let op_tok = self.peek_tok().clone();
        let cmp = match op_tok {
            Tok::Eq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::CmpEq => CmpOp::Eq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Gte,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Lte,
            Tok::Re | Tok::Nre => {
                self.bump();
                let value = self.expect_string("STRING")?;
                let op = if op_tok == Tok::Re {
                    MatchOp::Re
                } else {
                    MatchOp::Nre
                };
                return Ok(LabelFilter::String(
                    new_matcher(name, op, value).map_err(Fail::Immediate)?,
                ));
            }
            _ => return Err(self.unexpected("")),
        };
        self.bump();
        let string_allowed = matches!(op_tok, Tok::Eq | Tok::Neq);
        match self.peek_tok().clone() {
            Tok::Str(value) if string_allowed => {
                self.bump();
                let op = if op_tok == Tok::Eq {
                    MatchOp::Eq
                } else {
                    MatchOp::Neq
                };
                Ok(LabelFilter::String(
                    new_matcher(name, op, value).map_err(Fail::Immediate)?,
                ))
            }
            Tok::Ip if string_allowed => {
                self.bump();
                self.expect(&Tok::LParen, "(")?;
                let pattern = self.expect_string("STRING")?;
                self.expect(&Tok::RParen, ")")?;
                Ok(LabelFilter::Ip {
                    name,
                    negated: op_tok == Tok::Neq,
                    pattern,
                })
            }
            Tok::Duration(value) => {
                self.bump();
                Ok(LabelFilter::Duration {
                    name,
                    op: cmp,
                    value,
                })
            }
            Tok::Bytes(value) => {
                self.bump();
                Ok(LabelFilter::Bytes {
                    name,
                    op: cmp,
                    value,
                })
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => {
                let (value, err) = self.parse_literal()?;
                if let Some(e) = err {
                    return Err(Fail::Immediate(e));
                }
                Ok(LabelFilter::Number {
                    name,
                    op: cmp,
                    value,
                })
            }
            _ => Err(self.unexpected("")),
        }
    }
}

/// Label filter operators as Loki's grammar resolves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LfOp {
    And,
    Or,
    Comma,
    Juxtapose,
}

impl LfOp {
    /// Whether `left <self> right` is reduced before shifting `next` (yacc: only when both the
    /// rule and the look-ahead have a precedence; `,` and juxtaposition have none).
    fn reduces_before(self, next: LfOp) -> bool {
        let prec = |op: LfOp| match op {
            LfOp::Or => Some(1),
            LfOp::And => Some(2),
            LfOp::Comma | LfOp::Juxtapose => None,
        };
        match (prec(self), prec(next)) {
            (Some(a), Some(b)) => a >= b,
            _ => false,
        }
    }

    fn combine(self, left: LabelFilter, right: LabelFilter) -> LabelFilter {
        match self {
            LfOp::Or => LabelFilter::Or(Box::new(left), Box::new(right)),
            _ => LabelFilter::And(Box::new(left), Box::new(right)),
        }
    }
}

fn too_deep() -> Fail {
    Fail::Immediate(ParseError::new("expression nests too deeply"))
}

/// Loki's `mustNewMatcher`: regex matchers must compile (Go syntax, Go messages).
pub(crate) fn new_matcher(
    name: String,
    op: MatchOp,
    value: String,
) -> Result<LabelMatcher, ParseError> {
    if matches!(op, MatchOp::Re | MatchOp::Nre) {
        goregex::validate(&value).map_err(ParseError::new)?;
    }
    LabelMatcher::new(name, op, value)
        .map_err(|e| ParseError::new(goregex::describe_rust_error(&e)))
}

/// Loki's `mustNewLiteralExpr`.
fn literal_value(text: &str, negate: bool) -> (f64, Option<ParseError>) {
    match units::parse_go_float(text) {
        Ok(v) => (if negate { -v } else { v }, None),
        Err(e) => (
            0.0,
            Some(ParseError::new(format!(
                "unable to parse literal as a float: {e}"
            ))),
        ),
    }
}

/// Go's `%T` for a log expression leg.
fn log_type_name(l: &LogSelectorExpr) -> &'static str {
    if l.stages.is_empty() {
        "*syntax.MatchersExpr"
    } else {
        "*syntax.PipelineExpr"
    }
}

/// Loki's `mustNewBinOpExpr`: leg type checks, literal checks and literal folding.
fn make_binop(op: BinOpKind, modifier: BinOpModifier, left: Node, right: Node) -> Node {
    let placeholder = |err: ParseError| Node::Sample(SampleExpr::Vector(f64::NAN), Some(err));
    let (lhs, lerr) = match left {
        Node::Log(l) => {
            return placeholder(ParseError::new(format!(
                "unexpected type for left leg of binary operation ({}): {}",
                op.as_str(),
                log_type_name(&l)
            )));
        }
        Node::Sample(s, e) => (s, e),
    };
    let (rhs, rerr) = match right {
        Node::Log(r) => {
            return placeholder(ParseError::new(format!(
                "unexpected type for right leg of binary operation ({}): {}",
                op.as_str(),
                log_type_name(&r)
            )));
        }
        Node::Sample(s, e) => (s, e),
    };
    let lit_l = if let SampleExpr::Literal(v) = lhs {
        Some(v)
    } else {
        None
    };
    let lit_r = if let SampleExpr::Literal(v) = rhs {
        Some(v)
    } else {
        None
    };
    // A literal's deferred error is its own parse error, reported by the operation.
    if lit_l.is_some()
        && let Some(e) = lerr.clone()
    {
        return placeholder(e);
    }
    if lit_r.is_some()
        && let Some(e) = rerr.clone()
    {
        return placeholder(e);
    }
    if op.is_set_op() {
        if let Some(v) = lit_l {
            return placeholder(ParseError::new(format!(
                "unexpected literal for left leg of logical/set binary operation ({}): {}",
                op.as_str(),
                units::format_float_6(v)
            )));
        }
        if let Some(v) = lit_r {
            return placeholder(ParseError::new(format!(
                "unexpected literal for right leg of logical/set binary operation ({}): {}",
                op.as_str(),
                units::format_float_6(v)
            )));
        }
    }
    if let (Some(l), Some(r)) = (lit_l, lit_r) {
        return Node::Sample(
            SampleExpr::Literal(op.apply(l, r).unwrap_or(f64::NAN)),
            None,
        );
    }
    let err = lerr.or(rerr);
    Node::Sample(
        SampleExpr::BinOp(BinOp {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            modifier,
        }),
        err,
    )
}

/// Loki's `newRangeAggregationExpr` plus the selector check `validateExpr` does.
fn make_range_aggregation(
    op: RangeOp,
    param_text: Option<String>,
    range: LogRange,
    grouping: Option<Grouping>,
) -> (SampleExpr, Option<ParseError>) {
    let mut err = None;
    let mut param = None;
    match &param_text {
        Some(text) => {
            if op != RangeOp::QuantileOverTime {
                err = Some(format!(
                    "parameter {text} not supported for operation {}",
                    op.as_str()
                ));
            } else {
                match units::parse_go_float(text) {
                    Ok(v) => param = Some(v),
                    Err(e) => {
                        err = Some(format!(
                            "invalid parameter for operation {}: {e}",
                            op.as_str()
                        ))
                    }
                }
            }
        }
        None if op == RangeOp::QuantileOverTime => {
            err = Some(format!("parameter required for operation {}", op.as_str()));
        }
        None => {}
    }
    if err.is_none() {
        if grouping.is_some() && !op.allows_grouping() {
            err = Some(format!(
                "grouping not allowed for {} aggregation",
                op.as_str()
            ));
        } else if range.unwrap.is_some() {
            if !op.allows_unwrap() {
                err = Some(format!("invalid aggregation {} with unwrap", op.as_str()));
            }
        } else if !op.allows_no_unwrap() {
            err = Some(format!(
                "invalid aggregation {} without unwrap",
                op.as_str()
            ));
        }
    }
    let err = err
        .map(ParseError::new)
        .or_else(|| validate_selector(&range.selector.matchers).err());
    (
        SampleExpr::RangeAggregation(RangeAggregation {
            op,
            param,
            range,
            grouping,
        }),
        err,
    )
}

/// Loki's `mustNewVectorAggregationExpr` plus the sort grouping check.
fn make_vector_aggregation(
    op: VectorOp,
    param_text: Option<String>,
    inner: SampleExpr,
    inner_err: Option<ParseError>,
    grouping: Option<Grouping>,
) -> (SampleExpr, Option<ParseError>) {
    let mut err = None;
    let mut param = None;
    let name = op.as_str();
    if op.takes_param() {
        match &param_text {
            None => err = Some(format!("parameter required for operation {name}")),
            Some(text) => match units::parse_go_int(text) {
                Err(_) => err = Some(format!("invalid parameter {name}({text},")),
                Ok(k) if k <= 0 => {
                    err = Some(format!(
                        "invalid parameter (must be greater than 0) {name}({text}"
                    ))
                }
                Ok(k) => {
                    if op == VectorOp::ApproxTopk && grouping.is_some() {
                        err = Some(format!("grouping not allowed for {name} aggregation"));
                    }
                    param = Some(k);
                }
            },
        }
    } else if let Some(text) = &param_text {
        err = Some(format!(
            "unsupported parameter for operation {name}({text},"
        ));
    }
    let grouping = grouping.unwrap_or_default();
    if err.is_none()
        && matches!(op, VectorOp::Sort | VectorOp::SortDesc)
        && !grouping.labels.is_empty()
    {
        err = Some("sort and sort_desc doesn't allow grouping by ".to_string());
    }
    let err = err.map(ParseError::new).or(inner_err);
    (
        SampleExpr::VectorAggregation(VectorAggregation {
            op,
            param,
            inner: Box::new(inner),
            grouping,
        }),
        err,
    )
}

#[cfg(test)]
mod tests {
    //! Tree shapes for the constructs the evaluator cares about. Loki's own parser test queries
    //! (with Loki's answers) run in `tests/loki_reference.rs`; these pin the tree itself.

    use super::*;

    fn parse(q: &str) -> Expr {
        crate::parse_expr(q).unwrap_or_else(|e| panic!("{q}: {e}"))
    }

    fn err(q: &str) -> String {
        crate::parse_expr(q)
            .map(|e| e.to_string())
            .expect_err(q)
            .to_string()
    }

    fn log(q: &str) -> LogSelectorExpr {
        match parse(q) {
            Expr::Log(l) => l,
            other => panic!("not a log query: {other}"),
        }
    }

    fn sample(q: &str) -> SampleExpr {
        match parse(q) {
            Expr::Sample(s) => s,
            other => panic!("not a metric query: {other}"),
        }
    }

    fn m(name: &str, op: MatchOp, value: &str) -> LabelMatcher {
        LabelMatcher::new(name, op, value).expect("valid matcher")
    }

    fn text(s: &str) -> LineMatch {
        LineMatch::Text(s.to_string())
    }

    fn lf_str(name: &str, value: &str) -> LabelFilter {
        LabelFilter::String(m(name, MatchOp::Eq, value))
    }

    fn and(l: LabelFilter, r: LabelFilter) -> LabelFilter {
        LabelFilter::And(Box::new(l), Box::new(r))
    }

    fn or(l: LabelFilter, r: LabelFilter) -> LabelFilter {
        LabelFilter::Or(Box::new(l), Box::new(r))
    }

    fn range_agg(q: &str) -> RangeAggregation {
        match sample(q) {
            SampleExpr::RangeAggregation(r) => r,
            other => panic!("not a range aggregation: {other}"),
        }
    }

    const MIN: i64 = 60_000_000_000;

    #[test]
    fn selector() {
        let l = log(r#"{app="api", ns=~"prod|dev", x!="", y!~"a.*"}"#);
        assert_eq!(
            l.matchers,
            vec![
                m("app", MatchOp::Eq, "api"),
                m("ns", MatchOp::Re, "prod|dev"),
                m("x", MatchOp::Neq, ""),
                m("y", MatchOp::Nre, "a.*")
            ]
        );
        assert!(l.stages.is_empty());
        assert_eq!(
            parse(r#"{app="api"}"#).selector_matchers(),
            vec![l.matchers[..1].to_vec().as_slice()]
        );
    }

    #[test]
    fn line_filters_group_and_split_negations() {
        let l = log(r#"{a="b"} |= "x" or "y" != "z" or "w" |~ "r" | json |> "<_> p""#);
        assert_eq!(
            l.stages,
            vec![
                Stage::LineFilters(vec![
                    LineFilter {
                        op: LineFilterOp::Contains,
                        value: text("x"),
                        or: vec![text("y")]
                    },
                    LineFilter {
                        op: LineFilterOp::NotContains,
                        value: text("z"),
                        or: vec![]
                    },
                    LineFilter {
                        op: LineFilterOp::NotContains,
                        value: text("w"),
                        or: vec![]
                    },
                    LineFilter {
                        op: LineFilterOp::Regex,
                        value: text("r"),
                        or: vec![]
                    },
                ]),
                Stage::Json(vec![]),
                Stage::LineFilters(vec![LineFilter {
                    op: LineFilterOp::Pattern,
                    value: text("<_> p"),
                    or: vec![]
                }]),
            ]
        );
        let l = log(r#"{a="b"} |= ip("10.0.0.0/8") or "x""#);
        assert_eq!(
            l.stages,
            vec![Stage::LineFilters(vec![LineFilter {
                op: LineFilterOp::Contains,
                value: LineMatch::Ip("10.0.0.0/8".into()),
                or: vec![text("x")]
            }])]
        );
    }

    #[test]
    fn label_filter_grouping() {
        let label_filter = |q: &str| match log(q).stages.pop() {
            Some(Stage::LabelFilter(f)) => f,
            other => panic!("{other:?}"),
        };
        let (a, c, e) = (lf_str("a", "b"), lf_str("c", "d"), lf_str("e", "f"));
        assert_eq!(
            label_filter(r#"{x="y"} | a="b" and c="d" or e="f""#),
            or(and(a.clone(), c.clone()), e.clone())
        );
        assert_eq!(
            label_filter(r#"{x="y"} | a="b" or c="d" and e="f""#),
            or(a.clone(), and(c.clone(), e.clone()))
        );
        assert_eq!(
            label_filter(r#"{x="y"} | a="b", c="d" or e="f""#),
            and(a.clone(), or(c.clone(), e.clone()))
        );
        assert_eq!(
            label_filter(r#"{x="y"} | a="b" c="d" e="f""#),
            and(a.clone(), and(c.clone(), e.clone()))
        );
        assert_eq!(
            label_filter(r#"{x="y"} | (a="b" or c="d") e="f""#),
            and(or(a, c), e)
        );
    }

    #[test]
    fn typed_label_filters() {
        let l = log(r#"{x="y"} | n >= -1.5 | d < 1.5h | s == 20MB | i != ip("::1") | e =~ "a.+""#);
        assert_eq!(
            l.stages,
            vec![
                Stage::LabelFilter(LabelFilter::Number {
                    name: "n".into(),
                    op: CmpOp::Gte,
                    value: -1.5
                }),
                Stage::LabelFilter(LabelFilter::Duration {
                    name: "d".into(),
                    op: CmpOp::Lt,
                    value: 90 * MIN
                }),
                Stage::LabelFilter(LabelFilter::Bytes {
                    name: "s".into(),
                    op: CmpOp::Eq,
                    value: 20_000_000
                }),
                Stage::LabelFilter(LabelFilter::Ip {
                    name: "i".into(),
                    negated: true,
                    pattern: "::1".into()
                }),
                Stage::LabelFilter(LabelFilter::String(m("e", MatchOp::Re, "a.+"))),
            ]
        );
    }

    #[test]
    fn parsers_and_formatters() {
        let l = log(
            r#"{x="y"} | logfmt --keep-empty a, b="c" | json d="e[0]" | regexp "(?P<f>.)" | pattern "<g> _" | unpack | decolorize | line_format "{{.a}}" | label_format h=a, i="{{.b}}" | drop j, k="v" | keep l"#,
        );
        let ext = |n: &str, e: &str| LabelExtraction {
            name: n.into(),
            expression: e.into(),
        };
        assert_eq!(
            l.stages,
            vec![
                Stage::Logfmt(LogfmtParser {
                    strict: false,
                    keep_empty: true,
                    extractions: vec![ext("a", "a"), ext("b", "c")]
                }),
                Stage::Json(vec![ext("d", "e[0]")]),
                Stage::Regexp("(?P<f>.)".into()),
                Stage::Pattern("<g> _".into()),
                Stage::Unpack,
                Stage::Decolorize,
                Stage::LineFormat("{{.a}}".into()),
                Stage::LabelFormat(vec![
                    LabelFormat {
                        name: "h".into(),
                        value: LabelFormatValue::Rename("a".into())
                    },
                    LabelFormat {
                        name: "i".into(),
                        value: LabelFormatValue::Template("{{.b}}".into())
                    },
                ]),
                Stage::Drop(vec![
                    NamedMatcher::Name("j".into()),
                    NamedMatcher::Matcher(m("k", MatchOp::Eq, "v"))
                ]),
                Stage::Keep(vec![NamedMatcher::Name("l".into())]),
            ]
        );
    }

    #[test]
    fn range_aggregations_in_every_form() {
        let expected =
            range_agg(r#"sum_over_time({a="b"} | json | unwrap bytes(x) | x > 1 [5m] offset 1h)"#);
        assert_eq!(expected.op, RangeOp::SumOverTime);
        assert_eq!(expected.range.range, 5 * MIN);
        assert_eq!(expected.range.offset, 60 * MIN);
        assert_eq!(
            expected.range.unwrap,
            Some(Unwrap {
                label: "x".into(),
                conversion: Some(UnwrapConversion::Bytes),
                post_filters: vec![LabelFilter::Number {
                    name: "x".into(),
                    op: CmpOp::Gt,
                    value: 1.0
                }],
            })
        );
        for q in [
            r#"sum_over_time({a="b"}[5m] offset 1h | json | unwrap bytes(x) | x > 1)"#,
            r#"sum_over_time(({a="b"} | json | unwrap bytes(x) | x > 1)[5m] offset 1h)"#,
            r#"sum_over_time(({a="b"} | json | unwrap bytes(x) | x > 1 [5m] offset 1h))"#,
        ] {
            assert_eq!(range_agg(q), expected, "{q}");
        }
        let q = range_agg(r#"quantile_over_time(0.99, {a="b"} | unwrap x [1m]) by (c)"#);
        assert_eq!(
            (q.param, q.grouping),
            (
                Some(0.99),
                Some(Grouping {
                    without: false,
                    labels: vec!["c".into()]
                })
            )
        );
        let c = range_agg(r#"count_over_time({a="b"}[1m] offset -5m)"#);
        assert_eq!(
            (c.range.offset, c.param, c.grouping),
            (-5 * MIN, None, None)
        );
    }

    #[test]
    fn vector_aggregations() {
        let before = sample(r#"topk by (a) (5, count_over_time({a="b"}[1m]))"#);
        let after = sample(r#"topk(5, count_over_time({a="b"}[1m])) by (a)"#);
        assert_eq!(before, after);
        let SampleExpr::VectorAggregation(v) = before else {
            panic!()
        };
        assert_eq!((v.op, v.param), (VectorOp::Topk, Some(5)));
        assert_eq!(
            v.grouping,
            Grouping {
                without: false,
                labels: vec!["a".into()]
            }
        );
        let SampleExpr::VectorAggregation(v) = sample(r#"sum(count_over_time({a="b"}[1m]))"#)
        else {
            panic!()
        };
        assert!(v.grouping.is_singleton());
    }

    #[test]
    fn binary_operations_precedence_and_folding() {
        assert_eq!(sample("1 + 2 * 3"), SampleExpr::Literal(7.0));
        assert_eq!(sample("2 ^ 3 ^ 2"), SampleExpr::Literal(512.0));
        assert_eq!(sample("-1 + -2"), SampleExpr::Literal(-3.0));
        assert_eq!(sample("(1 + 2) * 3"), SampleExpr::Literal(9.0));
        assert_eq!(sample("2 > 1"), SampleExpr::Literal(1.0));
        let SampleExpr::Literal(nan) = sample("1 / 0") else {
            panic!()
        };
        assert!(nan.is_nan());
        let SampleExpr::BinOp(b) = sample("vector(1) + vector(2) * 3") else {
            panic!()
        };
        assert_eq!(b.op, BinOpKind::Add);
        assert!(matches!(
            *b.rhs,
            SampleExpr::BinOp(BinOp {
                op: BinOpKind::Mul,
                ..
            })
        ));
        let SampleExpr::BinOp(b) = sample("vector(1) > bool on (a, b) group_left (c) vector(2)")
        else {
            panic!()
        };
        assert_eq!(
            b.modifier,
            BinOpModifier {
                return_bool: true,
                matching: VectorMatching {
                    card: Cardinality::ManyToOne,
                    on: true,
                    labels: vec!["a".into(), "b".into()],
                    include: vec!["c".into()]
                }
            }
        );
        let SampleExpr::BinOp(b) = sample("vector(1) or vector(2) and vector(3)") else {
            panic!()
        };
        assert_eq!(b.op, BinOpKind::Or);
    }

    #[test]
    fn functions() {
        assert_eq!(sample("vector(2.5)"), SampleExpr::Vector(2.5));
        let SampleExpr::LabelReplace(l) =
            sample(r#"label_replace(vector(1), "dst", "$1", "src", "(.*)")"#)
        else {
            panic!()
        };
        assert_eq!(
            (
                l.dst.as_str(),
                l.replacement.as_str(),
                l.src.as_str(),
                l.regex.as_str()
            ),
            ("dst", "$1", "src", "(.*)")
        );
    }

    #[test]
    fn error_precedence() {
        // An invalid matcher regex stops the parse before a later syntax error is seen.
        assert_eq!(
            err(r#"{a=~"("} + 1 +"#),
            "parse error : error parsing regexp: missing closing ): `(`"
        );
        // A syntax error wins over a type error found earlier.
        assert_eq!(
            err(r#"1 + {a="b"} )"#),
            "parse error at line 1, col 13: syntax error: unexpected )"
        );
        // Deferred errors come in validation order: the outer operation first.
        assert_eq!(
            err(r#"sum_over_time({a="b"}[5m]) and 1"#),
            "parse error : unexpected literal for right leg of logical/set binary operation (and): 1.000000"
        );
        // A lexer error recorded before a syntax error is the one reported.
        assert_eq!(
            err(r#"{a="\q"}"#),
            "parse error at line 1, col 4: invalid char escape"
        );
        // Stage checks run after parse-time validation.
        assert_eq!(
            err(r#"{a=""} |~ "(""#),
            crate::parse_expr_syntax(r#"{a=""} |~ "(""#)
                .unwrap_err()
                .to_string()
        );
        assert_eq!(
            err(r#"{a="b"} |~ "(""#),
            "parse error : stage '|~ \"(\"' : error parsing regexp: missing closing ): `(`"
        );
    }

    #[test]
    fn entry_points() {
        assert_eq!(
            crate::parse_matchers(r#"{a="b", c!="d"}"#).unwrap().len(),
            2
        );
        assert_eq!(
            crate::parse_matchers(r#"{a="b"} |= "x""#)
                .unwrap_err()
                .to_string(),
            "only label matchers are supported"
        );
        assert!(crate::parse_matchers(r#"{a=""}"#).is_err());
        assert_eq!(
            crate::parse_log_selector(r#"{a="b"} | json"#)
                .unwrap()
                .stages,
            vec![Stage::Json(vec![])]
        );
        assert_eq!(
            crate::parse_log_selector(r#"count_over_time({a="b"}[1m])"#)
                .unwrap_err()
                .to_string(),
            "only log selector is supported"
        );
        let big = format!("{{a=\"{}\"}}", "x".repeat(MAX_INPUT_SIZE));
        assert_eq!(
            crate::parse_expr(&big).unwrap_err().to_string(),
            format!(
                "parse error : input size too long ({} > {MAX_INPUT_SIZE})",
                big.len()
            )
        );
    }
}
