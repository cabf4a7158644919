//! Compression codecs for block columns.
//!
//! Every section records its decompressed length, and decompression refuses to produce more
//! than that (and more than [`MAX_SECTION_BYTES`]), so a corrupt or hostile length can never
//! make a reader allocate without bound.

use crate::ChunkError;

/// No decompressed section may exceed this size (a block holds at most a few MiB of text).
pub const MAX_SECTION_BYTES: usize = 256 << 20;

/// Per-thread zstd contexts: creating one costs more than compressing a small section, and
/// every block has three sections.
#[derive(Default)]
struct ZstdContexts {
    compressor: Option<(i32, zstd::bulk::Compressor<'static>)>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
}

thread_local! {
    static ZSTD_CONTEXTS: std::cell::RefCell<ZstdContexts> = std::cell::RefCell::default();
}

/// How block columns are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is; used for short-lived snapshots of the ingester's head.
    None,
    /// Zstandard at the given level (1–19).
    Zstd(i32),
    /// LZ4 block format: faster, larger.
    Lz4,
}

impl Codec {
    pub(crate) fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd(_) => 1,
            Codec::Lz4 => 2,
        }
    }

    pub(crate) fn from_id(id: u8) -> Result<Codec, ChunkError> {
        match id {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Zstd(0)),
            2 => Ok(Codec::Lz4),
            other => Err(ChunkError::Corrupt(format!("unknown codec id {other}"))),
        }
    }

    /// Parses a config name: `none`, `lz4`, `zstd` or `zstd:<level>`.
    pub fn parse(s: &str) -> Option<Codec> {
        match s {
            "none" => Some(Codec::None),
            "lz4" => Some(Codec::Lz4),
            "zstd" => Some(Codec::Zstd(1)),
            _ => s
                .strip_prefix("zstd:")
                .and_then(|l| l.parse().ok())
                .filter(|l| (1..=19).contains(l))
                .map(Codec::Zstd),
        }
    }

    pub(crate) fn compress(self, raw: &[u8], out: &mut Vec<u8>) {
        match self {
            Codec::None => out.extend_from_slice(raw),
            Codec::Zstd(level) => {
                let start = out.len();
                out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
                // The frame goes into the spare capacity after `start`, which is not zeroed
                // first (a cursor on the Vec marks where writing begins).
                let mut dest = std::io::Cursor::new(&mut *out);
                dest.set_position(start as u64);
                let res = ZSTD_CONTEXTS.with(|c| {
                    let mut c = c.borrow_mut();
                    let cctx = match &mut c.compressor {
                        Some((l, cctx)) if *l == level => cctx,
                        slot => {
                            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
                            &mut slot.as_mut().expect("just set").1
                        }
                    };
                    cctx.compress_to_buffer(raw, &mut dest)
                });
                match res {
                    Ok(_) => {}
                    Err(_) => {
                        // Cannot happen with a buffer of compress_bound bytes; store raw bytes
                        // under a valid frame instead of failing the flush.
                        out.truncate(start);
                        let frame = zstd::bulk::compress(raw, 1).unwrap_or_default();
                        out.extend_from_slice(&frame);
                    }
                }
            }
            Codec::Lz4 => out.extend_from_slice(&lz4_flex::block::compress(raw)),
        }
    }

    pub(crate) fn decompress(self, data: &[u8], raw_len: usize) -> Result<Vec<u8>, ChunkError> {
        if raw_len > MAX_SECTION_BYTES {
            return Err(ChunkError::Corrupt(format!(
                "section of {raw_len} bytes exceeds the limit"
            )));
        }
        let out = match self {
            Codec::None => data.to_vec(),
            Codec::Zstd(_) => ZSTD_CONTEXTS
                .with(|c| {
                    let mut c = c.borrow_mut();
                    if c.decompressor.is_none() {
                        c.decompressor = Some(zstd::bulk::Decompressor::new()?);
                    }
                    let d = c.decompressor.as_mut().expect("just set");
                    d.decompress(data, raw_len)
                })
                .map_err(|e| ChunkError::Corrupt(format!("zstd: {e}")))?,
            Codec::Lz4 => lz4_flex::block::decompress(data, raw_len)
                .map_err(|e| ChunkError::Corrupt(format!("lz4: {e}")))?,
        };
        if out.len() != raw_len {
            return Err(ChunkError::Corrupt(format!(
                "section decompressed to {} bytes, expected {raw_len}",
                out.len()
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_codecs_round_trip() {
        let raw: Vec<u8> = (0..10_000u32)
            .flat_map(|i| format!("line {i} ok\n").into_bytes())
            .collect();
        for c in [Codec::None, Codec::Zstd(3), Codec::Lz4] {
            let mut out = Vec::new();
            c.compress(&raw, &mut out);
            assert_eq!(c.decompress(&out, raw.len()).unwrap(), raw);
            assert!(c.decompress(&out, raw.len() - 1).is_err() || c == Codec::None);

            // Compressing appends: bytes already in the buffer stay, the frame follows them.
            let mut appended = b"header".to_vec();
            c.compress(&raw, &mut appended);
            assert_eq!(&appended[..6], b"header");
            assert_eq!(appended[6..], out[..]);
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!(Codec::parse("zstd:7"), Some(Codec::Zstd(7)));
        assert_eq!(Codec::parse("zstd:70"), None);
        assert_eq!(Codec::parse("lz4"), Some(Codec::Lz4));
    }
}
