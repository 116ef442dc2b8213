//! Transaction → Packetbeat 8.x ECS document: the envelope every protocol shares.
//!
//! Mirrors what Packetbeat's `pb.Fields.ComputeValues` + `MarshalMapStr` and libbeat's pipeline add:
//! `event.*` (duration in ns), `network.*` (community id, bytes, direction), the four endpoint objects,
//! `related.ip`, `agent.*`, `host.name`, `ecs.version`, `@metadata`. Empty values are left out.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::community_id::community_id_v1;
use super::fields::Key;
use super::shape::ShapeCache;
use super::{json, Transaction};
use crate::protocols::ConnInfo;
use crate::time::Timestamp;

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

#[cfg(test)]
impl AgentInfo {
    /// A fixed identity for unit tests.
    pub(crate) fn for_tests() -> Self {
        Self {
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

/// `network.direction` of a connection, seen from this host.
#[must_use]
pub fn direction(conn: &ConnInfo, agent: &AgentInfo) -> &'static str {
    if is_local(conn.server_ip, &agent.local_ips) {
        "ingress"
    } else if is_local(conn.client_ip, &agent.local_ips) {
        "egress"
    } else {
        "unknown"
    }
}

/// The envelope's per-connection parts, rendered once per connection rather than per event (the
/// community id alone is a SHA-1 and a base64 encoding): addresses, and the members of `network`,
/// the endpoints and `related.ip` that do not change between a connection's events.
#[derive(Clone, Debug, Default)]
pub struct ConnStrings {
    /// `source.ip`.
    pub client_ip: String,
    /// `destination.ip`.
    pub server_ip: String,
    /// `network.community_id`.
    pub community_id: String,
    /// `network.direction`.
    pub direction: &'static str,
    /// The protocol these were rendered for (`network.protocol`).
    pub kind: &'static str,
    /// `"transport":"tcp","protocol":…,"type":…,"community_id":…,"direction":…`.
    network: String,
    /// `{"ip":"…","port":…` of the client (`source`, `client`).
    client_endpoint: String,
    /// `{"ip":"…","port":…` of the server (`destination`, `server`).
    server_endpoint: String,
    /// `{"ip":["client","server"` (the server left out when it is the client).
    related_ip: String,
}

impl ConnStrings {
    /// Renders the parts of `conn` carrying protocol `kind`, reusing this value's buffers.
    pub fn render(&mut self, conn: &ConnInfo, agent: &AgentInfo, kind: &'static str) {
        use std::fmt::Write as _;
        self.client_ip.clear();
        self.server_ip.clear();
        let _ = write!(self.client_ip, "{}", conn.client_ip);
        let _ = write!(self.server_ip, "{}", conn.server_ip);
        self.community_id = community_id_v1(conn.client_ip, conn.client_port, conn.server_ip, conn.server_port, 6, 0);
        self.direction = direction(conn, agent);
        self.kind = kind;
        let network_type = if conn.client_ip.is_ipv4() { "ipv4" } else { "ipv6" };
        // Addresses, kinds and the base64 id need no JSON escaping.
        self.network.clear();
        let _ = write!(
            self.network,
            r#""transport":"tcp","protocol":"{kind}","type":"{network_type}","community_id":"{}","direction":"{}""#,
            self.community_id, self.direction
        );
        for (out, ip, port) in [
            (&mut self.client_endpoint, &self.client_ip, conn.client_port),
            (&mut self.server_endpoint, &self.server_ip, conn.server_port),
        ] {
            out.clear();
            let _ = write!(out, r#"{{"ip":"{ip}","port":{port}"#);
        }
        self.related_ip.clear();
        let _ = write!(self.related_ip, r#"{{"ip":["{}""#, self.client_ip);
        if self.server_ip != self.client_ip {
            let _ = write!(self.related_ip, r#","{}""#, self.server_ip);
        }
    }
}

/// What libbeat appends to every event, rendered once: `,"agent":{…},"host":{…},"ecs":{…}`, config
/// `tags` and `fields` (unless `fields_under_root`, which must merge into the root instead), and
/// `@metadata`.
#[must_use]
pub fn tail(agent: &AgentInfo) -> Vec<u8> {
    let mut doc = Map::new();
    add_agent_members(&mut doc, agent);
    doc.insert("@metadata".into(), json!({"beat": "packetbeat", "type": "_doc", "version": agent.version}));
    let mut out = serde_json::to_vec(&Value::Object(doc)).unwrap_or_default();
    // `{…}` → `,…`: members to append to an open object.
    out.pop();
    if let Some(first) = out.first_mut() {
        *first = b',';
    }
    out
}

/// Whether the envelope writes top-level `name` itself: protocol fields under it are merged into
/// the envelope's object (or, for plain values, left out) rather than written a second time.
fn is_envelope_name(name: &str) -> bool {
    matches!(
        name,
        "@timestamp"
            | "type"
            | "status"
            | "event"
            | "network"
            | "source"
            | "client"
            | "destination"
            | "server"
            | "related"
            | "method"
            | "query"
            | "request"
            | "response"
            | "error"
            | "agent"
            | "host"
            | "ecs"
            | "tags"
            | "@metadata"
    )
}

/// Appends a byte literal (constant parts of the document; a known length compiles to moves).
macro_rules! lit {
    ($out:expr, $s:literal) => {
        $out.extend_from_slice($s)
    };
}

/// `"…"` of a timestamp.
fn time(out: &mut Vec<u8>, ts: Timestamp) {
    out.push(b'"');
    out.extend_from_slice(&ts.rfc3339_bytes());
    out.push(b'"');
}

/// Ends an envelope object: the protocol's fields under it (names in `own` left out), then `}`.
fn close(out: &mut Vec<u8>, name: &str, section: &[(Key, Value)], own: &[&str]) {
    if !section.is_empty() {
        json::members(out, section, name.len() + 1, &mut false, &|h| own.contains(&h));
    }
    out.push(b'}');
}

const ENDPOINT_OWN: [&str; 4] = ["ip", "port", "bytes", "domain"];

/// The rest of an endpoint object opened with its pre-rendered `{"ip":…,"port":…`.
fn endpoint_tail(out: &mut Vec<u8>, name: &str, section: &[(Key, Value)], bytes: Option<u64>, domain: Option<&str>) {
    if let Some(b) = bytes {
        lit!(out, b",\"bytes\":");
        json::uint(out, b);
    }
    if let Some(d) = domain {
        lit!(out, b",\"domain\":");
        json::string(out, d);
    }
    close(out, name, section, &ENDPOINT_OWN);
}

/// The two objects of one side of the connection (`source` and `client`, or `destination` and
/// `server`), which hold the same values: when no protocol field goes under either, the second is
/// a copy of the first. Inlined into both of its calls, where its names are constants: as a call
/// it cost about 200 more instructions per event.
#[inline(always)]
fn endpoint_pair(
    out: &mut Vec<u8>,
    names: [&str; 2],
    endpoint: &str,
    sections: [&[(Key, Value)]; 2],
    bytes: Option<u64>,
    domain: Option<&str>,
) {
    let [first, second] = names;
    let [first_section, second_section] = sections;
    json::key(out, &mut false, first);
    let start = out.len();
    out.extend_from_slice(endpoint.as_bytes());
    endpoint_tail(out, first, first_section, bytes, domain);
    let end = out.len();
    json::key(out, &mut false, second);
    if first_section.is_empty() && second_section.is_empty() {
        out.extend_from_within(start..end);
    } else {
        out.extend_from_slice(endpoint.as_bytes());
        endpoint_tail(out, second, second_section, bytes, domain);
    }
}

/// `related` after its pre-rendered `{"ip":[client,server`: the protocol's addresses, then its other
/// `related.*` lists in name order (`hosts` from the transaction's typed host names and its fields),
/// each without repeats; empty lists are left out.
fn related(out: &mut Vec<u8>, section: &[(Key, Value)], cs: &ConnStrings, tx: &Transaction) {
    out.extend_from_slice(cs.related_ip.as_bytes());
    let extra_ips = section.iter().find(|(k, _)| k == "related.ip").and_then(|(_, v)| v.as_array());
    for (i, v) in extra_ips.into_iter().flatten().enumerate() {
        let seen = v.as_str().is_some_and(|s| s == cs.client_ip || s == cs.server_ip)
            || extra_ips.is_some_and(|all| all.get(..i).is_some_and(|before| before.contains(v)));
        if !seen {
            out.push(b',');
            json::value(out, v);
        }
    }
    out.push(b']');
    let mut first = false;
    let mut hosts_due = tx.server_domain.is_some() || !tx.related_hosts.is_empty();
    for (k, v) in section {
        let (Some(name), Some(items)) = (k.strip_prefix("related."), v.as_array()) else { continue };
        if name == "ip" || name.contains('.') {
            continue;
        }
        if hosts_due && name >= "hosts" {
            hosts_due = false;
            let merged = if name == "hosts" { items.as_slice() } else { &[] };
            related_hosts(out, &mut first, tx, merged);
            if name == "hosts" {
                continue;
            }
        }
        if items.is_empty() {
            continue;
        }
        json::key(out, &mut first, name);
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if !items.get(..i).is_some_and(|before| before.contains(item)) {
                if i > 0 {
                    out.push(b',');
                }
                json::value(out, item);
            }
        }
        out.push(b']');
    }
    if hosts_due {
        related_hosts(out, &mut first, tx, &[]);
    }
    out.push(b'}');
}

/// `"hosts":[…]`: the transaction's typed host names, then those of `merged` (a `related.hosts` in
/// its fields), without repeats.
fn related_hosts(out: &mut Vec<u8>, first: &mut bool, tx: &Transaction, merged: &[Value]) {
    json::key(out, first, "hosts");
    out.push(b'[');
    if let (Some(domain), [], []) = (&tx.server_domain, tx.related_hosts.as_slice(), merged) {
        // The common list: the host name alone.
        json::string(out, domain);
        out.push(b']');
        return;
    }
    let typed = || tx.server_domain.iter().chain(&tx.related_hosts).map(String::as_str);
    let mut comma = false;
    for (i, host) in typed().enumerate() {
        if !typed().take(i).any(|before| before == host) {
            if std::mem::replace(&mut comma, true) {
                out.push(b',');
            }
            json::string(out, host);
        }
    }
    for (i, v) in merged.iter().enumerate() {
        let seen =
            v.as_str().is_some_and(|s| typed().any(|t| t == s)) || merged.get(..i).is_some_and(|b| b.contains(v));
        if !seen {
            if std::mem::replace(&mut comma, true) {
                out.push(b',');
            }
            json::value(out, v);
        }
    }
    out.push(b']');
}

/// Writes the document of `tx` (its fields sorted, see [`super::Fields::sort`]) as one JSON object: the Packetbeat 8.x ECS layout, with the
/// protocol's dotted fields nested and merged into the envelope's objects. `cs` holds the
/// connection's rendered parts, `tail` what [`tail`] returned, `shapes` the structure of recently
/// seen field lists.
pub fn write_transaction(out: &mut Vec<u8>, tx: &Transaction, cs: &ConnStrings, tail: &[u8], shapes: &mut ShapeCache) {
    let kind = tx.kind;
    out.reserve(2048 + tail.len());
    lit!(out, b"{\"@timestamp\":");
    time(out, tx.ts);
    lit!(out, b",\"type\":");
    json::plain_string(out, kind);
    lit!(out, b",\"status\":");
    json::plain_string(out, tx.status.as_str());
    out.extend_from_slice(&tx.members);
    let sections = shapes.write(out, tx.fields.as_slice(), &is_envelope_name);
    let mut first = false;

    let event = sections.section("event");
    lit!(out, br#","event":{"kind":"event","category":["network"],"type":["connection","protocol"]"#);
    if !event.iter().any(|(k, _)| k == "event.dataset") {
        lit!(out, b",\"dataset\":");
        json::plain_string(out, kind);
    }
    if let Some(s) = tx.start {
        lit!(out, b",\"start\":");
        time(out, s);
    }
    if let Some(e) = tx.end {
        lit!(out, b",\"end\":");
        time(out, e);
    }
    if let Some(d) = tx.start.zip(tx.end).and_then(|(s, e)| e.since(s)) {
        lit!(out, b",\"duration\":");
        json::uint(out, d);
    }
    close(out, "event", event, &["kind", "category", "type", "dataset", "start", "end", "duration"]);

    lit!(out, b",\"network\":{");
    out.extend_from_slice(cs.network.as_bytes());
    if tx.request_bytes.is_some() || tx.response_bytes.is_some() {
        lit!(out, b",\"bytes\":");
        json::uint(out, tx.request_bytes.unwrap_or(0) + tx.response_bytes.unwrap_or(0));
    }
    close(
        out,
        "network",
        sections.section("network"),
        &["transport", "protocol", "type", "community_id", "bytes", "direction"],
    );

    let destination = sections.section("destination");
    let domain = tx
        .server_domain
        .as_deref()
        .or_else(|| destination.iter().find(|(k, _)| k == "destination.domain").and_then(|(_, v)| v.as_str()));
    let client = [sections.section("source"), sections.section("client")];
    endpoint_pair(out, ["source", "client"], &cs.client_endpoint, client, tx.request_bytes, None);
    let server = [destination, sections.section("server")];
    endpoint_pair(out, ["destination", "server"], &cs.server_endpoint, server, tx.response_bytes, domain);
    lit!(out, b",\"related\":");
    related(out, sections.section("related"), cs, tx);

    for (k, v) in [("method", &tx.method), ("query", &tx.query), ("request", &tx.request), ("response", &tx.response)] {
        if let Some(v) = v {
            json::key(out, &mut first, k);
            json::string(out, v);
        }
    }
    let error = sections.section("error");
    if !tx.notes.is_empty() || !error.is_empty() {
        lit!(out, b",\"error\":{");
        let mut own: &[&str] = &[];
        match tx.notes.as_slice() {
            [] => {}
            [one] => {
                lit!(out, b"\"message\":");
                json::string(out, one);
                own = &["message"];
            }
            many => {
                lit!(out, b"\"message\":");
                let _ = serde_json::to_writer(&mut *out, many);
                own = &["message"];
            }
        }
        json::members(out, error, "error".len() + 1, &mut own.is_empty(), &|h| own.contains(&h));
        out.push(b'}');
    }
    out.extend_from_slice(tail);
    out.push(b'}');
}

/// The document of `tx` as a map: [`write_transaction`] parsed back (tests, tools).
#[must_use]
pub fn to_map(tx: &Transaction, conn: &ConnInfo, agent: &AgentInfo) -> Map<String, Value> {
    let mut cs = ConnStrings::default();
    cs.render(conn, agent, tx.kind);
    let mut out = Vec::new();
    let mut tx = tx.clone();
    tx.fields.sort();
    write_transaction(&mut out, &tx, &cs, &tail(agent), &mut ShapeCache::default());
    let mut doc: Map<String, Value> = serde_json::from_slice(&out).unwrap_or_default();
    add_root_fields(&mut doc, agent);
    doc
}

/// Adds what libbeat adds to every event: `agent.*`, `host.name`, `ecs.version`, config `tags` and
/// `fields`.
pub fn add_agent(doc: &mut Map<String, Value>, agent: &AgentInfo) {
    add_agent_members(doc, agent);
    add_root_fields(doc, agent);
}

/// [`add_agent`] without root `fields`.
fn add_agent_members(doc: &mut Map<String, Value>, agent: &AgentInfo) {
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
    if let Some((fields, false)) = &agent.fields {
        doc.insert("fields".into(), Value::Object(fields.clone()));
    }
}

/// Config `fields` with `fields_under_root`: merged into the root, replacing what is there.
pub fn add_root_fields(doc: &mut Map<String, Value>, agent: &AgentInfo) {
    if let Some((fields, true)) = &agent.fields {
        for (k, v) in fields {
            doc.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::fields::Fields;
    use crate::event::Status;

    fn agent() -> AgentInfo {
        AgentInfo::for_tests()
    }

    /// A connection from 10.0.0.1:5555 to `server` port 80.
    fn conn(server: &str) -> ConnInfo {
        ConnInfo {
            client_ip: "10.0.0.1".parse().unwrap(),
            client_port: 5555,
            server_ip: server.parse().unwrap(),
            server_port: 80,
        }
    }

    #[test]
    fn builds_envelope() {
        let conn = conn("127.0.0.1");
        let mut fields = Fields::new();
        fields.insert("http.response.status_code", 200);
        fields.insert("destination.domain", "example.com");
        fields.insert("related.hosts", json!(["example.com", "example.com"]));
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
        let doc = Value::Object(to_map(&tx, &conn, &agent()));
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

    #[test]
    fn typed_host_names_merge_with_fields() {
        let conn = conn("10.0.0.2");
        let doc = |tx: &Transaction| Value::Object(to_map(tx, &conn, &agent()));
        let typed = Transaction {
            kind: "http",
            server_domain: Some("a.example".into()),
            related_hosts: vec!["b.example".into(), "a.example".into()],
            ..Default::default()
        };
        let d = doc(&typed);
        assert_eq!(d["destination"]["domain"], json!("a.example"));
        assert_eq!(d["server"]["domain"], json!("a.example"));
        assert_eq!(d["related"]["hosts"], json!(["a.example", "b.example"]));

        // With `related.*` lists in the fields too: one `hosts` list, typed names first, in name
        // order among the others.
        let mut both = typed.clone();
        both.fields.insert("related.hash", json!(["h"]));
        both.fields.insert("related.hosts", json!(["c.example", "b.example"]));
        both.fields.insert("related.user", json!(["u"]));
        both.fields.sort();
        let mut out = Vec::new();
        let mut cs = ConnStrings::default();
        cs.render(&conn, &agent(), "http");
        write_transaction(&mut out, &both, &cs, b"", &mut ShapeCache::default());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""related":{"ip":["10.0.0.1","10.0.0.2"],"hash":["h"],"hosts":["a.example","b.example","c.example"],"user":["u"]}"#),
            "{text}"
        );

        // Only `related.user` in the fields: `hosts` comes before it. Without typed names, the
        // fields' `destination.domain` is used.
        let mut user = typed.clone();
        user.fields.insert("related.user", json!(["u"]));
        let d = doc(&user);
        assert_eq!(d["related"]["hosts"], json!(["a.example", "b.example"]));
        let generic = Transaction {
            kind: "http",
            fields: {
                let mut f = Fields::new();
                f.insert("destination.domain", "f.example");
                f
            },
            ..Default::default()
        };
        assert_eq!(doc(&generic)["server"]["domain"], json!("f.example"));
        assert_eq!(doc(&generic)["related"].get("hosts"), None);
    }
}
