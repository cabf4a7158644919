//! Metric queries: range aggregations over log selectors, vector aggregations, binary
//! operations, literals, `vector()` and `label_replace`, evaluated at every step of the query.
//!
//! Every sub-expression evaluates to a [`Steps`] value: for each evaluation time, an instant
//! vector. Range aggregations first turn matching entries into samples (one per entry that
//! passes the pipeline: 1, the line length, or an unwrapped label value) grouped into series by
//! their label sets, then evaluate each window `(t − range − offset, t − offset]`. The
//! semantics (grouping pushed down from `sum`, parser hints, pipeline-error detection, label
//! handling of aggregations and vector matching) follow Loki's evaluator.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use fjord_logql::ast::{self, BinOpKind, Cardinality, SampleExpr, VectorOp};
use fjord_model::memory_budget::{MemoryBudget, OverBudget, WorkBudget};
use fjord_model::{LabelMatcher, Labels, MatchOp};
use rayon::prelude::*;

use crate::column_labels::ColumnLabels;
use crate::compile;
use crate::field_columns::{ColumnFilter, Verdict, json_columns_could_decide};
use crate::labels_builder::{Category, ERROR_LABEL, EXTRACTED_SUFFIX, LabelsBuilder};
use crate::logquery::stable_hash;
use crate::range_fns::{self, RangeOp};
use crate::read_slices;
use crate::scan::{self, StreamData, Unit, entry_range};
use crate::series_slots::{Refusal, SeriesSlots};
use crate::stages::{
    ERR_SAMPLE_EXTRACTION, Hints, LabelFilter, NamedMatcher, PRESERVE_ERROR_LABEL, Stage,
    run_pipeline,
};
use crate::step_totals::{self, GroupKeyMemo, SeriesTotals, SlotMemo, WindowCursor, Windows};
use crate::{DataSource, EngineError, QueryStats, blocking};

/// One instant vector per evaluation time.
#[derive(Debug, Clone, Default)]
pub struct Steps {
    /// Evaluation times (ns).
    pub times: Vec<i64>,
    pub vectors: Vec<Vec<(Labels, f64)>>,
}

/// The same answer series by series, sorted by labels: each series with its values at the steps
/// (indexes into `times`) where it has one. A range aggregation answers this way, so a query
/// whose result is its range aggregation's series is answered without a labelled sample per
/// step.
#[derive(Debug, Clone, Default)]
pub struct SeriesSteps {
    /// Evaluation times (ns).
    pub times: Vec<i64>,
    pub series: Vec<(Labels, Vec<(usize, f64)>)>,
}

impl SeriesSteps {
    /// The same answer step by step, each series in label order.
    fn into_steps(self) -> Steps {
        let mut vectors = vec![Vec::new(); self.times.len()];
        for (labels, points) in self.series {
            for (i, v) in points {
                vectors[i].push((labels.clone(), v));
            }
        }
        Steps {
            times: self.times,
            vectors,
        }
    }

    /// Gathers the series of a step-by-step answer, refusing it as Loki does once it has more
    /// than `max_series` (0: no limit) after some step.
    fn from_steps(steps: Steps, max_series: usize) -> Result<Self, EngineError> {
        let mut series: BTreeMap<Labels, Vec<(usize, f64)>> = BTreeMap::new();
        for (i, vec) in steps.vectors.into_iter().enumerate() {
            for (labels, v) in vec {
                series.entry(labels).or_default().push((i, v));
            }
            if max_series > 0 && series.len() > max_series {
                return Err(crate::query::series_limit_error(max_series));
            }
        }
        Ok(SeriesSteps {
            times: steps.times,
            series: series.into_iter().collect(),
        })
    }

    fn has_error_series(&self) -> bool {
        self.series.iter().any(|(l, _)| l.contains(ERROR_LABEL))
    }
}

/// The evaluation times of a query.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub start: i64,
    pub end: i64,
    /// ≥ 1 ns (an instant query uses 1).
    pub step: i64,
}

impl Timing {
    pub fn times(&self) -> Vec<i64> {
        let mut v = Vec::new();
        let mut t = self.start;
        while t <= self.end {
            v.push(t);
            match t.checked_add(self.step) {
                Some(n) => t = n,
                None => break,
            }
        }
        v
    }
}

/// Limits applied while evaluating.
#[derive(Debug, Clone, Copy)]
pub struct MetricLimits {
    pub max_series: usize,
    /// Longest `[range]`, ns; 0 for no limit.
    pub max_range: i64,
    /// Most values (series × steps) a range aggregation may hold: see [`MAX_VALUES`].
    pub max_values: usize,
    /// Whether the expression's one range aggregation makes its result's series
    /// ([`range_is_result`]), so that holding too many of them is Loki's series limit.
    pub range_is_result: bool,
}

/// Whether the series of `e`'s range aggregation are the series of its result: `e` is a range
/// aggregation, or a `sum` evaluated inside one (see [`eval`]).
pub fn range_is_result(e: &SampleExpr) -> bool {
    match e {
        SampleExpr::RangeAggregation(_) => true,
        SampleExpr::VectorAggregation(v) => sum_pushed_into(v).is_some(),
        _ => false,
    }
}

/// The range aggregation a `sum` is evaluated inside of, grouping its series as it goes.
fn sum_pushed_into(v: &ast::VectorAggregation) -> Option<&ast::RangeAggregation> {
    match &*v.inner {
        SampleExpr::RangeAggregation(r)
            if v.op == VectorOp::Sum && r.grouping.is_none() && can_inject(r.op) =>
        {
            Some(r)
        }
        _ => None,
    }
}

/// The default of [`MetricLimits::max_values`]. A range aggregation holds a value per series
/// per step while it is evaluated (16 bytes of totals, and then a labelled sample), so a
/// pipeline that extracts a label from every line (`| regexp "(?P<l>.*)"`) would otherwise
/// take memory in proportion to lines × steps: one such query over 1.3 M lines at a 1 s step
/// took a server past 24 GB. 8 M values are Loki's most a query may answer (500 series at 11,000
/// steps) with room to spare, 8,000 series at 1,000 steps; past them the query is refused.
pub const MAX_VALUES: usize = 8 << 20;

/// The bounds on the series a range aggregation may hold (see [`crate::series_slots`]), and
/// its refusal of a query past them.
#[derive(Debug, Clone)]
struct SeriesCap {
    max: usize,
    too_many: EngineError,
    memory: WorkBudget,
}

impl SeriesCap {
    /// The cap of a range aggregation `op` over `steps` steps `step` apart with `[range]`,
    /// whose series are charged to `memory`.
    fn new(
        limits: &MetricLimits,
        op: RangeOp,
        (steps, step): (usize, i64),
        range: i64,
        memory: WorkBudget,
    ) -> Self {
        let steps = steps.max(1);
        let by_values = (limits.max_values / steps).max(1);
        if limits.range_is_result && limits.max_series > 0 && by_values >= limits.max_series {
            // The range aggregation's series are the result's, so past `by_values` of them
            // the result is past Loki's limit too: say it as Loki does. When the windows leave
            // no gaps, every series held has a value at some step, and the query is refused as
            // soon as it holds more than the limit.
            let each_series_answers = op != RangeOp::Absent && step <= range;
            return SeriesCap {
                max: if each_series_answers {
                    limits.max_series
                } else {
                    by_values
                },
                too_many: crate::query::series_limit_error(limits.max_series),
                memory,
            };
        }
        SeriesCap {
            max: by_values,
            too_many: EngineError::BadRequest(format!(
                "maximum number of values ({}) held for a single query reached: more than {by_values} series at {steps} steps; consider reducing query cardinality by adding more specific stream selectors, using a larger step, or aggregating results with functions like sum() by (...)",
                limits.max_values
            )),
            memory,
        }
    }

    /// Series slots within the cap, each series charged `value_bytes` besides its key.
    fn slots<T>(&self, value_bytes: usize) -> SeriesSlots<T> {
        SeriesSlots::new(self.max, self.memory.reservation(), value_bytes)
    }

    /// Per-step totals within the cap.
    fn totals(&self, steps: usize) -> SeriesTotals {
        SeriesTotals::new(steps, self.max, self.memory.reservation())
    }

    /// The query's refusal once a series was refused a slot.
    fn check(&self, refusal: Option<Refusal>) -> Result<(), EngineError> {
        match refusal {
            None => Ok(()),
            Some(Refusal::TooMany) => Err(self.too_many.clone()),
            Some(Refusal::OverBudget(e)) => Err(series_memory_error(e)),
        }
    }
}

/// The refusal of a query whose series found no room on the series memory budget: 400 when
/// the query alone needs more than all of it, 429 when queries in flight hold it.
fn series_memory_error(e: OverBudget) -> EngineError {
    let advice = "consider reducing query cardinality by adding more specific stream selectors, using a larger step, or aggregating results with functions like sum() by (...)";
    match e {
        OverBudget::Never { limit, .. } => EngineError::BadRequest(format!(
            "the series this query holds while it is evaluated need more than the {limit} bytes all queries' series may hold (querier.max_inflight_series_bytes); {advice}"
        )),
        OverBudget::Busy { free, limit, .. } => EngineError::Busy(format!(
            "queries in flight hold the memory their series may use: {free} of {limit} bytes are free (querier.max_inflight_series_bytes); try again later, or {advice}"
        )),
    }
}

/// How a range aggregation groups its samples.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupSpec {
    /// Every label of the entry.
    All,
    /// No labels at all.
    NoLabels,
    By(Vec<String>),
    Without(Vec<String>),
}

