//! Loki's own template tests (`pkg/logql/log/fmt_test.go`), rewritten: the same templates,
//! labels, lines and timestamps, expecting the same output or the same `__error_details__`.
//! Label renames (`label_format a=b`) are engine work and not repeated here. Times print in
//! UTC, Loki's zone in its container images.

use fjord_template::{MapData, Template};

enum Want {
    Out(&'static str),
    Err(&'static str),
}

/// name, template, labels, timestamp, line, expectation.
type LineCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    i64,
    &'static str,
    Want,
);
/// name, template, labels, expectation.
type LabelCase = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
    Want,
);

fn data(labels: &[(&str, &str)], ts: i64, line: &str) -> MapData {
    MapData::new(labels.iter().copied())
        .with_timestamp(ts)
        .with_line(line)
}

fn check(name: &str, tmpl_name: &str, src: &str, d: &MapData, want: Want) {
    let t = Template::parse_named(tmpl_name, src)
        .unwrap_or_else(|e| panic!("{name}: parse failed: {e}"));
    match (t.execute(d), want) {
        (Ok(out), Want::Out(w)) => assert_eq!(out, w, "{name}"),
        (Err(e), Want::Err(w)) => assert_eq!(e.message(), w, "{name}"),
        (Ok(out), Want::Err(w)) => panic!("{name}: expected error {w:?}, got output {out:?}"),
        (Err(e), Want::Out(w)) => panic!("{name}: expected {w:?}, got error {e}"),
    }
}

