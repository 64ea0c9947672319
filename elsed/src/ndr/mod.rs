//! NDR capture: the Postfix servers copy the non-delivery reports they generate to elsed over LMTP
//! (or SMTP), elsed reads them (`dsn`), stores them raw and parsed and links them to the messages
//! tracked from the logs (`store`). A delivery is acknowledged only once committed, so Postfix
//! keeps and retries what the database could not take.
//!
//! STARTTLS is offered when `[ndr]` names a certificate and key (`tls`); the listener is
//! restricted to the configured client addresses either way.

pub mod dsn;
pub mod server;
pub mod store;
pub mod tls;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_postfix;

use std::sync::Arc;

use serde::Deserialize;

use crate::allow_list::AllowList;

/// The `[ndr]` table of elsed.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NdrConfig {
    /// Listening sockets: `HOST:PORT` or `lmtp:HOST:PORT` for LMTP, `smtp:HOST:PORT` for SMTP.
    pub listen: Vec<String>,
    /// Client addresses or CIDR blocks that may deliver; anyone else gets 554 on connect.
    pub allowed_clients: Vec<String>,
    /// Envelope senders accepted (MAIL FROM): `<>` for the null sender of bounces and delay
    /// warnings, `local@` for that local part at any domain (Postfix's double-bounce sender),
    /// or a whole address. Anyone else gets 550: a report forged by someone who could reach
    /// the listener would otherwise show up linked to a real message.
    pub accepted_senders: Vec<String>,
    /// Largest message accepted, in bytes (552 beyond).
    pub max_size: usize,
    /// Simultaneous connections; more are answered 421 and closed.
    pub max_connections: usize,
    /// Seconds to wait for a command (RFC 5321 asks at least 5 minutes of a client; a server
    /// may be quicker, Postfix's LMTP client retries).
    pub command_timeout_secs: u64,
    /// Seconds the whole DATA phase may take.
    pub data_timeout_secs: u64,
    /// Name in the greeting. Empty: the host name.
    pub hostname: String,
    /// PEM certificate chain for STARTTLS; with `tls_key_file`, STARTTLS is offered.
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<std::path::PathBuf>,
    /// Refuse MAIL (530) until the client has started TLS.
    pub require_tls: bool,
    /// Seconds between passes that link the NDRs whose message the logs had not shown yet.
    pub relink_secs: u64,
}

impl Default for NdrConfig {
    fn default() -> Self {
        NdrConfig {
            listen: vec!["127.0.0.1:2424".into()],
            allowed_clients: vec!["127.0.0.1".into(), "::1".into()],
            accepted_senders: vec!["<>".into(), "double-bounce@".into()],
            max_size: 10 * 1024 * 1024,
            max_connections: 64,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            hostname: String::new(),
            tls_cert_file: None,
            tls_key_file: None,
            require_tls: false,
            relink_secs: 60,
        }
    }
}

impl NdrConfig {
    /// The allowed client networks, or the entry that is not an address or CIDR block.
    pub fn allowed(&self) -> Result<AllowList, String> {
        AllowList::parse(&self.allowed_clients)
    }

    /// Whether MAIL FROM:<`sender`> may deliver a report (`sender` without the brackets).
    pub fn accepts_sender(&self, sender: &str) -> bool {
        self.accepted_senders.iter().any(|entry| {
            let entry = entry.trim();
            match entry {
                "<>" | "" => sender.is_empty(),
                _ if entry.ends_with('@') => sender
                    .rsplit_once('@')
                    .is_some_and(|(local, _)| local.eq_ignore_ascii_case(&entry[..entry.len() - 1])),
                _ => sender.eq_ignore_ascii_case(entry),
            }
        })
    }

    pub fn effective_hostname(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }
}

/// Runs the listeners of `cfg` until one fails.
pub async fn serve(cfg: NdrConfig, pool: crate::db::Pool) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for spec in &cfg.listen {
        listeners.push(
            server::Listener::bind(spec)
                .await
                .map_err(|e| anyhow::anyhow!("ndr: cannot listen on {spec}: {e}"))?,
        );
    }
    let relink_secs = cfg.relink_secs;
    let service = Arc::new(server::Service::new(cfg, pool.clone()).map_err(|e| anyhow::anyhow!("[ndr]: {e}"))?);
    tokio::spawn(relink(pool, relink_secs));
    server::run(service, listeners).await?;
    Ok(())
}

/// NDRs stay linkable for this long after they arrive (the log may lag behind them).
const RELINK_WINDOW_SECS: i64 = 7 * 86_400;

/// Links, every `every_secs` (a minute by default), the NDRs whose message the logs had not shown
/// yet when they arrived.
async fn relink(pool: crate::db::Pool, every_secs: u64) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(every_secs.max(1)));
    loop {
        tick.tick().await;
        let since = jiff::Timestamp::now().as_second() - RELINK_WINDOW_SECS;
        let result = async {
            let client = pool.get().await?;
            store::link_pending(&client, since).await
        }
        .await;
        match result {
            Ok(0) => {}
            Ok(n) => tracing::info!("ndr: {n} NDRs linked to their messages"),
            Err(e) => tracing::warn!("ndr: linking pending NDRs failed: {e:#}"),
        }
    }
}

/// Runs `elsed ndr`: migrates the schema when the database is there, then serves.
pub async fn run(args: &NdrArgs, settings: &crate::Settings) -> anyhow::Result<std::process::ExitCode> {
    let mut cfg = settings.config.ndr.clone();
    if !args.listen.is_empty() {
        cfg.listen = args.listen.clone();
    }
    if !args.allowed_clients.is_empty() {
        cfg.allowed_clients = args.allowed_clients.clone();
    }
    // The schema is brought up to date as `elsed import` does. Without a database the collector
    // still listens: Postfix keeps the copies it is told to retry (451) until the database is back.
    match crate::db::connect(&settings.database()?).await {
        Ok(mut client) => {
            crate::db::migrate(&mut client).await?;
        }
        Err(e) => tracing::warn!("ndr: {e:#}; listening anyway, deliveries deferred until it is back"),
    }
    let pool = crate::db::pool(&settings.database()?, "elsed-ndr", 8, crate::db::Commit::Durable)?;
    serve(cfg, pool).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `elsed ndr` flags (they override the `[ndr]` table).
#[derive(Debug, clap::Args)]
pub struct NdrArgs {
    /// Listening socket, repeatable: `HOST:PORT` (LMTP), `lmtp:HOST:PORT` or `smtp:HOST:PORT`
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Client address or CIDR block allowed to deliver, repeatable
    #[arg(long = "allow", value_name = "CIDR")]
    pub allowed_clients: Vec<String>,
}
