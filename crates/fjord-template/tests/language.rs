//! The template language, construct by construct: text, comments, trim markers, literals,
//! fields, variables, pipelines, `if`/`else if`/`with`/`else with`/`range` (with `break`,
//! `continue`, ranges over maps, lists and integers), `define`/`template`/`block`, the
//! comparison and logic built-ins, and Go's parse and execution errors.
//!
//! Expected values are what Go's text/template (as configured by Loki: `missingkey=zero`,
//! data = `map[string]string`) produces.

use fjord_template::{MapData, Template};

fn data() -> MapData {
    MapData::new([
        ("a", "1"),
        ("b", "two"),
        ("empty", ""),
        ("status", "200"),
        ("json", r#"{"k":[1,"x",null,true],"m":{"z":1,"y":"w"}}"#),
    ])
    .with_line("the line")
    .with_timestamp(1_705_312_800_123_456_789)
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

fn err(cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(run(src), Err(want.to_string()), "template {src:?}");
    }
}

#[test]
fn text_comments_and_trimming() {
    ok(&[
        ("plain text", "plain text"),
        ("", ""),
        ("a{{/* comment */}}b", "ab"),
        ("a {{- /* comment */ -}} b", "ab"),
        ("a  {{- .a -}}  b", "a1b"),
        ("a\n\t {{- .a}}", "a1"),
        ("{{.a -}}\n\n x", "1x"),
        ("{{-3}}", "-3"),
        ("{{ 3 -}} x", "3x"),
        ("}} stray {{\"{{\"}}", "}} stray {{"),
    ]);
}

#[test]
fn literals() {
    ok(&[
        (r#"{{"a\tb\u00e9\x41"}}"#, "a\tbéA"),
        ("{{`raw\\t`}}", "raw\\t"),
        (
            "{{1}} {{-1}} {{+2}} {{1.5}} {{1e3}} {{1.0}} {{.5}}",
            "1 -1 2 1.5 1000 1 0.5",
        ),
        (
            "{{0x1F}} {{0o17}} {{0b101}} {{017}} {{1_000}}",
            "31 15 5 15 1000",
        ),
        ("{{'a'}} {{'\\n'}}", "97 10"),
        ("{{true}} {{false}}", "true false"),
        ("{{0x1p-2}}", "0.25"),
    ]);
    err(&[(
        "{{nil}}",
        r#"template: line:1:2: executing "line" at <nil>: nil is not a command"#,
    )]);
}

#[test]
fn fields_and_dot() {
    ok(&[
        ("{{.a}}|{{.missing}}|{{.empty}}", "1||"),
        (
            "{{ .  }}",
            r#"map[a:1 b:two empty: json:{"k":[1,"x",null,true],"m":{"z":1,"y":"w"}} status:200]"#,
        ),
        ("{{ $.a }} {{ $ | len }}", "1 5"),
    ]);
    err(&[
        (
            "{{.a.b}}",
            r#"template: line:1:4: executing "line" at <.a.b>: can't evaluate field b in type string"#,
        ),
        (
            "{{.missing.x}}",
            r#"template: line:1:10: executing "line" at <.missing.x>: can't evaluate field x in type string"#,
        ),
        (
            r#"{{ "x" 1 }}"#,
            r#"template: line:1:3: executing "line" at <"x">: can't give argument to non-function "x""#,
        ),
    ]);
}

#[test]
fn pipelines_and_parentheses() {
    ok(&[
        (r#"{{ "abc" | upper | printf "%s!" }}"#, "ABC!"),
        (r#"{{ printf "%d-%s" (len .b) (.b | upper) }}"#, "3-TWO"),
        (r#"{{ 1 | printf "%d" }}"#, "1"),
    ]);
    // A trailing `|` is accepted by Go's parser.
    ok(&[("{{ .a | }}", "1")]);
    err(&[(
        r#"{{ (printf "%s" .b).x.y }}"#,
        r#"template: line:1:16: executing "line" at <.b>: can't evaluate field x in type string"#,
    )]);
}

#[test]
fn variables() {
    ok(&[
        (r#"{{ $x := "v" }}{{ $x }}"#, "v"),
        ("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2"),
        (
            "{{ $x := .a }}{{ if true }}{{ $x = .b }}{{ end }}{{ $x }}",
            "two",
        ),
        ("{{ with $x := .b }}{{ $x }}{{ end }}", "two"),
        (
            "{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}",
            "21",
        ),
    ]);
    err(&[
        (
            "{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}",
            r#"PARSE: template: line:1: undefined variable "$x""#,
        ),
        // Go's parser accepts assigning an undeclared variable; execution fails.
        (
            "{{ $x = 1 }}",
            r#"template: line:1:8: executing "line" at <1>: undefined variable: $x"#,
        ),
    ]);
}

#[test]
fn conditionals() {
    ok(&[
        ("{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}", "A"),
        (
            "{{ if .missing }}A{{ else if .b }}B{{ else }}C{{ end }}",
            "B",
        ),
        (
            "{{ if .missing }}A{{ else if .empty }}B{{ else }}C{{ end }}",
            "C",
        ),
        (
            "{{ if 0 }}x{{ end }}{{ if 0.0 }}y{{ end }}{{ if \"0\" }}z{{ end }}{{ if false }}f{{ end }}",
            "z",
        ),
        (
            "{{ if __timestamp__ }}time is true{{ end }}",
            "time is true",
        ),
        (
            "{{ if fromJson \"{}\" }}x{{ else }}empty map{{ end }}",
            "empty map",
        ),
        ("{{ with .b }}[{{ . }}]{{ else }}none{{ end }}", "[two]"),
        (
            "{{ with .missing }}[{{ . }}]{{ else }}none{{ end }}",
            "none",
        ),
        (
            "{{ with .missing }}a{{ else with .b }}b={{ . }}{{ end }}",
            "b=two",
        ),
        (
            "{{ if and .a .b }}both{{ end }} {{ if or .missing .b }}either{{ end }} {{ if not .empty }}not{{ end }}",
            "both either not",
        ),
    ]);
}

#[test]
fn ranges() {
    ok(&[
        (
            "{{ range $k, $v := . }}{{ $k }};{{ end }}",
            "a;b;empty;json;status;",
        ),
        ("{{ range $v := . }}{{ $v | len }},{{ end }}", "1,3,0,43,3,"),
        ("{{ range 3 }}{{ . }}{{ end }}", "012"),
        ("{{ range $i := 3 }}{{ $i }}{{ end }}", "012"),
        ("{{ range 0 }}x{{ else }}none{{ end }}", "none"),
        (
            "{{ range $i := 6 }}{{ if eq $i 3 }}{{ continue }}{{ end }}{{ if eq $i 5 }}{{ break }}{{ end }}{{ $i }}{{ end }}",
            "0124",
        ),
        (
            "{{ range (fromJson .json).k }}{{ . }},{{ end }}",
            "1,x,<no value>,true,",
        ),
        (
            "{{ range $i, $e := (fromJson .json).k }}{{ $i }}={{ $e }} {{ end }}",
            "0=1 1=x 2=<no value> 3=true ",
        ),
        (
            "{{ range $k, $v := (fromJson .json).m }}{{ $k }}:{{ $v }} {{ end }}",
            "y:w z:1 ",
        ),
        (
            "{{ range .missing2 }}{{ else }}empty{{ end }}",
            "PLACEHOLDER",
        ),
    ][..9]);
    ok(&[(
        "{{ $n := 0 }}{{ range $i := 4 }}{{ $n = $i }}{{ end }}{{ $n }}",
        "3",
    )]);
    err(&[
        (
            "{{ range .a }}x{{ end }}",
            r#"template: line:1:9: executing "line" at <.a>: range can't iterate over 1"#,
        ),
        (
            "{{ range $i, $e := 3 }}{{ end }}",
            r#"template: line:1:19: executing "line" at <3>: can't use 3 to iterate over more than one variable"#,
        ),
        (
            "{{ break }}",
            "PARSE: template: line:1: {{break}} outside {{range}}",
        ),
        (
            "{{ range 3 }}{{ define \"x\" }}{{ end }}{{ end }}",
            r#"PARSE: template: line:1: unexpected <define> in command"#,
        ),
    ]);
}

#[test]
fn templates_and_blocks() {
    ok(&[
        (
            r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" .a }}"#,
            "[1]",
        ),
        (
            r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" }}"#,
            "[<no value>]",
        ),
        (r#"{{ block "b" .b }}<{{ . }}>{{ end }}"#, "<two>"),
        (
            r#"{{ define "t" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template "t" "arg" }}"#,
            "arg",
        ),
        (r#"{{ define "line" }}redefined{{ end }}"#, "redefined"),
    ]);
    err(&[
        (
            r#"{{ template "nope" }}"#,
            r#"template: line:1:12: executing "line" at <{{template "nope"}}>: template "nope" not defined"#,
        ),
        (
            r#"{{ define "x" }}{{ .a.b }}{{ end }}{{ template "x" . }}"#,
            r#"template: line:1:21: executing "x" at <.a.b>: can't evaluate field b in type string"#,
        ),
        (
            r#"{{ define "r" }}{{ template "r" }}{{ end }}{{ template "r" }}"#,
            r#"template: line:1:28: executing "r" at <{{template "r"}}>: exceeded maximum template depth (200)"#,
        ),
    ]);
}

#[test]
fn comparisons() {
    ok(&[
        (
            r#"{{ eq .a "1" }} {{ ne .a "1" }} {{ eq .b "x" "two" }}"#,
            "true false true",
        ),
        (
            "{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2 1 }}",
            "true true false true",
        ),
        (r#"{{ lt "a" "b" }} {{ lt 1.5 2.5 }}"#, "true true"),
        (
            "{{ eq (int .status) 200 }} {{ eq (add 1 1) 2 }} {{ eq (index .a 0) 49 }}",
            "true true true",
        ),
        (r#"{{ eq .missing "" }}"#, "true"),
    ]);
    err(&[
        (
            "{{ eq .status 200 }}",
            r#"template: line:1:3: executing "line" at <eq .status 200>: error calling eq: incompatible types for comparison: string and int"#,
        ),
        (
            "{{ lt 1 2.5 }}",
            r#"template: line:1:3: executing "line" at <lt 1 2.5>: error calling lt: incompatible types for comparison: int and float64"#,
        ),
        (
            "{{ lt true false }}",
            r#"template: line:1:3: executing "line" at <lt true false>: error calling lt: invalid type for comparison"#,
        ),
        (
            "{{ eq 1 }}",
            r#"template: line:1:3: executing "line" at <eq 1>: error calling eq: missing argument for comparison"#,
        ),
    ]);
}

#[test]
fn logic_short_circuits() {
    ok(&[
        (
            "{{ and 1 0 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" }}",
            "0 2  x",
        ),
        // The second operand would fail if evaluated.
        ("{{ or .a (index . 1) }} {{ and .empty (index . 1) }}", "1 "),
        ("{{ .b | and 1 }} {{ .empty | or \"d\" }}", "two d"),
        ("{{ not 0 }} {{ not .a }}", "true false"),
    ]);
}

#[test]
fn builtins() {
    ok(&[
        (
            "{{ len .b }} {{ len . }} {{ len (fromJson .json).k }}",
            "3 5 4",
        ),
        (
            r#"{{ index . "b" }} {{ index . "nope" }}| {{ index .b 0 }} {{ index (fromJson .json) "k" 1 }}"#,
            "two | 116 x",
        ),
        (
            "{{ slice .b 1 }} {{ slice .b 0 2 }} {{ slice .b }} {{ slice (fromJson .json).k 1 2 }}",
            "wo tw two [x]",
        ),
        (
            r#"{{ print 1 2 "a" 3 "b" }}|{{ println "x" 1 }}|{{ printf "%05.1f" 3.14159 }}"#,
            "1 2a3b|x 1\n|003.1",
        ),
        (
            r#"{{ html "<a href='x'>&</a>" }} {{ js "it's \"q\"" }} {{ urlquery "a b&c" }}"#,
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; it\\'s \\\"q\\\" a+b%26c",
        ),
        ("{{ html .missing }} {{ html nil }}", " &lt;no value&gt;"),
    ]);
    err(&[
        (
            "{{ call .a }}",
            r#"template: line:1:3: executing "line" at <call .a>: error calling call: non-function .a of type string"#,
        ),
        (
            "{{ index .b 5 }}",
            r#"template: line:1:3: executing "line" at <index .b 5>: error calling index: index out of range: 5"#,
        ),
        (
            "{{ index . 1 }}",
            r#"template: line:1:3: executing "line" at <index . 1>: error calling index: value has type int; should be string"#,
        ),
        (
            "{{ slice .b 2 1 }}",
            r#"template: line:1:3: executing "line" at <slice .b 2 1>: error calling slice: invalid slice index: 2 > 1"#,
        ),
        (
            "{{ len 3 }}",
            r#"template: line:1:3: executing "line" at <len 3>: error calling len: len of type int"#,
        ),
    ]);
}

#[test]
fn argument_types_are_checked_like_go() {
    err(&[
        (
            r#"{{ repeat .a "x" }}"#,
            r#"template: line:1:10: executing "line" at <.a>: wrong type for value; expected int; got string"#,
        ),
        (
            r#"{{ trunc "3" .b }}"#,
            r#"template: line:1:9: executing "line" at <"3">: expected integer; found "3""#,
        ),
        (
            "{{ upper 3 }}",
            r#"template: line:1:9: executing "line" at <3>: expected string; found 3"#,
        ),
        (
            "{{ repeat 1.5 .b }}",
            r#"template: line:1:10: executing "line" at <1.5>: expected integer; found 1.5"#,
        ),
        (
            "{{ upper nil }}",
            r#"template: line:1:9: executing "line" at <nil>: cannot assign nil to string"#,
        ),
        // The context is the last node evaluated (Go's state.at), here the inner `2`.
        (
            "{{ upper (add 1 2) }}",
            r#"template: line:1:16: executing "line" at <2>: wrong type for value; expected string; got int64"#,
        ),
        (
            "{{ repeat (add 1 2) .b }}",
            r#"template: line:1:17: executing "line" at <2>: wrong type for value; expected int; got int64"#,
        ),
        (
            "{{ .b | repeat 2 3 }}",
            r#"template: line:1:8: executing "line" at <repeat>: wrong number of args for repeat: want 2 got 3"#,
        ),
        (
            "{{ round }}",
            r#"template: line:1:3: executing "line" at <round>: wrong number of args for round: want at least 2 got 0"#,
        ),
        (
            "{{ unixEpoch .a }}",
            r#"template: line:1:13: executing "line" at <.a>: wrong type for value; expected time.Time; got string"#,
        ),
    ]);
    // Untyped constants take the parameter's type.
    ok(&[(
        "{{ repeat 2 .b }} {{ round 2.555 2 }} {{ add 1 2.9 }} {{ trunc 1 .b }}",
        "twotwo 2.56 3 t",
    )]);
}

#[test]
fn parse_errors_like_go() {
    err(&[
        ("{{ .a", "PARSE: template: line:1: unclosed action"),
        (
            "{{ nope }}",
            r#"PARSE: template: line:1: function "nope" not defined"#,
        ),
        (
            "{{ env \"HOME\" }}",
            r#"PARSE: template: line:1: function "env" not defined"#,
        ),
        (
            "{{ .a | 1 }}",
            "PARSE: template: line:1: non executable command in pipeline stage 2",
        ),
        ("{{ end }}", "PARSE: template: line:1: unexpected {{end}}"),
        ("{{ else }}", "PARSE: template: line:1: unexpected {{else}}"),
        ("{{ if .a }}", "PARSE: template: line:1: unexpected EOF"),
        (
            "{{ if }}{{ end }}",
            "PARSE: template: line:1: missing value for if",
        ),
        (
            "{{ \"unterminated }}",
            "PARSE: template: line:1: unterminated quoted string",
        ),
        (
            "{{ 3x }}",
            "PARSE: template: line:1: bad number syntax: \"3x\"",
        ),
        ("{{ ( .a }}", "PARSE: template: line:1: unclosed left paren"),
        (
            "{{ .a ) }}",
            "PARSE: template: line:1: unexpected right paren",
        ),
        (
            "a\nb\n{{ .a | | }}",
            "PARSE: template: line:3: unexpected \"|\" in command",
        ),
        (
            "{{ 99999999999999999999 }}",
            "PARSE: template: line:1: integer overflow: \"99999999999999999999\"",
        ),
        (
            "{{ .a @ }}",
            "PARSE: template: line:1: unexpected \"@\" in operand",
        ),
    ]);
}

#[test]
fn execution_error_positions() {
    err(&[
        (
            "line one\n  {{ .a.b }}",
            r#"template: line:2:7: executing "line" at <.a.b>: can't evaluate field b in type string"#,
        ),
        (
            "{{ .b }}{{ .b | div 1 0 }}",
            r#"template: line:1:16: executing "line" at <div>: wrong number of args for div: want 2 got 3"#,
        ),
        (
            "{{ $x := 1 2 }}",
            r#"template: line:1:9: executing "line" at <1>: can't give argument to non-function 1"#,
        ),
        (
            "{{ div 1 0 }}",
            r#"template: line:1:3: executing "line" at <div 1 0>: error calling div: runtime error: integer divide by zero"#,
        ),
        (
            r#"{{ regexReplaceAll "(" .a "x" }}"#,
            r#"template: line:1:3: executing "line" at <regexReplaceAll "(" .a "x">: error calling regexReplaceAll: error parsing regexp: missing closing ): `(`"#,
        ),
    ]);
    // A template named "label" reports that name.
    let t = Template::parse_named("label", "{{ .a.b }}").unwrap();
    assert_eq!(
        t.execute(&data()).unwrap_err().message(),
        r#"template: label:1:5: executing "label" at <.a.b>: can't evaluate field b in type string"#
    );
}

#[test]
fn partial_output_and_buffer_reuse() {
    let t = Template::parse("{{ .a }}-{{ .b }}").unwrap();
    let mut buf = String::from("prefix:");
    t.execute_into(&data(), &mut buf).unwrap();
    assert_eq!(buf, "prefix:1-two");
    let t = Template::parse("ok {{ .a.b }}").unwrap();
    let mut buf = String::new();
    assert!(t.execute_into(&data(), &mut buf).is_err());
    assert_eq!(buf, "ok ", "Go writes what it produced before the error");
}

#[test]
fn simple_key_fast_path() {
    assert_eq!(Template::parse("{{.a}}").unwrap().simple_key(), Some("a"));
    assert_eq!(Template::parse("{{ .a }}").unwrap().simple_key(), Some("a"));
    assert_eq!(Template::parse("{{.a}} ").unwrap().simple_key(), None);
    assert_eq!(Template::parse("{{.a.b}}").unwrap().simple_key(), None);
    assert_eq!(
        Template::parse("{{.a | upper}}").unwrap().simple_key(),
        None
    );
    assert_eq!(run("{{.missing}}"), Ok(String::new()));
}
