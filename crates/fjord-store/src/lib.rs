//! fjord-store (placeholder until built).
