//! Operator counters (`ingest_counters`): the figures omelse reports, where `elsed` can show them.

use tokio_postgres::Client;

use super::Result;

/// Sets each named counter to its value (counters are totals since their writer started).
pub async fn record_counters(client: &Client, counters: &[(String, i64)]) -> Result<()> {
    let names: Vec<&str> = counters.iter().map(|(name, _)| name.as_str()).collect();
    let values: Vec<i64> = counters.iter().map(|(_, value)| *value).collect();
    client
        .execute(
            "INSERT INTO ingest_counters (name, value, updated_at)
             SELECT name, value, now() FROM unnest($1::text[], $2::bigint[]) AS c(name, value)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
            &[&names, &values],
        )
        .await?;
    Ok(())
}
