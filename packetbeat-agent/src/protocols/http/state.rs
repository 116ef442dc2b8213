//! Per-connection HTTP state: one streaming parser per direction and the FIFO of complete requests
//! waiting for their responses (pipelining).
//!
//! Invariants and bounds:
//! * the flow layer only ever buffers an incomplete head (≤ [`HTTP_MAX_HEAD_LEN`]), an incomplete
//!   chunk-size/trailer line or a candidate start line while resynchronising: body bytes are
//!   consumed as they arrive and kept only when captured, up to `max_message_size`;
//! * at most [`HTTP_MAX_PENDING_REQUESTS`] requests wait for a response; the oldest is published as
//!   `Unmatched request` when one more arrives (counted in `queue_full`);
//! * after a gap outside a length-delimited or read-until-close body, a parse error, or a mid-stream
//!   pickup, the direction drops its partial message and waits for the next start line;
//! * the flow layer is assumed to drop an unconsumed tail when it reports a gap (bytes on both sides
//!   of a gap are never presented together).
//!
//! Correlation follows Packetbeat: a response pairs with the oldest complete request; a response with
//! none is published at once as `Unmatched response`; requests still waiting when the connection has
//! been idle for `transaction_timeout` (or closes) are published as `Unmatched request`.

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;

use super::body::BodyReader;
use super::config::HttpConfig;
use super::event::build_transaction;
use super::message::HttpMessage;
#[cfg(doc)]
use super::parser::HTTP_MAX_HEAD_LEN;
use super::parser::{body_kind, find_message_start, header_slots, parse_head, Boundary};
use crate::protocols::{Direction, ParseCtx, ProtocolState};
use crate::time::Timestamp;

/// The most complete requests that wait for responses on one connection.
pub const HTTP_MAX_PENDING_REQUESTS: usize = 32;

/// Where one direction's parser stands.
#[derive(Debug, Default)]
enum Phase {
    /// At a message boundary, or inside a head that is not complete yet.
    #[default]
    Head,
    /// Inside a body.
    Body { msg: Box<HttpMessage>, reader: BodyReader },
    /// Looking for the next start line; offset 0 of the next bytes is a candidate when `at_line_start`.
    Resync { at_line_start: bool },
    /// Inside the body of a request that was already answered (an early response, e.g. `413` or a
    /// `201` sent before the upload was read): the bytes are skipped, nothing is published.
    Skip { reader: BodyReader },
}

/// One direction of the connection.
#[derive(Debug, Default)]
struct HttpStream {
    phase: Phase,
    /// Time of the first byte of the head being accumulated.
    head_ts: Option<Timestamp>,
}

/// The HTTP state of one TCP connection.
#[derive(Debug)]
pub struct HttpState {
    cfg: Arc<HttpConfig>,
    streams: [HttpStream; 2],
    pending: VecDeque<Box<HttpMessage>>,
    last_seen: Option<Timestamp>,
    /// After `101 Switching Protocols` or a successful `CONNECT` the bytes are no longer HTTP/1.x.
    tunnel: bool,
}

impl HttpState {
    /// A fresh connection.
    #[must_use]
    pub fn new(cfg: Arc<HttpConfig>) -> Self {
        Self { cfg, streams: Default::default(), pending: VecDeque::new(), last_seen: None, tunnel: false }
    }

    /// Requests waiting for a response.
    #[must_use]
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// A message is complete: queue a request, or pair a response with the oldest request.
    fn message_complete(&mut self, msg: Box<HttpMessage>, cx: &mut ParseCtx<'_>) {
        if msg.is_request {
            if self.pending.len() >= HTTP_MAX_PENDING_REQUESTS {
                if let Some(oldest) = self.pending.pop_front() {
                    cx.stats.queue_full += 1;
                    self.publish(Some(oldest), None, cx);
                }
            }
            self.pending.push_back(msg);
            return;
        }
        if msg.is_interim() {
            return;
        }
        match self.pending.pop_front().or_else(|| self.take_request_in_progress()) {
            Some(req) => {
                let success = (200..300).contains(&msg.status_code);
                if msg.status_code == 101 || (req.is_connect_request && success) {
                    self.tunnel = true;
                }
                self.publish(Some(req), Some(msg), cx);
            }
            None => self.publish(None, Some(msg), cx),
        }
    }

