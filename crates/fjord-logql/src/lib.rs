//! fjord-logql (placeholder until built).
