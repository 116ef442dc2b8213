//! The server's side of one command: which packets make up its response and what the event needs
//! from them (OK/ERR contents, column definitions, row counts, the rows kept for `response`).
//!
//! The response of a command is read packet by packet ([`ResponseReader::feed`]), so a result set
//! of any size streams through without being held. Result sets end with an EOF packet or, under
//! `CLIENT_DEPRECATE_EOF`, an OK packet with an `0xFE` header; the two are told apart by length
//! (an EOF payload is 5 bytes, such an OK at least 7), so the capability need not be known.
//! `SERVER_MORE_RESULTS_EXISTS` chains multi-statement and stored-procedure results into one
//! response. The one place the capability matters is the end of a `COM_STMT_PREPARE` response,
//! which ends with an EOF only without it: when unknown, the reader waits for the next packet
//! ([`Stage::OptionalEof`]) and the state completes the response when that packet is not an EOF.

use super::binary::{binary_row, BinaryType};
use super::parser::{
    is_classic_eof, is_terminator, lenenc_int, lenenc_str, parse_column_def, parse_err, parse_ok, parse_prepare_ok,
    terminator_status, PacketHeader, PrepareOk, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_PREPARE,
    SERVER_MORE_RESULTS_EXISTS, SERVER_STATUS_CURSOR_EXISTS,
};
use crate::text::{lossy, lossy_string};
use crate::time::Timestamp;

/// One packet as the state machine sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Its header.
    pub header: PacketHeader,
    /// Its payload, or the first bytes of it when the packet is too large to hold.
    pub payload: &'a [u8],
    /// It continues the payload of the previous packet (which was 2^24 − 1 bytes long).
    pub continuation: bool,
}

/// What follows an optional EOF packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterEof {
    /// The column definitions of a prepared statement.
    PrepareColumns(u16),
    /// Nothing: the response is complete.
    Done,
}

/// Where the response stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    /// The first packet of a result (OK, ERR, LOCAL INFILE request or column count).
    #[default]
    Start,
    /// Column definitions still to come.
    Columns(u64),
    /// After the column definitions: an EOF (classic), a terminating OK, or the first row.
    AfterColumns,
    /// Rows, until a terminator or an ERR.
    Rows,
    /// Parameter definitions of a prepared statement, then its columns.
    PrepareParams {
        /// Parameter definitions left.
        left: u16,
        /// Column definitions after them.
        columns: u16,
    },
    /// Column definitions of a prepared statement.
    PrepareColumns(u16),
    /// An EOF packet if the connection does not use `CLIENT_DEPRECATE_EOF`.
    OptionalEof(AfterEof),
    /// After a LOCAL INFILE request: the OK/ERR that follows the file.
    Infile,
    /// Any single packet completes the response.
    Single,
    /// Everything until the next command belongs to this one (commands not decoded).
    Skip,
}

impl Stage {
    /// The stage a command's response starts in.
    #[must_use]
    pub fn first_for(code: u8) -> Self {
        use super::parser::{COM_PROCESS_INFO, COM_QUERY};
        match code {
            COM_QUERY | COM_STMT_EXECUTE | COM_STMT_PREPARE | COM_PROCESS_INFO => Self::Start,
            COM_STMT_FETCH | 0x04 | 0x11..=0x15 | 0x1d | 0x1e | 0x20.. => Self::Skip,
            _ => Self::Single,
        }
    }
}

/// What the event needs from a response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Response {
    /// Time of the first packet.
    pub ts: Option<Timestamp>,
    /// Bytes of all its packets, headers included.
    pub bytes: u64,
    /// Sum of `affected_rows` over its OK packets.
    pub affected_rows: u64,
    /// The last non-zero `insert_id`.
    pub insert_id: u64,
    /// Columns of the first result set (or of the prepared statement).
    pub num_fields: u64,
    /// Rows of all its result sets.
    pub num_rows: u64,
    /// ERR code and `"SQLSTATE: message"`.
    pub error: Option<(u16, String)>,
    /// `db.table` of the columns, de-duplicated, in order.
    pub tables: Vec<String>,
    /// Column names of the first result set (only with `send_response`).
    pub columns: Vec<String>,
    /// Rows kept for `response` (only with `send_response`).
    pub rows: Vec<Vec<String>>,
    /// `COM_STMT_PREPARE`'s OK.
    pub prepare: Option<PrepareOk>,
    /// Results before the current one (multi-statement / multi-result).
    pub results: u32,
    /// Notes (packet loss).
    pub notes: Vec<String>,
}

