//! The function map: every function a Loki template may call, with its Go signature.
//!
//! Go's executor checks and converts arguments by the callee's parameter types (a literal `3`
//! may fill an `int` parameter but not a `string` one; a label value is a `string` and cannot
//! fill an `int`), so each function declares its parameter [`Ty`]s exactly as the Go function
//! does. The set is exactly Loki's: text/template's built-ins, Loki's own functions
//! (`pkg/logql/log/fmt.go`) and the sprig subset Loki registers. Implementations live in the
//! submodules, one per family.

pub(crate) mod builtin;
pub(crate) mod dates;
pub(crate) mod math;
pub(crate) mod strings;
pub(crate) mod values;

use std::borrow::Cow;

use crate::exec::Exec;
use crate::goregex::GoRegex;
use crate::value::Value;

/// The largest string a function may build (`repeat`, `indent`, `Replace`, `alignLeft`…).
/// Go would try to allocate anything; a query must not exhaust the querier's memory.
pub(crate) const MAX_STRING: usize = 64 << 20;

/// Evaluated arguments of one call; most calls have at most four, kept off the heap.
pub(crate) type Args<'a> = smallvec::SmallVec<[Value<'a>; 4]>;

/// The string of an argument already checked to be a `string`.
pub(crate) fn arg_str<'x>(v: &'x Value<'_>) -> &'x str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

/// The integer of an argument already checked to be an `int`.
pub(crate) fn arg_int(v: &Value<'_>) -> i64 {
    v.int_of()
}

/// Takes the string argument out, keeping its borrow.
pub(crate) fn take_str<'a>(v: Value<'a>) -> Cow<'a, str> {
    match v {
        Value::Str(s) => s,
        _ => Cow::Borrowed(""),
    }
}

/// Calls a function with arguments already evaluated and type-checked against its signature.
/// `regex` is the command's precompiled literal pattern, if any. The error is the message Go's
/// function (or its recovered panic) would give; the executor adds the location.
pub(crate) fn call<'a>(
    ex: &mut Exec<'a, '_>,
    f: Func,
    args: Args<'a>,
    regex: Option<&Result<GoRegex, String>>,
) -> Result<Value<'a>, String> {
    use Func::*;
    match f {
        Not | Call | Html | Index | Slice | Js | Len | Print | Printf | Println | Urlquery | Eq
        | Ne | Lt | Le | Gt | Ge | And | Or => builtin::call(ex.data, f, args),
        Line => Ok(Value::Str(Cow::Borrowed(ex.data.line()))),
        Timestamp | UnixEpochMillis | UnixEpochNanos | ToDateInZone | UnixToTime | Date
        | ToDate | Now | UnixEpoch | Duration | DurationSeconds => dates::call(ex.data, f, args),
        Int | Float64 | Add | Sub | Mul | Div | Mod | Addf | Subf | Mulf | Divf | Max | Min
        | Maxf | Minf | Ceil | Floor | Round | Bytes => math::call(f, args),
        FromJson | Default => values::call(ex.data, f, args),
        _ => strings::call(f, args, regex),
    }
}

/// A Go parameter type, as far as argument checking needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Int,
    Float,
    /// `interface{}`.
    Any,
    /// `reflect.Value`: the built-ins that inspect their arguments.
    RValue,
    Time,
    Duration,
}

impl Ty {
    /// The Go spelling of the type, for error messages.
    pub(crate) fn go_name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "int",
            Ty::Float => "float64",
            Ty::Any => "interface {}",
            Ty::RValue => "reflect.Value",
            Ty::Time => "time.Time",
            Ty::Duration => "time.Duration",
        }
    }
}

/// A function's parameters: fixed ones, then optionally a variadic tail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sig {
    pub(crate) params: &'static [Ty],
    pub(crate) variadic: Option<Ty>,
}

const fn sig(params: &'static [Ty]) -> Sig {
    Sig {
        params,
        variadic: None,
    }
}

const fn vsig(params: &'static [Ty], tail: Ty) -> Sig {
    Sig {
        params,
        variadic: Some(tail),
    }
}

use Ty::*;

macro_rules! functions {
    ($($variant:ident => $name:literal, $sig:expr;)*) => {
        /// Every callable function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Func {
            $($variant,)*
        }

        impl Func {
            /// Resolves a name used in a template.
            pub(crate) fn lookup(name: &str) -> Option<Func> {
                match name {
                    $($name => Some(Func::$variant),)*
                    _ => None,
                }
            }

            /// The name templates call it by.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Func::$variant => $name,)*
                }
            }

            /// Its Go signature.
            pub(crate) fn sig(self) -> Sig {
                match self {
                    $(Func::$variant => $sig,)*
                }
            }

            /// All functions, for tests.
            #[cfg(test)]
            pub(crate) fn all() -> &'static [Func] {
                &[$(Func::$variant,)*]
            }
        }
    };
}

