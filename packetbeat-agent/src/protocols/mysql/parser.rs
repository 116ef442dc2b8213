//! MySQL client/server protocol wire format: pure functions over `&[u8]`, no state, no I/O.
//!
//! Every packet is a 4-byte header (24-bit little-endian payload length, 8-bit sequence id) and a
//! payload; a payload of exactly [`MYSQL_MAX_PACKET_LEN`] bytes continues in the next packet. The
//! functions here read one header or one payload (the payload may be a truncated view of a large
//! packet): every length read from the wire is checked against the bytes present before it is
//! used, so truncated or absurd input gives an error, never a panic or an allocation sized by the
//! peer. Reference: the MySQL client/server protocol documentation (packets, text and binary
//! protocol, connection phase), and MariaDB's notes on its extensions.

/// Payload length that means "continued in the next packet" (2^24 − 1).
pub const MYSQL_MAX_PACKET_LEN: u32 = 0x00ff_ffff;

/// `COM_QUIT`.
pub const COM_QUIT: u8 = 0x01;
/// `COM_INIT_DB`.
pub const COM_INIT_DB: u8 = 0x02;
/// `COM_QUERY`.
pub const COM_QUERY: u8 = 0x03;
/// `COM_FIELD_LIST`.
pub const COM_FIELD_LIST: u8 = 0x04;
/// `COM_PROCESS_INFO`.
pub const COM_PROCESS_INFO: u8 = 0x0a;
/// `COM_PING`.
pub const COM_PING: u8 = 0x0e;
/// `COM_STMT_PREPARE`.
pub const COM_STMT_PREPARE: u8 = 0x16;
/// `COM_STMT_EXECUTE`.
pub const COM_STMT_EXECUTE: u8 = 0x17;
/// `COM_STMT_SEND_LONG_DATA` (no response).
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
/// `COM_STMT_CLOSE` (no response).
pub const COM_STMT_CLOSE: u8 = 0x19;
/// `COM_STMT_RESET`.
pub const COM_STMT_RESET: u8 = 0x1a;
/// `COM_STMT_FETCH`.
pub const COM_STMT_FETCH: u8 = 0x1c;
/// `COM_RESET_CONNECTION`, the highest command number.
pub const COM_RESET_CONNECTION: u8 = 0x1f;

/// Capability: the 4.1 protocol (status flags in OK/EOF, SQLSTATE in ERR).
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
/// Capability: compressed packets (a different framing; not decoded).
pub const CLIENT_COMPRESS: u32 = 0x0000_0020;
/// Capability: the client switches to TLS after the SSL request.
pub const CLIENT_SSL: u32 = 0x0000_0800;
/// Capability: result sets end with an OK packet (`0xFE` header) instead of EOF packets.
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;
/// Capability: `COM_QUERY`/`COM_STMT_EXECUTE` carry query attributes.
pub const CLIENT_QUERY_ATTRIBUTES: u32 = 0x0800_0000;

/// Server status flag: another result follows this one.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;
/// Server status flag: the execute opened a cursor, rows come with `COM_STMT_FETCH`.
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// Why a payload could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MysqlParseError {
    /// The bytes end before the structure does (a truncated view or packet).
    Incomplete,
    /// A length or value the protocol does not allow.
    Malformed(&'static str),
}

/// A packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    /// Payload length (0 ..= 2^24 − 1).
    pub len: u32,
    /// Sequence id.
    pub seq: u8,
}

impl PacketHeader {
    /// Header plus payload, in bytes.
    #[must_use]
    pub fn total(self) -> usize {
        4 + self.len as usize
    }

    /// The payload continues in the next packet.
    #[must_use]
    pub fn continues(self) -> bool {
        self.len == MYSQL_MAX_PACKET_LEN
    }
}

/// Reads the header at the start of `data` (`None` when fewer than 4 bytes).
#[must_use]
pub fn parse_header(data: &[u8]) -> Option<PacketHeader> {
    let [a, b, c, seq, ..] = *data else {
        return None;
    };
    Some(PacketHeader { len: u32::from_le_bytes([a, b, c, 0]), seq })
}

/// Splits `n` bytes off the front of `data`.
///
/// # Errors
/// [`MysqlParseError::Incomplete`] when fewer than `n` bytes are present.
pub fn take(data: &[u8], n: usize) -> Result<(&[u8], &[u8]), MysqlParseError> {
    if data.len() < n {
        return Err(MysqlParseError::Incomplete);
    }
    Ok(data.split_at(n))
}

/// Reads a little-endian unsigned integer of `N` bytes.
///
/// # Errors
/// [`MysqlParseError::Incomplete`] when fewer than `N` bytes are present.
pub fn le<const N: usize>(data: &[u8]) -> Result<(u64, &[u8]), MysqlParseError> {
    let (bytes, rest) = take(data, N)?;
    let mut buf = [0u8; 8];
    for (dst, src) in buf.iter_mut().zip(bytes) {
        *dst = *src;
    }
    Ok((u64::from_le_bytes(buf), rest))
}

