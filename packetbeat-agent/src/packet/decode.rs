//! Frame → [`TcpSegment`]: the per-packet L2–L4 decoder.
//!
//! This runs once for every captured packet, so it is a straight walk down the headers with no
//! allocation and no copying: each layer borrows a sub-slice of the frame. The fixed headers
//! (Ethernet, 802.1Q, IPv4, IPv6, TCP) are read through etherparse's header slices, which check the
//! length once and then cannot panic. Linux cooked headers and the IPv6 extension chain are read by
//! hand: etherparse's `LinuxSllHeaderSlice` rejects packet and hardware types it does not know (and has
//! no v2), and its extension parser stops at headers we simply want to skip.
//!
//! Two lengths are tracked at each layer: what was *captured* (the snap length may cut the frame) and
//! what the IP length fields say was on the *wire*. A header that ends past the capture but inside the
//! wire length is [`DecodeError::Truncated`]; one that ends past the wire length is
//! [`DecodeError::Malformed`]. The TCP payload is cut at the IP length, so Ethernet padding and a
//! trailing FCS never reach the reassembler.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::{ipv4, ipv6, tcp};
use etherparse::{Ethernet2HeaderSlice, Ipv4HeaderSlice, Ipv6HeaderSlice, SingleVlanHeaderSlice, TcpHeaderSlice};

use super::{DecodeError, LinkType, TcpFlags, TcpSegment};
use crate::time::Timestamp;

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
/// `802.1Q`, `802.1ad` (the `QinQ` S-tag) and the pre-standard `QinQ` tag some switches still send.
const ETHERTYPE_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
/// More stacked VLAN tags than any real network uses; past this the frame is treated as garbage.
const MAX_VLAN_TAGS: usize = 4;
/// Bound on the IPv6 extension-header walk (each header is at least 8 bytes, so this is also a
/// bound on work per packet).
const MAX_IPV6_EXT_HEADERS: usize = 16;

pub(super) const IPPROTO_TCP: u8 = 6;

/// BSD loopback address families for IPv4 and the three values BSDs use for IPv6.
const AF_INET: u32 = 2;
const AF_INET6_BSD: [u32; 3] = [24, 28, 30];

pub(super) const LINUX_SLL_LEN: usize = 16;
pub(super) const LINUX_SLL2_LEN: usize = 20;

/// Link-layer addressing gathered on the way down.
#[derive(Default)]
struct L2 {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    vlan: Option<u16>,
}

/// The network-layer packet found under the link layer.
enum Net<'a> {
    V4(&'a [u8]),
    V6(&'a [u8]),
}

/// Decodes one frame into a TCP segment borrowing from `frame`.
///
/// # Errors
/// [`DecodeError::NotTcp`] for anything that is not TCP over IPv4/IPv6, [`DecodeError::Fragment`] for
/// IP fragments (not reassembled), [`DecodeError::Truncated`] when the capture ends inside a header and
/// [`DecodeError::Malformed`] when header fields contradict each other.
pub fn decode(link: LinkType, frame: &[u8], ts: Timestamp) -> Result<TcpSegment<'_>, DecodeError> {
    if link == LinkType::Ethernet {
        if let Some(seg) = ethernet_ipv4_tcp(frame, ts) {
            return Ok(seg);
        }
    }
    decode_walk(link, frame, ts)
}

/// Bytes of the common frame's fixed headers: Ethernet II, IPv4 without options, TCP.
const PLAIN_HEADERS: usize = 14 + 20 + 20;

