//! The LogQL lexer: turns query text into tokens the way Loki's lexer does.
//!
//! Loki's lexer sits on a copy of Go's `text/scanner` and then re-classifies its tokens, and
//! several user-visible behaviours come from that stack, so this module reproduces it rather than
//! lexing "cleanly":
//! * Keywords are matched case-insensitively (`SUM`, `BY`, `Json` all work), and a keyword can
//!   never be a label name (`{json="x"}` is a syntax error). Function names (`rate`, `sum`, `ip`,
//!   `bytes`, ...) are keywords only when followed by `(` or by `by`/`without` and `(`;
//!   otherwise they are identifiers.
//! * A number glued to unit letters becomes a duration (`5m`, `1.5h`, `-5m`) or a byte size
//!   (`20MB`); `[...]` is read as one range token; `--strict`/`--keep-empty` are flag tokens.
//! * `#` starts a comment to the end of the line, and so do Go's `//` and `/* */`.
//! * Unknown characters become identifier tokens (that is how Loki's grammar sees them).
//! * Error positions: 1-based line and column (in characters) of the offending token; Loki
//!   reports line 0 for tokens its lexer completed with a look-ahead read, and so do we.
//!
//! The lexer is pull-based so that, as in Loki, lexing stops where parsing stops: an error in the
//! text after a syntax error is never reported. Errors are collected in [`Lexer::errors`]; a lexer
//! error that ends the token stream is followed by [`Tok::Eof`].

use crate::ast::{RangeOp, UnwrapConversion, VectorOp};
use crate::error::ParseError;
use crate::units;

/// One token kind. Names follow Loki's grammar tokens.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Eof,
    Ident(String),
    Str(String),
    Number(String),
    Duration(i64),
    Range(i64),
    Bytes(u64),
    Flag(String),
    Comma,
    Dot,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Eq,
    Neq,
    Re,
    Nre,
    Npa,
    PipeExact,
    PipeMatch,
    PipePattern,
    Pipe,
    By,
    Without,
    Bool,
    Offset,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Unwrap,
    Or,
    And,
    Unless,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    CmpEq,
    Gt,
    Gte,
    Lt,
    Lte,
    Json,
    Regexp,
    Logfmt,
    Unpack,
    Pattern,
    LabelFmt,
    LineFmt,
    Ip,
    Decolorize,
    Drop,
    Keep,
    LabelReplace,
    Vector,
    RangeOp(RangeOp),
    VectorOp(VectorOp),
    Conv(UnwrapConversion),
}

impl Tok {
    /// The name Loki's parser uses for the token in `unexpected X` messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Tok::Eof => "$end",
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Duration(_) => "DURATION",
            Tok::Range(_) => "RANGE",
            Tok::Bytes(_) => "BYTES",
            Tok::Flag(_) => "FUNCTION_FLAG",
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Npa => "!>",
            Tok::PipeExact => "|=",
            Tok::PipeMatch => "|~",
            Tok::PipePattern => "|>",
            Tok::Pipe => "|",
            Tok::By => "by",
            Tok::Without => "without",
            Tok::Bool => "bool",
            Tok::Offset => "offset",
            Tok::On => "on",
            Tok::Ignoring => "ignoring",
            Tok::GroupLeft => "group_left",
            Tok::GroupRight => "group_right",
            Tok::Unwrap => "unwrap",
            Tok::Or => "or",
            Tok::And => "and",
            Tok::Unless => "unless",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::CmpEq => "==",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Json => "json",
            Tok::Regexp => "regexp",
            Tok::Logfmt => "logfmt",
            Tok::Unpack => "unpack",
            Tok::Pattern => "pattern",
            Tok::LabelFmt => "label_format",
            Tok::LineFmt => "line_format",
            Tok::Ip => "ip",
            Tok::Decolorize => "decolorize",
            Tok::Drop => "drop",
            Tok::Keep => "keep",
            Tok::LabelReplace => "label_replace",
            Tok::Vector => "VECTOR",
            Tok::RangeOp(op) => match op {
                RangeOp::CountOverTime => "COUNT_OVER_TIME",
                RangeOp::Rate => "RATE",
                RangeOp::RateCounter => "RATE_COUNTER",
                RangeOp::BytesOverTime => "BYTES_OVER_TIME",
                RangeOp::BytesRate => "BYTES_RATE",
                RangeOp::AvgOverTime => "AVG_OVER_TIME",
                RangeOp::SumOverTime => "SUM_OVER_TIME",
                RangeOp::MinOverTime => "MIN_OVER_TIME",
                RangeOp::MaxOverTime => "MAX_OVER_TIME",
                RangeOp::StdvarOverTime => "STDVAR_OVER_TIME",
                RangeOp::StddevOverTime => "STDDEV_OVER_TIME",
                RangeOp::QuantileOverTime => "QUANTILE_OVER_TIME",
                RangeOp::FirstOverTime => "FIRST_OVER_TIME",
                RangeOp::LastOverTime => "LAST_OVER_TIME",
                RangeOp::AbsentOverTime => "ABSENT_OVER_TIME",
            },
            Tok::VectorOp(op) => match op {
                VectorOp::Sum => "SUM",
                VectorOp::Avg => "AVG",
                VectorOp::Max => "MAX",
                VectorOp::Min => "MIN",
                VectorOp::Count => "COUNT",
                VectorOp::Stddev => "STDDEV",
                VectorOp::Stdvar => "STDVAR",
                VectorOp::Bottomk => "BOTTOMK",
                VectorOp::Topk => "TOPK",
                VectorOp::Sort => "SORT",
                VectorOp::SortDesc => "SORT_DESC",
                VectorOp::ApproxTopk => "APPROX_TOPK",
            },
            Tok::Conv(c) => match c {
                UnwrapConversion::Bytes => "BYTES_CONV",
                UnwrapConversion::Duration => "DURATION_CONV",
                UnwrapConversion::DurationSeconds => "DURATION_SECONDS_CONV",
            },
        }
    }
}

