//! A PostgreSQL transaction in progress ([`PgsqlTx`]: one statement of a simple Query, or one
//! Execute) and its Packetbeat 8.x event: `method`, `query`, `params`, `pgsql.num_rows`,
//! `pgsql.num_fields`, `pgsql.error_*`, `status`, `request`/`response`.
//!
//! `pgsql.error_code` is the SQLSTATE as a **string** (`"23505"`, `"42P01"`), as Packetbeat emits
//! it; the index template must map it as `keyword` (Packetbeat's `fields.yml` says `long`, which
//! rejects alphanumeric codes). `response` is Packetbeat's CSV: column names, then up to `max_rows`
//! rows whose values stop after `max_row_length` bytes, written as Go's `encoding/csv` does.

use std::sync::Arc;

use serde_json::{json, Value};

use super::config::PgsqlConfig;
use super::parser::{data_row, format_of, ErrorFields, FieldDesc};
use super::sql::method_of;
use super::values::render;
use crate::event::{Status, Transaction};
use crate::time::Timestamp;

/// Packetbeat's note for a response cut by capture loss.
pub const NOTE_RESPONSE_LOSS: &str = "Packet loss while capturing the response";
/// Note for an Execute whose statement was never seen (capture started later, or evicted).
pub const NOTE_UNKNOWN_STATEMENT: &str = "The actual query being used is unknown";

/// Where a transaction's rows come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopyMode {
    /// Not a COPY: rows are DataRow messages.
    #[default]
    None,
    /// COPY FROM STDIN: the client sends CopyData.
    In,
    /// COPY TO STDOUT: each server CopyData is a row.
    Out,
}

/// One transaction being assembled.
#[derive(Debug, Default)]
pub struct PgsqlTx {
    /// Time of the request's first message.
    pub start: Timestamp,
    /// The SQL text, when known.
    pub query: Option<Arc<str>>,
    /// Bind parameters rendered as text (`None` = NULL), for Execute.
    pub params: Option<Vec<Option<String>>>,
    /// Portal executed (Execute only), to attach the portal's Describe result.
    pub portal: Option<Box<[u8]>>,
    /// Statement the portal was bound from (Execute only), to attach the statement's Describe result.
    pub statement: Option<Box<[u8]>>,
    /// Request size in bytes.
    pub request_bytes: u64,
    /// The result columns, once described.
    pub desc: Option<Arc<[FieldDesc]>>,
    /// Result format codes from Bind (empty: use the description's).
    pub result_formats: Vec<u16>,
    /// DataRow (or COPY OUT row) count.
    pub num_rows: u64,
    /// Rows kept for `response`.
    pub rows: Vec<Vec<String>>,
    /// COPY state.
    pub copy: CopyMode,
    /// ErrorResponse fields, when the statement failed.
    pub error: Option<ErrorFields>,
    /// `error.message` notes.
    pub notes: Vec<String>,
    /// Not published: an extended-protocol `SET …`, which Packetbeat never reports.
    pub hidden: bool,
}

impl PgsqlTx {
    /// Counts a DataRow and keeps it (rendered, cut at `max_row_length`) while under `max_rows`.
    /// Packetbeat stops adding columns once the row reached the length limit.
    pub fn add_row(&mut self, body: &[u8], cfg: &PgsqlConfig) {
        self.num_rows += 1;
        if !cfg.send_response || self.rows.len() >= cfg.max_rows {
            return;
        }
        let mut row = Vec::new();
        let mut len = 0usize;
        for (i, col) in data_row(body).enumerate() {
            if len >= cfg.max_row_length {
                break;
            }
            let text = match col {
                None => String::new(),
                Some(v) => {
                    let (format, oid) = self.column_type(i);
                    render(v, format, oid)
                }
            };
            let keep = text.len().min(cfg.max_row_length - len);
            let mut cut = keep;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            len += keep;
            row.push(text.get(..cut).unwrap_or_default().to_owned());
        }
        self.rows.push(row);
    }

    fn column_type(&self, i: usize) -> (u16, u32) {
        let field = self.desc.as_deref().and_then(|d| d.get(i));
        let oid = field.map_or(0, |f| f.type_oid);
        let format = if self.result_formats.is_empty() {
            field.map_or(0, |f| f.format)
        } else {
            format_of(&self.result_formats, i)
        };
        (format, oid)
    }