/// The common frame read at fixed offsets: Ethernet II without VLAN tags, IPv4 without options that
/// is not a fragment and has a usable total length, TCP. Anything else is `None` and goes the long
/// way ([`decode_walk`]), which also judges every malformed case; for a frame accepted here the
/// walk returns the same segment (tested against it), at a third of the cost.
#[inline]
fn ethernet_ipv4_tcp(frame: &[u8], ts: Timestamp) -> Option<TcpSegment<'_>> {
    let h: &[u8; PLAIN_HEADERS] = frame.first_chunk()?;
    let be16 = |at: usize| u16::from_be_bytes([h[at], h[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    // IPv4 with a 20-byte header carrying TCP; no MF flag, no fragment offset.
    if be16(12) != ETHERTYPE_IPV4 || h[14] != 0x45 || h[23] != IPPROTO_TCP || be16(20) & 0x3FFF != 0 {
        return None;
    }
    // A zero total length (offloaded packets) or one too short for the TCP header is the walk's.
    let total_len = usize::from(be16(16));
    let data_offset = usize::from(h[46] >> 4) * 4;
    if total_len < 20 + data_offset || data_offset < 20 {
        return None;
    }
    // The capture may end before the IP length does (snap length); it must hold the TCP header.
    let end = (14 + total_len).min(frame.len());
    let payload = frame.get(14 + 20 + data_offset..end)?;
    let mac = |at: usize| [h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5]];
    Some(TcpSegment {
        ts,
        src_mac: mac(6),
        dst_mac: mac(0),
        vlan: None,
        src_ip: IpAddr::V4(Ipv4Addr::from(be32(26))),
        dst_ip: IpAddr::V4(Ipv4Addr::from(be32(30))),
        src_port: be16(34),
        dst_port: be16(36),
        seq: be32(38),
        ack: be32(42),
        flags: TcpFlags(h[47]),
        payload,
        wire_payload_len: u32::try_from(total_len - 20 - data_offset).unwrap_or(u32::MAX),
        frame_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
    })
}

/// [`decode`] by walking the headers one layer at a time: every framing, every check. `decode`
/// takes this way for every frame its fixed-offset reading declines; it is public so that the
/// fuzzer can hold the two to the same answer on any bytes.
///
/// # Errors
/// As [`decode`].
pub fn decode_walk(link: LinkType, frame: &[u8], ts: Timestamp) -> Result<TcpSegment<'_>, DecodeError> {
    let mut l2 = L2::default();
    let net = match link {
        LinkType::Ethernet => ethernet(frame, &mut l2)?,
        LinkType::Null => bsd_loopback(frame, false)?,
        LinkType::Loop => bsd_loopback(frame, true)?,
        LinkType::Raw => raw_ip(frame)?,
        LinkType::Ipv4 => Net::V4(frame),
        LinkType::Ipv6 => Net::V6(frame),
        LinkType::LinuxSll => linux_sll(frame, &mut l2)?,
        LinkType::LinuxSll2 => linux_sll2(frame, &mut l2)?,
    };
    let (src_ip, dst_ip, l4) = match net {
        Net::V4(bytes) => ipv4(bytes)?,
        Net::V6(bytes) => ipv6(bytes)?,
    };
    let mut seg = tcp_segment(&l4, ts, &l2, src_ip, dst_ip)?;
    seg.frame_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
    Ok(seg)
}

/// The L4 bytes under an IP header: captured bytes (already cut at the IP length) and the length the
/// IP header claims for them.
struct L4<'a> {
    captured: &'a [u8],
    wire_len: usize,
}

fn ethernet<'a>(frame: &'a [u8], l2: &mut L2) -> Result<Net<'a>, DecodeError> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| DecodeError::Truncated)?;
    l2.dst_mac = eth.destination();
    l2.src_mac = eth.source();
    let rest = frame.get(eth.slice().len()..).ok_or(DecodeError::Truncated)?;
    ether_payload(eth.ether_type().0, rest, l2)
}

/// Dispatches on an Ethernet type, peeling VLAN tags first; the outermost tag's id goes into `vlan`.
fn ether_payload<'a>(mut ether_type: u16, mut rest: &'a [u8], l2: &mut L2) -> Result<Net<'a>, DecodeError> {
    let mut tags = 0;
    while ETHERTYPE_VLAN.contains(&ether_type) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(DecodeError::Malformed);
        }
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| DecodeError::Truncated)?;
        if l2.vlan.is_none() {
            l2.vlan = Some(tag.vlan_identifier().value());
        }
        ether_type = tag.ether_type().0;
        rest = rest.get(tag.slice().len()..).ok_or(DecodeError::Truncated)?;
    }
    match ether_type {
        ETHERTYPE_IPV4 => Ok(Net::V4(rest)),
        ETHERTYPE_IPV6 => Ok(Net::V6(rest)),
        _ => Err(DecodeError::NotTcp),
    }
}

/// `DLT_NULL` (host byte order of the capturing machine, so either order is accepted) and `DLT_LOOP`
/// (network byte order).
fn bsd_loopback(frame: &[u8], network_order: bool) -> Result<Net<'_>, DecodeError> {
    let (family, rest) = frame.split_first_chunk::<4>().ok_or(DecodeError::Truncated)?;
    let be = u32::from_be_bytes(*family);
    let family = if network_order {
        be
    } else {
        // Address families are small: a big-endian writer leaves the low bytes of a little-endian
        // read non-zero in the top half.
        let le = u32::from_le_bytes(*family);
        if le > 0xFFFF {
            be
        } else {
            le
        }
    };
    match family {
        AF_INET => Ok(Net::V4(rest)),
        f if AF_INET6_BSD.contains(&f) => Ok(Net::V6(rest)),
        _ => Err(DecodeError::NotTcp),
    }
}

