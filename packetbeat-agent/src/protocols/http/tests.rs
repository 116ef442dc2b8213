//! Stream-level tests: byte fixtures fed through [`HttpState`] the way the flow layer does (the
//! unconsumed tail is presented again with the next bytes).

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Map, Value};

use super::{HttpConfig, HttpState};
use crate::event::envelope::{write_transaction, ConnStrings};
use crate::event::shape::ShapeCache;
use crate::event::{Fields, Status, Transaction};
use crate::protocols::testing::StreamHarness;
use crate::protocols::{ConnInfo, Direction};
use crate::time::Timestamp;

const C2S: Direction = Direction::ToServer;
const S2C: Direction = Direction::ToClient;

/// The flow layer, reduced to what the protocol sees.
type Harness = StreamHarness<HttpState>;

impl Harness {
    fn new(cfg: HttpConfig) -> Self {
        Self::with(
            HttpState::new(Arc::new(cfg)),
            ConnInfo {
                client_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 104)),
                client_port: 54742,
                server_ip: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 110)),
                server_port: 80,
            },
        )
    }

    fn default() -> Self {
        Self::new(HttpConfig::default())
    }

    fn at(&mut self, secs: u64) -> &mut Self {
        self.ts = Timestamp::from_parts(1_700_000_000 + secs, 0);
        self
    }
}

/// The transaction's fields as dotted keys: HTTP's own, written as JSON members, parsed back (the
/// `headers` objects whole), and those kept as dotted keys. Every test that reads them also checks
/// that the document has the same bytes as the generic writer makes of the same dotted keys.
fn fields(tx: &Transaction) -> Map<String, Value> {
    fn flatten(key: String, v: Value, out: &mut Map<String, Value>) {
        match v {
            Value::Object(m) if !key.ends_with(".headers") => {
                for (name, v) in m {
                    flatten(format!("{key}.{name}"), v, out);
                }
            }
            v => {
                out.insert(key, v);
            }
        }
    }
    let mut map = tx.fields.to_map();
    // The typed host names, as the dotted fields the generic writer takes.
    let mut hosts: Vec<Value> = Vec::new();
    for host in tx.server_domain.iter().chain(&tx.related_hosts) {
        if !hosts.iter().any(|h| h == host.as_str()) {
            hosts.push(host.as_str().into());
        }
    }
    if let Some(domain) = &tx.server_domain {
        map.insert("destination.domain".into(), domain.as_str().into());
    }
    if !hosts.is_empty() {
        map.insert("related.hosts".into(), Value::Array(hosts));
    }
    let doc = [b"{\"status\":0".as_slice(), &tx.members, b"}"].concat();
    let doc: Map<String, Value> = serde_json::from_slice(&doc).expect("the members are JSON");
    for (key, v) in doc.into_iter().filter(|(k, _)| k != "status") {
        flatten(key, v, &mut map);
    }
    let mut generic = Transaction {
        members: Vec::new(),
        fields: Fields::new(),
        server_domain: None,
        related_hosts: Vec::new(),
        ..tx.clone()
    };
    for (k, v) in &map {
        generic.fields.insert(k.clone(), v.clone());
    }
    assert_eq!(document(tx), document(&generic), "HTTP's writer and the generic one disagree");
    map
}

/// The document of `tx`, as the publisher writes it.
fn document(tx: &Transaction) -> String {
    let mut tx = tx.clone();
    tx.fields.sort();
    let mut out = Vec::new();
    write_transaction(&mut out, &tx, &ConnStrings::default(), b"", &mut ShapeCache::default());
    String::from_utf8(out).expect("UTF-8")
}

fn field(tx: &Transaction, key: &str) -> Value {
    fields(tx).remove(key).unwrap_or(Value::Null)
}

const GET: &[u8] =
    b"GET /index.html?b=2&a=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/7.37.1\r\nAccept: */*\r\n\r\n";
const OK_HELLO: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
const NOT_FOUND: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";

