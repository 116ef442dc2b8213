//! Writes the benchmarks' synthetic captures to a file, for profiling the agent on exactly what the
//! benchmarks replay:
//! `cargo run --release --example synth_pcap -- http /tmp/http.pcap [connections] [requests] [segments] [size]`
//! (or `mysql`, `pgsql`, `redis` with `[connections] [round trips]`), then e.g.
//! `valgrind --tool=callgrind target/release/packetbeat-agent replay /tmp/http.pcap -E 'packetbeat.protocols=…'`.

#[path = "../tests/support/mod.rs"]
mod support;

use support::{mysql_synth, pgsql_synth, redis_synth, synth};

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "http".into());
    let path = args.next().unwrap_or_else(|| format!("{kind}-synth.pcap"));
    let mut num = |default: u32| args.next().and_then(|a| a.parse().ok()).unwrap_or(default);
    let conns = num(200);
    let requests = num(100);
    let (bytes, packets, tx) = match kind.as_str() {
        "http" => {
            let body_segments = num(2);
            let segment_size = num(600) as usize;
            synth::http_keepalive(synth::Spec { conns, requests, body_segments, segment_size })
        }
        "mysql" => mysql_synth::mysql_sessions(mysql_synth::MysqlSpec { conns, requests, rows: 5 }),
        "pgsql" => pgsql_synth::pgsql_mix(pgsql_synth::PgSpec { conns, round_trips: requests }),
        "redis" => redis_synth::redis_pipelined(redis_synth::RedisSpec { conns, commands: requests, depth: 10 }),
        other => {
            eprintln!("unknown capture kind {other}: http, mysql, pgsql or redis");
            std::process::exit(2);
        }
    };
    if let Err(e) = std::fs::write(&path, bytes) {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
    eprintln!("{path}: {packets} packets, {tx} transactions");
}
