//! Application protocols: the contract between the flow layer and each protocol, and the registry.
//!
//! The flow layer owns reassembly and hands each protocol *contiguous, in-order* stream bytes per
//! direction. A protocol is a streaming state machine: it consumes what it can, reports what it
//! consumed, and the flow layer presents the unconsumed tail again with more bytes appended. Protocols
//! pair requests with responses and push finished [`Transaction`]s into the context's output vector.
//! Adding a protocol means one folder here and one line in [`registry`].

pub mod http;
pub mod mysql;
pub mod pgsql;
pub mod redis;
pub mod registry;
#[cfg(test)]
pub(crate) mod testing;

use std::net::IpAddr;

use crate::event::Transaction;
use crate::time::Timestamp;

/// Which way bytes travel, relative to the connection's client and server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the side that sends requests) to the server.
    ToServer = 0,
    /// From the server to the client.
    ToClient = 1,
}

impl Direction {
    /// 0 for [`Direction::ToServer`], 1 for [`Direction::ToClient`].
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }
    /// The other direction.
    #[must_use]
    pub const fn reverse(self) -> Self {
        match self {
            Self::ToServer => Self::ToClient,
            Self::ToClient => Self::ToServer,
        }
    }
}

/// The connection's endpoints, fixed when the flow is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// Client address.
    pub client_ip: IpAddr,
    /// Client port.
    pub client_port: u16,
    /// Server address.
    pub server_ip: IpAddr,
    /// Server port (the configured one).
    pub server_port: u16,
}

/// Per-protocol counters, owned by one worker (no atomics on the hot path); folded into the global
/// metrics at every tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtoStats {
    /// Messages that could not be parsed (the direction was resynchronised or abandoned).
    pub parse_errors: u64,
    /// Requests that expired or ended without a response.
    pub unmatched_requests: u64,
    /// Responses without a request.
    pub unmatched_responses: u64,
    /// Transactions published.
    pub transactions: u64,
    /// Gaps reported to the protocol.
    pub gaps: u64,
    /// Messages larger than `max_message_size` (truncated).
    pub oversize_messages: u64,
    /// Transactions dropped because a per-connection queue was full.
    pub queue_full: u64,
}

/// What every protocol call gets: packet time, the connection and where to put transactions.
pub struct ParseCtx<'a> {
    /// Time of the packet being processed (or of the timer tick).
    pub ts: Timestamp,
    /// The connection.
    pub conn: &'a ConnInfo,
    /// Finished transactions, in publish order.
    pub out: &'a mut Vec<Transaction>,
    /// This worker's counters for the protocol.
    pub stats: &'a mut ProtoStats,
}

/// The per-connection state of one protocol.
pub trait ProtocolState: Send {
    /// Feeds contiguous in-order stream bytes of direction `dir`. Returns how many leading bytes
    /// were consumed; the rest is presented again, with newer bytes appended, on the next call.
    /// Must consume everything it can (e.g. body bytes it skips), so the flow layer buffers only
    /// incomplete message heads.
    fn parse(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> usize;

    /// `len` bytes of direction `dir` were lost (capture loss or the stream cap). `len == 0` means an
    /// unknown amount: the stream was picked up mid-way (no SYN seen) and the parser must wait for
    /// the next message boundary.
    fn gap(&mut self, dir: Direction, len: u32, cx: &mut ParseCtx<'_>);

    /// The sender of direction `dir` closed its side (FIN or RST).
    fn fin(&mut self, dir: Direction, cx: &mut ParseCtx<'_>);

    /// Timer tick at `cx.ts`: publish or drop transactions whose timeout passed.
    fn expire(&mut self, cx: &mut ParseCtx<'_>);

    /// The connection is gone (closed, idle-expired, or end of capture): flush everything pending as
    /// the protocol's timeout would.
    fn close(&mut self, cx: &mut ParseCtx<'_>);
}
