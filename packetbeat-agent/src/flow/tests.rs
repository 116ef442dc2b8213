//! Reassembly edge cases, driven through [`Stream`] with a recording protocol.

use super::stream::{Sink, Stream, StreamLimits};
use super::FlowStats;
use crate::event::Transaction;
use crate::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Gap(u32),
    Fin,
}

/// Consumes whole `\n`-terminated lines only (like a message parser waiting for a full head),
/// or everything when `lines` is false; `never` consumes nothing.
#[derive(Default)]
struct Recorder {
    lines: bool,
    never: bool,
    events: Vec<Ev>,
}

impl ProtocolState for Recorder {
    fn parse(&mut self, _dir: Direction, data: &[u8], _cx: &mut ParseCtx<'_>) -> usize {
        if self.never {
            return 0;
        }
        let used = if self.lines { data.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) } else { data.len() };
        if used > 0 {
            self.events.push(Ev::Data(data[..used].to_vec()));
        }
        used
    }
    fn gap(&mut self, _dir: Direction, len: u32, _cx: &mut ParseCtx<'_>) {
        self.events.push(Ev::Gap(len));
    }
    fn fin(&mut self, _dir: Direction, _cx: &mut ParseCtx<'_>) {
        self.events.push(Ev::Fin);
    }
    fn expire(&mut self, _cx: &mut ParseCtx<'_>) {}
    fn close(&mut self, _cx: &mut ParseCtx<'_>) {}
}

const LIMITS: StreamLimits = StreamLimits { max_buffered: 64, max_ooo_segments: 4, max_ooo_bytes: 1024 };

struct Harness {
    stream: Stream,
    proto: Recorder,
    stats: FlowStats,
    pstats: ProtoStats,
    out: Vec<Transaction>,
    limits: StreamLimits,
}

impl Harness {
    fn new(proto: Recorder) -> Self {
        Self {
            stream: Stream::default(),
            proto,
            stats: FlowStats::default(),
            pstats: ProtoStats::default(),
            out: Vec::new(),
            limits: LIMITS,
        }
    }

    fn with<R>(&mut self, f: impl FnOnce(&mut Stream, &mut Sink<'_, '_, '_>) -> R) -> R {
        let conn = ConnInfo {
            client_ip: "127.0.0.1".parse().unwrap(),
            client_port: 1,
            server_ip: "127.0.0.1".parse().unwrap(),
            server_port: 2,
        };
        let mut cx = ParseCtx { ts: Timestamp(0), conn: &conn, out: &mut self.out, stats: &mut self.pstats };
        let mut sink = Sink {
            proto: &mut self.proto,
            cx: &mut cx,
            stats: &mut self.stats,
            limits: self.limits,
            dir: Direction::ToServer,
        };
        f(&mut self.stream, &mut sink)
    }

    fn seg(&mut self, seq: u32, data: &[u8]) {
        self.with(|s, k| s.on_segment(seq, data, u32::try_from(data.len()).unwrap(), false, k));
    }

    fn data(&self) -> Vec<u8> {
        self.proto
            .events
            .iter()
            .filter_map(|e| if let Ev::Data(d) = e { Some(d.clone()) } else { None })
            .flatten()
            .collect()
    }
}

#[test]
fn in_order_after_syn() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(99);
    h.seg(100, b"abc");
    h.seg(103, b"def");
    assert_eq!(h.proto.events, vec![Ev::Data(b"abc".to_vec()), Ev::Data(b"def".to_vec())]);
    assert_eq!(h.stats.midstream, 0);
}

#[test]
fn reordered_segments_are_delivered_in_order() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.seg(4, b"def");
    h.seg(7, b"ghi");
    assert!(h.proto.events.is_empty());
    h.seg(1, b"abc");
    assert_eq!(h.data(), b"abcdefghi");
    assert_eq!(h.stats.ooo_segments, 2);
    assert_eq!(h.stats.gaps, 0);
}

#[test]
fn retransmissions_and_overlaps_are_trimmed() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.seg(1, b"abcdef");
    h.seg(1, b"abcdef");
    h.seg(4, b"defghi");
    h.seg(2, b"bc");
    assert_eq!(h.data(), b"abcdefghi");
    assert_eq!(h.stats.retransmits, 2);
}

#[test]
fn overlapping_out_of_order_segments() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.seg(5, b"efgh");
    h.seg(3, b"cdefg");
    h.seg(1, b"ab");
    assert_eq!(h.data(), b"abcdefgh");
}

#[test]
fn hole_is_declared_lost_when_peer_acks_past_it() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.seg(1, b"abc");
    h.seg(10, b"xyz");
    h.with(|s, k| s.on_peer_ack(5, k));
    assert_eq!(h.proto.events.len(), 1, "an ack before the held segment proves nothing");
    h.with(|s, k| s.on_peer_ack(13, k));
    assert_eq!(h.proto.events, vec![Ev::Data(b"abc".to_vec()), Ev::Gap(6), Ev::Data(b"xyz".to_vec())]);
    assert_eq!((h.stats.gaps, h.stats.gap_bytes), (1, 6));
}

#[test]
fn holes_are_reported_at_flush_and_fin_delivered() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.seg(1, b"abc");
    h.with(|s, k| s.on_segment(8, b"hij", 3, true, k));
    h.with(|s, k| s.flush(k));
    assert_eq!(h.proto.events, vec![Ev::Data(b"abc".to_vec()), Ev::Gap(4), Ev::Data(b"hij".to_vec()), Ev::Fin]);
    assert!(h.stream.finished());
}

