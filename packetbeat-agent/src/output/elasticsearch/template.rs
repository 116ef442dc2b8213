//! Index management (`setup --index-management`, and at start unless `setup.template.enabled:
//! false`): the lifecycle policy (ILM on Elasticsearch, ISM on OpenSearch when its plugin is
//! there) and the composable index template that makes `packetbeat-<version>` a data stream with
//! a mapping for every field the agent emits. Keywords stay aggregatable, `event.duration` is a
//! long (ns), addresses are `ip`, times are `date`, and `pgsql.error_code` is a keyword so SQLSTATE
//! codes like `42P01` index (Packetbeat's `long` rejects them).

use hyper::Method;
use serde_json::{json, Map, Value};

use super::health::{Distribution, EngineInfo};
use super::service::{EsService, ServiceError};

/// The lifecycle policy name (libbeat's default).
pub const POLICY_NAME: &str = "packetbeat";

/// Why setup failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No response.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// The engine refused a setup request.
    #[error("{what} was refused (HTTP {status}): {body}")]
    Refused {
        /// What we tried.
        what: String,
        /// Status.
        status: u16,
        /// The engine's answer (cut).
        body: String,
    },
}

/// What setup did.
#[derive(Debug, Default)]
pub struct SetupReport {
    /// Lines for the user.
    pub done: Vec<String>,
}

fn kw() -> Value {
    json!({"type": "keyword", "ignore_above": 1024})
}

fn t(kind: &str) -> Value {
    json!({"type": kind})
}

fn insert_path(node: &mut Map<String, Value>, parts: &[&str], mapping: &Value) {
    match parts {
        [] => {}
        [last] => {
            node.insert((*last).to_owned(), mapping.clone());
        }
        [first, rest @ ..] => {
            let entry = node.entry((*first).to_owned()).or_insert_with(|| json!({"properties": {}}));
            if let Some(props) =
                entry.as_object_mut().and_then(|o| o.entry("properties").or_insert_with(|| json!({})).as_object_mut())
            {
                insert_path(props, rest, mapping);
            }
        }
    }
}

/// Builds nested `properties` from dotted names.
fn properties(fields: &[(&str, Value)]) -> Value {
    let mut root = Map::new();
    for (name, mapping) in fields {
        let parts: Vec<&str> = name.split('.').collect();
        insert_path(&mut root, &parts, mapping);
    }
    Value::Object(root)
}

/// Every field the agent emits (HTTP, MySQL, PgSQL, Redis, flows, envelope).
#[must_use]
pub fn mappings() -> Value {
    let endpoint = |p: &str| -> Vec<(String, Value)> {
        vec![
            (format!("{p}.ip"), t("ip")),
            (format!("{p}.port"), t("long")),
            (format!("{p}.bytes"), t("long")),
            (format!("{p}.packets"), t("long")),
            (format!("{p}.domain"), kw()),
            (format!("{p}.mac"), kw()),
            (format!("{p}.geo.location"), t("geo_point")),
        ]
    };
    let mut owned: Vec<(String, Value)> = Vec::new();
    for p in ["source", "destination", "client", "server"] {
        owned.extend(endpoint(p));
    }
    let keywords = [
        "type",
        "status",
        "method",
        "query",
        "resource",
        "path",
        "params",
        "tags",
        "event.kind",
        "event.category",
        "event.type",
        "event.dataset",
        "event.action",
        "event.outcome",
        "network.transport",
        "network.protocol",
        "network.type",
        "network.community_id",
        "network.direction",
        "related.hosts",
        "related.user",
        "error.message",
        "http.version",
        "http.request.method",
        "http.request.referrer",
        "http.request.mime_type",
        "http.response.status_phrase",
        "http.response.mime_type",
        "url.scheme",
        "url.domain",
        "url.path",
        "url.query",
        "url.extension",
        "url.full",
        "url.original",
        "user_agent.original",
        "user.name",
        "agent.type",
        "agent.name",
        "agent.version",
        "agent.id",
        "agent.ephemeral_id",
        "agent.hostname",
        "host.name",
        "host.hostname",
        "ecs.version",
        "mysql.error_message",
        "pgsql.error_code",
        "pgsql.error_message",
        "pgsql.error_severity",
        "redis.return_value",
        "redis.error",
        "flow.id",
        "flow.kill_reason",
    ];
    let longs = [
        "event.duration",
        "network.bytes",
        "network.packets",
        "url.port",
        "http.request.bytes",
        "http.request.body.bytes",
        "http.response.bytes",
        "http.response.body.bytes",
        "http.response.status_code",
        "mysql.affected_rows",
        "mysql.insert_id",
        "mysql.num_rows",
        "mysql.num_fields",
        "mysql.error_code",
        "pgsql.num_rows",
        "pgsql.num_fields",
        "flow.vlan",
    ];
    let mut fields: Vec<(&str, Value)> = vec![
        ("@timestamp", t("date")),
        ("event.start", t("date")),
        ("event.end", t("date")),
        ("network.forwarded_ip", t("ip")),
        ("related.ip", t("ip")),
        ("request", t("text")),
        ("response", t("text")),
        ("http.request.body.content", t("text")),
        ("http.response.body.content", t("text")),
        ("http.request.headers", json!({"type": "object"})),
        ("http.response.headers", json!({"type": "object"})),
        ("flow.final", t("boolean")),
        ("notes", json!({"type": "alias", "path": "error.message"})),
        ("transport", json!({"type": "alias", "path": "network.transport"})),
        ("real_ip", json!({"type": "alias", "path": "network.forwarded_ip"})),
        ("bytes_in", json!({"type": "alias", "path": "source.bytes"})),
        ("bytes_out", json!({"type": "alias", "path": "destination.bytes"})),
    ];
    fields.extend(keywords.iter().map(|k| (*k, kw())));
    fields.extend(longs.iter().map(|k| (*k, t("long"))));
    fields.extend(owned.iter().map(|(k, v)| (k.as_str(), v.clone())));
    json!({
        "date_detection": false,
        "dynamic_templates": [
            {"http_headers": {"path_match": "http.*.headers.*", "mapping": kw()}},
            {"strings_as_keyword": {"match_mapping_type": "string", "mapping": kw()}}
        ],
        "properties": properties(&fields),
    })
}

