//! `elsed status`: what an operator checks first: the schema, the servers seen and when, and the
//! ingest counters the rsyslog module writes (`omelse.<machine>.lines`, `.unknown`, `.failed_commits`…).

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::{db, replica, Settings};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object instead of text
    #[arg(long)]
    json: bool,
}

pub async fn run(args: &StatusArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let client = db::connect(&settings.database()?).await?;
    db::require_schema(&client).await?;
    let version = omelse::store::schema_version(&client).await?;
    let servers: Vec<(String, String, Option<omelse::parse::Timestamp>)> = client
        .query("SELECT name, role, last_seen FROM servers ORDER BY name", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let counters: Vec<(String, i64, omelse::parse::Timestamp)> = client
        .query("SELECT name, value, updated_at FROM ingest_counters ORDER BY name", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let replica = match settings.read_database() {
        Some(target) => Some(replica(&client, &target, settings.config.database.read_max_lag_secs).await),
        None => None,
    };
    if args.json {
        let value = json!({
            "schema_version": version,
            "read_replica": replica,
            "servers": servers.iter().map(|(name, role, seen)| json!({"name": name, "role": role, "last_seen": seen})).collect::<Vec<_>>(),
            "counters": counters.iter().map(|(name, value, at)| json!({"name": name, "value": value, "updated_at": at})).collect::<Vec<_>>(),
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("schema version {version}");
    println!("servers:");
    for (name, role, seen) in &servers {
        let seen = seen.map_or_else(|| "never".to_string(), |t| t.to_rfc3339());
        println!("  {name:<30} {role:<10} last line {seen}");
    }
    if let Some(replica) = &replica {
        println!(
            "read replica (database.read_url): {}",
            replica["summary"].as_str().unwrap_or_default()
        );
    }
    println!("ingest counters:");
    for (name, value, at) in &counters {
        println!("  {name:<50} {value:>14}  (updated {})", at.to_rfc3339());
    }
    Ok(ExitCode::SUCCESS)
}

/// The read replica at this moment: how many WAL bytes it has still to replay, whether its
/// replay is paused, and when the last transaction it replayed was committed (`elsed serve`
/// measures the lag in seconds continuously: `GET /api/v1/database`).
async fn replica(primary: &tokio_postgres::Client, target: &db::Target, max_lag_secs: u64) -> serde_json::Value {
    let standby = match db::connect(target).await {
        Ok(client) => client,
        Err(e) => return json!({"reachable": false, "summary": format!("unreachable: {e:#}")}),
    };
    let (position, replay) = match (
        replica::wal_position(primary).await,
        replica::replay_state(&standby).await,
    ) {
        (Ok(position), Ok(replay)) => (position, replay),
        (Err(e), _) => return json!({"reachable": true, "summary": format!("primary: {e}")}),
        (_, Err(e)) => return json!({"reachable": true, "summary": e}),
    };
    let behind = (position - replay.position).max(0);
    let last = replay.last_commit.map_or_else(|| "none".to_owned(), |t| t.to_rfc3339());
    let summary = match (behind, replay.paused) {
        (0, false) => format!("caught up (last replayed commit {last})"),
        (bytes, paused) => format!(
            "{bytes} WAL bytes behind{}, last replayed commit {last}; skipped by elsed serve past \
             read_max_lag_secs = {}",
            if paused { ", replay paused" } else { "" },
            max_lag_secs
        ),
    };
    json!({
        "reachable": true,
        "bytes_behind": behind,
        "replay_paused": replay.paused,
        "last_replayed_commit": replay.last_commit,
        "summary": summary,
    })
}
