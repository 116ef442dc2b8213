//! PostgreSQL wire protocol (v3) framing and message decoding: pure functions over `&[u8]`.
//!
//! Every typed message is `tag: u8, len: i32 (counts itself), body`; the first client messages of a
//! connection (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no tag. Framing checks
//! the length field before any arithmetic: a length below 4 or above [`PGSQL_MAX_MESSAGE_LEN`] (the
//! server's own limit for any message) is an error, never an allocation. Body decoders borrow from
//! the input; the few `Vec`s they build are sized by what the body can actually hold, so an absurd
//! count in a small body cannot allocate much. Decoders accept a *truncated* body (the head of an
//! oversize message) and return what it holds.
//!
//! Reference: PostgreSQL documentation, "Frontend/Backend Protocol — Message Formats".

use crate::protocols::Direction;

/// The largest message length accepted (PostgreSQL's `PQ_LARGE_MESSAGE_LIMIT`, 1 GiB − 1).
pub const PGSQL_MAX_MESSAGE_LEN: usize = 0x3fff_ffff;
/// Size of a typed message header: tag and length.
pub const PGSQL_HEADER_LEN: usize = 5;

/// Protocol version 3.0 in a StartupMessage.
const PROTOCOL_3_0: u32 = 196_608;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// Why bytes are not PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgsqlParseError {
    /// A length field below its minimum or above [`PGSQL_MAX_MESSAGE_LEN`].
    InvalidLength(u32),
    /// A tag that this direction never sends.
    InvalidType(u8),
    /// A body that does not match its message type.
    Malformed(&'static str),
}

/// The header of one message: its tag (0 for untyped startup messages) and its size on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Message tag, e.g. `b'Q'`.
    pub tag: u8,
    /// Bytes on the wire, tag and length included.
    pub total: usize,
}

