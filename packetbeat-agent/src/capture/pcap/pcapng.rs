//! pcapng blocks: section headers, interface descriptions and the three packet blocks.
//!
//! Each section has its own byte order and interface list; each interface its own link type and
//! timestamp resolution, so a packet's link type and time come from the interface its block names.
//! Blocks that carry no packets (name resolution, statistics, decryption secrets, custom) are skipped
//! without being buffered. Every length read from the file is checked before it is used: against the
//! record limit, against the enclosing block, and (leading vs trailing) against itself.

use super::reader::{Endian, Reader};
use super::{Record, PCAPNG_MAX_PACKET_BLOCK_LEN, PCAP_MAX_RECORD_LEN};
use crate::capture::CaptureError;
use crate::packet::LinkType;
use crate::time::Timestamp;

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// Block header (type, length) plus the trailing length.
const BLOCK_OVERHEAD: usize = 12;
/// Blocks we skip may exceed the buffer (they are streamed past), but not this.
const MAX_SKIPPED_BLOCK_LEN: u64 = 64 * 1024 * 1024;
/// Interface descriptions per section; each costs a few bytes, this only stops a hostile file.
const MAX_INTERFACES: usize = 4096;
const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// The state of a pcapng file between blocks.
pub(super) struct PcapNg {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no time; they get the previous packet's.
    last_ts: Timestamp,
}

/// One interface description.
struct Interface {
    /// The link type, or the raw number when the decoder does not know it.
    link: Result<LinkType, u32>,
    snaplen: u32,
    resolution: TsResolution,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_secs: i64,
}

/// `if_tsresol`: the unit of the interface's timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TsResolution {
    /// 10^-n seconds (the default is 10^-6).
    Decimal(u8),
    /// 2^-n seconds.
    Binary(u8),
}

impl TsResolution {
    fn from_option(value: u8) -> Self {
        if value & 0x80 == 0 {
            Self::Decimal(value)
        } else {
            Self::Binary(value & 0x7F)
        }
    }

    fn to_timestamp(self, units: u64, offset_secs: i64) -> Timestamp {
        let units = u128::from(units);
        let nanos = match self {
            Self::Decimal(n) if n <= 9 => units * 10_u128.pow(u32::from(9 - n)),
            Self::Decimal(n) => 10_u128.checked_pow(u32::from(n - 9)).map_or(0, |div| units / div),
            Self::Binary(n) => (units * 1_000_000_000).checked_shr(u32::from(n)).unwrap_or(0),
        };
        let total = i128::try_from(nanos).unwrap_or(i128::MAX).saturating_add(i128::from(offset_secs) * 1_000_000_000);
        Timestamp(u64::try_from(total.max(0)).unwrap_or(u64::MAX))
    }
}

/// What one block turned out to be.
enum Block {
    Packet(Record),
    Other,
    End,
}

impl PcapNg {
    /// Reads the section header block that opens the file (its magic has been seen).
    pub(super) fn open(reader: &mut Reader) -> Result<Self, CaptureError> {
        let mut ng = Self { endian: Endian { big: false }, interfaces: Vec::new(), last_ts: Timestamp(0) };
        match ng.next_block(reader)? {
            Block::Other => Ok(ng),
            Block::End => Err(reader.bad("is truncated inside its pcapng section header")),
            Block::Packet(_) => Err(reader.bad("does not start with a pcapng section header")),
        }
    }

    /// The next packet, skipping other blocks; `None` at the end of the file.
    pub(super) fn next(&mut self, reader: &mut Reader) -> Result<Option<Record>, CaptureError> {
        loop {
            match self.next_block(reader)? {
                Block::Packet(record) => return Ok(Some(record)),
                Block::Other => {}
                Block::End => return Ok(None),
            }
        }
    }

