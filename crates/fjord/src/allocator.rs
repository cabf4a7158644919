//! The process allocator: mimalloc, tuned so RSS follows the live heap.
//!
//! Ingest allocates and frees many small buffers from several threads; mimalloc handles that
//! pattern with far less CPU than glibc's allocator (BENCHMARKS.md). Two of its defaults cost
//! memory a server in a pod with a memory limit cannot spare, so Fjord changes them at startup:
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
//! `MIMALLOC_PURGE_DELAY` in the environment still wins over Fjord's purge delay. The `mimalloc`
//! cargo feature (on by default) can be turned off to run heap profilers that hook malloc.
//!
//! This is the one module of the workspace allowed `unsafe`: both settings are C calls.
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
