//! Hourly rollups, recomputed from the base tables for the hours the writer marked dirty: per
//! (hour, server) a DELETE and an INSERT … SELECT, so a refresh can run any number of times and
//! always lands on what the base tables say. The statistics screens read only these.
//!
//! - `traffic_hourly`: messages and bytes per metric — `received` (messages that entered through
//!   smtpd or pickup, by their arrival), `delivered`, `forwarded`, `deferred`, `bounced` (delivery
//!   attempts), `expired` (recipients, at their last attempt), `rejected`, `reject_warning`,
//!   `held`, `discarded` (policy decisions). The definitions are `elsed report`'s (pflogsumm's),
//!   and like it a content filter's hop is counted once ([`super::dedup`]): a dashboard's totals
//!   equal the report's for the same hours.
//! - `stats_hourly` (today) / `stats_daily` (days past): counts and bytes by key, `kind` being one
//!   of [`KINDS`], each hour's (day's) top keys kept and the rest summed under [`OTHER_KEY`].
//!
//! Each row exists once with `by_domain = false` (every event once) and once per group domain the
//! event touches (`by_domain = true`: the recipients' domains that a group has, and the sender's when it is
//! vouched for, [`super::vouched`]),
//! see migration 7. A domain added to a group counts from the hours refreshed after.
//!
//! The base tables are read once per refresh into three temporary tables (received messages,
//! delivery attempts, policy decisions), from which every rollup is grouped.

use tokio_postgres::Client;

use super::Result;
use super::{dedup, vouched};
use crate::parse::Timestamp;

/// Serialises refreshes: two at once would delete each other's dirty marks.
const ROLLUP_LOCK: i64 = 0x454c_5345_0003;

/// The kinds of `stats_hourly`/`stats_daily` and what their key is.
pub const KINDS: &[(&str, &str)] = &[
    (
        "sender",
        "envelope sender of a received message (lower case, <> for the null sender)",
    ),
    ("sender_domain", "its domain"),
    ("client", "the client that sent it, name[ip], or `local` for pickup"),
    ("client_ip", "the client's IP address"),
    ("size", "message size bucket (upper bound in bytes, see SIZE_BUCKETS)"),
    (
        "queue_life",
        "time from arrival to removal from the queue, bucket (seconds)",
    ),
    ("recipient", "recipient of a delivery (lower case)"),
    ("recipient_domain", "its domain"),
    ("relay", "where it was delivered (relay=)"),
    (
        "delay",
        "delivery delay bucket (upper bound in seconds, see DELAY_BUCKETS)",
    ),
    (
        "deferred_host",
        "remote host of a deferral (the recipient's domain without a relay)",
    ),
    ("deferred_reason", "its status text"),
    ("bounced_host", "remote host of a bounce"),
    ("bounced_reason", "its status text"),
    ("reject_code", "SMTP code of a reject"),
    ("reject_enhanced", "enhanced status code of a reject"),
    ("reject_reason", "reason of a reject"),
    ("reject_client", "IP address of the rejected client"),
    (
        "postscreen",
        "postscreen outcome (connect, pass_new, pass_old, dnsbl, pregreet, hangup, ...)",
    ),
];

/// Upper bounds of the delay and queue-life buckets, seconds (the last bucket is `inf`).
pub const DELAY_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
    172800.0, 432000.0,
];

/// Upper bounds of the size buckets, bytes (the last bucket is `inf`).
pub const SIZE_BUCKETS: &[f64] = &[
    1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 131072.0, 262144.0, 524288.0, 1048576.0, 2097152.0,
    5242880.0, 10485760.0, 20971520.0, 52428800.0,
];

/// SQL: the bucket of `expr` (its upper bound as text, `inf` past the last), NULL for NULL.
fn bucket(expr: &str, bounds: &[f64]) -> String {
    let list: Vec<String> = bounds.iter().map(|b| b.to_string()).collect();
    format!(
        "CASE WHEN {expr} IS NOT NULL THEN (SELECT coalesce(min(b)::text, 'inf')
              FROM unnest('{{{}}}'::float8[]) b WHERE b >= {expr}) END",
        list.join(",")
    )
}

