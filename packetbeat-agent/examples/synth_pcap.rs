//! Writes the benchmarks' synthetic HTTP keep-alive capture to a file, for profiling the agent on
//! exactly what `cargo xtask bench` measures:
//! `cargo run --release --example synth_pcap -- /tmp/http.pcap [connections] [requests] [segments] [size]`,
//! then e.g. `valgrind --tool=callgrind target/release/packetbeat-agent replay /tmp/http.pcap`.

#[path = "../tests/support/synth.rs"]
mod synth;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "http-synth.pcap".into());
    let conns = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let requests = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let body_segments = args.next().and_then(|a| a.parse().ok()).unwrap_or(2);
    let segment_size = args.next().and_then(|a| a.parse().ok()).unwrap_or(600);
    let (bytes, packets, tx) = synth::http_keepalive(synth::Spec { conns, requests, body_segments, segment_size });
    if let Err(e) = std::fs::write(&path, bytes) {
        eprintln!("cannot write {path}: {e}");
        std::process::exit(1);
    }
    eprintln!("{path}: {packets} packets, {tx} transactions");
}
