//! The JSON structure of a transaction's protocol fields, worked out once per set of keys.
//!
//! Nesting sorted dotted keys (`http.request.method`, `http.response.status_code`, `url.full`…) into
//! objects means finding, for every key, which objects close and open before its value. Successive
//! transactions of a protocol mostly carry the same keys (a GET answered 200, a POST answered 201…),
//! so that work is done once per distinct key list and kept: for each value, the bytes that go
//! before it (commas, closing braces, names, opening braces), and where the envelope's own sections
//! (`event.*`, `destination.*`, `related.*`…) start and end. Writing an event with a known list is
//! then copying those bytes between its values.
//!
//! The cache is owned by one worker's publisher (no locking) and bounded: a protocol that keeps
//! producing new key lists (names taken from the wire) only costs recomputation, never memory.

use serde_json::Value;

use super::fields::{same_key, Key};
use super::json;

/// Most key lists kept per publisher.
const MAX_SHAPES: usize = 32;

/// One key list's structure.
#[derive(Debug)]
struct Shape {
    keys: Vec<Key>,
    /// For each value written at the top level: its entry and the end of its prefix in `bytes`.
    plan: Vec<(u32, u32)>,
    /// The prefixes, one after the other, then what closes the last value's objects.
    bytes: Vec<u8>,
    /// Groups under a name the envelope writes itself: name length, first entry, end.
    sections: Vec<(u32, u32, u32)>,
}

impl Shape {
    fn build(fields: &[(Key, Value)], is_section: &dyn Fn(&str) -> bool) -> Self {
        let mut bytes = Vec::new();
        let mut plan = Vec::new();
        let mut sections = Vec::new();
        // Members follow `"status":…`, so even the first one starts with a comma.
        let mut first = false;
        let mut at = 0;
        for (head, group) in json::groups(fields, 0) {
            let start = at;
            at += group.len();
            if is_section(head) {
                sections.push((len32(head.len()), len32(start), len32(at)));
                continue;
            }
            json::group_with(&mut bytes, &mut first, head, group, 0, start, &mut |out, i| {
                plan.push((len32(i), len32(out.len())));
            });
        }
        Self { keys: fields.iter().map(|(k, _)| k.clone()).collect(), plan, bytes, sections }
    }

    fn matches(&self, fields: &[(Key, Value)]) -> bool {
        self.keys.len() == fields.len() && self.keys.iter().zip(fields).all(|(a, (b, _))| same_key(a, b))
    }

    fn write(&self, out: &mut Vec<u8>, fields: &[(Key, Value)]) {
        let mut from = 0;
        for &(i, end) in &self.plan {
            let end = end as usize;
            out.extend_from_slice(self.bytes.get(from..end).unwrap_or_default());
            if let Some((_, v)) = fields.get(i as usize) {
                json::value(out, v);
            }
            from = end;
        }
        out.extend_from_slice(self.bytes.get(from..).unwrap_or_default());
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The protocol fields of one event, written, with the envelope's sections found.
pub struct Written<'a> {
    fields: &'a [(Key, Value)],
    sections: &'a [(u32, u32, u32)],
}

impl<'a> Written<'a> {
    /// The fields under envelope name `name` (`event` → `event.action`, `event.outcome`…).
    #[must_use]
    pub fn section(&self, name: &str) -> &'a [(Key, Value)] {
        for &(len, start, end) in self.sections {
            let group = self.fields.get(start as usize..end as usize).unwrap_or_default();
            if group.first().is_some_and(|(k, _)| k.get(..len as usize) == Some(name)) {
                return group;
            }
        }
        &[]
    }
}

/// Recently seen key lists and their structure.
#[derive(Debug, Default)]
pub struct ShapeCache {
    shapes: Vec<Shape>,
    /// The slot the next new shape replaces once the cache is full.
    next: usize,
}

impl ShapeCache {
    /// Writes sorted `fields` as members of the open document, except the groups whose first name
    /// `is_section` says the envelope writes itself; returns where those are.
    pub fn write<'a>(
        &'a mut self,
        out: &mut Vec<u8>,
        fields: &'a [(Key, Value)],
        is_section: &dyn Fn(&str) -> bool,
    ) -> Written<'a> {
        let found = match self.shapes.iter().position(|s| s.matches(fields)) {
            Some(i) => i,
            None => {
                let shape = Shape::build(fields, is_section);
                if self.shapes.len() < MAX_SHAPES {
                    self.shapes.push(shape);
                    self.shapes.len() - 1
                } else {
                    let i = self.next;
                    self.next = (self.next + 1) % MAX_SHAPES;
                    self.shapes[i] = shape;
                    i
                }
            }
        };
        let shape = &self.shapes[found];
        shape.write(out, fields);
        Written { fields, sections: &shape.sections }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fields::Fields;

    fn fields(pairs: &[(&'static str, Value)]) -> Fields {
        Fields::sorted_from(pairs)
    }

    fn render(cache: &mut ShapeCache, f: &Fields) -> (String, Vec<String>) {
        let mut out = b"{\"a\":0".to_vec();
        let written = cache.write(&mut out, f.as_slice(), &|h| h == "event");
        let event: Vec<String> = written.section("event").iter().map(|(k, _)| k.to_string()).collect();
        out.push(b'}');
        (String::from_utf8(out).unwrap(), event)
    }

    #[test]
    fn same_output_as_the_direct_writer_and_reused_for_the_same_keys() {
        let mut cache = ShapeCache::default();
        let one = fields(&[
            ("http.request.method", "GET".into()),
            ("http.response.status_code", 200.into()),
            ("http.version", "1.1".into()),
            ("event.action", "x".into()),
            ("url.full", "http://x/\"y\"".into()),
            ("params", serde_json::json!([1, "two"])),
            ("z", Value::Null),
        ]);
        let two = fields(&[
            ("http.request.method", "POST".into()),
            ("http.response.status_code", 201.into()),
            ("http.version", "1.0".into()),
            ("event.action", "y".into()),
            ("url.full", "http://x/".into()),
            ("params", serde_json::json!([])),
            ("z", true.into()),
        ]);
        for f in [&one, &two, &one] {
            let mut direct = b"{\"a\":0".to_vec();
            json::members(&mut direct, f.as_slice(), 0, &mut false, &|h| h == "event");
            direct.push(b'}');
            let (cached, event) = render(&mut cache, f);
            assert_eq!(cached, String::from_utf8(direct).unwrap());
            assert_eq!(event, ["event.action"]);
            let _: Value = serde_json::from_str(&cached).unwrap();
        }
        assert_eq!(cache.shapes.len(), 1);
        // Another key list is another shape.
        let (_, event) = render(&mut cache, &fields(&[("url.full", "u".into())]));
        assert!(event.is_empty());
        assert_eq!(cache.shapes.len(), 2);
    }

    #[test]
    fn bounded() {
        let mut cache = ShapeCache::default();
        for i in 0..100 {
            let mut f = Fields::new();
            f.insert(format!("k{i}.x"), i);
            f.sort();
            let (out, _) = render(&mut cache, &f);
            assert_eq!(out, format!("{{\"a\":0,\"k{i}\":{{\"x\":{i}}}}}"));
        }
        assert_eq!(cache.shapes.len(), MAX_SHAPES);
    }
}
