//! Read positions: how far each file has been read *and acknowledged*, kept across restarts in
//! Promtail's YAML format (`positions: {"/path/f.log": "12345"}`).
//!
//! Every line read from a file gets an [`Ack`] that travels with its entry through the
//! pipeline and the clients. A file's saved position is the start of its oldest line whose
//! `Ack` is still alive (or the end of the last line read when none is), so the position never
//! passes a line that has not been pushed successfully or deliberately dropped: after a crash
//! the agent resumes at the first line the server may not have. The file is rewritten (temp
//! file + rename) every `sync_period` and right after each acknowledged push, which keeps the
//! window in which a `kill -9` can cause a line to be sent twice to the moment between the
//! server's answer and that rewrite.
//!
//! A file that is truncated or replaced starts a new *generation*: acks of the old content
//! no longer move the position of the new one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Why the positions file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("cannot read positions file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "invalid positions file {path}: {message} (set positions.ignore_invalid_yaml: true to start over)"
    )]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write positions file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    #[serde(default)]
    positions: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct ProgressState {
    /// Sequence number of `pending[0]`.
    base_seq: u64,
    /// Start offset of each line still in flight, and whether it has been released.
    pending: VecDeque<(u64, bool)>,
    /// End offset of the last line read.
    read_offset: u64,
}

/// The progress of one generation of one file.
#[derive(Debug, Default)]
pub struct FileProgress {
    state: Mutex<ProgressState>,
}

impl FileProgress {
    fn starting_at(offset: u64) -> Arc<FileProgress> {
        Arc::new(FileProgress {
            state: Mutex::new(ProgressState {
                read_offset: offset,
                ..Default::default()
            }),
        })
    }

    /// Records a line spanning `start..end`; its position is released when the returned
    /// [`Ack`] (and every clone of it) is dropped.
    pub fn track(self: &Arc<Self>, start: u64, end: u64) -> Ack {
        let mut st = self.state.lock();
        let seq = st.base_seq + st.pending.len() as u64;
        st.pending.push_back((start, false));
        st.read_offset = end;
        Ack {
            _held: Arc::new(AckInner {
                progress: self.clone(),
                seq,
            }),
        }
    }

    /// Moves the read offset without a line (skipped bytes).
    pub fn skip_to(&self, end: u64) {
        self.state.lock().read_offset = end;
    }

    fn release(&self, seq: u64) {
        let mut st = self.state.lock();
        let Some(idx) = seq.checked_sub(st.base_seq) else {
            return;
        };
        if let Some(slot) = st.pending.get_mut(idx as usize) {
            slot.1 = true;
        }
        while st.pending.front().is_some_and(|p| p.1) {
            st.pending.pop_front();
            st.base_seq += 1;
        }
    }

    /// The offset safe to resume from.
    pub fn committed(&self) -> u64 {
        let st = self.state.lock();
        st.pending.front().map(|p| p.0).unwrap_or(st.read_offset)
    }

    /// End offset of the last line read.
    pub fn read_offset(&self) -> u64 {
        self.state.lock().read_offset
    }

    /// Lines read but not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.state.lock().pending.len()
    }
}

#[derive(Debug)]
struct AckInner {
    progress: Arc<FileProgress>,
    seq: u64,
}

impl Drop for AckInner {
    fn drop(&mut self) {
        self.progress.release(self.seq);
    }
}

/// An acknowledgement handle for one line; cloned when an entry goes to several clients.
#[derive(Debug, Clone)]
pub struct Ack {
    _held: Arc<AckInner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Current generation per path.
    files: HashMap<String, Arc<FileProgress>>,
    /// Positions loaded from disk or kept for keys that are not being tailed right now.
    stored: BTreeMap<String, String>,
    frozen: bool,
    last_written: Option<BTreeMap<String, String>>,
}

/// The positions registry of the agent.
#[derive(Debug)]
pub struct Positions {
    path: PathBuf,
    inner: Mutex<Inner>,
}

