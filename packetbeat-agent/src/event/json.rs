//! JSON written straight into the output buffer: the pieces the event writer is made of.
//!
//! Events are the agent's hottest output path (one per transaction), so they are not built as
//! `serde_json::Value` trees and then serialized: static parts are written as byte literals, numbers
//! through `itoa`, strings and protocol values through `serde_json`'s own escaping, and dotted-key
//! [`Fields`](super::fields::Fields) become nested objects in one pass over their sorted keys.

use serde_json::Value;

use super::fields::Key;

/// Appends `s` as a JSON string (quoted and escaped). Most strings need no escaping and are found
/// so eight bytes at a time; the others go through `serde_json`'s escaping.
pub fn string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if needs_escape(b) {
        // Writing into a Vec cannot fail, and a &str always serializes.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    }
}

/// Appends as a JSON string the bytes `write` appends (which must be UTF-8): written in place,
/// then checked, and only when they need escaping taken out and written again through [`string`].
/// A string assembled from parts (a URL) is so copied once rather than built apart, copied and
/// dropped.
pub fn string_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.push(b'"');
    write(out);
    if needs_escape(out.get(start + 1..).unwrap_or_default()) {
        let raw = out.split_off(start + 1);
        out.truncate(start);
        string(out, &crate::text::lossy(&raw));
    } else {
        out.push(b'"');
    }
}

/// [`string`] of one of the agent's own names (a protocol, a status), which need no escaping.
pub fn plain_string(out: &mut Vec<u8>, s: &str) {
    debug_assert!(!needs_escape(s.as_bytes()), "{s}");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether `b` may hold a byte JSON must escape (`"`, `\\`, or below 0x20). The word test can say
/// yes for a string that is fine (borrows between lanes), never no for one that is not.
fn needs_escape(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero_lane = |v: u64| v.wrapping_sub(LO) & !v & HI;
    let (words, rest) = b.as_chunks::<8>();
    words.iter().any(|w| {
        let v = u64::from_le_bytes(*w);
        (v.wrapping_sub(LO * 0x20) & !v & HI)
            | zero_lane(v ^ (LO * u64::from(b'"')))
            | zero_lane(v ^ (LO * u64::from(b'\\')))
            != 0
    }) || rest.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

/// Appends any JSON value.
pub fn value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => string(out, s),
        Value::Number(n) if let Some(u) = n.as_u64() => uint(out, u),
        _ => {
            let _ = serde_json::to_writer(&mut *out, v);
        }
    }
}

/// Appends an unsigned integer.
pub fn uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `"key":`, preceded by a comma unless this is the first member of its object. For the
/// writer's own names, which need no escaping.
#[inline]
pub fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    debug_assert!(!needs_escape(k.as_bytes()), "{k}");
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// [`key`] for a name that came with the data: escaped when it must be.
fn data_key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    string(out, k);
    out.push(b':');
}

