//! `packetbeat.protocols` entry of `type: pgsql`, with Packetbeat 8.x's option names and defaults
//! (`packetbeat/protos/pgsql/config.go`: `max_rows` 10, `max_row_length` 1024, the common
//! `transaction_timeout` of 10 s), plus the bounds this agent adds on per-connection state.

use std::time::Duration;

use serde::Deserialize;

use crate::protocols::http::config::{deserialize_duration, one_or_many, HTTP_DEFAULT_TRANSACTION_TIMEOUT};

/// Default `queue_max_messages`: requests (and their protocol steps) waiting for responses.
pub const PGSQL_DEFAULT_QUEUE_MAX_MESSAGES: usize = 20_000;
/// Default `max_prepared_statements`: named statements (and, separately, portals) remembered.
pub const PGSQL_DEFAULT_MAX_PREPARED_STATEMENTS: usize = 1_000;

/// Settings of the PostgreSQL analyser.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct PgsqlConfig {
    /// `enabled`: analyse PostgreSQL at all.
    pub enabled: bool,
    /// `ports`: server ports carrying PostgreSQL.
    #[serde(deserialize_with = "one_or_many")]
    pub ports: Vec<u16>,
    /// `send_request`: put the statement text into `request`.
    pub send_request: bool,
    /// `send_response`: put the result set (CSV) into `response`.
    pub send_response: bool,
    /// `max_rows`: rows kept for `response`.
    pub max_rows: usize,
    /// `max_row_length`: bytes of column values kept per row of `response`.
    pub max_row_length: usize,
    /// `transaction_timeout`: idle time after which unanswered requests are dropped.
    #[serde(deserialize_with = "deserialize_duration")]
    pub transaction_timeout: Duration,
    /// `queue_max_messages` (not in Packetbeat): the most request steps waiting for responses on a
    /// connection; beyond it, requests until the next Sync are counted in `queue_full` and not published.
    pub queue_max_messages: usize,
    /// `max_prepared_statements` (not in Packetbeat): named statements, and portals, remembered per
    /// connection; the oldest is forgotten beyond it (counted in `queue_full`).
    pub max_prepared_statements: usize,
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

impl Default for PgsqlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: vec![5432],
            send_request: false,
            send_response: false,
            max_rows: 10,
            max_row_length: 1024,
            transaction_timeout: HTTP_DEFAULT_TRANSACTION_TIMEOUT,
            queue_max_messages: PGSQL_DEFAULT_QUEUE_MAX_MESSAGES,
            max_prepared_statements: PGSQL_DEFAULT_MAX_PREPARED_STATEMENTS,
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
        let c: PgsqlConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, PgsqlConfig::default());
        assert_eq!(c.ports, vec![5432]);
        assert_eq!((c.max_rows, c.max_row_length), (10, 1024));
        assert_eq!(c.transaction_timeout, Duration::from_secs(10));
        assert!(!c.send_request && !c.send_response);
    }

    #[test]
    fn yaml_fragment() {
        let c: PgsqlConfig = serde_norway::from_str(
            "ports: [5432, 5433]\nmax_rows: 5\nmax_row_length: 79\nsend_response: true\ntransaction_timeout: 2s\n",
        )
        .unwrap();
        assert_eq!(c.ports, vec![5432, 5433]);
        assert_eq!((c.max_rows, c.max_row_length, c.send_response), (5, 79, true));
        assert_eq!(c.transaction_timeout, Duration::from_secs(2));
        let c: PgsqlConfig = serde_norway::from_str("ports: 6543").unwrap();
        assert_eq!(c.ports, vec![6543]);
    }
}
