//! The on-disk dataset: `manifest.json` (totals, time range, needles, bursts, one record per
//! stream) and one binary file per stream under `streams/`, fast to read back whole.
//!
//! Stream file layout (little endian):
//! `b"FJBSTRM1"`, u32 label-string length, the label string (`{app="…", …}`), u64 entry count,
//! then per entry: i64 timestamp (Unix ns), u32 line length, the line bytes. Entries are in
//! non-decreasing timestamp order. Lines may contain `\n` (multi-line entries).
//!
//! Everything written here is a pure function of the generator's inputs: no wall-clock times,
//! host names or map iteration orders, so the same seed gives byte-identical files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"FJBSTRM1";
pub(crate) const MANIFEST: &str = "manifest.json";
pub(crate) const FORMAT: &str = "fjord-bench-dataset/1";

/// Totals and layout of a generated dataset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Manifest {
    pub(crate) format: String,
    pub(crate) seed: u64,
    /// Sum of line lengths in bytes (the "raw" size every figure is relative to).
    pub(crate) raw_bytes: u64,
    pub(crate) lines: u64,
    pub(crate) streams: usize,
    /// Time range `[start_ns, end_ns)`; every entry lies inside it.
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
    pub(crate) start: String,
    pub(crate) end: String,
    /// Rare strings and the exact number of lines containing each.
    pub(crate) needles: Vec<Needle>,
    pub(crate) bursts: Vec<Burst>,
    /// When the production api-gateway deployment was rolled out (RFC 3339).
    pub(crate) rollout: String,
    pub(crate) files: Vec<StreamFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Needle {
    pub(crate) text: String,
    pub(crate) lines: u64,
}

/// An error burst: the listed apps of one namespace log mostly errors, and more, for a while.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Burst {
    pub(crate) scenario: String,
    pub(crate) namespace: String,
    pub(crate) apps: Vec<String>,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: i64,
}

/// One stream's file and totals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct StreamFile {
    pub(crate) file: String,
    pub(crate) labels: String,
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
    pub(crate) first_ns: i64,
    pub(crate) last_ns: i64,
}

impl Manifest {
    pub(crate) fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read(&path).with_context(|| {
            format!(
                "reading {} (generate a dataset with `fjord-bench gen --out {}`)",
                path.display(),
                dir.display()
            )
        })?;
        let m: Manifest =
            serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
        if m.format != FORMAT {
            bail!(
                "{} has format {:?}; this tool reads {FORMAT:?} (regenerate the dataset)",
                path.display(),
                m.format
            );
        }
        Ok(m)
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let mut text = serde_json::to_vec_pretty(self).context("serialising the manifest")?;
        text.push(b'\n');
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Writes one stream file; the entry count is declared up front.
pub(crate) struct StreamWriter {
    out: BufWriter<File>,
    path: PathBuf,
    declared: u64,
    stats: StreamFile,
}

impl StreamWriter {
    pub(crate) fn create(
        dir: &Path,
        file: &str,
        labels: &str,
        entries: u64,
    ) -> Result<StreamWriter> {
        let path = dir.join(file);
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let label_len = u32::try_from(labels.len()).context("label string longer than 4 GiB")?;
        out.write_all(MAGIC)?;
        out.write_all(&label_len.to_le_bytes())?;
        out.write_all(labels.as_bytes())?;
        out.write_all(&entries.to_le_bytes())?;
        let stats = StreamFile {
            file: file.to_string(),
            labels: labels.to_string(),
            lines: 0,
            bytes: 0,
            first_ns: 0,
            last_ns: 0,
        };
        Ok(StreamWriter {
            out,
            path,
            declared: entries,
            stats,
        })
    }

