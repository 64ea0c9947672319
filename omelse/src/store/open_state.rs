//! What the correlator needs after a restart: the messages and sessions still open.

use tokio_postgres::{Client, Row};

use super::{MessageRow, RecipientRow, Result, SessionRow, FLOWS, MESSAGE_STATES, ORIGINS, RECIPIENT_STATUSES};
use crate::parse::Timestamp;

/// Open messages (not `removed`) with their recipients, and sessions not disconnected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenState {
    pub messages: Vec<MessageRow>,
    pub recipients: Vec<RecipientRow>,
    pub sessions: Vec<SessionRow>,
}

/// The `&'static str` of a stored value from a known set; values this binary does not know (a
/// newer writer's) map to `fallback` rather than leaking memory.
fn known(value: &str, set: &[&'static str], fallback: &'static str) -> &'static str {
    set.iter().copied().find(|&s| s == value).unwrap_or(fallback)
}

/// When the newest stored message was last seen: where the live stream resumes after a restart.
pub async fn newest_message_time(client: &Client) -> Result<Option<Timestamp>> {
    Ok(client
        .query_one("SELECT max(last_seen) FROM messages", &[])
        .await?
        .get(0))
}

/// Messages not closed and seen at or after `since`, their recipients, and sessions not
/// disconnected and seen at or after `since`. Client addresses stored as NULL (unreadable in the
/// log) come back as `None`.
pub async fn load_open_state(client: &Client, since: Timestamp) -> Result<OpenState> {
    let (messages, recipients) = load_open_messages(client, since, None, i64::MAX).await?;
    Ok(OpenState {
        messages,
        recipients,
        sessions: load_open_sessions(client, since).await?,
    })
}

/// Where a page of open messages ends: the last one's `(last_seen, uid)`.
pub type OpenPageEnd = (Timestamp, i64);

/// One page of the open messages seen at or after `since` (by `last_seen`, then uid, after
/// `after`), at most `limit`, with their recipients: a restart reads them a page at a time, so
/// that a million open messages never sit in memory as rows all at once.
pub async fn load_open_messages(
    client: &Client,
    since: Timestamp,
    after: Option<OpenPageEnd>,
    limit: i64,
) -> Result<(Vec<MessageRow>, Vec<RecipientRow>)> {
    let (after_seen, after_uid) = (after.map(|a| a.0), after.map(|a| a.1));
    messages_and_recipients(
        client,
        "(SELECT * FROM messages
          WHERE NOT closed AND last_seen >= $1 AND ($2::timestamptz IS NULL OR (last_seen, uid) > ($2, $3))
          ORDER BY last_seen, uid LIMIT $4) m",
        &[&since, &after_seen, &after_uid, &limit],
    )
    .await
}

/// Sessions not disconnected and seen at or after `since`.
pub async fn load_open_sessions(client: &Client, since: Timestamp) -> Result<Vec<SessionRow>> {
    Ok(client
        .query(
            "SELECT x.uid, s.name, x.program, x.pid, x.connected_at, x.disconnected_at, x.client_name,
                    host(x.client_ip), x.client_port, x.tls_protocol, x.tls_cipher, x.sasl_username,
                    x.sasl_failures, x.messages, x.rejects, x.ending, x.last_seen, x.version
             FROM sessions x JOIN servers s ON s.id = x.server_id
             WHERE x.disconnected_at IS NULL AND x.last_seen >= $1
             ORDER BY x.connected_at, x.uid",
            &[&since],
        )
        .await?
        .iter()
        .map(session)
        .collect())
}

const MESSAGE_COLUMNS: &str = "m.uid, m.started_at, s.name, m.queue_id, m.first_seen, m.last_seen, m.sender, m.size,
    m.nrcpt, m.message_id, m.client_name, host(m.client_ip), m.client_port, m.sasl_method, m.sasl_username, m.origin,
    m.flow, m.state, m.closed, m.removed_at, m.version, m.state_reason";
const RECIPIENT_COLUMNS: &str = "r.message_uid, r.message_started_at, r.address, r.orig_address, r.status, r.dsn,
    r.relay, r.status_text, r.delay, r.attempts, r.last_attempt_at, r.flow";