impl Frame {
    /// Bytes before the body.
    #[must_use]
    pub const fn header_len(self) -> usize {
        if self.tag == 0 {
            8
        } else {
            PGSQL_HEADER_LEN
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// Whether `tag` is a message the client (frontend) sends.
#[must_use]
pub const fn is_frontend_tag(tag: u8) -> bool {
    matches!(tag, b'B' | b'C' | b'd' | b'c' | b'D' | b'E' | b'f' | b'F' | b'H' | b'P' | b'p' | b'Q' | b'S' | b'X')
}

/// Whether `tag` is a message the server (backend) sends.
#[must_use]
pub const fn is_backend_tag(tag: u8) -> bool {
    matches!(
        tag,
        b'1' | b'2'
            | b'3'
            | b'A'
            | b'c'
            | b'C'
            | b'd'
            | b'D'
            | b'E'
            | b'G'
            | b'H'
            | b'I'
            | b'K'
            | b'n'
            | b'N'
            | b'R'
            | b's'
            | b'S'
            | b't'
            | b'T'
            | b'v'
            | b'V'
            | b'W'
            | b'Z'
    )
}

/// Reads a typed message header. `Ok(None)`: fewer than 5 bytes.
///
/// # Errors
/// A tag this direction never sends, or an impossible length.
pub fn frame(data: &[u8], dir: Direction) -> Result<Option<Frame>, PgsqlParseError> {
    let Some(&tag) = data.first() else {
        return Ok(None);
    };
    let valid = match dir {
        Direction::ToServer => is_frontend_tag(tag),
        Direction::ToClient => is_backend_tag(tag),
    };
    if !valid {
        return Err(PgsqlParseError::InvalidType(tag));
    }
    let Some(len) = be_u32(data, 1) else {
        return Ok(None);
    };
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    if !(4..=PGSQL_MAX_MESSAGE_LEN).contains(&n) {
        return Err(PgsqlParseError::InvalidLength(len));
    }
    Ok(Some(Frame { tag, total: n + 1 }))
}

/// The untyped first messages a client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartupKind {
    /// StartupMessage (protocol 3.x): user, database, options.
    Startup,
    /// SSLRequest: the server answers one byte, `S` (TLS follows) or `N`.
    Ssl,
    /// GSSENCRequest: the server answers `G` (GSSAPI encryption follows) or `N`.
    GssEnc,
    /// CancelRequest (its own connection; nothing follows).
    Cancel,
}

/// Reads an untyped startup-phase message header. `Ok(None)`: fewer than 8 bytes.
///
/// # Errors
/// An unknown request code or a length that does not fit it.
pub fn startup_frame(data: &[u8]) -> Result<Option<(StartupKind, Frame)>, PgsqlParseError> {
    let (Some(len), Some(code)) = (be_u32(data, 0), be_u32(data, 4)) else {
        return Ok(None);
    };
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    let kind = match code {
        SSL_REQUEST_CODE if n == 8 => StartupKind::Ssl,
        GSSENC_REQUEST_CODE if n == 8 => StartupKind::GssEnc,
        CANCEL_REQUEST_CODE if n == 16 => StartupKind::Cancel,
        c if c >> 16 == PROTOCOL_3_0 >> 16 && (8..=10_000).contains(&n) => StartupKind::Startup,
        _ => return Err(PgsqlParseError::InvalidLength(len)),
    };
    Ok(Some((kind, Frame { tag: 0, total: n })))
}

/// Whether `data` (the start of a TCP segment, after a gap) plausibly starts at a message boundary:
/// every message header in it is valid, and at least one header is complete.
#[must_use]
pub fn plausible_boundary(data: &[u8], dir: Direction) -> bool {
    let mut pos = 0usize;
    let mut seen = false;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        match frame(rest, dir) {
            Ok(Some(f)) => {
                seen = true;
                pos = pos.saturating_add(f.total);
            }
            Ok(None) => break,
            Err(_) => return false,
        }
    }
    seen
}

/// Bytes that mark a message boundary with near certainty, searched for when resynchronising:
/// ReadyForQuery from the server, Sync from the client.
#[must_use]
pub fn find_sync_marker(data: &[u8], dir: Direction) -> Option<usize> {
    match dir {
        Direction::ToClient => {
            data.windows(6).position(|w| w[..5] == *b"Z\0\0\0\x05" && matches!(w[5], b'I' | b'T' | b'E'))
        }
        Direction::ToServer => data.windows(5).position(|w| w == b"S\0\0\0\x04"),
    }
}

/// Longest suffix of a segment that may be the start of a sync marker (kept across segments).
pub const SYNC_MARKER_CARRY: usize = 5;

/// A NUL-terminated string at the start of `b`, and what follows it. A truncated body may end
/// without the NUL: then the whole rest is the string.
fn cstr(b: &[u8], truncated: bool) -> Result<(&[u8], &[u8]), PgsqlParseError> {
    match b.iter().position(|&c| c == 0) {
        Some(i) => Ok((b.get(..i).unwrap_or_default(), b.get(i + 1..).unwrap_or_default())),
        None if truncated => Ok((b, &[])),
        None => Err(PgsqlParseError::Malformed("string without terminator")),
    }
}

/// Query: the SQL text.
///
/// # Errors
/// No terminator in a complete body.
pub fn query_text(body: &[u8], truncated: bool) -> Result<&[u8], PgsqlParseError> {
    cstr(body, truncated).map(|(q, _)| q)
}

/// Parse: statement name, SQL text and the parameter type OIDs the client specified (0 = unspecified).
#[derive(Debug, PartialEq, Eq)]
pub struct ParseMsg<'a> {
    /// Prepared statement name (empty: the unnamed statement).
    pub name: &'a [u8],
    /// SQL text.
    pub query: &'a [u8],
    /// Parameter type OIDs.
    pub param_types: Vec<u32>,
}

/// Decodes a Parse body.
///
/// # Errors
/// Missing terminators or a short OID list in a complete body.
pub fn parse_msg(body: &[u8], truncated: bool) -> Result<ParseMsg<'_>, PgsqlParseError> {
    let (name, rest) = cstr(body, truncated)?;
    let (query, rest) = cstr(rest, truncated)?;
    let n = usize::from(be_u16(rest, 0).unwrap_or(0));
    let mut param_types = Vec::with_capacity(n.min(rest.len() / 4));
    for i in 0..n {
        match be_u32(rest, 2 + 4 * i) {
            Some(oid) => param_types.push(oid),
            None if truncated => break,
            None => return Err(PgsqlParseError::Malformed("short Parse")),
        }
    }
    Ok(ParseMsg { name, query, param_types })
}

/// Bind: portal, statement, parameter values with their formats, and the result formats.
#[derive(Debug, PartialEq, Eq)]
pub struct BindMsg<'a> {
    /// Destination portal (empty: unnamed).
    pub portal: &'a [u8],
    /// Source prepared statement (empty: unnamed).
    pub statement: &'a [u8],
    /// Parameter format codes: none (all text), one (applies to all) or one per parameter.
    pub param_formats: Vec<u16>,
    /// Parameter values; `None` is SQL NULL.
    pub params: Vec<Option<&'a [u8]>>,
    /// Result column format codes (same convention).
    pub result_formats: Vec<u16>,
}

