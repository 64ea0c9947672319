//! `elsed maintain`: the periodic housekeeping of an ELSE server. Retention drops whole daily
//! partitions older than `retention.days` (never a DELETE of live rows), the hourly rollups of the
//! hours that changed are recomputed, finished days' log lines get their search index, the
//! partitioned tables get the whole-table statistics autovacuum never takes, GreyLSE's expired
//! state is removed, and each finished day's partitions are frozen once.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::{db, greylist, Settings};

/// How long one run may go on freezing partitions (it finishes the one it is at): a day's
/// partitions take seconds to a minute; a backlog of weeks spreads over several runs.
const FREEZE_BUDGET: Duration = Duration::from_secs(120);

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Keep running, once every SECONDS, instead of once
    #[arg(long = "every", value_name = "SECONDS")]
    every: Option<u64>,
}

pub async fn run(args: &MaintainArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    loop {
        once(settings).await?;
        match args.every {
            Some(seconds) => tokio::time::sleep(Duration::from_secs(seconds.max(1))).await,
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn once(settings: &Settings) -> anyhow::Result<()> {
    let mut client = db::connect(&settings.database()?).await?;
    db::require_schema(&client).await?;
    let days = settings.config.retention.days;
    let dropped = omelse::store::drop_partitions_older_than(&mut client, days).await?;
    tracing::info!(
        days,
        dropped = dropped.len(),
        "retention: partitions older than {days} days dropped"
    );
    for name in &dropped {
        tracing::info!("retention: dropped {name}");
    }
    let indexed = omelse::store::index_finished_log_days(&client).await?;
    tracing::info!(
        partitions = indexed.len(),
        "log lines of finished days indexed for search"
    );
    let analyzed = omelse::store::analyze_partitioned_tables(&client).await?;
    tracing::info!(
        tables = analyzed.len(),
        "statistics of the partitioned tables as a whole taken where missing or older than a week"
    );
    let hours = omelse::store::refresh_rollups(&mut client).await?;
    tracing::info!(hours, "rollups refreshed");
    let pool = db::pool(&settings.database()?, "elsed-maintain", 2, db::Commit::Asynchronous)?;
    let cleaned = greylist::cleanup(&settings.config.greylist, &pool).await?;
    tracing::info!(
        triplets = cleaned.triplets,
        sender_whitelist = cleaned.sender_awl,
        domain_whitelist = cleaned.domain_awl,
        decision_partitions = cleaned.partitions.len(),
        "greylisting: expired state removed"
    );
    // Last, and for a bounded time: after an upgrade it has weeks of partitions to freeze once,
    // and the next runs go on with them.
    let frozen = omelse::store::freeze_finished_days(&client, FREEZE_BUDGET).await?;
    tracing::info!(
        partitions = frozen.partitions.len(),
        left_for_the_next_runs = frozen.left,
        "finished days' partitions frozen (VACUUM FREEZE, throttled like autovacuum)"
    );
    Ok(())
}
