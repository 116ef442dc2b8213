//! HTTP under load: the harness' nginx (one worker, access log off, a million requests per
//! keep-alive connection, open file cache) serving a 6-byte file to `wrk`, once per capture mode,
//! with the agent sharing both cores with nginx and wrk and then with the agent alone on one core.
//! wrk is closed-loop, so the offered load is what it completed. Each placement runs two loads: one
//! request at a time per connection, and `PIPELINE_DEPTH` (16) pipelined requests per write (the way
//! of wrk's `pipeline.lua`), which lets one nginx worker answer well over 100k requests/s on these
//! cores: the load the issue's live target is stated at.
//!
//! With the agent running, wrk and nginx complete only about 60k/s, so the target load is never
//! offered. The pinned placement therefore also runs an open-loop load ([`http_load`]): 100k
//! requests/s in batches of 16 pipelined GETs over 32 connections to a `return 200` location, sent
//! on a fixed schedule from CPU 1 whatever the agent on CPU 0 does. Once with nginx's default
//! `tcp_nodelay on`, every response its own segment: nginx's worker then needs about 70% of CPU 1
//! and the pair sends 88-95k/s, the loopback stack being most of the cost. Once with
//! `tcp_nodelay off`: Nagle coalesces the 15 responses written while the first is unacknowledged,
//! nginx needs about 35-45% and 99.7-99.96k/s go out (under 0.3% of the slots missed; with 16
//! connections a few stalls of all of them at once missed 0.5-2%). A full run also
//! offers both in the `shared` placement; `--quick` runs only the pinned `tcp_nodelay off` load.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{free_port, have, temp_dir, Nginx};

use super::agent::{counter, BenchAgent};
use super::http_load::{self, LoadSpec};
use super::report::Row;
use super::{agent_row, measure, pin_self, proc_stats, skipped, Settings, MODES};

/// wrk's threads and connections: one thread keeps wrk to about one core, 16 connections keep
/// nginx busy without making the run about connection setup.
const WRK_THREADS: u32 = 1;
const WRK_CONNECTIONS: u32 = 16;

/// Requests wrk writes at once per connection in the pipelined load.
const PIPELINE_DEPTH: u32 = 16;

/// The paced load: requests/s, requests per write, connections (enough that a batch slow to be
/// answered rarely leaves no connection free for the next slot), and the generator's tick.
const PACED_RATE: u64 = 100_000;
const PACED_DEPTH: usize = 16;
const PACED_CONNS: usize = 32;
const PACED_TICK: Duration = Duration::from_micros(500);

/// The paced load's nginx locations: `return` answers from the configuration (no file to look up);
/// `/nagle` does the same with Nagle left on.
const PACED_LOCATIONS: &str = "location = /r { return 200 \"hello\\n\"; }\n  \
    location = /nagle { tcp_nodelay off; return 200 \"hello\\n\"; }";

/// wrk's Lua hook for the pipelined load: every write is `depth` GETs of the URL's path.
const PIPELINE_LUA: &str = "init = function(args)\n\
    local depth = tonumber(args[1]) or 1\n\
    local r = {}\n\
    for i = 1, depth do r[i] = wrk.format(nil, nil) end\n\
    req = table.concat(r)\n\
end\n\
request = function() return req end\n";

/// What wrk reported.
#[derive(Debug, Default)]
struct WrkResult {
    requests: u64,
    per_s: f64,
    errors: u64,
}

/// Runs wrk for `seconds`; with `pipeline` (the Lua script's path), [`PIPELINE_DEPTH`] requests
/// per write.
fn run_wrk(port: u16, seconds: u64, pipeline: Option<&Path>) -> WrkResult {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t", &WRK_THREADS.to_string(), "-c", &WRK_CONNECTIONS.to_string()]).args(["-d", &format!("{seconds}s")]);
    if let Some(script) = pipeline {
        cmd.arg("-s").arg(script);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/small.txt"));
    if pipeline.is_some() {
        cmd.args(["--", &PIPELINE_DEPTH.to_string()]);
    }
    let out = cmd.output().expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    parse_wrk(&text)
}

/// `  123 requests in 10.00s, ...`, `Requests/sec: 12.3`, `Non-2xx or 3xx responses: 4`,
/// `Socket errors: connect 0, read 0, write 0, timeout 0`.
fn parse_wrk(text: &str) -> WrkResult {
    let mut r = WrkResult::default();
    for line in text.lines().map(str::trim) {
        if let Some((n, _)) = line.split_once(" requests in ") {
            r.requests = n.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            r.per_s = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            r.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            r.errors += v.split(',').filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok()).sum::<u64>();
        }
    }
    r
}

