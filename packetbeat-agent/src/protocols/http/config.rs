//! `packetbeat.protocols` entry of `type: http`, with Packetbeat 8.x defaults
//! (`packetbeat/protos/http/config.go`), and the Go-duration parser the other protocols reuse.
//!
//! Unknown keys are accepted here (the global config layer warns about them). Lists also accept a
//! single scalar (`ports: 80`), as libbeat's config loader does.

use std::time::Duration;

use serde::de::Deserializer;
use serde::Deserialize;

/// Packetbeat's `protos.DefaultTransactionExpiration`.
pub const HTTP_DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Packetbeat's `tcp.TCPMaxDataInStream` (10 MiB), the default `max_message_size`.
pub const HTTP_DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// Settings of the HTTP analyser.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct HttpConfig {
    /// `enabled`: analyse HTTP at all.
    pub enabled: bool,
    /// `ports`: server ports carrying HTTP.
    #[serde(deserialize_with = "one_or_many")]
    pub ports: Vec<u16>,
    /// `send_request`: put the raw request text into `request`.
    pub send_request: bool,
    /// `send_response`: put the raw response text into `response`.
    pub send_response: bool,
    /// `send_headers`: header names (any case) exported under `http.*.headers`.
    #[serde(deserialize_with = "one_or_many")]
    pub send_headers: Vec<String>,
    /// `send_all_headers`: export every header.
    pub send_all_headers: bool,
    /// `redact_headers`: exported headers whose value becomes `"REDACTED"`.
    #[serde(deserialize_with = "one_or_many")]
    pub redact_headers: Vec<String>,
    /// `include_body_for`: content-type substrings whose bodies are captured (both directions).
    #[serde(deserialize_with = "one_or_many")]
    pub include_body_for: Vec<String>,
    /// `include_request_body_for`: as above, requests only.
    #[serde(deserialize_with = "one_or_many")]
    pub include_request_body_for: Vec<String>,
    /// `include_response_body_for`: as above, responses only.
    #[serde(deserialize_with = "one_or_many")]
    pub include_response_body_for: Vec<String>,
    /// `decode_body`: undo gzip/deflate transfer and content encodings of captured bodies.
    pub decode_body: bool,
    /// `hide_keywords`: query/form parameter names whose value becomes `xxxxx`. Compared with the
    /// lower-cased parameter name, so entries must be lower case (as in Packetbeat).
    #[serde(deserialize_with = "one_or_many")]
    pub hide_keywords: Vec<String>,
    /// `redact_authorization`: mask `Authorization`/`Proxy-Authorization` and drop `user.name`.
    pub redact_authorization: bool,
    /// `real_ip_header`: header whose first comma-separated value is `network.forwarded_ip`.
    pub real_ip_header: String,
    /// `split_cookie`: export `cookie`/`set-cookie` as a map.
    pub split_cookie: bool,
    /// `max_message_size`: the most body bytes kept for one message (and decoded).
    pub max_message_size: usize,
    /// `transaction_timeout`: idle time after which pending messages are published.
    #[serde(deserialize_with = "deserialize_duration")]
    pub transaction_timeout: Duration,
    /// `tags`: added to every event (applied by the publisher).
    #[serde(deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// `keep_null`: publish null fields (applied by the publisher).
    pub keep_null: bool,
    /// `index`: destination index override (applied by the output).
    pub index: Option<String>,
    /// `processors`: per-protocol processors (applied by the publisher).
    pub processors: Vec<serde_json::Value>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: vec![80, 8080, 8000, 5000, 8002],
            send_request: false,
            send_response: false,
            send_headers: Vec::new(),
            send_all_headers: false,
            redact_headers: Vec::new(),
            include_body_for: Vec::new(),
            include_request_body_for: Vec::new(),
            include_response_body_for: Vec::new(),
            decode_body: true,
            hide_keywords: Vec::new(),
            redact_authorization: false,
            real_ip_header: String::new(),
            split_cookie: false,
            max_message_size: HTTP_DEFAULT_MAX_MESSAGE_SIZE,
            transaction_timeout: HTTP_DEFAULT_TRANSACTION_TIMEOUT,
            tags: Vec::new(),
            keep_null: false,
            index: None,
            processors: Vec::new(),
        }
    }
}

