//! Shared types of Fjord: labels, matchers, log entries, tenants, push requests, and the
//! service contracts between components.
//!
//! **Invariant:** this crate does no I/O and starts no tasks; it is data and codecs only, so the
//! agent, the CLI and every server component can depend on it.

pub mod buffer_pool;
pub mod duration;
pub mod goregex;
pub mod gostr;
pub mod jsonscan;
pub mod labels;
pub mod limits;
pub mod logfmt;
pub mod matcher;
pub mod memory_budget;
pub mod push;
pub mod rate;
pub mod service;
pub mod tenant;
pub mod varint;

pub use compact_str::CompactString;
pub use labels::{Fingerprint, Label, Labels};
pub use matcher::{LabelMatcher, MatchOp};
pub use push::{Entry, PushRequest, PushStream};
pub use tenant::TenantId;
