//! HTTP's own fields of a transaction (`http.*`, `url.*`, `user.name`, `user_agent.original`), kept
//! typed while the transaction is built and written as JSON members in one pass, in key order (see
//! [`Members`]). Every name is a constant, so nothing here needs the generic dotted-key
//! [`Fields`](crate::event::Fields): no `Value` per field, no sort, no shape lookup. The host
//! name (`destination.domain`, `related.hosts`) is typed in the transaction; the rarer fields that
//! merge into the envelope's objects (`network.forwarded_ip`, `related.ip`, `related.user`) still
//! go through `Fields`.

use serde_json::Value;

use super::url::write_full_url;
use crate::event::members::{name, Members};

/// A message's `headers` object.
#[derive(Debug)]
pub enum Headers {
    /// The default: `content-length` (always) and `content-type` (when there is one).
    Plain { content_length: u64, content_type: String },
    /// With exported headers, whose names come from the wire: the whole object.
    Object(Value),
}

/// What requests and responses both have under `http.request` / `http.response`.
#[derive(Debug)]
pub struct Message {
    /// `body.bytes` (left out when 0).
    pub body_bytes: u64,
    /// `body.content`, when the body is exported.
    pub body_content: Option<String>,
    /// `bytes`: head and body on the wire (left out when 0).
    pub bytes: u64,
    /// `headers`.
    pub headers: Headers,
}

impl Message {
    /// Writes the members that come before the message's own ones (`method`, `status_code`…).
    fn write(&self, m: &mut Members) {
        m.begin(name!("body"));
        m.put_nonzero(name!("bytes"), self.body_bytes);
        if let Some(content) = &self.body_content {
            m.put_str(name!("content"), content);
        }
        m.end();
        m.put_nonzero(name!("bytes"), self.bytes);
        match &self.headers {
            Headers::Plain { content_length, content_type } => {
                m.begin(name!("headers"));
                m.put_u64(name!("content-length"), *content_length);
                m.put_nonempty(name!("content-type"), content_type);
                m.end();
            }
            Headers::Object(obj) => m.put_value(name!("headers"), obj),
        }
    }
}

/// A request's fields.
#[derive(Debug)]
pub struct Request {
    /// Under `http.request`.
    pub message: Message,
    /// `http.request.method`.
    pub method: String,
    /// `http.request.referrer`.
    pub referrer: String,
    /// `http.version`: `1.<minor>`.
    pub minor_version: u8,
    /// `url.domain`, the host the `Host` header names.
    pub host: String,
    /// The port of `url.port` (written when it is not 80) and `url.full`.
    pub port: u16,
    /// `url.path`.
    pub path: String,
    /// `url.query`.
    pub query: String,
    /// `user.name`.
    pub user: Option<String>,
    /// `user_agent.original`.
    pub user_agent: String,
}

/// A response's fields.
#[derive(Debug)]
pub struct Response {
    /// Under `http.response`.
    pub message: Message,
    /// `http.response.status_code` (left out when 0).
    pub status_code: u16,
    /// `http.response.status_phrase`, lower case.
    pub phrase: String,
}

/// Writes the fields of a request and/or response as members, in key order. Empty values are left
/// out, as Packetbeat's struct marshalling does.
#[must_use]
pub fn write(req: Option<&Request>, resp: Option<&Response>) -> Vec<u8> {
    let mut m = Members::new();
    // Key order: `http.request`, `http.response`, `http.version`, then `url`, `user`, `user_agent`.
    m.begin(name!("http"));
    if let Some(req) = req {
        m.begin(name!("request"));
        req.message.write(&mut m);
        m.put_nonempty(name!("method"), &req.method);
        m.put_nonempty(name!("referrer"), &req.referrer);
        m.end();
    }
    if let Some(resp) = resp {
        m.begin(name!("response"));
        resp.message.write(&mut m);
        m.put_nonzero(name!("status_code"), u64::from(resp.status_code));
        m.put_nonempty(name!("status_phrase"), &resp.phrase);
        m.end();
    }
    if let Some(req) = req {
        match req.minor_version {
            0 => m.put_plain(name!("version"), "1.0"),
            1 => m.put_plain(name!("version"), "1.1"),
            minor => m.put_str(name!("version"), &format!("1.{minor}")),
        }
    }
    m.end();
    if let Some(req) = req {
        url(&mut m, req);
        m.begin(name!("user"));
        if let Some(user) = &req.user {
            m.put_nonempty(name!("name"), user);
        }
        m.end();
        m.begin(name!("user_agent"));
        m.put_nonempty(name!("original"), &req.user_agent);
        m.end();
    }
    m.finish()
}

/// `url.*` (Packetbeat's `newURL`): the port only when it is not 80, `full` only with a host.
fn url(m: &mut Members, req: &Request) {
    m.begin(name!("url"));
    m.put_nonempty(name!("domain"), &req.host);
    if let Some(dot) = req.path.rfind('.') {
        m.put_nonempty(name!("extension"), req.path.get(dot + 1..).unwrap_or_default());
    }
    if !req.host.is_empty() && req.port != 0 {
        m.put_string_with(name!("full"), |out| {
            write_full_url(out, &req.host, req.port, req.path.as_bytes(), &req.query)
        });
    }
    m.put_nonempty(name!("path"), &req.path);
    if req.port != 80 {
        m.put_u64(name!("port"), u64::from(req.port));
    }
    m.put_nonempty(name!("query"), &req.query);
    m.put_plain(name!("scheme"), "http");
    m.end();
}
