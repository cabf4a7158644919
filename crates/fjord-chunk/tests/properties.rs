//! Property tests of the chunk format: any entries round-trip exactly (after sorting and
//! de-duplication), a chunk's tail alone plans reads of its blocks without missing a line, and
//! any corruption of stored bytes is an error, never a panic.

use bytes::Bytes;
use fjord_chunk::{
    BlockBuilder, Chunk, ChunkFormat, ChunkSummary, Codec, EncodeOptions, encode_chunk,
    encode_chunk_into,
};
use fjord_model::Label;
use proptest::prelude::*;

type RawEntry = (i64, Vec<u8>, Vec<(String, String)>);

fn entries() -> impl Strategy<Value = Vec<RawEntry>> {
    prop::collection::vec(
        (
            prop_oneof![-1000i64..1000, any::<i64>()],
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(("[a-z_]{1,6}", ".{0,8}"), 0..3),
        ),
        0..60,
    )
}

fn codec() -> impl Strategy<Value = Codec> {
    prop_oneof![
        Just(Codec::None),
        (1i32..6).prop_map(Codec::Zstd),
        Just(Codec::Lz4)
    ]
}

fn build(es: &[RawEntry]) -> BlockBuilder {
    let mut b = BlockBuilder::new();
    for (ts, line, md) in es {
        let md: Vec<Label> = md
            .iter()
            .map(|(n, v)| Label::new(n.clone(), v.clone()))
            .collect();
        b.push(*ts, line, &md);
    }
    b
}

/// The model of what a block must hold: stable sort by time, exact duplicates dropped.
fn model(es: &[RawEntry]) -> Vec<RawEntry> {
    let mut sorted: Vec<RawEntry> = es.to_vec();
    sorted.sort_by_key(|e| e.0);
    let mut out: Vec<RawEntry> = Vec::new();
    for e in sorted {
        if !out.iter().rev().take_while(|o| o.0 == e.0).any(|o| *o == e) {
            out.push(e);
        }
    }
    out
}

proptest! {
    /// Entries pushed in time order are encoded straight from the builder; the bytes must be
    /// exactly those of the general path (sort, de-duplicate, encode).
    #[test]
    fn in_order_fast_path_encodes_identically(mut es in entries(), codec in codec(), repeat in any::<bool>()) {
        for e in &mut es {
            e.0 = e.0.rem_euclid(50);
        }
        es.sort_by_key(|e| e.0);
        if repeat && !es.is_empty() {
            let i = es.len() / 2;
            es.insert(i, es[i].clone());
        }
        let b = build(&es);
        let opts = EncodeOptions { codec, filter_bits_per_byte: 0.5 };
        prop_assert_eq!(b.encode(&opts).data, b.to_decoded().encode(&opts).data);
    }

    #[test]
    fn blocks_round_trip(es in entries(), codec in codec(), bits in prop_oneof![Just(0.0), Just(0.5)]) {
        let b = build(&es);
        let enc = b.encode(&EncodeOptions { codec, filter_bits_per_byte: bits });
        let chunk = Chunk::open(Bytes::from(encode_chunk(std::slice::from_ref(&enc)).unwrap())).unwrap();
        let d = chunk.block(0).decode().unwrap();
        let got: Vec<RawEntry> = (0..d.len())
            .map(|i| (d.ts[i], d.line(i).to_vec(), d.metadata(i).iter().map(|l| (l.name.to_string(), l.value.to_string())).collect()))
            .collect();
        prop_assert_eq!(got, model(&es));
        for (_, line, _) in &es {
            prop_assert!(chunk.block(0).may_match(&[vec![line.clone()]]));
        }
    }

    #[test]
    fn corruption_is_detected(es in entries(), codec in codec(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let enc = build(&es).encode(&EncodeOptions { codec, filter_bits_per_byte: 0.5 });
        let mut data = encode_chunk(&[enc]).unwrap();
        let i = pos.index(data.len());
        data[i] ^= flip;
        let res = Chunk::open(Bytes::from(data)).and_then(|c| c.blocks().iter().map(|b| b.decode()).collect::<Result<Vec<_>, _>>());
        prop_assert!(res.is_err());
    }

    /// Blocks opened one by one from the tail's plan are the chunk's blocks, and no block
    /// holding a line is ruled out for that line; a corrupt tail is an error.
    #[test]
    fn the_tail_plans_exact_reads(es in entries(), splits in 1usize..4, pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let opts = EncodeOptions { codec: Codec::Zstd(1), filter_bits_per_byte: 1.0 };
        let per = es.len().div_ceil(splits).max(1);
        let blocks: Vec<_> = es.chunks(per).map(|part| build(part).encode(&opts)).collect();
        let mut data = Vec::new();
        let tail_len = encode_chunk_into(&blocks, ChunkFormat::FiltersInTail, &mut data).unwrap();
        let data = Bytes::from(data);
        let whole = Chunk::open(data.clone()).unwrap();
        let tail = data.slice(data.len() - tail_len..);
        let summary = ChunkSummary::parse(tail.clone(), data.len()).unwrap();
        prop_assert_eq!(summary.blocks().len(), blocks.len());
        for (i, (s, part)) in summary.blocks().iter().zip(es.chunks(per)).enumerate() {
            let block = summary.open_block(i, data.slice(s.range.clone())).unwrap();
            prop_assert_eq!(&block, &whole.block(i));
            for (_, line, _) in part {
                prop_assert!(s.may_match(&[vec![line.clone()]]));
            }
        }
        let mut bad = tail.to_vec();
        let at = pos.index(bad.len());
        bad[at] ^= flip;
        prop_assert!(ChunkSummary::parse(Bytes::from(bad), data.len()).is_err());
    }

    #[test]
    fn arbitrary_tails_never_panic(tail in prop::collection::vec(any::<u8>(), 0..200), chunk_len in 0usize..400) {
        if let Ok(summary) = ChunkSummary::parse(Bytes::from(tail), chunk_len) {
            for i in 0..summary.blocks().len() {
                let _ = summary.open_block(i, Bytes::new());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(c) = Chunk::open(Bytes::from(data)) {
            for b in c.blocks() {
                let _ = b.decode();
            }
        }
    }

    #[test]
    fn truncation_is_detected(es in entries(), cut in any::<prop::sample::Index>()) {
        let data = encode_chunk(&[build(&es).encode(&EncodeOptions::default())]).unwrap();
        let n = cut.index(data.len());
        prop_assert!(Chunk::open(Bytes::from(data[..n].to_vec())).is_err());
    }
}
