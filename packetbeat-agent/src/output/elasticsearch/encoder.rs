//! Event line → bulk item: a `create` action line and the document line, `@metadata` removed.
//!
//! The publisher writes `@metadata` as the first key (serde_json maps are sorted and `@m` < `@t`),
//! so the fast path cuts it out of the bytes without re-serializing the document; anything else
//! falls back to a full parse. `@metadata.pipeline` and `@metadata._id` route the event as libbeat
//! does; nothing under `@metadata` ever reaches the document body.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a line could not become a bulk item.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The line is not a JSON object.
    #[error("event is not a JSON object: {0}")]
    NotAnObject(String),
}

/// Builds bulk items for one data stream.
#[derive(Debug)]
pub struct BulkEncoder {
    index: String,
    pipeline: Option<String>,
    /// Prefix of generated ids (random per process) and the next sequence number.
    id_prefix: Option<String>,
    next_id: u64,
    /// Bytes encoded (action + document lines).
    pub bytes: u64,
}

const META_PREFIX: &[u8] = b"{\"@metadata\":{";

impl BulkEncoder {
    /// An encoder for `index`; `idempotent` gives every item a unique `_id`.
    #[must_use]
    pub fn new(index: String, pipeline: Option<String>, idempotent: bool) -> Self {
        let id_prefix = idempotent.then(|| format!("{:016x}", fastrand::u64(..)));
        Self { index, pipeline: pipeline.map(|p| p.to_lowercase()), id_prefix, next_id: 0, bytes: 0 }
    }

    /// Appends the item for `line` (one event, without its newline) to `out`.
    ///
    /// # Errors
    /// The line is not a JSON object (nothing is appended).
    pub fn encode(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let (meta, body) = split_metadata(line)?;
        let mut action = Map::new();
        action.insert("_index".into(), Value::String(self.index.clone()));
        if let Some(id) = meta.get("_id") {
            action.insert("_id".into(), Value::String(id.clone()));
        } else if let Some(p) = &self.id_prefix {
            action.insert("_id".into(), Value::String(format!("{p}{:x}", self.next_id)));
            self.next_id += 1;
        }
        if let Some(p) = meta.get("pipeline").map(|p| p.to_lowercase()).or_else(|| self.pipeline.clone()) {
            action.insert("pipeline".into(), Value::String(p));
        }
        let mut wrapper = Map::new();
        wrapper.insert("create".into(), Value::Object(action));
        // Serializing a map of strings cannot fail.
        let _ = serde_json::to_writer(&mut *out, &Value::Object(wrapper));
        out.push(b'\n');
        match body {
            Body::Bytes(rest) => {
                out.push(b'{');
                out.extend_from_slice(rest);
            }
            Body::Value(v) => {
                let _ = serde_json::to_writer(&mut *out, &v);
            }
        }
        out.push(b'\n');
        self.bytes += (out.len() - start) as u64;
        Ok(())
    }
}

enum Body<'a> {
    /// The document after its opening `{`.
    Bytes(&'a [u8]),
    Value(Value),
}

/// The string values of `@metadata` and the document without it.
fn split_metadata(line: &[u8]) -> Result<(BTreeMap<String, String>, Body<'_>), EncodeError> {
    if let Some(rest) = line.strip_prefix(META_PREFIX) {
        if let Some(end) = rest.iter().position(|b| *b == b'}') {
            let meta_bytes = line.get(META_PREFIX.len() - 1..META_PREFIX.len() + end + 1).unwrap_or_default();
            if let Ok(meta) = serde_json::from_slice::<BTreeMap<String, String>>(meta_bytes) {
                let after = rest.get(end + 1..).unwrap_or_default();
                if let Some(body) = after.strip_prefix(b",") {
                    return Ok((meta, Body::Bytes(body)));
                }
                if after == b"}" {
                    return Ok((meta, Body::Bytes(after)));
                }
            }
        }
    }
    let mut v: Value = serde_json::from_slice(line).map_err(|e| EncodeError::NotAnObject(e.to_string()))?;
    let obj = v.as_object_mut().ok_or_else(|| EncodeError::NotAnObject("not an object".into()))?;
    let meta = match obj.remove("@metadata") {
        Some(Value::Object(m)) => m.into_iter().filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned()))).collect(),
        _ => BTreeMap::new(),
    };
    Ok((meta, Body::Value(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(out: &[u8]) -> Vec<Value> {
        out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
    }

    #[test]
    fn drops_metadata_fast_path() {
        let mut e = BulkEncoder::new("packetbeat-1.0.0".into(), None, false);
        let mut out = Vec::new();
        e.encode(br#"{"@metadata":{"beat":"packetbeat","type":"_doc"},"@timestamp":"t","type":"http"}"#, &mut out)
            .unwrap();
        let l = lines(&out);
        assert_eq!(l[0], serde_json::json!({"create": {"_index": "packetbeat-1.0.0"}}));
        assert_eq!(l[1], serde_json::json!({"@timestamp": "t", "type": "http"}));
        assert_eq!(e.bytes, out.len() as u64);
    }

    #[test]
    fn routes_by_metadata_and_assigns_ids() {
        let mut e = BulkEncoder::new("pb".into(), Some("Default".into()), true);
        let mut out = Vec::new();
        e.encode(br#"{"@metadata":{"nested":{"x":1},"pipeline":"P2"},"a":1}"#, &mut out).unwrap();
        e.encode(br#"{"@metadata":{"_id":"fixed"},"a":2}"#, &mut out).unwrap();
        e.encode(br#"{"a":3}"#, &mut out).unwrap();
        let l = lines(&out);
        assert_eq!(l[1], serde_json::json!({"a": 1}));
        assert_eq!(l[0]["create"]["pipeline"], "p2");
        assert_eq!(l[2]["create"]["_id"], "fixed");
        assert_eq!(l[4]["create"]["pipeline"], "default");
        assert_ne!(l[0]["create"]["_id"], l[4]["create"]["_id"]);
        assert!(e.encode(b"[1]", &mut out).is_err());
        assert!(e.encode(b"{\"@metadata\":{", &mut out).is_err());
    }
}