/// Where the agent runs and how.
struct Placement<'a> {
    /// `shared`, `shared-rt` or `pinned-rt` (see [`run`]).
    name: &'a str,
    /// CPUs the agent is pinned to (empty: it floats).
    agent_cpus: &'a [usize],
    /// The agent runs under `SCHED_RR`.
    realtime: bool,
}

/// One load through one capture mode; `pipeline` is the Lua script of the pipelined load.
fn one(s: &Settings, dir: &Path, port: u16, mode: &str, at: &Placement<'_>, pipeline: Option<&Path>) -> Row {
    let protocols = format!("[{{type: http, ports: [{port}]}}]");
    let agent = BenchAgent::start_on(&s.agent, dir, mode, &protocols, &[], at.agent_cpus, at.realtime);
    let (wrk, w) = measure(&agent, || run_wrk(port, s.load_time().as_secs(), pipeline));
    let stopped = agent.stop();
    let in_flight = WRK_CONNECTIONS * if pipeline.is_some() { PIPELINE_DEPTH } else { 1 };
    let load = if pipeline.is_some() { format!(", {PIPELINE_DEPTH} pipelined") } else { String::new() };
    let variant = format!("{}: nginx 1 worker, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}{load}", at.name);
    let mut row = agent_row("http", mode, &variant, &w, &stopped);
    row.offered_per_s = Some(wrk.per_s);
    row.performed = Some(wrk.requests);
    row.seen = Some(stopped.events_by_type.get("http").copied().unwrap_or(0));
    row.note.push_str(&format!(
        "http.transactions={}; unmatched req/resp {}/{}; wrk errors {}; wrk stops with up to \
         {in_flight} requests in flight",
        counter(&stopped.counters, "http.transactions"),
        counter(&stopped.counters, "http.unmatched_requests"),
        counter(&stopped.counters, "http.unmatched_responses"),
        wrk.errors,
    ));
    row
}

