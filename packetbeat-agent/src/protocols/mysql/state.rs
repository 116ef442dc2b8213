//! Per-connection MySQL state: packet framing per direction, the connection phase, the commands
//! waiting for responses (in order), the prepared statements of the connection, gaps and resync.
//!
//! Invariants and bounds:
//! * a packet is handled once it is complete, or, when its payload is larger than
//!   [`MYSQL_MAX_PACKET_VIEW`], once that many bytes are present; the rest is consumed as it arrives
//!   without being held (multi-packet payloads of 16 MiB and more stream through), so the flow layer
//!   buffers at most one incomplete packet of up to that size;
//! * at most [`MYSQL_MAX_PENDING`] commands wait for responses (the oldest is dropped and counted in
//!   `queue_full` and `unmatched_requests` when one more arrives) and at most
//!   [`MYSQL_MAX_STATEMENTS`] prepared statements are remembered (the least recently used goes,
//!   counted in `queue_full`);
//! * client packets with sequence id 0 start commands; everything else from the client belongs to
//!   the connection phase, a LOCAL INFILE upload or a multi-packet payload;
//! * after an SSL request (or TLS records seen at a resync) or with compression the connection is
//!   no longer decoded.
//!
//! Gaps: inside a packet whose length is known the stream stays in sync (the lost bytes are
//! skipped and the message gets Packetbeat's packet-loss note). Otherwise the direction
//! resynchronises: the client at the next segment that starts with a plausible command, the
//! server at the first packet after the next command, which must have the expected sequence id.
//! A response cut by a gap is published with what was read and the note, as Packetbeat does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::binary::{execute_params, statement_id, BinaryType};
use super::config::MysqlConfig;
use super::event::{build_transaction, Command};
use super::parser::{
    is_server_handshake, parse_handshake_response, parse_header, PacketHeader, CLIENT_COMPRESS, CLIENT_DEPRECATE_EOF,
    CLIENT_QUERY_ATTRIBUTES, COM_QUERY, COM_QUIT, COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_PREPARE,
    COM_STMT_SEND_LONG_DATA,
};
use super::response::{Capture, Packet, ResponseReader, Stage, Step};
use crate::protocols::{Direction, ParseCtx, ProtocolState};
use crate::time::Timestamp;

mod sync;

use sync::note_once;

/// Packets up to this payload size are handled whole; larger ones by their first this-many bytes.
pub const MYSQL_MAX_PACKET_VIEW: usize = 1024 * 1024;
/// The most commands waiting for responses on one connection.
pub const MYSQL_MAX_PENDING: usize = 64;
/// The most prepared statements remembered per connection.
pub const MYSQL_MAX_STATEMENTS: usize = 1024;

/// Packetbeat's note for a gap in a request.
pub const NOTE_REQUEST_LOSS: &str = "Packet loss while capturing the request";
/// Packetbeat's note for a gap in a response.
pub const NOTE_RESPONSE_LOSS: &str = "Packet loss while capturing the response";

/// Framing of one direction.
#[derive(Debug, Default)]
struct Framer {
    /// Payload bytes of the current (large) packet still to be consumed unseen.
    skip: usize,
    /// The next packet continues the current payload.
    continued: bool,
    /// Waiting for a message boundary.
    resync: bool,
    /// Server only: a command was sent since the resync began, so the next segment may start its response.
    armed: bool,
    /// Bytes left unconsumed at the last return (held by the flow layer) and their header.
    tail: usize,
    tail_header: Option<PacketHeader>,
    tail_first: Option<u8>,
}

impl Framer {
    fn lose_sync(&mut self) {
        *self = Self { resync: true, ..Self::default() };
    }
}

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Handshake and authentication (or not known yet).
    Connect,
    /// Commands.
    Command,
    /// TLS or compression: not decoded.
    Opaque,
}

/// A prepared statement of this connection.
#[derive(Debug)]
struct Statement {
    query: Arc<str>,
    num_params: usize,
    types: Vec<BinaryType>,
    last_used: Timestamp,
}

