//! fjord-template (placeholder until built).
