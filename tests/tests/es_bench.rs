//! Timed figures for the Elasticsearch output against a real OpenSearch node, with the default
//! output settings: events/s into the node, and the delay from an event reaching the output (its
//! transaction has just ended) to the document being searchable (refresh interval 1 s), as
//! p50/p99. Printed, and bounded loosely so a regression shows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use packetbeat_agent::metrics::Metrics;
use packetbeat_agent::output::elasticsearch::config::{ElasticsearchConfig, SpoolConfig};
use packetbeat_agent::output::elasticsearch::{ElasticsearchOutput, SetupOptions};
use packetbeat_agent::output::{Chunk, Output};
use packetbeat_tests::opensearch::OpenSearch;
use packetbeat_tests::temp_dir;
use serde_json::{json, Value};

fn event(i: u64, ts: &str) -> Value {
    json!({
        "@metadata": {"beat": "packetbeat", "type": "_doc", "version": "0.1.0"},
        "@timestamp": ts,
        "type": "http", "status": "OK", "method": "GET", "query": format!("GET /item/{}", i % 50),
        "event": {"kind": "event", "category": ["network"], "type": ["connection", "protocol"], "dataset": "http",
                  "start": ts, "end": ts, "duration": 1_500_000 + i % 1000},
        "network": {"transport": "tcp", "protocol": "http", "type": "ipv4", "bytes": 812, "direction": "ingress",
                    "community_id": "1:TMPM5eEnGOXfxAjx6NKlyjx+X10="},
        "source": {"ip": "10.0.0.1", "port": 10000 + i % 5000, "bytes": 112},
        "destination": {"ip": "10.0.0.2", "port": 80, "bytes": 700},
        "client": {"ip": "10.0.0.1", "port": 10000 + i % 5000, "bytes": 112},
        "server": {"ip": "10.0.0.2", "port": 80, "bytes": 700},
        "related": {"ip": ["10.0.0.1", "10.0.0.2"]},
        "http": {"version": "1.1", "request": {"method": "GET", "bytes": 112, "headers": {"content-length": 0}},
                 "response": {"status_code": 200, "status_phrase": "ok", "bytes": 700, "body": {"bytes": 600},
                              "headers": {"content-length": 600, "content-type": "text/plain"}}},
        "url": {"scheme": "http", "domain": "example.com", "path": format!("/item/{i}"), "full": format!("http://example.com/item/{i}")},
        "user_agent": {"original": "pb-bench"},
        "agent": {"type": "packetbeat", "name": "bench", "version": "0.1.0", "id": "x", "ephemeral_id": "y"},
        "host": {"name": "bench"}, "ecs": {"version": "8.0.0"}
    })
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn open(node: &OpenSearch, index: &str, dir: &std::path::Path) -> ElasticsearchOutput {
    let cfg = ElasticsearchConfig {
        hosts: vec![node.url()],
        index: Some(index.into()),
        spool: SpoolConfig { path: dir.join(index).display().to_string(), ..SpoolConfig::default() },
        ..ElasticsearchConfig::default()
    };
    let setup = SetupOptions { template: true, overwrite: true, ilm: true };
    ElasticsearchOutput::open(&cfg, setup, Arc::new(Metrics::default()), "0.1.0").expect("open the output")
}

#[test]
fn throughput_and_delay_to_searchable() {
    let node = OpenSearch::start();
    let dir = temp_dir("es-bench");

    // Throughput: 100k events as fast as the output takes them, until all are acknowledged.
    let n = 100_000u64;
    let mut out = open(&node, "packetbeat-bench", &dir);
    let ts = now_rfc3339();
    let t0 = Instant::now();
    let mut chunk = Chunk::default();
    for i in 0..n {
        serde_json::to_writer(&mut chunk.bytes, &event(i, &ts)).unwrap();
        chunk.bytes.push(b'\n');
        chunk.events += 1;
        if chunk.bytes.len() >= 64 * 1024 {
            out.write_chunk(&chunk).unwrap();
            chunk = Chunk::default();
        }
    }
    out.write_chunk(&chunk).unwrap();
    out.close().unwrap();
    let took = t0.elapsed();
    assert_eq!(node.count("packetbeat-bench"), n);
    let rate = n as f64 / took.as_secs_f64();
    println!("throughput: {n} events in {took:.2?} = {rate:.0} events/s (defaults: bulk_max_size 1600, worker 1, gzip 1, disk spool)");
    assert!(rate > 1000.0, "{rate} events/s");

    // Delay: 2000 events/s for 5 s; poll the count every 20 ms; the i-th event is searchable at
    // the first poll that counts more than i (the sender keeps order).
    let index = "packetbeat-delay";
    let mut out = open(&node, index, &dir);
    let rate_per_s = 2000u64;
    let total = rate_per_s * 5;
    let port = node.port;
    // Samples until every event is visible (or 60 s).
    let poller = std::thread::spawn(move || {
        let mut samples = Vec::new();
        let probe = OpenSearchProbe(port);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let c = probe.count(index);
            samples.push((Instant::now(), c));
            if c >= total {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        samples
    });
    let start = Instant::now();
    let mut written = Vec::with_capacity(total as usize);
    for tick in 0..(total / 20) {
        let due = start + Duration::from_millis(tick * 10);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        let mut chunk = Chunk::default();
        let ts = now_rfc3339();
        for k in 0..20 {
            serde_json::to_writer(&mut chunk.bytes, &event(tick * 20 + k, &ts)).unwrap();
            chunk.bytes.push(b'\n');
            chunk.events += 1;
        }
        let at = Instant::now();
        out.write_chunk(&chunk).unwrap();
        written.extend(std::iter::repeat_n(at, 20));
    }
    let samples = poller.join().unwrap();
    out.close().unwrap();
    let mut delays: Vec<Duration> = written
        .iter()
        .enumerate()
        .filter_map(|(i, w)| samples.iter().find(|(_, c)| *c > i as u64).map(|(t, _)| t.saturating_duration_since(*w)))
        .collect();
    assert_eq!(delays.len() as u64, total, "not every event became searchable");
    delays.sort();
    let p = |q: f64| delays[((delays.len() as f64 * q) as usize).min(delays.len() - 1)];
    println!(
        "delay to searchable at {rate_per_s} events/s: p50 {} ms, p99 {} ms, max {} ms",
        p(0.5).as_millis(),
        p(0.99).as_millis(),
        p(1.0).as_millis()
    );
    assert!(p(0.99) < Duration::from_secs(5), "p99 {:?}", p(0.99));
}

/// `_count` without a refresh: what a search sees now.
struct OpenSearchProbe(u16);

impl OpenSearchProbe {
    fn count(&self, index: &str) -> u64 {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.0)) else { return 0 };
        let req = format!("GET /{index}/_count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).is_err() {
            return 0;
        }
        let mut raw = String::new();
        let _ = s.read_to_string(&mut raw);
        raw.split_once("\"count\":")
            .and_then(|(_, r)| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or(0)
    }
}
