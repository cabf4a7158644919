//! The write-ahead log: every accepted entry is appended here before the push is acknowledged.
//!
//! Files in the WAL directory:
//! ```text
//! 0000000007.wal          segments, appended in order, rotated by size and at checkpoints
//! checkpoint.0000000006   the unflushed state as of the end of segment 6 (written to a
//!                         temporary name, fsynced, then renamed)
//! ```
//! Recovery loads the newest checkpoint, then replays every segment numbered above it.
//!
//! One writer thread owns the open segment. Appends from many pushes are queued to it and
//! written together (group commit); under the default [`FsyncPolicy::Always`] the batch is
//! fsynced before any of its pushes is acknowledged, so an acknowledged push survives both a
//! killed process and a lost machine. A failed write is rolled back to the last good offset (or
//! the segment is abandoned for a new one), so a later record never follows garbage.
//!
//! **Invariants:** everything appended before [`Wal::rotate`] returns `n` lives in segments
//! `<= n`; a checkpoint named `n` makes segments `<= n` redundant, and only then are they
//! deleted.

pub mod record;

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fjord_model::buffer_pool::BufferPool;
use tokio::sync::oneshot;

use record::{FrameReader, Record, Torn};

/// When the WAL calls fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before acknowledging each batch of appends (group commit). Survives power loss.
    Always,
    /// Every interval; appends are acknowledged once written to the OS. Survives a killed
    /// process, not a lost machine.
    Interval(Duration),
    /// Only at rotation and shutdown.
    Never,
}

enum Cmd {
    Append(Vec<u8>, oneshot::Sender<io::Result<()>>),
    Rotate(oneshot::Sender<io::Result<u64>>),
    Close(oneshot::Sender<io::Result<()>>),
}

/// Handle to the WAL writer thread.
pub struct Wal {
    dir: PathBuf,
    tx: mpsc::Sender<Cmd>,
    buffers: Arc<BufferPool>,
}

/// Spare capacity kept for record buffers: the records of about three 1 MiB pushes. Larger
/// budgets measured no less CPU and kept more RSS (BENCHMARKS.md).
const SPARE_BUFFER_BYTES: usize = 4 << 20;

fn segment_name(n: u64) -> String {
    format!("{n:010}.wal")
}

fn checkpoint_name(n: u64) -> String {
    format!("checkpoint.{n:010}")
}

/// Segment and checkpoint numbers present in `dir`, each sorted ascending.
fn scan(dir: &Path) -> io::Result<(Vec<u64>, Vec<u64>)> {
    let mut segments = Vec::new();
    let mut checkpoints = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
            segments.push(n);
        } else if let Some(n) = name
            .strip_prefix("checkpoint.")
            .and_then(|s| s.parse().ok())
        {
            checkpoints.push(n);
        }
    }
    segments.sort_unstable();
    checkpoints.sort_unstable();
    Ok((segments, checkpoints))
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What recovery found.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayStats {
    pub checkpoint: Option<u64>,
    pub segments: usize,
    pub records: u64,
    pub bytes: u64,
    /// Segments whose tail was torn (expected only for the last one after a crash).
    pub torn_segments: usize,
}

/// Why recovery could not proceed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the WAL in {dir}: {source}")]
    Io { dir: String, source: io::Error },
    #[error(
        "WAL checkpoint {path} is corrupt at byte {offset}; move it away to start without it (its data will be lost)"
    )]
    CorruptCheckpoint { path: String, offset: usize },
}

