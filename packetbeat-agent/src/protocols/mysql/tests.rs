//! Stream-level tests of the MySQL decoder: byte fixtures fed through [`MysqlState`] the way the
//! flow layer does (the unconsumed tail is presented again with the next bytes).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::parser::{CLIENT_DEPRECATE_EOF, CLIENT_PROTOCOL_41, CLIENT_SSL, MYSQL_MAX_PACKET_LEN};
use super::state::MYSQL_MAX_PENDING;
use super::{MysqlConfig, MysqlState};
use crate::event::{Status, Transaction};
use crate::protocols::testing::StreamHarness;
use crate::protocols::{ConnInfo, Direction, ProtoStats};
use crate::time::Timestamp;

use super::fixtures::*;

const C2S: Direction = Direction::ToServer;
const S2C: Direction = Direction::ToClient;

/// The flow layer, reduced to what the protocol sees.
type Harness = StreamHarness<MysqlState>;

impl Harness {
    fn new(cfg: MysqlConfig) -> Self {
        Self::with(
            MysqlState::new(Arc::new(cfg)),
            ConnInfo {
                client_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                client_port: 40000,
                server_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                server_port: 3306,
            },
        )
    }

    fn default() -> Self {
        Self::new(MysqlConfig::default())
    }

    fn at(&mut self, millis: u64) -> &mut Self {
        self.ts = Timestamp(Timestamp::from_parts(1_700_000_000, 0).0 + millis * 1_000_000);
        self
    }
}

fn f<'a>(tx: &'a Transaction, key: &str) -> Option<&'a Value> {
    tx.fields.get(key)
}

// ---------------------------------------------------------------- connection phase