/// The temporary tables one refresh fills from the base tables, for the hours in `refresh_hours`.
const TEMP_TABLES: &str = "
CREATE TEMP TABLE IF NOT EXISTS refresh_hours (hour timestamptz, server_id integer, PRIMARY KEY (hour, server_id))
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_domains (domain text PRIMARY KEY) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS refresh_days (day timestamptz, server_id integer, PRIMARY KEY (day, server_id))
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_keys (kind text, hour timestamptz, server_id integer, flow text, by_domain boolean,
    domain text, key text, messages bigint, bytes bigint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_compact (kind text, day timestamptz, server_id integer, flow text, by_domain boolean,
    domain text, key text, messages bigint, bytes bigint) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_received (hour timestamptz, server_id integer, flow text, domains text[],
    sender text, client text, client_ip text, size bigint, life double precision) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_attempts (hour timestamptz, server_id integer, flow text, domains text[],
    outcome text, recipient text, relay text, host text, reason text, size bigint, delay double precision)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS rollup_policy (hour timestamptz, server_id integer, flow text, domains text[],
    action text, code text, enhanced text, reason text, client_ip text, postscreen boolean) ON COMMIT DELETE ROWS;
";

/// Reads the base tables of the refreshed hours. Each hour is a LATERAL probe of an index range and
/// each lookup a LATERAL … LIMIT 1 on a primary key, so the plan (and the cost) follows the rows of
/// the dirty hours, whatever the statistics of freshly filled partitions say.
fn fill_sql() -> String {
    format!(
        "
INSERT INTO rollup_received
SELECT h.hour, h.server_id, coalesce(m.flow, 'unknown'),
       ARRAY(SELECT DISTINCT x FROM unnest({sender_m} || ARRAY(
             SELECT else_domain(r.address) FROM recipients r
             WHERE r.message_started_at = m.started_at AND r.message_uid = m.uid)) x),
       CASE WHEN m.sender = '' THEN '<>' ELSE lower(m.sender) END,
       CASE WHEN m.client_ip IS NULL THEN 'local'
            ELSE coalesce(m.client_name, 'unknown') || '[' || host(m.client_ip) || ']' END,
       host(m.client_ip), m.size, extract(epoch FROM m.removed_at - m.first_seen)
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT * FROM messages m
    WHERE m.server_id = h.server_id AND m.started_at >= h.hour AND m.started_at < h.hour + interval '1 hour'
      AND m.origin IN ('smtpd', 'pickup') AND NOT {reinjected}
) m;

INSERT INTO rollup_attempts
SELECT h.hour, h.server_id, coalesce(r.flow, m.flow, 'unknown'),
       ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[else_domain(d.recipient), {sender_m}]) x),
       CASE WHEN d.status <> 'sent' THEN d.status WHEN {forwarded} THEN 'forwarded'
            WHEN {handoff} THEN 'handoff' ELSE 'delivered' END,
       lower(d.recipient), d.relay,
       CASE WHEN d.relay IN ('none', '') THEN else_domain(d.recipient) ELSE split_part(d.relay, '[', 1) END,
       left(d.status_text, 200), m.size, d.delay
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT * FROM deliveries d
    WHERE d.server_id = h.server_id AND d.ts >= h.hour AND d.ts < h.hour + interval '1 hour'
      AND d.status IN ('sent', 'deferred', 'bounced')
) d
LEFT JOIN LATERAL (
    SELECT m.flow, m.size, m.sender, m.sasl_username, m.origin FROM messages m
    WHERE m.started_at = d.message_started_at AND m.uid = d.message_uid LIMIT 1
) m ON true
LEFT JOIN LATERAL (
    SELECT r.flow FROM recipients r
    WHERE r.message_started_at = d.message_started_at AND r.message_uid = d.message_uid
      AND r.address = d.recipient LIMIT 1
) r ON true;