/// Feeds every record of the newest checkpoint and the segments after it to `apply`, in order.
pub fn replay(dir: &Path, mut apply: impl FnMut(Record)) -> Result<ReplayStats, ReplayError> {
    let io_err = |source| ReplayError::Io {
        dir: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let (segments, checkpoints) = scan(dir).map_err(io_err)?;
    let mut stats = ReplayStats {
        checkpoint: checkpoints.last().copied(),
        ..Default::default()
    };
    if let Some(&n) = checkpoints.last() {
        let path = dir.join(checkpoint_name(n));
        let data = Bytes::from(std::fs::read(&path).map_err(io_err)?);
        stats.bytes += data.len() as u64;
        let mut r = FrameReader::new(data);
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    stats.records += 1;
                    apply(rec);
                }
                Ok(None) => break,
                Err(Torn(offset)) => {
                    return Err(ReplayError::CorruptCheckpoint {
                        path: path.display().to_string(),
                        offset,
                    });
                }
            }
        }
    }
    let after = stats.checkpoint.unwrap_or(0);
    let todo: Vec<u64> = segments
        .into_iter()
        .filter(|&s| stats.checkpoint.is_none() || s > after)
        .collect();
    let last = todo.last().copied();
    for s in todo {
        let path = dir.join(segment_name(s));
        let data = Bytes::from(std::fs::read(&path).map_err(io_err)?);
        stats.bytes += data.len() as u64;
        stats.segments += 1;
        let mut r = FrameReader::new(data);
        loop {
            match r.next_record() {
                Ok(Some(rec)) => {
                    stats.records += 1;
                    apply(rec);
                }
                Ok(None) => break,
                Err(Torn(at)) => {
                    stats.torn_segments += 1;
                    if Some(s) == last {
                        tracing::info!(segment = %path.display(), offset = at, "WAL tail torn by a crash; unacknowledged writes after it are dropped");
                    } else {
                        tracing::error!(segment = %path.display(), offset = at, "corrupt WAL segment; records after this offset are lost");
                    }
                    break;
                }
            }
        }
    }
    Ok(stats)
}

impl Wal {
    /// Starts the writer on a fresh segment numbered after every existing file.
    pub fn open(dir: &Path, policy: FsyncPolicy, segment_size: u64) -> io::Result<Wal> {
        std::fs::create_dir_all(dir)?;
        let (segments, checkpoints) = scan(dir)?;
        let next = segments
            .last()
            .copied()
            .max(checkpoints.last().copied())
            .map_or(1, |n| n + 1);
        let writer = Writer::create(dir.to_path_buf(), next, policy, segment_size)?;
        let (tx, rx) = mpsc::channel();
        let buffers = Arc::new(BufferPool::new(SPARE_BUFFER_BYTES));
        let written = Arc::clone(&buffers);
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer.run(rx, &written))?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            tx,
            buffers,
        })
    }

    /// An empty buffer for [`Wal::append`] with room for `capacity` bytes. The writer gives
    /// appended buffers back for reuse once they are written.
    pub fn buffer(&self, capacity: usize) -> Vec<u8> {
        self.buffers.take(capacity)
    }

    fn send(&self, cmd: Cmd) -> io::Result<()> {
        self.tx
            .send(cmd)
            .map_err(|_| io::Error::other("WAL writer has stopped"))
    }

    /// Appends framed records; resolves once they are written (and fsynced, per policy).
    pub async fn append(&self, data: Vec<u8>) -> io::Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(Cmd::Append(data, done))?;
        wait.await
            .map_err(|_| io::Error::other("WAL writer has stopped"))?
    }

    /// Closes the current segment (fsynced) and starts the next; returns the closed segment's
    /// number. Everything appended before this call is in segments up to that number.
    pub async fn rotate(&self) -> io::Result<u64> {
        let (done, wait) = oneshot::channel();
        self.send(Cmd::Rotate(done))?;
        wait.await
            .map_err(|_| io::Error::other("WAL writer has stopped"))?
    }

    /// Flushes and fsyncs the open segment and stops the writer.
    pub async fn close(&self) -> io::Result<()> {
        let (done, wait) = oneshot::channel();
        self.send(Cmd::Close(done))?;
        wait.await
            .map_err(|_| io::Error::other("WAL writer has stopped"))?
    }

    /// Starts writing the checkpoint that covers segments `<= upto`.
    pub fn checkpoint(&self, upto: u64) -> io::Result<CheckpointWriter> {
        let tmp = self.dir.join(format!("{}.tmp", checkpoint_name(upto)));
        let file = File::create(&tmp)?;
        Ok(CheckpointWriter {
            dir: self.dir.clone(),
            upto,
            tmp,
            out: io::BufWriter::with_capacity(1 << 20, file),
            bytes: 0,
        })
    }

    /// Total bytes of WAL files on disk.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|it| {
                it.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Writes one checkpoint; nothing is replaced until [`CheckpointWriter::finish`] succeeds.
pub struct CheckpointWriter {
    dir: PathBuf,
    upto: u64,
    tmp: PathBuf,
    out: io::BufWriter<File>,
    bytes: u64,
}

