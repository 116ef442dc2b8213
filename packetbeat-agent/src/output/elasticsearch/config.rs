//! `output.elasticsearch.*`: libbeat's keys and defaults, plus our `spool.*` and `idempotent`.
//!
//! [`ElasticsearchConfig::validate`] checks values without any I/O (files named by `ssl.*` are read
//! when the output opens). Hosts are parsed once into [`HostUrl`]s here so every later step has a
//! scheme, host, port and path.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::{duration, ConfigError};

/// `output.elasticsearch`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ElasticsearchConfig {
    /// `enabled`.
    pub enabled: bool,
    /// `hosts`: `host[:port]` or URLs; several are used round-robin, failing over on errors.
    pub hosts: Vec<String>,
    /// `protocol`: scheme for hosts written without one (`http` or `https`).
    pub protocol: Option<String>,
    /// `path`: URL prefix of every request (a proxy mount point).
    pub path: String,
    /// `username` (basic auth, with `password`).
    pub username: Option<String>,
    /// `password`.
    pub password: Option<String>,
    /// `api_key`: `id:key`, sent as `Authorization: ApiKey base64(id:key)`.
    pub api_key: Option<String>,
    /// `headers`: added to every request.
    pub headers: BTreeMap<String, String>,
    /// `compression_level`: gzip level of request bodies, 0 (off) to 9. libbeat 8 default: 1.
    pub compression_level: u32,
    /// `bulk_max_size`: events per bulk request.
    pub bulk_max_size: usize,
    /// `worker`: bulk requests in flight per host.
    pub worker: usize,
    /// `timeout`: of one HTTP request.
    #[serde(deserialize_with = "duration::deserialize")]
    pub timeout: Duration,
    /// `backoff.*`.
    pub backoff: BackoffConfig,
    /// `index`: the data stream (default `packetbeat-<version>`); `%{[agent.version]}` is replaced.
    pub index: Option<String>,
    /// `pipeline`: ingest pipeline for every event.
    pub pipeline: Option<String>,
    /// `ssl.*`.
    pub ssl: SslConfig,
    /// `non_indexable_policy`: what happens to events the engine rejects for good.
    pub non_indexable_policy: NonIndexablePolicy,
    /// Ours: the disk spool (at-least-once delivery while the engine is down or slow).
    pub spool: SpoolConfig,
    /// Ours: give every event a unique `_id` when it is queued, so a retry after a lost response
    /// is answered 409 (counted as duplicate) instead of indexing the event twice.
    pub idempotent: bool,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            hosts: vec!["localhost:9200".into()],
            protocol: None,
            path: String::new(),
            username: None,
            password: None,
            api_key: None,
            headers: BTreeMap::new(),
            compression_level: 1,
            bulk_max_size: 1600,
            worker: 1,
            timeout: Duration::from_secs(90),
            backoff: BackoffConfig::default(),
            index: None,
            pipeline: None,
            ssl: SslConfig::default(),
            non_indexable_policy: NonIndexablePolicy::default(),
            spool: SpoolConfig::default(),
            idempotent: true,
        }
    }
}

/// `backoff.*`: waits between retries double from `init` up to `max`, with jitter.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct BackoffConfig {
    /// `init`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub init: Duration,
    /// `max`.
    #[serde(deserialize_with = "duration::deserialize")]
    pub max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self { init: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

/// `ssl.verification_mode`.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMode {
    /// Chain and host name (libbeat's `full`; `strict` is accepted as the same).
    #[default]
    #[serde(alias = "strict")]
    Full,
    /// Chain only, any host name.
    Certificate,
    /// Nothing is verified (testing only).
    None,
}

/// `ssl.*`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SslConfig {
    /// `enabled`: TLS for `https` hosts (a host's scheme decides; this only switches it off).
    pub enabled: Option<bool>,
    /// `certificate_authorities`: PEM files (or inline PEM) trusted instead of the system roots.
    pub certificate_authorities: Vec<String>,
    /// `verification_mode`.
    pub verification_mode: VerificationMode,
    /// `certificate`: client certificate (PEM file).
    pub certificate: Option<String>,
    /// `key`: client key (PEM file).
    pub key: Option<String>,
}

