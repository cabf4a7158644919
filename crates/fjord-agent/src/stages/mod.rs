//! Pipeline stages (`pipeline_stages`): what happens to each line between the file and the
//! push.
//!
//! An [`Entry`] carries the line, its timestamp, its stream labels, structured metadata and the
//! *extracted* map that parsing stages fill and later stages read, exactly as in Promtail. A
//! [`Pipeline`] runs its stages in order over a batch of entries; a stage may pass an entry on,
//! change it, drop it, or hold it back and emit it later (`cri` partial lines, `multiline`
//! blocks). Stages that hold entries release them on [`Pipeline::tick`] (time-based flushes)
//! and [`Pipeline::flush`] (shutdown).
//!
//! **Invariant:** an entry's acknowledgement handles ([`crate::positions::Ack`]) travel with it;
//! when stages merge entries the handles are merged too, so a file position never moves past a
//! line that is still held inside a stage.

mod container;
mod decolorize;
mod drop;
mod golayout;
mod jmespath;
mod json;
mod labels;
mod limit;
mod logfmt;
mod matcher;
mod multiline;
mod output;
mod regex;
mod replace;
mod template;
mod tenant;
mod timestamp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;
use smallvec::SmallVec;

use crate::metrics::Metrics;
use crate::positions::Ack;
use crate::relabel::LabelMap;

pub use self::container::CriConfig;
pub use self::drop::DropConfig;
pub use self::json::JsonConfig;
pub use self::limit::LimitConfig;
pub use self::logfmt::LogfmtConfig;
pub use self::matcher::MatchConfig;
pub use self::multiline::MultilineConfig;
pub use self::output::OutputConfig;
pub use self::regex::RegexConfig;
pub use self::replace::ReplaceConfig;
pub use self::template::TemplateConfig;
pub use self::tenant::TenantConfig;
pub use self::timestamp::TimestampConfig;

/// The label the `tenant` stage sets; the client sends the entry with this `X-Scope-OrgID` and
/// removes the label (Promtail's `ReservedLabelTenantID`).
pub const TENANT_LABEL: &str = "__tenant_id__";

/// One log entry inside the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub labels: LabelMap,
    pub extracted: HashMap<String, Value>,
    pub line: String,
    /// Unix nanoseconds.
    pub ts: i64,
    pub metadata: Vec<(String, String)>,
    pub acks: SmallVec<[Ack; 1]>,
}

impl Entry {
    /// An entry with just a line, labels and timestamp (as the tailer makes it).
    pub fn new(labels: LabelMap, line: String, ts: i64) -> Entry {
        Entry {
            labels,
            line,
            ts,
            ..Default::default()
        }
    }

    /// Takes over `other`'s acknowledgement handles (used when merging entries).
    pub fn absorb_acks(&mut self, other: &mut Entry) {
        self.acks.extend(other.acks.drain(..));
    }

    /// The stream identity used by stateful stages: a 64-bit hash of the label set, as
    /// Promtail keys them by label fingerprint.
    pub(crate) fn stream_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.labels.hash(&mut h);
        h.finish()
    }
}

/// Promtail's `getString`: the text of an extracted value; `None` for null (Go's nil is not
/// convertible). Numbers print like Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(if let Some(i) = n.as_i64() {
            i.to_string()
        } else if let Some(u) = n.as_u64() {
            u.to_string()
        } else {
            n.as_f64().map(|f| format!("{f}")).unwrap_or_default()
        }),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Reads a string from the extracted map (`source`) or, when `source` is `None`, the line.
/// `None` when the source is missing or not convertible, as Promtail skips the stage then.
pub(crate) fn source_text(e: &Entry, source: Option<&str>) -> Option<String> {
    match source {
        None => Some(e.line.clone()),
        Some(s) => e.extracted.get(s).and_then(value_string),
    }
}

/// A configuration error in one stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{stage} stage: {message}")]
pub struct StageError {
    pub stage: &'static str,
    pub message: String,
}

