//! A symmetric flow hash to shard connections to workers.
//!
//! Every packet of a connection, in both directions, must reach the same worker (one owner per
//! connection, no locks). [`flow_hash`] is therefore symmetric: the two endpoints are put in a
//! canonical order before mixing. It runs on every packet, so it is a handful of multiply–xorshift
//! rounds over registers, with no allocation and no `Hasher` state.
//!
//! The hash is fixed (not seeded per process), so replay shards deterministically. The price is that
//! someone who can choose addresses could aim many flows at one worker; that only costs balance, and
//! each worker's tables are bounded anyway. It is not the kernel's `PACKET_FANOUT_HASH` (a seeded
//! jhash), so it cannot be used to predict which `AF_PACKET` socket got a packet.

use std::net::IpAddr;

/// One endpoint as two machine words: the address (IPv4 widened, with a family tag so that an IPv4
/// address and its IPv4-mapped IPv6 form stay distinct) and the port.
fn endpoint_key(ip: IpAddr, port: u16) -> (u128, u16) {
    match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_bits()) | (1 << 127), port),
        IpAddr::V6(v6) => (v6.to_bits(), port),
    }
}

/// The 64-bit finaliser of `MurmurHash3` / `SplitMix64`: every input bit affects every output bit.
const fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Hashes a TCP/UDP connection so that `flow_hash(a, b) == flow_hash(b, a)`.
///
/// Use the high bits to pick a worker (`(hash as u128 * n as u128 >> 64) as usize`) or `hash % n`;
/// all bits are well mixed.
#[must_use]
#[expect(clippy::cast_possible_truncation, reason = "splitting a u128 into its two u64 halves")]
pub fn flow_hash(a: (IpAddr, u16), b: (IpAddr, u16)) -> u64 {
    if let ((IpAddr::V4(x), xp), (IpAddr::V4(y), yp)) = (a, b) {
        return flow_hash_v4((x.to_bits(), xp), (y.to_bits(), yp));
    }
    let ka = endpoint_key(a.0, a.1);
    let kb = endpoint_key(b.0, b.1);
    let (lo, hi) = if ka <= kb { (ka, kb) } else { (kb, ka) };
    let mut h = 0x9E37_79B9_7F4A_7C15_u64;
    for word in
        [lo.0 as u64, (lo.0 >> 64) as u64, hi.0 as u64, (hi.0 >> 64) as u64, (u64::from(lo.1) << 16) | u64::from(hi.1)]
    {
        h = mix(h ^ word);
    }
    h
}

/// [`flow_hash`] of two IPv4 endpoints (address bits, port), the case every replay worker computes
/// for every frame of the file: each endpoint fits one word, so two mixing rounds over the ordered
/// pair do (the general form takes five over 128-bit addresses). Its own seed keeps it apart from
/// the IPv4-mapped IPv6 form of the same connection.
#[must_use]
#[inline]
pub fn flow_hash_v4(a: (u32, u16), b: (u32, u16)) -> u64 {
    let word = |(addr, port): (u32, u16)| (u64::from(addr) << 16) | u64::from(port);
    let (ka, kb) = (word(a), word(b));
    let (lo, hi) = if ka <= kb { (ka, kb) } else { (kb, ka) };
    mix(mix(lo ^ 0xD6E8_FEB8_6659_FD93) ^ hi)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn symmetric() {
        let a = (v4("10.0.0.1"), 40_000);
        let b = (v4("10.0.0.2"), 80);
        assert_eq!(flow_hash(a, b), flow_hash(b, a));
        let c = ("2001:db8::1".parse().unwrap(), 5432);
        let d = ("2001:db8::2".parse().unwrap(), 60_001);
        assert_eq!(flow_hash(c, d), flow_hash(d, c));
        // Same address, ports decide the order.
        assert_eq!(
            flow_hash((v4("1.1.1.1"), 1), (v4("1.1.1.1"), 2)),
            flow_hash((v4("1.1.1.1"), 2), (v4("1.1.1.1"), 1))
        );
    }

    #[test]
    fn distinguishes_ports_addresses_and_families() {
        let base = flow_hash((v4("10.0.0.1"), 40_000), (v4("10.0.0.2"), 80));
        assert_ne!(base, flow_hash((v4("10.0.0.1"), 40_001), (v4("10.0.0.2"), 80)));
        assert_ne!(base, flow_hash((v4("10.0.0.3"), 40_000), (v4("10.0.0.2"), 80)));
        // Swapping which side has which port is a different connection.
        assert_ne!(base, flow_hash((v4("10.0.0.1"), 80), (v4("10.0.0.2"), 40_000)));
        let mapped = |s: &str| IpAddr::V6(s.parse::<Ipv4Addr>().unwrap().to_ipv6_mapped());
        assert_ne!(base, flow_hash((mapped("10.0.0.1"), 40_000), (mapped("10.0.0.2"), 80)));
    }

    #[test]
    fn ipv4_form_is_the_general_one() {
        let (x, y) = (Ipv4Addr::new(192, 168, 1, 7), Ipv4Addr::new(10, 1, 2, 3));
        let (a, b) = ((x.to_bits(), 51_000), (y.to_bits(), 3306));
        assert_eq!(flow_hash((x.into(), a.1), (y.into(), b.1)), flow_hash_v4(a, b));
        assert_eq!(flow_hash_v4(a, b), flow_hash_v4(b, a));
        // Equal addresses: the ports order the pair.
        assert_eq!(flow_hash_v4((7, 1), (7, 2)), flow_hash_v4((7, 2), (7, 1)));
        assert_ne!(flow_hash_v4((7, 1), (7, 2)), flow_hash_v4((7, 1), (7, 3)));
    }

    #[test]
    fn spreads_sequential_ports_over_workers() {
        let server = (v4("10.0.0.2"), 80);
        let mut per_worker = [0_u32; 8];
        let mut seen = HashSet::new();
        for port in 30_000..38_000_u16 {
            let h = flow_hash((v4("10.0.0.1"), port), server);
            seen.insert(h);
            per_worker[usize::try_from(h % 8).unwrap()] += 1;
        }
        assert_eq!(seen.len(), 8000);
        for n in per_worker {
            assert!((800..1200).contains(&n), "unbalanced: {per_worker:?}");
        }
    }
}
