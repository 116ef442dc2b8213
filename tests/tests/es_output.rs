//! The Elasticsearch output against a real OpenSearch 2.19 node (never a mock): events of a
//! replayed capture land in the data stream, as many as the console output gives, mapped as the
//! template says and usable by the Packetbeat dashboards' aggregations; and the faults: a node
//! killed and restarted mid-stream, mapping conflicts, a throttling proxy, a restart of the agent
//! with a full spool, bad credentials and bad TLS.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../../packetbeat-agent/tests/support/mod.rs"]
mod support;

use packetbeat_tests::opensearch::OpenSearch;
use packetbeat_tests::pcap::{http_capture, pcap, HttpExchange};
use packetbeat_tests::{free_port, get, have, replay, run_agent, temp_dir};
use serde_json::json;

/// One node at a time: two cores are shared with everything else.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const QUERIES: [(&str, u16, usize, u64); 4] = [
    ("/a.txt", 200, 100, 2_000),
    ("/b.html", 200, 2_000, 5_000),
    ("/missing", 404, 50, 1_000),
    ("/api", 200, 500, 20_000),
];

fn mixed(n: usize) -> Vec<HttpExchange> {
    (0..n)
        .map(|i| {
            let (path, status, body, delay_us) = QUERIES[i % 4];
            HttpExchange { path: path.into(), status, body, delay_us }
        })
        .collect()
}

