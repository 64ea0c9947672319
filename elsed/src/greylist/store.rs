//! GreyLSE's state in PostgreSQL (tables of `0002_greylist.sql`), shared by every MX that points
//! at the same database. Times cross the wire as Unix seconds so that the caller's clock, not
//! the server's, decides (tests inject theirs).

use std::collections::BTreeSet;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::config::GreylistConfig;
use super::lists::DbLists;
use crate::db::{Pool, Pooled};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Pg(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] crate::db::PoolError),
    #[error("{0}")]
    Partitions(#[from] omelse::store::StoreError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The decisions log, partitioned by day as omelse's tables are (`greylist_decisions_pYYYYMMDD`).
const DECISIONS: &str = "greylist_decisions";

/// The key of one request.
#[derive(Debug, Clone)]
pub struct Key {
    pub client_net: String,
    /// Normalised sender.
    pub sender: String,
    pub sender_domain: String,
    /// Lower-cased recipient.
    pub recipient: String,
}

/// A triplet row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TripletRow {
    pub first_seen: i64,
    pub last_seen: i64,
    pub passed_at: Option<i64>,
    pub attempts: i32,
}

/// A sender auto-whitelist row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderAwlRow {
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_counted: i64,
    pub passes: i32,
}

/// Everything one decision needs (read for many requests in one round trip).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `last_seen` of the domain auto-whitelist entry.
    pub domain_awl: Option<i64>,
    pub sender_awl: Option<SenderAwlRow>,
    pub triplet: Option<TripletRow>,
}

/// Trusts the sender's domain from the client network when at least `min_senders` distinct
/// senders of it are trusted there (with `min_passes`, seen since `since`). True if it is now.
pub async fn promote_domain(
    client: &Pooled,
    key: &Key,
    now: i64,
    min_passes: i32,
    since: i64,
    min_senders: i64,
) -> Result<bool> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO greylist_domain_awl (sender_domain, client_net, first_seen, last_seen)
             SELECT $1, $2, to_timestamp($3::int8), to_timestamp($3::int8)
             WHERE (SELECT count(*) FROM greylist_sender_awl
                    WHERE sender_domain = $1 AND client_net = $2 AND passes >= $4
                      AND last_seen >= to_timestamp($5::int8)) >= $6
             ON CONFLICT (sender_domain, client_net) DO UPDATE SET last_seen = EXCLUDED.last_seen",
        )
        .await?;
    let n = client
        .execute(
            &stmt,
            &[
                &key.sender_domain,
                &key.client_net,
                &now,
                &min_passes,
                &since,
                &min_senders,
            ],
        )
        .await?;
    Ok(n > 0)
}

/// Refreshes `last_seen` of the auto-whitelist entries that let a request through.
pub async fn touch_awl(client: &Pooled, key: &Key, domain: bool, now: i64) -> Result<()> {
    let stmt = client
        .prepare_cached(if domain {
            "UPDATE greylist_domain_awl SET last_seen = to_timestamp($3::int8)
             WHERE sender_domain = $1 AND client_net = $2"
        } else {
            "UPDATE greylist_sender_awl SET last_seen = to_timestamp($3::int8)
             WHERE sender = $1 AND client_net = $2"
        })
        .await?;
    let first = if domain { &key.sender_domain } else { &key.sender };
    client.execute(&stmt, &[first, &key.client_net, &now]).await?;
    Ok(())
}

