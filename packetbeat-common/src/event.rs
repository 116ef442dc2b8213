//! The ring buffer record: what the kernel program writes for each matching frame in `ebpf` mode.
//!
//! A record is a [`RecordHeader`] followed by the frame starting at the MAC (Ethernet) header. Only the
//! first `cap_len` bytes after the header are meaningful: the kernel reserves the record in fixed size
//! classes (the verifier only accepts a constant reservation size), so the record may be longer than
//! `RECORD_HEADER_LEN + cap_len`.

/// Header of one ring buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// `bpf_ktime_get_ns()`: nanoseconds of CLOCK_MONOTONIC when the filter ran.
    pub ts_ns: u64,
    /// Length of the frame on the wire (`skb->len`, from the MAC header).
    pub wire_len: u32,
    /// Bytes of the frame copied after this header (≤ snaplen, ≤ `wire_len`).
    pub cap_len: u32,
    /// Interface index the frame was seen on (`skb->ifindex`).
    pub ifindex: u32,
    /// Explicit padding to a multiple of 8; always zero.
    pub _pad: u32,
}

/// Size of [`RecordHeader`]; the frame starts at this offset in a record.
pub const RECORD_HEADER_LEN: usize = core::mem::size_of::<RecordHeader>();

const _: () = assert!(RECORD_HEADER_LEN == 24);
const _: () = assert!(RECORD_HEADER_LEN.is_multiple_of(8));

impl RecordHeader {
    /// Decodes a header from the start of a ring record (native byte order, as the kernel wrote it);
    /// `None` when the record is shorter than a header.
    #[must_use]
    pub fn read_from(record: &[u8]) -> Option<Self> {
        let b = record.get(..RECORD_HEADER_LEN)?;
        let u32_at = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Self {
            ts_ns: u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            wire_len: u32_at(8),
            cap_len: u32_at(12),
            ifindex: u32_at(16),
            _pad: u32_at(20),
        })
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only integer fields, no padding (asserted above); every bit pattern is valid.
unsafe impl aya::Pod for RecordHeader {}
