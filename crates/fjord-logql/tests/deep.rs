//! Deeply nested and very long queries: the parser never overflows the stack.
//!
//! Loki's table-driven parser has no nesting limit; a recursive-descent parser needs one, so
//! Fjord rejects queries nesting deeper than its limit (far beyond what people write) instead
//! of crashing. The printers recurse over the tree, so the limit also bounds their depth; the
//! tests run on 2 MiB threads (Tokio's default worker stack) to prove both are safe.

fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}

#[test]
fn deep_parentheses_are_rejected_not_crashing() {
    on_small_stack(|| {
        let q = format!("{}1{}", "(".repeat(60_000), ")".repeat(60_000));
        let err = fjord_logql::parse_expr(&q).unwrap_err();
        assert_eq!(err.to_string(), "parse error : expression nests too deeply");
    });
}

#[test]
fn long_chains_within_the_limit_parse_and_print() {
    on_small_stack(|| {
        let cases = [
            ("vector(1)", " + ", 400),
            ("vector(1)", " ^ ", 90),
            ("a=\"b\"", " or ", 400),
            ("a=\"b\"", " ", 400),
            ("a=\"b\"", ", ", 400),
            ("vector(1)", " and ", 400),
        ];
        for (unit, sep, n) in cases {
            let body = vec![unit; n].join(sep);
            let q = if unit.starts_with('a') {
                format!("{{app=\"x\"}} | {body}")
            } else {
                body
            };
            let e = fjord_logql::parse_expr(&q).unwrap_or_else(|e| panic!("{sep:?}: {e}"));
            let printed = e.to_string();
            let pretty = fjord_logql::pretty(&e);
            assert!(printed.len() > n && pretty.len() > n);
            drop(e);
        }
    });
}

#[test]
fn nesting_just_below_the_limit_works() {
    on_small_stack(|| {
        for (open, close) in [
            ("sum(", ")"),
            ("(", ")"),
            ("label_replace(", ", \"a\", \"b\", \"c\", \"d\")"),
        ] {
            let q = format!("{}vector(1){}", open.repeat(95), close.repeat(95));
            let e = fjord_logql::parse_expr(&q).unwrap_or_else(|e| panic!("{open}: {e}"));
            assert!(!fjord_logql::pretty(&e).is_empty() && !e.to_string().is_empty());
        }
    });
}

#[test]
fn chains_past_the_limit_are_rejected() {
    on_small_stack(|| {
        let q = vec!["vector(1)"; 5_000].join(" + ");
        assert!(fjord_logql::parse_expr(&q).is_err());
        let q = vec!["vector(1)"; 5_000].join(" ^ ");
        assert!(fjord_logql::parse_expr(&q).is_err());
        let q = format!("{}vector(1){}", "sum(".repeat(5_000), ")".repeat(5_000));
        assert!(fjord_logql::parse_expr(&q).is_err());
        let q = format!(
            "{{app=\"x\"}} | {}a=\"b\"{}",
            "(".repeat(5_000),
            ")".repeat(5_000)
        );
        assert!(fjord_logql::parse_expr(&q).is_err());
        let q = format!("{{app=\"x\"}} | {}", vec!["a=\"b\""; 5_000].join(" or "));
        assert!(fjord_logql::parse_expr(&q).is_err());
    });
}
