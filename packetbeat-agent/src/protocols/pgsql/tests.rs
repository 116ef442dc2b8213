//! Stream-level tests of the PostgreSQL state: byte fixtures for every feature, every split point,
//! gaps, mid-stream pickup and bad input.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde_json::{json, Value};

use super::config::PgsqlConfig;
use super::state::{PgsqlState, PGSQL_MAX_HELD_MESSAGE};
use crate::event::{Status, Transaction};
use crate::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use crate::time::Timestamp;

const C: Direction = Direction::ToServer;
const S: Direction = Direction::ToClient;

// ---------------------------------------------------------------- message builders

fn m(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn startup() -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    body.extend(cstr("user"));
    body.extend(cstr("postgres"));
    body.push(0);
    let mut v = u32::try_from(body.len() + 4).unwrap().to_be_bytes().to_vec();
    v.extend(body);
    v
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

fn query(sql: &str) -> Vec<u8> {
    m(b'Q', &cstr(sql))
}

fn parse(name: &str, sql: &str, oids: &[u32]) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(sql));
    b.extend(u16::try_from(oids.len()).unwrap().to_be_bytes());
    for o in oids {
        b.extend(o.to_be_bytes());
    }
    m(b'P', &b)
}

fn bind(portal: &str, stmt: &str, formats: &[u16], params: &[Option<&[u8]>], result_formats: &[u16]) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend(u16::try_from(formats.len()).unwrap().to_be_bytes());
    for f in formats {
        b.extend(f.to_be_bytes());
    }
    b.extend(u16::try_from(params.len()).unwrap().to_be_bytes());
    for p in params {
        match p {
            None => b.extend([0xff; 4]),
            Some(v) => {
                b.extend(u32::try_from(v.len()).unwrap().to_be_bytes());
                b.extend(*v);
            }
        }
    }
    b.extend(u16::try_from(result_formats.len()).unwrap().to_be_bytes());
    for f in result_formats {
        b.extend(f.to_be_bytes());
    }
    m(b'B', &b)
}

fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend(cstr(name));
    m(b'D', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend([0, 0, 0, 0]);
    m(b'E', &b)
}

fn sync() -> Vec<u8> {
    m(b'S', b"")
}

