//! `cargo xtask bench`: runs the replay benchmarks of issue 5 and turns criterion's numbers into the
//! figures the issue asks for (packets/s, MB/s, transactions/s on one worker, the ratio to the
//! read-and-count baseline, the speed-up with 2..N workers), as markdown on stdout and as
//! `target/bench/replay.json`. Other benchmark sections write their own `target/bench/<section>.json`
//! (e.g. `live.json`); [`merge_report`] gathers every section into `target/bench/report.json`.
//!
//! Inputs: `target/bench-captures/<capture>.json` (packets, bytes, transactions; written by the
//! generator), `<capture>.verified.json` (events the agent published with 1 and N workers),
//! `target/criterion/replay_<capture>/<function>/new/estimates.json` (mean time per replay, ns) and
//! `<capture>.paired.json` (the ratios as medians of interleaved rounds, which the table shows:
//! this machine's speed drifts between criterion's groups of samples).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// What `cargo xtask bench` was asked for.
pub struct Options {
    /// Criterion's `--quick`: stop sampling once the estimate is stable.
    pub quick: bool,
    /// Only captures whose name contains one of these.
    pub filters: Vec<String>,
    /// Skip measuring; rebuild the report from the last results.
    pub report_only: bool,
    /// Skip the live and memory benchmark (it needs root, real servers and the eBPF object).
    pub no_live: bool,
}

/// Whether this process runs as root (the live benchmark captures through the kernel).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The live and memory benchmark (`tests/src/bin/live_bench.rs`): real nginx, Redis and PostgreSQL
/// under load on loopback with the agent capturing through the eBPF ring and AF_PACKET, a flood on a
/// port that is not configured, RSS with many idle connections. Writes `target/bench/live.json`.
fn run_live(root: &Path, target: &Path, quick: bool) -> Result<()> {
    if !is_root() {
        eprintln!("live benchmark skipped: it captures through the kernel and needs root");
        return Ok(());
    }
    crate::setup::run()?;
    crate::setup::ensure_test_packages()?;
    crate::exec(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(root).args([
        "build",
        "--release",
        "-p",
        "packetbeat-agent",
        "-p",
        "packetbeat-tests",
    ]))?;
    let release = target.join("release");
    let mut cmd = Command::new(release.join("live_bench"));
    cmd.arg("--agent").arg(release.join("packetbeat-agent")).arg("--json").arg(target.join("bench/live.json"));
    if quick {
        cmd.arg("--quick");
    }
    crate::exec(&mut cmd)
}