#[test]
fn keep_alive_request_response_fields() {
    let mut h = Harness::default();
    h.feed(C2S, GET).at(1).feed(S2C, OK_HELLO);
    h.at(2).feed(C2S, b"GET /missing HTTP/1.1\r\nHost: www.example.com\r\n\r\n").at(3).feed(S2C, NOT_FOUND);
    assert_eq!(h.out.len(), 2);
    let tx = &h.out[0];
    assert_eq!((tx.kind, tx.status), ("http", Status::Ok));
    assert_eq!(tx.start, Some(Timestamp::from_parts(1_700_000_000, 0)));
    assert_eq!(tx.end, Some(Timestamp::from_parts(1_700_000_001, 0)));
    assert_eq!(tx.request_bytes, Some(GET.len() as u64));
    assert_eq!(tx.response_bytes, Some(OK_HELLO.len() as u64));
    assert_eq!(tx.method.as_deref(), Some("GET"));
    assert_eq!(tx.query.as_deref(), Some("GET /index.html"));
    assert!(tx.notes.is_empty() && tx.request.is_none() && tx.response.is_none());
    let expected = json!({
        "http.version": "1.1",
        "http.request.method": "GET",
        "http.request.bytes": GET.len(),
        "http.request.headers": {"content-length": 0},
        "http.response.status_code": 200,
        "http.response.status_phrase": "ok",
        "http.response.bytes": OK_HELLO.len(),
        "http.response.body.bytes": 5,
        "http.response.headers": {"content-length": 5, "content-type": "text/plain"},
        "url.scheme": "http",
        "url.domain": "www.example.com",
        "url.path": "/index.html",
        "url.query": "a=1&b=2",
        "url.extension": "html",
        "url.full": "http://www.example.com/index.html?a=1&b=2",
        "user_agent.original": "curl/7.37.1",
        "destination.domain": "www.example.com",
        "related.hosts": ["www.example.com"],
    });
    assert_eq!(Value::Object(fields(tx)), expected);
    assert_eq!(h.out[1].status, Status::Error);
    assert_eq!(field(&h.out[1], "http.response.status_phrase"), "not found");
    assert_eq!(h.stats.transactions, 2);
    assert_eq!(h.state.pending_requests(), 0);
}

const CHUNKED_OK: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;e=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n";

/// Three pipelined requests (one with a body) and their responses (one chunked), as two byte streams.
fn pipelined() -> (Vec<u8>, Vec<u8>) {
    let reqs = [
        &b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nx=1&y=2",
        b"HEAD /c HTTP/1.1\r\nHost: h\r\n\r\n",
    ]
    .concat();
    let resps = [
        CHUNKED_OK,
        b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
    ]
    .concat();
    (reqs, resps)
}

fn summary(out: &[Transaction]) -> Vec<String> {
    out.iter().map(|t| format!("{t:?}")).collect()
}

fn run_split(reqs: &[u8], resps: &[u8], chunk: usize) -> Vec<String> {
    let mut h = Harness::default();
    for part in reqs.chunks(chunk) {
        h.feed(C2S, part);
    }
    for part in resps.chunks(chunk) {
        h.feed(S2C, part);
    }
    h.close();
    assert_eq!(h.stats.parse_errors, 0, "chunk {chunk}");
    summary(&h.out)
}