/// How the caller continues after a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// More packets belong to this response.
    More,
    /// The response is complete.
    Done,
    /// The response was already complete: this packet starts the next one.
    DoneBefore,
    /// The packet cannot be part of this response: the stream is out of sync.
    Invalid(&'static str),
}

/// Limits for the rows kept in `response`.
#[derive(Clone, Copy, Debug)]
pub struct Capture {
    /// Keep column names and rows at all (`send_response`).
    pub enabled: bool,
    /// `max_rows`.
    pub max_rows: usize,
    /// `max_row_length`.
    pub max_row_length: usize,
}

/// Reads one command's response.
#[derive(Debug, Default)]
pub struct ResponseReader {
    /// Where it stands.
    pub stage: Stage,
    /// What it has read.
    pub resp: Response,
    /// The command was `COM_STMT_EXECUTE`: rows are binary.
    binary: bool,
    /// Column types of the current result set (binary rows, only while capturing).
    types: Vec<BinaryType>,
    /// Result sets (with columns) begun so far; only the first one is kept for `response`.
    sets: u32,
}

impl ResponseReader {
    /// A reader for the response to command `code`.
    #[must_use]
    pub fn new(code: u8) -> Self {
        Self { stage: Stage::first_for(code), binary: code == COM_STMT_EXECUTE, ..Self::default() }
    }

    /// Whether a packet of this response has been seen.
    #[must_use]
    pub fn started(&self) -> bool {
        self.resp.ts.is_some()
    }

    fn capturing(&self, cap: &Capture) -> bool {
        cap.enabled && self.sets == 1
    }

    /// Feeds one packet. `deprecate_eof` is the connection's `CLIENT_DEPRECATE_EOF`, when known,
    /// and is learnt from the packets when not.
    pub fn feed(
        &mut self,
        code: u8,
        p: &Packet<'_>,
        ts: Timestamp,
        deprecate_eof: &mut Option<bool>,
        cap: &Capture,
    ) -> Step {
        let first = p.payload.first().copied().unwrap_or(0);
        let len = p.header.len;
        if let Stage::OptionalEof(AfterEof::Done) = self.stage {
            if p.continuation || !is_classic_eof(first, len) {
                return Step::DoneBefore;
            }
        }
        self.resp.ts.get_or_insert(ts);
        self.resp.bytes += p.header.total() as u64;
        if p.continuation {
            return Step::More;
        }
        if p.payload.is_empty() && !matches!(self.stage, Stage::Skip | Stage::Single) {
            return Step::Invalid("empty packet in a response");
        }
        match self.stage {
            Stage::Skip => Step::More,
            // A progress report (MariaDB) is not the answer yet.
            Stage::Single | Stage::Infile if first == 0xff => self.err(p.payload),
            Stage::Single | Stage::Infile => {
                self.ok(first, p.payload);
                Step::Done
            }
            Stage::Start => self.start(code, first, p.payload),
            Stage::Columns(left) => {
                if is_terminator(first, len) {
                    return Step::Invalid("fewer columns than announced");
                }
                self.column(p.payload, cap);
                self.stage = if left > 1 { Stage::Columns(left - 1) } else { Stage::AfterColumns };
                Step::More
            }
            Stage::AfterColumns if is_terminator(first, len) => {
                let status = terminator_status(p.payload, len);
                if is_classic_eof(first, len) {
                    *deprecate_eof = Some(false);
                    if status & SERVER_STATUS_CURSOR_EXISTS != 0 {
                        return Step::Done;
                    }
                    self.stage = Stage::Rows;
                    return Step::More;
                }
                *deprecate_eof = Some(true);
                self.end_of_result(status)
            }
            Stage::AfterColumns => {
                if first != 0xff {
                    *deprecate_eof = Some(true);
                }
                self.stage = Stage::Rows;
                self.row(first, p, cap)
            }
            Stage::Rows => self.row(first, p, cap),
            Stage::PrepareParams { left, columns } => {
                if left > 1 {
                    self.stage = Stage::PrepareParams { left: left - 1, columns };
                    return Step::More;
                }
                self.after_group(*deprecate_eof, columns)
            }
            Stage::PrepareColumns(left) => self.prepare_column(p.payload, left, *deprecate_eof),
            Stage::OptionalEof(then) => {
                if is_classic_eof(first, len) {
                    *deprecate_eof = Some(false);
                    return match then {
                        AfterEof::Done => Step::Done,
                        AfterEof::PrepareColumns(n) => {
                            self.stage = Stage::PrepareColumns(n);
                            Step::More
                        }
                    };
                }
                *deprecate_eof = Some(true);
                match then {
                    AfterEof::Done => Step::DoneBefore,
                    AfterEof::PrepareColumns(n) => self.prepare_column(p.payload, n, Some(true)),
                }
            }
        }
    }

