//! Writes a [`Batch`] in one transaction: binary COPY into per-connection staging tables, then
//! set-based merges into the partitioned tables.
//!
//! Append-only rows (events, deliveries, rejects, links) are keyed by their line and inserted with
//! `ON CONFLICT DO NOTHING`; state rows (messages, recipients, sessions) replace what the database
//! holds only when they are not older, and only when they differ. So a batch written twice, or an
//! older snapshot replayed after a newer one, changes nothing. Every changed row that feeds a
//! rollup marks its (hour, server) in `rollup_dirty` for [`super::refresh_rollups`].
//!
//! One writer at a time is the design (the correlator owns the writes). Concurrent writers are
//! safe but may deadlock on shared dirty marks or servers; that error is transient: retry.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hash;
use std::pin::Pin;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Transaction};

use super::partitions::ensure_days;
use super::sql_types::{day_of, parse_ip, text, Text};
use super::{
    Batch, DeliveryRow, EventRow, LinkRow, MessageRow, RecipientRow, RejectRow, Result, SessionRow, StoreError,
};
use crate::parse::Timestamp;

/// What one [`Writer::write_batch`] changed: rows inserted, or updated because they were newer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub events: u64,
    pub messages: u64,
    pub recipients: u64,
    pub deliveries: u64,
    pub rejects: u64,
    pub sessions: u64,
    pub links: u64,
    /// Servers seen for the first time by this database.
    pub new_servers: u64,
}

impl WriteStats {
    /// Rows inserted or changed, all tables together.
    pub fn rows(&self) -> u64 {
        self.events + self.messages + self.recipients + self.deliveries + self.rejects + self.sessions + self.links
    }
}

#[derive(Debug, Clone, Copy)]
struct KnownServer {
    id: i32,
    first_seen: Timestamp,
    last_seen: Timestamp,
}

/// The batch writer. It lives across batches to remember server ids and the days whose
/// partitions exist, so that a steady stream costs no lookups; it may be used with any connection
/// (staging tables are created on demand).
#[derive(Debug, Default)]
pub struct Writer {
    servers: HashMap<String, KnownServer>,
    days: HashSet<i64>,
}

/// Publishes the dirty marks gathered in `stage_dirty`, in one ordered statement at the end of
/// the transaction. A mark that exists already is still rewritten: the row lock makes a concurrent
/// [`super::refresh_rollups`] (which locks marks in the same order) wait for this transaction
/// before it reads the base tables, so it can never clear a mark and miss the rows behind it.
const PUBLISH_DIRTY: &str = "INSERT INTO rollup_dirty (hour, server_id)
SELECT DISTINCT hour, server_id FROM stage_dirty ORDER BY 1, 2
ON CONFLICT (hour, server_id) DO UPDATE SET hour = EXCLUDED.hour";

/// Hours of the deliveries, expiries and rejects of staged messages whose flow or size changes:
/// those rows move between rollup rows. Lookups are LATERAL … LIMIT 1 on keys so that the plan
/// never scans a whole table, whatever the statistics of temp and fresh tables.
///
/// Deliveries and rejects are partitioned by their own time, not their message's: their lookups
/// are bounded by the staged lives' window (`$1`..`$2`, [`BatchRows::life_window`]), so that
/// the planner keeps the partitions of the days the batch's lives span, not every day kept (30 and
/// more), and sees how much of each the bound covers.
const MOVED_MESSAGES_DIRTY: &str = "INSERT INTO stage_dirty (hour, server_id)
SELECT date_trunc('hour', x.ts, 'UTC'), x.server_id
FROM stage_messages s
CROSS JOIN LATERAL (
    SELECT m.flow, m.size, m.version FROM messages m WHERE m.started_at = s.started_at AND m.uid = s.uid LIMIT 1
) m
CROSS JOIN LATERAL (
    SELECT d.ts, d.server_id FROM deliveries d
    WHERE d.message_uid = s.uid AND d.message_started_at = s.started_at
      AND d.ts >= $1::timestamptz AND d.ts <= $2::timestamptz
    UNION ALL
    SELECT r.ts, r.server_id FROM rejects r
    WHERE r.message_uid = s.uid AND r.ts >= $1::timestamptz AND r.ts <= $2::timestamptz
    UNION ALL
    SELECT r.last_attempt_at, s.server_id FROM recipients r
    WHERE r.message_uid = s.uid AND r.message_started_at = s.started_at AND r.status = 'expired'
) x
WHERE m.version <= s.version AND (m.flow IS DISTINCT FROM s.flow OR m.size IS DISTINCT FROM s.size)";

