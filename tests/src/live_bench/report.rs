//! One row per measurement, printed as a markdown table and written as JSON, so a later check (or a
//! person) can compare runs against the targets of issue 5 without re-reading logs.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::agent::Counters;

/// One measurement.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// `http`, `redis`, `pgsql`, `flood_unconfigured`, `memory`.
    pub scenario: String,
    /// `ebpf` or `af_packet`.
    pub mode: String,
    /// What the client did (e.g. `wrk -t1 -c16`, `-P 16`, `10k conns`).
    pub variant: String,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Operations per second the clients completed (the offered load of a closed-loop client).
    pub offered_per_s: Option<f64>,
    /// Operations the clients (or the server's own counters) say were performed.
    pub performed: Option<u64>,
    /// Transactions the agent reported.
    pub seen: Option<u64>,
    /// Frames lost in the kernel ring (`kernel.ring_full` + `af_packet.drops`).
    pub drops: Option<u64>,
    /// Other counted losses (gaps, full tables and queues).
    pub other_losses: Option<u64>,
    /// Agent CPU over the window, % of one core.
    pub cpu_pct: Option<f64>,
    /// Agent VmRSS at the end of the window, MiB.
    pub rss_mib: Option<f64>,
    /// Agent VmHWM (peak RSS), MiB.
    pub hwm_mib: Option<f64>,
    /// Agent RssAnon (heap and stacks, without the mapped capture ring), MiB.
    pub anon_mib: Option<f64>,
    /// Agent CPU per thread over the window (`dispatch 60%, worker-0 20%…`).
    pub threads: String,
    /// Free text: why a figure is what it is.
    pub note: String,
    /// The agent's counters.
    pub counters: Counters,
}

fn opt_f(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

fn opt_u(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| v.to_string())
}

impl Row {
    /// `seen / performed` in percent.
    #[must_use]
    pub fn seen_pct(&self) -> Option<f64> {
        match (self.seen, self.performed) {
            (Some(s), Some(p)) if p > 0 => Some(100.0 * s as f64 / p as f64),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "mode": self.mode,
            "variant": self.variant,
            "seconds": self.seconds,
            "offered_per_s": self.offered_per_s,
            "performed": self.performed,
            "seen": self.seen,
            "seen_pct": self.seen_pct(),
            "capture_drops": self.drops,
            "other_losses": self.other_losses,
            "agent_cpu_pct": self.cpu_pct,
            "agent_rss_mib": self.rss_mib,
            "agent_hwm_mib": self.hwm_mib,
            "agent_anon_mib": self.anon_mib,
            "agent_cpu_by_thread": self.threads,
            "note": self.note,
            "counters": self.counters,
        })
    }
}

/// The rows as a markdown table.
#[must_use]
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| scenario | mode | variant | s | offered/s | performed | seen | seen % | drops | other losses | CPU % | CPU by thread | RSS MiB | anon MiB | HWM MiB | note |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.mode,
            r.variant,
            r.seconds,
            opt_f(r.offered_per_s, 0),
            opt_u(r.performed),
            opt_u(r.seen),
            opt_f(r.seen_pct(), 2),
            opt_u(r.drops),
            opt_u(r.other_losses),
            opt_f(r.cpu_pct, 1),
            r.threads,
            opt_f(r.rss_mib, 1),
            opt_f(r.anon_mib, 1),
            opt_f(r.hwm_mib, 1),
            r.note.replace('|', "/"),
        );
    }
    s
}

/// Writes the rows (and the run's settings) as JSON to `path`.
///
/// # Panics
/// When the file cannot be written.
pub fn write_json(path: &Path, rows: &[Row], settings: Value) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).expect("create the JSON output directory");
    }
    let doc = json!({ "settings": settings, "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>() });
    let text = serde_json::to_string_pretty(&doc).expect("rows are plain JSON values");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
