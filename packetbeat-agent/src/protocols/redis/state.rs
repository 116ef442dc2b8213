//! Per-connection Redis state: one [`MessageBuilder`] per direction, resynchronisation, and the
//! FIFO that pairs replies with requests.
//!
//! Correlation: Redis answers commands in order, so a reply pairs with the oldest waiting request,
//! except for what is not a reply:
//! * RESP3 push messages (`>`), and in RESP2 the `message`/`pmessage`/`smessage` arrays of a
//!   subscribed connection, are published by nobody;
//! * (un)subscribe confirmations answer the waiting `(P|S)(UN)SUBSCRIBE` (one per channel, so one
//!   request can have several; `UNSUBSCRIBE` without channels gets one per subscription we know);
//!   a confirmation nobody waits for is a push (e.g. a shard channel moved);
//! * after `MONITOR` answers `+OK`, every server line is a monitor feed line until `RESET`/`QUIT`.
//!
//! Bounds: at most `queue_max_messages` requests / `queue_max_bytes` of their text wait; the
//! oldest is evicted (counted in `queue_full` and `unmatched_requests`) and its reply, when it
//! comes, is skipped rather than paired with the wrong request. A builder keeps a nesting stack of
//! ≤ [`super::message::REDIS_MAX_DEPTH`] and ≤ 64 KiB of text per message.
//!
//! Gaps: a loss inside a bulk payload of known length only marks the message (published with
//! Packetbeat's "Packet loss while capturing the request/response" note). Otherwise the direction
//! drops its partial message and resynchronises at the next plausible message start: the start of
//! a later segment or a position after CRLF where a message parses, trying a bounded number of
//! candidates per segment. A lost reply stream publishes the requests that were waiting, with the
//! response-loss note (Packetbeat drops the whole stream and publishes nothing). Requests that
//! arrive while the connection is out of sync only accept replies captured after them, so replies
//! to requests that were never seen are dropped (counted) instead of being paired wrongly.

use std::collections::VecDeque;
use std::sync::Arc;

use super::config::RedisConfig;
use super::event::{build_transaction, Command};
use super::message::{Fed, MessageBuilder, RedisMessage, Top};
use super::parser::{is_type_byte, AggregateKind};
use crate::protocols::{Direction, ParseCtx, ProtocolState};
use crate::time::Timestamp;

/// Candidate message starts tried per `parse` call while resynchronising.
const RESYNC_MAX_TRIES: usize = 32;

/// Pub/sub subscription kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubKind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

impl SubKind {
    /// The kind and whether it subscribes, for a command or confirmation name (any case).
    fn of(name: &str) -> Option<(Self, bool)> {
        Some(match name.to_ascii_lowercase().as_str() {
            "subscribe" => (Self::Channel, true),
            "psubscribe" => (Self::Pattern, true),
            "ssubscribe" => (Self::Shard, true),
            "unsubscribe" => (Self::Channel, false),
            "punsubscribe" => (Self::Pattern, false),
            "sunsubscribe" => (Self::Shard, false),
            _ => return None,
        })
    }
}

/// What a request waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Reply,
    /// Confirmations of `kind`; `left: None` until the first one comes (unsubscribe from all).
    Confirmations {
        kind: SubKind,
        subscribe: bool,
        left: Option<u64>,
    },
}

#[derive(Debug)]
struct Pending {
    req: RedisMessage,
    cmd: Command,
    expect: Expect,
    /// Replies (confirmations) collected so far.
    reply: Option<RedisMessage>,
    /// Queued while the connection was out of sync: only a reply captured after it may answer it.
    check_ts: bool,
}

/// How one reply is handled.
enum Class {
    Reply,
    Confirmation { kind: SubKind, subscribe: bool, count: u64 },
    Push,
}

/// The Redis state of one TCP connection.
#[derive(Debug)]
pub struct RedisState {
    cfg: Arc<RedisConfig>,
    builders: [MessageBuilder; 2],
    resync: [bool; 2],
    /// A message has not completed since the last resynchronisation (errors are not counted twice).
    tentative: [bool; 2],
    pending: VecDeque<Pending>,
    pending_bytes: u64,
    /// Replies still to come for evicted requests.
    skip_replies: u64,
    /// Out of sync since a gap or a mid-stream pickup.
    out_of_sync: bool,
    /// Subscriptions per [`SubKind`], as far as the confirmations told us.
    subs: [u64; 3],
    /// Last subscription count reported by channel/pattern and by shard confirmations.
    reported: [u64; 2],
    monitor: bool,
    resp3: bool,
    last_seen: Option<Timestamp>,
}

impl RedisState {
    /// A fresh connection.
    #[must_use]
    pub fn new(cfg: Arc<RedisConfig>) -> Self {
        Self {
            cfg,
            builders: [MessageBuilder::new(true), MessageBuilder::new(false)],
            resync: [false; 2],
            tentative: [false; 2],
            pending: VecDeque::new(),
            pending_bytes: 0,
            skip_replies: 0,
            out_of_sync: false,
            subs: [0; 3],
            reported: [0; 2],
            monitor: false,
            resp3: false,
            last_seen: None,
        }
    }