fn write_pcap(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn es_config(url: &str, index: &str, dir: &Path, extra: &str) -> String {
    format!(
        "packetbeat.protocols:\n  - type: http\n    ports: [80]\nlogging.metrics.enabled: false\n\
         output.elasticsearch:\n  hosts: [\"{url}\"]\n  index: \"{index}\"\n  spool.path: \"{}\"\n  backoff.init: 100ms\n  backoff.max: 1s\n{extra}",
        dir.join("spool").display()
    )
}

const CONSOLE: &str = "packetbeat.protocols:\n  - type: http\n    ports: [80]\nlogging.metrics.enabled: false\n";

fn counter(stderr: &str, name: &str) -> u64 {
    let key = format!("{name}=");
    stderr
        .lines()
        .rev()
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix(&key)).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn events_land_mapped_and_aggregatable() {
    let _g = serial();
    let node = OpenSearch::start();
    let dir = temp_dir("es-land");
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(400), 1_700_000_000_000_000));
    let console = replay(&file, CONSOLE, Duration::from_secs(60));
    assert_eq!(console.code, Some(0), "{}", console.stderr);
    let n = console.events.len() as u64;
    assert_eq!(n, 400);
    let dest_bytes: u64 = console.events.iter().map(|e| get(e, "destination.bytes").as_u64().unwrap_or(0)).sum();

    let index = "packetbeat-land-0.1.0";
    let t0 = Instant::now();
    let out = replay(&file, &es_config(&node.url(), index, &dir, ""), Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    println!("replay into OpenSearch: {n} events in {:?}", t0.elapsed());
    assert_eq!(node.count(index), n, "{}", out.stderr);
    assert_eq!(counter(&out.stderr, "output.elasticsearch.acked"), n);

    // `test output` and `setup --index-management` on the same node.
    let cfg = dir.join("pb.yml");
    std::fs::write(&cfg, es_config(&node.url(), "packetbeat-setup", &dir, "")).unwrap();
    let args = |a: &[&str]| -> Vec<std::ffi::OsString> {
        a.iter().map(Into::into).chain(["-c".into(), cfg.clone().into()]).collect()
    };
    let t = run_agent(&args(&["test", "output"]), Duration::from_secs(30));
    assert_eq!(t.code, Some(0), "{}", t.stderr);
    assert!(t.stdout.contains("talk to server... OK") && t.stdout.contains("2.19"), "{}", t.stdout);
    assert!(t.stdout.contains("index template packetbeat-setup: missing"), "{}", t.stdout);
    let s = run_agent(&args(&["setup", "--index-management"]), Duration::from_secs(30));
    assert_eq!(s.code, Some(0), "{}", s.stderr);
    assert!(s.stdout.contains("index template packetbeat-setup loaded"), "{}", s.stdout);
    assert_eq!(node.request("GET", "/_index_template/packetbeat-setup", None).0, 200);
    let t = run_agent(&args(&["test", "output"]), Duration::from_secs(30));
    assert!(t.stdout.contains("index template packetbeat-setup: present"), "{}", t.stdout);

    // The mapping the template gave the backing index.
    let (_, mapping) = node.request("GET", &format!("/{index}/_mapping"), None);
    let props =
        &mapping.as_object().and_then(|m| m.values().next()).expect("a backing index")["mappings"]["properties"];
    let ty = |path: &str| {
        let mut v = props;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            v = &v[*p];
            if i + 1 < parts.len() {
                v = &v["properties"];
            }
        }
        v["type"].as_str().unwrap_or("-").to_owned()
    };
    for (field, want) in [
        ("@timestamp", "date"),
        ("event.duration", "long"),
        ("event.start", "date"),
        ("query", "keyword"),
        ("method", "keyword"),
        ("source.ip", "ip"),
        ("destination.bytes", "long"),
        ("related.ip", "ip"),
        ("http.response.status_code", "long"),
        ("http.request.headers.content-length", "keyword"),
        ("pgsql.error_code", "keyword"),
        ("url.full", "keyword"),
    ] {
        assert_eq!(ty(field), want, "{field}");
    }

    // @metadata never reaches the document.
    let (_, hits) = node.request("GET", &format!("/{index}/_search?size=1"), None);
    assert!(hits["hits"]["hits"][0]["_source"].get("@metadata").is_none(), "{hits}");

    // The dashboards' aggregations.
    let aggs = json!({"size": 0, "aggs": {
        "queries": {"terms": {"field": "query", "size": 10}},
        "latency": {"percentiles": {"field": "event.duration", "percents": [50, 75, 99]}},
        "bytes": {"sum": {"field": "destination.bytes"}},
        "codes": {"terms": {"field": "http.response.status_code"}}
    }});
    let (status, r) = node.request("POST", &format!("/{index}/_search"), Some(&aggs));
    assert_eq!(status, 200, "{r}");
    let buckets: Vec<(String, u64)> = r["aggregations"]["queries"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["key"].as_str().unwrap().to_owned(), b["doc_count"].as_u64().unwrap()))
        .collect();
    assert_eq!(buckets.len(), 4, "{buckets:?}");
    assert!(buckets.iter().all(|(q, c)| q.starts_with("GET /") && *c == 100), "{buckets:?}");
    let p99 = r["aggregations"]["latency"]["values"]["99.0"].as_f64().unwrap();
    assert!((1.9e7..=2.1e7).contains(&p99), "p99 of event.duration {p99} ns (the slowest query takes 20 ms)");
    assert_eq!(r["aggregations"]["bytes"]["value"].as_f64().unwrap() as u64, dest_bytes);
    assert_eq!(r["aggregations"]["codes"]["buckets"].as_array().unwrap().len(), 2);
}

