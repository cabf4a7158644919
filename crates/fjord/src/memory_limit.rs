//! The memory this process may use, for budgets that scale with it: the limit of its cgroup
//! (a Kubernetes container's `resources.limits.memory`) when one is set, else the machine's
//! physical memory.
//!
//! cgroup v2 limits are read from `memory.max` of the process's own cgroup and of every
//! ancestor (a parent's limit bounds its children); cgroup v1 from `memory.limit_in_bytes` of
//! the memory controller's group. "No limit" (`max`, or v1's huge sentinel) counts as none.

use std::path::Path;

/// Bytes this process may use, or `None` when neither a cgroup limit nor `/proc/meminfo` can be
/// read (not Linux, or an unusual sandbox).
pub(crate) fn memory_limit() -> Option<u64> {
    let physical = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m));
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| cgroup_limit(&c, Path::new("/sys/fs/cgroup")));
    match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// The tightest memory limit of the cgroups `proc_cgroup` (the text of `/proc/self/cgroup`)
/// names, under the cgroup filesystem mounted at `root`.
fn cgroup_limit(proc_cgroup: &str, root: &Path) -> Option<u64> {
    let mut limits = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            // v2: this group and its ancestors.
            let mut dir = root.join(relative);
            loop {
                limits.extend(read_limit(&dir.join("memory.max")));
                if dir.as_path() == root || !dir.pop() {
                    break;
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            // v1: the group's directory, or the mount root inside a container that sees its
            // own group there.
            let base = root.join("memory");
            for dir in [base.join(relative), base] {
                limits.extend(read_limit(&dir.join("memory.limit_in_bytes")));
            }
        }
    }
    limits.into_iter().min()
}

/// A limit file's value; `None` for no limit or an unreadable file.
fn read_limit(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let value: u64 = text.trim().parse().ok()?;
    // v1 writes "no limit" as the largest page-aligned i64.
    (value < 1 << 60).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_total() {
        let meminfo = "MemTotal:       24570740 kB\nMemFree:        17000000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_570_740 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_v2_limit_of_the_group_or_an_ancestor_applies() {
        let root = tempfile::tempdir().unwrap();
        let group = root.path().join("kubepods/pod1/c1");
        write(&group.join("memory.max"), "max\n");
        write(
            &root.path().join("kubepods/pod1/memory.max"),
            "1073741824\n",
        );
        write(&root.path().join("kubepods/memory.max"), "8589934592\n");
        let proc_cgroup = "0::/kubepods/pod1/c1\n";
        assert_eq!(cgroup_limit(proc_cgroup, root.path()), Some(1 << 30));

        write(&root.path().join("kubepods/pod1/memory.max"), "max\n");
        assert_eq!(cgroup_limit(proc_cgroup, root.path()), Some(8 << 30));
        write(&root.path().join("kubepods/memory.max"), "max\n");
        assert_eq!(cgroup_limit(proc_cgroup, root.path()), None);
    }

    #[test]
    fn a_v1_memory_group_limit_applies_and_the_no_limit_sentinel_does_not() {
        let root = tempfile::tempdir().unwrap();
        let proc_cgroup = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n";
        write(
            &root.path().join("memory/docker/abc/memory.limit_in_bytes"),
            "536870912\n",
        );
        assert_eq!(cgroup_limit(proc_cgroup, root.path()), Some(512 << 20));
        write(
            &root.path().join("memory/docker/abc/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        assert_eq!(cgroup_limit(proc_cgroup, root.path()), None);
    }

    #[test]
    fn this_process_has_some_limit_on_linux() {
        if cfg!(target_os = "linux") {
            let limit = memory_limit().expect("/proc/meminfo is readable on Linux");
            assert!(limit > 1 << 20, "{limit}");
        }
    }
}
