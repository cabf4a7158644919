//! fjord-chunk (placeholder until built).
