//! Per-connection PostgreSQL state: framing of each direction's byte stream (startup phase, typed
//! messages, oversize messages, resynchronisation) feeding the [`Correlator`].
//!
//! Invariants and bounds:
//! * the flow layer only ever buffers one incomplete message of at most [`PGSQL_MAX_HELD_MESSAGE`]
//!   bytes: a longer message is handled from its head (rows counted, SQL cut; `oversize_messages`)
//!   and the rest is skipped as it arrives, so a 1 GiB DataRow or COPY costs no memory;
//! * a length field outside 4..=1 GiB or a tag the direction never sends is a parse error: the
//!   direction resynchronises (a body that fails to decode only skips that message);
//! * resynchronisation (after a gap, a parse error or a mid-stream pickup) accepts the start of the
//!   next segment when its message headers are all plausible, or the bytes after a ReadyForQuery
//!   (server) / Sync (client) found anywhere; nothing else is parsed meanwhile;
//! * SSLRequest answered `S` and GSSENCRequest answered `G` make the connection encrypted: nothing
//!   more is parsed, and no transaction is invented.

use std::sync::Arc;

use super::config::PgsqlConfig;
use super::correlate::{Correlator, Msg};
use super::parser::{find_sync_marker, frame, plausible_boundary, startup_frame, StartupKind, SYNC_MARKER_CARRY};
use crate::protocols::{Direction, ParseCtx, ProtocolState};
use crate::time::Timestamp;

/// The longest message held whole; longer ones are decoded from this much of their head.
pub const PGSQL_MAX_HELD_MESSAGE: usize = 1024 * 1024;

/// Where one direction's parser stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Client only, at connection start: untyped StartupMessage / SSLRequest / GSSENCRequest.
    Startup,
    /// At a typed message boundary.
    Typed,
    /// Inside the tail of an oversize message: this many bytes are skipped.
    Skip(u64),
    /// Looking for a message boundary; the first `carry` bytes of the next data were seen already.
    Resync { carry: usize },
}

#[derive(Debug)]
struct Stream {
    phase: Phase,
    /// Time of the first byte of the incomplete message the flow layer holds.
    partial_ts: Option<Timestamp>,
}

/// The PostgreSQL state of one TCP connection.
#[derive(Debug)]
pub struct PgsqlState {
    streams: [Stream; 2],
    corr: Correlator,
    cfg: Arc<PgsqlConfig>,
    /// The client asked for TLS or GSSAPI encryption and waits for the one-byte answer.
    encryption_asked: Option<StartupKind>,
    /// Encryption was accepted: the rest of the connection is opaque.
    encrypted: bool,
    last_seen: Option<Timestamp>,
}

impl PgsqlState {
    /// A fresh connection, seen from its start.
    #[must_use]
    pub fn new(cfg: Arc<PgsqlConfig>) -> Self {
        Self {
            streams: [
                Stream { phase: Phase::Startup, partial_ts: None },
                Stream { phase: Phase::Typed, partial_ts: None },
            ],
            corr: Correlator::new(Arc::clone(&cfg)),
            cfg,
            encryption_asked: None,
            encrypted: false,
            last_seen: None,
        }
    }

    /// Whether the connection switched to TLS or GSSAPI encryption.
    #[must_use]
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Requests (and protocol steps) waiting for the server.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.corr.pending()
    }

    fn resync(&mut self, dir: Direction, cx: &mut ParseCtx<'_>) {
        cx.stats.parse_errors += 1;
        self.streams[dir.index()].phase = Phase::Resync { carry: 0 };
    }

    /// Resynchronisation step at `pos`: returns the new position and whether to stop here.
    fn resync_step(
        &mut self,
        dir: Direction,
        data: &[u8],
        pos: usize,
        carry: usize,
        ts: Timestamp,
        cx: &mut ParseCtx<'_>,
    ) -> (usize, bool) {
        let i = dir.index();
        if pos == 0 {
            if let Some(seg) = data.get(carry..) {
                if dir == Direction::ToServer && matches!(startup_frame(seg), Ok(Some(_))) {
                    self.streams[i].phase = Phase::Startup;
                    return (carry, false);
                }
                if plausible_boundary(seg, dir) {
                    self.streams[i].phase = Phase::Typed;
                    return (carry, false);
                }
            }
        }
        let rest = data.get(pos..).unwrap_or_default();
        if let Some(at) = find_sync_marker(rest, dir) {
            let len = if dir == Direction::ToClient { 6 } else { 5 };
            self.streams[i].phase = Phase::Typed;
            if dir == Direction::ToClient {
                // The ReadyForQuery itself closes the cycle.
                let m = Msg {
                    tag: b'Z',
                    body: rest.get(at + 5..at + 6).unwrap_or_default(),
                    truncated: false,
                    size: 6,
                    ts,
                };
                let _ = self.corr.backend(&m, cx);
            }
            return (pos + at + len, false);
        }
        let keep = rest.len().min(SYNC_MARKER_CARRY);
        self.streams[i].phase = Phase::Resync { carry: keep };
        (data.len() - keep, true)
    }

    /// One message (or the head of an oversize one) to the correlator; a body that does not decode
    /// is a counted parse error and only that message is skipped.
    fn deliver(&mut self, dir: Direction, m: &Msg<'_>, cx: &mut ParseCtx<'_>) {
        let r = match dir {
            Direction::ToServer => self.corr.frontend(m, cx),
            Direction::ToClient => self.corr.backend(m, cx),
        };
        if r.is_err() {
            cx.stats.parse_errors += 1;
        }
    }
}