functions! {
    // text/template built-ins.
    And => "and", vsig(&[RValue], RValue);
    Or => "or", vsig(&[RValue], RValue);
    Not => "not", sig(&[RValue]);
    Call => "call", vsig(&[RValue], RValue);
    Html => "html", vsig(&[], Any);
    Index => "index", vsig(&[RValue], RValue);
    Slice => "slice", vsig(&[RValue], RValue);
    Js => "js", vsig(&[], Any);
    Len => "len", sig(&[RValue]);
    Print => "print", vsig(&[], Any);
    Printf => "printf", vsig(&[Str], Any);
    Println => "println", vsig(&[], Any);
    Urlquery => "urlquery", vsig(&[], Any);
    Eq => "eq", vsig(&[RValue], RValue);
    Ne => "ne", sig(&[RValue, RValue]);
    Lt => "lt", sig(&[RValue, RValue]);
    Le => "le", sig(&[RValue, RValue]);
    Gt => "gt", sig(&[RValue, RValue]);
    Ge => "ge", sig(&[RValue, RValue]);
    // Loki's own functions.
    Line => "__line__", sig(&[]);
    Timestamp => "__timestamp__", sig(&[]);
    ToLower => "ToLower", sig(&[Str]);
    ToUpper => "ToUpper", sig(&[Str]);
    Replace => "Replace", sig(&[Str, Str, Str, Int]);
    Trim => "Trim", sig(&[Str, Str]);
    TrimLeft => "TrimLeft", sig(&[Str, Str]);
    TrimRight => "TrimRight", sig(&[Str, Str]);
    TrimPrefix => "TrimPrefix", sig(&[Str, Str]);
    TrimSuffix => "TrimSuffix", sig(&[Str, Str]);
    TrimSpace => "TrimSpace", sig(&[Str]);
    RegexReplaceAll => "regexReplaceAll", sig(&[Str, Str, Str]);
    RegexReplaceAllLiteral => "regexReplaceAllLiteral", sig(&[Str, Str, Str]);
    Count => "count", sig(&[Str, Str]);
    Urldecode => "urldecode", sig(&[Str]);
    Urlencode => "urlencode", sig(&[Str]);
    Bytes => "bytes", sig(&[Str]);
    Duration => "duration", sig(&[Str]);
    DurationSeconds => "duration_seconds", sig(&[Str]);
    UnixEpochMillis => "unixEpochMillis", sig(&[Time]);
    UnixEpochNanos => "unixEpochNanos", sig(&[Time]);
    ToDateInZone => "toDateInZone", sig(&[Str, Str, Str]);
    UnixToTime => "unixToTime", sig(&[Str]);
    AlignLeft => "alignLeft", sig(&[Int, Str]);
    AlignRight => "alignRight", sig(&[Int, Str]);
    B64dec => "b64dec", sig(&[Str]);
    // The sprig functions Loki registers.
    B64enc => "b64enc", sig(&[Str]);
    Lower => "lower", sig(&[Str]);
    Upper => "upper", sig(&[Str]);
    Title => "title", sig(&[Str]);
    Trunc => "trunc", sig(&[Int, Str]);
    Substr => "substr", sig(&[Int, Int, Str]);
    Contains => "contains", sig(&[Str, Str]);
    HasPrefix => "hasPrefix", sig(&[Str, Str]);
    HasSuffix => "hasSuffix", sig(&[Str, Str]);
    Indent => "indent", sig(&[Int, Str]);
    Nindent => "nindent", sig(&[Int, Str]);
    SprigReplace => "replace", sig(&[Str, Str, Str]);
    Repeat => "repeat", sig(&[Int, Str]);
    SprigTrim => "trim", sig(&[Str]);
    TrimAll => "trimAll", sig(&[Str, Str]);
    SprigTrimSuffix => "trimSuffix", sig(&[Str, Str]);
    SprigTrimPrefix => "trimPrefix", sig(&[Str, Str]);
    Int => "int", sig(&[Any]);
    Float64 => "float64", sig(&[Any]);
    Add => "add", vsig(&[], Any);
    Sub => "sub", sig(&[Any, Any]);
    Mul => "mul", vsig(&[Any], Any);
    Div => "div", sig(&[Any, Any]);
    Mod => "mod", sig(&[Any, Any]);
    Addf => "addf", vsig(&[], Any);
    Subf => "subf", vsig(&[Any], Any);
    Mulf => "mulf", vsig(&[Any], Any);
    Divf => "divf", vsig(&[Any], Any);
    Max => "max", vsig(&[Any], Any);
    Min => "min", vsig(&[Any], Any);
    Maxf => "maxf", vsig(&[Any], Any);
    Minf => "minf", vsig(&[Any], Any);
    Ceil => "ceil", sig(&[Any]);
    Floor => "floor", sig(&[Any]);
    Round => "round", vsig(&[Any, Int], Float);
    FromJson => "fromJson", sig(&[Str]);
    Date => "date", sig(&[Str, Any]);
    ToDate => "toDate", sig(&[Str, Str]);
    Now => "now", sig(&[]);
    UnixEpoch => "unixEpoch", sig(&[Time]);
    Default => "default", vsig(&[Any], Any);
}

impl Func {
    /// Whether the first parameter is a regular expression that can be compiled once when it
    /// is written as a literal.
    pub(crate) fn takes_regex(self) -> bool {
        matches!(
            self,
            Func::RegexReplaceAll | Func::RegexReplaceAllLiteral | Func::Count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Func::all() {
            assert_eq!(Func::lookup(f.name()), Some(*f));
        }
        assert_eq!(Func::all().len(), 19 + 26 + 41);
        assert!(Func::lookup("env").is_none());
        assert!(Func::lookup("break").is_none());
    }
}
