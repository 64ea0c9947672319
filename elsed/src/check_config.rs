//! `elsed check-config`: says whether the configuration elsed would run with is usable, and where
//! it came from. Loading it is `main`'s first step for every command, so a bad key has already
//! stopped elsed (non-zero exit, key and problem named) before this runs.

use std::process::ExitCode;

use crate::config::DEFAULT_PATH;
use crate::{db, Settings};

pub fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let origin = &settings.config.origin;
    match &origin.file {
        Some(file) => println!("configuration {}: OK", file.display()),
        None => println!("configuration: OK (no file: {DEFAULT_PATH} does not exist, defaults apply)"),
    }
    for (variable, key) in &origin.env {
        println!("  {key}: set by the environment variable {variable}");
    }
    match settings.database_url() {
        Ok(url) => println!("  database: {}", db::redact(url)),
        Err(_) => println!("  database: none given (database.url, ELSE_DATABASE_URL or --database-url)"),
    }
    println!("  servers listed: {}", settings.config.servers.len());
    Ok(ExitCode::SUCCESS)
}
