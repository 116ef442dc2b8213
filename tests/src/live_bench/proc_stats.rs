//! What the kernel says a process costs: CPU time from `/proc/<pid>/stat` and resident memory from
//! `/proc/<pid>/status`. The agent's CPU share is the delta of user+system time over a wall-clock
//! window, so its start-up (loading the eBPF program) and shutdown flush are not charged to the load.

use std::time::Instant;

/// One reading of a process.
#[derive(Clone, Debug)]
pub struct ProcSample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// VmRSS in KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS) in KiB.
    pub hwm_kib: u64,
    /// RssAnon in KiB: the heap and stacks, without mapped rings (which count as RssFile).
    pub anon_kib: u64,
    /// CPU ticks per thread: `(tid, name, ticks)`; the main thread is the capture dispatcher.
    pub threads: Vec<(u32, String, u64)>,
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Reads `pid`; `None` once the process is gone.
#[must_use]
pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let cpu_ticks = stat_ticks(&format!("/proc/{pid}"))?;
    let mut threads = Vec::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in dir.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
            let path = task.path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default().trim().to_owned();
            let name = if tid == pid { "dispatch".to_owned() } else { name };
            if let Some(t) = stat_ticks(&path.to_string_lossy()) {
                threads.push((tid, name, t));
            }
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        at,
        cpu_ticks,
        rss_kib: kib("VmRSS:"),
        hwm_kib: kib("VmHWM:"),
        anon_kib: kib("RssAnon:"),
        threads,
    })
}

/// utime + stime of `<dir>/stat` (a process or a task).
fn stat_ticks(dir: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is rest[0], so utime (14) and stime (15) are rest[11] and rest[12].
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Per-thread CPU between two samples, busiest first, as `name NN%` (threads under 1% left out).
#[must_use]
pub fn thread_cpu(from: &ProcSample, to: &ProcSample) -> String {
    let wall = to.at.duration_since(from.at).as_secs_f64().max(0.001);
    let mut per: Vec<(String, f64)> = to
        .threads
        .iter()
        .map(|(tid, name, t)| {
            let t0 = from.threads.iter().find(|(id, _, _)| id == tid).map_or(0, |x| x.2);
            (name.clone(), 100.0 * t.saturating_sub(t0) as f64 / clock_ticks_per_second() / wall)
        })
        .filter(|(_, pct)| *pct >= 1.0)
        .collect();
    per.sort_by(|a, b| b.1.total_cmp(&a.1));
    per.iter().map(|(n, p)| format!("{n} {p:.0}%")).collect::<Vec<_>>().join(", ")
}

/// CPU used between two samples, in percent of one core.
#[must_use]
pub fn cpu_percent(from: &ProcSample, to: &ProcSample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 {
        return 0.0;
    }
    let cpu = to.cpu_ticks.saturating_sub(from.cpu_ticks) as f64 / clock_ticks_per_second();
    100.0 * cpu / wall
}

/// KiB as MiB.
#[must_use]
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