/// The MySQL state of one TCP connection.
#[derive(Debug)]
pub struct MysqlState {
    cfg: Arc<MysqlConfig>,
    framers: [Framer; 2],
    phase: Phase,
    capabilities: Option<u32>,
    deprecate_eof: Option<bool>,
    pending: VecDeque<Command>,
    reader: ResponseReader,
    statements: HashMap<u32, Statement>,
    last_client_seq: u8,
    last_server_seq: u8,
    /// The last client packet started or continued a command (continuations belong to it).
    client_cmd_open: bool,
    /// The client sent the last packet (a LOCAL INFILE upload continues the sequence ids).
    client_spoke_last: bool,
    /// Server packets arrived with no command waiting (counted once per run).
    orphan: bool,
    last_seen: Option<Timestamp>,
}

impl MysqlState {
    /// A fresh connection.
    #[must_use]
    pub fn new(cfg: Arc<MysqlConfig>) -> Self {
        Self {
            cfg,
            framers: Default::default(),
            phase: Phase::Connect,
            capabilities: None,
            deprecate_eof: None,
            pending: VecDeque::new(),
            reader: ResponseReader::default(),
            statements: HashMap::new(),
            last_client_seq: 0,
            last_server_seq: 0,
            client_cmd_open: false,
            client_spoke_last: false,
            orphan: false,
            last_seen: None,
        }
    }

    /// Commands waiting for a response.
    #[must_use]
    pub fn pending_commands(&self) -> usize {
        self.pending.len()
    }

    /// Prepared statements remembered.
    #[must_use]
    pub fn statements(&self) -> usize {
        self.statements.len()
    }

    /// Whether the connection is no longer decoded (TLS or compression).
    #[must_use]
    pub fn is_opaque(&self) -> bool {
        self.phase == Phase::Opaque
    }

    fn capture(&self) -> Capture {
        Capture {
            enabled: self.cfg.send_response,
            max_rows: self.cfg.max_rows,
            max_row_length: self.cfg.max_row_length,
        }
    }

    fn packet(&mut self, dir: Direction, p: &Packet<'_>, cx: &mut ParseCtx<'_>) {
        match dir {
            Direction::ToServer => self.client_packet(p, cx),
            Direction::ToClient => self.server_packet(p, cx),
        }
    }

    fn client_packet(&mut self, p: &Packet<'_>, cx: &mut ParseCtx<'_>) {
        self.last_client_seq = p.header.seq;
        self.client_spoke_last = true;
        if p.continuation {
            if self.client_cmd_open {
                if let Some(cmd) = self.pending.back_mut() {
                    cmd.bytes += p.header.total() as u64;
                }
            }
            return;
        }
        self.client_cmd_open = false;
        if p.header.seq != 0 {
            if p.header.seq == 1 && self.phase == Phase::Connect {
                if let Ok(hr) = parse_handshake_response(p.payload) {
                    self.capabilities = Some(hr.capabilities);
                    self.deprecate_eof = Some(hr.capabilities & CLIENT_DEPRECATE_EOF != 0);
                    if hr.ssl_request || hr.capabilities & CLIENT_COMPRESS != 0 {
                        self.phase = Phase::Opaque;
                    }
                }
            }
            return;
        }
        let Some(&code) = p.payload.first() else {
            return;
        };
        self.phase = Phase::Command;
        self.orphan = false;
        // The server answered everything before this command: a response that was only waiting
        // for a possible EOF, or one whose end cannot be told, is complete.
        if matches!(self.reader.stage, Stage::OptionalEof(_) | Stage::Skip) && !self.pending.is_empty() {
            self.complete_front(cx);
        }
        match code {
            COM_QUIT | COM_STMT_SEND_LONG_DATA => return,
            COM_STMT_CLOSE => {
                if let Some(id) = statement_id(p.payload) {
                    self.statements.remove(&id);
                }
                return;
            }
            _ => {}
        }
        let cmd = self.command(code, p, cx);
        if self.pending.len() >= MYSQL_MAX_PENDING {
            cx.stats.queue_full += 1;
            cx.stats.unmatched_requests += 1;
            self.pending.pop_front();
            self.reader = self.pending.front().map_or_else(ResponseReader::default, |c| ResponseReader::new(c.code));
        }
        if self.pending.is_empty() {
            self.reader = ResponseReader::new(code);
        }
        self.pending.push_back(cmd);
        // A multi-packet or partly seen packet: what follows in this direction is still this command.
        self.client_cmd_open = p.header.continues() || p.payload.len() < p.header.len as usize;
        let server = &mut self.framers[Direction::ToClient.index()];
        if server.resync {
            server.armed = true;
        }
    }

