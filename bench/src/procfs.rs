//! What the benchmark measures of another process and of this machine through `/proc`: CPU
//! time (`/proc/<pid>/stat` utime+stime), memory (`/proc/<pid>/status` VmRSS/VmHWM), machine
//! facts (`/proc/cpuinfo`, `/proc/meminfo`), and disk usage of a directory tree (like `du`).
//!
//! The parsers take text so they are tested on fixed samples; the readers add the file I/O.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// CPU time of a process in clock ticks, user and system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CpuTicks {
    pub(crate) user: u64,
    pub(crate) system: u64,
}

impl CpuTicks {
    pub(crate) fn total(self) -> u64 {
        self.user + self.system
    }
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Result<CpuTicks> {
    let close = text.rfind(')').context("no ')' in /proc/<pid>/stat")?;
    // After ") " come field 3 (state) onwards; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let get = |field: usize| -> Result<u64> {
        let s = fields
            .get(field - 3)
            .with_context(|| format!("/proc/<pid>/stat has no field {field}"))?;
        s.parse::<u64>()
            .with_context(|| format!("field {field} of /proc/<pid>/stat is not a number: {s:?}"))
    };
    Ok(CpuTicks {
        user: get(14)?,
        system: get(15)?,
    })
}

/// Memory figures of `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Mem {
    pub(crate) rss: u64,
    /// Peak resident set size over the process's lifetime.
    pub(crate) hwm: u64,
}

pub(crate) fn parse_status(text: &str) -> Result<Mem> {
    let field = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/<pid>/status"))?;
        kib_value(line)
    };
    Ok(Mem {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
    })
}

/// `Name:   1234 kB` → bytes.
fn kib_value(line: &str) -> Result<u64> {
    let mut parts = line.split_whitespace().skip(1);
    let n: u64 = parts
        .next()
        .context("missing value")?
        .parse()
        .with_context(|| format!("not a number in {line:?}"))?;
    match parts.next() {
        Some("kB") | None => Ok(n * 1024),
        Some(u) => bail!("unexpected unit {u:?} in {line:?}"),
    }
}

pub(crate) fn read_cpu(pid: u32) -> Result<CpuTicks> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (is process {pid} running?)"))?;
    parse_stat(&text)
}

pub(crate) fn read_mem(pid: u32) -> Result<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (is process {pid} running?)"))?;
    parse_status(&text)
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 on every mainstream Linux build, used if
/// `getconf` is unavailable.
pub(crate) fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// Samples a process's RSS on a background thread and keeps the maximum.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub(crate) fn start(pid: u32, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let (s, p, n) = (stop.clone(), peak.clone(), samples.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(m) = read_mem(pid) {
                    p.fetch_max(m.rss, Ordering::Relaxed);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(every);
            }
        });
        RssSampler {
            stop,
            peak,
            samples,
            handle: Some(handle),
        }
    }

    /// The largest RSS seen so far, in bytes.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Stops sampling; returns (peak RSS in bytes, number of samples).
    pub(crate) fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _joined = h.join();
        }
        (self.peak(), self.samples.load(Ordering::Relaxed))
    }
}

/// Size of a directory tree: allocated bytes (what `du` reports) and apparent bytes (sum of
/// file lengths). Symlinks are not followed; files vanishing during the walk are skipped (a
/// server may be compacting or deleting while we measure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub(crate) struct DiskUsage {
    pub(crate) allocated: u64,
    pub(crate) apparent: u64,
    pub(crate) files: u64,
}

pub(crate) fn disk_usage(root: &Path) -> Result<DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    let meta =
        std::fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    let mut du = DiskUsage::default();
    if !meta.is_dir() {
        return Ok(DiskUsage {
            allocated: meta.blocks() * 512,
            apparent: meta.len(),
            files: 1,
        });
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(m) = entry.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(entry.path());
            } else if m.is_file() {
                du.allocated += m.blocks() * 512;
                du.apparent += m.len();
                du.files += 1;
            }
        }
    }
    Ok(du)
}

/// The machine a benchmark ran on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) mem_bytes: u64,
    pub(crate) kernel: String,
}

pub(crate) fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

pub(crate) fn parse_mem_total(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| kib_value(l).ok())
}

pub(crate) fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: parse_cpu_model(&cpuinfo).unwrap_or_else(|| "unknown CPU".into()),
        mem_bytes: parse_mem_total(&meminfo).unwrap_or(0),
        kernel: kernel.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let text = "4242 (fjord (srv) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 1500 250 0 0 20 0 12 0 987654 123456789 4567 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text).unwrap(),
            CpuTicks {
                user: 1500,
                system: 250
            }
        );
        assert_eq!(parse_stat(text).unwrap().total(), 1750);
        assert!(parse_stat("garbage").is_err());
        assert!(parse_stat("1 (x) S 1 2").is_err());
    }

    #[test]
    fn status_memory() {
        let text = "Name:\tfjord\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n";
        assert_eq!(
            parse_status(text).unwrap(),
            Mem {
                rss: 100 << 20,
                hwm: 200 << 20
            }
        );
        assert!(parse_status("Name:\tx\n").is_err());
        assert!(parse_status("VmRSS:\tlots kB\nVmHWM:\t1 kB\n").is_err());
    }

    #[test]
    fn machine_facts() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\n";
        assert_eq!(
            parse_cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz")
        );
        assert_eq!(
            parse_mem_total("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000 * 1024)
        );
        assert_eq!(parse_cpu_model(""), None);
    }

    #[test]
    fn own_process_and_du() {
        let me = std::process::id();
        assert!(read_mem(me).unwrap().rss > 0);
        read_cpu(me).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), vec![1u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("b"), b"xyz").unwrap();
        let du = disk_usage(dir.path()).unwrap();
        assert_eq!((du.apparent, du.files), (10_003, 2));
        assert!(du.allocated >= 10_000);
    }
}
