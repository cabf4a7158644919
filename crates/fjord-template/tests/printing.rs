//! How values print: an action prints its value as Go's `fmt.Fprint` does, and `printf`
//! follows Go's verbs and flags. These rules decide whether Fjord's lines equal Loki's.

use fjord_template::{MapData, Template};

fn run(src: &str) -> String {
    let d = MapData::new([("s", "text"), ("n", "5"), ("x", "3000000")])
        .with_timestamp(1_705_312_800_000_000_000);
    let t = Template::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    t.execute(&d).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn action_printing() {
    let cases = [
        // ints: Go int and int64 print alike
        ("{{ 42 }} {{ add 1 2 }} {{ -0 }} {{ len .s }}", "42 3 0 4"),
        // float64 %v is strconv 'g' with the shortest repr
        (
            "{{ 1.0 }} {{ 0.5 }} {{ 1e6 }} {{ 123456.0 }} {{ 1234567.0 }} {{ 0.0001 }} {{ 0.00001 }}",
            "1 0.5 1e+06 123456 1.234567e+06 0.0001 1e-05",
        ),
        (
            "{{ float64 .x }} {{ float64 \"1e21\" }} {{ float64 \"-0\" }} {{ float64 \"1e-320\" }}",
            "3e+06 1e+21 -0 1e-320",
        ),
        (
            "{{ divf 1 3 }} {{ mulf 0.1 3 }} {{ float64 \"Inf\" }} {{ float64 \"-inf\" }}",
            "0.3333333333333333 0.3 +Inf -Inf",
        ),
        // bools, strings, bytes from indexing
        (
            "{{ true }} {{ hasPrefix \"t\" .s }} {{ index .s 0 }}",
            "true true 116",
        ),
        // nothing: a nil interface prints <no value>; missing labels are ""
        (
            "[{{ .missing }}] [{{ fromJson \"null\" }}] [{{ (fromJson \"{}\").k }}]",
            "[] [<no value>] [<no value>]",
        ),
        // maps and lists print like fmt: sorted keys, nil as <nil>
        (
            "{{ fromJson `{\"b\":[1,\"x\",null],\"a\":{\"c\":true}}` }}",
            "map[a:map[c:true] b:[1 x <nil>]]",
        ),
        ("{{ . }}", "map[n:5 s:text x:3000000]"),
        // time values print with String()
        (
            "{{ __timestamp__ }} {{ unixToTime \"1705312800123\" }}",
            "2024-01-15 10:00:00 +0000 UTC 2024-01-15 10:00:00.123 +0000 UTC",
        ),
        (
            "{{ (unixToTime \"1705312800\").Sub (unixToTime \"1705309199\") }} {{ __timestamp__.Month }}",
            "1h0m1s January",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(run(src), want, "{src}");
    }
}

#[test]
fn print_functions() {
    let cases = [
        (r#"{{ print "a" "b" 1 2 "c" }}"#, "ab1 2c"),
        (r#"{{ print nil 1 }}"#, "<nil> 1"),
        (r#"{{ println "a" 1 true }}"#, "a 1 true\n"),
        (
            r#"{{ printf "%s|%5s|%-5s|%.2s" .s .n .n .s }}"#,
            "text|    5|5    |te",
        ),
        (
            r#"{{ printf "%d %5d %-4d| %03d %+d %x %X %o %b %c %q %U" 1 2 3 4 5 255 255 8 5 65 66 67 }}"#,
            "1     2 3   | 004 +5 ff FF 10 101 A 'B' U+0043",
        ),
        (
            r#"{{ printf "%f %.2f %8.3f %e %E %g %G" 3.5 3.14159 2.5 1234.5678 0.000123 100000.0 1e-7 }}"#,
            "3.500000 3.14    2.500 1.234568e+03 1.230000E-04 100000 1E-07",
        ),
        (
            r#"{{ printf "%v %v %v %v" 1 1.5 "s" true }}"#,
            "1 1.5 s true",
        ),
        (
            r#"{{ printf "%T %T %T %T %T %T" 1 1.5 "s" true (add 1 1) __timestamp__ }}"#,
            "int float64 string bool int64 time.Time",
        ),
        (
            r#"{{ printf "%q %x %X % x %#x" .s .s .s .s .s }}"#,
            "\"text\" 74657874 74657874 74 65 78 74 0x74657874",
        ),
        (
            r#"{{ printf "%d" .s }} {{ printf "%s" 5 }} {{ printf "%d" 1.5 }} {{ printf "%t" 1 }}"#,
            "%!d(string=text) %!s(int=5) %!d(float64=1.5) %!t(int=1)",
        ),
        (
            r#"{{ printf "%d %d" 1 }} {{ printf "%d" 1 2 }} {{ printf "%z" 1 }}"#,
            "1 %!d(MISSING) 1%!(EXTRA int=2) %!z(int=1)",
        ),
        (
            r#"{{ printf "%[2]s %[1]s" "a" "b" }} {{ printf "%*d" 4 7 }} {{ printf "%.*f" 1 2.25 }}"#,
            "b a    7 2.2",
        ),
        (
            r#"{{ printf "%v|%s|%d" __timestamp__.Month __timestamp__.Month __timestamp__.Month }}"#,
            "January|January|1",
        ),
        (
            r#"{{ printf "%v" (fromJson "[1,{\"a\":null}]") }}"#,
            "[1 map[a:<nil>]]",
        ),
        (
            r#"{{ printf "100%%" }} {{ printf "%" }}"#,
            "100% %!(NOVERB)",
        ),
        (
            r#"{{ printf "%6.2f|%-8.3e|%+.1e" -1.5 12345.678 0.0 }}"#,
            " -1.50|1.235e+04|+0.0e+00",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(run(src), want, "{src}");
    }
}