impl HttpConfig {
    /// Whether headers beyond content-length/content-type are exported at all.
    #[must_use]
    pub fn exports_headers(&self) -> bool {
        self.send_all_headers || !self.send_headers.is_empty()
    }

    /// Whether the header `name` (lower case) is exported under `http.*.headers`.
    #[must_use]
    pub fn exports_header(&self, name: &str) -> bool {
        self.send_all_headers || self.send_headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether a body with this content type is captured (`include_*body_for`; a plain,
    /// case-sensitive substring match, as in Packetbeat).
    #[must_use]
    pub fn captures_body(&self, is_request: bool, content_type: &[u8]) -> bool {
        let specific = if is_request { &self.include_request_body_for } else { &self.include_response_body_for };
        self.include_body_for.iter().chain(specific).any(|want| contains(content_type, want.as_bytes()))
    }
}

/// `needle` occurs in `hay` (an empty needle always does, like Go's `bytes.Contains`).
pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

pub use crate::config::duration::deserialize as deserialize_duration;

/// Parses a non-negative Go duration (see [`crate::config::duration::parse_go_duration`]).
///
/// # Errors
/// A message naming the bad input when it is not a non-negative Go duration.
pub fn parse_go_duration(input: &str) -> Result<Duration, String> {
    crate::config::duration::parse_go_duration(input)?.ok_or_else(|| format!("negative duration {input:?}"))
}

/// A list that may also be written as one scalar.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// Serde adapter: a list, or one scalar as a list of one (libbeat's config loader accepts both).
pub(crate) fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(match Option::<OneOrMany<T>>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(v)) => vec![v],
        Some(OneOrMany::Many(v)) => v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "10", "s", "-1s", "1x", "1.2.3s", "."] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_match_packetbeat() {
        let c: HttpConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, HttpConfig::default());
        assert!(c.enabled && c.decode_body && !c.send_request && !c.send_response);
        assert_eq!(c.ports, vec![80, 8080, 8000, 5000, 8002]);
        assert_eq!(c.max_message_size, 10_485_760);
        assert_eq!(c.transaction_timeout, Duration::from_secs(10));
    }

    #[test]
    fn yaml_fragment_with_unknown_keys() {
        let c: HttpConfig = serde_norway::from_str(
            "type: http\nports: [8080]\ntransaction_timeout: 1s\nhide_keywords: [\"pass\"]\n\
             send_headers: host\nunknown_key: 3\nprocessors: [{drop_fields: {fields: [a]}}]\n",
        )
        .unwrap();
        assert_eq!(c.ports, vec![8080]);
        assert_eq!(c.transaction_timeout, Duration::from_secs(1));
        assert_eq!(c.hide_keywords, vec!["pass"]);
        assert_eq!(c.send_headers, vec!["host"]);
        assert_eq!(c.processors.len(), 1);
        let c: HttpConfig = serde_norway::from_str("ports: 80\ntransaction_timeout: 5").unwrap();
        assert_eq!(c.ports, vec![80]);
        assert_eq!(c.transaction_timeout, Duration::from_secs(5));
    }

    #[test]
    fn body_and_header_selection() {
        let c = HttpConfig {
            include_body_for: vec!["x-www-form-urlencoded".into()],
            include_response_body_for: vec!["text/html".into()],
            send_headers: vec!["Host".into()],
            ..HttpConfig::default()
        };
        assert!(c.captures_body(true, b"application/x-www-form-urlencoded"));
        assert!(!c.captures_body(true, b"text/html"));
        assert!(c.captures_body(false, b"text/html; charset=utf-8"));
        assert!(c.exports_headers() && c.exports_header("host") && !c.exports_header("date"));
    }
}