/// Reads the state of many keys in one statement; the snapshots in the keys' order.
pub async fn lookup_many(client: &Pooled, keys: &[Key]) -> Result<Vec<Snapshot>> {
    let stmt = client
        .prepare_cached(
            "SELECT u.i, extract(epoch FROM d.last_seen)::int8,
                    extract(epoch FROM s.first_seen)::int8, extract(epoch FROM s.last_seen)::int8,
                    extract(epoch FROM s.last_counted)::int8, s.passes,
                    extract(epoch FROM t.first_seen)::int8, extract(epoch FROM t.last_seen)::int8,
                    extract(epoch FROM t.passed_at)::int8, t.attempts
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
                  WITH ORDINALITY AS u(dom, net, snd, rcpt, i)
             LEFT JOIN greylist_domain_awl d ON d.sender_domain = u.dom AND d.client_net = u.net
             LEFT JOIN greylist_sender_awl s ON s.sender = u.snd AND s.client_net = u.net
             LEFT JOIN greylist_triplets t
                    ON t.client_net = u.net AND t.sender = u.snd AND t.recipient = u.rcpt",
        )
        .await?;
    let col = |f: fn(&Key) -> &str| keys.iter().map(f).collect::<Vec<&str>>();
    let rows = client
        .query(
            &stmt,
            &[
                &col(|k| &k.sender_domain),
                &col(|k| &k.client_net),
                &col(|k| &k.sender),
                &col(|k| &k.recipient),
            ],
        )
        .await?;
    let mut out = vec![Snapshot::default(); keys.len()];
    for row in rows {
        let i = usize::try_from(row.get::<_, i64>(0) - 1).unwrap_or(usize::MAX);
        let Some(slot) = out.get_mut(i) else {
            continue;
        };
        *slot = Snapshot {
            domain_awl: row.get(1),
            sender_awl: row.get::<_, Option<i32>>(5).map(|passes| SenderAwlRow {
                first_seen: row.get(2),
                last_seen: row.get(3),
                last_counted: row.get(4),
                passes,
            }),
            triplet: row.get::<_, Option<i32>>(9).map(|attempts| TripletRow {
                first_seen: row.get(6),
                last_seen: row.get(7),
                passed_at: row.get(8),
                attempts,
            }),
        };
    }
    Ok(out)
}

/// Writes triplets' new states, many rows in one statement. Rows must be sorted by key and
/// unique, so that concurrent writers lock them in one order (no deadlock). Two MX racing on one
/// triplet each write a state computed from what they read: either is a valid state, and
/// `passed_at` never goes back to NULL.
pub async fn save_triplets(client: &Pooled, rows: &[(Key, TripletRow)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO greylist_triplets
                 (client_net, sender, recipient, first_seen, last_seen, passed_at, attempts)
             SELECT net, snd, rcpt, to_timestamp(f), to_timestamp(l), to_timestamp(p), a
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                         $7::int4[]) AS u(net, snd, rcpt, f, l, p, a)
             ON CONFLICT (client_net, sender, recipient) DO UPDATE SET
                 first_seen = EXCLUDED.first_seen,
                 last_seen = EXCLUDED.last_seen,
                 passed_at = coalesce(greylist_triplets.passed_at, EXCLUDED.passed_at),
                 attempts = EXCLUDED.attempts",
        )
        .await?;
    let keys = |f: fn(&Key) -> &str| rows.iter().map(|(k, _)| f(k)).collect::<Vec<&str>>();
    client
        .execute(
            &stmt,
            &[
                &keys(|k| &k.client_net),
                &keys(|k| &k.sender),
                &keys(|k| &k.recipient),
                &rows.iter().map(|(_, r)| r.first_seen).collect::<Vec<_>>(),
                &rows.iter().map(|(_, r)| r.last_seen).collect::<Vec<_>>(),
                &rows.iter().map(|(_, r)| r.passed_at).collect::<Vec<_>>(),
                &rows.iter().map(|(_, r)| r.attempts).collect::<Vec<_>>(),
            ],
        )
        .await?;
    Ok(())
}

/// Writes sender auto-whitelist rows, many (sorted by key, unique) in one statement.
pub async fn save_sender_awls(client: &Pooled, rows: &[(Key, SenderAwlRow)]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let stmt = client
        .prepare_cached(
            "INSERT INTO greylist_sender_awl
                 (sender, client_net, sender_domain, first_seen, last_seen, last_counted, passes)
             SELECT snd, net, dom, to_timestamp(f), to_timestamp(l), to_timestamp(c), p
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                         $7::int4[]) AS u(snd, net, dom, f, l, c, p)
             ON CONFLICT (sender, client_net) DO UPDATE SET
                 first_seen = EXCLUDED.first_seen,
                 last_seen = EXCLUDED.last_seen,
                 last_counted = EXCLUDED.last_counted,
                 passes = EXCLUDED.passes",
        )
        .await?;
    let keys = |f: fn(&Key) -> &str| rows.iter().map(|(k, _)| f(k)).collect::<Vec<&str>>();
    client
        .execute(
            &stmt,
            &[
                &keys(|k| &k.sender),
                &keys(|k| &k.client_net),
                &keys(|k| &k.sender_domain),
                &rows.iter().map(|(_, r)| r.first_seen).collect::<Vec<_>>(),
                &rows.iter().map(|(_, r)| r.last_seen).collect::<Vec<_>>(),
                &rows.iter().map(|(_, r)| r.last_counted).collect::<Vec<_>>(),
                &rows.iter().map(|(_, r)| r.passes).collect::<Vec<_>>(),
            ],
        )
        .await?;
    Ok(())
}

