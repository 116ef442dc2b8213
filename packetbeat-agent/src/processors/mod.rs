//! Event processors configured under `processors:` (libbeat's), applied to each document before
//! output: `detect_mime_type`, `add_fields`, `drop_fields`, `add_tags`. Others are rejected at start
//! with their name, so a config is never silently half-applied.

pub mod mime;

use serde_json::{Map, Value};
use serde_norway::Value as Yaml;

use crate::config::ConfigError;
use crate::event::envelope::{get_dotted, insert_dotted};

/// One configured processor.
#[derive(Clone, Debug, PartialEq)]
pub enum Processor {
    /// Sniffs the MIME type of the string at `field` into `target`.
    DetectMimeType {
        /// Source field (dotted).
        field: String,
        /// Target field (dotted).
        target: String,
    },
    /// Adds `fields` under `target` (`fields` by default, the root when empty).
    AddFields {
        /// Dotted prefix, or empty for the root.
        target: String,
        /// The fields.
        fields: Map<String, Value>,
    },
    /// Removes the named fields (dotted; an object name removes the subtree).
    DropFields {
        /// The fields.
        fields: Vec<String>,
    },
    /// Appends tags to `tags`.
    AddTags {
        /// The tags.
        tags: Vec<String>,
    },
}

fn invalid(i: usize, what: &str, message: String) -> ConfigError {
    ConfigError::Invalid { key: format!("processors.{i}.{what}"), message }
}

fn yaml_to_json(v: &Yaml) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn string_field(i: usize, name: &str, body: &Map<String, Value>, key: &str) -> Result<String, ConfigError> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid(i, &format!("{name}.{key}"), "missing or not a string".into()))
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Reads the `processors` list.
///
/// # Errors
/// An unknown processor or a malformed one, named by its index.
pub fn from_config(list: &[Yaml]) -> Result<Vec<Processor>, ConfigError> {
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let Value::Object(m) = yaml_to_json(entry) else {
            return Err(invalid(i, "", "each processor must be a map {name: {...}}".into()));
        };
        for (name, body) in m {
            let body = match body {
                Value::Object(b) => b,
                Value::Null => Map::new(),
                _ => return Err(invalid(i, &name, "settings must be a map".into())),
            };
            out.push(match name.as_str() {
                "detect_mime_type" => Processor::DetectMimeType {
                    field: string_field(i, &name, &body, "field")?,
                    target: string_field(i, &name, &body, "target")?,
                },
                "add_fields" => Processor::AddFields {
                    target: body.get("target").and_then(Value::as_str).unwrap_or("fields").to_owned(),
                    fields: match body.get("fields") {
                        Some(Value::Object(f)) => f.clone(),
                        _ => return Err(invalid(i, "add_fields.fields", "missing or not a map".into())),
                    },
                },
                "drop_fields" => Processor::DropFields { fields: string_list(body.get("fields")) },
                "add_tags" => Processor::AddTags { tags: string_list(body.get("tags")) },
                other => return Err(invalid(i, other, "processor not supported by this agent".into())),
            });
        }
    }
    Ok(out)
}

fn remove_dotted(root: &mut Map<String, Value>, key: &str) {
    if root.remove(key).is_some() {
        return;
    }
    if let Some((head, rest)) = key.split_once('.') {
        if let Some(Value::Object(m)) = root.get_mut(head) {
            remove_dotted(m, rest);
            if m.is_empty() {
                root.remove(head);
            }
        }
    }
}

/// Applies the processors to one document, in order.
pub fn apply(processors: &[Processor], doc: &mut Map<String, Value>) {
    for p in processors {
        match p {
            Processor::DetectMimeType { field, target } => {
                let mime = match get_dotted(doc, field) {
                    Some(Value::String(s)) => mime::detect_mime_type(s.as_bytes()),
                    _ => None,
                };
                if let Some(m) = mime {
                    insert_dotted(doc, target, Value::String(m.to_owned()));
                }
            }
            Processor::AddFields { target, fields } => {
                for (k, v) in fields {
                    let key = if target.is_empty() { k.clone() } else { format!("{target}.{k}") };
                    insert_dotted(doc, &key, v.clone());
                }
            }
            Processor::DropFields { fields } => {
                for f in fields {
                    if f != "@timestamp" && f != "type" {
                        remove_dotted(doc, f);
                    }
                }
            }
            Processor::AddTags { tags } => {
                let entry = doc.entry("tags").or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(a) = entry {
                    for t in tags {
                        let t = Value::String(t.clone());
                        if !a.contains(&t) {
                            a.push(t);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_applies() {
        let cfg: Vec<Yaml> = serde_norway::from_str(
            "- detect_mime_type: {field: a.b, target: a.mime}\n- drop_fields: {fields: [x]}\n- add_tags: {tags: [t]}",
        )
        .unwrap();
        let ps = from_config(&cfg).unwrap();
        let mut doc: Map<String, Value> = serde_json::from_str(r#"{"a":{"b":"<html><body>hi"},"x":{"y":1}}"#).unwrap();
        apply(&ps, &mut doc);
        assert_eq!(doc["a"]["mime"], "text/html; charset=utf-8");
        assert!(!doc.contains_key("x"));
        assert_eq!(doc["tags"], serde_json::json!(["t"]));
        let bad: Vec<Yaml> = serde_norway::from_str("- script: {}").unwrap();
        assert!(from_config(&bad).is_err());
    }
}
