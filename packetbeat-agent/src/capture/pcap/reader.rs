//! The buffered input under both file formats: one fixed buffer, refilled in large reads, that
//! records are parsed from and handed out of in place.
//!
//! The buffer is allocated once and never grows, so a record length read from the file can never
//! cause an allocation: callers check lengths against [`BUF_LEN`] before asking for that many bytes.
//! It also owns what every error message needs (the file name and the byte offset), and the
//! truncated-record counter, because "the file ended inside a record" is found here.
//!
//! A reader may instead parse the blocks of a [`SharedFile`](super::shared::SharedFile), read once
//! for several replay workers: records are then handed out of the shared block in place, and only a
//! record that straddles two blocks is put together in the reader's own buffer.

use std::io::{self, Read};
use std::sync::Arc;

use super::shared::View;
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
    input: Input,
    /// The reader's own buffer: everything it reads, or (shared input) the straddling records.
    buf: Box<[u8]>,
    /// The available bytes: `start..end` of `buf`, or of the shared block when `in_block`.
    start: usize,
    end: usize,
    /// File offset of `buf[start]`, for error messages.
    offset: u64,
    name: String,
    /// Records the file ended inside of (at most one per file, but counted like the others).
    pub(super) truncated_records: u64,
}

/// Where a reader's bytes come from.
enum Input {
    /// Its own reads into its buffer.
    Own(Box<dyn Read + Send>),
    /// The blocks of a file read once for several readers.
    Shared(Shared),
}

/// A reader's state in a shared file.
struct Shared {
    view: View,
    /// The current block.
    block: Arc<Vec<u8>>,
    /// The available bytes lie in `block` (else in the reader's buffer).
    in_block: bool,
    /// While they lie in the buffer: the buffer's bytes end with a copy of `block[..mirrored]`.
    mirrored: usize,
}

impl Shared {
    /// [`Reader::fill`] from the shared blocks, with the window `start..end` (in `buf` or in the
    /// block). Records are parsed straight from the block; one that runs past the block's end is
    /// copied into `buf` and completed from the next block, and once the reader is back within the
    /// next block's bytes it reads from the block again.
    fn fill(&mut self, buf: &mut [u8], start: &mut usize, end: &mut usize, n: usize) -> io::Result<bool> {
        loop {
            let have = *end - *start;
            if have >= n {
                return Ok(true);
            }
            if self.in_block {
                if have > 0 {
                    // A record straddles the end of the block: its first bytes go to the buffer.
                    buf[..have].copy_from_slice(&self.block[*start..*end]);
                    (*start, *end) = (0, have);
                    self.in_block = false;
                    self.mirrored = self.block.len();
                } else {
                    let more = self.view.advance(&mut self.block)?;
                    (*start, *end) = (0, self.block.len());
                    if !more {
                        return Ok(false);
                    }
                }
            } else if have <= self.mirrored && self.block.len() > self.mirrored {
                // The buffered bytes are `block[mirrored - have..mirrored]`: go on in the block.
                (*start, *end) = (self.mirrored - have, self.block.len());
                self.in_block = true;
            } else if self.mirrored == self.block.len() {
                // At the end the buffered bytes stay available (a truncated record's).
                let more = self.view.advance(&mut self.block)?;
                self.mirrored = 0;
                if !more {
                    return Ok(false);
                }
            } else {
                if *start + n > buf.len() {
                    buf.copy_within(*start..*end, 0);
                    (*start, *end) = (0, have);
                }
                let take = (n - have).min(self.block.len() - self.mirrored);
                buf[*end..*end + take].copy_from_slice(&self.block[self.mirrored..self.mirrored + take]);
                *end += take;
                self.mirrored += take;
            }
        }
    }

    /// Moves the window to the bytes that follow the (consumed) window; `false` at the end.
    fn next_window(&mut self, start: &mut usize, end: &mut usize) -> io::Result<bool> {
        let more = if !self.in_block && self.block.len() > self.mirrored {
            (*start, *end) = (self.mirrored, self.block.len());
            true
        } else {
            let more = self.view.advance(&mut self.block)?;
            (*start, *end) = (0, self.block.len());
            more
        };
        self.in_block = true;
        self.mirrored = 0;
        Ok(more)
    }
}

impl Reader {
    pub(super) fn new(inner: Box<dyn Read + Send>, name: String) -> Self {
        Self::with_input(Input::Own(inner), name)
    }

    /// A reader of the blocks `view` takes from a shared file.
    pub(super) fn shared(view: View, name: String) -> Self {
        Self::with_input(Input::Shared(Shared { view, block: Arc::default(), in_block: true, mirrored: 0 }), name)
    }

    fn with_input(input: Input, name: String) -> Self {
        Self {
            input,
            buf: vec![0; BUF_LEN].into_boxed_slice(),
            start: 0,
            end: 0,
            offset: 0,
            name,
            truncated_records: 0,
        }
    }

    /// The buffered bytes not yet consumed.
    pub(super) fn available(&self) -> &[u8] {
        let bytes: &[u8] = match &self.input {
            Input::Shared(s) if s.in_block => &s.block,
            _ => &self.buf,
        };
        bytes.get(self.start..self.end).unwrap_or_default()
    }

    /// Makes at least `n` bytes available; `false` when the file ends first.
    pub(super) fn fill(&mut self, n: usize) -> Result<bool, CaptureError> {
        if n > self.buf.len() {
            return Err(self.corrupt(&format!("a {n}-byte record does not fit the {BUF_LEN}-byte buffer")));
        }
        if self.end - self.start >= n {
            return Ok(true);
        }
        let inner = match &mut self.input {
            Input::Own(inner) => inner,
            Input::Shared(s) => {
                return s.fill(&mut self.buf, &mut self.start, &mut self.end, n).map_err(|e| self.io_error(e));
            }
        };
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            match inner.read(&mut self.buf[self.end..]) {
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
            // Move the window to the next bytes of the file, then drop what of them is skipped.
            let more = match &mut self.input {
                Input::Shared(s) => s.next_window(&mut self.start, &mut self.end),
                Input::Own(inner) => {
                    let want = usize::try_from(n).unwrap_or(usize::MAX).min(self.buf.len());
                    inner.read(&mut self.buf[..want]).map(|read| {
                        (self.start, self.end) = (0, read);
                        read > 0
                    })
                }
            };
            match more {
                Ok(true) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(self.end - self.start);
                    self.consume(take);
                    n -= take as u64;
                }
                Ok(false) => {
                    self.truncated_records += 1;
                    return Ok(false);
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
