//! HTTP/1.1 conversations for the large benchmark captures: a keep-alive connection with a realistic
//! mix of responses, and a one-request connection. Written through [`super::tcp_conn`], so bodies are
//! cut into MSS segments and acknowledged as a Linux client would.
//!
//! The keep-alive mix is a fixed cycle of 16 round trips (each connection starts at a different
//! phase):
//!
//! | round trips | request | response | packets |
//! |---|---|---|---|
//! | 8 | `GET /api/...` | 200 `application/json`, 900-byte body, one segment | 3 |
//! | 3 | `GET /static/...` | 200 `text/html`, 8 KiB (6 segments) | 10 |
//! | 1 | `GET /assets/...` | 200 `image/png`, 32 KiB (23 segments), 128 KiB (91) every other cycle | 36 / 138 |
//! | 2 | `POST /api/...` with a 600-byte JSON body | 201 `application/json`, 120-byte body | 3 |
//! | 1 | `GET /missing/...` | 404 `text/html`, 150-byte body | 3 |
//! | 1 | `GET /api/...` with `If-None-Match` | 304, no body | 3 |
//!
//! That is 153 packets per 16 transactions on average (9.6 per transaction), about 7.5 KiB of
//! response per transaction; packets are counted with the request and the client's ACKs.

#![allow(dead_code, reason = "each user needs a different part")]

use std::io::Write;

use super::synth::Writer;
use super::tcp_conn::{Conn, Endpoint, Session};

/// The server every HTTP session talks to.
pub const SERVER: Endpoint = ([10, 0, 0, 2], 80);

/// Round trips per keep-alive connection.
pub const KEEPALIVE_REQUESTS: u32 = 100;

/// One entry of the keep-alive cycle: (method, path prefix, status line, content type, body bytes).
type Kind = (&'static str, &'static str, &'static str, &'static str, usize);

const SMALL_GET: Kind = ("GET", "/api/v1/items/", "200 OK", "application/json", 900);
const PAGE: Kind = ("GET", "/static/page-", "200 OK", "text/html", 8 << 10);
const ASSET: Kind = ("GET", "/assets/img-", "200 OK", "image/png", 32 << 10);
const BIG_ASSET: Kind = ("GET", "/assets/big-", "200 OK", "image/png", 128 << 10);
const POST: Kind = ("POST", "/api/v1/orders/", "201 Created", "application/json", 120);
const MISSING: Kind = ("GET", "/missing/", "404 Not Found", "text/html", 150);
const NOT_MODIFIED: Kind = ("GET", "/api/v1/items/", "304 Not Modified", "", 0);

/// The cycle of the module comment (`ASSET` becomes `BIG_ASSET` every other cycle).
const CYCLE: [Kind; 16] = [
    SMALL_GET,
    PAGE,
    SMALL_GET,
    POST,
    SMALL_GET,
    PAGE,
    SMALL_GET,
    ASSET,
    POST,
    SMALL_GET,
    PAGE,
    SMALL_GET,
    MISSING,
    SMALL_GET,
    NOT_MODIFIED,
    SMALL_GET,
];

/// Body bytes, sliced for every response and request body.
static FILLER: [u8; 128 << 10] = [b'z'; 128 << 10];

/// A keep-alive connection (`requests` round trips of the mix) or, with `requests == 1`, a
/// one-request connection serving a small API response.
pub struct Http {
    conn_no: u32,
    round_trip: u32,
    requests: u32,
    buf: Vec<u8>,
}

impl Http {
    /// Connection number `conn_no` (its phase in the cycle) with `requests` round trips.
    pub fn new(conn_no: u32, requests: u32) -> Self {
        Self { conn_no, round_trip: 0, requests, buf: Vec::with_capacity(1 << 10) }
    }

    fn kind(&self) -> Kind {
        if self.requests == 1 {
            return SMALL_GET;
        }
        let n = self.round_trip + self.conn_no;
        let kind = CYCLE[(n % 16) as usize];
        if kind == ASSET && (n / 16) % 2 == 1 {
            BIG_ASSET
        } else {
            kind
        }
    }
}

impl Session for Http {
    fn step(&mut self, conn: &mut Conn, w: &mut Writer) -> Option<u64> {
        if self.round_trip >= self.requests {
            return None;
        }
        let (method, path, status, content_type, body_len) = self.kind();
        let id = self.conn_no * 1000 + self.round_trip;
        self.buf.clear();
        let b = &mut self.buf;
        write!(b, "{method} {path}{id} HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: synth/2.0\r\n")
            .expect("write to Vec");
        if status.starts_with("304") {
            write!(b, "If-None-Match: \"v{id}\"\r\n").expect("write to Vec");
        }
        if method == "POST" {
            write!(b, "Content-Type: application/json\r\nContent-Length: 600\r\n\r\n").expect("write to Vec");
            b.extend_from_slice(&FILLER[..600]);
        } else {
            b.extend_from_slice(b"Accept: */*\r\n\r\n");
        }
        conn.client_sends(w, b);
        b.clear();
        write!(b, "HTTP/1.1 {status}\r\nServer: nginx/1.24.0\r\nConnection: keep-alive\r\n").expect("write to Vec");
        if !content_type.is_empty() {
            write!(b, "Content-Type: {content_type}\r\n").expect("write to Vec");
        }
        if !status.starts_with("304") {
            write!(b, "Content-Length: {body_len}\r\n").expect("write to Vec");
        }
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(&FILLER[..body_len]);
        conn.server_sends(w, b);
        self.round_trip += 1;
        Some(1)
    }
}

/// Writes `conns` keep-alive connections of the mix, `concurrency` open at once; returns the
/// transactions.
pub fn keepalive_mix(w: &mut Writer, conns: u32, concurrency: usize) -> u64 {
    super::tcp_conn::interleave(w, concurrency, |n| {
        (n < conns).then(|| (SERVER, Box::new(Http::new(n, KEEPALIVE_REQUESTS)) as Box<dyn Session>))
    })
}

/// Writes `conns` connections of one small API request each (handshake, request, response, ACK,
/// close: 9 packets), `concurrency` open at once; returns the transactions.
pub fn one_per_conn(w: &mut Writer, conns: u32, concurrency: usize) -> u64 {
    super::tcp_conn::interleave(w, concurrency, |n| {
        (n < conns).then(|| (SERVER, Box::new(Http::new(n, 1)) as Box<dyn Session>))
    })
}