/// The last snapshots of the lives `(uid, started_at)` and of their recipients: what the
/// correlator evicted and needs back (one primary-key probe per life, one query for all).
pub async fn load_lives(client: &Client, lives: &[(i64, Timestamp)]) -> Result<OpenState> {
    let uids: Vec<i64> = lives.iter().map(|(uid, _)| *uid).collect();
    let starts: Vec<Timestamp> = lives.iter().map(|(_, started_at)| *started_at).collect();
    let (messages, recipients) = messages_and_recipients(
        client,
        "unnest($1::bigint[], $2::timestamptz[]) AS w(uid, started_at)
         JOIN messages m ON m.started_at = w.started_at AND m.uid = w.uid",
        &[&uids, &starts],
    )
    .await?;
    Ok(OpenState {
        messages,
        recipients,
        sessions: Vec::new(),
    })
}

/// The messages `chosen` names as `m` (a FROM list), and their recipients.
async fn messages_and_recipients(
    client: &Client,
    chosen: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<(Vec<MessageRow>, Vec<RecipientRow>)> {
    let messages = client
        .query(
            &format!(
                "SELECT {MESSAGE_COLUMNS} FROM {chosen} JOIN servers s ON s.id = m.server_id
                 ORDER BY m.started_at, m.uid"
            ),
            params,
        )
        .await?
        .iter()
        .map(message)
        .collect();
    let recipients = client
        .query(
            // LATERAL (OFFSET 0 keeps the planner from flattening it): one primary-key probe per
            // message, never a scan of all recipients.
            &format!(
                "SELECT {RECIPIENT_COLUMNS} FROM {chosen}
                 CROSS JOIN LATERAL (
                     SELECT * FROM recipients r WHERE r.message_started_at = m.started_at AND r.message_uid = m.uid OFFSET 0
                 ) r
                 ORDER BY r.message_started_at, r.message_uid, r.address"
            ),
            params,
        )
        .await?
        .iter()
        .map(recipient)
        .collect();
    Ok((messages, recipients))
}

fn message(row: &Row) -> MessageRow {
    MessageRow {
        uid: row.get(0),
        started_at: row.get(1),
        host: row.get(2),
        queue_id: row.get(3),
        first_seen: row.get(4),
        last_seen: row.get(5),
        sender: row.get(6),
        size: row.get(7),
        nrcpt: row.get(8),
        message_id: row.get(9),
        client_name: row.get(10),
        client_ip: row.get(11),
        client_port: row.get(12),
        sasl_method: row.get(13),
        sasl_username: row.get(14),
        origin: known(row.get(15), ORIGINS, "unknown"),
        flow: row.get::<_, Option<&str>>(16).map(|f| known(f, FLOWS, "unknown")),
        state: known(row.get(17), MESSAGE_STATES, "queued"),
        closed: row.get(18),
        removed_at: row.get(19),
        version: row.get(20),
        state_reason: row.get(21),
    }
}

fn recipient(row: &Row) -> RecipientRow {
    RecipientRow {
        message_uid: row.get(0),
        message_started_at: row.get(1),
        address: row.get(2),
        orig_address: row.get(3),
        status: known(row.get(4), RECIPIENT_STATUSES, "queued"),
        dsn: row.get(5),
        relay: row.get(6),
        status_text: row.get(7),
        delay: row.get(8),
        attempts: row.get(9),
        last_attempt_at: row.get(10),
        flow: row.get::<_, Option<&str>>(11).map(|f| known(f, FLOWS, "unknown")),
    }
}

fn session(row: &Row) -> SessionRow {
    SessionRow {
        uid: row.get(0),
        host: row.get(1),
        program: row.get(2),
        pid: row.get(3),
        connected_at: row.get(4),
        disconnected_at: row.get(5),
        client_name: row.get(6),
        client_ip: row.get(7),
        client_port: row.get(8),
        tls_protocol: row.get(9),
        tls_cipher: row.get(10),
        sasl_username: row.get(11),
        sasl_failures: row.get(12),
        messages: row.get(13),
        rejects: row.get(14),
        end: row.get(15),
        last_seen: row.get(16),
        version: row.get(17),
    }
}