    pub(crate) fn push(&mut self, ts: i64, line: &[u8]) -> Result<()> {
        let len = u32::try_from(line.len()).context("line longer than 4 GiB")?;
        if self.stats.lines == 0 {
            self.stats.first_ns = ts;
        } else if ts < self.stats.last_ns {
            bail!(
                "{}: entries out of order ({ts} after {})",
                self.path.display(),
                self.stats.last_ns
            );
        }
        self.stats.last_ns = ts;
        self.stats.lines += 1;
        self.stats.bytes += line.len() as u64;
        self.out.write_all(&ts.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(line)?;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Result<StreamFile> {
        if self.stats.lines != self.declared {
            bail!(
                "{}: declared {} entries, wrote {}",
                self.path.display(),
                self.declared,
                self.stats.lines
            );
        }
        self.out
            .flush()
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(self.stats)
    }
}

/// A stream read back: the file's bytes plus an index of its entries.
pub(crate) struct StreamData {
    pub(crate) labels: String,
    data: Bytes,
    /// (timestamp, offset of the line in `data`, line length)
    pub(crate) entries: Vec<(i64, u32, u32)>,
}

impl StreamData {
    pub(crate) fn read(path: &Path) -> Result<StreamData> {
        let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        StreamData::parse(Bytes::from(raw))
            .with_context(|| format!("{} is not a valid stream file", path.display()))
    }

    fn parse(data: Bytes) -> Result<StreamData> {
        let mut cur = Cursor { b: &data, pos: 0 };
        if cur.take(8)? != MAGIC {
            bail!("bad magic");
        }
        let label_len = cur.u32()? as usize;
        let labels =
            String::from_utf8(cur.take(label_len)?.to_vec()).context("labels are not UTF-8")?;
        let count = cur.u64()?;
        if count > (data.len() as u64) / 12 {
            bail!("entry count {count} cannot fit in {} bytes", data.len());
        }
        let mut entries = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let ts = cur.i64()?;
            let len = cur.u32()?;
            let off = u32::try_from(cur.pos).context("stream file over 4 GiB")?;
            cur.take(len as usize)?;
            entries.push((ts, off, len));
        }
        if cur.pos != data.len() {
            bail!("{} trailing bytes", data.len() - cur.pos);
        }
        Ok(StreamData {
            labels,
            data,
            entries,
        })
    }

    /// The text of entry `i` (a zero-copy slice).
    pub(crate) fn line(&self, i: usize) -> Bytes {
        let (_, off, len) = self.entries[i];
        self.data.slice(off as usize..off as usize + len as usize)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .context("truncated")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StreamWriter::create(dir.path(), "s.bin", "{app=\"a\"}", 3).unwrap();
        w.push(10, b"one").unwrap();
        w.push(10, b"two\nlines").unwrap();
        w.push(12, b"").unwrap();
        let stats = w.finish().unwrap();
        assert_eq!(
            (stats.lines, stats.bytes, stats.first_ns, stats.last_ns),
            (3, 12, 10, 12)
        );
        let d = StreamData::read(&dir.path().join("s.bin")).unwrap();
        assert_eq!(d.labels, "{app=\"a\"}");
        assert_eq!(
            d.entries.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![10, 10, 12]
        );
        assert_eq!(&d.line(1)[..], b"two\nlines");
        assert_eq!(&d.line(2)[..], b"");
    }

    #[test]
    fn rejects_damage_and_disorder() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StreamWriter::create(dir.path(), "s.bin", "{a=\"b\"}", 2).unwrap();
        w.push(10, b"x").unwrap();
        assert!(w.push(9, b"y").is_err(), "out of order");
        let raw = std::fs::read(dir.path().join("s.bin")).unwrap_or_default();
        assert!(
            StreamData::parse(Bytes::from(raw)).is_err(),
            "truncated (unflushed) file is rejected"
        );
        assert!(StreamData::parse(Bytes::from_static(b"FJBSTRM1\xff\xff\xff\xff")).is_err());
        assert!(StreamData::parse(Bytes::from_static(b"nope")).is_err());
    }
}