    fn next_block(&mut self, reader: &mut Reader) -> Result<Block, CaptureError> {
        if !reader.fill(8)? {
            reader.truncated();
            return Ok(Block::End);
        }
        let mut endian = self.endian;
        let block_type = endian.u32(reader.available(), 0);
        if block_type == SHB {
            // A new section may switch byte order: its byte-order magic decides.
            if !reader.fill(12)? {
                reader.truncated();
                return Ok(Block::End);
            }
            endian = match reader.available().get(8..12) {
                Some([0x1A, 0x2B, 0x3C, 0x4D]) => Endian { big: true },
                Some([0x4D, 0x3C, 0x2B, 0x1A]) => Endian { big: false },
                _ => return Err(reader.corrupt("a pcapng section header has no valid byte-order magic")),
            };
        }
        let len = endian.u32(reader.available(), 4);
        let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
        if len_usize < BLOCK_OVERHEAD || !len.is_multiple_of(4) {
            return Err(reader.corrupt(&format!("pcapng block length {len} is not a multiple of 4 of at least 12")));
        }
        if !matches!(block_type, SHB | IDB | EPB | OPB | SPB) {
            if u64::from(len) > MAX_SKIPPED_BLOCK_LEN {
                return Err(reader.corrupt(&format!("a pcapng block of type {block_type:#x} claims {len} bytes")));
            }
            reader.skip(u64::from(len))?;
            return Ok(Block::Other);
        }
        if len_usize > PCAPNG_MAX_PACKET_BLOCK_LEN {
            return Err(reader.corrupt(&format!(
                "a pcapng block of type {block_type:#x} claims {len} bytes, more than the {PCAPNG_MAX_PACKET_BLOCK_LEN}-byte limit"
            )));
        }
        if !reader.fill(len_usize)? {
            reader.truncated();
            return Ok(Block::End);
        }
        let block = reader.available().get(..len_usize).unwrap_or_default();
        if endian.u32(block, len_usize - 4) != len {
            return Err(reader.corrupt("a pcapng block's trailing length differs from its leading length"));
        }
        let body = block.get(8..len_usize - 4).unwrap_or_default();
        let outcome = match block_type {
            SHB => self.section(reader, endian, body).map(|()| Block::Other),
            IDB => self.interface(reader, body).map(|()| Block::Other),
            EPB | OPB => self.packet(reader, block_type, body).map(Block::Packet),
            _ => self.simple_packet(reader, body).map(Block::Packet),
        };
        match outcome {
            Ok(Block::Packet(mut record)) => {
                record.data_at += 8;
                record.consume = len_usize;
                Ok(Block::Packet(record))
            }
            Ok(other) => {
                reader.consume(len_usize);
                Ok(other)
            }
            Err(e) => Err(e),
        }
    }

