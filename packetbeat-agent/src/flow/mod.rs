//! The connection table of one worker: finds or creates the connection of each segment, drives
//! per-direction reassembly ([`stream`]) into the connection's protocol, runs timers on packet time,
//! and hands finished transactions to the [`Publish`] sink with their connection.
//!
//! Client and server are fixed when a connection is created: the server is the side whose port is
//! configured (the destination when both are).

pub mod stream;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

use crate::config::Limits;
use crate::event::Transaction;
use crate::packet::TcpSegment;
use crate::protocols::registry::{ProtocolId, Registry, PROTOCOL_COUNT};
use crate::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use crate::time::Timestamp;
use stream::{Sink, Stream, StreamLimits};

/// How often (packet time) protocol timers and idle connections are checked.
const TICK: Duration = Duration::from_secs(1);

/// Where finished transactions go.
pub trait Publish {
    /// Publishes one transaction of connection `conn`.
    fn publish(&mut self, tx: Transaction, conn: &ConnInfo);
}

/// Counters of the flow layer (per worker; folded into the global metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Segments handled.
    pub segments: u64,
    /// Segments whose ports are not configured (replay only: the kernel filters live traffic).
    pub unconfigured_port: u64,
    /// Connections created.
    pub connections: u64,
    /// Segments without SYN or data for no known connection (e.g. the last ACK after both FINs):
    /// not worth a connection.
    pub no_connection: u64,
    /// Connections not created because the table was full.
    pub table_full: u64,
    /// Directions picked up without their SYN (resynchronised at the next message).
    pub midstream: u64,
    /// Holes reported to protocols.
    pub gaps: u64,
    /// Bytes in those holes.
    pub gap_bytes: u64,
    /// Segments (or parts) seen twice.
    pub retransmits: u64,
    /// Segments held out of order.
    pub ooo_segments: u64,
    /// Times the out-of-order bounds forced a hole to be declared lost.
    pub ooo_overflow: u64,
    /// Times a stream's unconsumed bytes exceeded `stream_max_bytes`.
    pub stream_cap_hit: u64,
    /// Connections closed by FIN/RST.
    pub closed: u64,
    /// Connections closed for being idle.
    pub idle_expired: u64,
}

/// A connection's key: its two endpoints in a fixed order, so both directions of a connection find
/// it with one lookup; which endpoint is the client is kept in the [`Connection`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    low: Endpoint,
    high: Endpoint,
}

impl ConnKey {
    fn of(a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        let (a, b) = (Endpoint::of(a), Endpoint::of(b));
        if a <= b {
            Self { low: a, high: b }
        } else {
            Self { low: b, high: a }
        }
    }
}

/// An endpoint as two plain integers, which hash and compare in a few instructions (an `IpAddr` is
/// an enum: every comparison and hash goes through its variant first). The family is kept beside
/// the port, so an IPv4 address is never the same endpoint as its IPv4-mapped IPv6 form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Endpoint {
    addr: u128,
    family_port: u32,
}

impl Endpoint {
    fn of((ip, port): (IpAddr, u16)) -> Self {
        match ip {
            IpAddr::V4(a) => Self { addr: u128::from(a.to_bits()), family_port: 4 << 16 | u32::from(port) },
            IpAddr::V6(a) => Self { addr: a.to_bits(), family_port: 6 << 16 | u32::from(port) },
        }
    }
}

struct Connection {
    info: ConnInfo,
    proto_id: ProtocolId,
    proto: Box<dyn ProtocolState>,
    streams: [Stream; 2],
    last_seen: Timestamp,
}

impl Connection {
    /// The direction of a segment sent from `src`.
    fn direction_from(&self, src: (IpAddr, u16)) -> Direction {
        if src == (self.info.client_ip, self.info.client_port) {
            Direction::ToServer
        } else {
            Direction::ToClient
        }
    }
}

/// One worker's connections and counters.
pub struct FlowTable {
    conns: FxHashMap<ConnKey, Connection>,
    registry: Arc<Registry>,
    limits: StreamLimits,
    max_connections: usize,
    idle_timeout: Duration,
    out: Vec<Transaction>,
    now: Timestamp,
    next_tick: Timestamp,
    /// Flow counters.
    pub stats: FlowStats,
    /// Per-protocol counters, indexed by [`ProtocolId::index`].
    pub proto_stats: [ProtoStats; PROTOCOL_COUNT],
}

