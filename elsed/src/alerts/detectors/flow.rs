//! Mail stops flowing.
//!
//! - `volume`: a server's inbound or outbound messages received in the last finished hour fall
//!   below `volume_drop_share` of its usual level for that hour — the median of the same hour of
//!   the week over `volume_weeks` weeks, or of the same hour of the previous 7 days while fewer
//!   than two weeks are known — when the usual level is at least `volume_min_usual` (from
//!   `traffic_hourly`).
//! - `silent`: a server that logged within the last day has logged nothing for `silent_minutes`
//!   (the log pipeline broke, or the server is down).
//! - `ingest_lag`: a server's lines arrive (its last line moved since the previous cycle) but
//!   their time is more than `lag_minutes` behind the clock.

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::{minutes_before, search_link, Finding, Severity};
use crate::alerts::baseline::Baseline;
use crate::alerts::config::FlowRule;

pub async fn detect(client: &impl GenericClient, rule: &FlowRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    let mut findings = silence_and_lag(client, rule, now).await?;
    findings.extend(volume(client, rule, now).await?);
    Ok(findings)
}

async fn silence_and_lag(client: &impl GenericClient, rule: &FlowRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    // What moved since the previous cycle, then the new picture for the next one.
    let rows = client
        .query(
            "SELECT s.id, s.name, s.last_seen, w.last_seen IS DISTINCT FROM s.last_seen AND w.server_id IS NOT NULL
             FROM servers s LEFT JOIN alert_server_watch w ON w.server_id = s.id
             WHERE s.last_seen > $1::timestamptz - interval '1 day'",
            &[&now],
        )
        .await?;
    client
        .execute(
            "INSERT INTO alert_server_watch (server_id, last_seen, observed_at, moved_at)
             SELECT id, last_seen, $1, $1 FROM servers WHERE last_seen IS NOT NULL
             ON CONFLICT (server_id) DO UPDATE SET
                 moved_at = CASE WHEN alert_server_watch.last_seen IS DISTINCT FROM EXCLUDED.last_seen
                                 THEN EXCLUDED.observed_at ELSE alert_server_watch.moved_at END,
                 last_seen = EXCLUDED.last_seen, observed_at = EXCLUDED.observed_at",
            &[&now],
        )
        .await?;
    let mut findings = Vec::new();
    for row in rows {
        let server_id: i32 = row.get(0);
        let server: String = row.get(1);
        let last_seen: Timestamp = row.get(2);
        let moved: bool = row.get(3);
        let behind_minutes = (now.0 - last_seen.0) / (60 * Timestamp::MICROS_PER_SECOND);
        let evidence = json!({"server": server, "last_line": last_seen, "minutes_behind": behind_minutes,
                              "logs": format!("/logs?server={server_id}")});
        if last_seen < minutes_before(now, rule.silent_minutes) && !moved {
            findings.push(Finding {
                rule: "silent",
                key: server.clone(),
                server_id: Some(server_id),
                domain: None,
                severity: Severity::Critical,
                title: format!("{server} has sent no log line for {behind_minutes} minutes"),
                evidence,
            });
        } else if moved && last_seen < minutes_before(now, rule.lag_minutes) {
            findings.push(Finding {
                rule: "ingest_lag",
                key: server.clone(),
                server_id: Some(server_id),
                domain: None,
                severity: Severity::Warning,
                title: format!("{server}'s log lines arrive {behind_minutes} minutes late"),
                evidence,
            });
        }
    }
    Ok(findings)
}

async fn volume(client: &impl GenericClient, rule: &FlowRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    // The last finished hour per (server, flow), and the same hour of the previous weeks and days.
    let rows = client
        .query(
            "WITH h AS (SELECT date_trunc('hour', $1::timestamptz) - interval '1 hour' AS hour),
             keys AS (
                 SELECT DISTINCT t.server_id, t.flow FROM traffic_hourly t, h
                 WHERE t.hour >= h.hour - make_interval(days => 7 * $2::int) AND t.hour < h.hour
                   AND NOT t.by_domain AND t.metric = 'received' AND t.flow IN ('inbound', 'outbound')
             )
             SELECT k.server_id, s.name, k.flow,
                    coalesce((SELECT sum(messages) FROM traffic_hourly t
                              WHERE t.hour = h.hour AND t.server_id = k.server_id AND t.flow = k.flow
                                AND NOT t.by_domain AND t.metric = 'received'), 0)::float8,
                    ARRAY(SELECT coalesce(sum(t.messages), 0)::float8
                          FROM generate_series(1, $2::int) w
                          LEFT JOIN traffic_hourly t ON t.hour = h.hour - make_interval(days => 7 * w)
                               AND t.server_id = k.server_id AND t.flow = k.flow AND NOT t.by_domain
                               AND t.metric = 'received'
                          WHERE h.hour - make_interval(days => 7 * w) >= s.first_seen
                          GROUP BY w),
                    ARRAY(SELECT coalesce(sum(t.messages), 0)::float8
                          FROM generate_series(1, 7) d
                          LEFT JOIN traffic_hourly t ON t.hour = h.hour - make_interval(days => d)
                               AND t.server_id = k.server_id AND t.flow = k.flow AND NOT t.by_domain
                               AND t.metric = 'received'
                          WHERE h.hour - make_interval(days => d) >= s.first_seen
                          GROUP BY d)
             FROM keys k CROSS JOIN h JOIN servers s ON s.id = k.server_id",
            &[&now, &(rule.volume_weeks as i32)],
        )
        .await?;
    let mut findings = Vec::new();
    for row in rows {
        let server_id: i32 = row.get(0);
        let server: String = row.get(1);
        let flow: String = row.get(2);
        let current: f64 = row.get(3);
        let weeks: Vec<f64> = row.get(4);
        let days: Vec<f64> = row.get(5);
        let (history, by) = if weeks.len() >= 2 {
            (weeks, "week")
        } else {
            (days, "day")
        };
        let usual = Baseline::of(&history);
        if usual.samples < 2 || usual.median < rule.volume_min_usual || current >= rule.volume_drop_share * usual.median
        {
            continue;
        }
        let server_text = server_id.to_string();
        findings.push(Finding {
            rule: "volume",
            key: format!("{server}/{flow}"),
            server_id: Some(server_id),
            domain: None,
            severity: Severity::Warning,
            title: format!(
                "{server} received {current:.0} {flow} messages in the last hour, usually {:.0}",
                usual.median
            ),
            evidence: json!({
                "server": server, "flow": flow, "messages": current, "usual": usual.median,
                "usual_from": format!("the same hour of the previous {}s", by), "hours": usual.samples,
                "messages_link": search_link(&[("server", &server_text), ("flow", &flow)]),
            }),
        });
    }
    Ok(findings)
}
