//! The store on the local filesystem backend: what one process writes, another process (a
//! fresh `Store` over the same directory) finds through the index and reads back exactly.

use fjord_chunk::{BlockBuilder, EncodeOptions};
use fjord_model::{LabelMatcher, Labels, MatchOp, TenantId};
use fjord_store::{ChunkRef, FlushChunk, ReadPart, StorageConfig, Store};

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
    let tenant = TenantId::new("team-a").unwrap();
    let (dir, refs) = two_chunks_in_format(3).await;
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
    // So is a tail offset that points elsewhere, and a chunk offset that overflows (its tail
    // read and valid).
    let mut misplaced = refs[1].clone();
    misplaced.tail_offset -= 1;
    let mut overflowing = refs[0].clone();
    overflowing.offset = u64::MAX - 10;
    for (i, bad) in [misplaced, overflowing].into_iter().enumerate() {
        for clauses in [word("bravo"), Vec::new()] {
            let fresh = Store::open(&StorageConfig::default(), dir.path(), &format!("q-{i}"));
            let err = fresh
                .unwrap()
                .fetch_blocks(&tenant, std::slice::from_ref(&bad), (0, DAY), &clauses, 1)
                .await
                .unwrap_err();
            assert!(err.to_string().contains("corrupt"), "{err}");
        }
    }
}

/// Writes the same two chunks ("a": three blocks, one word each, a second apart; "b": one
/// block) with `storage.chunk_format: format` into a new data directory.
async fn two_chunks_in_format(format: u8) -> (tempfile::TempDir, Vec<ChunkRef>) {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::new("team-a").unwrap();
    let config = StorageConfig {
        chunk_format: format,
        ..StorageConfig::default()
    };
    let store = Store::open(&config, dir.path(), "ingester-1").unwrap();
    let blocks = ["alpha", "bravo", "charlie"]
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
    (dir, refs)
}

