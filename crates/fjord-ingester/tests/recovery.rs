//! Recovery of the ingester: what was acknowledged is restored from the WAL (with and without a
//! checkpoint), and what was flushed is in the store, each entry exactly once.

use std::sync::Arc;

use fjord_chunk::EncodedBlock;
use fjord_ingester::{Ingester, IngesterConfig};
use fjord_model::limits::Limits;
use fjord_model::service::{SelectRequest, ValidatedStream};
use fjord_model::{Entry, LabelMatcher, Labels, MatchOp, TenantId};
use fjord_store::{StorageConfig, Store};
use prometheus_client::registry::Registry;

fn cfg() -> IngesterConfig {
    IngesterConfig {
        chunk_block_size: fjord_model::limits::ByteSize(4096),
        chunk_target_size: fjord_model::limits::ByteSize(8192),
        ..IngesterConfig::default()
    }
}

async fn open(dir: &std::path::Path) -> Arc<Ingester> {
    let store = Arc::new(Store::open(&StorageConfig::default(), dir, "test").unwrap());
    Ingester::open(
        cfg(),
        Arc::new(Limits::default()),
        store,
        dir,
        &mut Registry::default(),
    )
    .await
    .unwrap()
}

fn all() -> SelectRequest {
    SelectRequest {
        matchers: vec![LabelMatcher::new("app", MatchOp::Re, ".+").unwrap()],
        start: i64::MIN,
        end: i64::MAX,
    }
}