INSERT INTO rollup_policy
SELECT h.hour, h.server_id, coalesce(f.flow, 'unknown'),
       ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[else_domain(coalesce(j.recipient, '')),
                                                {sender_j}]) x),
       j.action, j.code::text, j.enhanced, left(j.reason, 200), host(j.client_ip), j.program LIKE '%postscreen'
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT * FROM rejects j
    WHERE j.server_id = h.server_id AND j.ts >= h.hour AND j.ts < h.hour + interval '1 hour'
      AND j.action IN ('reject', 'warn', 'hold', 'discard')
) j
LEFT JOIN LATERAL (
    SELECT m.flow FROM messages m
    WHERE m.uid = j.message_uid AND m.started_at <= j.ts AND m.started_at > j.ts - interval '30 days'
    LIMIT 1
) f ON true;
",
        reinjected = dedup::reinjected("m"),
        sender_m = vouched_domain("m.sender", &vouched::sender("m")),
        sender_j = vouched_domain("j.sender", &vouched::reject_sender("j")),
        forwarded = dedup::forwarded("d"),
        handoff = dedup::handoff("d"),
    )
}

/// SQL: the domain of `sender` when `vouched` (a condition on its row), else `''` (no group's
/// domain): a forged sender does not count under the domain it names ([`vouched`]).
fn vouched_domain(sender: &str, vouched: &str) -> String {
    format!("CASE WHEN {vouched} THEN else_domain(coalesce({sender}, '')) ELSE '' END")
}

/// Every row of a rollup once over all domains and once per group domain of `domains` (alias `e`).
const FAN_OUT: &str = "CROSS JOIN LATERAL (SELECT false, '' UNION ALL
    SELECT true, x FROM unnest(e.domains) x WHERE x IN (SELECT domain FROM rollup_domains)) f(by_domain, domain)";

/// `traffic_hourly` from the temporary tables (and the expiries, read here).
fn traffic_sql() -> String {
    let sender_m = vouched_domain("m.sender", &vouched::sender("m"));
    format!(
        "
INSERT INTO traffic_hourly (hour, server_id, flow, by_domain, domain, metric, messages, bytes)
SELECT e.hour, e.server_id, e.flow, f.by_domain, f.domain, e.metric, count(*), coalesce(sum(e.size), 0)
FROM (
    SELECT hour, server_id, flow, domains, 'received' AS metric, size FROM rollup_received
    UNION ALL
    SELECT hour, server_id, flow, domains, outcome, size FROM rollup_attempts WHERE outcome <> 'handoff'
    UNION ALL
    SELECT hour, server_id, flow, domains,
           CASE action WHEN 'reject' THEN 'rejected' WHEN 'warn' THEN 'reject_warning'
                       WHEN 'hold' THEN 'held' ELSE 'discarded' END, NULL
    FROM rollup_policy
    UNION ALL
    SELECT h.hour, h.server_id, coalesce(r.flow, m.flow, 'unknown'),
           ARRAY(SELECT DISTINCT x FROM unnest(ARRAY[else_domain(r.address), {sender_m}]) x),
           'expired', m.size
    FROM refresh_hours h
    JOIN recipients r ON r.status = 'expired' AND r.last_attempt_at >= h.hour
                     AND r.last_attempt_at < h.hour + interval '1 hour'
    CROSS JOIN LATERAL (
        SELECT m.flow, m.size, m.server_id, m.sender, m.sasl_username, m.origin FROM messages m
        WHERE m.started_at = r.message_started_at AND m.uid = r.message_uid LIMIT 1
    ) m
    WHERE m.server_id = h.server_id
) e
{FAN_OUT}
GROUP BY 1, 2, 3, 4, 5, 6;
"
    )
}

