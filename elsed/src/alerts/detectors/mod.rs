//! The detectors: each reads the rollups (and at most its own short window of recent rows) and
//! says which conditions hold now, as [`Finding`]s; the lifecycle turns them into alerts. Every
//! rule is documented in docs/alerts.md with its thresholds ([`crate::alerts::config`]).

pub mod blocklist;
pub mod destination;
pub mod flow;
pub mod greylist;
pub mod queues;
pub mod rates;

use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::GenericClient;

use super::config::AlertsConfig;

/// The rules about a server's health (its log stream, its SNMP agent and queues): whoever may
/// see the server sees them, as the servers page shows its health.
pub const HEALTH_RULES: &[&str] = &["silent", "ingest_lag", "queue", "agent"];

/// How bad a condition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A condition that holds at the time of the evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The detector's rule (`destination`, `blocklist`, …).
    pub rule: &'static str,
    /// What it is about within the rule: the identity of the condition (`out1/example.net`).
    pub key: String,
    /// The server it is on and the group domain it is about, for the callers' scope
    /// (`web/api/alerts.rs`, `visible`).
    pub server_id: Option<i32>,
    pub domain: Option<String>,
    pub severity: Severity,
    /// One line a postmaster understands.
    pub title: String,
    /// The counts, replies and links behind it.
    pub evidence: serde_json::Value,
}

/// Every rule, evaluated at `now`: the conditions that hold.
pub async fn detect_all(
    client: &impl GenericClient,
    config: &AlertsConfig,
    now: Timestamp,
) -> anyhow::Result<Vec<Finding>> {
    let mut findings = destination::detect(client, &config.destination, now).await?;
    findings.extend(blocklist::detect(client, &config.blocklist, now).await?);
    findings.extend(flow::detect(client, &config.flow, now).await?);
    findings.extend(queues::detect(client, &config.queues, now).await?);
    findings.extend(rates::detect(client, &config.rates, now).await?);
    findings.extend(greylist::detect(client, &config.greylist, now).await?);
    Ok(findings)
}

/// The names of the servers, by id (titles name servers, not ids).
pub async fn server_names(client: &impl GenericClient) -> anyhow::Result<std::collections::HashMap<i32, String>> {
    let rows = client.query("SELECT id, name FROM servers", &[]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The search page's address for messages matching these filters (relative to the
/// application; the channels put `link_base` in front).
pub fn search_link(filters: &[(&str, &str)]) -> String {
    let query: Vec<String> = filters.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
    format!("/search?{}", query.join("&"))
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `minutes` before `at`.
pub fn minutes_before(at: Timestamp, minutes: i64) -> Timestamp {
    Timestamp(at.0 - minutes * 60 * Timestamp::MICROS_PER_SECOND)
}