#[tokio::test]
async fn object_stores_read_a_segments_gathered_tails_with_one_request() {
    let tenant = TenantId::new("team-a").unwrap();
    let bravo = [vec![b"bravo".to_vec()]];
    let (gathered, refs) = two_chunks_in_format(3).await;
    assert!(refs.iter().all(|r| r.tail_apart()), "{refs:?}");
    let remote = store_as(gathered.path(), fjord_store::config::Backend::S3);
    let got = remote
        .fetch_blocks(&tenant, &refs, (0, DAY), &bravo, 1)
        .await
        .unwrap();
    assert_eq!(lines_of_blocks(&got[0])[0], "bravo request 1000 served");
    assert_eq!(got[0].len(), 1);
    assert!(got[1].is_empty());
    // Both tails with one request (they lie side by side), then the one block.
    let tails: u64 = refs.iter().map(|r| u64::from(r.tail_len)).sum();
    assert_eq!(remote.bytes_read(ReadPart::Tail), tails);
    assert_eq!(remote.bytes_read(ReadPart::Chunk), 0);
    assert_eq!(remote.read_requests(), 2);
    // Whole chunks: the bodies and then the tails lie back to back, one request.
    let whole = remote.fetch_chunks(&tenant, &refs, 1).await.unwrap();
    assert_eq!(remote.read_requests(), 3);
    let total: u64 = refs.iter().map(|r| r.len).sum();
    assert_eq!(remote.bytes_read(ReadPart::Chunk), total);
    for (r, c) in refs.iter().zip(&whole) {
        assert_eq!(c.len_bytes() as u64, r.len);
        assert_eq!(
            lines_of(c),
            lines_of(&remote.read_chunk(&tenant, r).await.unwrap())
        );
    }

    // Chunk b alone: its body and its tail, with a's tail between them, in one request, but
    // only their bytes count as read (and are kept).
    let remote = store_as(gathered.path(), fjord_store::config::Backend::S3);
    let got = remote.fetch_chunks(&tenant, &refs[1..], 1).await.unwrap();
    assert_eq!(lines_of(&got[0]), lines_of(&whole[1]));
    assert_eq!(remote.read_requests(), 1);
    assert_eq!(remote.bytes_read(ReadPart::Chunk), refs[1].len);
    assert_eq!(
        remote.bytes_read(ReadPart::Gap),
        u64::from(refs[0].tail_len)
    );

    // A reader that decodes every block (the compactor) reads a body alone, one request.
    let remote = store_as(gathered.path(), fjord_store::config::Backend::S3);
    for (r, c) in refs.iter().zip(&whole) {
        let blocks = remote.read_chunk_blocks(&tenant, r).await.unwrap();
        assert_eq!(lines_of_blocks(&blocks), lines_of(c));
    }
    assert_eq!(remote.read_requests(), 2);
    let bodies: u64 = refs.iter().map(|r| r.len - u64::from(r.tail_len)).sum();
    assert_eq!(remote.bytes_read(ReadPart::Chunk), bodies);
    // Nothing but the index says where a body ends: a ref short by a whole block is an error,
    // not two blocks of three.
    let mut short = refs[0].clone();
    short.len -= whole[0].blocks()[2].data.len() as u64;
    let err = remote.read_chunk_blocks(&tenant, &short).await.unwrap_err();
    assert!(err.to_string().contains("disagree"), "{err}");

    // With tails after each chunk (format 2), chunks this small are read whole on an object
    // store: each tail would cost a request of its own.
    let (inline, refs) = two_chunks_in_format(2).await;
    assert!(refs.iter().all(|r| r.tail_len > 0 && !r.tail_apart()));
    let remote = store_as(inline.path(), fjord_store::config::Backend::S3);
    let got = remote
        .fetch_blocks(&tenant, &refs, (0, DAY), &bravo, 1)
        .await
        .unwrap();
    assert_eq!(lines_of_blocks(&got[0]).len(), 150);
    assert_eq!(remote.bytes_read(ReadPart::Tail), 0);
    // On local storage their tails are read first.
    let local = Store::open(&StorageConfig::default(), inline.path(), "querier").unwrap();
    let got = local
        .fetch_blocks(&tenant, &refs, (0, DAY), &bravo, 1)
        .await
        .unwrap();
    assert_eq!(got[0].len(), 1);
    assert_eq!(local.bytes_read(ReadPart::Chunk), 0);
}

/// The versions of tenant team-a's index files under `data_dir`, deduplicated.
fn index_versions(data_dir: &std::path::Path) -> Vec<u8> {
    let mut versions = Vec::new();
    for day in std::fs::read_dir(data_dir.join("store/index/team-a")).unwrap() {
        for file in std::fs::read_dir(day.unwrap().path()).unwrap() {
            versions.push(std::fs::read(file.unwrap().path()).unwrap()[4]);
        }
    }
    versions.sort_unstable();
    versions.dedup();
    versions
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
    assert!(index_versions(dir.path()).iter().all(|&v| v <= 2));
    // A current reader searches them by reading whole chunks.
    let reader = Store::open(&StorageConfig::default(), dir.path(), "querier").unwrap();
    let got = reader
        .fetch_blocks(&tenant, &refs, (0, DAY), &[vec![b"a at 2".to_vec()]], 2)
        .await
        .unwrap();
    let lines: Vec<String> = got.iter().flat_map(|b| lines_of_blocks(b)).collect();
    assert!(lines.contains(&"a at 2".to_string()), "{lines:?}");
    assert_eq!(reader.bytes_read(ReadPart::Tail), 0);
    let total: u64 = refs.iter().map(|r| r.len).sum();
    assert_eq!(reader.bytes_read(ReadPart::Chunk), total);

    // Format 2 writes index files of version 3 at most (binaries before format 3 read them).
    let (inline, _) = two_chunks_in_format(2).await;
    assert_eq!(index_versions(inline.path()), vec![3]);
    let (gathered, _) = two_chunks_in_format(3).await;
    assert_eq!(index_versions(gathered.path()), vec![4]);

    let bad = StorageConfig {
        chunk_format: 4,
        ..StorageConfig::default()
    };
    let err = Store::open(&bad, dir.path(), "x")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("storage.chunk_format must be 1, 2 or 3, not 4"),
        "{err}"
    );
}

