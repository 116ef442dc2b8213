//! What the kernel says a process costs: CPU time from `/proc/<pid>/stat` and resident memory from
//! `/proc/<pid>/status`. The agent's CPU share is the delta of user+system time over a wall-clock
//! window, so its start-up (loading the eBPF program) and shutdown flush are not charged to the load.

use std::time::Instant;

/// One reading of a thread.
#[derive(Clone, Debug)]
pub struct ThreadSample {
    /// Its id.
    pub tid: u32,
    /// Its name (`dispatch` for the main thread).
    pub name: String,
    /// Nanoseconds on a CPU (`/proc/.../schedstat` field 1).
    pub run_ns: u64,
    /// Nanoseconds runnable but waiting for a CPU (field 2): time lost to other processes.
    pub wait_ns: u64,
}

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
    /// Per thread; the main thread is the capture dispatcher.
    pub threads: Vec<ThreadSample>,
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
            let sched = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            let mut f = sched.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
            let (run_ns, wait_ns) = (f.next().unwrap_or(0), f.next().unwrap_or(0));
            threads.push(ThreadSample { tid, name, run_ns, wait_ns });
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

/// Per-thread CPU between two samples, busiest first, as `name NN% (wait MM%)`: on a CPU and
/// runnable but waiting for one, each in % of the window (threads under 1% of both left out).
#[must_use]
pub fn thread_cpu(from: &ProcSample, to: &ProcSample) -> String {
    let wall_ns = to.at.duration_since(from.at).as_secs_f64().max(0.001) * 1e9;
    let mut per: Vec<(String, f64, f64)> = to
        .threads
        .iter()
        .map(|t| {
            let (r0, w0) = from.threads.iter().find(|x| x.tid == t.tid).map_or((0, 0), |x| (x.run_ns, x.wait_ns));
            let pct = |a: u64, b: u64| 100.0 * a.saturating_sub(b) as f64 / wall_ns;
            (t.name.clone(), pct(t.run_ns, r0), pct(t.wait_ns, w0))
        })
        .filter(|(_, run, wait)| *run >= 1.0 || *wait >= 1.0)
        .collect();
    per.sort_by(|a, b| b.1.total_cmp(&a.1));
    per.iter().map(|(n, run, wait)| format!("{n} {run:.0}% (wait {wait:.0}%)")).collect::<Vec<_>>().join(", ")
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
