//! A remote destination stops accepting: the share of delivery attempts to one recipient domain,
//! from one server, that were deferred or bounced in the last `window_minutes` is above a
//! threshold made of that destination's own history (the same hours ±1 of the previous
//! `baseline_days`, median + `mad_factor` robust deviations, at least `min_increase` above the
//! median), with `min_attempts` and `min_failures` in the window. A big provider's usual noise is
//! its own baseline; a small one that never fails is held to `min_increase`.
//!
//! The window is read from `deliveries` (a range of its time index, bounded by the window); the
//! history from `alert_destination_hourly`, which [`roll_finished_hours`] fills once per finished
//! hour.

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::{minutes_before, search_link, server_names, Finding, Severity};
use crate::alerts::baseline::Baseline;
use crate::alerts::config::DestinationRule;

/// Hours rolled per cycle at most: a first start over a long history catches up over several
/// cycles instead of making one slow.
const ROLL_PER_CYCLE: i64 = 24;

/// SQL: the delivery `d` counts as an attempt to a destination — an SMTP or LMTP client's attempt
/// that is not the hand-off to a content filter on the same server.
fn counted(d: &str) -> String {
    format!(
        "{d}.daemon IN ('smtp', 'lmtp') AND {d}.status IN ('sent', 'deferred', 'bounced')
         AND else_domain({d}.recipient) <> '' AND NOT {}",
        omelse::store::dedup::handoff(d)
    )
}

/// Rolls the finished hours of the last `baseline_days` that are not rolled yet (at most
/// [`ROLL_PER_CYCLE`], newest first) into `alert_destination_hourly`, and forgets the hours past
/// the baseline.
pub async fn roll_finished_hours(
    client: &impl GenericClient,
    rule: &DestinationRule,
    now: Timestamp,
) -> anyhow::Result<u64> {
    let missing = client
        .query(
            "SELECT h FROM generate_series(date_trunc('hour', $1::timestamptz) - make_interval(days => $2::int),
                                            date_trunc('hour', $1::timestamptz) - interval '1 hour',
                                            interval '1 hour') h
             WHERE NOT EXISTS (SELECT 1 FROM alert_rolled_hours r WHERE r.hour = h)
             ORDER BY h DESC LIMIT $3",
            &[&now, &(rule.baseline_days as i32 + 1), &ROLL_PER_CYCLE],
        )
        .await?;
    for row in &missing {
        let hour: Timestamp = row.get(0);
        client
            .execute(
                &format!(
                    "WITH rolled AS (INSERT INTO alert_rolled_hours VALUES ($1) ON CONFLICT DO NOTHING RETURNING hour)
                     INSERT INTO alert_destination_hourly (hour, server_id, domain, attempts, failures)
                     SELECT $1, d.server_id, else_domain(d.recipient), count(*),
                            count(*) FILTER (WHERE d.status <> 'sent')
                     FROM deliveries d
                     WHERE d.ts >= $1 AND d.ts < $1 + interval '1 hour' AND {} AND EXISTS (SELECT 1 FROM rolled)
                     GROUP BY 2, 3",
                    counted("d")
                ),
                &[&hour],
            )
            .await?;
    }
    client
        .execute(
            "DELETE FROM alert_destination_hourly WHERE hour < $1::timestamptz - make_interval(days => $2::int)",
            &[&now, &(rule.baseline_days as i32 + 2)],
        )
        .await?;
    client
        .execute(
            "DELETE FROM alert_rolled_hours WHERE hour < $1::timestamptz - make_interval(days => $2::int)",
            &[&now, &(rule.baseline_days as i32 + 2)],
        )
        .await?;
    Ok(missing.len() as u64)
}