    /// Requests waiting for a reply.
    #[must_use]
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    fn on_request(&mut self, req: RedisMessage, cx: &mut ParseCtx<'_>) {
        let cmd = Command::of(&req);
        let expect = match SubKind::of(cmd.name()) {
            Some((kind, subscribe)) => {
                let channels = req.elements.saturating_sub(1);
                let left = if channels == 0 && !subscribe { None } else { Some(channels.max(1)) };
                Expect::Confirmations { kind, subscribe, left }
            }
            None => Expect::Reply,
        };
        let size = req.text.len() as u64;
        let (max_n, max_b) = (self.cfg.queue_max_messages, self.cfg.queue_max_bytes);
        while !self.pending.is_empty()
            && ((max_n > 0 && self.pending.len() as u64 >= max_n) || (max_b > 0 && self.pending_bytes + size > max_b))
        {
            if let Some(old) = self.pending.pop_front() {
                self.pending_bytes -= old.req.text.len() as u64;
                cx.stats.queue_full += 1;
                cx.stats.unmatched_requests += 1;
                if old.expect == Expect::Reply {
                    self.skip_replies += 1;
                }
            }
        }
        self.pending_bytes += size;
        self.pending.push_back(Pending { req, cmd, expect, reply: None, check_ts: self.out_of_sync });
    }

    fn classify(&self, r: &RedisMessage) -> Class {
        let front = self.pending.front();
        if self.monitor {
            let ends = match front.map(|p| p.cmd.name()) {
                Some("RESET") => r.text == "RESET",
                Some("QUIT") => r.text == "OK",
                _ => false,
            };
            return if ends || r.is_error { Class::Reply } else { Class::Push };
        }
        let aggregate = matches!(r.top, Top::Aggregate(AggregateKind::Array | AggregateKind::Push));
        let first = r.head.first().map(|(t, _)| t.as_str()).unwrap_or_default();
        if aggregate && r.elements == 3 {
            if let (Some((kind, subscribe)), Some((count, true))) = (SubKind::of(first), r.head.get(2)) {
                let count = count.parse().unwrap_or(0);
                let waiting =
                    front.is_some_and(|p| matches!(p.expect, Expect::Confirmations { kind: k, .. } if k == kind));
                if waiting {
                    return Class::Confirmation { kind, subscribe, count };
                }
                if r.top == Top::Aggregate(AggregateKind::Push) || self.subscribed() || front.is_none() {
                    return Class::Push;
                }
            }
        }
        if r.top == Top::Aggregate(AggregateKind::Push) {
            return Class::Push;
        }
        let message_shape = matches!((first, r.elements), ("message" | "smessage", 3) | ("pmessage", 4));
        if r.top == Top::Aggregate(AggregateKind::Array)
            && message_shape
            && ((self.subscribed() && !self.resp3) || front.is_none())
        {
            return Class::Push;
        }
        Class::Reply
    }

    fn subscribed(&self) -> bool {
        self.subs.iter().any(|&n| n > 0)
    }

    /// Tracks subscriptions from a confirmation's count (channels + patterns, or shard channels).
    fn track(&mut self, kind: SubKind, subscribe: bool, count: u64) {
        let slot = usize::from(kind == SubKind::Shard);
        let before = self.reported[slot];
        let n = &mut self.subs[kind as usize];
        if subscribe && count > before {
            *n += count - before;
        } else if !subscribe && count < before {
            *n = n.saturating_sub(before - count);
        }
        if !subscribe && count == 0 {
            // Nothing left of this count's kinds.
            if kind == SubKind::Shard {
                *n = 0;
            } else {
                self.subs[SubKind::Channel as usize] = 0;
                self.subs[SubKind::Pattern as usize] = 0;
            }
        }
        self.reported[slot] = count;
    }

    fn on_reply(&mut self, r: RedisMessage, cx: &mut ParseCtx<'_>) {
        match self.classify(&r) {
            Class::Push => {}
            Class::Confirmation { kind, subscribe, count } => {
                let known = self.subs[kind as usize];
                self.track(kind, subscribe, count);
                let Some(front) = self.pending.front_mut() else {
                    return;
                };
                if let Expect::Confirmations { left, .. } = &mut front.expect {
                    let n = left.get_or_insert(known.max(1));
                    *n = n.saturating_sub(1);
                    let done = *n == 0;
                    match &mut front.reply {
                        None => front.reply = Some(r),
                        Some(first) => {
                            first.text.push_str(", ");
                            first.text.push_str(&r.text);
                            first.size += r.size;
                            first.lost_bytes |= r.lost_bytes;
                        }
                    }
                    if done {
                        self.complete_front(cx);
                    }
                }
            }
            Class::Reply => {
                if self.skip_replies > 0 {
                    self.skip_replies -= 1;
                    cx.stats.unmatched_responses += 1;
                    return;
                }
                let Some(front) = self.pending.front_mut() else {
                    cx.stats.unmatched_responses += 1;
                    return;
                };
                if front.check_ts && r.ts < front.req.ts {
                    // Captured before the request was: it answers a request we never saw.
                    cx.stats.unmatched_responses += 1;
                    return;
                }
                if front.check_ts {
                    self.out_of_sync = false;
                }
                match front.cmd.name() {
                    "MONITOR" if !r.is_error => self.monitor = true,
                    "HELLO" if !r.is_error => self.resp3 = r.top == Top::Aggregate(AggregateKind::Map),
                    "RESET" => {
                        self.monitor = false;
                        self.resp3 = false;
                        self.subs = [0; 3];
                        self.reported = [0; 2];
                    }
                    "QUIT" => self.monitor = false,
                    _ => {}
                }
                match &mut front.reply {
                    // Confirmations were collected, then something else ended the request.
                    Some(_) => {
                        self.complete_front(cx);
                        self.on_reply(r, cx);
                    }
                    None => {
                        front.reply = Some(r);
                        self.complete_front(cx);
                    }
                }
            }
        }
    }

