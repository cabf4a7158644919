//! Field columns in queries: building them (for the compactor, [`json_columns`], and for the
//! block cache, [`query_columns`], which adds text columns and `| logfmt` columns), and using
//! them to drop lines of `| json | <label filter>` log and metric queries without parsing the
//! lines. ([`crate::column_labels`] uses them to stand in for a metric query's parser.)
//!
//! The compactor stores, per block, which lines `| json` reads without error and, for names
//! with few distinct values, the value each such line yields ([`fjord_chunk::FieldColumns`]).
//! A [`ColumnFilter`] drops a line only where the pipeline certainly drops it, and leaves every
//! other line to the pipeline as before, so answers are the same with or without columns.
//! Where it knows a line passes, the pipeline need not probe the line first, and when nothing
//! after the filters can drop a line, a log query need not run the pipeline on it at all until
//! it is among the results.
//!
//! Why a drop is exact, for a line the parser read without error and whose names no stream
//! label or metadata renames (anything else is left to the pipeline; a block whose lines may
//! yield a stream label's name is used only if that name has a column, to tell those lines):
//! - While `| json` parses, each single-label filter of the query (a parser hint) runs the
//!   moment its label is extracted, and drops the line if it fails. A hint reads its own label
//!   and the error state; the only error that can arise before it runs is another hint's failed
//!   conversion. So: if no hint whose label the line has sets an error, each hint sees its
//!   column value and no error, and the line is dropped iff one of them fails; if one does set
//!   an error the line is left to the pipeline.
//! - The label filters right after `| json` then see the stream labels, the metadata and the
//!   parsed labels, and no error; each reads only names that are columns (values known) or
//!   that the parser never yields in this block (absent). They run in order, as in the pipeline.
//! - A metric query's hints may limit extraction to the labels it needs; the walk then skips
//!   objects no needed name starts with and stops once all are found, which extracts exactly
//!   the needed names' values. So only those are taken from the columns, and only their hints
//!   run.
//!
//! The same reasoning says when a line certainly passes: no hint fails and the filters after
//! `| json` keep it.
//!
//! The decision depends only on the codes of the columns read and the metadata labels read, so
//! it is computed once per distinct combination in a block.

use std::collections::HashMap;
use std::sync::Arc;

use fjord_chunk::{DecodedBlock, FieldColumn, FieldColumns, FieldColumnsBuilder, FieldParser};
use fjord_model::{Label, Labels};

use crate::labels_builder::{Category, EXTRACTED_SUFFIX, LabelsBuilder, metadata_sets_error};
use crate::metric::convert;
use crate::stages::{Hints, LabelFilter, Stage, json_fields, logfmt_fields};

/// Most columns one decision reads (their codes are packed into one `u64`).
const MAX_NAMES_READ: usize = 8;

/// The `| json` field columns the compactor stores with a block (dictionary columns only);
/// `None` when no line is a JSON object.
pub fn json_columns(block: &DecodedBlock) -> Option<FieldColumns> {
    json_columns_from(block, FieldColumnsBuilder::new(FieldParser::Json))
}

/// The field columns the block cache builds for a block queries read, text columns included:
/// `| json`'s when some line is a JSON object, else `| logfmt`'s when at least half the lines
/// hold a `key=value` pair; `None` otherwise.
pub fn query_columns(block: &DecodedBlock) -> Option<FieldColumns> {
    let json = FieldColumnsBuilder::new(FieldParser::Json).with_text_columns(unwrappable);
    json_columns_from(block, json).or_else(|| logfmt_columns(block))
}

fn json_columns_from(
    block: &DecodedBlock,
    mut columns: FieldColumnsBuilder,
) -> Option<FieldColumns> {
    let mut lbs = LabelsBuilder::new(Arc::new(Labels::default()));
    for i in 0..block.len() {
        columns.push(json_fields(block.line(i), &mut lbs));
    }
    columns.finish()
}

