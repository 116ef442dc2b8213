//! MySQL / MariaDB client/server protocol: Packetbeat 8.x's `mysql` protocol, producing the same
//! transactions and fields, and decoding what Packetbeat skips.
//!
//! * [`parser`]: packet headers, length-encoded values, OK/ERR/EOF, column definitions, handshake
//!   packets and the resync plausibility checks: pure functions over bytes;
//! * [`binary`]: the prepared-statement binary protocol (execute parameters, binary rows);
//! * [`response`]: the packets of one command's response (result sets, multi-results, prepare
//!   responses, LOCAL INFILE);
//! * [`state`]: per-connection framing, connection phase, command queue, prepared statements,
//!   gaps and resynchronisation;
//! * [`event`]: command + response → [`Transaction`](crate::event::Transaction);
//! * [`config`]: the `type: mysql` settings with Packetbeat's defaults.
//!
//! Where this differs from Packetbeat (on purpose):
//! * requests are queued in order instead of the second replacing the first, so pipelined
//!   commands pair correctly; unanswered requests are still dropped without an event (counted);
//! * multi-packet payloads (≥ 16 MiB) are framed and streamed instead of dropping the stream at
//!   10 MiB; `destination.bytes` is the whole response (Packetbeat stops counting near 100 KiB);
//! * result sets are read by column count, so `CLIENT_DEPRECATE_EOF` (no EOF after the columns)
//!   counts rows correctly; `SERVER_MORE_RESULTS_EXISTS` keeps multi-statement and procedure
//!   results in one transaction (rows and affected rows summed, `num_fields` of the first);
//! * prepared statements: parameter types are kept per statement for executes that do not resend
//!   them, unsigned integers, floats, doubles, decimals, dates and times are decoded (Packetbeat
//!   writes `TYPE_FLOAT`, `TYPE_DOUBLE`, `TYPE_TIME` and gives up on unsigned values); dates are
//!   `YYYY-MM-DD HH:MM:SS` rather than Go's `YYYY/M/D H:M:S`; non-UTF-8 blobs are hex literals;
//!   an execute of an unknown statement is published with Packetbeat's query and note (Packetbeat
//!   sets them and then drops the response); a prepare's `num_rows` is 0 and `path` lists only
//!   columns that belong to a table (Packetbeat can write `"."`);
//! * with `send_response`, binary result rows are decoded into `response` too;
//! * the handshake, SSL request (the connection is then ignored), auth switch and compression are
//!   recognised; a gap inside a packet of known length keeps the stream in sync.

pub mod binary;
pub mod config;
pub mod event;
pub mod parser;
pub mod response;
pub mod state;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

pub use config::MysqlConfig;
pub use state::MysqlState;
