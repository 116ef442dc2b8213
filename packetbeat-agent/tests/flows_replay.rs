//! Flow events over a generated capture: one final flow per connection, and every packet and every
//! frame byte of the file counted exactly once, in the right direction.

#[path = "support/replay.rs"]
mod replay;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use packetbeat_agent::flows::FlowSettings;
use packetbeat_agent::output::{Chunk, Output};
use packetbeat_agent::pipeline;
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

#[test]
fn one_final_flow_per_connection_counting_every_frame() {
    let spec = synth::Spec { conns: 12, requests: 4, body_segments: 2, segment_size: 400 };
    let (bytes, packets, tx) = synth::http_keepalive(spec);
    // Classic pcap: 24-byte file header, 16-byte record headers, then the frames.
    let frame_bytes = bytes.len() as u64 - 24 - 16 * packets;
    let path = std::env::temp_dir().join(format!("pb-flows-{}.pcap", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let registry = replay::registry("[{type: http, ports: [80]}]");
    let mut cfg = replay::config(&registry, 2);
    cfg.flows = Some(FlowSettings { timeout: Duration::from_secs(30), period: None });
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut src = packetbeat_agent::capture::pcap::PcapFileSource::open(&path).unwrap();
    pipeline::run(&mut src, cfg, Box::new(Collect(Arc::clone(&out)))).unwrap();
    let _ = std::fs::remove_file(&path);

    let text = out.lock().unwrap().clone();
    let events: Vec<Value> =
        text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    let flows: Vec<&Value> = events.iter().filter(|e| e["type"] == "flow").collect();
    assert_eq!(events.len() as u64 - flows.len() as u64, tx, "transactions are still published");
    assert_eq!(flows.len(), 12, "one flow per connection");
    let mut total_packets = 0;
    let mut total_bytes = 0;
    for f in &flows {
        assert_eq!(f["flow"]["final"], true);
        assert_eq!(f["event"]["type"], serde_json::json!(["connection", "end"]));
        assert_eq!(f["destination"]["port"], 80, "the client sent the first packet: it is the source");
        assert!(f["event"]["duration"].as_u64().unwrap() > 0);
        assert!(f["network"]["community_id"].as_str().unwrap().starts_with("1:"));
        for side in ["source", "destination"] {
            total_packets += f[side]["packets"].as_u64().unwrap();
            total_bytes += f[side]["bytes"].as_u64().unwrap();
        }
    }
    assert_eq!(total_packets, packets);
    assert_eq!(total_bytes, frame_bytes);
}
