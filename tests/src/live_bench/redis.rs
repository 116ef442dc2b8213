//! Redis under `redis-benchmark` (SET and GET, 16 clients, without and with a pipeline of 16), once
//! per capture mode. What was performed is the server's own count (`INFO commandstats` before and
//! after, every command including the benchmark's `CONFIG GET` and our first `INFO`); what was seen
//! is the agent's redis events.

use std::time::Instant;

use crate::redis_server::{stats_delta, RedisServer};
use crate::{free_port, have, temp_dir};

use super::agent::{counter, BenchAgent};
use super::report::Row;
use super::{agent_row, measure, skipped, Settings, MODES};

/// `(variant name, pipeline depth, requests per command in a full run)`.
const VARIANTS: [(&str, u32, u64); 2] = [("SET+GET -c16", 1, 400_000), ("SET+GET -c16 -P16", 16, 2_000_000)];

/// redis-benchmark through both capture modes.
#[must_use]
pub fn run(s: &Settings) -> Vec<Row> {
    if !have("redis-server") || !have("redis-benchmark") {
        return vec![skipped("redis", "redis-server or redis-benchmark is not installed (apt-get install redis)")];
    }
    let dir = temp_dir("bench-redis");
    let port = free_port();
    let server = RedisServer::start(&dir, port);
    let mut rows = Vec::new();
    for mode in MODES {
        for (name, pipeline, full_n) in VARIANTS {
            let n = if s.quick { full_n / 4 } else { full_n };
            let agent = BenchAgent::start(&s.agent, &dir, mode, &format!("[{{type: redis, ports: [{port}]}}]"), &[]);
            let before = server.command_stats();
            let (elapsed, w) = measure(&agent, || {
                let t = Instant::now();
                server.benchmark(&[
                    "-t",
                    "set,get",
                    "-c",
                    "16",
                    "-n",
                    &n.to_string(),
                    "-P",
                    &pipeline.to_string(),
                    "-q",
                ]);
                t.elapsed().as_secs_f64()
            });
            let after = server.command_stats();
            let stopped = agent.stop();
            let delta = stats_delta(&before, &after);
            let performed: u64 = delta.values().map(|(calls, _)| calls).sum();
            let mut row = agent_row("redis", mode, name, &w, &stopped);
            row.offered_per_s = Some(performed as f64 / elapsed.max(0.001));
            row.performed = Some(performed);
            row.seen = Some(stopped.events_by_type.get("redis").copied().unwrap_or(0));
            row.note.push_str(&format!(
                "server commands {delta:?}; redis.transactions={}; unmatched req/resp {}/{}",
                counter(&stopped.counters, "redis.transactions"),
                counter(&stopped.counters, "redis.unmatched_requests"),
                counter(&stopped.counters, "redis.unmatched_responses"),
            ));
            rows.push(row);
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    rows
}
