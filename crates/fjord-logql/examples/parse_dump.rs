//! Development tool: reads JSON-encoded query strings (one per line) from stdin and prints, per
//! query, a JSON object with the parse result — `ok`, `str` (one-line form), `pretty`, `err`
//! (syntax-level error) and `stage` (pipeline-check error) — the same shape as the Loki
//! reference dump used to compare behaviour.

use std::io::{BufRead, Write};

fn main() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(q) = serde_json::from_str::<String>(&line) else {
            continue;
        };
        let mut obj = serde_json::Map::new();
        obj.insert("q".into(), q.clone().into());
        match fjord_logql::parse_expr_syntax(&q) {
            Ok(e) => {
                obj.insert("ok".into(), true.into());
                obj.insert("str".into(), e.to_string().into());
                obj.insert("pretty".into(), fjord_logql::pretty(&e).into());
                if let Err(err) = fjord_logql::validate::validate_stages(&e) {
                    obj.insert("stage".into(), err.to_string().into());
                }
            }
            Err(err) => {
                obj.insert("ok".into(), false.into());
                obj.insert("err".into(), err.to_string().into());
            }
        }
        let _ = writeln!(out, "{}", serde_json::Value::Object(obj));
    }
}
