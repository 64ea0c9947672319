//! What ELSE's tests share: a throwaway PostgreSQL cluster, the corpora in `../shared`.
//!
//! Tests never rely on a server someone started by hand: [`PgCluster::shared`] starts one private
//! PostgreSQL 15 cluster per test binary (initdb as the `postgres` OS user when we are root, a free
//! port on 127.0.0.1, trust auth, fsync off) and every test takes a fresh database from it with
//! [`PgCluster::create_database`], so tests running in parallel never see each other's rows.
//! Set `ELSE_TEST_DATABASE_URL` to use an existing server instead (per-test databases are created
//! on it, named `else_test_<pid>_<n>`, and left there).
//!
//! What a test needs from the machine beyond that (the corpora, the GeoIP database, a Debian
//! tool) it asks for through [`require`]: in CI a missing need fails the test, elsewhere it skips.

#![deny(unsafe_code)]

pub mod bench;
pub mod corpora;
pub mod dense;
pub mod nftables;
pub mod pflogsumm;
pub mod ports;
pub mod postfix;
pub mod records;
pub mod require;
pub mod rsyslogd;
pub mod shipped;
pub mod snmpd;
pub mod ssh_tunnel;
pub mod sys;
pub mod tls;
pub mod topology;
pub mod webhook;
pub mod wire;

pub use ports::free_port;
pub use require::{missing, require, require_that};

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Where the PostgreSQL binaries are looked for, first match wins (`ELSE_PG_BIN` overrides).
const PG_BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/15/bin",
    "/usr/pgsql-15/bin",
    "/usr/local/pgsql/bin",
];

/// Why a cluster could not be started; the message says what to install or look at.
#[derive(Debug)]
pub struct HarnessError(pub String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

fn fail<T>(message: impl Into<String>) -> Result<T, HarnessError> {
    Err(HarnessError(message.into()))
}

/// A PostgreSQL server for tests: a private throwaway cluster, or the server of
/// `ELSE_TEST_DATABASE_URL`.
#[derive(Debug)]
pub struct PgCluster {
    /// Connection string of the maintenance database (`postgres`).
    admin_url: String,
    /// `None` for an external server: nothing to stop or remove.
    owned: Option<OwnedCluster>,
}

#[derive(Debug)]
struct OwnedCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// `name=value` settings after the test defaults (the last one wins).
    settings: Vec<String>,
}

static SHARED: OnceLock<PgCluster> = OnceLock::new();
static DATABASE_COUNTER: AtomicU32 = AtomicU32::new(0);

