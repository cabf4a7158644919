//! Field columns standing in for the parser of a metric query: for
//! `quantile_over_time(0.99, {app="api"} | logfmt | unwrap duration(duration) | __error__="" [5m]) by (path)`
//! each entry's `path` and `duration` are read from the block's columns
//! ([`fjord_chunk::FieldColumns`], a dictionary column for `path`, a text column for
//! `duration`) instead of parsing its line.
//!
//! A metric query's parser hints limit extraction to the names it needs (its grouping, the
//! unwrapped label and what its filters read), so what the pipeline leaves in an entry's
//! labels is the stream's labels plus, for each needed name the line yields, that value: the
//! same value the parser yields when it extracts everything, which is what the columns hold
//! (the hinted and the full parse keep the first of repeated names alike; a property test in
//! `stages` pins this for logfmt, and the field-columns invariant test compares whole answers).
//! That holds when:
//! - the pipeline is line filters (which read the line, still at hand) and then the parser the
//!   columns were built with, and nothing else: later stages could change labels or drop
//!   lines in ways the columns cannot tell;
//! - the parser is `| json` or `| logfmt` without flags or arguments;
//! - every needed name the parser yields in the block has a column, is not one of the reserved
//!   `__…` names, is not renamed by a stream label of the same name, and carries no parser hint
//!   filter (a hint filter runs while the parser runs and may drop the line there);
//! - the parser read the entry's line without error (a JSON syntax error sets `__error__`),
//!   and its structured metadata does not set the error. Metadata is added first, as the
//!   pipeline adds it; a parsed name it holds is renamed with `_extracted`, which the hints
//!   never need, so that name is not set.
//!
//! Entries outside this are left to the pipeline, one by one.

use fjord_chunk::{FieldColumn, FieldColumns, FieldParser, TextColumn};
use fjord_model::{Label, Labels};

use crate::labels_builder::{Category, EXTRACTED_SUFFIX, LabelsBuilder, metadata_sets_error};
use crate::stages::{Hints, Stage, line_filters_keep, start_labels};

/// Where a needed name's values are.
enum Column<'a> {
    Codes(&'a FieldColumn),
    Text(&'a TextColumn),
}

impl Column<'_> {
    fn value(&self, i: usize) -> Option<&str> {
        match self {
            Column::Codes(c) => c.value(i),
            Column::Text(c) => c.value(i),
        }
    }
}

/// Sets the parsed labels of a block's entries from its field columns, for one query.
pub struct ColumnLabels<'a> {
    /// The line filters ahead of the parser.
    line_filters: &'a [Stage],
    fields: &'a FieldColumns,
    /// The needed names the parser yields in this block, with their columns.
    read: Vec<(&'a str, Column<'a>)>,
}

impl<'a> ColumnLabels<'a> {
    /// Column labels for a metric query's `stages` under its parser `hints`, over a block of
    /// the stream `stream`; `None` when the columns cannot stand in for its parser there.
    pub fn new(
        stages: &'a [Stage],
        hints: &'a Hints,
        stream: &Labels,
        fields: &'a FieldColumns,
    ) -> Option<ColumnLabels<'a>> {
        let (parser, line_filters) = parser_stage(stages, hints)?;
        // A name with the rename suffix is set from another name's key when a stream label
        // renames it: left to the pipeline.
        if parser != fields.parser || hints.required.iter().any(|r| r.ends_with(EXTRACTED_SUFFIX)) {
            return None;
        }
        let mut read = Vec::new();
        for name in hints.required.iter().filter(|n| fields.has_name(n)) {
            let renamed = stream.contains(name);
            let filtered = hints.filters.iter().any(|(n, _)| n == name);
            if renamed || filtered || name.starts_with("__") {
                return None;
            }
            let column = match (fields.column(name), fields.text_column(name)) {
                (Some(c), _) => Column::Codes(c),
                (None, Some(c)) => Column::Text(c),
                (None, None) => return None,
            };
            read.push((name.as_str(), column));
        }
        Some(ColumnLabels {
            line_filters,
            fields,
            read,
        })
    }

    /// Group keys for the grouping `by (groups)` (empty for a grouping to no labels): `None`
    /// when a group name the block yields has no dictionary column, or more than 8 do.
    pub fn group_keys(&self, groups: &'a [String]) -> Option<GroupKeys<'a>> {
        let mut columns = Vec::new();
        for g in groups {
            match self.read.iter().find(|(name, _)| *name == g.as_str()) {
                Some((_, Column::Codes(c))) => columns.push(*c),
                Some((_, Column::Text(_))) => return None,
                None if self.fields.has_name(g) => return None,
                // Never yielded in this block.
                None => {}
            }
        }
        (columns.len() <= 8).then_some(GroupKeys { groups, columns })
    }

    /// Whether column labels could serve a query with these `stages` and parser `hints`
    /// (in blocks whose columns hold the names it needs).
    pub fn could_serve(stages: &[Stage], hints: &Hints) -> bool {
        parser_stage(stages, hints).is_some()
    }

    /// Starts entry `i` (its `line`, its structured `metadata`) in `lbs` as the pipeline
    /// would: `Some(true)` with the labels set when it keeps the entry, `Some(false)` when a
    /// line filter drops it, `None` when the columns cannot tell (run the pipeline).
    pub fn start_entry(
        &self,
        i: usize,
        line: &[u8],
        metadata: &[Label],
        lbs: &mut LabelsBuilder,
    ) -> Option<bool> {
        if !self.fields.parsed.get(i).copied().unwrap_or(false) || metadata_sets_error(metadata) {
            return None;
        }
        if !line_filters_keep(self.line_filters, line) {
            return Some(false);
        }
        start_labels(lbs, metadata);
        for (name, column) in &self.read {
            // Metadata of the same name renames the parsed label, and the hints need no
            // renamed names.
            if lbs.has_in(name, Category::StructuredMetadata) {
                continue;
            }
            if let Some(v) = column.value(i) {
                lbs.set(Category::Parsed, name, v);
            }
        }
        Some(true)
    }
}