/// `non_indexable_policy`: libbeat's `drop` (the default, counted and logged) or
/// `dead_letter_index.index`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NonIndexablePolicy {
    /// `drop` (accepted; it is what happens without a dead-letter index).
    pub drop: Option<serde_norway::Value>,
    /// `dead_letter_index`.
    pub dead_letter_index: Option<DeadLetterIndex>,
}

/// `non_indexable_policy.dead_letter_index`.
#[derive(Clone, Debug, Deserialize)]
pub struct DeadLetterIndex {
    /// `index`: where rejected events go, wrapped as libbeat does (`message` holds the event).
    pub index: String,
}

/// Which events a full spool gives up.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DropPolicy {
    /// Delete the oldest segment (keep the recent past).
    #[default]
    Oldest,
    /// Refuse new events.
    Newest,
}

/// Ours, `output.elasticsearch.spool.*`: a segment queue on disk between the pipeline and the bulk
/// sender. We chose our own keys over libbeat's `queue.disk.*` because libbeat's disk queue sits
/// before every output and has other semantics (its own ack and format); this one belongs to the
/// Elasticsearch output only.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct SpoolConfig {
    /// `enabled`: off means an in-memory queue that blocks the pipeline when full.
    pub enabled: bool,
    /// `path`: directory of the segment files.
    pub path: String,
    /// `max_bytes`: cap on the files; beyond it `drop` decides.
    pub max_bytes: u64,
    /// `segment_bytes`: a segment is closed past this size.
    pub segment_bytes: u64,
    /// `drop`: `oldest` or `newest`.
    pub drop: DropPolicy,
    /// `shutdown_timeout`: how long closing waits for the spool to drain; the rest is sent at the
    /// next start.
    #[serde(deserialize_with = "duration::deserialize")]
    pub shutdown_timeout: Duration,
    /// `memory_events`: capacity of the in-memory queue when the spool is off.
    pub memory_events: usize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "./data/spool/elasticsearch".into(),
            max_bytes: 1 << 30,
            segment_bytes: 8 << 20,
            drop: DropPolicy::Oldest,
            shutdown_timeout: Duration::from_secs(60),
            memory_events: 16_384,
        }
    }
}

/// One parsed `hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port (9200 when not written).
    pub port: u16,
    /// Path prefix without a trailing `/` (may be empty).
    pub path: String,
}

impl HostUrl {
    /// `scheme://host:port/path` (no trailing slash).
    #[must_use]
    pub fn base(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{host}:{}{}", self.scheme, self.port, self.path)
    }
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: format!("output.elasticsearch.{key}"), message: message.into() }
}

impl ElasticsearchConfig {
    /// Parses `hosts` with `protocol` and `path`.
    ///
    /// # Errors
    /// A host that is not `host[:port]` or an `http(s)://` URL.
    pub fn host_urls(&self) -> Result<Vec<HostUrl>, ConfigError> {
        self.hosts.iter().map(|h| self.parse_host(h)).collect()
    }

