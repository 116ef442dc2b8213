//! Live capture through an AF_PACKET TPACKET_V3 ring, filtered in the kernel by the eBPF program
//! (delivery mode `af_packet`).
//!
//! The filter accepts only the configured ports (truncated to snaplen), so the mmap ring carries just
//! the frames the agent wants. With `fanout`, several sources join one `PACKET_FANOUT_HASH` group
//! and the kernel spreads flows over them by a symmetric flow hash, one socket per worker.
//!
//! The ring is a sequence of blocks; the kernel fills a block and hands it over (status
//! `TP_STATUS_USER`), we walk its frames in place and give it back (`TP_STATUS_KERNEL`). Block
//! contents are bytes from the kernel, still parsed with bounds checks: a corrupt header ends the
//! walk of that block, it never panics.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use packetbeat_common::config::{DeliveryMode, MAX_SNAPLEN};

use super::live::{self, KernelFilter, LiveOptions, PacketSocket};
use super::{CaptureError, PacketSource, Poll, RawPacket, SourceCounter};
use crate::packet::LinkType;
use crate::time::Timestamp;

// From include/uapi/linux/if_packet.h.
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_FANOUT: libc::c_int = 18;
const PACKET_FANOUT_HASH: u32 = 0;
const TPACKET_V3: libc::c_int = 2;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

/// `struct tpacket_req3`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// `struct tpacket_stats_v3`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct TpacketStatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

/// Offset of `hdr.bh1.block_status` in `struct tpacket_block_desc`.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
/// Frame size the kernel uses only to validate the request (V3 packs frames of any size).
const FRAME_SIZE: u32 = 2048;
/// Largest block; bigger rings get more blocks.
const MAX_BLOCK_SIZE: u32 = 4 << 20;
/// Blocks a ring is cut into when the snaplen allows. The kernel hands a block over when it is
/// full or when a [`RETIRE_BLOCK_MS`] timer, restarted as each block opens, fires with frames in
/// it. Under thin traffic every block may so carry a handful of frames, and a ring of `n` blocks
/// covers only about `n` × 10 ms of a consumer that is not running (descheduled on a busy host, or
/// stopped): then the kernel freezes the queue and drops, however empty the ring's bytes are. With
/// 8 blocks, a 2-worker agent's 15 MiB sockets (7 blocks of 2 MiB) dropped 12 of a few hundred
/// frames once in CI (`live_af_packet_and_replay_agree`). 64 blocks (60 of 256 KiB there) cover
/// over half a second. The price: a block holds fewer of the largest frames (3 of 64 KiB on `lo`
/// in 256 KiB, and the end of each block that no frame fits goes unused).
const TARGET_BLOCKS: u32 = 64;
/// Room a block needs besides the frame: block descriptor, tpacket3_hdr, sockaddr_ll, alignment.
const BLOCK_OVERHEAD: u32 = 256;
/// A partly filled block is handed over after this long, bounding latency when traffic is thin.
const RETIRE_BLOCK_MS: u32 = 10;

/// One frame inside a retired block, as [`walk_block`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockFrame<'a> {
    pub(crate) ts: Timestamp,
    pub(crate) wire_len: u32,
    pub(crate) data: &'a [u8],
}

/// Calls `f` for each frame of a TPACKET_V3 block; returns how many. Stops at the first header
/// that points outside the block.
pub(crate) fn walk_block(block: &[u8], f: &mut dyn FnMut(BlockFrame<'_>)) -> usize {
    let num_pkts = read_u32(block, BLOCK_NUM_PKTS).unwrap_or(0);
    let mut offset = read_u32(block, BLOCK_FIRST_PKT).unwrap_or(0) as usize;
    let mut n = 0;
    for _ in 0..num_pkts {
        // struct tpacket3_hdr: next_offset, sec, nsec, snaplen, len, status, mac (u16), net (u16)
        let (Some(next), Some(sec), Some(nsec), Some(snaplen), Some(len), Some(mac)) = (
            read_u32(block, offset),
            read_u32(block, offset + 4),
            read_u32(block, offset + 8),
            read_u32(block, offset + 12),
            read_u32(block, offset + 16),
            read_u16(block, offset + 24),
        ) else {
            break;
        };
        let start = offset + usize::from(mac);
        let Some(data) = block.get(start..start.saturating_add(snaplen as usize)) else {
            break;
        };
        f(BlockFrame { ts: Timestamp::from_parts(u64::from(sec), nsec), wire_len: len, data });
        n += 1;
        if next == 0 {
            break;
        }
        offset = offset.saturating_add(next as usize);
    }
    n
}

fn read_u32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn read_u16(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

/// Block size and count for a ring of about `ring_bytes` holding frames of up to `snaplen`.
fn ring_geometry(ring_bytes: u32, snaplen: u32, page: u32) -> (u32, u32) {
    let need = (snaplen.min(MAX_SNAPLEN) + BLOCK_OVERHEAD).next_power_of_two().max(page);
    let block_size = (ring_bytes / TARGET_BLOCKS).checked_next_power_of_two().unwrap_or(MAX_BLOCK_SIZE);
    let block_size = block_size.clamp(need, MAX_BLOCK_SIZE.max(need));
    let block_nr = (ring_bytes / block_size).max(2);
    (block_size, block_nr)
}

/// The mmap'ed RX ring, unmapped on drop.
struct MmapRing {
    base: NonNull<u8>,
    block_size: usize,
    block_nr: usize,
}

// SAFETY: the mapping is owned by this value alone; moving it to another thread is fine.
unsafe impl Send for MmapRing {}

impl MmapRing {
    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: `block < block_nr`, each block is page aligned and at least a page long, so the
        // status word is in bounds and 4-byte aligned; the kernel and we access it atomically.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(block * self.block_size + BLOCK_STATUS).cast()) }
    }

    /// The whole block, valid while its status is `TP_STATUS_USER` (the kernel does not write it).
    fn block(&self, block: usize) -> &[u8] {
        // SAFETY: in bounds of the mapping; the caller checked the block belongs to user space.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(block * self.block_size), self.block_size) }
    }
}

impl Drop for MmapRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mapped in `AfPacketSource::open`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.block_size * self.block_nr) };
    }
}

