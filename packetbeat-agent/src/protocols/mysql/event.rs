//! A command and its response → [`Transaction`] with Packetbeat 8.x's MySQL fields
//! (`publishTransaction`, `receivedMysqlRequest`/`Response` in `packetbeat/protos/mysql/mysql.go`):
//! `method`, `query`, `path`, `params`, `mysql.{affected_rows,insert_id,num_rows,num_fields}`
//! (always), `mysql.error_code`/`error_message` (on ERR), `status`, notes, and `request`/`response`
//! with `send_request`/`send_response` (`response` is Go's `encoding/csv` output, as
//! `common.DumpInCSVFormat` writes it).

use serde_json::json;

use super::config::MysqlConfig;
use super::parser::{method_of, trim_query, COM_STMT_EXECUTE, COM_STMT_PREPARE};
use super::response::Response;
use crate::event::{Status, Transaction};
use crate::time::Timestamp;

/// Packetbeat's `query` for a successful `COM_STMT_PREPARE` (the SQL goes into the notes).
pub const QUERY_PREPARE: &str = "Request Prepare Statement";
/// Packetbeat's `query` for an execute of a statement this connection never prepared (as seen).
pub const QUERY_EXECUTE_UNKNOWN: &str = "Request Execute Statement";
/// Packetbeat's note for that case.
pub const NOTE_UNKNOWN_QUERY: &str = "The actual query being used is unknown";

/// A client command as the transaction needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// Command byte (`COM_*`).
    pub code: u8,
    /// Time of its first packet.
    pub ts: Timestamp,
    /// Bytes of its packets, headers included.
    pub bytes: u64,
    /// Published as a transaction (`COM_QUERY`, `COM_STMT_PREPARE`, `COM_STMT_EXECUTE`).
    pub publish: bool,
    /// SQL text as sent (query, prepare) or as prepared (execute).
    pub query: Option<String>,
    /// Execute of a statement id not known on this connection.
    pub unknown_statement: bool,
    /// Decoded execute parameters.
    pub params: Vec<String>,
    /// Notes (packet loss).
    pub notes: Vec<String>,
}

impl Command {
    /// A command with nothing decoded yet.
    #[must_use]
    pub fn new(code: u8, ts: Timestamp, bytes: u64) -> Self {
        Self {
            code,
            ts,
            bytes,
            publish: false,
            query: None,
            unknown_statement: false,
            params: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Builds the transaction of `cmd` and its response (absent when it was lost).
#[must_use]
pub fn build_transaction(cmd: Command, resp: Option<Response>, cfg: &MysqlConfig) -> Transaction {
    let Command { code, ts, bytes, query: raw_query, unknown_statement, params, mut notes, .. } = cmd;
    let mut tx =
        Transaction { kind: "mysql", ts, start: Some(ts), request_bytes: Some(bytes), ..Transaction::default() };
    let raw_query = raw_query.unwrap_or_default();
    let sql = trim_query(&raw_query);
    let mut query = sql.to_owned();
    if code == COM_STMT_EXECUTE && unknown_statement {
        query = QUERY_EXECUTE_UNKNOWN.to_owned();
        notes.push(NOTE_UNKNOWN_QUERY.to_owned());
    } else {
        tx.method = Some(method_of(sql));
    }
    if cfg.send_request && !raw_query.is_empty() {
        tx.request = Some(raw_query.clone());
    }
    if !params.is_empty() {
        tx.fields.insert("params", json!(params));
    }
    if let Some(resp) = resp {
        if code == COM_STMT_PREPARE && resp.prepare.is_some() && resp.error.is_none() {
            notes.push(query);
            query = QUERY_PREPARE.to_owned();
        }
        tx.end = resp.ts;
        tx.response_bytes = Some(resp.bytes);
        tx.fields.insert("mysql.affected_rows", json!(resp.affected_rows));
        tx.fields.insert("mysql.insert_id", json!(resp.insert_id));
        tx.fields.insert("mysql.num_rows", json!(resp.num_rows));
        tx.fields.insert("mysql.num_fields", json!(resp.num_fields));
        if let Some((code, message)) = &resp.error {
            tx.status = Status::Error;
            tx.fields.insert("mysql.error_code", json!(code));
            tx.fields.insert("mysql.error_message", json!(message));
        }
        if !resp.tables.is_empty() {
            tx.fields.insert("path", json!(resp.tables.join(", ")));
        }
        if cfg.send_response {
            let csv = csv(&resp.columns, &resp.rows);
            if !csv.is_empty() {
                tx.response = Some(csv);
            }
        }
        notes.extend(resp.notes);
    }
    tx.query = Some(query);
    tx.notes = notes;
    tx
}

/// Go's `encoding/csv` writer over Packetbeat's escaping (`\n` → `\\n` in names and cells, `\r` →
/// `\\r` in cells), one record per line ending in `\n`.
#[must_use]
pub fn csv(columns: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    if !columns.is_empty() {
        record(&mut out, columns.iter().map(|c| c.replace('\n', "\\n")));
    }
    for row in rows {
        record(&mut out, row.iter().map(|c| c.replace('\n', "\\n").replace('\r', "\\r")));
    }
    out
}

fn record(out: &mut String, fields: impl Iterator<Item = String>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if needs_quotes(&f) {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(&f);
        }
    }
    out.push('\n');
}

/// Go's `fieldNeedsQuotes`: separators, quotes, line ends, a leading space, or `\.`.
fn needs_quotes(f: &str) -> bool {
    if f.is_empty() {
        return false;
    }
    f == "\\." || f.contains([',', '"', '\r', '\n']) || f.chars().next().is_some_and(char::is_whitespace)
}

/// The value of a transaction field, for tests.
#[cfg(test)]
pub fn field<'a>(tx: &'a Transaction, key: &str) -> Option<&'a serde_json::Value> {
    tx.fields.get(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_like_go() {
        let cols = vec!["a".to_owned(), "b,c".to_owned()];
        let rows = vec![vec!["x\ny".to_owned(), " lead".to_owned()], vec!["q\"t".to_owned(), String::new()]];
        assert_eq!(csv(&cols, &rows), "a,\"b,c\"\nx\\ny,\" lead\"\n\"q\"\"t\",\n");
        assert_eq!(csv(&[], &[]), "");
    }

    #[test]
    fn lost_response_keeps_counters() {
        let mut cmd = Command::new(0x03, Timestamp(5), 20);
        cmd.publish = true;
        cmd.query = Some("  select 1\r\n".into());
        let tx = build_transaction(cmd, None, &MysqlConfig::default());
        assert_eq!(tx.method.as_deref(), Some("SELECT"));
        assert_eq!(tx.query.as_deref(), Some("select 1"));
        assert_eq!(field(&tx, "mysql.num_rows"), None);
        assert!(tx.end.is_none() && tx.response_bytes.is_none());
    }
}