    fn prepare_column(&mut self, payload: &[u8], left: u16, deprecate_eof: Option<bool>) -> Step {
        if let Ok(col) = parse_column_def(payload) {
            add_table(&mut self.resp.tables, col.schema, col.table);
        }
        if left > 1 {
            self.stage = Stage::PrepareColumns(left - 1);
            return Step::More;
        }
        self.after_group(deprecate_eof, 0)
    }

    /// What follows a group of prepare definitions (parameters, then columns).
    fn after_group(&mut self, deprecate_eof: Option<bool>, columns: u16) -> Step {
        self.stage = match (deprecate_eof, columns) {
            (Some(true), 0) => return Step::Done,
            (Some(true), n) => Stage::PrepareColumns(n),
            (_, 0) => Stage::OptionalEof(AfterEof::Done),
            (_, n) => Stage::OptionalEof(AfterEof::PrepareColumns(n)),
        };
        Step::More
    }

    fn start(&mut self, code: u8, first: u8, payload: &[u8]) -> Step {
        match first {
            0x00 if code == COM_STMT_PREPARE => {
                let Ok(ok) = parse_prepare_ok(payload) else {
                    return Step::Invalid("prepare OK");
                };
                self.resp.prepare = Some(ok);
                self.resp.num_fields = u64::from(ok.num_columns);
                self.stage = match (ok.num_params, ok.num_columns) {
                    (0, 0) => return Step::Done,
                    (0, n) => Stage::PrepareColumns(n),
                    (p, n) => Stage::PrepareParams { left: p, columns: n },
                };
                Step::More
            }
            0x00 => match parse_ok(payload) {
                Ok(ok) => {
                    self.resp.affected_rows = self.resp.affected_rows.saturating_add(ok.affected_rows);
                    if ok.insert_id != 0 {
                        self.resp.insert_id = ok.insert_id;
                    }
                    self.end_of_result(ok.status)
                }
                Err(_) => Step::Invalid("OK packet"),
            },
            0xff => self.err(payload),
            0xfb if code != COM_STMT_PREPARE => {
                self.stage = Stage::Infile;
                Step::More
            }
            0xfe => Step::Invalid("EOF at the start of a result"),
            _ => {
                let Ok((n, rest)) = lenenc_int(payload) else {
                    return Step::Invalid("column count");
                };
                if n == 0 {
                    return Step::Invalid("zero columns");
                }
                self.sets += 1;
                if self.sets == 1 {
                    self.resp.num_fields = n;
                }
                self.types.clear();
                // CLIENT_OPTIONAL_RESULTSET_METADATA: a 0 after the count means no definitions.
                self.stage = if rest == [0] { Stage::AfterColumns } else { Stage::Columns(n) };
                Step::More
            }
        }
    }

