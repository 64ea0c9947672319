//! The trigram index of the raw log lines (the web application's substring search), built per
//! daily partition once the day is over.
//!
//! Why not one index on the parent: a GIN trigram index updated row by row costs every line some
//! hundred posting-list entries, and cut `elsed import` from about 90 000 to 20–37 000 lines/s
//! (docs/benchmarks.md). Built once over a finished day it costs a fraction of that, and the
//! writer keeps its speed; the current day's lines are searched without it (one partition).

use tokio_postgres::Client;

use super::partitions::day_from_partition_name;
use super::sql_types::day_of;
use super::Result;
use crate::parse::Timestamp;

/// The index's name for a partition.
fn index_name(partition: &str) -> String {
    format!("{partition}_raw_trgm")
}

/// Builds the trigram index of every `log_events` partition of a day before today (UTC) that
/// lacks a valid one (a build interrupted earlier leaves an invalid index: it is made again);
/// returns the partitions indexed. `CONCURRENTLY`: late lines of those days are still written
/// meanwhile.
pub async fn index_finished_log_days(client: &Client) -> Result<Vec<String>> {
    let today = day_of(Timestamp::now());
    let rows = client
        .query(
            "SELECT c.relname, ix.indisvalid
             FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             LEFT JOIN pg_class ic ON ic.relname = c.relname || '_raw_trgm' AND ic.relnamespace = c.relnamespace
             LEFT JOIN pg_index ix ON ix.indexrelid = ic.oid
             WHERE i.inhparent = 'log_events'::regclass AND ix.indisvalid IS DISTINCT FROM true
             ORDER BY 1",
            &[],
        )
        .await?;
    let mut indexed = Vec::new();
    for row in rows {
        let partition: String = row.get(0);
        let invalid: Option<bool> = row.get(1);
        if day_from_partition_name("log_events", &partition).is_none_or(|day| day >= today) {
            continue;
        }
        let index = index_name(&partition);
        if invalid.is_some() {
            client
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS \"{index}\""))
                .await?;
        }
        client
            .batch_execute(&format!(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"{index}\" ON \"{partition}\" USING gin (raw gin_trgm_ops)"
            ))
            .await?;
        indexed.push(partition);
    }
    Ok(indexed)
}
