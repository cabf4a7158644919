//! Deleting what compactions superseded: index files a live compaction replaced, and segments
//! no live index file references (the inputs of a compaction once their files are replaced, or
//! a flush that crashed between writing its segment and its index file).
//!
//! Both wait `delete_delay`: a querier may still be reading a superseded file's chunks, or may
//! not yet have loaded the compaction that replaced it. The segment listing is taken before the
//! indexes are read and pinned segments are skipped, so a segment whose index file is being
//! published while this runs is never taken for garbage.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fjord_model::TenantId;
use fjord_store::Store;

use crate::CompactorError;

/// What one collection deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub index_files: usize,
    pub segments: usize,
    pub segment_bytes: u64,
}

/// Deletes `tenant`'s superseded objects older than `delay`. `deleted` remembers the replaced
/// index files already deleted, as (period, id), so they are not deleted again every round.
pub async fn collect(
    store: &Store,
    tenant: &TenantId,
    delay: Duration,
    now: SystemTime,
    deleted: &mut HashSet<(i64, Arc<str>)>,
) -> Result<Collected, CompactorError> {
    let ripe = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO) >= delay;
    let listed = store.segments(tenant).await?;
    let pinned = store.pinned_segments();
    let mut referenced: HashSet<Arc<str>> = HashSet::new();
    let mut out = Collected::default();
    for period in store.periods(tenant).await? {
        let snapshot = store.period_snapshot(tenant, period).await?;
        referenced.extend(
            snapshot
                .streams
                .iter()
                .flat_map(|s| s.chunks.iter().map(|c| c.segment.clone())),
        );
        for file in snapshot.replaced {
            let key = (period, file.id);
            if ripe(file.since) && !deleted.contains(&key) {
                store.delete_index_file(tenant, period, &key.1).await?;
                deleted.insert(key);
                out.index_files += 1;
            }
        }
    }
    for segment in listed {
        if !referenced.contains(&segment.id)
            && !pinned.contains(&segment.id)
            && ripe(segment.written)
        {
            store.delete_segment(tenant, &segment.id).await?;
            out.segments += 1;
            out.segment_bytes += segment.size;
        }
    }
    Ok(out)
}
