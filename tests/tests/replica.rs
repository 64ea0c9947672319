//! `elsed serve` with a read replica (`database.read_url`): two private PostgreSQL 15 clusters on
//! the loopback, the second a streaming hot standby of the first (`pg_basebackup -R`), and two
//! real `elsed serve` over them, one that tolerates an hour of lag and one that tolerates two
//! seconds. With the standby's replay paused and a message changed on the primary only, the
//! first still shows the standby's copy (its searches read the standby) while the second skips
//! the lagging standby and shows the primary's; with the standby stopped, logins and searches
//! go on from the primary.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use else_tests::rsyslogd::{elsed_binary, free_port, wait_until};
use else_tests::topology::Daemon;
use else_tests::{with_dbname, PgCluster};
use reqwest::header::COOKIE;
use serde_json::Value;

mod common;

/// A message of the fixture log, sent by carol@example.net.
const QUEUE_ID: &str = "3A1F42C0D1";
const CHANGED: &str = "changed-on-the-primary@example.org";
/// How long a state may take to show (the watcher looks every second; the machine is shared).
const LIMIT: Duration = Duration::from_secs(60);

/// One `elsed serve`, logged in as the administrator.
struct Web {
    daemon: Daemon,
    base: String,
    http: reqwest::Client,
    cookie: String,
}

impl Web {
    fn start(dir: &Path, name: &str, config: &str) -> (Daemon, String) {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, config).expect("write elsed.toml");
        let listen = format!("127.0.0.1:{}", free_port());
        let daemon = Daemon::elsed(&file, &["serve", "--listen", &listen], dir.join(format!("{name}.log")));
        let up = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&listen).is_ok()
        });
        assert!(up, "elsed serve ({name}) did not listen:\n{}", daemon.output());
        (daemon, format!("http://{listen}"))
    }

    async fn login(daemon: Daemon, base: String) -> Web {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let cookie = login(&http, &base)
            .await
            .unwrap_or_else(|e| panic!("login: {e}\n{}", daemon.output()));
        Web {
            daemon,
            base,
            http,
            cookie,
        }
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1{path}", self.base), query).unwrap();
        let response = self
            .http
            .get(url)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}\n{}", self.daemon.output());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    /// The sender of [`QUEUE_ID`] as the quick search shows it.
    async fn sender(&self) -> String {
        let page = self.get("/messages", &[("q", QUEUE_ID)]).await;
        page["items"][0]["sender"]
            .as_str()
            .unwrap_or_else(|| panic!("{QUEUE_ID} not found: {page}"))
            .to_owned()
    }

    /// Asks `GET /database` until `done` holds for it (its last answer otherwise).
    async fn database_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let answer = self.get("/database", &[]).await;
            if done(&answer) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: /database still says {answer}\n{}",
                self.daemon.output()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Logs in as `admin`: the session cookie, or what went wrong.
async fn login(http: &reqwest::Client, base: &str) -> Result<String, String> {
    common::login(http, base, "admin", "replica test password")
        .await
        .map(|session| session.cookie)
}

/// Runs `sql` on `url`.
async fn psql(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    let task = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql} on {url}: {e:?}"));
    drop(client);
    let _ = task.await;
}

/// The single count `sql` selects on `url`.
async fn count(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    let task = tokio::spawn(connection);
    let n = client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql} on {url}: {e:?}"))
        .get(0);
    drop(client);
    let _ = task.await;
    n
}