/// The composable template body for `index` on this engine.
#[must_use]
pub fn index_template(index: &str, engine: &EngineInfo, with_policy: bool) -> Value {
    let mut settings = json!({
        "index.number_of_shards": 1,
        "index.refresh_interval": "1s",
        "index.mapping.total_fields.limit": 10000,
    });
    if with_policy && engine.distribution == Distribution::Elasticsearch {
        settings["index.lifecycle.name"] = json!(POLICY_NAME);
    }
    json!({
        "index_patterns": [index],
        "data_stream": {},
        "priority": 150,
        "template": {"settings": settings, "mappings": mappings()},
        "_meta": {"managed_by": "packetbeat-agent", "version": env!("CARGO_PKG_VERSION")},
    })
}

fn cut(body: &[u8]) -> String {
    String::from_utf8_lossy(body.get(..body.len().min(400)).unwrap_or_default()).into_owned()
}

async fn put(service: &EsService, host: usize, path: &str, body: &Value, what: &str) -> Result<(), SetupError> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let r = service.request_to(host, Method::PUT, path, Some(&bytes), "application/json").await?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(SetupError::Refused { what: what.to_owned(), status: r.status, body: cut(&r.body) })
    }
}

/// Loads the policy (when `ilm`) and the template (when missing or `overwrite`).
///
/// # Errors
/// No response, or the engine refused the template or policy.
pub async fn setup(
    service: &EsService,
    engine: &EngineInfo,
    index: &str,
    ilm: bool,
    overwrite: bool,
) -> Result<SetupReport, SetupError> {
    let mut report = SetupReport::default();
    let mut policy = false;
    if ilm {
        match engine.distribution {
            Distribution::Elasticsearch => {
                let body = json!({"policy": {"phases": {"hot": {"actions": {"rollover": {"max_primary_shard_size": "50gb", "max_age": "30d"}}}}}});
                put(service, engine.host, &format!("/_ilm/policy/{POLICY_NAME}"), &body, "ILM policy").await?;
                report.done.push(format!("ILM policy {POLICY_NAME} loaded"));
                policy = true;
            }
            Distribution::OpenSearch => {
                let path = format!("/_plugins/_ism/policies/{POLICY_NAME}");
                let r = service.request_to(engine.host, Method::GET, &path, None, "").await?;
                if r.status == 400 && cut(&r.body).contains("no handler") {
                    report.done.push("ISM plugin not installed: no lifecycle policy".into());
                } else if r.status == 404 {
                    let body = json!({"policy": {
                        "description": "packetbeat-agent: roll over daily or at 50gb",
                        "default_state": "hot",
                        "states": [{"name": "hot", "actions": [{"rollover": {"min_primary_shard_size": "50gb", "min_index_age": "1d"}}], "transitions": []}],
                        "ism_template": [{"index_patterns": [format!(".ds-{index}*")], "priority": 100}],
                    }});
                    put(service, engine.host, &path, &body, "ISM policy").await?;
                    report.done.push(format!("ISM policy {POLICY_NAME} loaded"));
                } else {
                    report.done.push(format!("ISM policy {POLICY_NAME} already there"));
                }
            }
        }
    }
    let path = format!("/_index_template/{index}");
    let exists = service.request_to(engine.host, Method::HEAD, &path, None, "").await?.status == 200;
    if exists && !overwrite {
        report.done.push(format!("index template {index} already there (setup.template.overwrite: false)"));
    } else {
        put(service, engine.host, &path, &index_template(index, engine, policy), "index template").await?;
        report.done.push(format!("index template {index} loaded (data stream {index})"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_types_key_fields() {
        let m = mappings();
        let p = &m["properties"];
        assert_eq!(p["event"]["properties"]["duration"]["type"], "long");
        assert_eq!(p["query"]["type"], "keyword");
        assert_eq!(p["source"]["properties"]["ip"]["type"], "ip");
        assert_eq!(p["destination"]["properties"]["bytes"]["type"], "long");
        assert_eq!(p["pgsql"]["properties"]["error_code"]["type"], "keyword");
        assert_eq!(p["@timestamp"]["type"], "date");
        assert_eq!(p["http"]["properties"]["response"]["properties"]["status_code"]["type"], "long");
    }

    #[test]
    fn template_is_a_data_stream_with_policy_only_on_elasticsearch() {
        let es = EngineInfo {
            distribution: Distribution::Elasticsearch,
            version: "8.12.0".into(),
            major: 8,
            cluster_name: String::new(),
            host: 0,
        };
        let t = index_template("packetbeat-1.0.0", &es, true);
        assert_eq!(t["data_stream"], json!({}));
        assert_eq!(t["priority"], 150);
        assert_eq!(t["template"]["settings"]["index.lifecycle.name"], POLICY_NAME);
        let os = EngineInfo { distribution: Distribution::OpenSearch, ..es };
        assert!(index_template("x", &os, true)["template"]["settings"].get("index.lifecycle.name").is_none());
    }
}