#[test]
fn handshake_auth_switch_and_first_query() {
    let mut h = Harness::default();
    h.feed(S2C, &handshake());
    h.feed(C2S, &handshake_response(CLIENT_PROTOCOL_41 | 0x000f_a685));
    h.feed(S2C, &pkt(2, b"\xfemysql_native_password\0abcdefghijklmnopqrst\0"));
    h.feed(C2S, &pkt(3, &[9; 20]));
    h.feed(S2C, &ok(4, 0, 0, 2));
    h.at(5).feed(C2S, &query("SELECT DATABASE()"));
    h.at(7).feed(S2C, &result_set(&[("", "", "DATABASE()")], &[vec![None]], false, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!(tx.query.as_deref(), Some("SELECT DATABASE()"));
    assert_eq!(tx.method.as_deref(), Some("SELECT"));
    assert_eq!(f(tx, "mysql.num_rows"), Some(&json!(1)));
    assert_eq!(f(tx, "mysql.num_fields"), Some(&json!(1)));
    assert_eq!(f(tx, "path"), None);
    assert_eq!(tx.status, Status::Ok);
    assert_eq!(tx.end.and_then(|e| e.since(tx.ts)), Some(2_000_000));
    assert_eq!((h.stats.unmatched_responses, h.stats.parse_errors), (0, 0));
}

#[test]
fn ssl_request_makes_the_connection_opaque() {
    let mut h = Harness::default();
    h.feed(S2C, &handshake());
    let mut p = (CLIENT_PROTOCOL_41 | CLIENT_SSL).to_le_bytes().to_vec();
    p.extend_from_slice(&[0; 28]);
    h.feed(C2S, &pkt(1, &p));
    assert!(h.state.is_opaque());
    h.feed(C2S, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
    h.feed(C2S, &query("SELECT 1"));
    h.feed(S2C, &ok(1, 0, 0, 2));
    assert!(h.take().is_empty());
    assert_eq!(h.stats.parse_errors, 0);
}

#[test]
fn tls_seen_at_a_midstream_pickup_is_ignored() {
    let mut h = Harness::default();
    h.gap(C2S, 0).gap(S2C, 0);
    h.feed(C2S, b"\x17\x03\x03\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert!(h.state.is_opaque());
    h.feed(C2S, &query("SELECT 1")).feed(S2C, &ok(1, 0, 0, 2));
    assert!(h.take().is_empty());
}

// ---------------------------------------------------------------- text protocol

#[test]
fn ok_err_and_trimmed_method() {
    let mut h = Harness::default();
    h.feed(C2S, &query("\r\n  update t set a=1\r\n")).feed(S2C, &ok(1, 200, 0, 2));
    h.feed(C2S, &query("insert into t values (1)")).feed(S2C, &ok(1, 1, 42, 2));
    h.feed(C2S, &query("select * from x")).feed(S2C, &err(1, 1046, "3D000", "No database selected"));
    let txs = h.take();
    assert_eq!(txs.len(), 3);
    assert_eq!(txs[0].method.as_deref(), Some("UPDATE"));
    assert_eq!(txs[0].query.as_deref(), Some("update t set a=1"));
    assert_eq!(f(&txs[0], "mysql.affected_rows"), Some(&json!(200)));
    assert_eq!(f(&txs[0], "mysql.error_code"), None);
    assert_eq!(f(&txs[1], "mysql.insert_id"), Some(&json!(42)));
    assert_eq!(txs[2].status, Status::Error);
    assert_eq!(f(&txs[2], "mysql.error_code"), Some(&json!(1046)));
    assert_eq!(f(&txs[2], "mysql.error_message"), Some(&json!("3D000: No database selected")));
    assert_eq!(txs[0].request_bytes, Some(4 + 1 + 22));
    assert_eq!(txs[0].response_bytes, Some(4 + 7));
}

#[test]
fn result_set_with_and_without_deprecate_eof() {
    for deprecate in [false, true] {
        let cfg = MysqlConfig { send_response: true, send_request: true, ..MysqlConfig::default() };
        let mut h = Harness::new(cfg);
        let rows = vec![vec![Some("1"), Some("a,b")], vec![Some("2"), None]];
        let resp = result_set(&[("db", "t1", "id"), ("db", "t2", "name")], &rows, deprecate, 0x0022);
        h.feed(C2S, &query("select id, name from t1 join t2")).feed(S2C, &resp);
        let txs = h.take();
        assert_eq!(txs.len(), 1, "deprecate_eof {deprecate}");
        let tx = &txs[0];
        assert_eq!(f(tx, "mysql.num_rows"), Some(&json!(2)));
        assert_eq!(f(tx, "mysql.num_fields"), Some(&json!(2)));
        assert_eq!(f(tx, "path"), Some(&json!("db.t1, db.t2")));
        assert_eq!(tx.response.as_deref(), Some("id,name\n1,\"a,b\"\n2,NULL\n"));
        assert_eq!(tx.request.as_deref(), Some("select id, name from t1 join t2"));
        assert_eq!(tx.response_bytes, Some(resp.len() as u64));
        // Empty result set: under DEPRECATE_EOF the OK comes right after the columns.
        h.feed(C2S, &query("select id from t1 where 0"))
            .feed(S2C, &result_set(&[("db", "t1", "id")], &[], deprecate, 2));
        let txs = h.take();
        assert_eq!(txs.len(), 1);
        assert_eq!(f(&txs[0], "mysql.num_rows"), Some(&json!(0)));
        assert_eq!(h.stats.parse_errors, 0);
    }
}

#[test]
fn max_rows_and_max_row_length_cut_like_packetbeat() {
    let cfg = MysqlConfig { send_response: true, max_rows: 2, max_row_length: 5, ..MysqlConfig::default() };
    let mut h = Harness::new(cfg);
    let rows: Vec<Vec<Option<&str>>> = (0..4).map(|_| vec![Some("abc"), Some("defg"), Some("h")]).collect();
    h.feed(C2S, &query("select a,b,c from t"))
        .feed(S2C, &result_set(&[("d", "t", "a"), ("d", "t", "b"), ("d", "t", "c")], &rows, false, 2));
    let tx = &h.take()[0];
    assert_eq!(f(tx, "mysql.num_rows"), Some(&json!(4)));
    assert_eq!(tx.response.as_deref(), Some("a,b,c\nabc,de\nabc,de\n"));
}

#[test]
fn multi_statement_and_multi_result_make_one_transaction() {
    let mut h = Harness::default();
    h.feed(C2S, &query("insert into t values (1); select a from t; update t set a=2"));
    let mut resp = ok(1, 1, 7, 0x000a);
    let mut rs = result_set(&[("d", "t", "a")], &[vec![Some("1")], vec![Some("2")]], false, 0x000a);
    // Renumber the result set after the OK (sequence ids continue).
    let mut at = 0;
    let mut seq = 2u8;
    while at < rs.len() {
        let len = usize::from(rs[at]) | usize::from(rs[at + 1]) << 8;
        rs[at + 3] = seq;
        seq += 1;
        at += 4 + len;
    }
    resp.extend(rs);
    resp.extend(ok(seq, 3, 0, 0x0002));
    h.feed(S2C, &resp);
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(f(&txs[0], "mysql.affected_rows"), Some(&json!(4)));
    assert_eq!(f(&txs[0], "mysql.insert_id"), Some(&json!(7)));
    assert_eq!(f(&txs[0], "mysql.num_rows"), Some(&json!(2)));
    assert_eq!(f(&txs[0], "mysql.num_fields"), Some(&json!(1)));
    assert_eq!(h.stats.parse_errors, 0);
}

#[test]
fn multi_packet_payloads_stream_through() {
    // A 16 MiB + 10 query and a 16 MiB + 100 row, fed in odd chunks: framed, not held.
    let big = MYSQL_MAX_PACKET_LEN as usize;
    let mut q = vec![0x03];
    q.extend_from_slice(b"INSERT INTO blobs VALUES ('");
    q.resize(big + 10, b'x');
    let mut req = pkt(0, q.get(..big).unwrap());
    req.extend(pkt(1, q.get(big..).unwrap()));
    let mut row = vec![0xfe];
    row.extend_from_slice(&(u64::try_from(big).unwrap() + 90).to_le_bytes());
    row.resize(big + 100, b'y');
    let mut resp = pkt(1, &[1]);
    resp.extend(column(2, "d", "blobs", "b", 0xfc));
    resp.extend(eof(3, 2));
    resp.extend(pkt(4, row.get(..big).unwrap()));
    resp.extend(pkt(5, row.get(big..).unwrap()));
    resp.extend(eof(6, 2));
    let mut h = Harness::default();
    for chunk in req.chunks(65_521) {
        h.feed(C2S, chunk);
    }
    h.feed(S2C, &ok(2, 1, 0, 2));
    for chunk in resp.chunks(99_991) {
        h.feed(S2C, chunk);
    }
    h.feed(C2S, &query("select b from blobs"));
    for chunk in resp.chunks(1_000_003) {
        h.feed(S2C, chunk);
    }
    let txs = h.take();
    assert!(h.max_buffered <= super::state::MYSQL_MAX_PACKET_VIEW + 4, "{}", h.max_buffered);
    assert_eq!(txs.len(), 2, "{txs:?}");
    assert_eq!(txs[0].method.as_deref(), Some("INSERT"));
    assert_eq!(txs[0].request_bytes, Some(req.len() as u64));
    assert_eq!(f(&txs[0], "mysql.affected_rows"), Some(&json!(1)));
    assert_eq!(f(&txs[1], "mysql.num_rows"), Some(&json!(1)));
    assert_eq!(txs[1].response_bytes, Some(resp.len() as u64));
    assert_eq!(h.stats.parse_errors, 0);
    assert!(h.stats.oversize_messages >= 2);
}

#[test]
fn local_infile_request_is_recognised() {
    let mut h = Harness::default();
    h.feed(C2S, &query("LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t"));
    h.feed(S2C, &pkt(1, b"\xfb/tmp/x.csv"));
    h.feed(C2S, &pkt(2, b"1,a\n2,b\n")).feed(C2S, &pkt(3, b""));
    // MariaDB reports progress before the OK.
    h.feed(S2C, &pkt(4, b"\xff\xff\xff\x01\x02\x02\x00\x00\x00\x0fEnd bulk insert"));
    h.feed(S2C, &ok(5, 2, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].method.as_deref(), Some("LOAD"));
    assert_eq!(f(&txs[0], "mysql.affected_rows"), Some(&json!(2)));
    assert_eq!(h.stats.parse_errors + h.stats.unmatched_responses, 0);
}

#[test]
fn mariadb_progress_reports_are_not_errors() {
    let mut h = Harness::default();
    h.feed(C2S, &query("alter table t add c int"));
    h.feed(S2C, &pkt(1, b"\xff\xff\xff\x01\x01\x02\x00\x10\x00\x00\x05stage"));
    h.feed(S2C, &ok(2, 0, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].status, Status::Ok);
}

#[test]
fn ignored_commands_consume_their_responses() {
    let mut h = Harness::default();
    h.feed(C2S, &pkt(0, b"\x02test")).feed(S2C, &ok(1, 0, 0, 2)); // COM_INIT_DB
    h.feed(C2S, &pkt(0, b"\x0e")).feed(S2C, &ok(1, 0, 0, 2)); // COM_PING
    h.feed(C2S, &pkt(0, b"\x04t\0")).feed(S2C, &column(1, "d", "t", "a", 3)).feed(S2C, &eof(2, 2)); // COM_FIELD_LIST
    h.feed(C2S, &query("select 1")).feed(S2C, &result_set(&[("", "", "1")], &[vec![Some("1")]], false, 2));
    h.feed(C2S, &pkt(0, b"\x01")); // COM_QUIT
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].query.as_deref(), Some("select 1"));
    assert_eq!((h.stats.unmatched_responses, h.stats.parse_errors, h.state.pending_commands()), (0, 0, 0));
}

// ---------------------------------------------------------------- prepared statements

#[test]
fn prepare_execute_close_per_connection() {
    let cfg = MysqlConfig { send_response: true, ..MysqlConfig::default() };
    let mut h = Harness::new(cfg.clone());
    h.feed(C2S, &prepare("SELECT c0, c1 FROM t WHERE a = ? AND b = ? AND c = ? AND d = ?"));
    h.feed(S2C, &prepare_ok(7, 4, 2, false));
    // LONGLONG 5, DOUBLE 2.5, VAR_STRING "A1224638", NULL (bit 3).
    let mut values = 5i64.to_le_bytes().to_vec();
    values.extend_from_slice(&2.5f64.to_le_bytes());
    values.extend(lenenc(b"A1224638"));
    h.feed(C2S, &execute(7, &[0x08, 0x05, 0xfd, 0x06], &values, 0b1000));
    let mut resp = pkt(1, &[2]);
    resp.extend(column(2, "db", "t", "c0", 0x08));
    resp.extend(column(3, "db", "t", "c1", 0xfd));
    resp.extend(eof(4, 2));
    let mut row = vec![0x00, 0b0000_0000];
    row.extend_from_slice(&9i64.to_le_bytes());
    row.extend(lenenc(b"hi"));
    resp.extend(pkt(5, &row));
    resp.extend(pkt(6, &[0x00, 0b0000_1000, 1, 0, 0, 0, 0, 0, 0, 0]));
    resp.extend(eof(7, 2));
    h.feed(S2C, &resp);
    // Reset, close, then the id is unknown.
    h.feed(C2S, &pkt(0, &[0x1a, 7, 0, 0, 0])).feed(S2C, &ok(1, 0, 0, 2));
    h.feed(C2S, &pkt(0, &[0x19, 7, 0, 0, 0]));
    assert_eq!(h.state.statements(), 0);
    h.feed(C2S, &execute(7, &[], &[], 0)).feed(S2C, &ok(1, 0, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 3, "{txs:#?}");
    assert_eq!(txs[0].query.as_deref(), Some("Request Prepare Statement"));
    assert_eq!(txs[0].method.as_deref(), Some("SELECT"));
    assert_eq!(txs[0].notes, ["SELECT c0, c1 FROM t WHERE a = ? AND b = ? AND c = ? AND d = ?"]);
    assert_eq!(f(&txs[0], "mysql.num_fields"), Some(&json!(2)));
    assert_eq!(f(&txs[0], "path"), Some(&json!("db.t")));
    assert_eq!(txs[1].query.as_deref(), Some("SELECT c0, c1 FROM t WHERE a = ? AND b = ? AND c = ? AND d = ?"));
    assert_eq!(f(&txs[1], "params"), Some(&json!(["5", "2.5", "A1224638", "NULL"])));
    assert_eq!(f(&txs[1], "mysql.num_rows"), Some(&json!(2)));
    assert_eq!(txs[1].response.as_deref(), Some("c0,c1\n9,hi\n1,NULL\n"));
    assert_eq!(txs[2].query.as_deref(), Some("Request Execute Statement"));
    assert_eq!(txs[2].notes, ["The actual query being used is unknown"]);
    assert_eq!(txs[2].method, None);
    assert_eq!((h.stats.unmatched_responses, h.stats.parse_errors), (0, 0));

    // Statement ids belong to their connection.
    let mut other = Harness::new(cfg);
    other.feed(C2S, &execute(7, &[0x08], &5i64.to_le_bytes(), 0)).feed(S2C, &ok(1, 0, 0, 2));
    assert_eq!(other.take()[0].query.as_deref(), Some("Request Execute Statement"));
}

#[test]
fn prepare_under_deprecate_eof_with_and_without_the_handshake() {
    for seen_handshake in [true, false] {
        let mut h = Harness::default();
        if seen_handshake {
            h.feed(S2C, &handshake());
            h.feed(C2S, &handshake_response(CLIENT_PROTOCOL_41 | CLIENT_DEPRECATE_EOF | 0xa685));
            h.feed(S2C, &ok(2, 0, 0, 2));
        }
        h.feed(C2S, &prepare("select c0 from t where id = ?"));
        h.feed(S2C, &prepare_ok(1, 1, 1, true));
        if seen_handshake {
            assert_eq!(h.out.len(), 1, "known capability: complete at once");
        }
        h.feed(C2S, &execute(1, &[0x03], &77i32.to_le_bytes(), 0));
        let mut resp = pkt(1, &[1]);
        resp.extend(column(2, "db", "t", "c0", 0x08));
        resp.extend(pkt(3, &[0, 0, 4, 0, 0, 0, 0, 0, 0, 0]));
        resp.extend(ok_fe(4, 2));
        h.feed(S2C, &resp);
        let txs = h.take();
        assert_eq!(txs.len(), 2);
        assert_eq!(f(&txs[1], "params"), Some(&json!(["77"])));
        assert_eq!(f(&txs[1], "mysql.num_rows"), Some(&json!(1)));
        assert_eq!(h.stats.parse_errors, 0);
    }
}

#[test]
fn prepare_error_is_published_with_the_sql() {
    let mut h = Harness::default();
    h.feed(C2S, &prepare("selec 1")).feed(S2C, &err(1, 1064, "42000", "You have an error"));
    let tx = &h.take()[0];
    assert_eq!(tx.query.as_deref(), Some("selec 1"));
    assert_eq!(tx.status, Status::Error);
    assert_eq!(h.state.statements(), 0);
}

// ---------------------------------------------------------------- correlation and bounds

#[test]
fn pipelined_commands_pair_in_order_and_orphans_are_counted() {
    let mut h = Harness::default();
    h.feed(S2C, &ok(1, 0, 0, 2));
    assert_eq!(h.stats.unmatched_responses, 0, "before any command it is the connection phase");
    h.feed(C2S, &query("select 1")).feed(S2C, &ok(1, 0, 0, 2));
    h.feed(S2C, &ok(1, 0, 0, 2));
    assert_eq!(h.stats.unmatched_responses, 1);
    h.feed(C2S, &query("update a set x=1")).feed(C2S, &query("update b set x=1"));
    h.feed(S2C, &ok(1, 3, 0, 2)).feed(S2C, &ok(1, 4, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 3);
    assert_eq!(f(&txs[1], "mysql.affected_rows"), Some(&json!(3)));
    assert_eq!(f(&txs[2], "mysql.affected_rows"), Some(&json!(4)));
}

#[test]
fn pending_queue_is_bounded_and_expiry_drops_silently() {
    let mut h = Harness::default();
    for i in 0..MYSQL_MAX_PENDING + 5 {
        h.feed(C2S, &query(&format!("select {i}")));
    }
    assert_eq!(h.state.pending_commands(), MYSQL_MAX_PENDING);
    assert_eq!(h.stats.queue_full, 5);
    h.at(11_000).expire();
    assert_eq!(h.state.pending_commands(), 0);
    assert_eq!(h.stats.unmatched_requests, (MYSQL_MAX_PENDING + 5) as u64);
    assert!(h.take().is_empty());
}

#[test]
fn statements_expire_after_statement_timeout() {
    let cfg = MysqlConfig { statement_timeout: Duration::from_secs(60), ..MysqlConfig::default() };
    let mut h = Harness::new(cfg);
    h.feed(C2S, &prepare("select 1")).feed(S2C, &prepare_ok(3, 0, 0, false));
    assert_eq!(h.state.statements(), 1);
    h.at(30_000).expire();
    assert_eq!(h.state.statements(), 1);
    h.at(61_000).expire();
    assert_eq!(h.state.statements(), 0);
}

// ---------------------------------------------------------------- gaps and resync

fn long_result(rows: usize, cell: usize) -> Vec<u8> {
    let text = "r".repeat(cell);
    let rows: Vec<Vec<Option<&str>>> = (0..rows).map(|_| vec![Some(text.as_str())]).collect();
    result_set(&[("d", "t", "a")], &rows, false, 2)
}

#[test]
fn gap_between_rows_publishes_with_the_note_then_resyncs() {
    let mut h = Harness::default();
    h.feed(C2S, &query("select a from t"));
    let resp = long_result(20, 100);
    h.feed(S2C, resp.get(..600).unwrap());
    h.gap(S2C, 1000);
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].notes, ["Packet loss while capturing the response"]);
    assert!(f(&txs[0], "mysql.num_rows").and_then(Value::as_u64).unwrap() > 1);
    // The rest of the old response is skipped; the next command's response is decoded.
    h.feed(S2C, resp.get(1600..).unwrap());
    h.feed(C2S, &query("select 2")).feed(S2C, &ok(1, 0, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].query.as_deref(), Some("select 2"));
}

#[test]
fn gap_inside_a_large_packet_keeps_the_stream_in_sync() {
    let mut h = Harness::default();
    h.feed(C2S, &query("select a from t"));
    let resp = long_result(3, 2 * 1024 * 1024);
    // Header, column, EOF and the first 1.5 MiB of the first row; lose 100 bytes; then the rest.
    let cut = 1536 * 1024;
    h.feed(S2C, resp.get(..cut).unwrap());
    h.gap(S2C, 100);
    h.feed(S2C, resp.get(cut + 100..).unwrap());
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(f(&txs[0], "mysql.num_rows"), Some(&json!(3)));
    assert_eq!(txs[0].notes, ["Packet loss while capturing the response"]);
    assert_eq!(h.stats.parse_errors, 0);
}

#[test]
fn gap_in_a_held_row_counts_it_and_stays_in_sync() {
    let mut h = Harness::default();
    h.feed(C2S, &query("select a from t"));
    let resp = long_result(5, 50);
    // 1 + column(…) + EOF + two rows, then 10 bytes of the third row are held and 20 lost.
    let head = resp.len() - 3 * 55 - 9;
    h.feed(S2C, resp.get(..head + 10).unwrap());
    h.gap(S2C, 20);
    h.feed(S2C, resp.get(head + 30..).unwrap());
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(f(&txs[0], "mysql.num_rows"), Some(&json!(5)));
    assert_eq!(txs[0].notes, ["Packet loss while capturing the response"]);
    assert_eq!(h.stats.parse_errors, 0);
}

#[test]
fn gap_before_the_response_publishes_the_request_with_the_note() {
    let mut h = Harness::default();
    h.feed(C2S, &query("select 1"));
    h.gap(S2C, 300);
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].notes, ["Packet loss while capturing the response"]);
    assert!(txs[0].end.is_none());
}