/// The format code of item `i` under PostgreSQL's "none / one / one each" convention.
#[must_use]
pub fn format_of(formats: &[u16], i: usize) -> u16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

fn u16_list(b: &[u8], at: usize, truncated: bool) -> Result<(Vec<u16>, usize), PgsqlParseError> {
    let Some(n) = be_u16(b, at) else {
        return if truncated { Ok((Vec::new(), b.len())) } else { Err(PgsqlParseError::Malformed("short list")) };
    };
    let n = usize::from(n);
    let mut v = Vec::with_capacity(n.min(b.len() / 2));
    let mut pos = at + 2;
    for _ in 0..n {
        match be_u16(b, pos) {
            Some(x) => v.push(x),
            None if truncated => return Ok((v, b.len())),
            None => return Err(PgsqlParseError::Malformed("short list")),
        }
        pos += 2;
    }
    Ok((v, pos))
}

/// Decodes a Bind body.
///
/// # Errors
/// A value or list running past the end of a complete body.
pub fn bind_msg(body: &[u8], truncated: bool) -> Result<BindMsg<'_>, PgsqlParseError> {
    let (portal, rest) = cstr(body, truncated)?;
    let (statement, rest) = cstr(rest, truncated)?;
    let (param_formats, mut pos) = u16_list(rest, 0, truncated)?;
    let short = PgsqlParseError::Malformed("short Bind");
    let count = match be_u16(rest, pos) {
        Some(n) => usize::from(n),
        None if truncated => 0,
        None => return Err(short),
    };
    pos += 2;
    let mut params = Vec::with_capacity(count.min(rest.len() / 4));
    for _ in 0..count {
        let Some(len) = be_u32(rest, pos) else {
            if truncated {
                break;
            }
            return Err(short);
        };
        pos += 4;
        if len == u32::MAX {
            params.push(None);
            continue;
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        match rest.get(pos..pos.saturating_add(len)) {
            Some(v) => params.push(Some(v)),
            None if truncated => {
                params.push(Some(rest.get(pos..).unwrap_or_default()));
                pos = rest.len();
                break;
            }
            None => return Err(short),
        }
        pos += len;
    }
    let result_formats = if pos >= rest.len() && truncated { Vec::new() } else { u16_list(rest, pos, truncated)?.0 };
    Ok(BindMsg { portal, statement, param_formats, params, result_formats })
}

/// Describe / Close: the target kind (`S` statement, `P` portal) and its name.
///
/// # Errors
/// An unknown kind or a missing terminator.
pub fn target_msg(body: &[u8]) -> Result<(u8, &[u8]), PgsqlParseError> {
    let (&kind, rest) = body.split_first().ok_or(PgsqlParseError::Malformed("empty Describe/Close"))?;
    if kind != b'S' && kind != b'P' {
        return Err(PgsqlParseError::Malformed("Describe/Close kind"));
    }
    Ok((kind, cstr(rest, false)?.0))
}

/// Execute: the portal name (the row limit is not needed).
///
/// # Errors
/// A missing terminator.
pub fn execute_msg(body: &[u8]) -> Result<&[u8], PgsqlParseError> {
    cstr(body, false).map(|(p, _)| p)
}

/// One column of a RowDescription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    /// Column name.
    pub name: String,
    /// Data type OID.
    pub type_oid: u32,
    /// Format code (0 text, 1 binary; always 0 when describing a statement).
    pub format: u16,
}

/// Decodes a RowDescription body.
///
/// # Errors
/// Fewer or more bytes than the field count says.
pub fn row_description(body: &[u8]) -> Result<Vec<FieldDesc>, PgsqlParseError> {
    let n = usize::from(be_u16(body, 0).ok_or(PgsqlParseError::Malformed("empty RowDescription"))?);
    // Each field takes at least 19 bytes: a 1-byte name plus 18 bytes of attributes.
    let mut fields = Vec::with_capacity(n.min(body.len() / 19));
    let mut rest = body.get(2..).unwrap_or_default();
    for _ in 0..n {
        let (name, tail) = cstr(rest, false)?;
        let (Some(type_oid), Some(format)) = (be_u32(tail, 6), be_u16(tail, 16)) else {
            return Err(PgsqlParseError::Malformed("short RowDescription"));
        };
        fields.push(FieldDesc { name: crate::text::lossy_string(name), type_oid, format });
        rest = tail.get(18..).unwrap_or_default();
    }
    if !rest.is_empty() {
        return Err(PgsqlParseError::Malformed("RowDescription longer than its fields"));
    }
    Ok(fields)
}

