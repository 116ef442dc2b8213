//! Community ID v1 flow hashing (`network.community_id`).
//!
//! The [Community ID spec](https://github.com/corelight/community-id-spec) gives every flow one string
//! that Zeek, Suricata, Packetbeat and others compute identically, so events from different tools can
//! be joined. The hash input is, all in network byte order: the 2-byte seed, the source and destination
//! addresses, the IP protocol, one zero byte, and (for TCP, UDP, SCTP, ICMP and `ICMPv6` only) the two
//! ports. The endpoints are ordered first so that both directions of a flow give the same id. For ICMP
//! the "ports" are the message type and code, with request/reply types paired so a request and its
//! reply share an id; unpaired types are one-way and keep their direction.
//!
//! This runs once per published event (not per packet), so the `String` it returns is acceptable.

use std::net::IpAddr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_SCTP: u8 = 132;

/// Computes the Community ID v1 string (`"1:<base64 sha1>"`) of a flow.
///
/// For ICMP and `ICMPv6` pass the message type as `src_port` and the code as `dst_port`. For protocols
/// without ports (anything but TCP, UDP, SCTP, ICMP, `ICMPv6`) the ports are ignored, as the spec says.
/// When one address is IPv4 and the other IPv6 (which no real packet has), the IPv4 one is hashed in
/// its IPv4-mapped IPv6 form so the input stays well defined.
#[must_use]
pub fn community_id_v1(src_ip: IpAddr, src_port: u16, dst_ip: IpAddr, dst_port: u16, proto: u8, seed: u16) -> String {
    let (src_ip, dst_ip) = match (src_ip, dst_ip) {
        (IpAddr::V4(s), IpAddr::V6(d)) => (IpAddr::V6(s.to_ipv6_mapped()), IpAddr::V6(d)),
        (IpAddr::V6(s), IpAddr::V4(d)) => (IpAddr::V6(s), IpAddr::V6(d.to_ipv6_mapped())),
        pair => pair,
    };
    let (ports, one_way) = match proto {
        IPPROTO_TCP | IPPROTO_UDP | IPPROTO_SCTP => (Some((src_port, dst_port)), false),
        IPPROTO_ICMP => icmp_ports(src_port, dst_port, icmpv4_counterpart),
        IPPROTO_ICMPV6 => icmp_ports(src_port, dst_port, icmpv6_counterpart),
        _ => (None, false),
    };
    let (sp, dp) = ports.unwrap_or((0, 0));
    // `IpAddr`'s ordering within one family is the byte order of the address, as the spec wants.
    let keep = one_way || (src_ip, sp) < (dst_ip, dp);
    let (a, a_port, b, b_port) = if keep { (src_ip, sp, dst_ip, dp) } else { (dst_ip, dp, src_ip, sp) };

    let mut hasher = Sha1::new();
    hasher.update(seed.to_be_bytes());
    update_ip(&mut hasher, a);
    update_ip(&mut hasher, b);
    hasher.update([proto, 0]);
    if ports.is_some() {
        hasher.update(a_port.to_be_bytes());
        hasher.update(b_port.to_be_bytes());
    }
    let mut id = String::with_capacity(30);
    id.push_str("1:");
    STANDARD.encode_string(hasher.finalize(), &mut id);
    id
}

fn update_ip(hasher: &mut Sha1, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
}

/// Maps an ICMP (type, code) to port equivalents: paired types become (type, counterpart type) and
/// are two-way; others stay (type, code) and are one-way.
fn icmp_ports(icmp_type: u16, code: u16, counterpart: fn(u16) -> Option<u16>) -> (Option<(u16, u16)>, bool) {
    match counterpart(icmp_type) {
        Some(other) => (Some((icmp_type, other)), false),
        None => (Some((icmp_type, code)), true),
    }
}

