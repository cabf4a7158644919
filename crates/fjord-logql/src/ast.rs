//! The LogQL syntax tree.
//!
//! The tree is what the evaluator walks, so it is shaped for evaluation rather than for the
//! grammar: every node is already validated (a tree returned by [`crate::parse_expr`] is one Loki
//! would run), parenthesised sub-expressions are gone, and Loki's parse-time rewrites are applied:
//! * binary operations between two number literals are folded into one literal
//!   (`1 + 2 * 3` is the literal `7`), as Loki's `mustNewBinOpExpr` does;
//! * a negated line filter with `or` alternatives is split into separate filters
//!   (`!= "a" or "b"` is `!= "a" != "b"`: a line must contain neither);
//! * a vector aggregation without `by`/`without` gets the empty `by ()` grouping.
//!
//! Invariants:
//! * A [`LogSelectorExpr`] always has at least one matcher that does not match the empty string
//!   (checked by the parser for whole queries; [`crate::parse_matchers`] can return others).
//! * Binary-operation legs are sample expressions; log selectors only appear inside range
//!   aggregations.
//! * Durations are signed nanoseconds (`i64`, Go's `time.Duration`). Ranges are never negative;
//!   offsets and label-filter durations may be.
//! * Template and regex sources are kept as the query wrote them (after string unquoting); the
//!   evaluator compiles them. Regexes and JSON/logfmt paths in a tree from
//!   [`crate::parse_expr`] are known to compile/parse.

use fjord_model::LabelMatcher;

/// A whole query: a log query or a metric (sample) query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `{...} | stages`: returns log lines (`streams`).
    Log(LogSelectorExpr),
    /// Anything numeric: range/vector aggregations, literals, `vector()`, binary operations.
    Sample(SampleExpr),
}

/// A stream selector with its pipeline: `{app="api"} |= "error" | json`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSelectorExpr {
    /// The stream matchers, in query order.
    pub matchers: Vec<LabelMatcher>,
    /// The pipeline stages, in query order (empty for a bare selector). Loki may run line
    /// filters earlier than written (they commute with everything but `line_format` and
    /// `unpack`); that reordering is the evaluator's choice.
    pub stages: Vec<Stage>,
}

/// One pipeline stage.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Consecutive line filters (`|= "a" != "b" |~ "c"`), ANDed in order. Loki treats a run of
    /// line filters as one stage; they are kept together so printing and error messages match.
    LineFilters(Vec<LineFilter>),
    /// `| logfmt [--strict] [--keep-empty] [name="key", name2, ...]`.
    Logfmt(LogfmtParser),
    /// `| json` (no extractions: every field) or `| json a="x.y[0]", b`.
    Json(Vec<LabelExtraction>),
    /// `| regexp "re"`: named groups become labels (at least one named group; unique names).
    Regexp(String),
    /// `| pattern "<ip> - <_>"`: see [`crate::pattern::parse_pattern`] for the parsed form.
    Pattern(String),
    /// `| unpack`: JSON fields become labels and `_entry` replaces the line.
    Unpack,
    /// `| decolorize`: strips ANSI colour escape sequences from the line.
    Decolorize,
    /// `| <label filter>`.
    LabelFilter(LabelFilter),
    /// `| line_format "template"` (Go text/template source).
    LineFormat(String),
    /// `| label_format a=b, c="{{template}}"`. Names are unique and never `__error__`.
    LabelFormat(Vec<LabelFormat>),
    /// `| drop a, b="v", c=~"re"`.
    Drop(Vec<NamedMatcher>),
    /// `| keep a, b="v"`.
    Keep(Vec<NamedMatcher>),
}

/// One line filter: `op value [or value2 ...]`.
///
/// The alternatives (`or`) only occur with the positive operators (`|=`, `|~`, `|>`): a line
/// passes when it matches `value` or any alternative. Negative operators never carry
/// alternatives (the parser splits them into separate filters).
#[derive(Debug, Clone, PartialEq)]
pub struct LineFilter {
    pub op: LineFilterOp,
    pub value: LineMatch,
    pub or: Vec<LineMatch>,
}

