//! `elsed status`: what an operator checks first: the schema, the servers seen and when, and the
//! ingest counters the rsyslog module writes (`omelse.<machine>.lines`, `.unknown`, `.failed_commits`…).

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use crate::{db, Settings};

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
    if args.json {
        let value = json!({
            "schema_version": version,
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
    println!("ingest counters:");
    for (name, value, at) in &counters {
        println!("  {name:<50} {value:>14}  (updated {})", at.to_rfc3339());
    }
    Ok(ExitCode::SUCCESS)
}
