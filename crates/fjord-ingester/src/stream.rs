//! One stream in memory: its open head block, the closed blocks of its open chunk, and closed
//! chunks waiting to be flushed.
//!
//! ```text
//! append → head (BlockBuilder, arrival order)
//!            │ head reaches chunk_block_size
//!            ▼
//!          blocks of the open chunk (compressed)
//!            │ chunk reaches chunk_target_size / spans max_chunk_age / goes idle
//!            ▼
//!          pending chunks ──flush──▶ store
//! ```
//! **Invariant:** every entry accepted for the stream is in exactly one of head, open blocks or
//! pending chunks until the store has acknowledged the chunk holding it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use fjord_chunk::BlockBuilder;
use fjord_chunk::{BlockMeta, Codec, EncodeOptions, EncodedBlock};
use fjord_model::rate::TokenBucket;
use fjord_model::{Entry, Labels};

/// Why a chunk was closed; the `reason` label of `loki_ingester_chunks_flushed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Full,
    MaxAge,
    Idle,
    Forced,
    /// Closed early because the ingester's chunk memory passed `max_chunk_memory`.
    Memory,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Full => "full",
            CloseReason::MaxAge => "max_age",
            CloseReason::Idle => "idle",
            CloseReason::Forced => "forced",
            CloseReason::Memory => "memory",
        }
    }
}

static NEXT_CHUNK_ID: AtomicU64 = AtomicU64::new(1);

/// A closed chunk waiting for the store.
#[derive(Debug, Clone)]
pub struct PendingChunk {
    pub id: u64,
    pub blocks: Vec<EncodedBlock>,
    pub reason: CloseReason,
    /// Set while a flush holding this chunk is in flight.
    pub flushing: bool,
}

/// Sizes that decide when blocks and chunks are cut.
#[derive(Debug, Clone, Copy)]
pub struct CutPolicy {
    pub block_size: usize,
    pub target_size: usize,
    pub max_age_ns: i64,
    pub encode: EncodeOptions,
}

pub struct Stream {
    pub labels: Labels,
    /// Canonical label string, cached for WAL records and messages.
    pub label_string: String,
    head: BlockBuilder,
    /// Encoded copy of the head for queries, until the next append.
    head_snapshot: Option<Bytes>,
    blocks: Vec<EncodedBlock>,
    open_bytes: usize,
    open_min_ts: i64,
    open_max_ts: i64,
    pub pending: Vec<PendingChunk>,
    /// Largest timestamp ever accepted (drives the out-of-order window).
    pub newest_ts: i64,
    pub last_append: Instant,
    pub rate: TokenBucket,
}

impl Stream {
    pub fn new(labels: Labels, rate: TokenBucket) -> Self {
        let label_string = labels.to_string();
        Stream {
            labels,
            label_string,
            head: BlockBuilder::new(),
            head_snapshot: None,
            blocks: Vec::new(),
            open_bytes: 0,
            open_min_ts: i64::MAX,
            open_max_ts: i64::MIN,
            pending: Vec::new(),
            newest_ts: i64::MIN,
            last_append: Instant::now(),
            rate,
        }
    }

    fn open_is_empty(&self) -> bool {
        self.head.is_empty() && self.blocks.is_empty()
    }

    /// Whether nothing is held: the stream may be dropped.
    pub fn is_empty(&self) -> bool {
        self.open_is_empty() && self.pending.is_empty()
    }

    /// Bytes of memory the stream's data takes: the head's buffers, the open chunk's blocks and
    /// the closed chunks not yet flushed.
    pub fn held_bytes(&self) -> usize {
        self.head.heap_bytes()
            + self.open_bytes
            + self
                .pending
                .iter()
                .flat_map(|c| &c.blocks)
                .map(|b| b.data.len())
                .sum::<usize>()
    }

    /// Number of chunks held (open one counted if non-empty).
    pub fn chunk_count(&self) -> usize {
        self.pending.len() + usize::from(!self.open_is_empty())
    }

    /// Appends accepted entries; returns how many chunks were closed as a result.
    /// An entry identical to the previous one (time, line and metadata) is dropped, as Loki does.
    pub fn append(&mut self, entries: &[Entry], policy: &CutPolicy) -> usize {
        let mut closed = 0;
        for e in entries {
            if self.head.is_repeat_of_last(e.ts, &e.line, &e.metadata) {
                continue;
            }
            // A chunk never spans more than max_chunk_age of entry time.
            if !self.open_is_empty() {
                let min = self.open_min_ts.min(e.ts);
                let max = self.open_max_ts.max(e.ts);
                if max.saturating_sub(min) > policy.max_age_ns {
                    self.close_open_chunk(CloseReason::MaxAge, policy);
                    closed += 1;
                }
            }
            self.head.reserve_text(e.line.len(), policy.block_size);
            self.head.push(e.ts, &e.line, &e.metadata);
            self.open_min_ts = self.open_min_ts.min(e.ts);
            self.open_max_ts = self.open_max_ts.max(e.ts);
            self.newest_ts = self.newest_ts.max(e.ts);
            if self.head.raw_bytes() >= policy.block_size {
                self.cut_head(policy);
                if self.open_bytes >= policy.target_size {
                    self.close_open_chunk(CloseReason::Full, policy);
                    closed += 1;
                }
            }
        }
        self.head_snapshot = None;
        self.last_append = Instant::now();
        closed
    }

    fn cut_head(&mut self, policy: &CutPolicy) {
        if self.head.is_empty() {
            return;
        }
        let block = self.head.encode(&policy.encode);
        self.open_bytes += block.data.len();
        self.blocks.push(block);
        // Release the head's buffers: an idle stream should not keep a block's worth of memory.
        self.head = BlockBuilder::new();
        self.head_snapshot = None;
    }

