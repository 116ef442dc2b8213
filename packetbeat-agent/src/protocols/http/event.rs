//! A request/response pair → [`Transaction`] with Packetbeat 8.x's HTTP fields (`newTransaction` in
//! `packetbeat/protos/http/http.go`, `event.go`): status, notes, `http.*`, `url.*`, `user_agent`,
//! `user.name`, `destination.domain`, `network.forwarded_ip` and the `related.*` additions.
//!
//! Empty values are left out, as Packetbeat's struct marshalling does. Strings built from packet
//! bytes are converted lossily (invalid UTF-8 becomes U+FFFD, as Go's JSON encoder does).

use std::net::IpAddr;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::config::HttpConfig;
use super::decode::decode_body;
use super::doc;
use super::head::HeadInfo;
use super::message::HttpMessage;
use super::url::{encode_values, is_canonical_query, parse_query, parse_target, Values};
use crate::event::{Fields, Status, Transaction};
use crate::protocols::ConnInfo;
use crate::text::{lossy_owned, lossy_string as lossy};

/// `s` as an address. Host names, the common case, are turned away by their bytes: an address is
/// made of hex digits, dots and colons only (the parser's own failed IPv4 and IPv6 attempts cost far
/// more per event).
fn parse_ip(s: &str) -> Option<IpAddr> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'.' || c == b':') {
        return None;
    }
    s.parse().ok()
}

/// User name of a `Basic` authorization value (Packetbeat's `extractBasicAuthUser`).
fn basic_auth_user(auth: &str) -> Option<String> {
    let prefix = auth.get(..6)?;
    if !prefix.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let encoded = auth.get(6..)?;
    let decoded = STANDARD.decode(encoded).or_else(|_| STANDARD_NO_PAD.decode(encoded)).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(lossy(&decoded[..colon]))
}

/// Replaces what follows `uthorization:` up to the end of its line with `*` (Packetbeat's raw
/// redaction, which also catches `Proxy-Authorization`).
fn redact_raw_authorization(head: &mut [u8], from: usize) {
    const PAT: &[u8] = b"uthorization:";
    let mut at = from;
    while let Some(found) = head.get(at..).and_then(|h| h.windows(PAT.len()).position(|w| w == PAT)) {
        let start = at + found;
        let Some(eol) = head.get(start..).and_then(|h| h.windows(2).position(|w| w == b"\r\n")) else {
            return;
        };
        let end = start + eol;
        for b in head.get_mut(start + PAT.len()..end).unwrap_or_default() {
            *b = b'*';
        }
        at = end + 2;
    }
}

/// `(host, port)` from a Host header (Packetbeat 8.x `extractHostHeader`): a valid `:port` suffix is
/// split off and `[v6]` brackets are removed.
fn split_host_header(header: &str) -> (&str, u16) {
    if header.is_empty() || parse_ip(header).is_some() {
        return (header, 0);
    }
    let mut host = header;
    let mut port = 0;
    if let Some(pos) = header.rfind(':') {
        if let Ok(n) = header[pos + 1..].parse::<i64>() {
            if let Ok(p @ 1..=65535) = u16::try_from(n) {
                host = &header[..pos];
                port = p;
            }
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if parse_ip(inner).is_some() {
            host = inner;
        }
    }
    (host, port)
}

fn push_unique(list: &mut Vec<Value>, v: &str) {
    if !v.is_empty() && !list.iter().any(|x| x.as_str() == Some(v)) {
        list.push(Value::String(v.to_owned()));
    }
}

/// The `headers` object: `content-length` always (an integer), `content-type` when present, then the
/// exported headers (redacted as configured; `cookie`/`set-cookie` split with `split_cookie`). The
/// strings are moved out of `info`, which is not used for them afterwards.
fn headers_object(msg: &HttpMessage, info: &mut HeadInfo, cfg: &HttpConfig) -> Value {
    let mut obj = Map::new();
    obj.insert("content-length".into(), Value::from(msg.content_length));
    if !info.content_type.is_empty() {
        obj.insert("content-type".into(), Value::String(std::mem::take(&mut info.content_type)));
    }
    let cookie = if msg.is_request { "cookie" } else { "set-cookie" };
    for (name, value) in std::mem::take(&mut info.headers) {
        if name == "content-length" || name == "content-type" {
            continue;
        }
        let value = if cfg.split_cookie && name == cookie { split_cookies(&value) } else { Value::String(value) };
        obj.insert(name, value);
    }
    Value::Object(obj)
}

/// Packetbeat's `splitCookiesHeader`: `;`-separated `name=value`, names lower-cased, quotes removed.
fn split_cookies(header: &str) -> Value {
    let mut map = Map::new();
    for part in header.split(';') {
        if let Some((name, value)) = part.split_once('=') {
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
            map.insert(name.trim().to_lowercase(), Value::String(value.to_owned()));
        }
    }
    Value::Object(map)
}

/// Applies `redact_headers` and, for requests, `redact_authorization` to the exported headers; returns
/// the raw head to publish when it is published (`send`: `send_request` / `send_response`).
fn redact(msg: &HttpMessage, info: &mut HeadInfo, cfg: &HttpConfig, send: bool) -> Option<Vec<u8>> {
    for (name, value) in &mut info.headers {
        if cfg.redact_headers.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            *value = "REDACTED".to_owned();
        }
    }
    let mut raw = send.then(|| msg.head.clone());
    if msg.is_request && cfg.redact_authorization {
        if let Some(raw) = &mut raw {
            // The headers start after the start line's end.
            let headers_at = raw.windows(2).position(|w| w == b"\r\n").map_or(0, |i| i + 2);
            redact_raw_authorization(raw, headers_at);
        }
        for (name, value) in &mut info.headers {
            if (name == "authorization" || name == "proxy-authorization") && !value.is_empty() {
                *value = "*".to_owned();
            }
        }
    }
    raw
}