    /// A response came while the request's body is still arriving (servers may answer early, e.g. a
    /// `201` or `413` before reading an upload, or when `Expect: 100-continue` is refused): the
    /// response belongs to that request. Packetbeat reports both as unmatched; we pair them and skip
    /// the rest of the request body.
    fn take_request_in_progress(&mut self) -> Option<Box<HttpMessage>> {
        let stream = &mut self.streams[Direction::ToServer.index()];
        match mem::take(&mut stream.phase) {
            Phase::Body { msg, reader } if msg.is_request => {
                stream.phase = Phase::Skip { reader };
                Some(msg)
            }
            other => {
                stream.phase = other;
                None
            }
        }
    }

    fn publish(&self, req: Option<Box<HttpMessage>>, resp: Option<Box<HttpMessage>>, cx: &mut ParseCtx<'_>) {
        match (&req, &resp) {
            (Some(_), None) => cx.stats.unmatched_requests += 1,
            (None, Some(_)) => cx.stats.unmatched_responses += 1,
            _ => {}
        }
        cx.stats.transactions += 1;
        cx.out.push(build_transaction(req, resp, &self.cfg, cx.conn));
    }

    /// Publishes what is in progress and everything pending (connection idle or gone).
    fn flush(&mut self, cx: &mut ParseCtx<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let stream = &mut self.streams[dir.index()];
            if let Phase::Body { .. } = stream.phase {
                // The rest of this body, if it ever comes, is not a message start.
                if let Phase::Body { msg, .. } = mem::replace(&mut stream.phase, Phase::Resync { at_line_start: false })
                {
                    self.message_complete(msg, cx);
                }
            }
        }
        while let Some(req) = self.pending.pop_front() {
            self.publish(Some(req), None, cx);
        }
    }

    /// Parses one head at the start of `data`; returns the bytes used (0 when incomplete).
    fn parse_head_at(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> Option<usize> {
        let ts = *self.streams[dir.index()].head_ts.get_or_insert(cx.ts);
        let mut headers = header_slots();
        match parse_head(data, &mut headers) {
            Ok(None) => Some(0),
            Err(_) => {
                cx.stats.parse_errors += 1;
                let stream = &mut self.streams[dir.index()];
                stream.head_ts = None;
                stream.phase = Phase::Resync { at_line_start: false };
                None
            }
            Ok(Some(head)) => {
                let (msg, framing) = HttpMessage::from_head(&head, data, ts, &self.cfg);
                let answers_head = !head.is_request() && self.pending.front().is_some_and(|r| r.is_head_request);
                let kind = body_kind(&head, &framing, answers_head);
                let used = head.len;
                self.streams[dir.index()].head_ts = None;
                match BodyReader::new(kind) {
                    None => self.message_complete(msg, cx),
                    Some(reader) => self.streams[dir.index()].phase = Phase::Body { msg, reader },
                }
                Some(used)
            }
        }
    }
}

