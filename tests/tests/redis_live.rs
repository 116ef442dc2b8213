//! Redis end to end: a real redis-server on loopback, real clients (redis-cli with RESP2 and `-3`,
//! MULTI/EXEC, SUBSCRIBE with PUBLISH from another client, redis-benchmark pipelining 16 deep,
//! redis-py speaking RESP3 with push messages), the agent capturing live through the eBPF ring,
//! and a replay of tcpdump's capture of the same traffic. The server's own `INFO commandstats`
//! delta is the ground truth: live and replay must give exactly one transaction per command it
//! executed (or rejected), with the same errors, and the same transactions as each other.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use packetbeat_tests::redis_server::{stats_delta, RedisServer};
use packetbeat_tests::{free_port, get, have, is_root, replay, temp_dir, LiveAgent, Tcpdump};
use serde_json::Value;

/// Drives every client scenario.
fn drive(server: &RedisServer) {
    assert_eq!(server.cli(&["SET", "greeting", "hello"]).trim(), "OK");
    assert_eq!(server.cli(&["GET", "greeting"]).trim(), "hello");
    assert!(server.cli(&["LPUSH", "greeting", "x"]).contains("WRONGTYPE"));
    let out = server.cli_script(&[], "MULTI\nSET counter 1\nINCR counter\nEXEC\n");
    assert!(out.contains("QUEUED"), "{out}");

    // Pub/sub: a subscriber, and PUBLISH from another client until it is delivered.
    let mut sub = server.subscriber(&["news"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.cli(&["PUBLISH", "news", "hello"]).trim() != "1" {
        assert!(Instant::now() < deadline, "subscriber never subscribed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(server.cli(&["PUBLISH", "news", "again"]).trim(), "1");
    std::thread::sleep(Duration::from_millis(200));
    let _ = sub.kill();
    let _ = sub.wait();

    // Pipelining: 16 commands in flight per connection.
    server.benchmark(&["-P", "16", "-n", "2000", "-c", "4", "-t", "set,get", "-q"]);

    // RESP3 from redis-cli (HELLO 3 first) and from redis-py.
    let out = server
        .cli_script(&["-3"], "HSET h3 f 1 g 2\nHGETALL h3\nSADD s3 a b\nSMEMBERS s3\nZADD z3 1.5 m\nZSCORE z3 m\n");
    assert!(out.contains("1.5"), "{out}");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/redis_resp3.py");
    let py = Command::new("python3").arg(script).arg(server.port.to_string()).output().expect("python3");
    assert!(py.status.success(), "redis-py RESP3 client failed: {}", String::from_utf8_lossy(&py.stderr));
}

/// Whether the server refused the command as unknown: it has no commandstats entry then.
fn unknown_to_server(e: &Value) -> bool {
    get(e, "redis.error")
        .as_str()
        .is_some_and(|m| m.starts_with("ERR unknown command") || m.starts_with("ERR unknown subcommand"))
}

/// `command|subcommand` (commandstats' name) → (transactions, errors), for the commands the server
/// knows.
fn tally(events: &[Value]) -> BTreeMap<String, (u64, u64)> {
    let mut t = BTreeMap::new();
    for e in events.iter().filter(|e| !unknown_to_server(e)) {
        let name = get(e, "method").as_str().unwrap_or("-").to_lowercase().replace(' ', "|");
        let entry = t.entry(name).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += u64::from(get(e, "status") == "Error");
    }
    t
}

fn value(e: &Value) -> &str {
    get(e, "redis.return_value").as_str().or_else(|| get(e, "redis.error").as_str()).unwrap_or("")
}

fn find<'a>(events: &'a [Value], query: &str) -> &'a Value {
    events.iter().find(|e| get(e, "query") == query).unwrap_or_else(|| panic!("no transaction for {query:?}"))
}

fn check_events(events: &[Value], expected: &BTreeMap<String, (u64, u64)>, port: u16) {
    for e in events {
        assert_eq!(get(e, "type"), "redis");
        assert_eq!(get(e, "server.port").as_u64(), Some(u64::from(port)));
        assert!(get(e, "event.duration").as_u64().is_some(), "no duration: {e}");
        assert_eq!(get(e, "error"), &Value::Null, "unexpected note: {e}");
        let action = format!("redis.{}", get(e, "method").as_str().unwrap_or("").to_lowercase());
        assert_eq!(get(e, "event.action").as_str(), Some(action.as_str()));
    }
    assert_eq!(&tally(events), expected, "transactions differ from what the server executed");
    // Commands the server does not know are still decoded (redis-py sends newer CLIENT subcommands).
    for e in events.iter().filter(|e| unknown_to_server(e)) {
        assert_eq!(get(e, "method").as_str().map(|m| m.starts_with("CLIENT ")), Some(true), "{e}");
    }
    assert_eq!(value(find(events, "GET greeting")), "hello");
    let err = find(events, "LPUSH greeting x");
    assert_eq!((get(err, "status").as_str(), get(err, "event.outcome").as_str()), (Some("Error"), Some("failure")));
    assert!(value(err).starts_with("WRONGTYPE"));
    assert_eq!(value(find(events, "EXEC")), "[OK, 2]");
    assert_eq!(value(find(events, "SUBSCRIBE news")), "[subscribe, news, 1]");
    assert_eq!(value(find(events, "PUBLISH news again")), "1");
    assert_eq!(value(find(events, "HGETALL h3")), "{f: 1, g: 2}");
    assert_eq!(value(find(events, "ZSCORE z3 m")), "1.5");
    assert_eq!(value(find(events, "HGETALL h3py")), "{f: 1, g: 2}");
    assert_eq!(value(find(events, "ZSCORE z3py m")), "1.5");
    assert_eq!(value(find(events, "EVAL redis.setresp(3); return true 0")), "true");
    assert!(events.iter().any(|e| get(e, "method") == "HELLO" && value(e).starts_with("{server: redis")));
    assert!(value(find(events, "INFO server")).starts_with("# Server"));
    assert!(value(find(events, "SUBSCRIBE ch3")).starts_with("[subscribe, ch3, 1]"));
    let benchmark_sets = events.iter().filter(|e| get(e, "query") == "SET key:__rand_int__ VXK").count();
    assert_eq!(benchmark_sets, 2000);
}

/// What must be equal between live and replay for one transaction (timestamps differ by source).
fn fingerprint(e: &Value) -> String {
    let keys = [
        "client.port",
        "method",
        "resource",
        "query",
        "status",
        "redis.return_value",
        "redis.error",
        "source.bytes",
        "destination.bytes",
    ];
    keys.iter().map(|k| get(e, k).to_string()).collect::<Vec<_>>().join("|")
}

#[test]
fn live_ebpf_ring_and_replay_agree() {
    if !is_root() {
        eprintln!("skipped: live capture needs root (CAP_BPF, CAP_NET_RAW)");
        return;
    }
    for tool in ["redis-server", "redis-cli", "redis-benchmark", "tcpdump", "python3"] {
        assert!(have(tool), "{tool} is needed (cargo xtask test installs it)");
    }
    let dir = temp_dir("redis");
    let port = free_port();
    let server = RedisServer::start(&dir, port);
    let before = server.command_stats();

    let dump = Tcpdump::start(&dir, &[port]);
    let agent = LiveAgent::start_with(&dir, "ebpf", &format!("[{{type: redis, ports: [{port}]}}]"), &[]);
    drive(&server);
    let (live, log) = agent.stop();
    let pcap = dump.stop();
    let mut expected = stats_delta(&before, &server.command_stats());
    drop(server);
    // The INFO that took the first snapshot is counted in the second one; it was not captured.
    if let Some(info) = expected.get_mut("info") {
        info.0 -= 1;
    }
    expected.retain(|_, (n, _)| *n > 0);
    assert!(expected.get("set").is_some_and(|s| s.0 >= 2001), "{expected:?}");

    check_events(&live, &expected, port);
    assert!(log.contains("counters:"), "no counters in the log:\n{log}");

    let config = format!("packetbeat.protocols:\n  - {{type: redis, ports: [{port}]}}\n");
    let r = replay(&pcap, &config, Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "replay failed:\n{}", r.stderr);
    check_events(&r.events, &expected, port);
    let mut a: Vec<String> = live.iter().map(fingerprint).collect();
    let mut b: Vec<String> = r.events.iter().map(fingerprint).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "live and replay differ");
}
