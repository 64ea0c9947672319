//! Versioned schema migrations, embedded in the binary and applied in order, one transaction each.
//!
//! A database is never downgraded: a schema newer than the binary is an error, so that an old
//! binary cannot write rows a newer schema does not expect.

use tokio_postgres::Client;

use super::{Result, StoreError};

/// The migrations, in order: `(version, name, sql)`. Add a file, never edit an applied one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (2, "greylist", include_str!("migrations/0002_greylist.sql")),
    (3, "ndr", include_str!("migrations/0003_ndr.sql")),
    (4, "snmp", include_str!("migrations/0004_snmp.sql")),
    (5, "accounts", include_str!("migrations/0005_accounts.sql")),
    (6, "search", include_str!("migrations/0006_search.sql")),
    (7, "stats", include_str!("migrations/0007_stats.sql")),
    (8, "ndr_greylist", include_str!("migrations/0008_ndr_greylist.sql")),
    (
        9,
        "domain_without_regex",
        include_str!("migrations/0009_domain_without_regex.sql"),
    ),
    (10, "state_reason", include_str!("migrations/0010_state_reason.sql")),
    (11, "tenants", include_str!("migrations/0011_tenants.sql")),
    (12, "alerts", include_str!("migrations/0012_alerts.sql")),
    (13, "alert_indexes", include_str!("migrations/0013_alert_indexes.sql")),
    (
        14,
        "links_by_queue_id_and_time",
        include_str!("migrations/0014_links_by_queue_id_and_time.sql"),
    ),
    (
        15,
        "search_at_scale",
        include_str!("migrations/0015_search_at_scale.sql"),
    ),
    (
        16,
        "recipients_newest_first",
        include_str!("migrations/0016_recipients_newest_first.sql"),
    ),
    (
        17,
        "log_events_without_queue_id_index",
        include_str!("migrations/0017_log_events_without_queue_id_index.sql"),
    ),
];

/// The schema version this binary writes.
pub const LATEST_SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Serialises concurrent `migrate` calls (several daemons starting at once).
const MIGRATION_LOCK: i64 = 0x454c_5345_0001;

/// The database's schema version, 0 for a database ELSE never touched.
pub async fn schema_version(client: &Client) -> Result<i32> {
    let row = client
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
        .await?;
    Ok(row.get(0))
}

/// Applies the missing migrations and returns the versions applied (empty when up to date).
/// Fails with [`StoreError::SchemaTooNew`] when the database is ahead of this binary.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    tx.commit().await?;

    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
            .await?
            .get(0);
        if current > LATEST_SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                database: current,
                binary: LATEST_SCHEMA_VERSION,
            });
        }
        if current >= version {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        tx.commit().await?;
        applied.push(version);
    }
    // Up to date already: still refuse a newer schema.
    let current = schema_version(client).await?;
    if current > LATEST_SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            database: current,
            binary: LATEST_SCHEMA_VERSION,
        });
    }
    Ok(applied)
}