fn raw_text(mut text: Vec<u8>, msg: &HttpMessage) -> String {
    if msg.send_body {
        text.extend_from_slice(&msg.body);
    }
    lossy_owned(text)
}

/// Decodes a saved body in place (when configured), noting failures.
fn decode_saved_body(msg: &mut HttpMessage, info: &HeadInfo, cfg: &HttpConfig) {
    if msg.save_body && !msg.body.is_empty() && cfg.decode_body && !info.encodings.is_empty() {
        let (body, note) = decode_body(std::mem::take(&mut msg.body), &info.encodings, cfg.max_message_size);
        msg.body = body;
        msg.notes.extend(note);
    }
}

/// Path and `url.query` of a request: the target's query merged with a saved form body (form keys
/// replace query keys), `hide_keywords` values replaced by `xxxxx`, encoded with sorted keys.
fn path_and_params(msg: &HttpMessage, info: &HeadInfo, cfg: &HttpConfig) -> (Vec<u8>, String) {
    let Some(target) = parse_target(&info.target) else {
        return (Vec::new(), String::new());
    };
    let has_form = msg.content_length > 0 && msg.save_body && info.content_type.contains("urlencoded");
    if !has_form && cfg.hide_keywords.is_empty() && is_canonical_query(target.raw_query.as_bytes()) {
        return (target.path, target.raw_query.to_owned());
    }
    let (query, _) = parse_query(target.raw_query.as_bytes());
    let mut params = hide_secrets(query, cfg);
    if has_form {
        let (form, failed) = parse_query(&msg.body);
        if failed {
            return (target.path, String::new());
        }
        params.extend(hide_secrets(form, cfg));
    }
    (target.path, encode_values(&params))
}

fn hide_secrets(values: Values, cfg: &HttpConfig) -> Values {
    if cfg.hide_keywords.is_empty() {
        return values;
    }
    values
        .into_iter()
        .map(|(key, list)| {
            let lower = String::from_utf8_lossy(&key).to_lowercase();
            if cfg.hide_keywords.contains(&lower) {
                let hidden = vec![b"xxxxx".to_vec(); list.len()];
                (key, hidden)
            } else {
                (key, list)
            }
        })
        .collect()
}

/// A transaction being assembled: the typed parts, HTTP's own fields, the fields merged into the
/// envelope's objects and the `related.*` lists.
#[derive(Default)]
struct Builder {
    tx: Transaction,
    req: Option<doc::Request>,
    resp: Option<doc::Response>,
    /// The request's host is a name (not an address): it becomes `destination.domain` once
    /// [`doc::write`] is done with it.
    host_is_domain: bool,
    fields: Fields,
    related_ip: Vec<Value>,
    related_user: Vec<Value>,
}

