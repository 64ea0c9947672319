//! The database as `elsed`'s commands see it: connecting with a clear error, the schema's version,
//! and the servers of the configuration file. The SQL of the pipeline itself is omelse's store.

use std::process::ExitCode;

use omelse::store;
use tokio_postgres::Client;

use crate::Settings;

/// Connects to the configured database (session in UTC, see [`store::connect`]).
pub async fn connect(settings: &Settings) -> anyhow::Result<Client> {
    let url = settings.database_url()?;
    let options = store::ConnectOptions {
        application_name: Some("elsed".into()),
        ca_file: settings.config.database.ca_file.clone(),
    };
    store::connect_with(url, &options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database ({}): {e}", redact(url)))
}

/// A pool of connections opened exactly as [`connect`] opens one (TLS, UTC session, synchronous
/// commits): the long-running services share it. Connections are made lazily, so a service starts
/// with the database down and serves again once it is back.
pub type Pool = deadpool::managed::Pool<PoolManager>;

/// Opens pooled connections with omelse's [`store::connect_with`].
pub struct PoolManager {
    url: String,
    options: store::ConnectOptions,
}

impl deadpool::managed::Manager for PoolManager {
    type Type = Client;
    type Error = store::StoreError;

    async fn create(&self) -> Result<Client, store::StoreError> {
        store::connect_with(&self.url, &self.options).await
    }

    async fn recycle(
        &self,
        client: &mut Client,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<store::StoreError> {
        if client.is_closed() {
            return Err(deadpool::managed::RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

/// A pool of at most `size` connections to the configured database.
pub fn pool(settings: &Settings, application_name: &str, size: usize) -> anyhow::Result<Pool> {
    let url = settings.database_url()?;
    // Refuse a malformed connection string now rather than at the first request.
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| anyhow::anyhow!("database URL ({}): {e}", redact(url)))?;
    let manager = PoolManager {
        url: url.to_owned(),
        options: store::ConnectOptions {
            application_name: Some(application_name.into()),
            ca_file: settings.config.database.ca_file.clone(),
        },
    };
    Ok(Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(deadpool::Runtime::Tokio1)
        .build()?)
}

/// Applies the missing migrations (importing needs the latest schema); says what it did.
pub async fn migrate(client: &mut Client) -> anyhow::Result<Vec<i32>> {
    let applied = store::migrate(client).await?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "schema migrated");
    }
    Ok(applied)
}

/// Reading needs a schema, any version this binary knows.
pub async fn require_schema(client: &Client) -> anyhow::Result<()> {
    match store::schema_version(client).await? {
        0 => anyhow::bail!("the database has no ELSE schema yet: run `elsed migrate` or `elsed import` first"),
        version if version > store::LATEST_SCHEMA_VERSION => anyhow::bail!(
            "database schema version {version} is newer than this binary ({}); upgrade ELSE",
            store::LATEST_SCHEMA_VERSION
        ),
        _ => Ok(()),
    }
}

/// `elsed migrate`.
pub async fn run_migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    let mut client = connect(settings).await?;
    let applied = migrate(&mut client).await?;
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
    sync_servers(&client, settings).await?;
    Ok(ExitCode::SUCCESS)
}

/// Records the servers of the configuration file with their roles (a server's role in the
/// database is the file's when the file names it).
pub async fn sync_servers(client: &Client, settings: &Settings) -> anyhow::Result<()> {
    for server in &settings.config.servers {
        let address = server
            .addresses
            .first()
            .and_then(|a| a.parse::<std::net::IpAddr>().ok());
        client
            .execute(
                "INSERT INTO servers (name, role, address) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role,
                     address = coalesce(EXCLUDED.address, servers.address)",
                &[&server.name, &server.role().name(), &address],
            )
            .await?;
    }
    Ok(())
}

/// The connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
        return url.to_owned();
    }
    url.split_whitespace()
        .map(|word| {
            if word.starts_with("password=") {
                "password=***"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgresql://else:secret@db:5432/else"),
            "postgresql://else:***@db:5432/else"
        );
        assert_eq!(redact("postgresql://else@db/else"), "postgresql://else@db/else");
        assert_eq!(
            redact("host=db password=secret dbname=else"),
            "host=db password=*** dbname=else"
        );
    }
}
