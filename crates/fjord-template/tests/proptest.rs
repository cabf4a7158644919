//! Property tests: parsing never panics on any input, and executing never panics on any label
//! data, line or timestamp — including templates that call every function with arbitrary
//! arguments (odd numbers, negative counts, broken regexes, invalid dates, huge repeats).

use std::collections::BTreeMap;

use fjord_template::{MapData, Template};
use proptest::prelude::*;

/// Every function name in Loki's map.
const FUNCS: &[&str] = &[
    "and",
    "or",
    "not",
    "call",
    "html",
    "index",
    "slice",
    "js",
    "len",
    "print",
    "printf",
    "println",
    "urlquery",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "__line__",
    "__timestamp__",
    "ToLower",
    "ToUpper",
    "Replace",
    "Trim",
    "TrimLeft",
    "TrimRight",
    "TrimPrefix",
    "TrimSuffix",
    "TrimSpace",
    "regexReplaceAll",
    "regexReplaceAllLiteral",
    "count",
    "urldecode",
    "urlencode",
    "bytes",
    "duration",
    "duration_seconds",
    "unixEpochMillis",
    "unixEpochNanos",
    "toDateInZone",
    "unixToTime",
    "alignLeft",
    "alignRight",
    "b64dec",
    "b64enc",
    "lower",
    "upper",
    "title",
    "trunc",
    "substr",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "indent",
    "nindent",
    "replace",
    "repeat",
    "trim",
    "trimAll",
    "trimSuffix",
    "trimPrefix",
    "int",
    "float64",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "addf",
    "subf",
    "mulf",
    "divf",
    "max",
    "min",
    "maxf",
    "minf",
    "ceil",
    "floor",
    "round",
    "fromJson",
    "date",
    "toDate",
    "now",
    "unixEpoch",
    "default",
];

fn arg() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(".a".to_string()),
        Just(".b".to_string()),
        Just(".missing".to_string()),
        Just(".".to_string()),
        Just("$".to_string()),
        Just("nil".to_string()),
        Just("true".to_string()),
        Just("__timestamp__".to_string()),
        Just("(fromJson .a)".to_string()),
        Just("(fromJson `{\"k\":[1,null,{\"z\":\"y\"}]}`)".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (-20i64..40).prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "[a-z0-9 .*+?()\\[\\]{}|^$\\\\%-]{0,8}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "\"2006-01-02T15:04:05Z07:00\"",
            "\"Jan _2 15:04:05.000 MST\"",
            "\"Europe/Paris\"",
            "\"3 kB\"",
            "\"1h2m\"",
            "\"%d %s %v %5.2f %q %x %[3]d %*d\"",
            "\"19503\"",
            "\"1705312800123456789\"",
            "\"Zm9vYg\"",
            "\"%zz\"",
        ])
        .prop_map(str::to_string),
    ]
}

fn call() -> impl Strategy<Value = String> {
    (
        prop::sample::select(FUNCS),
        prop::collection::vec(arg(), 0..4),
        prop::option::of(arg()),
    )
        .prop_map(|(f, args, piped)| match piped {
            Some(p) => format!("{{{{ {p} | {f} {} }}}}", args.join(" ")),
            None => format!("{{{{ {f} {} }}}}", args.join(" ")),
        })
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(
        prop::sample::select(vec!["a", "b", "c", "level", "status"]).prop_map(str::to_string),
        prop_oneof![
            any::<String>(),
            "[0-9.eE+-]{0,12}",
            Just(r#"{"x":[1,2,{"y":null}],"s":"t"}"#.to_string()),
            Just("2023-03-10T01:32:40.340485723Z".to_string()),
        ],
        0..5,
    )
}

fn data() -> impl Strategy<Value = MapData> {
    (labels(), any::<String>(), any::<i64>()).prop_map(|(labels, line, ts)| MapData {
        labels,
        line,
        timestamp_ns: ts,
    })
}

/// Text rich in template syntax, so the parser's error paths are exercised.
fn template_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{{".to_string()),
            Just("}}".to_string()),
            Just("{{- ".to_string()),
            Just(" -}}".to_string()),
            Just("{{/*".to_string()),
            Just("*/}}".to_string()),
            prop::sample::select(vec![
                "if", "else", "end", "range", "with", "define", "template", "block", "break",
                "continue", "nil", ".", "$", "$x", ":=", "=", "|", "(", ")", ",", "\"", "`", "'",
                "-", "+", "0x", "1e", ".a", ".a.b", " ", "\n", "\"x\"", "'a'", "1.5", "printf",
                "len", "index", "eq", "upper", "add",
            ])
            .prop_map(str::to_string),
            any::<String>(),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics(src in any::<String>()) {
        let _ = Template::parse(&src);
    }

    #[test]
    fn parse_and_execute_syntax_soup_never_panic(src in template_text(), d in data()) {
        if let Ok(t) = Template::parse(&src) {
            let _ = t.execute(&d);
        }
    }

    #[test]
    fn every_function_with_any_arguments_never_panics(calls in prop::collection::vec(call(), 1..4), d in data()) {
        let src = calls.concat();
        if let Ok(t) = Template::parse(&src) {
            let _ = t.execute(&d);
        }
    }

    #[test]
    fn control_flow_with_any_data_never_panics(d in data(), n in -3i64..5) {
        let src = format!(
            "{{{{ range $k, $v := . }}}}{{{{ if eq $k \"a\" }}}}{{{{ continue }}}}{{{{ end }}}}{{{{ $v | trunc {n} }}}}{{{{ end }}}}\
             {{{{ with fromJson .a }}}}{{{{ range $i, $e := .x }}}}{{{{ $i }}}}{{{{ $e }}}}{{{{ end }}}}{{{{ end }}}}\
             {{{{ range {n} }}}}{{{{ . }}}}{{{{ else }}}}none{{{{ end }}}}{{{{ printf \"%v %d %s\" .a .b __line__ }}}}"
        );
        let t = Template::parse(&src).expect("valid template");
        let _ = t.execute(&d);
    }

    #[test]
    fn simple_key_copies_any_value(v in any::<String>()) {
        let t = Template::parse("{{.a}}").unwrap();
        let d = MapData::new([("a", v.clone())]);
        prop_assert_eq!(t.execute(&d).unwrap(), v);
    }
}
