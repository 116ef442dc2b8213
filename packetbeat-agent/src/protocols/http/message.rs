//! One HTTP message as the connection state keeps it between its head and its transaction: the raw
//! head (copied once, when it is published), the captured body (bounded by `max_message_size`) and the counters Packetbeat
//! reports, and what the event needs from the head ([`HeadInfo`]), read while the head is parsed.

use super::config::{contains, HttpConfig};
use super::head::{head_info, HeadInfo};
use super::parser::{Framing, HttpHead, StartLine};
use crate::time::Timestamp;

/// A message whose head has been parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpMessage {
    /// Time of the packet carrying its first byte.
    pub ts: Timestamp,
    /// Request (`true`) or response.
    pub is_request: bool,
    /// Response status code (0 for requests).
    pub status_code: u16,
    /// The request method is `HEAD` (its response has no body).
    pub is_head_request: bool,
    /// The request method is `CONNECT` (a 2xx answer turns the connection into a tunnel).
    pub is_connect_request: bool,
    /// The head exactly as received, kept only when it is published (`send_request`,
    /// `send_response`); empty otherwise.
    pub head: Vec<u8>,
    /// What the event needs from the head, read when it was parsed.
    pub info: HeadInfo,
    /// Captured body bytes (at most `max_message_size`).
    pub body: Vec<u8>,
    /// The body is exported (`include_*body_for` matched the content type).
    pub send_body: bool,
    /// The body is kept: exported, or a form whose parameters go into `url.query`.
    pub save_body: bool,
    /// Packetbeat's `contentLength`: the header value, plus the chunk sizes of a chunked body or the
    /// bytes of a read-until-close body.
    pub content_length: u64,
    /// Bytes of the message seen on the wire (head and body, lost bytes excluded).
    pub size: u64,
    /// Notes for `error.message`.
    pub notes: Vec<String>,
    /// A gap hit the body (the note is added once).
    pub packet_loss: bool,
    /// Body bytes were not kept because of `max_message_size`.
    pub truncated: bool,
}

impl HttpMessage {
    /// Starts a message from its parsed head; also returns what its headers say about its body. The
    /// message is boxed from the start: it travels (pending queue, body phase, transaction) as a
    /// pointer rather than as a few hundred bytes copied at every step.
    #[must_use]
    pub fn from_head(head: &HttpHead<'_, '_>, raw: &[u8], ts: Timestamp, cfg: &HttpConfig) -> (Box<Self>, Framing) {
        let is_request = head.is_request();
        let (status_code, method) = match head.start {
            StartLine::Request { method, .. } => (0, method),
            StartLine::Response { code, .. } => (code, ""),
        };
        let raw = raw.get(..head.len).unwrap_or(raw);
        let keep_raw = if is_request { cfg.send_request } else { cfg.send_response };
        let mut msg = Box::new(Self {
            ts,
            is_request,
            status_code,
            is_head_request: method == "HEAD",
            is_connect_request: method == "CONNECT",
            head: if keep_raw { raw.to_vec() } else { Vec::new() },
            info: HeadInfo::default(),
            body: Vec::new(),
            send_body: false,
            save_body: false,
            content_length: 0,
            size: head.len as u64,
            notes: Vec::new(),
            packet_loss: false,
            truncated: false,
        });
        let mut framing = Framing::default();
        head_info(head, cfg, &mut framing, &mut msg.info);
        let content_type = msg.info.content_type.as_bytes();
        let content_length = framing.content_length.unwrap_or(0);
        let send_body = cfg.captures_body(is_request, content_type);
        msg.save_body = send_body || (content_length > 0 && contains(content_type, b"urlencoded"));
        msg.send_body = send_body;
        msg.content_length = content_length;
        (msg, framing)
    }

    /// Keeps body bytes when the body is saved, up to `max_size` in all.
    pub fn capture(&mut self, data: &[u8], max_size: usize) {
        if !self.save_body {
            return;
        }
        let room = max_size.saturating_sub(self.body.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.body.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
    }

    /// Notes lost bytes in the body, once per message, with Packetbeat's wording.
    pub fn note_packet_loss(&mut self) {
        if !self.packet_loss {
            self.packet_loss = true;
            let which = if self.is_request { "request" } else { "response" };
            self.notes.push(format!("Packet loss while capturing the {which}"));
        }
    }

    /// A 1xx answer other than `101 Switching Protocols`: an interim response, never a transaction.
    #[must_use]
    pub fn is_interim(&self) -> bool {
        !self.is_request && (100..200).contains(&self.status_code) && self.status_code != 101
    }
}
