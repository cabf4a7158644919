//! The compactor against a real store on the local filesystem, judged by real queries: every
//! answer is the same before and after a rewrite (and after reopening the store), superseded
//! objects are deleted, and chunks crossing midnight are carried over, not lost or doubled.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fjord_chunk::{BlockBuilder, Codec, EncodeOptions};
use fjord_compactor::{Compactor, CompactorConfig};
use fjord_engine::{QueryRequest, QueryValue, execute};
use fjord_model::limits::{ByteSize, Limits};
use fjord_model::{Label, Labels, TenantId};
use fjord_querier::{Querier, QuerierConfig};
use fjord_store::{FlushChunk, StorageConfig, Store};
use prometheus_client::registry::Registry;

const DAY: i64 = 86_400 * 1_000_000_000;
const SEC: i64 = 1_000_000_000;

/// One stream's chunk of small level-1 blocks (as an ingester writes them), `per_block`
/// entries each.
fn chunk(app: &str, entries: &[(i64, String, Vec<Label>)], per_block: usize) -> FlushChunk {
    let opts = EncodeOptions {
        codec: Codec::Zstd(1),
        filter_bits_per_byte: 0.25,
    };
    let blocks = entries
        .chunks(per_block)
        .map(|part| {
            let mut b = BlockBuilder::new();
            for (ts, line, md) in part {
                b.push(*ts, line.as_bytes(), md);
            }
            b.encode(&opts)
        })
        .collect();
    FlushChunk {
        labels: Labels::from_pairs([("app", app), ("ns", "prod")]),
        blocks,
    }
}

fn lines(app: &str, from: i64, n: i64, step: i64) -> Vec<(i64, String, Vec<Label>)> {
    (0..n)
        .map(|i| {
            let ts = from + i * step;
            let md = if i % 3 == 0 {
                vec![Label::new("trace_id", format!("t{}", i % 5))]
            } else {
                vec![]
            };
            let (path, status, took) = (i % 4, 200 + (i % 7) * 50, i % 97);
            // `web` logs JSON, which the compactor also stores as field columns.
            let line = if app == "web" {
                format!(
                    r#"{{"level":"info","msg":"request served","http":{{"path":"/api/v{path}","status":{status}}},"took_ms":{took}}}"#
                )
            } else {
                format!(
                    "level=info app={app} msg=\"request served\" path=/api/v{path} status={status} took={took}ms"
                )
            };
            (ts, line, md)
        })
        .collect()
}

async fn write_flushes(store: &Store, tenant: &TenantId) {
    let day1 = DAY;
    let api1 = lines("api", day1 + 1000 * SEC, 600, SEC);
    // Overlaps the first flush: every 10th entry repeated exactly, and lines that tie with
    // the first flush's timestamps but differ.
    let mut api2: Vec<_> = api1.iter().step_by(10).cloned().collect();
    api2.extend(
        lines("api", day1 + 1300 * SEC, 200, SEC)
            .into_iter()
            .map(|(ts, line, md)| (ts, format!("{line} retry=1"), md)),
    );
    api2.sort_by_key(|e| e.0);
    store
        .write_chunks(
            tenant,
            &[
                chunk("api", &api1, 64),
                chunk("web", &lines("web", day1 + 500 * SEC, 300, 2 * SEC), 50),
            ],
        )
        .await
        .unwrap();
    store
        .write_chunks(tenant, &[chunk("api", &api2, 40)])
        .await
        .unwrap();
    // Crosses midnight into day 2: listed in both periods, rewritten in neither.
    store
        .write_chunks(
            tenant,
            &[chunk("db", &lines("db", 2 * DAY - 100 * SEC, 200, SEC), 32)],
        )
        .await
        .unwrap();
    store
        .write_chunks(
            tenant,
            &[chunk("api", &lines("api", day1 + 5000 * SEC, 400, SEC), 64)],
        )
        .await
        .unwrap();
}

