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
}

/// Runs `load` while sampling the agent before and after it; then waits a moment so the agent drains
/// what the kernel still holds before it is stopped.
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
    };
    std::thread::sleep(Duration::from_millis(500));
    (out, window)
}

/// A row for a scenario that could not run (a missing program), so the table says so.
#[must_use]
pub fn skipped(scenario: &str, why: &str) -> report::Row {
    report::Row { scenario: scenario.to_owned(), note: format!("skipped: {why}"), ..report::Row::default() }
}

/// A row with the agent's side filled in: window, drops, losses, CPU, memory and counters.
#[must_use]
pub fn agent_row(scenario: &str, mode: &str, variant: &str, w: &Window, stopped: &agent::Stopped) -> report::Row {
    let mut note = String::new();
    if !stopped.clean_exit {
        note.push_str("agent did not exit cleanly; ");
    }
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