fn row_desc(cols: &[(&str, u32)]) -> Vec<u8> {
    let mut b = u16::try_from(cols.len()).unwrap().to_be_bytes().to_vec();
    for (name, oid) in cols {
        b.extend(cstr(name));
        b.extend([0, 0, 0, 0, 0, 0]);
        b.extend(oid.to_be_bytes());
        b.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    m(b'T', &b)
}

fn data_row(cols: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = u16::try_from(cols.len()).unwrap().to_be_bytes().to_vec();
    for c in cols {
        match c {
            None => b.extend([0xff; 4]),
            Some(v) => {
                b.extend(u32::try_from(v.len()).unwrap().to_be_bytes());
                b.extend(*v);
            }
        }
    }
    m(b'D', &b)
}

fn complete(tag: &str) -> Vec<u8> {
    m(b'C', &cstr(tag))
}

fn ready() -> Vec<u8> {
    m(b'Z', b"I")
}

fn error(code: &str, msg: &str) -> Vec<u8> {
    let mut b = b"SERROR\0VERROR\0C".to_vec();
    b.extend(cstr(code));
    b.push(b'M');
    b.extend(cstr(msg));
    b.push(0);
    m(b'E', &b)
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Server greeting after StartupMessage: AuthenticationOk, ParameterStatus, BackendKeyData, ReadyForQuery.
fn greeting() -> Vec<u8> {
    cat(&[m(b'R', &[0, 0, 0, 0]), m(b'S', b"server_version\x0015.0\0"), m(b'K', &[0, 0, 0, 1, 0, 0, 0, 2]), ready()])
}

// ---------------------------------------------------------------- harness

/// One connection fed like the flow layer does: unconsumed tails are presented again with the next
/// bytes appended; a gap drops them.
struct Conn {
    st: PgsqlState,
    out: Vec<Transaction>,
    stats: ProtoStats,
    held: [Vec<u8>; 2],
    conn: ConnInfo,
    ts: u64,
}

impl Conn {
    fn new(cfg: PgsqlConfig) -> Self {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            st: PgsqlState::new(Arc::new(cfg)),
            out: Vec::new(),
            stats: ProtoStats::default(),
            held: [Vec::new(), Vec::new()],
            conn: ConnInfo { client_ip: ip, client_port: 40000, server_ip: ip, server_port: 5432 },
            ts: 1_000_000_000,
        }
    }

    fn default_cfg() -> Self {
        Self::new(PgsqlConfig { send_request: true, send_response: true, ..PgsqlConfig::default() })
    }

    fn feed(&mut self, dir: Direction, bytes: &[u8]) {
        let mut cx = ParseCtx { ts: Timestamp(self.ts), conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        let held = &mut self.held[dir.index()];
        held.extend_from_slice(bytes);
        let used = self.st.parse(dir, held, &mut cx).min(held.len());
        held.drain(..used);
        assert!(held.len() <= PGSQL_MAX_HELD_MESSAGE + 8, "held {} bytes", held.len());
    }

    /// Feeds at a later time (ms).
    fn at(&mut self, ms: u64, dir: Direction, bytes: &[u8]) {
        self.ts = 1_000_000_000 + ms * 1_000_000;
        self.feed(dir, bytes);
    }

    fn gap(&mut self, dir: Direction, len: u32) {
        self.held[dir.index()].clear();
        let mut cx = ParseCtx { ts: Timestamp(self.ts), conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        self.st.gap(dir, len, &mut cx);
    }

    fn close(&mut self) {
        let mut cx = ParseCtx { ts: Timestamp(self.ts), conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        self.st.close(&mut cx);
    }

    fn login(&mut self) {
        self.feed(C, &startup());
        self.feed(S, &greeting());
    }
}

fn field<'a>(t: &'a Transaction, k: &str) -> &'a Value {
    t.fields.get(k).unwrap_or(&Value::Null)
}

fn summary(t: &Transaction) -> (Option<String>, Option<String>, Value, Value, Value, Status) {
    (
        t.method.clone(),
        t.query.clone(),
        field(t, "params").clone(),
        field(t, "pgsql.num_rows").clone(),
        field(t, "pgsql.error_code").clone(),
        t.status,
    )
}

// ---------------------------------------------------------------- simple query

#[test]
fn simple_select_with_rows_and_csv_response() {
    let mut c = Conn::default_cfg();
    c.login();
    let q = query("select * from test");
    c.at(0, C, &q);
    let resp = cat(&[
        row_desc(&[("a", 25), ("b", 25)]),
        data_row(&[Some(b"x"), Some(b"y,z")]),
        data_row(&[None, Some(b"w")]),
        complete("SELECT 2"),
    ]);
    c.at(3, S, &cat(&[resp.clone(), ready()]));
    assert_eq!(c.out.len(), 1);
    let t = &c.out[0];
    assert_eq!((t.method.as_deref(), t.query.as_deref()), (Some("SELECT"), Some("select * from test")));
    assert_eq!((field(t, "pgsql.num_rows"), field(t, "pgsql.num_fields")), (&json!(2), &json!(2)));
    assert_eq!(t.response.as_deref(), Some("a,b\nx,\"y,z\"\n,w\n"));
    assert_eq!(t.request.as_deref(), Some("select * from test"));
    assert_eq!((t.request_bytes, t.response_bytes), (Some(q.len() as u64), Some(resp.len() as u64)));
    assert_eq!(t.end.unwrap().since(t.start.unwrap()), Some(3_000_000));
    assert_eq!(t.status, Status::Ok);
    assert_eq!(c.stats.transactions, 1);
    assert_eq!(c.stats.parse_errors, 0);
}

#[test]
fn multi_statement_query_gives_one_transaction_per_statement() {
    let mut c = Conn::default_cfg();
    c.login();
    let q = query("insert into t values ('a;b'); update t set a = 1; select 1");
    c.feed(C, &q);
    c.feed(
        S,
        &cat(&[
            complete("INSERT 0 1"),
            complete("UPDATE 3"),
            row_desc(&[("?column?", 23)]),
            data_row(&[Some(b"1")]),
            complete("SELECT 1"),
            ready(),
        ]),
    );
    let got: Vec<_> = c.out.iter().map(|t| t.method.clone().unwrap()).collect();
    assert_eq!(got, ["INSERT", "UPDATE", "SELECT"]);
    assert_eq!(c.out[0].query.as_deref(), Some("insert into t values ('a;b')"));
    // Packetbeat repeats the whole Query's size for every statement.
    assert!(c.out.iter().all(|t| t.request_bytes == Some(q.len() as u64)));
    assert_eq!(field(&c.out[2], "pgsql.num_rows"), &json!(1));
}

#[test]
fn error_skips_the_rest_of_the_query_and_realigns() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query("select 1; select * from nope; select 3"));
    c.feed(
        S,
        &cat(&[
            row_desc(&[("x", 23)]),
            data_row(&[Some(b"1")]),
            complete("SELECT 1"),
            error("42P01", "relation \"nope\" does not exist"),
            ready(),
        ]),
    );
    c.feed(C, &query("insert into u values (1)"));
    c.feed(S, &cat(&[error("23505", "duplicate key value violates unique constraint"), ready()]));
    c.feed(C, &query("select 4"));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"4")]), complete("SELECT 1"), ready()]));
    let got: Vec<_> = c.out.iter().map(summary).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[1].1.as_deref(), Some("select * from nope"));
    assert_eq!((got[1].4.clone(), got[1].5), (json!("42P01"), Status::Error));
    assert_eq!(field(&c.out[1], "pgsql.error_severity"), &json!("ERROR"));
    assert_eq!(field(&c.out[1], "pgsql.error_message"), &json!("relation \"nope\" does not exist"));
    assert_eq!((got[2].0.as_deref(), got[2].4.clone()), (Some("INSERT"), json!("23505")));
    assert_eq!((got[3].1.as_deref(), got[3].3.clone()), (Some("select 4"), json!(1)));
    assert_eq!(c.stats.unmatched_requests, 1, "select 3 was never executed");
}