impl GroupSpec {
    fn from_grouping(g: &ast::Grouping) -> GroupSpec {
        if g.is_singleton() {
            GroupSpec::NoLabels
        } else if g.without {
            GroupSpec::Without(sorted(&g.labels))
        } else {
            GroupSpec::By(sorted(&g.labels))
        }
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// Loki's `GroupedLabels`: the series key of a sample.
fn grouped_labels(lbs: &LabelsBuilder, spec: &GroupSpec) -> Labels {
    if lbs.has_err() {
        return lbs.result().all;
    }
    match spec {
        GroupSpec::NoLabels => Labels::empty(),
        GroupSpec::All => lbs.result().all,
        GroupSpec::By(g) => lbs.grouped(g, false),
        GroupSpec::Without(g) => lbs.grouped(g, true),
    }
}

/// What a range aggregation extracts from each entry.
enum Extract {
    Count,
    Bytes,
    Unwrap {
        label: String,
        conversion: Option<ast::UnwrapConversion>,
        post: Option<LabelFilter>,
    },
}

struct RangePlan {
    stages: Vec<Stage>,
    extract: Extract,
    spec: GroupSpec,
    hints: Hints,
    skip_clauses: Vec<Vec<Vec<u8>>>,
    /// For a pipeline of `| drop` stages alone, the names they drop ([`dropped_names`]).
    dropped: Option<Vec<String>>,
}

/// The label names a pipeline of `| drop` stages alone names (`| drop __error__`, which
/// Grafana adds to its logs-volume query); `None` for any other pipeline, or none. Without a
/// parser an entry's labels are its stream's and its structured metadata (which alone can set
/// `__error__`), so such a pipeline leaves an entry that has none of these names as it is, and
/// its count or bytes need no pipeline ([`total_stream`]).
fn dropped_names(stages: &[Stage]) -> Option<Vec<String>> {
    if stages.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for stage in stages {
        let Stage::Drop(terms) = stage else {
            return None;
        };
        names.extend(terms.iter().map(|t| match t {
            NamedMatcher::Name(n) => n.clone(),
            NamedMatcher::Matcher(m) => m.name.clone(),
        }));
    }
    Some(names)
}

/// `| unwrap`'s reading of a label value under a conversion (none: a plain number).
pub(crate) fn convert(conv: Option<ast::UnwrapConversion>, v: &str) -> Result<f64, String> {
    use fjord_logql::units::{parse_bytes, parse_go_duration, parse_go_float};
    match conv {
        None => parse_go_float(v).map_err(|e| e.to_string()),
        Some(ast::UnwrapConversion::Bytes) => parse_bytes(v).map(|b| b as f64),
        Some(ast::UnwrapConversion::Duration | ast::UnwrapConversion::DurationSeconds) => {
            parse_go_duration(v).map(|ns| ns as f64 / 1e9)
        }
    }
}

/// Builds the extraction plan of a range aggregation, with the grouping pushed down from an
/// enclosing `sum` when Loki would do so.
fn range_plan(
    r: &ast::RangeAggregation,
    injected: Option<&ast::Grouping>,
) -> Result<RangePlan, EngineError> {
    let stages = compile::pipeline(&r.range.selector)?;
    let grouping = r.grouping.as_ref().or(injected);
    let (mut spec, mut no_labels) = match grouping {
        Some(g) => {
            let s = GroupSpec::from_grouping(g);
            let nl = s == GroupSpec::NoLabels;
            (s, nl)
        }
        None => (GroupSpec::All, false),
    };
    if r.op == ast::RangeOp::AbsentOverTime {
        no_labels = true;
    }
    let mut required = Vec::new();
    for s in &stages {
        s.required_names(&mut required);
    }
    let (extract, hints) = match &r.range.unwrap {
        Some(u) => {
            let post = match u.post_filters.as_slice() {
                [] => None,
                fs => {
                    let mut it = fs.iter();
                    let mut acc = compile::label_filter(
                        it.next()
                            .ok_or_else(|| EngineError::Execution("empty filter list".into()))?,
                    )?;
                    for f in it {
                        acc = LabelFilter::And(Box::new(acc), Box::new(compile::label_filter(f)?));
                    }
                    Some(acc)
                }
            };
            if let Some(p) = &post {
                p.required_names(&mut required);
            }
            // Without grouping (or with `without`), the unwrapped label leaves the series labels.
            let (groups, without) = match &spec {
                GroupSpec::By(g) => (g.clone(), false),
                GroupSpec::Without(g) => (g.clone(), true),
                GroupSpec::All | GroupSpec::NoLabels => (Vec::new(), true),
            };
            let (groups, without) = if groups.is_empty() || without {
                let mut g = groups;
                g.push(u.label.clone());
                g.sort();
                (g, true)
            } else {
                (groups, without)
            };
            let hints = Hints::new(
                required,
                &groups,
                without,
                no_labels,
                Some(&u.label),
                &stages,
                post.as_ref(),
            );
            if !no_labels {
                spec = if without {
                    GroupSpec::Without(groups)
                } else {
                    GroupSpec::By(groups)
                };
            }
            (
                Extract::Unwrap {
                    label: u.label.clone(),
                    conversion: u.conversion,
                    post,
                },
                hints,
            )
        }
        None => {
            let extract = match r.op {
                ast::RangeOp::BytesOverTime | ast::RangeOp::BytesRate => Extract::Bytes,
                _ => Extract::Count,
            };
            let (groups, without) = match &spec {
                GroupSpec::By(g) => (g.clone(), false),
                GroupSpec::Without(g) => (g.clone(), true),
                _ => (Vec::new(), false),
            };
            (
                extract,
                Hints::new(required, &groups, without, no_labels, None, &stages, None),
            )
        }
    };
    if no_labels {
        spec = GroupSpec::NoLabels;
    }
    let skip_clauses = compile::skippable_literals(&stages);
    let dropped = match extract {
        Extract::Count | Extract::Bytes => dropped_names(&stages),
        Extract::Unwrap { .. } => None,
    };
    Ok(RangePlan {
        stages,
        extract,
        spec,
        hints,
        skip_clauses,
        dropped,
    })
}

/// One series' samples: (time, stream hash, value).
type Samples = Vec<(i64, u64, f64)>;
/// Samples of every series, time-ordered.
type SeriesSamples = SeriesSlots<Samples>;
/// What one sample is charged on the series budget.
const SAMPLE_BYTES: u64 = std::mem::size_of::<(i64, u64, f64)>() as u64;

/// Most group keys [`pipeline_unit`] remembers the slots of in one block.
const MAX_KEYS_PER_BLOCK: usize = 64;

/// Runs the entries of one unit in `(lo, hi]` through the pipeline and the extraction, calling
/// `emit(labels, ts, value, slot)` for every entry that yields a sample. `emit` returns the
/// series slot it put the sample in; `slot` is that slot when an earlier entry of the unit had
/// the same group key by the block's field columns (entries with an error keep all their
/// labels, so their `slot` is not to be used).
#[allow(clippy::too_many_arguments)]
fn pipeline_unit(
    plan: &RangePlan,
    unit: &Unit,
    lo: i64,
    hi: i64,
    lbs: &mut LabelsBuilder,
    hints: &mut Hints,
    stats: &mut QueryStats,
    mut emit: impl FnMut(&LabelsBuilder, i64, f64, Option<usize>) -> usize,
) -> Result<(), EngineError> {
    let meta = unit.meta();
    let block = unit.decode()?;
    stats.decompressed_bytes += meta.raw_bytes;
    let mut columns = block
        .fields
        .as_deref()
        .and_then(|f| ColumnFilter::new(&plan.stages, &plan.hints, lbs.shared_base(), f));
    let column_labels = block
        .fields
        .as_deref()
        .and_then(|f| ColumnLabels::new(&plan.stages, &plan.hints, lbs.base(), f));
    // Columns the block lacks are built in the background for the next query (only once with
    // text columns: a block whose columns still cannot serve it is not asked again).
    let could_serve = || ColumnLabels::could_serve(&plan.stages, &plan.hints);
    let want_columns = match block.fields.as_deref() {
        None => json_columns_could_decide(&plan.stages, &plan.hints) || could_serve(),
        Some(f) => column_labels.is_none() && !f.with_texts && could_serve(),
    };
    if want_columns {
        unit.want_field_columns(&block);
    }
    let groups: Option<&[String]> = match &plan.spec {
        GroupSpec::By(groups) => Some(groups),
        GroupSpec::NoLabels => Some(&[]),
        GroupSpec::All | GroupSpec::Without(_) => None,
    };
    let group_keys = column_labels
        .as_ref()
        .zip(groups)
        .and_then(|(c, groups)| c.group_keys(groups));
    // (group key, slot) of the keys met in this block: a block holds few.
    let mut slot_of_key: Vec<(u64, usize)> = Vec::new();
    // (lo, hi] as a half-open index range.
    let range = entry_range(&block.ts, lo.saturating_add(1), hi.saturating_add(1));
    let mut metadata_of = block.metadata_cursor();
    for i in range {
        let ts = block.ts[i];
        let line = block.line(i);
        stats.lines_processed += 1;
        stats.bytes_processed += line.len() as u64;
        let metadata = metadata_of.get(i);
        let verdict = columns
            .as_mut()
            .map_or(Verdict::Unknown, |c| c.verdict(i, metadata));
        if verdict == Verdict::Drop {
            continue;
        }
        let probe = verdict == Verdict::Unknown;
        let from_columns = column_labels
            .as_ref()
            .and_then(|c| c.start_entry(i, line, metadata, lbs));
        let kept = match from_columns {
            Some(keep) => keep.then_some(Cow::Borrowed(line)),
            None => run_pipeline(&plan.stages, ts, line, metadata, lbs, hints, probe),
        };
        let Some(cur) = kept else {
            continue;
        };
        let key = group_keys
            .as_ref()
            .filter(|_| from_columns.is_some())
            .and_then(|k| k.key(i, metadata));
        let value = match &plan.extract {
            Extract::Count => 1.0,
            Extract::Bytes => cur.len() as f64,
            Extract::Unwrap {
                label,
                conversion,
                post,
            } => {
                let converted = match lbs.get(label) {
                    Some(v) if !v.is_empty() => convert(*conversion, v),
                    _ => continue,
                };
                let v = match converted {
                    Ok(v) => v,
                    Err(e) => {
                        lbs.set_err(ERR_SAMPLE_EXTRACTION);
                        lbs.set_err_details(&e);
                        0.0
                    }
                };
                if let Some(p) = post
                    && !p.process(lbs)
                {
                    continue;
                }
                v
            }
        };
        stats.post_filter_lines += 1;
        let known = key.and_then(|k| slot_of_key.iter().find(|(key, _)| *key == k));
        let known = known.map(|&(_, slot)| slot);
        let slot = emit(lbs, ts, value, known);
        if let Some(k) = key
            && known.is_none()
            && !lbs.has_err()
            && slot_of_key.len() < MAX_KEYS_PER_BLOCK
        {
            slot_of_key.push((k, slot));
        }
    }
    Ok(())
}

/// Whether a unit may hold entries in `(lo, hi]` that pass the plan's literal filters; counts
/// the units skipped by their trigram filter.
fn unit_in_play(plan: &RangePlan, unit: &Unit, lo: i64, hi: i64, stats: &mut QueryStats) -> bool {
    let meta = unit.meta();
    if meta.max_ts <= lo || meta.min_ts > hi {
        return false;
    }
    if !unit.may_match(&plan.skip_clauses) {
        stats.blocks_skipped += 1;
        return false;
    }
    true
}

/// The streams of `matchers` with their blocks holding entries in `[from, to)`, ready to scan.
async fn select_slice(
    source: &dyn DataSource,
    matchers: &[LabelMatcher],
    plan: &RangePlan,
    from: i64,
    to: i64,
) -> Result<Vec<StreamData>, EngineError> {
    let selected = source
        .select(matchers, from, to, &plan.skip_clauses)
        .await?;
    let cache = source.block_cache();
    selected
        .into_iter()
        .map(|s| scan::prepare(s, from, to, cache.as_ref()))
        .collect()
}

/// Turns one stream's entries in `(lo, hi]` into samples.
fn extract_stream(
    plan: &RangePlan,
    stream: &StreamData,
    lo: i64,
    hi: i64,
    cap: &SeriesCap,
    out: &mut SeriesSamples,
    stats: &mut QueryStats,
) -> Result<(), EngineError> {
    let mut lbs = LabelsBuilder::new(stream.labels.clone());
    let mut hints = plan.hints.clone();
    let hash = stable_hash(&stream.labels);
    // The stream's series by slot, found through the group-key memo where it applies.
    let mut series: SeriesSamples = cap.slots(0);
    let mut by_memo = GroupKeyMemo::default();
    for unit in &stream.units {
        cap.check(series.refusal())?;
        if !unit_in_play(plan, unit, lo, hi, stats) {
            continue;
        }
        let mut samples = 0u64;
        pipeline_unit(
            plan,
            unit,
            lo,
            hi,
            &mut lbs,
            &mut hints,
            stats,
            |lbs, ts, value, known| {
                let slot = known.filter(|_| !lbs.has_err()).unwrap_or_else(|| {
                    series_slot(&mut by_memo, &plan.spec, lbs, || {
                        series.slot(&grouped_labels(lbs, &plan.spec), Vec::new)
                    })
                });
                series.at(slot).push((ts, hash, value));
                samples += 1;
                slot
            },
        )?;
        // Charged a block at a time: one budget update per block, not per line.
        series.charge_values(samples * SAMPLE_BYTES);
    }
    out.merge(series, |a, mut b| a.append(&mut b));
    cap.check(out.refusal())
}

/// An entry's series slot: through the group-key memo under a `by (…)` grouping (an entry
/// with an error keeps all its labels, so it is left out), else `find` from its labels.
fn series_slot(
    memo: &mut GroupKeyMemo,
    spec: &GroupSpec,
    lbs: &LabelsBuilder,
    find: impl FnOnce() -> usize,
) -> usize {
    match spec {
        GroupSpec::By(groups) if !lbs.has_err() => {
            memo.slot(groups.iter().map(|g| lbs.grouped_value(g)), find)
        }
        _ => find(),
    }
}

/// Adds one stream's entries in `(lo, hi]` to per-step totals (for the additive range
/// operations).
fn total_stream(
    plan: &RangePlan,
    stream: &StreamData,
    windows: &Windows,
    (lo, hi): (i64, i64),
    out: &mut SeriesTotals,
    stats: &mut QueryStats,
) -> Result<(), EngineError> {
    let mut lbs = LabelsBuilder::new(stream.labels.clone());
    let mut hints = plan.hints.clone();
    // The stream's own series, made when an entry in (lo, hi] first needs it: a series is
    // held only for entries that count.
    let stream_key = grouped_labels(&lbs, &plan.spec);
    let mut stream_slot = None;
    let mut stream_slot =
        |out: &mut SeriesTotals| *stream_slot.get_or_insert_with(|| out.slot(&stream_key));
    let mut memo = SlotMemo::default();
    let mut by_memo = GroupKeyMemo::default();
    let mut cursor = WindowCursor::new(windows);
    let drops_stream_labels = plan
        .dropped
        .as_ref()
        .is_some_and(|names| names.iter().any(|n| stream.labels.get(n).is_some()));
    for unit in &stream.units {
        if out.refusal().is_some() {
            return Ok(()); // the caller refuses the query
        }
        if !unit_in_play(plan, unit, lo, hi, stats) {
            continue;
        }
        let changes_nothing = match &plan.dropped {
            Some(names) => !drops_stream_labels && !has_metadata_named(unit, names)?,
            None => plan.stages.is_empty(),
        };
        if !changes_nothing {
            pipeline_unit(
                plan,
                unit,
                lo,
                hi,
                &mut lbs,
                &mut hints,
                stats,
                |lbs, ts, value, known| {
                    let slot = match known.filter(|_| !lbs.has_err()) {
                        Some(slot) => slot,
                        None if lbs.is_unchanged() => stream_slot(out),
                        None => series_slot(&mut by_memo, &plan.spec, lbs, || {
                            out.slot(&grouped_labels(lbs, &plan.spec))
                        }),
                    };
                    out.at(slot).add_entry(&mut cursor, ts, value as u64);
                    slot
                },
            )?;
            continue;
        }
        // No pipeline (or one that changes nothing here): line lengths, timestamps and
        // metadata are all that matter.
        let meta = unit.meta();
        stats.lines_processed += u64::from(meta.count);
        stats.bytes_processed += meta.raw_bytes;
        if !metadata_may_change_key(unit, &plan.spec)? {
            // A unit all in (lo, hi] counts whole where it lies within windows; one reaching
            // past it (into another slice) counts by its entries.
            let within = lo < meta.min_ts && meta.max_ts <= hi;
            let covering = windows.covering(meta.min_ts, meta.max_ts);
            if within && covering == windows.touching(meta.min_ts, meta.max_ts) {
                if !covering.is_empty() {
                    let slot = stream_slot(out);
                    out.at(slot)
                        .add_span(covering, u64::from(meta.count), meta.raw_bytes);
                }
                continue;
            }
            let index = unit.decode_index()?;
            let range = entry_range(&index.ts, lo.saturating_add(1), hi.saturating_add(1));
            if !range.is_empty() {
                let slot = stream_slot(out);
                let (ts, lens) = (&index.ts[range.clone()], &index.lens[range]);
                out.at(slot).add_sorted(&mut cursor, ts, lens);
            }
            continue;
        }
        let metadata = unit.decode_metadata()?;
        let index = unit.decode_index()?;
        let mut next_md = metadata.iter().peekable();
        for (i, (&ts, &len)) in index.ts.iter().zip(&index.lens).enumerate() {
            let md = next_md.next_if(|(at, _)| *at as usize == i);
            if ts <= lo || ts > hi {
                continue;
            }
            let slot = match md {
                Some((_, md)) => memo.slot(md, out, || {
                    lbs.reset();
                    lbs.add(Category::StructuredMetadata, md);
                    grouped_labels(&lbs, &plan.spec)
                }),
                None => stream_slot(out),
            };
            out.at(slot).add_entry(&mut cursor, ts, u64::from(len));
        }
    }
    Ok(())
}

/// Whether some entry of `unit` has structured metadata under one of `names`.
fn has_metadata_named(unit: &Unit, names: &[String]) -> Result<bool, EngineError> {
    if unit.meta().metadata_bytes == 0 {
        return Ok(false);
    }
    Ok(unit.metadata_names()?.iter().any(|n| names.contains(n)))
}

/// Whether an entry's structured metadata can make its series key differ from its stream's
/// (it becomes labels of the sample, unless the grouping leaves it out).
fn metadata_may_change_key(unit: &Unit, spec: &GroupSpec) -> Result<bool, EngineError> {
    if unit.meta().metadata_bytes == 0 {
        return Ok(false);
    }
    Ok(match spec {
        GroupSpec::NoLabels => false,
        GroupSpec::By(groups) => unit.metadata_names()?.iter().any(|n| {
            groups
                .iter()
                .any(|g| g == n || g.strip_suffix(EXTRACTED_SUFFIX) == Some(n.as_str()))
        }),
        GroupSpec::All | GroupSpec::Without(_) => true,
    })
}

fn range_op(r: &ast::RangeAggregation) -> RangeOp {
    use ast::RangeOp as A;
    match r.op {
        A::CountOverTime => RangeOp::Count,
        A::Rate => RangeOp::Rate {
            unwrapped: r.range.unwrap.is_some(),
        },
        A::RateCounter => RangeOp::RateCounter,
        A::BytesOverTime => RangeOp::Bytes,
        A::BytesRate => RangeOp::BytesRate,
        A::AvgOverTime => RangeOp::Avg,
        A::SumOverTime => RangeOp::Sum,
        A::MinOverTime => RangeOp::Min,
        A::MaxOverTime => RangeOp::Max,
        A::StdvarOverTime => RangeOp::Stdvar,
        A::StddevOverTime => RangeOp::Stddev,
        A::QuantileOverTime => RangeOp::Quantile(r.param.unwrap_or(0.0)),
        A::FirstOverTime => RangeOp::First,
        A::LastOverTime => RangeOp::Last,
        A::AbsentOverTime => RangeOp::Absent,
    }
}

fn is_error_series(l: &Labels) -> bool {
    l.contains(ERROR_LABEL) && l.get(PRESERVE_ERROR_LABEL) != Some("true")
}

/// Loki's message for a series that still carries a pipeline error.
fn pipeline_error(l: &Labels) -> EngineError {
    let kind = l.get(ERROR_LABEL).unwrap_or("");
    EngineError::BadRequest(format!(
        "pipeline error: '{kind}' for series: '{l}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n"
    ))
}

/// Labels an `absent_over_time` result carries: the selector's equality matchers, minus names
/// matched more than once or by other matcher types.
fn absent_labels(matchers: &[fjord_model::LabelMatcher]) -> Labels {
    let mut set: Vec<(String, String)> = Vec::new();
    let mut drop: Vec<String> = Vec::new();
    for m in matchers {
        if m.op == MatchOp::Eq && !set.iter().any(|(n, _)| *n == m.name) {
            set.push((m.name.clone(), m.value.clone()));
        } else {
            drop.push(m.name.clone());
        }
    }
    set.retain(|(n, _)| !drop.contains(n));
    Labels::from_pairs(set)
}

/// Evaluates a range aggregation at every step.
async fn eval_range(
    r: &ast::RangeAggregation,
    injected: Option<&ast::Grouping>,
    source: &dyn DataSource,
    timing: Timing,
    limits: &MetricLimits,
    stats: &mut QueryStats,
) -> Result<SeriesSteps, EngineError> {
    let range = r.range.range;
    if limits.max_range > 0 && range > limits.max_range {
        return Err(EngineError::BadRequest(format!(
            "[{}] range of the query exceeds the limit of {}",
            fjord_logql::units::format_prometheus_duration(range),
            fjord_logql::units::format_prometheus_duration(limits.max_range)
        )));
    }
    let offset = r.range.offset;
    let plan = Arc::new(range_plan(r, injected)?);
    // Entries in (start − offset − range, end − offset].
    let lo = timing.start - offset - range;
    let hi = timing.end - offset;
    let op = range_op(r);
    let times = timing.times();
    let memory = source
        .series_memory()
        .unwrap_or_else(|| MemoryBudget::new(u64::MAX))
        .work();
    let cap = SeriesCap::new(limits, op, (times.len(), timing.step), range, memory);
    // The entries' range as select asks for it, `[lo + 1, hi + 1)`, in slices read one at a
    // time: a slice's blocks are let go of before the next one's are read.
    let (from, to) = (lo.saturating_add(1), hi.saturating_add(1));
    let matchers = &r.range.selector.matchers;
    let cuts = read_slices::plan(source, matchers, from, to).await?;
    let slices = read_slices::split(vec![(from, to)], &cuts, true);
    if step_totals::is_additive(op) {
        let windows = Windows {
            start: timing.start,
            step: timing.step,
            count: times.len(),
            offset,
            range,
        };
        return eval_additive(
            op, plan, source, matchers, &slices, windows, times, cap, stats,
        )
        .await;
    }
    let mut all = cap.slots(0);
    for &(from, to) in &slices {
        let streams = select_slice(source, matchers, &plan, from, to).await?;
        let (plan, cap) = (plan.clone(), cap.clone());
        let part_stats;
        (all, part_stats) = blocking(move || {
            // Streams fold into one partial result per worker, merged pairwise, so memory
            // follows the series, not the streams; a result past the cap stops the query.
            let (part, stats) = streams
                .par_iter()
                .try_fold(
                    || (cap.slots(0), QueryStats::default()),
                    |(mut out, mut st), s| {
                        extract_stream(&plan, s, from - 1, to - 1, &cap, &mut out, &mut st)?;
                        Ok((out, st))
                    },
                )
                .try_reduce(
                    || (cap.slots(0), QueryStats::default()),
                    |(mut a, mut sa): (SeriesSamples, _), (b, sb)| {
                        sa.add_scan(&sb);
                        a.merge(b, |a, mut b| a.append(&mut b));
                        cap.check(a.refusal())?;
                        Ok((a, sa))
                    },
                )?;
            all.merge(part, |a, mut b| a.append(&mut b));
            cap.check(all.refusal())?;
            Ok((all, stats))
        })
        .await?;
        stats.add_scan(&part_stats);
    }
    // The samples stay charged, through `_held`, until every step is evaluated.
    let (series, _held) = blocking(move || {
        let (mut all, held) = all.into_charged_series();
        for (_, v) in &mut all {
            // Time order; equal times ordered by stream hash, as Loki's sample merge does.
            v.sort_by_key(|&(t, h, _)| (t, h));
        }
        Ok((all, held))
    })
    .await?;

    let mut present = vec![false; times.len()];
    let mut series: Vec<(Labels, Vec<(i64, f64)>)> = series
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|(t, _, x)| (t, x)).collect()))
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut answered = Vec::with_capacity(series.len());
    for (labels, samples) in series {
        let mut points = Vec::new();
        let (mut from, mut to) = (0usize, 0usize);
        for (i, &t) in times.iter().enumerate() {
            let (w_lo, w_hi) = (t - offset - range, t - offset);
            while to < samples.len() && samples[to].0 <= w_hi {
                to += 1;
            }
            while from < to && samples[from].0 <= w_lo {
                from += 1;
            }
            if from == to {
                continue;
            }
            if is_error_series(&labels) {
                return Err(pipeline_error(&labels));
            }
            present[i] = true;
            if op != RangeOp::Absent {
                points.push((i, range_fns::eval(op, &samples[from..to], w_hi, range)));
            }
        }
        if !points.is_empty() {
            answered.push((labels, points));
        }
    }
    if op == RangeOp::Absent {
        // 1 exactly where nothing was seen, labelled from the selector's equality matchers.
        let points: Vec<(usize, f64)> = (0..times.len())
            .filter(|&i| !present[i])
            .map(|i| (i, 1.0))
            .collect();
        if !points.is_empty() {
            answered.push((absent_labels(&r.range.selector.matchers), points));
        }
    }
    Ok(SeriesSteps {
        times,
        series: answered,
    })
}

