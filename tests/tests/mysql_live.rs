//! MySQL end to end: a real MariaDB on loopback, driven by the `mariadb` command-line client (text
//! protocol: DDL, INSERT/UPDATE/DELETE/SELECT, an error, a multi-statement query, LOAD DATA LOCAL
//! INFILE) and by mysql-connector-python with server-side prepared statements (int, float, decimal,
//! string, blob, date and NULL parameters, a re-executed statement, a failing prepare). The agent
//! captures live through the eBPF ring while tcpdump records the same traffic; the replay of that
//! capture must give the same transactions, and both must be exactly the ones the clients performed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use packetbeat_tests::mysql_server::MariaDb;
use packetbeat_tests::{free_port, get, have, is_root, replay, temp_dir, LiveAgent, Tcpdump};
use serde_json::Value;

/// What identifies a transaction: query, method, params, rows, affected rows, error code, notes.
type Key = (String, String, String, u64, u64, u64, String);

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join("|"),
        other => other.to_string(),
    }
}

fn key(e: &Value) -> Key {
    (
        text(get(e, "query")),
        text(get(e, "method")),
        text(get(e, "params")),
        get(e, "mysql.num_rows").as_u64().unwrap_or(u64::MAX),
        get(e, "mysql.affected_rows").as_u64().unwrap_or(u64::MAX),
        get(e, "mysql.error_code").as_u64().unwrap_or(0),
        text(get(e, "error.message")),
    )
}

fn k(query: &str, method: &str, params: &str, rows: u64, affected: u64, error: u64, notes: &str) -> Key {
    (query.into(), method.into(), params.into(), rows, affected, error, notes.into())
}

const TABLE: &str =
    "CREATE TABLE items (i INT PRIMARY KEY, f DOUBLE, d DECIMAL(10,2), s VARCHAR(20), b BLOB, dt DATE, n INT)";
const MULTI: &str = "SELECT 1; SELECT 2, 3; UPDATE items SET f = 0.5";
const INSERT_P: &str = "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)";
const SELECT_P: &str = "SELECT i, s, dt FROM items WHERE i > ? ORDER BY i";
const MISSING_P: &str = "INSERT INTO nope VALUES (?)";

const DRIVER: &str = r#"
import datetime, decimal, sys
import mysql.connector
c = mysql.connector.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", database="app",
                            use_pure=True, autocommit=True, connection_timeout=10)
cur = c.cursor(prepared=True)
cur.execute(sys.argv[2], (42, 1.5, decimal.Decimal("12.34"), "hello", b"\x00\x01\xff", datetime.date(2024, 2, 29), None))
cur.execute(sys.argv[3], (1,))
print(len(cur.fetchall()))
cur.execute(sys.argv[3], (40,))
print(len(cur.fetchall()))
try:
    cur.execute(sys.argv[4], (1,))
except mysql.connector.Error as e:
    print("error", e.errno)
cur.close()
c.close()
"#;

/// Drives every client scenario; returns the transactions the clients performed.
fn drive(db: &MariaDb, dir: &Path) -> Vec<Key> {
    let (ok, out) = db.client(None, "CREATE DATABASE app");
    assert!(ok, "{out}");
    let (ok, out) = db.client(
        Some("app"),
        &format!(
            "{TABLE};\nINSERT INTO items (i, s) VALUES (1, 'one'), (2, 'two'), (3, 'three');\n\
             UPDATE items SET s = 'uno' WHERE i = 1;\nDELETE FROM items WHERE i = 3;\n\
             SELECT i, s FROM items ORDER BY i;\nSELECT * FROM nope;\n"
        ),
    );
    assert!(!ok && out.contains("1146"), "the last statement must fail: {out}");
    let tsv = dir.join("items.tsv");
    std::fs::write(&tsv, "10\tten\n11\televen\n").unwrap();
    let load = format!("LOAD DATA LOCAL INFILE '{}' INTO TABLE items (i, s)", tsv.display());
    let (ok, out) = db.client(Some("app"), &format!("DELIMITER //\n{MULTI}//\nDELIMITER ;\n{load};\n"));
    assert!(ok, "{out}");
    let script = dir.join("driver.py");
    std::fs::write(&script, DRIVER).unwrap();
    let py = Command::new("python3")
        .arg(&script)
        .arg(db.port.to_string())
        .args([INSERT_P, SELECT_P, MISSING_P])
        .output()
        .expect("python3");
    let py_out = String::from_utf8_lossy(&py.stdout);
    assert!(py.status.success(), "driver failed: {py_out}{}", String::from_utf8_lossy(&py.stderr));
    assert_eq!(py_out.split_whitespace().collect::<Vec<_>>(), ["4", "1", "error", "1146"], "driver output");

    let prepared = "Request Prepare Statement";
    vec![
        k("CREATE DATABASE app", "CREATE", "", 0, 1, 0, ""),
        k(TABLE, "CREATE", "", 0, 0, 0, ""),
        k("INSERT INTO items (i, s) VALUES (1, 'one'), (2, 'two'), (3, 'three')", "INSERT", "", 0, 3, 0, ""),
        k("UPDATE items SET s = 'uno' WHERE i = 1", "UPDATE", "", 0, 1, 0, ""),
        k("DELETE FROM items WHERE i = 3", "DELETE", "", 0, 1, 0, ""),
        k("SELECT i, s FROM items ORDER BY i", "SELECT", "", 2, 0, 0, ""),
        k("SELECT * FROM nope", "SELECT", "", 0, 0, 1146, ""),
        k(MULTI, "SELECT", "", 2, 2, 0, ""),
        k(&load, "LOAD", "", 0, 2, 0, ""),
        k(prepared, "INSERT", "", 0, 0, 0, INSERT_P),
        k(INSERT_P, "INSERT", "42|1.5|12.34|hello|0x0001ff|2024-02-29|NULL", 0, 1, 0, ""),
        k(prepared, "SELECT", "", 0, 0, 0, SELECT_P),
        k(SELECT_P, "SELECT", "1", 4, 0, 0, ""),
        k(SELECT_P, "SELECT", "40", 1, 0, 0, ""),
        k(MISSING_P, "INSERT", "", 0, 0, 1146, ""),
    ]
}

