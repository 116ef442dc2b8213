//! HTTP/1.x: Packetbeat 8.x's `http` protocol, producing the same transactions and fields.
//!
//! The flow layer hands each direction's reassembled bytes to [`HttpState`] (one per connection),
//! which parses messages as a stream and pairs responses with requests in order (pipelining):
//!
//! * [`parser`]: heads (`httparse`, fixed header array), framing rules, resynchronisation: pure;
//! * [`body`]: Content-Length, chunked (extensions, trailers) and read-until-close bodies, consumed
//!   as they arrive;
//! * [`state`]: the per-connection state machine, gaps, FIN, expiry and correlation;
//! * [`event`] with [`url`] and [`decode`]: a message pair → [`Transaction`](crate::event::Transaction)
//!   fields, including Go's `url.Values.Encode` and gzip/deflate body decoding; [`doc`]: HTTP's own
//!   fields, written as JSON in key order;
//! * [`config`]: the `type: http` settings with Packetbeat's defaults.
//!
//! Where this differs from Packetbeat (on purpose): interim 1xx responses are never transactions
//! (Packetbeat drops them only when no request is waiting); responses to `HEAD` have no body;
//! chunked bodies may carry trailers; after `101 Switching Protocols` or a successful `CONNECT` the
//! connection is a tunnel and is no longer parsed; `Connection: close` is matched without regard to
//! case; a zlib-wrapped `deflate` body is decoded; a forwarded IP that is not an IP is kept in
//! `network.forwarded_ip` but not added to `related.ip`.

pub mod body;
pub mod config;
pub mod decode;
pub mod doc;
pub mod event;
pub mod head;
pub mod message;
pub mod parser;
pub mod state;
pub mod url;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use config::{deserialize_duration, parse_go_duration, HttpConfig};
pub use state::HttpState;

use super::ProtocolState;

/// A new per-connection HTTP state.
#[must_use]
pub fn new_state(cfg: Arc<HttpConfig>) -> Box<dyn ProtocolState> {
    Box::new(HttpState::new(cfg))
}
