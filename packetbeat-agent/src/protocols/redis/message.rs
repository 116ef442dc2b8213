//! One direction's message assembler: RESP tokens ([`super::parser`]) → [`RedisMessage`], as the
//! bytes arrive.
//!
//! The assembler is incremental: it consumes every complete header and every payload byte it is
//! given and keeps only a small stack of open aggregates, so a huge reply is never buffered and
//! never re-parsed (only an incomplete header line is left to the flow layer, ≤ 64 KiB).
//! The readable text is rendered on the way, Packetbeat's way (arrays as `[a, b]`, nulls as `nil`,
//! a request as its arguments joined by spaces), capped at [`REDIS_MAX_TEXT_LEN`]. RESP3 maps render
//! as `{k: v}`, booleans as `true`/`false`, verbatim strings without their format prefix, and
//! attributes (`|`) are skipped. Nesting is capped at [`REDIS_MAX_DEPTH`].

use std::ops::Range;

use super::parser::{inline_command, next_token, AggregateKind, BlobKind, Len, RedisParseError, SimpleKind, Token};
use crate::time::Timestamp;

/// The deepest aggregate nesting accepted (hiredis-based clients nest far less).
pub const REDIS_MAX_DEPTH: usize = 64;
/// The most bytes of rendered text kept per message (query or reply).
pub const REDIS_MAX_TEXT_LEN: usize = 64 * 1024;
/// Top-level elements remembered for classification (command, key, ... / push kind, channel, count).
const HEAD_ELEMENTS: usize = 3;

/// What the first value of a message is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Top {
    /// A one-line value.
    Simple(SimpleKind),
    /// A length-prefixed value.
    Blob(BlobKind),
    /// An aggregate.
    Aggregate(AggregateKind),
    /// An inline command.
    #[default]
    Inline,
}

/// One complete request or reply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RedisMessage {
    /// Time of the first byte.
    pub ts: Timestamp,
    /// Bytes on the wire.
    pub size: u64,
    /// Type of the top-level value.
    pub top: Top,
    /// The top-level value is an error (`-` or `!`).
    pub is_error: bool,
    /// Readable text: the command line of a request, the rendered value of a reply.
    pub text: String,
    /// Top-level elements of an aggregate, first ones only: `(text, is an integer)`.
    pub head: Vec<(String, bool)>,
    /// Top-level elements of an aggregate.
    pub elements: u64,
    /// Bytes of a payload were lost in a capture gap.
    pub lost_bytes: bool,
    /// The text was cut at [`REDIS_MAX_TEXT_LEN`].
    pub truncated: bool,
}

#[derive(Debug)]
struct Frame {
    kind: AggregateKind,
    /// Elements still expected (`None`: streamed, ended by `.`).
    remaining: Option<u64>,
    /// Elements done.
    index: u64,
    /// Not rendered (inside an attribute).
    hidden: bool,
}

#[derive(Debug)]
struct Blob {
    payload_left: u64,
    crlf_left: u8,
    /// Leading payload bytes not rendered (a verbatim string's `txt:`).
    skip: u64,
    hidden: bool,
    /// A chunk of a streamed string: more chunks follow.
    chunk: bool,
}

/// The assembler of one direction.
#[derive(Debug, Default)]
pub struct MessageBuilder {
    requests: bool,
    stack: Vec<Frame>,
    blob: Option<Blob>,
    /// Inside a streamed string (`$?`): chunks follow until `;0`.
    streamed: Option<bool>,
    started: bool,
    msg: RedisMessage,
    text: Vec<u8>,
    head: Vec<(Range<usize>, bool)>,
}

/// What one call of [`MessageBuilder::feed`] did.
#[derive(Debug)]
pub enum Fed {
    /// Everything usable was consumed; more bytes are needed.
    NeedMore,
    /// A message completed.
    Message(RedisMessage),
    /// The bytes are not RESP (the partial message is dropped).
    Error(RedisParseError),
}

impl MessageBuilder {
    /// An assembler for requests (client → server) or replies.
    #[must_use]
    pub fn new(requests: bool) -> Self {
        Self { requests, ..Self::default() }
    }

    /// Whether a message is partly assembled.
    #[must_use]
    pub fn in_message(&self) -> bool {
        self.started
    }

