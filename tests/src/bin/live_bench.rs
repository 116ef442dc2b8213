//! `live_bench`: the live and memory benchmarks of issue 5 (see `packetbeat_tests::live_bench`).
//!
//! ```sh
//! cargo run --release -p packetbeat-tests --bin live_bench -- \
//!     --agent target/release/packetbeat-agent --json target/bench/live.json [--quick] [--only NAME]
//! ```
//!
//! Scenarios: `http`, `redis`, `pgsql`, `flood_unconfigured`, `memory`. Needs root (eBPF, AF_PACKET).

use std::path::PathBuf;
use std::time::Instant;

use packetbeat_tests::live_bench::{self, report, Settings};

const SCENARIOS: [&str; 5] = ["http", "redis", "pgsql", "flood_unconfigured", "memory"];

fn usage() -> ! {
    eprintln!(
        "usage: live_bench --agent PATH [--json FILE] [--quick] [--only NAME]...\n  scenarios: {}",
        SCENARIOS.join(", ")
    );
    std::process::exit(2)
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().is_some_and(|a| a == "--hold-child") {
        live_bench::memory::child_main(&all[1..]);
        return;
    }
    let mut agent = None;
    let mut json = PathBuf::from("target/bench/live.json");
    let mut quick = false;
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--agent" => agent = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            "--json" => json = PathBuf::from(args.next().unwrap_or_else(|| usage())),
            "--quick" => quick = true,
            "--only" => {
                let name = args.next().unwrap_or_else(|| usage());
                if !SCENARIOS.contains(&name.as_str()) {
                    usage();
                }
                only.push(name);
            }
            _ => usage(),
        }
    }
    let agent = agent.unwrap_or_else(packetbeat_tests::agent_bin);
    assert!(agent.exists(), "{} does not exist: cargo build --release -p packetbeat-agent", agent.display());
    if !packetbeat_tests::is_root() {
        eprintln!("live_bench needs root (CAP_BPF, CAP_NET_RAW) to capture live");
        std::process::exit(1);
    }
    let settings = Settings { agent: agent.clone(), quick };
    let started = Instant::now();
    let mut rows = Vec::new();
    for name in SCENARIOS.iter().filter(|n| only.is_empty() || only.iter().any(|o| o == *n)) {
        eprintln!("== {name} ({:.0} s in)", started.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut got = match *name {
            "http" => live_bench::http::run(&settings),
            "redis" => live_bench::redis::run(&settings),
            "pgsql" => live_bench::pgsql::run(&settings),
            "flood_unconfigured" => live_bench::flood::run(&settings),
            _ => live_bench::memory::run(&settings),
        };
        eprintln!("{}", report::table(&got));
        eprintln!("== {name} took {:.0} s", t.elapsed().as_secs_f64());
        rows.append(&mut got);
    }
    let table = report::table(&rows);
    println!("{table}");
    let settings_json = serde_json::json!({
        "agent": agent.display().to_string(),
        "quick": quick,
        "cores": std::thread::available_parallelism().map_or(1, usize::from),
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    report::write_json(&json, &rows, settings_json);
    eprintln!("wrote {} ({:.0} s)", json.display(), started.elapsed().as_secs_f64());
}