/// MySQL, PostgreSQL and Redis transactions land beside HTTP ones, each as many as the console
/// output gives, with their own fields mapped as the template says.
#[test]
fn all_four_protocols_land_and_map() {
    let _g = serial();
    let node = OpenSearch::start();
    let dir = temp_dir("es-four");
    let (mysql, _, mysql_tx) =
        support::mysql_synth::mysql_sessions(support::mysql_synth::MysqlSpec { conns: 10, requests: 10, rows: 3 });
    let (pgsql, _, pgsql_tx) =
        support::pgsql_synth::pgsql_mix(support::pgsql_synth::PgSpec { conns: 10, round_trips: 6 });
    let (redis, _, redis_tx) =
        support::redis_synth::redis_pipelined(support::redis_synth::RedisSpec { conns: 10, commands: 20, depth: 5 });
    let captures = [
        ("http", write_pcap(&dir, "http.pcap", &http_capture(&mixed(40), 1_700_000_000_000_000)), 40),
        ("mysql", write_pcap(&dir, "mysql.pcap", &mysql), mysql_tx),
        ("pgsql", write_pcap(&dir, "pgsql.pcap", &pgsql), pgsql_tx),
        ("redis", write_pcap(&dir, "redis.pcap", &redis), redis_tx),
    ];
    let protocols = "packetbeat.protocols:\n  - {type: http, ports: [80]}\n  - {type: mysql, ports: [3306]}\n  \
                     - {type: pgsql, ports: [5432]}\n  - {type: redis, ports: [6379]}\nlogging.metrics.enabled: false\n";
    let index = "packetbeat-four-0.1.0";
    let es = format!(
        "{protocols}output.elasticsearch:\n  hosts: [\"{}\"]\n  index: \"{index}\"\n  spool.path: \"{}\"\n",
        node.url(),
        dir.join("spool").display()
    );
    let mut total = 0;
    for (kind, file, tx) in &captures {
        let console = replay(file, protocols, Duration::from_secs(60));
        assert_eq!(console.code, Some(0), "{}", console.stderr);
        assert_eq!(console.events.len() as u64, *tx, "{kind}: console events");
        assert!(console.events.iter().all(|e| get(e, "type") == *kind), "{kind}");
        let out = replay(file, &es, Duration::from_secs(120));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        total += tx;
        assert_eq!(node.count(index), total, "{kind}: {}", out.stderr);
    }
    let (status, r) = node.request(
        "POST",
        &format!("/{index}/_search"),
        Some(&json!({"size": 0, "aggs": {"types": {"terms": {"field": "event.dataset"}}, "methods": {"terms": {"field": "method", "size": 20}}}})),
    );
    assert_eq!(status, 200, "{r}");
    let types: Vec<(String, u64)> = r["aggregations"]["types"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["key"].as_str().unwrap().to_owned(), b["doc_count"].as_u64().unwrap()))
        .collect();
    for (kind, _, tx) in &captures {
        assert!(types.contains(&((*kind).to_owned(), *tx)), "{kind}: {types:?}");
    }
    let (_, mapping) = node.request("GET", &format!("/{index}/_mapping"), None);
    let props =
        &mapping.as_object().and_then(|m| m.values().next()).expect("a backing index")["mappings"]["properties"];
    for (proto, field, want) in
        [("mysql", "num_rows", "long"), ("pgsql", "num_rows", "long"), ("redis", "return_value", "keyword")]
    {
        assert_eq!(props[proto]["properties"][field]["type"], want, "{proto}.{field}: {}", props[proto]);
    }
}

#[test]
fn mapping_conflicts_are_counted_and_the_rest_arrive() {
    let _g = serial();
    let node = OpenSearch::start();
    let dir = temp_dir("es-conflict");
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(200), 1_700_000_000_000_000));
    for (index, extra) in [
        ("packetbeat-conflict", ""),
        ("packetbeat-conflict-dli", "  non_indexable_policy.dead_letter_index.index: dead-letters\n"),
    ] {
        // Our own template: url.extension as a number, so /a.txt and /b.html are rejected.
        let tpl = json!({"index_patterns": [index], "data_stream": {}, "priority": 200,
            "template": {"mappings": {"properties": {"url": {"properties": {"extension": {"type": "long"}}}}}}});
        assert_eq!(node.request("PUT", &format!("/_index_template/{index}"), Some(&tpl)).0, 200);
        let extra = format!("{extra}setup.template.enabled: false\n");
        let out = replay(&file, &es_config(&node.url(), index, &dir.join(index), &extra), Duration::from_secs(120));
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(node.count(index), 100, "{}", out.stderr);
        assert!(out.stderr.contains("mapper_parsing_exception"), "{}", out.stderr);
        if extra.contains("dead_letter") {
            assert_eq!(counter(&out.stderr, "output.elasticsearch.dead_lettered"), 100, "{}", out.stderr);
            assert_eq!(node.count("dead-letters"), 100);
            let (_, r) = node.request("GET", "/dead-letters/_search?size=1", None);
            let doc = &r["hits"]["hits"][0]["_source"];
            let original: serde_json::Value = serde_json::from_str(doc["message"].as_str().unwrap()).unwrap();
            assert_eq!(original["type"], "http", "{doc}");
            assert!(doc["error"]["message"].as_str().unwrap().contains("mapper_parsing_exception"), "{doc}");
        } else {
            assert_eq!(counter(&out.stderr, "output.elasticsearch.dropped_rejected"), 100, "{}", out.stderr);
        }
    }
}

