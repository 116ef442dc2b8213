//! Fuzzes the L2–L4 decoder: arbitrary bytes as a frame of every link type must decode or fail
//! cleanly, a decoded segment's payload must lie inside the frame and within the wire length, and
//! the decoder's fixed-offset fast path must give what the layer-by-layer walk gives.

#![no_main]

use libfuzzer_sys::fuzz_target;
use packetbeat_agent::packet::{decode, decode_walk, LinkType};
use packetbeat_agent::time::Timestamp;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::Null,
    LinkType::Loop,
    LinkType::Raw,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
];

fuzz_target!(|frame: &[u8]| {
    for link in LINKS {
        let decoded = decode(link, frame, Timestamp(0));
        assert_eq!(format!("{decoded:?}"), format!("{:?}", decode_walk(link, frame, Timestamp(0))));
        if let Ok(seg) = decoded {
            let start = seg.payload.as_ptr() as usize - frame.as_ptr() as usize;
            assert!(start + seg.payload.len() <= frame.len());
            assert!(seg.payload.len() as u64 <= u64::from(seg.wire_payload_len));
        }
    }
});