impl FlowTable {
    /// An empty table.
    #[must_use]
    pub fn new(registry: Arc<Registry>, limits: &Limits) -> Self {
        Self {
            conns: FxHashMap::default(),
            registry,
            limits: StreamLimits {
                max_buffered: limits.stream_max_bytes,
                max_ooo_segments: limits.max_out_of_order_segments.max(1),
                max_ooo_bytes: limits.max_out_of_order_bytes,
            },
            max_connections: limits.max_connections,
            idle_timeout: limits.connection_idle_timeout,
            out: Vec::new(),
            now: Timestamp::default(),
            next_tick: Timestamp::default(),
            stats: FlowStats::default(),
            proto_stats: Default::default(),
        }
    }

    /// Open connections.
    #[must_use]
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// No open connections.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Handles one segment; time advances to its timestamp.
    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, publish: &mut dyn Publish) {
        self.stats.segments += 1;
        self.advance(seg.ts, publish);
        let src = (seg.src_ip, seg.src_port);
        let dst = (seg.dst_ip, seg.dst_port);
        let key = ConnKey::of(src, dst);
        // One lookup for a segment of a known connection (the common case); new connections and a
        // SYN that may reopen one go the long way.
        let may_reopen = seg.flags.syn() && !seg.flags.ack();
        let (dir, conn) = match self.conns.get_mut(&key) {
            Some(c) if !may_reopen => (c.direction_from(src), c),
            _ => {
                let Some(dir) = self.open(key, seg, publish) else { return };
                let Some(c) = self.conns.get_mut(&key) else { return };
                (dir, c)
            }
        };
        conn.last_seen = seg.ts;
        let Connection { info, proto_id, proto, streams, .. } = conn;
        let mut cx =
            ParseCtx { ts: seg.ts, conn: info, out: &mut self.out, stats: &mut self.proto_stats[proto_id.index()] };
        let [to_server, to_client] = streams;
        let (this, other) = match dir {
            Direction::ToServer => (to_server, to_client),
            Direction::ToClient => (to_client, to_server),
        };
        let limits = self.limits;
        if seg.flags.syn() {
            this.on_syn(seg.seq);
        }
        if seg.flags.ack() {
            let mut sink =
                Sink { proto: proto.as_mut(), cx: &mut cx, stats: &mut self.stats, limits, dir: dir.reverse() };
            other.on_peer_ack(seg.ack, &mut sink);
        }
        let mut sink = Sink { proto: proto.as_mut(), cx: &mut cx, stats: &mut self.stats, limits, dir };
        let payload_seq = if seg.flags.syn() { seg.seq.wrapping_add(1) } else { seg.seq };
        if !seg.payload.is_empty() || seg.wire_payload_len > 0 || seg.flags.fin() {
            this.on_segment(payload_seq, seg.payload, seg.wire_payload_len, seg.flags.fin(), &mut sink);
        }
        if seg.flags.rst() {
            this.flush(&mut sink);
            this.finish(&mut sink);
        }
        let done = this.finished() && (other.finished() || seg.flags.rst());
        if done {
            self.stats.closed += 1;
            self.remove(&key, publish);
        } else if !self.out.is_empty() {
            for tx in self.out.drain(..) {
                publish.publish(tx, info);
            }
        }
    }

    /// The direction of a segment whose connection is not known yet, or is known and the segment is
    /// a SYN: a new connection is opened (when a port is configured and the segment may open one),
    /// and a SYN with a new sequence number on a known 4-tuple replaces the old one (port reuse).
    /// `None` when the segment is dropped (counted).
    fn open(&mut self, key: ConnKey, seg: &TcpSegment<'_>, publish: &mut dyn Publish) -> Option<Direction> {
        let src = (seg.src_ip, seg.src_port);
        let dst = (seg.dst_ip, seg.dst_port);
        if let Some(c) = self.conns.get(&key) {
            let dir = c.direction_from(src);
            if dir == Direction::ToServer && c.streams[0].is_new_syn(seg.seq) {
                let id = c.proto_id;
                self.remove(&key, publish);
                if !self.create(key, src, dst, id, seg.ts) {
                    return None;
                }
            }
            return Some(dir);
        }
        let (client, server, dir) = if let Some(id) = self.registry.protocol_for_port(seg.dst_port) {
            (src, dst, (id, Direction::ToServer))
        } else if let Some(id) = self.registry.protocol_for_port(seg.src_port) {
            (dst, src, (id, Direction::ToClient))
        } else {
            self.stats.unconfigured_port += 1;
            return None;
        };
        // Only a SYN or data opens a connection: the last ACK of a closed connection (or a stray
        // ACK, FIN or RST) would otherwise leave an empty entry until its idle timeout.
        if !seg.flags.syn() && seg.payload.is_empty() && seg.wire_payload_len == 0 {
            self.stats.no_connection += 1;
            return None;
        }
        self.create(key, client, server, dir.0, seg.ts).then_some(dir.1)
    }

    fn create(
        &mut self,
        key: ConnKey,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        id: ProtocolId,
        ts: Timestamp,
    ) -> bool {
        if self.conns.len() >= self.max_connections {
            self.stats.table_full += 1;
            return false;
        }
        let Some(proto) = self.registry.new_state(id) else { return false };
        self.stats.connections += 1;
        let info = ConnInfo { client_ip: client.0, client_port: client.1, server_ip: server.0, server_port: server.1 };
        self.conns.insert(key, Connection { info, proto_id: id, proto, streams: Default::default(), last_seen: ts });
        true
    }

    /// Closes a connection: holes are reported, the protocol flushes, transactions are published.
    fn remove(&mut self, key: &ConnKey, publish: &mut dyn Publish) {
        let Some(mut conn) = self.conns.remove(key) else { return };
        let Connection { info, proto_id, proto, streams, .. } = &mut conn;
        let mut cx =
            ParseCtx { ts: self.now, conn: info, out: &mut self.out, stats: &mut self.proto_stats[proto_id.index()] };
        for (i, s) in streams.iter_mut().enumerate() {
            let dir = if i == 0 { Direction::ToServer } else { Direction::ToClient };
            let mut sink =
                Sink { proto: proto.as_mut(), cx: &mut cx, stats: &mut self.stats, limits: self.limits, dir };
            s.flush(&mut sink);
        }
        proto.close(&mut cx);
        for tx in self.out.drain(..) {
            publish.publish(tx, &conn.info);
        }
    }

    /// Moves packet time forward to `now`, running timers at most once per `TICK` (a second).
    pub fn advance(&mut self, now: Timestamp, publish: &mut dyn Publish) {
        if now > self.now {
            self.now = now;
        }
        if self.now < self.next_tick {
            return;
        }
        self.next_tick = self.now.plus(TICK);
        self.run_timers(publish);
    }

    fn run_timers(&mut self, publish: &mut dyn Publish) {
        let idle_before =
            Timestamp(self.now.0.saturating_sub(u64::try_from(self.idle_timeout.as_nanos()).unwrap_or(u64::MAX)));
        let mut idle = Vec::new();
        for (key, conn) in &mut self.conns {
            let Connection { info, proto_id, proto, last_seen, .. } = conn;
            let mut cx = ParseCtx {
                ts: self.now,
                conn: info,
                out: &mut self.out,
                stats: &mut self.proto_stats[proto_id.index()],
            };
            proto.expire(&mut cx);
            for tx in self.out.drain(..) {
                publish.publish(tx, info);
            }
            if *last_seen < idle_before {
                idle.push(*key);
            }
        }
        for key in idle {
            self.stats.idle_expired += 1;
            self.remove(&key, publish);
        }
        // After a burst the table is mostly empty slots: give the memory back.
        if self.conns.capacity() > 1024 && self.conns.len() * 4 < self.conns.capacity() {
            self.conns.shrink_to(self.conns.len() * 2);
            crate::memory::release_free_memory();
        }
    }

    /// End of capture: every timer fires and every connection ends (replay contract).
    pub fn finish(&mut self, publish: &mut dyn Publish) {
        // Let the protocols' transaction timeouts run out first, so pending requests expire with
        // their normal notes, then close everything.
        self.now = self.now.plus(Duration::from_secs(3600));
        self.run_timers(publish);
        let keys: Vec<ConnKey> = self.conns.keys().copied().collect();
        for key in keys {
            self.remove(&key, publish);
        }
    }
}
