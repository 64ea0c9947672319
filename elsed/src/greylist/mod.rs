//! GreyLSE: a Postfix SMTPD access policy server (`check_policy_service`) that greylists, with
//! its state in ELSE's PostgreSQL so that every MX shares one greylist (a retry that lands on
//! another MX is recognised). It fails open: without the database it answers `DUNNO` at once.
//!
//! `serve` runs the service; `cleanup` is for elsed's maintenance loop.

// Whitelist management, statistics and end-user queries are for the web application (a later
// issue); until it calls them they are only used by tests.
#![allow(dead_code, unused_imports)]

pub mod batcher;
pub mod config;
pub mod lists;
pub mod policy;
pub mod protocol;
pub mod server;
pub mod store;
pub mod triplet;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_bench;
#[cfg(test)]
mod tests_postfix;
#[cfg(test)]
mod tests_postgrey;

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::db::Pool;
use tokio::sync::mpsc;

pub use config::{DomainMode, GreylistConfig};
pub use policy::Policy;
pub use server::Listener;
pub use store::CleanupStats;

/// Where "now" comes from, so that tests need not wait for the delay to pass.
pub trait Clock: Send + Sync {
    /// Unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        jiff::Timestamp::now().as_second()
    }
}

/// Decisions waiting to be logged; beyond this the newest are dropped (counted) rather than
/// slowing answers down.
const DECISION_QUEUE: usize = 16_384;

/// Builds the service and starts its helpers: the decisions-log writer and the periodic
/// re-reading of the static lists (both end when the service is dropped).
pub async fn start(cfg: GreylistConfig, pool: Pool, clock: Arc<dyn Clock>) -> Arc<Policy> {
    let (tx, rx) = mpsc::channel(DECISION_QUEUE);
    let policy = Arc::new(Policy::new(cfg, pool.clone(), clock, Some(tx)));
    tokio::spawn(store::run_decision_writer(
        pool,
        policy.config().effective_hostname(),
        rx,
    ));
    if let Err(e) = policy.reload_lists().await {
        tracing::warn!("greylist: static lists not loaded yet: {e}");
    }
    let weak = Arc::downgrade(&policy);
    let every = Duration::from_secs(policy.config().lists_refresh_secs.max(1));
    tokio::spawn(refresh_lists(weak, every));
    policy
}

async fn refresh_lists(policy: Weak<Policy>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(policy) = policy.upgrade() else {
            return;
        };
        if let Err(e) = policy.reload_lists().await {
            tracing::warn!("greylist: static lists not refreshed: {e}");
        }
    }
}

/// Runs `elsed greylist`: the `[greylist]` service on a pool of its own. Commits are asynchronous
/// (see [`crate::db::Commit::Asynchronous`]).
pub async fn run(settings: &crate::Settings) -> anyhow::Result<std::process::ExitCode> {
    let cfg = settings.config.greylist.clone();
    let pool = crate::db::pool(
        &settings.database()?,
        "elsed-greylist",
        cfg.pool_size,
        crate::db::Commit::Asynchronous,
    )?;
    serve(cfg, pool).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs the policy service on `cfg.listen` with the system clock, until a listener fails.
pub async fn serve(cfg: GreylistConfig, pool: Pool) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for spec in &cfg.listen {
        let listener = Listener::bind(spec, cfg.socket_mode)
            .await
            .map_err(|e| anyhow::anyhow!("greylist: cannot listen on {spec}: {e}"))?;
        listeners.push(listener);
    }
    let policy = start(cfg, pool, Arc::new(SystemClock)).await;
    server::run(policy, listeners).await?;
    Ok(())
}

/// Removes expired greylisting state (see [`store::cleanup`]); for elsed's maintenance loop.
pub async fn cleanup(cfg: &GreylistConfig, pool: &Pool) -> anyhow::Result<CleanupStats> {
    let mut client = pool.get().await?;
    let client: &mut tokio_postgres::Client = &mut client;
    Ok(store::cleanup(client, cfg, SystemClock.now()).await?)
}