/// Hours of the delivery attempts of staged recipients whose flow changes (a later hop decided
/// where the recipient went): those attempts move between rollup rows, and they may lie in hours
/// that neither the message's start nor the recipient's last attempt marks. The deliveries are
/// looked up only for the recipients found moved (their lookup names `r`, and `OFFSET 0` keeps it a
/// per-row index probe): joined to the staged rows alone, the planner sorted a whole day of
/// deliveries for every batch, for what is usually no row at all. Bounded by the staged lives'
/// window as [`MOVED_MESSAGES_DIRTY`] is (NULL: no bound).
const MOVED_RECIPIENTS_DIRTY: &str = "INSERT INTO stage_dirty (hour, server_id)
SELECT date_trunc('hour', d.ts, 'UTC'), d.server_id
FROM stage_recipients s
CROSS JOIN LATERAL (
    SELECT r.message_started_at, r.message_uid, r.address FROM recipients r
    WHERE r.message_started_at = s.message_started_at AND r.message_uid = s.message_uid AND r.address = s.address
      AND r.flow IS DISTINCT FROM s.flow
    LIMIT 1
) r
CROSS JOIN LATERAL (
    SELECT d.ts, d.server_id FROM deliveries d
    WHERE d.message_uid = r.message_uid AND d.message_started_at = r.message_started_at AND d.recipient = r.address
      AND d.ts >= coalesce($1::timestamptz, '-infinity') AND d.ts <= coalesce($2::timestamptz, 'infinity')
    OFFSET 0
) d";

/// The hours of the recipients changed (`up`), on their message's server. A recipient's snapshot
/// comes with its message's, whose server is then in `stage_messages` (one hash join); only
/// the others probe `messages`, which a probe per changed recipient had cost a sixth of the merge.
const RECIPIENTS_HOURS: &str = "SELECT hour, server_id FROM (
    SELECT date_trunc('hour', up.last_attempt_at, 'UTC') AS hour, coalesce(s.server_id, (
        SELECT m.server_id FROM messages m
        WHERE m.started_at = up.message_started_at AND m.uid = up.message_uid LIMIT 1
    )) AS server_id
    FROM up LEFT JOIN stage_messages s ON s.started_at = up.message_started_at AND s.uid = up.message_uid
) h WHERE server_id IS NOT NULL";

const EVENT_COLUMNS: &str = "ts, line_key, server_id, program, pid, queue_id, kind, message_uid, session_uid, raw";
const MESSAGE_COLUMNS: &str = "started_at, uid, server_id, queue_id, first_seen, last_seen, sender, size, nrcpt, \
     message_id, client_name, client_ip, client_port, sasl_method, sasl_username, origin, flow, state, closed, \
     removed_at, version, state_reason";
const RECIPIENT_COLUMNS: &str = "message_started_at, message_uid, address, orig_address, status, dsn, relay, \
     status_text, delay, attempts, last_attempt_at, flow";
const DELIVERY_COLUMNS: &str = "ts, line_key, message_uid, message_started_at, server_id, queue_id, daemon, \
     recipient, orig_recipient, relay, relay_ip, delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup, \
     delay_transmission, dsn, status, status_text, queued_as";
const REJECT_COLUMNS: &str = "ts, line_key, server_id, program, pid, session_uid, message_uid, queue_id, action, \
     source, stage, client_name, client_ip, code, enhanced, reason, sender, recipient, proto, helo";
const SESSION_COLUMNS: &str = "connected_at, uid, server_id, program, pid, disconnected_at, client_name, client_ip, \
     client_port, tls_protocol, tls_cipher, sasl_username, sasl_failures, messages, rejects, ending, last_seen, \
     version";
const LINK_COLUMNS: &str = "ts, line_key, kind, from_uid, from_server_id, from_queue_id, to_host, to_queue_id, relay";

/// One staging table: its target, and how its staged rows are merged into it.
struct Staged {
    rows: Rows,
    target: &'static str,
    stage: &'static str,
    columns: &'static str,
    /// The target's conflict key.
    key: &'static str,
    merge: Merge,
    /// What one batch's merge adds to [`WriteStats`].
    count: fn(&mut WriteStats) -> &mut u64,
}

/// Which rows of a batch a table holds.
#[derive(Clone, Copy)]
enum Rows {
    Events,
    Messages,
    Recipients,
    Deliveries,
    Rejects,
    Sessions,
    Links,
}

