//! Sprig's generic value functions: `default` and `fromJson`.
//!
//! `default` treats Go zero values as unset (`""`, 0, false, empty maps and lists, nil), so
//! `{{ .missing | default "-" }}` prints `-`. `fromJson` decodes like `json.Unmarshal` into
//! `interface{}`: objects become maps, numbers `float64`, and a decoding error gives nil.

use std::rc::Rc;

use super::{Func, arg_str};
use crate::value::{Json, TemplateData, Value, parse_json, sorted_labels};

/// Sprig's `empty`.
pub(crate) fn empty(v: &Value<'_>, data: &dyn TemplateData) -> bool {
    match v {
        Value::Invalid | Value::NilIface => true,
        Value::Str(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Float(f) => *f == 0.0,
        Value::Int(_)
        | Value::Int64(_)
        | Value::Uint8(_)
        | Value::Duration(_)
        | Value::Month(_)
        | Value::Weekday(_) => v.int_of() == 0,
        Value::Time(_) => false,
        Value::Labels => sorted_labels(data).is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::List(l) => l.is_empty(),
    }
}

pub(crate) fn call<'a>(
    data: &'a dyn TemplateData,
    f: Func,
    args: super::Args<'a>,
) -> Result<Value<'a>, String> {
    match f {
        Func::Default => {
            let mut it = args.into_iter();
            let d = it.next().unwrap_or(Value::Invalid);
            match it.next() {
                Some(given) if !empty(&given, data) => Ok(given),
                _ => Ok(d),
            }
        }
        Func::FromJson => Ok(match args.first().and_then(|s| parse_json(arg_str(s))) {
            None | Some(Json::Null) => Value::NilIface,
            Some(Json::Map(m)) => Value::Map(Rc::new(m)),
            Some(Json::List(l)) => Value::List(Rc::new(l)),
            Some(other) => Value::from_json(&other),
        }),
        _ => Err(format!("{} is not a value function", f.name())),
    }
}