/// The keyed counts of the refreshed hours (`rollup_keys`), from the temporary tables and
/// postscreen's lines.
fn keys_sql() -> String {
    let insert = "INSERT INTO rollup_keys (kind, hour, server_id, flow, by_domain, domain, key, messages, bytes)
SELECT k.kind, e.hour, e.server_id, e.flow, f.by_domain, f.domain, k.key, count(*), coalesce(sum(e.size), 0)";
    let group = "WHERE k.key IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;";
    format!(
        "
{insert}
FROM rollup_received e
CROSS JOIN LATERAL (VALUES ('sender', e.sender), ('sender_domain', nullif(else_domain(e.sender), '')),
    ('client', e.client), ('client_ip', e.client_ip), ('size', {size}), ('queue_life', {life})) k(kind, key)
{FAN_OUT}
{group}

{insert}
FROM rollup_attempts e
CROSS JOIN LATERAL (VALUES
    ('recipient', CASE WHEN e.outcome = 'delivered' THEN e.recipient END),
    ('recipient_domain', CASE WHEN e.outcome = 'delivered' THEN else_domain(e.recipient) END),
    ('relay', CASE WHEN e.outcome = 'delivered' THEN e.relay END),
    ('delay', CASE WHEN e.outcome = 'delivered' THEN {delay} END),
    ('deferred_host', CASE WHEN e.outcome = 'deferred' THEN e.host END),
    ('deferred_reason', CASE WHEN e.outcome = 'deferred' THEN e.reason END),
    ('bounced_host', CASE WHEN e.outcome = 'bounced' THEN e.host END),
    ('bounced_reason', CASE WHEN e.outcome = 'bounced' THEN e.reason END)) k(kind, key)
{FAN_OUT}
{group}

INSERT INTO rollup_keys (kind, hour, server_id, flow, by_domain, domain, key, messages, bytes)
SELECT k.kind, e.hour, e.server_id, e.flow, f.by_domain, f.domain, k.key, count(*), 0
FROM (SELECT * FROM rollup_policy WHERE action = 'reject') e
CROSS JOIN LATERAL (VALUES ('reject_code', e.code), ('reject_enhanced', e.enhanced),
    ('reject_reason', e.reason), ('reject_client', e.client_ip),
    ('postscreen', CASE WHEN e.postscreen THEN 'reject' END)) k(kind, key)
{FAN_OUT}
{group}

INSERT INTO rollup_keys (kind, hour, server_id, flow, by_domain, domain, key, messages, bytes)
SELECT 'postscreen', h.hour, h.server_id, 'inbound', false, '', x.key, count(*), 0
FROM refresh_hours h
CROSS JOIN LATERAL (
    SELECT CASE e.kind WHEN 'screen_pass' THEN CASE WHEN e.raw LIKE '%PASS NEW%' THEN 'pass_new' ELSE 'pass_old' END
                       WHEN 'screen_dnsbl_rank' THEN 'dnsbl'
                       ELSE substring(e.kind FROM 8) END AS key
    FROM log_events e
    WHERE e.program LIKE '%postscreen' AND e.ts >= h.hour AND e.ts < h.hour + interval '1 hour'
      AND e.server_id = h.server_id AND e.kind LIKE 'screen\\_%' AND e.kind <> 'screen_disconnect'
) x
GROUP BY 1, 2, 3, 4, 5, 6, 7;
",
        size = bucket("e.size", SIZE_BUCKETS),
        life = bucket("e.life", DELAY_BUCKETS),
        delay = bucket("e.delay", DELAY_BUCKETS),
    )
}

/// Keys kept per hour and group (kind, server, flow, domain) of a keyed rollup, the rest summed
/// under [`OTHER_KEY`]: what bounds the rollups to hundreds of rows an hour, not one per sender.
pub const KEYS_PER_HOUR: i64 = 200;

/// Keys kept per day and group once a day is past, likewise.
pub const KEYS_PER_DAY: i64 = 1000;

