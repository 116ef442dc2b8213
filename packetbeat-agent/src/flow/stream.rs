//! TCP reassembly of one direction of one connection.
//!
//! Bytes reach the protocol in order and exactly once: retransmissions and overlaps are trimmed,
//! segments from the future wait in a small bounded out-of-order list, and bytes that never arrive
//! (capture loss, snap-length cuts, the stream byte cap) are reported to the protocol as gaps with
//! their size. A hole is declared lost when the peer acknowledges data past it (the receiver got it,
//! the capture did not), when the out-of-order bounds are hit, or when the stream ends.
//!
//! Unconsumed bytes (a message head split across segments) are the only bytes copied; a segment
//! the parser consumes whole is parsed straight from the capture buffer.

use crate::protocols::{Direction, ParseCtx, ProtocolState};

use super::FlowStats;

/// Bounds for one direction, from `packetbeat.limits`.
#[derive(Clone, Copy, Debug)]
pub struct StreamLimits {
    /// Max unconsumed bytes held for the parser.
    pub max_buffered: usize,
    /// Max out-of-order segments held.
    pub max_ooo_segments: usize,
    /// Max out-of-order bytes held.
    pub max_ooo_bytes: usize,
}

/// A segment waiting for the bytes before it.
#[derive(Debug)]
struct Pending {
    seq: u32,
    wire_len: u32,
    data: Vec<u8>,
    fin: bool,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Stream {
    /// Next expected sequence number (valid once `synced`).
    next_seq: u32,
    synced: bool,
    saw_syn: bool,
    finished: bool,
    buf: Vec<u8>,
    pending: Vec<Pending>,
    pending_bytes: usize,
}

/// Everything a stream needs to call the protocol.
pub struct Sink<'p, 'c, 'x> {
    /// The protocol of the connection.
    pub proto: &'p mut dyn ProtocolState,
    /// The context for protocol calls.
    pub cx: &'c mut ParseCtx<'x>,
    /// Flow counters.
    pub stats: &'c mut FlowStats,
    /// Bounds.
    pub limits: StreamLimits,
    /// This stream's direction.
    pub dir: Direction,
}

