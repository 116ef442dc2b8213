//! pcap and pcapng file source (replay).
//!
//! Replay feeds a capture file through the same path as live capture, so this reader hands out frames
//! borrowed from one reusable buffer, a batch per [`PacketSource::poll`], with no allocation per packet.
//!
//! It is a small reader of its own (`reader.rs` the buffer, `pcapng.rs` the blocks, classic pcap
//! here) rather than the `pcap-file` 2.x crate, because that crate treats every pcapng timestamp as
//! nanoseconds whatever the interface's `if_tsresol` says, allocates a `Vec` of options for every
//! enhanced packet block, cannot tell a truncated last record from corruption (both are
//! `UnexpectedEof`), and has no record-length limit below its 8 MB buffer.
//!
//! Formats: pcap in both byte orders with micro- or nanosecond magic (and the "modified" pcap with
//! 8 extra bytes per record); pcapng with any number of sections (each with its own byte order) and
//! interfaces (each with its own link type, `if_tsresol` and `if_tsoffset`), reading enhanced,
//! simple and obsolete packet blocks and skipping every other block.
//!
//! Bounds and failures: a record may capture at most [`PCAP_MAX_RECORD_LEN`] bytes; a larger length
//! is corruption, reported as an error and never allocated. A file that ends inside its last record
//! is counted in `pcap.truncated_records` and ends cleanly after every whole record (tcpdump, too,
//! replays every whole packet before it complains). A pcap link type the decoder does not know fails
//! at open; in pcapng, at the first packet of such an interface (unused interfaces are harmless).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{CaptureError, PacketSource, Poll, RawPacket, SourceCounter};
use crate::packet::LinkType;
use crate::time::Timestamp;

mod pcapng;
mod reader;
#[cfg(test)]
mod tests;

use pcapng::PcapNg;
use reader::{Endian, Reader};

/// The most bytes one record may capture (Linux's largest snap length is 262 144).
pub const PCAP_MAX_RECORD_LEN: usize = 256 * 1024;
/// A pcapng packet block holds one record plus its fixed fields and options.
const PCAPNG_MAX_PACKET_BLOCK_LEN: usize = PCAP_MAX_RECORD_LEN + 64 * 1024;
/// Frames per `poll`.
const BATCH: usize = 256;
const PCAP_FILE_HEADER_LEN: usize = 24;

/// A pcap or pcapng file, read in order.
pub struct PcapFileSource {
    reader: Reader,
    format: Format,
    done: bool,
    packets: u64,
    bytes: u64,
}

enum Format {
    Pcap(ClassicPcap),
    PcapNg(PcapNg),
}

/// Classic pcap: one global header, then records of a fixed header and the frame.
#[derive(Clone, Copy)]
struct ClassicPcap {
    endian: Endian,
    nanos: bool,
    /// 16, or 24 in the "modified" (Kuznetzov) format.
    record_header_len: usize,
    link: LinkType,
}

/// Where the next record lies in the reader's buffer (relative to the unconsumed bytes), so the
/// buffer can be lent to the callback.
struct Record {
    ts: Timestamp,
    link: LinkType,
    data_at: usize,
    caplen: usize,
    wire_len: u32,
    /// Bytes to consume once the frame has been handed out.
    consume: usize,
}

impl PcapFileSource {
    /// Opens a pcap or pcapng file, telling them apart by the magic number.
    ///
    /// # Errors
    /// The file cannot be read, is not a capture file, or (pcap) uses an unsupported link type.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            what: format!("cannot open capture file {}", path.display()),
            source,
        })?;
        Self::from_reader(file, path.display().to_string())
    }

    /// Reads a capture from any reader (tests, fuzzing, a pipe); `name` is used in error messages.
    ///
    /// # Errors
    /// As [`PcapFileSource::open`].
    pub fn from_reader<R: Read + Send + 'static>(inner: R, name: impl Into<String>) -> Result<Self, CaptureError> {
        let mut reader = Reader::new(Box::new(inner), name.into());
        let format = open_format(&mut reader)?;
        Ok(Self { reader, format, done: false, packets: 0, bytes: 0 })
    }

    fn next_record(&mut self) -> Result<Option<Record>, CaptureError> {
        match &mut self.format {
            Format::Pcap(pcap) => pcap.next(&mut self.reader),
            Format::PcapNg(ng) => ng.next(&mut self.reader),
        }
    }
}

fn open_format(reader: &mut Reader) -> Result<Format, CaptureError> {
    if !reader.fill(4)? {
        let n = reader.available().len();
        return Err(reader.bad(&if n == 0 {
            "is empty, not a pcap or pcapng file".to_owned()
        } else {
            format!("is too short ({n} bytes) to be a pcap or pcapng file")
        }));
    }
    let magic = reader.available().first_chunk::<4>().copied().unwrap_or_default();
    let (big, nanos, record_header_len) = match u32::from_be_bytes(magic) {
        0x0A0D_0D0A => return PcapNg::open(reader).map(Format::PcapNg),
        0xA1B2_C3D4 => (true, false, 16),
        0xD4C3_B2A1 => (false, false, 16),
        0xA1B2_3C4D => (true, true, 16),
        0x4D3C_B2A1 => (false, true, 16),
        0xA1B2_CD34 => (true, false, 24),
        0x34CD_B2A1 => (false, false, 24),
        other => {
            let hint =
                if magic.starts_with(&[0x1F, 0x8B]) { "; it looks gzip-compressed, gunzip it first" } else { "" };
            return Err(reader.bad(&format!(
                "is not a pcap or pcapng file (it starts with 0x{other:08x}; expected 0xa1b2c3d4, \
                 0xa1b23c4d or 0x0a0d0d0a{hint})"
            )));
        }
    };
    if !reader.fill(PCAP_FILE_HEADER_LEN)? {
        return Err(reader.bad("is truncated inside its 24-byte pcap file header"));
    }
    let endian = Endian { big };
    let header = reader.available();
    let (major, minor) = (endian.u16(header, 4), endian.u16(header, 6));
    // The upper bits carry FCS information; the link type is the low 16.
    let linktype = endian.u32(header, 20) & 0xFFFF;
    reader.consume(PCAP_FILE_HEADER_LEN);
    if major != 2 {
        return Err(reader.bad(&format!("has pcap version {major}.{minor}; only 2.x is supported")));
    }
    let link = LinkType::from_pcap(linktype).ok_or(CaptureError::UnsupportedLinkType(linktype))?;
    Ok(Format::Pcap(ClassicPcap { endian, nanos, record_header_len, link }))
}

