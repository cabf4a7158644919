//! fjord-engine (placeholder until built).
