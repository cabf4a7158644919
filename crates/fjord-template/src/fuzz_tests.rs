//! Property tests of the internal Go-library emulations: every parser and formatter accepts
//! arbitrary text (and arbitrary numbers) without panicking. Template-level properties live in
//! `tests/proptest.rs`; these reach inputs templates rarely produce, such as odd time layouts.

use proptest::prelude::*;

use crate::gotime::{GoDuration, GoTime, Loc, parse_in_location};
use crate::value::{MapData, Value};

fn layout() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop::sample::select(vec![
                "2006",
                "06",
                "01",
                "1",
                "Jan",
                "January",
                "02",
                "2",
                "_2",
                "__2",
                "002",
                "15",
                "3",
                "03",
                "04",
                "4",
                "05",
                "5",
                "PM",
                "pm",
                "MST",
                "Z07:00",
                "Z0700",
                "Z07",
                "Z07:00:00",
                "Z070000",
                "-07:00",
                "-0700",
                "-07",
                "-07:00:00",
                "-070000",
                ".000",
                ".999",
                ",9",
                "Mon",
                "Monday",
                " ",
                "-",
                "T",
                ":",
                "é",
            ]),
            0..10,
        )
        .prop_map(|v| v.concat()),
    ]
}

fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9+\\-:.,TZ ]{0,30}",
        "[0-9A-Za-z+\\-:.,€ ]{0,30}",
        Just("2023-03-10T01:32:40.340485723Z".to_string()),
        Just("+€€".to_string()),
        Just("GMT+3".to_string()),
    ]
}

fn loc() -> impl Strategy<Value = Loc> {
    prop::sample::select(vec![
        Loc::Utc,
        Loc::Local,
        Loc::Fixed("".into(), -25_200),
        Loc::load("Europe/Paris").unwrap_or(Loc::Utc),
        Loc::load("Asia/Kathmandu").unwrap_or(Loc::Utc),
    ])
}

fn arg() -> impl Strategy<Value = Value<'static>> {
    prop_oneof![
        any::<String>().prop_map(Value::str),
        any::<i64>().prop_map(Value::Int),
        any::<i64>().prop_map(Value::Int64),
        any::<u8>().prop_map(Value::Uint8),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Invalid),
        Just(Value::NilIface),
        Just(Value::Labels),
        any::<i64>().prop_map(|n| Value::Time(GoTime::from_unix_nanos(n))),
        any::<i64>().prop_map(|n| Value::Duration(GoDuration(n))),
        (-3i64..15).prop_map(Value::Month),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn time_parse_and_format(layout in layout(), value in value_text(), loc in loc(), sec in any::<i64>(), nsec in 0u32..1_000_000_000) {
        let _ = parse_in_location(&layout, &value, &loc);
        let t = GoTime { sec, nsec, loc };
        let _ = t.format(&layout);
        let _ = t.go_string();
        let _ = t.add_date(sec % 1000, sec % 100, sec % 10);
        let _ = t.add(sec);
        let _ = GoDuration::parse(&value);
        let _ = GoDuration(sec).go_string();
    }

    #[test]
    fn strconv_and_quoting(s in any::<String>(), r in any::<i64>()) {
        let _ = crate::gostrconv::parse_int(&s, 0);
        let _ = crate::gostrconv::parse_int(&s, 10);
        let _ = crate::gostrconv::parse_uint(&s, 0);
        let _ = crate::gostrconv::parse_float(&s);
        let _ = crate::goquote::unquote(&s);
        let _ = crate::goquote::unquote(&format!("\"{s}\""));
        let _ = crate::goquote::unquote_char_constant(&format!("'{s}'"));
        let _ = crate::goquote::quote(&s);
        let mut q = String::new();
        crate::goquote::quote_rune_into(&mut q, r, true);
        let _ = crate::ast::Number::parse(&s, false);
    }

    #[test]
    fn encodings_and_sizes(s in any::<String>(), b in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = crate::funcs::strings::query_unescape(&s);
        let _ = crate::funcs::strings::b64_decode(s.as_bytes());
        let _ = crate::funcs::strings::b64_decode(&b);
        let _ = crate::funcs::math::parse_bytes(&s);
        let _ = crate::funcs::math::to_int64(&Value::str(s.clone()));
        let _ = crate::funcs::strings::go_title(&s);
        let _ = crate::goquote::lossy_go(b);
    }

    #[test]
    fn regexes(p in "[a-z\\\\.*+?()\\[\\]{}|^$:,0-9-]{0,12}", s in any::<String>(), repl in "[a-z$\\{\\}0-9]{0,6}") {
        if let Ok(re) = crate::goregex::GoRegex::compile(&p) {
            let _ = re.count(&s);
            let _ = re.replace_all(&s, &repl, false);
            let _ = re.replace_all(&s, &repl, true);
        }
    }

    #[test]
    fn printf(format in "[%a-zA-Z0-9.*+\\- #\\[\\]]{0,16}", args in prop::collection::vec(arg(), 0..4)) {
        let d = MapData::new([("k", "v")]);
        let _ = crate::gofmt::sprintf(&format, &args, &d);
        let _ = crate::gofmt::sprint(&args, &d);
        let _ = crate::gofmt::sprintln(&args, &d);
    }

    #[test]
    fn decimals(a in any::<f64>(), b in any::<f64>()) {
        if let (Ok(x), Ok(y)) = (crate::decimal::Decimal::from_f64(a), crate::decimal::Decimal::from_f64(b)) {
            let _ = x.add(&y).to_f64();
            let _ = x.sub(&y).to_f64();
            let _ = x.mul(&y).to_f64();
            let _ = x.div(&y).map(|d| d.to_f64());
        }
    }
}