enum Merge {
    /// Append-only rows, inserted once: COPYed straight into the table, or, when some are there
    /// already (a replay), merged from staging with `ON CONFLICT DO NOTHING`. `dirty` selects
    /// the hours of the merged rows (`up`) for the rollups; rows COPYed straight mark theirs
    /// from the batch ([`appended_hours`]).
    Append { dirty: Option<&'static str> },
    /// State rows, replaced by a snapshot at least as new (`newer`) that differs. `before` runs
    /// first (it compares the staged rows with the stored ones); `dirty` selects, from the rows
    /// changed (`up`, as `returning` gives them), the hours to mark.
    Upsert {
        newer: &'static str,
        before: Option<&'static str>,
        returning: &'static str,
        dirty: &'static str,
    },
}

/// The hour and server of an appended row feed the rollups.
const APPENDED_HOUR: Option<&str> = Some("SELECT date_trunc('hour', ts, 'UTC'), server_id FROM up");

const EVENTS: Staged = Staged {
    rows: Rows::Events,
    target: "log_events",
    stage: "stage_events",
    columns: EVENT_COLUMNS,
    key: "(ts, line_key)",
    merge: Merge::Append { dirty: None },
    count: |stats| &mut stats.events,
};
const MESSAGES: Staged = Staged {
    rows: Rows::Messages,
    target: "messages",
    stage: "stage_messages",
    columns: MESSAGE_COLUMNS,
    key: "(started_at, uid)",
    merge: Merge::Upsert {
        newer: "messages.version <= EXCLUDED.version",
        before: Some(MOVED_MESSAGES_DIRTY),
        returning: "started_at, server_id",
        dirty: "SELECT date_trunc('hour', started_at, 'UTC'), server_id FROM up",
    },
    count: |stats| &mut stats.messages,
};
const RECIPIENTS: Staged = Staged {
    rows: Rows::Recipients,
    target: "recipients",
    stage: "stage_recipients",
    columns: RECIPIENT_COLUMNS,
    key: "(message_started_at, message_uid, address)",
    merge: Merge::Upsert {
        newer: "(recipients.attempts, recipients.last_attempt_at) <= (EXCLUDED.attempts, EXCLUDED.last_attempt_at)",
        before: Some(MOVED_RECIPIENTS_DIRTY),
        returning: "message_started_at, message_uid, last_attempt_at",
        dirty: RECIPIENTS_HOURS,
    },
    count: |stats| &mut stats.recipients,
};
const DELIVERIES: Staged = Staged {
    rows: Rows::Deliveries,
    target: "deliveries",
    stage: "stage_deliveries",
    columns: DELIVERY_COLUMNS,
    key: "(ts, line_key)",
    merge: Merge::Append { dirty: APPENDED_HOUR },
    count: |stats| &mut stats.deliveries,
};
const REJECTS: Staged = Staged {
    rows: Rows::Rejects,
    target: "rejects",
    stage: "stage_rejects",
    columns: REJECT_COLUMNS,
    key: "(ts, line_key)",
    merge: Merge::Append { dirty: APPENDED_HOUR },
    count: |stats| &mut stats.rejects,
};
const SESSIONS: Staged = Staged {
    rows: Rows::Sessions,
    target: "sessions",
    stage: "stage_sessions",
    columns: SESSION_COLUMNS,
    key: "(connected_at, uid)",
    merge: Merge::Upsert {
        newer: "sessions.version <= EXCLUDED.version",
        before: None,
        returning: "1",
        dirty: "",
    },
    count: |stats| &mut stats.sessions,
};
const LINKS: Staged = Staged {
    rows: Rows::Links,
    target: "links",
    stage: "stage_links",
    columns: LINK_COLUMNS,
    key: "(ts, line_key, kind, to_queue_id)",
    merge: Merge::Append { dirty: None },
    count: |stats| &mut stats.links,
};

/// Every staging table, in merge order (a recipient's dirty hour needs its message merged).
const STAGED: [&Staged; 7] = [
    &EVENTS,
    &MESSAGES,
    &RECIPIENTS,
    &DELIVERIES,
    &REJECTS,
    &SESSIONS,
    &LINKS,
];

impl Staged {
    /// The statement that merges the staged rows and returns how many it inserted or changed.
    fn merge_sql(&self) -> String {
        match self.merge {
            Merge::Append { dirty } => append_sql(self.target, self.stage, self.columns, self.key, dirty),
            Merge::Upsert {
                newer,
                returning,
                dirty,
                ..
            } => upsert_sql(self.target, self.stage, self.columns, self.key, newer, returning, dirty),
        }
    }
}

/// The staging tables (same columns as their targets, emptied at each commit) and `stage_dirty`.
/// JIT is off for the batch: the plans of a few thousand rows' probes cost more than 100,000 on
/// paper, and compiling them took 17 of the 21 ms of `MOVED_MESSAGES_DIRTY` (auto_explain on
/// the dense bench).
fn staging_ddl() -> &'static str {
    static DDL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DDL.get_or_init(|| {
        let mut ddl = String::from("SET LOCAL client_min_messages = warning;\nSET LOCAL jit = off;\n");
        let tables = STAGED
            .iter()
            .map(|t| (t.stage, t.target))
            .chain([("stage_dirty", "rollup_dirty")]);
        for (stage, target) in tables {
            ddl.push_str(&format!(
                "CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {target}) ON COMMIT DELETE ROWS;\n"
            ));
        }
        ddl
    })
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    /// Writes one batch in one transaction. On error nothing of the batch is written and the
    /// batch may be retried as is (see [`super::StoreError::is_transient`]).
    pub async fn write_batch(&mut self, client: &mut Client, batch: &Batch) -> Result<WriteStats> {
        let days = batch_days(batch);
        if days.is_empty() {
            // Not a single row: nothing to write, no round trip.
            return Ok(WriteStats::default());
        }
        let mut retried = false;
        loop {
            let missing: BTreeSet<i64> = days.iter().copied().filter(|d| !self.days.contains(d)).collect();
            if !missing.is_empty() {
                ensure_days(client, &missing).await?;
                self.days.extend(missing);
            }
            match self.write_in_transaction(client, batch).await {
                Ok(stats) => return Ok(stats),
                Err(e) => {
                    // Retention may have dropped a day this writer had seen: check them all again.
                    self.days.clear();
                    if retried || !is_missing_partition(&e) {
                        return Err(e);
                    }
                    retried = true;
                }
            }
        }
    }

