//! HTTPS for the listeners: a certificate chain and its key, read from PEM
//! files once at start (before any socket is bound).

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A server configuration (TLS 1.2 and 1.3, ring, ALPN h2 and http/1.1)
/// for the chain in `cert` (leaf first) and the key in `key` (PKCS#8,
/// PKCS#1 or SEC1).
pub(crate) fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path)
            .with_context(|| format!("could not read the TLS {what} {}", path.display()))
    };
    let pem = read(cert, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            cert.display()
        );
    }
    let key_pem = read(key, "key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| {
            format!(
                "{} holds no private key (expected PEM: -----BEGIN PRIVATE KEY-----)",
                key.display()
            )
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("rustls has no default protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| {
            format!(
                "the key in {} does not fit the certificate in {}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The SHA-256 of the leaf certificate in `cert` (hex): the server's own
/// `git push` hook pins it when it calls the API over loopback, where the
/// certificate's names do not apply.
pub(crate) fn leaf_sha256(cert: &Path) -> Result<String> {
    use sha2::Digest;
    let pem = std::fs::read(cert)
        .with_context(|| format!("could not read the TLS certificate {}", cert.display()))?;
    let leaf = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .with_context(|| format!("{} holds no certificate", cert.display()))?;
    Ok(hex::encode(sha2::Sha256::digest(leaf.as_ref())))
}
