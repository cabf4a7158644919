//! Dynamically typed values with Go's reflection-level behaviour.
//!
//! A template manipulates Go values whose *types* matter: `int` and `int64` both print as
//! numbers but only `int` fills an `int` parameter; a label value is a `string` and compares
//! unequal-and-erroring to the number `200`; a missing JSON key is a nil `interface{}`. Each
//! [`Value`] variant is one Go type (see [`Value::type_name`]), so argument checks, `eq`/`lt`,
//! truth and printing can follow Go exactly.
//!
//! Strings borrow from the template or the label data where possible (`Cow`), so the common
//! `{{.label}}` path copies nothing until output.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::gotime::{GoDuration, GoTime};

/// The label set the template sees as its data (`.`), a Go `map[string]string`.
pub trait TemplateData {
    /// The value of label `name`, if present.
    fn label(&self, name: &str) -> Option<&str>;
    /// Calls `f` for every label, in any order. Used when the template ranges over, prints,
    /// indexes or measures `.` itself.
    fn for_each_label(&self, f: &mut dyn FnMut(&str, &str));
    /// The current log line, returned by `__line__`.
    fn line(&self) -> &str;
    /// The current entry's timestamp in Unix nanoseconds, returned by `__timestamp__`.
    fn timestamp_ns(&self) -> i64;
    /// Wall-clock time for `now`, in Unix nanoseconds. Override for reproducible output.
    fn now_ns(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A decoded JSON value as Go's `encoding/json` builds it into `interface{}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    List(Vec<Json>),
    Map(BTreeMap<String, Json>),
}

/// A Go value.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    /// The zero `reflect.Value` (no value at all); prints `<no value>`.
    Invalid,
    /// A nil `interface{}`, e.g. a missing key of a JSON object or a JSON `null`.
    NilIface,
    Str(Cow<'a, str>),
    /// Go `int`.
    Int(i64),
    /// Go `int64` (sprig's integer results).
    Int64(i64),
    /// Go `uint8`, from indexing a string.
    Uint8(u8),
    Float(f64),
    Bool(bool),
    Time(GoTime),
    Duration(GoDuration),
    /// `time.Month` (1–12).
    Month(i64),
    /// `time.Weekday` (0 = Sunday).
    Weekday(i64),
    /// The template's data, Go `map[string]string`.
    Labels,
    /// `map[string]interface{}` from `fromJson`.
    Map(Rc<BTreeMap<String, Json>>),
    /// `[]interface{}` from `fromJson`.
    List(Rc<Vec<Json>>),
}

/// Go's comparison classes (`basicKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Invalid,
    Bool,
    Int,
    Uint,
    Float,
    Str,
    Other,
}

impl<'a> Value<'a> {
    pub(crate) fn str(s: impl Into<Cow<'a, str>>) -> Self {
        Value::Str(s.into())
    }

    /// Converts a JSON element into the value Go would hold in the `interface{}`.
    pub(crate) fn from_json(j: &Json) -> Value<'static> {
        match j {
            Json::Null => Value::NilIface,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Float(*n),
            Json::Str(s) => Value::Str(Cow::Owned(s.clone())),
            Json::List(l) => Value::List(Rc::new(l.clone())),
            Json::Map(m) => Value::Map(Rc::new(m.clone())),
        }
    }

    /// The Go type name (`%T`, error messages).
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<nil>",
            Value::NilIface => "interface {}",
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Int64(_) => "int64",
            Value::Uint8(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Bool(_) => "bool",
            Value::Time(_) => "time.Time",
            Value::Duration(_) => "time.Duration",
            Value::Month(_) => "time.Month",
            Value::Weekday(_) => "time.Weekday",
            Value::Labels => "map[string]string",
            Value::Map(_) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Value::Invalid => Kind::Invalid,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_)
            | Value::Int64(_)
            | Value::Duration(_)
            | Value::Month(_)
            | Value::Weekday(_) => Kind::Int,
            Value::Uint8(_) => Kind::Uint,
            Value::Float(_) => Kind::Float,
            Value::Str(_) => Kind::Str,
            _ => Kind::Other,
        }
    }

    /// The integer of an int-kind value.
    pub(crate) fn int_of(&self) -> i64 {
        match self {
            Value::Int(i) | Value::Int64(i) | Value::Month(i) | Value::Weekday(i) => *i,
            Value::Duration(d) => d.0,
            Value::Uint8(u) => i64::from(*u),
            _ => 0,
        }
    }

    /// Go's `indirectInterface`: a nil interface becomes no value.
    pub(crate) fn indirect_interface(self) -> Self {
        match self {
            Value::NilIface => Value::Invalid,
            v => v,
        }
    }

    /// Go's `isTrue`; `None` when the value has no truth (never for our types).
    pub(crate) fn truth(&self, data: &dyn TemplateData) -> bool {
        match self {
            Value::Invalid | Value::NilIface => false,
            Value::Str(s) => !s.is_empty(),
            Value::Int(_)
            | Value::Int64(_)
            | Value::Duration(_)
            | Value::Month(_)
            | Value::Weekday(_) => self.int_of() != 0,
            Value::Uint8(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Bool(b) => *b,
            Value::Time(_) => true,
            Value::Labels => {
                let mut any = false;
                data.for_each_label(&mut |_, _| any = true);
                any
            }
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }
}

/// Collects the labels sorted by name, as Go's `fmtsort` orders map keys.
pub(crate) fn sorted_labels(data: &dyn TemplateData) -> Vec<(String, String)> {
    let mut v = Vec::new();
    data.for_each_label(&mut |k, val| v.push((k.to_string(), val.to_string())));
    v.sort();
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// Parses JSON as Go's `json.Unmarshal` into `interface{}` does; `None` on any error.
pub(crate) fn parse_json(s: &str) -> Option<Json> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    Some(convert_json(v))
}

fn convert_json(v: serde_json::Value) -> Json {
    match v {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(b) => Json::Bool(b),
        serde_json::Value::Number(n) => Json::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Json::Str(s),
        serde_json::Value::Array(a) => Json::List(a.into_iter().map(convert_json).collect()),
        serde_json::Value::Object(o) => {
            Json::Map(o.into_iter().map(|(k, v)| (k, convert_json(v))).collect())
        }
    }
}

/// The label data of a plain map, handy for tests and simple callers.
#[derive(Debug, Clone, Default)]
pub struct MapData {
    /// The labels.
    pub labels: BTreeMap<String, String>,
    /// The log line.
    pub line: String,
    /// The entry timestamp, Unix nanoseconds.
    pub timestamp_ns: i64,
}

impl MapData {
    /// Builds data from label pairs.
    pub fn new<K: Into<String>, V: Into<String>>(labels: impl IntoIterator<Item = (K, V)>) -> Self {
        MapData {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            line: String::new(),
            timestamp_ns: 0,
        }
    }

    /// Sets the line.
    pub fn with_line(mut self, line: impl Into<String>) -> Self {
        self.line = line.into();
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, ns: i64) -> Self {
        self.timestamp_ns = ns;
        self
    }
}

impl TemplateData for MapData {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    fn for_each_label(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in &self.labels {
            f(k, v);
        }
    }

    fn line(&self) -> &str {
        &self.line
    }

    fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }
}
