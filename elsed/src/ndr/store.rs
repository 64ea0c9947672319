//! NDRs in PostgreSQL: one transaction per delivery (the report, its recipient blocks, its link),
//! and the linking to the messages of the logs, which may run again later because the log lines
//! of the bounced message can arrive after its NDR.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;

use tokio_postgres::{Client, GenericClient};

use super::dsn;

/// One delivery, as the listener received it.
pub struct Incoming<'a> {
    /// Unix seconds.
    pub received_at: i64,
    pub client_ip: IpAddr,
    pub helo: Option<&'a str>,
    pub protocol: &'a str,
    pub sender: &'a str,
    pub recipients: &'a [String],
    pub raw: &'a [u8],
}

/// Parses and stores one NDR and tries to link it; returns its id once committed (the id of the
/// stored copy when the same bytes came before).
pub async fn insert(client: &mut Client, known_days: &Mutex<BTreeSet<i64>>, ndr: &Incoming<'_>) -> anyhow::Result<i64> {
    let report = dsn::parse(ndr.raw);
    let day = ndr.received_at.div_euclid(86_400);
    let known = known_days.lock().unwrap().contains(&day);
    if !known {
        omelse::store::ensure_days(client, &BTreeSet::from([day])).await?;
        known_days.lock().unwrap().insert(day);
    }
    match write(client, ndr, &report).await {
        // Retention may have dropped the partition since it was made: make it again, once.
        Err(_) if known => {
            omelse::store::ensure_days(client, &BTreeSet::from([day])).await?;
            write(client, ndr, &report).await
        }
        result => result,
    }
}

async fn write(client: &mut Client, ndr: &Incoming<'_>, r: &dsn::Report) -> anyhow::Result<i64> {
    let tx = client.transaction().await?;
    let received = ndr.received_at as f64;
    let arrival = r.arrival_date.map(|s| s as f64);
    // Postfix sends a copy again when our 250 was lost (timeout, broken connection): same bytes.
    let duplicate = tx
        .query_opt(
            "SELECT id FROM ndrs WHERE raw_sha256 = sha256($1) AND received_at >= to_timestamp($2) - interval '7 days'
             LIMIT 1",
            &[&ndr.raw, &received],
        )
        .await?;
    if let Some(row) = duplicate {
        return Ok(row.get(0));
    }
    let row = tx
        .query_one(
            "INSERT INTO ndrs (received_at, client_ip, helo, protocol, envelope_sender, envelope_rcpts, kind,
                 problem, subject, message_id, ndr_queue_id, reporting_mta, postfix_queue_id, postfix_sender,
                 arrival_date, returned, orig_message_id, orig_subject, orig_from, orig_date, raw, raw_sha256)
             VALUES (to_timestamp($1), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 to_timestamp($15), $16, $17, $18, $19, $20, $21, sha256($21))
             RETURNING id",
            &[
                &received,
                &ndr.client_ip,
                &ndr.helo,
                &ndr.protocol,
                &ndr.sender,
                &ndr.recipients,
                &r.kind.as_str(),
                &r.problem,
                &r.subject,
                &r.message_id,
                &r.ndr_queue_id,
                &r.reporting_mta,
                &r.postfix_queue_id,
                &r.postfix_sender,
                &arrival,
                &r.returned,
                &r.orig_message_id,
                &r.orig_subject,
                &r.orig_from,
                &r.orig_date,
                &ndr.raw,
            ],
        )
        .await?;
    let id: i64 = row.get(0);
    for (position, rcpt) in r.recipients.iter().enumerate() {
        tx.execute(
            "INSERT INTO ndr_recipients (ndr_received_at, ndr_id, position, final_recipient, original_recipient,
                 action, status, remote_mta, diagnostic_code)
             VALUES (to_timestamp($1), $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &received,
                &id,
                &(position as i32),
                &rcpt.final_recipient,
                &rcpt.original_recipient,
                &rcpt.action,
                &rcpt.status,
                &rcpt.remote_mta,
                &rcpt.diagnostic_code,
            ],
        )
        .await?;
    }
    link(&tx, "n.id = $1 AND n.received_at = to_timestamp($2)", &[&id, &received]).await?;
    tx.commit().await?;
    Ok(id)
}

