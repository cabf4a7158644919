//! fjord-api (placeholder until built).