impl ProtocolState for HttpState {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> usize {
        self.last_seen = Some(cx.ts);
        // Most segments of a large response lie inside a fixed-length body that is not kept: count
        // them without taking the phase apart (what the loop below would do, step by step).
        if let Phase::Body { msg, reader: BodyReader::Length { remaining } } = &mut self.streams[dir.index()].phase {
            let len = data.len() as u64;
            if !msg.save_body && len < *remaining && !self.tunnel {
                *remaining -= len;
                msg.size += len;
                return data.len();
            }
        }
        let mut pos = 0;
        while pos < data.len() {
            if self.tunnel {
                return data.len();
            }
            let rest = data.get(pos..).unwrap_or_default();
            let stream = &mut self.streams[dir.index()];
            match mem::take(&mut stream.phase) {
                Phase::Resync { at_line_start } => match find_message_start(rest, at_line_start) {
                    Boundary::Found(off) => pos += off,
                    Boundary::NeedMore(off) => {
                        stream.phase = Phase::Resync { at_line_start: true };
                        return pos + off;
                    }
                    Boundary::NotFound { at_line_start } => {
                        stream.phase = Phase::Resync { at_line_start };
                        return data.len();
                    }
                },
                Phase::Head if matches!(rest.first(), Some(b'\r' | b'\n')) => {
                    // Stray line ends between messages belong to no message (size, time).
                    pos += rest.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
                }
                Phase::Head => match self.parse_head_at(dir, rest, cx) {
                    Some(0) => return pos,
                    Some(used) => pos += used,
                    None => {}
                },
                Phase::Skip { mut reader } => match reader.feed(rest, |_| {}) {
                    Err(_) => {
                        cx.stats.parse_errors += 1;
                        self.streams[dir.index()].phase = Phase::Resync { at_line_start: false };
                    }
                    Ok(step) => {
                        pos += step.consumed;
                        if !step.done {
                            self.streams[dir.index()].phase = Phase::Skip { reader };
                            return pos;
                        }
                    }
                },
                Phase::Body { mut msg, mut reader } => {
                    let max = self.cfg.max_message_size;
                    let counts_length = !matches!(reader, BodyReader::Length { .. });
                    let was_truncated = msg.truncated;
                    let step = reader.feed(rest, |chunk| {
                        if counts_length {
                            msg.content_length += chunk.len() as u64;
                        }
                        msg.capture(chunk, max);
                    });
                    if msg.truncated && !was_truncated {
                        cx.stats.oversize_messages += 1;
                    }
                    match step {
                        Err(_) => {
                            cx.stats.parse_errors += 1;
                            self.streams[dir.index()].phase = Phase::Resync { at_line_start: false };
                        }
                        Ok(step) => {
                            pos += step.consumed;
                            msg.size += step.consumed as u64;
                            if step.done {
                                self.message_complete(msg, cx);
                            } else {
                                self.streams[dir.index()].phase = Phase::Body { msg, reader };
                                return pos;
                            }
                        }
                    }
                }
            }
        }
        pos
    }

    fn gap(&mut self, dir: Direction, len: u32, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
        cx.stats.gaps += 1;
        let i = dir.index();
        self.streams[i].head_ts = None;
        let lost = u64::from(len);
        let (next, complete) = match mem::take(&mut self.streams[i].phase) {
            Phase::Body { mut msg, reader: BodyReader::Length { remaining } } if lost > 0 => {
                msg.note_packet_loss();
                if lost < remaining {
                    (Phase::Body { msg, reader: BodyReader::Length { remaining: remaining - lost } }, None)
                } else if lost == remaining {
                    (Phase::Head, Some(msg))
                } else {
                    // The end of the body and the start of what followed are gone.
                    (Phase::Resync { at_line_start: true }, Some(msg))
                }
            }
            Phase::Skip { reader: BodyReader::Length { remaining } } if lost > 0 && lost < remaining => {
                (Phase::Skip { reader: BodyReader::Length { remaining: remaining - lost } }, None)
            }
            Phase::Skip { reader: BodyReader::Length { remaining } } if lost == remaining => (Phase::Head, None),
            Phase::Body { mut msg, reader: BodyReader::UntilClose } if lost > 0 => {
                msg.note_packet_loss();
                msg.content_length += lost;
                (Phase::Body { msg, reader: BodyReader::UntilClose }, None)
            }
            _ => (Phase::Resync { at_line_start: true }, None),
        };
        self.streams[i].phase = next;
        if let Some(msg) = complete {
            self.message_complete(msg, cx);
        }
    }

    fn fin(&mut self, dir: Direction, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
        let stream = &mut self.streams[dir.index()];
        stream.head_ts = None;
        if let Phase::Body { msg, .. } = mem::take(&mut stream.phase) {
            self.message_complete(msg, cx);
        }
    }

    fn expire(&mut self, cx: &mut ParseCtx<'_>) {
        let Some(last) = self.last_seen else { return };
        let idle = cx.ts.since(last).unwrap_or(0);
        if u128::from(idle) >= self.cfg.transaction_timeout.as_nanos() {
            self.flush(cx);
        }
    }

    fn close(&mut self, cx: &mut ParseCtx<'_>) {
        self.flush(cx);
    }
}