/// Whether dotted key `k` is `name` or lies under it (`name.…`).
fn under(k: &str, name: &str) -> bool {
    k.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// The groups of sorted `entries` (whose keys all share their first `off` bytes, a prefix ending in
/// `.`) by the next name: for `a.b`, `a.c`, `d` at offset 0, `("a", [a.b, a.c])` then `("d", [d])`.
pub fn groups(entries: &[(Key, Value)], off: usize) -> impl Iterator<Item = (&str, &[(Key, Value)])> {
    let mut i = 0;
    std::iter::from_fn(move || {
        let (k, _) = entries.get(i)?;
        let rest = k.get(off..).unwrap_or_default();
        let head = rest.split_once('.').map_or(rest, |(h, _)| h);
        let mut j = i + 1;
        while entries.get(j).is_some_and(|(k2, _)| under(k2.get(off..).unwrap_or_default(), head)) {
            j += 1;
        }
        let group = entries.get(i..j).unwrap_or_default();
        i = j;
        Some((head, group))
    })
}

/// Writes the value of entry `i` (an index into the slice the writing started from).
pub type WriteValue<'a> = dyn FnMut(&mut Vec<u8>, usize) + 'a;

/// Writes one of [`groups`] as a member: `"head":value`, or `"head":{…}` when it has keys under it
/// (a name that is both a value and an object, `a` and `a.b`, is written as the object).
pub fn group(out: &mut Vec<u8>, first: &mut bool, head: &str, group: &[(Key, Value)], off: usize) {
    group_with(out, first, head, group, off, 0, &mut |out, i| {
        if let Some((_, v)) = group.get(i) {
            value(out, v);
        }
    });
}

/// [`group`], with values written by `val`; `base` is the index of `group[0]` for `val`.
pub fn group_with(
    out: &mut Vec<u8>,
    first: &mut bool,
    head: &str,
    group: &[(Key, Value)],
    off: usize,
    base: usize,
    val: &mut WriteValue<'_>,
) {
    data_key(out, first, head);
    let Some(((k, _), rest)) = group.split_first() else { return out.extend_from_slice(b"null") };
    let is_leaf = k.len() == off + head.len();
    if is_leaf && rest.is_empty() {
        val(out, base);
    } else {
        out.push(b'{');
        let (children, base) = if is_leaf { (rest, base + 1) } else { (group, base) };
        members_with(out, children, off + head.len() + 1, base, &mut true, &|_| false, val);
        out.push(b'}');
    }
}

/// Writes sorted `entries`, whose keys all share their first `off` bytes (a prefix ending in `.`),
/// as members of the object being written: `a.b` and `a.c` become `"a":{"b":…,"c":…}`. Names
/// `skip` says yes to at this level are left out (the envelope writes them itself).
pub fn members(out: &mut Vec<u8>, entries: &[(Key, Value)], off: usize, first: &mut bool, skip: &dyn Fn(&str) -> bool) {
    members_with(out, entries, off, 0, first, skip, &mut |out, i| {
        if let Some((_, v)) = entries.get(i) {
            value(out, v);
        }
    });
}

/// [`members`], with values written by `val`; `base` is the index of `entries[0]` for `val`.
pub fn members_with(
    out: &mut Vec<u8>,
    entries: &[(Key, Value)],
    off: usize,
    base: usize,
    first: &mut bool,
    skip: &dyn Fn(&str) -> bool,
    val: &mut WriteValue<'_>,
) {
    let mut at = base;
    for (head, g) in groups(entries, off) {
        if !skip(head) {
            group_with(out, first, head, g, off, at, val);
        }
        at += g.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fields::Fields;

    fn render(f: &Fields, skip: &dyn Fn(&str) -> bool) -> Value {
        let mut f = f.clone();
        f.sort();
        let mut out = b"{".to_vec();
        members(&mut out, f.as_slice(), 0, &mut true, skip);
        out.push(b'}');
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn strings_are_escaped_exactly_when_needed() {
        let mut samples: Vec<String> =
            ["", "plain ascii text, long enough for words", "é ü ✓ 🙂", "a\"b", "back\\slash"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
        for c in 0u8..0x80 {
            samples.push(format!("0123456{}89abcdef", char::from(c)));
            samples.push(format!("{}", char::from(c)));
        }
        // Each byte that must be escaped, at every place of strings up to three words long.
        for c in ['"', '\\', '\0', '\n', '\u{1f}'] {
            for len in 1..=24 {
                for at in 0..len {
                    let mut s: Vec<char> = "abcdefghijklmnopqrstuvwx".chars().take(len).collect();
                    s[at] = c;
                    samples.push(s.into_iter().collect());
                }
            }
        }
        for s in samples {
            let mut out = Vec::new();
            string(&mut out, &s);
            assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
            // Written in place after other bytes, as a member's value is.
            let mut out = b"x:".to_vec();
            string_with(&mut out, |o| o.extend_from_slice(s.as_bytes()));
            assert_eq!(out, [b"x:".as_slice(), &serde_json::to_vec(&s).unwrap()].concat(), "{s:?}");
        }
    }

    #[test]
    fn nests_dotted_keys() {
        let mut f = Fields::new();
        f.insert("http.response.status_code", 200);
        f.insert("http.request.method", "GET");
        f.insert("url.full", "http://x/\"q\"");
        f.insert("http.version", "1.1");
        f.insert("http-x", true);
        f.insert("params", serde_json::json!(["a", 1]));
        let doc = render(&f, &|_| false);
        assert_eq!(
            doc,
            serde_json::json!({
                "http": {"request": {"method": "GET"}, "response": {"status_code": 200}, "version": "1.1"},
                "http-x": true,
                "url": {"full": "http://x/\"q\""},
                "params": ["a", 1],
            })
        );
    }

    #[test]
    fn skips_and_sections() {
        let mut f = Fields::new();
        for k in ["event.action", "event.outcome", "eventx", "network.forwarded_ip", "a", "a.b"] {
            f.insert(k, k);
        }
        let doc = render(&f, &|h| h == "event" || h == "network");
        assert_eq!(doc, serde_json::json!({"eventx": "eventx", "a": {"b": "a.b"}}));
        f.sort();
        let heads: Vec<(&str, usize)> = groups(f.as_slice(), 0).map(|(h, g)| (h, g.len())).collect();
        assert_eq!(heads, [("a", 2), ("event", 2), ("eventx", 1), ("network", 1)]);
    }
}
