//! A flood on a port the agent is not configured for: a blaster writing 1 KiB segments (Nagle off)
//! to a sink over loopback as fast as it can. The kernel filter sees every frame and matches none,
//! so in `ebpf` mode nothing reaches the agent and its CPU must stay near zero. The kernel counters
//! (`kernel.seen`, `kernel.not_matched`) show the filter did the work.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{free_port, temp_dir};

use super::agent::{counter, BenchAgent};
use super::report::Row;
use super::{agent_row, measure, Settings, MODES};

const CONNECTIONS: usize = 2;
const WRITE_BYTES: usize = 1024;

/// Blasts `CONNECTIONS` streams into a sink on `port` for `time`; returns the bytes delivered.
fn flood(listener: &TcpListener, time: Duration) -> u64 {
    let port = listener.local_addr().expect("sink address").port();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect to the sink");
        let (mut server, _) = listener.accept().expect("accept the blaster");
        let received = Arc::clone(&received);
        threads.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = server.read(&mut buf) {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }));
        let stop = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            let mut client = client;
            client.set_nodelay(true).expect("TCP_NODELAY");
            let block = [b'x'; WRITE_BYTES];
            while !stop.load(Ordering::Relaxed) {
                if client.write_all(&block).is_err() {
                    break;
                }
            }
        }));
    }
    let t = Instant::now();
    while t.elapsed() < time {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    received.load(Ordering::Relaxed)
}

/// The flood through both capture modes.
#[must_use]
pub fn run(s: &Settings) -> Vec<Row> {
    let dir = temp_dir("bench-flood");
    let configured = free_port();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the sink");
    let flooded = listener.local_addr().expect("sink address").port();
    let mut rows = Vec::new();
    for mode in MODES {
        let agent = BenchAgent::start(&s.agent, &dir, mode, &format!("[{{type: http, ports: [{configured}]}}]"), &[]);
        let (bytes, w) = measure(&agent, || flood(&listener, s.load_time()));
        let stopped = agent.stop();
        let c = &stopped.counters;
        let mut row =
            agent_row("flood_unconfigured", mode, &format!("{CONNECTIONS} conns × 1 KiB writes"), &w, &stopped);
        let seen = counter(c, "kernel.seen");
        row.offered_per_s = Some(seen as f64 / w.seconds.max(0.001));
        row.seen = Some(stopped.events_by_type.values().sum());
        row.note.push_str(&format!(
            "offered = frames/s the filter saw; {:.0} MB/s to port {flooded}; kernel.seen={seen} \
             kernel.not_matched={} kernel.matched={} decode.frames={}",
            bytes as f64 / 1e6 / w.seconds.max(0.001),
            counter(c, "kernel.not_matched"),
            counter(c, "kernel.matched"),
            counter(c, "decode.frames"),
        ));
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}
