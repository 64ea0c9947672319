//! Opening a connection: plain on a local socket or a private network, TLS with a verified server
//! certificate wherever the connection string asks for it (`sslmode=require`) or a CA file is
//! given. Unlike libpq's `require`, ELSE always verifies the certificate: a log store reached over
//! a network deserves it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Result, StoreError};

/// How to open a connection beyond what the connection string says.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Names the connection in `pg_stat_activity`, unless the connection string does.
    pub application_name: Option<String>,
    /// PEM file of the CA(s) that signed the server's certificate; implies TLS. Without it, TLS
    /// connections trust the system's certificate store.
    pub ca_file: Option<PathBuf>,
}

/// Opens a connection (URL or `key=value` string) and drives it on a spawned tokio task; the
/// session runs in UTC so that day and hour boundaries are UTC ones, with synchronous commits.
pub async fn connect(url: &str) -> Result<Client> {
    connect_with(url, &ConnectOptions::default()).await
}

/// [`connect`], naming the connection (`application_name`) unless the string already does.
pub async fn connect_as(url: &str, application_name: Option<&str>) -> Result<Client> {
    let options = ConnectOptions {
        application_name: application_name.map(str::to_owned),
        ..Default::default()
    };
    connect_with(url, &options).await
}

/// [`connect`] with [`ConnectOptions`].
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Client> {
    let (config, tls) = connect_config(url, options)?;
    let client = match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls).await?;
            tokio::spawn(async move {
                // The error also reaches the client's next call, which reports it.
                let _ = connection.await;
            });
            client
        }
        None => {
            let (client, connection) = config.connect(NoTls).await?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            client
        }
    };
    // UTC day and hour boundaries; and a commit that is acknowledged is durable whatever the
    // server's default: omelse tells rsyslog a batch is done on the strength of it, and a
    // server-wide `synchronous_commit = off` would lose the last acknowledged batches in a crash.
    client
        .batch_execute("SET TIME ZONE 'UTC'; SET synchronous_commit TO on")
        .await?;
    Ok(client)
}

/// How [`connect_with`] reaches the server, before it does: the connection string with the
/// options applied (`application_name`; TLS required when a CA file is given; anything but
/// `sslmode=require` is plain, as on a local socket or a private network), and the TLS connector
/// when TLS is used. elsed's pool opens its connections from these.
pub fn connect_config(url: &str, options: &ConnectOptions) -> Result<(Config, Option<MakeRustlsConnect>)> {
    let mut config: Config = url.parse()?;
    if let (Some(name), None) = (&options.application_name, config.get_application_name()) {
        config.application_name(name);
    }
    if options.ca_file.is_some() {
        config.ssl_mode(SslMode::Require);
    }
    if config.get_ssl_mode() == SslMode::Require {
        Ok((config, Some(tls_connector(options)?)))
    } else {
        config.ssl_mode(SslMode::Disable);
        Ok((config, None))
    }
}

/// A rustls connector trusting the CA file, or the system's store.
fn tls_connector(options: &ConnectOptions) -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match &options.ca_file {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| StoreError::Tls(format!("cannot read {}: {e}", path.display())))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| StoreError::Tls(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| StoreError::Tls(format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(StoreError::Tls(format!("{}: no certificate in it", path.display())));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
