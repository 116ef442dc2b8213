//! HTTP under load: the harness' nginx (one worker, access log off, 10 000 requests per keep-alive
//! connection) serving a 6-byte file to `wrk`, once per capture mode, with the agent sharing both
//! cores with nginx and wrk and then with the agent alone on one core. wrk is closed-loop, so the
//! offered load is what it completed.

use std::path::Path;
use std::process::Command;

use crate::{free_port, have, temp_dir, Nginx};

use super::agent::{counter, BenchAgent};
use super::report::Row;
use super::{agent_row, measure, pin_self, skipped, Settings, MODES};

/// wrk's threads and connections: one thread keeps wrk to about one core, 16 connections keep
/// nginx busy without making the run about connection setup.
const WRK_THREADS: u32 = 1;
const WRK_CONNECTIONS: u32 = 16;

/// What wrk reported.
#[derive(Debug, Default)]
struct WrkResult {
    requests: u64,
    per_s: f64,
    errors: u64,
}

fn run_wrk(port: u16, seconds: u64) -> WrkResult {
    let out = Command::new("wrk")
        .args(["-t", &WRK_THREADS.to_string(), "-c", &WRK_CONNECTIONS.to_string()])
        .args(["-d", &format!("{seconds}s")])
        .arg(format!("http://127.0.0.1:{port}/small.txt"))
        .output()
        .expect("run wrk (apt-get install wrk)");
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

/// One load through one capture mode; `agent_cpus` pins the agent (empty: it floats), `realtime`
/// runs it under `SCHED_RR`.
fn one(s: &Settings, dir: &Path, port: u16, mode: &str, placement: &str, agent_cpus: &[usize], realtime: bool) -> Row {
    let protocols = format!("[{{type: http, ports: [{port}]}}]");
    let agent = BenchAgent::start_on(&s.agent, dir, mode, &protocols, &[], agent_cpus, realtime);
    let (wrk, w) = measure(&agent, || run_wrk(port, s.load_time().as_secs()));
    let stopped = agent.stop();
    let variant = format!("{placement}: nginx 1 worker, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}");
    let mut row = agent_row("http", mode, &variant, &w, &stopped);
    row.offered_per_s = Some(wrk.per_s);
    row.performed = Some(wrk.requests);
    row.seen = Some(stopped.events_by_type.get("http").copied().unwrap_or(0));
    row.note.push_str(&format!(
        "http.transactions={}; unmatched req/resp {}/{}; wrk errors {}; wrk stops with up to \
         {WRK_CONNECTIONS} requests in flight",
        counter(&stopped.counters, "http.transactions"),
        counter(&stopped.counters, "http.unmatched_requests"),
        counter(&stopped.counters, "http.unmatched_responses"),
        wrk.errors,
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
/// `--quick` leaves out `shared-rt`.
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
        let port = free_port();
        let nginx = Nginx::start(&dir, port, port);
        for mode in MODES {
            rows.push(one(s, &dir, port, mode, placement, if pinned { &[0] } else { &[] }, realtime));
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
