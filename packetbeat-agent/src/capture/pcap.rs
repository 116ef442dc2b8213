//! pcap and pcapng file source (placeholder until the reader lands).

use std::path::Path;
use std::time::Duration;

use super::{CaptureError, PacketSource, Poll, RawPacket, SourceCounter};

/// A capture file.
pub struct PcapFileSource;

impl PcapFileSource {
    /// Opens `path`.
    ///
    /// # Errors
    /// Always, for now.
    pub fn open(_path: &Path) -> Result<Self, CaptureError> {
        Err(CaptureError::BadFile("not implemented".into()))
    }
}

impl PacketSource for PcapFileSource {
    fn poll(&mut self, _t: Duration, _f: &mut dyn FnMut(RawPacket<'_>)) -> Result<Poll, CaptureError> {
        Ok(Poll::End)
    }
    fn counters(&self) -> Vec<SourceCounter> {
        Vec::new()
    }
}
