//! The parts of Go's `net/url` that Packetbeat's HTTP fields depend on, reproduced byte for byte:
//! `url.Parse` of a request target (path and raw query), `url.ParseQuery`, `url.Values.Encode`
//! (keys sorted, `+` for space, upper-case percent escapes) and `url.URL.String` for `url.full`.
//!
//! Values are kept as bytes because percent-decoding may yield invalid UTF-8; they become strings
//! only in the event (lossily, as Go's JSON encoder does).

use std::collections::BTreeMap;

use crate::text::lossy_owned;

/// `url.Values`: sorted keys, values in arrival order.
pub type Values = BTreeMap<Vec<u8>, Vec<Vec<u8>>>;

/// The path and raw query of a request target, as Go's `url.Parse` splits them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target<'a> {
    /// Percent-decoded path (`u.Path`).
    pub path: Vec<u8>,
    /// Query without the `?` (`u.RawQuery`).
    pub raw_query: &'a str,
}

/// Go `url.Parse(target)`; `None` where Go returns an error (control bytes, bad escapes, a colon in
/// the first segment of a relative reference, a bad port).
#[must_use]
pub fn parse_target(target: &str) -> Option<Target<'_>> {
    if let Some(plain) = plain_origin_form(target) {
        return Some(plain);
    }
    if target.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return None;
    }
    let rest = target.split_once('#').map_or(target, |(r, _)| r);
    if rest == "*" {
        return Some(Target { path: b"*".to_vec(), raw_query: "" });
    }
    let (has_scheme, rest) = match scheme_len(rest)? {
        0 => (false, rest),
        n => (true, rest.get(n + 1..).unwrap_or_default()),
    };
    let (rest, raw_query) = rest.split_once('?').unwrap_or((rest, ""));
    if !rest.starts_with('/') {
        if has_scheme {
            // Opaque URL (`mailto:x`): no path.
            return Some(Target { path: Vec::new(), raw_query });
        }
        let first_segment = rest.split('/').next().unwrap_or_default();
        if first_segment.contains(':') {
            return None;
        }
    }
    let mut path = rest;
    if (has_scheme || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let end = authority_and_path.find('/').unwrap_or(authority_and_path.len());
        let authority = &authority_and_path[..end];
        if !valid_authority(authority) {
            return None;
        }
        path = &authority_and_path[end..];
    }
    Some(Target { path: unescape(path.as_bytes(), false)?, raw_query })
}

/// The common target, `/path[?query]` with no fragment, control byte or escape in the path (and
/// not `//…`, which names an authority), split in one pass; `None` sends any other to the general
/// parse, which gives the same result for these.
fn plain_origin_form(target: &str) -> Option<Target<'_>> {
    let b = target.as_bytes();
    if b.first() != Some(&b'/') || b.get(1) == Some(&b'/') {
        return None;
    }
    let mut query_at = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            0..=0x1f | 0x7f | b'#' => return None,
            b'%' if query_at.is_none() => return None,
            b'?' if query_at.is_none() => query_at = Some(i),
            _ => {}
        }
    }
    let (path, raw_query) = match query_at {
        Some(i) => (target.get(..i)?, target.get(i + 1..)?),
        None => (target, ""),
    };
    Some(Target { path: path.as_bytes().to_vec(), raw_query })
}

/// Length of a leading `scheme` (before `:`), 0 when there is none; `None` for Go's "missing
/// protocol scheme" error (a leading `:`).
fn scheme_len(s: &str) -> Option<usize> {
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some(i),
            _ => return Some(0),
        }
    }
    Some(0)
}

/// Go's host check, reduced to what matters here: an optional `:port` must be digits.
fn valid_authority(authority: &str) -> bool {
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if host.starts_with('[') {
        match host.find(']') {
            Some(i) => &host[i + 1..],
            None => return false,
        }
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    port.is_empty() || (port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()))
}

