//! Deterministic synthetic Redis captures for the benchmark: connections with a full handshake,
//! commands pipelined `depth` per segment (SET, GET, HGETALL, LRANGE, INCR, a WRONGTYPE error) and
//! the replies coalesced one segment per batch, ACKs and FINs. Built byte by byte
//! (Ethernet/IPv4/TCP, classic pcap), no network involved.

#![allow(dead_code, reason = "each user needs a different part")]

/// Shape of the capture.
#[derive(Clone, Copy, Debug)]
pub struct RedisSpec {
    /// Connections (sequential, distinct client ports).
    pub conns: u32,
    /// Commands per connection.
    pub commands: u32,
    /// Commands per pipelined segment.
    pub depth: u32,
}

use super::synth::{Writer, ACK, FIN_ACK, PSH_ACK, SYN};

fn command(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    v
}

/// Command `i` of connection `c` and its reply.
pub fn exchange(c: u32, i: u32) -> (Vec<u8>, Vec<u8>) {
    let key = format!("user:{c}:{i}");
    match i % 6 {
        0 => (command(&["SET", &key, "some value of moderate length"]), b"+OK\r\n".to_vec()),
        1 => (command(&["GET", &key]), b"$29\r\nsome value of moderate length\r\n".to_vec()),
        2 => (command(&["HGETALL", &key]), b"*4\r\n$4\r\nname\r\n$5\r\nalice\r\n$3\r\nage\r\n$2\r\n42\r\n".to_vec()),
        3 => (command(&["LRANGE", &key, "0", "2"]), b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n".to_vec()),
        4 => (command(&["INCR", "counter"]), format!(":{i}\r\n").into_bytes()),
        _ => (
            command(&["LPUSH", &key, "x"]),
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n".to_vec(),
        ),
    }
}

/// The capture and how many packets and transactions it holds.
pub fn redis_pipelined(spec: RedisSpec) -> (Vec<u8>, u64, u64) {
    let mut w = Writer::pcap();
    let server = ([10, 0, 0, 2], 6379u16);
    let depth = spec.depth.max(1);
    for c in 0..spec.conns {
        let client =
            ([10, 0, 1, u8::try_from(c % 200).unwrap_or(0) + 1], 10_000 + u16::try_from(c % 50_000).unwrap_or(0));
        let (mut cs, mut ss) = (1000u32, 5000u32);
        w.frame(client, server, cs, 0, SYN, b"");
        w.frame(server, client, ss, cs + 1, SYN | ACK, b"");
        cs += 1;
        ss += 1;
        w.frame(client, server, cs, ss, ACK, b"");
        let mut i = 0;
        while i < spec.commands {
            let (mut reqs, mut reps) = (Vec::new(), Vec::new());
            for j in i..(i + depth).min(spec.commands) {
                let (q, r) = exchange(c, j);
                reqs.extend(q);
                reps.extend(r);
            }
            i += depth;
            w.frame(client, server, cs, ss, PSH_ACK, &reqs);
            cs += u32::try_from(reqs.len()).unwrap_or(0);
            w.frame(server, client, ss, cs, PSH_ACK, &reps);
            ss += u32::try_from(reps.len()).unwrap_or(0);
            w.frame(client, server, cs, ss, ACK, b"");
        }
        w.frame(client, server, cs, ss, FIN_ACK, b"");
        w.frame(server, client, ss, cs + 1, FIN_ACK, b"");
        w.frame(client, server, cs + 1, ss + 1, ACK, b"");
    }
    let packets = w.packets;
    (w.out, packets, u64::from(spec.conns) * u64::from(spec.commands))
}