impl PgCluster {
    /// The one cluster of this test binary, started on first use and stopped at process exit
    /// (statics are never dropped, so an `atexit` hook and a watchdog process clean up, the
    /// latter even when the test binary is killed). Panics with a clear message on failure.
    pub fn shared() -> &'static PgCluster {
        SHARED.get_or_init(|| {
            let cluster = match std::env::var("ELSE_TEST_DATABASE_URL") {
                Ok(url) if !url.is_empty() => PgCluster::external(url),
                _ => PgCluster::start().unwrap_or_else(|e| panic!("cannot start a test PostgreSQL cluster: {e}")),
            };
            if cluster.owned.is_some() {
                extern "C" fn stop_shared() {
                    if let Some(owned) = SHARED.get().and_then(|c| c.owned.as_ref()) {
                        owned.teardown();
                    }
                }
                sys::at_exit(stop_shared);
            }
            cluster
        })
    }

    /// Uses a server someone else runs (`ELSE_TEST_DATABASE_URL`): nothing is started or stopped.
    pub fn external(admin_url: String) -> PgCluster {
        PgCluster { admin_url, owned: None }
    }

    /// Starts a private cluster, stopped and removed when the value is dropped.
    pub fn start() -> Result<PgCluster, HarnessError> {
        PgCluster::start_with(&[])
    }

    /// Starts a private cluster with `name=value` server settings over the tests' defaults (fsync
    /// off and friends): benchmarks measure PostgreSQL as it is installed (`fsync=on`, …).
    pub fn start_with(settings: &[&str]) -> Result<PgCluster, HarnessError> {
        let settings = settings.iter().map(|s| (*s).to_owned()).collect();
        PgCluster::start_made(find_bin_dir()?, sys::is_root(), settings, OwnedCluster::init)
    }

    /// Makes a private cluster's data directory with `make`, starts it on a free port, and
    /// watches over it; a failure anywhere removes the directory.
    fn start_made(
        bin: PathBuf,
        as_postgres: bool,
        settings: Vec<String>,
        make: impl FnOnce(&OwnedCluster) -> Result<(), HarnessError>,
    ) -> Result<PgCluster, HarnessError> {
        let dir = make_private_dir(as_postgres)?;
        let owned = OwnedCluster {
            dir,
            bin,
            port: 0,
            as_postgres,
            settings,
        };
        // From here on, a failure must still remove the directory: `owned` does it on drop.
        let mut owned = Guard(Some(owned));
        let cluster = owned.0.as_mut().expect("guard holds the cluster");
        make(cluster)?;
        cluster.port = cluster.launch()?;
        cluster.spawn_watchdog();
        let cluster = owned.0.take().expect("guard holds the cluster");
        Ok(PgCluster {
            admin_url: format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.port),
            owned: Some(cluster),
        })
    }

    /// A hot standby of this private cluster, streaming from it on the loopback: a base backup
    /// with `pg_basebackup -R` (which writes `primary_conninfo` and `standby.signal`) started on
    /// a free port, read-only, stopped and removed when dropped. The primary runs PostgreSQL's
    /// defaults for this (`wal_level=replica`, WAL senders, trust for replication from 127.0.0.1).
    pub fn start_standby(&self) -> Result<PgCluster, HarnessError> {
        let Some(primary) = &self.owned else {
            return fail("an external server (ELSE_TEST_DATABASE_URL) has no standby started by tests");
        };
        let port = primary.port.to_string();
        PgCluster::start_made(
            primary.bin.clone(),
            primary.as_postgres,
            primary.settings.clone(),
            |standby| {
                let backup = ["-R", "-X", "stream", "-c", "fast", "--no-sync", "-h", "127.0.0.1"];
                standby.make_data_dir(
                    "pg_basebackup",
                    &[&backup[..], &["-U", "postgres", "-p", &port]].concat(),
                )
            },
        )
    }

    /// Connection string of the `postgres` maintenance database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The port of a private cluster (`None` for an external server).
    pub fn port(&self) -> Option<u16> {
        self.owned.as_ref().map(|o| o.port)
    }

    /// The process id of a private cluster's postmaster (its backends are its children).
    pub fn server_pid(&self) -> Option<u32> {
        let owned = self.owned.as_ref()?;
        let pid_file = std::fs::read_to_string(owned.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Stops a private cluster's server, keeping its data: what a database outage looks like to
    /// ELSE. Fails for an external server, which the tests do not own.
    pub fn stop(&self) -> Result<(), HarnessError> {
        match &self.owned {
            Some(owned) => owned.stop(),
            None => fail("an external server (ELSE_TEST_DATABASE_URL) is not stopped by tests"),
        }
    }

    /// Kills a private cluster's server with SIGKILL, as a crash would: the postmaster and its
    /// backends die at once, without a shutdown. `restart` brings it back (crash recovery).
    pub fn kill(&self) -> Result<(), HarnessError> {
        if self.owned.is_none() {
            return fail("an external server (ELSE_TEST_DATABASE_URL) is not killed by tests");
        }
        let pid = self
            .server_pid()
            .ok_or_else(|| HarnessError("no readable postmaster.pid".into()))?;
        // The backends first (children of the postmaster), so none outlives it holding shared memory.
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid.to_string()]).status();
        sys::signal(pid, libc::SIGKILL);
        for _ in 0..100 {
            if !sys::signal(pid, 0) {
                let _ = Command::new("pkill").args(["-KILL", "-P", &pid.to_string()]).status();
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        fail(format!("postmaster {pid} survived SIGKILL"))
    }

    /// Starts a stopped private cluster again, on the same port, with its data.
    pub fn restart(&self) -> Result<(), HarnessError> {
        match &self.owned {
            Some(owned) => owned
                .launch_on(owned.port)
                .map_err(|log| HarnessError(format!("PostgreSQL did not restart: {log}"))),
            None => fail("an external server (ELSE_TEST_DATABASE_URL) is not restarted by tests"),
        }
    }

    /// Creates a fresh, empty database and returns its connection string.
    pub async fn create_database(&self) -> String {
        let name = format!(
            "else_test_{}_{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test server {}: {e}", self.admin_url));
        let task = tokio::spawn(connection);
        // Concurrent CREATE DATABASE from template0 never trips over "template being accessed".
        client
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'"
            ))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        drop(client);
        let _ = task.await;
        with_dbname(&self.admin_url, &name)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(owned) = self.owned.take() {
            owned.teardown();
        }
    }
}

/// Removes a half-started cluster when start fails.
struct Guard(Option<OwnedCluster>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(owned) = self.0.take() {
            owned.teardown();
        }
    }
}