const QUERIES: &[(&str, bool, u32)] = &[
    (r#"{ns="prod"}"#, true, 5000),
    (r#"{ns="prod"}"#, false, 5000),
    (r#"{app="api"} |= "status=250""#, false, 17),
    (r#"{app="api"} | trace_id="t2""#, true, 5000),
    (
        r#"sum by (app) (count_over_time({ns="prod"}[10m]))"#,
        true,
        0,
    ),
    (
        r#"sum by (app) (bytes_over_time({ns="prod"} |~ "took=9[0-9]ms" [1h]))"#,
        true,
        0,
    ),
    (r#"sum(rate({app="db"}[5m]))"#, true, 0),
    (
        r#"{app="web"} | json | http_status >= 450 | line_format "{{.http_path}}""#,
        false,
        23,
    ),
    (
        r#"{app="web"} | json | http_status = 250 or took_ms > 90"#,
        true,
        9,
    ),
];

async fn answers(store: Arc<Store>, tenant: &TenantId) -> Vec<QueryValue> {
    let querier = Querier::new(
        QuerierConfig::default(),
        None,
        None,
        store,
        &mut Registry::default(),
    );
    let source = querier.source(tenant.clone());
    let mut out = Vec::new();
    for (query, forward, limit) in QUERIES {
        let req = QueryRequest {
            query: query.to_string(),
            start: DAY,
            end: 3 * DAY,
            step: 600 * SEC,
            interval: 0,
            limit: *limit,
            forward: *forward,
            instant: false,
            categorize: false,
        };
        let (value, _) = execute(&source, &req, &Limits::default()).await.unwrap();
        out.push(value);
    }
    out
}

/// Every chunk a store's index shows, as (segment, offset).
async fn chunk_refs(store: &Store, tenant: &TenantId) -> Vec<(String, u64)> {
    let all = [fjord_model::LabelMatcher::new("app", fjord_model::MatchOp::Re, ".+").unwrap()];
    let mut refs: Vec<(String, u64)> = store
        .select(tenant, &all, 0, 4 * DAY)
        .await
        .unwrap()
        .iter()
        .flat_map(|s| s.chunks.iter().map(|c| (c.segment.to_string(), c.offset)))
        .collect();
    refs.sort();
    refs
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out.sort();
    out
}

fn config(delete_delay: Duration) -> CompactorConfig {
    CompactorConfig {
        delete_delay,
        // Small enough that the test's streams span several blocks and chunks.
        block_size: ByteSize(16 << 10),
        chunk_target_size: ByteSize(4 << 10),
        ..CompactorConfig::default()
    }
}

#[tokio::test]
async fn compaction_keeps_every_answer_and_deletes_what_it_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::default();
    let tenant = TenantId::new("team-a").unwrap();
    let store = Arc::new(Store::open(&cfg, dir.path(), "ingester").unwrap());
    write_flushes(&store, &tenant).await;
    let before = answers(store.clone(), &tenant).await;
    // A querier in another process that loads the flushes now and then is not asked again
    // until after two compactions, with everything they replaced deleted.
    let stale_cfg = StorageConfig {
        index_refresh_interval: Duration::ZERO,
        ..StorageConfig::default()
    };
    let stale = Arc::new(Store::open(&stale_cfg, dir.path(), "querier-2").unwrap());
    assert_eq!(answers(stale.clone(), &tenant).await, before);
    let QueryValue::Streams(streams) = &before[0] else {
        panic!("a log query answers streams")
    };
    let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
    assert_eq!(
        entries,
        600 + 200 + 300 + 200 + 400,
        "exact repeats are dropped"
    );
    let segments_dir = dir.path().join("store/segments/team-a");
    let index_dir = dir.path().join("store/index/team-a");
    let segments_before = files_under(&segments_dir);
    assert_eq!(segments_before.len(), 4);

    let compactor = Compactor::new(
        store.clone(),
        config(Duration::from_secs(3600)),
        &mut Registry::default(),
    )
    .unwrap();
    // Just written: not quiet yet.
    let r = compactor.run_round(false).await;
    assert_eq!(r.periods_compacted, 0);
    assert!(r.errors.is_empty(), "{r:?}");

    let r = compactor.run_round(true).await;
    assert_eq!(r.periods_compacted, 2, "{r:?}");
    assert_eq!(r.chunks_carried, 2, "the midnight chunk, once per period");
    assert!(r.chunks_written > 2, "{r:?}");
    assert!(r.bytes_written < r.bytes_read, "{r:?}");
    assert_eq!(
        (r.index_files_deleted, r.segments_deleted),
        (0, 0),
        "nothing is deleted before the delay"
    );
    assert_eq!(answers(store.clone(), &tenant).await, before);
    // The rewritten JSON stream carries field columns; the logfmt ones do not.
    let all = [fjord_model::LabelMatcher::new("app", fjord_model::MatchOp::Re, ".+").unwrap()];
    let mut blocks_with_columns = 0;
    for s in store.select(&tenant, &all, DAY, 2 * DAY).await.unwrap() {
        let app = s.labels.get("app").unwrap_or_default().to_string();
        for c in &s.chunks {
            let chunk = store.read_chunk(&tenant, c).await.unwrap();
            for b in chunk.blocks() {
                let fields = b.decode().unwrap().fields;
                let status = fields.as_ref().and_then(|f| f.column("http_status"));
                assert_eq!(status.is_some(), app == "web", "{app}");
                blocks_with_columns += usize::from(status.is_some());
            }
        }
    }
    assert!(blocks_with_columns > 0);

    // Compacted periods are left alone; a restart reads the same answers from the new files,
    // with the replaced ones still on disk.
    assert_eq!(compactor.run_round(true).await.periods_compacted, 0);
    let reopened = Arc::new(Store::open(&cfg, dir.path(), "querier").unwrap());
    assert_eq!(answers(reopened, &tenant).await, before);

    // With no delay, the replaced index files and the segments only they referenced go; the
    // segment holding the midnight chunk stays.
    let compactor = Compactor::new(
        store.clone(),
        config(Duration::ZERO),
        &mut Registry::default(),
    )
    .unwrap();
    let r = compactor.run_round(false).await;
    assert_eq!(r.periods_compacted, 0);
    assert!(r.errors.is_empty(), "{r:?}");
    assert_eq!(
        r.index_files_deleted, 5,
        "four flushes in day 1, one in day 2: {r:?}"
    );
    assert_eq!(r.segments_deleted, 3, "{r:?}");
    let kept: Vec<String> = files_under(&segments_dir)
        .into_iter()
        .filter(|s| segments_before.contains(s))
        .collect();
    assert_eq!(kept.len(), 1, "only the midnight chunk's segment: {kept:?}");
    assert_eq!(
        files_under(&segments_dir).len(),
        2,
        "and the rewrite's one segment"
    );
    assert_eq!(files_under(&index_dir).len(), 2, "one file per period");
    let reopened = Arc::new(Store::open(&cfg, dir.path(), "querier").unwrap());
    assert_eq!(answers(reopened, &tenant).await, before);

    // A late flush into a compacted day makes it due again, and its lines are kept.
    store
        .write_chunks(
            &tenant,
            &[chunk("api", &lines("api", DAY + 9000 * SEC, 50, SEC), 64)],
        )
        .await
        .unwrap();
    let with_late = answers(store.clone(), &tenant).await;
    assert_ne!(with_late, before);
    let r = compactor.run_round(true).await;
    assert_eq!(r.periods_compacted, 1, "{r:?}");
    // Only the stream the late flush touched is rewritten (its two compacted chunks and the
    // late one); `web` and the midnight chunk of `db` are carried as they are, so the first
    // compaction's segment stays in use and only the late flush's segment goes.
    assert_eq!((r.chunks_read, r.chunks_carried), (3, 2), "{r:?}");
    assert_eq!(
        (r.index_files_deleted, r.segments_deleted),
        (2, 1),
        "the first compaction's file and the late flush: {r:?}"
    );
    let reopened = Arc::new(Store::open(&cfg, dir.path(), "querier").unwrap());
    assert_eq!(answers(reopened.clone(), &tenant).await, with_late);
    assert_eq!(
        chunk_refs(&stale, &tenant).await,
        chunk_refs(&reopened, &tenant).await
    );
    // The second compaction names the flushes the first one replaced, so the stale querier
    // drops them too instead of reading their deleted segments.
    assert_eq!(answers(stale, &tenant).await, with_late);
}