fn run_elsed(config: &Path, args: &[&str]) {
    let output = Command::new(elsed_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("ELSE_DATABASE_URL")
        .output()
        .expect("run elsed");
    assert!(
        output.status.success(),
        "elsed {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn config(primary: &str, standby: &str, max_lag_secs: u64) -> String {
    format!("[database]\nurl = \"{primary}\"\nread_url = \"{standby}\"\nread_max_lag_secs = {max_lag_secs}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn searches_read_the_standby_logins_need_only_the_primary_and_a_lagging_standby_is_skipped() {
    let dir = tempdir();
    let primary = PgCluster::start().expect("primary cluster");
    let url = primary.create_database().await;
    let lines: Vec<String> = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail.log"))
        .expect("fixture log")
        .lines()
        .map(str::to_owned)
        .collect();
    else_tests::records::elsed_import(&url, &lines, &dir);
    let patient_config = dir.join("patient.toml");
    std::fs::write(&patient_config, config(&url, "unused", 3600)).unwrap();
    let password = dir.join("password");
    std::fs::write(&password, "replica test password\n").unwrap();
    std::fs::set_permissions(&password, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    run_elsed(
        &patient_config,
        &[
            "user",
            "add",
            "admin",
            "--role",
            "admin",
            "--password-file",
            password.to_str().unwrap(),
        ],
    );

    let standby = primary.start_standby().expect("standby cluster");
    // The last `dbname=` word wins (the admin URL's comes first).
    let dbname = url
        .split_whitespace()
        .rev()
        .find_map(|w| w.strip_prefix("dbname="))
        .unwrap();
    let standby_url = with_dbname(standby.admin_url(), dbname);
    let messages = count(&url, "SELECT count(*) FROM messages").await;
    assert!(messages > 0);
    let deadline = Instant::now() + LIMIT;
    while count(&standby_url, "SELECT count(*) FROM messages").await != messages {
        assert!(
            Instant::now() < deadline,
            "the standby never had the primary's {messages} messages"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (daemon, base) = Web::start(&dir, "patient", &config(&url, &standby_url, 3600));
    let patient = Web::login(daemon, base).await;
    let (daemon, base) = Web::start(&dir, "strict", &config(&url, &standby_url, 2));
    let strict = Web::login(daemon, base).await;
    for web in [&patient, &strict] {
        // Caught up: reads go to the standby, and it has replayed all the primary wrote (the
        // logins just wrote their sessions there, so for a moment it may be a few bytes behind).
        web.database_until("caught up", |d| {
            d["reads_from"] == "standby" && d["read_replica"]["lag_bytes"] == 0
        })
        .await;
        assert_eq!(web.sender().await, "carol@example.net");
    }

    // The standby stops replaying; the message changes on the primary only.
    psql(&standby_url, "SELECT pg_wal_replay_pause()").await;
    psql(
        &url,
        &format!("UPDATE messages SET sender = '{CHANGED}' WHERE queue_id = '{QUEUE_ID}'"),
    )
    .await;
    let changed = format!("SELECT count(*) FROM messages WHERE sender = '{CHANGED}'");
    assert_eq!(count(&url, &changed).await, 1);
    // An hour of lag is tolerated: the search shows the standby's copy, so it read the standby.
    let state = patient
        .database_until("lag measured", |d| {
            d["read_replica"]["replay_paused"] == true && d["read_replica"]["lag_bytes"].as_i64() > Some(0)
        })
        .await;
    assert_eq!(state["reads_from"], "standby", "{state}");
    assert_eq!(
        patient.sender().await,
        "carol@example.net",
        "read from the paused standby"
    );
    // Two seconds are not: past them the standby is skipped, said so, and reads see the primary.
    let state = strict
        .database_until("lagging standby skipped", |d| d["reads_from"] == "primary")
        .await;
    let replica = &state["read_replica"];
    assert!(replica["lag_seconds"].as_f64() > Some(2.0), "{state}");
    let reason = replica["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("behind the primary") && reason.contains("paused") && reason.contains("read_max_lag_secs = 2"),
        "{state}"
    );
    assert_eq!(strict.sender().await, CHANGED, "the primary's row");
    // `elsed status` says the same from the command line.
    let status = Command::new(elsed_binary())
        .arg("--config")
        .arg(dir.join("strict.toml"))
        .arg("status")
        .env_remove("ELSE_DATABASE_URL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success() && text.contains("read replica (database.read_url):") && text.contains("replay paused"),
        "{text}{}",
        String::from_utf8_lossy(&status.stderr)
    );

    // Replay resumes: the standby catches up and is used again.
    psql(&standby_url, "SELECT pg_wal_replay_resume()").await;
    strict
        .database_until("standby in use again", |d| d["reads_from"] == "standby")
        .await;
    assert_eq!(strict.sender().await, CHANGED);

    // The standby goes down: logging in (sessions are the primary's) and searching still work.
    standby.stop().expect("stop the standby");
    let again = login(&patient.http, &patient.base).await;
    assert!(
        again.is_ok(),
        "login with the standby down: {again:?}\n{}",
        patient.daemon.output()
    );
    assert_eq!(patient.sender().await, CHANGED, "read from the primary");
    let state = patient
        .database_until("standby down", |d| d["reads_from"] == "primary")
        .await;
    assert!(state["read_replica"]["reason"].as_str().is_some(), "{state}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A private directory for the configuration, logs and the fixture's copy.
fn tempdir() -> std::path::PathBuf {
    else_tests::sys::make_temp_dir(&std::env::temp_dir().join("else-replica-")).expect("a temp directory")
}
