//! The HTTP/1.x wire parser: pure functions over `&[u8]`, no state, no allocation, no logging.
//!
//! * [`parse_head`] reads a start line and headers with `httparse` (lenient settings, a fixed array of
//!   [`HTTP_MAX_HEADERS`] headers, heads up to [`HTTP_MAX_HEAD_LEN`] bytes).
//! * [`Framing::of`] extracts what decides where the body ends (Content-Length, chunked, Connection),
//!   and [`body_kind`] applies Packetbeat's rules to it.
//! * [`find_message_start`] scans for the next plausible start line after a gap or a parse error.
//!
//! Every function is total: any input gives a value or an [`HttpParseError`], never a panic, which is
//! what the fuzz target relies on.

use std::mem::MaybeUninit;

use httparse::{Header, ParserConfig, Status};

/// The most headers one message may carry.
pub const HTTP_MAX_HEADERS: usize = 100;
/// Room for the headers of one head, left uninitialized: only the slots a head fills are written
/// (initializing all of them cost more than parsing a small head).
pub type HeaderSlots<'b> = [MaybeUninit<Header<'b>>; HTTP_MAX_HEADERS];

/// Fresh [`HeaderSlots`].
#[must_use]
pub const fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; HTTP_MAX_HEADERS]
}

/// The longest head (start line + headers) accepted before the direction resynchronises.
pub const HTTP_MAX_HEAD_LEN: usize = 64 * 1024;
/// The longest start line considered while resynchronising.
pub const HTTP_MAX_START_LINE: usize = 8 * 1024;
/// The longest chunk-size line (with extensions) or trailer line.
pub const HTTP_MAX_CHUNK_LINE: usize = 4 * 1024;

/// Why bytes are not HTTP/1.x.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpParseError {
    /// The start line or a header is malformed.
    Malformed(httparse::Error),
    /// The head is longer than [`HTTP_MAX_HEAD_LEN`] without ending.
    HeadTooLong,
    /// A chunk-size line is malformed or too long.
    InvalidChunk,
}

/// First line of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'b> {
    /// `METHOD target HTTP/1.x`.
    Request {
        /// Method as sent.
        method: &'b str,
        /// Request target (URI) as sent.
        target: &'b str,
    },
    /// `HTTP/1.x code reason`.
    Response {
        /// Status code.
        code: u16,
        /// Reason phrase as sent (empty when missing or not visible ASCII).
        reason: &'b str,
    },
}

/// A parsed message head borrowing the input and the caller's header array.
#[derive(Debug)]
pub struct HttpHead<'h, 'b> {
    /// The start line.
    pub start: StartLine<'b>,
    /// Minor version: `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Headers in wire order.
    pub headers: &'h [Header<'b>],
    /// Length of the head in bytes, including the final empty line.
    pub len: usize,
}

impl HttpHead<'_, '_> {
    /// Whether this is a request.
    #[must_use]
    pub const fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
}

fn lenient() -> ParserConfig {
    let mut c = ParserConfig::default();
    c.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    c
}

/// Parses a message head at the start of `buf`. `Ok(None)`: incomplete, more bytes needed.
///
/// # Errors
/// When the bytes are not an HTTP/1.x head, or the head is longer than [`HTTP_MAX_HEAD_LEN`].
pub fn parse_head<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [MaybeUninit<Header<'b>>],
) -> Result<Option<HttpHead<'h, 'b>>, HttpParseError> {
    let body = buf.iter().position(|&b| b != b'\r' && b != b'\n').map_or(&[][..], |i| &buf[i..]);
    let cap = body.len().min(5);
    let is_response = if b"HTTP/".starts_with(&body[..cap]) {
        if cap < 5 {
            return if buf.len() > HTTP_MAX_HEAD_LEN { Err(HttpParseError::HeadTooLong) } else { Ok(None) };
        }
        true
    } else {
        false
    };
    let parsed = if is_response {
        let mut res = httparse::Response::new(&mut []);
        match lenient().parse_response_with_uninit_headers(&mut res, buf, headers) {
            Ok(Status::Complete(len)) => {
                let httparse::Response { version, code, reason, headers } = res;
                Some(HttpHead {
                    start: StartLine::Response { code: code.unwrap_or(0), reason: reason.unwrap_or("") },
                    minor_version: version.unwrap_or(0),
                    headers,
                    len,
                })
            }
            Ok(Status::Partial) => None,
            Err(e) => return Err(HttpParseError::Malformed(e)),
        }
    } else {
        let mut req = httparse::Request::new(&mut []);
        match lenient().parse_request_with_uninit_headers(&mut req, buf, headers) {
            Ok(Status::Complete(len)) => {
                let httparse::Request { method, path, version, headers } = req;
                Some(HttpHead {
                    start: StartLine::Request { method: method.unwrap_or(""), target: path.unwrap_or("") },
                    minor_version: version.unwrap_or(0),
                    headers,
                    len,
                })
            }
            Ok(Status::Partial) => None,
            Err(e) => return Err(HttpParseError::Malformed(e)),
        }
    };
    match parsed {
        Some(head) if head.len <= HTTP_MAX_HEAD_LEN => Ok(Some(head)),
        Some(_) => Err(HttpParseError::HeadTooLong),
        None if buf.len() > HTTP_MAX_HEAD_LEN => Err(HttpParseError::HeadTooLong),
        None => Ok(None),
    }
}

