//! Replay throughput on generated PostgreSQL connections (simple queries and 4-Execute extended-protocol pipelines), next to the read-and-count baseline measured in the same
//! run (see `common/mod.rs`).

mod common;
#[path = "../tests/support/replay.rs"]
mod replay;
#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let (bytes, packets, transactions) =
        support::pgsql_synth::pgsql_mix(support::pgsql_synth::PgSpec { conns: 200, round_trips: 100 });
    common::replay_group(c, "replay_pgsql_mix", &bytes, packets, transactions, "[{type: pgsql, ports: [5432]}]");
}

criterion_group!(benches, bench);
criterion_main!(benches);
