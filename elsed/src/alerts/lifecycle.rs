//! From findings to alerts: a condition opens one alert, updates it while it holds, and resolves
//! it once it has not been found for `clear_minutes` (hysteresis: a condition that flickers at
//! its threshold keeps one alert open). A condition that returns within `regroup_minutes` of its
//! resolution reopens the same alert (`occurrences` + 1): repeats are one row, not a storm.
//! Each opening and resolution is queued for the channels unless the alert is silenced; users
//! acknowledge or silence alerts they may see, and the history keeps every step.

use std::collections::HashSet;

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::channels;
use super::config::AlertsConfig;
use super::detectors::{minutes_before, Finding};

/// An update of an open alert is written to its history when its severity changes, or at most
/// this often (the alert row itself always has the latest evidence).
const UPDATE_EVENT_MINUTES: i64 = 15;

/// What one evaluation changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub opened: Vec<i64>,
    pub reopened: Vec<i64>,
    pub updated: Vec<i64>,
    pub resolved: Vec<i64>,
}

async fn event(
    client: &impl GenericClient,
    alert: i64,
    at: Timestamp,
    kind: &str,
    actor: Option<&str>,
    details: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO alert_events (alert_id, at, kind, actor, details) VALUES ($1, $2, $3, $4, $5)",
            &[&alert, &at, &kind, &actor, details],
        )
        .await?;
    Ok(())
}

/// Applies the findings of an evaluation at `now` to the alerts.
pub async fn apply(
    client: &impl GenericClient,
    config: &AlertsConfig,
    findings: &[Finding],
    now: Timestamp,
) -> anyhow::Result<Changes> {
    let mut changes = Changes::default();
    let mut held: HashSet<(&str, &str)> = HashSet::new();
    for finding in findings {
        if !held.insert((finding.rule, &finding.key)) {
            continue;
        }
        let evidence = &finding.evidence;
        let severity = finding.severity.name();
        let open = client
            .query_opt(
                "SELECT id, severity, (SELECT max(at) FROM alert_events e WHERE e.alert_id = a.id)
                 FROM alerts a WHERE rule = $1 AND key = $2 AND state = 'open'",
                &[&finding.rule, &finding.key],
            )
            .await?;
        if let Some(open) = open {
            let id: i64 = open.get(0);
            let was: String = open.get(1);
            let last_event: Option<Timestamp> = open.get(2);
            client
                .execute(
                    "UPDATE alerts SET held_at = $2, evidence = $3, title = $4, severity = $5 WHERE id = $1",
                    &[&id, &now, evidence, &finding.title, &severity],
                )
                .await?;
            if was != severity || last_event.is_none_or(|at| at < minutes_before(now, UPDATE_EVENT_MINUTES)) {
                event(
                    client,
                    id,
                    now,
                    "updated",
                    None,
                    &json!({"title": finding.title, "severity": severity, "evidence": evidence}),
                )
                .await?;
                changes.updated.push(id);
            }
            continue;
        }
        let recent = client
            .query_opt(
                "SELECT id FROM alerts WHERE rule = $1 AND key = $2 AND state = 'resolved' AND resolved_at >= $3
                 ORDER BY resolved_at DESC LIMIT 1",
                &[
                    &finding.rule,
                    &finding.key,
                    &minutes_before(now, config.regroup_minutes),
                ],
            )
            .await?;
        let (id, kind) = match recent {
            Some(row) => {
                let id: i64 = row.get(0);
                client
                    .execute(
                        "UPDATE alerts SET state = 'open', resolved_at = NULL, held_at = $2, evidence = $3, title = $4,
                                severity = $5, occurrences = occurrences + 1, acknowledged_at = NULL,
                                acknowledged_by = NULL, notified = false
                         WHERE id = $1",
                        &[&id, &now, evidence, &finding.title, &severity],
                    )
                    .await?;
                changes.reopened.push(id);
                (id, "reopened")
            }
            None => {
                let row = client
                    .query_one(
                        "INSERT INTO alerts (rule, key, server_id, domain, severity, state, title, evidence, opened_at, held_at)
                         VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $8) RETURNING id",
                        &[&finding.rule, &finding.key, &finding.server_id, &finding.domain, &severity, &finding.title, evidence, &now],
                    )
                    .await?;
                let id: i64 = row.get(0);
                changes.opened.push(id);
                (id, "opened")
            }
        };
        event(
            client,
            id,
            now,
            kind,
            None,
            &json!({"title": finding.title, "severity": severity, "evidence": evidence}),
        )
        .await?;
        channels::queue(client, config, id, channels::Event::Open, now).await?;
    }
    // Resolution: open alerts not found for clear_minutes.
    let stale = client
        .query(
            "UPDATE alerts SET state = 'resolved', resolved_at = $1
             WHERE state = 'open' AND held_at < $2 RETURNING id",
            &[&now, &minutes_before(now, config.clear_minutes)],
        )
        .await?;
    for row in stale {
        let id: i64 = row.get(0);
        event(client, id, now, "resolved", None, &json!({})).await?;
        channels::queue(client, config, id, channels::Event::Resolve, now).await?;
        changes.resolved.push(id);
    }
    Ok(changes)
}

/// Serialises evaluations: several `elsed serve` share one database, one evaluates at a time
/// (the others skip that cycle).
const EVALUATION_LOCK: i64 = 0x454c_5345_0020;

/// Runs every detector at `now` and applies the findings, in one transaction; `None` when
/// another daemon is evaluating.
pub async fn evaluate(
    client: &mut tokio_postgres::Client,
    config: &AlertsConfig,
    now: Timestamp,
) -> anyhow::Result<Option<(Vec<Finding>, Changes)>> {
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&EVALUATION_LOCK])
        .await?
        .get(0);
    if !locked {
        return Ok(None);
    }
    let findings = super::detectors::detect_all(&tx, config, now).await?;
    let changes = apply(&tx, config, &findings, now).await?;
    tx.commit().await?;
    Ok(Some((findings, changes)))
}

/// Why an acknowledgement or silence did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no such alert")]
    NotFound,
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
}

/// `actor` acknowledges the alert `id` (the caller checked it may see it): it stays listed, marked
/// as being handled, until it resolves; a reopening clears the mark.
pub async fn acknowledge(client: &impl GenericClient, id: i64, actor: &str, now: Timestamp) -> Result<(), ActionError> {
    let updated = client
        .execute(
            "UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1",
            &[&id, &now, &actor],
        )
        .await?;
    if updated == 0 {
        return Err(ActionError::NotFound);
    }
    event(client, id, now, "acknowledged", Some(actor), &json!({})).await?;
    Ok(())
}

/// `actor` silences the alert `id` until `until` (`None`: lifts the silence): no channel hears of
/// its openings and resolutions meanwhile.
pub async fn silence(
    client: &impl GenericClient,
    id: i64,
    until: Option<Timestamp>,
    actor: &str,
    now: Timestamp,
) -> Result<(), ActionError> {
    let updated = client
        .execute(
            "UPDATE alerts SET silenced_until = $2, silenced_by = CASE WHEN $2::timestamptz IS NULL THEN NULL ELSE $3 END
             WHERE id = $1",
            &[&id, &until, &actor],
        )
        .await?;
    if updated == 0 {
        return Err(ActionError::NotFound);
    }
    let (kind, details) = match until {
        Some(until) => ("silenced", json!({"until": until})),
        None => ("unsilenced", json!({})),
    };
    event(client, id, now, kind, Some(actor), &details).await?;
    Ok(())
}
