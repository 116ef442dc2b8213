//! Checks "no per-packet heap allocation in the steady state" on the replay path: replays two
//! captures with the same transactions but 25× more body packets, under a counting allocator, and
//! requires the extra packets to cost (almost) no extra allocations.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use packetbeat_agent::capture::pcap::PcapFileSource;
use packetbeat_agent::config::Limits;
use packetbeat_agent::event::envelope::AgentInfo;
use packetbeat_agent::metrics::Metrics;
use packetbeat_agent::output::{Chunk, Output};
use packetbeat_agent::pipeline::{self, Mode, PipelineConfig};
use packetbeat_agent::protocols::registry::Registry;
use packetbeat_agent::worker::PublishSettings;
use support::synth;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Null;

impl Output for Null {
    fn write_chunk(&mut self, _: &Chunk) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn allocations(spec: synth::Spec) -> (u64, u64, u64) {
    let (bytes, packets, tx) = synth::http_keepalive(spec);
    let path = std::env::temp_dir().join(format!("pb-alloc-{}-{}.pcap", std::process::id(), spec.body_segments));
    std::fs::write(&path, bytes).unwrap();
    let (registry, _) = Registry::from_config(Some(
        &serde_norway::from_str::<Vec<serde_norway::Value>>("[{type: http, ports: [80]}]").unwrap(),
    ))
    .unwrap();
    let cfg = PipelineConfig {
        mode: Mode::Replay,
        workers: 1,
        registry: Arc::new(registry),
        limits: Limits::default(),
        publish: PublishSettings {
            agent: Arc::new(AgentInfo {
                name: "t".into(),
                hostname: "t".into(),
                id: "i".into(),
                ephemeral_id: "e".into(),
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
    };
    let mut src = PcapFileSource::open(&path).unwrap();
    let before = ALLOCS.load(Ordering::Relaxed);
    let written = pipeline::run(&mut src, cfg, Box::new(Null)).unwrap().events_written;
    let used = ALLOCS.load(Ordering::Relaxed) - before;
    let _ = std::fs::remove_file(&path);
    assert_eq!(written, tx);
    (used, packets, tx)
}

#[test]
fn extra_packets_cost_no_allocations() {
    let few = allocations(synth::Spec { conns: 20, requests: 20, body_segments: 4, segment_size: 500 });
    let many = allocations(synth::Spec { conns: 20, requests: 20, body_segments: 100, segment_size: 500 });
    let extra_packets = many.1 - few.1;
    let extra_allocs = many.0.saturating_sub(few.0);
    eprintln!(
        "few: {} allocs / {} packets / {} tx; many: {} allocs / {} packets; {:.5} allocs per extra packet",
        few.0,
        few.1,
        few.2,
        many.0,
        many.1,
        extra_allocs as f64 / extra_packets as f64
    );
    assert!(
        (extra_allocs as f64) < extra_packets as f64 * 0.001,
        "{extra_allocs} extra allocations for {extra_packets} extra packets"
    );
}