#[test]
fn midstream_pickup_resyncs_at_the_next_command() {
    let mut h = Harness::default();
    h.gap(S2C, 0).gap(C2S, 0);
    // The tail of some earlier exchange, then garbage from the client side.
    h.feed(S2C, long_result(3, 10).get(7..).unwrap());
    h.feed(C2S, b"\x05\x00\x00\x02zzzzz");
    h.feed(C2S, &query("select 1"));
    h.feed(S2C, &result_set(&[("", "", "1")], &[vec![Some("1")]], false, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].query.as_deref(), Some("select 1"));
    assert_eq!(f(&txs[0], "mysql.num_rows"), Some(&json!(1)));
}

#[test]
fn client_gap_inside_a_large_query_notes_the_request() {
    let mut h = Harness::default();
    let mut q = b"\x03INSERT INTO t VALUES ('".to_vec();
    q.resize(3 * 1024 * 1024, b'x');
    let req = pkt(0, &q);
    let cut = 2 * 1024 * 1024;
    h.feed(C2S, req.get(..cut).unwrap());
    h.gap(C2S, 1000);
    h.feed(C2S, req.get(cut + 1000..).unwrap());
    h.feed(S2C, &ok(1, 1, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].notes, ["Packet loss while capturing the request"]);
    assert_eq!(txs[0].request_bytes, Some(req.len() as u64));
}