impl CheckpointWriter {
    /// Writes framed records.
    pub fn write(&mut self, framed: &[u8]) -> io::Result<()> {
        self.bytes += framed.len() as u64;
        self.out.write_all(framed)
    }

    /// Makes the checkpoint durable and current, then deletes what it replaces. Returns its size.
    pub fn finish(self) -> io::Result<u64> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, self.dir.join(checkpoint_name(self.upto)))?;
        fsync_dir(&self.dir)?;
        let (segments, checkpoints) = scan(&self.dir)?;
        for s in segments.into_iter().filter(|&s| s <= self.upto) {
            std::fs::remove_file(self.dir.join(segment_name(s)))?;
        }
        for c in checkpoints.into_iter().filter(|&c| c < self.upto) {
            std::fs::remove_file(self.dir.join(checkpoint_name(c)))?;
        }
        Ok(self.bytes)
    }
}

/// The writer thread's state.
struct Writer {
    dir: PathBuf,
    number: u64,
    file: File,
    /// Bytes known to be good in the open segment.
    size: u64,
    policy: FsyncPolicy,
    segment_size: u64,
    dirty_since: Option<Instant>,
}

impl Writer {
    fn create(
        dir: PathBuf,
        number: u64,
        policy: FsyncPolicy,
        segment_size: u64,
    ) -> io::Result<Writer> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.join(segment_name(number)))?;
        fsync_dir(&dir)?;
        Ok(Writer {
            dir,
            number,
            file,
            size: 0,
            policy,
            segment_size,
            dirty_since: None,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<Cmd>, buffers: &BufferPool) {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut waiters: Vec<oneshot::Sender<io::Result<()>>> = Vec::new();
        loop {
            let first = match self.policy {
                FsyncPolicy::Interval(every) if self.dirty_since.is_some() => {
                    match rx.recv_timeout(every) {
                        Ok(c) => Some(c),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return self.shutdown(),
                    }
                }
                _ => match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return self.shutdown(),
                },
            };
            let mut pending: Vec<Cmd> = first.into_iter().collect();
            while let Ok(c) = rx.try_recv() {
                pending.push(c);
                if pending.len() >= 4096 {
                    break;
                }
            }
            for cmd in pending {
                match cmd {
                    Cmd::Append(data, done) => {
                        batch.push(data);
                        waiters.push(done);
                    }
                    Cmd::Rotate(done) => {
                        self.commit(&mut batch, &mut waiters, buffers);
                        let _ = done.send(self.rotate());
                    }
                    Cmd::Close(done) => {
                        self.commit(&mut batch, &mut waiters, buffers);
                        let _ = done.send(self.file.sync_all());
                        return;
                    }
                }
            }
            self.commit(&mut batch, &mut waiters, buffers);
            if let (FsyncPolicy::Interval(every), Some(since)) = (self.policy, self.dirty_since)
                && since.elapsed() >= every
            {
                if let Err(e) = self.file.sync_data() {
                    tracing::error!(error = %e, "WAL fsync failed");
                }
                self.dirty_since = None;
            }
            if self.size >= self.segment_size
                && let Err(e) = self.rotate()
            {
                tracing::error!(error = %e, "WAL rotation failed; continuing in the current segment");
            }
        }
    }

    /// Writes the batch, syncs per policy, answers every waiter and gives the batch's buffers
    /// back to `buffers`.
    fn commit(
        &mut self,
        batch: &mut Vec<Vec<u8>>,
        waiters: &mut Vec<oneshot::Sender<io::Result<()>>>,
        buffers: &BufferPool,
    ) {
        if waiters.is_empty() {
            return;
        }
        let res = self.write_batch(batch);
        for w in waiters.drain(..) {
            let _ = w.send(match &res {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), format!("write-ahead log: {e}"))),
            });
        }
        for buf in batch.drain(..) {
            buffers.give(buf);
        }
    }

    fn write_batch(&mut self, batch: &[Vec<u8>]) -> io::Result<()> {
        let res = write_all_vectored(&mut self.file, batch).and_then(|()| match self.policy {
            FsyncPolicy::Always => self.file.sync_data(),
            FsyncPolicy::Interval(_) => {
                self.dirty_since.get_or_insert_with(Instant::now);
                Ok(())
            }
            FsyncPolicy::Never => Ok(()),
        });
        match res {
            Ok(()) => {
                self.size += batch.iter().map(|b| b.len() as u64).sum::<u64>();
                Ok(())
            }
            Err(e) => {
                // Cut the partial write off so the next record follows good data; if even that
                // fails, abandon this segment (replay stops at its torn tail) for a new one.
                if self.file.set_len(self.size).is_err()
                    && let Err(e2) = self.rotate()
                {
                    tracing::error!(error = %e2, "WAL cannot start a new segment");
                }
                Err(e)
            }
        }
    }

    fn rotate(&mut self) -> io::Result<u64> {
        self.file.sync_all()?;
        let closed = self.number;
        let next = Writer::create(self.dir.clone(), closed + 1, self.policy, self.segment_size)?;
        *self = next;
        Ok(closed)
    }

    fn shutdown(self) {
        if let Err(e) = self.file.sync_all() {
            tracing::error!(error = %e, "WAL fsync at shutdown failed");
        }
    }
}

