//! Queues grow: the latest SNMP sample of a server shows more than `deferred_max` messages in the
//! deferred queue or `active_max` in the active queue; or its agent is down — the last poll
//! could not reach it, or no sample arrived for `agent_silent_minutes` (while polling is on).

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::{minutes_before, Finding, Severity};
use crate::alerts::config::QueueRule;

pub async fn detect(client: &impl GenericClient, rule: &QueueRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    let rows = client
        .query(
            "SELECT s.id, s.name, l.ts, l.reachable, l.error, l.deferred_count, l.active_count, l.deferred_oldest
             FROM snmp_agents a JOIN servers s ON s.id = a.server_id
             LEFT JOIN LATERAL (SELECT * FROM snmp_samples x WHERE x.server_id = s.id AND x.ts <= $1
                                ORDER BY ts DESC LIMIT 1) l ON true
             WHERE a.enabled",
            &[&now],
        )
        .await?;
    let mut findings = Vec::new();
    for row in rows {
        let server_id: i32 = row.get(0);
        let server: String = row.get(1);
        let ts: Option<Timestamp> = row.get(2);
        let Some(ts) = ts else { continue };
        let reachable: bool = row.get(3);
        let link = format!("/servers/{server_id}");
        if !reachable || ts < minutes_before(now, rule.agent_silent_minutes) {
            let error: Option<String> = row.get(4);
            let why = if reachable {
                "no sample".to_owned()
            } else {
                error.clone().unwrap_or_else(|| "unreachable".to_owned())
            };
            findings.push(Finding {
                rule: "agent",
                key: server.clone(),
                server_id: Some(server_id),
                domain: None,
                severity: Severity::Warning,
                title: format!("The SNMP agent of {server} does not answer ({why})"),
                evidence: json!({"server": server, "last_sample": ts, "error": error, "server_page": link}),
            });
            continue;
        }
        let queues = [
            ("deferred", row.get::<_, Option<i64>>(5), rule.deferred_max),
            ("active", row.get::<_, Option<i64>>(6), rule.active_max),
        ];
        for (queue, count, max) in queues {
            let Some(count) = count.filter(|&c| c > max) else {
                continue;
            };
            findings.push(Finding {
                rule: "queue",
                key: format!("{server}/{queue}"),
                server_id: Some(server_id),
                domain: None,
                severity: if count > 4 * max {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                title: format!("{server}'s {queue} queue holds {count} messages (threshold {max})"),
                evidence: json!({"server": server, "queue": queue, "count": count, "threshold": max, "sampled_at": ts,
                                 "oldest_deferred_secs": row.get::<_, Option<i64>>(7), "server_page": link}),
            });
        }
    }
    Ok(findings)
}
