//! Retention: whole daily partitions are dropped, live rows are never DELETEd.

use tokio_postgres::Client;

use super::partitions::{day_from_partition_name, PARTITIONED_TABLES, PARTITION_LOCK};
use super::sql_types::day_of;
use super::Result;
use crate::parse::Timestamp;

/// Drops the daily partitions of every partitioned table whose whole day is more than `days`
/// days before today (UTC); returns the names dropped.
pub async fn drop_partitions_older_than(client: &mut Client, days: u32) -> Result<Vec<String>> {
    drop_partitions_before(client, retention_cutoff(days, Timestamp::now())).await
}

/// The first instant a retention of `days` keeps at `now`: midnight UTC `days` days before
/// today. What is older goes with the next [`drop_partitions_older_than`] (an import warns of it).
pub fn retention_cutoff(days: u32, now: Timestamp) -> Timestamp {
    Timestamp((day_of(now) - i64::from(days)) * 86_400 * Timestamp::MICROS_PER_SECOND)
}

/// Drops the daily partitions that end at or before `cutoff` (a partition the cutoff falls in is
/// kept); returns the names dropped.
pub async fn drop_partitions_before(client: &mut Client, cutoff: Timestamp) -> Result<Vec<String>> {
    // Day D covers [D, D + 1) days: it ends at or before the cutoff when D < the cutoff's day.
    let first_kept_day = day_of(cutoff);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?;
    let mut dropped = Vec::new();
    for (table, _) in PARTITIONED_TABLES {
        let rows = tx
            .query(
                "SELECT c.relname FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = $1::text::regclass ORDER BY 1",
                &[table],
            )
            .await?;
        for row in rows {
            let name: String = row.get(0);
            if day_from_partition_name(table, &name).is_some_and(|day| day < first_kept_day) {
                tx.batch_execute(&format!("DROP TABLE {name}")).await?;
                dropped.push(name);
            }
        }
    }
    tx.commit().await?;
    Ok(dropped)
}