    async fn write_in_transaction(&mut self, client: &mut Client, batch: &Batch) -> Result<WriteStats> {
        let mut stats = WriteStats::default();
        let tx = client.transaction().await?;
        let (ids, learned) = self.resolve_servers(&tx, batch, &mut stats).await?;
        tx.batch_execute(staging_ddl()).await?;
        let messages = newest(&batch.messages, |m| (m.started_at, m.uid), |m| m.version);
        let recipients = newest(
            &batch.recipients,
            |r| (r.message_started_at, r.message_uid, r.address.as_str()),
            |r| (r.attempts, r.last_attempt_at),
        );
        let sessions = newest(&batch.sessions, |s| (s.connected_at, s.uid), |s| s.version);
        let rows = BatchRows {
            batch,
            messages,
            recipients,
            sessions,
            ids: &ids,
        };
        for table in STAGED {
            let written = match table.merge {
                Merge::Append { dirty } => append(&tx, table, &rows, dirty.is_some()).await?,
                Merge::Upsert { before, .. } => {
                    if rows.copy(&tx, table, table.stage).await? == 0 {
                        continue;
                    }
                    if let Some(before) = before {
                        let (from, to) = rows.life_window(table);
                        tx.execute(before, &[&from, &to]).await?;
                    }
                    merge(&tx, &table.merge_sql()).await?
                }
            };
            *(table.count)(&mut stats) = written;
        }
        tx.execute(PUBLISH_DIRTY, &[]).await?;
        tx.commit().await?;
        self.servers.extend(learned);
        Ok(stats)
    }

    /// Server ids for every host of the batch: unknown hosts are inserted, known ones get their
    /// first/last seen widened. The cache is only updated by the caller after commit.
    async fn resolve_servers(
        &self,
        tx: &Transaction<'_>,
        batch: &Batch,
        stats: &mut WriteStats,
    ) -> Result<(HashMap<String, i32>, Vec<(String, KnownServer)>)> {
        let seen = host_times(batch);
        let mut ids = HashMap::with_capacity(seen.len());
        let mut learned = Vec::new();
        let (mut new_names, mut new_first, mut new_last) = (Vec::new(), Vec::new(), Vec::new());
        let (mut widen_ids, mut widen_first, mut widen_last) = (Vec::new(), Vec::new(), Vec::new());
        for (&name, &(first, last)) in &seen {
            match self.servers.get(name) {
                Some(known) => {
                    ids.insert(name.to_owned(), known.id);
                    if first < known.first_seen || last > known.last_seen {
                        let (first, last) = (first.min(known.first_seen), last.max(known.last_seen));
                        widen_ids.push(known.id);
                        widen_first.push(first);
                        widen_last.push(last);
                        learned.push((
                            name.to_owned(),
                            KnownServer {
                                id: known.id,
                                first_seen: first,
                                last_seen: last,
                            },
                        ));
                    }
                }
                None => {
                    new_names.push(name);
                    new_first.push(first);
                    new_last.push(last);
                }
            }
        }
        if !new_names.is_empty() {
            // `xmax = 0` tells a row this statement inserted from one it found.
            let rows = tx
                .query(
                    "INSERT INTO servers (name, first_seen, last_seen)
                     SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) ORDER BY 1
                     ON CONFLICT (name) DO UPDATE
                         SET first_seen = least(servers.first_seen, EXCLUDED.first_seen),
                             last_seen = greatest(servers.last_seen, EXCLUDED.last_seen)
                     RETURNING id, name, first_seen, last_seen, xmax = 0",
                    &[&new_names, &new_first, &new_last],
                )
                .await?;
            for row in rows {
                let name: String = row.get(1);
                let known = KnownServer {
                    id: row.get(0),
                    first_seen: row.get(2),
                    last_seen: row.get(3),
                };
                if row.get::<_, bool>(4) {
                    stats.new_servers += 1;
                }
                ids.insert(name.clone(), known.id);
                learned.push((name, known));
            }
        }
        if !widen_ids.is_empty() {
            tx.execute(
                "UPDATE servers s
                 SET first_seen = least(s.first_seen, u.first_seen), last_seen = greatest(s.last_seen, u.last_seen)
                 FROM unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) AS u(id, first_seen, last_seen)
                 WHERE s.id = u.id",
                &[&widen_ids, &widen_first, &widen_last],
            )
            .await?;
        }
        Ok((ids, learned))
    }

    /// Forgets cached server ids and partition days (after a schema reset, or in tests).
    pub fn forget(&mut self) {
        self.servers.clear();
        self.days.clear();
    }
}

