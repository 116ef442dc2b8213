//! PostgreSQL end to end: a real PostgreSQL 15 server on loopback, real clients (psql with simple
//! and multi-statement queries, errors and COPY; pgbench in extended and prepared modes; psycopg 3
//! in pipeline mode with text and binary parameters), the agent capturing live through the eBPF
//! ring, and a replay of tcpdump's capture of the same traffic. Both must give exactly the
//! transactions the clients performed: query, params, rows and error codes.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use packetbeat_tests::pgsql_server::{self, PgServer};
use packetbeat_tests::{free_port, get, have, is_root, replay, temp_dir, LiveAgent, Tcpdump};
use serde_json::{json, Value};

/// (query, params, num_rows, error_code) → how many times.
type Tally = BTreeMap<(String, String, u64, String), usize>;

fn key(query: &str, params: &Value, rows: u64, code: &str) -> (String, String, u64, String) {
    (query.to_owned(), params.to_string(), rows, code.to_owned())
}

fn tally(events: &[Value]) -> Tally {
    let mut t = Tally::new();
    for e in events {
        let k = key(
            get(e, "query").as_str().unwrap_or("-"),
            get(e, "params"),
            get(e, "pgsql.num_rows").as_u64().unwrap_or(u64::MAX),
            get(e, "pgsql.error_code").as_str().unwrap_or(""),
        );
        *t.entry(k).or_default() += 1;
    }
    t
}

const PGBENCH_SCRIPT: &str =
    "\\set id 1\nSELECT name FROM t WHERE id = :id;\nUPDATE t SET name = name WHERE id = :id;\n";
const PGBENCH_RUNS: usize = 10;

const PSYCOPG_SCRIPT: &str = r#"
import datetime, decimal, sys
import psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    cur = conn.cursor()
    with conn.pipeline():
        cur.execute("INSERT INTO t (id, name) VALUES (%s, %s)", (10, "ten"))
        cur.execute("SELECT %s::int + 1, %s::text, %s::float8, %s::bool, %s::date",
                    (41, "x", 1.5, True, datetime.date(2024, 1, 2)))
        cur.execute("SELECT id, name FROM t WHERE id = %b", (10,))
        cur.execute("SELECT %b::numeric, %b::text, %b::int8", (decimal.Decimal("12.5"), "bin", 5000000000))
        cur.executemany("INSERT INTO t (id, name) VALUES (%s, %s)", [(100 + i, None) for i in range(20)])
    try:
        with conn.pipeline():
            cur.execute("SELECT * FROM missing_table WHERE id = %s", (1,))
    except psycopg.errors.UndefinedTable:
        pass
"#;

/// Drives every client; returns the transactions they performed.
fn drive(pg: &PgServer, dir: &std::path::Path) -> Tally {
    let mut t = Tally::new();
    let mut add = |q: &str, params: Value, rows: u64, code: &str, n: usize| {
        *t.entry(key(q, &params, rows, code)).or_default() += n
    };
    let none = Value::Null;

    // psql: simple queries, one multi-statement Query, two errors, COPY in and out.
    let _ = pg.psql(&["-c", "CREATE TABLE t (id int PRIMARY KEY, name text)"], "");
    add("CREATE TABLE t (id int PRIMARY KEY, name text)", none.clone(), 0, "", 1);
    let _ = pg.psql(
        &["-c", "INSERT INTO t VALUES (1, 'one'), (2, 'two;2'); SELECT * FROM t ORDER BY id; SELECT count(*) FROM t"],
        "",
    );
    add("INSERT INTO t VALUES (1, 'one'), (2, 'two;2')", none.clone(), 0, "", 1);
    add("SELECT * FROM t ORDER BY id", none.clone(), 2, "", 1);
    add("SELECT count(*) FROM t", none.clone(), 1, "", 1);
    let _ = pg.psql(&["-c", "SELECT * FROM nope"], "");
    add("SELECT * FROM nope", none.clone(), 0, "42P01", 1);
    let _ = pg.psql(&["-c", "INSERT INTO t VALUES (1, 'dup')"], "");
    add("INSERT INTO t VALUES (1, 'dup')", none.clone(), 0, "23505", 1);
    let _ = pg.psql(&["-c", "COPY t FROM STDIN"], "3\tthree\n4\tfour\n\\.\n");
    add("COPY t FROM STDIN", none.clone(), 0, "", 1);
    let out = pg.psql(&["-c", "COPY t TO STDOUT"], "");
    assert_eq!(out.lines().count(), 4, "COPY TO STDOUT gave {out:?}");
    add("COPY t TO STDOUT", none, 4, "", 1);

    // pgbench: extended (unnamed statements) and prepared (named, parsed once per connection). It
    // sends each script line as written, with its `;`.
    let script = dir.join("bench.sql");
    std::fs::write(&script, PGBENCH_SCRIPT).expect("script");
    let script = script.display().to_string();
    for mode in ["extended", "prepared"] {
        pg.pgbench(&["-n", "-c", "1", "-t", &PGBENCH_RUNS.to_string(), "-M", mode, "-f", &script]);
        add("SELECT name FROM t WHERE id = $1;", json!(["1"]), 1, "", PGBENCH_RUNS);
        add("UPDATE t SET name = name WHERE id = $1;", json!(["1"]), 0, "", PGBENCH_RUNS);
    }

    // psycopg 3 pipeline mode: text and binary parameters of several types, executemany, an error.
    let out = Command::new("python3").arg("-c").arg(PSYCOPG_SCRIPT).arg(pg.conninfo()).output().expect("python3");
    assert!(out.status.success(), "psycopg script failed: {}", String::from_utf8_lossy(&out.stderr));
    add("INSERT INTO t (id, name) VALUES ($1, $2)", json!(["10", "ten"]), 0, "", 1);
    add(
        "SELECT $1::int + 1, $2::text, $3::float8, $4::bool, $5::date",
        json!(["41", "x", "1.5", "t", "2024-01-02"]),
        1,
        "",
        1,
    );
    add("SELECT id, name FROM t WHERE id = $1", json!(["10"]), 1, "", 1);
    add("SELECT $1::numeric, $2::text, $3::int8", json!(["12.5", "bin", "5000000000"]), 1, "", 1);
    for i in 0..20 {
        add("INSERT INTO t (id, name) VALUES ($1, $2)", json!([(100 + i).to_string(), null]), 0, "", 1);
    }
    add("SELECT * FROM missing_table WHERE id = $1", json!(["1"]), 0, "42P01", 1);
    t
}