    fn err(&mut self, payload: &[u8]) -> Step {
        match parse_err(payload) {
            // MariaDB progress report: not an error, the statement continues.
            Ok(e) if e.code == 0xffff => Step::More,
            Ok(e) => {
                let msg = String::from_utf8_lossy(e.message);
                let text = match e.sqlstate {
                    Some(s) => format!("{}: {msg}", String::from_utf8_lossy(s)),
                    None => msg.into_owned(),
                };
                self.resp.error = Some((e.code, text));
                Step::Done
            }
            Err(_) => Step::Invalid("ERR packet"),
        }
    }

    fn ok(&mut self, first: u8, payload: &[u8]) {
        if first == 0x00 {
            if let Ok(ok) = parse_ok(payload) {
                self.resp.affected_rows = self.resp.affected_rows.saturating_add(ok.affected_rows);
                if ok.insert_id != 0 {
                    self.resp.insert_id = ok.insert_id;
                }
            }
        }
    }

    fn end_of_result(&mut self, status: u16) -> Step {
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            self.resp.results += 1;
            self.stage = Stage::Start;
            Step::More
        } else {
            Step::Done
        }
    }

    fn column(&mut self, payload: &[u8], cap: &Capture) {
        let Ok(col) = parse_column_def(payload) else {
            if self.capturing(cap) {
                self.resp.columns.push(String::new());
                self.types.push(BinaryType { field_type: 0xfe, unsigned: false });
            }
            return;
        };
        add_table(&mut self.resp.tables, col.schema, col.table);
        if self.capturing(cap) {
            self.resp.columns.push(lossy_string(col.name));
            self.types.push(BinaryType::of_column(col.field_type, col.flags));
        }
    }

    fn row(&mut self, first: u8, p: &Packet<'_>, cap: &Capture) -> Step {
        if is_terminator(first, p.header.len) {
            return self.end_of_result(terminator_status(p.payload, p.header.len));
        }
        if first == 0xff {
            return self.err(p.payload);
        }
        self.resp.num_rows += 1;
        if self.capturing(cap) && self.resp.rows.len() < cap.max_rows {
            let mut cut = RowCut { row: Vec::new(), len: 0, max: cap.max_row_length };
            if self.binary {
                let _ = binary_row(p.payload, &self.types, |c| cut.push(c.as_bytes()));
            } else {
                let mut rest = p.payload;
                while let Some(&b) = rest.first() {
                    if b == 0xfb {
                        cut.push(b"NULL");
                        rest = rest.get(1..).unwrap_or_default();
                    } else if let Ok((text, r)) = lenenc_str(rest) {
                        cut.push(text);
                        rest = r;
                    } else {
                        break;
                    }
                }
            }
            self.resp.rows.push(cut.row);
        }
        Step::More
    }
}

/// Packetbeat's row cut: cells are appended until the row holds `max` bytes; the cell that
/// crosses the limit is shortened and later cells are left out.
struct RowCut {
    row: Vec<String>,
    len: usize,
    max: usize,
}

impl RowCut {
    fn push(&mut self, text: &[u8]) {
        if self.len >= self.max {
            return;
        }
        let keep = text.len().min(self.max - self.len);
        let cell = lossy_string(text.get(..keep).unwrap_or(text));
        self.len += keep;
        self.row.push(cell);
    }
}

fn add_table(tables: &mut Vec<String>, schema: &[u8], table: &[u8]) {
    if table.is_empty() || tables.len() >= 64 {
        return;
    }
    // Compare before formatting: column definitions repeat the same table, no allocation then.
    let same = |t: &String| {
        let t = t.as_bytes();
        t.len() == schema.len() + 1 + table.len()
            && t.starts_with(schema)
            && t.get(schema.len()) == Some(&b'.')
            && t.ends_with(table)
    };
    if !tables.iter().any(same) {
        let (schema, table) = (lossy(schema), lossy(table));
        let mut name = String::with_capacity(schema.len() + 1 + table.len());
        name.push_str(&schema);
        name.push('.');
        name.push_str(&table);
        tables.push(name);
    }
}
