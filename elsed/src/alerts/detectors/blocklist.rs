//! Our servers are blocklisted or rate-limited: the remote replies of the deferrals and bounces
//! of the last `window_minutes` that match the pattern table ([`crate::alerts::patterns`]), at
//! least `min_replies` of them, per sending server, provider and IP of ours the reply names.

use std::collections::BTreeMap;

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::{minutes_before, search_link, server_names, Finding, Severity};
use crate::alerts::config::BlocklistRule;
use crate::alerts::patterns::{classify, named_ip, remote_reply};

/// Failed attempts read per cycle at most (the newest): a flood of failures is an alert already.
const MAX_REPLIES: i64 = 20_000;

#[derive(Default)]
struct Tally {
    replies: i64,
    domains: BTreeMap<String, i64>,
    example: String,
    queue_ids: Vec<String>,
    remote_hosts: BTreeMap<String, i64>,
}

pub async fn detect(client: &impl GenericClient, rule: &BlocklistRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    let since = minutes_before(now, rule.window_minutes);
    let rows = client
        .query(
            "SELECT d.server_id, d.status_text, else_domain(d.recipient), d.queue_id, split_part(d.relay, '[', 1)
             FROM deliveries d
             WHERE d.ts > $1 AND d.ts <= $2 AND d.status IN ('deferred', 'bounced') AND d.status_text <> ''
             ORDER BY d.ts DESC LIMIT $3",
            &[&since, &now, &MAX_REPLIES],
        )
        .await?;
    // (server, provider, ip) → what was seen.
    let mut tallies: BTreeMap<(i32, &'static str, Option<String>), Tally> = BTreeMap::new();
    for row in &rows {
        let text: &str = row.get(1);
        let Some(pattern) = classify(text) else { continue };
        let ip = named_ip(text).map(|ip| ip.to_string());
        let tally = tallies.entry((row.get(0), pattern.name.as_str(), ip)).or_default();
        tally.replies += 1;
        *tally.domains.entry(row.get(2)).or_default() += 1;
        *tally.remote_hosts.entry(row.get(4)).or_default() += 1;
        if tally.example.is_empty() {
            tally.example = remote_reply(text).to_owned();
        }
        if tally.queue_ids.len() < 20 {
            tally.queue_ids.push(row.get(3));
        }
    }
    let names = if tallies.is_empty() {
        Default::default()
    } else {
        server_names(client).await?
    };
    let patterns = crate::alerts::patterns::patterns();
    let mut findings = Vec::new();
    for ((server_id, provider, ip), tally) in tallies {
        if tally.replies < rule.min_replies {
            continue;
        }
        let pattern = patterns
            .iter()
            .find(|p| p.name == provider)
            .expect("a pattern of the table");
        let server = names.get(&server_id).cloned().unwrap_or_else(|| server_id.to_string());
        let on = ip.as_deref().map_or(server.clone(), |ip| format!("{server} ({ip})"));
        let what = match pattern.kind.as_str() {
            "rate_limit" => "rate-limits",
            "reputation" => "refuses for reputation",
            _ => "blocklists",
        };
        let since_text = since.to_rfc3339();
        let server_text = server_id.to_string();
        findings.push(Finding {
            rule: "blocklist",
            key: format!("{server}/{provider}/{}", ip.as_deref().unwrap_or("-")),
            server_id: Some(server_id),
            domain: None,
            severity: if pattern.kind == "rate_limit" {
                Severity::Warning
            } else {
                Severity::Critical
            },
            title: format!("{provider} {what} mail from {on}: {} replies", tally.replies),
            evidence: json!({
                "server": server,
                "provider": provider,
                "kind": pattern.kind,
                "ip": ip,
                "replies": tally.replies,
                "window_minutes": rule.window_minutes,
                "example_reply": tally.example,
                "recipient_domains": tally.domains,
                "remote_hosts": tally.remote_hosts,
                "advice": pattern.advice,
                "queue_ids": tally.queue_ids,
                "messages": search_link(&[("server", &server_text), ("status", "deferred"), ("since", &since_text)]),
            }),
        });
    }
    Ok(findings)
}
