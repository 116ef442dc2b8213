//! The parts of a message head the event uses (method, target, host, user agent, content type,
//! codings, exported headers…), read once from the parsed head when the message starts, so the head
//! is parsed once per message.

use super::config::HttpConfig;
use super::parser::{trim, Framing, HttpHead, KnownHeader, StartLine};
use crate::text::lossy_string as lossy;

/// What the event needs from a head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadInfo {
    /// Request method.
    pub method: String,
    /// Request target.
    pub target: String,
    /// Minor version: `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Response reason phrase.
    pub reason: String,
    /// `Content-Type`.
    pub content_type: String,
    /// `Host`.
    pub host: String,
    /// `Referer`.
    pub referer: String,
    /// `User-Agent`.
    pub user_agent: String,
    /// The first address of `real_ip_header`.
    pub real_ip: String,
    /// Codings in the order the sender applied them.
    pub encodings: Vec<String>,
    /// Exported headers: lower-case name, values joined with ", ".
    pub headers: Vec<(String, String)>,
}

/// Packetbeat's `parseCommaSeparatedList`: split on commas, trim spaces, lower-case.
fn coding_list(v: &[u8]) -> Vec<String> {
    v.split(|&b| b == b',').map(|s| lossy(s.trim_ascii_start().trim_ascii_end()).to_lowercase()).collect()
}

/// Reads what the event needs from a parsed head into `info` (empty, where the message keeps it:
/// filled in place rather than moved there), and its framing headers into `framing`.
pub fn head_info(head: &HttpHead<'_, '_>, cfg: &HttpConfig, framing: &mut Framing, info: &mut HeadInfo) {
    info.minor_version = head.minor_version;
    match head.start {
        StartLine::Request { method, target } => {
            info.method = method.to_owned();
            info.target = target.to_owned();
        }
        StartLine::Response { reason, .. } => info.reason = reason.to_owned(),
    }
    let export = cfg.exports_headers();
    for h in head.headers.iter() {
        let value = trim(h.value);
        let known = KnownHeader::of(h.name);
        framing.read(known, h.value);
        match known {
            KnownHeader::ContentType => info.content_type = lossy(value),
            KnownHeader::TransferEncoding => {
                let mut list = coding_list(value);
                if list.last().is_some_and(|c| c == "chunked") {
                    list.pop();
                }
                info.encodings.extend(list);
            }
            KnownHeader::ContentEncoding => {
                let mut list = coding_list(value);
                list.append(&mut info.encodings);
                info.encodings = list;
            }
            // Framing headers: read above.
            KnownHeader::ContentLength | KnownHeader::Connection => {}
            _ if !cfg.real_ip_header.is_empty() && h.name.eq_ignore_ascii_case(&cfg.real_ip_header) => {
                let first = value.split(|&b| b == b',').next().unwrap_or_default();
                info.real_ip = lossy(trim(first));
            }
            KnownHeader::Host => info.host = lossy(value),
            KnownHeader::Referer => info.referer = lossy(value),
            KnownHeader::UserAgent => info.user_agent = lossy(value),
            KnownHeader::Other => {}
        }
        if export && cfg.exports_header(h.name) {
            let name = h.name.to_ascii_lowercase();
            let value = lossy(value);
            match info.headers.iter_mut().find(|(n, _)| *n == name) {
                Some((_, joined)) => {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
                None => info.headers.push((name, value)),
            }
        }
    }
}