/// The `headers` object of a message. Without exported headers (the default configuration) it
/// has at most `content-length` and `content-type`, written as two members without a map built,
/// serialized and dropped per message. With exported headers, whose names come from the wire (and
/// may need escaping), the object is built whole.
fn headers(msg: &HttpMessage, info: &mut HeadInfo, cfg: &HttpConfig) -> doc::Headers {
    if info.headers.iter().any(|(n, _)| n != "content-length" && n != "content-type") {
        return doc::Headers::Object(headers_object(msg, info, cfg));
    }
    doc::Headers::Plain { content_length: msg.content_length, content_type: std::mem::take(&mut info.content_type) }
}

/// The fields every message has: body size (and content, when exported), size, headers.
fn message(msg: &HttpMessage, info: &mut HeadInfo, cfg: &HttpConfig) -> doc::Message {
    let mut body_bytes = msg.content_length;
    let mut body_content = None;
    if msg.send_body && !msg.body.is_empty() {
        body_bytes = msg.body.len() as u64;
        body_content = Some(lossy(&msg.body));
    }
    doc::Message { body_bytes, body_content, bytes: msg.size, headers: headers(msg, info, cfg) }
}

impl Builder {
    /// Sets a field the envelope merges into its own objects (`network.forwarded_ip`), unless empty.
    fn set_str(&mut self, key: &'static str, value: &str) {
        if !value.is_empty() {
            self.fields.insert(key, value);
        }
    }

    /// `http.request.*`, `url.*`, `user_agent`, `user.name`, `destination.domain`, forwarded IP.
    fn request(&mut self, mut req: Box<HttpMessage>, answered: bool, cfg: &HttpConfig, conn: &ConnInfo) {
        if !answered {
            req.notes.push("Unmatched request".to_owned());
        }
        let mut info = std::mem::take(&mut req.info);
        let user = if cfg.redact_authorization {
            None
        } else {
            info.headers.iter().find(|(n, _)| n == "authorization").and_then(|(_, v)| basic_auth_user(v))
        };
        let raw = redact(&req, &mut info, cfg, cfg.send_request);
        decode_saved_body(&mut req, &info, cfg);
        let (path, query) = path_and_params(&req, &info, cfg);
        let path = lossy_owned(path);

        let host_header = std::mem::take(&mut info.host);
        let (host, host_port) = split_host_header(&host_header);
        if parse_ip(host).is_some() {
            push_unique(&mut self.related_ip, host);
        } else {
            self.host_is_domain = !host.is_empty();
        }
        let port = if host_port == 0 { conn.server_port } else { host_port };
        if host_port != 0 && host_port != conn.server_port {
            req.notes.push("Host header port number mismatch".to_owned());
        }
        // The common Host header is the host alone: moved, not copied.
        let host = if host.len() == host_header.len() { host_header } else { host.to_owned() };
        self.tx.ts = req.ts;
        self.tx.start = Some(req.ts);
        self.set_str("network.forwarded_ip", &info.real_ip);
        if parse_ip(&info.real_ip).is_some() {
            push_unique(&mut self.related_ip, &info.real_ip);
        }
        if !info.referer.is_empty() {
            self.tx.related_hosts.push(info.referer.clone());
        }

        let message = message(&req, &mut info, cfg);
        let mut tx_query = String::with_capacity(info.method.len() + 1 + path.len());
        tx_query.push_str(&info.method);
        tx_query.push(' ');
        tx_query.push_str(&path);
        self.tx.query = Some(tx_query);
        if let Some(raw) = raw {
            self.tx.request = Some(raw_text(raw, &req));
        }
        let user = user.filter(|u| !u.is_empty());
        if let Some(user) = &user {
            push_unique(&mut self.related_user, user);
        }
        self.req = Some(doc::Request {
            message,
            method: info.method,
            referrer: info.referer,
            minor_version: info.minor_version,
            host,
            port,
            path,
            query,
            user,
            user_agent: info.user_agent,
        });
        self.tx.request_bytes = Some(req.size);
        self.tx.notes.append(&mut req.notes);
    }

