//! STARTTLS for the collector (RFC 3207): the certificate and key of `[ndr]` made into a rustls
//! acceptor once, at start, so that a bad file is an error when elsed starts rather than a
//! failed handshake at the first bounce.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// An acceptor for the PEM certificate chain and private key (PKCS#8, PKCS#1 or SEC1).
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, String> {
    let read = |path: &Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let pem = read(cert_file)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert_file.display()));
    }
    // The key is a secret file: the service's own, mode 0600 (crate::secret_file).
    crate::secret_file::check(key_file, "ndr.tls_key_file").map_err(|e| e.to_string())?;
    let pem = read(key_file)?;
    let key = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{}: not a PEM key file: {e}", key_file.display()))?
        .ok_or_else(|| format!("{}: no private key in it", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("{} and {}: {e}", cert_file.display(), key_file.display()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
