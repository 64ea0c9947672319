//! The database as `elsed`'s commands see it: connecting with a clear error, the pool of the
//! long-running services, the schema's version, and the servers of the configuration file. The
//! SQL of the pipeline itself is omelse's store.

use std::path::PathBuf;

use omelse::store;
use tokio_postgres::Client;

use crate::config::ServerConfig;

/// The database to use and the CA file its certificate is checked against: all that connecting
/// needs ([`crate::Settings::database`] resolves it).
#[derive(Debug, Clone)]
pub struct Target {
    /// A libpq URL or `key=value` string.
    pub url: String,
    /// Implies TLS; see [`store::ConnectOptions::ca_file`].
    pub ca_file: Option<PathBuf>,
}

impl Target {
    /// A database without a CA file (tests, a superuser's URL).
    pub fn url(url: impl Into<String>) -> Target {
        Target {
            url: url.into(),
            ca_file: None,
        }
    }

    fn options(&self, application_name: &str) -> store::ConnectOptions {
        store::ConnectOptions {
            application_name: Some(application_name.into()),
            ca_file: self.ca_file.clone(),
        }
    }
}

/// Connects to `target` (session in UTC, see [`store::connect`]).
pub async fn connect(target: &Target) -> anyhow::Result<Client> {
    store::connect_with(&target.url, &target.options("elsed"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the database ({}): {e}", redact(&target.url)))
}

/// A pool of connections opened exactly as [`connect`] opens one (TLS with `database.ca_file`,
/// UTC session): every long-running service shares it (the web application, GreyLSE, the NDR
/// service, `elsed maintain`). Connections are made lazily, so a service starts with the
/// database down and serves again once it is back.
pub type Pool = deadpool::managed::Pool<PoolManager>;

/// The same pool, whose connections keep their prepared statements ([`Cached`]).
pub type CachedPool = deadpool::managed::Pool<PoolManager<Cached>>;

/// Whether a pool's sessions wait for the WAL flush on commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// What is acknowledged is on disk (the default).
    Durable,
    /// Commits return before the flush: a crash may lose the last fraction of a second, which
    /// costs GreyLSE at most one more deferral and saves every batch a disk sync.
    Asynchronous,
}

/// Opens pooled connections with omelse's [`store::connect_with`], as `T` (a [`Client`], or a
/// [`Cached`] one).
pub struct PoolManager<T = Client> {
    url: String,
    options: store::ConnectOptions,
    commit: Commit,
    _connection: std::marker::PhantomData<fn() -> T>,
}

impl<T> deadpool::managed::Manager for PoolManager<T>
where
    T: Connection,
{
    type Type = T;
    type Error = store::StoreError;

    async fn create(&self) -> Result<T, store::StoreError> {
        let client = store::connect_with(&self.url, &self.options).await?;
        if self.commit == Commit::Asynchronous {
            client.batch_execute("SET synchronous_commit TO off").await?;
        }
        Ok(T::from(client))
    }

    async fn recycle(
        &self,
        client: &mut T,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<store::StoreError> {
        if client.client().is_closed() {
            return Err(deadpool::managed::RecycleError::message("connection closed"));
        }
        Ok(())
    }
}

/// What a pool hands out: a connection made from a [`Client`].
pub trait Connection: From<Client> + Send + Sync {
    fn client(&self) -> &Client;
}

impl Connection for Client {
    fn client(&self) -> &Client {
        self
    }
}

impl Connection for Cached {
    fn client(&self) -> &Client {
        &self.client
    }
}

/// A connection that keeps the statements it prepared: GreyLSE's and the NDR service's hot
/// paths run the same few queries for every request.
pub struct Cached {
    client: Client,
    statements: std::sync::Mutex<std::collections::HashMap<String, tokio_postgres::Statement>>,
}

impl From<Client> for Cached {
    fn from(client: Client) -> Self {
        Cached {
            client,
            statements: Default::default(),
        }
    }
}

impl std::ops::Deref for Cached {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Cached {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Cached {
    /// `sql` prepared once per connection.
    pub async fn prepare_cached(&self, sql: &str) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        let known = self
            .statements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// A pool of at most `size` connections of type `T` to `target`, committing as `commit` says.
pub fn pool<T>(
    target: &Target,
    application_name: &str,
    size: usize,
    commit: Commit,
) -> anyhow::Result<deadpool::managed::Pool<PoolManager<T>>>
where
    T: Connection,
{
    let url = &target.url;
    // Refuse a malformed connection string now rather than at the first request.
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| anyhow::anyhow!("database URL ({}): {e}", redact(url)))?;
    let manager = PoolManager {
        url: url.to_owned(),
        options: target.options(application_name),
        commit,
        _connection: std::marker::PhantomData,
    };
    Ok(deadpool::managed::Pool::builder(manager)
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

/// Records the servers of the configuration file with their roles (a server's role in the
/// database is the file's when the file names it).
pub async fn sync_servers(client: &Client, servers: &[ServerConfig]) -> anyhow::Result<()> {
    for server in servers {
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
    use super::*;

    /// Every service's pool connects as [`connect`] does: `database.ca_file` asks for TLS (here
    /// a CA file that is not there, which must stop it rather than connect in the clear), and
    /// the commit mode is the pool's.
    #[tokio::test]
    async fn pools_honour_the_ca_file_and_their_commit_mode() {
        let mut target = Target::url(else_tests::PgCluster::shared().admin_url());
        let durable: Pool = pool(&target, "t", 1, Commit::Durable).unwrap();
        let cached: CachedPool = pool(&target, "t", 1, Commit::Asynchronous).unwrap();
        async fn mode(client: &Client) -> String {
            let row = client.query_one("SHOW synchronous_commit", &[]).await.unwrap();
            row.get(0)
        }
        assert_eq!(mode(&durable.get().await.unwrap()).await, "on");
        let connection = cached.get().await.unwrap();
        assert_eq!(mode(&connection).await, "off");
        for _ in 0..3 {
            let statement = connection.prepare_cached("SELECT $1::int + 1").await.unwrap();
            let row = connection.query_one(&statement, &[&41]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), 42);
        }
        let prepared: i64 = connection
            .query_one(
                "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 1'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(prepared, 1, "prepared once");

        target.ca_file = Some("/nonexistent/db-ca.pem".into());
        let tls: CachedPool = pool(&target, "t", 1, Commit::Asynchronous).unwrap();
        let refused = tls.get().await.err().expect("no connection without the CA file");
        assert!(refused.to_string().contains("db-ca.pem"), "{refused}");
    }

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
