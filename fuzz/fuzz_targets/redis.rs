//! Fuzzes the Redis decoder as a stream: the first byte picks the chunk sizes, the rest is split
//! into chunks that alternate direction (client, server, client, ...), each copied into its own
//! buffer and fed to a fresh connection state the way the flow layer does (the unconsumed tail is
//! presented again with the next chunk); transactions are drained after each chunk. Every tenth
//! chunk is preceded by a gap. The RESP tokenizer and inline splitter are also run on the input.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use packetbeat_agent::protocols::redis::parser::{inline_command, next_token};
use packetbeat_agent::protocols::redis::{RedisConfig, RedisState};
use packetbeat_agent::protocols::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use packetbeat_agent::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else { return };
    let _ = next_token(bytes);
    let _ = inline_command(bytes);

    let conn = ConnInfo {
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_port: 40000,
        server_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        server_port: 6379,
    };
    let mut state = RedisState::new(Arc::new(RedisConfig { queue_max_messages: 8, ..RedisConfig::default() }));
    let mut out = Vec::new();
    let mut stats = ProtoStats::default();
    let mut tails: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let chunk = usize::from(split % 32) + 1;
    for (i, piece) in bytes.chunks(chunk).enumerate() {
        let dir = if i % 2 == 0 { Direction::ToServer } else { Direction::ToClient };
        let ts = Timestamp(1_000_000 * i as u64);
        let mut cx = ParseCtx { ts, conn: &conn, out: &mut out, stats: &mut stats };
        let tail = &mut tails[dir.index()];
        if i % 10 == 9 {
            tail.clear();
            state.gap(dir, u32::from(split), &mut cx);
        }
        tail.extend_from_slice(&piece.to_vec());
        let used = state.parse(dir, tail, &mut cx);
        assert!(used <= tail.len());
        tail.drain(..used);
        out.clear();
    }
    let mut cx = ParseCtx { ts: Timestamp(u64::MAX / 2), conn: &conn, out: &mut out, stats: &mut stats };
    state.expire(&mut cx);
    state.close(&mut cx);
});