#[test]
fn line_formatter_cases() {
    use Want::*;
    let cases: Vec<LineCase> = vec![
        (
            "count",
            r#"{{.foo | count "abc" }}"#,
            vec![("foo", "abc abc abc"), ("bar", "blop")],
            0,
            "",
            Out("3"),
        ),
        (
            "count regex",
            r#"{{.foo | count "a|b|c" }}"#,
            vec![("foo", "abc abc abc"), ("bar", "blop")],
            0,
            "",
            Out("9"),
        ),
        (
            "combining",
            "foo{{.foo}}buzz{{  .bar  }}",
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Out("fooblipbuzzblop"),
        ),
        (
            "Replace",
            r#"foo{{.foo}}buzz{{ Replace .bar "blop" "bar" -1 }}"#,
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Out("fooblipbuzzbar"),
        ),
        (
            "replace",
            r#"foo{{.foo}}buzz{{ .bar | replace "blop" "bar" }}"#,
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Out("fooblipbuzzbar"),
        ),
        (
            "title",
            "{{.foo | title }}",
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Out("Blip"),
        ),
        (
            "substr and trunc",
            "{{.foo | substr 1 3 }} {{ .bar  | trunc 1 }} {{ .bar  | trunc 3 }}",
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Out("li b blo"),
        ),
        (
            "trim",
            r#"{{.foo | trim }} {{ .bar  | trimAll "op" }} {{ .bar  | trimPrefix "b" }} {{ .bar  | trimSuffix "p" }}"#,
            vec![("foo", "  blip "), ("bar", "blop")],
            0,
            "",
            Out("blip bl lop blo"),
        ),
        (
            "lower and upper",
            "{{.foo | lower }} {{ .bar  | upper }}",
            vec![("foo", "BLIp"), ("bar", "blop")],
            0,
            "",
            Out("blip BLOP"),
        ),
        (
            "urlencode",
            "{{.foo | urlencode }} {{ urlencode .foo }}",
            vec![(
                "foo",
                r#"/loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"}"#,
            )],
            0,
            "",
            Out(
                "%2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D %2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D",
            ),
        ),
        (
            "urldecode",
            "{{.foo | urldecode }} {{ urldecode .foo }}",
            vec![(
                "foo",
                "%2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D",
            )],
            0,
            "",
            Out(
                r#"/loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"} /loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"}"#,
            ),
        ),
        (
            "repeat",
            r#"{{ "foo" | repeat 3 }}"#,
            vec![("foo", "BLIp")],
            0,
            "",
            Out("foofoofoo"),
        ),
        (
            "indent",
            "{{ \"foo\\n bar\" | indent 4 }}",
            vec![("foo", "BLIp")],
            0,
            "",
            Out("    foo\n     bar"),
        ),
        (
            "nindent",
            r#"{{ "foo" | nindent 2 }}"#,
            vec![("foo", "BLIp")],
            0,
            "",
            Out("\n  foo"),
        ),
        (
            "contains",
            r#"{{ if  .foo | contains "p"}}yes{{end}}-{{ if  .foo | contains "z"}}no{{end}}"#,
            vec![("foo", "BLIp"), ("bar", "blop")],
            0,
            "",
            Out("yes-"),
        ),
        (
            "hasPrefix",
            r#"{{ if  .foo | hasPrefix "BL" }}yes{{end}}-{{ if  .foo | hasPrefix "p"}}no{{end}}"#,
            vec![("foo", "BLIp")],
            0,
            "",
            Out("yes-"),
        ),
        (
            "hasSuffix",
            r#"{{ if  .foo | hasSuffix "Ip" }}yes{{end}}-{{ if  .foo | hasSuffix "pw"}}no{{end}}"#,
            vec![("foo", "BLIp")],
            0,
            "",
            Out("yes-"),
        ),
        (
            "regexReplaceAll",
            r#"{{ regexReplaceAll "(p)" .foo "t" }}"#,
            vec![("foo", "BLIp")],
            0,
            "",
            Out("BLIt"),
        ),
        (
            "regexReplaceAllLiteral",
            r#"{{ regexReplaceAllLiteral "(p)" .foo "${1}" }}"#,
            vec![("foo", "BLIp")],
            0,
            "",
            Out("BLI${1}"),
        ),
        (
            "err",
            r#"{{.foo Replace "foo"}}"#,
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Err(
                r#"template: line:1:2: executing "line" at <.foo>: foo is not a method but has arguments"#,
            ),
        ),
        (
            "missing",
            "foo {{.foo}}buzz{{  .bar  }}",
            vec![("bar", "blop")],
            0,
            "",
            Out("foo buzzblop"),
        ),
        (
            "function",
            "foo {{.foo | ToUpper }} buzz{{  .bar  }}",
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Out("foo BLIP buzzblop"),
        ),
        (
            "mathint",
            "{{ add .foo 1 | sub .bar | mul .baz | div .bazz}}",
            vec![("foo", "1"), ("bar", "3"), ("baz", "10"), ("bazz", "20")],
            0,
            "",
            Out("2"),
        ),
        (
            "mathfloat",
            "{{ addf .foo 1.5 | subf .bar 1.5 | mulf .baz | divf .bazz }}",
            vec![
                ("foo", "1.5"),
                ("bar", "5"),
                ("baz", "10.5"),
                ("bazz", "20.2"),
            ],
            0,
            "",
            Out("3.8476190476190477"),
        ),
        (
            "mathfloatround",
            "{{ round (addf .foo 1.5 | subf .bar | mulf .baz | divf .bazz) 5 .2}}",
            vec![
                ("foo", "1.5"),
                ("bar", "3.5"),
                ("baz", "10.5"),
                ("bazz", "20.4"),
            ],
            0,
            "",
            Out("3.88572"),
        ),
        (
            "min",
            "min is {{ min .foo .bar .baz }} and max is {{ max .foo .bar .baz }}",
            vec![("foo", "5"), ("bar", "10"), ("baz", "15")],
            0,
            "",
            Out("min is 5 and max is 15"),
        ),
        (
            "max",
            "minf is {{ minf .foo .bar .baz }} and maxf is {{maxf .foo .bar .baz}}",
            vec![("foo", "5.3"), ("bar", "10.5"), ("baz", "15.2")],
            0,
            "",
            Out("minf is 5.3 and maxf is 15.2"),
        ),
        (
            "ceilfloor",
            "ceil is {{ ceil .foo }} and floor is {{floor .foo }}",
            vec![("foo", "5.3")],
            0,
            "",
            Out("ceil is 6 and floor is 5"),
        ),
        (
            "mod",
            "mod is {{ mod .foo 3 }}",
            vec![("foo", "20")],
            0,
            "",
            Out("mod is 2"),
        ),
        (
            "float64int",
            "{{ \"2.5\" | float64 | int | add 10}}",
            vec![("foo", "2.5")],
            0,
            "",
            Out("12"),
        ),
        (
            "datetime",
            r#"{{ sub (unixEpoch (toDate "2006-01-02" "2021-11-02")) (unixEpoch (toDate "2006-01-02" "2021-11-01")) }}"#,
            vec![],
            0,
            "",
            Out("86400"),
        ),
        (
            "dateformat",
            r#"{{ date "2006-01-02" (toDate "2006-01-02" "2021-11-02") }}"#,
            vec![],
            0,
            "",
            Out("2021-11-02"),
        ),
        (
            "now",
            "{{ div (unixEpoch now) (unixEpoch now) }}",
            vec![],
            0,
            "",
            Out("1"),
        ),
        (
            "line",
            "{{ __line__ }} bar {{ .bar }}",
            vec![("bar", "2")],
            0,
            "1",
            Out("1 bar 2"),
        ),
        (
            "default",
            r#"{{.foo | default "-" }}{{.bar | default "-"}}{{.unknown | default "-"}}"#,
            vec![("foo", "blip"), ("bar", "")],
            0,
            "",
            Out("blip--"),
        ),
        (
            "timestamp",
            r#"{{ __timestamp__ | date "2006-01-02" }} bar {{ .bar }}"#,
            vec![("bar", "2")],
            1656331200000000000,
            "1",
            Out("2022-06-27 bar 2"),
        ),
        (
            "timestamp_unix",
            "{{ __timestamp__ | unixEpoch }} bar {{ .bar }}",
            vec![("bar", "2")],
            1656353124120000000,
            "1",
            Out("1656353124 bar 2"),
        ),
        (
            "template_error",
            "{{.foo | now}}",
            vec![("foo", "blip"), ("bar", "blop")],
            0,
            "",
            Err(
                r#"template: line:1:9: executing "line" at <now>: wrong number of args for now: want 0 got 1"#,
            ),
        ),
        (
            "bytes 1",
            "{{ .foo | bytes }}",
            vec![("foo", "3 kB")],
            1656353124120000000,
            "1",
            Out("3000"),
        ),
        (
            "bytes 2",
            "{{ .foo | bytes }}",
            vec![("foo", "3MB")],
            1656353124120000000,
            "1",
            Out("3e+06"),
        ),
        (
            "duration 1",
            "{{ .foo | duration }}",
            vec![("foo", "3ms")],
            1656353124120000000,
            "1",
            Out("0.003"),
        ),
        (
            "duration 2",
            "{{ .foo | duration_seconds }}",
            vec![("foo", "3m10s")],
            1656353124120000000,
            "1",
            Out("190"),
        ),
        (
            "toDateInZone",
            r#"{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochMillis }}"#,
            vec![("foo", "2023-03-10T01:32:40.340485723Z")],
            1656353124120000000,
            "1",
            Out("1678411960340"),
        ),
        (
            "unixEpochNanos",
            r#"{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochNanos }}"#,
            vec![("foo", "2023-03-10T01:32:40.340485723Z")],
            1656353124120000000,
            "1",
            Out("1678411960340485723"),
        ),
        (
            "base64encode",
            "{{ .foo | b64enc }}",
            vec![("foo", "i'm a string, encode me!")],
            0,
            "1",
            Out("aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh"),
        ),
        (
            "base64decode",
            "{{ .foo | b64dec }}",
            vec![("foo", "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh")],
            0,
            "1",
            Out("i'm a string, encode me!"),
        ),
        (
            "base64decode missing padding",
            "{{ .foo | b64dec }} {{ .bar | b64dec }}",
            vec![("foo", "Zm9vYmE"), ("bar", "Zm9vYg")],
            0,
            "1",
            Out("fooba foob"),
        ),
        (
            "alignLeft",
            "{{ alignLeft 4 .foo }}",
            vec![("foo", "hello")],
            0,
            "1",
            Out("hell"),
        ),
        (
            "alignRight",
            "{{ alignRight 4 .foo }}",
            vec![("foo", "hello")],
            0,
            "1",
            Out("ello"),
        ),
        (
            "simple key template",
            "{{.foo}}",
            vec![("foo", "bar")],
            0,
            "",
            Out("bar"),
        ),
        (
            "simple key template with space",
            "{{.foo}}  ",
            vec![("foo", "bar")],
            0,
            "",
            Out("bar  "),
        ),
        (
            "simple key template with missing key",
            "{{.missing}}",
            vec![("foo", "bar")],
            0,
            "",
            Out(""),
        ),
    ];
    for (name, src, labels, ts, line, want) in cases {
        check(name, "line", src, &data(&labels, ts, line), want);
    }
}

