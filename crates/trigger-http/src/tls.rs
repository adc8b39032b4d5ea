//! HTTPS: `--tls-cert` / `--tls-key`, as Spin.
//!
//! The certificate chain and key are read once at start (PEM; PKCS#8, PKCS#1
//! or SEC1 keys) into a rustls `ServerConfig` that offers HTTP/2 and
//! HTTP/1.1 by ALPN. The handshake runs in the connection's own task, bounded
//! by the header-read timeout, so a slow handshake never holds the accept
//! loop.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS acceptor's configuration, shared by every connection.
#[derive(Clone)]
pub struct TlsConfig(pub(crate) Arc<rustls::ServerConfig>);

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConfig")
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain and private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}: not a PEM certificate chain", cert.display()))?;
        if certs.is_empty() {
            bail!(
                "{}: no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
                cert.display()
            );
        }
        let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
            format!(
                "{}: no usable private key (expected a PEM PKCS#8, PKCS#1 or SEC1 key)",
                key.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("cannot configure TLS")?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .with_context(|| {
                format!(
                    "the TLS key does not fit the certificate {} (or is of an unsupported kind)",
                    cert.display()
                )
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsConfig(Arc::new(config)))
    }

    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.0.clone())
    }
}
