//! Go's `fmt` printing of template values: `Sprint`, `Sprintln`, `Sprintf` and the `%v` form
//! every action prints with.
//!
//! The rules reproduced: `%v` of a `float64` is `strconv.FormatFloat(f, 'g', -1, 64)` (so
//! `3e+06`, `1.5`, `1e-05`); ints in base 10; `Stringer`s (`time.Time`, `time.Duration`,
//! `time.Month`) print their `String()`; maps print as `map[k:v …]` with sorted keys; a nil
//! `interface{}` prints `<nil>`; wrong verbs print `%!d(string=abc)`; missing and extra
//! arguments print `%!d(MISSING)` / `%!(EXTRA int=1)`. Flags `+ - # 0 space`, width,
//! precision, `*` and `[n]` argument indexes are supported.
//!
//! Known gap: `%x`/`%b` of floats and `%#v` of composite values print as `%g`/`%v`.

use std::fmt::Write;

use crate::goquote;
use crate::value::{Json, TemplateData, Value, sorted_labels};

/// Formatting flags of one verb (Go's `fmtFlags` plus width and precision).
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    sharp: bool,
    zero: bool,
    plus: bool,
    minus: bool,
    space: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

struct Printer<'d> {
    buf: String,
    f: Flags,
    data: &'d dyn TemplateData,
}

