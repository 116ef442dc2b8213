//! Replay throughput on the HTTP captures: keep-alive with a realistic response mix, tiny responses (the worst case) and one request per connection.
//! Captures, checks and measurements: `common/mod.rs` and `tests/support/bench_captures.rs`.

mod common;
#[path = "../tests/support/replay.rs"]
mod replay;
#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::replay_captures(c, &["http_keepalive", "http_small", "http_one_per_conn"]);
}

criterion_group!(benches, bench);
criterion_main!(benches);