/// The static lists kept in the database.
pub async fn load_lists(client: &tokio_postgres::Client) -> Result<DbLists> {
    let mut lists = DbLists::default();
    for row in client
        .query("SELECT pattern FROM greylist_client_whitelist", &[])
        .await?
    {
        lists.clients.push(row.get(0));
    }
    for row in client
        .query("SELECT pattern FROM greylist_recipient_whitelist", &[])
        .await?
    {
        lists.recipients.push(row.get(0));
    }
    for row in client
        .query("SELECT target, mode FROM greylist_domain_policy", &[])
        .await?
    {
        let target: String = row.get(0);
        match row.get::<_, &str>(1) {
            "optin" => lists.optin.push(target),
            _ => lists.optout.push(target),
        }
    }
    Ok(lists)
}

/// Which static list an administrator edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticList {
    Clients,
    Recipients,
}

impl StaticList {
    fn table(self) -> &'static str {
        match self {
            StaticList::Clients => "greylist_client_whitelist",
            StaticList::Recipients => "greylist_recipient_whitelist",
        }
    }
}

/// Adds a whitelist entry; `by` is the administrator, for the audit trail. The new entry's id
/// and time, or `None` when the pattern is listed already.
pub async fn add_to_whitelist(
    client: &tokio_postgres::Client,
    list: StaticList,
    pattern: &str,
    comment: &str,
    by: &str,
) -> Result<Option<(i64, SystemTime)>> {
    let row = client
        .query_opt(
            &format!(
                "INSERT INTO {} (pattern, comment, created_by) VALUES ($1, $2, $3)
                 ON CONFLICT (pattern) DO NOTHING RETURNING id, created_at",
                list.table()
            ),
            &[&pattern, &comment, &by],
        )
        .await?;
    Ok(row.map(|row| (row.get(0), row.get(1))))
}

/// Removes whitelist entry `id`; true if it existed.
pub async fn remove_from_whitelist(client: &tokio_postgres::Client, list: StaticList, id: i64) -> Result<bool> {
    let n = client
        .execute(&format!("DELETE FROM {} WHERE id = $1", list.table()), &[&id])
        .await?;
    Ok(n > 0)
}

/// Opts a recipient domain (or address) in or out (`mode` `optin` or `optout`). Its time, or
/// `None` when the domain has a setting already (one per domain: remove it first).
pub async fn add_domain_policy(
    client: &tokio_postgres::Client,
    target: &str,
    mode: &str,
    comment: &str,
    by: &str,
) -> Result<Option<SystemTime>> {
    let row = client
        .query_opt(
            "INSERT INTO greylist_domain_policy (target, mode, comment, created_by) VALUES ($1, $2, $3, $4)
             ON CONFLICT (target) DO NOTHING RETURNING created_at",
            &[&target.to_ascii_lowercase(), &mode, &comment, &by],
        )
        .await?;
    Ok(row.map(|row| row.get(0)))
}

/// Removes a domain's setting; true if it had one.
pub async fn remove_domain_policy(client: &tokio_postgres::Client, target: &str) -> Result<bool> {
    let n = client
        .execute(
            "DELETE FROM greylist_domain_policy WHERE target = $1",
            &[&target.to_ascii_lowercase()],
        )
        .await?;
    Ok(n > 0)
}

/// One line of the decisions log.
#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub ts: i64,
    pub action: &'static str,
    pub reason: &'static str,
    pub delay_secs: Option<i32>,
    pub client_address: Option<std::net::IpAddr>,
    pub client_name: Option<String>,
    pub client_net: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub recipient_domain: Option<String>,
    pub queue_id: Option<String>,
}

