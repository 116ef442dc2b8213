//! Request ↔ response correlation for one connection: the ordered queue of what the server still
//! has to answer, fed by client messages and drained by server messages.
//!
//! PostgreSQL answers strictly in order, so the queue mirrors the client's messages: a simple Query
//! becomes one transaction per statement followed by a cycle end (answered by ReadyForQuery); in
//! the extended protocol Parse/Bind/Describe/Close are steps (answered by ParseComplete, BindComplete,
//! RowDescription/NoData, CloseComplete), each Execute is a transaction (DataRow… then
//! CommandComplete, EmptyQueryResponse, PortalSuspended or ErrorResponse) and Sync is a cycle end.
//! Pipelines (many Bind/Execute before one Sync) therefore give one transaction per Execute, each
//! with its own rows, bytes and duration.
//!
//! ReadyForQuery realigns everything: requests of the finished cycle still waiting are dropped
//! (the server skipped them after an error; counted as unmatched requests), so a miscount never
//! shifts later pairings, unlike Packetbeat's plain FIFO. An ErrorResponse is given to the first
//! transaction of its cycle (the Execute whose Parse or Bind failed) and the rest of the cycle is
//! skipped, as the server does.
//!
//! Loss: a client-side gap queues a `Lost` marker that swallows responses up to the next
//! ReadyForQuery, and the client's requests until its next Sync join that lost cycle (they are
//! not published: their responses cannot be told apart). A server-side gap publishes the response
//! in progress with Packetbeat's note, then ignores the server until ReadyForQuery, where every
//! transaction of the cycle is published with that note. The same `Lost` marker bounds the queue:
//! at `queue_max_messages`, requests until the next Sync are counted in `queue_full`.

use std::collections::VecDeque;
use std::sync::Arc;

use super::config::PgsqlConfig;
use super::event::{CopyMode, PgsqlTx, NOTE_RESPONSE_LOSS, NOTE_UNKNOWN_STATEMENT};
use super::parser::{
    bind_msg, error_fields, execute_msg, parameter_description, parse_msg, query_text, row_description, target_msg,
    FieldDesc, PgsqlParseError,
};
use super::session::Session;
use super::sql::split_statements;
use crate::protocols::ParseCtx;
use crate::time::Timestamp;

/// A protocol step that is answered but is not a transaction itself.
#[derive(Debug)]
struct Step {
    /// Client tag: `P`, `B`, `D` or `C`.
    tag: u8,
    /// The SQL involved (Parse, Bind), for an error reported on the step.
    query: Option<Arc<str>>,
    ts: Timestamp,
    /// Describe target: `S`/`P` and the name.
    target: Option<(u8, Box<[u8]>)>,
}

/// What the server still owes, in order.
#[derive(Debug)]
enum Pending {
    Tx(Box<PgsqlTx>),
    Step(Step),
    /// Sync, or the end of a Query / FunctionCall: answered by ReadyForQuery.
    CycleEnd,
    /// Requests lost (capture gap or queue bound) whose responses end at the next ReadyForQuery.
    Lost,
}

/// Input to the correlator: one whole (or truncated) message.
#[derive(Clone, Copy, Debug)]
pub struct Msg<'a> {
    /// Tag.
    pub tag: u8,
    /// Body (after tag and length); the head only when `truncated`.
    pub body: &'a [u8],
    /// The body is the head of an oversize message.
    pub truncated: bool,
    /// Size on the wire.
    pub size: u64,
    /// Time of the message's first byte (client) or last byte (server).
    pub ts: Timestamp,
}

/// The correlation state of one connection.
#[derive(Debug)]
pub struct Correlator {
    cfg: Arc<PgsqlConfig>,
    queue: VecDeque<Pending>,
    session: Session,
    /// Client bytes (and the time of the first) not yet given to a transaction.
    req_bytes: u64,
    req_ts: Option<Timestamp>,
    /// Server bytes of the response in progress.
    resp_bytes: u64,
    /// A server-side gap hit the current cycle.
    resp_lost: bool,
    /// After a server-side gap: ignore the server until ReadyForQuery.
    discard: bool,
    /// Client requests join the `Lost` cycle until the next Sync (or Query).
    lost_cycle_open: bool,
}

fn lossy(b: &[u8]) -> Arc<str> {
    Arc::from(crate::text::lossy(b))
}

impl Correlator {
    /// A fresh connection.
    #[must_use]
    pub fn new(cfg: Arc<PgsqlConfig>) -> Self {
        Self {
            cfg,
            queue: VecDeque::new(),
            session: Session::default(),
            req_bytes: 0,
            req_ts: None,
            resp_bytes: 0,
            resp_lost: false,
            discard: false,
            lost_cycle_open: false,
        }
    }

