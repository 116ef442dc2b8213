//! The live and memory benchmarks of issue 5: real servers (nginx, Redis, PostgreSQL) under their own
//! load generators (wrk, redis-benchmark, pgbench) on loopback, with the agent capturing through the
//! eBPF ring and through AF_PACKET; what the clients performed against what the agent saw, kernel and
//! ring drops, the agent's CPU and memory from `/proc`; a flood on a port the agent ignores; and the
//! agent's RSS with 10k/100k idle connections and after they are gone.
//!
//! Driven by the `live_bench` binary; each scenario returns [`report::Row`]s.

pub mod agent;
pub mod flood;
pub mod hold_server;
pub mod http;
pub mod http_load;
pub mod memory;
pub mod pgsql;
pub mod proc_stats;
pub mod redis;
pub mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent::BenchAgent;

/// The two live capture modes (`packetbeat.interfaces.type`).
pub const MODES: [&str; 2] = ["ebpf", "af_packet"];

/// What every scenario needs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The agent binary.
    pub agent: PathBuf,
    /// Shorter loads, fewer variants.
    pub quick: bool,
}

impl Settings {
    /// Length of one load window.
    #[must_use]
    pub fn load_time(&self) -> Duration {
        Duration::from_secs(if self.quick { 4 } else { 10 })
    }
}

/// The agent's cost over a window of load.
#[derive(Clone, Debug)]
pub struct Window {
    /// Wall-clock length.
    pub seconds: f64,
    /// CPU over the window, % of one core.
    pub cpu_pct: f64,
    /// VmRSS at the end, MiB.
    pub rss_mib: f64,
    /// VmHWM at the end, MiB.
    pub hwm_mib: f64,
    /// RssAnon at the end, MiB.
    pub anon_mib: f64,
    /// CPU per thread over the window.
    pub threads: String,
    /// The box's 1-minute load average at the end (other work competes for the same cores).
    pub loadavg: f64,
    /// Seconds after the load until the agent had read everything the kernel held (its frame
    /// counter stopped moving); `None` if it was still reading after [`DRAIN_LIMIT`].
    pub drain_s: Option<f64>,
}

/// How long [`measure`] waits for the agent to catch up with the ring after the load.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `load` while sampling the agent before and after it; then waits until the agent has read
/// what the kernel still holds (the agent stops without draining its ring, so stopping at once
/// would count a backlog as lost).
pub fn measure<T>(agent: &BenchAgent, load: impl FnOnce() -> T) -> (T, Window) {
    let before = agent.sample();
    let t = Instant::now();
    let out = load();
    let seconds = t.elapsed().as_secs_f64();
    let after = agent.sample();
    let window = Window {
        seconds,
        cpu_pct: proc_stats::cpu_percent(&before, &after),
        rss_mib: proc_stats::mib(after.rss_kib),
        hwm_mib: proc_stats::mib(after.hwm_kib),
        anon_mib: proc_stats::mib(after.anon_kib),
        threads: proc_stats::thread_cpu(&before, &after),
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0),
        drain_s: wait_drained(agent),
    };
    (out, window)
}

/// Waits until the agent's `decode.frames` stays the same over two of its one-second counter
/// lines; returns the seconds that took (up to [`DRAIN_LIMIT`]).
fn wait_drained(agent: &BenchAgent) -> Option<f64> {
    let t = Instant::now();
    let frames = || agent::counter(&agent.latest_counters(), "decode.frames");
    let mut last = frames();
    let mut stable = 0;
    while t.elapsed() < DRAIN_LIMIT {
        std::thread::sleep(Duration::from_millis(1100));
        let now = frames();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
        if stable >= 1 {
            // The frames stopped one log period before this reading.
            return Some((t.elapsed().as_secs_f64() - 2.2).max(0.0));
        }
    }
    None
}

/// Pins the calling thread, and every process it spawns from now on, to `cpus` (all CPUs when
/// empty). Returns whether the kernel accepted it.
pub fn pin_self(cpus: &[usize]) -> bool {
    let n = std::thread::available_parallelism().map_or(1, usize::from);
    let all: Vec<usize> = (0..n).collect();
    set_affinity(0, if cpus.is_empty() { &all } else { cpus })
}

/// `sched_setaffinity(pid, cpus)`; `pid` 0 is the calling thread.
pub(crate) fn set_affinity(pid: libc::pid_t, cpus: &[usize]) -> bool {
    // SAFETY: cpu_set_t is plain data, zero is an empty set; CPU_SET bounds-checks the index.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &raw const set) == 0
    }
}

/// A row for a scenario that could not run (a missing program), so the table says so.
#[must_use]
pub fn skipped(scenario: &str, why: &str) -> report::Row {
    report::Row { scenario: scenario.to_owned(), note: format!("skipped: {why}"), ..report::Row::default() }
}

/// A row with the agent's side filled in: window, drops, losses, CPU, memory and counters.
#[must_use]
pub fn agent_row(scenario: &str, mode: &str, variant: &str, w: &Window, stopped: &agent::Stopped) -> report::Row {
    let mut note = match w.drain_s {
        Some(d) if d > 0.5 => format!("backlog: the agent read the ring for {d:.0} s after the load; "),
        Some(_) => String::new(),
        None => format!("backlog: the agent was still reading {} s after the load; ", DRAIN_LIMIT.as_secs()),
    };
    if !stopped.clean_exit {
        note.push_str("agent did not exit cleanly; ");
    }
    note.push_str(&format!("loadavg {:.1}; ", w.loadavg));
    report::Row {
        scenario: scenario.to_owned(),
        mode: mode.to_owned(),
        variant: variant.to_owned(),
        seconds: w.seconds,
        drops: Some(agent::capture_drops(&stopped.counters)),
        other_losses: Some(agent::other_losses(&stopped.counters)),
        cpu_pct: Some(w.cpu_pct),
        rss_mib: Some(w.rss_mib),
        hwm_mib: Some(w.hwm_mib),
        anon_mib: Some(w.anon_mib),
        threads: w.threads.clone(),
        note,
        counters: stopped.counters.clone(),
        ..report::Row::default()
    }
}
