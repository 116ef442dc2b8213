//! A transaction's protocol fields: dotted keys (`"http.response.status_code"`) kept sorted so the
//! event writer can emit nested JSON objects in one pass, without building a tree first.
//!
//! Why not a `serde_json::Map`: building and dropping a tree of maps with an owned `String` per key
//! was most of the cost of an event (about 230 allocations each). Keys here are `&'static str` in
//! the common case, and the order is the one the writer needs: keys compare as if `.` sorted before
//! every other byte, so `a`, `a.b`, `a.c`, `a-b` come in that order and all keys under one object are
//! contiguous.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Index;

use serde_json::{Map, Value};

/// A key: static for the fields protocols know, owned for names taken from the wire.
pub type Key = Cow<'static, str>;

/// Dotted keys and their values, sorted by [`key_order`]; setting a key again replaces its value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Vec<(Key, Value)>);

/// The order of dotted keys: byte order with `.` lowest, so an object's keys are contiguous.
#[must_use]
pub fn key_order(a: &str, b: &str) -> Ordering {
    let rank = |c: u8| if c == b'.' { 0 } else { u16::from(c) + 1 };
    let (a, b) = (a.as_bytes(), b.as_bytes());
    // Keys share long prefixes (`http.response.`): find the first difference a word at a time.
    let mut i = 0;
    while let (Some(x), Some(y)) = (word(a, i), word(b, i)) {
        if x != y {
            i += (x ^ y).trailing_zeros() as usize / 8;
            break;
        }
        i += 8;
    }
    match a.iter().zip(b).skip(i).find(|(x, y)| x != y) {
        Some((&x, &y)) => rank(x).cmp(&rank(y)),
        None => a.len().cmp(&b.len()),
    }
}

fn word(s: &[u8], at: usize) -> Option<u64> {
    s.get(at..).and_then(|r| r.first_chunk::<8>()).map(|w| u64::from_le_bytes(*w))
}

static NULL: Value = Value::Null;

thread_local! {
    /// Emptied field lists kept per thread by [`Fields::recycle`] (bounded in number and size).
    static POOL: std::cell::RefCell<Vec<Vec<(Key, Value)>>> = const { std::cell::RefCell::new(Vec::new()) };
}
const MAX_POOLED: usize = 16;
const MAX_POOLED_CAPACITY: usize = 256;