    /// Drops any partial message.
    pub fn reset(&mut self) {
        self.stack.clear();
        self.blob = None;
        self.streamed = None;
        self.started = false;
        self.msg = RedisMessage::default();
        self.text.clear();
        self.head.clear();
    }

    /// `len` bytes were lost. Returns whether the message survives: the loss lies inside a blob
    /// payload whose length is known (the message is then marked), else it is dropped.
    pub fn lose(&mut self, len: u64) -> bool {
        if let Some(b) = &mut self.blob {
            let total = b.payload_left + u64::from(b.crlf_left);
            if len > 0 && len <= b.payload_left {
                b.payload_left -= len;
                b.skip = b.skip.saturating_sub(len);
                self.msg.size += len;
                self.msg.lost_bytes = true;
                return true;
            }
            if len > 0 && len == total {
                b.payload_left = 0;
                b.crlf_left = 0;
                self.msg.size += len;
                self.msg.lost_bytes = true;
                return true;
            }
        }
        self.reset();
        false
    }

    /// Consumes bytes from `data` until a message completes, more bytes are needed or an error.
    /// Returns the bytes used and what happened. A completed blob whose trailing CRLF is pending
    /// across a gap (see [`Self::lose`]) completes on the next call.
    pub fn feed(&mut self, data: &[u8], ts: Timestamp) -> (usize, Fed) {
        let mut pos = 0;
        loop {
            if let Some(done) = self.finish_blob_if_done() {
                if let Some(msg) = done {
                    return (pos, Fed::Message(msg));
                }
                continue;
            }
            let rest = data.get(pos..).unwrap_or_default();
            if rest.is_empty() {
                return (pos, Fed::NeedMore);
            }
            if !self.started {
                self.started = true;
                self.msg.ts = ts;
            }
            if let Some(blob) = &mut self.blob {
                let used = Self::feed_blob(blob, rest, &mut self.text, &mut self.msg.truncated);
                match used {
                    Ok(n) => {
                        pos += n;
                        self.msg.size += n as u64;
                    }
                    Err(e) => return self.fail(pos, e),
                }
                continue;
            }
            if self.requests && self.stack.is_empty() && rest.first() != Some(&b'*') {
                return match inline_command(rest) {
                    Ok(None) => (pos, Fed::NeedMore),
                    Err(e) => self.fail(pos, e),
                    Ok(Some((args, used))) => {
                        pos += used;
                        if args.is_empty() {
                            // An empty line: Redis ignores it.
                            self.reset();
                            continue;
                        }
                        (pos, Fed::Message(self.inline_message(args, used)))
                    }
                };
            }
            let (token, used) = match next_token(rest) {
                Ok(Some(t)) => t,
                Ok(None) => return (pos, Fed::NeedMore),
                Err(e) => return self.fail(pos, e),
            };
            pos += used;
            self.msg.size += used as u64;
            match self.on_token(token) {
                Ok(Some(msg)) => return (pos, Fed::Message(msg)),
                Ok(None) => {}
                Err(e) => return self.fail(pos, e),
            }
        }
    }

    fn fail(&mut self, pos: usize, e: RedisParseError) -> (usize, Fed) {
        self.reset();
        (pos, Fed::Error(e))
    }