/// The earliest and latest time each host of the batch was seen at.
fn host_times<'a>(batch: &'a Batch) -> BTreeMap<&'a str, (Timestamp, Timestamp)> {
    let mut seen: BTreeMap<&'a str, (Timestamp, Timestamp)> = BTreeMap::new();
    let mut note = |host: &'a str, first: Timestamp, last: Timestamp| {
        seen.entry(host)
            .and_modify(|(f, l)| {
                *f = (*f).min(first);
                *l = (*l).max(last);
            })
            .or_insert((first, last.max(first)));
    };
    for e in &batch.events {
        note(&e.host, e.time, e.time);
    }
    for m in &batch.messages {
        note(&m.host, m.first_seen, m.last_seen);
    }
    for d in &batch.deliveries {
        note(&d.host, d.time, d.time);
    }
    for r in &batch.rejects {
        note(&r.host, r.time, r.time);
    }
    for s in &batch.sessions {
        note(&s.host, s.connected_at, s.last_seen);
    }
    for l in &batch.links {
        note(&l.from_host, l.time, l.time);
    }
    seen
}

/// `no partition of relation … found for row`: a partition the writer believed in is gone.
fn is_missing_partition(error: &StoreError) -> bool {
    match error {
        StoreError::Db(e) => e.as_db_error().is_some_and(|db| {
            *db.code() == tokio_postgres::error::SqlState::CHECK_VIOLATION
                && db.message().starts_with("no partition of relation")
        }),
        _ => false,
    }
}

/// Every day a row of the batch is partitioned into.
fn batch_days(batch: &Batch) -> BTreeSet<i64> {
    let mut days = BTreeSet::new();
    days.extend(batch.events.iter().map(|e| day_of(e.time)));
    days.extend(batch.messages.iter().map(|m| day_of(m.started_at)));
    days.extend(batch.recipients.iter().map(|r| day_of(r.message_started_at)));
    days.extend(batch.deliveries.iter().map(|d| day_of(d.time)));
    days.extend(batch.rejects.iter().map(|r| day_of(r.time)));
    days.extend(batch.sessions.iter().map(|s| day_of(s.connected_at)));
    days.extend(batch.links.iter().map(|l| day_of(l.time)));
    days
}

/// One row per key, the one with the highest `order` (the later one on ties): `ON CONFLICT DO
/// UPDATE` cannot touch the same row twice in one statement.
fn newest<'a, T, K: Hash + Eq, O: PartialOrd>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> K,
    order: impl Fn(&T) -> O,
) -> Vec<&'a T> {
    let mut index: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    let mut kept: Vec<&T> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.get(&key(row)) {
            Some(&i) => {
                if order(row) >= order(kept[i]) {
                    kept[i] = row;
                }
            }
            None => {
                index.insert(key(row), kept.len());
                kept.push(row);
            }
        }
    }
    kept
}

/// `INSERT … ON CONFLICT DO NOTHING` from a staging table; counts rows inserted and marks the
/// hours of the inserted rows dirty when `dirty` selects them from `up`.
fn append_sql(table: &str, stage: &str, columns: &str, key: &str, dirty: Option<&str>) -> String {
    let returning = if dirty.is_some() { "ts, server_id" } else { "1" };
    with_dirty(
        format!("INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ON CONFLICT {key} DO NOTHING RETURNING {returning}"),
        dirty.unwrap_or(""),
    )
}

/// `INSERT … ON CONFLICT DO UPDATE` of a state table: only a snapshot at least as new as the stored
/// one, and different from it, replaces it.
fn upsert_sql(table: &str, stage: &str, columns: &str, key: &str, newer: &str, returning: &str, dirty: &str) -> String {
    let key_columns: Vec<&str> = key.trim_matches(|c| c == '(' || c == ')').split(", ").collect();
    let set: Vec<String> = columns
        .split(", ")
        .map(str::trim)
        .filter(|c| !key_columns.contains(c))
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    with_dirty(
        format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}
             ON CONFLICT {key} DO UPDATE SET {set}
             WHERE {newer} AND ({table}.*) IS DISTINCT FROM (EXCLUDED.*)
             RETURNING {returning}",
            set = set.join(", ")
        ),
        dirty,
    )
}

/// `insert` as a statement that counts its rows (`up`), and stages the distinct (hour, server)
/// pairs that `dirty` selects from them: one per changed row would be thousands of temp-table
/// rows per batch for a handful of hours.
fn with_dirty(insert: String, dirty: &str) -> String {
    if dirty.is_empty() {
        return format!("WITH up AS ({insert}) SELECT count(*) FROM up");
    }
    format!(
        "WITH up AS ({insert}),
         dirty AS (INSERT INTO stage_dirty (hour, server_id) SELECT DISTINCT * FROM ({dirty}) hours)
         SELECT count(*) FROM up"
    )
}

async fn merge(tx: &Transaction<'_>, sql: &str) -> Result<u64> {
    let count: i64 = tx.query_one(sql, &[]).await?.get(0);
    Ok(count as u64)
}

