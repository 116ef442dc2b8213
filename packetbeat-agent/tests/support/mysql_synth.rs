//! Deterministic synthetic MySQL captures for benchmarks: connections with a full TCP handshake,
//! the MySQL greeting and login, then alternating `SELECT`s (a 3-column text result set of
//! `rows` rows, classic EOF framing) and `UPDATE`s (an OK packet), and `COM_QUIT` + FIN.
//! Built byte by byte (Ethernet/IPv4/TCP, classic pcap), no network involved.

#![allow(dead_code, reason = "each user needs a different part")]

/// Shape of the capture.
#[derive(Clone, Copy, Debug)]
pub struct MysqlSpec {
    /// Connections (sequential, distinct client ports).
    pub conns: u32,
    /// Commands per connection.
    pub requests: u32,
    /// Rows per `SELECT`.
    pub rows: u32,
}

use super::synth::{Writer, ACK, FIN_ACK, PSH_ACK, SYN};

/// Appends one MySQL packet (3-byte length, sequence id, payload).
pub fn packet(out: &mut Vec<u8>, seq: u8, payload: &[u8]) {
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_le_bytes()[..3]);
    out.push(seq);
    out.extend_from_slice(payload);
}

/// Appends a length-encoded string shorter than 251 bytes.
pub fn lenenc(out: &mut Vec<u8>, s: &[u8]) {
    out.push(u8::try_from(s.len()).unwrap_or(0));
    out.extend_from_slice(s);
}

fn column(out: &mut Vec<u8>, seq: u8, name: &str) {
    column_typed(out, seq, name, 0xfd);
}

/// Appends a column definition of `shop.users.name` with field type `field_type`.
pub fn column_typed(out: &mut Vec<u8>, seq: u8, name: &str, field_type: u8) {
    let mut p = Vec::new();
    for s in ["def", "shop", "users", "users", name, name] {
        lenenc(&mut p, s.as_bytes());
    }
    p.extend_from_slice(&[0x0c, 0x21, 0, 0xff, 0, 0, 0, field_type, 0, 0, 0, 0, 0]);
    packet(out, seq, &p);
}

/// A text result set (`id`, `name`, `email`) of `rows` rows, classic EOF framing.
pub fn select_response(rows: u32, id: u32) -> Vec<u8> {
    let mut out = Vec::new();
    packet(&mut out, 1, &[3]);
    let mut seq = 2u8;
    for name in ["id", "name", "email"] {
        column(&mut out, seq, name);
        seq = seq.wrapping_add(1);
    }
    packet(&mut out, seq, &[0xfe, 0, 0, 2, 0]);
    for r in 0..rows {
        seq = seq.wrapping_add(1);
        let mut p = Vec::new();
        lenenc(&mut p, format!("{}", id * 1000 + r).as_bytes());
        lenenc(&mut p, format!("user number {r}").as_bytes());
        lenenc(&mut p, format!("user{r}@example.com").as_bytes());
        packet(&mut out, seq, &p);
    }
    packet(&mut out, seq.wrapping_add(1), &[0xfe, 0, 0, 2, 0]);
    out
}

/// The server greeting (MariaDB 10.11, `mysql_native_password`).
pub fn greeting() -> Vec<u8> {
    let mut greeting = Vec::new();
    packet(&mut greeting, 0, b"\x0a10.11.6-MariaDB\0\x01\0\0\0abcdefgh\0\xff\xf7\x21\x02\0\xff\x81\x15\0\0\0\0\0\0\0\0\0\0ijklmnopqrst\0mysql_native_password\0");
    greeting
}

/// The client's login (user `bench`, database `shop`), the server's OK and `COM_QUIT`.
pub fn login_ok_quit() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let mut login = Vec::new();
    let mut lp = 0x000f_a685u32.to_le_bytes().to_vec();
    lp.extend_from_slice(&[0, 0, 0, 1, 0x21]);
    lp.extend_from_slice(&[0; 23]);
    lp.extend_from_slice(b"bench\0\0shop\0");
    packet(&mut login, 1, &lp);
    let mut auth_ok = Vec::new();
    packet(&mut auth_ok, 2, &[0, 0, 0, 2, 0, 0, 0]);
    let mut quit = Vec::new();
    packet(&mut quit, 0, &[0x01]);
    (login, auth_ok, quit)
}

/// The capture and how many packets and transactions it holds.
pub fn mysql_sessions(spec: MysqlSpec) -> (Vec<u8>, u64, u64) {
    let mut w = Writer::pcap_ticking(9);
    let server = ([10, 0, 0, 3], 3306u16);
    let greeting = greeting();
    let (login, auth_ok, quit) = login_ok_quit();
    for c in 0..spec.conns {
        let client =
            ([10, 0, 1, u8::try_from(c % 200).unwrap_or(0) + 1], 20_000 + u16::try_from(c % 40_000).unwrap_or(0));
        let (mut cs, mut ss) = (1000u32, 9000u32);
        w.frame(client, server, cs, 0, SYN, b"");
        w.frame(server, client, ss, cs + 1, SYN | ACK, b"");
        cs += 1;
        ss += 1;
        w.frame(client, server, cs, ss, ACK, b"");
        for (from_client, bytes) in [(false, &greeting), (true, &login), (false, &auth_ok)] {
            if from_client {
                w.frame(client, server, cs, ss, PSH_ACK, bytes);
                cs += u32::try_from(bytes.len()).unwrap_or(0);
            } else {
                w.frame(server, client, ss, cs, PSH_ACK, bytes);
                ss += u32::try_from(bytes.len()).unwrap_or(0);
            }
        }
        for r in 0..spec.requests {
            let (sql, resp) = if r % 2 == 0 {
                (format!("SELECT id, name, email FROM users WHERE id > {r}"), select_response(spec.rows, r))
            } else {
                let mut ok = Vec::new();
                packet(&mut ok, 1, &[0, 1, 0, 2, 0, 0, 0]);
                (format!("UPDATE users SET visits = visits + 1 WHERE id = {r}"), ok)
            };
            let mut req = Vec::new();
            let mut q = vec![0x03];
            q.extend_from_slice(sql.as_bytes());
            packet(&mut req, 0, &q);
            w.frame(client, server, cs, ss, PSH_ACK, &req);
            cs += u32::try_from(req.len()).unwrap_or(0);
            w.frame(server, client, ss, cs, PSH_ACK, &resp);
            ss += u32::try_from(resp.len()).unwrap_or(0);
            w.frame(client, server, cs, ss, ACK, b"");
        }
        w.frame(client, server, cs, ss, PSH_ACK, &quit);
        cs += u32::try_from(quit.len()).unwrap_or(0);
        w.frame(client, server, cs, ss, FIN_ACK, b"");
        w.frame(server, client, ss, cs + 1, FIN_ACK, b"");
        w.frame(client, server, cs + 1, ss + 1, ACK, b"");
    }
    let packets = w.packets;
    (w.out, packets, u64::from(spec.conns) * u64::from(spec.requests))
}
