//! Transaction → Packetbeat 8.x ECS document: the envelope every protocol shares.
//!
//! Mirrors what Packetbeat's `pb.Fields.ComputeValues` + `MarshalMapStr` and libbeat's pipeline add:
//! `event.*` (duration in ns), `network.*` (community id, bytes, direction), the four endpoint objects,
//! `related.ip`, `agent.*`, `host.name`, `ecs.version`, `@metadata`. Empty values are left out.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::community_id::community_id_v1;
use super::Transaction;
use crate::protocols::ConnInfo;

/// Who publishes: the `agent.*` / `host.*` values and the local addresses used for
/// `network.direction`. Built once at start.
#[derive(Clone, Debug)]
pub struct AgentInfo {
    /// `agent.name` (config `name`, else the host name).
    pub name: String,
    /// `host.name`.
    pub hostname: String,
    /// `agent.id`: stable per host.
    pub id: String,
    /// `agent.ephemeral_id`: new at every start.
    pub ephemeral_id: String,
    /// `agent.version`.
    pub version: String,
    /// Addresses of this host.
    pub local_ips: Vec<IpAddr>,
    /// Config `tags`.
    pub tags: Vec<String>,
    /// Config `fields` and whether they go to the root.
    pub fields: Option<(Map<String, Value>, bool)>,
}

/// Sets a dotted key in nested maps. An existing non-object on the way is replaced.
pub fn insert_dotted(root: &mut Map<String, Value>, key: &str, v: Value) {
    match key.split_once('.') {
        None => {
            root.insert(key.to_owned(), v);
        }
        Some((head, rest)) => {
            let child = root.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(m) = child {
                insert_dotted(m, rest, v);
            }
        }
    }
}

/// Reads a dotted key from nested maps.
#[must_use]
pub fn get_dotted<'a>(root: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => root.get(key),
        Some((head, rest)) => match root.get(head) {
            Some(Value::Object(m)) => get_dotted(m, rest),
            _ => root.get(key),
        },
    }
}

fn is_local(ip: IpAddr, local: &[IpAddr]) -> bool {
    let special = match ip {
        IpAddr::V4(a) => a.is_loopback() || a.is_link_local(),
        IpAddr::V6(a) => a.is_loopback() || (a.segments()[0] & 0xffc0) == 0xfe80,
    };
    special || local.contains(&ip)
}

fn endpoint(ip: IpAddr, port: u16, bytes: Option<u64>, domain: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("ip".into(), json!(ip.to_string()));
    m.insert("port".into(), json!(port));
    if let Some(b) = bytes {
        m.insert("bytes".into(), json!(b));
    }
    if let Some(d) = domain {
        m.insert("domain".into(), d.clone());
    }
    Value::Object(m)
}

fn push_unique(list: &mut Vec<Value>, v: Value) {
    if !list.contains(&v) {
        list.push(v);
    }
}

/// Builds the document of `tx` on connection `conn`.
#[must_use]
pub fn build(tx: Transaction, conn: &ConnInfo, agent: &AgentInfo) -> Map<String, Value> {
    let Transaction {
        kind,
        ts,
        start,
        end,
        status,
        request_bytes,
        response_bytes,
        method,
        query,
        notes,
        request,
        response,
        fields,
    } = tx;
    let mut doc = Map::new();
    let mut related: Map<String, Value> = Map::new();
    let mut domain = None;
    for (k, v) in fields {
        if let Some(r) = k.strip_prefix("related.") {
            related.insert(r.to_owned(), v);
        } else if k == "destination.domain" {
            domain = Some(v);
        } else {
            insert_dotted(&mut doc, &k, v);
        }
    }

    doc.insert("@timestamp".into(), json!(ts.rfc3339()));
    doc.insert("type".into(), json!(kind));
    doc.insert("status".into(), json!(status.as_str()));

    let mut event = match doc.remove("event") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    event.insert("kind".into(), json!("event"));
    event.insert("category".into(), json!(["network"]));
    event.insert("type".into(), json!(["connection", "protocol"]));
    event.entry("dataset").or_insert_with(|| json!(kind));
    if let Some(s) = start {
        event.insert("start".into(), json!(s.rfc3339()));
    }
    if let Some(e) = end {
        event.insert("end".into(), json!(e.rfc3339()));
    }
    if let (Some(s), Some(e)) = (start, end) {
        if let Some(d) = e.since(s) {
            event.insert("duration".into(), json!(d));
        }
    }
    doc.insert("event".into(), Value::Object(event));

    let mut network = match doc.remove("network") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    network.insert("transport".into(), json!("tcp"));
    network.insert("protocol".into(), json!(kind));
    network.insert("type".into(), json!(if conn.client_ip.is_ipv4() { "ipv4" } else { "ipv6" }));
    network.insert(
        "community_id".into(),
        json!(community_id_v1(conn.client_ip, conn.client_port, conn.server_ip, conn.server_port, 6, 0)),
    );
    let total = request_bytes.unwrap_or(0) + response_bytes.unwrap_or(0);
    if request_bytes.is_some() || response_bytes.is_some() {
        network.insert("bytes".into(), json!(total));
    }
    let direction = if is_local(conn.server_ip, &agent.local_ips) {
        "ingress"
    } else if is_local(conn.client_ip, &agent.local_ips) {
        "egress"
    } else {
        "unknown"
    };
    network.insert("direction".into(), json!(direction));
    doc.insert("network".into(), Value::Object(network));

    let src = endpoint(conn.client_ip, conn.client_port, request_bytes, None);
    let dst = endpoint(conn.server_ip, conn.server_port, response_bytes, domain.as_ref());
    doc.insert("source".into(), src.clone());
    doc.insert("client".into(), src);
    doc.insert("destination".into(), dst.clone());
    doc.insert("server".into(), dst);

    let mut ips = vec![json!(conn.client_ip.to_string())];
    push_unique(&mut ips, json!(conn.server_ip.to_string()));
    if let Some(Value::Array(extra)) = related.remove("ip") {
        for v in extra {
            push_unique(&mut ips, v);
        }
    }
    let mut rel = Map::new();
    rel.insert("ip".into(), Value::Array(ips));
    for (k, v) in related {
        if let Value::Array(items) = v {
            let mut out = Vec::new();
            for i in items {
                push_unique(&mut out, i);
            }
            if !out.is_empty() {
                rel.insert(k, Value::Array(out));
            }
        }
    }
    doc.insert("related".into(), Value::Object(rel));

    if let Some(m) = method {
        doc.insert("method".into(), json!(m));
    }
    if let Some(q) = query {
        doc.insert("query".into(), json!(q));
    }
    if let Some(r) = request {
        doc.insert("request".into(), json!(r));
    }
    if let Some(r) = response {
        doc.insert("response".into(), json!(r));
    }
    match notes.len() {
        0 => {}
        1 => insert_dotted(&mut doc, "error.message", json!(notes[0])),
        _ => insert_dotted(&mut doc, "error.message", json!(notes)),
    }

    add_agent(&mut doc, agent);
    doc
}

