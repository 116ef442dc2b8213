//! The kernel side of packetbeat-agent: one socket filter that picks the TCP segments of the
//! configured ports out of everything an AF_PACKET socket sees.
//!
//! It parses Ethernet (up to two 802.1Q/802.1ad tags), IPv4 (IHL, non-first fragments skipped) or
//! IPv6 (hop-by-hop, routing, destination options and fragment headers, at most
//! `IPV6_MAX_EXT_HEADERS`), then TCP, and looks both ports up in `PORTS`. Every decision bumps a
//! per-CPU counter. A match is delivered according to `CONFIG`:
//! - `ebpf`: header + up to snaplen bytes of the frame go into the `EVENTS` ring buffer, and the
//!   filter returns 0 so the socket itself queues nothing;
//! - `af_packet`: the filter returns the snap length, so the socket (a TPACKET_V3 ring) gets it.
//!
//! Socket filters cannot read `skb->data` directly, so every read is `bpf_skb_load_bytes`, which
//! fails cleanly past the end of the frame. Outgoing copies (`PACKET_OUTGOING`) are skipped first,
//! otherwise loopback traffic would be seen twice.
// Only the bpf target is the real thing; on the host the crate builds as an empty program so
// `cargo check/clippy --workspace` work (as aya-template does).
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "#[socket_filter] generates the entry point taking the raw __sk_buff pointer"
)]

use aya_ebpf::{
    bindings::__sk_buff,
    helpers::{bpf_ktime_get_ns, bpf_skb_load_bytes},
    macros::{map, socket_filter},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::SkBuffContext,
    EbpfContext as _,
};
use packetbeat_common::{
    config::{Config, DeliveryMode, PortKey, PortValue, MAX_PORTS, PORT_TCP},
    event::RecordHeader,
    stats::{Counter, COUNTER_COUNT},
};

/// TCP ports to capture, written by the agent.
#[map]
static PORTS: HashMap<PortKey, PortValue> = HashMap::with_max_entries(MAX_PORTS, 0);

/// Delivery mode and snap length (one entry).
#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Per-CPU counters indexed by `Counter`.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_COUNT, 0);

/// Matching frames in `ebpf` mode; the agent sets the real size at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// `skb->pkt_type` of a frame this host sends (see `include/uapi/linux/if_packet.h`).
const PACKET_OUTGOING: u32 = 4;
const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPV6_HOPOPTS: u8 = 0;
const IPV6_ROUTING: u8 = 43;
const IPV6_FRAGMENT: u8 = 44;
const IPV6_DSTOPTS: u8 = 60;
const IPV6_MAX_EXT_HEADERS: usize = 4;

/// Why a frame is not delivered; each maps to the counter it bumps.
#[derive(Clone, Copy)]
enum Skip {
    Outgoing,
    Count(Counter),
}

impl From<Counter> for Skip {
    fn from(c: Counter) -> Self {
        Self::Count(c)
    }
}

#[socket_filter]
pub fn packetbeat(ctx: SkBuffContext) -> i64 {
    match try_packetbeat(&ctx) {
        Ok(keep) => i64::from(keep),
        Err(Skip::Outgoing) => 0,
        Err(Skip::Count(c)) => {
            count(c);
            0
        }
    }
}

/// Returns how many bytes of the frame the socket keeps (0 = none).
#[inline(always)]
fn try_packetbeat(ctx: &SkBuffContext) -> Result<u32, Skip> {
    let skb = ctx.as_ptr().cast::<__sk_buff>();
    // SAFETY: the context pointer of a socket filter is a valid `__sk_buff`; the verifier allows
    // these reads.
    let (pkt_type, wire_len, ifindex) = unsafe { ((*skb).pkt_type, (*skb).len, (*skb).ifindex) };
    if pkt_type == PACKET_OUTGOING {
        return Err(Skip::Outgoing);
    }
    count(Counter::Seen);

    let l4 = l4_offset(ctx)?;
    let ports: [u8; 4] = load(ctx, l4)?;
    let src = u16::from_be_bytes([ports[0], ports[1]]);
    let dst = u16::from_be_bytes([ports[2], ports[3]]);
    if !selected(src) && !selected(dst) {
        return Err(Counter::NotMatched.into());
    }

    let config = CONFIG.get(0).copied().unwrap_or_default();
    let cap_len = wire_len.min(config.effective_snaplen());
    if config.mode == DeliveryMode::AfPacket as u32 {
        count(Counter::Matched);
        return Ok(cap_len);
    }
    let header = RecordHeader {
        // SAFETY: a plain helper call without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        wire_len,
        cap_len,
        ifindex,
        _pad: 0,
    };
    deliver(ctx, &header)?;
    count(Counter::Matched);
    Ok(0)
}

/// Offset of the TCP header, or why there is none.
#[inline(always)]
fn l4_offset(ctx: &SkBuffContext) -> Result<usize, Skip> {
    let mut l3 = ETH_HLEN;
    let mut ethertype = load_be16(ctx, 12)?;
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        ethertype = load_be16(ctx, l3 + 2)?;
        l3 += 4;
    }
    match ethertype {
        ETH_P_IP => ipv4_l4(ctx, l3),
        ETH_P_IPV6 => ipv6_l4(ctx, l3),
        _ => Err(Counter::NotIp.into()),
    }
}

