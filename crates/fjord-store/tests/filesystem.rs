//! The store on the local filesystem backend: what one process writes, another process (a
//! fresh `Store` over the same directory) finds through the index and reads back exactly.

use fjord_chunk::{BlockBuilder, EncodeOptions};
use fjord_model::{LabelMatcher, Labels, MatchOp, TenantId};
use fjord_store::{FlushChunk, ReadPart, StorageConfig, Store};

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
    lines_of_blocks(c.blocks())
}

/// The refs of every chunk of every stream `store` indexes for `tenant` on day 0.
async fn all_refs(store: &Store, tenant: &TenantId) -> Vec<fjord_store::ChunkRef> {
    let all = [LabelMatcher::new("app", MatchOp::Re, ".+").unwrap()];
    store
        .select(tenant, &all, 0, DAY)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|s| s.chunks)
        .collect()
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
    let mut refs = all_refs(&store, &tenant).await;
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

/// Lines of `blocks`, in order.
fn lines_of_blocks(blocks: &[fjord_chunk::EncodedBlock]) -> Vec<String> {
    let mut lines = Vec::new();
    for b in blocks {
        let d = b.decode().unwrap();
        lines.extend((0..d.len()).map(|i| String::from_utf8(d.line(i).to_vec()).unwrap()));
    }
    lines
}

/// A store over the filesystem store in `data_dir` that reads as it would on `backend`
/// (range by range, and with that backend's rule for which chunks to search tail first).
fn store_as(data_dir: &std::path::Path, backend: fjord_store::config::Backend) -> Store {
    let config = StorageConfig {
        backend,
        ..StorageConfig::default()
    };
    let objects = object_store::local::LocalFileSystem::new_with_prefix(data_dir.join("store"));
    Store::with_objects(
        std::sync::Arc::new(objects.unwrap()),
        None,
        &config,
        "querier",
    )
    .unwrap()
}