/// Adds what libbeat adds to every event: `agent.*`, `host.name`, `ecs.version`, config `tags` and
/// `fields`.
pub fn add_agent(doc: &mut Map<String, Value>, agent: &AgentInfo) {
    doc.insert(
        "agent".into(),
        json!({
            "type": "packetbeat",
            "name": agent.name,
            "version": agent.version,
            "id": agent.id,
            "ephemeral_id": agent.ephemeral_id,
        }),
    );
    doc.insert("host".into(), json!({ "name": agent.hostname }));
    doc.insert("ecs".into(), json!({ "version": "8.0.0" }));
    if !agent.tags.is_empty() {
        doc.insert("tags".into(), json!(agent.tags));
    }
    if let Some((fields, under_root)) = &agent.fields {
        if *under_root {
            for (k, v) in fields {
                doc.insert(k.clone(), v.clone());
            }
        } else {
            doc.insert("fields".into(), Value::Object(fields.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Status;
    use crate::time::Timestamp;

    fn agent() -> AgentInfo {
        AgentInfo {
            name: "h".into(),
            hostname: "h".into(),
            id: "id".into(),
            ephemeral_id: "eid".into(),
            version: "0.1.0".into(),
            local_ips: vec![],
            tags: vec![],
            fields: None,
        }
    }

    #[test]
    fn builds_envelope() {
        let conn = ConnInfo {
            client_ip: "10.0.0.1".parse().unwrap(),
            client_port: 5555,
            server_ip: "127.0.0.1".parse().unwrap(),
            server_port: 80,
        };
        let mut fields = Map::new();
        fields.insert("http.response.status_code".into(), json!(200));
        fields.insert("destination.domain".into(), json!("example.com"));
        fields.insert("related.hosts".into(), json!(["example.com", "example.com"]));
        let tx = Transaction {
            kind: "http",
            ts: Timestamp(1_000_000_000),
            start: Some(Timestamp(1_000_000_000)),
            end: Some(Timestamp(1_018_341_000)),
            status: Status::Ok,
            request_bytes: Some(130),
            response_bytes: Some(1591),
            notes: vec!["a".into()],
            fields,
            ..Default::default()
        };
        let doc = Value::Object(build(tx, &conn, &agent()));
        assert_eq!(doc["event"]["duration"], json!(18_341_000));
        assert_eq!(doc["network"]["bytes"], json!(1721));
        assert_eq!(doc["network"]["direction"], json!("ingress"));
        assert_eq!(doc["server"]["domain"], json!("example.com"));
        assert_eq!(doc["client"]["bytes"], json!(130));
        assert_eq!(doc["related"]["hosts"], json!(["example.com"]));
        assert_eq!(doc["related"]["ip"], json!(["10.0.0.1", "127.0.0.1"]));
        assert_eq!(doc["error"]["message"], json!("a"));
        assert_eq!(doc["http"]["response"]["status_code"], json!(200));
        assert_eq!(doc["@timestamp"], json!("1970-01-01T00:00:01.000000Z"));
    }
}