/// `fmt.Sprint(args...)`.
pub(crate) fn sprint(args: &[Value<'_>], data: &dyn TemplateData) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
        data,
    };
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln(args...)`.
pub(crate) fn sprintln(args: &[Value<'_>], data: &dyn TemplateData) -> String {
    let mut p = Printer {
        buf: String::new(),
        f: Flags::default(),
        data,
    };
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(a, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// Writes a value as a template action prints it (`fmt.Fprint` of one value, with
/// `<no value>` for nothing).
pub(crate) fn print_value(out: &mut String, v: &Value<'_>, data: &dyn TemplateData) {
    match v {
        Value::Str(s) => out.push_str(s),
        Value::Invalid | Value::NilIface => out.push_str("<no value>"),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        _ => {
            let mut p = Printer {
                buf: std::mem::take(out),
                f: Flags::default(),
                data,
            };
            p.print_arg(v, 'v');
            *out = p.buf;
        }
    }
}

/// `fmt.Sprintf(format, args...)`.
pub(crate) fn sprintf(format: &str, args: &[Value<'_>], data: &dyn TemplateData) -> String {
    let mut p = Printer {
        buf: String::with_capacity(format.len() + 16),
        f: Flags::default(),
        data,
    };
    let b = format.as_bytes();
    let end = b.len();
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut i = 0;
    while i < end {
        let mut good_arg_num = true;
        let last = i;
        while i < end && b[i] != b'%' {
            i += 1;
        }
        if i > last {
            p.buf.push_str(&format[last..i]);
        }
        if i >= end {
            break;
        }
        i += 1;
        p.f = Flags::default();
        // Flags.
        while i < end {
            match b[i] {
                b'#' => p.f.sharp = true,
                b'0' => p.f.zero = !p.f.minus,
                b'+' => p.f.plus = true,
                b'-' => {
                    p.f.minus = true;
                    p.f.zero = false;
                }
                b' ' => p.f.space = true,
                _ => break,
            }
            i += 1;
        }
        // Argument index, width, precision.
        let mut after_index;
        (arg_num, i, after_index) = arg_number(
            arg_num,
            format,
            i,
            args.len(),
            &mut reordered,
            &mut good_arg_num,
        );
        if i < end && b[i] == b'*' {
            i += 1;
            let (w, ok, n) = int_from_arg(args, arg_num);
            arg_num = n;
            if !ok {
                p.buf.push_str("%!(BADWIDTH)");
                p.f.wid = None;
            } else if w < 0 {
                p.f.wid = Some(w.unsigned_abs() as usize);
                p.f.minus = true;
                p.f.zero = false;
            } else {
                p.f.wid = Some(w as usize);
            }
            after_index = false;
        } else {
            let (w, ni) = parse_num(b, i);
            i = ni;
            p.f.wid = w;
            if after_index && w.is_some() {
                good_arg_num = false;
            }
        }
        if i + 1 < end && b[i] == b'.' {
            i += 1;
            if after_index {
                good_arg_num = false;
            }
            (arg_num, i, after_index) = arg_number(
                arg_num,
                format,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
            if i < end && b[i] == b'*' {
                i += 1;
                let (pr, ok, n) = int_from_arg(args, arg_num);
                arg_num = n;
                if !ok {
                    p.buf.push_str("%!(BADPREC)");
                    p.f.prec = None;
                } else if pr < 0 {
                    p.f.prec = None;
                } else {
                    p.f.prec = Some(pr as usize);
                }
                after_index = false;
            } else {
                let (pr, ni) = parse_num(b, i);
                i = ni;
                p.f.prec = Some(pr.unwrap_or(0));
            }
        }
        if !after_index {
            (arg_num, i, _) = arg_number(
                arg_num,
                format,
                i,
                args.len(),
                &mut reordered,
                &mut good_arg_num,
            );
        }
        if i >= end {
            p.buf.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('%');
        i += verb.len_utf8();
        if verb == '%' {
            p.buf.push('%');
        } else if !good_arg_num {
            let _ = write!(p.buf, "%!{verb}(BADINDEX)");
        } else if arg_num >= args.len() {
            let _ = write!(p.buf, "%!{verb}(MISSING)");
        } else {
            if verb == 'v' {
                p.f.sharp_v = p.f.sharp;
                p.f.sharp = false;
                p.f.plus = false;
            }
            p.print_arg(&args[arg_num], verb);
            arg_num += 1;
        }
    }
    if !reordered && arg_num < args.len() {
        p.f = Flags::default();
        p.buf.push_str("%!(EXTRA ");
        for (k, a) in args[arg_num..].iter().enumerate() {
            if k > 0 {
                p.buf.push_str(", ");
            }
            if matches!(a, Value::Invalid | Value::NilIface) {
                p.buf.push_str("<nil>");
            } else {
                p.buf.push_str(a.type_name());
                p.buf.push('=');
                p.print_arg(a, 'v');
            }
        }
        p.buf.push(')');
    }
    p.buf
}

/// Go's `parsenum`: a decimal number at `i`, if any.
fn parse_num(b: &[u8], mut i: usize) -> (Option<usize>, usize) {
    let start = i;
    let mut n: usize = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        // Go rejects absurd widths; keep them bounded too.
        if n > 1_000_000 {
            return (None, i);
        }
        n = n * 10 + usize::from(b[i] - b'0');
        i += 1;
    }
    if i == start { (None, i) } else { (Some(n), i) }
}

/// Go's `argNumber`: an explicit `[n]` index.
fn arg_number(
    arg_num: usize,
    format: &str,
    i: usize,
    num_args: usize,
    reordered: &mut bool,
    good: &mut bool,
) -> (usize, usize, bool) {
    let b = format.as_bytes();
    if i >= b.len() || b[i] != b'[' {
        return (arg_num, i, false);
    }
    *reordered = true;
    // Go's parseArgNumber.
    let Some(close) = b[i + 1..].iter().position(|&c| c == b']') else {
        *good = false;
        return (arg_num, i + 1, false);
    };
    let width = close + 1;
    let (n, ni) = parse_num(b, i + 1);
    match n {
        Some(n) if ni == i + width && n >= 1 => {
            let idx = n - 1;
            if idx < num_args {
                (idx, i + width + 1, true)
            } else {
                *good = false;
                (arg_num, i + width + 1, true)
            }
        }
        _ => {
            *good = false;
            (arg_num, i + width + 1, false)
        }
    }
}

/// Go's `intFromArg` for `*` widths and precisions.
fn int_from_arg(args: &[Value<'_>], arg_num: usize) -> (i64, bool, usize) {
    match args.get(arg_num) {
        Some(Value::Int(n) | Value::Int64(n)) => {
            let ok = (-1_000_000..=1_000_000).contains(n);
            (if ok { *n } else { 0 }, ok, arg_num + 1)
        }
        Some(Value::Uint8(u)) => (i64::from(*u), true, arg_num + 1),
        Some(_) => (0, false, arg_num + 1),
        None => (0, false, arg_num),
    }
}

impl Printer<'_> {
    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    /// Go's `fmt.pad`.
    fn pad(&mut self, s: &str) {
        let Some(wid) = self.f.wid else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        if wid <= n {
            self.buf.push_str(s);
            return;
        }
        if self.f.minus {
            self.buf.push_str(s);
            let z = self.f.zero;
            self.f.zero = false;
            self.write_padding(wid - n);
            self.f.zero = z;
        } else {
            self.write_padding(wid - n);
            self.buf.push_str(s);
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if let Some(p) = self.f.prec
            && let Some((idx, _)) = s.char_indices().nth(p)
        {
            return &s[..idx];
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        let t = self.truncate(s).to_string();
        self.pad(&t);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s).to_string();
        if self.f.sharp && goquote::can_backquote(&s) {
            self.pad(&format!("`{s}`"));
            return;
        }
        let mut q = String::new();
        if self.f.plus {
            goquote::quote_ascii_into(&mut q, &s);
        } else {
            goquote::quote_into(&mut q, &s);
        }
        self.pad(&q);
    }

    fn fmt_sbx(&mut self, s: &[u8], upper: bool) {
        let digits: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let mut length = s.len();
        if let Some(p) = self.f.prec {
            length = length.min(p);
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if let Some(w) = self.f.wid {
                self.write_padding(w);
            }
            return;
        }
        let wid = self.f.wid.unwrap_or(0);
        if wid > width && !self.f.minus {
            self.write_padding(wid - width);
        }
        let x = if upper { 'X' } else { 'x' };
        if self.f.sharp {
            self.buf.push('0');
            self.buf.push(x);
        }
        for (i, &c) in s[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                self.buf.push(' ');
                if self.f.sharp {
                    self.buf.push('0');
                    self.buf.push(x);
                }
            }
            self.buf.push(digits[usize::from(c >> 4)] as char);
            self.buf.push(digits[usize::from(c & 0xf)] as char);
        }
        if wid > width && self.f.minus {
            let z = self.f.zero;
            self.f.zero = false;
            self.write_padding(wid - width);
            self.f.zero = z;
        }
    }

    /// Go's `fmtInteger`.
    fn fmt_integer(&mut self, v: i64, unsigned: Option<u64>, base: u32, verb: char, upper: bool) {
        let negative = unsigned.is_none() && v < 0;
        let mut u = unsigned.unwrap_or(v.unsigned_abs());
        let digits: &[u8] = if upper {
            b"0123456789ABCDEFX"
        } else {
            b"0123456789abcdefx"
        };
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let z = self.f.zero;
                self.f.zero = false;
                let w = self.f.wid.unwrap_or(0);
                self.write_padding(w);
                self.f.zero = z;
                return;
            }
        } else if self.f.zero && !self.f.minus && self.f.wid.is_some() {
            prec = self.f.wid.unwrap_or(0);
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut rev: Vec<u8> = Vec::with_capacity(24);
        let b = u64::from(base);
        while u >= b {
            rev.push(digits[(u % b) as usize]);
            u /= b;
        }
        rev.push(digits[u as usize]);
        while rev.len() < prec {
            rev.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => rev.extend_from_slice(b"b0"),
                8 if rev.last() != Some(&b'0') => {
                    rev.push(b'0');
                }
                16 => {
                    rev.push(digits[16]);
                    rev.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            rev.extend_from_slice(b"o0");
        }
        if negative {
            rev.push(b'-');
        } else if self.f.plus {
            rev.push(b'+');
        } else if self.f.space {
            rev.push(b' ');
        }
        rev.reverse();
        let s = String::from_utf8(rev).unwrap_or_default();
        let z = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = z;
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut s = format!("U+{u:04X}");
        if let Some(p) = self.f.prec
            && p > 4
        {
            s = format!("U+{:0width$X}", u, width = p);
        }
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && goquote::is_print(c)
        {
            let _ = write!(s, " '{c}'");
        }
        let z = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = z;
    }

    fn fmt_int_verb(&mut self, v: &Value<'_>, i: i64, unsigned: Option<u64>, verb: char) {
        match verb {
            'v' | 'd' => self.fmt_integer(i, unsigned, 10, verb, false),
            'b' => self.fmt_integer(i, unsigned, 2, verb, false),
            'o' | 'O' => self.fmt_integer(i, unsigned, 8, verb, false),
            'x' => self.fmt_integer(i, unsigned, 16, verb, false),
            'X' => self.fmt_integer(i, unsigned, 16, verb, true),
            'c' => {
                let c = u32::try_from(unsigned.unwrap_or(i as u64))
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                let s = c.to_string();
                self.pad(&s);
            }
            'q' => {
                let mut q = String::new();
                goquote::quote_rune_into(&mut q, unsigned.map_or(i, |u| u as i64), self.f.plus);
                self.pad(&q);
            }
            'U' => self.fmt_unicode(unsigned.unwrap_or(i as u64)),
            _ => self.bad_verb(v, verb),
        }
    }

    fn fmt_float_verb(&mut self, v: &Value<'_>, f: f64, verb: char) {
        let (fmt, default_prec) = match verb {
            'v' => ('g', -1),
            'g' | 'G' | 'b' | 'x' | 'X' => (if verb == 'G' || verb == 'X' { 'G' } else { 'g' }, -1),
            'e' | 'E' | 'f' | 'F' => (verb, 6),
            _ => return self.bad_verb(v, verb),
        };
        let prec = self.f.prec.map_or(default_prec, |p| p.min(10_000) as i32);
        let verb_for_sharp = if verb == 'v' { 'g' } else { fmt };
        let mut num = format_float(f, fmt, prec);
        if !num.starts_with(['-', '+']) {
            num.insert(0, '+');
        }
        if self.f.space && num.starts_with('+') && !self.f.plus {
            num.replace_range(0..1, " ");
        }
        let body = &num[1..];
        if body.starts_with('I') || body.starts_with('N') {
            let z = self.f.zero;
            self.f.zero = false;
            let s = if body.starts_with('N') && !self.f.space && !self.f.plus {
                body.to_string()
            } else {
                num.clone()
            };
            self.pad(&s);
            self.f.zero = z;
            return;
        }
        if self.f.sharp {
            num = sharp_float(&num, verb_for_sharp, prec);
        }
        if self.f.plus || !num.starts_with('+') {
            let wid = self.f.wid.unwrap_or(0);
            if self.f.zero && !self.f.minus && self.f.wid.is_some() && wid > num.len() {
                self.buf.push_str(&num[..1]);
                self.write_padding(wid - num.len());
                self.buf.push_str(&num[1..]);
                return;
            }
            self.pad(&num);
            return;
        }
        let s = num[1..].to_string();
        self.pad(&s);
    }

    fn bad_verb(&mut self, v: &Value<'_>, verb: char) {
        let _ = write!(self.buf, "%!{verb}(");
        if matches!(v, Value::Invalid | Value::NilIface) {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(v.type_name());
            self.buf.push('=');
            self.print_arg(v, 'v');
        }
        self.buf.push(')');
    }

    /// Go's `printArg`/`printValue` for one operand.
    fn print_arg(&mut self, v: &Value<'_>, verb: char) {
        if verb == 'T' {
            let t = if matches!(v, Value::Invalid | Value::NilIface) {
                "<nil>"
            } else {
                v.type_name()
            };
            self.fmt_s(t);
            return;
        }
        match v {
            Value::Invalid | Value::NilIface => match verb {
                'v' => self.pad("<nil>"),
                _ => self.bad_verb(v, verb),
            },
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(v, verb),
            },
            Value::Int(i) | Value::Int64(i) => self.fmt_int_verb(v, *i, None, verb),
            Value::Uint8(u) => self.fmt_int_verb(v, 0, Some(u64::from(*u)), verb),
            Value::Float(f) => self.fmt_float_verb(v, *f, verb),
            Value::Str(s) => self.fmt_string(v, s, verb),
            Value::Time(t) => self.stringer(v, &t.go_string(), verb, None),
            Value::Duration(d) => self.stringer(v, &d.go_string(), verb, Some(d.0)),
            Value::Month(m) => self.stringer(v, &crate::gotime::month_name(*m), verb, Some(*m)),
            Value::Weekday(d) => self.stringer(v, &crate::gotime::weekday_name(*d), verb, Some(*d)),
            Value::Labels => {
                let labels = sorted_labels(self.data);
                self.buf.push_str("map[");
                for (i, (k, val)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_arg(&Value::str(k.as_str()), verb);
                    self.buf.push(':');
                    self.print_arg(&Value::str(val.as_str()), verb);
                }
                self.buf.push(']');
            }
            Value::Map(m) => {
                self.buf.push_str("map[");
                for (i, (k, val)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_arg(&Value::str(k.as_str()), verb);
                    self.buf.push(':');
                    self.print_json(val, verb);
                }
                self.buf.push(']');
            }
            Value::List(l) => {
                self.buf.push('[');
                for (i, val) in l.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_json(val, verb);
                }
                self.buf.push(']');
            }
        }
    }

    fn print_json(&mut self, j: &Json, verb: char) {
        match j {
            // A nil interface inside a container prints <nil> whatever the verb.
            Json::Null => self.buf.push_str("<nil>"),
            other => self.print_arg(&Value::from_json(other), verb),
        }
    }

    fn fmt_string(&mut self, v: &Value<'_>, s: &str, verb: char) {
        match verb {
            'v' if self.f.sharp_v => self.fmt_q(s),
            'v' | 's' => self.fmt_s(s),
            'x' => self.fmt_sbx(s.as_bytes(), false),
            'X' => self.fmt_sbx(s.as_bytes(), true),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(v, verb),
        }
    }

    /// A value with a `String()` method: string verbs print the method's result, the
    /// integer-backed ones still print as numbers for numeric verbs.
    fn stringer(&mut self, v: &Value<'_>, s: &str, verb: char, int: Option<i64>) {
        match verb {
            'v' | 's' | 'x' | 'X' | 'q' => {
                self.fmt_string(&Value::str(s), s, if verb == 'v' { 's' } else { verb })
            }
            _ => match int {
                Some(i) => self.fmt_int_verb(v, i, None, verb),
                None => self.bad_verb(v, verb),
            },
        }
    }
}

/// The `#` flag on floats: keep the decimal point and pad significant digits (Go's rule).
fn sharp_float(num: &str, verb: char, prec: i32) -> String {
    let mut digits: i32 = match verb {
        'g' | 'G' => {
            if prec == -1 {
                6
            } else {
                prec
            }
        }
        _ => 0,
    };
    let bytes = num.as_bytes();
    let mut head = String::from(&num[..1]);
    let mut tail = String::new();
    let mut has_point = false;
    let mut saw_nonzero = false;
    let mut i = 1;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'.' => {
                has_point = true;
                head.push('.');
            }
            b'e' | b'E' | b'p' | b'P' => {
                tail.push_str(&num[i..]);
                break;
            }
            _ => {
                if c != b'0' {
                    saw_nonzero = true;
                }
                if saw_nonzero {
                    digits -= 1;
                }
                head.push(c as char);
            }
        }
        i += 1;
    }
    if !has_point {
        if head.len() == 2 && head.ends_with('0') {
            digits -= 1;
        }
        head.push('.');
    }
    while digits > 0 {
        head.push('0');
        digits -= 1;
    }
    head.push_str(&tail);
    head
}

