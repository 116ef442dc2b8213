//! `packetbeat.protocols` entry of `type: mysql`, with Packetbeat 8.x's option names and defaults
//! (`packetbeat/protos/mysql/config.go`: `max_row_length` 1024, `max_rows` 10,
//! `statement_timeout` 3600 s, `transaction_timeout` 10 s).

use std::time::Duration;

use serde::Deserialize;

use crate::protocols::http::config::one_or_many;
use crate::protocols::http::deserialize_duration;

/// Packetbeat's `protos.DefaultTransactionExpiration`.
pub const MYSQL_DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Packetbeat's default `statement_timeout` (prepared-statement cache lifetime).
pub const MYSQL_DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Settings of the MySQL analyser.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default)]
pub struct MysqlConfig {
    /// `enabled`: analyse MySQL at all.
    pub enabled: bool,
    /// `ports`: server ports carrying the MySQL client/server protocol.
    #[serde(deserialize_with = "one_or_many")]
    pub ports: Vec<u16>,
    /// `send_request`: put the query text into `request`.
    pub send_request: bool,
    /// `send_response`: put a CSV of the column names and the first rows into `response`.
    pub send_response: bool,
    /// `max_rows`: the most rows written into `response`.
    pub max_rows: usize,
    /// `max_row_length`: the most bytes of one row (all its columns together) written into `response`.
    pub max_row_length: usize,
    /// `statement_timeout`: how long a prepared statement is remembered after its last use.
    #[serde(deserialize_with = "deserialize_duration")]
    pub statement_timeout: Duration,
    /// `transaction_timeout`: idle time after which requests still waiting are dropped (counted).
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

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: vec![3306, 3307],
            send_request: false,
            send_response: false,
            max_rows: 10,
            max_row_length: 1024,
            statement_timeout: MYSQL_DEFAULT_STATEMENT_TIMEOUT,
            transaction_timeout: MYSQL_DEFAULT_TRANSACTION_TIMEOUT,
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
        let c: MysqlConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, MysqlConfig::default());
        assert_eq!(c.ports, [3306, 3307]);
        assert_eq!((c.max_rows, c.max_row_length), (10, 1024));
        assert_eq!(c.statement_timeout, Duration::from_secs(3600));
        assert_eq!(c.transaction_timeout, Duration::from_secs(10));
    }

    #[test]
    fn options_parse() {
        let c: MysqlConfig = serde_norway::from_str(
            "{ports: 3307, max_rows: 5, max_row_length: 79, statement_timeout: 1m, send_response: true}",
        )
        .unwrap();
        assert_eq!(c.ports, [3307]);
        assert_eq!((c.max_rows, c.max_row_length), (5, 79));
        assert_eq!(c.statement_timeout, Duration::from_secs(60));
        assert!(c.send_response && !c.send_request);
    }
}
