//! The process allocator: mimalloc, tuned so RSS follows the live heap.
//!
//! Ingest allocates and frees many small buffers from several threads; mimalloc handles that
//! pattern with far less CPU than glibc's allocator (BENCHMARKS.md). Three of its behaviours
//! cost memory a server in a pod with a memory limit cannot spare, so Fjord changes them:
//! - **Transparent huge pages.** mimalloc asks the kernel for huge pages on its arenas
//!   (`madvise`), so every 2 MiB region a few allocations touch counts fully in RSS. A query
//!   over every stream peaked at 670 MiB RSS with them and at 105 MiB without (the system
//!   allocator: 97 MiB), and its first run was 8× slower from the page faults. mimalloc reserves
//!   its first arena before `main` runs, too early for its own option, so Fjord turns huge pages
//!   off for the whole process with `prctl(PR_SET_THP_DISABLE)`, which the kernel checks on
//!   every page fault.
//! - **Purge delay.** Freed pages are kept for a second in case they are reused; under a
//!   steady push load that kept ~15 MiB more RSS for no measurable CPU gain.
//!
//! - **Blocks freed by other threads.** A thread's heap takes back the blocks other threads
//!   free into it only when that thread allocates again, so a runtime worker that goes idle
//!   after a query keeps the buffers the query's evaluation threads freed. A worker collects
//!   its heap as it parks, at most every 100 ms ([`collect_parked_thread`]).
//!
//! `MIMALLOC_PURGE_DELAY` in the environment still wins over Fjord's purge delay. The `mimalloc`
//! cargo feature (on by default) can be turned off to run heap profilers that hook malloc.
//!
//! This is the one module of the workspace allowed `unsafe`: all three are C calls.
#![allow(unsafe_code)]

use libmimalloc_sys::mi_option_t;

/// The global allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay`'s index in mimalloc v3's `mi_option_t` (libmimalloc-sys names no
/// constant for it); the crate pins the C sources, and a test checks the option's default.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Turns transparent huge pages off for the process and sets mimalloc's purge delay to 0
/// (unless `MIMALLOC_PURGE_DELAY` is set). Call first thing in `main`, before any thread is
/// started.
pub(crate) fn tune() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of
        // ours. A kernel that refuses it leaves huge pages on, which costs memory, not
        // correctness, so the result is ignored.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: setting an option is a plain store into mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
}

/// How often at most a thread gives its heap's free memory back ([`collect_parked_thread`]).
const COLLECT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Called as a runtime worker thread goes idle: takes back into this thread's heap the blocks
/// other threads freed there and returns the pages left empty to the system, at most every
/// [`COLLECT_EVERY`].
pub(crate) fn collect_parked_thread() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    if LAST
        .get()
        .is_some_and(|t| now.duration_since(t) < COLLECT_EVERY)
    {
        return;
    }
    LAST.set(Some(now));
    // SAFETY: collecting the calling thread's heap has no preconditions.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(o: mi_option_t) -> std::ffi::c_long {
        // SAFETY: reading an option has no preconditions.
        unsafe { libmimalloc_sys::mi_option_get(o) }
    }

    #[test]
    fn the_option_index_names_the_purge_delay() {
        // Defaults from the option table in mimalloc's options.c: purge_delay 1000 (ms), its
        // neighbours deprecated_eager_commit_delay 1 and use_numa_nodes 0. A shifted enum
        // breaks at least one of these.
        assert_eq!(option(MI_OPTION_PURGE_DELAY - 1), 1);
        assert_eq!(option(MI_OPTION_PURGE_DELAY), 1000);
        assert_eq!(option(MI_OPTION_PURGE_DELAY + 1), 0);
    }
}