impl StageError {
    pub(crate) fn new(stage: &'static str, message: impl Into<String>) -> StageError {
        StageError {
            stage,
            message: message.into(),
        }
    }
}

/// Where a stage's results go.
pub(crate) type Out = Vec<Entry>;

/// One compiled stage.
pub(crate) trait Stage: Send {
    /// Processes one entry, pushing whatever it emits (zero, one or more entries) to `out`.
    fn process(&mut self, e: Entry, out: &mut Out);
    /// Emits entries held longer than the stage allows (called periodically).
    fn tick(&mut self, _now: Instant, _out: &mut Out) {}
    /// Emits everything held (shutdown).
    fn flush(&mut self, _out: &mut Out) {}
}

/// Stages that need nothing but the entry itself.
pub(crate) struct FnStage<F: FnMut(&mut Entry) -> bool + Send>(pub F);

impl<F: FnMut(&mut Entry) -> bool + Send> Stage for FnStage<F> {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        if (self.0)(&mut e) {
            out.push(e);
        }
    }
}

/// `labels: {name: source}` maps, where an empty/null source means "same as the name".
pub type NameMap = std::collections::BTreeMap<String, Option<String>>;

/// One `pipeline_stages` entry as written in the config (`- docker: {}`, `- regex: {...}`):
/// a map with exactly one key, the stage name.
#[derive(Debug, Clone)]
pub enum StageConfig {
    Docker(Option<serde_yaml::Value>),
    Cri(Option<CriConfig>),
    Regex(RegexConfig),
    Json(JsonConfig),
    Logfmt(LogfmtConfig),
    Replace(ReplaceConfig),
    Labels(Option<NameMap>),
    StructuredMetadata(Option<NameMap>),
    StaticLabels(Option<std::collections::BTreeMap<String, Option<String>>>),
    Labeldrop(Option<Vec<String>>),
    Labelallow(Option<Vec<String>>),
    Timestamp(TimestampConfig),
    Output(OutputConfig),
    Match(MatchConfig),
    Drop(DropConfig),
    Multiline(MultilineConfig),
    Limit(LimitConfig),
    Template(TemplateConfig),
    Tenant(TenantConfig),
    Decolorize(Option<serde_yaml::Value>),
    /// Accepted by name only to give a clear error (metrics stages are not supported).
    Metrics(Option<serde_yaml::Value>),
    Pack(Option<serde_yaml::Value>),
    Sampling(Option<serde_yaml::Value>),
    Geoip(Option<serde_yaml::Value>),
    Eventlogmessage(Option<serde_yaml::Value>),
}

const STAGE_NAMES: &[&str] = &[
    "docker",
    "cri",
    "regex",
    "json",
    "logfmt",
    "replace",
    "labels",
    "structured_metadata",
    "static_labels",
    "labeldrop",
    "labelallow",
    "timestamp",
    "output",
    "match",
    "drop",
    "multiline",
    "limit",
    "template",
    "tenant",
    "decolorize",
    "metrics",
    "pack",
    "sampling",
    "geoip",
    "eventlogmessage",
];