/// Header value with surrounding spaces and tabs removed.
#[must_use]
pub fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    v.get(start..end.max(start)).unwrap_or_default()
}

/// Leading decimal digits of `v` (after spaces), as Packetbeat's `parseInt`; `0` when there are none.
#[must_use]
pub fn parse_decimal(v: &[u8]) -> u64 {
    trim(v)
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |acc, &d| acc.saturating_mul(10).saturating_add(u64::from(d - b'0')))
}

/// What the headers say about the body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Framing {
    /// `Content-Length` value (the last one wins; garbage counts as 0), when present.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding` ends in `chunked`.
    pub chunked: bool,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
}

impl Framing {
    /// Reads the framing headers.
    #[must_use]
    pub fn of(headers: &[Header<'_>]) -> Self {
        let mut f = Self::default();
        for h in headers {
            f.read(KnownHeader::of(h.name), h.value);
        }
        f
    }

    /// Reads one header (a later one replaces what an earlier one of the same name said).
    pub fn read(&mut self, name: KnownHeader, value: &[u8]) {
        match name {
            KnownHeader::ContentLength => self.content_length = Some(parse_decimal(value)),
            KnownHeader::TransferEncoding => {
                self.chunked =
                    value.rsplit(|&b| b == b',').next().is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"));
            }
            KnownHeader::Connection => {
                let v = trim(value);
                self.close = v.eq_ignore_ascii_case(b"close");
                self.keep_alive = v.eq_ignore_ascii_case(b"keep-alive");
            }
            _ => {}
        }
    }
}

/// The headers the agent reads, by name (case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownHeader {
    /// `Content-Type`.
    ContentType,
    /// `Content-Length`.
    ContentLength,
    /// `Transfer-Encoding`.
    TransferEncoding,
    /// `Content-Encoding`.
    ContentEncoding,
    /// `Connection`.
    Connection,
    /// `Host`.
    Host,
    /// `Referer`.
    Referer,
    /// `User-Agent`.
    UserAgent,
    /// Any other name.
    Other,
}

impl KnownHeader {
    /// Which header `name` is. The length picks the one candidate name to compare with, so a
    /// header costs one comparison rather than one per name the agent reads.
    #[must_use]
    pub fn of(name: &str) -> Self {
        const HOST: Folded = Folded::of("host");
        const REFERER: Folded = Folded::of("referer");
        const USER_AGENT: Folded = Folded::of("user-agent");
        const CONNECTION: Folded = Folded::of("connection");
        const CONTENT_TYPE: Folded = Folded::of("content-type");
        const CONTENT_LENGTH: Folded = Folded::of("content-length");
        const CONTENT_ENCODING: Folded = Folded::of("content-encoding");
        const TRANSFER_ENCODING: Folded = Folded::of("transfer-encoding");
        let is = |known: &Folded| known.matches(name.as_bytes());
        match name.len() {
            4 if is(&HOST) => Self::Host,
            7 if is(&REFERER) => Self::Referer,
            10 if is(&USER_AGENT) => Self::UserAgent,
            10 if is(&CONNECTION) => Self::Connection,
            12 if is(&CONTENT_TYPE) => Self::ContentType,
            14 if is(&CONTENT_LENGTH) => Self::ContentLength,
            16 if is(&CONTENT_ENCODING) => Self::ContentEncoding,
            17 if is(&TRANSFER_ENCODING) => Self::TransferEncoding,
            _ => Self::Other,
        }
    }
}

/// A lower-case header name (letters and `-`) as little-endian words, with the case bit of each
/// letter, so another name is compared with it a word at a time, ignoring ASCII case.
struct Folded {
    words: [u64; 3],
    letters: [u64; 3],
}

