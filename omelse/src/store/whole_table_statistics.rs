//! Statistics of each partitioned table as a whole.
//!
//! Autovacuum analyzes every partition but never a partitioned table itself, and PostgreSQL
//! estimates a join between two partitioned tables (a message and its recipients) from the whole
//! tables' statistics. Without them a search for one address was planned as if a tenth of the
//! messages matched: the newest messages were read one by one, 2.2 s instead of 30 ms over 3
//! million messages (docs/benchmarks.md, "Message search latency").

use std::time::Duration;

use tokio_postgres::Client;

use super::partitions::partitioned_table_names;
use super::throttle::run_like_autovacuum;
use super::Result;

/// How old a partitioned table's statistics may grow before they are taken again: what they
/// describe (how many recipients a message has, how many messages an address gets) changes
/// slowly, and in PostgreSQL 15 `ANALYZE` of a partitioned table samples every partition again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// Analyzes each partitioned table whose whole-table statistics are missing or older than
/// [`REFRESH_AFTER`], throttled like autovacuum (`vacuum_cost_delay` 2 ms); returns the tables
/// analyzed.
pub async fn analyze_partitioned_tables(client: &Client) -> Result<Vec<String>> {
    let tables = partitioned_table_names();
    let stale: Vec<String> = client
        .query(
            "SELECT c.relname
             FROM pg_class c
             LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
             WHERE c.relkind = 'p' AND c.relnamespace = current_schema()::regnamespace
               AND c.relname = ANY($1)
               AND (s.last_analyze IS NULL OR s.last_analyze < now() - make_interval(secs => $2))
             ORDER BY c.relname",
            &[&tables, &(REFRESH_AFTER.as_secs() as f64)],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The names come from PARTITIONED_TABLES, never from outside.
    let analyses = stale.iter().map(|table| format!("ANALYZE {table}"));
    run_like_autovacuum(client, analyses, |_| true).await?;
    Ok(stale)
}
