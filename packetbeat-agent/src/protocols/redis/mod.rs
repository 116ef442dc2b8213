//! Redis (RESP2 and RESP3): Packetbeat 8.x's `redis` protocol, with the same transactions and
//! fields (`method`, `resource`, `query`, `redis.return_value` / `redis.error`, `event.action`,
//! `event.outcome`, `status`), decoding far more of the protocol.
//!
//! * [`parser`]: RESP header tokens and inline commands; pure, bounded, fuzzed;
//! * [`message`]: tokens → one rendered request or reply, incrementally, without buffering payloads;
//! * [`state`]: per-connection state: resynchronisation, FIFO correlation, pub/sub, MONITOR;
//! * [`event`]: a request/reply pair → [`Transaction`](crate::event::Transaction);
//! * [`config`]: the `type: redis` settings with Packetbeat's defaults.
//!
//! Where this differs from Packetbeat (on purpose):
//! * any command is decoded (Packetbeat ignored commands missing from its list, and took their
//!   replies for responses); requests are told from replies by direction, not by the command list;
//! * RESP3 types (`_ # , ( = ! % ~ > |`, streamed strings and aggregates), inline commands, nested
//!   arrays of any depth up to 64; maps render as `{k: v}`, booleans as `true`/`false`;
//! * push messages (RESP3 `>`, RESP2 pub/sub messages on a subscribed connection, MONITOR lines)
//!   are never paired with requests; one `SUBSCRIBE a b` is one transaction with both confirmations;
//! * a gap inside a bulk payload keeps the message (with the packet-loss note); other gaps
//!   resynchronise instead of dropping the stream, and a lost reply stream publishes the requests
//!   that waited, with "Packet loss while capturing the response";
//! * evicted requests (queue limits) make their replies be skipped, not paired with the next request;
//! * rendered text is capped at 64 KiB per message (counted in `oversize_messages`);
//! * `resource` is left out for commands without arguments (Packetbeat wrote an empty string).

pub mod config;
pub mod event;
pub mod message;
pub mod parser;
pub mod state;

#[cfg(test)]
mod tests;

pub use config::RedisConfig;
pub use state::RedisState;
