//! L2–L4 decoding of one captured frame into a borrowed [`TcpSegment`].
//!
//! Decoding happens once per packet, in the capture thread, before sharding; everything after works on
//! the borrowed segment. Nothing here allocates or panics on hostile bytes: every failure is a
//! [`DecodeError`] that the caller counts.

mod decode;
mod flow_hash;
mod peek;

use std::net::IpAddr;

pub use decode::{decode, decode_walk};
pub use flow_hash::flow_hash;
pub use peek::peek_flow_hash;

use crate::time::Timestamp;

/// The link-layer framing of a capture, from the pcap/pcapng header or the live source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// `DLT_EN10MB` (1): Ethernet II, with optional `802.1Q` / `802.1ad` (`QinQ`) tags.
    Ethernet,
    /// `DLT_NULL` (0): BSD loopback, a 4-byte address family in host byte order.
    Null,
    /// `DLT_LOOP` (108): OpenBSD loopback, a 4-byte address family in network byte order.
    Loop,
    /// `DLT_RAW` (101) / `LINKTYPE_RAW`: a bare IPv4 or IPv6 packet.
    Raw,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `DLT_LINUX_SLL` (113): Linux cooked capture v1.
    LinuxSll,
    /// `DLT_LINUX_SLL2` (276): Linux cooked capture v2.
    LinuxSll2,
}

impl LinkType {
    /// Maps a pcap LINKTYPE_* number; `None` for link types this agent does not decode.
    #[must_use]
    pub fn from_pcap(linktype: u32) -> Option<Self> {
        Some(match linktype {
            0 => Self::Null,
            1 => Self::Ethernet,
            12 | 14 | 101 => Self::Raw,
            108 => Self::Loop,
            113 => Self::LinuxSll,
            228 => Self::Ipv4,
            229 => Self::Ipv6,
            276 => Self::LinuxSll2,
            _ => return None,
        })
    }
}

/// TCP flag bits as on the wire (low byte of the flags field).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;

    /// FIN set.
    #[must_use]
    pub const fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN set.
    #[must_use]
    pub const fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST set.
    #[must_use]
    pub const fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// ACK set.
    #[must_use]
    pub const fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// One TCP segment, borrowed from the captured frame.
#[derive(Clone, Copy, Debug)]
pub struct TcpSegment<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Source MAC (all zero when the link has none).
    pub src_mac: [u8; 6],
    /// Destination MAC (all zero when the link has none).
    pub dst_mac: [u8; 6],
    /// Outer VLAN id, if tagged.
    pub vlan: Option<u16>,
    /// Source address.
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// TCP payload as captured (may be shorter than on the wire when the snap length cut it).
    pub payload: &'a [u8],
    /// Payload length on the wire, from the IP length fields (≥ `payload.len()`).
    pub wire_payload_len: u32,
    /// The whole frame's length on the wire (what flows count); set from the capture record.
    pub frame_len: u32,
}

/// Why a frame was not turned into a TCP segment. Each variant is counted by the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame ends inside a header.
    #[error("truncated header")]
    Truncated,
    /// A well-formed packet that is not TCP over IPv4/IPv6 (ARP, UDP, ICMP…).
    #[error("not TCP")]
    NotTcp,
    /// A non-first IPv4 fragment or a fragmented IPv6 packet (not reassembled).
    #[error("IP fragment")]
    Fragment,
    /// Header fields that contradict each other (bad IHL, data offset, version).
    #[error("malformed header")]
    Malformed,
}
