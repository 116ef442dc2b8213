//! Protocol fields written straight as JSON members, for a protocol whose field names are all its
//! own constants (HTTP's `http.*`, `url.*`, `user_agent.*`).
//!
//! The generic way, [`Fields`](super::fields::Fields), collects dotted keys and values, sorts them
//! and nests them when the event is written. For HTTP that was a third of the cost of an event: a
//! `serde_json::Value` (most of them an owned `String`) per field, the sort, the match against the
//! cached document shapes, and dropping it all. A protocol that knows its fields writes them here
//! instead, in key order ([`key_order`](super::fields::key_order)), as values in objects it begins
//! and ends. The bytes are exactly what the generic writer makes of the same dotted keys and
//! values.

use serde_json::Value;

use super::json;

thread_local! {
    /// Emptied member buffers kept per thread by [`recycle`] (bounded in number and size).
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}
const MAX_SPARE: usize = 16;
const MAX_SPARE_CAPACITY: usize = 16 * 1024;
/// About what HTTP's members take, so they are written without growing the buffer.
const CAPACITY: usize = 512;

/// Keeps the buffer of a published transaction's members for the next [`Members::new`] on this
/// thread (the publisher calls this: a worker builds and publishes on the same thread).
pub fn recycle(mut buf: Vec<u8>) {
    if buf.capacity() >= CAPACITY && buf.capacity() <= MAX_SPARE_CAPACITY {
        buf.clear();
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < MAX_SPARE {
                spare.push(buf);
            }
        });
    }
}

/// Most objects open at once.
const MAX_DEPTH: usize = 8;

/// A member name as it is written after another member: `,"name":`. Made by `name!`, so the
/// bytes are a constant and writing a name is one copy.
#[derive(Clone, Copy, Debug, Default)]
pub struct Name(&'static str);

impl Name {
    /// `quoted` must be `,"name":` with a name that needs no escaping: use `name!`.
    #[must_use]
    pub const fn new(quoted: &'static str) -> Self {
        Self(quoted)
    }

    /// The name alone.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.0.get(2..self.0.len().saturating_sub(2)).unwrap_or_default()
    }

    /// The bytes to write: without the comma for the first member of an object.
    #[inline(always)]
    fn bytes(self, comma: bool) -> &'static [u8] {
        let b = self.0.as_bytes();
        if comma {
            b
        } else {
            b.get(1..).unwrap_or_default()
        }
    }
}

/// The [`Name`] of a member: `name!("status_code")`.
macro_rules! name {
    ($name:literal) => {
        $crate::event::members::Name::new(concat!(",\"", $name, "\":"))
    };
}
pub(crate) use name;

/// JSON members (`,"http":{"request":{…}},"url":{…}`) being written: values with [`Self::put_str`]
/// and friends, objects with [`Self::begin`] and [`Self::end`]. An object is written only once
/// something is put in it, so one that stays empty is left out. Every member at the top, the first
/// too, is preceded by a comma (they follow `"status":…`). Names must come in
/// [`key_order`](super::fields::key_order) (checked in debug builds).
#[derive(Debug)]
pub struct Members {
    out: Vec<u8>,
    /// The objects begun and not ended, innermost last.
    names: [Name; MAX_DEPTH],
    depth: usize,
    /// How many of them have been written (the others are opened by the next value).
    written: usize,
    /// The next member is not the first of its object.
    comma: bool,
    /// The dotted key written last.
    #[cfg(debug_assertions)]
    last: String,
}

impl Default for Members {
    fn default() -> Self {
        Self::new()
    }
}

impl Members {
    /// Writes into a buffer a published transaction gave back ([`recycle`]), else a new one.
    #[must_use]
    pub fn new() -> Self {
        let out = SPARE.with_borrow_mut(Vec::pop).unwrap_or_else(|| Vec::with_capacity(CAPACITY));
        Self {
            out,
            names: [Name::default(); MAX_DEPTH],
            depth: 0,
            written: 0,
            comma: true,
            #[cfg(debug_assertions)]
            last: String::new(),
        }
    }

    /// Begins object `name` in the current one.
    #[inline(always)]
    pub fn begin(&mut self, name: Name) {
        if let Some(slot) = self.names.get_mut(self.depth) {
            *slot = name;
        }
        debug_assert!(self.depth < MAX_DEPTH, "objects nested too deep");
        self.depth += 1;
    }

