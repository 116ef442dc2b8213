//! Gaps and resynchronisation of one MySQL connection: staying in sync across a gap inside a
//! packet of known length, the plausibility checks at a resync point, and what happens to the
//! waiting commands when the server side is lost (see the [`super`] module doc).

use super::{MysqlState, Phase, NOTE_REQUEST_LOSS, NOTE_RESPONSE_LOSS};
use crate::protocols::mysql::event::build_transaction;
use crate::protocols::mysql::parser::{looks_like_tls, parse_header, plausible_command, plausible_response_start};
use crate::protocols::mysql::response::{ResponseReader, Stage};
use crate::protocols::{Direction, ParseCtx};

impl MysqlState {
    /// At a resync point (offset 0 of a segment): whether parsing may resume here.
    pub(super) fn resync_at(&mut self, dir: Direction, data: &[u8], cx: &mut ParseCtx<'_>) -> bool {
        if looks_like_tls(data) {
            self.phase = Phase::Opaque;
            return false;
        }
        let Some(h) = parse_header(data) else {
            return false;
        };
        let prefix = data.get(4..).unwrap_or_default();
        let fr = &mut self.framers[dir.index()];
        let ok = match dir {
            Direction::ToServer => plausible_command(h, prefix),
            Direction::ToClient => {
                let armed = std::mem::take(&mut fr.armed);
                armed && h.seq == self.last_client_seq.wrapping_add(1) && plausible_response_start(h, prefix)
            }
        };
        if ok {
            fr.resync = false;
        } else if dir == Direction::ToClient && !self.pending.is_empty() {
            // This response cannot be followed: its command will not be answered here.
            self.drop_pending(cx);
        }
        ok
    }

    pub(super) fn drop_pending(&mut self, cx: &mut ParseCtx<'_>) {
        cx.stats.unmatched_requests += self.pending.len() as u64;
        self.pending.clear();
        self.reader = ResponseReader::default();
    }

    /// The server stream is out of sync: publish what the front response has (with the loss note
    /// after a gap), drop the other waiting commands, and wait for the next command.
    pub(super) fn desync_server(&mut self, gap: bool, cx: &mut ParseCtx<'_>) {
        self.framers[Direction::ToClient.index()].lose_sync();
        if let Some(mut cmd) = self.pending.pop_front() {
            if gap || self.reader.started() {
                let mut reader = std::mem::take(&mut self.reader);
                if gap {
                    reader.resp.notes.push(NOTE_RESPONSE_LOSS.to_owned());
                }
                let resp = reader.started().then_some(reader.resp);
                if resp.is_none() {
                    cmd.notes.push(NOTE_RESPONSE_LOSS.to_owned());
                }
                if cmd.publish {
                    cx.stats.transactions += 1;
                    cx.out.push(build_transaction(cmd, resp, &self.cfg));
                }
            } else {
                cx.stats.unmatched_requests += 1;
            }
        }
        self.drop_pending(cx);
    }

    /// A gap of `len` bytes: stay in sync if it lies inside a packet of known length.
    pub(super) fn gap_in_packet(&mut self, dir: Direction, len: usize) -> bool {
        let fr = &mut self.framers[dir.index()];
        let remaining = if fr.skip > 0 {
            Some(fr.skip)
        } else if let (Some(h), Direction::ToClient, Stage::Rows) = (fr.tail_header, dir, self.reader.stage) {
            // The rows packet whose start was held is lost: count it as a row, unless it was the
            // end of the result.
            if matches!(fr.tail_first, Some(0xfe | 0xff)) {
                return false;
            }
            self.reader.resp.num_rows += 1;
            self.reader.resp.bytes += h.total() as u64;
            self.last_server_seq = h.seq;
            h.total().checked_sub(fr.tail)
        } else {
            None
        };
        let Some(remaining) = remaining.filter(|&r| len <= r) else {
            return false;
        };
        fr.skip = remaining - len;
        fr.tail = 0;
        fr.tail_header = None;
        match dir {
            Direction::ToClient => note_once(&mut self.reader.resp.notes, NOTE_RESPONSE_LOSS),
            Direction::ToServer => {
                if let Some(cmd) = self.pending.back_mut().filter(|_| self.client_cmd_open) {
                    note_once(&mut cmd.notes, NOTE_REQUEST_LOSS);
                }
            }
        }
        true
    }
}

pub(super) fn note_once(notes: &mut Vec<String>, note: &str) {
    if !notes.iter().any(|n| n == note) {
        notes.push(note.to_owned());
    }
}
