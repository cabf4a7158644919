//! Tailing one file: read new lines from the saved position, follow rotation, drain files that
//! are deleted or renamed away.
//!
//! A tailer reads whatever is new (in chunks, complete lines only), sends the lines as one
//! batch into its job's pipeline channel — waiting when the channel is full, which is how a
//! slow server back-pressures reading — then waits for a change notification or the poll
//! interval. At end of data it checks the path:
//! * same file, smaller than the read offset → truncated (copy-truncate rotation): read again
//!   from 0;
//! * another file at the path → renamed away (rename rotation): drain the old file once more
//!   after a poll interval, then follow the new file from 0;
//! * nothing at the path → deleted: drain the same way, forget its position and stop.
//!
//! Each line gets a strictly increasing timestamp (read time, or last + 1ns), so lines of one
//! file keep their order even when a pipeline sets no time.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

use crate::metrics::{Metrics, PathLabel};
use crate::positions::{FileProgress, Positions};
use crate::relabel::LabelMap;
use crate::stages::Entry;

/// Lines longer than this without a newline are cut into pieces.
const MAX_BUFFERED_LINE: usize = 8 << 20;
const READ_CHUNK: usize = 64 << 10;

/// How a tailer should stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Running,
    /// The target went away: read what is left, then stop.
    Drain,
    /// Shutdown: stop now.
    Now,
}

/// Everything a tailer needs.
pub struct TailerArgs {
    pub path: PathBuf,
    pub labels: LabelMap,
    pub positions: Arc<Positions>,
    pub metrics: Arc<Metrics>,
    pub out: mpsc::Sender<Vec<Entry>>,
    pub wake: Arc<Notify>,
    pub poll: Duration,
    pub stop: watch::Receiver<StopMode>,
    pub max_line_size: usize,
    pub truncate_long_lines: bool,
    /// Shared by all tailers: how many may hold a batch of read lines at once. Bounds memory
    /// when many files have data and the pipeline is slow.
    pub read_slots: Arc<tokio::sync::Semaphore>,
}