    fn section(&mut self, reader: &Reader, endian: Endian, body: &[u8]) -> Result<(), CaptureError> {
        if body.len() < 16 {
            return Err(reader.corrupt("a pcapng section header is shorter than 28 bytes"));
        }
        let (major, minor) = (endian.u16(body, 4), endian.u16(body, 6));
        if major != 1 {
            return Err(reader.bad(&format!("has pcapng version {major}.{minor}; only 1.x is supported")));
        }
        self.endian = endian;
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, reader: &Reader, body: &[u8]) -> Result<(), CaptureError> {
        if body.len() < 8 {
            return Err(reader.corrupt("a pcapng interface description is shorter than 20 bytes"));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(reader.corrupt(&format!("more than {MAX_INTERFACES} interfaces in one section")));
        }
        let e = self.endian;
        let linktype = u32::from(e.u16(body, 0));
        let mut iface = Interface {
            link: LinkType::from_pcap(linktype).ok_or(linktype),
            snaplen: e.u32(body, 4),
            resolution: TsResolution::Decimal(6),
            offset_secs: 0,
        };
        // Options: code (2), length (2), value padded to 4. A malformed list just ends early.
        let mut opts = body.get(8..).unwrap_or_default();
        while opts.len() >= 4 {
            let (code, len) = (e.u16(opts, 0), usize::from(e.u16(opts, 2)));
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            match (code, value) {
                (OPT_END, _) => break,
                (OPT_IF_TSRESOL, &[v]) => iface.resolution = TsResolution::from_option(v),
                (OPT_IF_TSOFFSET, v) if v.len() == 8 => {
                    iface.offset_secs = e.u64(v, 0).cast_signed();
                }
                _ => {}
            }
            opts = opts.get(4 + len.next_multiple_of(4)..).unwrap_or_default();
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// Enhanced (6) and obsolete (2) packet blocks; the obsolete one has a 16-bit interface id
    /// followed by a drop count where the enhanced one has a 32-bit id.
    fn packet(&mut self, reader: &Reader, block_type: u32, body: &[u8]) -> Result<Record, CaptureError> {
        const FIXED: usize = 20;
        if body.len() < FIXED {
            return Err(reader.corrupt("a pcapng packet block is shorter than its fixed fields"));
        }
        let e = self.endian;
        let if_id = if block_type == EPB { e.u32(body, 0) } else { u32::from(e.u16(body, 0)) };
        let units = (u64::from(e.u32(body, 4)) << 32) | u64::from(e.u32(body, 8));
        let caplen = e.u32(body, 12);
        let wire_len = e.u32(body, 16).max(caplen);
        let caplen = checked_caplen(reader, caplen, body.len() - FIXED)?;
        let iface = self.iface(reader, if_id)?;
        let link = iface.link.map_err(CaptureError::UnsupportedLinkType)?;
        let ts = iface.resolution.to_timestamp(units, iface.offset_secs);
        self.last_ts = ts;
        Ok(Record { ts, link, data_at: FIXED, caplen, wire_len, consume: 0 })
    }

    /// Simple packet block: interface 0, no timestamp, captured length implied by the block and
    /// the interface's snap length.
    fn simple_packet(&mut self, reader: &Reader, body: &[u8]) -> Result<Record, CaptureError> {
        if body.len() < 4 {
            return Err(reader.corrupt("a pcapng simple packet block is shorter than 16 bytes"));
        }
        let wire_len = self.endian.u32(body, 0);
        let iface = self.iface(reader, 0)?;
        let link = iface.link.map_err(CaptureError::UnsupportedLinkType)?;
        let mut caplen = wire_len.min(u32::try_from(body.len() - 4).unwrap_or(u32::MAX));
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen);
        }
        let caplen = checked_caplen(reader, caplen, body.len() - 4)?;
        Ok(Record { ts: self.last_ts, link, data_at: 4, caplen, wire_len, consume: 0 })
    }

    fn iface(&self, reader: &Reader, id: u32) -> Result<&Interface, CaptureError> {
        usize::try_from(id).ok().and_then(|i| self.interfaces.get(i)).ok_or_else(|| {
            reader
                .corrupt(&format!("a packet names interface {id}, but the section describes {}", self.interfaces.len()))
        })
    }
}

/// Checks a captured length against the record limit and the space its block has for it.
fn checked_caplen(reader: &Reader, caplen: u32, room: usize) -> Result<usize, CaptureError> {
    let caplen = usize::try_from(caplen).unwrap_or(usize::MAX);
    if caplen > PCAP_MAX_RECORD_LEN {
        return Err(reader.corrupt(&format!(
            "a packet claims {caplen} captured bytes, more than the {PCAP_MAX_RECORD_LEN}-byte limit"
        )));
    }
    if caplen > room {
        return Err(reader.corrupt(&format!("a packet claims {caplen} captured bytes but its block holds {room}")));
    }
    Ok(caplen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_resolutions() {
        let t = |r, units, off| TsResolution::to_timestamp(r, units, off).0;
        assert_eq!(t(TsResolution::Decimal(6), 1_500_000, 0), 1_500_000_000);
        assert_eq!(t(TsResolution::Decimal(9), 7, 0), 7);
        assert_eq!(t(TsResolution::Decimal(3), 2, 10), 10_002_000_000);
        assert_eq!(t(TsResolution::Decimal(12), 5_000, 0), 5);
        assert_eq!(t(TsResolution::Decimal(127), u64::MAX, 0), 0);
        assert_eq!(t(TsResolution::Binary(10), 1024 * 3 + 512, 0), 3_500_000_000);
        assert_eq!(t(TsResolution::Binary(127), u64::MAX, 0), 0);
        assert_eq!(t(TsResolution::Decimal(0), u64::MAX, 0), u64::MAX);
        assert_eq!(t(TsResolution::Decimal(6), 1_000_000, -5), 0);
        assert_eq!(TsResolution::from_option(0x8A), TsResolution::Binary(10));
        assert_eq!(TsResolution::from_option(9), TsResolution::Decimal(9));
    }
}
