//! Whom the CLI trusts when the API is https: the system's CA certificates,
//! or only those of a CA file (`--ca`, WPAAS_CA, the saved login), or —
//! for the server's own git hook — exactly one pinned certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The trust anchors for an https API.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The operating system's CA certificates.
    System,
    /// Only the CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Only the certificate with this SHA-256 (hex), whatever its names.
    Pinned(String),
}

impl Trust {
    /// `ca` when given, else the system's roots.
    pub fn from_ca(ca: Option<PathBuf>) -> Self {
        match ca {
            Some(path) => Trust::CaFile(path),
            None => Trust::System,
        }
    }

    /// The CA file, if that is what is trusted.
    pub fn ca_file(&self) -> Option<&Path> {
        match self {
            Trust::CaFile(path) => Some(path),
            _ => None,
        }
    }

    /// A rustls client configuration that verifies servers this way.
    pub fn client_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("rustls has no default protocol versions")?;
        let config = match self {
            Trust::System => {
                let found = rustls_native_certs::load_native_certs();
                let mut roots = RootCertStore::empty();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    bail!("found no CA certificates on this system to verify the server with; pass --ca FILE (or set WPAAS_CA) with the server's CA certificate");
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::CaFile(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("could not read the CA certificate file {}", path.display())
                })?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| {
                        anyhow::anyhow!("{} is not a PEM certificate file ({e:?})", path.display())
                    })?;
                    roots.add(cert).with_context(|| {
                        format!("{} holds a certificate rustls cannot use", path.display())
                    })?;
                }
                if roots.is_empty() {
                    bail!(
                        "{} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
                        path.display()
                    );
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Pinned(sha256) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    sha256: sha256.to_ascii_lowercase(),
                    provider,
                }))
                .with_no_client_auth(),
        };
        Ok(config)
    }
}

/// Accepts exactly the certificate with a given SHA-256, and checks that
/// the server holds its key (the handshake signature), as rustls does for
/// any certificate.
#[derive(Debug)]
struct Pinned {
    sha256: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use sha2::Digest;
        if hex::encode(sha2::Sha256::digest(end_entity.as_ref())) == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// When `err` failed because the server's certificate was not trusted: the
/// reason, as rustls gives it.
pub fn certificate_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(err) = next {
        // io::Error hides its inner error from source(); look inside.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(
                tls @ (rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType),
            ) = candidate.downcast_ref::<rustls::Error>()
            {
                return Some(tls.to_string());
            }
        }
        // Some layers wrap the TLS error in a string of their own.
        let text = err.to_string();
        if let Some(at) = text.find("invalid peer certificate") {
            return Some(text[at..].to_string());
        }
        next = err.source();
    }
    None
}