#[test]
fn wrong_sequence_id_is_a_parse_error_and_resyncs() {
    let mut h = Harness::default();
    h.feed(C2S, &query("select 1")).feed(S2C, &ok(5, 0, 0, 2));
    assert_eq!(h.stats.parse_errors, 1);
    h.feed(C2S, &query("select 2")).feed(S2C, &ok(1, 0, 0, 2));
    let txs = h.take();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].query.as_deref(), Some("select 2"));
}

// ---------------------------------------------------------------- bad input and splitting

#[test]
fn absurd_lengths_are_errors_not_allocations() {
    let mut h = Harness::default();
    h.feed(C2S, &query("select 1"));
    // Column count with an 8-byte length of 2^31 and more: the stream is out of sync.
    h.feed(S2C, &pkt(1, b"\xfe\x00\x00\x00\x80\x00\x00\x00\x00"));
    assert_eq!(h.stats.parse_errors, 1);
    h.feed(C2S, &query("select 2"));
    h.feed(S2C, &pkt(1, &[1]));
    // A column definition whose catalog claims 2 GiB.
    h.feed(S2C, &pkt(2, b"\xfe\x00\x00\x00\x80\x00\x00\x00\x00def"));
    h.feed(S2C, &eof(3, 2)).feed(S2C, &eof(4, 2));
    // A 16 MiB - 1 header on garbage waits for 1 MiB, then streams.
    h.feed(C2S, b"\xff\xff\xff\x00\x03");
    h.feed(C2S, &vec![b'a'; 2 * 1024 * 1024]);
    assert!(h.max_buffered <= super::state::MYSQL_MAX_PACKET_VIEW + 4);
    h.close();
}

