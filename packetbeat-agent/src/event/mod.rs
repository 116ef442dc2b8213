//! Transactions and their Packetbeat 8.x ECS documents.
//!
//! A protocol produces a [`Transaction`]: the fields every protocol shares, typed, plus its own
//! fields as dotted keys, or (HTTP) already written as JSON members in key order ([`members`]).
//! [`envelope`] turns it into the JSON document Packetbeat would publish (`event.*`, `network.*`
//! with the community id, `source`/`destination`/`client`/`server`, `related.*`, `agent.*`).

pub mod community_id;
pub mod conn_cache;
pub mod envelope;
pub mod fields;
pub mod json;
pub mod members;
pub mod shape;

pub use fields::Fields;

use crate::time::Timestamp;

/// `status` of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Status {
    /// `"OK"`.
    #[default]
    Ok,
    /// `"Error"`.
    Error,
}

impl Status {
    /// The string Packetbeat writes.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Error => "Error",
        }
    }
}

/// One request/response pair (either side may be missing), ready to become an event.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Transaction {
    /// `type`, `network.protocol` and `event.dataset`: `"http"`, `"mysql"`, `"pgsql"`, `"redis"`.
    pub kind: &'static str,
    /// `@timestamp`: the request time, or the response time when there is no request.
    pub ts: Timestamp,
    /// `event.start`: time of the request's first byte, when there is a request.
    pub start: Option<Timestamp>,
    /// `event.end`: time of the response's last byte, when there is a response.
    pub end: Option<Timestamp>,
    /// `status`.
    pub status: Status,
    /// `source.bytes` / `client.bytes`: request size at the application layer.
    pub request_bytes: Option<u64>,
    /// `destination.bytes` / `server.bytes`: response size at the application layer.
    pub response_bytes: Option<u64>,
    /// `method`.
    pub method: Option<String>,
    /// `query`.
    pub query: Option<String>,
    /// `error.message`: one note is written as a string, several as an array.
    pub notes: Vec<String>,
    /// `request`: raw request text (with `send_request`).
    pub request: Option<String>,
    /// `response`: raw response text (with `send_response`).
    pub response: Option<String>,
    /// Protocol fields as dotted keys (`"http.response.status_code"`, `"url.full"`,
    /// `"destination.domain"`…), expanded into nested objects by the envelope. A value under
    /// `"related.ip"`, `"related.hosts"` or `"related.user"` must be an array and is merged,
    /// de-duplicated, with what the envelope computes. A `"destination.domain"` here must be a
    /// string, and [`Self::server_domain`], when set, is used instead.
    pub fields: Fields,
    /// `destination.domain` and `server.domain`, also the first of `related.hosts`: the host name
    /// a request named (HTTP's `Host`). Typed rather than in [`Self::fields`] because nearly every
    /// HTTP event has it, and as a dotted field it was the one thing that still sent those events
    /// through the generic path (a `Value` per field, the sort, the shape lookup, `related.*`
    /// merged from `Value` arrays). Never empty when set.
    pub server_domain: Option<String>,
    /// More `related.hosts` after [`Self::server_domain`] (HTTP's `Referer`), none empty. The
    /// envelope leaves out repeats and merges any `related.hosts` in [`Self::fields`] after these.
    pub related_hosts: Vec<String>,
    /// Protocol fields already written as JSON members (see [`members::Members`]), each preceded
    /// by a comma, under names the envelope does not write. A protocol that writes its fields so
    /// keeps only names under the envelope's (`network.forwarded_ip`, `related.*`…) in
    /// [`Self::fields`]: the two are not merged or ordered together.
    pub members: Vec<u8>,
}

impl Transaction {
    /// Gives the buffers of a published transaction back to this thread's pools, for the next
    /// transaction built on it (see [`Fields::recycle`], [`members::recycle`]).
    pub fn recycle(&mut self) {
        self.fields.recycle();
        members::recycle(std::mem::take(&mut self.members));
    }
}