fn logfmt_columns(block: &DecodedBlock) -> Option<FieldColumns> {
    let mut lbs = LabelsBuilder::new(Arc::new(Labels::default()));
    let mut hints = Hints::none();
    let mut columns = FieldColumnsBuilder::new(FieldParser::Logfmt).with_text_columns(unwrappable);
    let mut with_pairs = 0;
    for i in 0..block.len() {
        let labels = logfmt_fields(block.line(i), &mut lbs, &mut hints);
        with_pairs += usize::from(!labels.is_empty());
        columns.push(Some(labels));
    }
    // Lines of other formats yield few pairs; their columns would serve no query.
    if with_pairs * 2 < block.len() {
        return None;
    }
    columns.finish()
}

/// Whether `| unwrap` reads `v` as a number, a duration or a byte size: the values worth a
/// text column ([`fjord_chunk::TextColumn`]).
fn unwrappable(v: &str) -> bool {
    use fjord_logql::ast::UnwrapConversion;
    [
        None,
        Some(UnwrapConversion::Duration),
        Some(UnwrapConversion::Bytes),
    ]
    .into_iter()
    .any(|conversion| convert(conversion, v).is_ok())
}

/// Whether `| json` field columns could decide lines of a query with these `stages` and parser
/// `hints` (in blocks whose columns hold the names it reads).
pub fn json_columns_could_decide(stages: &[Stage], hints: &Hints) -> bool {
    json_filter_shape(stages, hints).is_some()
}

/// For a query of the shape the columns serve (line filters, `| json`, label filters, then
/// stages that cannot drop a line or others): the label filters right after `| json`, and
/// whether no stage after them can drop a line. `None` for any other shape, or when there is
/// no label filter for the columns to decide.
fn json_filter_shape<'a>(
    stages: &'a [Stage],
    hints: &Hints,
) -> Option<(Vec<&'a LabelFilter>, bool)> {
    if hints.no_labels {
        return None;
    }
    let mut rest = stages
        .iter()
        .skip_while(|s| matches!(s, Stage::LineFilter(_)));
    if !matches!(rest.next(), Some(Stage::Json)) {
        return None;
    }
    let mut rest = rest.peekable();
    let mut leading: Vec<&LabelFilter> = Vec::new();
    while let Some(Stage::LabelFilter(f)) = rest.peek() {
        leading.push(f);
        rest.next();
    }
    let rest_keeps_all = rest.all(|s| {
        matches!(
            s,
            Stage::LineFormat(_)
                | Stage::LabelFormat(_)
                | Stage::Decolorize(_)
                | Stage::Drop(_)
                | Stage::Keep(_)
        )
    });
    if leading.is_empty() && hints.filters.is_empty() {
        return None;
    }
    Some((leading, rest_keeps_all))
}

/// A metadata set by address and length (neighbouring entries share one allocation).
type MetadataSetId = (usize, usize);

/// What the columns say about one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The pipeline drops it.
    Drop,
    /// `| json` and the label filters right after it keep it (and the pipeline's probe would
    /// too).
    Pass,
    /// The columns cannot tell: run the pipeline.
    Unknown,
}

/// Drops lines of one block for one query from the block's field columns.
pub struct ColumnFilter<'a> {
    fields: &'a FieldColumns,
    /// Columns of names a stream label renames.
    renamed: Vec<&'a FieldColumn>,
    /// Every name the filters read, ascending.
    names_read: Vec<String>,
    /// Columns of the names read; the other names read are never parsed in this block.
    read: Vec<&'a FieldColumn>,
    /// The query's single-label hints whose names are columns.
    hints: Vec<(&'a FieldColumn, &'a LabelFilter)>,
    /// The label filters right after `| json`.
    leading: Vec<&'a LabelFilter>,
    lbs: LabelsBuilder,
    /// (packed codes, metadata labels read) -> verdict.
    decided: HashMap<(u64, Vec<Label>), Verdict>,
    /// Whether no stage after the leading label filters can drop a line.
    rest_keeps_all: bool,
    /// The last metadata set seen (its address and length) and what it gives: `None` when
    /// it leaves lines to the pipeline, else its labels the filters read. Neighbouring
    /// entries share one set, so this is mostly a pointer comparison.
    last_metadata: Option<(MetadataSetId, Option<Vec<Label>>)>,
}