/// Reads a length-encoded integer. `0xFB` (NULL in rows) and `0xFF` are not integers.
///
/// # Errors
/// Incomplete input, or a `0xFB`/`0xFF` first byte.
pub fn lenenc_int(data: &[u8]) -> Result<(u64, &[u8]), MysqlParseError> {
    let (&first, rest) = data.split_first().ok_or(MysqlParseError::Incomplete)?;
    match first {
        0..=0xfa => Ok((u64::from(first), rest)),
        0xfc => le::<2>(rest),
        0xfd => le::<3>(rest),
        0xfe => le::<8>(rest),
        0xfb | 0xff => Err(MysqlParseError::Malformed("not a length-encoded integer")),
    }
}

/// Reads a length-encoded string (the length is checked against the bytes present).
///
/// # Errors
/// Incomplete input or a bad length prefix.
pub fn lenenc_str(data: &[u8]) -> Result<(&[u8], &[u8]), MysqlParseError> {
    let (len, rest) = lenenc_int(data)?;
    let len = usize::try_from(len).map_err(|_| MysqlParseError::Malformed("string length"))?;
    take(rest, len)
}

/// An OK packet (header `0x00`, or `0xFE` when it ends a result set under `CLIENT_DEPRECATE_EOF`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OkPacket {
    /// Rows changed by the statement.
    pub affected_rows: u64,
    /// `LAST_INSERT_ID()` after the statement.
    pub insert_id: u64,
    /// Server status flags (0 when absent, as in pre-4.1 servers).
    pub status: u16,
}

/// Reads an OK packet payload (header byte included).
///
/// # Errors
/// Incomplete or malformed integers.
pub fn parse_ok(payload: &[u8]) -> Result<OkPacket, MysqlParseError> {
    let (_, rest) = take(payload, 1)?;
    let (affected_rows, rest) = lenenc_int(rest)?;
    let (insert_id, rest) = lenenc_int(rest)?;
    let status = le::<2>(rest).map_or(0, |(s, _)| s as u16);
    Ok(OkPacket { affected_rows, insert_id, status })
}

/// Whether a payload that starts with `0xFE` is an EOF/terminating-OK packet rather than a row
/// (a row starting with `0xFE` holds a value of 2^24 bytes or more, so its packet is full size).
#[must_use]
pub fn is_terminator(first: u8, len: u32) -> bool {
    first == 0xfe && len < MYSQL_MAX_PACKET_LEN
}

/// Whether a `0xFE` packet is the classic 5-byte EOF packet (as opposed to an OK packet with an
/// `0xFE` header, which is at least 7 bytes).
#[must_use]
pub fn is_classic_eof(first: u8, len: u32) -> bool {
    first == 0xfe && len < 7
}

/// Status flags of a terminator: an EOF packet (`fe`, warnings, status) or an OK packet.
#[must_use]
pub fn terminator_status(payload: &[u8], len: u32) -> u16 {
    if len < 7 {
        payload.get(3..5).map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
    } else {
        parse_ok(payload).map_or(0, |ok| ok.status)
    }
}

/// An ERR packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrPacket<'a> {
    /// Error number.
    pub code: u16,
    /// SQLSTATE (5 bytes) when the 4.1 marker `#` is present.
    pub sqlstate: Option<&'a [u8]>,
    /// Human-readable message.
    pub message: &'a [u8],
}

/// Reads an ERR packet payload (header byte `0xFF` included).
///
/// # Errors
/// Fewer than 3 bytes.
pub fn parse_err(payload: &[u8]) -> Result<ErrPacket<'_>, MysqlParseError> {
    let (_, rest) = take(payload, 1)?;
    let (code, rest) = le::<2>(rest)?;
    let (sqlstate, message) = match rest {
        [b'#', tail @ ..] if tail.len() >= 5 => {
            let (state, msg) = tail.split_at(5);
            (Some(state), msg)
        }
        _ => (None, rest),
    };
    Ok(ErrPacket { code: code as u16, sqlstate, message })
}

/// `COM_STMT_PREPARE`'s OK packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrepareOk {
    /// Statement id the client uses in `COM_STMT_EXECUTE`.
    pub stmt_id: u32,
    /// Columns of the result set.
    pub num_columns: u16,
    /// Placeholders.
    pub num_params: u16,
}

/// Reads a `COM_STMT_PREPARE` OK payload (`00`, id, columns, params, filler, warnings).
///
/// # Errors
/// Shorter than 9 bytes or not starting with `0x00`.
pub fn parse_prepare_ok(payload: &[u8]) -> Result<PrepareOk, MysqlParseError> {
    let (head, rest) = take(payload, 1)?;
    if head != [0] {
        return Err(MysqlParseError::Malformed("prepare OK header"));
    }
    let (stmt_id, rest) = le::<4>(rest)?;
    let (num_columns, rest) = le::<2>(rest)?;
    let (num_params, _) = le::<2>(rest)?;
    Ok(PrepareOk { stmt_id: stmt_id as u32, num_columns: num_columns as u16, num_params: num_params as u16 })
}