/// Decimal digits of |v| and the decimal point position: value = 0.d1d2… × 10^dp.
/// `sig`: significant digits wanted, or `None` for the shortest round-tripping digits.
fn float_digits(v: f64, sig: Option<usize>) -> (String, i32) {
    let a = v.abs();
    let s = match sig {
        None => format!("{a:e}"),
        Some(n) => format!("{:.*e}", n.saturating_sub(1), a),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    if a == 0.0 {
        return ("0".into(), 1);
    }
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    (digits, exp + 1)
}

fn fmt_e(out: &mut String, digits: &str, dp: i32, prec: i32, upper: bool) {
    let d = digits.as_bytes();
    out.push(d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        let mut i = 1;
        let mut n = 0;
        while n < prec {
            out.push(d.get(i).map_or('0', |&c| c as char));
            i += 1;
            n += 1;
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if digits == "0" { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    let _ = write!(out, "{e}");
}

fn fmt_f(out: &mut String, digits: &str, dp: i32, prec: i32) {
    let d = digits.as_bytes();
    let digit = |i: i32| -> char {
        if i >= 0 {
            d.get(i as usize).map_or('0', |&c| c as char)
        } else {
            '0'
        }
    };
    if dp > 0 {
        for i in 0..dp {
            out.push(digit(i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec {
            out.push(digit(dp + i));
        }
    }
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for `e E f F g G`.
pub(crate) fn format_float(v: f64, fmt: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let shortest = prec < 0;
    match fmt {
        'e' | 'E' => {
            let (digits, dp) = float_digits(
                v,
                if shortest {
                    None
                } else {
                    Some(prec as usize + 1)
                },
            );
            let p = if shortest {
                digits.len() as i32 - 1
            } else {
                prec
            };
            fmt_e(&mut out, &digits, dp, p, fmt == 'E');
        }
        'f' | 'F' => {
            if shortest {
                let (digits, dp) = float_digits(v, None);
                let p = (digits.len() as i32 - dp).max(0);
                fmt_f(&mut out, &digits, dp, p);
            } else {
                let _ = write!(out, "{:.*}", prec as usize, v.abs());
            }
        }
        _ => {
            // 'g' / 'G'
            let mut p = prec;
            if p == 0 {
                p = 1;
            }
            let (digits, dp) = float_digits(v, if shortest { None } else { Some(p as usize) });
            let nd = if digits == "0" {
                0
            } else {
                digits.len() as i32
            };
            let dp_g = if digits == "0" { 0 } else { dp };
            let mut eprec = if shortest { 6 } else { p };
            if !shortest && eprec > nd && nd >= dp_g {
                eprec = nd;
            }
            if shortest {
                p = nd;
            }
            let exp = dp_g - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                fmt_e(&mut out, &digits, dp, (p - 1).max(0), fmt == 'G');
            } else {
                if p > dp_g {
                    p = nd;
                }
                fmt_f(&mut out, &digits, dp_g, (p - dp_g).max(0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::MapData;

    fn pf(f: &str, args: &[Value<'_>]) -> String {
        sprintf(f, args, &MapData::default())
    }

    #[test]
    fn floats_like_go() {
        let g = |v: f64| format_float(v, 'g', -1);
        assert_eq!(g(3e6), "3e+06");
        assert_eq!(g(3.8476190476190477), "3.8476190476190477");
        assert_eq!(g(123456.0), "123456");
        assert_eq!(g(1234567.0), "1.234567e+06");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(0.00001), "1e-05");
        assert_eq!(g(0.0), "0");
        assert_eq!(g(-0.0), "-0");
        assert_eq!(g(190.0), "190");
        assert_eq!(g(1e21), "1e+21");
        assert_eq!(g(1e100), "1e+100");
        assert_eq!(format_float(2.5, 'f', 0), "2");
        assert_eq!(format_float(1.005, 'f', 2), "1.00");
        assert_eq!(format_float(1234.5678, 'e', 3), "1.235e+03");
        assert_eq!(format_float(0.0, 'e', 2), "0.00e+00");
        assert_eq!(format_float(1.0, 'g', 3), "1");
        assert_eq!(format_float(123456.0, 'g', 3), "1.23e+05");
        assert_eq!(format_float(0.000123, 'g', 2), "0.00012");
        assert_eq!(format_float(100.0, 'g', 3), "100");
        assert_eq!(format_float(f64::NAN, 'g', -1), "NaN");
    }

    #[test]
    fn printf_verbs() {
        let s = |x: &str| Value::str(x.to_string());
        assert_eq!(
            pf("%s|%5s|%-5s|", &[s("a"), s("b"), s("c")]),
            "a|    b|c    |"
        );
        assert_eq!(
            pf(
                "%d %5d %-5d| %05d %+d %x %X %o %#x %b",
                &[
                    Value::Int(1),
                    Value::Int(2),
                    Value::Int(3),
                    Value::Int(-4),
                    Value::Int(5),
                    Value::Int(255),
                    Value::Int(255),
                    Value::Int(8),
                    Value::Int(255),
                    Value::Int(5)
                ]
            ),
            "1     2 3    | -0004 +5 ff FF 10 0xff 101"
        );
        assert_eq!(
            pf(
                "%.2f %8.3f %e %g %v",
                &[
                    Value::Float(1.23456),
                    Value::Float(2.5),
                    Value::Float(1234.5),
                    Value::Float(0.5),
                    Value::Float(1e6)
                ]
            ),
            "1.23    2.500 1.234500e+03 0.5 1e+06"
        );
        assert_eq!(
            pf(
                "%q %x %.2s %c %U",
                &[
                    s("a\"b"),
                    s("hi"),
                    s("héllo"),
                    Value::Int(65),
                    Value::Int(0x1F600)
                ]
            ),
            "\"a\\\"b\" 6869 hé A U+1F600"
        );
        assert_eq!(pf("%d", &[s("x")]), "%!d(string=x)");
        assert_eq!(pf("%s", &[Value::Int(5)]), "%!s(int=5)");
        assert_eq!(pf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(pf("%d", &[Value::Int(1), s("a")]), "1%!(EXTRA string=a)");
        assert_eq!(pf("%", &[]), "%!(NOVERB)");
        assert_eq!(pf("100%%", &[]), "100%");
        assert_eq!(
            pf("%t %v", &[Value::Bool(true), Value::Invalid]),
            "true <nil>"
        );
        assert_eq!(
            pf("%T %T %T", &[Value::Int(1), s("a"), Value::Float(1.0)]),
            "int string float64"
        );
        assert_eq!(pf("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]), "2 1");
        assert_eq!(
            pf(
                "%*d|%-*d|",
                &[Value::Int(3), Value::Int(1), Value::Int(3), Value::Int(2)]
            ),
            "  1|2  |"
        );
        assert_eq!(
            pf(
                "%5.1f|%-8.2e|",
                &[Value::Float(-2.25), Value::Float(12345.0)]
            ),
            " -2.2|1.23e+04|"
        );
        assert_eq!(
            pf(
                "%06.2f|%+.1f|% d",
                &[Value::Float(-1.5), Value::Float(2.0), Value::Int(3)]
            ),
            "-01.50|+2.0| 3"
        );
        assert_eq!(pf("%#v %#v", &[s("a"), Value::Int(1)]), "\"a\" 1");
        assert_eq!(pf("%v", &[Value::Float(f64::INFINITY)]), "+Inf");
        assert_eq!(pf("%5d", &[s("ab")]), "%!d(string=   ab)");
    }

    #[test]
    fn sprint_spacing() {
        let d = MapData::default();
        assert_eq!(
            sprint(
                &[Value::Int(1), Value::Int(2), Value::str("a"), Value::Int(3)],
                &d
            ),
            "1 2a3"
        );
        assert_eq!(sprintln(&[Value::Int(1), Value::str("a")], &d), "1 a\n");
    }
}
