//! Test-only: the flow layer reduced to what a protocol sees, shared by the protocols' stream
//! tests. Bytes are fed per direction and the unconsumed tail is presented again with the next
//! bytes, as `flow::stream` does; gaps drop that tail, as the flow layer does.

use super::{ConnInfo, Direction, ParseCtx, ProtoStats, ProtocolState};
use crate::event::Transaction;
use crate::time::Timestamp;

/// One connection's protocol state driven like the flow layer drives it.
pub(crate) struct StreamHarness<S> {
    pub(crate) state: S,
    pub(crate) conn: ConnInfo,
    pub(crate) out: Vec<Transaction>,
    pub(crate) stats: ProtoStats,
    pub(crate) pending: [Vec<u8>; 2],
    pub(crate) ts: Timestamp,
    /// The most bytes the protocol ever left unconsumed in one direction.
    pub(crate) max_buffered: usize,
}

impl<S: ProtocolState> StreamHarness<S> {
    /// `state` on `conn`, at 1_700_000_000 s.
    pub(crate) fn with(state: S, conn: ConnInfo) -> Self {
        Self {
            state,
            conn,
            out: Vec::new(),
            stats: ProtoStats::default(),
            pending: [Vec::new(), Vec::new()],
            ts: Timestamp::from_parts(1_700_000_000, 0),
            max_buffered: 0,
        }
    }

    /// Appends `bytes` to direction `dir` and lets the protocol consume what it can.
    pub(crate) fn feed(&mut self, dir: Direction, bytes: &[u8]) -> &mut Self {
        let buf = &mut self.pending[dir.index()];
        buf.extend_from_slice(bytes);
        let mut cx = ParseCtx { ts: self.ts, conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        let used = self.state.parse(dir, buf, &mut cx);
        assert!(used <= buf.len());
        buf.drain(..used);
        self.max_buffered = self.max_buffered.max(buf.len());
        self
    }

    /// `len` bytes of `dir` are lost; the unconsumed tail is dropped.
    pub(crate) fn gap(&mut self, dir: Direction, len: u32) -> &mut Self {
        self.pending[dir.index()].clear();
        let mut cx = ParseCtx { ts: self.ts, conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        self.state.gap(dir, len, &mut cx);
        self
    }

    /// The sender of `dir` closed its side.
    pub(crate) fn fin(&mut self, dir: Direction) -> &mut Self {
        let mut cx = ParseCtx { ts: self.ts, conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        self.state.fin(dir, &mut cx);
        self
    }

    /// A timer tick at the current time.
    pub(crate) fn expire(&mut self) -> &mut Self {
        let mut cx = ParseCtx { ts: self.ts, conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        self.state.expire(&mut cx);
        self
    }

    /// The connection is gone.
    pub(crate) fn close(&mut self) -> &mut Self {
        let mut cx = ParseCtx { ts: self.ts, conn: &self.conn, out: &mut self.out, stats: &mut self.stats };
        self.state.close(&mut cx);
        self
    }

    /// The transactions published so far, taken.
    pub(crate) fn take(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut self.out)
    }
}