impl<'de> Deserialize<'de> for StageConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StageConfig;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map with one key naming a pipeline stage (for example `docker: {}`)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StageConfig, A::Error> {
                use serde::de::Error;
                let Some(name) = map.next_key::<String>()? else {
                    return Err(A::Error::custom(
                        "empty pipeline stage: expected one key naming the stage",
                    ));
                };
                let stage = match name.as_str() {
                    "docker" => StageConfig::Docker(map.next_value()?),
                    "cri" => StageConfig::Cri(map.next_value()?),
                    "regex" => StageConfig::Regex(map.next_value()?),
                    "json" => StageConfig::Json(map.next_value()?),
                    "logfmt" => StageConfig::Logfmt(map.next_value()?),
                    "replace" => StageConfig::Replace(map.next_value()?),
                    "labels" => StageConfig::Labels(map.next_value()?),
                    "structured_metadata" => StageConfig::StructuredMetadata(map.next_value()?),
                    "static_labels" => StageConfig::StaticLabels(map.next_value()?),
                    "labeldrop" => StageConfig::Labeldrop(map.next_value()?),
                    "labelallow" => StageConfig::Labelallow(map.next_value()?),
                    "timestamp" => StageConfig::Timestamp(map.next_value()?),
                    "output" => StageConfig::Output(map.next_value()?),
                    "match" => StageConfig::Match(map.next_value()?),
                    "drop" => StageConfig::Drop(map.next_value()?),
                    "multiline" => StageConfig::Multiline(map.next_value()?),
                    "limit" => StageConfig::Limit(map.next_value()?),
                    "template" => StageConfig::Template(map.next_value()?),
                    "tenant" => StageConfig::Tenant(map.next_value()?),
                    "decolorize" => StageConfig::Decolorize(map.next_value()?),
                    "metrics" => StageConfig::Metrics(map.next_value()?),
                    "pack" => StageConfig::Pack(map.next_value()?),
                    "sampling" => StageConfig::Sampling(map.next_value()?),
                    "geoip" => StageConfig::Geoip(map.next_value()?),
                    "eventlogmessage" => StageConfig::Eventlogmessage(map.next_value()?),
                    other => return Err(A::Error::unknown_variant(other, STAGE_NAMES)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(A::Error::custom(format!(
                        "pipeline stage {name:?} has a second key {extra:?}: write each stage as its own list item"
                    )));
                }
                Ok(stage)
            }
        }
        d.deserialize_map(V)
    }
}

/// What compiled stages share: metrics and the job's name.
#[derive(Clone)]
pub struct BuildContext {
    pub metrics: Arc<Metrics>,
    pub job: String,
}

fn build_stage(cfg: &StageConfig, ctx: &BuildContext) -> Result<Vec<Box<dyn Stage>>, StageError> {
    let one = |s: Box<dyn Stage>| Ok(vec![s]);
    match cfg {
        StageConfig::Docker(_) => Ok(container::docker()?),
        StageConfig::Cri(c) => Ok(container::cri(&c.clone().unwrap_or_default())?),
        StageConfig::Regex(c) => one(Box::new(regex::RegexStage::new(c)?)),
        StageConfig::Json(c) => one(Box::new(json::JsonStage::new(c)?)),
        StageConfig::Logfmt(c) => one(Box::new(logfmt::LogfmtStage::new(c)?)),
        StageConfig::Replace(c) => one(Box::new(replace::ReplaceStage::new(c)?)),
        StageConfig::Labels(c) => one(labels::labels(c.as_ref().unwrap_or(&NameMap::new()))?),
        StageConfig::StructuredMetadata(c) => one(labels::structured_metadata(
            c.as_ref().unwrap_or(&NameMap::new()),
        )?),
        StageConfig::StaticLabels(c) => one(labels::static_labels(
            c.as_ref().unwrap_or(&Default::default()),
        )?),
        StageConfig::Labeldrop(c) => one(labels::labeldrop(c.as_deref().unwrap_or(&[]))),
        StageConfig::Labelallow(c) => one(labels::labelallow(c.as_deref().unwrap_or(&[]))?),
        StageConfig::Timestamp(c) => one(Box::new(timestamp::TimestampStage::new(c)?)),
        StageConfig::Output(c) => one(output::output(c)?),
        StageConfig::Match(c) => one(Box::new(matcher::MatchStage::new(c, ctx)?)),
        StageConfig::Drop(c) => one(Box::new(drop::DropStage::new(c, ctx)?)),
        StageConfig::Multiline(c) => one(Box::new(multiline::MultilineStage::new(c)?)),
        StageConfig::Limit(c) => one(Box::new(limit::LimitStage::new(c, ctx)?)),
        StageConfig::Template(c) => one(Box::new(template::TemplateStage::new(c)?)),
        StageConfig::Tenant(c) => one(tenant::tenant(c)?),
        StageConfig::Decolorize(_) => one(decolorize::decolorize()),
        StageConfig::Metrics(_) => Err(StageError::new(
            "metrics",
            "not supported by fjord agent; remove the stage",
        )),
        StageConfig::Pack(_) => Err(StageError::new(
            "pack",
            "not supported by fjord agent; remove the stage",
        )),
        StageConfig::Sampling(_) => Err(StageError::new(
            "sampling",
            "not supported by fjord agent; remove the stage",
        )),
        StageConfig::Geoip(_) => Err(StageError::new(
            "geoip",
            "not supported by fjord agent; remove the stage",
        )),
        StageConfig::Eventlogmessage(_) => Err(StageError::new(
            "eventlogmessage",
            "not supported by fjord agent; remove the stage",
        )),
    }
}