impl OwnedCluster {
    /// A command for a PostgreSQL binary, run as `postgres` when we are root (initdb refuses root).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self) -> Result<(), HarnessError> {
        self.make_data_dir(
            "initdb",
            &[
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
    }

    /// Runs `program -D <data dir> args` (initdb, pg_basebackup); its output is the error.
    fn make_data_dir(&self, program: &str, args: &[&str]) -> Result<(), HarnessError> {
        let output = self
            .command(program)
            .arg("-D")
            .arg(self.data_dir())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError(format!("cannot run {program} ({}): {e}", self.bin.display())))?;
        if !output.status.success() {
            return fail(format!(
                "{program} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(())
    }

    /// Starts the server on a free port; retries with another port if it was taken meanwhile.
    fn launch(&self) -> Result<u16, HarnessError> {
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match self.launch_on(port) {
                Ok(()) => return Ok(port),
                Err(log) if log.contains("in use") => last_error = log,
                Err(log) => return fail(format!("PostgreSQL did not start: {log}")),
            }
        }
        fail(format!("PostgreSQL did not start: {last_error}"))
    }

    /// Starts the server on `port`; the error is pg_ctl's output and the server log.
    fn launch_on(&self, port: u16) -> Result<(), String> {
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB \
             -c max_wal_size=1GB -c checkpoint_timeout=1h -c TimeZone=UTC",
            self.dir.display()
        );
        for setting in &self.settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        Err(format!(
            "{}{}{log}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// Stops the server, keeping its data (fast shutdown: clients are disconnected).
    fn stop(&self) -> Result<(), HarnessError> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| HarnessError(format!("cannot run pg_ctl: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            fail(format!("pg_ctl stop failed ({status})"))
        }
    }

    /// A shell that stops the cluster and removes its directory once this process is gone, so a
    /// killed test binary leaves nothing behind.
    fn spawn_watchdog(&self) {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             {stop} 2>/dev/null; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = self.stop_command_line(),
            dir = self.dir.display(),
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    fn stop_command_line(&self) -> String {
        let pg_ctl = self.bin.join("pg_ctl");
        let prefix = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{prefix}'{}' -D '{}' -m immediate -w stop",
            pg_ctl.display(),
            self.data_dir().display()
        )
    }

    /// Stops the server (immediate: nothing to keep) and removes the directory.
    fn teardown(&self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_bin_dir() -> Result<PathBuf, HarnessError> {
    let candidates: Vec<PathBuf> = match std::env::var_os("ELSE_PG_BIN") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => PG_BIN_DIRS.iter().map(PathBuf::from).collect(),
    };
    for dir in &candidates {
        if ["initdb", "pg_ctl", "postgres"].iter().all(|b| dir.join(b).is_file()) {
            return Ok(dir.clone());
        }
    }
    fail(format!(
        "PostgreSQL 15 server binaries (initdb, pg_ctl, postgres) not found in {candidates:?}; install \
         postgresql-15 (Debian: apt-get install postgresql-15), set ELSE_PG_BIN to their directory, \
         or set ELSE_TEST_DATABASE_URL to a server the tests may create databases on"
    ))
}

/// A fresh `0700` directory under the temp dir, owned by `postgres` when we are root.
fn make_private_dir(as_postgres: bool) -> Result<PathBuf, HarnessError> {
    let dir = sys::make_temp_dir(&std::env::temp_dir().join("else-pg-"))
        .map_err(|e| HarnessError(format!("cannot create a temp directory: {e}")))?;
    if as_postgres {
        let Some((uid, gid)) = sys::user_ids("postgres") else {
            let _ = std::fs::remove_dir_all(&dir);
            return fail("running as root but there is no `postgres` OS user to run initdb as (install postgresql-15)");
        };
        if let Err(error) = std::os::unix::fs::chown(&dir, Some(uid), Some(gid)) {
            let _ = std::fs::remove_dir_all(&dir);
            return fail(format!("cannot give {} to the postgres user: {error}", dir.display()));
        }
    }
    Ok(dir)
}

/// Runs `future` to completion on a fresh current-thread runtime, for tests and benchmarks that
/// are plain functions (not inside a tokio runtime).
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

/// The single integer `sql` returns (a `count(*)`), or -1 while the database cannot answer it
/// (so that waiting for 0 never passes on an error).
pub fn count(url: &str, sql: &str) -> i64 {
    block_on(async {
        let Ok((client, connection)) = tokio_postgres::connect(url, tokio_postgres::NoTls).await else {
            return -1;
        };
        tokio::spawn(connection);
        client.query_one(sql, &[]).await.map_or(-1, |r| r.get(0))
    })
}

/// The same connection string with another database: URLs (`postgresql://u@h:p/db?x=y`) get their
/// path replaced, key=value strings get a `dbname` appended (the last one wins).
pub fn with_dbname(conninfo: &str, dbname: &str) -> String {
    for scheme in ["postgresql://", "postgres://"] {
        if let Some(rest) = conninfo.strip_prefix(scheme) {
            let (main, query) = match rest.split_once('?') {
                Some((main, query)) => (main, Some(query)),
                None => (rest, None),
            };
            let authority = main.split_once('/').map_or(main, |(authority, _)| authority);
            let mut url = format!("{scheme}{authority}/{dbname}");
            if let Some(query) = query {
                url.push('?');
                url.push_str(query);
            }
            return url;
        }
    }
    format!("{conninfo} dbname={dbname}")
}

/// `shared/{what}` (the project's shared data: `corpora`, `research/samples`), in the nearest
/// folder above the workspace that has it (`../shared` beside a checkout, one level further up
/// from a git worktree `…/wt/NAME`), or `None` when absent ([`require`]: a failure in CI).
pub fn shared(what: &str) -> Option<PathBuf> {
    let found = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .skip(2)
        .map(|dir| dir.join("shared").join(what))
        .find(|path| path.exists());
    require(found, format_args!("../shared/{what} not found"))
}

/// The servers of `tests/fixtures/mail.log` with their roles and addresses, as an administrator
/// would register them (mail from out1 to mx1 is then internal).
pub async fn register_fixture_servers(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "INSERT INTO servers (name, role, address) VALUES
                 ('mx1', 'incoming', '192.0.2.10'), ('out1', 'outgoing', '192.0.2.11')",
        )
        .await
        .expect("register the fixture's servers");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbname_is_replaced_in_urls_and_appended_to_conninfo() {
        assert_eq!(
            with_dbname("postgresql://u:p@h:5/postgres?sslmode=disable", "x"),
            "postgresql://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgres://h", "x"), "postgres://h/x");
        assert_eq!(
            with_dbname("host=h user=u dbname=postgres", "x"),
            "host=h user=u dbname=postgres dbname=x"
        );
    }

    #[tokio::test]
    async fn an_own_cluster_stops_restarts_and_is_removed_on_drop() {
        if std::env::var_os("ELSE_TEST_DATABASE_URL").is_some() {
            missing("a private PostgreSQL cluster (ELSE_TEST_DATABASE_URL is set: unset it)");
            return;
        }
        let cluster = PgCluster::start().unwrap();
        let dir = cluster.owned.as_ref().unwrap().dir.clone();
        let url = cluster.create_database().await;
        let connect = || async { tokio_postgres::connect(&url, tokio_postgres::NoTls).await };
        let (client, connection) = connect().await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
            .await
            .unwrap();
        cluster.stop().unwrap();
        assert!(client.batch_execute("SELECT 1").await.is_err());
        assert!(connect().await.is_err());
        cluster.restart().unwrap();
        let (client, connection) = connect().await.unwrap();
        tokio::spawn(connection);
        let row = client.query_one("SELECT x FROM kept", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 7);
        drop(cluster);
        assert!(!dir.exists());
        assert!(connect().await.is_err());
    }

    #[tokio::test]
    async fn an_external_server_gets_per_test_databases() {
        if std::env::var_os("ELSE_TEST_DATABASE_URL").is_some() {
            missing("a private PostgreSQL cluster (ELSE_TEST_DATABASE_URL is set: unset it)");
            return;
        }
        // Someone else's server, reached by URL: here a private cluster plays that part.
        let server = PgCluster::start().unwrap();
        let external = PgCluster::external(format!(
            "postgresql://postgres@127.0.0.1:{}/postgres",
            server.port().unwrap()
        ));
        let url = external.create_database().await;
        assert!(
            url.starts_with("postgresql://postgres@127.0.0.1:") && url.contains("/else_test_"),
            "{url}"
        );
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let row = client.query_one("SELECT current_database()", &[]).await.unwrap();
        assert!(url.ends_with(row.get::<_, &str>(0)));
        assert!(external.stop().is_err(), "tests never stop a server they do not own");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_tests_get_separate_databases() {
        let cluster = PgCluster::shared();
        let (a, b) = tokio::join!(cluster.create_database(), cluster.create_database());
        assert_ne!(a, b);
        for url in [&a, &b] {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute("CREATE TABLE t (x int)").await.unwrap();
            let row = client.query_one("SELECT current_database()", &[]).await.unwrap();
            assert!(url.ends_with(row.get::<_, &str>(0)));
        }
    }
}
