//! Streaming body delimitation: Content-Length, chunked (with extensions and trailers) and
//! read-until-close bodies, fed with whatever bytes have arrived.
//!
//! The reader never needs the whole body: it consumes payload bytes as they come and only leaves
//! an incomplete chunk-size or trailer line (at most [`HTTP_MAX_CHUNK_LINE`](super::parser::HTTP_MAX_CHUNK_LINE)
//! bytes) for the caller to present again.

use super::parser::{line_len, parse_chunk_size, BodyKind, HttpParseError};

/// Where a chunked body stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkPhase {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data.
    Data {
        /// Data bytes left in this chunk.
        remaining: u64,
    },
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last (zero) chunk: trailer lines until an empty line.
    Trailers,
}

/// Position inside a body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyReader {
    /// Fixed length.
    Length {
        /// Bytes still expected.
        remaining: u64,
    },
    /// Chunked transfer coding.
    Chunked(ChunkPhase),
    /// Until the connection closes.
    UntilClose,
}

/// Outcome of one [`BodyReader::feed`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyStep {
    /// Leading bytes used (payload and chunk framing).
    pub consumed: usize,
    /// The body ended within them.
    pub done: bool,
}

impl BodyReader {
    /// The reader for a body kind; `None` when there is no body.
    #[must_use]
    pub const fn new(kind: BodyKind) -> Option<Self> {
        match kind {
            BodyKind::None => None,
            BodyKind::Length(n) => Some(Self::Length { remaining: n }),
            BodyKind::Chunked => Some(Self::Chunked(ChunkPhase::Size)),
            BodyKind::UntilClose => Some(Self::UntilClose),
        }
    }

    /// Consumes body bytes from the start of `buf`, handing payload slices (de-chunked) to `on_data`.
    ///
    /// # Errors
    /// A malformed chunk-size line or a missing CRLF after chunk data.
    pub fn feed<'a>(&mut self, buf: &'a [u8], mut on_data: impl FnMut(&'a [u8])) -> Result<BodyStep, HttpParseError> {
        match self {
            Self::UntilClose => {
                if !buf.is_empty() {
                    on_data(buf);
                }
                Ok(BodyStep { consumed: buf.len(), done: false })
            }
            Self::Length { remaining } => {
                let take = take_len(*remaining, buf.len());
                if take > 0 {
                    on_data(&buf[..take]);
                }
                *remaining -= take as u64;
                Ok(BodyStep { consumed: take, done: *remaining == 0 })
            }
            Self::Chunked(phase) => feed_chunked(phase, buf, &mut on_data),
        }
    }
}

/// `min(remaining, available)` as a `usize`.
fn take_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

fn feed_chunked<'a>(
    phase: &mut ChunkPhase,
    buf: &'a [u8],
    on_data: &mut impl FnMut(&'a [u8]),
) -> Result<BodyStep, HttpParseError> {
    let mut pos = 0;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        match *phase {
            ChunkPhase::Size => match parse_chunk_size(rest)? {
                None => return Ok(BodyStep { consumed: pos, done: false }),
                Some((len, 0)) => {
                    pos += len;
                    *phase = ChunkPhase::Trailers;
                }
                Some((len, size)) => {
                    pos += len;
                    *phase = ChunkPhase::Data { remaining: size };
                }
            },
            ChunkPhase::Data { remaining } => {
                let take = take_len(remaining, rest.len());
                if take > 0 {
                    on_data(&rest[..take]);
                }
                pos += take;
                let left = remaining - take as u64;
                if left > 0 {
                    *phase = ChunkPhase::Data { remaining: left };
                    return Ok(BodyStep { consumed: pos, done: false });
                }
                *phase = ChunkPhase::DataEnd;
            }
            ChunkPhase::DataEnd => match rest {
                [] | [b'\r'] => return Ok(BodyStep { consumed: pos, done: false }),
                [b'\r', b'\n', ..] => {
                    pos += 2;
                    *phase = ChunkPhase::Size;
                }
                [b'\n', ..] => {
                    pos += 1;
                    *phase = ChunkPhase::Size;
                }
                _ => return Err(HttpParseError::InvalidChunk),
            },
            ChunkPhase::Trailers => match line_len(rest)? {
                None => return Ok(BodyStep { consumed: pos, done: false }),
                Some(len) => {
                    pos += len;
                    if len <= 2 && rest.first().is_some_and(|&b| b == b'\r' || b == b'\n') {
                        return Ok(BodyStep { consumed: pos, done: true });
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: BodyKind, input: &[u8], split: usize) -> (Vec<u8>, usize, bool) {
        let mut r = BodyReader::new(kind).unwrap();
        let mut data = Vec::new();
        let mut consumed = 0;
        let mut pending: Vec<u8> = Vec::new();
        for part in [&input[..split], &input[split..]] {
            pending.extend_from_slice(part);
            let step = r.feed(&pending, |d| data.extend_from_slice(d)).unwrap();
            consumed += step.consumed;
            pending.drain(..step.consumed);
            if step.done {
                return (data, consumed, true);
            }
        }
        (data, consumed, false)
    }

    #[test]
    fn chunked_with_extensions_and_trailers_at_every_split() {
        let wire = b"4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for split in 0..=wire.len() {
            let (data, consumed, done) = run(BodyKind::Chunked, wire, split);
            assert!(done, "split {split}");
            assert_eq!(data, b"Wikipedia");
            assert_eq!(consumed, wire.len() - 4);
        }
    }

    #[test]
    fn length_and_close_bodies() {
        let (data, consumed, done) = run(BodyKind::Length(3), b"abcdef", 1);
        assert_eq!((data.as_slice(), consumed, done), (&b"abc"[..], 3, true));
        let (data, _, done) = run(BodyKind::UntilClose, b"abcdef", 2);
        assert_eq!((data.as_slice(), done), (&b"abcdef"[..], false));
    }

    #[test]
    fn bad_chunks_are_errors() {
        let mut r = BodyReader::new(BodyKind::Chunked).unwrap();
        assert!(r.feed(b"xyz\r\n", |_| {}).is_err());
        let mut r = BodyReader::new(BodyKind::Chunked).unwrap();
        assert!(r.feed(b"2\r\nabXY", |_| {}).is_err());
    }
}