/// `DLT_RAW`: the IP version nibble says which.
fn raw_ip(frame: &[u8]) -> Result<Net<'_>, DecodeError> {
    match frame.first().map(|b| b >> 4) {
        None => Err(DecodeError::Truncated),
        Some(4) => Ok(Net::V4(frame)),
        Some(6) => Ok(Net::V6(frame)),
        Some(_) => Err(DecodeError::Malformed),
    }
}

/// Linux cooked v1: packet type (2), ARPHRD (2), address length (2), address (8), protocol (2).
fn linux_sll<'a>(frame: &'a [u8], l2: &mut L2) -> Result<Net<'a>, DecodeError> {
    let (hdr, rest) = frame.split_first_chunk::<LINUX_SLL_LEN>().ok_or(DecodeError::Truncated)?;
    let addr_len = u16::from_be_bytes([hdr[4], hdr[5]]);
    if addr_len == 6 {
        l2.src_mac.copy_from_slice(&hdr[6..12]);
    }
    ether_payload(u16::from_be_bytes([hdr[14], hdr[15]]), rest, l2)
}

/// Linux cooked v2: protocol (2), reserved (2), ifindex (4), ARPHRD (2), packet type (1), address
/// length (1), address (8).
fn linux_sll2<'a>(frame: &'a [u8], l2: &mut L2) -> Result<Net<'a>, DecodeError> {
    let (hdr, rest) = frame.split_first_chunk::<LINUX_SLL2_LEN>().ok_or(DecodeError::Truncated)?;
    if hdr[11] == 6 {
        l2.src_mac.copy_from_slice(&hdr[12..18]);
    }
    ether_payload(u16::from_be_bytes([hdr[0], hdr[1]]), rest, l2)
}

fn ipv4(bytes: &[u8]) -> Result<(IpAddr, IpAddr, L4<'_>), DecodeError> {
    let ip = Ipv4HeaderSlice::from_slice(bytes).map_err(|e| match e {
        ipv4::HeaderSliceError::Len(_) => DecodeError::Truncated,
        ipv4::HeaderSliceError::Content(_) => DecodeError::Malformed,
    })?;
    let header_len = ip.slice().len();
    // A zero total length is what TSO/LRO-offloaded packets look like when captured on the host:
    // trust the capture then.
    let total_len = match usize::from(ip.total_len()) {
        0 => bytes.len(),
        n if n < header_len => return Err(DecodeError::Malformed),
        n => n,
    };
    if ip.protocol().0 != IPPROTO_TCP {
        return Err(DecodeError::NotTcp);
    }
    if ip.more_fragments() || ip.fragments_offset().value() != 0 {
        return Err(DecodeError::Fragment);
    }
    let end = total_len.min(bytes.len());
    let captured = bytes.get(header_len..end).ok_or(DecodeError::Truncated)?;
    let l4 = L4 { captured, wire_len: total_len - header_len };
    let src = IpAddr::V4(Ipv4Addr::from(ip.source()));
    let dst = IpAddr::V4(Ipv4Addr::from(ip.destination()));
    Ok((src, dst, l4))
}

fn ipv6(bytes: &[u8]) -> Result<(IpAddr, IpAddr, L4<'_>), DecodeError> {
    let ip = Ipv6HeaderSlice::from_slice(bytes).map_err(|e| match e {
        ipv6::HeaderSliceError::Len(_) => DecodeError::Truncated,
        ipv6::HeaderSliceError::Content(_) => DecodeError::Malformed,
    })?;
    let header_len = ip.slice().len();
    // Zero is a jumbogram or an offloaded packet: trust the capture.
    let wire_len = match usize::from(ip.payload_length()) {
        0 => bytes.len().saturating_sub(header_len),
        n => n,
    };
    let end = header_len.saturating_add(wire_len).min(bytes.len());
    let payload = bytes.get(header_len..end).ok_or(DecodeError::Truncated)?;
    let l4 = skip_ipv6_extensions(ip.next_header().0, L4 { captured: payload, wire_len })?;
    let src = IpAddr::V6(Ipv6Addr::from(ip.source()));
    let dst = IpAddr::V6(Ipv6Addr::from(ip.destination()));
    Ok((src, dst, l4))
}