/// Frames from an AF_PACKET TPACKET_V3 ring.
pub struct AfPacketSource {
    // Field order matters: the ring is unmapped before the socket closes.
    ring: MmapRing,
    socket: PacketSocket,
    filter: KernelFilter,
    next_block: usize,
    /// PACKET_STATISTICS resets on read, so the totals accumulate here.
    stats: Cell<(u64, u64, u64)>,
}

impl AfPacketSource {
    /// Opens a packet socket with the filter in accept mode and a TPACKET_V3 ring of about
    /// `opts.ring_bytes`, bound to `opts.device`; with `fanout`, joins that PACKET_FANOUT_HASH group.
    ///
    /// # Errors
    /// Unknown interface, missing capability, or the kernel refusing the ring or the fanout group
    /// (a group id already used with other settings).
    pub fn open(opts: &LiveOptions, fanout: Option<u16>) -> Result<Self, CaptureError> {
        let ifindex = live::ifindex(&opts.device)?;
        let socket = PacketSocket::new()?;
        let mut filter = KernelFilter::load(DeliveryMode::AfPacket, opts)?;
        filter.attach(&socket)?;

        socket.set_option(PACKET_VERSION, &TPACKET_V3, "selecting TPACKET_V3")?;
        let snaplen = if opts.snaplen == 0 { MAX_SNAPLEN } else { opts.snaplen };
        let (block_size, block_nr) = ring_geometry(opts.ring_bytes, snaplen, live::page_size());
        let req = TpacketReq3 {
            block_size,
            block_nr,
            frame_size: FRAME_SIZE,
            frame_nr: block_size / FRAME_SIZE * block_nr,
            retire_blk_tov: RETIRE_BLOCK_MS,
            ..TpacketReq3::default()
        };
        socket.set_option(PACKET_RX_RING, &req, "creating the TPACKET_V3 ring")?;
        let len = block_size as usize * block_nr as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket, at its exact length.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                socket.fd().as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(live::io_err("mapping the TPACKET_V3 ring", io::Error::last_os_error()));
        }
        let base = NonNull::new(base.cast())
            .ok_or_else(|| live::io_err("mapping the TPACKET_V3 ring", io::Error::other("mmap returned NULL")))?;
        let ring = MmapRing { base, block_size: block_size as usize, block_nr: block_nr as usize };

        socket.bind(ifindex)?;
        if let Some(group) = fanout {
            let arg = u32::from(group) | (PACKET_FANOUT_HASH << 16);
            socket.set_option(PACKET_FANOUT, &arg, "joining the PACKET_FANOUT group")?;
        }
        Ok(Self { ring, socket, filter, next_block: 0, stats: Cell::new((0, 0, 0)) })
    }

    /// Replaces the captured ports; the filter stays attached and sees the change at once.
    ///
    /// # Errors
    /// More ports than the map holds, or the map update failing.
    pub fn set_ports(&mut self, ports: &[u16]) -> Result<(), CaptureError> {
        self.filter.set_ports(ports)
    }

    /// Walks every block the kernel has handed over, in ring order, and returns them.
    fn drain(&mut self, f: &mut dyn FnMut(RawPacket<'_>)) -> usize {
        let mut n = 0;
        for _ in 0..self.ring.block_nr {
            let status = self.ring.status(self.next_block);
            if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            n += walk_block(self.ring.block(self.next_block), &mut |frame| {
                f(RawPacket { ts: frame.ts, link: LinkType::Ethernet, data: frame.data, wire_len: frame.wire_len });
            });
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            self.next_block = (self.next_block + 1) % self.ring.block_nr;
        }
        n
    }

    fn read_stats(&self) -> (u64, u64, u64) {
        let mut stats = TpacketStatsV3::default();
        let mut len = live::socklen::<TpacketStatsV3>();
        // SAFETY: `stats` is a writable tpacket_stats_v3 and `len` its size.
        let rc = unsafe {
            libc::getsockopt(
                self.socket.fd().as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                std::ptr::from_mut(&mut stats).cast(),
                &raw mut len,
            )
        };
        let (packets, drops, freezes) = self.stats.get();
        if rc == 0 {
            let total = (
                packets + u64::from(stats.packets),
                drops + u64::from(stats.drops),
                freezes + u64::from(stats.freeze_q_cnt),
            );
            self.stats.set(total);
        }
        self.stats.get()
    }
}

