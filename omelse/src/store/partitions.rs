//! Daily partitions: named `<table>_pYYYYMMDD`, covering one UTC day, created before rows need them.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::sql_types::civil_from_days;
use super::Result;

/// Every table partitioned by day, with its partition key.
pub const PARTITIONED_TABLES: &[(&str, &str)] = &[
    ("log_events", "ts"),
    ("messages", "started_at"),
    ("recipients", "message_started_at"),
    ("deliveries", "ts"),
    ("rejects", "ts"),
    ("sessions", "connected_at"),
    ("links", "ts"),
    ("ndrs", "received_at"),
    ("ndr_recipients", "ndr_received_at"),
    ("snmp_samples", "ts"),
];

/// The names of [`PARTITIONED_TABLES`].
pub fn partitioned_table_names() -> Vec<&'static str> {
    PARTITIONED_TABLES.iter().map(|(table, _)| *table).collect()
}

/// Serialises partition creation and drops between writers (DDL on the same name would otherwise
/// race: `IF NOT EXISTS` is not atomic against a concurrent create).
pub(crate) const PARTITION_LOCK: i64 = 0x454c_5345_0002;

/// `YYYYMMDD` of a day number.
pub(crate) fn day_suffix(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}{m:02}{d:02}")
}

/// `YYYY-MM-DD 00:00:00+00` of a day number, a literal PostgreSQL reads in any time zone.
fn day_literal(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02} 00:00:00+00")
}

/// Parses the day out of a partition name made by [`day_suffix`].
pub(crate) fn day_from_partition_name(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (
        digits[..4].parse().ok()?,
        digits[4..6].parse().ok()?,
        digits[6..].parse().ok()?,
    );
    let day = crate::parse::header::days_from_civil(y, m, d);
    (civil_from_days(day) == (y, m, d)).then_some(day)
}

/// Creates the partitions of every partitioned table for these days.
pub async fn ensure_days(client: &mut Client, days: &BTreeSet<i64>) -> Result<()> {
    ensure_table_days(client, &partitioned_table_names(), days).await
}

/// Creates the daily partitions of `tables` (partitioned by a `timestamptz`) for these days, in
/// its own short transaction so that a failed batch does not undo them and the lock on the
/// parents is held briefly. elsed's own daily tables (GreyLSE's decisions) are made here too, so
/// that every partition DDL takes [`PARTITION_LOCK`].
pub async fn ensure_table_days(client: &mut Client, tables: &[&str], days: &BTreeSet<i64>) -> Result<()> {
    if days.is_empty() {
        return Ok(());
    }
    let mut sql = String::new();
    for &day in days {
        for table in tables {
            sql.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {table}_p{suffix} PARTITION OF {table} FOR VALUES FROM ('{from}') TO ('{to}');\n",
                suffix = day_suffix(day),
                from = day_literal(day),
                to = day_literal(day + 1),
            ));
        }
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?;
    // Partitions that exist already would only add notices.
    tx.batch_execute("SET LOCAL client_min_messages = warning").await?;
    tx.batch_execute(&sql).await?;
    tx.commit().await?;
    Ok(())
}

/// Drops the daily partitions of `tables` whose day is before `first_kept_day`, in one
/// transaction under [`PARTITION_LOCK`]; returns the names dropped.
pub async fn drop_days_before(client: &mut Client, tables: &[&str], first_kept_day: i64) -> Result<Vec<String>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await?;
    let mut dropped = Vec::new();
    for table in tables {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let day = 20_421;
        let name = format!("messages_p{}", day_suffix(day));
        assert_eq!(day_from_partition_name("messages", &name), Some(day));
        assert_eq!(day_from_partition_name("messages", "messages_p20231399"), None);
        assert_eq!(day_from_partition_name("log_events", &name), None);
    }
}