#[test]
fn empty_query_notice_and_parameter_status_do_not_break_pairing() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query(""));
    c.feed(S, &cat(&[m(b'I', b""), ready()]));
    c.feed(C, &query("drop table if exists zz"));
    let notice = m(b'N', b"SNOTICE\0C00000\0Mtable \"zz\" does not exist, skipping\0\0");
    c.feed(S, &cat(&[notice, complete("DROP TABLE"), m(b'S', b"a\0b\0"), ready()]));
    assert_eq!(c.out.len(), 1);
    assert_eq!(c.out[0].method.as_deref(), Some("DROP"));
    assert_eq!(c.out[0].status, Status::Ok);
}

#[test]
fn copy_in_and_out_are_recognised() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query("copy t from stdin"));
    c.feed(S, &m(b'G', &[0, 0, 1, 0, 0]));
    let data = cat(&[m(b'd', b"1\tone\n"), m(b'd', b"2\ttwo\n"), m(b'c', b"")]);
    c.feed(C, &data);
    c.feed(S, &cat(&[complete("COPY 2"), ready()]));
    c.feed(C, &query("copy t to stdout"));
    c.feed(
        S,
        &cat(&[
            m(b'H', &[0, 0, 1, 0, 0]),
            m(b'd', b"1\tone\n"),
            m(b'd', b"2\ttwo\n"),
            m(b'd', b"3\tx\n"),
            m(b'c', b""),
            complete("COPY 3"),
            ready(),
        ]),
    );
    c.feed(C, &query("select 1"));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"1")]), complete("SELECT 1"), ready()]));
    assert_eq!(c.out.len(), 3);
    assert_eq!(c.out[0].method.as_deref(), Some("COPY"));
    let q = query("copy t from stdin");
    assert_eq!(c.out[0].request_bytes, Some((q.len() + data.len()) as u64));
    assert_eq!(field(&c.out[1], "pgsql.num_rows"), &json!(3));
    assert_eq!(c.out[2].query.as_deref(), Some("select 1"));
}

// ---------------------------------------------------------------- startup and encryption

