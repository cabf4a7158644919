//! The compression study (`fjord-bench compress`): encodes a dataset's streams offline into
//! Fjord's own blocks under several codecs and block sizes, and reports bytes per raw byte by
//! section, encode and decode speed on one core, and what a zstd dictionary per app would save
//! on the text. It answers "which codec and block size should be the default" with the real
//! encoder instead of a guess, and without a server in the way.
//!
//! Streams are cut into blocks by raw line bytes, as the ingester does when no memory pressure
//! closes chunks early (under pressure, blocks come out smaller; the store's are reported by
//! `ingest`'s bytes on disk).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fjord_chunk::{BlockBuilder, Codec, EncodeOptions, EncodedBlock};
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Manifest, StreamData};

const MIB: f64 = (1u64 << 20) as f64;

/// Size of each app's trained zstd dictionary.
const DICTIONARY_BYTES: usize = 16 << 10;

/// Share of each app's lines (its earliest) the dictionary is trained on.
const DICTIONARY_SAMPLE: f64 = 0.05;

pub(crate) struct CompressOptions {
    pub(crate) data: std::path::PathBuf,
    /// Codec names as `ingester.chunk_encoding` takes them.
    pub(crate) codecs: Vec<String>,
    pub(crate) block_sizes: Vec<u64>,
    pub(crate) filter_bits_per_byte: f64,
    /// Also measure a per-app dictionary (zstd codecs only).
    pub(crate) dictionary: bool,
}

/// One codec at one block size.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompressRow {
    pub(crate) codec: String,
    pub(crate) block_size: u64,
    pub(crate) blocks: usize,
    /// Every section, headers and checksums, per raw byte.
    pub(crate) total_ratio: f64,
    pub(crate) index_ratio: f64,
    pub(crate) text_ratio: f64,
    pub(crate) filter_ratio: f64,
    /// Whole-block encoding (filter included), raw MiB per second on one core.
    pub(crate) encode_mib_s: f64,
    /// Whole-block decoding, raw MiB per second on one core.
    pub(crate) decode_mib_s: f64,
    /// The text section compressed with its app's dictionary (dictionaries counted in), when
    /// measured.
    pub(crate) text_ratio_with_dictionary: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CompressReport {
    pub(crate) raw_bytes: u64,
    pub(crate) lines: u64,
    pub(crate) rows: Vec<CompressRow>,
}

pub(crate) fn run(opts: &CompressOptions) -> Result<CompressReport> {
    let codecs = opts
        .codecs
        .iter()
        .map(|c| {
            Codec::parse(c)
                .with_context(|| format!("unknown codec {c:?} (none, lz4, zstd or zstd:<1-19>)"))
        })
        .collect::<Result<Vec<_>>>()?;
    if opts.block_sizes.iter().any(|&b| b < 1024) {
        bail!("block sizes must be at least 1KB");
    }
    let manifest = Manifest::read(&opts.data)?;
    let streams: Vec<StreamData> = manifest
        .files
        .par_iter()
        .map(|f| StreamData::read(&opts.data.join(&f.file)))
        .collect::<Result<_>>()?;
    let raw = manifest.raw_bytes as f64;
    let mut rows = Vec::new();
    for &block_size in &opts.block_sizes {
        for (name, &codec) in opts.codecs.iter().zip(&codecs) {
            eprintln!("compress: {name} in {} KiB blocks", block_size >> 10);
            let encode = EncodeOptions {
                codec,
                filter_bits_per_byte: opts.filter_bits_per_byte,
            };
            let (blocks, encode_time) = encode_blocks(&streams, block_size, &encode);
            let decode_time = decode_blocks(&blocks)?;
            let mut sizes = [0usize; 3];
            for (_, b) in &blocks {
                let s = b.section_sizes()?;
                sizes[0] += s.index;
                sizes[1] += s.text;
                sizes[2] += s.filter;
            }
            let total: usize = blocks.iter().map(|(_, b)| b.data.len()).sum();
            let text_ratio_with_dictionary = match codec {
                Codec::Zstd(level) if opts.dictionary => {
                    let texts = block_texts(&streams, &blocks)?;
                    Some(dictionary_text_bytes(&texts, level)? as f64 / raw)
                }
                _ => None,
            };
            rows.push(CompressRow {
                codec: name.clone(),
                block_size,
                blocks: blocks.len(),
                total_ratio: total as f64 / raw,
                index_ratio: sizes[0] as f64 / raw,
                text_ratio: sizes[1] as f64 / raw,
                filter_ratio: sizes[2] as f64 / raw,
                encode_mib_s: raw / MIB / encode_time.as_secs_f64(),
                decode_mib_s: raw / MIB / decode_time.as_secs_f64(),
                text_ratio_with_dictionary,
            });
        }
    }
    Ok(CompressReport {
        raw_bytes: manifest.raw_bytes,
        lines: manifest.lines,
        rows,
    })
}