/// Line filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineFilterOp {
    /// `|=`: the line contains the text.
    Contains,
    /// `!=`: the line does not contain the text.
    NotContains,
    /// `|~`: the (unanchored) regex matches.
    Regex,
    /// `!~`: the regex does not match.
    NotRegex,
    /// `|>`: the pattern (`<_>` wildcards) matches.
    Pattern,
    /// `!>`: the pattern does not match.
    NotPattern,
}

impl LineFilterOp {
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Regex => "|~",
            LineFilterOp::NotRegex => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }

    /// Whether the operator keeps lines that match (`|=`, `|~`, `|>`).
    pub fn is_positive(self) -> bool {
        matches!(
            self,
            LineFilterOp::Contains | LineFilterOp::Regex | LineFilterOp::Pattern
        )
    }
}

/// What a line filter tests for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineMatch {
    /// A literal text, regex or pattern, depending on the operator.
    Text(String),
    /// `ip("...")`: a single address, a CIDR prefix or a range `a-b` (only with `|=`/`!=`).
    Ip(String),
}

/// `| logfmt` options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogfmtParser {
    /// `--strict`: stop at the first malformed pair and flag the line.
    pub strict: bool,
    /// `--keep-empty`: keep valueless keys as `""`.
    pub keep_empty: bool,
    /// Selected keys (`| logfmt a="key", b`); empty means extract every key.
    pub extractions: Vec<LabelExtraction>,
}

/// `name="path"` or a bare `name` (whose path is the name itself) in `json`/`logfmt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelExtraction {
    /// The label to create.
    pub name: String,
    /// The JSON path (`a.b[0]`, `["k-y"]`) or logfmt key expression.
    pub expression: String,
}

/// One `label_format` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFormat {
    /// The label written.
    pub name: String,
    pub value: LabelFormatValue,
}

/// The right side of a `label_format` assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFormatValue {
    /// `dst=src`: copies `src` into `dst` and removes `src`.
    Rename(String),
    /// `dst="{{ template }}"`: renders the Go template; sources are kept.
    Template(String),
}

/// A `drop`/`keep` item.
#[derive(Debug, Clone, PartialEq)]
pub enum NamedMatcher {
    /// A bare label name: always dropped/kept.
    Name(String),
    /// A matcher: dropped/kept only when the label's value matches.
    Matcher(LabelMatcher),
}

impl NamedMatcher {
    /// The label the item is about.
    pub fn name(&self) -> &str {
        match self {
            NamedMatcher::Name(n) => n,
            NamedMatcher::Matcher(m) => &m.name,
        }
    }
}

/// A label filter tree. `and`, `,` and juxtaposition build [`LabelFilter::And`]; `and` binds
/// tighter than `or`; `,` and juxtaposition group to the right (Loki's grammar).
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name = "v"`, `!=`, `=~`, `!~`. A missing label compares as `""`; this is the only kind
    /// that can test `__error__`.
    String(LabelMatcher),
    /// `name > 1.5` etc.; the label value is parsed as a float.
    Number {
        name: String,
        op: CmpOp,
        value: f64,
    },
    /// `name > 250ms` etc.; the label value is parsed as a Go duration (nanoseconds here).
    Duration {
        name: String,
        op: CmpOp,
        value: i64,
    },
    /// `name > 20MB` etc.; the label value is parsed as a byte size.
    Bytes {
        name: String,
        op: CmpOp,
        value: u64,
    },
    /// `name = ip("10.0.0.0/8")` or `name != ip(...)`.
    Ip {
        name: String,
        negated: bool,
        pattern: String,
    },
}

impl LabelFilter {
    /// The labels the filter reads (Loki's `RequiredLabelNames`), in order, without duplicates.
    pub fn label_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut stack = vec![self];
        while let Some(f) = stack.pop() {
            let name = match f {
                LabelFilter::And(l, r) | LabelFilter::Or(l, r) => {
                    stack.push(r);
                    stack.push(l);
                    continue;
                }
                LabelFilter::String(m) => m.name.as_str(),
                LabelFilter::Number { name, .. }
                | LabelFilter::Duration { name, .. }
                | LabelFilter::Bytes { name, .. }
                | LabelFilter::Ip { name, .. } => name.as_str(),
            };
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}

/// Comparison operators of numeric, duration and bytes label filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=` or `==`.
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    /// As Loki prints it (`=` prints as `==`).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Neq => "!=",
            CmpOp::Gt => ">",
            CmpOp::Gte => ">=",
            CmpOp::Lt => "<",
            CmpOp::Lte => "<=",
        }
    }

    /// Applies the comparison.
    pub fn compare<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Neq => left != right,
            CmpOp::Gt => left > right,
            CmpOp::Gte => left >= right,
            CmpOp::Lt => left < right,
            CmpOp::Lte => left <= right,
        }
    }
}