/// Writes every buffer in order with as few `writev` calls as the kernel allows.
fn write_all_vectored(file: &mut File, bufs: &[Vec<u8>]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    IoSlice::advance_slices(&mut rest, 0);
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::record::{BlockState, encode_entries};
    use super::*;
    use fjord_model::Entry;

    fn rec(i: i64) -> Vec<u8> {
        let mut b = Vec::new();
        encode_entries(
            &mut b,
            "t",
            [("{a=\"1\"}", &[Entry::new(i, format!("line {i}"))][..])].into_iter(),
        );
        b
    }

    fn replayed(dir: &Path) -> Vec<i64> {
        let mut got = Vec::new();
        replay(dir, |r| match r {
            Record::Entries { streams, .. } => {
                got.extend(streams.iter().flat_map(|(_, es)| es.iter().map(|e| e.ts)))
            }
            Record::Blocks { .. } => got.push(-1),
        })
        .unwrap();
        got
    }

    #[tokio::test]
    async fn appends_replay_in_order_across_rotation_and_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), FsyncPolicy::Always, 200).unwrap();
        for i in 0..10 {
            wal.append(rec(i)).await.unwrap();
        }
        assert_eq!(replayed(dir.path()), (0..10).collect::<Vec<_>>());
        let upto = wal.rotate().await.unwrap();
        wal.append(rec(10)).await.unwrap();
        // A checkpoint standing for everything before the rotation.
        let mut cp = wal.checkpoint(upto).unwrap();
        let mut b = Vec::new();
        record::encode_blocks(&mut b, "t", "{a=\"1\"}", BlockState::Open, &[]);
        cp.write(&b).unwrap();
        cp.finish().unwrap();
        assert_eq!(replayed(dir.path()), vec![-1, 10]);
        wal.close().await.unwrap();

        // A restart continues numbering after existing files.
        let wal = Wal::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap();
        wal.append(rec(11)).await.unwrap();
        wal.close().await.unwrap();
        assert_eq!(replayed(dir.path()), vec![-1, 10, 11]);
    }

    #[tokio::test]
    async fn many_queued_appends_are_written_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), FsyncPolicy::Always, 1 << 30).unwrap();
        // More appends queued at once than one writev takes (Linux's IOV_MAX is 1024).
        let waits: Vec<_> = (0..3000)
            .map(|i| {
                let (done, wait) = oneshot::channel();
                let mut buf = wal.buffer(64);
                buf.extend_from_slice(&rec(i));
                wal.send(Cmd::Append(buf, done)).unwrap();
                wait
            })
            .collect();
        for w in waits {
            w.await.unwrap().unwrap();
        }
        wal.close().await.unwrap();
        assert_eq!(replayed(dir.path()), (0..3000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(
            dir.path(),
            FsyncPolicy::Interval(Duration::from_millis(5)),
            1 << 20,
        )
        .unwrap();
        wal.append(rec(1)).await.unwrap();
        wal.append(rec(2)).await.unwrap();
        wal.close().await.unwrap();
        let (segments, _) = scan(dir.path()).unwrap();
        let path = dir.path().join(segment_name(segments[0]));
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        assert_eq!(replayed(dir.path()), vec![1]);
    }
}
