//! Replay throughput on a generated PostgreSQL capture (simple queries with result sets and
//! extended-protocol pipelines), next to a baseline measured in the same run: a loop that only
//! reads the same file and counts packets. Reported per packet (criterion's
//! element throughput); transactions/s = packets/s × transactions / packets (printed at start).

#[path = "../tests/support/pgsql_synth.rs"]
mod pgsql_synth;
#[path = "../tests/support/synth.rs"]
mod synth;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use packetbeat_agent::capture::pcap::PcapFileSource;
use packetbeat_agent::capture::{PacketSource, Poll};
use packetbeat_agent::config::Limits;
use packetbeat_agent::event::envelope::AgentInfo;
use packetbeat_agent::metrics::Metrics;
use packetbeat_agent::output::{Chunk, Output};
use packetbeat_agent::pipeline::{self, Mode, PipelineConfig};
use packetbeat_agent::protocols::registry::Registry;
use packetbeat_agent::worker::PublishSettings;

struct Null;

impl Output for Null {
    fn write_chunk(&mut self, chunk: &Chunk) -> std::io::Result<()> {
        std::hint::black_box(chunk.bytes.len());
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn agent() -> Arc<AgentInfo> {
    Arc::new(AgentInfo {
        name: "bench".into(),
        hostname: "bench".into(),
        id: "id".into(),
        ephemeral_id: "eid".into(),
        version: "0".into(),
        local_ips: vec![],
        tags: vec![],
        fields: None,
    })
}

fn replay_once(path: &std::path::Path, registry: &Arc<Registry>) -> u64 {
    let mut src = PcapFileSource::open(path).expect("open");
    let cfg = PipelineConfig {
        mode: Mode::Replay,
        workers: 1,
        registry: Arc::clone(registry),
        limits: Limits::default(),
        publish: PublishSettings {
            agent: agent(),
            processors: Arc::new(vec![]),
            ignore_outgoing: false,
            block_when_full: true,
        },
        metrics: Arc::new(Metrics::default()),
        stop: Arc::new(AtomicBool::new(false)),
        metrics_period: None,
    };
    pipeline::run(&mut src, cfg, Box::new(Null)).expect("replay").events_written
}

fn count_only(path: &std::path::Path) -> u64 {
    let mut src = PcapFileSource::open(path).expect("open");
    let mut n = 0u64;
    while src.poll(Duration::ZERO, &mut |p| n += u64::from(!p.data.is_empty())).expect("poll") != Poll::End {}
    n
}

fn bench(c: &mut Criterion) {
    let spec = pgsql_synth::PgSpec { conns: 200, round_trips: 100 };
    let (bytes, packets, transactions) = pgsql_synth::pgsql_mix(spec);
    let path = std::env::temp_dir().join(format!("pb-bench-pgsql-{}.pcap", std::process::id()));
    std::fs::write(&path, &bytes).expect("write pcap");
    let protocols: Vec<serde_norway::Value> = serde_norway::from_str("[{type: pgsql, ports: [5432]}]").expect("yaml");
    let (registry, _) = Registry::from_config(Some(&protocols)).expect("registry");
    let registry = Arc::new(registry);
    assert_eq!(count_only(&path), packets);
    assert_eq!(replay_once(&path, &registry), transactions);
    eprintln!(
        "capture: {packets} packets, {transactions} transactions ({:.2} packets per transaction), {} bytes",
        packets as f64 / transactions as f64,
        bytes.len()
    );

    let mut g = c.benchmark_group("replay_pgsql_mix");
    g.throughput(Throughput::Elements(packets));
    g.sample_size(10);
    g.bench_function("baseline_read_and_count", |b| b.iter(|| count_only(&path)));
    g.bench_function("agent_replay_1_worker", |b| b.iter(|| replay_once(&path, &registry)));
    g.finish();
    let _ = std::fs::remove_file(&path);
}

criterion_group!(benches, bench);
criterion_main!(benches);