    /// `http.response.*`, `event.end`.
    fn response(&mut self, mut resp: Box<HttpMessage>, cfg: &HttpConfig) {
        if self.tx.start.is_none() {
            resp.notes.push("Unmatched response".to_owned());
            self.tx.ts = resp.ts;
        }
        let mut info = std::mem::take(&mut resp.info);
        let raw = redact(&resp, &mut info, cfg, cfg.send_response);
        decode_saved_body(&mut resp, &info, cfg);
        self.tx.end = Some(resp.ts);
        let phrase = if info.reason.is_ascii() {
            let mut phrase = std::mem::take(&mut info.reason);
            phrase.make_ascii_lowercase();
            phrase
        } else {
            info.reason.to_lowercase()
        };
        let message = message(&resp, &mut info, cfg);
        if let Some(raw) = raw {
            self.tx.response = Some(raw_text(raw, &resp));
        }
        self.resp = Some(doc::Response { message, status_code: resp.status_code, phrase });
        self.tx.response_bytes = Some(resp.size);
        self.tx.notes.append(&mut resp.notes);
    }

    fn finish(mut self) -> Transaction {
        for (key, list) in [("related.ip", self.related_ip), ("related.user", self.related_user)] {
            if !list.is_empty() {
                self.fields.insert(key, Value::Array(list));
            }
        }
        self.tx.members = doc::write(self.req.as_ref(), self.resp.as_ref());
        if let Some(req) = self.req {
            self.tx.method = Some(req.method);
            if self.host_is_domain {
                self.tx.server_domain = Some(req.host);
            }
        }
        self.tx.fields = self.fields;
        self.tx
    }
}

/// Builds the transaction for a request and/or response (at least one is present). Status is
/// `Error` without a response, without a request, or for a status code of 400 or more.
#[must_use]
pub fn build_transaction(
    req: Option<Box<HttpMessage>>,
    resp: Option<Box<HttpMessage>>,
    cfg: &HttpConfig,
    conn: &ConnInfo,
) -> Transaction {
    let failed = req.is_none() || resp.as_ref().is_none_or(|r| r.status_code >= 400);
    let mut b = Builder::default();
    b.tx.kind = "http";
    b.tx.status = if failed { Status::Error } else { Status::Ok };
    if let Some(req) = req {
        b.request(req, resp.is_some(), cfg, conn);
    }
    if let Some(resp) = resp {
        b.response(resp, cfg);
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_split() {
        assert_eq!(split_host_header("www.example.com"), ("www.example.com", 0));
        assert_eq!(split_host_header("example.com:8080"), ("example.com", 8080));
        assert_eq!(split_host_header("example.com:0"), ("example.com:0", 0));
        assert_eq!(split_host_header("[::1]:8080"), ("::1", 8080));
        assert_eq!(split_host_header("[::1]"), ("::1", 0));
        assert_eq!(split_host_header("::1"), ("::1", 0));
        assert_eq!(split_host_header("10.0.0.1:81"), ("10.0.0.1", 81));
        assert_eq!(split_host_header(":80"), ("", 80));
    }

    #[test]
    fn basic_auth() {
        assert_eq!(basic_auth_user("Basic c2ltcGxlc2ltb246cGFzc3dvcmQ=").as_deref(), Some("simplesimon"));
        assert_eq!(basic_auth_user("basic c2ltcGxlc2ltb246cGFzc3dvcmQ").as_deref(), Some("simplesimon"));
        assert_eq!(basic_auth_user("Bearer abc"), None);
        assert_eq!(basic_auth_user("Basic !!!"), None);
        assert_eq!(basic_auth_user("Basic bm9jb2xvbg=="), None);
    }

    #[test]
    fn raw_authorization_redaction() {
        let mut head =
            b"GET / HTTP/1.1\r\nAuthorization: Basic abc\r\nHost: x\r\nProxy-Authorization: x y\r\n\r\n".to_vec();
        redact_raw_authorization(&mut head, 16);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET / HTTP/1.1\r\nAuthorization:**********\r\nHost: x\r\nProxy-Authorization:****\r\n\r\n"
        );
    }

    #[test]
    fn cookies_split() {
        assert_eq!(split_cookies("A=1; b=\"two\"; junk; C = 3"), serde_json::json!({"a": "1", "b": "two", "c": "3"}));
    }
}
