//! The `multiline` stage: joins lines into blocks per stream. A line matching `firstline` (Go
//! regex) starts a new block and emits the previous one; other lines are appended with `\n`.
//! A block is emitted when it reaches `max_lines` (128) or when no line arrived for
//! `max_wait_time` (3s). The block keeps the time, labels and extracted values of its first
//! line. (Promtail gives a block that began without a start line a zero time; here it keeps
//! the time of its own first line.)

use std::collections::HashMap;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Deserialize;

use super::regex::go_regex;
use super::{Entry, Out, Stage, StageError};

/// `multiline` config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultilineConfig {
    pub firstline: String,
    pub max_wait_time: Option<String>,
    pub max_lines: Option<u64>,
}

struct Block {
    entry: Entry,
    lines: u64,
    last: Instant,
}

pub(crate) struct MultilineStage {
    first: Regex,
    max_wait: Duration,
    max_lines: u64,
    blocks: HashMap<u64, Block>,
}

impl MultilineStage {
    pub(crate) fn new(cfg: &MultilineConfig) -> Result<MultilineStage, StageError> {
        if cfg.firstline.is_empty() {
            return Err(StageError::new("multiline", "firstline is required"));
        }
        let max_wait = match cfg.max_wait_time.as_deref() {
            None | Some("") => Duration::from_secs(3),
            Some(s) => fjord_model::duration::parse_duration(s).map_err(|e| {
                StageError::new("multiline", format!("`max_wait_time` parse error: {e}"))
            })?,
        };
        Ok(MultilineStage {
            first: go_regex("multiline", &cfg.firstline)?,
            max_wait,
            max_lines: cfg.max_lines.filter(|n| *n > 0).unwrap_or(128),
            blocks: HashMap::new(),
        })
    }
}

impl Stage for MultilineStage {
    fn process(&mut self, mut e: Entry, out: &mut Out) {
        let key = e.stream_key();
        let now = Instant::now();
        if self.first.is_match(&e.line)
            && let Some(b) = self.blocks.remove(&key)
        {
            out.push(b.entry);
        }
        match self.blocks.get_mut(&key) {
            Some(b) => {
                b.entry.line.push('\n');
                b.entry.line.push_str(&e.line);
                b.entry.absorb_acks(&mut e);
                b.lines += 1;
                b.last = now;
            }
            None => {
                self.blocks.insert(
                    key,
                    Block {
                        entry: e,
                        lines: 1,
                        last: now,
                    },
                );
            }
        }
        if self
            .blocks
            .get(&key)
            .is_some_and(|b| b.lines >= self.max_lines)
            && let Some(b) = self.blocks.remove(&key)
        {
            out.push(b.entry);
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Out) {
        let expired: Vec<u64> = self
            .blocks
            .iter()
            .filter(|(_, b)| now.duration_since(b.last) >= self.max_wait)
            .map(|(k, _)| *k)
            .collect();
        let mut flushed: Vec<Entry> = expired
            .iter()
            .filter_map(|k| self.blocks.remove(k))
            .map(|b| b.entry)
            .collect();
        flushed.sort_by_key(|e| e.ts);
        out.extend(flushed);
    }

    fn flush(&mut self, out: &mut Out) {
        let mut all: Vec<Entry> = self.blocks.drain().map(|(_, b)| b.entry).collect();
        all.sort_by_key(|e| e.ts);
        out.extend(all);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::testutil::*;

    #[test]
    fn joins_blocks() {
        let mut p = pipeline("[{multiline: {firstline: '^\\[\\d+\\]', max_lines: 3}}]");
        let mut out = p.process(vec![
            entry_with(&[("s", "a")], "[1] start", 10),
            entry_with(&[("s", "a")], "  at x", 11),
            entry_with(&[("s", "b")], "[9] other stream", 12),
            entry_with(&[("s", "a")], "[2] next", 13),
            entry_with(&[("s", "a")], "  l2", 14),
            entry_with(&[("s", "a")], "  l3", 15),
            entry_with(&[("s", "a")], "  l4", 16),
        ]);
        out.extend(p.flush());
        let lines: Vec<(&str, i64)> = out.iter().map(|e| (e.line.as_str(), e.ts)).collect();
        assert_eq!(
            lines,
            vec![
                ("[1] start\n  at x", 10),
                ("[2] next\n  l2\n  l3", 13),
                ("[9] other stream", 12),
                ("  l4", 16)
            ]
        );
    }

    #[test]
    fn max_wait_time_flushes() {
        let mut p = pipeline("[{multiline: {firstline: '^start', max_wait_time: 50ms}}]");
        assert!(p.process(vec![entry("start"), entry(" more")]).is_empty());
        assert!(p.tick(Instant::now()).is_empty());
        let out = p.tick(Instant::now() + Duration::from_millis(60));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line, "start\n more");
        assert!(build_err("[{multiline: {}}]").contains("firstline"));
    }
}
