//! The replay benchmark's captures (issue 5): each ≥ 1 M packets, generated deterministically once
//! into `target/bench-captures/<name>.pcap` with `<name>.json` beside it (packets, bytes,
//! transactions, generator version), so every bench binary and `cargo xtask bench` share them.
//! A capture is regenerated when either file is missing or [`GENERATOR_VERSION`] changed.

#![allow(dead_code, reason = "each user needs a different part")]

use std::path::{Path, PathBuf};

use super::db_sessions::{Mysql, Pgsql, Redis, MYSQL_SERVER, PGSQL_SERVER, REDIS_SERVER};
use super::http_sessions::{self, Http, KEEPALIVE_REQUESTS};
use super::synth::{self, Writer};
use super::tcp_conn::{interleave, Session};

/// Bump whenever a generator below (or a building block it uses) changes what it writes.
pub const GENERATOR_VERSION: u32 = 1;

/// Connections open at once in the single-protocol captures.
const CONCURRENCY: usize = 32;

/// One benchmark capture.
pub struct Capture {
    /// File stem and criterion group suffix (`replay_<name>`).
    pub name: &'static str,
    /// `packetbeat.protocols` as YAML.
    pub protocols: &'static str,
    /// What it holds, for the report.
    pub description: &'static str,
    /// Writes the frames; returns the transactions the agent must report.
    generate: fn(&mut Writer) -> u64,
}

/// What the generator wrote, as stored in `<name>.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Frames in the file.
    pub packets: u64,
    /// Transactions the agent must publish.
    pub transactions: u64,
    /// Size of the pcap file.
    pub file_bytes: u64,
    /// Sum of frame lengths (the traffic, without pcap record headers).
    pub frame_bytes: u64,
}

const ALL_PROTOCOLS: &str =
    "[{type: http, ports: [80]}, {type: mysql, ports: [3306]}, {type: pgsql, ports: [5432]}, {type: redis, ports: [6379]}]";

/// Every capture, in report order.
pub const CAPTURES: &[Capture] = &[
    Capture {
        name: "http_keepalive",
        protocols: "[{type: http, ports: [80]}]",
        description: "HTTP/1.1 keep-alive, 100 requests/conn, realistic response mix (see http_sessions.rs)",
        generate: |w| http_sessions::keepalive_mix(w, 1_100, CONCURRENCY),
    },
    Capture {
        name: "http_small",
        protocols: "[{type: http, ports: [80]}]",
        description: "HTTP/1.1 keep-alive, tiny 2x600-byte responses, 5 packets/tx (worst case)",
        generate: |w| {
            synth::http_keepalive_into(
                w,
                synth::Spec { conns: 2_000, requests: 100, body_segments: 2, segment_size: 600 },
            )
        },
    },
    Capture {
        name: "http_one_per_conn",
        protocols: "[{type: http, ports: [80]}]",
        description: "HTTP/1.1 one small request per connection, handshake and FIN included",
        generate: |w| http_sessions::one_per_conn(w, 112_000, CONCURRENCY),
    },
    Capture {
        name: "mysql",
        protocols: "[{type: mysql, ports: [3306]}]",
        description: "MySQL text SELECT/UPDATE + prepared statement executes, 100 commands/conn",
        generate: |w| {
            interleave(w, CONCURRENCY, |n| {
                (n < 3_200).then(|| (MYSQL_SERVER, Box::new(Mysql::new(100)) as Box<dyn Session>))
            })
        },
    },
    Capture {
        name: "pgsql_extended",
        protocols: "[{type: pgsql, ports: [5432]}]",
        description: "PostgreSQL extended protocol: Bind/Describe/Execute SELECTs, 4-Execute UPDATE pipelines",
        generate: |w| {
            interleave(w, CONCURRENCY, |n| {
                (n < 3_300).then(|| (PGSQL_SERVER, Box::new(Pgsql::new(100)) as Box<dyn Session>))
            })
        },
    },
    Capture {
        name: "redis_pipelined",
        protocols: "[{type: redis, ports: [6379]}]",
        description: "Redis, 200 commands/conn pipelined 10 per segment",
        generate: |w| {
            interleave(w, CONCURRENCY, |n| {
                (n < 15_200).then(|| (REDIS_SERVER, Box::new(Redis::new(n, 200)) as Box<dyn Session>))
            })
        },
    },
    Capture {
        name: "mix",
        protocols: ALL_PROTOCOLS,
        description: "HTTP keep-alive, MySQL, PostgreSQL, Redis connections in turn, 64 open at once",
        generate: |w| {
            interleave(w, 64, |n| {
                (n < 2_500).then(|| match n % 4 {
                    0 => (http_sessions::SERVER, Box::new(Http::new(n, KEEPALIVE_REQUESTS)) as Box<dyn Session>),
                    1 => (MYSQL_SERVER, Box::new(Mysql::new(100)) as Box<dyn Session>),
                    2 => (PGSQL_SERVER, Box::new(Pgsql::new(100)) as Box<dyn Session>),
                    _ => (REDIS_SERVER, Box::new(Redis::new(n, 200)) as Box<dyn Session>),
                })
            })
        },
    },
];

/// `target/bench-captures` of this workspace (or of `$CARGO_TARGET_DIR`).
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-captures")
}

fn read_meta(path: &Path) -> Option<Meta> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if v.get("generator_version")?.as_u64()? != u64::from(GENERATOR_VERSION) {
        return None;
    }
    let n = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
    Some(Meta {
        packets: n("packets")?,
        transactions: n("transactions")?,
        file_bytes: n("file_bytes")?,
        frame_bytes: n("frame_bytes")?,
    })
}

impl Capture {
    /// The capture's pcap file and what it holds, generating both files when missing or stale.
    pub fn ensure(&self) -> (PathBuf, Meta) {
        let dir = dir();
        std::fs::create_dir_all(&dir).expect("create target/bench-captures");
        let (pcap, json) = (dir.join(format!("{}.pcap", self.name)), dir.join(format!("{}.json", self.name)));
        if let Some(meta) = read_meta(&json) {
            if std::fs::metadata(&pcap).is_ok_and(|m| m.len() == meta.file_bytes) {
                return (pcap, meta);
            }
        }
        let started = std::time::Instant::now();
        let tmp = dir.join(format!("{}.pcap.tmp", self.name));
        let mut w = Writer::to_file(&tmp, 7).expect("create capture file");
        let transactions = (self.generate)(&mut w);
        let (packets, frame_bytes) = (w.packets, w.frame_bytes);
        let file_bytes = w.finish().expect("write capture file");
        std::fs::rename(&tmp, &pcap).expect("rename capture file");
        let meta = Meta { packets, transactions, file_bytes, frame_bytes };
        let doc = serde_json::json!({
            "name": self.name,
            "description": self.description,
            "protocols": self.protocols,
            "generator_version": GENERATOR_VERSION,
            "packets": packets,
            "transactions": transactions,
            "file_bytes": file_bytes,
            "frame_bytes": frame_bytes,
            "packets_per_transaction": packets as f64 / transactions.max(1) as f64,
        });
        std::fs::write(&json, serde_json::to_vec_pretty(&doc).expect("JSON")).expect("write capture metadata");
        eprintln!(
            "generated {} in {:.1} s: {packets} packets, {transactions} transactions ({:.2} packets/tx), {:.1} MB",
            pcap.display(),
            started.elapsed().as_secs_f64(),
            packets as f64 / transactions.max(1) as f64,
            file_bytes as f64 / 1e6
        );
        (pcap, meta)
    }
}