    /// Items waiting for the server.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    fn accumulate(&mut self, m: &Msg<'_>) {
        self.req_bytes += m.size;
        self.req_ts.get_or_insert(m.ts);
    }

    fn take_request(&mut self, m: &Msg<'_>) -> (u64, Timestamp) {
        let out = (self.req_bytes, self.req_ts.unwrap_or(m.ts));
        self.req_bytes = 0;
        self.req_ts = None;
        out
    }

    fn push(&mut self, item: Pending, cx: &mut ParseCtx<'_>) {
        if self.lost_cycle_open {
            match item {
                Pending::CycleEnd => self.lost_cycle_open = false,
                Pending::Tx(_) => cx.stats.queue_full += 1,
                _ => {}
            }
            return;
        }
        if self.queue.len() >= self.cfg.queue_max_messages {
            if let Pending::Tx(_) = item {
                cx.stats.queue_full += 1;
            }
            self.queue.push_back(Pending::Lost);
            self.lost_cycle_open = !matches!(item, Pending::CycleEnd);
            return;
        }
        self.queue.push_back(item);
    }

    /// StartupMessage: authentication and the server's parameters end with ReadyForQuery, like a
    /// query cycle (so a query the client sends before it is not mistaken for part of it).
    pub fn startup(&mut self, cx: &mut ParseCtx<'_>) {
        self.push(Pending::CycleEnd, cx);
    }

    /// A client message.
    ///
    /// # Errors
    /// A body that does not decode (the message is skipped).
    pub fn frontend(&mut self, m: &Msg<'_>, cx: &mut ParseCtx<'_>) -> Result<(), PgsqlParseError> {
        match m.tag {
            b'Q' => {
                let sql = crate::text::lossy_string(query_text(m.body, m.truncated)?);
                self.lost_cycle_open = false;
                self.req_bytes = 0;
                self.req_ts = None;
                for stmt in split_statements(&sql) {
                    let tx = PgsqlTx {
                        start: m.ts,
                        query: Some(Arc::from(stmt)),
                        request_bytes: m.size,
                        ..PgsqlTx::default()
                    };
                    self.push(Pending::Tx(Box::new(tx)), cx);
                }
                self.push(Pending::CycleEnd, cx);
            }
            b'P' => {
                let p = parse_msg(m.body, m.truncated)?;
                let query = lossy(p.query);
                if self.session.parse(p.name, Arc::clone(&query), p.param_types, self.cfg.max_prepared_statements) {
                    cx.stats.queue_full += 1;
                }
                self.accumulate(m);
                self.push(Pending::Step(Step { tag: b'P', query: Some(query), ts: m.ts, target: None }), cx);
            }
            b'B' => {
                let b = bind_msg(m.body, m.truncated)?;
                let (query, evicted) = self.session.bind(&b, self.cfg.max_prepared_statements);
                if evicted {
                    cx.stats.queue_full += 1;
                }
                self.accumulate(m);
                self.push(Pending::Step(Step { tag: b'B', query, ts: m.ts, target: None }), cx);
            }
            b'D' | b'C' => {
                let (kind, name) = target_msg(m.body)?;
                if m.tag == b'C' {
                    self.session.close(kind, name);
                }
                self.accumulate(m);
                let target = Some((kind, name.into()));
                self.push(Pending::Step(Step { tag: m.tag, query: None, ts: m.ts, target }), cx);
            }
            b'E' => {
                let portal = execute_msg(m.body)?;
                self.accumulate(m);
                let (request_bytes, start) = self.take_request(m);
                let mut tx = PgsqlTx { start, request_bytes, portal: Some(portal.into()), ..PgsqlTx::default() };
                match self.session.portal(portal) {
                    Some(p) => {
                        tx.query.clone_from(&p.query);
                        tx.params = Some(p.params.clone());
                        tx.result_formats.clone_from(&p.result_formats);
                        tx.desc.clone_from(&p.desc);
                        tx.statement = Some(p.statement.clone());
                    }
                    None => tx.params = Some(Vec::new()),
                }
                if tx.query.is_none() {
                    tx.notes.push(NOTE_UNKNOWN_STATEMENT.to_owned());
                }
                // Packetbeat ignores extended queries that start with `SET ` (drivers send them at
                // connection start, e.g. pgjdbc's `SET extra_float_digits = 3`).
                tx.hidden = tx.query.as_deref().is_some_and(|q| q.starts_with("SET "));
                self.push(Pending::Tx(Box::new(tx)), cx);
            }
            b'S' => {
                // Sync belongs to the Execute just before it, when nothing came in between.
                match self.queue.back_mut() {
                    Some(Pending::Tx(tx)) if self.req_bytes == 0 && !self.lost_cycle_open => tx.request_bytes += m.size,
                    _ => self.accumulate(m),
                }
                if self.lost_cycle_open {
                    self.req_bytes = 0;
                    self.req_ts = None;
                }
                self.push(Pending::CycleEnd, cx);
            }
            b'd' | b'c' | b'f' => match self.queue.front_mut() {
                Some(Pending::Tx(tx)) if tx.copy == CopyMode::In => tx.request_bytes += m.size,
                _ => self.accumulate(m),
            },
            b'F' => {
                self.req_bytes = 0;
                self.req_ts = None;
                self.push(Pending::CycleEnd, cx);
            }
            b'H' => self.accumulate(m),
            _ => {}
        }
        Ok(())
    }

    /// A server message.
    ///
    /// # Errors
    /// A body that does not decode (the message is skipped).
    pub fn backend(&mut self, m: &Msg<'_>, cx: &mut ParseCtx<'_>) -> Result<(), PgsqlParseError> {
        if self.discard {
            if m.tag == b'Z' {
                self.ready(cx);
            }
            return Ok(());
        }
        self.resp_bytes += m.size;
        match m.tag {
            b'Z' => self.ready(cx),
            b'1' | b'2' | b'3' => {
                let want = match m.tag {
                    b'1' => b'P',
                    b'2' => b'B',
                    _ => b'C',
                };
                if matches!(self.queue.front(), Some(Pending::Step(s)) if s.tag == want) {
                    self.queue.pop_front();
                }
            }
            b't' => {
                if let Some(Pending::Step(Step { target: Some((b'S', name)), .. })) = self.queue.front() {
                    let name = name.clone();
                    self.session.set_param_types(&name, parameter_description(m.body));
                }
            }
            b'T' => {
                let desc: Arc<[FieldDesc]> = row_description(m.body)?.into();
                self.resp_bytes = m.size;
                self.described(desc);
            }
            b'n' => self.described(Arc::from(Vec::new())),
            b'D' => {
                if let Some(Pending::Tx(tx)) = self.queue.front_mut() {
                    tx.add_row(m.body, &self.cfg);
                }
            }
            b'G' | b'H' | b'W' => {
                if let Some(Pending::Tx(tx)) = self.queue.front_mut() {
                    tx.copy = if m.tag == b'H' { CopyMode::Out } else { CopyMode::In };
                }
            }
            b'd' => {
                if let Some(Pending::Tx(tx)) = self.queue.front_mut() {
                    if tx.copy == CopyMode::Out {
                        tx.num_rows += 1;
                    }
                }
            }
            b'C' | b'I' | b's' => self.complete(m.ts, cx),
            b'E' => self.error(m, cx),
            _ => {}
        }
        if matches!(m.tag, b'1' | b'2' | b'3' | b't' | b'n' | b'Z') {
            self.resp_bytes = 0;
        }
        Ok(())
    }

    /// RowDescription or NoData: answers a Describe (its statement or the Execute of its portal), or
    /// describes the rows of the simple-query statement in progress.
    fn described(&mut self, desc: Arc<[FieldDesc]>) {
        let target = match self.queue.front_mut() {
            Some(Pending::Tx(tx)) => {
                tx.desc = Some(desc);
                return;
            }
            Some(Pending::Step(s)) if s.tag == b'D' => s.target.take(),
            _ => return,
        };
        self.queue.pop_front();
        let Some((kind, name)) = target else { return };
        if kind == b'S' {
            self.session.set_statement_desc(&name, &desc);
        }
        for item in &mut self.queue {
            match item {
                Pending::CycleEnd | Pending::Lost => break,
                Pending::Tx(tx) if tx.desc.is_none() => {
                    let for_portal = kind == b'P' && tx.portal.as_deref() == Some(&*name);
                    let for_statement = kind == b'S' && tx.statement.as_deref() == Some(&*name);
                    if for_portal || for_statement {
                        tx.desc = Some(Arc::clone(&desc));
                        if for_portal {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn publish(&self, tx: PgsqlTx, end: Option<(Timestamp, u64)>, cx: &mut ParseCtx<'_>) {
        if tx.hidden {
            return;
        }
        cx.stats.transactions += 1;
        cx.out.push(tx.into_transaction(end, &self.cfg));
    }

    /// CommandComplete / EmptyQueryResponse / PortalSuspended: the transaction at the front is done.
    fn complete(&mut self, ts: Timestamp, cx: &mut ParseCtx<'_>) {
        while matches!(self.queue.front(), Some(Pending::Step(_))) {
            self.queue.pop_front();
        }
        if let Some(Pending::Tx(_)) = self.queue.front() {
            if let Some(Pending::Tx(tx)) = self.queue.pop_front() {
                self.publish(*tx, Some((ts, self.resp_bytes)), cx);
            }
        } else {
            cx.stats.unmatched_responses += 1;
        }
        self.resp_bytes = 0;
    }

    /// ErrorResponse: the first transaction of the cycle failed (or the step that failed becomes
    /// one); the server skips the rest of the cycle.
    fn error(&mut self, m: &Msg<'_>, cx: &mut ParseCtx<'_>) {
        let err = error_fields(m.body);
        let in_cycle = |p: &Pending| !matches!(p, Pending::CycleEnd | Pending::Lost);
        let tx_at = self.queue.iter().take_while(|p| in_cycle(p)).position(|p| matches!(p, Pending::Tx(_)));
        let failed = match tx_at {
            Some(i) => {
                self.queue.drain(..i);
                match self.queue.pop_front() {
                    Some(Pending::Tx(tx)) => Some(*tx),
                    _ => None,
                }
            }
            None => match self.queue.front() {
                Some(Pending::Step(Step { query: Some(q), ts, .. })) => {
                    let tx = PgsqlTx {
                        start: *ts,
                        query: Some(Arc::clone(q)),
                        request_bytes: self.req_bytes,
                        ..PgsqlTx::default()
                    };
                    self.req_bytes = 0;
                    self.req_ts = None;
                    Some(tx)
                }
                _ => None,
            },
        };
        match failed {
            Some(mut tx) => {
                tx.error = Some(err);
                self.publish(tx, Some((m.ts, self.resp_bytes)), cx);
            }
            None => cx.stats.unmatched_responses += 1,
        }
        while self.queue.front().is_some_and(in_cycle) {
            if let Some(Pending::Tx(_)) = self.queue.pop_front() {
                cx.stats.unmatched_requests += 1;
            }
        }
        self.resp_bytes = 0;
    }

    /// ReadyForQuery: the cycle at the front of the queue is over.
    fn ready(&mut self, cx: &mut ParseCtx<'_>) {
        self.discard = false;
        while let Some(item) = self.queue.pop_front() {
            match item {
                Pending::CycleEnd | Pending::Lost => break,
                Pending::Tx(mut tx) if self.resp_lost => {
                    tx.notes.push(NOTE_RESPONSE_LOSS.to_owned());
                    self.publish(*tx, None, cx);
                }
                Pending::Tx(_) => cx.stats.unmatched_requests += 1,
                Pending::Step(_) => {}
            }
        }
        self.resp_lost = false;
        self.resp_bytes = 0;
    }

    /// Client bytes were lost: whatever they asked is answered before the next ReadyForQuery.
    pub fn client_loss(&mut self) {
        self.req_bytes = 0;
        self.req_ts = None;
        if !self.lost_cycle_open {
            self.queue.push_back(Pending::Lost);
            self.lost_cycle_open = true;
        }
    }

    /// Server bytes were lost: publish the response in progress with Packetbeat's note, then wait
    /// for ReadyForQuery.
    pub fn server_loss(&mut self, ts: Timestamp, cx: &mut ParseCtx<'_>) {
        let started = matches!(self.queue.front(), Some(Pending::Tx(tx)) if tx.desc.is_some() || tx.num_rows > 0 || tx.copy != CopyMode::None);
        if started {
            if let Some(Pending::Tx(mut tx)) = self.queue.pop_front() {
                tx.notes.push(NOTE_RESPONSE_LOSS.to_owned());
                self.publish(*tx, Some((ts, self.resp_bytes)), cx);
            }
        }
        self.resp_lost = true;
        self.discard = true;
        self.resp_bytes = 0;
    }

    /// Drops everything still waiting (idle timeout or end of connection), as Packetbeat does.
    pub fn drop_pending(&mut self, cx: &mut ParseCtx<'_>) {
        for item in self.queue.drain(..) {
            if let Pending::Tx(_) = item {
                cx.stats.unmatched_requests += 1;
            }
        }
        self.req_bytes = 0;
        self.req_ts = None;
        self.resp_bytes = 0;
        self.resp_lost = false;
        self.discard = false;
        self.lost_cycle_open = false;
    }
}
