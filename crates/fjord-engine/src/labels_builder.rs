//! The label set of one entry as it moves through a pipeline.
//!
//! An entry starts with its stream's labels (the *base*) and its structured metadata; parsers
//! add *parsed* labels, formatting stages set and delete labels, and failures set `__error__`
//! and `__error_details__`. The rules follow Loki's `LabelsBuilder` exactly, because they decide
//! the label sets (and so the streams and series) a query returns:
//! - a parsed or metadata name that collides with a stream label gets the suffix `_extracted`;
//! - a parsed label hides a metadata or stream label of the same name; metadata hides stream;
//! - deleting a name removes it from every category and hides the base label.
//!
//! The builder is reset per entry and reuses its buffers, so the hot path does not allocate
//! for entries that only pass through.

use std::sync::Arc;

use fjord_model::{Label, Labels};

/// Which part of an entry's label set a label belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Stream = 0,
    StructuredMetadata = 1,
    Parsed = 2,
}

pub const ERROR_LABEL: &str = "__error__";
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";
pub const EXTRACTED_SUFFIX: &str = "_extracted";

/// Whether structured metadata `md`, added to an entry's labels ([`LabelsBuilder::add`]), sets
/// the pipeline's error or its details.
pub fn metadata_sets_error(md: &[Label]) -> bool {
    md.iter()
        .any(|l| l.name == ERROR_LABEL || l.name == ERROR_DETAILS_LABEL)
}

/// The final labels of an entry, split as Loki's categorize-labels encoding needs them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategorizedLabels {
    /// Everything, sorted: the key that groups entries into result streams.
    pub all: Labels,
    pub stream: Labels,
    pub structured_metadata: Labels,
    pub parsed: Labels,
}

/// A list of labels whose string buffers survive `clear`, so filling it again for the next
/// entry does not allocate once the strings have grown to fit.
#[derive(Debug, Clone, Default)]
struct LabelSlots {
    slots: Vec<Label>,
    /// `slots[..len]` are the live labels; the rest are spare buffers.
    len: usize,
}

impl LabelSlots {
    fn clear(&mut self) {
        self.len = 0;
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_slice(&self) -> &[Label] {
        &self.slots[..self.len]
    }

    /// Sets `name` to `value`, in place when present, else appended.
    fn set(&mut self, name: &str, value: &str) {
        let live = &mut self.slots[..self.len];
        if let Some(l) = live.iter_mut().find(|l| l.name == name) {
            l.value.clear();
            l.value.push_str(value);
            return;
        }
        match self.slots.get_mut(self.len) {
            Some(spare) => {
                spare.name.clear();
                spare.name.push_str(name);
                spare.value.clear();
                spare.value.push_str(value);
            }
            None => self.slots.push(Label::new(name, value)),
        }
        self.len += 1;
    }

    /// Removes `name`, keeping the order of the others.
    fn remove(&mut self, name: &str) {
        if let Some(i) = self.as_slice().iter().position(|l| l.name == name) {
            self.slots[i..self.len].rotate_left(1);
            self.len -= 1;
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    base: Arc<Labels>,
    del: Vec<String>,
    add: [LabelSlots; 3],
    err: String,
    err_details: String,
}

fn contains(v: &[Label], name: &str) -> bool {
    v.iter().any(|l| l.name == name)
}

fn find<'a>(v: &'a [Label], name: &str) -> Option<&'a str> {
    v.iter().find(|l| l.name == name).map(|l| l.value.as_str())
}

impl LabelsBuilder {
    pub fn new(base: Arc<Labels>) -> Self {
        LabelsBuilder {
            base,
            ..Default::default()
        }
    }

    /// Starts over for the next entry of the same stream.
    pub fn reset(&mut self) {
        self.del.clear();
        for a in &mut self.add {
            a.clear();
        }
        self.err.clear();
        self.err_details.clear();
    }

    /// Starts over for an entry of another stream.
    pub fn reset_base(&mut self, base: Arc<Labels>) {
        self.base = base;
        self.reset();
    }

    pub fn base(&self) -> &Labels {
        &self.base
    }

    /// The stream labels, shared.
    pub fn shared_base(&self) -> &Arc<Labels> {
        &self.base
    }

    /// Whether a label a parser extracts under `name` collides with a stream label or the
    /// entry's structured metadata, and so takes the `_extracted` suffix.
    pub fn collides(&self, name: &str) -> bool {
        self.base_has(name) || self.has_in(name, Category::StructuredMetadata)
    }

    pub fn base_has(&self, name: &str) -> bool {
        self.base.contains(name)
    }

    /// The labels set in category `c`, in the order they were set.
    pub fn labels_in(&self, c: Category) -> &[Label] {
        self.add[c as usize].as_slice()
    }

    pub fn has_in(&self, name: &str, c: Category) -> bool {
        contains(self.add[c as usize].as_slice(), name)
    }

    pub fn err(&self) -> &str {
        &self.err
    }

    pub fn has_err(&self) -> bool {
        !self.err.is_empty()
    }

