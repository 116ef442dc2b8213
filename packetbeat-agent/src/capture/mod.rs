//! Capture sources: where raw frames come from.
//!
//! Every source hands out frames through [`PacketSource::poll`], which calls back with frames borrowed
//! from the source's own buffer (the kernel ring, the mmap ring, or the file reader), so a frame is
//! consumed in place and never copied here.

pub mod af_packet;
pub mod ebpf;
pub mod live;
pub mod pcap;

pub use live::{list_devices, LiveOptions};

use std::time::Duration;

use crate::packet::LinkType;
use crate::time::Timestamp;

/// One captured frame, borrowed from the source.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Framing of `data`.
    pub link: LinkType,
    /// The captured bytes (at most the snap length).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub wire_len: u32,
}

/// What one [`PacketSource::poll`] call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// This many frames were passed to the callback.
    Packets(usize),
    /// Nothing arrived before the timeout (live sources only).
    Idle,
    /// The source is exhausted (end of file).
    End,
}

/// A named counter a source reports (kernel counters, ring losses…).
pub type SourceCounter = (&'static str, u64);

/// A source of frames: live (eBPF ring, AF_PACKET ring) or a capture file.
pub trait PacketSource: Send {
    /// Calls `f` for the frames available now (a batch), waiting at most `timeout` when none are.
    ///
    /// # Errors
    /// A read error of the underlying file or socket, or a corrupt file.
    fn poll(&mut self, timeout: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> Result<Poll, CaptureError>;

    /// Counters kept by the source or the kernel (matched, ring full, lost…), read now.
    fn counters(&self) -> Vec<SourceCounter>;
}

/// Why a capture source could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// An I/O error on a file or socket, with what was being done.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The capture file is not a pcap/pcapng file or is corrupt.
    #[error("{0}")]
    BadFile(String),
    /// The file uses a link type this agent cannot decode.
    #[error("unsupported link type {0} (supported: Ethernet, Linux cooked v1/v2, raw IP, loopback)")]
    UnsupportedLinkType(u32),
    /// Loading or attaching the eBPF program failed.
    #[error("{0}")]
    Ebpf(String),
    /// The process lacks a capability needed for live capture.
    #[error("missing capability {0}: run as root or grant it (setcap cap_bpf,cap_net_raw,cap_perfmon+ep)")]
    MissingCapability(&'static str),
    /// No such interface.
    #[error("no such interface '{0}' (see `packetbeat-agent devices`)")]
    NoSuchDevice(String),
}
