//! Replay throughput on generated HTTP/1.1 keep-alive connections (one request and a 2-segment response per round trip), next to the read-and-count baseline measured in the same
//! run (see `common/mod.rs`).

mod common;
#[path = "../tests/support/replay.rs"]
mod replay;
#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let (bytes, packets, transactions) = support::synth::http_keepalive(support::synth::Spec {
        conns: 200,
        requests: 100,
        body_segments: 2,
        segment_size: 600,
    });
    common::replay_group(c, "replay_http_keepalive", &bytes, packets, transactions, "[{type: http, ports: [80]}]");
}

criterion_group!(benches, bench);
criterion_main!(benches);