/// A metric expression.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleExpr {
    /// `count_over_time({...}[5m])` and friends.
    RangeAggregation(RangeAggregation),
    /// `sum by (a) (...)` and friends.
    VectorAggregation(VectorAggregation),
    /// `lhs op rhs`. Never between two literals (those are folded).
    BinOp(BinOp),
    /// A number literal (possibly the result of folding).
    Literal(f64),
    /// `vector(n)`.
    Vector(f64),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    LabelReplace(LabelReplace),
}

/// `op([param,] <log range>) [by|without (...)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    pub op: RangeOp,
    /// The φ of `quantile_over_time` (required there, absent elsewhere).
    pub param: Option<f64>,
    pub range: LogRange,
    /// Only for the ops that allow it: avg, min, max, stddev, stdvar, quantile, first, last
    /// `_over_time`. `by ()` is kept as an empty grouping (it differs from none).
    pub grouping: Option<Grouping>,
}

/// A log selector over a time window: `{...} | stages [| unwrap ...] [5m] offset 1h`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRange {
    pub selector: LogSelectorExpr,
    /// The window, nanoseconds (> = 0; Prometheus duration syntax, millisecond resolution).
    pub range: i64,
    /// `offset d`, nanoseconds; may be negative; 0 when absent.
    pub offset: i64,
    /// `| unwrap ...`: sample values come from this label instead of counting lines/bytes.
    pub unwrap: Option<Unwrap>,
}

/// `| unwrap [conv(]label[)] [| label filter ...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    /// The label whose value becomes the sample.
    pub label: String,
    /// `bytes(...)`, `duration(...)`, `duration_seconds(...)`; `None` parses a float.
    pub conversion: Option<UnwrapConversion>,
    /// Label filters after the unwrap, ANDed, applied after extraction.
    pub post_filters: Vec<LabelFilter>,
}

/// Unwrap value conversions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnwrapConversion {
    /// `bytes(l)`: byte sizes such as `20MB`.
    Bytes,
    /// `duration(l)`: Go durations, as seconds.
    Duration,
    /// `duration_seconds(l)`: same as `duration`.
    DurationSeconds,
}

impl UnwrapConversion {
    pub fn as_str(self) -> &'static str {
        match self {
            UnwrapConversion::Bytes => "bytes",
            UnwrapConversion::Duration => "duration",
            UnwrapConversion::DurationSeconds => "duration_seconds",
        }
    }
}

/// Range aggregation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    RateCounter,
    BytesOverTime,
    BytesRate,
    AvgOverTime,
    SumOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    AbsentOverTime,
}

