//! Resource bounds: the deepest templates the limits admit run on a 1 MiB thread stack (a debug
//! build, whose frames are the largest), and output-building functions refuse sizes that would
//! exhaust memory. Go's own limits are far higher because its stacks grow; Fjord answers with
//! Go's error messages instead of overflowing.

use fjord_template::{MapData, Template};

fn on_small_stack(src: String) -> Result<String, String> {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let t = Template::parse(&src).map_err(|e| e.to_string())?;
            t.execute(&MapData::new([("a", "1")]))
                .map_err(|e| e.to_string())
        })
        .expect("thread")
        .join()
        .expect("no stack overflow")
}

#[test]
fn deepest_admitted_templates_fit_a_small_stack() {
    let ifs = format!("{}x{}", "{{if 1}}".repeat(100), "{{end}}".repeat(100));
    assert_eq!(on_small_stack(ifs), Ok("x".into()));
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(100), ")".repeat(100));
    assert_eq!(on_small_stack(parens), Ok("1".into()));
    let else_ifs = format!("{{{{if 0}}}}{}x{{{{end}}}}", "{{else if 0}}".repeat(99));
    assert_eq!(on_small_stack(else_ifs), Ok(String::new()));
    let ranges = format!(
        "{}{{{{.}}}}{}",
        "{{range 1}}".repeat(100),
        "{{end}}".repeat(100)
    );
    assert_eq!(on_small_stack(ranges), Ok("0".into()));
}

#[test]
fn runaway_recursion_stops_with_gos_error() {
    let rec = r#"{{ define "r" }}{{ if 1 }}{{ with 1 }}{{ template "r" (print (print .)) }}{{ end }}{{ end }}{{ end }}{{ template "r" 1 }}"#;
    let e = on_small_stack(rec.to_string()).unwrap_err();
    assert!(e.contains("exceeded maximum template depth (200)"), "{e}");
    let nested = format!("{}x{}", "{{if 1}}".repeat(101), "{{end}}".repeat(101));
    assert_eq!(
        on_small_stack(nested),
        Err("template: line:1: max expression depth exceeded".into())
    );
}

#[test]
fn huge_outputs_are_refused() {
    for src in [
        r#"{{ repeat 100000000 "x" }}"#,
        r#"{{ alignLeft 100000000 "x" }}"#,
        r#"{{ indent 100000000 "x" }}"#,
    ] {
        let e = Template::parse(src)
            .unwrap()
            .execute(&MapData::default())
            .unwrap_err();
        assert!(e.message().contains("error calling"), "{src}: {e}");
    }
}
