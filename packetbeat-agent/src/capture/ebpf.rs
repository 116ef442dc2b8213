//! Live capture through the eBPF socket filter and its BPF ring buffer (delivery mode `ebpf`).
//!
//! The filter copies each matching frame (up to snaplen) into the `EVENTS` ring and drops it from
//! the socket, so the socket only exists to run the filter. [`EbpfSource::poll`] drains the ring in
//! place: each record is handed to the callback as a slice of the shared mapping and released after
//! it returns, so nothing is copied or allocated per frame.

use std::time::{Duration, Instant};

use aya::maps::{MapData, RingBuf};
use packetbeat_common::config::DeliveryMode;
use packetbeat_common::event::{RecordHeader, RECORD_HEADER_LEN};

use super::live::{self, KernelFilter, LiveOptions, MonotonicClock, PacketSocket};
use super::{CaptureError, PacketSource, Poll, RawPacket, SourceCounter};
use crate::packet::LinkType;

/// Most records one [`PacketSource::poll`] call drains, so a busy ring cannot starve the caller.
const MAX_BATCH: usize = 4096;
/// Longest sleep between looks at the ring. The filter wakes the reader only once the ring is
/// 1/16 full (one wakeup per batch, not per frame), so a trickle of records waits at most this long.
const MAX_SLEEP: Duration = Duration::from_millis(5);

/// Frames from the eBPF ring buffer.
pub struct EbpfSource {
    ring: RingBuf<MapData>,
    filter: KernelFilter,
    clock: MonotonicClock,
    /// Records shorter than their header says (never expected; counted, not trusted).
    bad_records: u64,
    /// Kept open: the filter runs only while the socket exists.
    _socket: PacketSocket,
}

impl EbpfSource {
    /// Loads the program, fills its maps, attaches it to a new packet socket and binds that socket
    /// to `opts.device`.
    ///
    /// # Errors
    /// Unknown interface, missing capability (CAP_BPF, CAP_NET_RAW), a kernel without BPF ring
    /// buffers, or an agent built without the eBPF object.
    pub fn open(opts: &LiveOptions) -> Result<Self, CaptureError> {
        let ifindex = live::ifindex(&opts.device)?;
        let socket = PacketSocket::new()?;
        let mut filter = KernelFilter::load(DeliveryMode::Ebpf, opts)?;
        let ring = filter.take_ring()?;
        filter.attach(&socket)?;
        let clock = MonotonicClock::now();
        socket.bind(ifindex)?;
        Ok(Self { ring, filter, clock, bad_records: 0, _socket: socket })
    }

    /// Replaces the captured ports; the filter stays attached and sees the change at once.
    ///
    /// # Errors
    /// More ports than the map holds, or the map update failing.
    pub fn set_ports(&mut self, ports: &[u16]) -> Result<(), CaptureError> {
        self.filter.set_ports(ports)
    }

    /// Hands up to [`MAX_BATCH`] ready records to `f`; returns how many.
    fn drain(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> usize {
        let mut n = 0;
        while n < MAX_BATCH {
            let Some(item) = self.ring.next() else { break };
            match split_record(&item) {
                Some((header, data)) => {
                    f(RawPacket {
                        ts: self.clock.to_wall(header.ts_ns),
                        link: LinkType::Ethernet,
                        data,
                        wire_len: header.wire_len,
                    });
                    n += 1;
                }
                None => self.bad_records += 1,
            }
        }
        n
    }
}

/// Splits a ring record into its header and the captured bytes; `None` if it is inconsistent.
fn split_record(record: &[u8]) -> Option<(RecordHeader, &[u8])> {
    let header = RecordHeader::read_from(record)?;
    let cap_len = usize::try_from(header.cap_len).ok()?;
    let data = record.get(RECORD_HEADER_LEN..)?.get(..cap_len)?;
    Some((header, data))
}

impl PacketSource for EbpfSource {
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> Result<Poll, CaptureError> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.drain(f);
            if n > 0 {
                return Ok(Poll::Packets(n));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Poll::Idle);
            }
            // Records submitted without a wakeup are found by the drain after this returns.
            live::wait_readable(aya_fd(&self.ring), left.min(MAX_SLEEP))?;
        }
    }

    fn counters(&self) -> Vec<SourceCounter> {
        let mut out = Vec::with_capacity(10);
        self.filter.counters(&mut out);
        out.push(("ebpf.bad_records", self.bad_records));
        out
    }
}

fn aya_fd(ring: &RingBuf<MapData>) -> std::os::fd::BorrowedFd<'_> {
    std::os::fd::AsFd::as_fd(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cap_len: u32, body: &[u8]) -> Vec<u8> {
        let mut rec = Vec::new();
        rec.extend_from_slice(&7u64.to_ne_bytes());
        rec.extend_from_slice(&1500u32.to_ne_bytes());
        rec.extend_from_slice(&cap_len.to_ne_bytes());
        rec.extend_from_slice(&1u32.to_ne_bytes());
        rec.extend_from_slice(&0u32.to_ne_bytes());
        rec.extend_from_slice(body);
        rec
    }

    #[test]
    fn splits_a_record_of_a_larger_size_class() {
        let rec = record(3, &[1, 2, 3, 0, 0, 0, 0, 0]);
        let (header, data) = split_record(&rec).unwrap();
        assert_eq!((header.ts_ns, header.wire_len, header.ifindex), (7, 1500, 1));
        assert_eq!(data, &[1, 2, 3]);
    }

    #[test]
    fn rejects_inconsistent_records_without_panicking() {
        assert!(split_record(&record(9, &[1, 2, 3])).is_none());
        assert!(split_record(&record(u32::MAX, &[])).is_none());
        assert!(split_record(&[0; 10]).is_none());
        assert_eq!(split_record(&record(0, &[])).unwrap().1, &[] as &[u8]);
    }
}