impl RangeOp {
    pub const ALL: [RangeOp; 15] = [
        RangeOp::CountOverTime,
        RangeOp::Rate,
        RangeOp::RateCounter,
        RangeOp::BytesOverTime,
        RangeOp::BytesRate,
        RangeOp::AvgOverTime,
        RangeOp::SumOverTime,
        RangeOp::MinOverTime,
        RangeOp::MaxOverTime,
        RangeOp::StdvarOverTime,
        RangeOp::StddevOverTime,
        RangeOp::QuantileOverTime,
        RangeOp::FirstOverTime,
        RangeOp::LastOverTime,
        RangeOp::AbsentOverTime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::CountOverTime => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::BytesOverTime => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::AvgOverTime => "avg_over_time",
            RangeOp::SumOverTime => "sum_over_time",
            RangeOp::MinOverTime => "min_over_time",
            RangeOp::MaxOverTime => "max_over_time",
            RangeOp::StdvarOverTime => "stdvar_over_time",
            RangeOp::StddevOverTime => "stddev_over_time",
            RangeOp::QuantileOverTime => "quantile_over_time",
            RangeOp::FirstOverTime => "first_over_time",
            RangeOp::LastOverTime => "last_over_time",
            RangeOp::AbsentOverTime => "absent_over_time",
        }
    }

    pub fn from_name(s: &str) -> Option<RangeOp> {
        RangeOp::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// Whether `by`/`without` after the call is allowed.
    pub fn allows_grouping(self) -> bool {
        matches!(
            self,
            RangeOp::AvgOverTime
                | RangeOp::StddevOverTime
                | RangeOp::StdvarOverTime
                | RangeOp::QuantileOverTime
                | RangeOp::MaxOverTime
                | RangeOp::MinOverTime
                | RangeOp::FirstOverTime
                | RangeOp::LastOverTime
        )
    }

    /// Whether the op may be used with `| unwrap`.
    pub fn allows_unwrap(self) -> bool {
        !matches!(
            self,
            RangeOp::CountOverTime | RangeOp::BytesOverTime | RangeOp::BytesRate
        )
    }

    /// Whether the op may be used without `| unwrap` (counts lines or bytes).
    pub fn allows_no_unwrap(self) -> bool {
        matches!(
            self,
            RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::AbsentOverTime
        )
    }
}

/// Vector aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorOp {
    Sum,
    Avg,
    Max,
    Min,
    Count,
    Stddev,
    Stdvar,
    Bottomk,
    Topk,
    Sort,
    SortDesc,
    ApproxTopk,
}

impl VectorOp {
    pub const ALL: [VectorOp; 12] = [
        VectorOp::Sum,
        VectorOp::Avg,
        VectorOp::Max,
        VectorOp::Min,
        VectorOp::Count,
        VectorOp::Stddev,
        VectorOp::Stdvar,
        VectorOp::Bottomk,
        VectorOp::Topk,
        VectorOp::Sort,
        VectorOp::SortDesc,
        VectorOp::ApproxTopk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Max => "max",
            VectorOp::Min => "min",
            VectorOp::Count => "count",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Topk => "topk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
            VectorOp::ApproxTopk => "approx_topk",
        }
    }

    pub fn from_name(s: &str) -> Option<VectorOp> {
        VectorOp::ALL.into_iter().find(|op| op.as_str() == s)
    }

    /// `topk`, `bottomk` and `approx_topk` take a k parameter.
    pub fn takes_param(self) -> bool {
        matches!(
            self,
            VectorOp::Topk | VectorOp::Bottomk | VectorOp::ApproxTopk
        )
    }
}

/// `op [by|without (...)] ([k,] expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    pub op: VectorOp,
    /// k of `topk`/`bottomk`/`approx_topk` (always > 0 there; `None` for other ops).
    pub param: Option<i64>,
    pub inner: Box<SampleExpr>,
    /// Always present; `by ()` (empty, not without) when the query had none. `sort`/`sort_desc`
    /// never have labels here, `approx_topk` never has a written grouping.
    pub grouping: Grouping,
}

/// `by (a, b)` / `without (a, b)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grouping {
    pub without: bool,
    /// In query order, possibly empty.
    pub labels: Vec<String>,
}

