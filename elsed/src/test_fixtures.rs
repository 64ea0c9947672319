//! Databases the tests of several rooms start from: a real log imported as `elsed import` does,
//! and a group of one server and one domain.

use std::path::Path;

use clap::Parser;
use else_tests::PgCluster;
use tokio_postgres::Client;

use crate::Settings;

#[derive(Parser)]
struct ImportCli {
    #[command(flatten)]
    args: crate::import::ImportArgs,
}

/// A fresh database with `log` imported (as `elsed import` does, rollups refreshed).
pub async fn imported(log: &Path) -> (Client, String) {
    let url = PgCluster::shared().create_database().await;
    let settings = Settings {
        config: crate::config::Config::default(),
        database_url: Some(url.clone()),
    };
    let cli = ImportCli::parse_from([
        "import",
        "--force",
        "--timezone",
        "UTC",
        "--year-reference",
        "2024-12-31T00:00:00Z",
        log.to_str().unwrap(),
    ]);
    crate::import::run(cli.args, &settings).await.expect("import");
    let client = omelse::store::connect(&url).await.unwrap();
    (client, url)
}

/// A group of `server` and `domain` (the accounts' tables, migration 5, made here when this
/// branch runs alone), its domain then rolled up for the whole history; returns its id.
pub async fn group(client: &mut Client, server: i32, domain: &str) -> i64 {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS groups (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE);
             CREATE TABLE IF NOT EXISTS group_servers (group_id bigint, server_id integer);
             CREATE TABLE IF NOT EXISTS group_domains (group_id bigint, domain text);",
        )
        .await
        .unwrap();
    let id: i64 = client
        .query_one(
            "INSERT INTO groups (name) VALUES ('example customers') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    client
        .execute("INSERT INTO group_servers VALUES ($1, $2)", &[&id, &server])
        .await
        .unwrap();
    client
        .execute("INSERT INTO group_domains VALUES ($1, $2)", &[&id, &domain])
        .await
        .unwrap();
    // A domain new to the groups is rolled up from the next refresh of each hour: all of them.
    client
        .execute(
            "INSERT INTO rollup_dirty SELECT DISTINCT hour, server_id FROM traffic_hourly ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .unwrap();
    omelse::store::refresh_rollups(client).await.unwrap();
    id
}