/// Appends a table's rows of the batch: COPY straight into the table (in a savepoint), which is
/// the usual case and costs PostgreSQL a third of staging and merging; when a row is there already
/// (a line written before: a replay, a log imported twice) the COPY fails on the key, and the rows
/// are staged and merged with `ON CONFLICT DO NOTHING` instead. Returns the rows inserted.
async fn append(tx: &Transaction<'_>, table: &Staged, rows: &BatchRows<'_>, marks_hours: bool) -> Result<u64> {
    if rows.len(table) == 0 {
        return Ok(0);
    }
    tx.batch_execute("SAVEPOINT append").await?;
    match rows.copy(tx, table, table.target).await {
        Ok(copied) => {
            tx.batch_execute("RELEASE SAVEPOINT append").await?;
            if marks_hours {
                let (hours, servers) = appended_hours(rows.times_and_servers(table));
                tx.execute(
                    "INSERT INTO stage_dirty (hour, server_id) SELECT * FROM unnest($1::timestamptz[], $2::int[])",
                    &[&hours, &servers],
                )
                .await?;
            }
            Ok(copied as u64)
        }
        Err(e) if is_unique_violation(&e) => {
            tx.batch_execute("ROLLBACK TO SAVEPOINT append").await?;
            rows.copy(tx, table, table.stage).await?;
            merge(tx, &table.merge_sql()).await
        }
        Err(e) => Err(e),
    }
}

/// The distinct (hour, server) pairs of appended rows, for `stage_dirty`.
fn appended_hours(rows: impl Iterator<Item = (Timestamp, i32)>) -> (Vec<Timestamp>, Vec<i32>) {
    const HOUR: i64 = 3600 * Timestamp::MICROS_PER_SECOND;
    let pairs: BTreeSet<(i64, i32)> = rows.map(|(time, server)| (time.0.div_euclid(HOUR), server)).collect();
    pairs
        .into_iter()
        .map(|(hour, server)| (Timestamp(hour * HOUR), server))
        .unzip()
}

fn is_unique_violation(error: &StoreError) -> bool {
    match error {
        StoreError::Db(e) => e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
        _ => false,
    }
}

/// The rows of one batch as the tables take them: state rows one per key ([`newest`]), with the
/// servers' ids.
struct BatchRows<'a> {
    batch: &'a Batch,
    messages: Vec<&'a MessageRow>,
    recipients: Vec<&'a RecipientRow>,
    sessions: Vec<&'a SessionRow>,
    ids: &'a HashMap<String, i32>,
}

impl BatchRows<'_> {
    fn len(&self, table: &Staged) -> usize {
        match table.rows {
            Rows::Events => self.batch.events.len(),
            Rows::Messages => self.messages.len(),
            Rows::Recipients => self.recipients.len(),
            Rows::Deliveries => self.batch.deliveries.len(),
            Rows::Rejects => self.batch.rejects.len(),
            Rows::Sessions => self.sessions.len(),
            Rows::Links => self.batch.links.len(),
        }
    }

    /// COPYs the table's rows into `dest` (the table or its staging table); returns how many.
    async fn copy(&self, tx: &Transaction<'_>, table: &Staged, dest: &str) -> Result<usize> {
        let ids = self.ids;
        match table.rows {
            Rows::Events => copy_events(tx, dest, &self.batch.events, ids).await,
            Rows::Messages => copy_messages(tx, dest, &self.messages, ids).await,
            Rows::Recipients => copy_recipients(tx, dest, &self.recipients).await,
            Rows::Deliveries => copy_deliveries(tx, dest, &self.batch.deliveries, ids).await,
            Rows::Rejects => copy_rejects(tx, dest, &self.batch.rejects, ids).await,
            Rows::Sessions => copy_sessions(tx, dest, &self.sessions, ids).await,
            Rows::Links => copy_links(tx, dest, &self.batch.links, ids).await,
        }
    }

    /// The first and last line of the lives whose staged rows `table` holds (the staged messages,
    /// or the messages of the staged recipients), which bounds the deliveries and rejects the
    /// dirty-mark lookups look for ([`MOVED_MESSAGES_DIRTY`]); `None` where there is no bound (a
    /// recipient without its message in the batch).
    ///
    /// A life's `first_seen`..`last_seen` holds every line applied to it (`count_line`), so the
    /// time of every delivery and reject stored for it; the partition key `started_at` does not
    /// (lines out of order make `first_seen` earlier). The lookups matter for a snapshot newer than
    /// the stored one, whose window is no narrower: windows only widen, and a life's snapshot is
    /// written in the batch of each of its rows. A life deferred for days widens the window to
    /// those days. The bound comes from the rows, never from the clock.
    fn life_window(&self, table: &Staged) -> (Option<Timestamp>, Option<Timestamp>) {
        let window = |messages: &mut dyn Iterator<Item = &MessageRow>| {
            messages.fold((None, None), |(from, to): (Option<Timestamp>, Option<Timestamp>), m| {
                (
                    Some(from.map_or(m.first_seen, |f| f.min(m.first_seen))),
                    Some(to.map_or(m.last_seen, |t| t.max(m.last_seen))),
                )
            })
        };
        match table.rows {
            Rows::Messages => window(&mut self.messages.iter().copied()),
            Rows::Recipients => {
                let staged: HashMap<(Timestamp, i64), &MessageRow> =
                    self.messages.iter().map(|m| ((m.started_at, m.uid), *m)).collect();
                let mut theirs = Vec::with_capacity(staged.len());
                for r in &self.recipients {
                    match staged.get(&(r.message_started_at, r.message_uid)) {
                        Some(m) => theirs.push(*m),
                        None => return (None, None),
                    }
                }
                window(&mut theirs.into_iter())
            }
            _ => (None, None),
        }
    }

    /// The time and server of each row of an append-only table that feeds the rollups.
    fn times_and_servers<'s>(&'s self, table: &Staged) -> Box<dyn Iterator<Item = (Timestamp, i32)> + 's> {
        let ids = self.ids;
        match table.rows {
            Rows::Deliveries => Box::new(
                self.batch
                    .deliveries
                    .iter()
                    .map(move |d| (d.time, server_id(ids, &d.host))),
            ),
            Rows::Rejects => Box::new(
                self.batch
                    .rejects
                    .iter()
                    .map(move |r| (r.time, server_id(ids, &r.host))),
            ),
            _ => Box::new(std::iter::empty()),
        }
    }
}

