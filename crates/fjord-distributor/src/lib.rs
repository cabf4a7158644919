//! fjord-distributor (placeholder until built).