    fn parse_host(&self, raw: &str) -> Result<HostUrl, ConfigError> {
        let (scheme, rest) = match raw.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => (self.protocol.clone().unwrap_or_else(|| "http".into()).to_ascii_lowercase(), raw),
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad("hosts", format!("{raw:?}: scheme must be http or https")));
        }
        let (authority, url_path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("hosts", format!("{raw:?}: unclosed `[`")))?;
            (h.to_owned(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (authority.to_owned(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("hosts", format!("{raw:?}: no host name")));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("hosts", format!("{raw:?}: bad port {p:?}")))?,
            None => 9200,
        };
        let mut path = String::new();
        for part in [self.path.as_str(), url_path] {
            let part = part.trim_matches('/');
            if !part.is_empty() {
                path.push('/');
                path.push_str(part);
            }
        }
        Ok(HostUrl { scheme, host, port, path })
    }

    /// The data stream name, with `%{[agent.version]}` replaced.
    #[must_use]
    pub fn index_name(&self, version: &str) -> String {
        self.index
            .as_deref()
            .map_or_else(|| format!("packetbeat-{version}"), |i| i.replace("%{[agent.version]}", version))
    }

    /// Checks the values serde cannot, without I/O.
    ///
    /// # Errors
    /// The first bad value, named by its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hosts.is_empty() {
            return Err(bad("hosts", "needs at least one host"));
        }
        self.host_urls()?;
        if let Some(p) = &self.protocol {
            if p != "http" && p != "https" {
                return Err(bad("protocol", format!("{p:?} is not http or https")));
            }
        }
        if self.compression_level > 9 {
            return Err(bad("compression_level", format!("{} is outside 0..=9", self.compression_level)));
        }
        if self.bulk_max_size == 0 {
            return Err(bad("bulk_max_size", "must be at least 1"));
        }
        if !(1..=64).contains(&self.worker) {
            return Err(bad("worker", format!("{} is outside 1..=64", self.worker)));
        }
        if self.timeout.is_zero() {
            return Err(bad("timeout", "must be positive"));
        }
        if self.backoff.init.is_zero() || self.backoff.max < self.backoff.init {
            return Err(bad("backoff", "needs 0 < init <= max"));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(bad("username", "username and password go together"));
        }
        if self.api_key.is_some() && self.username.is_some() {
            return Err(bad("api_key", "use either api_key or username/password, not both"));
        }
        if self.api_key.as_deref().is_some_and(|k| !k.contains(':')) {
            return Err(bad("api_key", "expected `id:api_key`"));
        }
        if self.ssl.certificate.is_some() != self.ssl.key.is_some() {
            return Err(bad("ssl.certificate", "ssl.certificate and ssl.key go together"));
        }
        let index = self.index_name("0.0.0");
        if index.contains("%{") {
            return Err(bad("index", "only %{[agent.version]} can be used in the index name"));
        }
        if index.is_empty() || index != index.to_lowercase() || index.starts_with(['-', '_', '+']) {
            return Err(bad("index", format!("{index:?} is not a valid lower-case index name")));
        }
        if let Some(d) = &self.non_indexable_policy.dead_letter_index {
            if d.index.is_empty() || d.index != d.index.to_lowercase() {
                return Err(bad("non_indexable_policy.dead_letter_index.index", "needs a lower-case index name"));
            }
        }
        let s = &self.spool;
        if s.enabled && (s.path.is_empty() || s.segment_bytes < 4096 || s.max_bytes < s.segment_bytes) {
            return Err(bad("spool", "needs a path and 4096 <= segment_bytes <= max_bytes"));
        }
        if !s.enabled && s.memory_events == 0 {
            return Err(bad("spool.memory_events", "must be at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        let cfg = ElasticsearchConfig { path: "/es/".into(), protocol: Some("https".into()), ..Default::default() };
        let h = cfg.parse_host("example.com").unwrap();
        assert_eq!(h.base(), "https://example.com:9200/es");
        let h = cfg.parse_host("http://[::1]:9201/x").unwrap();
        assert_eq!(h.base(), "http://[::1]:9201/es/x");
        assert!(cfg.parse_host("ftp://x").is_err());
        assert!(cfg.parse_host("x:notaport").is_err());
    }

    #[test]
    fn defaults_validate_and_name_the_data_stream() {
        let cfg = ElasticsearchConfig::default();
        cfg.validate().unwrap();
        assert_eq!(cfg.index_name("8.1.0"), "packetbeat-8.1.0");
        let cfg = ElasticsearchConfig { index: Some("pb-%{[agent.version]}".into()), ..Default::default() };
        assert_eq!(cfg.index_name("1.2.3"), "pb-1.2.3");
        let cfg = ElasticsearchConfig { index: Some("pb-%{+yyyy}".into()), ..Default::default() };
        assert!(cfg.validate().is_err());
        let cfg = ElasticsearchConfig { compression_level: 10, ..Default::default() };
        assert!(cfg.validate().unwrap_err().to_string().contains("compression_level"));
    }
}
