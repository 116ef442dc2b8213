//! PostgreSQL under `pgbench -S` (select-only, 4 clients) with the simple and the prepared (extended)
//! query protocol, once per capture mode. The database is initialised before the agent starts, so
//! only the benchmark is seen. Performed = pgbench's transactions × 1 statement; pgbench adds a few
//! statements of its own at start (counted by the agent, not by pgbench), so seen may exceed it by
//! those.

use std::process::Command;

use crate::pgsql_server::{self, PgServer};
use crate::{free_port, temp_dir};

use super::agent::{counter, BenchAgent};
use super::report::Row;
use super::{agent_row, measure, skipped, Settings, MODES};

const CLIENTS: u32 = 4;

/// What pgbench reported.
#[derive(Debug, Default)]
struct PgbenchResult {
    transactions: u64,
    tps: f64,
}

fn run_pgbench(server: &PgServer, protocol: &str, seconds: u64) -> PgbenchResult {
    let out = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "postgres"])
        .args(["-n", "-S", "-M", protocol, "-c", &CLIENTS.to_string(), "-j", "2", "-T", &seconds.to_string()])
        .arg("postgres")
        .output()
        .expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    parse_pgbench(&text)
}

/// `number of transactions actually processed: 123` (or `123/456` with -t), `tps = 12.3 (...)`.
fn parse_pgbench(text: &str) -> PgbenchResult {
    let mut r = PgbenchResult::default();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("number of transactions actually processed:") {
            r.transactions = v.trim().split('/').next().and_then(|n| n.trim().parse().ok()).unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("tps =") {
            r.tps = v.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0.0);
        }
    }
    r
}

/// pgbench through both capture modes.
#[must_use]
pub fn run(s: &Settings) -> Vec<Row> {
    if !pgsql_server::available() || !crate::have("pgbench") {
        return vec![skipped("pgsql", "PostgreSQL 15 and pgbench are not installed (apt-get install postgresql-15)")];
    }
    let dir = temp_dir("bench-pgsql");
    let port = free_port();
    let server = PgServer::start(&dir, port);
    let init = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-i", "-q", "-s", "1", "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(init.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
    let seconds = (s.load_time().as_secs() / 2).max(2);
    let mut rows = Vec::new();
    for mode in MODES {
        for protocol in ["simple", "prepared"] {
            let agent = BenchAgent::start(&s.agent, &dir, mode, &format!("[{{type: pgsql, ports: [{port}]}}]"), &[]);
            let (pg, w) = measure(&agent, || run_pgbench(&server, protocol, seconds));
            let stopped = agent.stop();
            let mut row = agent_row("pgsql", mode, &format!("pgbench -S -M {protocol} -c{CLIENTS}"), &w, &stopped);
            row.offered_per_s = Some(pg.tps);
            row.performed = Some(pg.transactions);
            row.seen = Some(stopped.events_by_type.get("pgsql").copied().unwrap_or(0));
            row.note.push_str(&format!(
                "pgsql.transactions={}; unmatched req/resp {}/{}; parse errors {}",
                counter(&stopped.counters, "pgsql.transactions"),
                counter(&stopped.counters, "pgsql.unmatched_requests"),
                counter(&stopped.counters, "pgsql.unmatched_responses"),
                counter(&stopped.counters, "pgsql.parse_errors"),
            ));
            rows.push(row);
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pgbench_output() {
        let text = "transaction type: <builtin: select only>\nnumber of transactions actually processed: 52345\n\
                    latency average = 0.076 ms\ntps = 13086.25 (without initial connection time)\n";
        let r = parse_pgbench(text);
        assert_eq!(r.transactions, 52_345);
        assert!((r.tps - 13_086.25).abs() < 0.01);
    }
}
