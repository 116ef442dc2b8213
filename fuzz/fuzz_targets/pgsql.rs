//! Fuzzes the PostgreSQL stream state: arbitrary bytes, split into chunks that alternate direction
//! (the first byte picks the chunk sizes), go through a fresh `PgsqlState` the way the flow layer
//! feeds it (unconsumed tails are presented again), with a gap now and then. It must never panic,
//! never hold more than one oversize-message head, and every transaction must build.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use packetbeat_agent::protocols::pgsql::state::PGSQL_MAX_HELD_MESSAGE;
use packetbeat_agent::protocols::pgsql::{PgsqlConfig, PgsqlState};
use packetbeat_agent::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use packetbeat_agent::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let cfg = PgsqlConfig { send_request: true, send_response: true, ..PgsqlConfig::default() };
    let mut state = PgsqlState::new(Arc::new(cfg));
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let conn = ConnInfo { client_ip: ip, client_port: 40000, server_ip: ip, server_port: 5432 };
    let mut stats = ProtoStats::default();
    let mut out = Vec::new();
    let mut held: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let chunk = 1 + usize::from(selector & 0x3f);
    let gaps = selector & 0x40 != 0;
    for (n, piece) in rest.chunks(chunk).enumerate() {
        let dir = if n % 2 == 0 { Direction::ToServer } else { Direction::ToClient };
        // Each chunk in its own allocation, so reads past it are caught by ASan.
        let piece = piece.to_vec();
        let mut cx = ParseCtx { ts: Timestamp(n as u64 * 1000), conn: &conn, out: &mut out, stats: &mut stats };
        if gaps && piece.first() == Some(&0xff) {
            held[dir.index()].clear();
            state.gap(dir, u32::from(piece.get(1).copied().unwrap_or(0)), &mut cx);
            continue;
        }
        let buf = &mut held[dir.index()];
        buf.extend_from_slice(&piece);
        let used = state.parse(dir, buf, &mut cx).min(buf.len());
        buf.drain(..used);
        assert!(buf.len() <= PGSQL_MAX_HELD_MESSAGE + 8);
        for tx in out.drain(..) {
            assert_eq!(tx.kind, "pgsql");
        }
    }
    let mut cx = ParseCtx { ts: Timestamp(u64::MAX / 2), conn: &conn, out: &mut out, stats: &mut stats };
    state.close(&mut cx);
});
