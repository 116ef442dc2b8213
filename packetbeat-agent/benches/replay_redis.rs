//! Replay throughput on generated Redis connections (commands pipelined 10 per segment, replies coalesced), next to the read-and-count baseline measured in the same
//! run (see `common/mod.rs`).

mod common;
#[path = "../tests/support/replay.rs"]
mod replay;
#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let (bytes, packets, transactions) =
        support::redis_synth::redis_pipelined(support::redis_synth::RedisSpec { conns: 200, commands: 120, depth: 10 });
    common::replay_group(c, "replay_redis_pipelined", &bytes, packets, transactions, "[{type: redis, ports: [6379]}]");
}

criterion_group!(benches, bench);
criterion_main!(benches);
