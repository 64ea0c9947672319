//! Retention: whole daily partitions are dropped, live rows are never DELETEd.

use tokio_postgres::Client;

use super::partitions::{drop_days_before, partitioned_table_names};
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
    drop_days_before(client, &partitioned_table_names(), day_of(cutoff)).await
}