    fn complete_front(&mut self, cx: &mut ParseCtx<'_>) {
        if let Some(p) = self.pending.pop_front() {
            self.pending_bytes -= p.req.text.len() as u64;
            if p.reply.is_none() {
                cx.stats.unmatched_requests += 1;
            }
            cx.stats.transactions += 1;
            cx.out.push(build_transaction(p.req, p.cmd, p.reply, &self.cfg));
        }
    }

    /// Drops every waiting request (idle, closed): counted, not published, as in Packetbeat.
    fn drop_pending(&mut self, cx: &mut ParseCtx<'_>) {
        cx.stats.unmatched_requests += self.pending.len() as u64;
        self.pending.clear();
        self.pending_bytes = 0;
        self.skip_replies = 0;
    }

    fn on_message(&mut self, dir: Direction, msg: RedisMessage, cx: &mut ParseCtx<'_>) {
        if msg.truncated {
            cx.stats.oversize_messages += 1;
        }
        match dir {
            Direction::ToServer => self.on_request(msg, cx),
            Direction::ToClient => self.on_reply(msg, cx),
        }
    }

    /// The offset of the first plausible message start in `data` (offset 0 or after a LF).
    fn candidate(dir: Direction, data: &[u8], from: usize) -> Option<usize> {
        let plausible = |at: usize| match (dir, data.get(at)) {
            (Direction::ToServer, Some(b'*')) => data.get(at + 1).is_none_or(u8::is_ascii_digit),
            (Direction::ToClient, Some(&b)) => is_type_byte(b) && b != b';' && b != b'.',
            _ => false,
        };
        (from..data.len()).find(|&at| (at == 0 || data.get(at - 1) == Some(&b'\n')) && plausible(at))
    }
}

impl ProtocolState for RedisState {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> usize {
        self.last_seen = Some(cx.ts);
        let i = dir.index();
        let mut pos = 0;
        let mut tries = 0;
        while pos < data.len() {
            if self.resync[i] {
                tries += 1;
                match Self::candidate(dir, data, pos) {
                    Some(at) if tries <= RESYNC_MAX_TRIES => {
                        pos = at;
                        self.resync[i] = false;
                        self.tentative[i] = true;
                    }
                    // Wait for the next segment: its start is a candidate.
                    _ => return data.len(),
                }
            }
            let (used, fed) = self.builders[i].feed(data.get(pos..).unwrap_or_default(), cx.ts);
            pos += used;
            match fed {
                Fed::NeedMore => return pos,
                Fed::Message(m) => {
                    self.tentative[i] = false;
                    self.on_message(dir, m, cx);
                }
                Fed::Error(_) => {
                    if !self.tentative[i] {
                        cx.stats.parse_errors += 1;
                    }
                    self.resync[i] = true;
                    self.out_of_sync = true;
                    pos += 1;
                }
            }
        }
        pos.min(data.len())
    }

    fn gap(&mut self, dir: Direction, len: u32, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
        cx.stats.gaps += 1;
        let i = dir.index();
        if len > 0 && !self.resync[i] && self.builders[i].in_message() && self.builders[i].lose(u64::from(len)) {
            return;
        }
        self.builders[i].reset();
        self.resync[i] = true;
        self.tentative[i] = true;
        self.out_of_sync = true;
        if dir == Direction::ToClient && len > 0 {
            // Replies were lost: publish what waited, with the loss note.
            while !self.pending.is_empty() {
                self.complete_front(cx);
            }
            self.skip_replies = 0;
        }
    }

    fn fin(&mut self, dir: Direction, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
        self.builders[dir.index()].reset();
    }

    fn expire(&mut self, cx: &mut ParseCtx<'_>) {
        let Some(last) = self.last_seen else { return };
        let idle = cx.ts.since(last).unwrap_or(0);
        if !self.pending.is_empty() && u128::from(idle) >= self.cfg.transaction_timeout.as_nanos() {
            self.drop_pending(cx);
        }
    }

    fn close(&mut self, cx: &mut ParseCtx<'_>) {
        self.drop_pending(cx);
    }
}
