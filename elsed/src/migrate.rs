//! `elsed migrate`: the schema brought to this binary's version, and the configured servers
//! recorded.

use std::process::ExitCode;

use omelse::store;

use crate::{db, Settings};

pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut client = db::connect(&settings.database()?).await?;
    let applied = db::migrate(&mut client).await?;
    let version = store::schema_version(&client).await?;
    if applied.is_empty() {
        println!("schema up to date (version {version})");
    } else {
        let list: Vec<String> = applied.iter().map(i32::to_string).collect();
        println!(
            "applied migration(s) {}; schema now at version {version}",
            list.join(", ")
        );
    }
    db::sync_servers(&client, &settings.config.servers).await?;
    Ok(ExitCode::SUCCESS)
}
