//! The store on the local filesystem backend: what one process writes, another process (a
//! fresh `Store` over the same directory) finds through the index and reads back exactly.

use fjord_chunk::{BlockBuilder, EncodeOptions};
use fjord_model::{LabelMatcher, Labels, MatchOp, TenantId};
use fjord_store::{FlushChunk, StorageConfig, Store};

const DAY: i64 = 86_400 * 1_000_000_000;

fn chunk(app: &str, times: &[i64]) -> FlushChunk {
    let mut b = BlockBuilder::new();
    for t in times {
        b.push(*t, format!("{app} at {t}").as_bytes(), &[]);
    }
    FlushChunk {
        labels: Labels::from_pairs([("app", app), ("ns", "prod")]),
        blocks: vec![b.encode(&EncodeOptions::default())],
    }
}

#[tokio::test]
async fn written_chunks_are_found_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::default();
    let tenant = TenantId::new("team-a").unwrap();
    {
        let store = Store::open(&cfg, dir.path(), "ingester-1").unwrap();
        // One chunk spans midnight, so it is indexed in two periods.
        store
            .write_chunks(
                &tenant,
                &[chunk("api", &[DAY - 10, DAY + 10]), chunk("web", &[5])],
            )
            .await
            .unwrap();
        store
            .write_chunks(&tenant, &[chunk("api", &[2 * DAY + 1])])
            .await
            .unwrap();
        let found = store
            .select(&tenant, &[LabelMatcher::eq("app", "api")], 0, 3 * DAY)
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].chunks.len(),
            2,
            "the midnight chunk is listed once"
        );
    }

    let store = Store::open(&cfg, dir.path(), "querier").unwrap();
    let all = [LabelMatcher::new("app", MatchOp::Re, ".+").unwrap()];
    let found = store.select(&tenant, &all, 0, 3 * DAY).await.unwrap();
    assert_eq!(found.len(), 2);
    let api = found
        .iter()
        .find(|s| s.labels.get("app") == Some("api"))
        .unwrap();
    assert_eq!(api.chunks.len(), 2);
    let mut lines = Vec::new();
    for r in &api.chunks {
        let c = store.read_chunk(&tenant, r).await.unwrap();
        for b in c.blocks() {
            let d = b.decode().unwrap();
            lines.extend((0..d.len()).map(|i| String::from_utf8(d.line(i).to_vec()).unwrap()));
        }
    }
    lines.sort();
    let mut want = vec![
        format!("api at {}", 2 * DAY + 1),
        format!("api at {}", DAY + 10),
        format!("api at {}", DAY - 10),
    ];
    want.sort();
    assert_eq!(lines, want);

    // Time bounds: only the second day's chunk.
    let found = store
        .select(&tenant, &[LabelMatcher::eq("app", "api")], 2 * DAY, 3 * DAY)
        .await
        .unwrap();
    assert_eq!(found[0].chunks.len(), 1);
    // Another tenant sees nothing.
    let other = TenantId::new("team-b").unwrap();
    assert!(
        store
            .select(&other, &all, 0, 3 * DAY)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.tenants().await.unwrap(), vec![tenant]);
}

/// Lines of every block of `c`, in order.
fn lines_of(c: &fjord_chunk::Chunk) -> Vec<String> {
    let mut lines = Vec::new();
    for b in c.blocks() {
        let d = b.decode().unwrap();
        lines.extend((0..d.len()).map(|i| String::from_utf8(d.line(i).to_vec()).unwrap()));
    }
    lines
}

#[tokio::test]
async fn chunks_are_fetched_in_order_in_runs_and_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("team-a").unwrap();
    let store = Store::open(&StorageConfig::default(), dir.path(), "ingester-1").unwrap();
    // Three segments; the first holds three chunks side by side.
    store
        .write_chunks(
            &tenant,
            &[
                chunk("a", &[1, 2]),
                chunk("b", &[3]),
                chunk("c", &[4, 5, 6]),
            ],
        )
        .await
        .unwrap();
    store
        .write_chunks(&tenant, &[chunk("a", &[10])])
        .await
        .unwrap();
    store
        .write_chunks(&tenant, &[chunk("d", &[20, 21])])
        .await
        .unwrap();
    let all = [LabelMatcher::new("app", MatchOp::Re, ".+").unwrap()];
    let mut refs: Vec<_> = store
        .select(&tenant, &all, 0, DAY)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|s| s.chunks)
        .collect();
    assert_eq!(refs.len(), 5);
    refs.sort_by_key(|r| std::cmp::Reverse(r.min_ts));
    // One chunk asked twice, and one already in the cache.
    refs.push(refs[1].clone());
    let reopened = Store::open(&StorageConfig::default(), dir.path(), "querier").unwrap();
    reopened
        .fetch_chunks(&tenant, &refs[2..3], 1)
        .await
        .unwrap();

    let fetched = reopened.fetch_chunks(&tenant, &refs, 2).await.unwrap();
    assert_eq!(fetched.len(), refs.len());
    for (r, c) in refs.iter().zip(&fetched) {
        let direct = reopened.read_chunk(&tenant, r).await.unwrap();
        assert_eq!(lines_of(c), lines_of(&direct));
    }
    assert_eq!(lines_of(&fetched[0]), vec!["d at 20", "d at 21"]);
    assert_eq!(lines_of(&fetched[5]), lines_of(&fetched[1]));
    assert!(
        reopened
            .fetch_chunks(&tenant, &[], 4)
            .await
            .unwrap()
            .is_empty()
    );

    // Two chunks of the first segment with the one between them left out: two runs.
    let mut first_segment: Vec<_> = refs
        .iter()
        .filter(|r| r.segment == refs[4].segment)
        .cloned()
        .collect();
    first_segment.sort_by_key(|r| r.offset);
    first_segment.dedup_by_key(|r| r.offset);
    assert_eq!(first_segment.len(), 3, "{first_segment:?}");
    let scattered = [first_segment[2].clone(), first_segment[0].clone()];
    let cold = Store::open(&StorageConfig::default(), dir.path(), "querier-2").unwrap();
    let fetched = cold.fetch_chunks(&tenant, &scattered, 4).await.unwrap();
    for (r, c) in scattered.iter().zip(&fetched) {
        assert_eq!(
            lines_of(c),
            lines_of(&cold.read_chunk(&tenant, r).await.unwrap())
        );
    }
}