#[test]
fn ssl_refused_then_startup_is_skipped() {
    let mut c = Conn::default_cfg();
    c.feed(C, &SSL_REQUEST);
    c.feed(S, b"N");
    c.login();
    c.feed(C, &m(b'p', b"secret\0"));
    c.feed(C, &query("select 1"));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"1")]), complete("SELECT 1"), ready()]));
    assert_eq!(c.out.len(), 1);
    assert!(!c.st.is_encrypted());
    assert_eq!(c.stats.parse_errors, 0);
}

#[test]
fn ssl_accepted_marks_the_connection_encrypted() {
    let mut c = Conn::default_cfg();
    c.feed(C, &SSL_REQUEST);
    c.feed(S, b"S");
    c.feed(C, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03random tls bytes");
    c.feed(S, b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76");
    c.close();
    assert!(c.st.is_encrypted());
    assert!(c.out.is_empty());
    assert_eq!(c.stats.parse_errors, 0);
}

#[test]
fn gssenc_accepted_marks_the_connection_encrypted() {
    let mut c = Conn::default_cfg();
    c.feed(C, &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    c.feed(S, b"G");
    c.feed(C, b"\x00\x00\x01\x00garbage");
    assert!(c.st.is_encrypted());
    assert_eq!(c.stats.parse_errors, 0);
}

// ---------------------------------------------------------------- extended protocol

#[test]
fn extended_query_with_text_and_binary_params() {
    let mut c = Conn::default_cfg();
    c.login();
    let seven = 7i64.to_be_bytes();
    let req = cat(&[
        parse("", "select * from t where id = $1 and name = $2 and n = $3", &[20, 25, 0]),
        bind("", "", &[1, 0, 0], &[Some(&seven), Some(b"bob"), None], &[1]),
        describe(b'P', ""),
        execute(""),
        sync(),
    ]);
    c.at(0, C, &req);
    let resp =
        cat(&[row_desc(&[("id", 20), ("name", 25)]), data_row(&[Some(&seven), Some(b"bob")]), complete("SELECT 1")]);
    c.at(2, S, &cat(&[m(b'1', b""), m(b'2', b""), resp.clone(), ready()]));
    assert_eq!(c.out.len(), 1);
    let t = &c.out[0];
    assert_eq!(t.query.as_deref(), Some("select * from t where id = $1 and name = $2 and n = $3"));
    assert_eq!(field(t, "params"), &json!(["7", "bob", null]));
    assert_eq!(t.response.as_deref(), Some("id,name\n7,bob\n"));
    assert_eq!((t.request_bytes, t.response_bytes), (Some(req.len() as u64), Some(resp.len() as u64)));
}

#[test]
fn pipeline_gives_one_transaction_per_execute() {
    let mut c = Conn::default_cfg();
    c.login();
    let mut req = cat(&[parse("s1", "select $1::int", &[23]), describe(b'S', "s1")]);
    let vals = [1i32.to_be_bytes(), 2i32.to_be_bytes(), 3i32.to_be_bytes()];
    for v in &vals {
        req.extend(bind("", "s1", &[1], &[Some(v)], &[]));
        req.extend(execute(""));
    }
    req.extend(sync());
    c.at(0, C, &req);
    let mut resp = cat(&[m(b'1', b""), m(b't', &[0, 1, 0, 0, 0, 23]), row_desc(&[("int4", 23)])]);
    for (i, _) in vals.iter().enumerate() {
        resp.extend(m(b'2', b""));
        for _ in 0..=i {
            resp.extend(data_row(&[Some(b"9")]));
        }
        resp.extend(complete(&format!("SELECT {}", i + 1)));
    }
    resp.extend(ready());
    c.at(4, S, &resp);
    let got: Vec<_> = c.out.iter().map(summary).collect();
    assert_eq!(got.len(), 3);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.1.as_deref(), Some("select $1::int"));
        assert_eq!(g.2, json!([(i + 1).to_string()]));
        assert_eq!(g.3, json!(i + 1));
        assert_eq!(field(&c.out[i], "pgsql.num_fields"), &json!(1));
    }
    // The prepared statement is reused later without Parse or Describe.
    c.feed(C, &cat(&[bind("", "s1", &[0], &[Some(b"5")], &[]), execute(""), sync()]));
    c.feed(S, &cat(&[m(b'2', b""), data_row(&[Some(b"5")]), complete("SELECT 1"), ready()]));
    assert_eq!(c.out.len(), 4);
    assert_eq!(field(&c.out[3], "params"), &json!(["5"]));
    assert_eq!(field(&c.out[3], "pgsql.num_fields"), &json!(1));
}

#[test]
fn error_in_pipeline_fails_first_execute_and_skips_to_sync() {
    let mut c = Conn::default_cfg();
    c.login();
    let req = cat(&[
        parse("", "select * from nope", &[]),
        bind("", "", &[], &[], &[]),
        execute(""),
        parse("", "select 2", &[]),
        bind("", "", &[], &[], &[]),
        execute(""),
        sync(),
        parse("", "select 3", &[]),
        bind("", "", &[], &[], &[]),
        execute(""),
        sync(),
    ]);
    c.feed(C, &req);
    c.feed(S, &cat(&[error("42P01", "relation \"nope\" does not exist"), ready()]));
    c.feed(S, &cat(&[m(b'1', b""), m(b'2', b""), data_row(&[Some(b"3")]), complete("SELECT 1"), ready()]));
    let got: Vec<_> = c.out.iter().map(summary).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].1.as_deref(), got[0].4.clone()), (Some("select * from nope"), json!("42P01")));
    assert_eq!((got[1].1.as_deref(), got[1].3.clone()), (Some("select 3"), json!(1)));
    assert_eq!(c.stats.unmatched_requests, 1);
}