struct Open {
    file: File,
    ino: (u64, u64),
    progress: Arc<FileProgress>,
    /// Offset of the first byte of `buf` in the file.
    offset: u64,
    buf: Vec<u8>,
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

struct Tailer {
    a: TailerArgs,
    key: String,
    path_label: PathLabel,
    last_ts: i64,
}

/// Runs a tailer until its file is gone or it is told to stop.
pub async fn run(a: TailerArgs) {
    let key = a.path.to_string_lossy().into_owned();
    let path_label = PathLabel { path: key.clone() };
    let mut t = Tailer {
        a,
        key,
        path_label,
        last_ts: 0,
    };
    t.run().await;
    t.a.metrics.files_active.dec();
}

impl Tailer {
    fn open(&self, from_saved: bool) -> Option<Open> {
        let file = match File::open(&self.a.path) {
            Ok(f) => f,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %self.key, error = %e, "cannot open file");
                }
                return None;
            }
        };
        let meta = file.metadata().ok()?;
        let mut offset = if from_saved {
            self.a.positions.get(&self.key).unwrap_or(0)
        } else {
            0
        };
        if offset > meta.len() {
            tracing::info!(path = %self.key, offset, size = meta.len(), "file is smaller than its saved position; reading from the start");
            offset = 0;
        }
        let mut file = file;
        file.seek(SeekFrom::Start(offset)).ok()?;
        let progress = self.a.positions.start(&self.key, offset);
        tracing::info!(path = %self.key, offset, "tailing file");
        Some(Open {
            file,
            ino: (meta.dev(), meta.ino()),
            progress,
            offset,
            buf: Vec::new(),
        })
    }

    fn stop_mode(&self) -> StopMode {
        *self.a.stop.borrow()
    }

    async fn run(&mut self) {
        let Some(mut open) = self.open(true) else {
            return;
        };
        loop {
            if self.stop_mode() == StopMode::Now {
                return;
            }
            let read_any = match self.read_available(&mut open, false).await {
                Some(n) => n > 0,
                None => return,
            };
            if read_any {
                continue;
            }
            if let Ok(m) = open.file.metadata() {
                self.a
                    .metrics
                    .file_bytes
                    .get_or_create(&self.path_label)
                    .set(m.len() as i64);
            }
            // At the end of the data: has the file been rotated, truncated or deleted?
            match std::fs::metadata(&self.a.path) {
                Ok(m) if (m.dev(), m.ino()) == open.ino => {
                    let pos = open.offset + open.buf.len() as u64;
                    if m.len() < pos {
                        tracing::info!(path = %self.key, size = m.len(), offset = pos, "file truncated; reading from the start");
                        if open.file.seek(SeekFrom::Start(0)).is_err() {
                            return;
                        }
                        open.progress = self.a.positions.start(&self.key, 0);
                        open.offset = 0;
                        open.buf.clear();
                        continue;
                    }
                }
                other => {
                    let replaced = other.is_ok();
                    // A writer may still append to the old file for a moment: wait one poll
                    // interval and drain it again before letting go.
                    self.wait().await;
                    if self.stop_mode() == StopMode::Now
                        || self.read_available(&mut open, true).await.is_none()
                    {
                        return;
                    }
                    if replaced {
                        tracing::info!(path = %self.key, "file rotated; following the new file");
                        match self.open(false) {
                            Some(o) => {
                                open = o;
                                continue;
                            }
                            None => {
                                self.a.positions.remove(&self.key);
                                return;
                            }
                        }
                    }
                    tracing::info!(path = %self.key, "file removed; stopped tailing");
                    self.a.positions.remove(&self.key);
                    return;
                }
            }
            if self.stop_mode() == StopMode::Drain {
                self.a.positions.stop(&self.key);
                return;
            }
            self.wait().await;
        }
    }

    async fn wait(&mut self) {
        let poll = self.a.poll;
        let wake = self.a.wake.clone();
        let mut stop = self.a.stop.clone();
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => {}
        }
    }

    fn next_ts(&mut self) -> i64 {
        let now = now_ns();
        self.last_ts = if now > self.last_ts {
            now
        } else {
            self.last_ts + 1
        };
        self.last_ts
    }

    /// Reads and sends everything available. With `eof_flush`, a final line without a newline
    /// is sent too (the file will not grow any more). Returns the bytes read, or `None` when
    /// the pipeline is gone.
    async fn read_available(&mut self, open: &mut Open, eof_flush: bool) -> Option<usize> {
        let mut total = 0usize;
        loop {
            let _slot = self.a.read_slots.clone().acquire_owned().await.ok()?;
            let start_len = open.buf.len();
            open.buf.resize(start_len + READ_CHUNK, 0);
            let n = match open.file.read(&mut open.buf[start_len..]) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(path = %self.key, error = %e, "read failed");
                    0
                }
            };
            open.buf.truncate(start_len + n);
            total += n;
            if n > 0 {
                self.a
                    .metrics
                    .read_bytes
                    .get_or_create(&self.path_label)
                    .inc_by(n as u64);
            }
            let batch = self.take_lines(open, eof_flush && n == 0);
            if !batch.is_empty() {
                self.a
                    .metrics
                    .read_lines
                    .get_or_create(&self.path_label)
                    .inc_by(batch.len() as u64);
                if self.a.out.send(batch).await.is_err() {
                    return None;
                }
            }
            if n == 0 {
                // Idle files keep no read buffer (1,000 tailed files would hold 64 MiB).
                if open.buf.is_empty() {
                    open.buf = Vec::new();
                } else {
                    open.buf.shrink_to_fit();
                }
                return Some(total);
            }
            if self.stop_mode() == StopMode::Now {
                return Some(total);
            }
        }
    }

    fn take_lines(&mut self, open: &mut Open, flush_rest: bool) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut consumed = 0usize;
        let buf = std::mem::take(&mut open.buf);
        while let Some(nl) = memchr::memchr(b'\n', &buf[consumed..]) {
            let end = consumed + nl + 1;
            self.push_line(open, &buf[consumed..consumed + nl], consumed, end, &mut out);
            consumed = end;
        }
        let rest = buf.len() - consumed;
        if rest > 0 && (flush_rest || rest >= MAX_BUFFERED_LINE) {
            self.push_line(open, &buf[consumed..], consumed, buf.len(), &mut out);
            consumed = buf.len();
        }
        open.offset += consumed as u64;
        let mut buf = buf;
        buf.drain(..consumed);
        open.buf = buf;
        out
    }

    fn push_line(
        &mut self,
        open: &Open,
        raw: &[u8],
        start: usize,
        end: usize,
        out: &mut Vec<Entry>,
    ) {
        let (s, e) = (open.offset + start as u64, open.offset + end as u64);
        let mut raw = raw;
        if raw.last() == Some(&b'\r') {
            raw = &raw[..raw.len() - 1];
        }
        if self.a.max_line_size > 0 && raw.len() > self.a.max_line_size {
            if self.a.truncate_long_lines {
                raw = &raw[..self.a.max_line_size];
            } else {
                open.progress.skip_to(e);
                return;
            }
        }
        let line = match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        };
        let ts = self.next_ts();
        let mut entry = Entry::new(self.a.labels.clone(), line, ts);
        entry.acks.push(open.progress.track(s, e));
        out.push(entry);
    }
}