/// Every (stream, ts, line) the ingester holds, sorted.
fn held(ing: &Ingester, tenant: &TenantId) -> Vec<(String, i64, String)> {
    let mut out = Vec::new();
    for s in ing.select_blocks(tenant, &all()) {
        for b in s.blocks {
            let d = EncodedBlock::from_bytes(b).unwrap().decode().unwrap();
            for i in 0..d.len() {
                out.push((
                    s.labels.to_string(),
                    d.ts[i],
                    String::from_utf8(d.line(i).to_vec()).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Every (stream, ts, line) in the store, sorted.
async fn stored(dir: &std::path::Path, tenant: &TenantId) -> Vec<(String, i64, String)> {
    let store = Store::open(&StorageConfig::default(), dir, "reader").unwrap();
    let mut stored = Vec::new();
    for s in store
        .select(tenant, &all().matchers, i64::MIN, i64::MAX)
        .await
        .unwrap()
    {
        for r in &s.chunks {
            for b in store.read_chunk(tenant, r).await.unwrap().blocks() {
                let d = b.decode().unwrap();
                for i in 0..d.len() {
                    stored.push((
                        s.labels.to_string(),
                        d.ts[i],
                        String::from_utf8(d.line(i).to_vec()).unwrap(),
                    ));
                }
            }
        }
    }
    stored.sort();
    stored
}

async fn push_many(
    ing: &Ingester,
    tenant: &TenantId,
    from: i64,
    to: i64,
) -> Vec<(String, i64, String)> {
    let mut want = Vec::new();
    for app in ["api", "web", "db"] {
        let labels = Labels::from_pairs([("app", app)]);
        let entries: Vec<Entry> = (from..to)
            .map(|i| {
                Entry::new(
                    i * 1000,
                    format!("{app} line {i} {}", "x".repeat((i % 50) as usize)),
                )
            })
            .collect();
        for e in &entries {
            want.push((
                labels.to_string(),
                e.ts,
                String::from_utf8(e.line.to_vec()).unwrap(),
            ));
        }
        let out = ing
            .push(tenant, vec![ValidatedStream { labels, entries }])
            .await
            .unwrap();
        assert!(out.rejections.is_empty(), "{:?}", out.rejections);
    }
    want
}

#[tokio::test]
async fn unflushed_data_survives_a_crash_with_and_without_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("fake").unwrap();
    let mut want;
    {
        let ing = open(dir.path()).await;
        want = push_many(&ing, &tenant, 0, 500).await;
        ing.checkpoint().await.unwrap();
        want.extend(push_many(&ing, &tenant, 500, 800).await);
        want.sort();
        assert_eq!(held(&ing, &tenant), want);
        // Dropped without shutdown: as if killed.
    }
    let ing = open(dir.path()).await;
    assert_eq!(
        held(&ing, &tenant),
        want,
        "checkpoint + WAL tail restore everything exactly once"
    );
    let rec = ing.recovery_stats();
    assert!(rec.wal.checkpoint.is_some());
    assert_eq!(rec.streams, 3);

    // Crash again right after recovery: still exactly once.
    drop(ing);
    let ing = open(dir.path()).await;
    assert_eq!(held(&ing, &tenant), want);

    // A clean shutdown flushes everything to the store and empties the WAL.
    let stats = ing.shutdown().await;
    assert!(stats.chunks >= 3);
    assert_eq!(stats.failures, 0);
    drop(ing);
    let ing = open(dir.path()).await;
    assert!(
        held(&ing, &tenant).is_empty(),
        "nothing left in memory after a clean shutdown"
    );
    assert_eq!(ing.recovery_stats().entries, 0);
    assert_eq!(stored(dir.path(), &tenant).await, want);
}

#[tokio::test]
async fn out_of_order_window_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("fake").unwrap();
    let ing = open(dir.path()).await;
    let labels = Labels::from_pairs([("app", "api")]);
    let hour = 3_600_000_000_000i64;
    let push = |entries: Vec<Entry>| {
        ing.push(
            &tenant,
            vec![ValidatedStream {
                labels: labels.clone(),
                entries,
            }],
        )
    };
    push(vec![Entry::new(10 * hour, "newest")]).await.unwrap();
    let out = push(vec![
        Entry::new(9 * hour + 1, "inside window"),
        Entry::new(9 * hour - 1, "too old"),
    ])
    .await
    .unwrap();
    assert_eq!(out.accepted_entries, 1);
    assert_eq!(out.rejections.len(), 1);
    assert_eq!(out.rejections[0].status, 400);
    assert!(
        out.rejections[0].message.contains("entry too far behind"),
        "{}",
        out.rejections[0].message
    );
    assert!(
        out.rejections[0]
            .message
            .ends_with("total ignored: 1 out of 2 for stream: {app=\"api\"}")
    );
    // An exact repeat of the last entry is dropped; same time, other text is kept.
    push(vec![
        Entry::new(10 * hour, "newest"),
        Entry::new(10 * hour, "other"),
    ])
    .await
    .unwrap();
    let lines: Vec<String> = held(&ing, &tenant).into_iter().map(|(_, _, l)| l).collect();
    assert_eq!(lines, vec!["inside window", "newest", "other"]);
}

#[tokio::test]
async fn memory_budget_flushes_the_largest_streams_early() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("fake").unwrap();
    let store = Arc::new(Store::open(&StorageConfig::default(), dir.path(), "test").unwrap());
    let ing = Ingester::open(
        IngesterConfig {
            max_chunk_memory: fjord_model::limits::ByteSize(256 << 10),
            ..cfg()
        },
        Arc::new(Limits::default()),
        store,
        dir.path(),
        &mut Registry::default(),
    )
    .await
    .unwrap();
    let flush_loop = ing.start();
    let mut want = Vec::new();
    for i in 0..40 {
        let labels = Labels::from_pairs([("app", format!("app{i}"))]);
        let entries: Vec<Entry> = (0..300)
            .map(|j| Entry::new(j * 1000, format!("app{i} line {j} {}", "y".repeat(40))))
            .collect();
        for e in &entries {
            want.push((
                labels.to_string(),
                e.ts,
                String::from_utf8(e.line.to_vec()).unwrap(),
            ));
        }
        ing.push(&tenant, vec![ValidatedStream { labels, entries }])
            .await
            .unwrap();
    }
    want.sort();
    // 40 streams × ~18 KiB of text is well over the 256 KiB budget: the largest streams are
    // flushed long before the 30 s flush period comes round.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stored(dir.path(), &tenant).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing was flushed under memory pressure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Every entry is in exactly one place: the store or the ingester.
    let mut everywhere = stored(dir.path(), &tenant).await;
    everywhere.extend(held(&ing, &tenant));
    everywhere.sort();
    assert_eq!(everywhere, want);
    ing.shutdown().await;
    flush_loop.await.unwrap();
}