    fn command(&mut self, code: u8, p: &Packet<'_>, cx: &mut ParseCtx<'_>) -> Command {
        let mut cmd = Command::new(code, cx.ts, p.header.total() as u64);
        cmd.publish = matches!(code, COM_QUERY | COM_STMT_PREPARE | COM_STMT_EXECUTE);
        match code {
            COM_QUERY | COM_STMT_PREPARE => {
                cmd.query = Some(crate::text::lossy_string(p.payload.get(1..).unwrap_or_default()));
            }
            COM_STMT_EXECUTE => {
                let qa = self.capabilities.is_some_and(|c| c & CLIENT_QUERY_ATTRIBUTES != 0);
                match statement_id(p.payload).and_then(|id| self.statements.get_mut(&id)) {
                    Some(stmt) => {
                        stmt.last_used = cx.ts;
                        cmd.query = Some(stmt.query.to_string());
                        match execute_params(p.payload, stmt.num_params, &mut stmt.types, qa) {
                            Ok(params) => cmd.params = params,
                            Err(_) => cx.stats.parse_errors += 1,
                        }
                    }
                    None => cmd.unknown_statement = true,
                }
            }
            _ => {}
        }
        cmd
    }

    fn server_packet(&mut self, p: &Packet<'_>, cx: &mut ParseCtx<'_>) {
        let previous_seq = std::mem::replace(&mut self.last_server_seq, p.header.seq);
        let after_upload = std::mem::take(&mut self.client_spoke_last) && self.reader.stage == Stage::Infile;
        loop {
            let expected = if self.reader.started() && !after_upload {
                previous_seq.wrapping_add(1)
            } else {
                self.last_client_seq.wrapping_add(1)
            };
            let Some(code) = self.pending.front().map(|c| c.code) else {
                self.unsolicited(p, cx);
                return;
            };
            let checks_seq = !p.continuation && !matches!(self.reader.stage, Stage::Skip | Stage::OptionalEof(_));
            if checks_seq && p.header.seq != expected {
                cx.stats.parse_errors += 1;
                self.desync_server(false, cx);
                return;
            }
            let mut deprecate_eof = self.deprecate_eof;
            let step = self.reader.feed(code, p, cx.ts, &mut deprecate_eof, &self.capture());
            self.deprecate_eof = deprecate_eof;
            match step {
                Step::More => return,
                Step::Done => {
                    self.complete_front(cx);
                    return;
                }
                Step::DoneBefore => self.complete_front(cx),
                Step::Invalid(_) => {
                    cx.stats.parse_errors += 1;
                    self.desync_server(false, cx);
                    return;
                }
            }
        }
    }

    /// A server packet with no command waiting: the connection phase, or an unmatched response.
    fn unsolicited(&mut self, p: &Packet<'_>, cx: &mut ParseCtx<'_>) {
        if p.header.seq == 0 && is_server_handshake(p.payload) {
            self.phase = Phase::Connect;
        } else if self.phase == Phase::Command && !self.orphan && !p.continuation {
            self.orphan = true;
            cx.stats.unmatched_responses += 1;
        }
    }

    /// The front command's response is complete (or as complete as it will get): publish it.
    fn complete_front(&mut self, cx: &mut ParseCtx<'_>) {
        let Some(cmd) = self.pending.pop_front() else {
            return;
        };
        let next = self.pending.front().map_or_else(ResponseReader::default, |c| ResponseReader::new(c.code));
        let reader = std::mem::replace(&mut self.reader, next);
        let resp = reader.resp;
        if let (Some(ok), None) = (resp.prepare, &resp.error) {
            let query = cmd.query.as_deref().unwrap_or_default();
            if self.remember_statement(ok.stmt_id, ok.num_params, query, cx.ts) {
                cx.stats.queue_full += 1;
            }
        }
        if cmd.publish {
            cx.stats.transactions += 1;
            cx.out.push(build_transaction(cmd, Some(resp), &self.cfg));
        }
    }

