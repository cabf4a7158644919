//! text/template's built-in functions: `not call html index slice js len print printf println
//! urlquery eq ne lt le gt ge` (`and`/`or` short-circuit and live in the executor).
//!
//! Comparison follows Go's `funcs.go`: values compare within a kind class (all signed
//! integers together, a signed and an unsigned integer by value); a string and a number are
//! "incompatible types for comparison"; ordering bools or composites is "invalid type for
//! comparison"; no value compares unequal to anything without error in `eq`.

use std::borrow::Cow;
use std::rc::Rc;

use super::{Func, arg_str};
use crate::exec::comparable_kind;
use crate::goquote::byte_slice;
use crate::value::{Kind, TemplateData, Value, sorted_labels};

pub(crate) fn call<'a>(
    data: &'a dyn TemplateData,
    f: Func,
    mut args: super::Args<'a>,
) -> Result<Value<'a>, String> {
    match f {
        Func::Not => Ok(Value::Bool(
            !args
                .pop()
                .unwrap_or(Value::Invalid)
                .indirect_interface()
                .truth(data),
        )),
        Func::Print => Ok(Value::str(crate::gofmt::sprint(&args, data))),
        Func::Println => Ok(Value::str(crate::gofmt::sprintln(&args, data))),
        Func::Printf => {
            let format = args.first().map(arg_str).unwrap_or("").to_string();
            Ok(Value::str(crate::gofmt::sprintf(
                &format,
                args.get(1..).unwrap_or(&[]),
                data,
            )))
        }
        Func::Html => Ok(Value::str(html_escape(&eval_args(args, data)))),
        Func::Js => Ok(Value::str(js_escape(&eval_args(args, data)))),
        Func::Urlquery => Ok(Value::str(super::strings::query_escape(&eval_args(
            args, data,
        )))),
        Func::Len => length(args.pop().unwrap_or(Value::Invalid), data).map(Value::Int),
        Func::Index => {
            let mut it = args.into_iter();
            let item = it.next().unwrap_or(Value::Invalid);
            index(item, it.collect(), data)
        }
        Func::Slice => {
            let mut it = args.into_iter();
            let item = it.next().unwrap_or(Value::Invalid);
            slice(item, it.collect())
        }
        Func::Eq => {
            let mut it = args.into_iter();
            let first = it.next().unwrap_or(Value::Invalid);
            eq(&first, &it.collect::<Vec<_>>()).map(Value::Bool)
        }
        Func::Ne => {
            let (a, b) = two(args);
            eq(&a, std::slice::from_ref(&b)).map(|t| Value::Bool(!t))
        }
        Func::Lt => {
            let (a, b) = two(args);
            lt(&a, &b).map(Value::Bool)
        }
        Func::Le => {
            let (a, b) = two(args);
            le(&a, &b).map(Value::Bool)
        }
        Func::Gt => {
            let (a, b) = two(args);
            le(&a, &b).map(|t| Value::Bool(!t))
        }
        Func::Ge => {
            let (a, b) = two(args);
            lt(&a, &b).map(|t| Value::Bool(!t))
        }
        // `call` is answered by the executor (it needs the callee's source text); `and`/`or`
        // short-circuit there too.
        _ => Err(format!("{} is not callable here", f.name())),
    }
}

fn two<'a>(args: super::Args<'a>) -> (Value<'a>, Value<'a>) {
    let mut it = args.into_iter();
    (
        it.next().unwrap_or(Value::Invalid),
        it.next().unwrap_or(Value::Invalid),
    )
}

/// Go's `evalArgs`: a lone string as is, otherwise `fmt.Sprint` with nil shown as `<no value>`.
fn eval_args(args: super::Args<'_>, data: &dyn TemplateData) -> String {
    if let [Value::Str(s)] = args.as_slice() {
        return s.to_string();
    }
    let args: Vec<Value<'_>> = args
        .into_iter()
        .map(|a| match a {
            Value::Invalid | Value::NilIface => Value::str("<no value>"),
            v => v,
        })
        .collect();
    crate::gofmt::sprint(&args, data)
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u00{:02X}", c as u32);
            }
            c if (c as u32) < 0x80 => out.push(c),
            c if crate::goquote::is_print(c) => out.push(c),
            c => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
        }
    }
    out
}