/// Every stream cut into blocks of `block_size` raw bytes, each with the index of its stream;
/// returns the blocks and the time spent encoding them (appending entries to the builder is
/// not counted).
fn encode_blocks(
    streams: &[StreamData],
    block_size: u64,
    opts: &EncodeOptions,
) -> (Vec<(usize, EncodedBlock)>, Duration) {
    let mut blocks = Vec::new();
    let mut spent = Duration::ZERO;
    let mut builder = BlockBuilder::new();
    let mut cut = |builder: &mut BlockBuilder, blocks: &mut Vec<_>, stream: usize| {
        let t = Instant::now();
        blocks.push((stream, builder.encode(opts)));
        spent += t.elapsed();
        builder.clear();
    };
    for (stream, s) in streams.iter().enumerate() {
        for (i, &(ts, _, _)) in s.entries.iter().enumerate() {
            builder.push(ts, &s.line(i), &[]);
            if builder.raw_bytes() as u64 >= block_size {
                cut(&mut builder, &mut blocks, stream);
            }
        }
        if !builder.is_empty() {
            cut(&mut builder, &mut blocks, stream);
        }
    }
    (blocks, spent)
}

fn decode_blocks(blocks: &[(usize, EncodedBlock)]) -> Result<Duration> {
    let t = Instant::now();
    for (_, b) in blocks {
        std::hint::black_box(b.decode()?);
    }
    Ok(t.elapsed())
}

/// The text of every block, decoded back, with the app of the stream it belongs to.
fn block_texts<'a>(
    streams: &'a [StreamData],
    blocks: &[(usize, EncodedBlock)],
) -> Result<Vec<(&'a str, Vec<u8>)>> {
    blocks
        .iter()
        .map(|(stream, b)| {
            let app = label_value(&streams[*stream].labels, "app").unwrap_or("");
            Ok((app, b.decode()?.text().to_vec()))
        })
        .collect()
}

/// The value of `name` in a `{a="x", b="y"}` label string written by `gen`.
fn label_value<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let (at, _) = labels
        .match_indices(&key)
        .find(|&(i, _)| matches!(labels[..i].chars().next_back(), Some('{' | ' ')))?;
    let start = at + key.len();
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

/// Bytes of every block's text compressed at `level` with a dictionary trained per app on the
/// start of that app's text, plus the dictionaries themselves.
fn dictionary_text_bytes(texts: &[(&str, Vec<u8>)], level: i32) -> Result<usize> {
    let mut apps: Vec<&str> = texts.iter().map(|(a, _)| *a).collect();
    apps.sort_unstable();
    apps.dedup();
    let mut total = 0;
    for app in apps {
        let blocks: Vec<&[u8]> = texts
            .iter()
            .filter(|(a, _)| *a == app)
            .map(|(_, t)| t.as_slice())
            .collect();
        let app_bytes: usize = blocks.iter().map(|b| b.len()).sum();
        let sample_bytes = (app_bytes as f64 * DICTIONARY_SAMPLE) as usize;
        // Train on the app's first lines, split into ~1 KiB samples as zstd's trainer prefers.
        let samples: Vec<&[u8]> = blocks
            .iter()
            .flat_map(|b| b.chunks(1024))
            .scan(0usize, |seen, c| {
                *seen += c.len();
                (*seen <= sample_bytes.max(DICTIONARY_BYTES * 8)).then_some(c)
            })
            .collect();
        let dict = zstd::dict::from_samples(&samples, DICTIONARY_BYTES)
            .with_context(|| format!("training a dictionary for app {app:?}"))?;
        let mut compressor = zstd::bulk::Compressor::with_dictionary(level, &dict)?;
        total += dict.len();
        for b in blocks {
            total += compressor.compress(b)?.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_from_gen_label_strings() {
        let l = r#"{webapp="x", app="nginx", container="nginx", namespace="prod"}"#;
        assert_eq!(label_value(l, "app"), Some("nginx"));
        assert_eq!(label_value(l, "namespace"), Some("prod"));
        assert_eq!(label_value(l, "pod"), None);
    }

    #[test]
    fn study_of_a_small_dataset_adds_up() {
        let dir = tempfile::tempdir().unwrap();
        crate::generate::run(&crate::generate::GenOptions {
            size: 1_000_000,
            out: dir.path().to_path_buf(),
            seed: 5,
            streams: 20,
            duration_ns: 600_000_000_000,
            start_ns: crate::generate::DEFAULT_END_NS - 600_000_000_000,
        })
        .unwrap();
        let r = run(&CompressOptions {
            data: dir.path().to_path_buf(),
            codecs: vec!["lz4".into(), "zstd:1".into()],
            block_sizes: vec![16 << 10],
            filter_bits_per_byte: 0.25,
            dictionary: true,
        })
        .unwrap();
        assert_eq!(r.rows.len(), 2);
        let (lz4, zstd) = (&r.rows[0], &r.rows[1]);
        assert_eq!(lz4.blocks, zstd.blocks);
        for row in &r.rows {
            let parts = row.index_ratio + row.text_ratio + row.filter_ratio;
            assert!(
                parts > 0.0 && parts < row.total_ratio && row.total_ratio < 1.0,
                "{row:?}"
            );
            assert!(row.filter_ratio > 0.0 && row.encode_mib_s > 0.0 && row.decode_mib_s > 0.0);
        }
        assert!(zstd.text_ratio < lz4.text_ratio);
        assert!(lz4.text_ratio_with_dictionary.is_none());
        assert!(
            zstd.text_ratio_with_dictionary
                .is_some_and(|d| d > 0.0 && d < 1.0)
        );
        let bad = CompressOptions {
            codecs: vec!["brotli".into()],
            ..CompressOptions {
                data: dir.path().to_path_buf(),
                codecs: Vec::new(),
                block_sizes: vec![16 << 10],
                filter_bits_per_byte: 0.25,
                dictionary: false,
            }
        };
        assert!(run(&bad).unwrap_err().to_string().contains("unknown codec"));
    }
}
