//! A bounded free list of byte buffers for the push path's large per-request buffers.
//!
//! Every push allocates two buffers of about its raw size: the decompressed body and the WAL
//! record. At Promtail's default 1 MiB batches both are large allocations, which the allocator
//! hands back to the kernel when they are freed (Fjord keeps RSS close to the live heap, see the
//! binary's `allocator` module), so the next push faulted the same pages in again: a tenth of
//! ingest CPU went to page faults, zeroing and unmapping. Returning the buffers here instead keeps
//! a few of them warm.
//!
//! **Invariant:** the pool never holds more than its byte budget of capacity; a buffer that
//! would exceed it is freed as before. The budget is therefore the most it can add to RSS.

use std::sync::Mutex;

use bytes::Bytes;

/// Spare buffers, at most `max_bytes` of capacity in total.
#[derive(Debug)]
pub struct BufferPool {
    free: Mutex<Spare>,
    max_bytes: usize,
}

#[derive(Debug)]
struct Spare {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

impl BufferPool {
    /// An empty pool that keeps at most `max_bytes` of spare capacity.
    pub const fn new(max_bytes: usize) -> BufferPool {
        BufferPool {
            free: Mutex::new(Spare {
                buffers: Vec::new(),
                bytes: 0,
            }),
            max_bytes,
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: the largest spare one when that
    /// is big enough, a new one otherwise.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let mut buf = self.take_dirty(capacity);
        buf.clear();
        buf
    }

    /// A buffer of exactly `len` bytes for the caller to overwrite whole: what a spare buffer
    /// held before, zeros past that. Skips zeroing what the caller writes anyway.
    pub fn take_filled(&self, len: usize) -> Vec<u8> {
        let mut buf = self.take_dirty(len);
        // Shortens without writing; lengthens by zeros only past what the buffer held.
        buf.resize(len, 0);
        buf
    }

    /// A buffer with room for `capacity` bytes, holding whatever it held before.
    fn take_dirty(&self, capacity: usize) -> Vec<u8> {
        let mut spare = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let largest = (0..spare.buffers.len()).max_by_key(|&i| spare.buffers[i].capacity());
        match largest {
            Some(i) if spare.buffers[i].capacity() >= capacity => {
                let buf = spare.buffers.swap_remove(i);
                spare.bytes -= buf.capacity();
                buf
            }
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Keeps `buf` for a later [`BufferPool::take`] if the budget allows, else frees it.
    pub fn give(&self, buf: Vec<u8>) {
        let mut spare = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if buf.capacity() == 0 || spare.bytes + buf.capacity() > self.max_bytes {
            return;
        }
        spare.bytes += buf.capacity();
        spare.buffers.push(buf);
    }

    /// `buf` as [`Bytes`] that give the buffer back to this pool when the last slice of it is
    /// dropped.
    pub fn bytes(&'static self, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled { buf, pool: self })
    }

    /// Bytes of spare capacity held now.
    pub fn spare_bytes(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// A buffer on loan from a static pool, returned when dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: &'static BufferPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_buffer_is_taken_again_when_big_enough() {
        let pool = BufferPool::new(1 << 20);
        let mut b = pool.take(1000);
        b.extend_from_slice(b"abc");
        let ptr = b.as_ptr();
        pool.give(b);
        assert!(pool.spare_bytes() >= 1000);
        let again = pool.take(500);
        assert_eq!(again.as_ptr(), ptr);
        assert!(again.is_empty(), "a taken buffer starts empty");
        assert_eq!(pool.spare_bytes(), 0);
        pool.give(again);
        let bigger = pool.take(4000);
        assert_ne!(bigger.as_ptr(), ptr, "too small a spare is not handed out");
        assert!(bigger.capacity() >= 4000);
    }

    #[test]
    fn a_filled_buffer_has_exactly_the_asked_length() {
        let pool = BufferPool::new(1 << 20);
        pool.give(vec![7u8; 100]);
        let short = pool.take_filled(10);
        assert_eq!(short, vec![7u8; 10]);
        pool.give(short);
        let long = pool.take_filled(150);
        assert_eq!(long.len(), 150);
        assert!(long[100..].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let pool = BufferPool::new(3000);
        pool.give(Vec::with_capacity(2000));
        pool.give(Vec::with_capacity(2000));
        assert!(pool.spare_bytes() >= 2000 && pool.spare_bytes() <= 3000);
        pool.give(Vec::new());
        assert!(pool.spare_bytes() <= 3000);
    }

    #[test]
    fn bytes_come_back_when_the_last_slice_drops() {
        static POOL: BufferPool = BufferPool::new(1 << 20);
        let mut buf = POOL.take(64);
        buf.extend_from_slice(b"hello world");
        let whole = POOL.bytes(buf);
        let word = whole.slice(6..);
        drop(whole);
        assert_eq!(POOL.spare_bytes(), 0, "a live slice keeps the buffer");
        assert_eq!(&word[..], b"world");
        drop(word);
        assert!(POOL.spare_bytes() >= 64);
    }
}
