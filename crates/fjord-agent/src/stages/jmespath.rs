//! The JMESPath subset that Promtail `json` stage configs use: identifiers (`a`), quoted
//! identifiers (`"a.b"`, JSON string escapes), sub-expressions (`a.b.c`), index expressions
//! (`a[0]`, `a[-1]`, `[0]`) and list projections (`a[*].b`). Anything else is rejected when
//! the config is loaded, with the position of the unsupported construct.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    /// `[*]`: apply the remaining steps to each element, dropping nulls.
    Project,
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    steps: Vec<Step>,
}

impl Path {
    pub(crate) fn parse(s: &str) -> Result<Path, String> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut steps = Vec::new();
        let mut expect_field = true;
        while i < b.len() {
            match b[i] {
                b'.' if !expect_field => {
                    i += 1;
                    expect_field = true;
                    if i >= b.len() {
                        return Err(format!("unexpected end of expression after '.' in {s:?}"));
                    }
                }
                b'[' => {
                    let end = s[i..]
                        .find(']')
                        .map(|e| e + i)
                        .ok_or_else(|| format!("unclosed '[' at {i} in {s:?}"))?;
                    let inner = s[i + 1..end].trim();
                    if inner == "*" {
                        steps.push(Step::Project);
                    } else {
                        let n: i64 = inner
                            .parse()
                            .map_err(|_| format!("unsupported index {inner:?} at {i} in {s:?}"))?;
                        steps.push(Step::Index(n));
                    }
                    i = end + 1;
                    expect_field = false;
                }
                b'"' if expect_field => {
                    // A JSON string literal.
                    let mut j = i + 1;
                    while j < b.len() && b[j] != b'"' {
                        if b[j] == b'\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                    if j >= b.len() {
                        return Err(format!("unclosed quoted identifier at {i} in {s:?}"));
                    }
                    let name: String = serde_json::from_str(&s[i..=j])
                        .map_err(|e| format!("bad quoted identifier at {i} in {s:?}: {e}"))?;
                    steps.push(Step::Field(name));
                    i = j + 1;
                    expect_field = false;
                }
                c if expect_field && (c.is_ascii_alphabetic() || c == b'_') => {
                    let mut j = i;
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    steps.push(Step::Field(s[i..j].to_string()));
                    i = j;
                    expect_field = false;
                }
                _ => {
                    return Err(format!(
                        "unsupported JMESPath syntax at position {i} in {s:?} (supported: a.b, \"quoted\", a[0], a[*].b)"
                    ));
                }
            }
        }
        if steps.is_empty() {
            return Err("empty expression".into());
        }
        Ok(Path { steps })
    }

    /// Evaluates against a document; JMESPath's `null` for anything missing.
    pub(crate) fn search(&self, v: &Value) -> Value {
        eval(&self.steps, v)
    }
}

fn eval(steps: &[Step], v: &Value) -> Value {
    let Some((first, rest)) = steps.split_first() else {
        return v.clone();
    };
    match first {
        Step::Field(f) => match v.get(f) {
            Some(x) if v.is_object() => eval(rest, x),
            _ => Value::Null,
        },
        Step::Index(n) => match v.as_array() {
            Some(a) => {
                let idx = if *n < 0 { a.len() as i64 + n } else { *n };
                match usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                    Some(x) => eval(rest, x),
                    None => Value::Null,
                }
            }
            None => Value::Null,
        },
        Step::Project => match v.as_array() {
            Some(a) => Value::Array(
                a.iter()
                    .map(|x| eval(rest, x))
                    .filter(|x| !x.is_null())
                    .collect(),
            ),
            None => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset() {
        let doc: Value = serde_json::from_str(
            r#"{"a":{"b":{"c":1}},"x.y":"q","l":[{"n":1},{"n":2},{"m":3}],"s":[10,20,30]}"#,
        )
        .unwrap();
        let cases = [
            ("a.b.c", "1"),
            ("\"x.y\"", "\"q\""),
            ("a.\"b\".c", "1"),
            ("s[0]", "10"),
            ("s[-1]", "30"),
            ("l[1].n", "2"),
            ("l[*].n", "[1,2]"),
            ("a.zz", "null"),
            ("s[9]", "null"),
            ("a", r#"{"b":{"c":1}}"#),
        ];
        for (expr, want) in cases {
            let got = Path::parse(expr).unwrap().search(&doc);
            assert_eq!(got.to_string(), want, "{expr}");
        }
        for bad in ["a..b", "a[", "a | b", "", "a[?x]", "length(a)"] {
            assert!(Path::parse(bad).is_err(), "{bad}");
        }
    }
}
