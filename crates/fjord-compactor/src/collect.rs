//! Deleting what compactions superseded: index files a live compaction replaced, and segments
//! no live index file references (the inputs of a compaction once their files are replaced, or
//! a flush that crashed between writing its segment and its index file).
//!
//! Both wait `delete_delay`: a querier may still be reading a superseded file's chunks, or may
//! not yet have loaded the compaction that replaced it. A replaced file waits from when its
//! replacement was written; a segment from when this process first found it unreferenced
//! (however old the segment itself is), so a restart only makes it wait longer. The segment
//! listing is taken before the indexes are read and pinned segments are skipped, so a segment
//! whose index file is being published while this runs is never taken for garbage.

use std::collections::{HashMap, HashSet};
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

/// What collection remembers of one tenant between rounds.
#[derive(Debug, Default)]
pub struct CollectorState {
    /// Replaced index files already deleted, as (period, id), not to be deleted again.
    deleted_index_files: HashSet<(i64, Arc<str>)>,
    /// Segments found unreferenced, and since when.
    unreferenced_since: HashMap<Arc<str>, SystemTime>,
}

/// Deletes `tenant`'s superseded objects whose delay has passed.
pub async fn collect(
    store: &Store,
    tenant: &TenantId,
    delay: Duration,
    now: SystemTime,
    state: &mut CollectorState,
) -> Result<Collected, CompactorError> {
    let ripe = |t: SystemTime| now.duration_since(t).unwrap_or(Duration::ZERO) >= delay;
    let listed = store.segments(tenant).await?;
    let pinned = store.pinned_segments();
    let mut referenced: HashSet<Arc<str>> = HashSet::new();
    let mut out = Collected::default();
    for period in store.periods(tenant).await? {
        referenced.extend(store.referenced_segments(tenant, period).await?);
        for file in store.period_files(tenant, period).await?.replaced {
            let key = (period, file.id);
            if ripe(file.since) && !state.deleted_index_files.contains(&key) {
                store.delete_index_file(tenant, period, &key.1).await?;
                state.deleted_index_files.insert(key);
                out.index_files += 1;
            }
        }
    }
    let mut unreferenced = HashMap::new();
    for segment in listed {
        if referenced.contains(&segment.id) || pinned.contains(&segment.id) {
            continue;
        }
        let since = state
            .unreferenced_since
            .get(&segment.id)
            .copied()
            .unwrap_or(now);
        if ripe(since) {
            store.delete_segment(tenant, &segment.id).await?;
            out.segments += 1;
            out.segment_bytes += segment.size;
        } else {
            unreferenced.insert(segment.id, since);
        }
    }
    state.unreferenced_since = unreferenced;
    Ok(out)
}
