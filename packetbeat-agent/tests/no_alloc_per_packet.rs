//! Checks "no per-packet heap allocation in the steady state" on the replay path: replays two
//! captures with the same transactions but 25× more body packets, under a counting allocator, and
//! requires the extra packets to cost (almost) no extra allocations.

#[path = "support/replay.rs"]
mod replay;
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

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

fn allocations(spec: synth::Spec) -> (u64, u64, u64) {
    let (bytes, packets, tx) = synth::http_keepalive(spec);
    let path = std::env::temp_dir().join(format!("pb-alloc-{}-{}.pcap", std::process::id(), spec.body_segments));
    std::fs::write(&path, bytes).unwrap();
    let registry = replay::registry("[{type: http, ports: [80]}]");
    let before = ALLOCS.load(Ordering::Relaxed);
    let written = replay::replay(&path, &registry, 1, Box::new(replay::Null));
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
        // One per packet would be 38,400; the steady state measures 0 or 1.
        (extra_allocs as f64) < extra_packets as f64 * 0.001,
        "{extra_allocs} extra allocations for {extra_packets} extra packets"
    );
}