type Copy = Pin<Box<BinaryCopyInWriter>>;

async fn copy_into(tx: &Transaction<'_>, stage: &str, columns: &str, types: &[Type]) -> Result<Copy> {
    let sink = tx
        .copy_in(&format!("COPY {stage} ({columns}) FROM STDIN (FORMAT binary)"))
        .await?;
    Ok(Box::pin(BinaryCopyInWriter::new(sink, types)))
}

/// The id of a host, which [`Writer::resolve_servers`] resolved for every host of the batch.
fn server_id(ids: &HashMap<String, i32>, host: &str) -> i32 {
    ids.get(host).copied().expect("every host of the batch was resolved")
}

/// COPYs `rows` into `dest` (a table or its staging table), each value beside its column's
/// type, in the table's column order; returns how many rows it copied (none: no COPY).
macro_rules! copy_rows {
    ($tx:expr, $dest:expr, $table:expr, $rows:expr, |$row:ident| [$($ty:ident => $value:expr),+ $(,)?]) => {{
        let rows = $rows;
        if rows.is_empty() {
            return Ok(0);
        }
        let types = [$(Type::$ty),+];
        let mut copy = copy_into($tx, $dest, $table.columns, &types).await?;
        for $row in rows {
            let values: &[&(dyn ToSql + Sync)] = &[$(&$value),+];
            copy.as_mut().write(values).await?;
        }
        copy.as_mut().finish().await?;
        Ok(rows.len())
    }};
}

async fn copy_events(
    tx: &Transaction<'_>,
    dest: &str,
    events: &[EventRow],
    ids: &HashMap<String, i32>,
) -> Result<usize> {
    copy_rows!(tx, dest, EVENTS, events, |e| [
        TIMESTAMPTZ => e.time,
        INT8 => e.line_key,
        INT4 => server_id(ids, &e.host),
        TEXT => Text(&e.program),
        INT4 => e.pid,
        TEXT => text(e.queue_id.as_deref()),
        TEXT => e.kind,
        INT8 => e.message_uid,
        INT8 => e.session_uid,
        TEXT => Text(&e.raw),
    ])
}

async fn copy_messages(
    tx: &Transaction<'_>,
    dest: &str,
    messages: &[&MessageRow],
    ids: &HashMap<String, i32>,
) -> Result<usize> {
    copy_rows!(tx, dest, MESSAGES, messages, |m| [
        TIMESTAMPTZ => m.started_at,
        INT8 => m.uid,
        INT4 => server_id(ids, &m.host),
        TEXT => Text(&m.queue_id),
        TIMESTAMPTZ => m.first_seen,
        TIMESTAMPTZ => m.last_seen,
        TEXT => text(m.sender.as_deref()),
        INT8 => m.size,
        INT4 => m.nrcpt,
        TEXT => text(m.message_id.as_deref()),
        TEXT => text(m.client_name.as_deref()),
        INET => parse_ip(m.client_ip.as_deref()),
        INT4 => m.client_port,
        TEXT => text(m.sasl_method.as_deref()),
        TEXT => text(m.sasl_username.as_deref()),
        TEXT => m.origin,
        TEXT => m.flow,
        TEXT => m.state,
        BOOL => m.closed,
        TIMESTAMPTZ => m.removed_at,
        INT4 => m.version,
        TEXT => text(m.state_reason.as_deref()),
    ])
}

async fn copy_recipients(tx: &Transaction<'_>, dest: &str, recipients: &[&RecipientRow]) -> Result<usize> {
    copy_rows!(tx, dest, RECIPIENTS, recipients, |r| [
        TIMESTAMPTZ => r.message_started_at,
        INT8 => r.message_uid,
        TEXT => Text(&r.address),
        TEXT => text(r.orig_address.as_deref()),
        TEXT => r.status,
        TEXT => text(r.dsn.as_deref()),
        TEXT => text(r.relay.as_deref()),
        TEXT => text(r.status_text.as_deref()),
        FLOAT8 => r.delay,
        INT4 => r.attempts,
        TIMESTAMPTZ => r.last_attempt_at,
        TEXT => r.flow,
    ])
}

