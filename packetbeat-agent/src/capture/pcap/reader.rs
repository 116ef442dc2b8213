//! The buffered input under both file formats: one fixed buffer, refilled in large reads, that
//! records are parsed from and handed out of in place.
//!
//! The buffer never grows, so a record length read from the file can never cause an allocation:
//! callers check lengths against [`BUF_LEN`] before asking for that many bytes. It is shared
//! (`Arc`) so that replay with several workers can hand frames to them without copying: a buffer
//! someone else still holds is never written again (the next read goes to a spare one).
//! It also owns what every error message needs (the file name and the byte offset), and the
//! truncated-record counter, because "the file ended inside a record" is found here.
//!
//! Why the file is read and not mapped: a mapping (4 MiB windows, unmapped when the last frame
//! handed out of one is dropped) was no faster on the 2-core VM this was measured on. Mapping and
//! unmapping each 4 KiB page cost about what copying it does (31% of a 1-worker replay's samples
//! were in the kernel, against 21% for the copy), and without the copy the record walk waits on
//! every record header. It would also have added `SIGBUS` when the file is truncated under the
//! replay.

use std::io::{self, Read};
use std::sync::Arc;

use crate::capture::CaptureError;

/// Bytes the buffer holds; every record and parsed block must fit.
pub(super) const BUF_LEN: usize = super::PCAPNG_MAX_PACKET_BLOCK_LEN + 4096;

/// Byte order of the current file or pcapng section.
#[derive(Clone, Copy, Debug)]
pub(super) struct Endian {
    pub(super) big: bool,
}

impl Endian {
    /// Reads at `at`, or 0 when out of bounds (callers check lengths first; this only keeps a
    /// mistake from becoming a panic).
    pub(super) fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = b.get(at..).and_then(|s| s.first_chunk::<2>()).copied().unwrap_or_default();
        if self.big {
            u16::from_be_bytes(v)
        } else {
            u16::from_le_bytes(v)
        }
    }

    pub(super) fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = b.get(at..).and_then(|s| s.first_chunk::<4>()).copied().unwrap_or_default();
        if self.big {
            u32::from_be_bytes(v)
        } else {
            u32::from_le_bytes(v)
        }
    }

    pub(super) fn u64(self, b: &[u8], at: usize) -> u64 {
        let v = b.get(at..).and_then(|s| s.first_chunk::<8>()).copied().unwrap_or_default();
        if self.big {
            u64::from_be_bytes(v)
        } else {
            u64::from_le_bytes(v)
        }
    }
}

pub(super) struct Reader {
    inner: Box<dyn Read + Send>,
    /// The buffer. Frames handed out as shared ([`Reader::buffer`]) may keep it after they are
    /// consumed: it is then never written again, and the next read goes to a buffer of its own
    /// (see [`Reader::own_buffer`]).
    buf: Arc<[u8]>,
    /// Replaced buffers, reused once no one else holds them (at most [`MAX_SPARE`]).
    spare: Vec<Arc<[u8]>>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`, for error messages.
    offset: u64,
    name: String,
    /// Records the file ended inside of (at most one per file, but counted like the others).
    pub(super) truncated_records: u64,
}

/// Replaced buffers kept for reuse: more than replay's workers hold at most (their queued batches),
/// so that a steady replay allocates none.
const MAX_SPARE: usize = 96;

/// A zeroed buffer, written in place: `Arc::from(vec![0; n])` would zero one allocation and copy
/// it into a second (an iterator of known length is collected into a single allocation).
fn new_buffer() -> Arc<[u8]> {
    std::iter::repeat_n(0u8, BUF_LEN).collect()
}

impl Reader {
    pub(super) fn new(inner: Box<dyn Read + Send>, name: String) -> Self {
        Self { inner, buf: new_buffer(), spare: Vec::new(), start: 0, end: 0, offset: 0, name, truncated_records: 0 }
    }

    /// The buffered bytes not yet consumed.
    pub(super) fn available(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// The buffer [`Reader::available`] lies in, and where in it that starts: a clone keeps the
    /// bytes readable (and unchanged) after they are consumed.
    pub(super) fn buffer(&self) -> (&Arc<[u8]>, usize) {
        (&self.buf, self.start)
    }

    /// Makes the buffer this reader's alone before it is written: when frames handed out still hold
    /// it, the unconsumed bytes move to a spare buffer no one holds any more (or a new one).
    fn own_buffer(&mut self) {
        if Arc::get_mut(&mut self.buf).is_some() {
            return;
        }
        let free = self.spare.iter_mut().position(|b| Arc::get_mut(b).is_some());
        let mut fresh = free.map_or_else(new_buffer, |i| self.spare.swap_remove(i));
        let have = self.end - self.start;
        if let (Some(to), Some(from)) = (Arc::get_mut(&mut fresh), self.buf.get(self.start..self.end)) {
            to[..have].copy_from_slice(from);
        }
        let held = std::mem::replace(&mut self.buf, fresh);
        if self.spare.len() < MAX_SPARE {
            self.spare.push(held);
        }
        (self.start, self.end) = (0, have);
    }

    /// Makes at least `n` bytes available; `false` when the file ends first.
    #[inline]
    pub(super) fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[inline(never)]
    fn fill_slow(&mut self, n: usize) -> Result<bool, CaptureError> {
        if n > self.buf.len() {
            return Err(self.corrupt(&format!("a {n}-byte record does not fit the {BUF_LEN}-byte buffer")));
        }
        self.own_buffer();
        let buf = Arc::get_mut(&mut self.buf).unwrap_or_default();
        if self.start + n > buf.len() {
            buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            let Some(room) = buf.get_mut(self.end..) else { return Ok(false) };
            match self.inner.read(room) {
                Ok(0) => return Ok(false),
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.io_error(source)),
            }
        }
        Ok(true)
    }

    /// Drops `n` available bytes.
    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.end - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// Drops `n` bytes that may go past the buffer, reading and discarding; `false` (and the record
    /// counted as truncated) when the file ends first.
    pub(super) fn skip(&mut self, mut n: u64) -> Result<bool, CaptureError> {
        let buffered = usize::try_from(n).unwrap_or(usize::MAX).min(self.end - self.start);
        self.consume(buffered);
        n -= buffered as u64;
        while n > 0 {
            self.start = 0;
            self.end = 0;
            self.own_buffer();
            let buf = Arc::get_mut(&mut self.buf).unwrap_or_default();
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
            match self.inner.read(buf.get_mut(..want).unwrap_or_default()) {
                Ok(0) => {
                    self.truncated_records += 1;
                    return Ok(false);
                }
                Ok(read) => {
                    n -= read as u64;
                    self.offset += read as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.io_error(source)),
            }
        }
        Ok(true)
    }

    /// Called when the file ended before a record did: counts it if any byte of it was there.
    pub(super) fn truncated(&mut self) {
        if self.end > self.start {
            self.truncated_records += 1;
            self.consume(self.end - self.start);
        }
    }

    /// "capture file X {what}" for problems with the file as a whole.
    pub(super) fn bad(&self, what: &str) -> CaptureError {
        CaptureError::BadFile(format!("capture file {} {what}", self.name))
    }

    /// "capture file X is corrupt at byte offset N: {what}" for a bad record or block.
    pub(super) fn corrupt(&self, what: &str) -> CaptureError {
        CaptureError::BadFile(format!("capture file {} is corrupt at byte offset {}: {what}", self.name, self.offset))
    }

    fn io_error(&self, source: io::Error) -> CaptureError {
        CaptureError::Io { what: format!("reading capture file {}", self.name), source }
    }
}
