//! RESP wire tokens: pure functions over `&[u8]`, no state, no allocation (except the argument list
//! of an inline command).
//!
//! RESP2 and RESP3 are one grammar: every value starts with a type byte and a line ended by CRLF.
//! [`next_token`] reads exactly one such header (a simple value, a blob header, an aggregate
//! header, a streamed-string chunk header or a streamed-aggregate end); blob payloads are consumed
//! by the caller, which knows their length, so a 500 MB bulk string is never buffered here.
//!
//! Bounds, checked before any arithmetic or allocation: a header line is at most
//! [`REDIS_MAX_LINE_LEN`] bytes, a blob at most [`REDIS_MAX_BULK_LEN`] (Redis's own
//! `proto-max-bulk-len`), an aggregate at most [`REDIS_MAX_AGGREGATE_LEN`] elements (Redis rejects
//! longer multibulks too). Truncation is `Ok(None)` (incomplete); anything else malformed is a
//! [`RedisParseError`].

/// The longest header or simple-value line accepted (Redis's `PROTO_INLINE_MAX_SIZE`).
pub const REDIS_MAX_LINE_LEN: usize = 64 * 1024;
/// The longest blob accepted (Redis's default `proto-max-bulk-len`, 512 MiB).
pub const REDIS_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
/// The most elements an aggregate may announce (Redis refuses more than `INT_MAX`).
pub const REDIS_MAX_AGGREGATE_LEN: u64 = i32::MAX as u64;
/// The most arguments an inline command may have.
pub const REDIS_MAX_INLINE_ARGS: usize = 1024;

/// Why bytes are not RESP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedisParseError {
    /// The first byte is not a RESP type.
    UnknownType(u8),
    /// A length that is not a number, negative (other than the null `-1`) or too large.
    InvalidLength,
    /// No CRLF within [`REDIS_MAX_LINE_LEN`] bytes.
    LineTooLong,
    /// A value that does not match its type (a bad integer, boolean, missing CRLF after a blob...).
    Malformed,
    /// Aggregates nested deeper than the caller allows.
    TooDeep,
    /// A request that is not an array of bulk strings (what Redis itself requires).
    BadRequest,
}

/// The kinds of one-line values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimpleKind {
    /// `+OK`
    Status,
    /// `-ERR ...`
    Error,
    /// `:42`
    Integer,
    /// `_` (RESP3 null)
    Null,
    /// `#t` / `#f`
    Boolean,
    /// `,3.14`
    Double,
    /// `(12345678901234567890`
    BigNumber,
}

/// The kinds of length-prefixed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    /// `$` bulk string.
    String,
    /// `!` blob error (RESP3).
    Error,
    /// `=` verbatim string (RESP3): a 3-byte format, `:`, then the text.
    Verbatim,
}

/// The kinds of aggregates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateKind {
    /// `*`
    Array,
    /// `%` (RESP3): the length counts pairs.
    Map,
    /// `~` (RESP3)
    Set,
    /// `>` (RESP3): out-of-band data, never a reply.
    Push,
    /// `|` (RESP3): a map of attributes that precedes the value it describes.
    Attribute,
}

/// A length announced by a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// This many bytes or elements.
    Known(u64),
    /// `-1`: the RESP2 null bulk string or null array.
    Null,
    /// `?`: a streamed string (chunks follow) or a streamed aggregate (ended by `.`).
    Streamed,
}

/// One header line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token<'a> {
    /// A complete one-line value; `text` excludes the type byte and CRLF.
    Simple {
        /// Which type.
        kind: SimpleKind,
        /// The value's text.
        text: &'a [u8],
    },
    /// A blob header; the payload and its CRLF follow.
    Blob {
        /// Which type.
        kind: BlobKind,
        /// Payload length.
        len: Len,
    },
    /// `;n`: a chunk of a streamed string (`n == 0` ends the string).
    Chunk {
        /// Chunk length.
        len: u64,
    },
    /// An aggregate header; its elements follow.
    Aggregate {
        /// Which type.
        kind: AggregateKind,
        /// Element count (pairs for maps and attributes).
        len: Len,
    },
    /// `.`: the end of a streamed aggregate.
    End,
}

/// Finds the CRLF-terminated line at the start of `buf`: `(line without CRLF, bytes used)`.
///
/// # Errors
/// [`RedisParseError::LineTooLong`] past [`REDIS_MAX_LINE_LEN`]; [`RedisParseError::Malformed`]
/// for a bare LF.
pub fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, RedisParseError> {
    let window = buf.get(..buf.len().min(REDIS_MAX_LINE_LEN + 2)).unwrap_or(buf);
    match window.iter().position(|&b| b == b'\n') {
        Some(nl) => {
            let Some(body) = nl.checked_sub(1).and_then(|cr| window.get(..cr)) else {
                return Err(RedisParseError::Malformed);
            };
            if window.get(nl - 1) != Some(&b'\r') {
                return Err(RedisParseError::Malformed);
            }
            Ok(Some((body, nl + 1)))
        }
        None if window.len() > REDIS_MAX_LINE_LEN => Err(RedisParseError::LineTooLong),
        None => Ok(None),
    }
}

