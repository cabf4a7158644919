//! The distributor: the first stop of a push. It validates streams and entries with Loki's rules
//! and messages, adds `service_name` and `detected_level`, enforces the tenant's ingestion rate,
//! and forwards what is valid to the ingester.
//!
//! **Invariant:** the distributor holds no log data beyond one request; it is stateless apart
//! from rate-limit buckets.

pub mod distributor;
mod grouped_errors;
pub mod levels;
pub mod metrics;
pub mod validation;

pub use distributor::{Distributor, PushReply, ValidatedPush};
