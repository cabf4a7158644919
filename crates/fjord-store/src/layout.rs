//! Where things live in the object store.
//!
//! ```text
//! segments/<tenant>/<segment id>            chunks of many streams, back to back
//! index/<tenant>/<period>/<file id>.idx     streams and chunk refs of one flush (named after its
//!                                          segment) or one compaction, in one period
//! ```
//! A period is one UTC day (`period = floor(unix_seconds / 86400)`). A chunk is listed in the
//! index of every period it overlaps, so a query reads only the index files of its periods and
//! never lists segments.
//!
//! **Invariant:** tenant IDs reaching this module are validated [`fjord_model::TenantId`]s, so
//! every key has exactly the segments shown above.

use fjord_model::TenantId;
use object_store::path::Path;

/// Length of an index period in nanoseconds (one day).
pub const PERIOD_NS: i64 = 86_400 * 1_000_000_000;

/// The period holding timestamp `ts`.
pub fn period_of(ts: i64) -> i64 {
    ts.div_euclid(PERIOD_NS)
}

/// Periods overlapping the closed interval `[min_ts, max_ts]`.
pub fn periods(min_ts: i64, max_ts: i64) -> impl Iterator<Item = i64> {
    period_of(min_ts)..=period_of(max_ts.max(min_ts))
}

pub fn segments_prefix(tenant: &TenantId) -> Path {
    Path::from(format!("segments/{tenant}"))
}

pub fn segment_path(tenant: &TenantId, segment: &str) -> Path {
    Path::from(format!("segments/{tenant}/{segment}"))
}

pub fn index_prefix(tenant: &TenantId, period: i64) -> Path {
    Path::from(format!("index/{tenant}/{period}"))
}

pub fn index_path(tenant: &TenantId, period: i64, file_id: &str) -> Path {
    Path::from(format!("index/{tenant}/{period}/{file_id}.idx"))
}

/// The id of the index file at `p`, if the key is one of ours.
pub fn index_file_id(p: &Path) -> Option<&str> {
    p.filename()?.strip_suffix(".idx")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_day_boundaries() {
        let day = PERIOD_NS;
        assert_eq!(period_of(0), 0);
        assert_eq!(period_of(-1), -1);
        assert_eq!(periods(day - 1, day).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(periods(5, 5).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn keys() {
        let t = TenantId::new("fake").unwrap();
        let p = index_path(&t, 19737, "0001-ab");
        assert_eq!(p.as_ref(), "index/fake/19737/0001-ab.idx");
        assert_eq!(index_file_id(&p), Some("0001-ab"));
        assert_eq!(
            segment_path(&t, "0001-ab").as_ref(),
            "segments/fake/0001-ab"
        );
    }
}
