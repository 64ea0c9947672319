//! The only place that speaks SQL: schema migrations, batch writes, rollups, open-state loading,
//! retention.
//!
//! Everything here takes a plain [`tokio_postgres::Client`] so that the rsyslog module (one
//! connection of its own) and `elsed` (a pool) use the same code. Sessions run in UTC
//! ([`connect`] sets it) and every time is a [`crate::parse::Timestamp`].

mod batch;
mod connection;
mod counters;
pub mod dedup;
mod error;
mod fleet;
mod freeze;
mod migrate;
mod open_state;
mod partitions;
mod retention;
mod rollup;
mod sql_types;
mod text_index;
mod throttle;
pub mod vouched;
mod whole_table_statistics;
mod writer;

pub use batch::*;
pub use connection::{connect, connect_as, connect_config, connect_with, ConnectOptions};
pub use counters::record_counters;
pub use error::{with_causes, Result, StoreError};
pub use fleet::{load_fleet, Fleet, ServerRole};
pub use freeze::{freeze_finished_days, Frozen};
pub use migrate::{migrate, schema_version, LATEST_SCHEMA_VERSION};
pub use open_state::{
    load_lives, load_open_messages, load_open_sessions, load_open_state, newest_message_time, OpenPageEnd, OpenState,
};
pub use partitions::{drop_days_before, ensure_days, ensure_table_days, partitioned_table_names, PARTITIONED_TABLES};
pub use retention::{drop_partitions_before, drop_partitions_older_than, retention_cutoff};
pub use rollup::{
    refresh_rollups, refresh_rollups_hot_since, refresh_rollups_on, DELAY_BUCKETS, KEYS_PER_DAY, KEYS_PER_HOUR, KINDS,
    OTHER_KEY, SIZE_BUCKETS,
};
pub use text_index::index_finished_log_days;
pub use whole_table_statistics::{analyze_partitioned_tables, REFRESH_AFTER as STATISTICS_REFRESH_AFTER};
pub use writer::{WriteStats, Writer};