/// A full conversation: handshake, queries, a prepared statement, errors.
fn conversation() -> Vec<(Direction, Vec<u8>)> {
    let mut values = 1i64.to_le_bytes().to_vec();
    values.extend(lenenc(b"x"));
    vec![
        (S2C, handshake()),
        (C2S, handshake_response(CLIENT_PROTOCOL_41 | 0xa685)),
        (S2C, ok(2, 0, 0, 2)),
        (C2S, query("select @@version_comment limit 1")),
        (S2C, result_set(&[("", "", "@@version_comment")], &[vec![Some("mariadb.org binary distribution")]], false, 2)),
        (C2S, query("insert into t values (1, 'a')")),
        (S2C, ok(1, 1, 9, 2)),
        (C2S, query("select * from nope")),
        (S2C, err(1, 1146, "42S02", "Table 'db.nope' doesn't exist")),
        (C2S, prepare("select a, b from t where a = ? and b = ?")),
        (S2C, prepare_ok(1, 2, 2, false)),
        (C2S, execute(1, &[0x08, 0xfd], &values, 0)),
        (S2C, {
            let mut r = pkt(1, &[2]);
            r.extend(column(2, "db", "t", "a", 0x08));
            r.extend(column(3, "db", "t", "b", 0xfd));
            r.extend(eof(4, 2));
            let mut row = vec![0, 0];
            row.extend_from_slice(&1i64.to_le_bytes());
            row.extend(lenenc(b"x"));
            r.extend(pkt(5, &row));
            r.extend(eof(6, 2));
            r
        }),
        (C2S, pkt(0, &[0x19, 1, 0, 0, 0])),
        (C2S, query("select a from t")),
        (S2C, long_result(12, 30)),
    ]
}