#[test]
fn labels_formatter_cases() {
    use Want::*;
    const TS: i64 = 1661518453244672570;
    let cases: Vec<LabelCase> = vec![
        (
            "combined with template",
            "{{.foo}} and {{.bar}}",
            vec![("foo", "blip"), ("bar", "blop")],
            Out("blip and blop"),
        ),
        (
            "fn",
            "{{.foo | ToUpper }} and {{.bar}}",
            vec![("foo", "blip"), ("bar", "blop")],
            Out("BLIP and blop"),
        ),
        (
            "math",
            "{{div .status 100 }}",
            vec![("status", "200")],
            Out("2"),
        ),
        (
            "default",
            r#"{{.foo | default "-" }} and {{.bar}}"#,
            vec![("bar", "blop")],
            Out("- and blop"),
        ),
        (
            "template error",
            r#"{{replace "test" .foo}}"#,
            vec![("foo", "blip"), ("bar", "blop")],
            Err(
                r#"template: label:1:2: executing "label" at <replace>: wrong number of args for replace: want 3 got 2"#,
            ),
        ),
        (
            "line",
            "{{ __line__ }}",
            vec![("foo", "blip")],
            Out("test line"),
        ),
        (
            "timestamp",
            r#"{{ __timestamp__ | date "2006-01-02" }}"#,
            vec![],
            Out("2022-08-26"),
        ),
        (
            "timestamp_unix",
            "{{ __timestamp__ | unixEpoch }}",
            vec![],
            Out("1661518453"),
        ),
        (
            "count",
            r#"{{ __line__ | count "test" }}"#,
            vec![],
            Out("1"),
        ),
        (
            "count regex no matches",
            r#"{{ __line__ | count "notmatching.*" }}"#,
            vec![],
            Out("0"),
        ),
        (
            "bytes 1",
            "{{ .foo | bytes }}",
            vec![("foo", "3 kB")],
            Out("3000"),
        ),
        (
            "bytes 2",
            "{{ .foo | bytes }}",
            vec![("foo", "3MB")],
            Out("3e+06"),
        ),
        (
            "duration 1",
            "{{ .foo | duration }}",
            vec![("foo", "3ms")],
            Out("0.003"),
        ),
        (
            "duration 2",
            "{{ .foo | duration }}",
            vec![("foo", "3m10s")],
            Out("190"),
        ),
        (
            "toDateInZone",
            r#"{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochMillis }}"#,
            vec![("foo", "2023-03-10T01:32:40.340485723Z")],
            Out("1678411960340"),
        ),
        (
            "base64encode",
            "{{ .foo | b64enc }}",
            vec![("foo", "i'm a string, encode me!")],
            Out("aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh"),
        ),
        (
            "base64decode missing padding",
            "{{ .foo | b64dec }}",
            vec![("foo", "Zm9vYmE")],
            Out("fooba"),
        ),
        (
            "unixToTime days",
            "{{ .bar | unixToTime }}",
            vec![("bar", "19503")],
            Out("2023-05-26 00:00:00 +0000 UTC"),
        ),
        (
            "unixToTime seconds",
            "{{ .bar | unixToTime }}",
            vec![("bar", "1679577215")],
            Out("2023-03-23 13:13:35 +0000 UTC"),
        ),
        (
            "unixToTime milliseconds",
            "{{ .bar | unixToTime }}",
            vec![("bar", "1257894000000")],
            Out("2009-11-10 23:00:00 +0000 UTC"),
        ),
        (
            "unixToTime microseconds",
            "{{ .bar | unixToTime }}",
            vec![("bar", "1673798889902000")],
            Out("2023-01-15 16:08:09.902 +0000 UTC"),
        ),
        (
            "unixToTime nanoseconds",
            "{{ .bar | unixToTime }}",
            vec![("bar", "1000000000000000000")],
            Out("2001-09-09 01:46:40 +0000 UTC"),
        ),
    ];
    for (name, src, labels, want) in cases {
        check(name, "label", src, &data(&labels, TS, "test line"), want);
    }
}