#[test]
fn extended_set_is_not_published_like_packetbeat() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &cat(&[parse("", "SET extra_float_digits = 3", &[]), bind("", "", &[], &[], &[]), execute(""), sync()]));
    c.feed(S, &cat(&[m(b'1', b""), m(b'2', b""), complete("SET"), ready()]));
    c.feed(C, &query("SET search_path = public"));
    c.feed(S, &cat(&[complete("SET"), ready()]));
    assert_eq!(c.out.len(), 1, "only the simple-protocol SET is published");
    assert_eq!(c.out[0].method.as_deref(), Some("SET"));
}

#[test]
fn bind_on_unknown_statement_is_published_with_a_note() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &cat(&[bind("", "never_seen", &[0], &[Some(b"1")], &[]), execute(""), sync()]));
    c.feed(S, &cat(&[m(b'2', b""), complete("UPDATE 1"), ready()]));
    assert_eq!(c.out.len(), 1);
    assert_eq!(c.out[0].notes, vec!["The actual query being used is unknown".to_owned()]);
    assert_eq!(c.out[0].query, None);
    assert_eq!(field(&c.out[0], "params"), &json!(["1"]));
}

#[test]
fn named_portal_suspended_and_close() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(
        C,
        &cat(&[
            parse("st", "select generate_series(1, 3)", &[]),
            bind("cur", "st", &[], &[], &[]),
            execute("cur"),
            sync(),
        ]),
    );
    c.feed(S, &cat(&[m(b'1', b""), m(b'2', b""), data_row(&[Some(b"1")]), m(b's', b""), ready()]));
    c.feed(C, &cat(&[execute("cur"), m(b'C', b"Pcur\0"), m(b'C', b"Sst\0"), sync()]));
    c.feed(
        S,
        &cat(&[
            data_row(&[Some(b"2")]),
            data_row(&[Some(b"3")]),
            complete("SELECT 2"),
            m(b'3', b""),
            m(b'3', b""),
            ready(),
        ]),
    );
    c.feed(C, &cat(&[bind("cur", "st", &[], &[], &[]), execute("cur"), sync()]));
    c.feed(S, &cat(&[error("26000", "prepared statement \"st\" does not exist"), ready()]));
    let got: Vec<_> = c.out.iter().map(summary).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].3.clone(), got[1].3.clone()), (json!(1), json!(2)));
    assert_eq!(got[1].1.as_deref(), Some("select generate_series(1, 3)"));
    assert_eq!((got[2].1.clone(), got[2].4.clone()), (None, json!("26000")));
}

// ---------------------------------------------------------------- streaming properties