impl Grouping {
    /// `without ()`: keeps every label.
    pub fn is_noop(&self) -> bool {
        self.without && self.labels.is_empty()
    }

    /// `by ()` (or no grouping): one output series without labels.
    pub fn is_singleton(&self) -> bool {
        !self.without && self.labels.is_empty()
    }
}

/// `lhs op [bool] [on|ignoring (...)] [group_left|group_right [(...)]] rhs`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinOp {
    pub op: BinOpKind,
    pub lhs: Box<SampleExpr>,
    pub rhs: Box<SampleExpr>,
    pub modifier: BinOpModifier,
}

/// Binary operators, in Loki's precedence groups (lowest first): `or`; `and unless`;
/// comparisons; `+ -`; `* / %`; `^` (right-associative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOpKind {
    Or,
    And,
    Unless,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    CmpEq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl BinOpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BinOpKind::Or => "or",
            BinOpKind::And => "and",
            BinOpKind::Unless => "unless",
            BinOpKind::Add => "+",
            BinOpKind::Sub => "-",
            BinOpKind::Mul => "*",
            BinOpKind::Div => "/",
            BinOpKind::Mod => "%",
            BinOpKind::Pow => "^",
            BinOpKind::CmpEq => "==",
            BinOpKind::Neq => "!=",
            BinOpKind::Gt => ">",
            BinOpKind::Gte => ">=",
            BinOpKind::Lt => "<",
            BinOpKind::Lte => "<=",
        }
    }

    /// `and`, `or`, `unless`.
    pub fn is_set_op(self) -> bool {
        matches!(self, BinOpKind::Or | BinOpKind::And | BinOpKind::Unless)
    }

    /// `== != > >= < <=`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOpKind::CmpEq
                | BinOpKind::Neq
                | BinOpKind::Gt
                | BinOpKind::Gte
                | BinOpKind::Lt
                | BinOpKind::Lte
        )
    }

    /// Loki's value merge for two samples (`MergeBinOp` without filtering): arithmetic, or 1/0
    /// for comparisons. Division and modulo by zero give NaN, as in Loki. Set operators have no
    /// value semantics and return `None`.
    pub fn apply(self, l: f64, r: f64) -> Option<f64> {
        let b = |c: bool| if c { 1.0 } else { 0.0 };
        Some(match self {
            BinOpKind::Add => l + r,
            BinOpKind::Sub => l - r,
            BinOpKind::Mul => l * r,
            BinOpKind::Div => {
                if r == 0.0 {
                    f64::NAN
                } else {
                    l / r
                }
            }
            BinOpKind::Mod => {
                if r == 0.0 {
                    f64::NAN
                } else {
                    l % r
                }
            }
            BinOpKind::Pow => l.powf(r),
            BinOpKind::CmpEq => b(l == r),
            BinOpKind::Neq => b(l != r),
            BinOpKind::Gt => b(l > r),
            BinOpKind::Gte => b(l >= r),
            BinOpKind::Lt => b(l < r),
            BinOpKind::Lte => b(l <= r),
            BinOpKind::Or | BinOpKind::And | BinOpKind::Unless => return None,
        })
    }
}

/// Modifiers of a binary operation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BinOpModifier {
    /// `bool`: comparisons return 0/1 instead of filtering.
    pub return_bool: bool,
    pub matching: VectorMatching,
}

/// How series of the two sides are paired (PromQL semantics).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// `on (...)` when true; otherwise `ignoring (labels)` (empty labels: match on all labels).
    pub on: bool,
    pub labels: Vec<String>,
    /// The `group_left (...)`/`group_right (...)` extra labels.
    pub include: Vec<String>,
}

/// Matching cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Cardinality {
    #[default]
    OneToOne,
    /// `group_left`.
    ManyToOne,
    /// `group_right`.
    OneToMany,
}

/// `label_replace(inner, "dst", "replacement", "src", "regex")`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReplace {
    pub inner: Box<SampleExpr>,
    pub dst: String,
    pub replacement: String,
    pub src: String,
    /// The regex source; it is anchored (`^(?:regex)$`) when applied.
    pub regex: String,
}