#[test]
fn invalid_regexes_fail_at_execution() {
    let d = MapData::new([("foo", "input")]);
    for src in [
        r#"{{ regexReplaceAll "a|b|\\q" .foo "replacement" }}"#,
        r#"{{ regexReplaceAllLiteral "\\h" .foo "replacement" }}"#,
        r#"{{ count "a|b|\\K" .foo }}"#,
    ] {
        let t = Template::parse(src).expect("a bad regex is not a parse error");
        let err = t.execute(&d).expect_err(src);
        assert!(
            err.message().contains("error parsing regexp"),
            "{src}: {err}"
        );
    }
}

#[test]
fn trunc_align_substring_tables() {
    // Loki's Test_AlignLeft/Test_AlignRight (rune based).
    let run = |src: String, s: &str| {
        Template::parse(&src)
            .unwrap()
            .execute(&MapData::new([("s", s)]))
            .unwrap()
    };
    let hello = "Hello, 世界";
    for (c, want) in [
        (-1, "Hello, 世界"),
        (0, ""),
        (1, "H"),
        (8, "Hello, 世"),
        (20, "Hello, 世界           "),
    ] {
        assert_eq!(
            run(format!("{{{{ alignLeft {c} .s }}}}"), hello),
            want,
            "alignLeft {c}"
        );
    }
    for (c, want) in [
        (-1, "Hello, 世界"),
        (0, ""),
        (1, "界"),
        (2, "世界"),
        (20, "           Hello, 世界"),
    ] {
        assert_eq!(
            run(format!("{{{{ alignRight {c} .s }}}}"), hello),
            want,
            "alignRight {c}"
        );
    }
    // The registered trunc is sprig's (byte based), not fmt.go's unregistered rune-based
    // helper: on ASCII they agree.
    for (c, want) in [
        (-1, "d"),
        (1, "H"),
        (0, ""),
        (20, "Hello, world"),
        (-20, "Hello, world"),
    ] {
        assert_eq!(
            run(format!("{{{{ trunc {c} .s }}}}"), "Hello, world"),
            want,
            "trunc {c}"
        );
    }
}

