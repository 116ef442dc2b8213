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

/// Writes the capture of `spec` to a file of its own and replays it with 1 worker and then with
/// each `(workers, dispatched)` of `runs`: the 1-worker replay must find every transaction, on
/// every connection, and each other replay the same ones.
fn same_as_one_worker(name: &str, spec: synth::Spec, runs: &[(usize, bool)]) {
    let (bytes, _, tx) = synth::http_keepalive(spec);
    let path = std::env::temp_dir().join(format!("pb-shard-{name}-{}.pcap", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let one = replay(&path, 1, false);
    let others: Vec<_> = runs.iter().map(|&(workers, dispatched)| replay(&path, workers, dispatched)).collect();
    let _ = std::fs::remove_file(&path);
    assert_eq!(one.values().map(Vec::len).sum::<usize>() as u64, tx);
    assert_eq!(one.len(), spec.conns as usize);
    for (other, run) in others.iter().zip(runs) {
        assert_eq!(&one, other, "(workers, dispatched) = {run:?}");
    }
}

#[test]
fn one_and_three_workers_find_the_same_transactions() {
    let spec = synth::Spec { conns: 60, requests: 15, body_segments: 3, segment_size: 300 };
    same_as_one_worker("three", spec, &[(3, false), (3, true)]);
}

/// A capture of about 60 MB: a few hundred of the reader's buffers, so that with three workers on
/// this machine's two cores the workers' queues fill and readers wait for room.
#[test]
fn three_workers_over_many_buffers_find_the_same_transactions() {
    let spec = synth::Spec { conns: 200, requests: 60, body_segments: 3, segment_size: 1400 };
    same_as_one_worker("many", spec, &[(3, false)]);
}

/// One connection: every frame goes to one worker, and the other only reads for it (its own queue
/// stays empty), waiting whenever the busy worker's queue is full.
#[test]
fn one_connection_over_two_workers_finds_the_same_transactions() {
    let spec = synth::Spec { conns: 1, requests: 20_000, body_segments: 3, segment_size: 1400 };
    same_as_one_worker("one", spec, &[(2, false)]);
}
