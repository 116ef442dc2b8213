//! `ssl.*` → a rustls client config: trusted roots (system or `certificate_authorities`), the
//! `verification_mode` (`full` checks chain and name, `certificate` the chain only, `none`
//! nothing), and an optional client certificate.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as RustlsError, RootCertStore, SignatureScheme,
};

use super::config::{SslConfig, VerificationMode};

/// Why the TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("output.elasticsearch.ssl.{key}: {path}: {message}")]
    Pem {
        /// The config key.
        key: &'static str,
        /// The file (or "inline PEM").
        path: String,
        /// Why.
        message: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] RustlsError),
}

fn read_pem(key: &'static str, src: &str) -> Result<Vec<u8>, TlsError> {
    if src.trim_start().starts_with("-----BEGIN") {
        return Ok(src.as_bytes().to_vec());
    }
    std::fs::read(src).map_err(|e| TlsError::Pem { key, path: src.to_owned(), message: e.to_string() })
}

fn certs(key: &'static str, src: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(key, src)?;
    let out: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { key, path: src.to_owned(), message: e.to_string() })?;
    if out.is_empty() {
        return Err(TlsError::Pem { key, path: src.to_owned(), message: "no certificate in the file".into() });
    }
    Ok(out)
}

/// rustls with *ring*. rustls 0.23.48 deprecated *ring*'s provider because it has no post-quantum
/// key exchange; the other provider, aws-lc-rs, compiles a large C library (AWS-LC) into every
/// build, and *ring* is kept rather than take that on for now. The key exchanges offered (X25519,
/// P-256, P-384) are the classical ones every Elasticsearch and OpenSearch node accepts. (The
/// workspace lockfile has 0.23.46; the fuzz crate's resolved 0.23.48.)
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client TLS configuration.
///
/// # Errors
/// Unreadable or empty PEM files, or material rustls rejects.
pub fn client_config(ssl: &SslConfig) -> Result<ClientConfig, TlsError> {
    let mut roots = RootCertStore::empty();
    if ssl.certificate_authorities.is_empty() {
        let found = rustls_native_certs_load();
        roots.add_parsable_certificates(found);
    } else {
        for ca in &ssl.certificate_authorities {
            for c in certs("certificate_authorities", ca)? {
                roots.add(c)?;
            }
        }
    }
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match ssl.verification_mode {
        VerificationMode::Full => builder.with_root_certificates(roots),
        mode => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| RustlsError::General(e.to_string()))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(Relaxed { inner, mode }))
        }
    };
    let config = match (&ssl.certificate, &ssl.key) {
        (Some(cert), Some(key)) => {
            let chain = certs("certificate", cert)?;
            let pem = read_pem("key", key)?;
            let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| TlsError::Pem { key: "key", path: key.clone(), message: e.to_string() })?
                .ok_or_else(|| TlsError::Pem {
                    key: "key",
                    path: key.clone(),
                    message: "no private key in the file".into(),
                })?;
            builder.with_client_auth_cert(chain, key_der)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(config)
}

/// The system's trusted roots (as hyper-rustls's `native-tokio` reads them).
fn rustls_native_certs_load() -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    for dir in ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"] {
        if let Ok(pem) = std::fs::read(dir) {
            out.extend(rustls_pemfile::certs(&mut pem.as_slice()).filter_map(Result::ok));
            break;
        }
    }
    out
}

/// `verification_mode: certificate | none`.
#[derive(Debug)]
struct Relaxed {
    inner: Arc<WebPkiServerVerifier>,
    mode: VerificationMode,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        if self.mode == VerificationMode::None {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(RustlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls12_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        verify_tls13_signature(message, cert, dss, &provider().signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider().signature_verification_algorithms.supported_schemes()
    }
}