/// Go's `length`.
fn length(item: Value<'_>, data: &dyn TemplateData) -> Result<i64, String> {
    match &item {
        Value::NilIface => Err("len of nil pointer".into()),
        Value::Invalid => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::Str(s) => Ok(s.len() as i64),
        Value::Labels => Ok(sorted_labels(data).len() as i64),
        Value::Map(m) => Ok(m.len() as i64),
        Value::List(l) => Ok(l.len() as i64),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

/// Go's `indexArg`.
fn index_arg(index: &Value<'_>, cap: usize) -> Result<usize, String> {
    let x: i64 = match index {
        Value::Int(_)
        | Value::Int64(_)
        | Value::Duration(_)
        | Value::Month(_)
        | Value::Weekday(_) => index.int_of(),
        Value::Uint8(u) => i64::from(*u),
        Value::Invalid | Value::NilIface => return Err("cannot index slice/array with nil".into()),
        other => {
            return Err(format!(
                "cannot index slice/array with type {}",
                other.type_name()
            ));
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}"));
    }
    Ok(x as usize)
}

/// Go's `prepareArg` for a map key of type string.
fn map_key(index: &Value<'_>) -> Result<String, String> {
    match index {
        Value::Str(s) => Ok(s.to_string()),
        Value::Invalid | Value::NilIface => Err("value is nil; should be of type string".into()),
        other => Err(format!(
            "value has type {}; should be string",
            other.type_name()
        )),
    }
}

/// Go's `index`.
fn index<'a>(
    item: Value<'a>,
    indexes: Vec<Value<'a>>,
    data: &'a dyn TemplateData,
) -> Result<Value<'a>, String> {
    let mut item = item.indirect_interface();
    if matches!(item, Value::Invalid) {
        return Err("index of untyped nil".into());
    }
    for idx in indexes {
        let idx = idx.indirect_interface();
        if matches!(item, Value::NilIface) {
            return Err("index of nil pointer".into());
        }
        item = match &item {
            Value::Str(s) => {
                let x = index_arg(&idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => Value::Uint8(*b),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::List(l) => {
                let x = index_arg(&idx, l.len())?;
                match l.get(x) {
                    Some(e) => Value::from_json(e),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::Labels => {
                let key = map_key(&idx)?;
                Value::Str(Cow::Borrowed(data.label(&key).unwrap_or("")))
            }
            Value::Map(m) => {
                let key = map_key(&idx)?;
                m.get(&key).map_or(Value::NilIface, Value::from_json)
            }
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// Go's `slice`.
fn slice<'a>(item: Value<'a>, indexes: Vec<Value<'a>>) -> Result<Value<'a>, String> {
    let item = item.indirect_interface();
    if matches!(item, Value::Invalid) {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()));
    }
    let len = match &item {
        Value::Str(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    let mut idx = [0usize, len, len];
    for (i, x) in indexes.iter().enumerate() {
        idx[i] = index_arg(&x.clone().indirect_interface(), len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    match item {
        Value::Str(s) => Ok(match s {
            Cow::Borrowed(b) => match b.get(idx[0]..idx[1]) {
                Some(sub) => Value::Str(Cow::Borrowed(sub)),
                None => Value::str(byte_slice(b, idx[0], idx[1])),
            },
            Cow::Owned(o) => Value::str(byte_slice(&o, idx[0], idx[1])),
        }),
        Value::List(l) => Ok(Value::List(Rc::new(l[idx[0]..idx[1]].to_vec()))),
        _ => Err("can't slice".into()),
    }
}

fn incompatible(a: &Value<'_>, b: &Value<'_>) -> String {
    format!(
        "incompatible types for comparison: {} and {}",
        a.type_name(),
        b.type_name()
    )
}

/// Go's `eq`: `arg1 == arg2[0] || arg1 == arg2[1] || …`.
pub(crate) fn eq(arg1: &Value<'_>, rest: &[Value<'_>]) -> Result<bool, String> {
    let a = arg1.clone().indirect_interface();
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = a.kind();
    for b in rest {
        let b = b.clone().indirect_interface();
        let k2 = b.kind();
        let k1c = if k1 == Kind::Other { Kind::Invalid } else { k1 };
        let k2c = if k2 == Kind::Other { Kind::Invalid } else { k2 };
        let truth = if k1c != k2c {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) => a.int_of() >= 0 && a.int_of() == b.int_of(),
                (Kind::Uint, Kind::Int) => b.int_of() >= 0 && a.int_of() == b.int_of(),
                _ => {
                    if !matches!(a, Value::Invalid) && !matches!(b, Value::Invalid) {
                        return Err(incompatible(&a, &b));
                    }
                    false
                }
            }
        } else {
            match (&a, &b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                _ if k1 == Kind::Int || k1 == Kind::Uint => a.int_of() == b.int_of(),
                (Value::Invalid, Value::Invalid) => true,
                (Value::Invalid, _) | (_, Value::Invalid) => false,
                (Value::Time(x), Value::Time(y)) => x == y,
                (x, y) if x.type_name() != y.type_name() => {
                    return Err(format!(
                        "non-comparable types {}: {}, {}: {}",
                        crate::gofmt::sprint(
                            std::slice::from_ref(x),
                            &crate::value::MapData::default()
                        ),
                        x.type_name(),
                        y.type_name(),
                        crate::gofmt::sprint(
                            std::slice::from_ref(y),
                            &crate::value::MapData::default()
                        ),
                    ));
                }
                (_, y) => {
                    return Err(format!(
                        "non-comparable type {}: {}",
                        short(y),
                        y.type_name()
                    ));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn short(v: &Value<'_>) -> String {
    crate::gofmt::sprint(std::slice::from_ref(v), &crate::value::MapData::default())
}

/// Go's `lt`.
pub(crate) fn lt(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    let a = a.clone().indirect_interface();
    let b = b.clone().indirect_interface();
    let k1 = comparable_kind(&a)?;
    let k2 = comparable_kind(&b)?;
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) => Ok(a.int_of() < 0 || a.int_of() < b.int_of()),
            (Kind::Uint, Kind::Int) => Ok(b.int_of() >= 0 && a.int_of() < b.int_of()),
            _ => Err(incompatible(&a, &b)),
        };
    }
    match (&a, &b) {
        (Value::Bool(_), _) => Err("invalid type for comparison".into()),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::Str(x), Value::Str(y)) => Ok(x < y),
        _ => Ok(a.int_of() < b.int_of()),
    }
}

/// Go's `le`: `lt || eq`.
pub(crate) fn le(a: &Value<'_>, b: &Value<'_>) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_like_go() {
        let s = |x: &str| Value::str(x.to_string());
        assert_eq!(eq(&s("a"), &[s("b"), s("a")]), Ok(true));
        assert_eq!(eq(&Value::Int(1), &[Value::Int64(1)]), Ok(true));
        assert_eq!(eq(&Value::Int(97), &[Value::Uint8(97)]), Ok(true));
        assert_eq!(
            eq(&s("200"), &[Value::Int(200)]),
            Err("incompatible types for comparison: string and int".into())
        );
        assert_eq!(eq(&Value::Invalid, &[s("x")]), Ok(false));
        assert_eq!(eq(&Value::NilIface, &[Value::Invalid]), Ok(true));
        assert_eq!(lt(&Value::Int(1), &Value::Int(2)), Ok(true));
        assert_eq!(lt(&s("a"), &s("b")), Ok(true));
        assert_eq!(
            lt(&Value::Float(1.0), &Value::Int(2)),
            Err("incompatible types for comparison: float64 and int".into())
        );
        assert_eq!(
            lt(&Value::Bool(true), &Value::Bool(false)),
            Err("invalid type for comparison".into())
        );
        assert_eq!(
            lt(&Value::Invalid, &Value::Int(1)),
            Err("invalid type for comparison".into())
        );
        assert_eq!(le(&Value::Int(2), &Value::Int(2)), Ok(true));
    }

    #[test]
    fn escapes() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"<>=&\n\\é"),
            "a\\'b\\\"\\u003C\\u003E\\u003D\\u0026\\u000A\\\\é"
        );
    }
}