/// What the proxy does to the first `n` bulk requests.
#[derive(Clone, Copy)]
enum Fault {
    /// Answer 429 without forwarding.
    Throttle(usize),
    /// Forward, then drop the connection instead of answering (the node indexed them).
    LoseResponse(usize),
    /// Answer 401 to every request.
    Unauthorized,
    /// Strip this path prefix, forward, and keep the first bulk request's head.
    Record(&'static str),
}

static RECORDED: Mutex<Option<String>> = Mutex::new(None);

/// A proxy in front of the node that applies `fault` and forwards the rest (one request per
/// connection).
fn proxy(upstream: u16, fault: Fault) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&answered);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                let _ = handle(conn, upstream, fault, &seen);
            });
        }
    });
    (port, answered)
}

fn handle(mut c: TcpStream, upstream: u16, fault: Fault, seen: &AtomicUsize) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        let n = c.read(&mut tmp)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = c.read(&mut tmp)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let nth = if head.contains("/_bulk?") { seen.fetch_add(1, Ordering::SeqCst) } else { usize::MAX };
    match fault {
        Fault::Unauthorized => {
            return c.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
        Fault::Throttle(n) if nth < n => {
            return c.write_all(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}");
        }
        _ => {}
    }
    let mut head = head;
    if let Fault::Record(prefix) = fault {
        if nth == 0 {
            *RECORDED.lock().unwrap() = Some(head.clone());
        }
        head = head.replacen(&format!(" {prefix}/"), " /", 1);
    }
    let mut u = TcpStream::connect(("127.0.0.1", upstream))?;
    let head = head.replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
    u.write_all(head.as_bytes())?;
    u.write_all(&buf[head_end..])?;
    let mut resp = Vec::new();
    u.read_to_end(&mut resp)?;
    if matches!(fault, Fault::LoseResponse(n) if nth < n) {
        return Ok(());
    }
    // One request per connection: say so, or the client may reuse a connection we close.
    if let Some(p) = resp.windows(2).position(|w| w == b"\r\n") {
        resp.splice(p..p, b"\r\nconnection: close".iter().copied());
    }
    c.write_all(&resp)
}

#[test]
fn throttled_requests_are_retried_without_loss() {
    let _g = serial();
    let node = OpenSearch::start();
    let dir = temp_dir("es-429");
    let (port, seen) = proxy(node.port, Fault::Throttle(3));
    let index = "packetbeat-throttled";
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(300), 1_700_000_000_000_000));
    // Two hosts, the first one dead: requests fail over to the proxy.
    let hosts = format!("http://127.0.0.1:{}\", \"http://127.0.0.1:{port}", free_port());
    let out = replay(&file, &es_config(&hosts, index, &dir, ""), Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(seen.load(Ordering::SeqCst) > 3, "{}", out.stderr);
    assert_eq!(node.count(index), 300, "{}", out.stderr);
    assert_eq!(counter(&out.stderr, "output.elasticsearch.throttled"), 3, "{}", out.stderr);
    assert_eq!(counter(&out.stderr, "output.elasticsearch.dropped_rejected"), 0);
}

