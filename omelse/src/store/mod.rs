//! The only place that speaks SQL: schema migrations, batch writes, rollups, open-state loading,
//! retention.
//!
//! Everything here takes a plain [`tokio_postgres::Client`] so that the rsyslog module (one
//! connection of its own) and `elsed` (a pool) use the same code. Sessions run in UTC
//! ([`connect`] sets it) and every time is a [`crate::parse::Timestamp`].

mod batch;
mod counters;
mod error;
mod migrate;
mod open_state;
mod partitions;
mod retention;
mod rollup;
mod sql_types;
mod writer;

pub use batch::*;
pub use counters::record_counters;
pub use error::{Result, StoreError};
pub use migrate::{migrate, schema_version, LATEST_SCHEMA_VERSION};
pub use open_state::{load_open_state, OpenState};
pub use partitions::{ensure_days, PARTITIONED_TABLES};
pub use retention::{drop_partitions_before, drop_partitions_older_than};
pub use rollup::refresh_rollups;
pub use writer::{WriteStats, Writer};

use tokio_postgres::{Client, NoTls};

/// Opens a connection (URL or `key=value` string) and drives it on a spawned tokio task; the
/// session's time zone is set to UTC so that day and hour boundaries are UTC ones.
///
/// TLS is not offered yet: the server is expected on localhost or a private network. A TLS
/// variant will take a `MakeTlsConnect` and otherwise do the same.
pub async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The error also reaches the client's next call, which reports it; nothing to do here.
        let _ = connection.await;
    });
    client.batch_execute("SET TIME ZONE 'UTC'").await?;
    Ok(client)
}
