//! The channels alerts go out through: e-mail (the relay of `[reports]`), webhooks (JSON signed
//! with HMAC-SHA256) and Prometheus Alertmanager (`POST /api/v2/alerts`).
//!
//! The lifecycle queues one row of `alert_notifications` per (opening or resolution, channel) in
//! the evaluation's transaction; [`dispatch`] sends what is due, retries a failure after
//! `backoff_secs` doubled at each attempt (at most an hour), and gives up after `max_attempts`.
//! A notification waits for the earlier ones of its alert and channel, so a resolution never
//! arrives before its opening. Rows are claimed with `FOR UPDATE SKIP LOCKED`: several daemons
//! never send one twice.

pub mod alertmanager;
pub mod email;
pub mod webhook;

use std::time::Duration;

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::config::AlertsConfig;

/// An alert's opening (or reopening) or resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Open,
    Resolve,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Open => "open",
            Event::Resolve => "resolve",
        }
    }
}

/// The configured channels' names: `email`, `webhook:<i>`, `alertmanager:<i>`.
pub fn names(config: &AlertsConfig) -> Vec<String> {
    let channels = &config.channels;
    let mut names = Vec::new();
    if !channels.email_to.is_empty() {
        names.push("email".to_owned());
    }
    names.extend((0..channels.webhooks.len()).map(|i| format!("webhook:{i}")));
    names.extend((0..channels.alertmanager.len()).map(|i| format!("alertmanager:{i}")));
    names
}

/// The alert as every channel describes it, at the time of the event.
async fn snapshot(
    client: &impl GenericClient,
    config: &AlertsConfig,
    id: i64,
) -> Result<serde_json::Value, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT a.id, a.rule, a.key, a.severity, a.state, a.title, s.name, a.domain, a.opened_at, a.resolved_at,
                    a.occurrences, a.evidence
             FROM alerts a LEFT JOIN servers s ON s.id = a.server_id WHERE a.id = $1",
            &[&id],
        )
        .await?;
    Ok(json!({
        "id": row.get::<_, i64>(0),
        "rule": row.get::<_, String>(1),
        "key": row.get::<_, String>(2),
        "severity": row.get::<_, String>(3),
        "state": row.get::<_, String>(4),
        "title": row.get::<_, String>(5),
        "server": row.get::<_, Option<String>>(6),
        "domain": row.get::<_, Option<String>>(7),
        "opened_at": row.get::<_, Timestamp>(8),
        "resolved_at": row.get::<_, Option<Timestamp>>(9),
        "occurrences": row.get::<_, i32>(10),
        "evidence": row.get::<_, serde_json::Value>(11),
        "url": format!("{}/alerts/{id}", config.link_base.trim_end_matches('/')),
    }))
}

/// Queues the event of alert `id` for every channel: an opening unless the alert is silenced, a
/// resolution when its opening was queued.
pub async fn queue(
    client: &impl GenericClient,
    config: &AlertsConfig,
    id: i64,
    event: Event,
    now: Timestamp,
) -> Result<(), tokio_postgres::Error> {
    let channels = names(config);
    if channels.is_empty() {
        return Ok(());
    }
    let due = match event {
        Event::Open => {
            client
                .execute(
                    "UPDATE alerts SET notified = true
                     WHERE id = $1 AND NOT notified AND (silenced_until IS NULL OR silenced_until <= $2)",
                    &[&id, &now],
                )
                .await?
        }
        Event::Resolve => {
            client
                .execute("SELECT 1 FROM alerts WHERE id = $1 AND notified", &[&id])
                .await?
        }
    };
    if due == 0 {
        return Ok(());
    }
    let payload = json!({"event": event.name(), "alert": snapshot(client, config, id).await?});
    client
        .execute(
            "INSERT INTO alert_notifications (alert_id, event, channel, payload, created_at, next_attempt_at)
             SELECT $1, $2, c, $3, $4, $4 FROM unnest($5::text[]) c",
            &[&id, &event.name(), &payload, &now, &channels],
        )
        .await?;
    Ok(())
}

/// How long a claimed notification is left to its sender before another daemon may retry it.
const LEASE_SECS: i64 = 300;

/// Sends the notifications due at `now`; returns how many were sent.
pub async fn dispatch(
    client: &impl GenericClient,
    config: &AlertsConfig,
    reports: &crate::schedule::ReportsConfig,
    now: Timestamp,
) -> anyhow::Result<usize> {
    let claimed = client
        .query(
            "UPDATE alert_notifications n SET next_attempt_at = $1::timestamptz + make_interval(secs => $2::int)
             WHERE n.id IN (
                 SELECT x.id FROM alert_notifications x
                 WHERE x.sent_at IS NULL AND NOT x.failed AND x.next_attempt_at <= $1
                   AND NOT EXISTS (SELECT 1 FROM alert_notifications e
                                   WHERE e.alert_id = x.alert_id AND e.channel = x.channel AND e.id < x.id
                                     AND e.sent_at IS NULL AND NOT e.failed)
                 ORDER BY x.id LIMIT 50 FOR UPDATE SKIP LOCKED)
             RETURNING n.id, n.channel, n.payload, n.attempts",
            &[&now, &(LEASE_SECS as i32)],
        )
        .await?;
    let timeout = Duration::from_secs(config.channels.timeout_secs);
    let mut sent = 0;
    for row in claimed {
        let id: i64 = row.get(0);
        let channel: String = row.get(1);
        let payload: serde_json::Value = row.get(2);
        let attempts: i32 = row.get(3);
        let result = send(config, reports, &channel, &payload, timeout).await;
        match result {
            Ok(()) => {
                client
                    .execute(
                        "UPDATE alert_notifications SET sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1",
                        &[&id, &now],
                    )
                    .await?;
                sent += 1;
            }
            Err(e) => {
                let attempts = attempts + 1;
                let backoff = (config.channels.backoff_secs << (attempts - 1).min(12)).min(3600);
                tracing::warn!(channel, attempts, "alert notification not sent: {e:#}");
                client
                    .execute(
                        "UPDATE alert_notifications SET attempts = $2, last_error = $3, failed = $2::int >= $5::int,
                                next_attempt_at = $4::timestamptz + make_interval(secs => $6::int)
                         WHERE id = $1",
                        &[
                            &id,
                            &attempts,
                            &format!("{e:#}"),
                            &now,
                            &config.channels.max_attempts,
                            &(backoff as i32),
                        ],
                    )
                    .await?;
            }
        }
    }
    Ok(sent)
}

async fn send(
    config: &AlertsConfig,
    reports: &crate::schedule::ReportsConfig,
    channel: &str,
    payload: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<()> {
    let (kind, index) = channel.split_once(':').unwrap_or((channel, "0"));
    let index: usize = index.parse().unwrap_or(0);
    match kind {
        "email" => email::send(reports, &config.channels.email_to, payload).await,
        "webhook" => {
            let hook = config
                .channels
                .webhooks
                .get(index)
                .ok_or_else(|| anyhow::anyhow!("{channel} is no longer configured"))?;
            webhook::send(hook, payload, timeout).await
        }
        "alertmanager" => {
            let url = config
                .channels
                .alertmanager
                .get(index)
                .ok_or_else(|| anyhow::anyhow!("{channel} is no longer configured"))?;
            alertmanager::send(url, payload, timeout).await
        }
        _ => anyhow::bail!("unknown channel {channel}"),
    }
}

/// The HTTP client of webhooks and Alertmanager: rustls with the system's CAs.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .build()?)
}