    /// Ends the object begun last.
    pub fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        if self.written > self.depth {
            self.out.push(b'}');
            self.written = self.depth;
            self.comma = true;
        }
    }

    /// Writes the objects still to open, then the name.
    #[inline(always)]
    fn name(&mut self, name: Name) {
        #[cfg(debug_assertions)]
        self.check_order(name);
        if self.written < self.depth {
            self.open();
        }
        // The comma apart: the name is then a constant wherever this is inlined, and is copied by
        // moves rather than a call to `memcpy` with one of two lengths.
        if self.comma {
            self.out.push(b',');
        }
        self.out.extend_from_slice(name.bytes(false));
        self.comma = true;
    }

    /// Writes the objects begun and not yet written.
    #[inline(never)]
    fn open(&mut self) {
        while self.written < self.depth {
            let open = self.names.get(self.written).copied().unwrap_or_default();
            self.out.extend_from_slice(open.bytes(self.comma));
            self.out.push(b'{');
            self.comma = false;
            self.written += 1;
        }
    }

    #[cfg(debug_assertions)]
    fn check_order(&mut self, name: Name) {
        let mut key: String = self.names.iter().take(self.depth).map(|n| format!("{}.", n.as_str())).collect();
        key.push_str(name.as_str());
        let after = self.last.is_empty() || super::fields::key_order(&self.last, &key).is_lt();
        assert!(after, "{key} written after {}", self.last);
        assert!(!key.starts_with(&format!("{}.", self.last)), "{key} under {}", self.last);
        self.last = key;
    }

    /// `name`: `value` as a JSON string.
    #[inline(always)]
    pub fn put_str(&mut self, name: Name, value: &str) {
        self.name(name);
        json::string(&mut self.out, value);
    }

    /// `name`: `value`, one of the writer's own constants, which need no escaping.
    #[inline(always)]
    pub fn put_plain(&mut self, name: Name, value: &'static str) {
        self.name(name);
        json::plain_string(&mut self.out, value);
    }

    /// `name`: the string `write` appends (UTF-8), written in place rather than built apart and
    /// copied (see [`json::string_with`]).
    #[inline(always)]
    pub fn put_string_with(&mut self, name: Name, write: impl FnOnce(&mut Vec<u8>)) {
        self.name(name);
        json::string_with(&mut self.out, write);
    }

    /// `name`: `value`, unless it is empty (the protocols leave empty strings out).
    #[inline(always)]
    pub fn put_nonempty(&mut self, name: Name, value: &str) {
        if !value.is_empty() {
            self.put_str(name, value);
        }
    }

    /// `name`: `value`.
    #[inline(always)]
    pub fn put_u64(&mut self, name: Name, value: u64) {
        self.name(name);
        json::uint(&mut self.out, value);
    }

    /// `name`: `value`, unless it is 0.
    #[inline(always)]
    pub fn put_nonzero(&mut self, name: Name, value: u64) {
        if value != 0 {
            self.put_u64(name, value);
        }
    }

    /// `name`: any JSON value.
    pub fn put_value(&mut self, name: Name, value: &Value) {
        self.name(name);
        json::value(&mut self.out, value);
    }

    /// The members, with the objects still begun ended.
    #[must_use]
    pub fn finish(mut self) -> Vec<u8> {
        while self.depth > 0 {
            self.end();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fields::Fields;

    /// The generic writer's members for the same keys and values.
    fn generic(pairs: &[(&'static str, Value)]) -> String {
        let f = Fields::sorted_from(pairs);
        let mut out = Vec::new();
        json::members(&mut out, f.as_slice(), 0, &mut false, &|_| false);
        String::from_utf8(out).unwrap()
    }

    /// A name made at run time.
    fn quoted(name: &str) -> Name {
        Name::new(Box::leak(format!(",\"{name}\":").into_boxed_str()))
    }

    /// The same, through [`Members`]: objects begun and ended as the dotted keys say.
    fn direct(pairs: &[(&'static str, Value)]) -> String {
        recycle(b"left over".iter().copied().cycle().take(CAPACITY).collect());
        let mut m = Members::new();
        let mut open: Vec<&'static str> = Vec::new();
        for (k, v) in pairs {
            let names: Vec<&'static str> = k.split('.').collect();
            let (leaf, path) = names.split_last().unwrap();
            let shared = open.iter().zip(path).take_while(|(a, b)| a == b).count();
            while open.len() > shared {
                m.end();
                open.pop();
            }
            for name in &path[shared..] {
                m.begin(quoted(name));
                open.push(name);
            }
            m.put_value(quoted(leaf), v);
        }
        String::from_utf8(m.finish()).unwrap()
    }

    #[test]
    fn same_bytes_as_the_generic_writer() {
        let cases: [&[(&'static str, Value)]; 4] = [
            &[],
            &[("a", 1.into())],
            &[
                ("http.request.body.bytes", 3.into()),
                ("http.request.bytes", 90.into()),
                ("http.request.headers.content-length", 0.into()),
                ("http.request.method", "GET".into()),
                ("http.response.headers", serde_json::json!({"a": "b\"c"})),
                ("http.response.status_code", 200.into()),
                ("http.version", "1.1".into()),
                ("url.domain", "x".into()),
                ("url.port", 8080.into()),
                ("user.name", "é".into()),
                ("user_agent.original", "curl".into()),
            ],
            &[("a.b.c.d", 1.into()), ("a.e", 2.into()), ("f.g.h", 3.into()), ("i", 4.into())],
        ];
        for pairs in cases {
            let out = direct(pairs);
            assert_eq!(out, generic(pairs));
            if !out.is_empty() {
                let _: Value = serde_json::from_str(&format!("{{\"s\":0{out}}}")).unwrap();
            }
        }
    }

    #[test]
    fn empty_values_and_objects_are_left_out() {
        let mut m = Members::new();
        m.begin(name!("a"));
        m.put_nonzero(name!("b"), 0);
        m.put_nonempty(name!("c"), "");
        m.put_nonzero(name!("d"), 7);
        m.put_nonempty(name!("e"), "x");
        m.begin(name!("f"));
        m.put_nonempty(name!("g"), "");
        m.end();
        m.end();
        m.begin(name!("h"));
        m.end();
        m.begin(name!("i"));
        m.begin(name!("j"));
        m.put_u64(name!("k"), 1);
        assert_eq!(String::from_utf8(m.finish()).unwrap(), r#","a":{"d":7,"e":"x"},"i":{"j":{"k":1}}"#);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written after")]
    fn keys_out_of_order_are_a_bug() {
        let mut m = Members::new();
        m.begin(name!("url"));
        m.put_u64(name!("path"), 1);
        m.put_u64(name!("domain"), 2);
    }
}
