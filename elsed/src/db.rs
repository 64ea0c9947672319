//! The database as `elsed`'s commands see it: connecting with a clear error, the pool of the
//! long-running services, the schema's version, and the servers of the configuration file. The
//! SQL of the pipeline itself is omelse's store.

use std::path::PathBuf;
use std::time::Duration;

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
        .map_err(|e| connect_error("to the database", &target.url, &e))
}

/// Why connecting to `url` failed, in words a postmaster can act on: the role tried, the
/// server's own message (the whole cause chain), and for the usual first-day failures what to
/// change.
pub fn connect_error(purpose: &str, url: &str, error: &store::StoreError) -> anyhow::Error {
    let config: Option<tokio_postgres::Config> = url.parse().ok();
    let os_user = crate::secret_file::user_name(crate::secret_file::effective_uid());
    let role = config
        .as_ref()
        .and_then(|c| c.get_user().map(str::to_owned))
        .unwrap_or_else(|| os_user.clone());
    let database = config
        .as_ref()
        .and_then(|c| c.get_dbname().map(str::to_owned))
        .unwrap_or_else(|| role.clone());
    let mut message = format!("cannot connect {purpose} ({}) as role {role}: {error}", redact(url));
    if let Some(hint) = connect_hint(error, &role, &database, &os_user) {
        message.push_str(&format!(" — {hint}"));
    }
    anyhow::anyhow!(message)
}

/// What to do about a connection failure, when its cause is a known one.
fn connect_hint(error: &store::StoreError, role: &str, database: &str, os_user: &str) -> Option<String> {
    let store::StoreError::Db(error) = error else {
        return None;
    };
    let lines = "`elsed setup` prints the pg_hba.conf and pg_ident.conf lines for ELSE's role";
    if let Some(db) = error.as_db_error() {
        let text = db.message();
        return match db.code().code() {
            "28000" if text.starts_with("Peer authentication") => Some(format!(
                "peer authentication lets OS user {os_user} in only as the role of the same name, \
                 or as pg_ident.conf maps it: run this as OS user {role} (sudo -u {role} …), or map \
                 {os_user} to {role} in pg_ident.conf and name the map in pg_hba.conf ({lines})"
            )),
            "28000" => Some(format!(
                "no line of pg_hba.conf admits role {role} to database {database} from here: add one \
                 ({lines}) and reload PostgreSQL"
            )),
            "28P01" => Some(format!(
                "the password of role {role} is not the one given (set it again with `elsed setup \
                 --owner-password-file`, or use peer authentication: {lines})"
            )),
            "3D000" => Some(format!(
                "database {database} does not exist: create it with `sudo -u postgres elsed setup`"
            )),
            _ => None,
        };
    }
    let io = std::error::Error::source(error).and_then(|s| s.downcast_ref::<std::io::Error>());
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::NotFound) => Some(
            "no PostgreSQL socket there: is PostgreSQL running on this machine (systemctl status \
             postgresql), or does the connection string name the right host?"
                .into(),
        ),
        Some(std::io::ErrorKind::ConnectionRefused) => {
            Some("nothing listens there: is PostgreSQL running, on that host and port?".into())
        }
        _ => None,
    }
}

/// A pool of connections opened as [`connect`] opens one (TLS with the target's CA file, a
/// session in UTC): every long-running service shares one (the web application, GreyLSE, the
/// NDR service, `elsed maintain`). Connections are made lazily, so a service starts with the
/// database down and serves again once it is back. Each connection keeps the statements it
/// prepared (`prepare_cached`): GreyLSE's and the NDR service's hot paths run the same few
/// queries for every request.
pub type Pool = deadpool_postgres::Pool;

/// A connection of the [`Pool`], returned to it when dropped.
pub type Pooled = deadpool_postgres::Object;

/// Why the pool gave no connection.
pub type PoolError = deadpool_postgres::PoolError;

/// Whether a pool's sessions wait for the WAL flush on commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// What is acknowledged is on disk (the default).
    Durable,
    /// Commits return before the flush: a crash may lose the last fraction of a second, which
    /// costs GreyLSE at most one more deferral and saves every batch a disk sync.
    Asynchronous,
}

impl Commit {
    /// The session's `synchronous_commit`.
    fn setting(self) -> &'static str {
        match self {
            Commit::Durable => "on",
            Commit::Asynchronous => "off",
        }
    }
}

/// How long a caller waits for a new connection to open (an unreachable server answers with an
/// error, not a hang) and for a returned one to be checked.
const CREATE_TIMEOUT: Duration = Duration::from_secs(10);
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How a pool is sized and how its sessions behave.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// At most this many connections.
    pub size: usize,
    pub commit: Commit,
    /// How long a caller waits for a free connection when all are busy; then an error like the
    /// database being down (the web application's 503 with `Retry-After`), never an endless queue.
    pub wait: Duration,
    /// The sessions' `statement_timeout`: no query of theirs runs longer (`None`: PostgreSQL's).
    pub statement_timeout: Option<Duration>,
    /// Whether PostgreSQL may JIT-compile the sessions' queries. The web application's are short
    /// and planned with high costs (a count capped at 10 001 rows): compiling them took 0.5 s
    /// that no statement timeout interrupts (docs/benchmarks.md, "Raw lines as a group member").
    pub jit: bool,
}

