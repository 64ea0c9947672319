//! Freezing each finished day's partitions once, throttled, while they are still small news.
//!
//! Daily partitions are written for a day or two, then only read until retention drops them.
//! Left alone, their pages are frozen by PostgreSQL's anti-wraparound vacuum, which comes for
//! every partition at once and rewrites weeks of pages while searches run: at 30 million messages
//! that first freezing pass was the one state where a search's p95 went over 100 ms
//! (docs/benchmarks.md). Frozen one day at a time, a day after it ended (late deliveries of
//! deferred mail are mostly in by then), the anti-wraparound pass finds every page all-frozen and
//! skips it.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::partitions::{day_from_partition_name, partitioned_table_names};
use super::sql_types::day_of;
use super::throttle::run_like_autovacuum;
use super::Result;
use crate::parse::Timestamp;

/// Days a partition waits after its own day ends before it is frozen.
const SETTLE_DAYS: i64 = 1;

/// What one [`freeze_finished_days`] did.
#[derive(Debug, Default)]
pub struct Frozen {
    /// The partitions frozen, oldest day first.
    pub partitions: Vec<String>,
    /// Partitions due that wait for the next run (the time budget ran out).
    pub left: usize,
}

/// Runs `VACUUM (FREEZE)` on the daily partitions whose day ended more than [`SETTLE_DAYS`]
/// before today (UTC) and that no `VACUUM` has visited since then, oldest day first, throttled
/// like autovacuum (`vacuum_cost_delay` 2 ms). It starts no new partition once `budget` has
/// passed (but always freezes one), so that weeks of them after an upgrade spread over several
/// runs instead of holding up the rest of `elsed maintain`.
///
/// "Visited since" is read from `pg_stat_user_tables.last_vacuum`. Statistics lost in a crash
/// only mean a partition is visited again, which costs little: a vacuum skips the pages the
/// visibility map already marks all-frozen.
pub async fn freeze_finished_days(client: &Client, budget: Duration) -> Result<Frozen> {
    let started = Instant::now();
    let tables = partitioned_table_names();
    let rows = client
        .query(
            "SELECT p.relname, c.relname, extract(epoch FROM s.last_vacuum)::float8
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE p.relname = ANY($1) AND p.relnamespace = current_schema()::regnamespace",
            &[&tables],
        )
        .await?;
    let today = day_of(Timestamp::now());
    let mut due = Vec::new();
    for row in rows {
        let (table, partition): (String, String) = (row.get(0), row.get(1));
        let last_vacuum: Option<f64> = row.get(2);
        let Some(day) = day_from_partition_name(&table, &partition) else {
            continue;
        };
        let settled_day = day + 1 + SETTLE_DAYS;
        if today >= settled_day && last_vacuum.is_none_or(|at| at < (settled_day * 86_400) as f64) {
            due.push((day, partition));
        }
    }
    due.sort();
    // The names are partitions of PARTITIONED_TABLES, as the catalogue gave them.
    let freezes = due
        .iter()
        .map(|(_, partition)| format!("VACUUM (FREEZE) \"{partition}\""));
    let ran = run_like_autovacuum(client, freezes, |ran| ran == 0 || started.elapsed() < budget).await?;
    Ok(Frozen {
        left: due.len() - ran,
        partitions: due.into_iter().take(ran).map(|(_, partition)| partition).collect(),
    })
}