/// `a - b` as a signed distance in sequence space.
#[inline]
fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Stream {
    /// A SYN (or SYN-ACK) with sequence number `seq` starts the stream cleanly.
    pub fn on_syn(&mut self, seq: u32) {
        if !self.synced || !self.saw_syn {
            self.next_seq = seq.wrapping_add(1);
            self.synced = true;
            self.saw_syn = true;
        }
    }

    /// Whether a FIN or RST ended this direction.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Whether a SYN for a different sequence number would mean a new connection on the same ports.
    #[must_use]
    pub fn is_new_syn(&self, seq: u32) -> bool {
        self.saw_syn && self.next_seq.wrapping_sub(1) != seq
    }

    /// Handles one segment: `payload` is what was captured, `wire_len` its length on the wire.
    pub fn on_segment(&mut self, seq: u32, payload: &[u8], wire_len: u32, fin: bool, s: &mut Sink<'_, '_, '_>) {
        if self.finished {
            return;
        }
        if !self.synced {
            if wire_len == 0 && !fin {
                return;
            }
            self.next_seq = seq;
            self.synced = true;
            s.stats.midstream += 1;
            s.proto.gap(s.dir, 0, s.cx);
        }
        let rel = seq_diff(seq, self.next_seq);
        if rel > 0 {
            self.hold(seq, payload, wire_len, fin, s);
            return;
        }
        self.apply(seq, payload, wire_len, fin, s);
        self.drain_pending(s);
    }

    /// The peer acknowledged up to `ack`: any hole before that was lost by the capture.
    pub fn on_peer_ack(&mut self, ack: u32, s: &mut Sink<'_, '_, '_>) {
        if self.finished || !self.synced || self.pending.is_empty() {
            return;
        }
        if let Some(first) = self.pending.first() {
            if seq_diff(ack, first.seq) >= 0 {
                self.skip_to_first_pending(s);
                self.drain_pending(s);
            }
        }
    }

    /// The connection ends: report every hole, deliver what is held, and close this direction.
    pub fn flush(&mut self, s: &mut Sink<'_, '_, '_>) {
        while !self.finished && !self.pending.is_empty() {
            self.skip_to_first_pending(s);
            self.drain_pending(s);
        }
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// Ends this direction (FIN reached, or RST).
    pub fn finish(&mut self, s: &mut Sink<'_, '_, '_>) {
        if !self.finished {
            self.finished = true;
            self.buf.clear();
            self.pending.clear();
            self.pending_bytes = 0;
            s.proto.fin(s.dir, s.cx);
        }
    }

    fn hold(&mut self, seq: u32, payload: &[u8], wire_len: u32, fin: bool, s: &mut Sink<'_, '_, '_>) {
        if self.pending.iter().any(|p| p.seq == seq && p.wire_len >= wire_len) {
            s.stats.retransmits += 1;
            return;
        }
        while self.pending.len() >= s.limits.max_ooo_segments
            || (!self.pending.is_empty() && self.pending_bytes + payload.len() > s.limits.max_ooo_bytes)
        {
            s.stats.ooo_overflow += 1;
            self.skip_to_first_pending(s);
            self.drain_pending(s);
            if self.finished {
                return;
            }
            if seq_diff(seq, self.next_seq) <= 0 {
                self.apply(seq, payload, wire_len, fin, s);
                self.drain_pending(s);
                return;
            }
        }
        let at = self.pending.partition_point(|p| seq_diff(p.seq, seq) <= 0);
        self.pending_bytes += payload.len();
        s.stats.ooo_segments += 1;
        self.pending.insert(at, Pending { seq, wire_len, data: payload.to_vec(), fin });
    }

    /// Declares the bytes up to the first held segment lost.
    fn skip_to_first_pending(&mut self, s: &mut Sink<'_, '_, '_>) {
        if let Some(first_seq) = self.pending.first().map(|p| p.seq) {
            let missing = seq_diff(first_seq, self.next_seq);
            if missing > 0 {
                let missing = u32::try_from(missing).unwrap_or(u32::MAX);
                self.lose(missing, s);
                self.next_seq = first_seq;
            }
        }
    }

    fn drain_pending(&mut self, s: &mut Sink<'_, '_, '_>) {
        while !self.finished {
            let Some(first) = self.pending.first() else { break };
            if seq_diff(first.seq, self.next_seq) > 0 {
                break;
            }
            let p = self.pending.remove(0);
            self.pending_bytes -= p.data.len();
            self.apply(p.seq, &p.data, p.wire_len, p.fin, s);
        }
    }

    /// Applies a segment that starts at or before `next_seq`.
    fn apply(&mut self, seq: u32, payload: &[u8], wire_len: u32, fin: bool, s: &mut Sink<'_, '_, '_>) {
        let already = u32::try_from(-seq_diff(seq, self.next_seq)).unwrap_or(u32::MAX);
        if already >= wire_len && wire_len > 0 {
            s.stats.retransmits += 1;
        }
        if already < wire_len {
            let captured = u32::try_from(payload.len()).unwrap_or(u32::MAX).min(wire_len);
            if already < captured {
                let start = usize::try_from(already).unwrap_or(usize::MAX);
                let end = usize::try_from(captured).unwrap_or(usize::MAX);
                if let Some(new) = payload.get(start..end) {
                    self.deliver(new, s);
                }
            }
            let missing = wire_len - already.max(captured);
            if missing > 0 {
                self.lose(missing, s);
            }
            self.next_seq = seq.wrapping_add(wire_len);
        }
        if fin && seq_diff(seq.wrapping_add(wire_len), self.next_seq) <= 0 {
            self.finish(s);
        }
    }

    fn deliver(&mut self, data: &[u8], s: &mut Sink<'_, '_, '_>) {
        if self.buf.is_empty() {
            let used = s.proto.parse(s.dir, data, s.cx).min(data.len());
            if let Some(rest) = data.get(used..) {
                self.buf.extend_from_slice(rest);
            }
        } else {
            self.buf.extend_from_slice(data);
            let used = s.proto.parse(s.dir, &self.buf, s.cx).min(self.buf.len());
            self.buf.drain(..used);
        }
        if self.buf.len() > s.limits.max_buffered {
            s.stats.stream_cap_hit += 1;
            let dropped = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
            self.buf.clear();
            s.proto.gap(s.dir, dropped, s.cx);
        }
    }

    /// `len` bytes will never arrive: whatever is buffered cannot be completed either.
    fn lose(&mut self, len: u32, s: &mut Sink<'_, '_, '_>) {
        s.stats.gaps += 1;
        s.stats.gap_bytes += u64::from(len);
        // An incomplete head that was waiting for more bytes can never complete now; the parser
        // resynchronises on the gap.
        self.buf.clear();
        s.proto.gap(s.dir, len, s.cx);
    }
}