impl Folded {
    const fn of(name: &str) -> Self {
        let b = name.as_bytes();
        let mut f = Self { words: [0; 3], letters: [0; 3] };
        let mut i = 0;
        while i < b.len() {
            f.words[i / 8] |= (b[i] as u64) << (8 * (i % 8));
            if b[i].is_ascii_lowercase() {
                f.letters[i / 8] |= 0x20 << (8 * (i % 8));
            }
            i += 1;
        }
        f
    }

    /// Whether `name` (as long as this one, at most 24 bytes) spells this name in any case: a letter
    /// matches with its case bit set, any other byte only itself.
    fn matches(&self, name: &[u8]) -> bool {
        let (words, tail) = name.as_chunks::<8>();
        let mut last = 0u64;
        for (i, &b) in tail.iter().enumerate() {
            last |= u64::from(b) << (8 * i);
        }
        let at = words.len();
        at < 3
            && words.iter().enumerate().all(|(i, w)| u64::from_le_bytes(*w) | self.letters[i] == self.words[i])
            && last | self.letters[at] == self.words[at]
    }
}

/// How the body of a message is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: the message ends with its head.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the sender closes the connection.
    UntilClose,
}

/// Packetbeat's body rules: 1xx/204/304 responses and responses to HEAD have no body; chunked wins over
/// Content-Length; a request without either has no body; a response without either is read until
/// close with `Connection: close` or on HTTP/1.0 without keep-alive, and is empty otherwise.
#[must_use]
pub fn body_kind(head: &HttpHead<'_, '_>, framing: &Framing, answers_head_request: bool) -> BodyKind {
    if let StartLine::Response { code, .. } = head.start {
        if (100..200).contains(&code) || code == 204 || code == 304 || answers_head_request {
            return BodyKind::None;
        }
    }
    if framing.chunked {
        return BodyKind::Chunked;
    }
    match framing.content_length {
        Some(0) => BodyKind::None,
        Some(n) => BodyKind::Length(n),
        None if head.is_request() => BodyKind::None,
        None if framing.close || (head.minor_version == 0 && !framing.keep_alive) => BodyKind::UntilClose,
        None => BodyKind::None,
    }
}

/// Result of looking for a message start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// A plausible start line begins at this offset.
    Found(usize),
    /// A line starting at this offset may be a start line; more bytes are needed to tell.
    NeedMore(usize),
    /// No start line in the buffer. Everything can be dropped; `at_line_start` tells whether the next
    /// byte begins a line.
    NotFound {
        /// The buffer ends with a newline.
        at_line_start: bool,
    },
}

/// Looks for the next line that looks like a request line (`METHOD SP target SP HTTP/1.x`) or a
/// status line (`HTTP/1.x NNN`). Offset 0 is a candidate only when `at_line_start`.
#[must_use]
pub fn find_message_start(buf: &[u8], at_line_start: bool) -> Boundary {
    let mut candidate = if at_line_start { Some(0) } else { None };
    let mut from = 0;
    loop {
        if let Some(at) = candidate {
            if at >= buf.len() {
                return Boundary::NotFound { at_line_start: true };
            }
            match probe_start_line(buf.get(at..).unwrap_or_default()) {
                Probe::Yes => return Boundary::Found(at),
                Probe::NeedMore => return Boundary::NeedMore(at),
                Probe::No => {}
            }
            from = at;
        }
        match buf.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) {
            Some(nl) => candidate = Some(from + nl + 1),
            None => return Boundary::NotFound { at_line_start: buf.last() == Some(&b'\n') },
        }
    }
}

/// Whether a start line begins the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    Yes,
    No,
    NeedMore,
}

fn probe_start_line(line: &[u8]) -> Probe {
    if line.is_empty() {
        return Probe::NeedMore;
    }
    let status = b"HTTP/1.";
    let n = line.len().min(status.len());
    if line[..n] == status[..n] {
        return probe_status_line(line);
    }
    probe_request_line(line)
}

/// `HTTP/1.x NNN` (`#` stands for a digit).
fn probe_status_line(line: &[u8]) -> Probe {
    const PATTERN: &[u8] = b"HTTP/1.# ###";
    for (i, &want) in PATTERN.iter().enumerate() {
        let Some(&b) = line.get(i) else {
            return Probe::NeedMore;
        };
        if !(if want == b'#' { b.is_ascii_digit() } else { b == want }) {
            return Probe::No;
        }
    }
    Probe::Yes
}

