//! Facts about this host for `agent.*` / `host.*` and `network.direction`: host name, a stable
//! agent id, a per-run ephemeral id, and the local addresses.

use std::net::IpAddr;

/// The host name (from the kernel).
#[must_use]
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn format_uuid(b: [u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A random (v4) UUID.
#[must_use]
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most `b.len()` bytes into the valid buffer `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 16 {
        let t = crate::time::Timestamp::now().nanos() ^ u64::from(std::process::id());
        b[..8].copy_from_slice(&t.to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_uuid(b)
}

/// A UUID that stays the same on this host: derived from `/etc/machine-id` (or the host name).
#[must_use]
pub fn stable_agent_id() -> String {
    use sha1::{Digest, Sha1};
    let seed = std::fs::read_to_string("/etc/machine-id").unwrap_or_else(|_| hostname());
    let digest = Sha1::digest(format!("packetbeat-agent:{}", seed.trim()).as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    format_uuid(b)
}

/// Addresses configured on this host's interfaces.
#[must_use]
pub fn local_ips() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we walk read-only and free with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&raw mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*addr.cast::<libc::sockaddr_in>();
                        out.push(IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*addr.cast::<libc::sockaddr_in6>();
                        out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Which of CAP_NET_RAW, CAP_BPF and CAP_PERFMON the process lacks (from `/proc/self/status`).
#[must_use]
pub fn missing_capabilities() -> Vec<&'static str> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return Vec::new() };
    let Some(eff) =
        status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
    else {
        return Vec::new();
    };
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    let mut missing = Vec::new();
    if !has(13) {
        missing.push("CAP_NET_RAW");
    }
    // CAP_SYS_ADMIN (21) covers BPF on kernels without CAP_BPF.
    if !has(39) && !has(21) {
        missing.push("CAP_BPF");
    }
    if !has(38) && !has(21) {
        missing.push("CAP_PERFMON");
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_well_formed() {
        for u in [random_uuid(), stable_agent_id()] {
            assert_eq!(u.len(), 36);
            assert_eq!(u.matches('-').count(), 4);
        }
        assert_eq!(stable_agent_id(), stable_agent_id());
        assert_ne!(random_uuid(), random_uuid());
        assert!(local_ips().iter().any(IpAddr::is_loopback));
    }
}