    fn inline_message(&mut self, args: Vec<Vec<u8>>, used: usize) -> RedisMessage {
        let ts = self.msg.ts;
        self.reset();
        let mut text = Vec::new();
        let mut truncated = false;
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                push_capped(&mut text, b" ", &mut truncated);
            }
            push_capped(&mut text, a, &mut truncated);
        }
        RedisMessage {
            ts,
            size: used as u64,
            top: Top::Inline,
            is_error: false,
            text: crate::text::lossy_owned(text),
            head: args.iter().take(HEAD_ELEMENTS).map(|a| (crate::text::lossy_string(a), false)).collect(),
            elements: args.len() as u64,
            lost_bytes: false,
            truncated,
        }
    }

    /// Copies payload bytes into the text; returns the bytes used.
    fn feed_blob(
        b: &mut Blob,
        data: &[u8],
        text: &mut Vec<u8>,
        truncated: &mut bool,
    ) -> Result<usize, RedisParseError> {
        let take = usize::try_from(b.payload_left).unwrap_or(usize::MAX).min(data.len());
        let payload = data.get(..take).unwrap_or_default();
        if !b.hidden {
            let skip = usize::try_from(b.skip).unwrap_or(usize::MAX).min(payload.len());
            push_capped(text, payload.get(skip..).unwrap_or_default(), truncated);
        }
        b.skip = b.skip.saturating_sub(take as u64);
        b.payload_left -= take as u64;
        let mut used = take;
        while b.payload_left == 0 && b.crlf_left > 0 {
            let Some(&c) = data.get(used) else { break };
            let want = if b.crlf_left == 2 { b'\r' } else { b'\n' };
            if c != want {
                return Err(RedisParseError::Malformed);
            }
            b.crlf_left -= 1;
            used += 1;
        }
        Ok(used)
    }

    /// When the current blob is fully read: `Some(Some(msg))` if that completed the message,
    /// `Some(None)` if it completed a value, `None` if there is no finished blob.
    fn finish_blob_if_done(&mut self) -> Option<Option<RedisMessage>> {
        let b = self.blob.as_ref()?;
        if b.payload_left > 0 || b.crlf_left > 0 {
            return None;
        }
        let chunk = b.chunk;
        self.blob = None;
        if chunk {
            return Some(None);
        }
        Some(self.value_done())
    }

    /// Starts a value at the current position: writes the separator, remembers a head element.
    fn begin_value(&mut self) {
        let hidden = self.hidden();
        let Some(f) = self.stack.last() else { return };
        if hidden {
            return;
        }
        let sep: &[u8] = match (f.kind, f.index) {
            (_, 0) => b"",
            (AggregateKind::Map, i) if i % 2 == 1 => b": ",
            _ if self.requests && self.stack.len() == 1 => b" ",
            _ => b", ",
        };
        push_capped(&mut self.text, sep, &mut self.msg.truncated);
        if self.stack.len() == 1 && f.index < HEAD_ELEMENTS as u64 {
            let at = self.text.len();
            self.head.push((at..at, false));
        }
    }

    fn hidden(&self) -> bool {
        self.stack.last().is_some_and(|f| f.hidden)
    }

    fn render(&mut self, s: &[u8]) {
        if !self.hidden() {
            push_capped(&mut self.text, s, &mut self.msg.truncated);
        }
    }

    fn on_token(&mut self, token: Token<'_>) -> Result<Option<RedisMessage>, RedisParseError> {
        if let Some(in_error) = self.streamed {
            // Inside a streamed string only chunk headers may come.
            let Token::Chunk { len } = token else {
                return Err(RedisParseError::Malformed);
            };
            if len == 0 {
                self.streamed = None;
                self.msg.is_error |= in_error && self.stack.is_empty();
                return Ok(self.value_done());
            }
            self.blob = Some(Blob { payload_left: len, crlf_left: 2, skip: 0, hidden: self.hidden(), chunk: true });
            return Ok(None);
        }
        let top_level = self.stack.is_empty();
        if self.requests {
            let ok = matches!(
                (&token, self.stack.len()),
                (Token::Aggregate { kind: AggregateKind::Array, .. }, 0)
                    | (Token::Blob { kind: BlobKind::String, len: Len::Known(_) }, 1)
            );
            if !ok {
                return Err(RedisParseError::BadRequest);
            }
        }
        let is_attribute = matches!(token, Token::Aggregate { kind: AggregateKind::Attribute, .. });
        if top_level && !is_attribute {
            self.msg.top = match token {
                Token::Simple { kind, .. } => Top::Simple(kind),
                Token::Blob { kind, .. } => Top::Blob(kind),
                Token::Aggregate { kind, .. } => Top::Aggregate(kind),
                Token::Chunk { .. } | Token::End => return Err(RedisParseError::Malformed),
            };
        }
        if !is_attribute && !matches!(token, Token::End) {
            self.begin_value();
        }
        match token {
            Token::Simple { kind, text } => {
                match kind {
                    SimpleKind::Null => self.render(b"nil"),
                    SimpleKind::Boolean => self.render(if text == b"t" { b"true" } else { b"false" }),
                    _ => self.render(text),
                }
                if top_level && kind == SimpleKind::Error {
                    self.msg.is_error = true;
                }
                if kind == SimpleKind::Integer && self.stack.len() == 1 {
                    if let Some(h) = self.head.last_mut() {
                        h.1 = true;
                    }
                }
                Ok(self.value_done())
            }
            Token::Blob { kind, len } => {
                if top_level && kind == BlobKind::Error {
                    self.msg.is_error = true;
                }
                match len {
                    Len::Null => {
                        self.render(b"nil");
                        Ok(self.value_done())
                    }
                    Len::Streamed => {
                        self.streamed = Some(kind == BlobKind::Error);
                        Ok(None)
                    }
                    Len::Known(n) => {
                        let skip = if kind == BlobKind::Verbatim && n >= 4 { 4 } else { 0 };
                        self.blob =
                            Some(Blob { payload_left: n, crlf_left: 2, skip, hidden: self.hidden(), chunk: false });
                        Ok(None)
                    }
                }
            }
            Token::Aggregate { kind, len } => {
                if self.stack.len() >= REDIS_MAX_DEPTH {
                    return Err(RedisParseError::TooDeep);
                }
                let remaining = match len {
                    Len::Null => {
                        self.render(b"nil");
                        return Ok(self.value_done());
                    }
                    Len::Streamed => None,
                    Len::Known(n) if matches!(kind, AggregateKind::Map | AggregateKind::Attribute) => {
                        Some(n.saturating_mul(2))
                    }
                    Len::Known(n) => Some(n),
                };
                if top_level && self.requests && remaining == Some(0) {
                    // Redis ignores an empty multibulk.
                    self.reset();
                    return Ok(None);
                }
                let hidden = is_attribute || self.hidden();
                let request_line = top_level && self.requests;
                if !hidden && !request_line {
                    self.render(if kind == AggregateKind::Map { b"{" } else { b"[" });
                }
                self.stack.push(Frame { kind, remaining, index: 0, hidden });
                Ok(self.close_finished_frames())
            }
            Token::End => match self.stack.last() {
                Some(f) if f.remaining.is_none() => {
                    if let Some(f) = self.stack.last_mut() {
                        f.remaining = Some(0);
                    }
                    Ok(self.close_finished_frames())
                }
                _ => Err(RedisParseError::Malformed),
            },
            Token::Chunk { .. } => Err(RedisParseError::Malformed),
        }
    }

    /// A value ended at the current level: count it in its parent, close finished aggregates.
    fn value_done(&mut self) -> Option<RedisMessage> {
        let depth = self.stack.len();
        let Some(f) = self.stack.last_mut() else {
            return Some(self.take_message());
        };
        if depth == 1 && !f.hidden {
            if let Some(h) = self.head.last_mut() {
                if f.index < HEAD_ELEMENTS as u64 {
                    h.0.end = self.text.len();
                }
            }
        }
        f.index += 1;
        if let Some(r) = &mut f.remaining {
            *r = r.saturating_sub(1);
        }
        self.close_finished_frames()
    }

    fn close_finished_frames(&mut self) -> Option<RedisMessage> {
        let f = self.stack.last()?;
        if f.remaining != Some(0) {
            return None;
        }
        let f = self.stack.pop()?;
        if f.kind == AggregateKind::Attribute {
            // The attribute describes the value that follows; it is not a value itself.
            return if self.stack.is_empty() { None } else { self.close_finished_frames() };
        }
        let request_line = self.stack.is_empty() && self.requests;
        if !f.hidden && !request_line {
            self.render(if f.kind == AggregateKind::Map { b"}" } else { b"]" });
        }
        if self.stack.is_empty() {
            self.msg.elements = f.index;
        }
        self.value_done()
    }

    fn take_message(&mut self) -> RedisMessage {
        let mut msg = std::mem::take(&mut self.msg);
        msg.text = crate::text::lossy_string(&self.text);
        msg.head = self
            .head
            .iter()
            .map(|(r, int)| (crate::text::lossy_string(self.text.get(r.clone()).unwrap_or_default()), *int))
            .collect();
        self.reset();
        msg
    }
}

/// Appends what fits under [`REDIS_MAX_TEXT_LEN`].
fn push_capped(text: &mut Vec<u8>, s: &[u8], truncated: &mut bool) {
    let room = REDIS_MAX_TEXT_LEN.saturating_sub(text.len());
    if s.len() > room {
        *truncated = true;
    }
    text.extend_from_slice(s.get(..room.min(s.len())).unwrap_or_default());
}