#[test]
fn lost_responses_are_retried_and_answered_409_not_indexed_twice() {
    let _g = serial();
    let node = OpenSearch::start();
    let dir = temp_dir("es-lost");
    let (port, _) = proxy(node.port, Fault::LoseResponse(2));
    let index = "packetbeat-lost";
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(200), 1_700_000_000_000_000));
    let out = replay(
        &file,
        &es_config(&format!("http://127.0.0.1:{port}"), index, &dir, "  bulk_max_size: 50\n"),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(node.count(index), 200, "{}", out.stderr);
    // The first two bulk requests (50 events each, or fewer if the first take was short) were
    // indexed but their answers lost: the retry finds them there.
    let dup = counter(&out.stderr, "output.elasticsearch.duplicates");
    assert!((2..=100).contains(&dup), "duplicates {dup}: {}", out.stderr);
    assert_eq!(dup + counter(&out.stderr, "output.elasticsearch.acked"), 200, "{}", out.stderr);
}

#[test]
fn path_headers_api_key_gzip_and_memory_queue() {
    let _g = serial();
    let node = OpenSearch::start();
    let dir = temp_dir("es-shape");
    let (port, _) = proxy(node.port, Fault::Record("/es"));
    let index = "packetbeat-shape";
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(40), 1_700_000_000_000_000));
    // Also the in-memory queue (spool off): blocking backpressure instead of files.
    let extra = "  path: /es\n  api_key: \"id:key\"\n  headers:\n    X-Test: yes-please\n  spool.enabled: false\n  spool.memory_events: 8\n";
    let out = replay(&file, &es_config(&format!("127.0.0.1:{port}"), index, &dir, extra), Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(node.count(index), 40, "{}", out.stderr);
    assert!(!dir.join("spool").exists());
    let head = RECORDED.lock().unwrap().clone().expect("a bulk request went through the proxy").to_ascii_lowercase();
    assert!(head.starts_with("post /es/_bulk?filter_path=errors,items.*.error,items.*.status "), "{head}");
    assert!(head.contains("x-test: yes-please"), "{head}");
    assert!(head.contains("authorization: apikey awq6a2v5"), "{head}");
    assert!(head.contains("content-encoding: gzip") && head.contains("content-type: application/x-ndjson"), "{head}");
}

#[test]
fn node_killed_and_restarted_mid_stream_gets_every_event_once() {
    let _g = serial();
    let mut node = OpenSearch::start();
    let dir = temp_dir("es-restart");
    let n = 20_000;
    let unique: Vec<HttpExchange> =
        (0..n).map(|i| HttpExchange { path: format!("/item/{i}"), status: 200, body: 10, delay_us: 500 }).collect();
    let file = write_pcap(&dir, "unique.pcap", &http_capture(&unique, 1_700_000_000_000_000));
    let index = "packetbeat-restart";
    let cfg = dir.join("pb.yml");
    std::fs::write(&cfg, es_config(&node.url(), index, &dir, "  bulk_max_size: 250\n")).unwrap();
    let args: Vec<std::ffi::OsString> = vec!["replay".into(), file.into(), "-c".into(), cfg.into()];
    let agent = std::thread::spawn(move || run_agent(&args, Duration::from_secs(180)));
    let deadline = Instant::now() + Duration::from_secs(60);
    while node.count(index) == 0 {
        assert!(Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.kill();
    std::thread::sleep(Duration::from_secs(2));
    node = node.restart();
    let out = agent.join().unwrap();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        counter(&out.stderr, "output.elasticsearch.connection_errors") > 0,
        "the node was not down long enough: {}",
        out.stderr
    );
    assert_eq!(node.count(index), n as u64, "{}", out.stderr);
    // Exactly once: n documents and no path (unique per event) twice, so every path once.
    let dupes = json!({"size": 0, "aggs": {"twice": {"terms": {"field": "url.path", "min_doc_count": 2, "size": 5}}}});
    let (_, r) = node.request("POST", &format!("/{index}/_search"), Some(&dupes));
    assert_eq!(r["aggregations"]["twice"]["buckets"], json!([]), "{r}");
    println!(
        "restart: retried {} events, {} answered 409 (already indexed before the kill)",
        counter(&out.stderr, "output.elasticsearch.retried"),
        counter(&out.stderr, "output.elasticsearch.duplicates")
    );
}

#[test]
fn spool_survives_an_agent_restart() {
    let _g = serial();
    let dir = temp_dir("es-spool");
    let port = free_port();
    let index = "packetbeat-spooled";
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(120), 1_700_000_000_000_000));
    // Nothing listens yet: the agent warns, spools, gives up after the shutdown timeout.
    let url = format!("http://127.0.0.1:{port}");
    let extra = "  spool.shutdown_timeout: 1s\n";
    let out = replay(&file, &es_config(&url, index, &dir, extra), Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("120 events are still in the spool"), "{}", out.stderr);
    // Next start, with the node up and a capture with no packets: the spool drains.
    let node = OpenSearch::start();
    let empty = write_pcap(&dir, "empty.pcap", &pcap(1, &[]));
    let out = replay(&empty, &es_config(&node.url(), index, &dir, ""), Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stderr.contains("resuming 120 spooled events"), "{}", out.stderr);
    assert_eq!(node.count(index), 120, "{}", out.stderr);
}