// ---- helpers for the evaluator ----

impl Expr {
    /// Whether this is a log query (returns streams) rather than a metric query.
    pub fn is_log(&self) -> bool {
        matches!(self, Expr::Log(_))
    }

    /// The stream matchers of every selector in the query, in query order (one entry per
    /// selector).
    pub fn selector_matchers(&self) -> Vec<&[LabelMatcher]> {
        match self {
            Expr::Log(l) => vec![&l.matchers],
            Expr::Sample(s) => s.selector_matchers(),
        }
    }

    /// Every log selector in the query (with its pipeline), in query order.
    pub fn log_selectors(&self) -> Vec<&LogSelectorExpr> {
        match self {
            Expr::Log(l) => vec![l],
            Expr::Sample(s) => s.log_ranges().into_iter().map(|r| &r.selector).collect(),
        }
    }
}

impl LogSelectorExpr {
    /// Whether any stage can drop lines (a label filter, or a line filter other than an empty
    /// `|= ""`/`|~ ""`), as Loki's `HasFilter`.
    pub fn has_filter(&self) -> bool {
        self.stages.iter().any(|s| match s {
            Stage::LabelFilter(_) => true,
            Stage::LineFilters(fs) => fs.iter().any(|f| {
                !matches!(f.op, LineFilterOp::Contains | LineFilterOp::Regex)
                    || f.value != LineMatch::Text(String::new())
            }),
            _ => false,
        })
    }

    /// Every line filter of the pipeline, in query order (for pre-filtering data, e.g. with
    /// n-gram filters: a `|=` literal must occur in every kept line unless it has `or`
    /// alternatives).
    pub fn line_filters(&self) -> impl Iterator<Item = &LineFilter> {
        self.stages.iter().flat_map(|s| match s {
            Stage::LineFilters(fs) => fs.as_slice(),
            _ => &[],
        })
    }

    /// The stages in the order Loki runs them; see [`crate::validate::execution_order`].
    pub fn stages_in_execution_order(&self) -> Vec<Stage> {
        crate::validate::execution_order(&self.stages)
    }

    /// The matchers an index can look up: those that do not match the empty string (Loki's
    /// `SplitFiltersAndMatchers`); the others must be applied after fetching.
    pub fn selecting_matchers(&self) -> impl Iterator<Item = &LabelMatcher> {
        self.matchers.iter().filter(|m| is_selecting(m))
    }
}

/// Whether a matcher narrows the set of streams: it does not match the empty string (a missing
/// label). `{a!=""}` counts; `{a=~".*"}` and `{a!="x"}` do not.
pub(crate) fn is_selecting(m: &LabelMatcher) -> bool {
    !m.matches_empty()
}

impl SampleExpr {
    /// Every range (log selector + window) in the expression, in query order.
    pub fn log_ranges(&self) -> Vec<&LogRange> {
        let mut out = Vec::new();
        self.walk(&mut |e| {
            if let SampleExpr::RangeAggregation(r) = e {
                out.push(&r.range);
            }
        });
        out
    }

    /// The stream matchers of every selector, in query order.
    pub fn selector_matchers(&self) -> Vec<&[LabelMatcher]> {
        self.log_ranges()
            .into_iter()
            .map(|r| r.selector.matchers.as_slice())
            .collect()
    }

    /// Visits this node and its descendants depth-first, left to right (pre-order).
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(&'a SampleExpr)) {
        f(self);
        match self {
            SampleExpr::VectorAggregation(v) => v.inner.walk(f),
            SampleExpr::BinOp(b) => {
                b.lhs.walk(f);
                b.rhs.walk(f);
            }
            SampleExpr::LabelReplace(l) => l.inner.walk(f),
            SampleExpr::RangeAggregation(_) | SampleExpr::Literal(_) | SampleExpr::Vector(_) => {}
        }
    }
}