/// Same key: the same static string (the common case, one comparison), else equal text.
#[must_use]
pub fn same_key(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

impl Fields {
    /// No fields.
    #[must_use]
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Sorted fields of `pairs` (tests).
    #[cfg(test)]
    #[must_use]
    pub fn sorted_from(pairs: &[(&'static str, Value)]) -> Self {
        let mut f = Self::new();
        for (k, v) in pairs {
            f.insert(*k, v.clone());
        }
        f.sort();
        f
    }

    /// Sets `key` to `value`; a later value of the same key wins (see [`Self::sort`]).
    pub fn insert(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        if self.0.capacity() == 0 {
            // A list a published transaction gave back, else one allocation for a whole
            // transaction's fields instead of a doubling series.
            self.0 = POOL.with_borrow_mut(Vec::pop).unwrap_or_else(|| Vec::with_capacity(24));
        }
        self.0.push((key.into(), value.into()));
    }

    /// Drops the fields and keeps their list for the next transaction built on this thread (the
    /// publisher calls this once a transaction is written: a worker builds and publishes on the
    /// same thread, so the list comes back where it is needed).
    pub fn recycle(&mut self) {
        let mut list = std::mem::take(&mut self.0);
        list.clear();
        if list.capacity() > 0 && list.capacity() <= MAX_POOLED_CAPACITY {
            POOL.with_borrow_mut(|pool| {
                if pool.len() < MAX_POOLED {
                    pool.push(list);
                }
            });
        }
    }

    /// The value of `key`: the last one set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes `key` and returns its last value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let last = self.0.iter().rposition(|(k, _)| k == key)?;
        let (_, v) = self.0.remove(last);
        self.0.retain(|(k, _)| k != key);
        Some(v)
    }

    /// Whether there are no fields.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields: in [`key_order`], one per key, after [`Self::sort`]; else as they were set.
    #[must_use]
    pub fn as_slice(&self) -> &[(Key, Value)] {
        &self.0
    }

    /// The fields as a flat map of dotted keys (tests and debugging).
    #[must_use]
    pub fn to_map(&self) -> Map<String, Value> {
        self.0.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    /// Puts the fields in [`key_order`], keeping only the last value set for each key.
    pub fn sort(&mut self) {
        let plan = SortPlan::of(&self.0);
        self.apply(&plan);
    }

    /// [`Self::sort`], reusing the plan worked out for the same list of keys set in the same order
    /// (a protocol sets the same keys in the same order for the same kind of transaction).
    pub fn sort_cached(&mut self, cache: &mut SortCache) {
        let found = cache.plans.iter().position(|(keys, _)| {
            keys.len() == self.0.len() && keys.iter().zip(&self.0).all(|(a, (b, _))| same_key(a, b))
        });
        let i = found.unwrap_or_else(|| {
            let entry = (self.0.iter().map(|(k, _)| k.clone()).collect(), SortPlan::of(&self.0));
            if cache.plans.len() < MAX_ORDERS {
                cache.plans.push(entry);
                cache.plans.len() - 1
            } else {
                let i = cache.next;
                cache.next = (cache.next + 1) % MAX_ORDERS;
                cache.plans[i] = entry;
                i
            }
        });
        if let Some((_, plan)) = cache.plans.get(i) {
            self.apply(plan);
        }
    }

    /// Sorts in place as `plan` says: its swaps, then the replaced values dropped off the end.
    fn apply(&mut self, plan: &SortPlan) {
        let len = self.0.len();
        for &(a, b) in &plan.swaps {
            let (a, b) = (usize::from(a), usize::from(b));
            if a < len && b < len {
                self.0.swap(a, b);
            }
        }
        self.0.truncate(plan.keep);
    }
}

/// Key lists remembered by a [`SortCache`].
const MAX_ORDERS: usize = 32;

/// The sorted order of recently seen key lists (per publisher; bounded).
#[derive(Debug, Default)]
pub struct SortCache {
    plans: Vec<(Vec<Key>, SortPlan)>,
    next: usize,
}

/// How to sort one key list in place: swaps that bring the entries to keep, in [`key_order`], to
/// the front, and how many there are (the last value set of each key). Swapping in place moves no
/// more than it must and allocates nothing, unlike rebuilding the list in the new order.
#[derive(Debug, Default)]
struct SortPlan {
    swaps: Vec<(u16, u16)>,
    keep: usize,
}

impl SortPlan {
    fn of(entries: &[(Key, Value)]) -> Self {
        let order = sorted_order(entries);
        // `at[p]`: which original entry is at position `p`; `pos[e]`: where original entry `e` is.
        let mut at: Vec<u16> = (0..u16::try_from(entries.len()).unwrap_or(u16::MAX)).collect();
        let mut pos = at.clone();
        let mut swaps = Vec::new();
        for (j, &want) in order.iter().enumerate() {
            let j16 = u16::try_from(j).unwrap_or(u16::MAX);
            let (Some(&p), Some(&here)) = (pos.get(usize::from(want)), at.get(j)) else { break };
            if p != j16 {
                swaps.push((j16, p));
                at.swap(j, usize::from(p));
                pos[usize::from(want)] = j16;
                pos[usize::from(here)] = p;
            }
        }
        Self { swaps, keep: order.len() }
    }
}

/// Indices of `entries` in [`key_order`], the last of equal keys only.
fn sorted_order(entries: &[(Key, Value)]) -> Vec<u16> {
    let mut idx: Vec<u16> = (0..u16::try_from(entries.len()).unwrap_or(u16::MAX)).collect();
    let key = |i: u16| entries.get(usize::from(i)).map_or("", |(k, _)| k.as_ref());
    // Stable: among equal keys the last set stays last.
    idx.sort_by(|&a, &b| key_order(key(a), key(b)));
    let mut out: Vec<u16> = Vec::with_capacity(idx.len());
    for i in idx {
        match out.last_mut() {
            Some(last) if key(*last) == key(i) => *last = i,
            _ => out.push(i),
        }
    }
    out
}

/// `fields["a.b"]` is the value, or `null` when the key is not set.
impl Index<&str> for Fields {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_list_is_reused_empty() {
        let mut f = Fields::new();
        f.insert("a", "x");
        f.insert("b", 1);
        let list = f.as_slice().as_ptr();
        f.recycle();
        assert!(f.is_empty());
        let mut g = Fields::new();
        g.insert("c", true);
        assert_eq!(g.as_slice().as_ptr(), list);
        assert_eq!(g.as_slice().len(), 1);
        assert_eq!(g["c"], true);
    }

    #[test]
    fn keys_of_one_object_are_contiguous() {
        let mut f = Fields::new();
        for k in ["a-b", "a.c", "a", "a.b.c", "b", "a.b", "a"] {
            f.insert(k, k);
        }
        f.sort();
        assert_eq!(f["a"], "a");
        let keys: Vec<&str> = f.as_slice().iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["a", "a.b", "a.b.c", "a.c", "a-b", "b"]);
    }

    #[test]
    fn key_order_is_byte_order_with_dot_lowest() {
        let keys = [
            "",
            "a",
            "a.b",
            "abcdefgh",
            "abcdefgh.x",
            "abcdefghi",
            "abcdefgh-",
            "http.response.status",
            "http.response.status_code",
            "http.request.x",
            "é",
        ];
        for a in keys {
            for b in keys {
                let rank =
                    |s: &str| s.bytes().map(|c| if c == b'.' { 0 } else { u16::from(c) + 1 }).collect::<Vec<_>>();
                assert_eq!(key_order(a, b), rank(a).cmp(&rank(b)), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn agrees_with_a_sorted_map_on_random_keys() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut f = Fields::new();
            let mut reference = std::collections::BTreeMap::new();
            for n in 0..40u64 {
                let len = 1 + next() % 12;
                let key: String = (0..len).map(|_| ['a', 'b', '.', '-', 'z'][(next() % 5) as usize]).collect();
                f.insert(key.clone(), n);
                let rank: Vec<u16> = key.bytes().map(|c| if c == b'.' { 0 } else { u16::from(c) + 1 }).collect();
                reference.insert(rank, (key, n));
            }
            let mut cached = f.clone();
            f.sort();
            // Twice through the cache: computed, then reused.
            let mut cache = SortCache::default();
            let mut again = cached.clone();
            cached.sort_cached(&mut cache);
            again.sort_cached(&mut cache);
            assert_eq!((&cached, &again), (&f, &f));
            let got: Vec<(String, u64)> =
                f.as_slice().iter().map(|(k, v)| (k.to_string(), v.as_u64().unwrap())).collect();
            let want: Vec<(String, u64)> = reference.into_values().collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn replace_get_remove() {
        let mut f = Fields::new();
        f.insert("x.y", 1);
        f.insert(String::from("x.y"), "two");
        assert_eq!(f["x.y"], "two");
        f.sort();
        assert_eq!(f.as_slice().len(), 1);
        assert_eq!(f["x.y"], "two");
        assert_eq!(f["missing"], Value::Null);
        assert_eq!(f.remove("x.y"), Some(Value::from("two")));
        assert!(f.is_empty());
    }
}
