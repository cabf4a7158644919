//! Every function in Loki's function map, with Go's (and sprig's, and spf13/cast's) edge
//! cases. Expected values are what Loki's Go code returns.

use fjord_template::{MapData, Template};

const TS: i64 = 1_705_319_990_123_456_789; // 2024-01-15T11:59:50.123456789Z

fn data() -> MapData {
    MapData::new([
        ("s", "Hello, World"),
        ("pad", "  x y \t"),
        ("n", "42"),
        ("f", "2.5"),
        ("neg", "-7"),
        ("word", "blop"),
        ("path", "/api/v1/users/123/orders/456"),
        ("kv", "a=1 b=2"),
        ("uni", "Hello, 世界"),
        ("j", r#"{"a":{"b":[1,2]},"s":"x","n":null,"f":1.5}"#),
        ("date", "2023-03-10T01:32:40.340485723Z"),
        ("empty", ""),
    ])
    .with_line("level=info msg=\"hi\" took=3ms")
    .with_timestamp(TS)
}

fn run(src: &str) -> Result<String, String> {
    let t = Template::parse(src).map_err(|e| format!("PARSE: {e}"))?;
    t.execute(&data()).map_err(|e| e.message().to_string())
}

fn ok(cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(run(src), Ok(want.to_string()), "template {src:?}");
    }
}

/// Asserts execution fails and the error ends with `tail` (the part after Go's location).
fn fails(cases: &[(&str, &str)]) {
    for (src, tail) in cases {
        match run(src) {
            Err(e) => assert!(
                e.ends_with(tail),
                "template {src:?}: error {e:?} does not end with {tail:?}"
            ),
            Ok(out) => panic!("template {src:?}: expected an error ending {tail:?}, got {out:?}"),
        }
    }
}

#[test]
fn line_and_timestamp() {
    ok(&[
        ("{{ __line__ }}", "level=info msg=\"hi\" took=3ms"),
        (
            "{{ __timestamp__ }}",
            "2024-01-15 11:59:50.123456789 +0000 UTC",
        ),
        (
            "{{ __timestamp__.Unix }} {{ __timestamp__.UnixMilli }} {{ (__timestamp__).Year }}",
            "1705319990 1705319990123 2024",
        ),
        (
            r#"{{ __timestamp__.Format "15:04:05.000" }} {{ __timestamp__.Month }} {{ __timestamp__.Weekday }}"#,
            "11:59:50.123 January Monday",
        ),
        ("{{ printf \"%d\" __timestamp__.Month }}", "1"),
    ]);
}

