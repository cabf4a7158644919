//! Query results: streams of log entries, and the matrix/vector/scalar values of metric
//! queries. Times are Unix nanoseconds throughout; the API layer renders them.

use bytes::Bytes;
use fjord_model::{Label, Labels};

/// One returned log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub ts: i64,
    pub line: Bytes,
    /// Structured metadata still on the entry after the pipeline.
    pub structured_metadata: Vec<Label>,
    /// Labels the pipeline added (parsers, label_format…).
    pub parsed: Vec<Label>,
}

/// Entries grouped under one label set.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamResult {
    pub labels: Labels,
    pub entries: Vec<LogEntry>,
}

/// A metric series over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// (time in ns, value), time ascending.
    pub points: Vec<(i64, f64)>,
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub ts: i64,
    pub value: f64,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Streams(Vec<StreamResult>),
    Matrix(Vec<Series>),
    Vector(Vec<Sample>),
    Scalar { ts: i64, value: f64 },
}

impl QueryValue {
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryValue::Streams(_) => "streams",
            QueryValue::Matrix(_) => "matrix",
            QueryValue::Vector(_) => "vector",
            QueryValue::Scalar { .. } => "scalar",
        }
    }
}

/// Work counters reported in a response's `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryStats {
    pub bytes_processed: u64,
    pub lines_processed: u64,
    pub post_filter_lines: u64,
    pub chunks_ref: u64,
    pub chunks_downloaded: u64,
    pub blocks_skipped: u64,
    pub decompressed_bytes: u64,
    pub compressed_bytes: u64,
    pub entries_returned: u64,
    pub duplicates: u64,
    pub exec_time_secs: f64,
}

impl QueryStats {
    /// Adds the scan counters of a partial evaluation (run on another thread) to these.
    pub fn add_scan(&mut self, b: &QueryStats) {
        self.bytes_processed += b.bytes_processed;
        self.lines_processed += b.lines_processed;
        self.post_filter_lines += b.post_filter_lines;
        self.blocks_skipped += b.blocks_skipped;
        self.decompressed_bytes += b.decompressed_bytes;
    }
}