impl<'a> ColumnFilter<'a> {
    /// A filter for a query's `stages`, under its parser `hints`, over a block of the stream
    /// `stream`; `None` when the columns cannot decide anything for it.
    pub fn new(
        stages: &'a [Stage],
        hints: &'a Hints,
        stream: &Arc<Labels>,
        fields: &'a FieldColumns,
    ) -> Option<ColumnFilter<'a>> {
        if fields.parser != FieldParser::Json {
            return None;
        }
        let (leading, rest_keeps_all) = json_filter_shape(stages, hints)?;
        // A stream label renames the parsed label of the same name: lines that yield it are
        // left to the pipeline, which needs a column to tell which lines those are.
        let mut renamed = Vec::new();
        for name in fields.names.iter().filter(|n| stream.contains(n)) {
            renamed.push(fields.column(name)?);
        }
        let mut names: Vec<String> = hints.filters.iter().map(|(n, _)| n.clone()).collect();
        for f in &leading {
            f.required_names(&mut names);
        }
        names.sort();
        names.dedup();
        let mut read = Vec::with_capacity(names.len());
        for name in names.iter().filter(|n| fields.has_name(n)) {
            // A name the parser yields but with too many values for a column: undecidable.
            let column = fields.column(name)?;
            // A label the query's parser hints leave out stays absent, whatever the line holds.
            if hints.should_extract(name) {
                read.push(column);
            }
        }
        if read.len() > MAX_NAMES_READ {
            return None;
        }
        let hints = hints
            .filters
            .iter()
            .filter(|(n, _)| hints.should_extract(n))
            .filter_map(|(n, f)| fields.column(n).map(|c| (c, f)))
            .collect();
        Some(ColumnFilter {
            fields,
            renamed,
            names_read: names,
            read,
            hints,
            leading,
            lbs: LabelsBuilder::new(Arc::clone(stream)),
            decided: HashMap::new(),
            rest_keeps_all,
            last_metadata: None,
        })
    }

    /// Whether every line the columns [`Verdict::Pass`] also passes the whole pipeline.
    pub fn pass_is_final(&self) -> bool {
        self.rest_keeps_all
    }

    /// What the columns say about entry `i` (with structured metadata `metadata`).
    pub fn verdict(&mut self, i: usize, metadata: &[Label]) -> Verdict {
        if !self.fields.parsed.get(i).copied().unwrap_or(false)
            || self.renamed.iter().any(|c| c.codes[i] != 0)
        {
            return Verdict::Unknown;
        }
        let set = (metadata.as_ptr() as usize, metadata.len());
        let metadata_read = match &self.last_metadata {
            Some((last, read)) if *last == set => read.clone(),
            _ => {
                let read = self.metadata_read(metadata);
                self.last_metadata = Some((set, read.clone()));
                read
            }
        };
        let Some(metadata_read) = metadata_read else {
            return Verdict::Unknown;
        };
        let mut codes = 0u64;
        for c in &self.read {
            codes = codes << 8 | u64::from(c.codes[i]);
        }
        let key = (codes, metadata_read);
        if let Some(&verdict) = self.decided.get(&key) {
            return verdict;
        }
        let verdict = self.decide(i, metadata);
        self.decided.insert(key, verdict);
        verdict
    }

    /// The metadata labels the filters read (under the names they take), or `None` when the
    /// metadata sets the error or renames a parsed label: then the pipeline must decide.
    fn metadata_read(&self, metadata: &[Label]) -> Option<Vec<Label>> {
        if metadata_sets_error(metadata) {
            return None;
        }
        let mut read = Vec::new();
        for l in metadata {
            let name = if self.lbs.base_has(&l.name) {
                std::borrow::Cow::Owned(format!("{}{EXTRACTED_SUFFIX}", l.name))
            } else {
                std::borrow::Cow::Borrowed(l.name.as_str())
            };
            if self.fields.has_name(&name) {
                return None;
            }
            if self
                .names_read
                .binary_search_by(|n| n.as_str().cmp(&name))
                .is_ok()
            {
                read.push(Label::new(name, l.value.as_str()));
            }
        }
        Some(read)
    }

    fn decide(&mut self, i: usize, metadata: &[Label]) -> Verdict {
        let lbs = &mut self.lbs;
        lbs.reset();
        if !metadata.is_empty() {
            lbs.add(Category::StructuredMetadata, metadata);
        }
        for c in &self.read {
            if let Some(v) = c.value(i) {
                lbs.set(Category::Parsed, &c.name, v);
            }
        }
        let mut hinted_out = false;
        for (column, filter) in &self.hints {
            if column.value(i).is_none() {
                continue; // not extracted from this line: the hint never runs
            }
            let pass = filter.process(lbs);
            if lbs.has_err() {
                return Verdict::Unknown;
            }
            hinted_out |= !pass;
        }
        if hinted_out || !self.leading.iter().all(|f| f.process(lbs)) {
            Verdict::Drop
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::run_pipeline;
    use fjord_chunk::BlockBuilder;

    /// The pipeline tests' edge cases and more: duplicate keys, keys to sanitise, nulls and
    /// arrays, a metadata-named key, non-objects and other formats.
    fn lines() -> Vec<&'static str> {
        let mut lines = crate::stages::tests::JSON_EDGE_LINES.to_vec();
        lines.extend([
            r#"{"level":"error","level":"info","http":{"status":500,"status":200}}"#,
            r#"{" 1st key":"v","a b":{"c-d":true},"n":null,"arr":[1,2],"ms":"x1"}"#,
            r#"{"level":"warn","ms":"15","http":{"status":404},"detected_level":"warn"}"#,
            r#"{"level":"error","ms":"abc","http":{"status":502}}"#,
            r#"{}"#,
            r#"["not", "an", "object"]"#,
            "level=error status=500",
            "",
        ]);
        lines
    }

    const QUERIES: &[&str] = &[
        r#"{app="api"} | json | http_status >= 500"#,
        r#"{app="api"} | json | http_status >= 500 | line_format "{{.http_method}} {{.http_status}}""#,
        r#"{app="api"} | json | http_status = "200""#,
        r#"{app="api"} | json | http_status >= 500 | ms > 10"#,
        r#"{app="api"} | json | ms > 10 | http_status >= 500"#,
        r#"{app="api"} | json | level > 5 | http_status >= 500"#,
        r#"{app="api"} | json | level = "error" | keep level, app"#,
        r#"{app="api"} | json | level =~ "err.*" or http_status < 300 | drop ms"#,
        r#"{app="api"} | json | app_extracted = "x" | line_format "{{.http_status}}""#,
        r#"{app="api"} | json | detected_level = "error""#,
        r#"{app="api"} | json | detected_level_extracted = "warn""#,
        r#"{app="api"} | json | __error__ = "" | http_status < 300"#,
        r#"{app="api"} | json | __error__ != "" "#,
        r#"{app="api"} |= "http" | json | http_status != 200 or level = "warn""#,
        r#"{app="api"} | json | trace_id =~ "t.*""#,
        r#"{app="api"} | json | id = "7""#,
        r#"{app="api"} | json | http_status >= 500 | label_format lvl="{{.level}}" | lvl = "error""#,
        r#"{app="api"} | json | http_status >= 500 |= "error""#,
        r#"{app="api"} | json | a_b_c_d = "true" | _1st_key = "v""#,
    ];

    /// Every line of [`LINES`] under each metadata set, plus enough distinct `id`s that `id`
    /// gets no column.
    fn block() -> DecodedBlock {
        let metadata_sets: [&[Label]; 5] = [
            &[],
            &[Label::new("detected_level", "error")],
            &[Label::new("__error__", "boom")],
            &[Label::new("http_status", "999")],
            &[Label::new("app", "meta")],
        ];
        let mut b = BlockBuilder::new();
        let mut ts = 0;
        for md in metadata_sets {
            for line in lines() {
                ts += 1;
                b.push(ts, line.as_bytes(), md);
            }
        }
        for id in 0..300 {
            ts += 1;
            b.push(
                ts,
                format!(r#"{{"id":"{id}","level":"info"}}"#).as_bytes(),
                &[],
            );
        }
        let mut d = b.to_decoded();
        d.fields = json_columns(&d).map(Arc::new);
        d
    }

    fn result(out: Option<std::borrow::Cow<'_, [u8]>>, lbs: &LabelsBuilder) -> Option<String> {
        out.map(|l| format!("{} {}", String::from_utf8_lossy(&l), lbs.result().all))
    }

    /// The parser hints of a log query (or an ungrouped metric one), of `sum(…)` and of
    /// `sum by (level) (…)` over these stages.
    fn hint_modes(stages: &[Stage]) -> [Hints; 3] {
        let mut required = Vec::new();
        for s in stages {
            s.required_names(&mut required);
        }
        [
            Hints::new(Vec::new(), &[], false, false, None, stages, None),
            Hints::new(required.clone(), &[], false, true, None, stages, None),
            Hints::new(
                required,
                &["level".into()],
                false,
                false,
                None,
                stages,
                None,
            ),
        ]
    }

    /// The central property: a drop is a pipeline drop; a pass is a pipeline pass (through
    /// the end when `pass_is_final`), and skipping the probe changes nothing; under every kind
    /// of parser hints.
    #[test]
    fn verdicts_agree_with_the_pipeline_on_every_line() {
        let block = block();
        let fields = block.fields.as_deref().unwrap();
        assert!(fields.column("http_status").is_some() && fields.column("id").is_none());
        assert!(fields.has_name("id") && !fields.parsed[10] && fields.parsed[0]);
        let (mut drops, mut passes) = (0, 0);
        let queries = QUERIES.iter().flat_map(|q| {
            let sel = fjord_logql::parse_log_selector(q).unwrap();
            let stages = crate::compile::pipeline(&sel).unwrap();
            hint_modes(&stages).map(|h| (q, stages.clone(), h))
        });
        for (q, stages, hints) in queries {
            let stream = Arc::new(Labels::from_pairs([("app", "api")]));
            let Some(mut filter) = ColumnFilter::new(&stages, &hints, &stream, fields) else {
                continue;
            };
            let mut lbs = LabelsBuilder::new(Arc::clone(&stream));
            let mut hints = hints.clone();
            for i in 0..block.len() {
                let (line, md) = (block.line(i), block.metadata(i));
                let want = result(
                    run_pipeline(&stages, 0, line, md, &mut lbs, &mut hints, true),
                    &lbs,
                );
                let text = String::from_utf8_lossy(line);
                match filter.verdict(i, md) {
                    Verdict::Drop => {
                        drops += 1;
                        assert_eq!(want, None, "{q}: dropped {text} with {md:?}");
                    }
                    Verdict::Pass => {
                        passes += 1;
                        let unprobed = result(
                            run_pipeline(&stages, 0, line, md, &mut lbs, &mut hints, false),
                            &lbs,
                        );
                        assert_eq!(unprobed, want, "{q}: {text} with {md:?}");
                        if filter.pass_is_final() {
                            assert!(want.is_some(), "{q}: passed {text} with {md:?}");
                        }
                    }
                    Verdict::Unknown => {}
                }
            }
        }
        assert!(
            drops > 3000 && passes > 150,
            "{drops} drops, {passes} passes"
        );
    }

    #[test]
    fn columns_decline_what_they_cannot_decide() {
        let block = block();
        let fields = block.fields.as_deref().unwrap();
        let filter_for = |q: &str, stream: &[(&str, &str)]| {
            let sel = fjord_logql::parse_log_selector(q).unwrap();
            let stages = crate::compile::pipeline(&sel).unwrap();
            let hints = Hints::new(Vec::new(), &[], false, false, None, &stages, None);
            let stream = Arc::new(Labels::from_pairs(stream.iter().copied()));
            ColumnFilter::new(&stages, &hints, &stream, fields).is_some()
        };
        let api = [("app", "api")];
        assert!(filter_for(
            r#"{app="api"} | json | http_status >= 500"#,
            &api
        ));
        // A name the parser yields with too many values for a column.
        assert!(!filter_for(r#"{app="api"} | json | id = "7""#, &api));
        // A stream label renames a parsed name without a column (with one, `app` above, the
        // lines that yield it are left to the pipeline one by one).
        assert!(!filter_for(
            r#"{app="api"} | json | http_status >= 500"#,
            &[("app", "api"), ("id", "x")]
        ));
        // No `| json` first, or nothing to filter on.
        assert!(!filter_for(r#"{app="api"} | logfmt | status >= 500"#, &api));
        assert!(!filter_for(r#"{app="api"} | json"#, &api));
        assert!(!filter_for(
            r#"{app="api"} | line_format "x" | json | level = "x""#,
            &api
        ));
    }
}