#[test]
fn bad_credentials_and_bad_tls_fail_at_start_with_one_sentence() {
    let _g = serial();
    let dir = temp_dir("es-auth");
    let file = write_pcap(&dir, "mixed.pcap", &http_capture(&mixed(4), 1_700_000_000_000_000));
    let (port, _) = proxy(1, Fault::Unauthorized);
    let extra = "  username: elastic\n  password: wrong\n";
    let out = replay(
        &file,
        &es_config(&format!("http://127.0.0.1:{port}"), "packetbeat-auth", &dir, extra),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(errors[0].contains("refused the credentials"), "{}", errors[0]);

    if !have("openssl") {
        println!("skipped the TLS half: no openssl to make a self-signed server");
        return;
    }
    let (ca, cert, key) = make_certs(&dir);
    let tls_port = free_port();
    let mut server = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept", &tls_port.to_string(), "-cert"])
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // (host, extra config, what the one error line must say). The server speaks TLS but not the
    // engine's API, so "not a usable ... endpoint" proves the handshake was accepted.
    let ca_line = format!("  ssl.certificate_authorities: [\"{}\"]\n", ca.display());
    let not_engine = "is not a usable Elasticsearch/OpenSearch endpoint";
    let cases = [
        ("127.0.0.1", String::new(), "certificate"),
        ("localhost", ca_line.clone(), not_engine),
        ("127.0.0.1", ca_line.clone(), "certificate"),
        ("127.0.0.1", format!("{ca_line}  ssl.verification_mode: certificate\n"), not_engine),
        ("127.0.0.1", "  ssl.verification_mode: none\n".to_owned(), not_engine),
    ];
    for (host, extra, want) in cases {
        let url = format!("https://{host}:{tls_port}");
        let out = replay(&file, &es_config(&url, "packetbeat-tls", &dir, &extra), Duration::from_secs(30));
        assert_eq!(out.code, Some(1), "{url} {extra}: {}", out.stderr);
        let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("Error:")).collect();
        assert_eq!(errors.len(), 1, "{}", out.stderr);
        assert!(errors[0].contains(want), "{url} {extra}: {}", errors[0]);
        println!("{url} {}: {}", extra.trim(), errors[0]);
    }
    let _ = server.kill();
    let _ = server.wait();
}

/// A CA and a server certificate for `localhost` signed by it (PEM files).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ssl = |args: &[&str]| {
        let st = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "openssl {args:?}");
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=pb-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    ssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "k.pem", "-out", "s.csr"]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ssl(&[
        "x509",
        "-req",
        "-in",
        "s.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "c.pem",
    ]);
    (dir.join("ca.pem"), dir.join("c.pem"), dir.join("k.pem"))
}