/// The connector's own session setup (`SET NAMES`, `SET @@session.autocommit`): allowed, must be OK.
fn is_housekeeping(e: &Value) -> bool {
    get(e, "query").as_str().is_some_and(|q| q.starts_with("SET ")) && get(e, "status") == "OK"
}

fn tally(keys: impl IntoIterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut t = BTreeMap::new();
    for k in keys {
        *t.entry(k).or_default() += 1;
    }
    t
}

fn check_events(events: &[Value], expected: &[Key], port: u16) {
    for e in events {
        assert_eq!(get(e, "type"), "mysql", "{e}");
        assert_eq!(get(e, "server.port").as_u64(), Some(u64::from(port)), "{e}");
        assert!(get(e, "event.duration").as_u64().is_some(), "no duration: {e}");
        assert!(get(e, "source.bytes").as_u64().is_some_and(|b| b > 4), "{e}");
        assert!(get(e, "destination.bytes").as_u64().is_some_and(|b| b > 4), "{e}");
        let error = get(e, "mysql.error_code").as_u64().is_some();
        assert_eq!(get(e, "status"), if error { "Error" } else { "OK" }, "{e}");
    }
    let got = tally(events.iter().filter(|e| !is_housekeeping(e)).map(key));
    assert_eq!(got, tally(expected.iter().cloned()), "transactions differ");
    let err = events.iter().find(|e| get(e, "query") == "SELECT * FROM nope").unwrap();
    assert_eq!(get(err, "mysql.error_message"), "42S02: Table 'app.nope' doesn't exist");
    let select = events.iter().find(|e| get(e, "query") == "SELECT i, s FROM items ORDER BY i").unwrap();
    assert_eq!(get(select, "path"), "app.items");
    assert_eq!(get(select, "response"), "i,s\n1,uno\n2,two\n");
    let rows = events.iter().find(|e| get(e, "params") == &serde_json::json!(["40"])).unwrap();
    assert_eq!(get(rows, "response"), "i,s,dt\n42,hello,2024-02-29\n");
}

/// What must be equal between live and replay for one transaction (timestamps differ by source).
fn fingerprint(e: &Value) -> String {
    let keys = [
        "client.port",
        "query",
        "params",
        "mysql",
        "status",
        "source.bytes",
        "destination.bytes",
        "error.message",
        "path",
        "response",
    ];
    keys.iter().map(|k| get(e, k).to_string()).collect::<Vec<_>>().join("|")
}

#[test]
fn live_ebpf_ring_and_replay_agree() {
    if !is_root() {
        eprintln!("skipped: live capture needs root (CAP_BPF, CAP_NET_RAW)");
        return;
    }
    assert!(
        MariaDb::available() && have("tcpdump") && have("python3"),
        "mariadb-server, mariadb-client, tcpdump and python3 are needed (cargo xtask test installs them)"
    );
    let dir = temp_dir("mysql");
    let port = free_port();
    let db = MariaDb::start(&dir, port);

    let protocols = format!("[{{type: mysql, ports: [{port}], send_response: true}}]");
    let dump = Tcpdump::start(&dir, &[port]);
    let agent = LiveAgent::start_with(&dir, "ebpf", &protocols, &[]);
    let expected = drive(&db, &dir);
    let (live, log) = agent.stop();
    let pcap = dump.stop();
    drop(db);

    check_events(&live, &expected, port);
    assert!(log.contains("mysql.transactions="), "no mysql counters in the log:\n{log}");
    assert!(!log.contains("mysql.parse_errors="), "parse errors:\n{log}");

    let config = format!("packetbeat.protocols:\n  - {{type: mysql, ports: [{port}], send_response: true}}\n");
    let r = replay(&pcap, &config, Duration::from_secs(60));
    assert_eq!(r.code, Some(0), "replay failed:\n{}", r.stderr);
    check_events(&r.events, &expected, port);
    let mut a: Vec<String> = live.iter().map(fingerprint).collect();
    let mut b: Vec<String> = r.events.iter().map(fingerprint).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "live and replay differ");
}