#[test]
fn pipelining_is_fifo_and_split_invariant() {
    let (reqs, resps) = pipelined();
    let whole = run_split(&reqs, &resps, usize::MAX);
    assert_eq!(whole.len(), 3);
    let mut h = Harness::default();
    h.feed(C2S, &reqs).feed(S2C, &resps);
    assert_eq!(h.out[0].query.as_deref(), Some("GET /a"));
    assert_eq!(field(&h.out[0], "http.response.headers"), json!({"content-length": 5}));
    assert_eq!(h.out[0].response_bytes, Some(CHUNKED_OK.len() as u64));
    assert_eq!(h.out[1].query.as_deref(), Some("POST /b"));
    assert_eq!(field(&h.out[1], "url.query"), "x=1&y=2");
    assert_eq!(field(&h.out[1], "http.response.status_code"), 201);
    // The response to HEAD has no body although it announces 1000 bytes.
    assert_eq!(h.out[2].query.as_deref(), Some("HEAD /c"));
    assert_eq!(field(&h.out[2], "http.response.headers"), json!({"content-length": 1000}));
    assert_eq!(h.state.pending_requests(), 0);
    for chunk in 1..=reqs.len().max(resps.len()) {
        assert_eq!(run_split(&reqs, &resps, chunk), whole, "chunk size {chunk}");
    }
    // Every single split point of each stream.
    for cut in 0..=resps.len() {
        let mut h = Harness::default();
        h.feed(C2S, &reqs[..cut.min(reqs.len())]).feed(C2S, &reqs[cut.min(reqs.len())..]);
        h.feed(S2C, &resps[..cut]).feed(S2C, &resps[cut..]).close();
        assert_eq!(summary(&h.out), whole, "cut {cut}");
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn chunked_gzip_body_is_decoded_when_captured() {
    let body = gzip(b"<html><body>hello hello hello</body></html>");
    let (a, b) = body.split_at(10);
    let mut resp =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for part in [a, b] {
        resp.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        resp.extend_from_slice(part);
        resp.extend_from_slice(b"\r\n");
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    let cfg = HttpConfig { include_body_for: vec!["text/html".into()], send_response: true, ..HttpConfig::default() };
    let mut h = Harness::new(cfg);
    h.feed(C2S, GET).feed(S2C, &resp);
    let tx = &h.out[0];
    assert_eq!(field(tx, "http.response.body.content"), "<html><body>hello hello hello</body></html>");
    assert_eq!(field(tx, "http.response.body.bytes"), 43);
    assert_eq!(field(tx, "http.response.headers")["content-length"], body.len());
    assert_eq!(tx.response_bytes, Some(resp.len() as u64));
    assert!(tx.response.as_deref().unwrap().ends_with("\r\n\r\n<html><body>hello hello hello</body></html>"));
    assert!(tx.notes.is_empty());

    // Without capture the body is only counted.
    let mut h = Harness::default();
    h.feed(C2S, GET).feed(S2C, &resp);
    assert_eq!(field(&h.out[0], "http.response.body.bytes"), body.len());
    assert!(!fields(&h.out[0]).contains_key("http.response.body.content"));
}

#[test]
fn stray_line_ends_between_messages_are_not_counted() {
    let mut h = Harness::default();
    h.feed(S2C, b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nabc\r\n");
    h.at(1).feed(C2S, GET).at(2).feed(S2C, OK_HELLO);
    assert_eq!(h.out.len(), 2);
    let tx = &h.out[1];
    assert_eq!(tx.end, Some(h.ts), "the response starts with its own packet");
    assert_eq!(tx.response_bytes, Some(OK_HELLO.len() as u64));
}

#[test]
fn no_body_statuses_and_head() {
    let mut h = Harness::default();
    h.feed(C2S, &[GET, GET, GET].concat());
    h.feed(
        S2C,
        b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    let codes: Vec<_> = h.out.iter().map(|t| field(t, "http.response.status_code").clone()).collect();
    assert_eq!(codes, [json!(204), json!(304), json!(200)]);
}

#[test]
fn expect_100_continue_gives_one_transaction() {
    let cfg = HttpConfig { send_all_headers: true, ..HttpConfig::default() };
    let mut h = Harness::new(cfg);
    h.conn.server_port = 9200;
    h.feed(C2S, b"PUT /idx HTTP/1.1\r\nHost: h:9200\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    h.at(1).feed(S2C, b"HTTP/1.1 100 Continue\r\n\r\n");
    h.at(2).feed(C2S, b"data").at(3).feed(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    // Also when the body was already complete before the 100 arrived.
    h.feed(C2S, b"PUT /idx HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
    h.feed(S2C, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n").close();
    assert_eq!(h.out.len(), 2, "{:#?}", h.out);
    let tx = &h.out[0];
    assert_eq!(field(tx, "http.request.headers")["expect"], "100-continue");
    assert_eq!(field(tx, "http.response.status_code"), 200);
    assert_eq!(field(tx, "url.port"), 9200);
    assert_eq!(tx.notes, Vec::<String>::new(), "9200 is a mismatch only against the server port");
    assert_eq!(field(&h.out[1], "http.response.status_code"), 201);
    assert_eq!(h.stats.unmatched_responses, 0);
}

#[test]
fn early_response_pairs_with_the_request_still_uploading() {
    let mut h = Harness::default();
    h.feed(C2S, b"POST /upload HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    h.at(1).feed(S2C, b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.out.len(), 1, "{:#?}", h.out);
    // The rest of the upload, if the client sends it anyway, is skipped, not parsed as a request.
    h.at(2).feed(C2S, b"0123456789");
    h.feed(C2S, b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n");
    h.feed(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").close();
    assert_eq!(h.out.len(), 2, "{:#?}", h.out);
    assert_eq!(field(&h.out[0], "http.response.status_code"), 413);
    assert_eq!(h.out[0].method.as_deref(), Some("POST"));
    assert_eq!(h.out[1].query.as_deref(), Some("GET /next"));
    assert_eq!((h.stats.unmatched_requests, h.stats.unmatched_responses, h.stats.parse_errors), (0, 0, 0));
}

#[test]
fn close_delimited_body_ends_at_fin() {
    let mut h = Harness::default();
    h.feed(C2S, b"GET / HTTP/1.0\r\n\r\n");
    h.feed(S2C, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>").feed(S2C, b"</html>");
    assert!(h.out.is_empty());
    h.fin(S2C);
    let tx = &h.out[0];
    assert_eq!(field(tx, "http.version"), "1.0");
    assert_eq!(field(tx, "http.response.headers")["content-length"], 13);
    assert_eq!(field(tx, "http.response.body.bytes"), 13);
    // Keep-alive 1.0 and 1.1 responses without a length have an empty body.
    let mut h = Harness::default();
    h.feed(C2S, GET).feed(S2C, b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(h.out.len(), 1);
}

#[test]
fn unmatched_response_and_request() {
    let mut h = Harness::default();
    h.feed(S2C, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(h.out.is_empty(), "a lone 100 Continue is dropped");
    h.at(5).feed(S2C, NOT_FOUND);
    let tx = &h.out[0];
    assert_eq!((tx.status, tx.start, tx.end), (Status::Error, None, Some(h.ts)));
    assert_eq!(tx.ts, h.ts);
    assert_eq!(tx.notes, ["Unmatched response"]);
    assert!(!fields(tx).contains_key("http.version") && tx.method.is_none());

    h.at(6).feed(C2S, b"GET /something HTTP/1.1\r\n\r\n");
    h.at(15).expire();
    assert_eq!(h.out.len(), 1, "not idle for 10 s yet");
    h.at(16).expire();
    let tx = &h.out[1];
    assert_eq!((tx.status, tx.end), (Status::Error, None));
    assert_eq!(tx.notes, ["Unmatched request"]);
    assert_eq!(tx.query.as_deref(), Some("GET /something"));
    assert!(!fields(tx).contains_key("http.response.status_code"));
    assert_eq!((h.stats.unmatched_requests, h.stats.unmatched_responses), (1, 1));

    let mut h = Harness::new(HttpConfig { transaction_timeout: Duration::from_secs(1), ..HttpConfig::default() });
    h.feed(C2S, GET).close();
    assert_eq!(h.out[0].notes, ["Unmatched request"]);
}

#[test]
fn gap_inside_body_keeps_the_transaction() {
    let mut h = Harness::default();
    h.feed(C2S, GET).feed(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
    h.gap(S2C, 50).feed(S2C, &[b'x'; 40]);
    let tx = &h.out[0];
    assert_eq!(tx.status, Status::Ok);
    assert_eq!(tx.notes, ["Packet loss while capturing the response"]);
    assert_eq!(field(tx, "http.response.body.bytes"), 100);

    // The gap swallows the end of the body: the message completes, the next one is found again.
    let mut h = Harness::default();
    h.feed(C2S, &[GET, GET].concat()).feed(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123");
    h.gap(S2C, 200).feed(S2C, b"tail of something\r\n").feed(S2C, OK_HELLO);
    assert_eq!(h.out.len(), 2);
    assert_eq!(h.out[0].notes, ["Packet loss while capturing the response"]);
    assert!(h.out[1].notes.is_empty());

    // Read-until-close bodies count the lost bytes.
    let mut h = Harness::default();
    h.feed(C2S, GET).feed(S2C, b"HTTP/1.0 200 OK\r\n\r\nab").gap(S2C, 10).feed(S2C, b"cd").fin(S2C);
    assert_eq!(field(&h.out[0], "http.response.headers")["content-length"], 14);
    assert_eq!(h.out[0].notes, ["Packet loss while capturing the response"]);
}

#[test]
fn gap_in_head_or_chunked_body_resyncs() {
    let mut h = Harness::default();
    h.feed(C2S, b"GET /lost HTTP/1.1\r\nHo").gap(C2S, 30).feed(C2S, b"st: x\r\n\r\n").feed(C2S, GET);
    h.feed(S2C, OK_HELLO);
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].query.as_deref(), Some("GET /index.html"));

    let mut h = Harness::default();
    h.feed(C2S, GET).feed(S2C, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc");
    h.gap(S2C, 100).feed(S2C, b"def\r\n0\r\n\r\n").feed(S2C, OK_HELLO);
    assert_eq!(h.out.len(), 1, "the chunked response is dropped, the next one pairs");
    assert!(h.out[0].notes.is_empty());
    assert_eq!(h.stats.gaps, 1);
}

#[test]
fn mid_stream_pickup_waits_for_a_start_line() {
    let mut h = Harness::default();
    h.gap(C2S, 0).gap(S2C, 0);
    h.feed(C2S, b"rest of an earlier body\r\nmore").feed(C2S, b"\r\nGET /x HTTP/1.1\r\n\r\n");
    h.feed(S2C, b"ody bytes\nHTTP/1.1 2").feed(S2C, b"00 OK\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.out[0].query.as_deref(), Some("GET /x"));
    assert_eq!(h.stats.parse_errors, 0);
    assert!(h.max_buffered < 64);
}

#[test]
fn authorization_redaction_and_basic_auth_user() {
    let req = b"GET / HTTP/1.1\r\nHost: www.example.com\r\nAuthorization: Basic c2ltcGxlc2ltb246cGFzc3dvcmQ=\r\nX-Secret: s\r\n\r\n";
    let cfg = HttpConfig {
        send_all_headers: true,
        send_request: true,
        redact_authorization: true,
        redact_headers: vec!["X-Secret".into()],
        ..HttpConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.feed(C2S, req).feed(S2C, OK_HELLO);
    let tx = &h.out[0];
    assert_eq!(field(tx, "http.request.headers")["authorization"], "*");
    assert_eq!(field(tx, "http.request.headers")["x-secret"], "REDACTED");
    let raw = tx.request.as_deref().unwrap();
    let stars = "*".repeat(" Basic c2ltcGxlc2ltb246cGFzc3dvcmQ=".len());
    assert!(raw.contains(&format!("\r\nAuthorization:{stars}\r\n")), "{raw}");
    assert!(!fields(tx).contains_key("user.name"));

    let mut h = Harness::new(HttpConfig { send_all_headers: true, ..HttpConfig::default() });
    h.feed(C2S, req).feed(S2C, OK_HELLO);
    assert_eq!(field(&h.out[0], "user.name"), "simplesimon");
    assert_eq!(field(&h.out[0], "related.user"), json!(["simplesimon"]));
    // Without exported headers Packetbeat never sees the user name.
    let mut h = Harness::default();
    h.feed(C2S, req).feed(S2C, OK_HELLO);
    assert!(!fields(&h.out[0]).contains_key("user.name"));
}

#[test]
fn hide_keywords_and_url_encoding() {
    let hide = || HttpConfig { hide_keywords: vec!["pass".into(), "password".into()], ..HttpConfig::default() };
    let post = b"POST /login HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 25\r\n\r\nuser=monica&pass=secret&x";
    let mut h = Harness::new(hide());
    h.feed(C2S, post).feed(S2C, OK_HELLO);
    assert_eq!(field(&h.out[0], "url.query"), "pass=xxxxx&user=monica&x=");
    assert!(!format!("{:?}", h.out[0]).contains("secret"));

    let mut h = Harness::new(hide());
    h.feed(C2S, b"GET /login?user=monica&pass=secret HTTP/1.1\r\nHost: h\r\n\r\n").feed(S2C, OK_HELLO);
    assert_eq!(field(&h.out[0], "url.query"), "pass=xxxxx&user=monica");
    assert!(!format!("{:?}", h.out[0]).contains("secret"));

    let json_body = b"{ \"query\": { \"match_all\": {}}}\n";
    let mut req = format!(
        "POST /_search HTTP/1.1\r\nHost: localhost:9200\r\nContent-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
        json_body.len()
    )
    .into_bytes();
    req.extend_from_slice(json_body);
    let mut h =
        Harness::new(HttpConfig { include_body_for: vec!["x-www-form-urlencoded".into()], ..HttpConfig::default() });
    h.feed(C2S, &req).feed(S2C, OK_HELLO);
    let tx = &h.out[0];
    assert_eq!(field(tx, "url.query"), "%7B+%22query%22%3A+%7B+%22match_all%22%3A+%7B%7D%7D%7D%0A=");
    assert_eq!(field(tx, "http.request.body.content"), std::str::from_utf8(json_body).unwrap());
    assert_eq!(tx.notes, ["Host header port number mismatch"]);
    assert_eq!(
        field(tx, "url.full"),
        "http://localhost:9200/_search?%7B+%22query%22%3A+%7B+%22match_all%22%3A+%7B%7D%7D%7D%0A="
    );
}

#[test]
fn headers_cookies_real_ip_and_ports() {
    let cfg = HttpConfig {
        send_headers: vec!["Cookie".into(), "X-Multi".into()],
        split_cookie: true,
        real_ip_header: "X-Forwarded-For".into(),
        ..HttpConfig::default()
    };
    let mut h = Harness::new(cfg);
    h.feed(
        C2S,
        b"GET / HTTP/1.1\r\nHost: 10.0.0.5\r\nX-Forwarded-For: 89.247.39.104, 10.0.0.1\r\nCookie: A=1; b=\"2\"\r\nX-Multi: 1\r\nX-Multi: 2\r\nReferer: http://ref.example/\r\n\r\n",
    );
    h.feed(S2C, OK_HELLO);
    let tx = &h.out[0];
    assert_eq!(field(tx, "network.forwarded_ip"), "89.247.39.104");
    assert_eq!(field(tx, "related.ip"), json!(["10.0.0.5", "89.247.39.104"]));
    assert_eq!(field(tx, "related.hosts"), json!(["http://ref.example/"]));
    assert_eq!(field(tx, "http.request.referrer"), "http://ref.example/");
    assert_eq!(
        field(tx, "http.request.headers"),
        json!({"content-length": 0, "cookie": {"a": "1", "b": "2"}, "x-multi": "1, 2"})
    );
    assert!(!fields(tx).contains_key("destination.domain"));
    assert_eq!(field(tx, "url.domain"), "10.0.0.5");
    assert_eq!(field(tx, "url.full"), "http://10.0.0.5/");
}

#[test]
fn max_message_size_truncates_the_stored_body() {
    let cfg = HttpConfig { include_body_for: vec!["binary".into()], max_message_size: 1024, ..HttpConfig::default() };
    let mut h = Harness::new(cfg);
    let mut resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/binary\r\nContent-Length: 2048\r\n\r\n".to_vec();
    resp.extend(std::iter::repeat_n(b'z', 2048));
    h.feed(C2S, GET);
    for part in resp.chunks(700) {
        h.feed(S2C, part);
    }
    let tx = &h.out[0];
    assert_eq!(field(tx, "http.response.body.content").as_str().unwrap().len(), 1024);
    assert_eq!(tx.response_bytes, Some(resp.len() as u64));
    assert_eq!(h.stats.oversize_messages, 1);
    assert!(h.max_buffered < 100, "body bytes are consumed as they come");
}

#[test]
fn pending_queue_is_bounded() {
    let mut h = Harness::default();
    for _ in 0..40 {
        h.feed(C2S, GET);
    }
    assert_eq!(h.stats.queue_full, 8);
    assert_eq!(h.out.len(), 8);
    assert!(h.out.iter().all(|t| t.notes == ["Unmatched request"]));
    assert_eq!(h.state.pending_requests(), 32);
}

#[test]
fn upgrade_turns_the_connection_into_a_tunnel() {
    let mut h = Harness::default();
    h.feed(C2S, b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    h.feed(S2C, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
    h.feed(C2S, b"\x81\x85garbage GET / HTTP/1.1\r\n\r\n").feed(S2C, NOT_FOUND).close();
    assert_eq!(h.out.len(), 1);
    assert_eq!(field(&h.out[0], "http.response.status_code"), 101);
}

#[test]
fn garbage_is_counted_and_skipped() {
    let mut h = Harness::default();
    h.feed(C2S, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not http at all\r\n");
    assert_eq!(h.stats.parse_errors, 1);
    h.feed(C2S, b"more junk\n").feed(C2S, GET).feed(S2C, b"\x00\x01garbage\nHTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(h.out.len(), 1);
    assert_eq!(h.stats.parse_errors, 2);
    assert!(h.max_buffered < 200);
}

/// xorshift64*: deterministic pseudo-random numbers without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n.max(1) as u64).unwrap_or(0)
    }
}

#[test]
fn random_bytes_never_panic_and_buffers_stay_bounded() {
    let (reqs, resps) = pipelined();
    let pieces: [&[u8]; 12] = [
        GET,
        OK_HELLO,
        NOT_FOUND,
        &reqs,
        &resps,
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        b"Content-Length: 18446744073709551615\r\n",
        b"\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:99999\r\nAuthorization: Basic ===\r\n\r\n",
        b"0\r\n\r\n",
    ];
    let cfg = HttpConfig {
        send_all_headers: true,
        send_request: true,
        send_response: true,
        include_body_for: vec![String::new()],
        split_cookie: true,
        max_message_size: 300,
        ..HttpConfig::default()
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..300 {
        let mut h = Harness::new(cfg.clone());
        for _ in 0..40 {
            let dir = if rng.next().is_multiple_of(2) { C2S } else { S2C };
            let mut data = pieces[rng.below(pieces.len())].to_vec();
            for _ in 0..rng.below(4) {
                let at = rng.below(data.len());
                if let Some(b) = data.get_mut(at) {
                    *b = u8::try_from(rng.next() & 0xff).unwrap_or(0);
                }
            }
            if rng.next().is_multiple_of(4) {
                data = (0..rng.below(200)).map(|_| u8::try_from(rng.next() & 0xff).unwrap_or(0)).collect();
            }
            let cut = rng.below(data.len() + 1);
            h.feed(dir, &data[..cut]).feed(dir, &data[cut..]);
            match rng.next() % 16 {
                0 => {
                    let len = u32::try_from(rng.below(300)).unwrap_or(0);
                    h.gap(dir, len);
                }
                1 => {
                    h.fin(dir);
                }
                2 => {
                    let secs = u64::try_from(rng.below(30)).unwrap_or(0) + 1;
                    let now = h.ts.nanos() / 1_000_000_000 - 1_700_000_000;
                    h.at(now + secs).expire();
                }
                _ => {}
            }
        }
        h.close();
        assert!(h.max_buffered <= super::parser::HTTP_MAX_HEAD_LEN + 4096, "round {round}");
        for tx in &h.out {
            assert_eq!(tx.kind, "http");
            assert!(tx.start.is_some() || tx.end.is_some());
        }
    }
}
