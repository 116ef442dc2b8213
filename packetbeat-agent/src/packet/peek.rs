//! The flow hash of a frame without decoding it, for the replay reader that places every frame with
//! the worker owning its connection (see `pipeline::replay`).
//!
//! Decoding a frame in the reader only to find its worker would cost about as much as reading it,
//! and its worker decodes it anyway, so the common framings (Ethernet without VLAN tags, Linux
//! cooked v1/v2, raw IPv4, all carrying IPv4/TCP) are hashed straight from the bytes at their fixed
//! offsets. Whatever this cannot read is left to the full decoder and [`flow_hash`](super::flow_hash)
//! of its segment: this reads the same address and port bytes the decoder does, so a frame gets the
//! same hash either way.

use super::decode::{ETHERTYPE_IPV4, IPPROTO_TCP, LINUX_SLL2_LEN, LINUX_SLL_LEN};
use super::flow_hash::flow_hash_v4;
use super::LinkType;

/// The [`flow_hash`](super::flow_hash) of an IPv4/TCP frame read at fixed offsets, or `None` when the
/// frame has another framing (VLAN tags, IPv6, not TCP, too short) and must be decoded to be placed.
#[must_use]
pub fn peek_flow_hash(link: LinkType, frame: &[u8]) -> Option<u64> {
    let be16 = |at: usize| frame.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let ip_at = match link {
        LinkType::Ethernet => (be16(12)? == ETHERTYPE_IPV4).then_some(14)?,
        LinkType::LinuxSll => (be16(14)? == ETHERTYPE_IPV4).then_some(LINUX_SLL_LEN)?,
        LinkType::LinuxSll2 => (be16(0)? == ETHERTYPE_IPV4).then_some(LINUX_SLL2_LEN)?,
        LinkType::Raw | LinkType::Ipv4 => 0,
        LinkType::Null | LinkType::Loop | LinkType::Ipv6 => return None,
    };
    let ip = frame.get(ip_at..ip_at + 20)?;
    if ip[0] >> 4 != 4 || ip[9] != IPPROTO_TCP {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0F) * 4;
    let ports = frame.get(ip_at + ihl..ip_at + ihl + 4)?;
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let sport = u16::from_be_bytes([ports[0], ports[1]]);
    let dport = u16::from_be_bytes([ports[2], ports[3]]);
    Some(flow_hash_v4((src, sport), (dst, dport)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{decode, flow_hash};
    use crate::time::Timestamp;

    /// An Ethernet/IPv4/TCP frame with `ihl` words of IP header.
    fn frame(ihl: u8, proto: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = usize::from(ihl) * 4;
        let total = ip_len + 20 + 5;
        let mut ip = vec![0u8; ip_len];
        ip[0] = 0x40 | ihl;
        ip[2..4].copy_from_slice(&u16::try_from(total).unwrap().to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        f.extend_from_slice(&tcp);
        f.extend_from_slice(b"hello");
        f
    }

    #[test]
    fn same_hash_as_the_decoded_segment() {
        for ihl in [5, 6, 15] {
            let f = frame(ihl, 6);
            let seg = decode(LinkType::Ethernet, &f, Timestamp(0)).expect("decodes");
            let want = flow_hash((seg.src_ip, seg.src_port), (seg.dst_ip, seg.dst_port));
            assert_eq!(peek_flow_hash(LinkType::Ethernet, &f), Some(want), "ihl {ihl}");
            assert_eq!(peek_flow_hash(LinkType::Raw, &f[14..]), Some(want));
        }
    }

    #[test]
    fn other_framings_are_left_to_the_decoder() {
        assert_eq!(peek_flow_hash(LinkType::Ethernet, &frame(5, 17)), None);
        let mut tagged = frame(5, 6);
        tagged[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(peek_flow_hash(LinkType::Ethernet, &tagged), None);
        let f = frame(5, 6);
        for cut in 0..f.len().min(14 + 24) {
            assert_eq!(peek_flow_hash(LinkType::Ethernet, &f[..cut]), None, "cut at {cut}");
        }
        assert_eq!(peek_flow_hash(LinkType::Null, &f), None);
    }
}