/// The columns of a DataRow: `None` for NULL. Stops (without error) at the end of a truncated body.
#[derive(Clone, Debug)]
pub struct DataRowColumns<'a> {
    rest: &'a [u8],
    left: u16,
    /// A column ran past the end of the body.
    pub truncated: bool,
}

/// The columns of a DataRow body.
#[must_use]
pub fn data_row(body: &[u8]) -> DataRowColumns<'_> {
    DataRowColumns { rest: body.get(2..).unwrap_or_default(), left: be_u16(body, 0).unwrap_or(0), truncated: false }
}

impl<'a> Iterator for DataRowColumns<'a> {
    type Item = Option<&'a [u8]>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 || self.truncated {
            return None;
        }
        self.left -= 1;
        let Some(len) = be_u32(self.rest, 0) else {
            self.truncated = true;
            return None;
        };
        let tail = self.rest.get(4..).unwrap_or_default();
        if len == u32::MAX {
            self.rest = tail;
            return Some(None);
        }
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if let Some(v) = tail.get(..len) {
            self.rest = tail.get(len..).unwrap_or_default();
            Some(Some(v))
        } else {
            self.truncated = true;
            self.rest = &[];
            Some(Some(tail))
        }
    }
}

/// The fields of an ErrorResponse (or NoticeResponse) that Packetbeat reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorFields {
    /// `S`: ERROR, FATAL, PANIC (or a notice severity).
    pub severity: String,
    /// `C`: the SQLSTATE code, e.g. `42P01`.
    pub code: String,
    /// `M`: the primary message.
    pub message: String,
}

/// Decodes an ErrorResponse / NoticeResponse body; unknown field types are skipped.
#[must_use]
pub fn error_fields(body: &[u8]) -> ErrorFields {
    let mut e = ErrorFields::default();
    let mut rest = body;
    while let Some((&kind, tail)) = rest.split_first() {
        if kind == 0 {
            break;
        }
        let Ok((value, tail)) = cstr(tail, true) else {
            break;
        };
        let text = || crate::text::lossy_string(value);
        match kind {
            b'S' => e.severity = text(),
            b'C' => e.code = text(),
            b'M' => e.message = text(),
            _ => {}
        }
        rest = tail;
    }
    e
}