    /// Closes the open chunk (if it holds anything) into a pending chunk.
    pub fn close_open_chunk(&mut self, reason: CloseReason, policy: &CutPolicy) -> bool {
        self.cut_head(policy);
        if self.blocks.is_empty() {
            return false;
        }
        let blocks = std::mem::take(&mut self.blocks);
        self.pending.push(PendingChunk {
            id: NEXT_CHUNK_ID.fetch_add(1, Ordering::Relaxed),
            blocks,
            reason,
            flushing: false,
        });
        self.open_bytes = 0;
        self.open_min_ts = i64::MAX;
        self.open_max_ts = i64::MIN;
        true
    }

    /// Restores blocks from a checkpoint.
    pub fn restore_blocks(&mut self, blocks: Vec<EncodedBlock>, closed: bool) {
        if closed {
            for b in &blocks {
                self.newest_ts = self.newest_ts.max(b.meta.max_ts);
            }
            self.pending.push(PendingChunk {
                id: NEXT_CHUNK_ID.fetch_add(1, Ordering::Relaxed),
                blocks,
                reason: CloseReason::Forced,
                flushing: false,
            });
        } else {
            for b in blocks {
                self.open_bytes += b.data.len();
                self.open_min_ts = self.open_min_ts.min(b.meta.min_ts);
                self.open_max_ts = self.open_max_ts.max(b.meta.max_ts);
                self.newest_ts = self.newest_ts.max(b.meta.max_ts);
                self.blocks.push(b);
            }
        }
    }

    /// Every block overlapping `[start, end)`: pending chunks, the open chunk and the head.
    pub fn blocks_in(&mut self, start: i64, end: i64) -> Vec<Bytes> {
        let overlaps = |m: &BlockMeta| m.overlaps(start, end);
        let mut out: Vec<Bytes> = self
            .pending
            .iter()
            .flat_map(|c| c.blocks.iter())
            .chain(self.blocks.iter())
            .filter(|b| overlaps(&b.meta))
            .map(|b| b.data.clone())
            .collect();
        if !self.head.is_empty() {
            let in_range = self
                .head
                .min_ts()
                .zip(self.head.max_ts())
                .is_some_and(|(lo, hi)| hi >= start && lo < end);
            if in_range {
                let snap = self.head_snapshot.get_or_insert_with(|| {
                    self.head
                        .encode(&EncodeOptions {
                            codec: Codec::None,
                            filter_bits_per_byte: 0.0,
                        })
                        .data
                });
                out.push(snap.clone());
            }
        }
        out
    }

    /// Whether any held entry may fall in `[start, end)`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        let head = self
            .head
            .min_ts()
            .zip(self.head.max_ts())
            .is_some_and(|(lo, hi)| hi >= start && lo < end);
        head || self
            .pending
            .iter()
            .flat_map(|c| c.blocks.iter())
            .chain(self.blocks.iter())
            .any(|b| b.meta.overlaps(start, end))
    }

    /// The head's entries, for checkpoints.
    pub fn head_entries(&self) -> Vec<Entry> {
        let d = self.head.to_decoded();
        (0..d.len())
            .map(|i| Entry {
                ts: d.ts[i],
                line: Bytes::copy_from_slice(d.line(i)),
                metadata: d.metadata(i).to_vec(),
            })
            .collect()
    }

    /// Open-chunk blocks, for checkpoints.
    pub fn open_blocks(&self) -> &[EncodedBlock] {
        &self.blocks
    }

    /// Heap bytes held, roughly.
    pub fn memory_bytes(&self) -> usize {
        self.head.heap_bytes()
            + self.open_bytes
            + self
                .pending
                .iter()
                .flat_map(|c| &c.blocks)
                .map(|b| b.data.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CutPolicy {
        CutPolicy {
            block_size: 100,
            target_size: 150,
            max_age_ns: 1000,
            encode: EncodeOptions {
                codec: Codec::None,
                filter_bits_per_byte: 0.0,
            },
        }
    }

    fn stream() -> Stream {
        Stream::new(Labels::from_pairs([("a", "b")]), TokenBucket::new(1e9, 1e9))
    }

    #[test]
    fn cuts_blocks_and_chunks_by_size() {
        let mut s = stream();
        let entries: Vec<Entry> = (0..20)
            .map(|i| Entry::new(i, format!("line number {i:04}")))
            .collect();
        let closed = s.append(&entries, &policy());
        assert!(closed >= 1);
        assert!(!s.pending.is_empty());
        let total: usize = s
            .blocks_in(i64::MIN, i64::MAX)
            .iter()
            .map(|b| EncodedBlock::from_bytes(b.clone()).unwrap().meta.count as usize)
            .sum();
        assert_eq!(total, 20);
    }

    #[test]
    fn closes_chunk_when_span_exceeds_max_age() {
        let mut s = stream();
        s.append(&[Entry::new(0, "a"), Entry::new(500, "b")], &policy());
        assert!(s.pending.is_empty());
        s.append(&[Entry::new(1500, "c")], &policy());
        assert_eq!(s.pending.len(), 1);
        assert_eq!(s.pending[0].reason, CloseReason::MaxAge);
    }

    #[test]
    fn drops_exact_repeat_of_last_entry() {
        let mut s = stream();
        s.append(
            &[Entry::new(1, "a"), Entry::new(1, "a"), Entry::new(1, "b")],
            &policy(),
        );
        assert_eq!(s.head_entries().len(), 2);
    }
}