/// nginx's worker process (the master's only child).
fn nginx_worker(nginx: &Nginx) -> Option<u32> {
    let pid = nginx.pid();
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// The paced load on `path` through one capture mode; this thread (the generator) and nginx are
/// where [`run`] put them.
fn paced(s: &Settings, dir: &Path, nginx: &Nginx, mode: &str, at: &Placement<'_>, nagle: bool) -> Row {
    let protocols = format!("[{{type: http, ports: [{}]}}]", nginx.port);
    let agent = BenchAgent::start_on(&s.agent, dir, mode, &protocols, &[], at.agent_cpus, at.realtime);
    let spec = LoadSpec {
        port: nginx.port,
        path: if nagle { "/nagle" } else { "/r" }.to_owned(),
        rate: PACED_RATE,
        depth: PACED_DEPTH,
        conns: PACED_CONNS,
        duration: s.load_time(),
        tick: PACED_TICK,
    };
    let worker = nginx_worker(nginx);
    let ((load, nginx_cpu), w) = measure(&agent, || {
        let before = worker.and_then(proc_stats::sample);
        let load = http_load::run(&spec).expect("connect to nginx");
        let after = worker.and_then(proc_stats::sample);
        let cpu = before.zip(after).map(|(b, a)| proc_stats::cpu_percent(&b, &a));
        (load, cpu)
    });
    let stopped = agent.stop();
    let segments = if nagle { "tcp_nodelay off" } else { "a segment per response" };
    let variant = format!(
        "{}: nginx 1 worker, paced {}k/s, {PACED_CONNS} conns x {PACED_DEPTH} pipelined, {segments}",
        at.name,
        PACED_RATE / 1000
    );
    let mut row = agent_row("http", mode, &variant, &w, &stopped);
    row.offered_per_s = Some(load.achieved_per_s);
    row.performed = Some(load.responses);
    row.seen = Some(stopped.events_by_type.get("http").copied().unwrap_or(0));
    let cpus = if at.agent_cpus.is_empty() { "" } else { " (CPU 1)" };
    row.note.push_str(&format!(
        "http.transactions={}; unmatched req/resp {}/{}; asked {PACED_RATE}/s, sent {} in {:.1} s, \
         {} of {} slots missed; {} unanswered; errors {}; generator CPU {:.0}%, nginx worker CPU {}{cpus}",
        counter(&stopped.counters, "http.transactions"),
        counter(&stopped.counters, "http.unmatched_requests"),
        counter(&stopped.counters, "http.unmatched_responses"),
        load.sent,
        load.seconds,
        load.missed_slots,
        load.slots,
        load.sent.saturating_sub(load.responses),
        load.errors,
        load.cpu_pct,
        nginx_cpu.map_or_else(|| "?".to_owned(), |c| format!("{c:.0}%")),
    ));
    row
}

/// nginx + wrk through both capture modes, three ways:
/// - `shared`: every process free to run anywhere; the agent competes with nginx, wrk and whatever
///   else runs on the box for both cores, as an ordinary process;
/// - `shared-rt`: the same with the agent under `SCHED_RR`, so it runs whenever it has work and
///   nginx and wrk get the rest (how many transactions/s the agent keeps up with when it is not
///   starved, and what that costs it);
/// - `pinned-rt`: nginx and wrk on CPU 1, the agent on CPU 0 under `SCHED_RR` (one core of agent,
///   at the load one core of nginx+wrk produces).
///
/// Each runs the one-at-a-time and the pipelined load; `pinned-rt` and `shared` also the paced
/// loads (see the module comment). `--quick` leaves out `shared-rt`, the paced loads in `shared`
/// and the paced load with a segment per response.
#[must_use]
pub fn run(s: &Settings) -> Vec<Row> {
    if !have("wrk") || !have("nginx") {
        return vec![skipped("http", "wrk or nginx is not installed (apt-get install wrk nginx)")];
    }
    let pinned_possible = std::thread::available_parallelism().map_or(1, usize::from) >= 2;
    let mut rows = Vec::new();
    let placements: &[&str] = if s.quick { &["shared", "pinned-rt"] } else { &["shared", "shared-rt", "pinned-rt"] };
    for &placement in placements {
        let pinned = placement == "pinned-rt";
        let realtime = placement.ends_with("-rt");
        if pinned && !(pinned_possible && pin_self(&[1])) {
            rows.push(skipped("http", "pinned: needs 2 CPUs and sched_setaffinity"));
            continue;
        }
        // nginx and wrk are started from this thread, so they inherit its CPU set.
        let dir = temp_dir("bench-http");
        std::fs::create_dir_all(dir.join("www")).expect("www dir");
        std::fs::write(dir.join("www/small.txt"), "hello\n").expect("small.txt");
        let script = dir.join("pipeline.lua");
        std::fs::write(&script, PIPELINE_LUA).expect("pipeline.lua");
        let port = free_port();
        // Descriptors of served files stay open between requests, as a production nginx is set up.
        let nginx = Nginx::start_with_server(&dir, port, port, "open_file_cache max=64;", PACED_LOCATIONS);
        let at = Placement { name: placement, agent_cpus: if pinned { &[0] } else { &[] }, realtime };
        for pipeline in [None, Some(script.as_path())] {
            for mode in MODES {
                rows.push(one(s, &dir, port, mode, &at, pipeline));
            }
        }
        // The paced load: pinned (the target's setting) and, in a full run, shared (where nginx and
        // the generator may use both cores, as may the agent).
        if pinned || (!s.quick && placement == "shared") {
            let nagle: &[bool] = if s.quick { &[true] } else { &[false, true] };
            for &nagle in nagle {
                for mode in MODES {
                    rows.push(paced(s, &dir, &nginx, mode, &at, nagle));
                }
            }
        }
        drop(nginx);
        if pinned {
            pin_self(&[]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:1/small.txt\n  1 threads and 16 connections\n\
                    \x20 1234567 requests in 10.00s, 283.76MB read\n\
                    \x20 Socket errors: connect 0, read 2, write 0, timeout 1\n\
                    Requests/sec: 123456.70\nTransfer/sec:     28.37MB\n";
        let r = parse_wrk(text);
        assert_eq!(r.requests, 1_234_567);
        assert!((r.per_s - 123_456.7).abs() < 0.01);
        assert_eq!(r.errors, 3);
    }
}
