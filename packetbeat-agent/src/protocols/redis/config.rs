//! `packetbeat.protocols` entry of `type: redis`, with Packetbeat 8.x's option names and defaults
//! (`packetbeat/protos/redis/config.go`, `messagequeue.go`).

use std::time::Duration;

use serde::Deserialize;

use crate::protocols::http::config::one_or_many;
use crate::protocols::http::deserialize_duration;

/// Packetbeat's `protos.DefaultTransactionExpiration`.
pub const REDIS_DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Packetbeat's default `queue_max_bytes` (1 MiB).
pub const REDIS_DEFAULT_QUEUE_MAX_BYTES: u64 = 1024 * 1024;
/// Packetbeat's default `queue_max_messages`.
pub const REDIS_DEFAULT_QUEUE_MAX_MESSAGES: u64 = 20_000;

/// Settings of the Redis analyser.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct RedisConfig {
    /// `enabled`: analyse Redis at all.
    pub enabled: bool,
    /// `ports`: server ports carrying Redis.
    #[serde(deserialize_with = "one_or_many")]
    pub ports: Vec<u16>,
    /// `send_request`: put the command line into `request`.
    pub send_request: bool,
    /// `send_response`: put the reply text into `response`.
    pub send_response: bool,
    /// `transaction_timeout`: idle time after which requests still waiting are dropped.
    #[serde(deserialize_with = "deserialize_duration")]
    pub transaction_timeout: Duration,
    /// `queue_max_bytes`: the most text bytes of requests waiting for replies, per connection
    /// (0: no limit, as in Packetbeat). The oldest are evicted when it is hit.
    pub queue_max_bytes: u64,
    /// `queue_max_messages`: the most requests waiting for replies, per connection (0: no limit).
    pub queue_max_messages: u64,
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

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: vec![6379],
            send_request: false,
            send_response: false,
            transaction_timeout: REDIS_DEFAULT_TRANSACTION_TIMEOUT,
            queue_max_bytes: REDIS_DEFAULT_QUEUE_MAX_BYTES,
            queue_max_messages: REDIS_DEFAULT_QUEUE_MAX_MESSAGES,
            tags: Vec::new(),
            keep_null: false,
            index: None,
            processors: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_packetbeat() {
        let c: RedisConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, RedisConfig::default());
        assert_eq!(c.ports, vec![6379]);
        assert_eq!(c.queue_max_bytes, 1_048_576);
        assert_eq!(c.queue_max_messages, 20_000);
        assert_eq!(c.transaction_timeout, Duration::from_secs(10));
        assert!(!c.send_request && !c.send_response);
    }

    #[test]
    fn yaml_fragment() {
        let c: RedisConfig = serde_norway::from_str(
            "ports: 6380\nsend_request: true\nqueue_max_bytes: 100\nqueue_max_messages: 2\ntransaction_timeout: 1s\n",
        )
        .unwrap();
        assert_eq!(c.ports, vec![6380]);
        assert!(c.send_request);
        assert_eq!((c.queue_max_bytes, c.queue_max_messages), (100, 2));
        assert_eq!(c.transaction_timeout, Duration::from_secs(1));
    }
}