/// `METHOD SP target SP HTTP/1.x CRLF` with an upper-case method of at most 20 characters.
fn probe_request_line(line: &[u8]) -> Probe {
    let limit = line.len().min(HTTP_MAX_START_LINE);
    let window = &line[..limit];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        if limit == HTTP_MAX_START_LINE || !plausible_request_prefix(window) {
            return Probe::No;
        }
        return Probe::NeedMore;
    };
    let text = window[..end].strip_suffix(b"\r").unwrap_or(&window[..end]);
    let mut parts = text.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Probe::No;
    };
    let ok = is_method(method)
        && !target.is_empty()
        && target.iter().all(|&b| b > b' ' && b != 0x7f)
        && version.len() == 8
        && version.starts_with(b"HTTP/1.")
        && version[7].is_ascii_digit();
    if ok {
        Probe::Yes
    } else {
        Probe::No
    }
}

fn is_method(m: &[u8]) -> bool {
    (1..=20).contains(&m.len()) && m.iter().all(|&b| b.is_ascii_uppercase() || b == b'-' || b == b'_')
}

/// A line that has not ended yet could still become a request line.
fn plausible_request_prefix(partial: &[u8]) -> bool {
    let method_end = partial.iter().position(|&b| b == b' ').unwrap_or(partial.len());
    let method = &partial[..method_end];
    if method.len() > 20 || !method.iter().all(|&b| b.is_ascii_uppercase() || b == b'-' || b == b'_') {
        return false;
    }
    partial.iter().all(|&b| b >= b' ' && b != 0x7f || b == b'\r')
}

/// Parses a chunk-size line at the start of `buf`: `Ok(Some((line_len, size)))`, `Ok(None)` when the
/// line is not complete yet.
///
/// # Errors
/// [`HttpParseError::InvalidChunk`] for a malformed or overlong line.
pub fn parse_chunk_size(buf: &[u8]) -> Result<Option<(usize, u64)>, HttpParseError> {
    match httparse::parse_chunk_size(buf) {
        Ok(Status::Complete((len, size))) => Ok(Some((len, size))),
        Ok(Status::Partial) if buf.len() < HTTP_MAX_CHUNK_LINE => Ok(None),
        Ok(Status::Partial) | Err(_) => Err(HttpParseError::InvalidChunk),
    }
}

