//! Per-CPU counters the kernel program keeps: one `u64` slot per [`Counter`] in the `COUNTERS`
//! `PerCpuArray`. The agent sums the CPUs when it reports them, so the program never needs atomics.

/// Index of a counter in the `COUNTERS` map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Frames the filter examined (incoming and forwarded; outgoing copies are skipped first).
    Seen = 0,
    /// TCP frames whose source or destination port is in `PORTS` and were delivered.
    Matched = 1,
    /// TCP frames with neither port in `PORTS`.
    NotMatched = 2,
    /// Matching frames lost because the ring buffer had no room (`ebpf` mode).
    RingFull = 3,
    /// Frames too short for the headers they announce.
    TooShort = 4,
    /// Frames that are not IPv4 or IPv6 (ARP, LLDP…).
    NotIp = 5,
    /// IP packets that are not TCP (or whose IPv6 extension chain is too long to follow).
    NotTcp = 6,
    /// Non-first IP fragments (no TCP header to look at).
    Fragment = 7,
}

/// Number of counters; the `COUNTERS` map has this many entries.
pub const COUNTER_COUNT: u32 = 8;

impl Counter {
    /// Every counter, in index order.
    pub const ALL: [Self; COUNTER_COUNT as usize] = [
        Self::Seen,
        Self::Matched,
        Self::NotMatched,
        Self::RingFull,
        Self::TooShort,
        Self::NotIp,
        Self::NotTcp,
        Self::Fragment,
    ];

    /// The name the agent reports it under.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Seen => "kernel.seen",
            Self::Matched => "kernel.matched",
            Self::NotMatched => "kernel.not_matched",
            Self::RingFull => "kernel.ring_full",
            Self::TooShort => "kernel.too_short",
            Self::NotIp => "kernel.not_ip",
            Self::NotTcp => "kernel.not_tcp",
            Self::Fragment => "kernel.fragment",
        }
    }
}

const _: () = assert!(Counter::Fragment as u32 + 1 == COUNTER_COUNT);