#[inline(always)]
fn ipv4_l4(ctx: &SkBuffContext, l3: usize) -> Result<usize, Skip> {
    // version/IHL, TOS, total length, id, flags/fragment offset, TTL, protocol
    let h: [u8; 10] = load(ctx, l3)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 {
        return Err(Counter::TooShort.into());
    }
    if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
        return Err(Counter::Fragment.into());
    }
    if h[9] != IPPROTO_TCP {
        return Err(Counter::NotTcp.into());
    }
    Ok(l3 + ihl)
}

#[inline(always)]
fn ipv6_l4(ctx: &SkBuffContext, l3: usize) -> Result<usize, Skip> {
    let mut next: u8 = load(ctx, l3 + 6)?;
    let mut off = l3 + 40;
    for _ in 0..IPV6_MAX_EXT_HEADERS {
        match next {
            IPV6_HOPOPTS | IPV6_ROUTING | IPV6_DSTOPTS => {
                let h: [u8; 2] = load(ctx, off)?;
                next = h[0];
                off += (usize::from(h[1]) + 1) * 8;
            }
            IPV6_FRAGMENT => {
                let h: [u8; 4] = load(ctx, off)?;
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    return Err(Counter::Fragment.into());
                }
                next = h[0];
                off += 8;
            }
            _ => break,
        }
    }
    if next != IPPROTO_TCP {
        return Err(Counter::NotTcp.into());
    }
    Ok(off)
}

/// Whether `port` is in `PORTS` with the TCP flag.
#[inline(always)]
fn selected(port: u16) -> bool {
    PORTS
        .get_ptr(&PortKey { port })
        // SAFETY: a map value pointer from a successful lookup; a concurrent update can at worst
        // give us the old or new flags, both valid u32 values.
        .is_some_and(|v| unsafe { (*v).flags } & PORT_TCP != 0)
}

/// One ring record of a size class: header + `N` frame bytes (only `cap_len` of them used).
#[repr(C)]
struct Record<const N: usize> {
    header: RecordHeader,
    data: [u8; N],
}

/// Copies the frame into a ring record of the smallest size class that holds `cap_len` bytes.
#[inline(always)]
fn deliver(ctx: &SkBuffContext, header: &RecordHeader) -> Result<(), Skip> {
    match header.cap_len {
        0..=128 => emit::<128>(ctx, header),
        129..=256 => emit::<256>(ctx, header),
        257..=512 => emit::<512>(ctx, header),
        513..=1024 => emit::<1024>(ctx, header),
        1025..=2048 => emit::<2048>(ctx, header),
        2049..=4096 => emit::<4096>(ctx, header),
        4097..=8192 => emit::<8192>(ctx, header),
        8193..=16384 => emit::<16384>(ctx, header),
        16385..=32768 => emit::<32768>(ctx, header),
        32769..=65536 => emit::<65536>(ctx, header),
        65537..=131_072 => emit::<131_072>(ctx, header),
        _ => emit::<262_144>(ctx, header),
    }
}

#[inline(always)]
fn emit<const N: usize>(ctx: &SkBuffContext, header: &RecordHeader) -> Result<(), Skip> {
    let Some(mut entry) = EVENTS.reserve::<Record<N>>(0) else {
        return Err(Counter::RingFull.into());
    };
    // A volatile read hides the value from LLVM, so the mask below survives optimisation and
    // proves 1 <= len <= N to the verifier (cap_len <= N already holds, so it changes nothing).
    // SAFETY: reading a local.
    let cap_len = unsafe { core::ptr::read_volatile(&header.cap_len) };
    let len = (cap_len.wrapping_sub(1) & (N as u32 - 1)) + 1;
    let record = entry.as_mut_ptr();
    // SAFETY: `record` is an exclusive reservation of `size_of::<Record<N>>()` bytes; `len <= N`
    // bytes are written into `data`, and the header is written whole.
    let ret = unsafe {
        (*record).header = *header;
        bpf_skb_load_bytes(ctx.as_ptr().cast_const(), 0, (*record).data.as_mut_ptr().cast(), len)
    };
    if ret != 0 {
        entry.discard(0);
        return Err(Counter::TooShort.into());
    }
    entry.submit(wakeup_flag());
    Ok(())
}

/// `bpf_ringbuf_submit` flags and `bpf_ringbuf_query` selectors (uapi `linux/bpf.h`).
const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_RING_SIZE: u64 = 1;

/// Waking the reader for every record costs a wakeup (and a one-frame batch) per packet when it has
/// caught up. Records are submitted quietly until the ring is 1/16 full; the reader also looks at
/// the ring every few milliseconds on its own, so a quiet ring is still read promptly.
#[inline(always)]
fn wakeup_flag() -> u64 {
    if EVENTS.query(BPF_RB_AVAIL_DATA) >= EVENTS.query(BPF_RB_RING_SIZE) / 16 {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

#[inline(always)]
fn load<T>(ctx: &SkBuffContext, offset: usize) -> Result<T, Skip> {
    ctx.load::<T>(offset).map_err(|_| Counter::TooShort.into())
}

#[inline(always)]
fn load_be16(ctx: &SkBuffContext, offset: usize) -> Result<u16, Skip> {
    load::<[u8; 2]>(ctx, offset).map(u16::from_be_bytes)
}

#[inline(always)]
fn count(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: this CPU's slot of a per-CPU array; socket filters do not nest on one CPU.
        unsafe { *slot += 1 };
    }
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