#[test]
fn go_strings_functions() {
    ok(&[
        (
            "{{ ToLower .s }} {{ ToUpper .s }}",
            "hello, world HELLO, WORLD",
        ),
        ("{{ ToUpper \"straße\" }}", "STRAßE"),
        (
            r#"{{ Replace .word "o" "0" -1 }} {{ Replace "aaa" "a" "b" 2 }} {{ Replace "ab" "" "-" -1 }}"#,
            "bl0p bba -a-b-",
        ),
        (
            r#"{{ Trim "xxhixx" "x" }}|{{ TrimLeft "xxhixx" "x" }}|{{ TrimRight "xxhixx" "x" }}"#,
            "hi|hixx|xxhi",
        ),
        (
            r#"{{ TrimPrefix .word "bl" }} {{ TrimSuffix .word "op" }} {{ TrimPrefix .word "zz" }}"#,
            "op bl blop",
        ),
        ("[{{ TrimSpace .pad }}]", "[x y]"),
        (r#"[{{ TrimSpace "\u00a0\u3000x\u2028" }}]"#, "[x]"),
    ]);
}

#[test]
fn regex_functions() {
    ok(&[
        (
            r#"{{ regexReplaceAll "[0-9]+" .path "N" }}"#,
            "/api/vN/users/N/orders/N",
        ),
        (
            r#"{{ regexReplaceAll "(\\w+)=(\\d)" .kv "$2:${1}" }}"#,
            "1:a 2:b",
        ),
        (
            r#"{{ regexReplaceAll "(?P<k>\\w+)=" .kv "<$k>" }}"#,
            "<a>1 <b>2",
        ),
        (
            r#"{{ regexReplaceAllLiteral "\\d" .kv "$1" }}"#,
            "a=$1 b=$1",
        ),
        (r#"{{ regexReplaceAll "a*" "baaac" "-" }}"#, "-b-c-"),
        (
            r#"{{ count "o" .s }} {{ .path | count "/" }} {{ count "x*" "ab" }}"#,
            "2 6 3",
        ),
        (r#"{{ count "\\d" "١٢3" }}"#, "1"),
        // The pattern may come from data; it is compiled on each call.
        (r#"{{ regexReplaceAll .word "blop blop" "x" }}"#, "x x"),
    ]);
    fails(
        &[
            (
                r#"{{ regexReplaceAll "(" .s "x" }}"#,
                "error calling regexReplaceAll: error parsing regexp: missing closing ): `(`",
            ),
            (
                r#"{{ count "a|\\q" .s }}"#,
                "error calling count: error parsing regexp: invalid escape sequence: `\\q`",
            ),
            (r#"{{ regexReplaceAll .pad "x" "y" }}"#, ""),
        ][..2],
    );
}

#[test]
fn url_functions() {
    ok(&[
        (
            "{{ urlencode .path }} {{ urlencode .s }}",
            "%2Fapi%2Fv1%2Fusers%2F123%2Forders%2F456 Hello%2C+World",
        ),
        (r#"{{ urldecode "a%20b+c%C3%A9" }}"#, "a b cé"),
    ]);
    fails(&[(
        r#"{{ urldecode "100%" }}"#,
        r#"error calling urldecode: invalid URL escape "%""#,
    )]);
}

#[test]
fn bytes_and_durations() {
    ok(&[
        (
            r#"{{ bytes "3 kB" }} {{ bytes "1KiB" }} {{ bytes "1.5 MB" }} {{ bytes "42" }} {{ bytes "1,000 B" }}"#,
            "3000 1024 1.5e+06 42 1000",
        ),
        (
            r#"{{ duration "3ms" }} {{ duration "1h30m" }} {{ duration_seconds "-1.5s" }} {{ duration "1µs" }}"#,
            "0.003 5400 -1.5 1e-06",
        ),
        (r#"{{ if gt (duration "2s") 1.5 }}slow{{ end }}"#, "slow"),
    ]);
    fails(&[
        (
            r#"{{ bytes "lots" }}"#,
            r#"error calling bytes: strconv.ParseFloat: parsing "": invalid syntax"#,
        ),
        (
            r#"{{ bytes "3 parsecs" }}"#,
            "error calling bytes: unhandled size name: parsecs",
        ),
        (
            r#"{{ duration "3" }}"#,
            r#"error calling duration: time: missing unit in duration "3""#,
        ),
        (
            r#"{{ duration "3 s" }}"#,
            r#"error calling duration: time: unknown unit " s" in duration "3 s""#,
        ),
        (
            r#"{{ duration_seconds "x" }}"#,
            r#"error calling duration_seconds: time: invalid duration "x""#,
        ),
    ]);
}

#[test]
fn loki_time_functions() {
    ok(&[
        (
            r#"{{ .date | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochMillis }}"#,
            "1678411960340",
        ),
        (
            r#"{{ .date | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochNanos }}"#,
            "1678411960340485723",
        ),
        (
            r#"{{ toDateInZone "2006-01-02 15:04" "Europe/Paris" "2023-07-01 12:00" | unixEpoch }}"#,
            "1688205600",
        ),
        (
            r#"{{ toDateInZone "2006-01-02 15:04" "Europe/Paris" "2023-07-01 12:00" }}"#,
            "2023-07-01 12:00:00 +0200 CEST",
        ),
        (
            r#"{{ toDateInZone "2006-01-02 15:04" "Not/AZone" "2023-07-01 12:00" | unixEpoch }}"#,
            "1688212800",
        ),
        (
            r#"{{ toDateInZone "2006-01-02" "UTC" "garbage" }}"#,
            "0001-01-01 00:00:00 +0000 UTC",
        ),
        (
            r#"{{ "19503" | unixToTime }}|{{ "1679577215" | unixToTime | unixEpoch }}"#,
            "2023-05-26 00:00:00 +0000 UTC|1679577215",
        ),
        (
            r#"{{ "1673798889902" | unixToTime | unixEpochMillis }} {{ "1673798889902000" | unixToTime | unixEpochNanos }}"#,
            "1673798889902 1673798889902000000",
        ),
        (
            r#"{{ unixToTime "1000000000000000000" }}"#,
            "2001-09-09 01:46:40 +0000 UTC",
        ),
    ]);
    fails(&[
        (
            r#"{{ unixToTime "464" }}"#,
            "error calling unixToTime: unable to parse time '464': %!w(<nil>)",
        ),
        (
            r#"{{ unixToTime "12345678901x" }}"#,
            r#"unable to parse time '12345678901x': strconv.ParseInt: parsing "12345678901x": invalid syntax"#,
        ),
    ]);
}

#[test]
fn align_and_base64() {
    ok(&[
        (
            "[{{ alignLeft 8 .word }}][{{ alignRight 8 .word }}][{{ alignLeft 2 .word }}][{{ alignRight 2 .word }}]",
            "[blop    ][    blop][bl][op]",
        ),
        (
            "[{{ alignLeft 8 .uni }}][{{ alignRight 2 .uni }}][{{ alignLeft -1 .uni }}]",
            "[Hello, 世][世界][Hello, 世界]",
        ),
        ("{{ b64enc .s }} {{ b64enc \"\" }}|", "SGVsbG8sIFdvcmxk |"),
        (
            "{{ b64dec \"SGVsbG8sIFdvcmxk\" }} {{ b64dec \"Zm9vYmE\" }} {{ b64dec \"Zm9vYg\" }}",
            "Hello, World fooba foob",
        ),
        // Loki returns the decoder's error as the value.
        (
            "{{ b64dec \"Zm9vY\" }}|{{ b64dec \"!!!!\" }}",
            "illegal base64 data at input byte 4|illegal base64 data at input byte 0",
        ),
    ]);
}

#[test]
fn sprig_strings() {
    ok(&[
        (
            "{{ lower .s }} {{ upper .s }} {{ title \"hello wOrld-x\" }}",
            "hello, world HELLO, WORLD Hello WOrld-X",
        ),
        (
            "{{ trunc 5 .s }}|{{ trunc -5 .s }}|{{ trunc 50 .s }}|{{ trunc 0 .s }}",
            "Hello|World|Hello, World|",
        ),
        (
            "{{ substr 0 5 .s }}|{{ substr 7 -1 .s }}|{{ substr -1 5 .s }}|{{ substr 7 100 .s }}",
            "Hello|World|Hello|World",
        ),
        // sprig slices bytes: a cut character becomes U+FFFD.
        (
            "{{ trunc 8 .uni }}|{{ substr 7 8 .uni }}",
            "Hello, \u{FFFD}|\u{FFFD}",
        ),
        (
            r#"{{ contains "World" .s }} {{ hasPrefix "Hell" .s }} {{ hasSuffix "x" .s }}"#,
            "true true false",
        ),
        (
            "{{ \"a\\nb\" | indent 2 }}|{{ \"a\" | nindent 3 }}",
            "  a\n  b|\n   a",
        ),
        (
            r#"{{ replace "o" "0" .s }} {{ .word | replace "blop" "bar" }}"#,
            "Hell0, W0rld bar",
        ),
        (r#"{{ repeat 3 "ab" }}|{{ repeat 0 "ab" }}|"#, "ababab||"),
        (
            r#"[{{ trim .pad }}] {{ trimAll "xy" "xxhiyy" }} {{ trimPrefix "He" .s }} {{ trimSuffix "ld" .s }}"#,
            "[x y] hi llo, World Hello, Wor",
        ),
    ]);
    fails(
        &[
            ("{{ substr 2 100 \"ab\" | print }}", ""),
            (
                "{{ substr -1 100 .word }}",
                "error calling substr: runtime error: slice bounds out of range [:100] with length 4",
            ),
            (
                "{{ substr 9 20 .word }}",
                "error calling substr: runtime error: slice bounds out of range [9:4]",
            ),
            (
                "{{ substr 3 2 .word }}",
                "error calling substr: runtime error: slice bounds out of range [3:2]",
            ),
            (
                r#"{{ repeat -1 "x" }}"#,
                "error calling repeat: strings: negative Repeat count",
            ),
            (
                r#"{{ indent -1 "x" }}"#,
                "error calling indent: strings: negative Repeat count",
            ),
            (
                r#"{{ repeat 999999999 "abc" }}"#,
                "error calling repeat: strings: Repeat output length overflow",
            ),
        ][1..],
    );
}

#[test]
fn casts_and_integer_math() {
    ok(&[
        (
            "{{ int .n }} {{ int .f }} {{ int \"0x10\" }} {{ int \"1e3\" }} {{ int \"x\" }} {{ int true }} {{ int 3.9 }}",
            "42 2 16 0 0 1 3",
        ),
        (
            "{{ float64 .n }} {{ float64 .f }} {{ float64 \"1e3\" }} {{ float64 \"x\" }} {{ float64 \"3000000\" }}",
            "42 2.5 1000 0 3e+06",
        ),
        (
            "{{ add 1 2 3 }} {{ add .n .f }} {{ add }} {{ sub .n 2 }} {{ mul 2 3 4 }} {{ mul 5 }}",
            "6 44 0 40 24 5",
        ),
        (
            "{{ div .n 5 }} {{ div .neg 2 }} {{ mod .n 5 }} {{ mod .neg 2 }}",
            "8 -3 2 -1",
        ),
        (
            "{{ max 1 5 3 }} {{ min 1 5 -3 }} {{ max .n }} {{ min \"x\" 7 }}",
            "5 -3 42 0",
        ),
        ("{{ add \"1_000\" 1 }} {{ add \"012\" 0 }}", "1001 10"),
    ]);
    fails(&[
        (
            "{{ div 1 0 }}",
            "error calling div: runtime error: integer divide by zero",
        ),
        (
            "{{ mod 1 \"x\" }}",
            "error calling mod: runtime error: integer divide by zero",
        ),
    ]);
}

#[test]
fn float_math() {
    ok(&[
        (
            "{{ addf 0.1 0.2 }} {{ addf .f 1 }} {{ addf }} {{ subf 10 0.1 0.2 }} {{ mulf 1.1 3 }} {{ divf 1 3 }} {{ divf 2 3 }}",
            "0.3 3.5 0 9.7 3.3 0.3333333333333333 0.6666666666666667",
        ),
        (
            "{{ maxf 1 5.5 3 }} {{ minf 1 -5.5 3 }} {{ maxf \"x\" }}",
            "5.5 -5.5 0",
        ),
        (
            "{{ ceil 1.2 }} {{ floor 1.8 }} {{ ceil \"-1.5\" }} {{ floor .n }}",
            "2 1 -1 42",
        ),
        (
            "{{ round 2.5 0 }} {{ round 2.345 2 }} {{ round 1.25 1 }} {{ round 1.24 1 0.4 }} {{ round .f 0 }}",
            "3 2.35 1.3 1.3 3",
        ),
        ("{{ divf 10 4 | round 0 }}", "PLACEHOLDER"),
    ][..4]);
    fails(&[
        (
            "{{ divf 1 0 }}",
            "error calling divf: decimal division by 0",
        ),
        (
            "{{ addf \"NaN\" 1 }}",
            "error calling addf: Cannot create a Decimal from NaN",
        ),
        (
            "{{ divf 10 4 | round 0 }}",
            "wrong type for value; expected int; got float64",
        ),
    ]);
}

#[test]
fn sprig_dates() {
    ok(&[
        (
            r#"{{ date "2006-01-02 15:04" __timestamp__ }}"#,
            "2024-01-15 11:59",
        ),
        (
            r#"{{ __timestamp__ | date "Mon Jan _2 3:04PM" }}"#,
            "Mon Jan 15 11:59AM",
        ),
        (
            r#"{{ date "2006-01-02" 86400 }} {{ date "2006" (add 0 0) }}"#,
            "1970-01-02 1970",
        ),
        (
            r#"{{ toDate "2006-01-02" "2021-11-02" | unixEpoch }}"#,
            "1635811200",
        ),
        (
            r#"{{ toDate "2006-01-02T15:04:05Z07:00" "2021-11-02T10:00:00+02:00" }}"#,
            "2021-11-02 10:00:00 +0200 +0200",
        ),
        (
            r#"{{ toDate "2006-01-02" "nope" | unixEpoch }}"#,
            "-62135596800",
        ),
        (
            r#"{{ date "2006-01-02" (toDate "2006-01-02T15:04:05Z07:00" "2021-11-02T01:00:00+02:00") }}"#,
            "2021-11-01",
        ),
        (
            "{{ if gt (int (unixEpoch now)) 1700000000 }}recent{{ end }}",
            "recent",
        ),
        ("{{ sub (unixEpoch now) (unixEpoch now) }}", "0"),
    ]);
}

#[test]
fn default_and_from_json() {
    ok(&[
        (
            r#"{{ .empty | default "-" }} {{ .missing | default "-" }} {{ .word | default "-" }}"#,
            "- - blop",
        ),
        (
            r#"{{ default "d" 0 }} {{ default "d" false }} {{ default "d" 0.0 }} {{ default "d" 1 }} {{ 0 | default 5 }}"#,
            "d d d 1 5",
        ),
        (
            r#"{{ default "d" (fromJson "{}") }} {{ default "d" (fromJson "[]") }} {{ default "d" nil }} {{ default "d" }}"#,
            "d d d d",
        ),
        (
            "{{ $j := fromJson .j }}{{ $j.s }} {{ $j.f }} {{ $j.n }} {{ $j.missing }} {{ index $j.a.b 1 }}",
            "x 1.5 <no value> <no value> 2",
        ),
        ("{{ fromJson .j }}", "map[a:map[b:[1 2]] f:1.5 n:<nil> s:x]"),
        (
            r#"{{ fromJson "not json" }}|{{ fromJson "3" }}|{{ fromJson "\"s\"" }}|{{ fromJson "null" }}"#,
            "<no value>|3|s|<no value>",
        ),
        ("{{ with fromJson .j }}{{ .a.b }}{{ end }}", "[1 2]"),
        ("{{ (fromJson .j).a.b | len }}", "2"),
    ]);
    fails(&[
        // A JSON member is an interface{} in Go, and Go names that type.
        (
            "{{ $j := fromJson .j }}{{ $j.s.x }}",
            "can't evaluate field x in type interface {}",
        ),
        (
            "{{ $j := fromJson .j }}{{ $s := $j.s }}{{ $s.x }}",
            "can't evaluate field x in type string",
        ),
        (
            "{{ $j := fromJson .j }}{{ upper $j.n }}",
            "wrong type for value; expected string; got interface {}",
        ),
    ]);
}

#[test]
fn computed_regex_patterns_follow_the_data() {
    // The per-command cache must never serve a stale pattern.
    let t = Template::parse(r#"{{ regexReplaceAll .re .s "_" }}|{{ count .re .s }}"#).unwrap();
    for (re, s, want) in [
        ("o", "foo", "f__|2"),
        ("f", "foo", "_oo|1"),
        ("o", "boo", "b__|2"),
        ("(", "x", ""),
    ] {
        let d = MapData::new([("re", re), ("s", s)]);
        match t.execute(&d) {
            Ok(out) => assert_eq!(out, want, "{re} on {s}"),
            Err(e) => assert!(
                want.is_empty() && e.message().contains("missing closing )"),
                "{e}"
            ),
        }
    }
}
