//! fjord-querier (placeholder until built).
