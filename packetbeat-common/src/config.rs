//! What the agent tells the kernel program: the ports to capture (`PORTS`) and how to deliver the
//! matches (`CONFIG`). Both are plain maps, so the agent changes them while the filter stays attached.

/// Largest snap length the kernel program copies into the ring buffer.
///
/// The program copies the frame in power-of-two size classes from [`MIN_RECORD_CLASS`] up to this
/// value: each class is a constant-size `bpf_ringbuf_reserve` (the verifier insists on a constant)
/// and a `bpf_skb_load_bytes` whose length is masked with `class - 1`, which proves the bound to the
/// verifier. 262144 (tcpdump's default) covers loopback frames (MTU 65536 plus headers) and GSO
/// super-frames.
pub const MAX_SNAPLEN: u32 = 262_144;

/// Smallest size class of ring records (frame bytes, without the header).
pub const MIN_RECORD_CLASS: u32 = 128;

/// Snap length used when [`Config::snaplen`] is 0.
pub const DEFAULT_SNAPLEN: u32 = MAX_SNAPLEN;

const _: () = assert!(MAX_SNAPLEN.is_power_of_two() && MIN_RECORD_CLASS.is_power_of_two());

/// How matching frames reach userspace.
#[repr(u32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Copy into the `EVENTS` ring buffer and drop from the socket (the default, 0).
    #[default]
    Ebpf = 0,
    /// Accept the frame (truncated to snaplen) on the AF_PACKET socket the filter is attached to.
    AfPacket = 1,
}

/// The single entry of the `CONFIG` array. An all-zero entry (before the agent writes it) means
/// `ebpf` delivery with [`DEFAULT_SNAPLEN`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Bytes of each frame to deliver, from the MAC header; 0 = default; capped at [`MAX_SNAPLEN`].
    pub snaplen: u32,
    /// A [`DeliveryMode`] as `u32` (unknown values are treated as `Ebpf`).
    pub mode: u32,
}

const _: () = assert!(core::mem::size_of::<Config>() == 8);

impl Config {
    /// The effective snap length: 0 becomes the default, and at most [`MAX_SNAPLEN`].
    #[must_use]
    pub const fn effective_snaplen(self) -> u32 {
        if self.snaplen == 0 || self.snaplen > MAX_SNAPLEN {
            MAX_SNAPLEN
        } else {
            self.snaplen
        }
    }
}

/// Key of the `PORTS` hash map: a TCP port in host byte order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortKey {
    /// The port, host byte order.
    pub port: u16,
}

const _: () = assert!(core::mem::size_of::<PortKey>() == 2);

/// Value of the `PORTS` hash map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortValue {
    /// `PORT_*` flags; an entry without [`PORT_TCP`] does not select anything.
    pub flags: u32,
}

/// [`PortValue::flags`] bit: capture TCP segments from or to this port.
pub const PORT_TCP: u32 = 1;

const _: () = assert!(core::mem::size_of::<PortValue>() == 4);

/// Most entries the `PORTS` map holds.
pub const MAX_PORTS: u32 = 1024;

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all three): repr(C), only integer fields, no padding (asserted above), so every bit
    // pattern is a valid value.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::PortKey {}
    unsafe impl aya::Pod for super::PortValue {}
}