/// `ICMPv4` request/reply pairs (echo, timestamp, information, address mask; router solicitation
/// pairs with advertisement only in that direction, as in the spec's reference implementation).
fn icmpv4_counterpart(icmp_type: u16) -> Option<u16> {
    Some(match icmp_type {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// `ICMPv6` pairs: echo, router and neighbor discovery, MLD, node information, home agent discovery.
fn icmpv6_counterpart(icmp_type: u16) -> Option<u16> {
    Some(match icmp_type {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        139 => 140,
        140 => 139,
        144 => 145,
        145 => 144,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(src: &str, sport: u16, dst: &str, dport: u16, proto: u8, seed: u16) -> String {
        community_id_v1(src.parse().unwrap(), sport, dst.parse().unwrap(), dport, proto, seed)
    }

    #[test]
    fn packetbeat_golden_value() {
        assert_eq!(id("172.31.98.49", 55874, "93.184.216.34", 80, 6, 0), "1:TMPM5eEnGOXfxAjx6NKlyjx+X10=");
        assert_eq!(id("93.184.216.34", 80, "172.31.98.49", 55874, 6, 0), "1:TMPM5eEnGOXfxAjx6NKlyjx+X10=");
    }

    /// (proto, saddr, daddr, sport, dport, seed 0, seed 1) from the spec's `baseline/` tables; ICMP
    /// rows give (type, code) as the ports.
    const BASELINE: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            135,
            136,
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "fe80::200:86ff:fe05:80da",
            136,
            135,
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
            "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "fe80::200:86ff:fe05:80da",
            135,
            136,
            "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
        ),
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "fe80::260:97ff:fe07:69ea",
            136,
            135,
            "1:zavyT/cezQr1fmImYCwYnMXbgck=",
            "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM=",
        ),
        (
            58,
            "3ffe:501:1800:2345::2",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            3,
            0,
            "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=",
            "1:lVEtCZpYu84Xqaa++3lXFyuu2n4=",
        ),
        (
            58,
            "3ffe:501:410:0:2c0:dfff:fe47:33e",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            1,
            4,
            "1:hLZd0XGWojozrvxqE0dWB1iM6R0=",
            "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8=",
        ),
        (
            58,
            "3ffe:507:0:1:200:86ff:fe05:80da",
            "3ffe:501:0:1001::2",
            128,
            129,
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
        ),
        (
            58,
            "3ffe:501:0:1001::2",
            "3ffe:507:0:1:200:86ff:fe05:80da",
            129,
            128,
            "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=",
            "1:GfZxjAkDk2MkegpBYHV6tadtFXQ=",
        ),
        (
            58,
            "fe80::200:86ff:fe05:80da",
            "ff02::2",
            133,
            134,
            "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=",
            "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8=",
        ),
        (
            58,
            "fe80::260:97ff:fe07:69ea",
            "ff02::1",
            134,
            133,
            "1:pkvHqCL88/tg1k4cPigmZXUtL00=",
            "1:K/ee5UCqAMAQXDorP5nSa2CGLjc=",
        ),
        (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
        (
            6,
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            "2607:f8b0:400c:c03::1a",
            63943,
            25,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        ),
        (
            6,
            "2607:f8b0:400c:c03::1a",
            "2001:470:e5bf:dead:4957:2174:e82c:4887",
            25,
            63943,
            "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
            "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
        ),
        (
            132,
            "192.168.170.8",
            "192.168.170.56",
            7,
            7,
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
        ),
        (
            132,
            "192.168.170.56",
            "192.168.170.8",
            7,
            7,
            "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
            "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
        ),
        (
            6,
            "128.232.110.120",
            "66.35.250.204",
            34855,
            80,
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
        ),
        (
            6,
            "66.35.250.204",
            "128.232.110.120",
            80,
            34855,
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
        ),
        (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        (46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    ];

    #[test]
    fn spec_baseline_vectors() {
        for &(proto, src, dst, sport, dport, seed0, seed1) in BASELINE {
            assert_eq!(id(src, sport, dst, dport, proto, 0), seed0, "{proto} {src}:{sport} {dst}:{dport} seed 0");
            assert_eq!(id(src, sport, dst, dport, proto, 1), seed1, "{proto} {src}:{sport} {dst}:{dport} seed 1");
        }
    }

    #[test]
    fn portless_protocols_ignore_ports() {
        assert_eq!(id("10.1.12.1", 1234, "10.1.12.2", 99, 46, 0), "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=");
    }

    #[test]
    fn mixed_families_do_not_panic() {
        let a = id("10.0.0.1", 1, "::1", 2, 6, 0);
        let b = id("::1", 2, "10.0.0.1", 1, 6, 0);
        assert_eq!(a, b);
        assert!(a.starts_with("1:"));
    }
}
