//! Replay throughput on generated MySQL sessions (logins, `SELECT`s with 5-row result sets and `UPDATE`s), next to the read-and-count baseline measured in the same
//! run (see `common/mod.rs`).

mod common;
#[path = "../tests/support/replay.rs"]
mod replay;
#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let (bytes, packets, transactions) =
        support::mysql_synth::mysql_sessions(support::mysql_synth::MysqlSpec { conns: 200, requests: 100, rows: 5 });
    common::replay_group(c, "replay_mysql", &bytes, packets, transactions, "[{type: mysql, ports: [3306]}]");
}

criterion_group!(benches, bench);
criterion_main!(benches);
