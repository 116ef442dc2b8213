//! Fuzzes the capture-file reader: arbitrary bytes as a pcap/pcapng file must open or fail with an
//! error, and then replay to the end or fail with an error, never panic, hang or over-allocate.
//! Every frame is also decoded, as replay would.

#![no_main]

use std::io::Cursor;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use packetbeat_agent::capture::pcap::{PcapFileSource, PCAP_MAX_RECORD_LEN};
use packetbeat_agent::capture::{PacketSource, Poll};
use packetbeat_agent::packet::decode;

fuzz_target!(|file: &[u8]| {
    let Ok(mut src) = PcapFileSource::from_reader(Cursor::new(file.to_vec()), "fuzz") else {
        return;
    };
    // Each poll consumes at least one record of at least 12 bytes, so this bounds the loop.
    for _ in 0..=file.len() {
        let poll = src.poll(Duration::ZERO, &mut |p| {
            assert!(p.data.len() <= PCAP_MAX_RECORD_LEN);
            assert!(p.data.len() as u64 <= u64::from(p.wire_len));
            let _ = decode(p.link, p.data, p.ts);
        });
        match poll {
            Ok(Poll::Packets(_)) => {}
            Ok(Poll::End) | Err(_) => return,
            Ok(Poll::Idle) => panic!("a file is never idle"),
        }
    }
    panic!("replay did not end");
});