fn run(
    script: &[(Direction, Vec<u8>)],
    split: impl Fn(usize, &[u8]) -> Vec<Vec<u8>>,
) -> (Vec<Transaction>, ProtoStats) {
    let cfg = MysqlConfig { send_response: true, send_request: true, ..MysqlConfig::default() };
    let mut h = Harness::new(cfg);
    for (i, (dir, bytes)) in script.iter().enumerate() {
        h.at(i as u64);
        for chunk in split(i, bytes) {
            h.feed(*dir, &chunk);
        }
    }
    h.close();
    (h.take(), h.stats)
}

#[test]
fn every_split_point_gives_the_same_transactions() {
    let script = conversation();
    let (whole, stats) = run(&script, |_, b| vec![b.to_vec()]);
    assert_eq!(whole.len(), 6);
    assert_eq!((stats.parse_errors, stats.unmatched_responses, stats.unmatched_requests), (0, 0, 0));
    for (msg, (_, bytes)) in script.iter().enumerate() {
        for k in 1..bytes.len() {
            let (got, _) =
                run(&script, |i, b| if i == msg { vec![b[..k].to_vec(), b[k..].to_vec()] } else { vec![b.to_vec()] });
            assert_eq!(got, whole, "message {msg} split at {k}");
        }
    }
    let (bytewise, _) = run(&script, |_, b| b.chunks(1).map(<[u8]>::to_vec).collect());
    assert_eq!(bytewise, whole);
}