#[tokio::test]
async fn a_query_without_literals_reads_only_the_blocks_in_range_of_a_chunk_reaching_past_it() {
    let tenant = TenantId::new("team-a").unwrap();
    let (dir, refs) = two_chunks_in_format(3).await;
    let remote = store_as(dir.path(), fjord_store::config::Backend::S3);
    // Chunk a's middle block alone lies in [1000, 2000); chunk b (one block of 5 and 1500)
    // reaches past it too.
    let got = remote
        .fetch_blocks(&tenant, &refs, (1000, 2000), &[], 1)
        .await
        .unwrap();
    assert_eq!(got[0].len(), 1);
    assert_eq!(lines_of_blocks(&got[0])[0], "bravo request 1000 served");
    assert_eq!(got[1].len(), 1);
    // Chunk b's one block is all of it: its body is read whole, as a search reads it.
    assert_eq!(
        remote.bytes_read(ReadPart::Chunk),
        refs[1].len - u64::from(refs[1].tail_len)
    );
    let tails: u64 = refs.iter().map(|r| u64::from(r.tail_len)).sum();
    assert_eq!(remote.bytes_read(ReadPart::Tail), tails);
    let block = remote.bytes_read(ReadPart::Block);
    assert!(block > 0 && block < refs[0].len, "{block}");
    // Chunks within the range are read whole, as before.
    let remote = store_as(dir.path(), fjord_store::config::Backend::S3);
    let got = remote
        .fetch_blocks(&tenant, &refs, (0, DAY), &[], 1)
        .await
        .unwrap();
    assert_eq!((got[0].len(), got[1].len()), (3, 1));
    let total: u64 = refs.iter().map(|r| r.len).sum();
    assert_eq!(remote.bytes_read(ReadPart::Chunk), total);
    assert_eq!(remote.bytes_read(ReadPart::Tail), 0);
}

/// Every file under `dir` whose path has a `segments` component.
fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(segment_files(&path));
        } else if path.components().any(|c| c.as_os_str() == "segments") {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn chunks_read_back_under_any_tenant_and_a_cut_short_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StorageConfig::default();
    // `*` is escaped in object keys: reads must find the file the store wrote.
    let tenant = TenantId::new("team*(a)").unwrap();
    let times: Vec<i64> = (0..2_000).collect();
    Store::open(&cfg, dir.path(), "ingester-1")
        .unwrap()
        .write_chunks(&tenant, &[chunk("api", &times)])
        .await
        .unwrap();

    let store = Store::open(&cfg, dir.path(), "querier").unwrap();
    let refs = all_refs(&store, &tenant).await;
    assert_eq!(refs.len(), 1);
    let chunk = store.read_chunk(&tenant, &refs[0]).await.unwrap();
    let want: Vec<String> = times.iter().map(|t| format!("api at {t}")).collect();
    assert_eq!(lines_of(&chunk), want);

    let segments = segment_files(dir.path());
    assert_eq!(segments.len(), 1, "{segments:?}");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segments[0])
        .unwrap();
    file.set_len(file.metadata().unwrap().len() / 2).unwrap();
    let fresh = Store::open(&cfg, dir.path(), "querier-2").unwrap();
    let err = fresh.read_chunk(&tenant, &refs[0]).await.unwrap_err();
    assert!(err.to_string().contains("short read"), "{err}");
    let err = fresh.fetch_chunks(&tenant, &refs, 4).await.unwrap_err();
    assert!(err.to_string().contains("short read"), "{err}");
}
