//! PostgreSQL (frontend/backend protocol v3): Packetbeat 8.x's `pgsql` protocol, producing the same
//! transactions and fields, plus the extended query protocol in full.
//!
//! The flow layer hands each direction's reassembled bytes to [`PgsqlState`] (one per connection):
//!
//! * [`parser`]: framing and message bodies, pure functions over `&[u8]`;
//! * [`state`]: the per-direction phases (startup, SSL/GSSAPI negotiation, typed messages,
//!   oversize messages, resynchronisation after gaps), gaps, expiry;
//! * [`correlate`]: the ordered queue of what the server owes, giving one transaction per simple
//!   statement or per Execute; [`session`]: prepared statements and portals;
//! * [`event`]: a finished transaction → [`Transaction`](crate::event::Transaction) fields, with
//!   [`values`] (binary values as text) and [`sql`] (statement splitting, `method`);
//! * [`config`]: the `type: pgsql` settings with Packetbeat's defaults.
//!
//! Where this differs from Packetbeat (on purpose):
//! * extended protocol: Packetbeat reads only Parse and makes one transaction per Parse…Sync; here
//!   every Execute is a transaction (pipelines, re-executed prepared statements, named portals),
//!   with Bind parameters (text and binary) in `params`, its own rows, bytes and duration; an
//!   Execute whose statement was never seen is published with the note "The actual query being
//!   used is unknown". Like Packetbeat, extended queries starting with `SET ` are not published;
//! * a simple Query is split on `;` outside literals, quoted identifiers, dollar quotes and comments
//!   (Packetbeat splits on every `;`); `method` is the first word, whatever whitespace follows;
//! * ReadyForQuery realigns request/response pairing, so a miscount or a statement the server
//!   skipped after an error never shifts later transactions;
//! * binary result columns are decoded for the common types in `response` (Packetbeat: empty);
//! * COPY IN/OUT, NoticeResponse, PortalSuspended, NoData and named statements do not break the
//!   stream; COPY OUT rows are counted in `pgsql.num_rows`;
//! * `pgsql.error_code` is a string as in Packetbeat, but the template maps it as `keyword` so that
//!   SQLSTATEs such as `42P01` index (Packetbeat's `fields.yml` says `long`).

pub mod config;
pub mod correlate;
pub mod event;
pub mod parser;
pub mod session;
pub mod sql;
pub mod state;
pub mod values;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::PgsqlConfig;
pub use state::PgsqlState;

use super::ProtocolState;

/// A new per-connection PostgreSQL state.
#[must_use]
pub fn new_state(cfg: Arc<PgsqlConfig>) -> Box<dyn ProtocolState> {
    Box::new(PgsqlState::new(cfg))
}