impl ProtocolState for PgsqlState {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> usize {
        self.last_seen = Some(cx.ts);
        if self.encrypted {
            return data.len();
        }
        let i = dir.index();
        let first_ts = self.streams[i].partial_ts.take().unwrap_or(cx.ts);
        let mut pos = 0usize;
        while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
            let ts = if pos == 0 { first_ts } else { cx.ts };
            match self.streams[i].phase {
                Phase::Skip(left) => {
                    let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    pos += n;
                    let left = left - n as u64;
                    self.streams[i].phase = if left == 0 { Phase::Typed } else { Phase::Skip(left) };
                }
                Phase::Resync { carry } => {
                    let (next, stop) = self.resync_step(dir, data, pos, carry, ts, cx);
                    if stop {
                        return next;
                    }
                    pos = next;
                }
                Phase::Startup => match startup_frame(rest) {
                    Ok(None) => {
                        self.streams[i].partial_ts = Some(ts);
                        return pos;
                    }
                    Ok(Some((kind, f))) => {
                        if rest.len() < f.total {
                            self.streams[i].partial_ts = Some(ts);
                            return pos;
                        }
                        pos += f.total;
                        match kind {
                            StartupKind::Ssl | StartupKind::GssEnc => self.encryption_asked = Some(kind),
                            StartupKind::Startup => {
                                self.streams[i].phase = Phase::Typed;
                                self.corr.startup(cx);
                            }
                            StartupKind::Cancel => {}
                        }
                    }
                    Err(_) if plausible_boundary(rest, dir) => self.streams[i].phase = Phase::Typed,
                    Err(_) => self.resync(dir, cx),
                },
                Phase::Typed => {
                    if dir == Direction::ToClient {
                        if let Some(asked) = self.encryption_asked {
                            let accepted = if asked == StartupKind::Ssl { b'S' } else { b'G' };
                            match rest.first() {
                                Some(&b) if b == accepted => {
                                    self.encrypted = true;
                                    return data.len();
                                }
                                Some(b'N') => {
                                    self.encryption_asked = None;
                                    pos += 1;
                                    continue;
                                }
                                _ => self.encryption_asked = None,
                            }
                        }
                    }
                    let f = match frame(rest, dir) {
                        Ok(Some(f)) => f,
                        Ok(None) => {
                            self.streams[i].partial_ts = Some(ts);
                            return pos;
                        }
                        Err(_) => {
                            self.resync(dir, cx);
                            continue;
                        }
                    };
                    let (held, truncated) = if f.total > PGSQL_MAX_HELD_MESSAGE {
                        (PGSQL_MAX_HELD_MESSAGE, true)
                    } else {
                        (f.total, false)
                    };
                    let Some(whole) = rest.get(..held) else {
                        self.streams[i].partial_ts = Some(ts);
                        return pos;
                    };
                    let body = whole.get(f.header_len()..).unwrap_or_default();
                    let msg_ts = if dir == Direction::ToClient { cx.ts } else { ts };
                    let m = Msg { tag: f.tag, body, truncated, size: f.total as u64, ts: msg_ts };
                    self.deliver(dir, &m, cx);
                    pos += held;
                    if truncated {
                        cx.stats.oversize_messages += 1;
                        self.streams[i].phase = Phase::Skip((f.total - held) as u64);
                    }
                }
            }
        }
        pos
    }

    fn gap(&mut self, dir: Direction, len: u32, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
        cx.stats.gaps += 1;
        let stream = &mut self.streams[dir.index()];
        stream.partial_ts = None;
        if self.encrypted {
            return;
        }
        let lost = u64::from(len);
        if let Phase::Skip(left) = stream.phase {
            if lost > 0 && lost <= left {
                // The loss fell inside a message whose head was already decoded.
                stream.phase = if lost == left { Phase::Typed } else { Phase::Skip(left - lost) };
                return;
            }
        }
        stream.phase = Phase::Resync { carry: 0 };
        if lost > 0 {
            match dir {
                Direction::ToServer => self.corr.client_loss(),
                Direction::ToClient => self.corr.server_loss(cx.ts, cx),
            }
        }
    }

    fn fin(&mut self, _dir: Direction, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
    }

    fn expire(&mut self, cx: &mut ParseCtx<'_>) {
        let Some(last) = self.last_seen else { return };
        if u128::from(cx.ts.since(last).unwrap_or(0)) >= self.cfg.transaction_timeout.as_nanos() {
            self.corr.drop_pending(cx);
        }
    }

    fn close(&mut self, cx: &mut ParseCtx<'_>) {
        self.corr.drop_pending(cx);
    }
}