    pub fn set_err(&mut self, err: &str) {
        self.err.clear();
        self.err.push_str(err);
    }

    pub fn set_err_details(&mut self, d: &str) {
        self.err_details.clear();
        self.err_details.push_str(d);
    }

    pub fn err_details(&self) -> &str {
        &self.err_details
    }

    pub fn reset_err(&mut self) {
        self.err.clear();
    }

    pub fn reset_err_details(&mut self) {
        self.err_details.clear();
    }

    /// A label's value and category. `__error__` and `__error_details__` are answered too.
    pub fn get_with_category(&self, key: &str) -> Option<(&str, Category)> {
        for (i, c) in [
            Category::Stream,
            Category::StructuredMetadata,
            Category::Parsed,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(v) = find(self.add[i].as_slice(), key) {
                return Some((v, c));
            }
        }
        if self.del.iter().any(|d| d == key) {
            return None;
        }
        self.base
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| (v, Category::Stream))
    }

    /// A label's value as a pipeline stage sees it (errors included).
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            ERROR_LABEL if !self.err.is_empty() => Some(&self.err),
            ERROR_DETAILS_LABEL if !self.err_details.is_empty() => Some(&self.err_details),
            _ => self.get_with_category(key).map(|(v, _)| v),
        }
    }

    fn delete_in(&mut self, c: Category, name: &str) {
        self.add[c as usize].remove(name);
    }

    /// Removes labels from every category and hides base labels of those names.
    pub fn del(&mut self, name: &str) {
        for c in [
            Category::Stream,
            Category::StructuredMetadata,
            Category::Parsed,
        ] {
            self.delete_in(c, name);
        }
        self.del.push(name.to_string());
    }

    /// Sets a label in a category, with Loki's precedence between categories.
    pub fn set(&mut self, c: Category, name: &str, value: &str) {
        match c {
            Category::Parsed => {
                self.delete_in(Category::StructuredMetadata, name);
                self.delete_in(Category::Stream, name);
            }
            Category::StructuredMetadata => {
                self.delete_in(Category::Stream, name);
                if self.has_in(name, Category::Parsed) {
                    return;
                }
            }
            Category::Stream => {
                if self.has_in(name, Category::StructuredMetadata)
                    || self.has_in(name, Category::Parsed)
                {
                    return;
                }
            }
        }
        self.add[c as usize].set(name, value);
    }

    /// Adds labels (structured metadata of an entry, or unpacked ones) with the `_extracted`
    /// rule; `__error__`/`__error_details__` set the error instead.
    pub fn add(&mut self, c: Category, labels: &[Label]) {
        for l in labels {
            if self.base.contains(&l.name) {
                let name = format!("{}{EXTRACTED_SUFFIX}", l.name);
                self.set(c, &name, &l.value);
                continue;
            }
            match l.name.as_str() {
                ERROR_LABEL => self.set_err(&l.value),
                ERROR_DETAILS_LABEL => self.set_err_details(&l.value),
                _ => self.set(c, &l.name, &l.value),
            }
        }
    }

    fn has_changes(&self) -> bool {
        !self.del.is_empty() || self.add.iter().any(|a| !a.is_empty())
    }

    /// Whether the labels are exactly the stream's: nothing added, deleted or in error.
    pub fn is_unchanged(&self) -> bool {
        !self.has_changes() && self.err.is_empty() && self.err_details.is_empty()
    }

    /// Every visible label, unsorted, appended to `out` (cleared first): base minus deleted and
    /// shadowed names, then metadata, then parsed, then the error labels.
    pub fn unsorted(&self, out: &mut Vec<Label>) {
        out.clear();
        if !self.has_changes() {
            out.extend(self.base.iter().cloned());
        } else {
            for l in self.base.iter() {
                if self.del.iter().any(|d| *d == l.name)
                    || self.has_in(&l.name, Category::StructuredMetadata)
                    || self.has_in(&l.name, Category::Parsed)
                {
                    continue;
                }
                match find(self.add[Category::Stream as usize].as_slice(), &l.name) {
                    Some(v) => out.push(Label::new(l.name.clone(), v)),
                    None => out.push(l.clone()),
                }
            }
            for l in self.add[Category::StructuredMetadata as usize].as_slice() {
                if !self.has_in(&l.name, Category::Parsed) {
                    out.push(l.clone());
                }
            }
            out.extend(
                self.add[Category::Parsed as usize]
                    .as_slice()
                    .iter()
                    .cloned(),
            );
        }
        if !self.err.is_empty() {
            out.push(Label::new(ERROR_LABEL, self.err.clone()));
        }
        if !self.err_details.is_empty() {
            out.push(Label::new(ERROR_DETAILS_LABEL, self.err_details.clone()));
        }
    }

    /// The entry's final labels, all together: [`LabelsBuilder::result`]'s `all` without the
    /// split by category (half the copying).
    pub fn result_all(&self) -> Labels {
        if !self.has_changes() && self.err.is_empty() && self.err_details.is_empty() {
            return (*self.base).clone();
        }
        let mut buf = Vec::new();
        self.unsorted(&mut buf);
        Labels::from_pairs_keep_empty(buf.into_iter().map(|l| (l.name, l.value)))
    }

    /// The entry's final labels, split by category (errors count as parsed).
    pub fn result(&self) -> CategorizedLabels {
        if !self.has_changes() && self.err.is_empty() && self.err_details.is_empty() {
            let all = (*self.base).clone();
            return CategorizedLabels {
                stream: all.clone(),
                all,
                structured_metadata: Labels::empty(),
                parsed: Labels::empty(),
            };
        }
        let mut buf = Vec::new();
        self.unsorted(&mut buf);
        let mut stream = Vec::new();
        let mut meta = Vec::new();
        let mut parsed = Vec::new();
        for l in &buf {
            if l.name == ERROR_LABEL
                || l.name == ERROR_DETAILS_LABEL
                || self.has_in(&l.name, Category::Parsed)
            {
                parsed.push(l.clone());
            } else if self.has_in(&l.name, Category::StructuredMetadata) {
                meta.push(l.clone());
            } else {
                stream.push(l.clone());
            }
        }
        let pairs =
            |v: Vec<Label>| Labels::from_pairs_keep_empty(v.into_iter().map(|l| (l.name, l.value)));
        CategorizedLabels {
            all: pairs(buf),
            stream: pairs(stream),
            structured_metadata: pairs(meta),
            parsed: pairs(parsed),
        }
    }

    /// The value a `by (…)` grouping keeps for `group` (see [`LabelsBuilder::grouped`]): a set
    /// or parsed value, else a non-empty stream or metadata value, unless the label was dropped.
    pub fn grouped_value(&self, group: &str) -> Option<&str> {
        if self.del.iter().any(|d| d == group) {
            return None;
        }
        if let Some(l) = self
            .add
            .iter()
            .flat_map(LabelSlots::as_slice)
            .find(|l| l.name == group)
        {
            return Some(&l.value);
        }
        self.base.get(group).filter(|v| !v.is_empty())
    }

    /// Labels kept by a `by (…)` grouping, or removed by `without (…)`, as Loki computes them
    /// for range aggregations with grouping. An entry with an error keeps all its labels.
    pub fn grouped(&self, groups: &[String], without: bool) -> Labels {
        if self.has_err() {
            return self.result().all;
        }
        let mut buf = Vec::new();
        if !without {
            for g in groups {
                if let Some(v) = self.grouped_value(g) {
                    buf.push(Label::new(g.clone(), v));
                }
            }
        } else {
            for l in self.base.iter() {
                if self.del.iter().any(|d| *d == l.name)
                    || self
                        .add
                        .iter()
                        .flat_map(LabelSlots::as_slice)
                        .any(|a| a.name == l.name)
                    || groups.iter().any(|g| *g == l.name)
                {
                    continue;
                }
                buf.push(l.clone());
            }
            for l in self.add.iter().flat_map(LabelSlots::as_slice) {
                if !groups.iter().any(|g| *g == l.name) {
                    buf.push(l.clone());
                }
            }
        }
        Labels::from_pairs_keep_empty(buf.into_iter().map(|l| (l.name, l.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> LabelsBuilder {
        LabelsBuilder::new(Arc::new(Labels::from_pairs([
            ("app", "api"),
            ("level", "info"),
        ])))
    }

    #[test]
    fn precedence_and_extracted_suffix() {
        let mut l = b();
        l.add(
            Category::StructuredMetadata,
            &[Label::new("trace_id", "t1"), Label::new("app", "x")],
        );
        assert_eq!(l.get("app"), Some("api"));
        assert_eq!(l.get("app_extracted"), Some("x"));
        l.set(Category::Parsed, "trace_id", "parsed");
        assert_eq!(l.get("trace_id"), Some("parsed"));
        let r = l.result();
        assert_eq!(
            r.all.to_string(),
            r#"{app="api", app_extracted="x", level="info", trace_id="parsed"}"#
        );
        assert_eq!(r.parsed.to_string(), r#"{trace_id="parsed"}"#);
        assert_eq!(r.structured_metadata.to_string(), r#"{app_extracted="x"}"#);
    }

    #[test]
    fn delete_hides_base_and_errors_are_labels() {
        let mut l = b();
        l.del("level");
        assert_eq!(l.get("level"), None);
        l.set_err("JSONParserErr");
        assert_eq!(l.get(ERROR_LABEL), Some("JSONParserErr"));
        assert_eq!(
            l.result().all.to_string(),
            r#"{__error__="JSONParserErr", app="api"}"#
        );
        l.reset();
        assert_eq!(l.result().all.to_string(), r#"{app="api", level="info"}"#);
    }

    #[test]
    fn grouping() {
        let mut l = b();
        l.set(Category::Parsed, "status", "200");
        assert_eq!(
            l.grouped(&["status".into(), "app".into()], false)
                .to_string(),
            r#"{app="api", status="200"}"#
        );
        assert_eq!(
            l.grouped(&["status".into()], true).to_string(),
            r#"{app="api", level="info"}"#
        );
    }
}
