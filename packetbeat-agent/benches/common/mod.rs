//! What every replay benchmark does: write the generated capture, check the baseline and the agent
//! count what the generator made, then measure both in the same run (criterion element throughput =
//! packets; transactions/s = packets/s × transactions / packets, printed at start).

use criterion::{Criterion, Throughput};

use crate::replay;

/// The shipped binary's allocator, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmarks replaying `bytes` (`packets` packets, `transactions` transactions) with `protocols`.
pub fn replay_group(c: &mut Criterion, group: &str, bytes: &[u8], packets: u64, transactions: u64, protocols: &str) {
    let path = std::env::temp_dir().join(format!("pb-bench-{group}-{}.pcap", std::process::id()));
    std::fs::write(&path, bytes).expect("write pcap");
    let registry = replay::registry(protocols);
    assert_eq!(replay::count_packets(&path), packets);
    assert_eq!(replay::replay(&path, &registry, 1, Box::new(replay::Null)), transactions);
    eprintln!(
        "capture: {packets} packets, {transactions} transactions ({:.2} packets per transaction), {} bytes",
        packets as f64 / transactions as f64,
        bytes.len()
    );
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(packets));
    g.sample_size(10);
    g.bench_function("baseline_read_and_count", |b| b.iter(|| replay::count_packets(&path)));
    g.bench_function("agent_replay_1_worker", |b| {
        b.iter(|| replay::replay(&path, &registry, 1, Box::new(replay::Null)))
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}