/// The destinations that stopped accepting at `now`.
pub async fn detect(
    client: &impl GenericClient,
    rule: &DestinationRule,
    now: Timestamp,
) -> anyhow::Result<Vec<Finding>> {
    roll_finished_hours(client, rule, now).await?;
    let since = minutes_before(now, rule.window_minutes);
    // The window, per (server, domain), with what a postmaster wants to read first: the most
    // frequent reply and its enhanced code, the remote host that gave it.
    let rows = client
        .query(
            &format!(
                "WITH w AS (
                     SELECT d.server_id, else_domain(d.recipient) AS domain, d.status, d.dsn, d.relay,
                            d.status_text, d.queue_id
                     FROM deliveries d
                     WHERE d.ts > $1 AND d.ts <= $2 AND {}
                 ), totals AS (
                     SELECT server_id, domain, count(*) AS attempts,
                            count(*) FILTER (WHERE status <> 'sent') AS failures,
                            count(*) FILTER (WHERE status = 'bounced') AS bounced
                     FROM w GROUP BY 1, 2
                     HAVING count(*) >= $3 AND count(*) FILTER (WHERE status <> 'sent') >= $4
                        AND count(*) FILTER (WHERE status <> 'sent')::float8 / count(*) >= $5
                 )
                 SELECT t.server_id, t.domain, t.attempts, t.failures, t.bounced, top.status_text, top.dsn,
                        top.relay, top.n, ARRAY(SELECT DISTINCT w.queue_id FROM w
                                                 WHERE w.server_id = t.server_id AND w.domain = t.domain
                                                   AND w.status <> 'sent' ORDER BY 1 LIMIT 20)
                 FROM totals t
                 CROSS JOIN LATERAL (
                     SELECT w.status_text, w.dsn, split_part(w.relay, '[', 1) AS relay, count(*) AS n
                     FROM w WHERE w.server_id = t.server_id AND w.domain = t.domain AND w.status <> 'sent'
                     GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1 LIMIT 1
                 ) top",
                counted("d")
            ),
            &[&since, &now, &rule.min_attempts, &rule.min_failures, &rule.min_increase],
        )
        .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let names = server_names(client).await?;
    let mut findings = Vec::new();
    for row in rows {
        let server_id: i32 = row.get(0);
        let domain: String = row.get(1);
        let attempts: i64 = row.get(2);
        let failures: i64 = row.get(3);
        let bounced: i64 = row.get(4);
        let share = failures as f64 / attempts as f64;
        let history: Vec<f64> = client
            .query(
                "SELECT failures::float8 / attempts FROM alert_destination_hourly
                 WHERE server_id = $1 AND domain = $2
                   AND hour >= date_trunc('hour', $3::timestamptz) - make_interval(days => $4::int)
                   AND hour < date_trunc('hour', $3::timestamptz) - interval '2 hours'
                   AND abs(((extract(hour FROM hour AT TIME ZONE 'UTC') - extract(hour FROM $3 AT TIME ZONE 'UTC'))::int + 36) % 24 - 12) <= 1",
                &[&server_id, &domain, &now, &(rule.baseline_days as i32)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let baseline = Baseline::of(&history);
        let threshold = baseline.upper_threshold(rule.mad_factor, rule.min_increase);
        if share < threshold {
            continue;
        }
        let server = names.get(&server_id).cloned().unwrap_or_else(|| server_id.to_string());
        let reply: Option<String> = row.get(5);
        let dsn: Option<String> = row.get(6);
        let relay: Option<String> = row.get(7);
        let queue_ids: Vec<String> = row.get(9);
        let since_text = since.to_rfc3339();
        let server_text = server_id.to_string();
        let recipient = format!("@{domain}");
        findings.push(Finding {
            rule: "destination",
            key: format!("{server}/{domain}"),
            server_id: Some(server_id),
            domain: Some(domain.clone()),
            severity: if share >= 0.9 { Severity::Critical } else { Severity::Warning },
            title: format!(
                "{domain} stops accepting mail from {server}: {failures} of {attempts} attempts failed ({:.0}%, usually {:.0}%)",
                share * 100.0,
                baseline.median * 100.0
            ),
            evidence: json!({
                "server": server,
                "domain": domain,
                "window_minutes": rule.window_minutes,
                "attempts": attempts,
                "failures": failures,
                "bounced": bounced,
                "share": share,
                "baseline": {"median": baseline.median, "mad": baseline.mad, "hours": baseline.samples},
                "threshold": threshold,
                "top_reply": {"text": reply, "enhanced_code": dsn, "remote_host": relay, "count": row.get::<_, i64>(8)},
                "queue_ids": queue_ids,
                "messages": search_link(&[("recipient", &recipient), ("server", &server_text), ("since", &since_text)]),
            }),
        });
    }
    Ok(findings)
}
