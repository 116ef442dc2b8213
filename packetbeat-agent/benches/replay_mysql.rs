//! Replay throughput on the MySQL capture (text queries and prepared statements).
//! Captures, checks and measurements: `common/mod.rs` and `tests/support/bench_captures.rs`.

mod common;
#[path = "../tests/support/replay.rs"]
mod replay;
#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    common::replay_captures(c, &["mysql"]);
}

criterion_group!(benches, bench);
criterion_main!(benches);