/// Evaluates an additive range aggregation through per-step totals, reading the entries of
/// `slices` (each `[from, to)`, ascending) one slice at a time.
#[allow(clippy::too_many_arguments)]
async fn eval_additive(
    op: RangeOp,
    plan: Arc<RangePlan>,
    source: &dyn DataSource,
    matchers: &[LabelMatcher],
    slices: &[(i64, i64)],
    windows: Windows,
    times: Vec<i64>,
    cap: SeriesCap,
    stats: &mut QueryStats,
) -> Result<SeriesSteps, EngineError> {
    let mut totals = cap.totals(windows.count);
    for &(from, to) in slices {
        let streams = select_slice(source, matchers, &plan, from, to).await?;
        let (plan, cap) = (plan.clone(), cap.clone());
        let part_stats;
        (totals, part_stats) = blocking(move || {
            // As in `eval_range`: one partial result per worker, merged pairwise, each refused
            // past the cap.
            let entries = (from - 1, to - 1);
            let empty = || (cap.totals(windows.count), QueryStats::default());
            let (part, stats) = streams
                .par_iter()
                .try_fold(empty, |(mut out, mut st), s| {
                    total_stream(&plan, s, &windows, entries, &mut out, &mut st)?;
                    cap.check(out.refusal())?;
                    Ok((out, st))
                })
                .try_reduce(empty, |(mut a, mut sa), (b, sb)| {
                    sa.add_scan(&sb);
                    a.merge(b);
                    cap.check(a.refusal())?;
                    Ok((a, sa))
                })?;
            totals.merge(part);
            cap.check(totals.refusal())?;
            Ok((totals, stats))
        })
        .await?;
        stats.add_scan(&part_stats);
    }

    let mut series = totals.into_series();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    let mut answered = Vec::with_capacity(series.len());
    for (labels, t) in series {
        let mut points = Vec::new();
        for (i, (lines, bytes)) in t.per_step().enumerate() {
            if lines == 0 {
                continue;
            }
            if is_error_series(&labels) {
                return Err(pipeline_error(&labels));
            }
            points.push((i, step_totals::value(op, lines, bytes, windows.range)));
        }
        if !points.is_empty() {
            answered.push((labels, points));
        }
    }
    Ok(SeriesSteps {
        times,
        series: answered,
    })
}

