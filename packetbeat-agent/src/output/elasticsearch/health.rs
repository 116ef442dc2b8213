//! `GET /`: which engine and version answers, checked before anything is sent.

use hyper::Method;
use serde::Deserialize;

use super::service::{EsService, ServiceError};

/// The engine behind the hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Elasticsearch.
    Elasticsearch,
    /// OpenSearch (`version.distribution: opensearch`).
    OpenSearch,
}

/// What `GET /` said.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// Engine.
    pub distribution: Distribution,
    /// `version.number`.
    pub version: String,
    /// Major version.
    pub major: u32,
    /// `cluster_name`.
    pub cluster_name: String,
    /// Which of the configured hosts answered (setup talks to it).
    pub host: usize,
}

/// Why the engine cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// No response.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// 401/403.
    #[error("{url} refused the credentials (HTTP {status}): check output.elasticsearch.username/password or api_key")]
    Unauthorized {
        /// Host.
        url: String,
        /// Status.
        status: u16,
    },
    /// Another status, or not an engine.
    #[error("{url} is not a usable Elasticsearch/OpenSearch endpoint: {message}")]
    NotAnEngine {
        /// Host.
        url: String,
        /// Why.
        message: String,
    },
    /// Too old for data streams.
    #[error("{url} runs {what} {version}: data streams need Elasticsearch 7.9+ or OpenSearch 1.0+")]
    TooOld {
        /// Host.
        url: String,
        /// Engine.
        what: &'static str,
        /// Version.
        version: String,
    },
}

#[derive(Deserialize)]
struct Root {
    #[serde(default)]
    cluster_name: String,
    version: RootVersion,
}

#[derive(Deserialize)]
struct RootVersion {
    number: String,
    #[serde(default)]
    distribution: Option<String>,
}

/// Asks host `i` who it is.
///
/// # Errors
/// No response, bad credentials, not an engine, or too old.
pub async fn check(service: &EsService, i: usize) -> Result<EngineInfo, HealthError> {
    let url = service.hosts().get(i).map(super::config::HostUrl::base).unwrap_or_default();
    let resp = service.request_to(i, Method::GET, "/", None, "").await?;
    if resp.status == 401 || resp.status == 403 {
        return Err(HealthError::Unauthorized { url, status: resp.status });
    }
    if resp.status != 200 {
        return Err(HealthError::NotAnEngine { url, message: format!("GET / answered HTTP {}", resp.status) });
    }
    let root: Root = serde_json::from_slice(&resp.body).map_err(|e| HealthError::NotAnEngine {
        url: url.clone(),
        message: format!("GET / is not an engine's answer ({e})"),
    })?;
    let distribution = match root.version.distribution.as_deref() {
        Some("opensearch") => Distribution::OpenSearch,
        _ => Distribution::Elasticsearch,
    };
    let mut parts = root.version.number.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let too_old = match distribution {
        Distribution::Elasticsearch => major < 7 || (major == 7 && minor < 9),
        Distribution::OpenSearch => major < 1,
    };
    if too_old {
        let what = if distribution == Distribution::OpenSearch { "OpenSearch" } else { "Elasticsearch" };
        return Err(HealthError::TooOld { url, what, version: root.version.number });
    }
    Ok(EngineInfo { distribution, version: root.version.number, major, cluster_name: root.cluster_name, host: i })
}
