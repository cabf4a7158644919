//! fjord-ingester (placeholder until built).