/// One measured function: mean seconds per replay of the whole capture.
fn mean_seconds(dir: &Path) -> Result<(f64, SystemTime)> {
    let path = dir.join("new/estimates.json");
    let text = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: Value = serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let ns = v["mean"]["point_estimate"].as_f64().with_context(|| format!("no mean in {}", path.display()))?;
    let modified = std::fs::metadata(&path)?.modified()?;
    Ok((ns / 1e9, modified))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The report of one capture, or `None` when it was not measured (in this run unless `since` is `None`).
fn capture_report(target: &Path, meta: &Value, since: Option<SystemTime>) -> Result<Option<Value>> {
    let name = meta["name"].as_str().context("capture metadata without a name")?;
    let group = target.join("criterion").join(format!("replay_{name}"));
    let Ok((baseline_s, modified)) = mean_seconds(&group.join("baseline_read_and_count")) else { return Ok(None) };
    if since.is_some_and(|t| modified < t) {
        return Ok(None);
    }
    let packets = meta["packets"].as_f64().context("packets")?;
    let frame_mb = meta["frame_bytes"].as_f64().context("frame_bytes")? / 1e6;
    let transactions = meta["transactions"].as_f64().context("transactions")?;
    let mut agents = Vec::new();
    // N independent 1-worker replays at once (`ceiling_<N>_independent`).
    let mut independent = None;
    for entry in std::fs::read_dir(&group)? {
        let entry = entry?;
        let fname = entry.file_name().to_string_lossy().into_owned();
        let workers = |prefix: &str| fname.strip_prefix(prefix)?.split('_').next()?.parse::<u64>().ok();
        if let Some(n) = workers("agent_") {
            agents.push((n, mean_seconds(&entry.path())?.0));
        } else if let Some(n) = workers("ceiling_") {
            independent = mean_seconds(&entry.path()).ok().map(|(s, _)| (n, s));
        }
    }
    agents.sort_by_key(|a| a.0);
    let one = agents.iter().find(|a| a.0 == 1).map(|a| a.1).context("no agent_1_worker result")?;
    // N times the work of one replay, so N·t₁/t is the most N cores give.
    let ceiling = independent.map(|(n, s)| json!({ "workers": n, "seconds": s, "speedup": n as f64 * one / s }));
    let verified = read_json(&target.join(format!("bench-captures/{name}.verified.json"))).unwrap_or(Value::Null);
    let paired_path = target.join(format!("bench-captures/{name}.paired.json"));
    let paired_fresh =
        std::fs::metadata(&paired_path).and_then(|m| m.modified()).is_ok_and(|t| since.is_none_or(|since| t >= since));
    let paired = if paired_fresh { read_json(&paired_path).unwrap_or(Value::Null) } else { Value::Null };
    let lost = verified["events_by_workers"]
        .as_object()
        .is_some_and(|m| m.values().any(|v| v.as_u64() != verified["expected"].as_u64()));
    Ok(Some(json!({
        "name": name,
        "description": meta["description"],
        "packets": meta["packets"],
        "frame_bytes": meta["frame_bytes"],
        "file_bytes": meta["file_bytes"],
        "transactions": meta["transactions"],
        "packets_per_transaction": packets / transactions.max(1.0),
        "baseline": { "seconds": baseline_s, "packets_per_s": packets / baseline_s, "mb_per_s": frame_mb / baseline_s },
        "agent": agents.iter().map(|&(n, s)| json!({
            "workers": n,
            "seconds": s,
            "packets_per_s": packets / s,
            "mb_per_s": frame_mb / s,
            "transactions_per_s": transactions / s,
            "speedup": one / s,
        })).collect::<Vec<_>>(),
        "agent_vs_baseline_pct": 100.0 * baseline_s / one,
        "ceiling": ceiling.unwrap_or(Value::Null),
        "paired": paired,
        "verification": verified,
        "events_lost": lost,
    })))
}

fn m(v: &Value) -> String {
    format!("{:.2} M", v.as_f64().unwrap_or(f64::NAN) / 1e6)
}

/// The markdown of `replay.json`: one summary row per capture, then each capture's scaling.
fn markdown(report: &Value) -> String {
    let empty = Vec::new();
    let captures = report["captures"].as_array().unwrap_or(&empty);
    let max_workers = captures.iter().filter_map(|c| c["agent"].as_array().map(Vec::len)).max().unwrap_or(1);
    let mut out = String::from(
        "| capture | packets | MB | transactions | baseline packets/s | agent 1w packets/s | 1w MB/s | 1w tx/s | agent/baseline |",
    );
    let mut rule = String::from("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in 2..=max_workers {
        out.push_str(&format!(" speed-up {n}w |"));
        rule.push_str("---:|");
    }
    if max_workers > 1 {
        out.push_str(&format!(
            " ceiling {max_workers}× independent | CPU {max_workers}w vs 1w | CPU {max_workers}× independent vs {max_workers}×1w | core round trip |"
        ));
        rule.push_str("---:|---:|---:|---:|");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for c in captures {
        let agents = c["agent"].as_array().unwrap_or(&empty);
        let one = agents.first().cloned().unwrap_or(Value::Null);
        // The ratios: medians of interleaved rounds when they were measured, else criterion's means.
        let paired = &c["paired"];
        let fastest = &paired["fastest"];
        let ratio = paired["agent_vs_baseline_pct"].as_f64().or_else(|| c["agent_vs_baseline_pct"].as_f64());
        let paired_n = paired["workers"].as_u64();
        out.push_str(&format!(
            "| {}{} | {} | {:.0} | {} | {} | {} | {:.0} | {} | {:.1} %{} |",
            c["name"].as_str().unwrap_or("?"),
            if c["events_lost"].as_bool() == Some(true) { " ⚠" } else { "" },
            m(&c["packets"]),
            c["frame_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
            m(&c["transactions"]),
            m(&c["baseline"]["packets_per_s"]),
            m(&one["packets_per_s"]),
            one["mb_per_s"].as_f64().unwrap_or(f64::NAN),
            m(&one["transactions_per_s"]),
            ratio.unwrap_or(f64::NAN),
            in_parens(&fastest["agent_vs_baseline_pct"], " %"),
        ));
        for a in agents.iter().skip(1) {
            let of_paired = paired_n == a["workers"].as_u64();
            let paired_speedup = paired["speedup"].as_f64().filter(|_| of_paired);
            let fastest_speedup = if of_paired { in_parens(&fastest["speedup"], "×") } else { String::new() };
            let speedup = paired_speedup.or_else(|| a["speedup"].as_f64()).unwrap_or(f64::NAN);
            out.push_str(&format!(" {speedup:.2}×{fastest_speedup} |"));
        }
        if max_workers > 1 {
            let ceiling = paired["ceiling_speedup"].as_f64().or_else(|| c["ceiling"]["speedup"].as_f64());
            out.push_str(&format!(
                " {:.2}×{} | {} | {} | {} |",
                ceiling.unwrap_or(f64::NAN),
                in_parens(&fastest["ceiling_speedup"], "×"),
                signed_pct(&paired["cpu_overhead_pct"]),
                signed_pct(&paired["ceiling_cpu_overhead_pct"]),
                round_trips(paired),
            ));
        }
        out.push('\n');
    }
    out.push_str("\nMB = frame bytes (the traffic, without pcap record headers); M = millions; ceiling = N independent 1-worker replays run at once (N times the work), the most N cores give on this machine; ⚠ = the agent published fewer events than the generator wrote transactions (see `verification` in replay.json). Throughput columns are criterion's means; agent/baseline, the speed-up with the most workers and the ceiling are medians of ratios taken within interleaved rounds (`paired` in replay.json), so that they compare runs made under the same conditions. In parentheses, the same ratios between the fastest round of each kind of run: this host's noise only adds time, and more to the agent's own code than to the baseline's kernel copy, so the fastest runs are the least disturbed (`paired.fastest`). CPU columns: the process CPU time (all threads) N workers spend beyond what 1 worker spends on the same file, and N independent replays beyond N times one replay, medians of per-round ratios (`paired.cpu_overhead_pct`, `paired.ceiling_cpu_overhead_pct`): the first is what sharding costs, the second what running both cores costs with nothing shared. Core round trip: a cache line bounced between two threads right before each N-worker run (median, then the range over the rounds); the sharded run hands frames between cores, so it slows when the host places the vCPUs far apart.\n");
    out
}

/// `79 ns (78-398)`: the median the paired rounds wrote (`core_round_trip_ns`) and the range of
/// their own round trips, or `–`.
fn round_trips(paired: &Value) -> String {
    let each = || paired["rounds"].as_array().into_iter().flatten().filter_map(|r| r["core_round_trip_ns"].as_f64());
    match (paired["core_round_trip_ns"].as_f64(), each().min_by(f64::total_cmp), each().max_by(f64::total_cmp)) {
        (Some(mid), Some(lo), Some(hi)) => format!("{mid:.0} ns ({lo:.0}-{hi:.0})"),
        _ => "–".to_owned(),
    }
}

/// `+4.5 %` of a measured percentage, or `–` when there is none.
fn signed_pct(v: &Value) -> String {
    v.as_f64().map_or_else(|| "–".to_owned(), |x| format!("{x:+.1} %"))
}

/// ` (12.3 %)` of a measured ratio, or nothing when there is none.
fn in_parens(v: &Value, unit: &str) -> String {
    let digits = if unit == "×" { 2 } else { 1 };
    v.as_f64().map_or_else(String::new, |x| format!(" ({x:.digits$}{unit})"))
}

/// Gathers every `target/bench/<section>.json` but `report.json` into `report.json`, each verbatim
/// under its file stem. New benchmark sections only need to write their own file there.
pub fn merge_report(bench_dir: &Path) -> Result<PathBuf> {
    let mut report = serde_json::Map::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(bench_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.file_stem().is_some_and(|s| s != "report"))
        .collect();
    files.sort();
    for f in files {
        let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        report.insert(stem, read_json(&f)?);
    }
    let path = bench_dir.join("report.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&Value::Object(report))?)?;
    Ok(path)
}

/// Runs the replay benchmarks and then the live one (unless `report_only`), then writes and prints
/// the report.
pub fn run(root: &Path, cargo: Command, opts: &Options) -> Result<()> {
    let started = SystemTime::now();
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    if !opts.report_only {
        let mut cmd = cargo;
        cmd.current_dir(root)
            .args(["bench", "-p", "packetbeat-agent"])
            .env("PACKETBEAT_SKIP_EBPF", "1")
            .env("PB_BENCH_CAPTURES", opts.filters.join(","));
        if opts.quick {
            cmd.args(["--", "--quick"]);
        }
        crate::exec(&mut cmd)?;
    }
    let mut metas: Vec<PathBuf> = std::fs::read_dir(target.join("bench-captures"))
        .context("no target/bench-captures: run the benchmarks first")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.to_string_lossy();
            name.ends_with(".json") && !name.ends_with(".verified.json") && !name.ends_with(".paired.json")
        })
        .collect();
    metas.sort();
    let since = (!opts.report_only).then_some(started);
    let mut captures = Vec::new();
    for path in metas {
        if let Some(c) = capture_report(&target, &read_json(&path)?, since)? {
            captures.push(c);
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let unix = started.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let report = json!({ "started_unix": unix, "quick": opts.quick, "cores": cores, "captures": captures });
    let bench_dir = target.join("bench");
    std::fs::create_dir_all(&bench_dir)?;
    std::fs::write(bench_dir.join("replay.json"), serde_json::to_vec_pretty(&report)?)?;
    let md = markdown(&report);
    std::fs::write(bench_dir.join("replay.md"), &md)?;
    println!("\n## Replay, one run ({cores} cores{})\n\n{md}", if opts.quick { ", --quick" } else { "" });
    if !opts.report_only && !opts.no_live {
        run_live(root, &target, opts.quick)?;
    }
    let merged = merge_report(&bench_dir)?;
    println!("written: {}, {}", bench_dir.join("replay.json").display(), merged.display());
    let lossy: Vec<&str> = captures
        .iter()
        .filter(|c| c["events_lost"].as_bool() == Some(true))
        .filter_map(|c| c["name"].as_str())
        .collect();
    if !lossy.is_empty() {
        bail!("the agent lost transactions on {}: those figures are not valid", lossy.join(", "));
    }
    Ok(())
}