/// Walks the IPv6 extension chain to the TCP header.
///
/// Hop-by-hop, routing, destination options, mobility, HIP and shim6 share the generic layout
/// (next header, length in 8-octet units beyond the first 8); AH counts 4-octet units beyond the
/// first 8. A fragment header with offset 0 and no more fragments (an "atomic fragment", RFC 6946)
/// carries a whole packet and is skipped; any other fragment is [`DecodeError::Fragment`].
fn skip_ipv6_extensions(mut next: u8, mut l4: L4<'_>) -> Result<L4<'_>, DecodeError> {
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match next {
            IPPROTO_TCP => return Ok(l4),
            0 | 43 | 60 | 135 | 139 | 140 => {
                let [_, units] = *need::<2>(&l4)?;
                8 + usize::from(units) * 8
            }
            51 => {
                let [_, units] = *need::<2>(&l4)?;
                (usize::from(units) + 2) * 4
            }
            44 => {
                let frag: &[u8; 8] = need::<8>(&l4)?;
                let offset_and_more = u16::from_be_bytes([frag[2], frag[3]]);
                if offset_and_more & 0xFFF9 != 0 {
                    // Offset bits (0xFFF8) or M (0x0001) set: a real fragment.
                    return Err(if frag[0] == IPPROTO_TCP { DecodeError::Fragment } else { DecodeError::NotTcp });
                }
                8
            }
            // No next header (59), ESP (50), UDP, ICMPv6 and everything else.
            _ => return Err(DecodeError::NotTcp),
        };
        let header: &[u8] = need_slice(&l4, len)?;
        next = header[0];
        l4 = L4 { captured: l4.captured.get(len..).ok_or(DecodeError::Truncated)?, wire_len: l4.wire_len - len };
    }
    Err(DecodeError::Malformed)
}

/// The first `N` bytes of `l4`, distinguishing a short capture from a lying length field.
fn need<'a, const N: usize>(l4: &L4<'a>) -> Result<&'a [u8; N], DecodeError> {
    need_slice(l4, N)?.first_chunk::<N>().ok_or(DecodeError::Truncated)
}

fn need_slice<'a>(l4: &L4<'a>, n: usize) -> Result<&'a [u8], DecodeError> {
    if n > l4.wire_len {
        Err(DecodeError::Malformed)
    } else {
        l4.captured.get(..n).ok_or(DecodeError::Truncated)
    }
}

fn tcp_segment<'a>(
    l4: &L4<'a>,
    ts: Timestamp,
    l2: &L2,
    src_ip: IpAddr,
    dst_ip: IpAddr,
) -> Result<TcpSegment<'a>, DecodeError> {
    let tcp = TcpHeaderSlice::from_slice(l4.captured).map_err(|e| match e {
        tcp::HeaderSliceError::Len(e) if e.required_len <= l4.wire_len => DecodeError::Truncated,
        _ => DecodeError::Malformed,
    })?;
    let header = tcp.slice();
    let payload = l4.captured.get(header.len()..).ok_or(DecodeError::Truncated)?;
    let wire_payload_len = l4.wire_len.checked_sub(header.len()).ok_or(DecodeError::Malformed)?;
    Ok(TcpSegment {
        ts,
        src_mac: l2.src_mac,
        dst_mac: l2.dst_mac,
        vlan: l2.vlan,
        src_ip,
        dst_ip,
        src_port: tcp.source_port(),
        dst_port: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags(header.get(13).copied().unwrap_or(0)),
        payload,
        wire_payload_len: u32::try_from(wire_payload_len).unwrap_or(u32::MAX),
        frame_len: 0,
    })
}

#[cfg(test)]
mod tests {
    use etherparse::{IpNumber, Ipv6FlowLabel, Ipv6Header, PacketBuilder, TcpHeader, VlanId};

    use super::*;

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
    const TS: Timestamp = Timestamp(1_700_000_000_000_000_000);
    /// Ethernet (14) + IPv4 (20) + TCP (20).
    const ETH_V4_HEADERS: usize = 54;

    fn eth_v4(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40_000, 80, 1000, 512)
            .ack(77)
            .psh()
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// A bare IPv4 packet (no link header).
    fn ip_v4(payload: &[u8]) -> Vec<u8> {
        eth_v4(payload).split_off(14)
    }

    fn ip_v6(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .tcp(40_000, 5432, 1000, 512)
        .syn()
        .write(&mut v, payload)
        .unwrap();
        v
    }