    /// Remembers a prepared statement; returns whether another one was evicted for it.
    fn remember_statement(&mut self, id: u32, num_params: u16, query: &str, ts: Timestamp) -> bool {
        let mut evicted = false;
        if self.statements.len() >= MYSQL_MAX_STATEMENTS && !self.statements.contains_key(&id) {
            let oldest = self.statements.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.statements.remove(&oldest);
                evicted = true;
            }
        }
        let stmt = Statement {
            query: Arc::from(query),
            num_params: usize::from(num_params),
            types: Vec::new(),
            last_used: ts,
        };
        self.statements.insert(id, stmt);
        evicted
    }

    /// Publishes or drops what is pending (connection idle or gone).
    fn flush(&mut self, cx: &mut ParseCtx<'_>) {
        if self.reader.started() && !self.pending.is_empty() {
            if !matches!(self.reader.stage, Stage::OptionalEof(_) | Stage::Skip) {
                self.reader.resp.notes.push("Response incomplete when the connection ended".to_owned());
            }
            self.complete_front(cx);
        }
        self.drop_pending(cx);
    }
}

impl ProtocolState for MysqlState {
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> usize {
        self.last_seen = Some(cx.ts);
        if self.phase == Phase::Opaque {
            return data.len();
        }
        if self.framers[dir.index()].resync && !self.resync_at(dir, data, cx) {
            return data.len();
        }
        let mut pos = 0;
        while pos < data.len() {
            let rest = data.get(pos..).unwrap_or_default();
            let fr = &mut self.framers[dir.index()];
            if fr.skip > 0 {
                let n = fr.skip.min(rest.len());
                fr.skip -= n;
                pos += n;
                continue;
            }
            let Some(header) = parse_header(rest) else {
                break;
            };
            let len = header.len as usize;
            let view = if rest.len() >= header.total() {
                len
            } else if len > MYSQL_MAX_PACKET_VIEW && rest.len() >= 4 + MYSQL_MAX_PACKET_VIEW {
                MYSQL_MAX_PACKET_VIEW
            } else {
                break;
            };
            let payload = rest.get(4..4 + view).unwrap_or_default();
            if view < len {
                cx.stats.oversize_messages += 1;
                fr.skip = len - view;
            }
            let continuation = std::mem::replace(&mut fr.continued, header.continues());
            pos += 4 + view;
            self.packet(dir, &Packet { header, payload, continuation }, cx);
            if self.phase == Phase::Opaque || self.framers[dir.index()].resync {
                return data.len();
            }
        }
        let fr = &mut self.framers[dir.index()];
        let tail = data.get(pos..).unwrap_or_default();
        fr.tail = tail.len();
        fr.tail_header = parse_header(tail);
        fr.tail_first = tail.get(4).copied();
        pos
    }

    fn gap(&mut self, dir: Direction, len: u32, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
        cx.stats.gaps += 1;
        if len > 0 && self.gap_in_packet(dir, len as usize) {
            return;
        }
        match dir {
            Direction::ToServer => {
                if self.client_cmd_open {
                    if let Some(cmd) = self.pending.back_mut() {
                        note_once(&mut cmd.notes, NOTE_REQUEST_LOSS);
                    }
                }
                self.client_cmd_open = false;
                self.framers[dir.index()].lose_sync();
            }
            // Picked up mid-stream after the client side: the command already seen may be
            // answered by the first server segment.
            Direction::ToClient if len == 0 && !self.reader.started() => {
                let fr = &mut self.framers[dir.index()];
                fr.lose_sync();
                fr.armed = !self.pending.is_empty();
            }
            Direction::ToClient => self.desync_server(len > 0, cx),
        }
    }

    fn fin(&mut self, _dir: Direction, cx: &mut ParseCtx<'_>) {
        self.last_seen = Some(cx.ts);
    }

    fn expire(&mut self, cx: &mut ParseCtx<'_>) {
        let timeout = self.cfg.statement_timeout;
        self.statements.retain(|_, s| cx.ts.since(s.last_used).is_none_or(|age| u128::from(age) < timeout.as_nanos()));
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