// ------------------------------------------------------------------ vector aggregation

fn group_key(l: &Labels, g: &ast::Grouping, sorted_groups: &[String]) -> Labels {
    if g.without {
        let mut out = l.clone();
        for n in sorted_groups {
            out.remove(n);
        }
        out.remove("__name__");
        out
    } else {
        Labels::from_sorted_unchecked(
            l.iter()
                .filter(|x| sorted_groups.iter().any(|g| *g == x.name))
                .cloned()
                .collect(),
        )
    }
}

/// Whether `op` keeps the members of each group (and answers with some of them) rather than a
/// value computed from them.
fn keeps_members(op: VectorOp) -> bool {
    matches!(
        op,
        VectorOp::Topk
            | VectorOp::Bottomk
            | VectorOp::Sort
            | VectorOp::SortDesc
            | VectorOp::ApproxTopk
    )
}

/// A group's value for `op` over the members met so far at one step, added in the order they
/// are met (which decides the last bits of sums and means).
#[derive(Debug, Clone, Copy)]
struct Running {
    value: f64,
    mean: f64,
    count: f64,
}

impl Running {
    fn first(op: VectorOp, v: f64) -> Self {
        Running {
            value: if matches!(op, VectorOp::Stddev | VectorOp::Stdvar) {
                0.0
            } else {
                v
            },
            mean: v,
            count: 1.0,
        }
    }

    fn add(&mut self, op: VectorOp, v: f64) {
        match op {
            VectorOp::Sum => self.value += v,
            VectorOp::Avg => {
                self.count += 1.0;
                if self.mean.is_infinite()
                    && ((v.is_infinite() && (self.mean > 0.0) == (v > 0.0))
                        || (!v.is_infinite() && !v.is_nan()))
                {
                    return;
                }
                self.mean += (v - self.mean) / self.count;
            }
            VectorOp::Max => {
                if self.value < v || self.value.is_nan() {
                    self.value = v;
                }
            }
            VectorOp::Min => {
                if self.value > v || self.value.is_nan() {
                    self.value = v;
                }
            }
            VectorOp::Count => self.count += 1.0,
            VectorOp::Stddev | VectorOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            VectorOp::Topk
            | VectorOp::Bottomk
            | VectorOp::Sort
            | VectorOp::SortDesc
            | VectorOp::ApproxTopk => {}
        }
    }

    /// The group's answer (for an `op` that does not keep members).
    fn answer(&self, op: VectorOp) -> f64 {
        match op {
            VectorOp::Avg => self.mean,
            VectorOp::Count => self.count,
            VectorOp::Stddev => (self.value / self.count).sqrt(),
            VectorOp::Stdvar => self.value / self.count,
            _ => self.value,
        }
    }
}