/// What must be equal between live and replay for one transaction (timestamps differ by source).
fn fingerprint(e: &Value) -> String {
    let keys = [
        "client.port",
        "server.port",
        "method",
        "query",
        "params",
        "status",
        "source.bytes",
        "destination.bytes",
        "pgsql.num_rows",
        "pgsql.num_fields",
        "pgsql.error_code",
        "pgsql.error_severity",
        "error.message",
    ];
    keys.iter().map(|k| get(e, k).to_string()).collect::<Vec<_>>().join("|")
}

fn check_events(events: &[Value], expected: &Tally, port: u16) {
    for e in events {
        assert_eq!(get(e, "type"), "pgsql", "{e}");
        assert_eq!(get(e, "server.port").as_u64(), Some(u64::from(port)), "{e}");
        assert!(get(e, "event.duration").as_u64().is_some(), "no duration: {e}");
        assert_eq!(get(e, "error"), &Value::Null, "unexpected note: {e}");
        let failed = get(e, "pgsql.error_code").is_string();
        assert_eq!(get(e, "status"), if failed { "Error" } else { "OK" }, "{e}");
    }
    let got = tally(events);
    if &got != expected {
        let missing: Vec<_> = expected.iter().filter(|(k, n)| got.get(*k) != Some(n)).collect();
        let extra: Vec<_> = got.iter().filter(|(k, n)| expected.get(*k) != Some(n)).collect();
        panic!("transactions differ\nexpected but not seen: {missing:#?}\nseen but not expected: {extra:#?}");
    }
    let e = events.iter().find(|e| get(e, "pgsql.error_code") == "42P01").expect("42P01");
    assert_eq!(get(e, "pgsql.error_severity"), "ERROR");
    assert!(get(e, "pgsql.error_message").as_str().is_some_and(|m| m.contains("does not exist")), "{e}");
}

#[test]
fn live_ebpf_ring_and_replay_agree_with_real_clients() {
    if !is_root() {
        eprintln!("skipped: live capture needs root (CAP_BPF, CAP_NET_RAW)");
        return;
    }
    if !pgsql_server::available() || !have("tcpdump") || !have("psql") || !have("pgbench") {
        eprintln!("skipped: needs postgresql-15, psql, pgbench and tcpdump (cargo xtask test installs them)");
        return;
    }
    let ok = Command::new("python3").args(["-c", "import psycopg"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "psycopg 3 is needed: python3 -m pip install 'psycopg[binary]' (cargo xtask test installs it)");
    let dir = temp_dir("pgsql");
    let port = free_port();
    let pg = PgServer::start(&dir, port);

    let dump = Tcpdump::start(&dir, &[port]);
    let agent = LiveAgent::start_with(&dir, "ebpf", &format!("[{{type: pgsql, ports: [{port}]}}]"), &[]);
    let expected = drive(&pg, &dir);
    let (live, log) = agent.stop();
    let pcap = dump.stop();
    drop(pg);

    check_events(&live, &expected, port);
    assert!(log.contains("counters:"), "no counters in the log:\n{log}");

    let config = format!("packetbeat.protocols:\n  - {{type: pgsql, ports: [{port}]}}\n");
    let r = replay(&pcap, &config, Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "replay failed:\n{}", r.stderr);
    check_events(&r.events, &expected, port);
    let mut a: Vec<String> = live.iter().map(fingerprint).collect();
    let mut b: Vec<String> = r.events.iter().map(fingerprint).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "live and replay differ");
}