/// A token with the position Loki would report for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: u32,
    pub(crate) col: u32,
}

/// Keywords that are always keywords (Loki's `tokens` map), matched on lower-cased text.
fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        "," => Tok::Comma,
        "." => Tok::Dot,
        "{" => Tok::LBrace,
        "}" => Tok::RBrace,
        "=" => Tok::Eq,
        "!=" => Tok::Neq,
        "=~" => Tok::Re,
        "!~" => Tok::Nre,
        "!>" => Tok::Npa,
        "|=" => Tok::PipeExact,
        "|~" => Tok::PipeMatch,
        "|>" => Tok::PipePattern,
        "|" => Tok::Pipe,
        "unwrap" => Tok::Unwrap,
        "(" => Tok::LParen,
        ")" => Tok::RParen,
        "by" => Tok::By,
        "without" => Tok::Without,
        "bool" => Tok::Bool,
        "[" => Tok::LBracket,
        "]" => Tok::RBracket,
        "label_replace" => Tok::LabelReplace,
        "offset" => Tok::Offset,
        "on" => Tok::On,
        "ignoring" => Tok::Ignoring,
        "group_left" => Tok::GroupLeft,
        "group_right" => Tok::GroupRight,
        "or" => Tok::Or,
        "and" => Tok::And,
        "unless" => Tok::Unless,
        "+" => Tok::Add,
        "-" => Tok::Sub,
        "*" => Tok::Mul,
        "/" => Tok::Div,
        "%" => Tok::Mod,
        "^" => Tok::Pow,
        "==" => Tok::CmpEq,
        ">" => Tok::Gt,
        ">=" => Tok::Gte,
        "<" => Tok::Lt,
        "<=" => Tok::Lte,
        "json" => Tok::Json,
        "regexp" => Tok::Regexp,
        "logfmt" => Tok::Logfmt,
        "unpack" => Tok::Unpack,
        "pattern" => Tok::Pattern,
        "label_format" => Tok::LabelFmt,
        "line_format" => Tok::LineFmt,
        "ip" => Tok::Ip,
        "decolorize" => Tok::Decolorize,
        "drop" => Tok::Drop,
        "keep" => Tok::Keep,
        _ => return None,
    })
}

/// Function names (Loki's `functionTokens`): keywords only when used as a call.
fn function_token(s: &str) -> Option<Tok> {
    if let Some(op) = RangeOp::from_name(s) {
        return Some(Tok::RangeOp(op));
    }
    if let Some(op) = VectorOp::from_name(s) {
        return Some(Tok::VectorOp(op));
    }
    Some(match s {
        "vector" => Tok::Vector,
        "label_replace" => Tok::LabelReplace,
        "bytes" => Tok::Conv(UnwrapConversion::Bytes),
        "duration" => Tok::Conv(UnwrapConversion::Duration),
        "duration_seconds" => Tok::Conv(UnwrapConversion::DurationSeconds),
        "ip" => Tok::Ip,
        _ => return None,
    })
}

/// What Go's `text/scanner` returned for one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // the names are Go's token kinds
enum Raw {
    Eof,
    Ident,
    Int,
    Float,
    Char,
    String,
    RawString,
    Other(char),
}

/// The pull lexer. See the module docs for the behaviours it reproduces.
pub(crate) struct Lexer {
    chars: Vec<char>,
    /// `pos[i]` is the (line, col) of `chars[i]`; `pos[len]` is the end-of-input position.
    pos: Vec<(u32, u32)>,
    /// Index of Go's look-ahead character `ch`; `chars.len()` means EOF.
    i: usize,
    /// Go's `Scanner.Position` line and column: what errors report.
    line: u32,
    col: u32,
    /// Go's stale `s.ch` at the start of the current scan (see `scan_number`).
    scan_start: Option<char>,
    /// Index of the first character of the token being scanned.
    tok_start: usize,
    /// Errors in the order Loki would record them.
    pub(crate) errors: Vec<ParseError>,
    /// Set once a lexer error ended the stream: every later token is EOF.
    done: bool,
}

impl Lexer {
    pub(crate) fn new(input: &str) -> Self {
        let chars: Vec<char> = input.chars().collect();
        let mut pos = Vec::with_capacity(chars.len() + 1);
        let (mut line, mut col) = (1u32, 0u32);
        for &c in &chars {
            col += 1;
            pos.push((line, col));
            if c == '\n' {
                line += 1;
                col = 0;
            }
        }
        pos.push(if chars.is_empty() {
            (0, 0)
        } else {
            (line, col + 1)
        });
        // Go's scanner skips a byte-order mark at the very start.
        let i = usize::from(chars.first() == Some(&'\u{feff}'));
        let mut lexer = Lexer {
            chars,
            pos,
            i,
            line: 0,
            col: 0,
            scan_start: None,
            tok_start: i,
            errors: Vec::new(),
            done: false,
        };
        if lexer.cur() == Some('\0') {
            lexer.error("invalid character NUL");
        }
        lexer
    }