    /// IPv6 + the given extension-header bytes + TCP, with `first` as the IPv6 next header.
    fn ip_v6_with_exts(first: u8, exts: &[u8], payload: &[u8]) -> Vec<u8> {
        let tcp = TcpHeader::new(40_000, 5432, 1000, 512).to_bytes();
        let header = Ipv6Header {
            traffic_class: 0,
            flow_label: Ipv6FlowLabel::ZERO,
            payload_length: u16::try_from(exts.len() + tcp.len() + payload.len()).unwrap(),
            next_header: IpNumber(first),
            hop_limit: 64,
            source: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            destination: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        };
        [&header.to_bytes()[..], exts, &tcp, payload].concat()
    }

    fn decode_ok(link: LinkType, frame: &[u8]) -> TcpSegment<'_> {
        decode(link, frame, TS).unwrap_or_else(|e| panic!("{link:?}: {e}"))
    }

    #[test]
    fn ethernet_ipv4_fields() {
        let frame = eth_v4(PAYLOAD);
        let seg = decode_ok(LinkType::Ethernet, &frame);
        assert_eq!(seg.ts, TS);
        assert_eq!(seg.src_mac, SRC_MAC);
        assert_eq!(seg.dst_mac, DST_MAC);
        assert_eq!(seg.vlan, None);
        assert_eq!(seg.src_ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(seg.dst_ip, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!((seg.src_port, seg.dst_port), (40_000, 80));
        assert_eq!((seg.seq, seg.ack), (1000, 77));
        assert_eq!(seg.flags, TcpFlags(TcpFlags::ACK | TcpFlags::PSH));
        assert!(seg.flags.ack() && !seg.flags.syn() && !seg.flags.fin() && !seg.flags.rst());
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!(seg.wire_payload_len, 18);
    }

    #[test]
    fn ethernet_padding_and_fcs_are_not_payload() {
        let mut frame = eth_v4(b"hi");
        frame.resize(60, 0);
        frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let seg = decode_ok(LinkType::Ethernet, &frame);
        assert_eq!(seg.payload, b"hi");
        assert_eq!(seg.wire_payload_len, 2);
    }

    #[test]
    fn snap_length_cut_keeps_wire_length() {
        let frame = eth_v4(PAYLOAD);
        let seg = decode_ok(LinkType::Ethernet, &frame[..ETH_V4_HEADERS + 5]);
        assert_eq!(seg.payload, &PAYLOAD[..5]);
        assert_eq!(seg.wire_payload_len, 18);
    }

    #[test]
    fn vlan_and_qinq() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .single_vlan(VlanId::try_new(42).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 3, 4)
            .write(&mut v, PAYLOAD)
            .unwrap();
        let seg = decode_ok(LinkType::Ethernet, &v);
        assert_eq!(seg.vlan, Some(42));
        assert_eq!(seg.payload, PAYLOAD);

        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(200).unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .write(&mut v, PAYLOAD)
            .unwrap();
        for outer_type in [0x8100_u16, 0x88A8, 0x9100] {
            v[12..14].copy_from_slice(&outer_type.to_be_bytes());
            let seg = decode_ok(LinkType::Ethernet, &v);
            assert_eq!(seg.vlan, Some(100), "outer tag type {outer_type:#x}");
            assert_eq!(seg.payload, PAYLOAD);
        }
    }

    #[test]
    fn too_many_vlan_tags_is_malformed() {
        let mut frame = [DST_MAC, SRC_MAC].concat();
        for _ in 0..=MAX_VLAN_TAGS {
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        frame.extend_from_slice(&[0x81, 0x00]);
        frame.extend_from_slice(&ip_v4(PAYLOAD));
        assert_eq!(decode(LinkType::Ethernet, &frame, TS).unwrap_err(), DecodeError::Malformed);
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        let ip = ip_v4(PAYLOAD);
        let mut sll = vec![0, 4, 0, 1, 0, 6];
        sll.extend_from_slice(&SRC_MAC);
        sll.extend_from_slice(&[0, 0, 0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let seg = decode_ok(LinkType::LinuxSll, &sll);
        assert_eq!(seg.src_mac, SRC_MAC);
        assert_eq!(seg.dst_mac, [0; 6]);
        assert_eq!(seg.payload, PAYLOAD);

        let mut sll2 = vec![0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6];
        sll2.extend_from_slice(&SRC_MAC);
        sll2.extend_from_slice(&[0, 0]);
        sll2.extend_from_slice(&ip_v6(PAYLOAD));
        let seg = decode_ok(LinkType::LinuxSll2, &sll2);
        assert_eq!(seg.src_mac, SRC_MAC);
        assert!(seg.flags.syn());
        assert_eq!(seg.dst_port, 5432);
        assert_eq!(seg.payload, PAYLOAD);

        // A VLAN tag the kernel did not strip, inside a cooked header.
        let mut tagged = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0x00, 0x07, 0x08, 0x00];
        tagged.extend_from_slice(&ip);
        let seg = decode_ok(LinkType::LinuxSll, &tagged);
        assert_eq!(seg.vlan, Some(7));
        assert_eq!(seg.src_mac, [0; 6]);
    }

    #[test]
    fn bsd_null_and_loop() {
        let v4 = ip_v4(PAYLOAD);
        let v6 = ip_v6(PAYLOAD);
        let cases: [(LinkType, [u8; 4], &[u8]); 7] = [
            (LinkType::Null, 2_u32.to_le_bytes(), &v4),
            (LinkType::Null, 2_u32.to_be_bytes(), &v4),
            (LinkType::Null, 30_u32.to_le_bytes(), &v6),
            (LinkType::Null, 24_u32.to_be_bytes(), &v6),
            (LinkType::Loop, 2_u32.to_be_bytes(), &v4),
            (LinkType::Loop, 28_u32.to_be_bytes(), &v6),
            (LinkType::Loop, 24_u32.to_be_bytes(), &v6),
        ];
        for (link, family, ip) in cases {
            let frame = [&family[..], ip].concat();
            assert_eq!(decode_ok(link, &frame).payload, PAYLOAD, "{link:?} {family:?}");
        }
        let unknown = [&7_u32.to_le_bytes()[..], &v4].concat();
        assert_eq!(decode(LinkType::Null, &unknown, TS).unwrap_err(), DecodeError::NotTcp);
        // Loop is always network order: a little-endian 2 is not AF_INET.
        let wrong = [&2_u32.to_le_bytes()[..], &v4].concat();
        assert_eq!(decode(LinkType::Loop, &wrong, TS).unwrap_err(), DecodeError::NotTcp);
    }

    #[test]
    fn raw_ip_link_types() {
        let v4 = ip_v4(PAYLOAD);
        let v6 = ip_v6(PAYLOAD);
        assert!(decode_ok(LinkType::Raw, &v4).src_ip.is_ipv4());
        assert!(decode_ok(LinkType::Raw, &v6).src_ip.is_ipv6());
        assert!(decode_ok(LinkType::Ipv4, &v4).src_ip.is_ipv4());
        assert!(decode_ok(LinkType::Ipv6, &v6).src_ip.is_ipv6());
        assert_eq!(decode(LinkType::Raw, &[0x50; 40], TS).unwrap_err(), DecodeError::Malformed);
        assert_eq!(decode(LinkType::Ipv4, &v6, TS).unwrap_err(), DecodeError::Malformed);
        assert_eq!(decode(LinkType::Ipv6, &v4, TS).unwrap_err(), DecodeError::Malformed);
    }

    #[test]
    fn ipv6_extension_headers_are_skipped() {
        // Hop-by-hop (8 bytes, PadN) → destination options (16 bytes) → routing (8) → AH (12) → TCP.
        let hbh = [60, 0, 1, 4, 0, 0, 0, 0];
        let dst = [43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let routing = [51, 0, 0, 0, 0, 0, 0, 0];
        let ah = [6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        let exts = [&hbh[..], &dst, &routing, &ah].concat();
        let pkt = ip_v6_with_exts(0, &exts, PAYLOAD);
        let seg = decode_ok(LinkType::Ipv6, &pkt);
        assert_eq!(seg.payload, PAYLOAD);
        assert_eq!(seg.wire_payload_len, 18);
        assert_eq!(seg.dst_port, 5432);
    }

    #[test]
    fn ipv6_fragments() {
        let first = [6, 0, 0x00, 0x01, 0, 0, 0, 9]; // offset 0, M=1
        let later = [6, 0, 0x00, 0xB8, 0, 0, 0, 9]; // offset 23, M=0
        let atomic = [6, 0, 0x00, 0x00, 0, 0, 0, 9];
        let udp = [17, 0, 0x00, 0x01, 0, 0, 0, 9];
        assert_eq!(
            decode(LinkType::Ipv6, &ip_v6_with_exts(44, &first, PAYLOAD), TS).unwrap_err(),
            DecodeError::Fragment
        );
        assert_eq!(
            decode(LinkType::Ipv6, &ip_v6_with_exts(44, &later, PAYLOAD), TS).unwrap_err(),
            DecodeError::Fragment
        );
        assert_eq!(decode(LinkType::Ipv6, &ip_v6_with_exts(44, &udp, PAYLOAD), TS).unwrap_err(), DecodeError::NotTcp);
        assert_eq!(decode_ok(LinkType::Ipv6, &ip_v6_with_exts(44, &atomic, PAYLOAD)).payload, PAYLOAD);
    }

    #[test]
    fn ipv6_extension_past_payload_length_is_malformed() {
        let mut pkt = ip_v6_with_exts(0, &[6, 0, 1, 4, 0, 0, 0, 0], b"");
        pkt[4..6].copy_from_slice(&4_u16.to_be_bytes());
        assert_eq!(decode(LinkType::Ipv6, &pkt, TS).unwrap_err(), DecodeError::Malformed);
        // No next header / ESP.
        assert_eq!(decode(LinkType::Ipv6, &ip_v6_with_exts(59, &[], b""), TS).unwrap_err(), DecodeError::NotTcp);
    }

    #[test]
    fn ipv4_fragments() {
        let mut mf = ip_v4(PAYLOAD);
        mf[6] = 0x20; // MF, offset 0
        assert_eq!(decode(LinkType::Ipv4, &mf, TS).unwrap_err(), DecodeError::Fragment);
        let mut later = ip_v4(PAYLOAD);
        later[7] = 0x03; // offset 24 bytes
        assert_eq!(decode(LinkType::Ipv4, &later, TS).unwrap_err(), DecodeError::Fragment);
        let mut df = ip_v4(PAYLOAD);
        df[6] = 0x40;
        assert_eq!(decode_ok(LinkType::Ipv4, &df).payload, PAYLOAD);
    }

    #[test]
    fn not_tcp() {
        let mut udp = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
            .udp(53, 53)
            .write(&mut udp, b"x")
            .unwrap();
        assert_eq!(decode(LinkType::Ethernet, &udp, TS).unwrap_err(), DecodeError::NotTcp);
        let mut arp = eth_v4(b"");
        arp[12..14].copy_from_slice(&0x0806_u16.to_be_bytes());
        assert_eq!(decode(LinkType::Ethernet, &arp, TS).unwrap_err(), DecodeError::NotTcp);
    }

    #[test]
    fn contradictory_lengths_are_malformed() {
        let mut short_total = ip_v4(PAYLOAD);
        short_total[2..4].copy_from_slice(&19_u16.to_be_bytes());
        assert_eq!(decode(LinkType::Ipv4, &short_total, TS).unwrap_err(), DecodeError::Malformed);

        let mut bad_ihl = ip_v4(PAYLOAD);
        bad_ihl[0] = 0x44;
        assert_eq!(decode(LinkType::Ipv4, &bad_ihl, TS).unwrap_err(), DecodeError::Malformed);

        let mut bad_offset = ip_v4(PAYLOAD);
        bad_offset[20 + 12] = 0x40; // data offset 4 words
        assert_eq!(decode(LinkType::Ipv4, &bad_offset, TS).unwrap_err(), DecodeError::Malformed);

        // TCP header claims 60 bytes but IP says the segment is 38.
        let mut long_tcp = ip_v4(PAYLOAD);
        long_tcp[20 + 12] = 0xF0;
        assert_eq!(decode(LinkType::Ipv4, &long_tcp, TS).unwrap_err(), DecodeError::Malformed);

        // IP total length shorter than IP + TCP headers.
        let mut tiny = ip_v4(PAYLOAD);
        tiny[2..4].copy_from_slice(&30_u16.to_be_bytes());
        assert_eq!(decode(LinkType::Ipv4, &tiny, TS).unwrap_err(), DecodeError::Malformed);
    }

    #[test]
    fn zero_ip_length_trusts_capture() {
        let mut v4 = ip_v4(PAYLOAD);
        v4[2..4].copy_from_slice(&[0, 0]);
        let seg = decode_ok(LinkType::Ipv4, &v4);
        assert_eq!((seg.payload, seg.wire_payload_len), (PAYLOAD, 18));
        let mut v6 = ip_v6(PAYLOAD);
        v6[4..6].copy_from_slice(&[0, 0]);
        let seg = decode_ok(LinkType::Ipv6, &v6);
        assert_eq!((seg.payload, seg.wire_payload_len), (PAYLOAD, 18));
    }

    /// Every prefix of a valid frame either decodes (with a payload cut to the prefix) or, when it
    /// ends inside a header, reports `Truncated`; none panics.
    #[test]
    fn every_prefix_is_truncated_or_decodes() {
        let v4 = ip_v4(PAYLOAD);
        let v6 = ip_v6(PAYLOAD);
        let mut qinq = Vec::new();
        PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .double_vlan(VlanId::try_new(1).unwrap(), VlanId::try_new(2).unwrap())
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 1)
            .tcp(1, 2, 3, 4)
            .write(&mut qinq, PAYLOAD)
            .unwrap();
        let hbh = [6, 0, 1, 4, 0, 0, 0, 0];
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&v4);
        let mut sll2 = vec![0x86, 0xDD, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
        sll2.extend_from_slice(&v6);
        let frames: Vec<(LinkType, Vec<u8>)> = vec![
            (LinkType::Ethernet, eth_v4(PAYLOAD)),
            (LinkType::Ethernet, qinq),
            (LinkType::LinuxSll, sll),
            (LinkType::LinuxSll2, sll2),
            (LinkType::Null, [&2_u32.to_le_bytes()[..], &v4].concat()),
            (LinkType::Loop, [&30_u32.to_be_bytes()[..], &v6].concat()),
            (LinkType::Raw, v4.clone()),
            (LinkType::Raw, v6.clone()),
            (LinkType::Ipv6, ip_v6_with_exts(0, &hbh, PAYLOAD)),
        ];
        for (link, frame) in &frames {
            let headers = frame.len() - PAYLOAD.len();
            for cut in 0..=frame.len() {
                let got = decode(*link, &frame[..cut], TS);
                if cut < headers {
                    assert_eq!(got.unwrap_err(), DecodeError::Truncated, "{link:?} cut at {cut}");
                } else {
                    let seg = got.unwrap_or_else(|e| panic!("{link:?} cut at {cut}: {e}"));
                    assert_eq!(seg.payload, &PAYLOAD[..cut - headers]);
                    assert_eq!(seg.wire_payload_len, 18);
                }
            }
        }
    }

    /// Single-byte corruption anywhere in the headers never panics.
    #[test]
    fn corrupted_bytes_never_panic() {
        let frame = eth_v4(PAYLOAD);
        for i in 0..ETH_V4_HEADERS {
            for value in [0x00, 0x01, 0x45, 0x4F, 0x60, 0x7F, 0x80, 0xF0, 0xFF] {
                let mut f = frame.clone();
                f[i] = value;
                for link in [LinkType::Ethernet, LinkType::Raw, LinkType::Null, LinkType::LinuxSll, LinkType::LinuxSll2]
                {
                    let _ = decode(link, &f, TS);
                }
            }
        }
    }

    /// The fixed-offset reading of the common frame agrees with the layer walk on every frame it
    /// accepts: valid frames, cut anywhere, and with one or two header bytes set to values that
    /// matter to some check (versions, lengths, flags, offsets).
    #[test]
    fn the_fast_path_agrees_with_the_walk() {
        let values =
            [0x00, 0x01, 0x02, 0x05, 0x06, 0x08, 0x14, 0x20, 0x28, 0x3F, 0x40, 0x45, 0x46, 0x50, 0x80, 0xF0, 0xFF];
        let mut frames = vec![eth_v4(PAYLOAD), eth_v4(b""), eth_v4(&[7; 1400])];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let mut f = eth_v4(&PAYLOAD[..rng.usize(..=PAYLOAD.len())]);
            for _ in 0..rng.usize(1..=2) {
                let at = rng.usize(12..ETH_V4_HEADERS);
                f[at] = values[rng.usize(..values.len())];
            }
            let cut = rng.usize(..=f.len() + 4).min(f.len());
            f.truncate(if rng.bool() { cut } else { f.len() });
            frames.push(f);
        }
        let mut accepted = 0;
        for f in &frames {
            let walk = decode_walk(LinkType::Ethernet, f, TS);
            match ethernet_ipv4_tcp(f, TS) {
                Some(fast) => {
                    accepted += 1;
                    assert_eq!(format!("{fast:?}"), format!("{:?}", walk.expect("the walk accepts it too")), "{f:?}");
                }
                None => {
                    // Declined frames go the long way: `decode` is the walk for them.
                    assert_eq!(format!("{:?}", decode(LinkType::Ethernet, f, TS)), format!("{walk:?}"));
                }
            }
        }
        assert!(accepted > 1_000, "only {accepted} frames took the fast path");
    }
}