async fn copy_deliveries(
    tx: &Transaction<'_>,
    dest: &str,
    deliveries: &[DeliveryRow],
    ids: &HashMap<String, i32>,
) -> Result<usize> {
    copy_rows!(tx, dest, DELIVERIES, deliveries, |d| [
        TIMESTAMPTZ => d.time,
        INT8 => d.line_key,
        INT8 => d.message_uid,
        TIMESTAMPTZ => d.message_started_at,
        INT4 => server_id(ids, &d.host),
        TEXT => Text(&d.queue_id),
        TEXT => Text(&d.daemon),
        TEXT => Text(&d.recipient),
        TEXT => text(d.orig_recipient.as_deref()),
        TEXT => Text(&d.relay),
        INET => parse_ip(d.relay_ip.as_deref()),
        FLOAT8 => d.delay,
        FLOAT4 => d.delays.map(|a| a[0]),
        FLOAT4 => d.delays.map(|a| a[1]),
        FLOAT4 => d.delays.map(|a| a[2]),
        FLOAT4 => d.delays.map(|a| a[3]),
        TEXT => Text(&d.dsn),
        TEXT => d.status,
        TEXT => Text(&d.status_text),
        TEXT => text(d.queued_as.as_deref()),
    ])
}

async fn copy_rejects(
    tx: &Transaction<'_>,
    dest: &str,
    rejects: &[RejectRow],
    ids: &HashMap<String, i32>,
) -> Result<usize> {
    copy_rows!(tx, dest, REJECTS, rejects, |r| [
        TIMESTAMPTZ => r.time,
        INT8 => r.line_key,
        INT4 => server_id(ids, &r.host),
        TEXT => Text(&r.program),
        INT4 => r.pid,
        INT8 => r.session_uid,
        INT8 => r.message_uid,
        TEXT => text(r.queue_id.as_deref()),
        TEXT => r.action,
        TEXT => r.source,
        TEXT => Text(&r.stage),
        TEXT => text(r.client_name.as_deref()),
        INET => parse_ip(r.client_ip.as_deref()),
        INT4 => r.code,
        TEXT => text(r.enhanced.as_deref()),
        TEXT => Text(&r.reason),
        TEXT => text(r.sender.as_deref()),
        TEXT => text(r.recipient.as_deref()),
        TEXT => text(r.proto.as_deref()),
        TEXT => text(r.helo.as_deref()),
    ])
}

async fn copy_sessions(
    tx: &Transaction<'_>,
    dest: &str,
    sessions: &[&SessionRow],
    ids: &HashMap<String, i32>,
) -> Result<usize> {
    copy_rows!(tx, dest, SESSIONS, sessions, |s| [
        TIMESTAMPTZ => s.connected_at,
        INT8 => s.uid,
        INT4 => server_id(ids, &s.host),
        TEXT => Text(&s.program),
        INT4 => s.pid,
        TIMESTAMPTZ => s.disconnected_at,
        TEXT => text(s.client_name.as_deref()),
        INET => parse_ip(s.client_ip.as_deref()),
        INT4 => s.client_port,
        TEXT => text(s.tls_protocol.as_deref()),
        TEXT => text(s.tls_cipher.as_deref()),
        TEXT => text(s.sasl_username.as_deref()),
        INT4 => s.sasl_failures,
        INT4 => s.messages,
        INT4 => s.rejects,
        TEXT => text(s.end.as_deref()),
        TIMESTAMPTZ => s.last_seen,
        INT4 => s.version,
    ])
}

async fn copy_links(tx: &Transaction<'_>, dest: &str, links: &[LinkRow], ids: &HashMap<String, i32>) -> Result<usize> {
    copy_rows!(tx, dest, LINKS, links, |l| [
        TIMESTAMPTZ => l.time,
        INT8 => l.line_key,
        TEXT => l.kind,
        INT8 => l.from_uid,
        INT4 => server_id(ids, &l.from_host),
        TEXT => Text(&l.from_queue_id),
        TEXT => text(l.to_host.as_deref()),
        TEXT => Text(&l.to_queue_id),
        TEXT => text(l.relay.as_deref()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_keeps_the_highest_version_per_key() {
        let rows = [(1, 3, 'a'), (2, 1, 'b'), (1, 5, 'c'), (1, 4, 'd'), (2, 1, 'e')];
        let kept: Vec<char> = newest(&rows, |r| r.0, |r| r.1).iter().map(|r| r.2).collect();
        assert_eq!(kept, ['c', 'e']);
    }

    #[test]
    fn upsert_updates_every_column_but_the_key() {
        let sql = upsert_sql(
            "sessions",
            "stage_sessions",
            SESSION_COLUMNS,
            "(connected_at, uid)",
            "true",
            "1",
            "",
        );
        assert!(sql.contains(" version = EXCLUDED.version"));
        assert!(sql.contains(" disconnected_at = EXCLUDED.disconnected_at"));
        assert!(!sql.contains(" uid = EXCLUDED"));
        assert!(!sql.contains(" connected_at = EXCLUDED"));
    }
}