    fn cur(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    /// Go's internal `next()`: moves the look-ahead one character on.
    fn advance(&mut self) -> Option<char> {
        if self.i < self.chars.len() {
            self.i += 1;
        }
        let c = self.cur();
        if c == Some('\0') {
            self.error("invalid character NUL");
        }
        c
    }

    /// Go's public `Next()`: returns the look-ahead, moves on, and invalidates the line.
    fn next_public(&mut self) -> Option<char> {
        self.line = 0;
        let c = self.cur();
        if c.is_some() {
            self.advance();
        }
        c
    }

    fn error(&mut self, msg: impl Into<String>) {
        self.errors.push(ParseError::at(msg, self.line, self.col));
    }

    fn token(&self, tok: Tok) -> Token {
        Token {
            tok,
            line: self.line,
            col: self.col,
        }
    }

    /// The next token. After a lexer error that ends the stream, always EOF.
    pub(crate) fn next_token(&mut self) -> Token {
        if self.done {
            return self.token(Tok::Eof);
        }
        let tok = self.lex();
        if tok.tok == Tok::Eof {
            self.done = true;
        }
        tok
    }

    fn lex(&mut self) -> Token {
        loop {
            let raw = self.scan();
            let start = self.tok_start;
            let text: String = self.chars[start..self.i].iter().collect();
            match raw {
                Raw::Other('#') => {
                    while let Some(c) = self.cur() {
                        if c == '\n' {
                            break;
                        }
                        self.next_public();
                    }
                    continue;
                }
                Raw::Eof => return self.token(Tok::Eof),
                Raw::Int | Raw::Float => {
                    if let Some(d) = self.try_scan_duration(&text) {
                        return self.token(Tok::Duration(d));
                    }
                    if let Some(b) = self.try_scan_bytes(&text) {
                        return self.token(Tok::Bytes(b));
                    }
                    return self.token(Tok::Number(text));
                }
                Raw::Other('-') => {
                    if self.cur() == Some('-')
                        && let Some(flag) = self.try_scan_flag()
                    {
                        return self.token(Tok::Flag(flag));
                    }
                    if let Some(d) = self.try_scan_duration(&text) {
                        return self.token(Tok::Duration(d));
                    }
                }
                Raw::String | Raw::RawString => {
                    return match fjord_model::gostr::unquote(&text) {
                        Ok(s) => self.token(Tok::Str(s)),
                        Err(e) => {
                            self.error(e.to_string());
                            self.token(Tok::Eof)
                        }
                    };
                }
                Raw::Other('[') => return self.scan_range(),
                _ => {}
            }
            return self.classify(&text);
        }
    }

    fn classify(&mut self, text: &str) -> Token {
        let lower = text.to_lowercase();
        if let Some(tok) = function_token(&lower) {
            if !self.is_function() {
                return self.token(Tok::Ident(text.to_string()));
            }
            return self.token(tok);
        }
        if let Some(next) = self.cur() {
            let mut two = lower.clone();
            two.extend(next.to_lowercase());
            if let Some(tok) = keyword(&two) {
                self.next_public();
                return self.token(tok);
            }
        }
        if let Some(tok) = keyword(&lower) {
            return self.token(tok);
        }
        self.token(Tok::Ident(text.to_string()))
    }

    /// Loki's `isFunction`: after optional spaces, `(`, or `by`/`without` then spaces and `(`.
    fn is_function(&self) -> bool {
        let mut j = self.i;
        let skip_space = |mut j: usize| {
            while self.at(j).is_some_and(char::is_whitespace) {
                j += 1;
            }
            j
        };
        j = skip_space(j);
        let mut acc = String::new();
        while let Some(c) = self.at(j) {
            j += 1;
            acc.push(c);
            let lower = acc.to_lowercase();
            match lower.as_str() {
                "(" => return true,
                "by" | "without" => {
                    let k = skip_space(j);
                    return self.at(k) == Some('(');
                }
                _ => {}
            }
        }
        false
    }

    /// Reads `[...]` as one range token (the `[` was just scanned).
    fn scan_range(&mut self) -> Token {
        let mut body = String::new();
        while let Some(c) = self.next_public() {
            if c == ']' {
                return match units::parse_prometheus_duration(&body) {
                    Ok(d) => self.token(Tok::Range(d)),
                    Err(e) => {
                        self.error(e);
                        self.token(Tok::Eof)
                    }
                };
            }
            body.push(c);
        }
        self.error("missing closing ']' in duration");
        self.token(Tok::Eof)
    }

    /// Loki's `tryScanFlag`: `--strict` or `--keep-empty` after the first `-`.
    fn try_scan_flag(&mut self) -> Option<String> {
        let mut flag = String::from("-");
        let mut j = self.i;
        while let Some(c) = self.at(j) {
            if !(c.is_alphabetic() || c == '-') {
                break;
            }
            flag.push(c);
            j += 1;
        }
        if flag != "--strict" && flag != "--keep-empty" {
            return None;
        }
        while self.i < j {
            self.next_public();
        }
        Some(flag)
    }

    /// Collects the characters after a number that could continue it (no spaces).
    fn suffix_end(&self, accept: impl Fn(char) -> bool) -> usize {
        let mut j = self.i;
        while let Some(c) = self.at(j) {
            if c.is_whitespace() || !(c.is_numeric() || accept(c) || c == '.') {
                break;
            }
            j += 1;
        }
        j
    }

    fn try_scan_duration(&mut self, number: &str) -> Option<i64> {
        let end = self
            .suffix_end(|c| matches!(c, 'n' | 'u' | '\u{b5}' | 'm' | 's' | 'h' | 'd' | 'w' | 'y'));
        if end == self.i {
            return None;
        }
        let mut text = number.to_string();
        text.extend(&self.chars[self.i..end]);
        let d = units::parse_loki_duration(&text).ok()?;
        while self.i < end {
            self.next_public();
        }
        Some(d)
    }

    fn try_scan_bytes(&mut self, number: &str) -> Option<u64> {
        let end = self.suffix_end(|c| matches!(c, 'B' | 'i' | 'k' | 'K' | 'M' | 'G' | 'T' | 'P'));
        if end == self.i {
            return None;
        }
        let mut text = number.to_string();
        text.extend(&self.chars[self.i..end]);
        let b = units::parse_bytes(&text).ok()?;
        while self.i < end {
            self.next_public();
        }
        Some(b)
    }

    // ---- Go text/scanner emulation ----

    fn is_ident_rune(c: char, first: bool) -> bool {
        c == '_' || c.is_alphabetic() || (!first && c.is_numeric())
    }

    /// One `Scanner.Scan()`: skips whitespace and Go comments, then reads one raw token.
    fn scan(&mut self) -> Raw {
        self.scan_start = self.cur();
        self.line = 0;
        loop {
            while matches!(self.cur(), Some(' ' | '\t' | '\n' | '\r')) {
                self.advance();
            }
            self.tok_start = self.i;
            let (l, c) = self.pos[self.i.min(self.pos.len() - 1)];
            self.line = l;
            self.col = c;
            let Some(ch) = self.cur() else {
                return Raw::Eof;
            };
            if Self::is_ident_rune(ch, true) {
                let mut c = self.advance();
                while c.is_some_and(|c| Self::is_ident_rune(c, false)) {
                    c = self.advance();
                }
                return Raw::Ident;
            }
            if ch.is_ascii_digit() {
                return self.scan_number(false);
            }
            match ch {
                '"' => {
                    self.scan_string('"');
                    self.advance();
                    return Raw::String;
                }
                '\'' => {
                    if self.scan_string('\'') != 1 {
                        self.error("invalid char literal");
                    }
                    self.advance();
                    return Raw::Char;
                }
                '.' => {
                    let c = self.advance();
                    if c.is_some_and(|c| c.is_ascii_digit()) {
                        return self.scan_number(true);
                    }
                    return Raw::Other('.');
                }
                '/' => {
                    let c = self.advance();
                    if c == Some('/') {
                        while self.cur().is_some_and(|c| c != '\n') {
                            self.advance();
                        }
                        continue;
                    }
                    if c == Some('*') {
                        self.advance();
                        loop {
                            let Some(c0) = self.cur() else {
                                self.error("comment not terminated");
                                break;
                            };
                            let c1 = self.advance();
                            if c0 == '*' && c1 == Some('/') {
                                self.advance();
                                break;
                            }
                        }
                        continue;
                    }
                    return Raw::Other('/');
                }
                '`' => {
                    let mut c = self.advance();
                    loop {
                        match c {
                            None => {
                                self.error("literal not terminated");
                                break;
                            }
                            Some('`') => break,
                            Some(_) => c = self.advance(),
                        }
                    }
                    self.advance();
                    return Raw::RawString;
                }
                other => {
                    self.advance();
                    return Raw::Other(other);
                }
            }
        }
    }

    /// Go's `scanString`: the opening quote is the look-ahead; stops on the closing quote (left
    /// as look-ahead) or reports `literal not terminated`. Returns the number of characters.
    fn scan_string(&mut self, quote: char) -> usize {
        let mut n = 0;
        let mut c = self.advance();
        loop {
            match c {
                Some(ch) if ch == quote => return n,
                None | Some('\n') => {
                    self.error("literal not terminated");
                    return n;
                }
                Some('\\') => c = self.scan_escape(quote),
                Some(_) => c = self.advance(),
            }
            n += 1;
        }
    }

    fn scan_escape(&mut self, quote: char) -> Option<char> {
        let c = self.advance();
        match c {
            Some(ch) if ch == quote => self.advance(),
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => self.advance(),
            Some('0'..='7') => self.scan_digits(c, 8, 3),
            Some('x') => {
                let c = self.advance();
                self.scan_digits(c, 16, 2)
            }
            Some('u') => {
                let c = self.advance();
                self.scan_digits(c, 16, 4)
            }
            Some('U') => {
                let c = self.advance();
                self.scan_digits(c, 16, 8)
            }
            _ => {
                self.error("invalid char escape");
                c
            }
        }
    }

    fn scan_digits(&mut self, mut c: Option<char>, base: u32, mut n: u32) -> Option<char> {
        while n > 0 && c.and_then(|ch| ch.to_digit(16)).is_some_and(|d| d < base) {
            c = self.advance();
            n -= 1;
        }
        if n > 0 {
            self.error("invalid char escape");
        }
        c
    }

    /// Go's `scanNumber`, including its error messages and the quirk that `0b` is a binary
    /// prefix only when the (stale) scanner look-ahead is `0` or `1`.
    fn scan_number(&mut self, mut seen_dot: bool) -> Raw {
        let mut base = 10u32;
        let mut prefix = '\0';
        let mut digsep = 0u8;
        let mut invalid: Option<char> = None;
        let mut tok = Raw::Int;
        let mut ch = self.cur();
        if !seen_dot {
            if ch == Some('0') {
                ch = self.advance();
                match ch.map(|c| c.to_ascii_lowercase()) {
                    Some('x') => {
                        ch = self.advance();
                        base = 16;
                        prefix = 'x';
                    }
                    Some('o') => {
                        ch = self.advance();
                        base = 8;
                        prefix = 'o';
                    }
                    Some('b') => {
                        if matches!(self.scan_start, Some('0' | '1')) {
                            ch = self.advance();
                            base = 2;
                            prefix = 'b';
                        }
                    }
                    _ => {
                        base = 8;
                        prefix = '0';
                        digsep = 1;
                    }
                }
            }
            let (c, ds) = self.digits(ch, base, &mut invalid);
            ch = c;
            digsep |= ds;
            if ch == Some('.') {
                ch = self.advance();
                seen_dot = true;
            }
        }
        if seen_dot {
            tok = Raw::Float;
            if prefix == 'o' || prefix == 'b' {
                self.error(format!("invalid radix point in {}", litname(prefix)));
            }
            let (c, ds) = self.digits(ch, base, &mut invalid);
            ch = c;
            digsep |= ds;
        }
        if digsep & 1 == 0 {
            self.error(format!("{} has no digits", litname(prefix)));
        }
        let e = ch.map(|c| c.to_ascii_lowercase());
        if e == Some('e') || (e == Some('p') && prefix == 'x') {
            if e == Some('e') && prefix != '\0' && prefix != '0' {
                let c = ch.unwrap_or('e');
                self.error(format!("'{c}' exponent requires decimal mantissa"));
            }
            ch = self.advance();
            tok = Raw::Float;
            if matches!(ch, Some('+' | '-')) {
                ch = self.advance();
            }
            let mut none = None;
            let (_, ds) = self.digits(ch, 10, &mut none);
            digsep |= ds;
            if ds & 1 == 0 {
                self.error("exponent has no digits");
            }
        } else if prefix == 'x' && tok == Raw::Float {
            self.error("hexadecimal mantissa requires a 'p' exponent");
        }
        if tok == Raw::Int
            && let Some(bad) = invalid
        {
            self.error(format!("invalid digit '{bad}' in {}", litname(prefix)));
        }
        if digsep & 2 != 0 {
            let text: String = self.chars[self.tok_start..self.i].iter().collect();
            if invalid_sep(&text) {
                self.error("'_' must separate successive digits");
            }
        }
        tok
    }

    fn digits(
        &mut self,
        mut ch: Option<char>,
        base: u32,
        invalid: &mut Option<char>,
    ) -> (Option<char>, u8) {
        let mut digsep = 0u8;
        if base <= 10 {
            let max = char::from_digit(base, 10).unwrap_or(':');
            while let Some(c) = ch {
                if !(c.is_ascii_digit() || c == '_') {
                    break;
                }
                if c == '_' {
                    digsep |= 2;
                } else {
                    digsep |= 1;
                    if base < 10 && c >= max && invalid.is_none() {
                        *invalid = Some(c);
                    }
                }
                ch = self.advance();
            }
        } else {
            while let Some(c) = ch {
                if !(c.is_ascii_hexdigit() || c == '_') {
                    break;
                }
                digsep |= if c == '_' { 2 } else { 1 };
                ch = self.advance();
            }
        }
        (ch, digsep)
    }
}

fn litname(prefix: char) -> &'static str {
    match prefix {
        'x' => "hexadecimal literal",
        'o' | '0' => "octal literal",
        'b' => "binary literal",
        _ => "decimal literal",
    }
}