/// An entry's group key under a `by (…)` grouping, from the codes of the block's dictionary
/// columns of the group names ([`ColumnLabels::group_keys`]).
pub struct GroupKeys<'a> {
    groups: &'a [String],
    columns: Vec<&'a FieldColumn>,
}

impl GroupKeys<'_> {
    /// Entry `i`'s key, when its labels were set by [`ColumnLabels::start_entry`] and its
    /// structured `metadata` holds no group name: entries of one block with the same key have
    /// the same group labels then (each group's value is its column's value, or the stream's,
    /// or absent). `None`: the key does not tell.
    pub fn key(&self, i: usize, metadata: &[Label]) -> Option<u64> {
        if metadata
            .iter()
            .any(|l| self.groups.iter().any(|g| *g == l.name))
        {
            return None;
        }
        let mut key = 0u64;
        for c in &self.columns {
            key = key << 8 | u64::from(*c.codes.get(i)?);
        }
        Some(key)
    }
}

/// For a pipeline of line filters and then `| json` or `| logfmt` without flags or arguments,
/// under hints that limit extraction to some names: the parser whose columns can stand in for
/// it, and the line filters.
fn parser_stage<'a>(stages: &'a [Stage], hints: &Hints) -> Option<(FieldParser, &'a [Stage])> {
    let (parser, line_filters) = stages.split_last()?;
    if hints.no_labels
        || hints.required.is_empty()
        || !line_filters
            .iter()
            .all(|s| matches!(s, Stage::LineFilter(_)))
    {
        return None;
    }
    let parser = match parser {
        Stage::Json => FieldParser::Json,
        Stage::Logfmt {
            strict: false,
            keep_empty: false,
        } => FieldParser::Logfmt,
        _ => return None,
    };
    Some((parser, line_filters))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field_columns::query_columns;
    use crate::stages::run_pipeline;
    use fjord_chunk::{BlockBuilder, DecodedBlock};
    use std::sync::Arc;

    /// logfmt lines with repeated, empty, quoted and reserved keys, numbers and durations of
    /// many values, and lines of other formats.
    fn logfmt_block(with_reserved: bool) -> DecodedBlock {
        let mut b = BlockBuilder::new();
        let mut ts = 0;
        for i in 0..400 {
            ts += 1;
            let line = match i % 8 {
                0 => format!("level=info path=/a duration={i}.5ms bytes={i}"),
                1 => format!("level=error path=/b duration={i}ms path=/c bytes={}", i * 3),
                2 => format!("path= path=\"/q x\" duration={}s", i % 7),
                3 => format!(
                    "msg=\"no duration\" trace=t{i} level=warn path=/a app=other bytes={i}KB"
                ),
                4 => "plain text without pairs".to_string(),
                5 if with_reserved => format!("__error__=boom duration={i}ms"),
                5 => format!("duration={i}ms duration=1s"),
                6 => format!("duration={i}us level=info path=/a"),
                _ => format!("level=debug path=/b duration={i}h bytes={i}"),
            };
            let md = match i % 50 {
                0 => vec![Label::new("path", "meta")],
                1 => vec![Label::new("__error__", "meta")],
                2..=20 => vec![Label::new("detected_level", "info")],
                _ => Vec::new(),
            };
            b.push(ts, line.as_bytes(), &md);
        }
        let mut d = b.to_decoded();
        d.fields = query_columns(&d).map(Arc::new);
        d
    }

    fn hints(stages: &[Stage], groups: &[&str], label: &str, post: &[&str]) -> Hints {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        Hints::new(
            post.iter().map(|p| p.to_string()).collect(),
            &groups,
            false,
            false,
            Some(label),
            stages,
            None,
        )
    }

    /// Wherever the columns tell, they set exactly the labels the pipeline sets.
    #[test]
    fn column_labels_agree_with_the_pipeline() {
        let block = logfmt_block(false);
        let fields = block.fields.as_deref().expect("logfmt columns");
        assert_eq!(fields.parser, FieldParser::Logfmt);
        assert!(fields.text_column("duration").is_some() && fields.column("path").is_some());
        let mut decided = 0;
        for (selector, groups, label) in [
            (r#"{app="api"} | logfmt"#, &["path"][..], "duration"),
            (
                r#"{app="api"} |= "ms" | logfmt"#,
                &["path", "level"][..],
                "bytes",
            ),
            (r#"{app="api"} | logfmt"#, &["level"][..], "duration"),
            (
                r#"{app="api"} != "error" | logfmt"#,
                &["level", "path"][..],
                "bytes",
            ),
        ] {
            let sel = fjord_logql::parse_log_selector(selector).unwrap();
            let stages = crate::compile::pipeline(&sel).unwrap();
            let hints = hints(&stages, groups, label, &["__error__"]);
            let stream = Arc::new(Labels::from_pairs([("app", "api")]));
            let columns = ColumnLabels::new(&stages, &hints, &stream, fields)
                .unwrap_or_else(|| panic!("{selector}: {:?} {:?}", hints.required, fields.names));
            let mut pipeline_hints = hints.clone();
            let mut want = LabelsBuilder::new(Arc::clone(&stream));
            let mut got = LabelsBuilder::new(Arc::clone(&stream));
            for i in 0..block.len() {
                let (line, md) = (block.line(i), block.metadata(i));
                let kept = run_pipeline(&stages, 0, line, md, &mut want, &mut pipeline_hints, true);
                let Some(keep) = columns.start_entry(i, line, md, &mut got) else {
                    continue;
                };
                decided += 1;
                assert_eq!(keep, kept.is_some(), "{selector}: {:?}", block.line(i));
                if keep {
                    assert_eq!(got.result().all, want.result().all, "{selector}: line {i}");
                }
            }
        }
        assert!(decided > 1000, "{decided}");
    }

    #[test]
    fn columns_decline_what_they_cannot_tell() {
        let block = logfmt_block(true);
        let fields = block.fields.as_deref().unwrap();
        let try_new = |selector: &str, groups: &[&str], stream: &[(&str, &str)]| {
            let sel = fjord_logql::parse_log_selector(selector).unwrap();
            let stages = crate::compile::pipeline(&sel).unwrap();
            let hints = hints(&stages, groups, "duration", &[]);
            let stream = Labels::from_pairs(stream.iter().copied());
            ColumnLabels::new(&stages, &hints, &stream, fields).is_some()
        };
        let api = [("app", "api")];
        assert!(try_new(r#"{app="api"} | logfmt"#, &["path"], &api));
        // Another parser, flags, or a stage after the parser.
        assert!(!try_new(r#"{app="api"} | json"#, &["path"], &api));
        assert!(!try_new(
            r#"{app="api"} | logfmt --strict"#,
            &["path"],
            &api
        ));
        assert!(!try_new(
            r#"{app="api"} | logfmt | level="info""#,
            &["path"],
            &api
        ));
        // A stream label renames a needed name; a name with the rename suffix.
        assert!(!try_new(
            r#"{app="api"} | logfmt"#,
            &["path"],
            &[("path", "x")]
        ));
        assert!(!try_new(
            r#"{app="api"} | logfmt"#,
            &["app_extracted"],
            &api
        ));
        // A reserved name the lines yield.
        assert!(!try_new(r#"{app="api"} | logfmt"#, &["__error__"], &api));
        // `trace` has values too varied for a dictionary, and not numbers.
        assert!(!try_new(r#"{app="api"} | logfmt"#, &["trace"], &api));
    }
}
