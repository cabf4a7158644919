//! `line_format` and `label_format`: Go templates over an entry's labels, with `__line__` and
//! `__timestamp__` available as functions.
//!
//! Semantics follow Loki's formatters: a template that is only `{{.name}}` takes the label's
//! value directly (empty when absent); a failing template sets `TemplateFormatErr` and keeps
//! the line; `label_format` reads the label map once per entry, before its first template runs.

use std::collections::BTreeMap;

use fjord_template::{Template, TemplateData};

use crate::labels_builder::{Category, LabelsBuilder};
use crate::stages::ERR_TEMPLATE_FORMAT;

/// The labels of an entry as a template sees them.
struct EntryData<'a> {
    labels: &'a BTreeMap<String, String>,
    line: &'a str,
    ts: i64,
}

impl TemplateData for EntryData<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    fn for_each_label(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in self.labels {
            f(k, v);
        }
    }

    fn line(&self) -> &str {
        self.line
    }

    fn timestamp_ns(&self) -> i64 {
        self.ts
    }
}

/// The same view read straight from the builder: `line_format` runs once per entry and most
/// templates read a few labels by name, so the map of every label is built only when the
/// template walks all of them. [`LabelsBuilder::get`] answers as the map would: a name is in
/// at most one category, and the error labels win over a parsed label of the same name.
struct BuilderData<'a> {
    lbs: &'a LabelsBuilder,
    line: &'a str,
    ts: i64,
}

impl TemplateData for BuilderData<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        self.lbs.get(name)
    }

    fn for_each_label(&self, f: &mut dyn FnMut(&str, &str)) {
        for (k, v) in &label_map(self.lbs) {
            f(k, v);
        }
    }

    fn line(&self) -> &str {
        self.line
    }

    fn timestamp_ns(&self) -> i64 {
        self.ts
    }
}

fn label_map(lbs: &LabelsBuilder) -> BTreeMap<String, String> {
    let mut v = Vec::new();
    lbs.unsorted(&mut v);
    v.into_iter()
        .map(|l| (l.name.into_string(), l.value.into_string()))
        .collect()
}

/// A compiled `line_format`.
#[derive(Debug, Clone)]
pub struct LineFormatter {
    template: Template,
    /// Set when the template is exactly `{{.name}}`.
    simple_key: Option<String>,
}

impl LineFormatter {
    pub fn new(src: &str) -> Result<LineFormatter, String> {
        let template = Template::parse(src).map_err(|e| format!("invalid line template: {e}"))?;
        let simple_key = template.simple_key().map(str::to_string);
        Ok(LineFormatter {
            template,
            simple_key,
        })
    }

    /// The formatted line.
    pub fn format(&self, ts: i64, line: &[u8], lbs: &mut LabelsBuilder) -> Vec<u8> {
        if let Some(k) = &self.simple_key {
            return lbs
                .get_with_category(k)
                .map(|(v, _)| v.as_bytes().to_vec())
                .unwrap_or_default();
        }
        let line_str = String::from_utf8_lossy(line);
        let data = BuilderData {
            lbs,
            line: &line_str,
            ts,
        };
        match self.template.execute(&data) {
            Ok(s) => s.into_bytes(),
            Err(e) => {
                lbs.set_err(ERR_TEMPLATE_FORMAT);
                lbs.set_err_details(&e.to_string());
                line.to_vec()
            }
        }
    }

    pub fn referenced_labels(&self) -> Vec<String> {
        self.template.required_labels()
    }
}

/// One `label_format` term: `dst=src` (rename) or `dst="{{template}}"`.
#[derive(Debug, Clone)]
pub enum LabelFmt {
    Rename { dst: String, src: String },
    Template { dst: String, template: Template },
}

/// A compiled `label_format`.
#[derive(Debug, Clone)]
pub struct LabelsFormatter {
    formats: Vec<LabelFmt>,
}

impl LabelsFormatter {
    /// `terms` are (destination, value, is_rename).
    pub fn new(terms: &[(String, String, bool)]) -> Result<LabelsFormatter, String> {
        let mut seen = std::collections::HashSet::new();
        let mut formats = Vec::with_capacity(terms.len());
        for (dst, value, rename) in terms {
            if dst == crate::labels_builder::ERROR_LABEL {
                return Err(format!("{dst} cannot be formatted"));
            }
            if !seen.insert(dst.clone()) {
                return Err(format!(
                    "multiple label name '{dst}' not allowed in a single format operation"
                ));
            }
            formats.push(if *rename {
                LabelFmt::Rename {
                    dst: dst.clone(),
                    src: value.clone(),
                }
            } else {
                let template = Template::parse_named("label", value)
                    .map_err(|e| format!("invalid template for label '{dst}': {e}"))?;
                LabelFmt::Template {
                    dst: dst.clone(),
                    template,
                }
            });
        }
        Ok(LabelsFormatter { formats })
    }

    pub fn apply(&self, ts: i64, line: &[u8], lbs: &mut LabelsBuilder) {
        let mut labels: Option<BTreeMap<String, String>> = None;
        let line_str = String::from_utf8_lossy(line);
        for f in &self.formats {
            match f {
                LabelFmt::Rename { dst, src } => {
                    if let Some((v, _)) = lbs.get_with_category(src) {
                        let v = v.to_string();
                        lbs.set(Category::Parsed, dst, &v);
                        lbs.del(src);
                    }
                }
                LabelFmt::Template { dst, template } => {
                    let map = labels.get_or_insert_with(|| label_map(lbs));
                    let data = EntryData {
                        labels: map,
                        line: &line_str,
                        ts,
                    };
                    match template.execute(&data) {
                        Ok(v) => lbs.set(Category::Parsed, dst, &v),
                        Err(e) => {
                            lbs.set_err(ERR_TEMPLATE_FORMAT);
                            lbs.set_err_details(&e.to_string());
                        }
                    }
                }
            }
        }
    }

    pub fn referenced_labels(&self) -> Vec<String> {
        self.formats
            .iter()
            .flat_map(|f| match f {
                LabelFmt::Rename { src, .. } => vec![src.clone()],
                LabelFmt::Template { template, .. } => template.required_labels(),
            })
            .collect()
    }
}