fn aggregate(
    op: VectorOp,
    param: Option<i64>,
    g: &ast::Grouping,
    vec: Vec<(Labels, f64)>,
) -> Vec<(Labels, f64)> {
    let groups = sorted(&g.labels);
    let k = param.unwrap_or(0);
    if matches!(op, VectorOp::Topk | VectorOp::Bottomk) && k < 1 {
        return Vec::new();
    }
    struct Group {
        labels: Labels,
        running: Running,
        members: Vec<(Labels, f64)>,
    }
    let mut order: Vec<Labels> = Vec::new();
    let mut result: HashMap<Labels, Group> = HashMap::new();
    for (metric, v) in vec {
        let key = group_key(&metric, g, &groups);
        match result.get_mut(&key) {
            None => {
                let mut grp = Group {
                    labels: key.clone(),
                    running: Running::first(op, v),
                    members: Vec::new(),
                };
                if keeps_members(op) {
                    grp.members.push((metric, v));
                }
                order.push(key.clone());
                result.insert(key, grp);
            }
            Some(grp) if keeps_members(op) => grp.members.push((metric, v)),
            Some(grp) => grp.running.add(op, v),
        }
    }
    let mut out = Vec::new();
    for key in order {
        let Some(grp) = result.remove(&key) else {
            continue;
        };
        if keeps_members(op) {
            let mut m = grp.members;
            order_members(op, k, &mut m);
            out.extend(m);
        } else {
            out.push((grp.labels, grp.running.answer(op)));
        }
    }
    if !keeps_members(op) {
        // In label order, as `aggregate_series` answers: an aggregation over this one adds
        // the groups in the same order either way.
        out.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

/// The groups of `series` under `grouping`, each key once in the order its first series came,
/// and the group of each series.
fn series_groups<T>(grouping: &ast::Grouping, series: &[(Labels, T)]) -> (Vec<Labels>, Vec<usize>) {
    let names = sorted(&grouping.labels);
    let mut slot_of: HashMap<Labels, usize> = HashMap::new();
    let mut keys = Vec::new();
    let group_of = series
        .iter()
        .map(|(labels, _)| {
            *slot_of
                .entry(group_key(labels, grouping, &names))
                .or_insert_with_key(|key| {
                    keys.push(key.clone());
                    keys.len() - 1
                })
        })
        .collect();
    (keys, group_of)
}

/// Aggregates series for an `op` that does not keep members, finding each series' group once
/// instead of once per step. Members are added at each step in the order of `inner`'s series
/// (label order), as [`aggregate`] adds them from the step's vector, so the values are the
/// same to the bit; the groups come in label order, as [`aggregate`] answers them.
fn aggregate_series(v: &ast::VectorAggregation, inner: SeriesSteps) -> SeriesSteps {
    debug_assert!(!keeps_members(v.op));
    let steps = inner.times.len();
    let (keys, group_of) = series_groups(&v.grouping, &inner.series);
    let mut groups: Vec<(Labels, Vec<Option<Running>>)> =
        keys.into_iter().map(|k| (k, vec![None; steps])).collect();
    for ((_, points), g) in inner.series.into_iter().zip(group_of) {
        let running = &mut groups[g].1;
        for (i, x) in points {
            match &mut running[i] {
                Some(r) => r.add(v.op, x),
                none => *none = Some(Running::first(v.op, x)),
            }
        }
    }
    let mut series: Vec<_> = groups
        .into_iter()
        .map(|(labels, running)| {
            let points: Vec<(usize, f64)> = running
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.map(|r| (i, r.answer(v.op))))
                .collect();
            (labels, points)
        })
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    SeriesSteps {
        times: inner.times,
        series,
    }
}

/// [`aggregate`] for an `op` that keeps members (`topk`, `bottomk`, `sort`, `sort_desc`,
/// `approx_topk`) over a range aggregation's series, finding each series' group once: at each
/// step a group's members come in the order of `inner`'s series and are ordered and cut as
/// [`aggregate`] orders and cuts them. Each series keeps the steps where it was chosen.
fn members_series(v: &ast::VectorAggregation, inner: SeriesSteps) -> SeriesSteps {
    debug_assert!(keeps_members(v.op));
    let k = v.param.unwrap_or(0);
    let steps = inner.times.len();
    if matches!(v.op, VectorOp::Topk | VectorOp::Bottomk) && k < 1 {
        return SeriesSteps {
            times: inner.times,
            series: Vec::new(),
        };
    }
    let (_, group_of) = series_groups(&v.grouping, &inner.series);
    // Per step, per group, its members (series, value) in series order.
    let mut members: Vec<Vec<Vec<(usize, f64)>>> = vec![Vec::new(); steps];
    for (s, ((_, points), &g)) in inner.series.iter().zip(&group_of).enumerate() {
        for &(i, x) in points {
            if members[i].len() <= g {
                members[i].resize_with(g + 1, Vec::new);
            }
            members[i][g].push((s, x));
        }
    }
    let mut chosen: Vec<Vec<(usize, f64)>> = vec![Vec::new(); inner.series.len()];
    for (i, groups) in members.into_iter().enumerate() {
        for mut m in groups {
            order_members(v.op, k, &mut m);
            for (s, x) in m {
                chosen[s].push((i, x));
            }
        }
    }
    SeriesSteps {
        times: inner.times,
        series: inner
            .series
            .into_iter()
            .zip(chosen)
            .filter(|(_, points)| !points.is_empty())
            .map(|((labels, _), points)| (labels, points))
            .collect(),
    }
}

/// A group's members as an `op` that keeps members answers them: by value, highest first for
/// `topk`, `approx_topk` and `sort_desc`, lowest first for `bottomk` and `sort` (ties keep
/// their order), the first `k` for `topk`, `approx_topk` and `bottomk`.
fn order_members<T>(op: VectorOp, k: i64, members: &mut Vec<(T, f64)>) {
    if matches!(
        op,
        VectorOp::Topk | VectorOp::ApproxTopk | VectorOp::SortDesc
    ) {
        members.sort_by(|a, b| desc_nan_last(a.1, b.1));
    } else {
        members.sort_by(|a, b| desc_nan_last(b.1, a.1));
    }
    if matches!(
        op,
        VectorOp::Topk | VectorOp::ApproxTopk | VectorOp::Bottomk
    ) {
        members.truncate(k.max(0) as usize);
    }
}

/// Descending order by value with NaN last (ties keep their order).
fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

// ------------------------------------------------------------------ binary operations

fn signature(l: &Labels, m: &ast::VectorMatching, default_all: bool) -> Labels {
    if default_all && m.labels.is_empty() && !m.on {
        return l.clone();
    }
    if m.on {
        Labels::from_sorted_unchecked(
            l.iter()
                .filter(|x| m.labels.iter().any(|g| *g == x.name))
                .cloned()
                .collect(),
        )
    } else {
        let mut out = l.clone();
        for n in &m.labels {
            out.remove(n);
        }
        out
    }
}

fn result_metric(lhs: &Labels, rhs: &Labels, m: &ast::VectorMatching) -> Labels {
    let mut out = lhs.clone();
    if m.card == Cardinality::OneToOne {
        if m.on {
            out = Labels::from_sorted_unchecked(
                lhs.iter()
                    .filter(|x| m.labels.iter().any(|g| *g == x.name))
                    .cloned()
                    .collect(),
            );
        } else {
            for n in &m.labels {
                out.remove(n);
            }
        }
    }
    for n in &m.include {
        match rhs.get(n) {
            Some(v) if !v.is_empty() => out.set(n, v),
            _ => out.remove(n),
        }
    }
    out
}

/// Merges two sample values; `None` drops the pair (a failed comparison without `bool`).
/// Comparisons without `bool` keep the value of `keep_left ? l : r`.
fn merge(op: BinOpKind, l: f64, r: f64, filter: bool, keep_left: bool) -> Option<f64> {
    let res = op.apply(l, r)?;
    if op.is_comparison() && filter {
        if res == 0.0 {
            return None;
        }
        return Some(if keep_left { l } else { r });
    }
    Some(res)
}

fn vector_binop(
    b: &ast::BinOp,
    lhs: Vec<(Labels, f64)>,
    rhs: Vec<(Labels, f64)>,
) -> Result<Vec<(Labels, f64)>, EngineError> {
    let m = &b.modifier.matching;
    let lsig: Vec<Labels> = lhs.iter().map(|(l, _)| signature(l, m, true)).collect();
    let rsig: Vec<Labels> = rhs.iter().map(|(l, _)| signature(l, m, true)).collect();
    match b.op {
        BinOpKind::And => {
            if lhs.is_empty() || rhs.is_empty() {
                return Ok(Vec::new());
            }
            return Ok(lhs
                .into_iter()
                .zip(lsig)
                .filter(|(_, s)| rsig.contains(s))
                .map(|(x, _)| x)
                .collect());
        }
        BinOpKind::Or => {
            if lhs.is_empty() {
                return Ok(rhs);
            }
            if rhs.is_empty() {
                return Ok(lhs);
            }
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .zip(rsig)
                    .filter(|(_, s)| !lsig.contains(s))
                    .map(|(x, _)| x),
            );
            return Ok(out);
        }
        BinOpKind::Unless => {
            if lhs.is_empty() || rhs.is_empty() {
                return Ok(lhs);
            }
            return Ok(lhs
                .into_iter()
                .zip(lsig)
                .filter(|(_, s)| !rsig.contains(s))
                .map(|(x, _)| x)
                .collect());
        }
        _ => {}
    }
    let one_to_many = m.card == Cardinality::OneToMany;
    let (left, lsigs, right, rsigs) = if one_to_many {
        (rhs, rsig, lhs, lsig)
    } else {
        (lhs, lsig, rhs, rsig)
    };
    let mut right_by_sig: HashMap<Labels, (Labels, f64)> = HashMap::new();
    for ((l, v), s) in right.into_iter().zip(rsigs) {
        if right_by_sig.contains_key(&s) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(EngineError::Execution(format!(
                "found duplicate series on the {side} hand-side;many-to-many matching not allowed: matching labels must be unique on one side"
            )));
        }
        right_by_sig.insert(s, (l, v));
    }
    let mut matched: HashMap<Labels, Vec<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for ((ll, lv), s) in left.into_iter().zip(lsigs) {
        let Some((rl, rv)) = right_by_sig.get(&s) else {
            continue;
        };
        // Loki derives the result labels from the side iterated here (the "many" side for
        // group_right), with `group_*` labels taken from the other side.
        let metric = result_metric(&ll, rl, m);
        if m.card == Cardinality::OneToOne {
            if matched.contains_key(&s) {
                return Err(EngineError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            matched.insert(s.clone(), Vec::new());
        } else {
            let inserted = matched.entry(s.clone()).or_default();
            if inserted.contains(&metric) {
                return Err(EngineError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            inserted.push(metric.clone());
        }
        let (l, r) = if one_to_many { (*rv, lv) } else { (lv, *rv) };
        if let Some(v) = merge(b.op, l, r, !b.modifier.return_bool, true) {
            out.push((metric, v));
        }
    }
    Ok(out)
}

/// The operands of a binary operation answered series by series, as matching needs them: each
/// series' signature as a small id (shared by both sides), and each side's samples by step.
struct MatchedOperands {
    /// How many distinct signatures the ids number.
    signatures: usize,
    left_sig: Vec<usize>,
    right_sig: Vec<usize>,
    /// Per step, `(series, value)` of the series with a sample there, in series order.
    left_at: Vec<Vec<(usize, f64)>>,
    right_at: Vec<Vec<(usize, f64)>>,
}

impl MatchedOperands {
    fn new(left: &SeriesSteps, right: &SeriesSteps, m: &ast::VectorMatching) -> Self {
        let mut ids: HashMap<Labels, usize> = HashMap::new();
        let mut signature_ids = |side: &SeriesSteps| -> Vec<usize> {
            side.series
                .iter()
                .map(|(l, _)| {
                    let next = ids.len();
                    *ids.entry(signature(l, m, true)).or_insert(next)
                })
                .collect()
        };
        let (left_sig, right_sig) = (signature_ids(left), signature_ids(right));
        let steps = left.times.len();
        let by_step = |side: &SeriesSteps| {
            let mut at: Vec<Vec<(usize, f64)>> = vec![Vec::new(); steps];
            for (k, (_, points)) in side.series.iter().enumerate() {
                for &(i, v) in points {
                    at[i].push((k, v));
                }
            }
            at
        };
        MatchedOperands {
            signatures: ids.len(),
            left_sig,
            right_sig,
            left_at: by_step(left),
            right_at: by_step(right),
        }
    }
}

/// [`vector_binop`] for an arithmetic or comparison operation over two sides answered series
/// by series: at every step the same matches, values and errors as [`vector_binop`] over that
/// step's samples, then the same series limit as [`SeriesSteps::from_steps`], with each
/// series' signature and each matched pair's labels computed once instead of at every step.
fn binop_series(
    b: &ast::BinOp,
    lhs: SeriesSteps,
    rhs: SeriesSteps,
    max_series: usize,
) -> Result<SeriesSteps, EngineError> {
    let m = &b.modifier.matching;
    let one_to_many = m.card == Cardinality::OneToMany;
    // `left` is the side iterated, as in `vector_binop` (the "many" side for group_right).
    let (left, right) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let MatchedOperands {
        signatures,
        left_sig,
        right_sig,
        left_at,
        right_at,
    } = MatchedOperands::new(&left, &right, m);
    // Per signature, the step it last met a right sample at, that sample, and the step a left
    // sample last matched it at; per result series, the step it was last matched at. Stamped
    // with the step, so nothing is cleared between steps.
    let mut right_of = vec![(usize::MAX, 0usize, 0.0f64); signatures];
    let mut sig_matched = vec![usize::MAX; signatures];
    let mut metric_of: HashMap<(usize, usize), usize> = HashMap::new();
    let mut out: Vec<(Labels, Vec<(usize, f64)>)> = Vec::new();
    let mut out_index: HashMap<Labels, usize> = HashMap::new();
    let mut metric_matched: Vec<usize> = Vec::new();
    let mut answered = 0;
    for i in 0..left.times.len() {
        for &(j, v) in &right_at[i] {
            let s = right_sig[j];
            if right_of[s].0 == i {
                let side = if one_to_many { "left" } else { "right" };
                return Err(EngineError::Execution(format!(
                    "found duplicate series on the {side} hand-side;many-to-many matching not allowed: matching labels must be unique on one side"
                )));
            }
            right_of[s] = (i, j, v);
        }
        for &(k, lv) in &left_at[i] {
            let s = left_sig[k];
            let (at, j, rv) = right_of[s];
            if at != i {
                continue;
            }
            let metric = *metric_of.entry((k, j)).or_insert_with(|| {
                let labels = result_metric(&left.series[k].0, &right.series[j].0, m);
                *out_index.entry(labels.clone()).or_insert_with(|| {
                    out.push((labels, Vec::new()));
                    metric_matched.push(usize::MAX);
                    out.len() - 1
                })
            });
            if m.card == Cardinality::OneToOne {
                if sig_matched[s] == i {
                    return Err(EngineError::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                sig_matched[s] = i;
            } else {
                if metric_matched[metric] == i {
                    return Err(EngineError::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
                metric_matched[metric] = i;
            }
            let (l, r) = if one_to_many { (rv, lv) } else { (lv, rv) };
            if let Some(v) = merge(b.op, l, r, !b.modifier.return_bool, true) {
                let points = &mut out[metric].1;
                answered += usize::from(points.is_empty());
                points.push((i, v));
            }
        }
    }
    // After every step, as the step-by-step evaluation gathers its series only once every
    // step is matched: an error matching a later step comes first.
    if max_series > 0 && answered > max_series {
        return Err(crate::query::series_limit_error(max_series));
    }
    out.retain(|(_, points)| !points.is_empty());
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(SeriesSteps {
        times: left.times,
        series: out,
    })
}

/// [`vector_binop`] for `and`, `or` and `unless` over two sides answered series by series: at
/// every step the samples it keeps of each side, by signatures computed once per series; then
/// the series limit of [`SeriesSteps::from_steps`].
fn set_binop_series(
    b: &ast::BinOp,
    lhs: SeriesSteps,
    rhs: SeriesSteps,
    max_series: usize,
) -> Result<SeriesSteps, EngineError> {
    let MatchedOperands {
        signatures,
        left_sig,
        right_sig,
        left_at,
        right_at,
    } = MatchedOperands::new(&lhs, &rhs, &b.modifier.matching);
    // The step each signature was last met at on the side `and` and `unless` look up (the
    // right) or `or` does (the left).
    let mut seen = vec![usize::MAX; signatures];
    // Kept samples: (left?, series, step, value).
    let mut kept: Vec<(bool, usize, usize, f64)> = Vec::new();
    for i in 0..lhs.times.len() {
        match b.op {
            BinOpKind::And | BinOpKind::Unless => {
                for &(j, _) in &right_at[i] {
                    seen[right_sig[j]] = i;
                }
                let want = b.op == BinOpKind::And;
                for &(k, v) in &left_at[i] {
                    if (seen[left_sig[k]] == i) == want {
                        kept.push((true, k, i, v));
                    }
                }
            }
            _ => {
                for &(k, v) in &left_at[i] {
                    seen[left_sig[k]] = i;
                    kept.push((true, k, i, v));
                }
                for &(j, v) in &right_at[i] {
                    if seen[right_sig[j]] != i {
                        kept.push((false, j, i, v));
                    }
                }
            }
        }
    }
    // A left and a right series with the same labels are one series of the answer (never at
    // the same step: equal labels have equal signatures).
    let mut series: BTreeMap<&Labels, Vec<(usize, f64)>> = BTreeMap::new();
    for (left, k, i, v) in kept {
        let labels = if left {
            &lhs.series[k].0
        } else {
            &rhs.series[k].0
        };
        series.entry(labels).or_default().push((i, v));
    }
    if max_series > 0 && series.len() > max_series {
        return Err(crate::query::series_limit_error(max_series));
    }
    let series = series
        .into_iter()
        .map(|(labels, mut points)| {
            points.sort_by_key(|&(i, _)| i);
            (labels.clone(), points)
        })
        .collect();
    Ok(SeriesSteps {
        times: lhs.times,
        series,
    })
}

/// A comparison or arithmetic between a literal `x` (on the left when `literal_left`) and a
/// side answered series by series, point by point as `eval` does at each step.
fn literal_binop_series(
    b: &ast::BinOp,
    x: f64,
    literal_left: bool,
    mut side: SeriesSteps,
) -> SeriesSteps {
    let filter = !b.modifier.return_bool;
    for (_, points) in &mut side.series {
        points.retain_mut(|(_, v)| {
            let merged = if literal_left {
                merge(b.op, x, *v, filter, false)
            } else {
                merge(b.op, *v, x, filter, true)
            };
            merged.map(|m| *v = m).is_some()
        });
    }
    side.series.retain(|(_, points)| !points.is_empty());
    side
}

// ------------------------------------------------------------------ evaluation

/// A vector aggregation of every step of `inner`.
fn aggregate_steps(v: &ast::VectorAggregation, inner: Steps) -> Steps {
    Steps {
        vectors: inner
            .vectors
            .into_iter()
            .map(|vec| aggregate(v.op, v.param, &v.grouping, vec))
            .collect(),
        times: inner.times,
    }
}

/// A binary operation between two vectors at every step, each step's samples in label order
/// as [`binop_series`] and [`set_binop_series`] answer them: an aggregation over the operation
/// adds them in the same order either way.
fn binop_steps(b: &ast::BinOp, lhs: Steps, rhs: Steps) -> Result<Steps, EngineError> {
    let mut vectors = Vec::with_capacity(lhs.vectors.len());
    for (l, r) in lhs.vectors.into_iter().zip(rhs.vectors) {
        let mut out = vector_binop(b, l, r)?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        vectors.push(out);
    }
    Ok(Steps {
        times: lhs.times,
        vectors,
    })
}

/// `label_replace`'s rewrite of a sample's labels.
struct Relabel<'a> {
    lr: &'a ast::LabelReplace,
    /// The regex, anchored at both ends.
    regex: regex::Regex,
    /// Whether the destination is a valid label name; an invalid one changes nothing.
    valid_dst: bool,
}

impl<'a> Relabel<'a> {
    fn new(lr: &'a ast::LabelReplace) -> Result<Self, EngineError> {
        let regex = regex::Regex::new(&format!(
            "^(?s:{})$",
            fjord_model::goregex::to_rust(&lr.regex)
        ))
        .map_err(|e| {
            EngineError::BadRequest(format!(
                "invalid regular expression in label_replace(): {e}"
            ))
        })?;
        Ok(Relabel {
            lr,
            regex,
            valid_dst: fjord_model::labels::is_valid_label_name(&lr.dst),
        })
    }

    /// Sets the destination to the replacement when the source label (empty when absent)
    /// matches; removes it when the replacement expands to nothing.
    fn apply(&self, labels: &mut Labels) {
        if !self.valid_dst {
            return;
        }
        let src = labels.get(&self.lr.src).unwrap_or("").to_string();
        let Some(caps) = self.regex.captures(&src) else {
            return;
        };
        let mut res = String::new();
        caps.expand(&self.lr.replacement, &mut res);
        labels.remove(&self.lr.dst);
        if !res.is_empty() {
            labels.set(&self.lr.dst, &res);
        }
    }
}

/// `label_replace` over `inner`'s series, each series' labels rewritten once. The series keep
/// `inner`'s order, the order step-by-step evaluation leaves each step's samples in after
/// rewriting them, so an aggregation over them adds in the same order; they may no longer be in
/// label order, and two of them may now have the same labels ([`in_label_order`]).
fn label_replace_series(
    lr: &ast::LabelReplace,
    mut inner: SeriesSteps,
) -> Result<SeriesSteps, EngineError> {
    let relabel = Relabel::new(lr)?;
    for (labels, _) in &mut inner.series {
        relabel.apply(labels);
    }
    Ok(inner)
}

/// Series that may be out of label order, or share labels, as an answer: sorted by labels and,
/// where some share them, gathered as step-by-step evaluation gathers its steps' samples, each
/// label set's points in step order, samples of one step in series order. Refused past
/// `max_series` (0: no limit).
fn in_label_order(mut answer: SeriesSteps, max_series: usize) -> Result<SeriesSteps, EngineError> {
    // A stable sort keeps series with equal labels in their order.
    answer.series.sort_by(|a, b| a.0.cmp(&b.0));
    if answer.series.windows(2).any(|w| w[0].0 == w[1].0) {
        return SeriesSteps::from_steps(answer.into_steps(), max_series);
    }
    if max_series > 0 && answer.series.len() > max_series {
        return Err(crate::query::series_limit_error(max_series));
    }
    Ok(answer)
}

/// What [`answered_by_series`] found.
enum Answered {
    BySeries(SeriesSteps),
    /// A `sum` evaluated inside a range aggregation one of whose series kept its error labels:
    /// grouped step by step.
    ByStep(Steps),
}

impl Answered {
    fn into_steps(self) -> Steps {
        match self {
            Answered::BySeries(series) => series.into_steps(),
            Answered::ByStep(steps) => steps,
        }
    }
}

/// `e`'s answer where its series are its range aggregation's ([`range_is_result`]): the range
/// aggregation itself, or a `sum` evaluated inside one, which left one sample per group, so
/// summing again would change nothing (unless a series kept its error labels,
/// `__preserve_error__`, which the grouping then drops). `None` for other expressions.
async fn answered_by_series(
    e: &SampleExpr,
    source: &dyn DataSource,
    timing: Timing,
    limits: &MetricLimits,
    stats: &mut QueryStats,
) -> Result<Option<Answered>, EngineError> {
    Ok(match e {
        SampleExpr::RangeAggregation(r) => Some(Answered::BySeries(
            eval_range(r, None, source, timing, limits, stats).await?,
        )),
        SampleExpr::VectorAggregation(v) => match sum_pushed_into(v) {
            Some(r) => {
                let series =
                    eval_range(r, Some(&v.grouping), source, timing, limits, stats).await?;
                Some(if series.has_error_series() {
                    Answered::ByStep(aggregate_steps(v, series.into_steps()))
                } else {
                    Answered::BySeries(series)
                })
            }
            None => None,
        },
        _ => None,
    })
}

/// Whether `e` is answered series by series: an expression whose series are its range
/// aggregation's ([`range_is_result`]), an operation between such expressions or between one
/// and a literal, or an aggregation that computes a value per group (`sum`, `avg`, `count`,
/// …; not `topk` and its kin, whose members come in value order, except at the root: see
/// [`eval_series`]) of one or of a `label_replace` of one ([`relabels_series`]).
fn by_series(e: &SampleExpr) -> bool {
    match e {
        SampleExpr::BinOp(b) => match (&*b.lhs, &*b.rhs) {
            (SampleExpr::Literal(_), SampleExpr::Literal(_)) => false,
            (SampleExpr::Literal(_), side) | (side, SampleExpr::Literal(_)) => {
                !b.op.is_set_op() && by_series(side)
            }
            (lhs, rhs) => by_series(lhs) && by_series(rhs),
        },
        SampleExpr::VectorAggregation(v) if !range_is_result(e) => {
            !keeps_members(v.op) && (by_series(&v.inner) || relabels_series(&v.inner))
        }
        e => range_is_result(e),
    }
}

/// Whether `e` is a `label_replace` of an expression answered series by series: its series
/// are relabelled once each ([`label_replace_series`]). Its answer may hold two series with the
/// same labels, which an aggregation adds like any two members and the root gathers
/// ([`in_label_order`]); an operation, which would have to match them, evaluates step by step.
fn relabels_series(e: &SampleExpr) -> bool {
    matches!(e, SampleExpr::LabelReplace(lr) if by_series(&lr.inner))
}

/// The answer, series by series, of an `e` that [`by_series`] accepts: operations evaluate
/// their right side first, as `eval` does, and match series by series; the result is refused
/// past `max_series` (0: no limit), operands are not.
fn series_answer<'a>(
    e: &'a SampleExpr,
    source: &'a dyn DataSource,
    timing: Timing,
    limits: &'a MetricLimits,
    stats: &'a mut QueryStats,
    max_series: usize,
) -> futures_like::BoxFuture<'a, Result<SeriesSteps, EngineError>> {
    Box::pin(async move {
        if let SampleExpr::BinOp(b) = e {
            let (lhs, rhs) = (&*b.lhs, &*b.rhs);
            return match (lhs, rhs) {
                (SampleExpr::Literal(x), side) | (side, SampleExpr::Literal(x)) => {
                    let literal_left = matches!(lhs, SampleExpr::Literal(_));
                    let side = series_answer(side, source, timing, limits, stats, 0).await?;
                    let answer = literal_binop_series(b, *x, literal_left, side);
                    if max_series > 0 && answer.series.len() > max_series {
                        return Err(crate::query::series_limit_error(max_series));
                    }
                    Ok(answer)
                }
                _ => {
                    let right = series_answer(rhs, source, timing, limits, stats, 0).await?;
                    let left = series_answer(lhs, source, timing, limits, stats, 0).await?;
                    if b.op.is_set_op() {
                        set_binop_series(b, left, right, max_series)
                    } else {
                        binop_series(b, left, right, max_series)
                    }
                }
            };
        }
        match answered_by_series(e, source, timing, limits, stats).await? {
            Some(Answered::BySeries(series)) => Ok(series),
            Some(Answered::ByStep(steps)) => SeriesSteps::from_steps(steps, max_series),
            None => match e {
                SampleExpr::VectorAggregation(v) if by_series(e) => {
                    let inner = match &*v.inner {
                        SampleExpr::LabelReplace(lr) => label_replace_series(
                            lr,
                            series_answer(&lr.inner, source, timing, limits, stats, 0).await?,
                        )?,
                        inner => series_answer(inner, source, timing, limits, stats, 0).await?,
                    };
                    let answer = aggregate_series(v, inner);
                    if max_series > 0 && answer.series.len() > max_series {
                        return Err(crate::query::series_limit_error(max_series));
                    }
                    Ok(answer)
                }
                _ => Err(EngineError::Execution(format!(
                    "{e} cannot be answered series by series"
                ))),
            },
        }
    })
}

/// Evaluates a sample expression and answers series by series. Where the series of its range
/// aggregation are its result's ([`range_is_result`]) they are the answer as they are;
/// operations and aggregations over such series ([`by_series`]), and `topk` and its kin and
/// `label_replace` at the root over them, are computed series by series; otherwise the steps
/// are evaluated and their series gathered.
pub async fn eval_series(
    e: &SampleExpr,
    source: &dyn DataSource,
    timing: Timing,
    limits: &MetricLimits,
    stats: &mut QueryStats,
) -> Result<SeriesSteps, EngineError> {
    match answered_by_series(e, source, timing, limits, stats).await? {
        Some(Answered::BySeries(series)) => return Ok(series),
        Some(Answered::ByStep(steps)) => return SeriesSteps::from_steps(steps, limits.max_series),
        None => {}
    }
    match e {
        SampleExpr::BinOp(_) | SampleExpr::VectorAggregation(_) if by_series(e) => {
            series_answer(e, source, timing, limits, stats, limits.max_series).await
        }
        SampleExpr::LabelReplace(lr) if by_series(&lr.inner) => {
            let inner = series_answer(&lr.inner, source, timing, limits, stats, 0).await?;
            in_label_order(label_replace_series(lr, inner)?, limits.max_series)
        }
        // At the root, members in value order are the answer's points as they are.
        SampleExpr::VectorAggregation(v) if keeps_members(v.op) && by_series(&v.inner) => {
            let inner = series_answer(&v.inner, source, timing, limits, stats, 0).await?;
            in_label_order(members_series(v, inner), limits.max_series)
        }
        _ => {
            let steps = eval(e, source, timing, limits, stats).await?;
            SeriesSteps::from_steps(steps, limits.max_series)
        }
    }
}

/// Evaluates a sample expression at every step.
pub fn eval<'a>(
    e: &'a SampleExpr,
    source: &'a dyn DataSource,
    timing: Timing,
    limits: &'a MetricLimits,
    stats: &'a mut QueryStats,
) -> futures_like::BoxFuture<'a, Result<Steps, EngineError>> {
    Box::pin(async move {
        match e {
            SampleExpr::RangeAggregation(r) => eval_range(r, None, source, timing, limits, stats)
                .await
                .map(SeriesSteps::into_steps),
            SampleExpr::VectorAggregation(v) => {
                match answered_by_series(e, source, timing, limits, stats).await? {
                    Some(answer) => Ok(answer.into_steps()),
                    None => {
                        let inner = eval(&v.inner, source, timing, limits, stats).await?;
                        Ok(aggregate_steps(v, inner))
                    }
                }
            }
            SampleExpr::Literal(x) | SampleExpr::Vector(x) => {
                let times = timing.times();
                let vectors = times.iter().map(|_| vec![(Labels::empty(), *x)]).collect();
                Ok(Steps { times, vectors })
            }
            SampleExpr::LabelReplace(lr) => {
                let mut inner = eval(&lr.inner, source, timing, limits, stats).await?;
                let relabel = Relabel::new(lr)?;
                for v in &mut inner.vectors {
                    for (labels, _) in v.iter_mut() {
                        relabel.apply(labels);
                    }
                }
                Ok(inner)
            }
            SampleExpr::BinOp(b) => match (&*b.lhs, &*b.rhs) {
                (SampleExpr::Literal(x), other) | (other, SampleExpr::Literal(x)) => {
                    let literal_left = matches!(&*b.lhs, SampleExpr::Literal(_));
                    let inner = eval(other, source, timing, limits, stats).await?;
                    let filter = !b.modifier.return_bool;
                    let vectors = inner
                        .vectors
                        .into_iter()
                        .map(|vec| {
                            vec.into_iter()
                                .filter_map(|(l, v)| {
                                    let merged = if literal_left {
                                        merge(b.op, *x, v, filter, false)
                                    } else {
                                        merge(b.op, v, *x, filter, true)
                                    };
                                    merged.map(|m| (l, m))
                                })
                                .collect()
                        })
                        .collect();
                    Ok(Steps {
                        times: inner.times,
                        vectors,
                    })
                }
                _ => {
                    let rhs = eval(&b.rhs, source, timing, limits, stats).await?;
                    let lhs = eval(&b.lhs, source, timing, limits, stats).await?;
                    binop_steps(b, lhs, rhs)
                }
            },
        }
    })
}

fn can_inject(op: ast::RangeOp) -> bool {
    use ast::RangeOp as A;
    matches!(
        op,
        A::BytesOverTime | A::BytesRate | A::SumOverTime | A::Rate | A::CountOverTime
    )
}

/// A boxed future, for recursion without extra dependencies.
pub mod futures_like {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

#[cfg(test)]
mod tests {
    use fjord_logql::ast::{Expr, VectorAggregation};

    use super::*;

    fn vector_aggregation(query: &str) -> VectorAggregation {
        match fjord_logql::parse_expr(query).unwrap() {
            Expr::Sample(SampleExpr::VectorAggregation(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    /// Series over 6 steps with gaps and awkward values, in label order.
    fn series() -> SeriesSteps {
        // Sums of these depend on the order they are added in (1e16 + 1 - 1e16).
        let values = [1e16, 1.0, -1e16, 0.1, 0.7, 3.3, -2.25, 1.5];
        let mut series: Vec<(Labels, Vec<(usize, f64)>)> = (0..12)
            .map(|i| {
                let labels = Labels::from_pairs([
                    ("app", format!("a{}", i % 3)),
                    ("pod", format!("p{i:02}")),
                    ("zone", format!("z{}", i % 2)),
                ]);
                let points = (0..6)
                    .filter(|s| (i + s) % 4 != 0)
                    .map(|s| {
                        let v = match (i, s) {
                            (5, 2) => f64::NAN,
                            (7, 3) => f64::INFINITY,
                            (8, 3) => f64::NEG_INFINITY,
                            _ => values[(i * 7 + s * 3) % values.len()],
                        };
                        (s, v)
                    })
                    .collect();
                (labels, points)
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        SeriesSteps {
            times: (0..6).map(|s| s * 10).collect(),
            series,
        }
    }

    /// An answer with its values as bits, so NaNs compare equal and values compare to the bit.
    fn bits(s: &SeriesSteps) -> Vec<(String, Vec<(usize, u64)>)> {
        let mut out: Vec<_> = s
            .series
            .iter()
            .map(|(l, p)| {
                (
                    l.to_string(),
                    p.iter().map(|&(i, v)| (i, v.to_bits())).collect(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn choosing_members_series_by_series_matches_choosing_them_every_step() {
        let mut checked = 0;
        for op in ["topk(2,", "bottomk(3,", "sort(", "sort_desc("] {
            for grouping in ["", " by (app)", " without (pod)"] {
                let query = format!("{op} count_over_time({{a=\"b\"}}[1m])){grouping}");
                let Ok(Expr::Sample(SampleExpr::VectorAggregation(v))) =
                    fjord_logql::parse_expr(&query)
                else {
                    continue; // sort and sort_desc take no grouping
                };
                let by_series = members_series(&v, series());
                let by_step =
                    SeriesSteps::from_steps(aggregate_steps(&v, series().into_steps()), 0).unwrap();
                assert_eq!(bits(&by_series), bits(&by_step), "{query}");
                checked += 1;
            }
        }
        assert_eq!(checked, 8);
    }

    #[test]
    fn binary_operations_series_by_series_match_them_every_step() {
        let per_app = aggregate_series(
            &vector_aggregation("sum by (app) (count_over_time({a=\"b\"}[1m]))"),
            series(),
        );
        let mut zone0 = series();
        zone0.series.retain(|(l, _)| l.get("zone") == Some("z0"));
        let sides = [
            (series(), series()),
            (series(), per_app.clone()),
            (per_app.clone(), series()),
            (zone0.clone(), series()),
            (per_app.clone(), per_app),
            (series(), zone0),
        ];
        let (mut answers, mut errors) = (0, 0);
        for op in [
            "+", "/", ">", ">= bool", "%", "^", "==", "!= bool", "and", "or", "unless",
        ] {
            for matching in [
                "",
                " on (app)",
                " ignoring (pod)",
                " on (app) group_left (zone)",
                " on (app) group_right",
                " ignoring (pod, zone) group_left",
                " on (zone) group_left",
                " on ()",
            ] {
                let query = format!(
                    "count_over_time({{a=\"b\"}}[1m]) {op}{matching} count_over_time({{a=\"b\"}}[1m])"
                );
                let Ok(Expr::Sample(SampleExpr::BinOp(b))) = fjord_logql::parse_expr(&query) else {
                    panic!("{query}");
                };
                for (k, (lhs, rhs)) in sides.iter().enumerate() {
                    for max_series in [0, 3] {
                        let by_series = if b.op.is_set_op() {
                            set_binop_series(&b, lhs.clone(), rhs.clone(), max_series)
                        } else {
                            binop_series(&b, lhs.clone(), rhs.clone(), max_series)
                        };
                        let by_step =
                            binop_steps(&b, lhs.clone().into_steps(), rhs.clone().into_steps())
                                .and_then(|steps| SeriesSteps::from_steps(steps, max_series));
                        match (by_series, by_step) {
                            (Ok(a), Ok(b)) => {
                                assert_eq!(bits(&a), bits(&b), "{query}, sides {k}");
                                answers += 1;
                            }
                            (Err(a), Err(b)) => {
                                assert_eq!(a.to_string(), b.to_string(), "{query}, sides {k}");
                                errors += 1;
                            }
                            (a, b) => panic!("{query}, sides {k}: {a:?} against {b:?}"),
                        }
                    }
                }
            }
        }
        assert!(
            answers > 100 && errors > 100,
            "{answers} answers, {errors} errors"
        );
    }

    #[test]
    fn aggregating_series_once_matches_aggregating_every_step() {
        for op in ["sum", "avg", "min", "max", "count", "stddev", "stdvar"] {
            for grouping in [
                "",
                " by (app)",
                " by (zone, app)",
                " without (pod)",
                " by (nope)",
            ] {
                let query = format!("{op}{grouping} (count_over_time({{a=\"b\"}}[1m]))");
                let v = vector_aggregation(&query);
                let by_series = aggregate_series(&v, series());
                let by_step =
                    SeriesSteps::from_steps(aggregate_steps(&v, series().into_steps()), 0).unwrap();
                assert_eq!(bits(&by_series), bits(&by_step), "{query}");
            }
        }
    }

    #[test]
    fn aggregations_over_operations_and_aggregations_add_in_the_same_order_either_way() {
        // Grouped by (zone, app), the groups are first met in another order than their labels'
        // (a0 z0, a1 z1, a2 z0, a0 z1, …); matched ignoring app, the left side's series come
        // in another order than the result's labels (pod p00, p03, …, p01, …).
        let per_zone_app =
            vector_aggregation("sum by (zone, app) (count_over_time({a=\"b\"}[1m]))");
        let per_pod = aggregate_series(
            &vector_aggregation("sum without (app) (count_over_time({a=\"b\"}[1m]))"),
            series(),
        );
        let Ok(Expr::Sample(SampleExpr::BinOp(plus))) = fjord_logql::parse_expr(
            "count_over_time({a=\"b\"}[1m]) + ignoring (app) count_over_time({a=\"b\"}[1m])",
        ) else {
            panic!("not a binary operation");
        };
        let inner_series = [
            aggregate_series(&per_zone_app, series()),
            binop_series(&plus, series(), per_pod.clone(), 0).unwrap(),
        ];
        let inner_steps = [
            aggregate_steps(&per_zone_app, series().into_steps()),
            binop_steps(&plus, series().into_steps(), per_pod.into_steps()).unwrap(),
        ];
        for (by_series, by_step) in inner_series.into_iter().zip(inner_steps) {
            for outer in [
                "sum by (zone) (count_over_time({a=\"b\"}[1m]))",
                "avg (count_over_time({a=\"b\"}[1m]))",
                "stddev by (zone) (count_over_time({a=\"b\"}[1m]))",
                "topk(1, count_over_time({a=\"b\"}[1m]))",
                "bottomk(2, count_over_time({a=\"b\"}[1m])) by (zone)",
            ] {
                let v = vector_aggregation(outer);
                let series_answer = if keeps_members(v.op) {
                    members_series(&v, by_series.clone())
                } else {
                    aggregate_series(&v, by_series.clone())
                };
                let step_answer =
                    SeriesSteps::from_steps(aggregate_steps(&v, by_step.clone()), 0).unwrap();
                assert_eq!(bits(&series_answer), bits(&step_answer), "{outer}");
            }
        }
    }
}
