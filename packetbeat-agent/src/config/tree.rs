//! The raw YAML tree of a `packetbeat.yml`: dotted keys expanded and `-E key=value` overrides applied,
//! before it is read into the typed model. libbeat allows `packetbeat.interfaces.device: any` and
//! nested maps interchangeably, so both are normalised to nested maps here.

use serde_norway::{Mapping, Value};

/// Expands every dotted key (`a.b.c: v`) into nested maps, merging with existing maps, recursively
/// (also inside lists, e.g. `packetbeat.protocols` entries).
#[must_use]
pub fn expand_dotted(v: Value) -> Value {
    match v {
        Value::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, v) in m {
                let v = expand_dotted(v);
                match k {
                    Value::String(s) => insert_path(&mut out, &s, v),
                    other => {
                        out.insert(other, v);
                    }
                }
            }
            Value::Mapping(out)
        }
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(expand_dotted).collect()),
        other => other,
    }
}

/// Sets `path` (dotted) to `v` in `root`, creating or merging intermediate maps.
pub fn insert_path(root: &mut Mapping, path: &str, v: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = root;
    while let Some(part) = parts.next() {
        let key = Value::String(part.to_owned());
        if parts.peek().is_none() {
            match (cur.get_mut(&key), v) {
                (Some(Value::Mapping(existing)), Value::Mapping(new)) => merge(existing, new),
                (_, v) => {
                    cur.insert(key, v);
                }
            }
            return;
        }
        if !matches!(cur.get(&key), Some(Value::Mapping(_))) {
            cur.insert(key.clone(), Value::Mapping(Mapping::new()));
        }
        let Some(Value::Mapping(next)) = cur.get_mut(&key) else { return };
        cur = next;
    }
}

fn merge(into: &mut Mapping, from: Mapping) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Mapping(a)), Value::Mapping(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Applies one `-E key=value` override; the value is parsed as YAML (so `true`, `[80, 8080]` and
/// `{enabled: false}` work), falling back to a plain string.
///
/// # Errors
/// When the override has no `=`.
pub fn apply_override(root: &mut Value, spec: &str) -> Result<(), String> {
    let (key, raw) = spec.split_once('=').ok_or_else(|| format!("-E {spec:?}: expected key=value"))?;
    let value = serde_norway::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let value = expand_dotted(value);
    if !root.is_mapping() {
        *root = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(m) = root {
        insert_path(m, key.trim(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn dotted_and_nested_keys_merge() {
        let v =
            expand_dotted(yaml("packetbeat.interfaces.device: any\npacketbeat:\n  interfaces:\n    snaplen: 100\n"));
        assert_eq!(v, yaml("packetbeat: {interfaces: {device: any, snaplen: 100}}"));
    }

    #[test]
    fn overrides_parse_yaml_values() {
        let mut v = yaml("packetbeat.interfaces.device: lo");
        v = expand_dotted(v);
        apply_override(&mut v, "packetbeat.interfaces.device=any").unwrap();
        apply_override(&mut v, "packetbeat.flows={enabled: false}").unwrap();
        apply_override(&mut v, "output.file.path=/tmp/x").unwrap();
        assert_eq!(
            v,
            yaml("packetbeat: {interfaces: {device: any}, flows: {enabled: false}}\noutput: {file: {path: /tmp/x}}")
        );
        assert!(apply_override(&mut v, "novalue").is_err());
    }
}
