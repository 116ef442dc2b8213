//! Fuzzes the HTTP/1.x state machine as the flow layer drives it: the input is split into chunks
//! (the first byte picks the chunk size), chunks alternate direction, each is copied into its own
//! allocation (so over-reads are caught), unconsumed tails are presented again with the next chunk,
//! and gaps, FINs and timer ticks are interleaved. Nothing may panic; buffering stays bounded.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use packetbeat_agent::protocols::http::{HttpConfig, HttpState};
use packetbeat_agent::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use packetbeat_agent::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, mut rest)) = data.split_first() else { return };
    let cfg = HttpConfig {
        send_request: true,
        send_response: true,
        include_body_for: vec!["text".into(), "json".into()],
        ..HttpConfig::default()
    };
    let mut state = HttpState::new(Arc::new(cfg));
    let conn = ConnInfo {
        client_ip: "10.0.0.1".parse().unwrap(),
        client_port: 40000,
        server_ip: "10.0.0.2".parse().unwrap(),
        server_port: 80,
    };
    let mut out = Vec::new();
    let mut stats = ProtoStats::default();
    let mut pending: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let chunk = usize::from(ctl % 61) + 1;
    let mut i = 0u64;
    while !rest.is_empty() {
        let n = chunk.min(rest.len());
        let piece = rest[..n].to_vec();
        rest = &rest[n..];
        i += 1;
        let dir = if (i / u64::from(ctl % 3 + 1)) % 2 == 0 { Direction::ToServer } else { Direction::ToClient };
        let mut cx = ParseCtx { ts: Timestamp(i * 1_000_000_000), conn: &conn, out: &mut out, stats: &mut stats };
        match piece.first().copied().unwrap_or(0) % 23 {
            0 if ctl & 0x80 != 0 => {
                pending[dir.index()].clear();
                state.gap(dir, u32::from(piece.get(1).copied().unwrap_or(0)), &mut cx);
            }
            1 if ctl & 0x40 != 0 => state.fin(dir, &mut cx),
            2 => state.expire(&mut cx),
            _ => {
                let buf = &mut pending[dir.index()];
                buf.extend_from_slice(&piece);
                let used = state.parse(dir, buf, &mut cx);
                assert!(used <= buf.len());
                buf.drain(..used);
                assert!(buf.len() <= 70_000, "the parser must not make the flow layer buffer without bound");
            }
        }
        out.clear();
    }
    let mut cx = ParseCtx { ts: Timestamp(u64::MAX / 2), conn: &conn, out: &mut out, stats: &mut stats };
    state.close(&mut cx);
});