/// The rows counted per group domain keep a tenth as many keys: a group's screens sum them over
/// all its domains, which would otherwise read ten times the rows of a fleet-wide screen per domain.
const PER_DOMAIN_SHARE: i64 = 10;

/// The key under which the keys beyond the kept ones are summed.
pub const OTHER_KEY: &str = "(other)";

/// `INSERT INTO {target}` the rows of `source` (columns kind, {unit}, server_id, flow, by_domain,
/// domain, key, messages, bytes) summed per {unit}, each group's top `keep` keys kept (a tenth as
/// many for the rows per domain).
fn truncated_sql(target: &str, unit: &str, source: &str, keep: i64) -> String {
    format!(
        "INSERT INTO {target} (kind, {unit}, server_id, flow, by_domain, domain, key, messages, bytes)
         SELECT kind, {unit}, server_id, flow, by_domain, domain,
                CASE WHEN rank <= CASE WHEN by_domain THEN {per_domain} ELSE {keep} END THEN key
                     ELSE '{OTHER_KEY}' END,
                sum(messages), sum(bytes)
         FROM (SELECT c.*, row_number() OVER (PARTITION BY kind, {unit}, server_id, flow, by_domain, domain
                                               ORDER BY messages DESC, key) AS rank
               FROM (SELECT kind, {unit}, server_id, flow, by_domain, domain, key, sum(messages) AS messages,
                            sum(bytes) AS bytes
                     FROM {source} GROUP BY 1, 2, 3, 4, 5, 6, 7) c) x
         GROUP BY 1, 2, 3, 4, 5, 6, 7;",
        per_domain = keep / PER_DOMAIN_SHARE,
    )
}

/// The first hour whose keyed rollups are kept per hour ("hot"): today, UTC. Older days are
/// kept per day only.
async fn hot_since(client: &impl tokio_postgres::GenericClient) -> Result<Timestamp> {
    let row = client.query_one("SELECT date_trunc('day', now(), 'UTC')", &[]).await?;
    Ok(row.get(0))
}

/// Recomputes the rollups for every dirty (hour, server) and clears the marks; returns how many
/// (hour, server) pairs were refreshed.
///
/// The marks are locked (in order) before the base tables are read: a writer that marked one of
/// them has committed by then, and a writer marking one later waits for this refresh and leaves a
/// fresh mark for the next one. So no committed row is ever left out of its rollup.
///
/// Keyed rollups are kept per hour for today, so that the live refresh (every few seconds)
/// rewrites one hour's rows; a day that is past is summed into `stats_daily` once and its hour
/// rows dropped. A dirty hour of a past day (an import of old logs) recomputes its whole day.
pub async fn refresh_rollups(client: &mut Client) -> Result<u64> {
    let since = hot_since(&*client).await?;
    refresh_rollups_hot_since(client, since).await
}

/// [`refresh_rollups`] with the first hot hour given (tests move it to exercise both paths).
pub async fn refresh_rollups_hot_since(client: &mut Client, hot: Timestamp) -> Result<u64> {
    refresh_share(client, hot, None).await
}

/// [`refresh_rollups`] on several connections at once, each refreshing the dirty hours of its
/// share of the servers (`server_id % clients`), then the days past compacted on the first: the
/// refresh at the end of an import keeps every core of the database server busy, not one.
/// Shares exclude a whole refresh (and each other's marks), never each other.
pub async fn refresh_rollups_on(clients: &mut [Client]) -> Result<u64> {
    let Some(first) = clients.first() else {
        return Ok(0);
    };
    let hot = hot_since(first).await?;
    let parts = clients.len() as i32;
    let shares = clients
        .iter_mut()
        .enumerate()
        .map(|(part, client)| refresh_share(client, hot, Some((part as i32, parts))));
    let refreshed: u64 = futures_util::future::try_join_all(shares).await?.into_iter().sum();
    // Nothing left dirty in the shares' hours: this one only compacts the days past.
    Ok(refreshed + refresh_rollups_hot_since(&mut clients[0], hot).await?)
}