impl Positions {
    /// Loads the positions file (a missing file is an empty one). Entries for files that no
    /// longer exist are dropped, as Promtail does.
    pub fn load(path: &Path, ignore_invalid: bool) -> Result<Positions, PositionsError> {
        let stored = match std::fs::read_to_string(path) {
            Ok(text) => match serde_yaml::from_str::<Option<FileFormat>>(&text) {
                Ok(f) => f.map(|f| f.positions).unwrap_or_default(),
                Err(e) if ignore_invalid => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring invalid positions file");
                    BTreeMap::new()
                }
                Err(e) => {
                    return Err(PositionsError::Invalid {
                        path: path.into(),
                        message: e.to_string(),
                    });
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(PositionsError::Read {
                    path: path.into(),
                    source,
                });
            }
        };
        let stored = stored
            .into_iter()
            .filter(|(k, _)| !k.starts_with('/') || std::fs::metadata(k).is_ok())
            .collect();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| PositionsError::Write {
                path: path.into(),
                source,
            })?;
        }
        Ok(Positions {
            path: path.into(),
            inner: Mutex::new(Inner {
                stored,
                ..Default::default()
            }),
        })
    }

    /// The saved offset of a file, if any.
    pub fn get(&self, file: &str) -> Option<u64> {
        let inner = self.inner.lock();
        if let Some(p) = inner.files.get(file) {
            return Some(p.committed());
        }
        inner.stored.get(file).and_then(|v| v.trim().parse().ok())
    }

    /// Starts a new generation of `file` whose content is read from `offset`.
    pub fn start(&self, file: &str, offset: u64) -> Arc<FileProgress> {
        let p = FileProgress::starting_at(offset);
        let mut inner = self.inner.lock();
        inner.stored.remove(file);
        inner.files.insert(file.to_string(), p.clone());
        p
    }

    /// Stops tracking `file` but keeps its position (the target went away or changed, the file
    /// did not). The position kept is the end of what was read: lines still in flight are
    /// being delivered, and a tailer that takes over (new labels) must not read them again.
    pub fn stop(&self, file: &str) {
        let mut inner = self.inner.lock();
        if let Some(p) = inner.files.remove(file) {
            inner
                .stored
                .insert(file.to_string(), p.read_offset().to_string());
        }
    }

    /// Forgets `file` entirely (it was deleted).
    pub fn remove(&self, file: &str) {
        let mut inner = self.inner.lock();
        inner.files.remove(file);
        inner.stored.remove(file);
    }

    /// Writes the file if anything changed. After [`Positions::freeze`] this does nothing.
    pub fn save(&self) -> Result<(), PositionsError> {
        let snapshot = {
            let inner = self.inner.lock();
            if inner.frozen {
                return Ok(());
            }
            let mut m = inner.stored.clone();
            for (k, p) in &inner.files {
                m.insert(k.clone(), p.committed().to_string());
            }
            if inner.last_written.as_ref() == Some(&m) {
                return Ok(());
            }
            m
        };
        self.write(&snapshot)?;
        self.inner.lock().last_written = Some(snapshot);
        Ok(())
    }

    /// Saves one last time and stops all further writes, so entries discarded during shutdown
    /// cannot move positions past lines that were never sent.
    pub fn freeze(&self) -> Result<(), PositionsError> {
        let r = self.save();
        self.inner.lock().frozen = true;
        r
    }

    fn write(&self, m: &BTreeMap<String, String>) -> Result<(), PositionsError> {
        let werr = |source| PositionsError::Write {
            path: self.path.clone(),
            source,
        };
        let text = serde_yaml::to_string(&FileFormat {
            positions: m.clone(),
        })
        .map_err(|e| werr(std::io::Error::other(e.to_string())))?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).map_err(werr)?;
        std::fs::rename(&tmp, &self.path).map_err(werr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_waits_for_oldest_ack() {
        let p = FileProgress::starting_at(0);
        let a = p.track(0, 10);
        let b = p.track(10, 25);
        let c = p.track(25, 30);
        assert_eq!(p.committed(), 0);
        drop(b);
        assert_eq!(p.committed(), 0, "line a still in flight");
        drop(a);
        assert_eq!(p.committed(), 25);
        let c2 = c.clone();
        drop(c);
        assert_eq!(p.committed(), 25, "a clone (second client) still holds it");
        drop(c2);
        assert_eq!(p.committed(), 30);
    }

    #[test]
    fn promtail_format_round_trip_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        std::fs::write(&log, "x\n").unwrap();
        let pos = dir.path().join("sub/positions.yaml");
        std::fs::create_dir_all(pos.parent().unwrap()).unwrap();
        std::fs::write(
            &pos,
            format!(
                "positions:\n  {}: \"2\"\n  /does/not/exist.log: \"9\"\n  journal-x: \"c1\"\n",
                log.display()
            ),
        )
        .unwrap();
        let p = Positions::load(&pos, false).unwrap();
        let key = log.to_string_lossy().to_string();
        assert_eq!(p.get(&key), Some(2));
        assert_eq!(p.get("/does/not/exist.log"), None);
        let g = p.start(&key, 2);
        let ack = g.track(2, 7);
        drop(ack);
        p.save().unwrap();
        let text = std::fs::read_to_string(&pos).unwrap();
        let parsed: FileFormat = serde_yaml::from_str(&text).unwrap();
        assert_eq!(parsed.positions.get(&key).map(String::as_str), Some("7"));
        assert_eq!(
            parsed.positions.get("journal-x").map(String::as_str),
            Some("c1")
        );
        p.freeze().unwrap();
        let g2 = p.start(&key, 0);
        drop(g2.track(0, 100));
        p.save().unwrap();
        assert_eq!(
            std::fs::read_to_string(&pos).unwrap(),
            text,
            "frozen: no more writes"
        );
    }

    #[test]
    fn invalid_file() {
        let dir = tempfile::tempdir().unwrap();
        let pos = dir.path().join("positions.yaml");
        std::fs::write(&pos, "positions: [not, a, map").unwrap();
        assert!(
            Positions::load(&pos, false)
                .unwrap_err()
                .to_string()
                .contains("ignore_invalid_yaml")
        );
        assert!(Positions::load(&pos, true).is_ok());
    }
}
