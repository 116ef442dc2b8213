//! TCP as the benchmark captures need it: one connection's sequence numbers, the handshake, payloads
//! cut into MSS segments with the receiver's delayed ACK (one pure ACK per 2 segments), the close;
//! and a scheduler that runs many protocol sessions interleaved in time, so large captures have many
//! live connections (as a real link does) instead of one connection after another.

#![allow(dead_code, reason = "each user needs a different part")]

use super::synth::{Writer, ACK, FIN_ACK, PSH_ACK, SYN};

/// Ethernet MTU 1500 minus IPv4, TCP and the timestamp option: what Linux sends on a LAN.
pub const MSS: usize = 1448;

/// An IPv4 address and port.
pub type Endpoint = ([u8; 4], u16);

/// One connection's state: endpoints and the next sequence number of each side.
pub struct Conn {
    client: Endpoint,
    server: Endpoint,
    cs: u32,
    ss: u32,
}

impl Conn {
    /// Writes the 3-way handshake.
    pub fn open(w: &mut Writer, client: Endpoint, server: Endpoint) -> Self {
        let (cs, ss) = (1000u32, 5000u32);
        w.frame(client, server, cs, 0, SYN, b"");
        w.frame(server, client, ss, cs + 1, SYN | ACK, b"");
        w.frame(client, server, cs + 1, ss + 1, ACK, b"");
        Self { client, server, cs: cs + 1, ss: ss + 1 }
    }

    /// The client sends `payload` (MSS segments; the server ACKs every second one, the last one is
    /// acknowledged by the response).
    pub fn client_sends(&mut self, w: &mut Writer, payload: &[u8]) {
        let (client, server) = (self.client, self.server);
        for (i, seg) in payload.chunks(MSS).enumerate() {
            w.frame(client, server, self.cs, self.ss, PSH_ACK, seg);
            self.cs = self.cs.wrapping_add(seg.len() as u32);
            if i % 2 == 1 && (i + 1) * MSS < payload.len() {
                w.frame(server, client, self.ss, self.cs, ACK, b"");
            }
        }
    }

    /// The server sends `payload` (MSS segments); the client ACKs every second segment and, after a
    /// delayed-ACK timeout, an odd last one.
    pub fn server_sends(&mut self, w: &mut Writer, payload: &[u8]) {
        let (client, server) = (self.client, self.server);
        let mut unacked = 0;
        for seg in payload.chunks(MSS) {
            w.frame(server, client, self.ss, self.cs, PSH_ACK, seg);
            self.ss = self.ss.wrapping_add(seg.len() as u32);
            unacked += 1;
            if unacked == 2 {
                w.frame(client, server, self.cs, self.ss, ACK, b"");
                unacked = 0;
            }
        }
        if unacked > 0 {
            w.frame(client, server, self.cs, self.ss, ACK, b"");
        }
    }

    /// The client closes: FIN, the server's FIN, the last ACK.
    pub fn close(self, w: &mut Writer) {
        let (client, server, cs, ss) = (self.client, self.server, self.cs, self.ss);
        w.frame(client, server, cs, ss, FIN_ACK, b"");
        w.frame(server, client, ss, cs.wrapping_add(1), FIN_ACK, b"");
        w.frame(client, server, cs.wrapping_add(1), ss.wrapping_add(1), ACK, b"");
    }
}

/// A protocol conversation on one connection, written one round trip at a time.
pub trait Session {
    /// Writes the next round trip on `conn`; returns the transactions it completes, or `None` when
    /// the conversation is over (the scheduler then closes the connection).
    fn step(&mut self, conn: &mut Conn, w: &mut Writer) -> Option<u64>;
}

/// A distinct client address for connection `n` (unique for n < 2^24, so every connection is its
/// own flow and N workers get an even share).
pub fn client_endpoint(n: u32) -> Endpoint {
    let [_, a, b, c] = n.to_be_bytes();
    ([10, 100 + a % 100, b, c], 20_000 + (n % 40_000) as u16)
}

/// Runs sessions from `next_session` (given a connection number; `None`: no more connections) with
/// `concurrency` connections open at once, one round trip each in turn. Returns the transactions.
pub fn interleave(
    w: &mut Writer,
    concurrency: usize,
    mut next_session: impl FnMut(u32) -> Option<(Endpoint, Box<dyn Session>)>,
) -> u64 {
    let mut transactions = 0;
    let mut started = 0u32;
    let mut open = |w: &mut Writer, started: &mut u32| {
        let (server, session) = next_session(*started)?;
        let conn = Conn::open(w, client_endpoint(*started), server);
        *started += 1;
        Some((conn, session))
    };
    let mut live: Vec<Option<(Conn, Box<dyn Session>)>> = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        live.push(open(w, &mut started));
    }
    while live.iter().any(Option::is_some) {
        for slot in &mut live {
            let Some((conn, session)) = slot.as_mut() else { continue };
            if let Some(tx) = session.step(conn, w) {
                transactions += tx;
                continue;
            }
            if let Some((conn, _)) = slot.take() {
                conn.close(w);
            }
            *slot = open(w, &mut started);
        }
    }
    transactions
}