    /// The finished [`Transaction`]. `end`/`response_bytes` are absent when no response was seen.
    #[must_use]
    pub fn into_transaction(self, end: Option<(Timestamp, u64)>, cfg: &PgsqlConfig) -> Transaction {
        let mut tx = Transaction { kind: "pgsql", ts: self.start, start: Some(self.start), ..Transaction::default() };
        tx.end = end.map(|(t, _)| t);
        tx.request_bytes = Some(self.request_bytes);
        tx.response_bytes = Some(end.map_or(0, |(_, b)| b));
        let num_fields = self.desc.as_deref().map_or(0, <[FieldDesc]>::len);
        tx.fields.insert("pgsql.num_rows", json!(self.num_rows));
        tx.fields.insert("pgsql.num_fields", json!(num_fields));
        if let Some(e) = &self.error {
            tx.status = Status::Error;
            tx.fields.insert("pgsql.error_code", json!(e.code));
            tx.fields.insert("pgsql.error_message", json!(e.message));
            tx.fields.insert("pgsql.error_severity", json!(e.severity));
        }
        if let Some(params) = self.params {
            let list: Vec<Value> = params.into_iter().map(|p| p.map_or(Value::Null, Value::String)).collect();
            tx.fields.insert("params", Value::Array(list));
        }
        if let Some(q) = &self.query {
            tx.method = Some(method_of(q));
            tx.query = Some(q.to_string());
            if cfg.send_request {
                tx.request = Some(q.to_string());
            }
        }
        if cfg.send_response {
            let names: Vec<&str> = self.desc.as_deref().unwrap_or_default().iter().map(|f| f.name.as_str()).collect();
            tx.response = Some(csv(&names, &self.rows));
        }
        tx.notes = self.notes;
        tx
    }
}

/// Packetbeat's `DumpInCSVFormat`: `\n` and `\r` in values become `\\n`/`\\r` (only `\n` in names),
/// then Go's `csv.Writer` quoting.
#[must_use]
pub fn csv(names: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    if !names.is_empty() {
        let names: Vec<String> = names.iter().map(|n| n.replace('\n', "\\n")).collect();
        csv_record(&mut out, names.iter().map(String::as_str));
    }
    for row in rows {
        let clean: Vec<String> = row.iter().map(|f| f.replace('\n', "\\n").replace('\r', "\\r")).collect();
        csv_record(&mut out, clean.iter().map(String::as_str));
    }
    out
}

fn csv_record<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let quote = !f.is_empty()
            && (f == "\\." || f.contains([',', '"', '\r', '\n']) || f.chars().next().is_some_and(char::is_whitespace));
        if quote {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_like_go() {
        let rows =
            vec![vec!["mea".to_owned(), "a,b".into(), " x".into()], vec!["q\"t".into(), "l\nm".into(), String::new()]];
        assert_eq!(csv(&["a", "b", "c"], &rows), "a,b,c\nmea,\"a,b\",\" x\"\n\"q\"\"t\",l\\nm,\n");
        assert_eq!(csv(&[], &[]), "");
    }

    #[test]
    fn rows_are_cut_like_packetbeat() {
        let cfg = PgsqlConfig { send_response: true, max_rows: 1, max_row_length: 5, ..PgsqlConfig::default() };
        let mut tx = PgsqlTx::default();
        let mut body = vec![0, 3];
        for v in [&b"abc"[..], b"defg", b"h"] {
            body.extend(u32::try_from(v.len()).unwrap().to_be_bytes());
            body.extend(v);
        }
        tx.add_row(&body, &cfg);
        tx.add_row(&body, &cfg);
        assert_eq!(tx.num_rows, 2);
        assert_eq!(tx.rows, vec![vec!["abc".to_owned(), "de".to_owned()]]);
    }

    #[test]
    fn fields_of_an_error() {
        let tx = PgsqlTx {
            query: Some("insert into t values (1)".into()),
            error: Some(ErrorFields { severity: "ERROR".into(), code: "42P01".into(), message: "nope".into() }),
            ..PgsqlTx::default()
        };
        let t = tx.into_transaction(Some((Timestamp(5), 10)), &PgsqlConfig::default());
        assert_eq!(t.status, Status::Error);
        assert_eq!(t.method.as_deref(), Some("INSERT"));
        assert_eq!(t.fields["pgsql.error_code"], json!("42P01"));
        assert_eq!(t.fields["pgsql.num_rows"], json!(0));
        assert_eq!((t.request_bytes, t.response_bytes), (Some(0), Some(10)));
        assert!(t.request.is_none() && t.response.is_none());
    }
}