#[test]
fn tiny_segments_assemble_lines() {
    let mut h = Harness::new(Recorder { lines: true, ..Default::default() });
    h.stream.on_syn(0);
    for (i, b) in b"GET / HTTP/1.1\nHost: x\n".iter().enumerate() {
        h.seg(1 + u32::try_from(i).unwrap(), &[*b]);
    }
    assert_eq!(h.data(), b"GET / HTTP/1.1\nHost: x\n");
    assert_eq!(h.proto.events.len(), 2);
}

#[test]
fn midstream_start_reports_unknown_gap() {
    let mut h = Harness::new(Recorder::default());
    h.seg(5000, b"tail");
    assert_eq!(h.proto.events, vec![Ev::Gap(0), Ev::Data(b"tail".to_vec())]);
    assert_eq!(h.stats.midstream, 1);
}

#[test]
fn snaplen_cut_is_a_gap_of_the_missing_bytes() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.with(|s, k| s.on_segment(1, b"abcd", 10, false, k));
    h.seg(11, b"z");
    assert_eq!(h.proto.events, vec![Ev::Data(b"abcd".to_vec()), Ev::Gap(6), Ev::Data(b"z".to_vec())]);
}

#[test]
fn stream_cap_drops_and_counts() {
    let mut h = Harness::new(Recorder { never: true, ..Default::default() });
    h.stream.on_syn(0);
    h.seg(1, &[b'a'; 40]);
    h.seg(41, &[b'a'; 40]);
    assert_eq!(h.stats.stream_cap_hit, 1);
    assert_eq!(h.proto.events, vec![Ev::Gap(80)]);
}

#[test]
fn out_of_order_overflow_forces_a_gap() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    for i in 0..5u32 {
        h.seg(11 + i * 2, b"x");
    }
    assert_eq!(h.stats.ooo_overflow, 1);
    assert_eq!(h.proto.events.first(), Some(&Ev::Gap(10)));
}

#[test]
fn sequence_numbers_wrap() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(u32::MAX - 2);
    h.seg(u32::MAX.wrapping_add(1), b"cd");
    h.seg(u32::MAX - 1, b"ab");
    assert_eq!(h.data(), b"abcd");
}

#[test]
fn rst_like_finish_stops_delivery() {
    let mut h = Harness::new(Recorder::default());
    h.stream.on_syn(0);
    h.seg(1, b"ab");
    h.with(|s, k| s.finish(k));
    h.seg(3, b"cd");
    assert_eq!(h.proto.events, vec![Ev::Data(b"ab".to_vec()), Ev::Fin]);
}

/// The connection table itself: what opens and what closes an entry.
mod table {
    use std::sync::Arc;

    use super::super::{FlowTable, Publish};
    use crate::config::Limits;
    use crate::event::Transaction;
    use crate::packet::{TcpFlags, TcpSegment};
    use crate::protocols::registry::Registry;
    use crate::protocols::ConnInfo;
    use crate::time::Timestamp;

    struct Count(usize);

    impl Publish for Count {
        fn publish(&mut self, _tx: Transaction, _conn: &ConnInfo) {
            self.0 += 1;
        }
    }

    fn seg(from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> TcpSegment<'_> {
        let (c, s) = (([10, 0, 0, 1].into(), 40_000), ([10, 0, 0, 2].into(), 80));
        let ((src_ip, src_port), (dst_ip, dst_port)) = if from_client { (c, s) } else { (s, c) };
        TcpSegment {
            ts: Timestamp::from_parts(1_700_000_000, 0),
            src_mac: [0; 6],
            dst_mac: [0; 6],
            vlan: None,
            src_ip,
            dst_ip,
            src_port,
            dst_port,
            seq,
            ack,
            flags: TcpFlags(flags),
            payload,
            wire_payload_len: u32::try_from(payload.len()).unwrap(),
            frame_len: 54 + u32::try_from(payload.len()).unwrap(),
        }
    }

    #[test]
    fn a_closed_connection_leaves_no_entry_and_stray_segments_open_none() {
        let list: Vec<serde_norway::Value> = serde_norway::from_str("[{type: http, ports: [80]}]").unwrap();
        let registry = Arc::new(Registry::from_config(Some(&list)).unwrap().0);
        let mut table = FlowTable::new(registry, &Limits::default());
        let mut out = Count(0);
        const A: u8 = TcpFlags::ACK;
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (c, s) = (1000u32, 5000u32);
        let r = u32::try_from(req.len()).unwrap();
        let p = u32::try_from(resp.len()).unwrap();
        for (from_client, seq, ack, flags, payload) in [
            (true, c, 0, TcpFlags::SYN, &b""[..]),
            (false, s, c + 1, TcpFlags::SYN | A, b""),
            (true, c + 1, s + 1, A, b""),
            (true, c + 1, s + 1, A | TcpFlags::PSH, req),
            (false, s + 1, c + 1 + r, A | TcpFlags::PSH, resp),
            (true, c + 1 + r, s + 1 + p, A | TcpFlags::FIN, b""),
            (false, s + 1 + p, c + 2 + r, A | TcpFlags::FIN, b""),
            // The last ACK, and then strays: none may open an entry.
            (true, c + 2 + r, s + 2 + p, A, b""),
            (true, c + 2 + r, s + 2 + p, A | TcpFlags::FIN, b""),
            (false, s + 2 + p, c + 2 + r, TcpFlags::RST, b""),
        ] {
            table.on_segment(&seg(from_client, seq, ack, flags, payload), &mut out);
        }
        assert_eq!(out.0, 1);
        assert!(table.is_empty(), "{} entries left", table.len());
        assert_eq!((table.stats.connections, table.stats.closed, table.stats.no_connection), (1, 1, 3));
        // Data without a handshake (capture started mid-connection) still opens one.
        table.on_segment(&seg(true, 7, 9, A | TcpFlags::PSH, req), &mut out);
        assert_eq!(table.len(), 1);
    }
}