/// ParameterDescription: the parameter type OIDs of a described statement.
#[must_use]
pub fn parameter_description(body: &[u8]) -> Vec<u32> {
    let n = usize::from(be_u16(body, 0).unwrap_or(0));
    (0..n).map_while(|i| be_u32(body, 2 + 4 * i)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn framing_checks_lengths_first() {
        let q = msg(b'Q', b"select 1\0");
        assert_eq!(frame(&q, Direction::ToServer), Ok(Some(Frame { tag: b'Q', total: q.len() })));
        assert_eq!(frame(&q[..4], Direction::ToServer), Ok(None));
        assert_eq!(frame(b"", Direction::ToServer), Ok(None));
        assert_eq!(frame(b"Q\x80\0\0\0", Direction::ToServer), Err(PgsqlParseError::InvalidLength(0x8000_0000)));
        assert_eq!(frame(b"Q\0\0\0\x03", Direction::ToServer), Err(PgsqlParseError::InvalidLength(3)));
        assert_eq!(frame(b"T\0\0\0\x04", Direction::ToServer), Err(PgsqlParseError::InvalidType(b'T')));
        assert_eq!(frame(b"Q\0\0\0\x04", Direction::ToClient), Err(PgsqlParseError::InvalidType(b'Q')));
        assert_eq!(frame(b"\xff\xff\xff\xff\xff", Direction::ToClient), Err(PgsqlParseError::InvalidType(0xff)));
    }

    #[test]
    fn startup_messages() {
        assert_eq!(startup_frame(b"\0\0\0\x08\x04\xd2\x16\x2f").unwrap().unwrap().0, StartupKind::Ssl);
        assert_eq!(startup_frame(b"\0\0\0\x08\x04\xd2\x16\x30").unwrap().unwrap().0, StartupKind::GssEnc);
        assert_eq!(startup_frame(b"\0\0\0\x10\x04\xd2\x16\x2e").unwrap().unwrap().0, StartupKind::Cancel);
        let (k, f) = startup_frame(b"\0\0\0\x29\0\x03\0\0user").unwrap().unwrap();
        assert_eq!((k, f.total, f.header_len()), (StartupKind::Startup, 41, 8));
        assert!(startup_frame(b"\x7f\0\0\0\0\x03\0\0").is_err());
        assert!(startup_frame(b"\0\0\0\x08\x04\xd2").unwrap().is_none());
    }

    #[test]
    fn boundaries() {
        let mut s = msg(b'C', b"SELECT 1\0");
        s.extend(msg(b'Z', b"I"));
        assert!(plausible_boundary(&s, Direction::ToClient));
        assert!(plausible_boundary(&s[..8], Direction::ToClient));
        assert!(!plausible_boundary(&s[1..], Direction::ToClient));
        assert!(!plausible_boundary(&s[..3], Direction::ToClient));
        assert_eq!(find_sync_marker(&s, Direction::ToClient), Some(14));
        assert_eq!(find_sync_marker(b"xxS\0\0\0\x04", Direction::ToServer), Some(2));
    }

    #[test]
    fn bind_with_text_binary_and_null() {
        let mut b = b"p1\0s1\0".to_vec();
        b.extend([0, 2, 0, 0, 0, 1]); // formats: text, binary
        b.extend([0, 3]);
        b.extend([0, 0, 0, 2]);
        b.extend(b"42");
        b.extend([0, 0, 0, 4, 0, 0, 0, 7]);
        b.extend([0xff; 4]);
        b.extend([0, 1, 0, 1]);
        let m = bind_msg(&b, false).unwrap();
        assert_eq!(m.portal, b"p1");
        assert_eq!(m.statement, b"s1");
        assert_eq!(m.param_formats, vec![0, 1]);
        assert_eq!(m.params, vec![Some(&b"42"[..]), Some(&[0, 0, 0, 7][..]), None]);
        assert_eq!(m.result_formats, vec![1]);
        assert_eq!(format_of(&m.result_formats, 5), 1);
        assert_eq!(format_of(&[], 0), 0);
        // A value running past the body is malformed unless the body was truncated.
        assert!(bind_msg(&b[..b.len() - 8], false).is_err());
        let t = bind_msg(&b[..19], true).unwrap();
        assert_eq!(t.params, vec![Some(&b"4"[..])]);
        // An absurd parameter count in a tiny body allocates little and fails cleanly.
        assert!(bind_msg(b"\0\0\0\0\xff\xff", false).is_err());
    }

    #[test]
    fn parse_row_description_data_row_and_errors() {
        let p = parse_msg(b"s1\0select $1\0\0\x01\0\0\0\x17", false).unwrap();
        assert_eq!((p.name, p.query, p.param_types), (&b"s1"[..], &b"select $1"[..], vec![23]));
        assert!(parse_msg(b"s1\0select", false).is_err());
        assert_eq!(parse_msg(b"\0select", true).unwrap().query, b"select");

        let mut rd = vec![0, 2];
        for name in [&b"a"[..], b"bb"] {
            rd.extend(name);
            rd.extend([0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]);
        }
        let f = row_description(&rd).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!((f[1].name.as_str(), f[1].type_oid, f[1].format), ("bb", 25, 0));
        assert!(row_description(&rd[..rd.len() - 1]).is_err());
        assert!(row_description(b"\xff\xff").is_err());

        let row = [0, 3, 0, 0, 0, 1, b'x', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        let cols: Vec<_> = data_row(&row).collect();
        assert_eq!(cols, vec![Some(&b"x"[..]), None, Some(&b""[..])]);
        let mut it = data_row(&row[..6]);
        assert_eq!(it.next(), Some(Some(&b""[..])));
        assert!(it.truncated);

        let e = error_fields(b"SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0\0");
        assert_eq!((e.severity.as_str(), e.code.as_str()), ("ERROR", "42P01"));
        assert_eq!(e.message, "relation \"nope\" does not exist");
        assert_eq!(target_msg(b"Sname\0"), Ok((b'S', &b"name"[..])));
        assert!(target_msg(b"Xname\0").is_err());
        assert_eq!(execute_msg(b"\0\0\0\0\0"), Ok(&b""[..]));
        assert_eq!(parameter_description(b"\0\x02\0\0\0\x17\0\0\0\x19"), vec![23, 25]);
    }
}