/// What the event needs from a column definition (protocol 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnDef<'a> {
    /// Database.
    pub schema: &'a [u8],
    /// Table alias.
    pub table: &'a [u8],
    /// Column alias.
    pub name: &'a [u8],
    /// Field type (`MYSQL_TYPE_*`), needed to decode binary rows.
    pub field_type: u8,
    /// Column flags (`UNSIGNED_FLAG` = 0x20).
    pub flags: u16,
}

/// Reads a column definition payload. MariaDB's optional extended metadata (a length-encoded
/// string before the fixed-length block) is skipped.
///
/// # Errors
/// Incomplete or malformed strings.
pub fn parse_column_def(payload: &[u8]) -> Result<ColumnDef<'_>, MysqlParseError> {
    let (_catalog, rest) = lenenc_str(payload)?;
    let (schema, rest) = lenenc_str(rest)?;
    let (table, rest) = lenenc_str(rest)?;
    let (_org_table, rest) = lenenc_str(rest)?;
    let (name, rest) = lenenc_str(rest)?;
    let (_org_name, mut rest) = lenenc_str(rest)?;
    if rest.first().is_some_and(|&b| b != 0x0c) {
        rest = lenenc_str(rest)?.1;
    }
    let (fixed_len, rest) = lenenc_int(rest)?;
    if fixed_len < 10 {
        return Err(MysqlParseError::Malformed("column definition fixed block"));
    }
    let (_charset, rest) = le::<2>(rest)?;
    let (_length, rest) = le::<4>(rest)?;
    let (field_type, rest) = le::<1>(rest)?;
    let (flags, _) = le::<2>(rest)?;
    Ok(ColumnDef { schema, table, name, field_type: field_type as u8, flags: flags as u16 })
}

/// The parts of the client's handshake response the decoder needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// Client capability flags.
    pub capabilities: u32,
    /// The packet is an SSL request: TLS follows.
    pub ssl_request: bool,
}

/// Reads the client's handshake response or SSL request (the packet with sequence id 1).
///
/// # Errors
/// Too short for the capability flags.
pub fn parse_handshake_response(payload: &[u8]) -> Result<HandshakeResponse, MysqlParseError> {
    let (low, _) = le::<2>(payload)?;
    let capabilities = if low as u32 & CLIENT_PROTOCOL_41 != 0 { le::<4>(payload)?.0 as u32 } else { low as u32 };
    let ssl_request = capabilities & CLIENT_SSL != 0 && payload.len() <= 32;
    Ok(HandshakeResponse { capabilities, ssl_request })
}

/// Whether a server payload is the initial handshake (protocol version 10, server version string).
#[must_use]
pub fn is_server_handshake(payload: &[u8]) -> bool {
    matches!(payload, [0x0a, v, ..] if v.is_ascii_digit())
}

/// Whether the bytes at a segment start look like a TLS record (content types 20–23, version 3.x).
#[must_use]
pub fn looks_like_tls(data: &[u8]) -> bool {
    matches!(data, [0x14..=0x17, 0x03, 0x00..=0x04, ..])
}

/// Whether a client packet is plausibly a command: used to resynchronise after a gap or a
/// mid-stream pickup, where offset 0 of a segment is only a candidate.
#[must_use]
pub fn plausible_command(header: PacketHeader, payload_prefix: &[u8]) -> bool {
    let Some((&cmd, body)) = payload_prefix.split_first() else {
        return false;
    };
    if header.seq != 0 || header.len == 0 || cmd > COM_RESET_CONNECTION {
        return false;
    }
    match cmd {
        COM_QUERY | COM_STMT_PREPARE | COM_INIT_DB => {
            header.len > 1 && body.iter().take(32).all(|&b| b >= 0x20 || b"\t\r\n".contains(&b))
        }
        COM_STMT_EXECUTE => header.len >= 10 && body.get(5..9).is_none_or(|it| it == [1, 0, 0, 0]),
        COM_STMT_CLOSE | COM_STMT_RESET => header.len == 5,
        COM_QUIT | COM_PING | COM_PROCESS_INFO | COM_RESET_CONNECTION => header.len == 1,
        _ => header.len < 1024,
    }
}

/// Whether the first packet of a response is plausible (OK, ERR, LOCAL INFILE, column count).
#[must_use]
pub fn plausible_response_start(header: PacketHeader, payload_prefix: &[u8]) -> bool {
    match payload_prefix.first() {
        Some(0x00 | 0xff) => header.len >= 3,
        Some(0xfb) => true,
        Some(&n) => n != 0xfe && header.len <= 9 && lenenc_int(payload_prefix).is_ok_and(|(c, _)| c > 0),
        None => false,
    }
}

/// The first word of the trimmed query, upper-cased (Packetbeat's `method`).
#[must_use]
pub fn method_of(query: &str) -> String {
    query.split([' ', '\r', '\n', '\t']).next().unwrap_or_default().to_uppercase()
}

/// Trims what Packetbeat trims around a query: space, `\r`, `\n`, `\t`.
#[must_use]
pub fn trim_query(query: &str) -> &str {
    query.trim_matches([' ', '\r', '\n', '\t'])
}
