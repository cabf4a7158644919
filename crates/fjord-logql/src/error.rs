//! The parse error, printed exactly as Loki's `logqlmodel.ParseError`.
//!
//! Loki answers a bad query with HTTP 400 and the error's text as the body, and clients show
//! that text to people, so the text is part of the contract: `parse error at line L, col C: msg`
//! when a position is known, `parse error : msg` (with the space before the colon) when it is not.
//! Loki reports line 0 for tokens its lexer finished with a look-ahead read (two-character
//! operators, `[range]`, durations, byte sizes); we reproduce that, so a position with line 0 but a
//! column is still printed in the positional form.

use std::fmt;

/// A LogQL query that could not be parsed or failed Loki's parse-time validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    msg: String,
    line: u32,
    col: u32,
    /// Printed without the `parse error` prefix (Loki's plain errors such as
    /// `only label matchers are supported`).
    plain: bool,
}

impl ParseError {
    /// An error at a position (`line`/`col` as Loki counts them: 1-based, columns in characters).
    pub fn at(msg: impl Into<String>, line: u32, col: u32) -> Self {
        ParseError {
            msg: msg.into(),
            line,
            col,
            plain: false,
        }
    }

    /// An error without a position (`parse error : msg`).
    pub fn new(msg: impl Into<String>) -> Self {
        ParseError {
            msg: msg.into(),
            line: 0,
            col: 0,
            plain: false,
        }
    }

    /// A rejection that Loki reports as a plain error, not a parse error: its text is the
    /// message alone.
    pub fn plain(msg: impl Into<String>) -> Self {
        ParseError {
            msg: msg.into(),
            line: 0,
            col: 0,
            plain: true,
        }
    }

    /// Whether Loki would class this as a parse error (`errors.Is(err, ErrParse)`).
    pub fn is_parse_error(&self) -> bool {
        !self.plain
    }

    /// Loki's stage error: `stage '<stage>' : <cause>`, raised when a pipeline stage cannot be
    /// built (bad line-filter regex, bad JSON path, duplicate `label_format` target, ...).
    pub fn stage(stage: &str, cause: impl fmt::Display) -> Self {
        ParseError::new(format!("stage '{stage}' : {cause}"))
    }

    /// The message without the `parse error` prefix and position.
    pub fn message(&self) -> &str {
        &self.msg
    }

    /// The line Loki reports (0 when unknown or when Loki's lexer invalidated it).
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The 1-based column Loki reports (0 when unknown).
    pub fn col(&self) -> u32 {
        self.col
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.plain {
            f.write_str(&self.msg)
        } else if self.line == 0 && self.col == 0 {
            write!(f, "parse error : {}", self.msg)
        } else {
            write!(
                f,
                "parse error at line {}, col {}: {}",
                self.line, self.col, self.msg
            )
        }
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_loki() {
        assert_eq!(
            ParseError::at("syntax error: unexpected $end, expecting } or ,", 1, 13).to_string(),
            "parse error at line 1, col 13: syntax error: unexpected $end, expecting } or ,"
        );
        assert_eq!(
            ParseError::at("x", 0, 34).to_string(),
            "parse error at line 0, col 34: x"
        );
        assert_eq!(ParseError::new("boom").to_string(), "parse error : boom");
        assert_eq!(
            ParseError::stage("|~ \"(\"", "error parsing regexp: missing closing ): `(`")
                .to_string(),
            "parse error : stage '|~ \"(\"' : error parsing regexp: missing closing ): `(`"
        );
    }
}