/// Refreshes the dirty hours of every server, or of the servers of one `(part, parts)` share.
async fn refresh_share(client: &mut Client, hot: Timestamp, share: Option<(i32, i32)>) -> Result<u64> {
    let tx = client.transaction().await?;
    let lock = match share {
        None => "SELECT pg_advisory_xact_lock($1)",
        Some(_) => "SELECT pg_advisory_xact_lock_shared($1)",
    };
    tx.execute(lock, &[&ROLLUP_LOCK]).await?;
    // JIT off: the refresh's statements cost millions on paper (LATERAL probes per dirty hour),
    // and compiling them took half of a refresh of 30 past days (40 s with JIT, 20 s without).
    tx.batch_execute(&format!(
        "SET LOCAL client_min_messages = warning; SET LOCAL jit = off; {TEMP_TABLES}"
    ))
    .await?;
    let (part, parts) = share.unwrap_or((0, 1));
    let refreshed = tx
        .execute(
            "INSERT INTO refresh_hours SELECT hour, server_id FROM rollup_dirty WHERE server_id % $2 = $1
             ORDER BY hour, server_id FOR UPDATE",
            &[&part, &parts],
        )
        .await?;
    if refreshed > 0 {
        tx.execute(
            "DELETE FROM rollup_dirty d USING refresh_hours h WHERE d.hour = h.hour AND d.server_id = h.server_id",
            &[],
        )
        .await?;
        // A past day is recomputed whole: every hour of it joins the refresh.
        tx.execute(
            "INSERT INTO refresh_days SELECT DISTINCT date_trunc('day', hour, 'UTC'), server_id FROM refresh_hours WHERE hour < $1",
            &[&hot],
        )
        .await?;
        tx.batch_execute(&format!(
            "INSERT INTO refresh_hours
             SELECT d.day + n * interval '1 hour', d.server_id FROM refresh_days d, generate_series(0, 23) n
             ON CONFLICT DO NOTHING;
             ANALYZE refresh_hours;
             INSERT INTO rollup_domains SELECT DISTINCT unnest(else_group_domains());
             DELETE FROM traffic_hourly t USING refresh_hours h WHERE t.hour = h.hour AND t.server_id = h.server_id;
             {fill}
             {traffic}
             {keys}
             DELETE FROM stats_hourly t USING refresh_hours h WHERE t.hour = h.hour AND t.server_id = h.server_id;
             {hourly}",
            fill = fill_sql(),
            traffic = traffic_sql(),
            keys = keys_sql(),
            hourly = truncated_sql("stats_hourly", "hour", "rollup_keys", KEYS_PER_HOUR),
        ))
        .await?;
    }
    if share.is_none() {
        compact_past_days(&tx, hot).await?;
    }
    tx.commit().await?;
    Ok(refreshed)
}

/// Days past whose rows are still per hour: summed into `stats_daily` (replacing what it had for
/// them), their hour rows dropped. One index probe when there are none.
async fn compact_past_days(tx: &tokio_postgres::Transaction<'_>, hot: Timestamp) -> Result<()> {
    let days = tx
        .execute(
            "INSERT INTO rollup_compact
             SELECT kind, date_trunc('day', hour, 'UTC'), server_id, flow, by_domain, domain, key, messages, bytes
             FROM stats_hourly WHERE hour < $1",
            &[&hot],
        )
        .await?;
    if days == 0 {
        return Ok(());
    }
    tx.batch_execute(&format!(
        "DELETE FROM stats_daily t USING (SELECT DISTINCT day, server_id FROM rollup_compact) c
         WHERE t.day = c.day AND t.server_id = c.server_id;
         {daily}",
        daily = truncated_sql("stats_daily", "day", "rollup_compact", KEYS_PER_DAY),
    ))
    .await?;
    tx.execute("DELETE FROM stats_hourly WHERE hour < $1", &[&hot]).await?;
    Ok(())
}