impl PoolOptions {
    /// `size` connections committing as `commit` says, callers waiting at most 30 s, no
    /// statement timeout: the background services' pools.
    pub fn new(size: usize, commit: Commit) -> PoolOptions {
        PoolOptions {
            size,
            commit,
            wait: Duration::from_secs(30),
            statement_timeout: None,
            jit: true,
        }
    }
}

/// A pool of at most `size` connections to `target`, committing as `commit` says.
pub fn pool(target: &Target, application_name: &str, size: usize, commit: Commit) -> anyhow::Result<Pool> {
    pool_with(target, application_name, PoolOptions::new(size, commit))
}

/// A pool to `target` as `options` say.
pub fn pool_with(target: &Target, application_name: &str, options: PoolOptions) -> anyhow::Result<Pool> {
    // A malformed connection string, or a CA file that cannot be read, is refused now rather
    // than at the first request. The TLS connector is omelse's, made once for the pool.
    let (mut config, tls) = store::connect_config(&target.url, &target.options(application_name))
        .map_err(|e| anyhow::anyhow!("database ({}): {e}", redact(&target.url)))?;
    // The session's settings travel with the connection's startup packet: no round trip after
    // connecting, and nothing a recycled connection could have lost.
    let mut session = format!("-c TimeZone=UTC -c synchronous_commit={}", options.commit.setting());
    if let Some(limit) = options.statement_timeout {
        session.push_str(&format!(" -c statement_timeout={}", limit.as_millis().max(1)));
    }
    if !options.jit {
        session.push_str(" -c jit=off");
    }
    let startup = match config.get_options() {
        Some(given) => format!("{given} {session}"),
        None => session,
    };
    config.options(&startup);
    let manager_config = deadpool_postgres::ManagerConfig {
        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
    };
    let manager = match tls {
        Some(tls) => deadpool_postgres::Manager::from_config(config, tls, manager_config),
        None => deadpool_postgres::Manager::from_config(config, tokio_postgres::NoTls, manager_config),
    };
    Ok(Pool::builder(manager)
        .max_size(options.size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .timeouts(deadpool_postgres::Timeouts {
            wait: Some(options.wait),
            create: Some(CREATE_TIMEOUT),
            recycle: Some(RECYCLE_TIMEOUT),
        })
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
    /// a CA file that is not there, which must stop it rather than connect in the clear), the
    /// session is in UTC, and the commit mode is the pool's.
    #[tokio::test]
    async fn pools_honour_the_ca_file_and_their_commit_mode() {
        let mut target = Target::url(else_tests::PgCluster::shared().admin_url());
        let durable = pool(&target, "t", 1, Commit::Durable).unwrap();
        let cached = pool(&target, "t", 1, Commit::Asynchronous).unwrap();
        async fn show(client: &Client, setting: &str) -> String {
            let row = client.query_one(&format!("SHOW {setting}"), &[]).await.unwrap();
            row.get(0)
        }
        let connection = durable.get().await.unwrap();
        assert_eq!(show(&connection, "synchronous_commit").await, "on");
        assert_eq!(show(&connection, "TimeZone").await, "UTC");
        let connection = cached.get().await.unwrap();
        assert_eq!(show(&connection, "synchronous_commit").await, "off");
        assert_eq!(show(&connection, "TimeZone").await, "UTC");
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

        // The web application's sessions stop a statement that runs too long, and compile none.
        let options = PoolOptions {
            statement_timeout: Some(Duration::from_millis(1500)),
            jit: false,
            ..PoolOptions::new(1, Commit::Durable)
        };
        let limited = pool_with(&target, "t", options).unwrap().get().await.unwrap();
        assert_eq!(show(&limited, "statement_timeout").await, "1500ms");
        assert_eq!(show(&limited, "jit").await, "off");
        let stopped = limited
            .simple_query("SELECT pg_sleep(30)")
            .await
            .expect_err("cancelled");
        assert_eq!(
            stopped.code(),
            Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
            "{stopped:?}"
        );

        target.ca_file = Some("/nonexistent/db-ca.pem".into());
        let refused = pool(&target, "t", 1, Commit::Asynchronous).expect_err("no pool without the CA file");
        assert!(refused.to_string().contains("db-ca.pem"), "{refused}");
    }

    /// A failed connection names the role tried, PostgreSQL's own words (not `db error`) and
    /// what to do; a socket that is not there says to look at the server.
    #[tokio::test]
    async fn connection_errors_say_the_cause_and_what_to_do() {
        let url = format!(
            "{} dbname=else_nowhere user=postgres",
            else_tests::PgCluster::shared().admin_url()
        );
        let message = connect(&Target::url(url)).await.unwrap_err().to_string();
        for words in [
            "as role postgres",
            "database \"else_nowhere\" does not exist",
            "sudo -u postgres elsed setup",
        ] {
            assert!(message.contains(words), "{words:?} missing: {message}");
        }
        let url = "host=/nonexistent/socket-dir dbname=else user=else";
        let message = connect(&Target::url(url)).await.unwrap_err().to_string();
        assert!(
            message.contains("as role else")
                && message.contains("No such file")
                && message.contains("is PostgreSQL running"),
            "{message}"
        );
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