fn session_bytes() -> (Vec<u8>, Vec<u8>) {
    let seven = 7i32.to_be_bytes();
    let client = cat(&[
        startup(),
        query("select a from t; insert into t values (1)"),
        parse("s", "select $1::int4", &[23]),
        bind("", "s", &[1], &[Some(&seven)], &[0]),
        describe(b'P', ""),
        execute(""),
        sync(),
        query("select * from nope"),
    ]);
    let server = cat(&[
        greeting(),
        row_desc(&[("a", 25)]),
        data_row(&[Some(b"one")]),
        data_row(&[Some(b"two")]),
        complete("SELECT 2"),
        complete("INSERT 0 1"),
        ready(),
        m(b'1', b""),
        m(b'2', b""),
        row_desc(&[("int4", 23)]),
        data_row(&[Some(b"7")]),
        complete("SELECT 1"),
        ready(),
        error("42P01", "relation \"nope\" does not exist"),
        ready(),
    ]);
    (client, server)
}

fn run_split(client: &[u8], server: &[u8], at: usize) -> Vec<Transaction> {
    let mut c = Conn::default_cfg();
    // Client first (all requests), then the server, each split once at `at`.
    for (dir, bytes) in [(C, client), (S, server)] {
        let cut = at.min(bytes.len());
        c.feed(dir, &bytes[..cut]);
        c.feed(dir, &bytes[cut..]);
    }
    assert_eq!(c.stats.parse_errors, 0);
    c.out
}

#[test]
fn every_split_point_gives_the_same_transactions() {
    let (client, server) = session_bytes();
    let whole = run_split(&client, &server, usize::MAX);
    assert_eq!(whole.len(), 4);
    for at in 0..=client.len().max(server.len()) {
        assert_eq!(run_split(&client, &server, at), whole, "split at {at}");
    }
    // Byte by byte.
    let mut c = Conn::default_cfg();
    for b in &client {
        c.feed(C, std::slice::from_ref(b));
    }
    for b in &server {
        c.feed(S, std::slice::from_ref(b));
    }
    assert_eq!(c.out, whole);
}

#[test]
fn random_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (client, server) = session_bytes();
    for round in 0..400 {
        let mut c = Conn::default_cfg();
        for _ in 0..20 {
            let dir = if next() % 2 == 0 { C } else { S };
            let len = usize::try_from(next() % 300).unwrap();
            let mut chunk: Vec<u8> = (0..len).map(|_| u8::try_from(next() % 256).unwrap()).collect();
            if round % 3 == 0 {
                // Mutated real traffic reaches deeper states than pure noise.
                let src = if dir == C { &client } else { &server };
                chunk = src.clone();
                for _ in 0..4 {
                    let i = usize::try_from(next()).unwrap() % chunk.len();
                    chunk[i] = u8::try_from(next() % 256).unwrap();
                }
            }
            match next() % 10 {
                0 => c.gap(dir, u32::try_from(next() % 100).unwrap()),
                _ => c.feed(dir, &chunk),
            }
        }
        c.close();
    }
}

// ---------------------------------------------------------------- bad input, gaps, bounds

#[test]
fn absurd_length_is_a_parse_error_and_the_next_segment_resyncs() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, b"Q\x80\x00\x00\x00select 1\0");
    assert_eq!(c.stats.parse_errors, 1);
    assert!(c.held[0].len() <= 5);
    c.feed(C, &query("select 2"));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"2")]), complete("SELECT 1"), ready()]));
    assert_eq!(c.out.len(), 1);
    assert_eq!(c.out[0].query.as_deref(), Some("select 2"));
    // The server side too.
    c.feed(S, b"D\x7f\xff\xff\xff\x00\x01");
    assert_eq!(c.stats.parse_errors, 2);
}

#[test]
fn oversize_messages_are_counted_and_skipped_without_holding_them() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query("select big"));
    let big = vec![b'x'; 3 * PGSQL_MAX_HELD_MESSAGE];
    let row = data_row(&[Some(&big)]);
    c.feed(S, &row_desc(&[("b", 25)]));
    for chunk in row.chunks(65_536) {
        c.feed(S, chunk);
    }
    c.feed(S, &cat(&[data_row(&[Some(b"y")]), complete("SELECT 2"), ready()]));
    assert_eq!(c.out.len(), 1);
    assert_eq!(field(&c.out[0], "pgsql.num_rows"), &json!(2));
    assert_eq!(c.stats.oversize_messages, 1);
    let resp = c.out[0].response.as_deref().unwrap();
    assert_eq!(resp.lines().nth(1).unwrap().len(), 1024);
}