impl PacketSource for AfPacketSource {
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> Result<Poll, CaptureError> {
        let n = self.drain(f);
        if n > 0 {
            return Ok(Poll::Packets(n));
        }
        if !live::wait_readable(self.socket.fd(), timeout)? {
            return Ok(Poll::Idle);
        }
        match self.drain(f) {
            0 => Ok(Poll::Idle),
            n => Ok(Poll::Packets(n)),
        }
    }

    fn counters(&self) -> Vec<SourceCounter> {
        let mut out = Vec::with_capacity(12);
        let (packets, drops, freezes) = self.read_stats();
        out.push(("af_packet.packets", packets));
        out.push(("af_packet.drops", drops));
        out.push(("af_packet.freeze_q", freezes));
        self.filter.counters(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a block: 48-byte descriptor, then frames with 48-byte tpacket3 headers (mac = 64).
    fn block(frames: &[(&[u8], u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&u32::try_from(frames.len()).unwrap().to_ne_bytes());
        b[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&48u32.to_ne_bytes());
        for (i, (data, len)) in frames.iter().enumerate() {
            let size = (64 + data.len() + 15) & !15;
            let next = if i + 1 == frames.len() { 0 } else { u32::try_from(size).unwrap() };
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&next.to_ne_bytes());
            h[4..8].copy_from_slice(&(100 + u32::try_from(i).unwrap()).to_ne_bytes());
            h[8..12].copy_from_slice(&5u32.to_ne_bytes());
            h[12..16].copy_from_slice(&u32::try_from(data.len()).unwrap().to_ne_bytes());
            h[16..20].copy_from_slice(&len.to_ne_bytes());
            h[24..26].copy_from_slice(&64u16.to_ne_bytes());
            h.extend_from_slice(data);
            h.resize(size, 0);
            b.extend_from_slice(&h);
        }
        b
    }

    fn collect(b: &[u8]) -> Vec<(Timestamp, u32, Vec<u8>)> {
        let mut out = Vec::new();
        walk_block(b, &mut |f| out.push((f.ts, f.wire_len, f.data.to_vec())));
        out
    }

    #[test]
    fn walks_every_frame_of_a_block() {
        let b = block(&[(b"hello", 60), (b"second frame", 1514)]);
        assert_eq!(
            collect(&b),
            vec![
                (Timestamp::from_parts(100, 5), 60, b"hello".to_vec()),
                (Timestamp::from_parts(101, 5), 1514, b"second frame".to_vec()),
            ]
        );
    }

    #[test]
    fn corrupt_blocks_end_the_walk_without_panicking() {
        let good = block(&[(b"abc", 3), (b"defg", 4)]);
        for cut in 0..good.len() {
            let _ = collect(&good[..cut]);
        }
        let mut lying = good.clone();
        lying[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(collect(&lying).len(), 2);
        let mut far = good;
        far[48 + 12..48 + 16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(collect(&far).is_empty());
        assert!(collect(&[]).is_empty());
    }

    #[test]
    fn geometry_fits_the_snaplen_and_the_budget() {
        // Packetbeat's 30 MiB, whole and shared by 2 workers: 60 blocks either way.
        assert_eq!(ring_geometry(30 << 20, 65_535, 4096), (512 << 10, 60));
        assert_eq!(ring_geometry(15 << 20, 65_535, 4096), (256 << 10, 60));
        assert_eq!(ring_geometry(1 << 20, 1514, 4096), (16 << 10, 64));
        // A block holds at least one frame of the snaplen, and is at most 4 MiB.
        assert_eq!(ring_geometry(4 << 20, 65_535, 4096), (128 << 10, 32));
        assert_eq!(ring_geometry(4095 << 20, 65_535, 4096), (4 << 20, 1023));
        let (size, nr) = ring_geometry(0, 65_536, 4096);
        assert!(size >= 65_536 + BLOCK_OVERHEAD && nr == 2);
    }
}