/// A compiled list of stages.
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pipeline({} stages)", self.stages.len())
    }
}

impl Pipeline {
    /// Compiles `pipeline_stages`.
    pub fn new(cfgs: &[StageConfig], ctx: &BuildContext) -> Result<Pipeline, StageError> {
        let mut stages = Vec::new();
        for c in cfgs {
            stages.extend(build_stage(c, ctx)?);
        }
        Ok(Pipeline { stages })
    }

    /// Whether the pipeline has no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    fn run_from(&mut self, start: usize, mut cur: Vec<Entry>) -> Vec<Entry> {
        for s in &mut self.stages[start..] {
            if cur.is_empty() {
                break;
            }
            let mut next = Vec::with_capacity(cur.len());
            for e in cur {
                s.process(e, &mut next);
            }
            cur = next;
        }
        cur
    }

    /// Runs a batch of entries through every stage.
    pub fn process(&mut self, entries: Vec<Entry>) -> Vec<Entry> {
        self.run_from(0, entries)
    }

    /// Runs a single entry through every stage.
    pub fn process_one(&mut self, e: Entry) -> Vec<Entry> {
        self.run_from(0, vec![e])
    }

    /// Releases entries held past their stage's time limit.
    pub fn tick(&mut self, now: Instant) -> Vec<Entry> {
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            let mut held = Vec::new();
            self.stages[i].tick(now, &mut held);
            if !held.is_empty() {
                out.extend(self.run_from(i + 1, held));
            }
        }
        out
    }

    /// Releases everything held (shutdown, or when an input ends).
    pub fn flush(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        for i in 0..self.stages.len() {
            let mut held = Vec::new();
            self.stages[i].flush(&mut held);
            if !held.is_empty() {
                out.extend(self.run_from(i + 1, held));
            }
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    pub(crate) fn ctx() -> BuildContext {
        BuildContext {
            metrics: Arc::new(Metrics::new()),
            job: "test".into(),
        }
    }

    /// Compiles a pipeline from YAML `pipeline_stages`.
    pub(crate) fn pipeline(yaml: &str) -> Pipeline {
        let cfgs: Vec<StageConfig> =
            serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        Pipeline::new(&cfgs, &ctx()).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    pub(crate) fn build_err(yaml: &str) -> String {
        let cfgs: Vec<StageConfig> = match serde_yaml::from_str(yaml) {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        match Pipeline::new(&cfgs, &ctx()) {
            Ok(_) => panic!("{yaml}: expected an error"),
            Err(e) => e.to_string(),
        }
    }

    pub(crate) fn entry(line: &str) -> Entry {
        Entry::new(LabelMap::new(), line.to_string(), 1_000)
    }

    pub(crate) fn entry_with(labels: &[(&str, &str)], line: &str, ts: i64) -> Entry {
        Entry::new(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            line.to_string(),
            ts,
        )
    }

    pub(crate) fn ex(e: &Entry, k: &str) -> Option<String> {
        e.extracted.get(k).and_then(value_string)
    }

    pub(crate) fn label<'a>(e: &'a Entry, k: &str) -> Option<&'a str> {
        e.labels.get(k).map(String::as_str)
    }
}