/// Go's `invalidSep`: whether a `_` in a number literal does not separate two digits.
fn invalid_sep(x: &str) -> bool {
    let b = x.as_bytes();
    let mut x1 = b' ';
    let mut d = b'.';
    let mut i = 0;
    if b.len() >= 2 && b[0] == b'0' {
        x1 = b[1].to_ascii_lowercase();
        if x1 == b'x' || x1 == b'o' || x1 == b'b' {
            d = b'0';
            i = 2;
        }
    }
    while i < b.len() {
        let p = d;
        d = b[i];
        if d == b'_' {
            if p != b'0' {
                return true;
            }
        } else if d.is_ascii_digit() || (x1 == b'x' && d.is_ascii_hexdigit()) {
            d = b'0';
        } else {
            if p == b'_' {
                return true;
            }
            d = b'.';
        }
        i += 1;
    }
    d == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(input: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let t = lx.next_token();
            if t.tok == Tok::Eof {
                break;
            }
            out.push(t.tok);
        }
        out
    }

    fn ident(s: &str) -> Tok {
        Tok::Ident(s.to_string())
    }

    /// Loki's grammar token constant for a token (the names `lex_test.go` uses).
    fn go_kind(t: &Tok) -> String {
        let name = t.name();
        let named = match t {
            Tok::Comma => "COMMA",
            Tok::Dot => "DOT",
            Tok::LBrace => "OPEN_BRACE",
            Tok::RBrace => "CLOSE_BRACE",
            Tok::LBracket => "OPEN_BRACKET",
            Tok::RBracket => "CLOSE_BRACKET",
            Tok::LParen => "OPEN_PARENTHESIS",
            Tok::RParen => "CLOSE_PARENTHESIS",
            Tok::Eq => "EQ",
            Tok::Neq => "NEQ",
            Tok::Re => "RE",
            Tok::Nre => "NRE",
            Tok::Npa => "NPA",
            Tok::PipeExact => "PIPE_EXACT",
            Tok::PipeMatch => "PIPE_MATCH",
            Tok::PipePattern => "PIPE_PATTERN",
            Tok::Pipe => "PIPE",
            Tok::CmpEq => "CMP_EQ",
            Tok::Gt => "GT",
            Tok::Gte => "GTE",
            Tok::Lt => "LT",
            Tok::Lte => "LTE",
            Tok::Add => "ADD",
            Tok::Sub => "SUB",
            Tok::Mul => "MUL",
            Tok::Div => "DIV",
            Tok::Mod => "MOD",
            Tok::Pow => "POW",
            Tok::LabelFmt => "LABEL_FMT",
            Tok::LineFmt => "LINE_FMT",
            Tok::LabelReplace => "LABEL_REPLACE",
            Tok::GroupLeft => "GROUP_LEFT",
            Tok::GroupRight => "GROUP_RIGHT",
            _ => "",
        };
        if named.is_empty() {
            name.to_uppercase()
        } else {
            named.to_string()
        }
    }

    /// Loki's `TestLex` table (`pkg/logql/syntax/lex_test.go`), token kinds only.
    #[test]
    fn loki_lex_table() {
        let cases: &[(&str, &str)] = &[
            (
                "{foo=\"bar\"}",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE",
            ),
            (
                "{variants=\"bar\"}",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE",
            ),
            (
                "{of=\"bar\"}",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE",
            ),
            (
                "{foo=\"bar\"} |~  `\\w+`",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | latency > 250ms",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT DURATION",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | foo = 0ms",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER EQ DURATION",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | latency > 1h15m30.918273645s",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT DURATION",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | latency > 1h0.0m0s",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT DURATION",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | latency > 1h0.0m0s or foo == 4.00 and bar =\"foo\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT DURATION OR IDENTIFIER CMP_EQ NUMBER AND IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | duration > 1h0.0m0s or avg == 4.00 and bar =\"foo\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT DURATION OR IDENTIFIER CMP_EQ NUMBER AND IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | latency > 1h0.0m0s or foo == 4.00 and bar =\"foo\" | unwrap foo",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT DURATION OR IDENTIFIER CMP_EQ NUMBER AND IDENTIFIER EQ STRING PIPE UNWRAP IDENTIFIER",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | size > 250kB",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT BYTES",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | size > 250kB and latency <= 1h15m30s or bar=1",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT BYTES AND IDENTIFIER LTE DURATION OR IDENTIFIER EQ NUMBER",
            ),
            (
                "{foo=\"bar\"} |~ \"\\\\w+\" | size > 200MiB or foo == 4.00",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE IDENTIFIER GT BYTES OR IDENTIFIER CMP_EQ NUMBER",
            ),
            (
                "{ foo = \"bar\" }",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE",
            ),
            (
                "{ foo != \"bar\" }",
                "OPEN_BRACE IDENTIFIER NEQ STRING CLOSE_BRACE",
            ),
            (
                "{ foo =~ \"bar\" }",
                "OPEN_BRACE IDENTIFIER RE STRING CLOSE_BRACE",
            ),
            (
                "{ foo !~ \"bar\" }",
                "OPEN_BRACE IDENTIFIER NRE STRING CLOSE_BRACE",
            ),
            (
                "{ foo = \"bar\", bar != \"baz\" }",
                "OPEN_BRACE IDENTIFIER EQ STRING COMMA IDENTIFIER NEQ STRING CLOSE_BRACE",
            ),
            (
                "{ foo = \"ba\\\"r\" }",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE",
            ),
            (
                "rate({foo=\"bar\"}[10s])",
                "RATE OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS",
            ),
            (
                "rate_counter({foo=\"bar\"} | unwrap foo[10s])",
                "RATE_COUNTER OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE UNWRAP IDENTIFIER RANGE CLOSE_PARENTHESIS",
            ),
            (
                "count_over_time({foo=\"bar\"}[5m])",
                "COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS",
            ),
            (
                "count_over_time({foo=\"bar\"} |~ \"\\\\w+\" | unwrap foo[5m])",
                "COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE_MATCH STRING PIPE UNWRAP IDENTIFIER RANGE CLOSE_PARENTHESIS",
            ),
            (
                "sum(count_over_time({foo=\"bar\"}[5m])) by (foo,bar)",
                "SUM OPEN_PARENTHESIS COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS",
            ),
            (
                "SUM(Count_Over_Time({foo=\"bar\"}[5m])) BY (foo,bar)",
                "SUM OPEN_PARENTHESIS COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS",
            ),
            (
                "SUM BY (foo, bar) (Count_Over_Time({foo=\"bar\"}[5m]))",
                "SUM BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS OPEN_PARENTHESIS COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS",
            ),
            (
                "topk(3,count_over_time({foo=\"bar\"}[5m])) by (foo,bar)",
                "TOPK OPEN_PARENTHESIS NUMBER COMMA COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS",
            ),
            (
                "bottomk(10,sum(count_over_time({foo=\"bar\"}[5m])) by (foo,bar))",
                "BOTTOMK OPEN_PARENTHESIS NUMBER COMMA SUM OPEN_PARENTHESIS COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS CLOSE_PARENTHESIS",
            ),
            (
                "BOTTOMK(10,Sum(COUNT_OVER_TIME({foo=\"bar\"}[5m])) By (foo,bar))",
                "BOTTOMK OPEN_PARENTHESIS NUMBER COMMA SUM OPEN_PARENTHESIS COUNT_OVER_TIME OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS CLOSE_PARENTHESIS",
            ),
            (
                "sum(max(rate({foo=\"bar\"}[5m])) by (foo,bar)) by (foo)",
                "SUM OPEN_PARENTHESIS MAX OPEN_PARENTHESIS RATE OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER COMMA IDENTIFIER CLOSE_PARENTHESIS CLOSE_PARENTHESIS BY OPEN_PARENTHESIS IDENTIFIER CLOSE_PARENTHESIS",
            ),
            (
                "{foo=\"bar\"} #|~ \"\\\\w+\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE",
            ),
            ("#{foo=\"bar\"} |~ \"\\\\w+\"", ""),
            ("{foo=\"#\"}", "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE"),
            (
                "{foo=\"bar\"}|logfmt --strict\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT FUNCTION_FLAG",
            ),
            (
                "{foo=\"bar\"}|LOGFMT --strict\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT FUNCTION_FLAG",
            ),
            (
                "{foo=\"bar\"}|logfmt|ip=\"b\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT PIPE IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"}|logfmt|rate=\"b\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT PIPE IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"}|logfmt|b=ip(\"b\")",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT PIPE IDENTIFIER EQ IP OPEN_PARENTHESIS STRING CLOSE_PARENTHESIS",
            ),
            (
                "{foo=\"bar\"}|logfmt|=ip(\"b\")",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT PIPE_EXACT IP OPEN_PARENTHESIS STRING CLOSE_PARENTHESIS",
            ),
            (
                "{foo=\"bar\"}|logfmt --strict --keep-empty|=ip(\"b\")",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT FUNCTION_FLAG FUNCTION_FLAG PIPE_EXACT IP OPEN_PARENTHESIS STRING CLOSE_PARENTHESIS",
            ),
            ("ip", "IDENTIFIER"),
            ("rate", "IDENTIFIER"),
            (
                "{foo=\"bar\"} | json | baz=\"#\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE JSON PIPE IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"}\n\t\t\t\t\t# |~ \"\\\\w+\"\n\t\t\t\t\t| json",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE JSON",
            ),
            (
                "{foo=\"bar\"} | json code=\"response.code\", param=\"request.params[0]\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE JSON IDENTIFIER EQ STRING COMMA IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"} | logfmt code=\"response.code\", IPAddress=\"host\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT IDENTIFIER EQ STRING COMMA IDENTIFIER EQ STRING",
            ),
            (
                "{foo=\"bar\"} | logfmt --strict code\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT FUNCTION_FLAG IDENTIFIER",
            ),
            (
                "{foo=\"bar\"} | logfmt --keep-empty --strict code=\"response.code\", IPAddress=\"host\"",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT FUNCTION_FLAG FUNCTION_FLAG IDENTIFIER EQ STRING COMMA IDENTIFIER EQ STRING",
            ),
            ("decolorize", "DECOLORIZE"),
            ("123", "NUMBER"),
            ("-123", "SUB NUMBER"),
            ("123.45", "NUMBER"),
            ("-123.45", "SUB NUMBER"),
            ("123KB", "BYTES"),
            ("123PB", "BYTES"),
            ("123PiB", "BYTES"),
            ("123ms", "DURATION"),
            ("1e6", "NUMBER"),
            ("-123ms", "DURATION"),
            ("34 + - 123", "NUMBER ADD SUB NUMBER"),
            ("34 + -123", "NUMBER ADD SUB NUMBER"),
            ("34+-123", "NUMBER ADD SUB NUMBER"),
            ("34-123", "NUMBER SUB NUMBER"),
            (
                "sum(rate({foo=\"bar\"}[5m])-1 > 30",
                "SUM OPEN_PARENTHESIS RATE OPEN_PARENTHESIS OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE RANGE CLOSE_PARENTHESIS SUB NUMBER GT NUMBER",
            ),
            (
                "{foo=\"bar\"} | logfmt | bytes  < 0B",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT PIPE IDENTIFIER LT BYTES",
            ),
            (
                "{foo=\"bar\"} | logfmt | bytes  < 1B",
                "OPEN_BRACE IDENTIFIER EQ STRING CLOSE_BRACE PIPE LOGFMT PIPE IDENTIFIER LT BYTES",
            ),
            ("0b01", "NUMBER"),
            ("0b10", "NUMBER"),
            ("0x1A", "NUMBER"),
            ("0x1p3", "NUMBER"),
            ("0x1P3", "NUMBER"),
        ];
        for (input, expected) in cases {
            let mut lx = Lexer::new(input);
            let mut kinds = Vec::new();
            loop {
                let t = lx.next_token();
                if t.tok == Tok::Eof {
                    break;
                }
                kinds.push(go_kind(&t.tok));
            }
            assert_eq!(kinds.join(" "), *expected, "input {input:?}");
        }
    }

    #[test]
    fn selectors_and_filters() {
        assert_eq!(
            toks(r#"{foo="bar", a=~"b"} |= "x" != `y` |~ "z" !~ "w" |> "p" !> "q""#),
            vec![
                Tok::LBrace,
                ident("foo"),
                Tok::Eq,
                Tok::Str("bar".into()),
                Tok::Comma,
                ident("a"),
                Tok::Re,
                Tok::Str("b".into()),
                Tok::RBrace,
                Tok::PipeExact,
                Tok::Str("x".into()),
                Tok::Neq,
                Tok::Str("y".into()),
                Tok::PipeMatch,
                Tok::Str("z".into()),
                Tok::Nre,
                Tok::Str("w".into()),
                Tok::PipePattern,
                Tok::Str("p".into()),
                Tok::Npa,
                Tok::Str("q".into()),
            ]
        );
    }

    #[test]
    fn functions_only_before_parenthesis() {
        assert_eq!(
            toks("rate (x"),
            vec![Tok::RangeOp(RangeOp::Rate), Tok::LParen, ident("x")]
        );
        assert_eq!(toks("rate x"), vec![ident("rate"), ident("x")]);
        assert_eq!(
            toks("SUM BY (a) ("),
            vec![
                Tok::VectorOp(VectorOp::Sum),
                Tok::By,
                Tok::LParen,
                ident("a"),
                Tok::RParen,
                Tok::LParen
            ]
        );
        assert_eq!(toks("bytes(x)")[0], Tok::Conv(UnwrapConversion::Bytes));
        assert_eq!(toks("bytes > 1")[0], ident("bytes"));
        assert_eq!(toks("ip"), vec![ident("ip")]);
        assert_eq!(toks("json"), vec![Tok::Json]);
    }

    #[test]
    fn numbers_durations_bytes() {
        assert_eq!(toks("5m"), vec![Tok::Duration(300_000_000_000)]);
        assert_eq!(toks("1.5h"), vec![Tok::Duration(5_400_000_000_000)]);
        assert_eq!(toks("-5m"), vec![Tok::Duration(-300_000_000_000)]);
        assert_eq!(toks("20MB"), vec![Tok::Bytes(20_000_000)]);
        assert_eq!(toks("1.5KiB"), vec![Tok::Bytes(1536)]);
        assert_eq!(toks("42"), vec![Tok::Number("42".into())]);
        assert_eq!(toks("0.5"), vec![Tok::Number("0.5".into())]);
        assert_eq!(toks("1e3"), vec![Tok::Number("1e3".into())]);
        assert_eq!(toks("- 5"), vec![Tok::Sub, Tok::Number("5".into())]);
        assert_eq!(toks("-5"), vec![Tok::Sub, Tok::Number("5".into())]);
        assert_eq!(toks("5x"), vec![Tok::Number("5".into()), ident("x")]);
        assert_eq!(toks("[5m]"), vec![Tok::Range(300_000_000_000)]);
    }

    #[test]
    fn operators_and_flags() {
        assert_eq!(
            toks("== != >= <= > < + - * / % ^ | --strict --keep-empty"),
            vec![
                Tok::CmpEq,
                Tok::Neq,
                Tok::Gte,
                Tok::Lte,
                Tok::Gt,
                Tok::Lt,
                Tok::Add,
                Tok::Sub,
                Tok::Mul,
                Tok::Div,
                Tok::Mod,
                Tok::Pow,
                Tok::Pipe,
                Tok::Flag("--strict".into()),
                Tok::Flag("--keep-empty".into()),
            ]
        );
    }

    #[test]
    fn comments() {
        assert_eq!(toks("{a=\"b\"} # comment |= \"x\"\n|= \"y\""), {
            let mut v = vec![
                Tok::LBrace,
                ident("a"),
                Tok::Eq,
                Tok::Str("b".into()),
                Tok::RBrace,
            ];
            v.extend([Tok::PipeExact, Tok::Str("y".into())]);
            v
        });
    }

    #[test]
    fn positions_and_errors() {
        let mut lx = Lexer::new("sum(count_over_time({app=\"nginx\"}[5x]))");
        while lx.next_token().tok != Tok::Eof {}
        assert_eq!(
            lx.errors[0].to_string(),
            "parse error at line 0, col 34: unknown unit \"x\" in duration \"5x\""
        );
        let mut lx = Lexer::new("{a=\"\\q\"}");
        while lx.next_token().tok != Tok::Eof {}
        assert_eq!(
            lx.errors[0].to_string(),
            "parse error at line 1, col 4: invalid char escape"
        );
        let mut lx = Lexer::new("ab");
        let t = lx.next_token();
        assert_eq!((t.line, t.col), (1, 1));
        let t = lx.next_token();
        assert_eq!((t.tok, t.line, t.col), (Tok::Eof, 1, 3));
        let t = Lexer::new("").next_token();
        assert_eq!((t.line, t.col), (0, 0));
    }
}
