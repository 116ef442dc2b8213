//! HTTP to the engine and nothing else: one hyper 1.x client (hyper-util's pooled client) over
//! rustls, round-robin over `hosts` (a failed request's retry goes to the next host, which is the
//! failover), auth and custom headers, gzip bodies, a timeout per request.
//!
//! Why rustls rather than native-tls: it is pure Rust with no OpenSSL build or runtime dependency
//! (the agent ships as one static-ish binary next to a kernel program), and its verifier API lets us
//! implement libbeat's `verification_mode: certificate` (chain checked, host name not) exactly,
//! which native-tls cannot express. Verification is on by default, against the system roots or
//! `ssl.certificate_authorities`.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::config::{ElasticsearchConfig, HostUrl};
use super::tls;

/// Why a request got no HTTP response.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No connection, a TLS failure, or the connection broke.
    #[error("cannot reach {url}: {message}")]
    Connect {
        /// Host base URL.
        url: String,
        /// The error chain, flattened.
        message: String,
    },
    /// No complete response within `timeout`.
    #[error("{url} did not answer within {after:?}")]
    Timeout {
        /// Host base URL.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// A header value (from `headers`, `username`, `api_key`) is not valid HTTP.
    #[error("invalid header {name}: {message}")]
    Header {
        /// The header.
        name: String,
        /// Why.
        message: String,
    },
    /// The TLS settings could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body.
    pub body: Bytes,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The engine's HTTP endpoints.
pub struct EsService {
    client: HttpsClient,
    hosts: Vec<HostUrl>,
    next: AtomicUsize,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    compression_level: u32,
}

fn flatten(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if parts.last() != Some(&t) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

impl EsService {
    /// Builds the client (reads the `ssl.*` files; no network yet).
    ///
    /// # Errors
    /// Bad TLS material or header values.
    pub fn new(cfg: &ElasticsearchConfig) -> Result<Arc<Self>, ServiceError> {
        let hosts =
            cfg.host_urls().map_err(|e| ServiceError::Header { name: "hosts".into(), message: e.to_string() })?;
        let tls = tls::client_config(&cfg.ssl)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.timeout.min(Duration::from_secs(10))));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        let mut headers = Vec::new();
        let header = |name: &str, value: &str| -> Result<(HeaderName, HeaderValue), ServiceError> {
            let bad = |m: String| ServiceError::Header { name: name.to_owned(), message: m };
            Ok((
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(e.to_string()))?,
                HeaderValue::from_str(value).map_err(|e| bad(e.to_string()))?,
            ))
        };
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            headers.push(header(AUTHORIZATION.as_str(), &format!("Basic {}", b64(format!("{u}:{p}"))))?);
        }
        if let Some(k) = &cfg.api_key {
            headers.push(header(AUTHORIZATION.as_str(), &format!("ApiKey {}", b64(k.clone())))?);
        }
        for (k, v) in &cfg.headers {
            headers.push(header(k, v)?);
        }
        Ok(Arc::new(Self {
            client,
            hosts,
            next: AtomicUsize::new(0),
            headers,
            timeout: cfg.timeout,
            compression_level: cfg.compression_level,
        }))
    }

    /// The configured hosts.
    #[must_use]
    pub fn hosts(&self) -> &[HostUrl] {
        &self.hosts
    }

    /// Sends to the next host in turn. `body` is gzipped when `compression_level` > 0.
    ///
    /// # Errors
    /// No response (connection, TLS, timeout).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Result<Response, ServiceError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.hosts.len().max(1);
        self.request_to(i, method, path, body, content_type).await
    }

    /// Sends to host number `i`.
    ///
    /// # Errors
    /// No response (connection, TLS, timeout).
    pub async fn request_to(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> Result<Response, ServiceError> {
        let host = self
            .hosts
            .get(i)
            .or_else(|| self.hosts.first())
            .ok_or_else(|| ServiceError::Connect { url: String::new(), message: "no host configured".into() })?;
        let url = host.base();
        let mut req = Request::builder().method(method).uri(format!("{url}{path}"));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let payload = match body {
            Some(b) if self.compression_level > 0 && b.len() > 256 => {
                req = req.header(CONTENT_ENCODING, "gzip");
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(b.len() / 4),
                    flate2::Compression::new(self.compression_level),
                );
                let _ = enc.write_all(b);
                Bytes::from(enc.finish().unwrap_or_default())
            }
            Some(b) => Bytes::copy_from_slice(b),
            None => Bytes::new(),
        };
        if body.is_some() {
            req = req.header(CONTENT_TYPE, content_type);
        }
        let req = req
            .body(Full::new(payload))
            .map_err(|e| ServiceError::Connect { url: url.clone(), message: e.to_string() })?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| flatten(&e))?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| flatten(&e))?.to_bytes();
            Ok::<_, String>(Response { status, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err(ServiceError::Connect { url, message }),
            Err(_) => Err(ServiceError::Timeout { url, after: self.timeout }),
        }
    }
}