/// Inserts decisions, creating their days' partitions first (once per day per writer).
pub async fn insert_decisions(
    client: &mut tokio_postgres::Client,
    mx: &str,
    rows: &[DecisionRow],
    known_days: &mut BTreeSet<i64>,
) -> Result<()> {
    let days: BTreeSet<i64> = rows
        .iter()
        .map(|r| r.ts.div_euclid(86_400))
        .filter(|d| !known_days.contains(d))
        .collect();
    if !days.is_empty() {
        omelse::store::ensure_table_days(client, &[DECISIONS], &days).await?;
        known_days.extend(days);
    }
    // Binary COPY: no SQL to parse or plan, no arrays to build; the busiest write of the service.
    let sink = client
        .copy_in(
            "COPY greylist_decisions (ts, mx, action, reason, delay_secs, client_address, client_name,
                 client_net, sender, recipient, recipient_domain, queue_id) FROM STDIN BINARY",
        )
        .await?;
    use tokio_postgres::types::Type;
    let writer = tokio_postgres::binary_copy::BinaryCopyInWriter::new(
        sink,
        &[
            Type::TIMESTAMPTZ,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT4,
            Type::INET,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ],
    );
    let mut writer = std::pin::pin!(writer);
    for r in rows {
        let ts = std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.ts.max(0) as u64);
        writer
            .as_mut()
            .write(&[
                &ts,
                &mx,
                &r.action,
                &r.reason,
                &r.delay_secs,
                &r.client_address,
                &r.client_name,
                &r.client_net,
                &r.sender,
                &r.recipient,
                &r.recipient_domain,
                &r.queue_id,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Drains the decisions channel into the database in batches until every sender is gone.
/// Rows that cannot be written (database down) are dropped with a warning: statistics must
/// never hold up a decision.
pub async fn run_decision_writer(pool: Pool, mx: String, mut rx: mpsc::Receiver<DecisionRow>) {
    let mut known_days = BTreeSet::new();
    let mut batch = Vec::with_capacity(1024);
    while rx.recv_many(&mut batch, 1024).await > 0 {
        let result = async {
            let mut client = pool.get().await?;
            let client: &mut tokio_postgres::Client = &mut client;
            insert_decisions(client, &mx, &batch, &mut known_days).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!("greylist: {} decisions not logged: {e}", batch.len());
            // A dropped partition (retention) must be recreated next time.
            known_days.clear();
        }
        batch.clear();
    }
}

/// What a cleanup removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupStats {
    pub triplets: u64,
    pub sender_awl: u64,
    pub domain_awl: u64,
    pub partitions: Vec<String>,
}

/// Removes expired entries: triplets unseen for `max_age` or never passed within the retry
/// window, auto-whitelist entries unused for `awl_max_age`, and decisions partitions older
/// than `decisions_retention_days`. Called by elsed's maintenance loop.
pub async fn cleanup(client: &mut tokio_postgres::Client, cfg: &GreylistConfig, now: i64) -> Result<CleanupStats> {
    let mut stats = CleanupStats {
        triplets: client
            .execute(
                "DELETE FROM greylist_triplets
                 WHERE last_seen < to_timestamp($1::int8)
                    OR (passed_at IS NULL AND first_seen < to_timestamp($2::int8))",
                &[&(now - cfg.max_age_secs), &(now - cfg.retry_window_secs)],
            )
            .await?,
        ..Default::default()
    };
    let awl_cutoff = now - cfg.awl_max_age_secs;
    stats.sender_awl = client
        .execute(
            "DELETE FROM greylist_sender_awl WHERE last_seen < to_timestamp($1::int8)",
            &[&awl_cutoff],
        )
        .await?;
    stats.domain_awl = client
        .execute(
            "DELETE FROM greylist_domain_awl WHERE last_seen < to_timestamp($1::int8)",
            &[&awl_cutoff],
        )
        .await?;
    let first_kept_day = now.div_euclid(86_400) - cfg.decisions_retention_days;
    stats.partitions = omelse::store::drop_days_before(client, &[DECISIONS], first_kept_day).await?;
    Ok(stats)
}