#[test]
fn invalid_unix_times() {
    let t = Template::parse("{{ .s | unixToTime }}").unwrap();
    let e = t.execute(&MapData::new([("s", "abc")])).unwrap_err();
    assert!(
        e.message().ends_with(
            r#"unable to parse time 'abc': strconv.ParseInt: parsing "abc": invalid syntax"#
        ),
        "{e}"
    );
    assert!(t.execute(&MapData::new([("s", "464")])).is_err());
}

#[test]
fn required_label_names() {
    let cases: [(&str, &[&str]); 6] = [
        ("{{.foo}} and {{.bar}}", &["foo", "bar"]),
        (
            "{{ .foo | ToUpper | .buzz }} and {{.bar}}",
            &["foo", "buzz", "bar"],
        ),
        (
            r#"{{ regexReplaceAllLiteral "(p)" .foo "${1}" }}"#,
            &["foo"],
        ),
        (
            r#"{{ if  .foo | hasSuffix "Ip" }} {{.bar}} {{end}}-{{ if  .foo | hasSuffix "pw"}}no{{end}}"#,
            &["foo", "bar"],
        ),
        (r#"{{with .foo}}{{printf "%q" .}} {{end}}"#, &["foo"]),
        (
            r#"{{with .foo}}{{printf "%q" .}} {{else}} {{ .buzz | lower }} {{end}}"#,
            &["foo", "buzz"],
        ),
    ];
    for (src, want) in cases {
        assert_eq!(
            Template::parse(src).unwrap().required_labels(),
            want,
            "{src}"
        );
    }
}

#[test]
fn map_pool_template_from_loki() {
    // The template of Loki's TestMapPoolPanic, executed on its labels.
    let tmpl = "\u{1b}[1m{{if .level }}{{alignRight 5 .level}}{{else if .severity}}{{alignRight 5 .severity}}{{end}}\u{1b}[0m \u{1b}[90m[{{alignRight 10 .resources_service_instance_id}}{{if .attributes_thread_name}}/{{alignRight 20 .attributes_thread_name}}{{else if eq \"java\" .resources_telemetry_sdk_language }}                    {{end}}]\u{1b}[0m \u{1b}[36m{{if .instrumentation_scope_name }}{{alignRight 40 .instrumentation_scope_name}}{{end}}\u{1b}[0m {{.body}} {{if .traceid}} \u{1b}[37m\u{1b}[3m[traceid={{.traceid}}]{{end}}";
    let t = Template::parse(tmpl).unwrap();
    let out = t
        .execute(&MapData::new([
            ("cluster", "us-central-0"),
            ("level", "debug"),
        ]))
        .unwrap();
    assert_eq!(
        out,
        "\u{1b}[1mdebug\u{1b}[0m \u{1b}[90m[          ]\u{1b}[0m \u{1b}[36m\u{1b}[0m  "
    );
}