#[test]
fn pseudo_random_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let mut h = Harness::default();
        if round % 3 == 0 {
            h.gap(C2S, 0).gap(S2C, 0);
        }
        for _ in 0..8 {
            let len = (next() % 300) as usize;
            let mut chunk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Bias towards plausible headers so the deeper states are reached.
            if let [a, b, c, s, ..] = chunk.as_mut_slice() {
                if round % 2 == 0 {
                    *a = (len.saturating_sub(4) % 251) as u8;
                    *b = 0;
                    *c = 0;
                    *s %= 3;
                }
            }
            let dir = if next() % 2 == 0 { C2S } else { S2C };
            h.feed(dir, &chunk);
            if next() % 17 == 0 {
                h.gap(dir, (next() % 5000) as u32);
            }
        }
        h.at(20_000).expire();
        h.close();
        assert!(h.max_buffered <= super::state::MYSQL_MAX_PACKET_VIEW + 4);
    }
}

#[test]
fn statement_cache_is_bounded_and_counted() {
    let mut h = Harness::default();
    for id in 0..u32::try_from(super::state::MYSQL_MAX_STATEMENTS).unwrap() + 3 {
        h.feed(C2S, &prepare("select 1")).feed(S2C, &prepare_ok(id + 1, 0, 0, false));
    }
    assert_eq!(h.state.statements(), super::state::MYSQL_MAX_STATEMENTS);
    assert_eq!(h.stats.queue_full, 3);
}