#[test]
fn midstream_pickup_resyncs_at_the_next_segment() {
    let mut c = Conn::default_cfg();
    c.gap(C, 0);
    c.gap(S, 0);
    // The tail of an earlier message, then a real query in the next segment.
    c.feed(C, b"ere id = 1\0");
    c.feed(S, b"\x00\x01\x00\x00\x00\x01x");
    c.feed(C, &query("insert into t values (1)"));
    c.feed(S, &cat(&[complete("INSERT 0 1"), ready()]));
    assert_eq!(c.out.len(), 1);
    assert_eq!(c.out[0].method.as_deref(), Some("INSERT"));
    assert_eq!(c.out[0].response_bytes, Some(16));
}

#[test]
fn server_gap_publishes_the_partial_response_with_a_note() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query("select a from t; select 2"));
    c.feed(S, &cat(&[row_desc(&[("a", 25)]), data_row(&[Some(b"one")])]));
    c.gap(S, 100);
    // The rest of the cycle (unparseable tail, then ReadyForQuery), then a clean query.
    c.feed(S, &cat(&[b"garbage".to_vec(), data_row(&[Some(b"x")]), complete("SELECT 5"), ready()]));
    c.feed(C, &query("select 3"));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"3")]), complete("SELECT 1"), ready()]));
    let got: Vec<_> = c.out.iter().map(|t| (t.query.clone().unwrap(), t.notes.clone())).collect();
    let loss = vec!["Packet loss while capturing the response".to_owned()];
    assert_eq!(
        got,
        vec![("select a from t".into(), loss.clone()), ("select 2".into(), loss), ("select 3".into(), vec![])]
    );
    assert_eq!(field(&c.out[0], "pgsql.num_rows"), &json!(1));
}

#[test]
fn client_gap_swallows_the_lost_cycle_and_realigns() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query("select 1"));
    c.gap(C, 40);
    c.feed(C, &cat(&[bind("", "", &[], &[], &[]), execute(""), sync()]));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"1")]), complete("SELECT 1"), ready()]));
    c.feed(S, &cat(&[m(b'1', b""), m(b'2', b""), complete("SELECT 9"), ready()]));
    c.feed(C, &query("select 2"));
    c.feed(S, &cat(&[row_desc(&[("x", 23)]), data_row(&[Some(b"2")]), complete("SELECT 1"), ready()]));
    let got: Vec<_> = c.out.iter().map(|t| t.query.clone().unwrap()).collect();
    assert_eq!(got, ["select 1", "select 2"]);
}

#[test]
fn queue_bound_drops_requests_until_sync_and_counts_them() {
    let mut c = Conn::new(PgsqlConfig { queue_max_messages: 5, ..PgsqlConfig::default() });
    c.login();
    let mut req = parse("", "select 1", &[]);
    for _ in 0..4 {
        req.extend(bind("", "", &[], &[], &[]));
        req.extend(execute(""));
    }
    req.extend(sync());
    c.feed(C, &req);
    let mut resp = m(b'1', b"");
    for _ in 0..4 {
        resp.extend(cat(&[m(b'2', b""), data_row(&[Some(b"1")]), complete("SELECT 1")]));
    }
    resp.extend(ready());
    c.feed(S, &resp);
    c.feed(C, &query("select 2"));
    c.feed(S, &cat(&[complete("SELECT 0"), ready()]));
    assert_eq!(c.out.len(), 3, "2 executes fit, then the queue is full; then select 2");
    assert_eq!(c.stats.queue_full, 2);
    assert_eq!(c.out[2].query.as_deref(), Some("select 2"));
}

#[test]
fn unanswered_requests_are_dropped_silently_at_close() {
    let mut c = Conn::default_cfg();
    c.login();
    c.feed(C, &query("select pg_sleep(100)"));
    c.close();
    assert!(c.out.is_empty());
    assert_eq!(c.stats.unmatched_requests, 1);
}
