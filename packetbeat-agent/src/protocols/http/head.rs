//! The parts of a message head the event uses (method, target, host, user agent, content type,
//! codings, exported headers…), read once from the parsed head when the message starts, so the head
//! is parsed once per message.

use super::config::HttpConfig;
use super::parser::{trim, HttpHead, StartLine};
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
    /// Byte offset of the first header line (after the start line).
    pub header_offset: usize,
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

/// Reads what the event needs from a parsed head (`raw` is the head's bytes).
#[must_use]
pub fn head_info(head: &HttpHead<'_, '_>, raw: &[u8], cfg: &HttpConfig) -> HeadInfo {
    let mut info = HeadInfo { minor_version: head.minor_version, ..HeadInfo::default() };
    match head.start {
        StartLine::Request { method, target } => {
            info.method = method.to_owned();
            info.target = target.to_owned();
        }
        StartLine::Response { reason, .. } => info.reason = reason.to_owned(),
    }
    info.header_offset = raw.windows(2).position(|w| w == b"\r\n").map_or(0, |i| i + 2);
    let export = cfg.exports_headers();
    for h in head.headers.iter() {
        let value = trim(h.value);
        let is = |n: &str| h.name.eq_ignore_ascii_case(n);
        if is("content-type") {
            info.content_type = lossy(value);
        } else if is("transfer-encoding") {
            let mut list = coding_list(value);
            if list.last().is_some_and(|c| c == "chunked") {
                list.pop();
            }
            info.encodings.extend(list);
        } else if is("content-encoding") {
            let mut list = coding_list(value);
            list.append(&mut info.encodings);
            info.encodings = list;
        } else if is("content-length") || is("connection") {
            // Framing headers: the parser has read them already.
        } else if !cfg.real_ip_header.is_empty() && h.name.eq_ignore_ascii_case(&cfg.real_ip_header) {
            let first = value.split(|&b| b == b',').next().unwrap_or_default();
            info.real_ip = lossy(trim(first));
        } else if is("host") {
            info.host = lossy(value);
        } else if is("referer") {
            info.referer = lossy(value);
        } else if is("user-agent") {
            info.user_agent = lossy(value);
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
    info
}