/// SQL: server `s` is the one that reported NDR `n`: its name is the Reporting-MTA or that
/// name's first label (as linking matches it), or the copy came from its address.
pub fn reported_by(n: &str, s: &str) -> String {
    format!(
        "(lower({s}.name) IN (lower({n}.reporting_mta), lower(split_part({n}.reporting_mta, '.', 1)))
          OR {s}.address = {n}.client_ip)"
    )
}

/// Links the NDRs still unlinked that arrived since `since` (Unix seconds); for elsed's
/// maintenance, after the logs have caught up. Returns how many were linked.
pub async fn link_pending(client: &Client, since: i64) -> anyhow::Result<u64> {
    let since = since as f64;
    link(
        client,
        "n.message_uid IS NULL AND n.received_at >= to_timestamp($1)",
        &[&since],
    )
    .await
}

/// Links the NDRs `filter` selects (alias `n`), each to one message of the logs:
/// 1. by (reporting host, X-Postfix-Queue-ID), the message started within an hour of the
///    report's Arrival-Date (queue ids are reused), its Message-ID equal to the returned one when
///    both are known, one of its recipients among the failed ones when the logs have recipients;
/// 2. else by the NDR's own queue id, which the `sender non-delivery notification: QID` line of
///    the reporting host links to the bounced message (links kind `notification`).
async fn link<C: GenericClient>(
    client: &C,
    filter: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> anyhow::Result<u64> {
    let sql = format!(
        "WITH n AS (
             SELECT n.received_at, n.id, n.reporting_mta, n.postfix_queue_id, n.ndr_queue_id, n.orig_message_id,
                    n.arrival_date, s.id AS server_id
             FROM ndrs n
             JOIN servers s ON n.reporting_mta IS NOT NULL
                  AND lower(s.name) IN (lower(n.reporting_mta), lower(split_part(n.reporting_mta, '.', 1)))
             WHERE n.message_uid IS NULL AND {filter}
         ),
         by_queue_id AS (
             SELECT n.received_at, n.id, m.started_at, m.uid, 'queue_id' AS how, 1 AS pref
             FROM n JOIN messages m ON m.server_id = n.server_id AND m.queue_id = n.postfix_queue_id
             WHERE m.started_at BETWEEN coalesce(n.arrival_date, n.received_at - interval '6 days') - interval '1 hour'
                                    AND coalesce(n.arrival_date, n.received_at) + interval '1 hour'
               AND (n.orig_message_id IS NULL OR m.message_id IS NULL OR m.message_id = n.orig_message_id)
               AND (NOT EXISTS (SELECT 1 FROM recipients mr
                                WHERE mr.message_started_at = m.started_at AND mr.message_uid = m.uid)
                    OR NOT EXISTS (SELECT 1 FROM ndr_recipients r
                                   WHERE r.ndr_received_at = n.received_at AND r.ndr_id = n.id)
                    OR EXISTS (SELECT 1 FROM ndr_recipients r
                               JOIN recipients mr ON mr.message_started_at = m.started_at AND mr.message_uid = m.uid
                                    AND lower(mr.address) IN (lower(r.final_recipient), lower(r.original_recipient))
                               WHERE r.ndr_received_at = n.received_at AND r.ndr_id = n.id))
         ),
         by_notification AS (
             SELECT n.received_at, n.id, m.started_at, m.uid, 'notification' AS how, 2 AS pref
             FROM n
             JOIN links l ON l.kind = 'notification' AND l.from_server_id = n.server_id
                  AND l.to_queue_id = n.ndr_queue_id
                  AND l.ts BETWEEN n.received_at - interval '7 days' AND n.received_at + interval '1 hour'
             JOIN messages m ON m.uid = l.from_uid
         ),
         best AS (
             SELECT DISTINCT ON (received_at, id) *
             FROM (SELECT * FROM by_queue_id UNION ALL SELECT * FROM by_notification) c
             ORDER BY received_at, id, pref, started_at DESC
         )
         UPDATE ndrs SET message_started_at = best.started_at, message_uid = best.uid, linked_by = best.how
         FROM best WHERE ndrs.received_at = best.received_at AND ndrs.id = best.id"
    );
    Ok(client.execute(&sql, params).await?)
}
