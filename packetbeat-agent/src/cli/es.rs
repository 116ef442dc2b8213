//! The Elasticsearch side of the CLI: opening the output, `setup`, `test output`, and reading
//! `setup.template.*` / `setup.ilm.*` from the raw `setup` section.

use std::sync::Arc;

use anyhow::Context;
use hyper::Method;
use serde_norway::Value;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::output::elasticsearch::config::ElasticsearchConfig;
use crate::output::elasticsearch::service::EsService;
use crate::output::elasticsearch::{self as esout, ElasticsearchOutput, SetupOptions};
use crate::output::Output;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn setup_flag(cfg: &Config, section: &str, key: &str, default: bool) -> bool {
    cfg.setup.as_ref().and_then(|s| s.get(section)).and_then(|s| s.get(key)).and_then(Value::as_bool).unwrap_or(default)
}

/// `setup.template.enabled` (true), `setup.template.overwrite` (false), `setup.ilm.enabled` (true).
#[must_use]
pub fn setup_options(cfg: &Config) -> SetupOptions {
    SetupOptions {
        template: setup_flag(cfg, "template", "enabled", true),
        overwrite: setup_flag(cfg, "template", "overwrite", false),
        ilm: setup_flag(cfg, "ilm", "enabled", true),
    }
}

fn es_config(cfg: &Config) -> anyhow::Result<&ElasticsearchConfig> {
    cfg.output
        .elasticsearch
        .as_ref()
        .filter(|e| e.enabled)
        .context("no output.elasticsearch is configured: set output.elasticsearch.hosts")
}

/// Opens the output (connects, sets up the index unless disabled, resumes the spool).
///
/// # Errors
/// One sentence: TLS, credentials, version, setup or spool problem.
pub fn open(cfg: &Config, es: &ElasticsearchConfig, metrics: &Arc<Metrics>) -> anyhow::Result<Box<dyn Output>> {
    let out = ElasticsearchOutput::open(es, setup_options(cfg), Arc::clone(metrics), VERSION)
        .context("output.elasticsearch cannot start")?;
    Ok(Box::new(out))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// `packetbeat-agent setup [--index-management] [--dashboards]`.
///
/// # Errors
/// The engine is unusable or refused the setup.
pub fn setup_command(cfg: &Config, index_management: bool, dashboards: bool) -> anyhow::Result<()> {
    if dashboards {
        println!("Dashboards: not available yet (the kibana/ saved objects come with a later issue); skipped.");
    }
    if !index_management {
        return Ok(());
    }
    let es = es_config(cfg)?;
    let service = EsService::new(es)?;
    let mut opts = setup_options(cfg);
    opts.template = true;
    opts.overwrite = true;
    let (info, done) = runtime()?.block_on(esout::run_setup(&service, &es.index_name(VERSION), opts))?;
    println!("Connected to {:?} {}", info.distribution, info.version);
    for d in done {
        println!("{d}");
    }
    println!("Index setup finished.");
    Ok(())
}

/// `packetbeat-agent test output`: like libbeat's, one line per check.
///
/// # Errors
/// The first failing check.
pub fn test_output(cfg: &Config) -> anyhow::Result<()> {
    let es = es_config(cfg)?;
    let service = EsService::new(es)?;
    let rt = runtime()?;
    let index = es.index_name(VERSION);
    for (i, host) in service.hosts().iter().enumerate() {
        println!("elasticsearch: {}...", host.base());
        println!("  parse url... OK");
        if host.scheme == "https" {
            println!("  TLS... verification {:?}", es.ssl.verification_mode);
        } else {
            println!("  TLS... WARN secure connection disabled");
        }
        let info = rt.block_on(esout::health::check(&service, i)).with_context(|| format!("{} failed", host.base()))?;
        println!("  talk to server... OK");
        println!("  version: {} ({:?}, cluster {})", info.version, info.distribution, info.cluster_name);
        let priv_body = br#"{"cluster":["monitor","manage_index_templates","manage_ilm"],"index":[{"names":["packetbeat-*"],"privileges":["create_doc","auto_configure"]}]}"#;
        let r = rt.block_on(service.request_to(
            i,
            Method::POST,
            "/_security/user/_has_privileges",
            Some(priv_body),
            "application/json",
        ))?;
        let privileges = match r.status {
            200 => {
                let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                if v.get("has_all_requested").and_then(serde_json::Value::as_bool) == Some(true) {
                    "OK (monitor, manage_index_templates, manage_ilm, create_doc)".to_owned()
                } else {
                    format!("MISSING some: {v}")
                }
            }
            _ => format!("not checked (no security API here: HTTP {})", r.status),
        };
        println!("  privileges: {privileges}");
        let t = rt.block_on(service.request_to(i, Method::HEAD, &format!("/_index_template/{index}"), None, ""))?;
        let present = if t.status == 200 { "present" } else { "missing (run `packetbeat-agent setup`)" };
        println!("  index template {index}: {present}");
    }
    Ok(())
}
