//! Replays a capture file through the real pipeline from tests and benchmarks (the CLI's path minus
//! argument parsing), and the read-and-count baseline the benchmarks compare against. Included with
//! `#[path]` (it needs the agent crate, which not every user of `support/mod.rs` has).

#![allow(dead_code, reason = "each user needs a different part")]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use packetbeat_agent::capture::pcap::PcapFileSource;
use packetbeat_agent::capture::{PacketSource, Poll};
use packetbeat_agent::config::Limits;
use packetbeat_agent::event::envelope::AgentInfo;
use packetbeat_agent::metrics::Metrics;
use packetbeat_agent::output::{Chunk, Output};
use packetbeat_agent::pipeline::{self, Mode, PipelineConfig};
use packetbeat_agent::protocols::registry::Registry;
use packetbeat_agent::worker::PublishSettings;

/// An output that only looks at the bytes.
pub struct Null;

impl Output for Null {
    fn write_chunk(&mut self, chunk: &Chunk) -> std::io::Result<()> {
        std::hint::black_box(chunk.bytes.len());
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The registry of a `packetbeat.protocols` list written as YAML, e.g. `[{type: http, ports: [80]}]`.
pub fn registry(protocols: &str) -> Arc<Registry> {
    let list: Vec<serde_norway::Value> = serde_norway::from_str(protocols).expect("protocols YAML");
    Arc::new(Registry::from_config(Some(&list)).expect("registry").0)
}

/// A replay pipeline with `workers` workers and a fixed agent identity.
pub fn config(registry: &Arc<Registry>, workers: usize) -> PipelineConfig {
    PipelineConfig {
        mode: Mode::Replay,
        workers,
        registry: Arc::clone(registry),
        limits: Limits::default(),
        publish: PublishSettings {
            agent: Arc::new(AgentInfo {
                name: "test".into(),
                hostname: "test".into(),
                id: "id".into(),
                ephemeral_id: "eid".into(),
                version: "0".into(),
                local_ips: vec![],
                tags: vec![],
                fields: None,
            }),
            processors: Arc::new(vec![]),
            ignore_outgoing: false,
            block_when_full: true,
        },
        metrics: Arc::new(Metrics::default()),
        stop: Arc::new(AtomicBool::new(false)),
        metrics_period: None,
        flows: None,
    }
}

/// Replays `path` into `output` as the CLI does (the file read once, each worker handed its
/// connections' frames); returns the events written.
pub fn replay(path: &Path, registry: &Arc<Registry>, workers: usize, output: Box<dyn Output>) -> u64 {
    let source = PcapFileSource::open(path).expect("open capture");
    pipeline::run_replay(source, config(registry, workers), output).expect("replay").events_written
}

/// Replays `path` through the dispatcher (one reader sharding to `workers` threads), the path live
/// `ebpf` capture takes.
pub fn replay_dispatched(path: &Path, registry: &Arc<Registry>, workers: usize, output: Box<dyn Output>) -> u64 {
    let mut src = PcapFileSource::open(path).expect("open capture");
    pipeline::run(&mut src, config(registry, workers), output).expect("replay").events_written
}

/// The baseline: reads the same file and counts packets.
pub fn count_packets(path: &Path) -> u64 {
    let mut src = PcapFileSource::open(path).expect("open capture");
    let mut n = 0u64;
    while src.poll(Duration::ZERO, &mut |p| n += u64::from(!p.data.is_empty())).expect("poll") != Poll::End {}
    n
}