impl ClassicPcap {
    /// The next record: [`ClassicPcap::buffered`] when it is whole in the buffer (all but one
    /// record per read), else read on.
    #[inline(always)]
    fn next(self, reader: &mut Reader) -> Result<Option<Record>, CaptureError> {
        match self.buffered(reader.available()) {
            Some(record) => Ok(Some(record)),
            None => self.next_slow(reader),
        }
    }

    /// The record at the start of `avail` when it lies there whole and within the length limit;
    /// `None` sends every other case (more to read, the end, corruption) to
    /// [`ClassicPcap::next_slow`], which reads on and then parses the record here too. Replay's
    /// per-packet cost: with `next_slow` alone, each record took two out-of-line `fill` calls and a
    /// `Result` returned through memory, about 200 instructions per packet in all (callgrind).
    #[inline(always)]
    fn buffered(self, avail: &[u8]) -> Option<Record> {
        let header = avail.first_chunk::<16>()?;
        let word = |at: usize| self.endian.u32(header, at);
        let caplen = usize::try_from(word(8)).ok()?;
        let consume = self.record_header_len + caplen;
        if caplen > PCAP_MAX_RECORD_LEN || avail.len() < consume {
            return None;
        }
        // Cannot overflow: (2^32 - 1) s in nanoseconds plus (2^32 - 1) µs in nanoseconds < 2^64.
        let frac = u64::from(word(4));
        let frac_nanos = if self.nanos { frac } else { frac * 1_000 };
        let ts = Timestamp(u64::from(word(0)) * 1_000_000_000 + frac_nanos);
        let wire_len = word(12).max(word(8));
        Some(Record { ts, link: self.link, data_at: self.record_header_len, caplen, wire_len, consume })
    }

    #[inline(never)]
    fn next_slow(self, reader: &mut Reader) -> Result<Option<Record>, CaptureError> {
        let header_len = self.record_header_len;
        if !reader.fill(header_len)? {
            reader.truncated();
            return Ok(None);
        }
        let caplen = usize::try_from(self.endian.u32(reader.available(), 8)).unwrap_or(usize::MAX);
        if caplen > PCAP_MAX_RECORD_LEN {
            return Err(reader.corrupt(&format!(
                "a record claims {caplen} captured bytes, more than the {PCAP_MAX_RECORD_LEN}-byte limit"
            )));
        }
        if !reader.fill(header_len + caplen)? {
            reader.truncated();
            return Ok(None);
        }
        // The record now lies whole in the buffer, within the limit: the fast path reads it.
        Ok(self.buffered(reader.available()))
    }
}

/// What [`PcapFileSource::poll_shared`] calls for each frame: its buffer, where it starts there, the
/// frame.
pub type SharedFrame<'f> = dyn FnMut(&Arc<[u8]>, usize, RawPacket<'_>) + 'f;

impl PcapFileSource {
    /// [`PacketSource::poll`], also telling the callback the buffer each frame lies in and where
    /// the frame starts in it. A clone of the buffer keeps the frame readable, on another thread and
    /// after later polls: the reader never writes a buffer someone else holds. Replay with several
    /// workers hands frames over so, without copying them. Up to 256 frames; after `End` or an
    /// error, every later call returns `End`.
    ///
    /// # Errors
    /// As [`PacketSource::poll`].
    pub fn poll_shared(&mut self, f: &mut SharedFrame<'_>) -> Result<Poll, CaptureError> {
        let mut n = 0;
        while n < BATCH && !self.done {
            let record = match self.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            let (buf, start) = self.reader.buffer();
            let at = start + record.data_at;
            let data = buf.get(at..at + record.caplen).unwrap_or_default();
            f(buf, at, RawPacket { ts: record.ts, link: record.link, data, wire_len: record.wire_len });
            self.packets += 1;
            self.bytes += data.len() as u64;
            self.reader.consume(record.consume);
            n += 1;
        }
        Ok(if n == 0 { Poll::End } else { Poll::Packets(n) })
    }
}

impl PacketSource for PcapFileSource {
    /// Hands out up to 256 frames; files never wait, so `timeout` is unused. After `End` or an
    /// error, every later call returns `End`.
    fn poll(&mut self, _timeout: Duration, f: &mut dyn FnMut(RawPacket<'_>)) -> Result<Poll, CaptureError> {
        self.poll_shared(&mut |_, _, pkt| f(pkt))
    }

    fn counters(&self) -> Vec<SourceCounter> {
        vec![
            ("pcap.packets", self.packets),
            ("pcap.bytes", self.bytes),
            ("pcap.truncated_records", self.reader.truncated_records),
        ]
    }
}