#[tokio::test]
async fn searches_read_only_the_blocks_their_literals_may_be_in() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("team-a").unwrap();
    let store = Store::open(&StorageConfig::default(), dir.path(), "ingester-1").unwrap();
    // Chunk "a" has three blocks, one per word; chunk "b" one block.
    let words = ["alpha", "bravo", "charlie"];
    let blocks = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let mut b = BlockBuilder::new();
            for t in 0..50 {
                let ts = i as i64 * 1000 + t;
                b.push(ts, format!("{word} request {ts} served").as_bytes(), &[]);
            }
            b.encode(&EncodeOptions::default())
        })
        .collect();
    let a = FlushChunk {
        labels: Labels::from_pairs([("app", "a")]),
        blocks,
    };
    store
        .write_chunks(&tenant, &[a, chunk("b", &[5, 1500])])
        .await
        .unwrap();
    let mut refs = all_refs(&store, &tenant).await;
    refs.sort_by_key(|r| r.offset);
    assert!(refs.iter().all(|r| r.tail_len > 0), "{refs:?}");

    let word = |w: &str| vec![vec![w.as_bytes().to_vec()]];
    let cold = Store::open(&StorageConfig::default(), dir.path(), "querier").unwrap();
    for _ in 0..2 {
        // The second time the tails come from the cache.
        let got = cold
            .fetch_blocks(&tenant, &refs, (0, DAY), &word("bravo"), 4)
            .await
            .unwrap();
        assert_eq!(got[0].len(), 1, "only the block holding the word");
        assert_eq!(lines_of_blocks(&got[0])[0], "bravo request 1000 served");
        assert!(got[1].is_empty(), "chunk b cannot hold the word");
    }
    // The tails once, then the one block twice; never a whole chunk.
    let tails: u64 = refs.iter().map(|r| u64::from(r.tail_len)).sum();
    assert_eq!(cold.bytes_read(ReadPart::Tail), tails);
    let block = cold.bytes_read(ReadPart::Block);
    let body = refs[0].len - u64::from(refs[0].tail_len);
    assert!(
        block > 0 && block < body,
        "two reads of one of three blocks: {block} of {body}"
    );
    assert_eq!(cold.bytes_read(ReadPart::Chunk), 0);
    // Either of two words, and a time range that leaves out the first block.
    let either = vec![vec![b"alpha".to_vec(), b"charlie".to_vec()]];
    let got = cold
        .fetch_blocks(&tenant, &refs, (1000, DAY), &either, 1)
        .await
        .unwrap();
    assert_eq!(lines_of_blocks(&got[0])[0], "charlie request 2000 served");
    assert_eq!(got[0].len(), 1);
    // Literals every block of chunk a may hold (and none of b), or none at all: whole chunks,
    // as `read_chunk` reads them.
    for (clauses, read) in [(word("request"), [true, false]), (Vec::new(), [true, true])] {
        let fresh = Store::open(&StorageConfig::default(), dir.path(), "querier-2").unwrap();
        let got = fresh
            .fetch_blocks(&tenant, &refs, (0, DAY), &clauses, 2)
            .await
            .unwrap();
        for ((r, blocks), read) in refs.iter().zip(&got).zip(read) {
            let whole = fresh.read_chunk(&tenant, r).await.unwrap();
            let want = if read { lines_of(&whole) } else { Vec::new() };
            assert_eq!(lines_of_blocks(blocks), want);
        }
    }
    // A ref without a tail length (a version 1 chunk's) is read whole.
    let mut untailed = refs[0].clone();
    untailed.tail_len = 0;
    let fresh = Store::open(&StorageConfig::default(), dir.path(), "querier-3").unwrap();
    let got = fresh
        .fetch_blocks(&tenant, &[untailed], (0, DAY), &word("bravo"), 1)
        .await
        .unwrap();
    assert_eq!(got[0].len(), 3);
    assert_eq!(fresh.bytes_read(ReadPart::Chunk), refs[0].len);
    assert_eq!(fresh.bytes_read(ReadPart::Tail), 0);
    // On an object store a chunk this small is read whole too: its tail would cost a request.
    let remote = store_as(dir.path(), fjord_store::config::Backend::S3);
    let got = remote
        .fetch_blocks(&tenant, &refs, (0, DAY), &word("bravo"), 1)
        .await
        .unwrap();
    assert_eq!(lines_of_blocks(&got[0]).len(), 150);
    assert_eq!(remote.bytes_read(ReadPart::Tail), 0);
    // Read range by range, as on object stores (no `get_ranges`): the same blocks.
    let ranged = store_as(dir.path(), fjord_store::config::Backend::Memory);
    let got = ranged
        .fetch_blocks(&tenant, &refs, (1000, DAY), &either, 1)
        .await
        .unwrap();
    assert_eq!(lines_of_blocks(&got[0])[0], "charlie request 2000 served");
    assert_eq!(got[0].len(), 1);
    assert!(ranged.bytes_read(ReadPart::Tail) > 0);
    // A cached tail is not used for a ref it does not describe: the wrong ref is an error.
    let mut longer = refs[0].clone();
    longer.len += 1;
    let err = cold
        .fetch_blocks(&tenant, &[longer], (0, DAY), &word("bravo"), 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    // A tail length that does not match the chunk is an error, not a wrong answer.
    let mut wrong = refs[1].clone();
    wrong.tail_len += 1;
    let fresh = Store::open(&StorageConfig::default(), dir.path(), "querier-4").unwrap();
    let err = fresh
        .fetch_blocks(&tenant, &[wrong], (0, DAY), &word("bravo"), 1)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[tokio::test]
async fn chunk_format_1_writes_chunks_without_tails_for_older_readers() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("team-a").unwrap();
    let old_format = StorageConfig {
        chunk_format: 1,
        ..StorageConfig::default()
    };
    let store = Store::open(&old_format, dir.path(), "ingester-1").unwrap();
    store
        .write_chunks(&tenant, &[chunk("a", &[1, 2]), chunk("b", &[3])])
        .await
        .unwrap();
    let refs = all_refs(&store, &tenant).await;
    assert!(refs.iter().all(|r| r.tail_len == 0), "{refs:?}");
    // Every index file is written in the version older binaries read (no tail lengths).
    let index_dir = dir.path().join("store/index/team-a");
    for day in std::fs::read_dir(&index_dir).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(bytes[4] <= 2, "index file version {}", bytes[4]);
        }
    }
    // A current reader searches them by reading whole chunks.
    let reader = Store::open(&StorageConfig::default(), dir.path(), "querier").unwrap();
    let got = reader
        .fetch_blocks(&tenant, &refs, (0, DAY), &[vec![b"a at 2".to_vec()]], 2)
        .await
        .unwrap();
    let lines: Vec<String> = got.iter().flat_map(|b| lines_of_blocks(b)).collect();
    assert!(lines.contains(&"a at 2".to_string()), "{lines:?}");
    assert_eq!(reader.bytes_read(ReadPart::Tail), 0);

    let bad = StorageConfig {
        chunk_format: 3,
        ..StorageConfig::default()
    };
    let err = Store::open(&bad, dir.path(), "x")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("storage.chunk_format must be 1 or 2, not 3"),
        "{err}"
    );
}
