//! Fuzzes the MySQL decoder as a stream: the first byte picks the chunk size, the rest is cut into
//! chunks fed alternately to the server and the client side of a fresh connection (each chunk in
//! its own `Vec`, as the flow layer presents it, the unconsumed tail kept), with an occasional gap,
//! draining transactions after every chunk. Must never panic, never hold more than one packet view.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use packetbeat_agent::protocols::mysql::state::MYSQL_MAX_PACKET_VIEW;
use packetbeat_agent::protocols::mysql::{MysqlConfig, MysqlState};
use packetbeat_agent::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use packetbeat_agent::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let chunk = usize::from(control % 64) + 1;
    let cfg = MysqlConfig { send_request: true, send_response: true, ..MysqlConfig::default() };
    let mut state = MysqlState::new(Arc::new(cfg));
    let conn = ConnInfo {
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        server_port: 3306,
    };
    let mut out = Vec::new();
    let mut stats = ProtoStats::default();
    let mut held: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    if control & 0x80 != 0 {
        let mut cx = ParseCtx { ts: Timestamp(1), conn: &conn, out: &mut out, stats: &mut stats };
        state.gap(Direction::ToServer, 0, &mut cx);
        state.gap(Direction::ToClient, 0, &mut cx);
    }
    for (i, piece) in rest.chunks(chunk).enumerate() {
        let dir = if i % 2 == 0 { Direction::ToServer } else { Direction::ToClient };
        let ts = Timestamp(1 + i as u64 * 1_000_000);
        let mut cx = ParseCtx { ts, conn: &conn, out: &mut out, stats: &mut stats };
        if piece.first() == Some(&0xee) && control & 0x40 != 0 {
            held[dir.index()].clear();
            state.gap(dir, u32::from(piece.get(1).copied().unwrap_or(1)), &mut cx);
            continue;
        }
        let buf = &mut held[dir.index()];
        buf.extend_from_slice(&piece.to_vec());
        let used = state.parse(dir, buf, &mut cx);
        assert!(used <= buf.len());
        buf.drain(..used);
        assert!(buf.len() <= MYSQL_MAX_PACKET_VIEW + 4);
        out.clear();
    }
    let mut cx = ParseCtx { ts: Timestamp(u64::MAX / 2), conn: &conn, out: &mut out, stats: &mut stats };
    state.expire(&mut cx);
    state.close(&mut cx);
});
