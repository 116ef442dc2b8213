//! Per-connection prepared statements and portals of the extended query protocol.
//!
//! Parse creates a statement (name → SQL, parameter types), Bind creates a portal from a statement
//! (its parameters rendered once, result formats), Close or a new Parse/Bind of the same name
//! replaces them. The unnamed statement and portal (`""`) are just entries with an empty name.
//! Both maps are bounded by `max_prepared_statements`; beyond it the least recently created entry is
//! forgotten (its later use gives a transaction with [`NOTE_UNKNOWN_STATEMENT`](super::event::NOTE_UNKNOWN_STATEMENT)).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::parser::{format_of, BindMsg, FieldDesc};
use super::values::render;

/// A prepared statement.
#[derive(Debug, Default)]
pub struct Statement {
    /// SQL text.
    pub query: Arc<str>,
    /// Parameter types from Parse, completed by ParameterDescription (0 = unknown).
    pub param_types: Vec<u32>,
    /// Result columns, once a Describe of the statement was answered.
    pub desc: Option<Arc<[FieldDesc]>>,
}

/// A portal: a bound statement ready to execute.
#[derive(Debug, Default)]
pub struct Portal {
    /// SQL text, when the statement was known.
    pub query: Option<Arc<str>>,
    /// Name of the statement it was bound from.
    pub statement: Box<[u8]>,
    /// Parameters rendered as text (`None` = NULL).
    pub params: Vec<Option<String>>,
    /// Result format codes.
    pub result_formats: Vec<u16>,
    /// Result columns known at Bind time (from the statement).
    pub desc: Option<Arc<[FieldDesc]>>,
}

/// A bounded name → value map that forgets the oldest entry when full.
#[derive(Debug)]
struct Bounded<T> {
    map: FxHashMap<Box<[u8]>, (u64, T)>,
    next: u64,
}

impl<T> Default for Bounded<T> {
    fn default() -> Self {
        Self { map: FxHashMap::default(), next: 0 }
    }
}

impl<T> Bounded<T> {
    /// Inserts; returns whether an older entry had to be forgotten.
    fn insert(&mut self, name: &[u8], value: T, max: usize) -> bool {
        self.next += 1;
        if self.map.insert(name.into(), (self.next, value)).is_some() || self.map.len() <= max.max(1) {
            return false;
        }
        let oldest = self.map.iter().min_by_key(|(_, (seq, _))| *seq).map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            self.map.remove(&k);
        }
        true
    }
}

/// The statements and portals of one connection.
#[derive(Debug, Default)]
pub struct Session {
    statements: Bounded<Statement>,
    portals: Bounded<Portal>,
}

impl Session {
    /// Parse: (re)defines a statement. Returns whether an old entry was evicted.
    pub fn parse(&mut self, name: &[u8], query: Arc<str>, param_types: Vec<u32>, max: usize) -> bool {
        self.statements.insert(name, Statement { query, param_types, desc: None }, max)
    }

    /// Bind: creates a portal; returns it (for the Bind's own bookkeeping) and whether an entry
    /// was evicted. The portal's query is `None` when the statement is unknown.
    pub fn bind(&mut self, m: &BindMsg<'_>, max: usize) -> (Option<Arc<str>>, bool) {
        let stmt = self.statements.map.get(m.statement).map(|(_, s)| s);
        let types = stmt.map_or(&[][..], |s| s.param_types.as_slice());
        let params = m
            .params
            .iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| render(v, format_of(&m.param_formats, i), types.get(i).copied().unwrap_or(0))))
            .collect();
        let query = stmt.map(|s| Arc::clone(&s.query));
        let portal = Portal {
            query: query.clone(),
            statement: m.statement.into(),
            params,
            result_formats: m.result_formats.clone(),
            desc: stmt.and_then(|s| s.desc.clone()),
        };
        (query, self.portals.insert(m.portal, portal, max))
    }

    /// The portal an Execute names.
    #[must_use]
    pub fn portal(&self, name: &[u8]) -> Option<&Portal> {
        self.portals.map.get(name).map(|(_, p)| p)
    }

    /// The query of a statement.
    #[must_use]
    pub fn statement_query(&self, name: &[u8]) -> Option<Arc<str>> {
        self.statements.map.get(name).map(|(_, s)| Arc::clone(&s.query))
    }

    /// A Describe of statement `name` was answered with `types` (ParameterDescription).
    pub fn set_param_types(&mut self, name: &[u8], types: Vec<u32>) {
        if let Some((_, s)) = self.statements.map.get_mut(name) {
            s.param_types = types;
        }
    }

    /// A Describe of statement `name` was answered with its result columns.
    pub fn set_statement_desc(&mut self, name: &[u8], desc: &Arc<[FieldDesc]>) {
        if let Some((_, s)) = self.statements.map.get_mut(name) {
            s.desc = Some(Arc::clone(desc));
        }
    }

    /// Close of a statement (`S`) or portal (`P`).
    pub fn close(&mut self, kind: u8, name: &[u8]) {
        if kind == b'S' {
            self.statements.map.remove(name);
        } else {
            self.portals.map.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind<'a>(portal: &'a [u8], statement: &'a [u8], params: Vec<Option<&'a [u8]>>) -> BindMsg<'a> {
        BindMsg { portal, statement, param_formats: vec![1], params, result_formats: vec![] }
    }

    #[test]
    fn statements_portals_and_bounds() {
        let mut s = Session::default();
        assert!(!s.parse(b"a", "select $1".into(), vec![23], 2));
        let seven = 7i32.to_be_bytes();
        let (q, _) = s.bind(&bind(b"", b"a", vec![Some(&seven), None]), 2);
        assert_eq!(q.as_deref(), Some("select $1"));
        let p = s.portal(b"").unwrap();
        assert_eq!(p.params, vec![Some("7".to_owned()), None]);
        // Unknown statement: the portal exists but its query is unknown.
        let (q, _) = s.bind(&bind(b"p", b"zz", vec![]), 2);
        assert!(q.is_none() && s.portal(b"p").unwrap().query.is_none());
        // Bounds: the oldest entry goes.
        assert!(!s.parse(b"b", "select 2".into(), vec![], 2));
        assert!(s.parse(b"c", "select 3".into(), vec![], 2));
        assert!(s.statement_query(b"a").is_none());
        assert_eq!(s.statement_query(b"c").as_deref(), Some("select 3"));
        s.close(b'S', b"c");
        assert!(s.statement_query(b"c").is_none());
        s.close(b'P', b"");
        assert!(s.portal(b"").is_none());
    }
}
