//! Every query of the Loki conformance corpus (`test_data/conformance_queries.jsonl`, copied from
//! `shared/conformance/cases.jsonl`) is accepted or rejected exactly as the reference Loki did.
//!
//! A case whose answer was a 400 with a `parse error` body must be rejected by [`parse_expr`],
//! with Loki's message. Every other case (200, limits and parameter errors, pipeline errors found
//! while evaluating, 500s from vector matching) must parse.

use fjord_logql::parse_expr;

/// Queries whose error text knowingly differs from Loki's, with the reason. Empty: every
/// message in the corpus matches byte for byte.
const KNOWN_MESSAGE_DIFFERENCES: &[(&str, &str)] = &[];

#[test]
fn conformance_queries_parse_like_loki() {
    let data = include_str!("../test_data/conformance_queries.jsonl");
    let mut failures = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).expect("valid test data");
        let id = case["id"].as_str().unwrap_or("?");
        let query = case["query"].as_str().unwrap_or_default();
        let status = case["status"].as_u64().unwrap_or(0);
        let error = case["error"].as_str().unwrap_or("").trim_end_matches('\n');
        let result = parse_expr(query);
        if status == 400 && error.starts_with("parse error") {
            rejected += 1;
            match result {
                Ok(e) => failures.push(format!(
                    "{id}: Loki rejected {query:?} ({error}) but we parsed {e}"
                )),
                Err(e) => {
                    let known = KNOWN_MESSAGE_DIFFERENCES.iter().any(|(q, _)| *q == query);
                    if !known && e.to_string() != error {
                        failures.push(format!("{id}: {query:?}\n  loki: {error}\n  ours: {e}"));
                    }
                }
            }
        } else {
            accepted += 1;
            if let Err(e) = result {
                failures.push(format!(
                    "{id}: Loki accepted {query:?} (status {status}) but we rejected it: {e}"
                ));
            }
        }
    }
    assert!(
        accepted > 250 && rejected > 25,
        "test data looks truncated: {accepted} accepted, {rejected} rejected"
    );
    assert!(
        failures.is_empty(),
        "{} of {} conformance queries differ:\n{}",
        failures.len(),
        accepted + rejected,
        failures.join("\n")
    );
}