/// Length of the line at the start of `buf` including its `\n`, `Ok(None)` when incomplete.
///
/// # Errors
/// [`HttpParseError::InvalidChunk`] when the line exceeds [`HTTP_MAX_CHUNK_LINE`].
pub fn line_len(buf: &[u8]) -> Result<Option<usize>, HttpParseError> {
    match buf.iter().take(HTTP_MAX_CHUNK_LINE).position(|&b| b == b'\n') {
        Some(i) => Ok(Some(i + 1)),
        None if buf.len() < HTTP_MAX_CHUNK_LINE => Ok(None),
        None => Err(HttpParseError::InvalidChunk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed<'b> = (StartLine<'b>, u8, usize, Vec<(String, Vec<u8>)>);

    fn head(buf: &[u8]) -> Result<Option<Parsed<'_>>, HttpParseError> {
        let mut hdrs = header_slots();
        parse_head(buf, &mut hdrs).map(|o| {
            o.map(|h| {
                let list = h.headers.iter().map(|x| (x.name.to_owned(), x.value.to_vec())).collect();
                (h.start, h.minor_version, h.len, list)
            })
        })
    }

    #[test]
    fn request_and_response_heads() {
        let (start, minor, len, hdrs) =
            head(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc").unwrap().unwrap();
        assert_eq!(start, StartLine::Request { method: "GET", target: "/a?b=1" });
        assert_eq!((minor, len, hdrs.len()), (1, 51, 2));
        let (start, minor, _, _) = head(b"HTTP/1.0 404 Not Found\r\n\r\n").unwrap().unwrap();
        assert_eq!(start, StartLine::Response { code: 404, reason: "Not Found" });
        assert_eq!(minor, 0);
    }

    #[test]
    fn incomplete_and_garbage_heads() {
        assert!(head(b"").unwrap().is_none());
        assert!(head(b"HT").unwrap().is_none());
        assert!(head(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(head(b"\x16\x03\x01\x02\x00\x01").is_err());
        assert!(head(b"HTTP/9.9 200 OK\r\n\r\n").is_err());
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(HTTP_MAX_HEAD_LEN + 10, b'a');
        assert_eq!(head(&long).unwrap_err(), HttpParseError::HeadTooLong);
    }

    #[test]
    fn framing_and_body_rules() {
        let mut hdrs = header_slots();
        let h =
            parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n", &mut hdrs)
                .unwrap()
                .unwrap();
        let f = Framing::of(h.headers);
        assert!(f.chunked);
        assert_eq!(body_kind(&h, &f, false), BodyKind::Chunked);
        assert_eq!(body_kind(&h, &f, true), BodyKind::None);

        let mut hdrs = header_slots();
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n", &mut hdrs).unwrap().unwrap();
        assert_eq!(body_kind(&h, &Framing::of(h.headers), false), BodyKind::UntilClose);
        let mut hdrs = header_slots();
        let h = parse_head(b"HTTP/1.1 200 OK\r\n\r\n", &mut hdrs).unwrap().unwrap();
        assert_eq!(body_kind(&h, &Framing::of(h.headers), false), BodyKind::None);
        let mut hdrs = header_slots();
        let h = parse_head(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", &mut hdrs).unwrap().unwrap();
        assert_eq!(body_kind(&h, &Framing::of(h.headers), false), BodyKind::None);
        let mut hdrs = header_slots();
        let h = parse_head(b"POST / HTTP/1.1\r\nContent-Length:  12x\r\n\r\n", &mut hdrs).unwrap().unwrap();
        assert_eq!(body_kind(&h, &Framing::of(h.headers), false), BodyKind::Length(12));
    }

    #[test]
    fn resync_finds_start_lines() {
        assert_eq!(find_message_start(b"GET / HTTP/1.1\r\n", true), Boundary::Found(0));
        assert_eq!(find_message_start(b"GET / HTTP/1.1\r\n", false), Boundary::NotFound { at_line_start: true });
        assert_eq!(find_message_start(b"xx\r\nHTTP/1.1 200 OK\r\n", false), Boundary::Found(4));
        assert_eq!(find_message_start(b"xx\nHTTP/1", false), Boundary::NeedMore(3));
        assert_eq!(find_message_start(b"xx\nPOST /upl", false), Boundary::NeedMore(3));
        assert_eq!(
            find_message_start(b"xx\npost / HTTP/1.1\r\nab", false),
            Boundary::NotFound { at_line_start: false }
        );
        assert_eq!(find_message_start(b"a\nb\nGET /x y HTTP/1.1\n", true), Boundary::NotFound { at_line_start: true });
        assert_eq!(find_message_start(b"\x00\x01\n", true), Boundary::NotFound { at_line_start: true });
    }

    #[test]
    fn chunk_lines() {
        assert_eq!(parse_chunk_size(b"1a;ext=1\r\nxx"), Ok(Some((10, 26))));
        assert_eq!(parse_chunk_size(b"1a"), Ok(None));
        assert!(parse_chunk_size(b"zz\r\n").is_err());
        assert_eq!(line_len(b"X-T: 1\r\nrest"), Ok(Some(8)));
        assert_eq!(line_len(b"X-T"), Ok(None));
    }

    #[test]
    fn decimal_and_trim() {
        assert_eq!(parse_decimal(b" 42 "), 42);
        assert_eq!(parse_decimal(b"abc"), 0);
        assert_eq!(parse_decimal(b"99999999999999999999999"), u64::MAX);
        assert_eq!(trim(b" \t a b\t "), b"a b");
        assert_eq!(trim(b"   "), b"");
    }

    #[test]
    fn known_headers_in_any_case_only() {
        for (name, want) in [
            ("host", KnownHeader::Host),
            ("HoSt", KnownHeader::Host),
            ("Referer", KnownHeader::Referer),
            ("USER-AGENT", KnownHeader::UserAgent),
            ("Connection", KnownHeader::Connection),
            ("content-TYPE", KnownHeader::ContentType),
            ("Content-Length", KnownHeader::ContentLength),
            ("Content-Encoding", KnownHeader::ContentEncoding),
            ("Transfer-Encoding", KnownHeader::TransferEncoding),
            ("user_agent", KnownHeader::Other),
            ("user\ragent", KnownHeader::Other),
            ("hosts", KnownHeader::Other),
            ("hos", KnownHeader::Other),
            ("", KnownHeader::Other),
            ("x-transfer-encoding-and-more", KnownHeader::Other),
        ] {
            assert_eq!(KnownHeader::of(name), want, "{name}");
        }
        // Every byte that is not the letter (either case) or the `-` breaks the match.
        for b in 0..=255u8 {
            for at in [0, 4] {
                let mut name = b"user-agent".to_vec();
                let same = name[at].eq_ignore_ascii_case(&b);
                name[at] = b;
                let Ok(name) = String::from_utf8(name) else { continue };
                assert_eq!(KnownHeader::of(&name) == KnownHeader::UserAgent, same, "{name:?}");
            }
        }
    }
}
