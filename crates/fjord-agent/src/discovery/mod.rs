//! Target discovery: where the label sets that relabeling turns into tailed files come from.
//!
//! A provider sends [`Update`]s of *target groups*, each identified by a source string (a
//! static config index, `pod/<namespace>/<name>`). A group's targets are label sets that
//! already include the group's common labels. An update with `full: true` replaces every group
//! the provider sent before (a re-list), otherwise it replaces only the groups it names; a
//! group with no targets is removed.

pub mod kubernetes;
pub mod static_sd;

use crate::relabel::LabelMap;

/// One target group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub source: String,
    pub targets: Vec<LabelMap>,
}

/// A change from one provider of one job.
#[derive(Debug, Clone)]
pub struct Update {
    /// Index of the job in `scrape_configs`.
    pub job: usize,
    /// Provider id, unique within the job.
    pub provider: String,
    pub groups: Vec<Group>,
    pub full: bool,
}