/// Parses a decimal `u64` with no sign, no spaces, at most 19 digits.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    text.iter().try_fold(0u64, |acc, &b| {
        let d = u64::from(b.checked_sub(b'0').filter(|d| *d <= 9)?);
        acc.checked_mul(10)?.checked_add(d)
    })
}

/// Whether `text` is a signed decimal integer (`-12`, `+3`, `0`).
fn is_integer(text: &[u8]) -> bool {
    let digits = match text.first() {
        Some(b'-' | b'+') => text.get(1..).unwrap_or_default(),
        _ => text,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

/// Whether `text` is a RESP3 double (`1.5`, `-2e10`, `inf`, `-inf`, `nan`).
fn is_double(text: &[u8]) -> bool {
    matches!(text, b"inf" | b"-inf" | b"+inf" | b"nan" | b"-nan")
        || (!text.is_empty()
            && text.iter().any(u8::is_ascii_digit)
            && text.iter().all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E')))
}

/// Parses a length: digits, `-1` (null) or `?` (streamed, only where `streamable`), at most `max`.
fn parse_len(text: &[u8], max: u64, streamable: bool) -> Result<Len, RedisParseError> {
    match text {
        b"-1" => Ok(Len::Null),
        b"?" if streamable => Ok(Len::Streamed),
        _ => match parse_u64(text) {
            Some(n) if n <= max => Ok(Len::Known(n)),
            _ => Err(RedisParseError::InvalidLength),
        },
    }
}

/// Whether `b` starts a RESP value.
#[must_use]
pub const fn is_type_byte(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b':'
            | b'_'
            | b'#'
            | b','
            | b'('
            | b'$'
            | b'!'
            | b'='
            | b'*'
            | b'%'
            | b'~'
            | b'>'
            | b'|'
            | b';'
            | b'.'
    )
}

/// Reads one header line at the start of `buf`: `Ok(None)` when the line is not complete.
///
/// # Errors
/// When the bytes are not a RESP header (see [`RedisParseError`]).
pub fn next_token(buf: &[u8]) -> Result<Option<(Token<'_>, usize)>, RedisParseError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if !is_type_byte(first) {
        return Err(RedisParseError::UnknownType(first));
    }
    let Some((line, used)) = line(buf)? else {
        return Ok(None);
    };
    let text = line.get(1..).unwrap_or_default();
    let simple = |kind, ok: bool| {
        if ok {
            Ok(Token::Simple { kind, text })
        } else {
            Err(RedisParseError::Malformed)
        }
    };
    let blob = |kind| parse_len(text, REDIS_MAX_BULK_LEN, true).map(|len| Token::Blob { kind, len });
    let aggregate = |kind| parse_len(text, REDIS_MAX_AGGREGATE_LEN, true).map(|len| Token::Aggregate { kind, len });
    let token = match first {
        b'+' => simple(SimpleKind::Status, true),
        b'-' => simple(SimpleKind::Error, true),
        b':' => simple(SimpleKind::Integer, is_integer(text)),
        b'_' => simple(SimpleKind::Null, text.is_empty()),
        b'#' => simple(SimpleKind::Boolean, matches!(text, b"t" | b"f")),
        b',' => simple(SimpleKind::Double, is_double(text)),
        b'(' => simple(SimpleKind::BigNumber, is_integer(text)),
        b'$' => blob(BlobKind::String),
        b'!' => blob(BlobKind::Error),
        b'=' => blob(BlobKind::Verbatim),
        b'*' => aggregate(AggregateKind::Array),
        b'%' => aggregate(AggregateKind::Map),
        b'~' => aggregate(AggregateKind::Set),
        b'>' => aggregate(AggregateKind::Push),
        b'|' => aggregate(AggregateKind::Attribute),
        b';' => match parse_len(text, REDIS_MAX_BULK_LEN, false)? {
            Len::Known(len) => Ok(Token::Chunk { len }),
            _ => Err(RedisParseError::InvalidLength),
        },
        b'.' if text.is_empty() => Ok(Token::End),
        _ => Err(RedisParseError::Malformed),
    }?;
    Ok(Some((token, used)))
}

/// An inline command's arguments and the bytes its line used.
pub type InlineCommand = (Vec<Vec<u8>>, usize);

/// An inline command (`SET k v\r\n`, as typed into telnet): the line's arguments, split the way
/// Redis's `sdssplitargs` does (double quotes with `\n \r \t \b \a \\ \" \xHH` escapes, single
/// quotes with `\'`), and the bytes used. A line may end with LF alone, as Redis accepts.
///
/// # Errors
/// [`RedisParseError::LineTooLong`], or [`RedisParseError::Malformed`] for unbalanced quotes or
/// more than [`REDIS_MAX_INLINE_ARGS`] arguments.
pub fn inline_command(buf: &[u8]) -> Result<Option<InlineCommand>, RedisParseError> {
    let window = buf.get(..buf.len().min(REDIS_MAX_LINE_LEN + 1)).unwrap_or(buf);
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return if window.len() > REDIS_MAX_LINE_LEN { Err(RedisParseError::LineTooLong) } else { Ok(None) };
    };
    let mut text = window.get(..nl).unwrap_or_default();
    if let Some(t) = text.strip_suffix(b"\r") {
        text = t;
    }
    Ok(Some((split_args(text)?, nl + 1)))
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `sdssplitargs`: whitespace-separated words, with quoting.
fn split_args(mut s: &[u8]) -> Result<Vec<Vec<u8>>, RedisParseError> {
    let mut args = Vec::new();
    loop {
        while let Some((b, rest)) = s.split_first() {
            if !b.is_ascii_whitespace() {
                break;
            }
            s = rest;
        }
        if s.is_empty() {
            return Ok(args);
        }
        if args.len() >= REDIS_MAX_INLINE_ARGS {
            return Err(RedisParseError::Malformed);
        }
        let mut arg = Vec::new();
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let Some((&b, rest)) = s.split_first() else {
                if in_dq || in_sq {
                    return Err(RedisParseError::Malformed);
                }
                break;
            };
            if in_dq {
                match (b, rest) {
                    (b'\\', [b'x', h, l, tail @ ..]) if hex(*h).is_some() && hex(*l).is_some() => {
                        arg.push(hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0));
                        s = tail;
                        continue;
                    }
                    (b'\\', [c, tail @ ..]) => {
                        arg.push(match c {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => *other,
                        });
                        s = tail;
                        continue;
                    }
                    (b'"', _) => {
                        // A closing quote must be followed by a space or the end.
                        if rest.first().is_some_and(|c| !c.is_ascii_whitespace()) {
                            return Err(RedisParseError::Malformed);
                        }
                        s = rest;
                        break;
                    }
                    _ => arg.push(b),
                }
            } else if in_sq {
                match (b, rest) {
                    (b'\\', [b'\'', tail @ ..]) => {
                        arg.push(b'\'');
                        s = tail;
                        continue;
                    }
                    (b'\'', _) => {
                        if rest.first().is_some_and(|c| !c.is_ascii_whitespace()) {
                            return Err(RedisParseError::Malformed);
                        }
                        s = rest;
                        break;
                    }
                    _ => arg.push(b),
                }
            } else {
                match b {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        s = rest;
                        break;
                    }
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => arg.push(b),
                }
            }
            s = rest;
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(b: &[u8]) -> Result<Option<(Token<'_>, usize)>, RedisParseError> {
        next_token(b)
    }

    #[test]
    fn resp2_headers() {
        assert_eq!(tok(b"+OK\r\n"), Ok(Some((Token::Simple { kind: SimpleKind::Status, text: b"OK" }, 5))));
        assert_eq!(tok(b"-ERR x\r\nrest"), Ok(Some((Token::Simple { kind: SimpleKind::Error, text: b"ERR x" }, 8))));
        assert_eq!(tok(b":-12\r\n"), Ok(Some((Token::Simple { kind: SimpleKind::Integer, text: b"-12" }, 6))));
        assert_eq!(tok(b"$5\r\nhello\r\n"), Ok(Some((Token::Blob { kind: BlobKind::String, len: Len::Known(5) }, 4))));
        assert_eq!(tok(b"$-1\r\n"), Ok(Some((Token::Blob { kind: BlobKind::String, len: Len::Null }, 5))));
        assert_eq!(tok(b"*-1\r\n"), Ok(Some((Token::Aggregate { kind: AggregateKind::Array, len: Len::Null }, 5))));
        assert_eq!(tok(b"*0\r\n"), Ok(Some((Token::Aggregate { kind: AggregateKind::Array, len: Len::Known(0) }, 4))));
    }

    #[test]
    fn resp3_headers() {
        assert_eq!(tok(b"_\r\n"), Ok(Some((Token::Simple { kind: SimpleKind::Null, text: b"" }, 3))));
        assert_eq!(tok(b"#t\r\n"), Ok(Some((Token::Simple { kind: SimpleKind::Boolean, text: b"t" }, 4))));
        assert_eq!(tok(b",-inf\r\n"), Ok(Some((Token::Simple { kind: SimpleKind::Double, text: b"-inf" }, 7))));
        assert_eq!(tok(b",1.5e3\r\n"), Ok(Some((Token::Simple { kind: SimpleKind::Double, text: b"1.5e3" }, 8))));
        assert_eq!(
            tok(b"(3492890328409238509324850943850943825024385\r\n").map(|t| t.map(|t| t.0)),
            Ok(Some(Token::Simple {
                kind: SimpleKind::BigNumber,
                text: b"3492890328409238509324850943850943825024385"
            }))
        );
        assert_eq!(tok(b"!21\r\n"), Ok(Some((Token::Blob { kind: BlobKind::Error, len: Len::Known(21) }, 5))));
        assert_eq!(tok(b"=15\r\n"), Ok(Some((Token::Blob { kind: BlobKind::Verbatim, len: Len::Known(15) }, 5))));
        assert_eq!(tok(b"%2\r\n"), Ok(Some((Token::Aggregate { kind: AggregateKind::Map, len: Len::Known(2) }, 4))));
        assert_eq!(tok(b"~3\r\n"), Ok(Some((Token::Aggregate { kind: AggregateKind::Set, len: Len::Known(3) }, 4))));
        assert_eq!(tok(b">3\r\n"), Ok(Some((Token::Aggregate { kind: AggregateKind::Push, len: Len::Known(3) }, 4))));
        assert_eq!(
            tok(b"|1\r\n"),
            Ok(Some((Token::Aggregate { kind: AggregateKind::Attribute, len: Len::Known(1) }, 4)))
        );
        assert_eq!(tok(b"$?\r\n"), Ok(Some((Token::Blob { kind: BlobKind::String, len: Len::Streamed }, 4))));
        assert_eq!(tok(b";4\r\n"), Ok(Some((Token::Chunk { len: 4 }, 4))));
        assert_eq!(tok(b"*?\r\n"), Ok(Some((Token::Aggregate { kind: AggregateKind::Array, len: Len::Streamed }, 4))));
        assert_eq!(tok(b".\r\n"), Ok(Some((Token::End, 3))));
    }

    #[test]
    fn truncation_is_incomplete() {
        let full = b"*12\r\n";
        for cut in 0..full.len() {
            assert_eq!(tok(&full[..cut]), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn absurd_and_bad_values_are_errors() {
        assert_eq!(tok(b"$2147483648\r\n"), Err(RedisParseError::InvalidLength));
        assert_eq!(tok(b"*2147483648\r\n"), Err(RedisParseError::InvalidLength));
        assert_eq!(tok(b"$99999999999999999999999\r\n"), Err(RedisParseError::InvalidLength));
        assert_eq!(tok(b"$-2\r\n"), Err(RedisParseError::InvalidLength));
        assert_eq!(tok(b"$x\r\n"), Err(RedisParseError::InvalidLength));
        assert_eq!(tok(b";?\r\n"), Err(RedisParseError::InvalidLength));
        assert_eq!(tok(b":12a\r\n"), Err(RedisParseError::Malformed));
        assert_eq!(tok(b"#x\r\n"), Err(RedisParseError::Malformed));
        assert_eq!(tok(b"+OK\n"), Err(RedisParseError::Malformed));
        assert_eq!(tok(b"\n"), Err(RedisParseError::UnknownType(b'\n')));
        assert_eq!(tok(b"GET x\r\n"), Err(RedisParseError::UnknownType(b'G')));
        let mut long = vec![b'a'; REDIS_MAX_LINE_LEN + 6];
        long[0] = b'+';
        assert_eq!(tok(&long), Err(RedisParseError::LineTooLong));
    }

    #[test]
    fn inline_commands() {
        let (args, used) = inline_command(b"set k \"a b\\n\\x41\" 'it\\'s'\r\nnext").unwrap().unwrap();
        assert_eq!(args, vec![b"set".to_vec(), b"k".to_vec(), b"a b\nA".to_vec(), b"it's".to_vec()]);
        assert_eq!(used, 27);
        assert_eq!(inline_command(b"PING\n"), Ok(Some((vec![b"PING".to_vec()], 5))));
        assert_eq!(inline_command(b"  \r\n"), Ok(Some((vec![], 4))));
        assert_eq!(inline_command(b"PING"), Ok(None));
        assert_eq!(inline_command(b"get \"abc\r\n"), Err(RedisParseError::Malformed));
        assert_eq!(inline_command(b"get \"abc\"x\r\n"), Err(RedisParseError::Malformed));
    }
}
