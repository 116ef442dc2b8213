//! Sharding must not change what is found: replaying the same capture with 1 and with 3 workers,
//! fed by the replay reader (frames handed over in its shared buffers) or by the live dispatcher
//! (segments copied into batches), gives the same transactions (order across connections may
//! differ; within one it may not).

#[path = "support/replay.rs"]
mod replay;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use packetbeat_agent::output::{Chunk, Output};
use serde_json::Value;
use support::synth;

struct Collect(Arc<Mutex<Vec<u8>>>);

impl Output for Collect {
    fn write_chunk(&mut self, chunk: &Chunk) -> std::io::Result<()> {
        self.0.lock().unwrap().extend_from_slice(&chunk.bytes);
        Ok(())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Client port → the url paths of its transactions, in publish order.
fn replay(path: &std::path::Path, workers: usize, dispatched: bool) -> BTreeMap<u64, Vec<String>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let registry = replay::registry("[{type: http, ports: [80]}]");
    let output = Box::new(Collect(Arc::clone(&out)));
    let written = if dispatched {
        replay::replay_dispatched(path, &registry, workers, output)
    } else {
        replay::replay(path, &registry, workers, output)
    };
    let bytes = out.lock().unwrap().clone();
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count() as u64, written);
    let mut by_conn: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let e: Value = serde_json::from_slice(line).unwrap();
        let port = e["client"]["port"].as_u64().unwrap();
        by_conn.entry(port).or_default().push(e["url"]["path"].as_str().unwrap().to_owned());
    }
    by_conn
}

#[test]
fn one_and_three_workers_find_the_same_transactions() {
    let (bytes, _, tx) =
        synth::http_keepalive(synth::Spec { conns: 60, requests: 15, body_segments: 3, segment_size: 300 });
    let path = std::env::temp_dir().join(format!("pb-shard-{}.pcap", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let one = replay(&path, 1, false);
    let three = replay(&path, 3, false);
    let three_dispatched = replay(&path, 3, true);
    let _ = std::fs::remove_file(&path);
    assert_eq!(one.values().map(Vec::len).sum::<usize>() as u64, tx);
    assert_eq!(one.len(), 60);
    assert_eq!(one, three);
    assert_eq!(one, three_dispatched);
}
