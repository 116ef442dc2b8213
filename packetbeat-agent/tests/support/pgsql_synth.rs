//! Deterministic synthetic PostgreSQL captures for the replay benchmark: connections with a TCP
//! handshake, StartupMessage and greeting, then a mix of simple queries (a 3-column, 5-row result)
//! and extended-protocol pipelines (Bind/Execute ×4 on a prepared statement with a binary
//! parameter, one Sync), each answered in one segment.

#![allow(dead_code, reason = "each user needs a different part")]

use super::synth::{Writer, ACK, FIN_ACK, PSH_ACK, SYN};

/// Shape of the capture.
#[derive(Clone, Copy, Debug)]
pub struct PgSpec {
    /// Connections (sequential, distinct client ports).
    pub conns: u32,
    /// Round trips per connection; every other one is a 4-Execute pipeline.
    pub round_trips: u32,
}

/// Appends one backend/frontend message.
pub fn msg(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(body);
}

/// A NUL-terminated string.
pub fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// The StartupMessage (user and database `bench`).
pub fn startup() -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for s in ["user", "bench", "database", "bench"] {
        body.extend(cstr(s));
    }
    body.push(0);
    let mut v = u32::try_from(body.len() + 4).unwrap_or(0).to_be_bytes().to_vec();
    v.extend(body);
    v
}

/// AuthenticationOk, one ParameterStatus, BackendKeyData, ReadyForQuery.
pub fn greeting() -> Vec<u8> {
    let mut v = Vec::new();
    msg(&mut v, b'R', &[0, 0, 0, 0]);
    msg(&mut v, b'S', b"server_version\x0015.0\0");
    msg(&mut v, b'K', &[0, 0, 0, 1, 0, 0, 0, 2]);
    msg(&mut v, b'Z', b"I");
    v
}

/// RowDescription of (`id` int4, `name` text, `balance` numeric).
pub fn row_description(v: &mut Vec<u8>) {
    let mut b = vec![0, 3];
    for (name, oid) in [("id", 23u32), ("name", 25), ("balance", 1700)] {
        b.extend(cstr(name));
        b.extend([0, 0, 0, 0, 0, 0]);
        b.extend(oid.to_be_bytes());
        b.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    }
    msg(v, b'T', &b);
}

/// DataRow `i` of the `row_description` columns.
pub fn data_row(v: &mut Vec<u8>, i: u32) {
    let mut b = vec![0, 3];
    for col in [i.to_string(), format!("customer number {i}"), format!("{}.{:02}", i * 37, i % 100)] {
        b.extend(u32::try_from(col.len()).unwrap_or(0).to_be_bytes());
        b.extend(col.as_bytes());
    }
    msg(v, b'D', &b);
}

/// One simple query and its response.
pub fn simple(r: u32) -> (Vec<u8>, Vec<u8>) {
    let mut q = Vec::new();
    msg(&mut q, b'Q', &cstr(&format!("SELECT id, name, balance FROM accounts WHERE branch = {r} LIMIT 5")));
    let mut s = Vec::new();
    row_description(&mut s);
    for i in 0..5 {
        data_row(&mut s, r * 5 + i);
    }
    msg(&mut s, b'C', b"SELECT 5\0");
    msg(&mut s, b'Z', b"I");
    (q, s)
}

/// A pipeline of 4 executions of a prepared statement (parsed on the first round trip).
pub fn pipeline(r: u32, first: bool) -> (Vec<u8>, Vec<u8>) {
    let mut q = Vec::new();
    let mut s = Vec::new();
    if first {
        let mut b = cstr("upd");
        b.extend(cstr("UPDATE accounts SET balance = balance + 1 WHERE id = $1"));
        b.extend([0, 1, 0, 0, 0, 23]);
        msg(&mut q, b'P', &b);
        msg(&mut s, b'1', b"");
    }
    for k in 0..4u32 {
        let mut b = cstr("");
        b.extend(cstr("upd"));
        b.extend([0, 1, 0, 1, 0, 1, 0, 0, 0, 4]);
        b.extend((r * 4 + k).to_be_bytes());
        b.extend([0, 0]);
        msg(&mut q, b'B', &b);
        msg(&mut q, b'E', b"\0\0\0\0\0");
        msg(&mut s, b'2', b"");
        msg(&mut s, b'C', b"UPDATE 1\0");
    }
    msg(&mut q, b'S', b"");
    msg(&mut s, b'Z', b"I");
    (q, s)
}

/// The capture and how many packets and transactions it holds.
#[must_use]
pub fn pgsql_mix(spec: PgSpec) -> (Vec<u8>, u64, u64) {
    let mut w = Writer::pcap();
    let server = ([10, 0, 0, 3], 5432u16);
    let mut transactions = 0u64;
    for c in 0..spec.conns {
        let client =
            ([10, 0, 2, u8::try_from(c % 200).unwrap_or(0) + 1], 20_000 + u16::try_from(c % 40_000).unwrap_or(0));
        let (mut cs, mut ss) = (1000u32, 5000u32);
        w.frame(client, server, cs, 0, SYN, b"");
        w.frame(server, client, ss, cs + 1, SYN | ACK, b"");
        cs += 1;
        ss += 1;
        w.frame(client, server, cs, ss, ACK, b"");
        let mut exchanges = vec![(startup(), greeting())];
        for r in 0..spec.round_trips {
            exchanges.push(if r % 2 == 0 { simple(r) } else { pipeline(r, r == 1) });
            transactions += if r % 2 == 0 { 1 } else { 4 };
        }
        for (q, s) in exchanges {
            w.frame(client, server, cs, ss, PSH_ACK, &q);
            cs += u32::try_from(q.len()).unwrap_or(0);
            w.frame(server, client, ss, cs, PSH_ACK, &s);
            ss += u32::try_from(s.len()).unwrap_or(0);
            w.frame(client, server, cs, ss, ACK, b"");
        }
        w.frame(client, server, cs, ss, FIN_ACK, b"");
        w.frame(server, client, ss, cs + 1, FIN_ACK, b"");
        w.frame(client, server, cs + 1, ss + 1, ACK, b"");
    }
    let packets = w.packets;
    (w.out, packets, transactions)
}