/// Go `unescape`: `%XX` decoded, and `+` as space when `plus_is_space` (query components).
/// `None` for a bad escape.
fn unescape(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    if !s.iter().any(|&b| b == b'%' || (plus_is_space && b == b'+')) {
        // Nothing to decode (most paths): one copy.
        return Some(s.to_vec());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'%' => {
                let hi = hex_val(*s.get(i + 1)?)?;
                let lo = hex_val(*s.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Go `url.ParseQuery`: pairs split on `&`; pairs with `;` or a bad escape are skipped and make the
/// result an error, but the valid pairs are still returned (the bool is `true` when there was an error).
#[must_use]
pub fn parse_query(query: &[u8]) -> (Values, bool) {
    let mut values = Values::new();
    let mut failed = false;
    for pair in query.split(|&b| b == b'&') {
        if pair.contains(&b';') {
            failed = true;
            continue;
        }
        if pair.is_empty() {
            continue;
        }
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        match (unescape(key, true), unescape(value, true)) {
            (Some(k), Some(v)) => values.entry(k).or_default().push(v),
            _ => failed = true,
        }
    }
    (values, failed)
}

/// Whether [`encode_values`] of [`parse_query`] gives `query` back unchanged, seen without parsing:
/// non-empty `key=value` pairs with one `=` each, made of bytes `url.QueryEscape` keeps (so nothing
/// to decode or escape), keys in sorted order. Most query strings are: they are then used as they
/// are, without building the map.
#[must_use]
pub fn is_canonical_query(query: &[u8]) -> bool {
    let mut last_key: &[u8] = &[];
    query.is_empty()
        || query.split(|&b| b == b'&').all(|pair| {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else { return false };
            let (key, value) = (&pair[..eq], &pair[eq + 1..]);
            let plain = |s: &[u8]| s.iter().all(|&b| QUERY[usize::from(b)] == AS_IS);
            let sorted = key >= last_key;
            last_key = key;
            !key.is_empty() && sorted && plain(key) && plain(value)
        })
}

/// Go `url.Values.Encode`.
#[must_use]
pub fn encode_values(values: &Values) -> String {
    let mut out = Vec::new();
    for (key, list) in values {
        for value in list {
            if !out.is_empty() {
                out.push(b'&');
            }
            escape_into(&mut out, key, &QUERY);
            out.push(b'=');
            escape_into(&mut out, value, &QUERY);
        }
    }
    // ASCII, as escape_into writes it; lossy only to stay total.
    lossy_owned(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// What a Go escape mode leaves as it is, per byte; `+` in [`QUERY`] stands for the space.
type Keep = [u8; 256];
const ESCAPE: u8 = 0;
const AS_IS: u8 = 1;
const PLUS: u8 = 2;

/// Unreserved bytes (`A-Z a-z 0-9 - _ . ~`) and `extra` kept as they are, `space` for the space.
const fn keep(extra: &[u8], space: u8) -> Keep {
    let mut t = [ESCAPE; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            t[b] = AS_IS;
        }
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = AS_IS;
        i += 1;
    }
    t[b' ' as usize] = space;
    t
}

/// `url.QueryEscape`.
const QUERY: Keep = keep(b"", PLUS);
/// `escape(path, encodePath)`, as `url.URL.EscapedPath` does when there is no raw path.
const PATH: Keep = keep(b"$&+,/:;=@", ESCAPE);
/// `escape(host, encodeHost)`.
const HOST: Keep = keep(b"!$&'()*+,;=:[]<>\"", ESCAPE);

/// Appends `s` escaped as `keep` says, copying runs of bytes kept as they are in one go (URLs are
/// mostly such runs). The output is ASCII.
fn escape_into(out: &mut Vec<u8>, s: &[u8], keep: &Keep) {
    out.reserve(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        let run = rest.iter().position(|&b| keep[usize::from(b)] != AS_IS).unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(run);
        out.extend_from_slice(plain);
        let Some((&b, tail)) = tail.split_first() else { break };
        if keep[usize::from(b)] == PLUS {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        rest = tail;
    }
}

/// Packetbeat's `synthesizeFullURL`: appends `http://host[:port]/path?query`. Callers leave it out
/// without a host (or port). Every byte but the query's comes out escaped as ASCII, and the query is
/// text, so what is appended is UTF-8.
pub fn write_full_url(out: &mut Vec<u8>, domain: &str, port: u16, path: &[u8], query: &str) {
    out.reserve(16 + domain.len() + path.len() + query.len());
    out.extend_from_slice(b"http://");
    let bracket = domain.contains(':');
    if bracket {
        out.push(b'[');
    }
    escape_into(out, domain.as_bytes(), &HOST);
    if bracket {
        out.push(b']');
    }
    if port != 80 {
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(port).as_bytes());
    }
    if path.first().is_some_and(|&b| b != b'/') {
        out.push(b'/');
    }
    escape_into(out, path, &PATH);
    if !query.is_empty() {
        out.push(b'?');
        out.extend_from_slice(query.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(q: &str) -> String {
        encode_values(&parse_query(q.as_bytes()).0)
    }

    #[test]
    fn targets() {
        let t = parse_target("/dashboard/transactions?src_ip=192.35.243.1&input=packetbeat").unwrap();
        assert_eq!(t.path, b"/dashboard/transactions");
        assert_eq!(t.raw_query, "src_ip=192.35.243.1&input=packetbeat");
        assert_eq!(parse_target("/a%20b+c#frag").unwrap().path, b"/a b+c");
        assert_eq!(parse_target("http://example.com:8080/x?y").unwrap().path, b"/x");
        assert_eq!(parse_target("//host/p").unwrap().path, b"/p");
        assert_eq!(parse_target("*").unwrap().path, b"*");
        assert!(parse_target("/bad%zz").is_none());
        assert!(parse_target("/ctl\x01").is_none());
        assert!(parse_target("a:b/c").unwrap().path.is_empty()); // scheme "a", opaque
        assert!(parse_target("1a:b").is_none());
        assert!(parse_target("http://h:x/").is_none());
    }

    /// The one-pass split of plain targets agrees with the general parse, which it skips.
    #[test]
    fn plain_targets_split_as_the_general_parse_does() {
        // The same target behind a scheme and a host, which the fast path turns away.
        let general = |t: &str| {
            let t = format!("http://h{t}");
            parse_target(&t).map(|p| (p.path, p.raw_query.to_owned()))
        };
        for t in [
            "/",
            "/a",
            "/a/b.html",
            "/?",
            "/?x",
            "/a?b=1&c=%20",
            "/a?b?c",
            "/a?b/c",
            "/a+b",
            "/a:b",
            "/a;b",
            "/é",
            "/a b",
            "/a%20b",
            "/a#f",
            "/a?b#f",
            "/a\x01",
            "/a?\x7f",
            "//h/p",
            "///p",
        ] {
            if let Some(fast) = plain_origin_form(t) {
                assert_eq!(Some((fast.path.clone(), fast.raw_query.to_owned())), general(t), "{t:?}");
                assert_eq!(Some(fast), parse_target(t), "{t:?}");
            } else {
                assert!(
                    t.contains(['%', '#', '\x01', '\x7f']) || t.starts_with("//"),
                    "{t:?} should have been split by the fast path"
                );
            }
        }
    }

    #[test]
    fn values_encode_like_go() {
        assert_eq!(encoded("src_ip=192.35.243.1&input=packetbeat"), "input=packetbeat&src_ip=192.35.243.1");
        assert_eq!(encoded("user=monica&pass=secret"), "pass=secret&user=monica");
        assert_eq!(
            encoded("{ \"query\": { \"match_all\": {}}}\n"),
            "%7B+%22query%22%3A+%7B+%22match_all%22%3A+%7B%7D%7D%7D%0A="
        );
        assert_eq!(encoded("a=1&a=2&b=x+y%2Fz&&c"), "a=1&a=2&b=x+y%2Fz&c=");
        let (v, failed) = parse_query(b"a=1;b=2&c=%zz&d=4");
        assert!(failed);
        assert_eq!(encode_values(&v), "d=4");
    }

    #[test]
    fn canonical_queries_are_exactly_those_encoded_back_unchanged() {
        let canonical = ["", "id=0", "a=1&a=2&b=x", "a=&b=", "a-b=~.&a_b=Z9", "input=packetbeat&src_ip=192.35.243.1"];
        let other = [
            "src_ip=1&input=p", // unsorted
            "b=1&a=2&b=3",
            "a",
            "a=1&&b=2",
            "&a=1",
            "a=1&",
            "=1",
            "a=b=c",
            "a=x+y",
            "a=%41",
            "a=1;b=2",
            "a=\u{e9}",
            "a=1&A=2",
        ];
        for q in canonical {
            assert!(is_canonical_query(q.as_bytes()), "{q}");
            assert_eq!(encoded(q), q);
        }
        for q in other {
            assert!(!is_canonical_query(q.as_bytes()), "{q}");
        }
        // Every query of two pairs over a small alphabet: a query said canonical is encoded back
        // unchanged (turning one away only costs the fast path).
        let parts = ["", "a", "b", "a=", "b=1", "a=1", "a=+", "a=%7E", "=", "a=b=c"];
        for x in parts {
            for y in parts {
                let q = format!("{x}&{y}");
                if is_canonical_query(q.as_bytes()) {
                    assert_eq!(encoded(&q), q, "{q}");
                }
            }
        }
    }

    #[test]
    fn escape_modes_keep_what_go_keeps() {
        let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-_.~".contains(&b);
        for b in 0..=255u8 {
            let one = |keep: &Keep| {
                let mut out = Vec::new();
                escape_into(&mut out, &[b], keep);
                out
            };
            let hex = format!("%{b:02X}").into_bytes();
            let want = |kept: bool| if kept { vec![b] } else { hex.clone() };
            let query = if b == b' ' { b"+".to_vec() } else { want(unreserved(b)) };
            assert_eq!(one(&QUERY), query, "query {b}");
            assert_eq!(one(&PATH), want(unreserved(b) || b"$&+,/:;=@".contains(&b)), "path {b}");
            assert_eq!(one(&HOST), want(unreserved(b) || b"!$&'()*+,;=:[]<>\"".contains(&b)), "host {b}");
        }
        let mut out = Vec::new();
        escape_into(&mut out, "a b/ü?".as_bytes(), &PATH);
        assert_eq!(out, b"a%20b/%C3%BC%3F");
    }

    /// [`write_full_url`] as a string, `None` where it is left out.
    fn full_url(domain: &str, port: u16, path: &[u8], query: &str) -> Option<String> {
        if domain.is_empty() || port == 0 {
            return None;
        }
        let mut out = Vec::new();
        write_full_url(&mut out, domain, port, path, query);
        Some(String::from_utf8(out).expect("UTF-8"))
    }

    #[test]
    fn full_urls() {
        assert_eq!(full_url("www.example.com", 80, b"/", "").unwrap(), "http://www.example.com/");
        assert_eq!(full_url("h", 8080, b"/a b", "x=1").unwrap(), "http://h:8080/a%20b?x=1");
        assert_eq!(full_url("::1", 80, b"/", "").unwrap(), "http://[::1]/");
        assert_eq!(full_url("::1", 81, b"", "").unwrap(), "http://[::1]:81");
        assert_eq!(full_url("h", 80, b"x(1)", "").unwrap(), "http://h/x%281%29");
        assert!(full_url("", 80, b"/", "").is_none());
    }
}
