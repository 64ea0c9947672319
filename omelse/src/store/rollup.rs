//! Hourly rollups (`traffic_hourly`), recomputed from the base tables for the hours the writer
//! marked dirty: a DELETE and an INSERT … SELECT per hour and server, so a refresh can run any
//! number of times and always lands on what the base tables say.

use tokio_postgres::Client;

use super::Result;

/// Serialises refreshes: two at once would delete each other's dirty marks.
const ROLLUP_LOCK: i64 = 0x454c_5345_0003;

/// The metrics of `traffic_hourly`, each an aggregate over `refresh_hours` (hour, server_id).
/// Each hour is a LATERAL probe of an index range and each lookup a LATERAL … LIMIT 1 on a primary
/// key, so the plan (and the cost) follows the rows of the dirty hours, whatever the statistics of
/// freshly filled partitions say.
/// Received: every message (life of a queue id), by sender domain, bytes = size.
/// Delivered/deferred/bounced: delivery attempts, by recipient domain, bytes = message size.
/// Expired: recipients whose final status is `expired`, at the hour of their last attempt.
/// Rejected: policy decisions with action `reject`, by recipient domain.
const METRICS_SQL: &str = "
INSERT INTO traffic_hourly (hour, server_id, flow, domain, metric, messages, bytes)
SELECT h.hour, h.server_id, x.flow, x.domain, 'received', x.messages, x.bytes
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT coalesce(m.flow, 'unknown') AS flow, else_domain(coalesce(m.sender, '')) AS domain,
           count(*) AS messages, coalesce(sum(m.size), 0) AS bytes
    FROM messages m
    WHERE m.server_id = h.server_id AND m.started_at >= h.hour AND m.started_at < h.hour + interval '1 hour'
    GROUP BY 1, 2
) x;

INSERT INTO traffic_hourly (hour, server_id, flow, domain, metric, messages, bytes)
SELECT h.hour, h.server_id, x.flow, x.domain, x.metric, x.messages, x.bytes
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT coalesce(r.flow, m.flow, 'unknown') AS flow, else_domain(d.recipient) AS domain,
           CASE d.status WHEN 'sent' THEN 'delivered' ELSE d.status END AS metric,
           count(*) AS messages, coalesce(sum(m.size), 0) AS bytes
    FROM deliveries d
    LEFT JOIN LATERAL (
        SELECT m.flow, m.size FROM messages m
        WHERE m.started_at = d.message_started_at AND m.uid = d.message_uid LIMIT 1
    ) m ON true
    LEFT JOIN LATERAL (
        SELECT r.flow FROM recipients r
        WHERE r.message_started_at = d.message_started_at AND r.message_uid = d.message_uid
          AND r.address = d.recipient LIMIT 1
    ) r ON true
    WHERE d.server_id = h.server_id AND d.ts >= h.hour AND d.ts < h.hour + interval '1 hour'
      AND d.status IN ('sent', 'deferred', 'bounced')
    GROUP BY 1, 2, 3
) x;

INSERT INTO traffic_hourly (hour, server_id, flow, domain, metric, messages, bytes)
SELECT h.hour, h.server_id, x.flow, x.domain, 'expired', x.messages, x.bytes
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT coalesce(r.flow, m.flow, 'unknown') AS flow, else_domain(r.address) AS domain,
           count(*) AS messages, coalesce(sum(m.size), 0) AS bytes
    FROM recipients r
    CROSS JOIN LATERAL (
        SELECT m.flow, m.size, m.server_id FROM messages m
        WHERE m.started_at = r.message_started_at AND m.uid = r.message_uid LIMIT 1
    ) m
    WHERE r.status = 'expired' AND r.last_attempt_at >= h.hour AND r.last_attempt_at < h.hour + interval '1 hour'
      AND m.server_id = h.server_id
    GROUP BY 1, 2
) x;

INSERT INTO traffic_hourly (hour, server_id, flow, domain, metric, messages, bytes)
SELECT h.hour, h.server_id, x.flow, x.domain, 'rejected', x.messages, 0
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT coalesce(f.flow, 'unknown') AS flow, else_domain(coalesce(j.recipient, '')) AS domain,
           count(*) AS messages
    FROM rejects j
    LEFT JOIN LATERAL (
        SELECT m.flow FROM messages m
        WHERE m.uid = j.message_uid AND m.started_at <= j.ts AND m.started_at > j.ts - interval '30 days'
        LIMIT 1
    ) f ON true
    WHERE j.server_id = h.server_id AND j.ts >= h.hour AND j.ts < h.hour + interval '1 hour'
      AND j.action = 'reject'
    GROUP BY 1, 2
) x;
";

/// Recomputes `traffic_hourly` for every dirty (hour, server) and clears the marks; returns how
/// many (hour, server) pairs were refreshed.
///
/// The marks are locked (in order) before the base tables are read: a writer that marked one of
/// them has committed by then, and a writer marking one later waits for this refresh and leaves a
/// fresh mark for the next one. So no committed row is ever left out of its rollup.
pub async fn refresh_rollups(client: &mut Client) -> Result<u64> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ROLLUP_LOCK]).await?;
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning;
         CREATE TEMP TABLE IF NOT EXISTS refresh_hours (hour timestamptz, server_id integer, PRIMARY KEY (hour, server_id))
             ON COMMIT DELETE ROWS;",
    )
    .await?;
    let refreshed = tx
        .execute(
            "INSERT INTO refresh_hours SELECT hour, server_id FROM rollup_dirty ORDER BY hour, server_id FOR UPDATE",
            &[],
        )
        .await?;
    if refreshed > 0 {
        tx.batch_execute(
            "DELETE FROM rollup_dirty d USING refresh_hours h WHERE d.hour = h.hour AND d.server_id = h.server_id;
             ANALYZE refresh_hours;
             DELETE FROM traffic_hourly t USING refresh_hours h WHERE t.hour = h.hour AND t.server_id = h.server_id;",
        )
        .await?;
        tx.batch_execute(METRICS_SQL).await?;
    }
    tx.commit().await?;
    Ok(refreshed)
}
