//! What every replay benchmark does (issue 5): make sure the shared capture exists (see
//! `tests/support/bench_captures.rs`), check that the baseline counts every packet and that the agent
//! publishes every transaction with 1 and N workers, then measure in the same run the read-and-count
//! baseline, the agent with 1..=N workers (N = available cores) and, as the machine's ceiling for
//! the N-worker speed-up, N independent 1-worker replays at once. Element throughput = packets;
//! `cargo xtask bench` turns criterion's estimates into packets/s, MB/s, transactions/s and ratios.
//!
//! The same ratios are also measured in interleaved rounds ([`paired`]), which is what the report's
//! ratio columns show.
//!
//! Environment: `PB_BENCH_CAPTURES=a,b` runs only captures whose name contains `a` or `b`.

mod paired;

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};

use crate::replay;
use crate::support::bench_captures::CAPTURES;

/// The shipped binary's allocator, so the figures are the binary's.
#[global_allocator]
static GLOBAL: packetbeat_agent::memory::Allocator = packetbeat_agent::memory::Allocator;

/// Whether `PB_BENCH_CAPTURES` selects capture `name` (everything when unset or empty).
fn selected(name: &str) -> bool {
    match std::env::var("PB_BENCH_CAPTURES") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|f| !f.is_empty() && name.contains(f.trim())),
        _ => true,
    }
}

/// Worker counts to measure: 1..=available cores.
pub fn worker_counts() -> Vec<usize> {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    (1..=n.max(1)).collect()
}

/// Benchmarks the captures called `names` (entries of `CAPTURES`). An event count that differs from
/// the generator's transactions is measured anyway but written to `<capture>.verified.json`, which
/// `cargo xtask bench` flags and fails on: a run that loses transactions is not a valid figure.
pub fn replay_captures(c: &mut Criterion, names: &[&str]) {
    // As the agent's `main` does.
    packetbeat_agent::memory::disable_transparent_huge_pages();
    for name in names.iter().filter(|n| selected(n)) {
        let capture = CAPTURES.iter().find(|k| k.name == *name).expect("capture in CAPTURES");
        let (path, meta) = capture.ensure();
        let registry = replay::registry(capture.protocols);
        assert_eq!(replay::count_packets(&path), meta.packets, "{name}: baseline packet count");
        let workers = worker_counts();
        let mut events = serde_json::Map::new();
        for n in [1, workers.len()] {
            let got = replay::replay(&path, &registry, n, Box::new(replay::Null));
            if got != meta.transactions {
                eprintln!(
                    "WARNING {name}: {got} events with {n} worker(s), the generator wrote {} transactions",
                    meta.transactions
                );
            }
            events.insert(n.to_string(), got.into());
        }
        let verdict = serde_json::json!({ "expected": meta.transactions, "events_by_workers": events });
        let file = path.with_extension("verified.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&verdict).expect("JSON")).expect("write verification");
        eprintln!(
            "{name}: {} packets, {} transactions ({:.2} packets/tx), {:.1} MB of frames; replayed with 1 and {} workers",
            meta.packets,
            meta.transactions,
            meta.packets as f64 / meta.transactions.max(1) as f64,
            meta.frame_bytes as f64 / 1e6,
            workers.len()
        );
        let mut g = c.benchmark_group(format!("replay_{name}"));
        g.throughput(Throughput::Elements(meta.packets));
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(5));
        g.bench_function("baseline_read_and_count", |b| b.iter(|| replay::count_packets(&path)));
        for &n in &workers {
            let id = if n == 1 { "agent_1_worker".to_owned() } else { format!("agent_{n}_workers") };
            g.bench_function(id, |b| b.iter(|| replay::replay(&path, &registry, n, Box::new(replay::Null))));
        }
        // What N cores give here at best: N independent 1-worker replays of the file at once (no
        // shared state at all). The N-worker speed-up is read against this, measured in the same run.
        if let Some(&n) = workers.last().filter(|&&n| n > 1) {
            g.bench_function(format!("ceiling_{n}_independent"), |b| {
                b.iter(|| {
                    std::thread::scope(|s| {
                        for _ in 0..n {
                            s.spawn(|| replay::replay(&path, &registry, 1, Box::new(replay::Null)));
                        }
                    });
                });
            });
        }
        g.finish();
        paired::measure(&path, &registry, workers.len());
    }
}
