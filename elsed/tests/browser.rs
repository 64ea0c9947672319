//! The web application in a real browser: a real `elsed serve` on a real database filled by
//! `elsed import` of real logs, driven by Playwright in Debian's Chromium (the scenarios are in
//! `web/tests/*.spec.ts`; this test prepares everything they need and runs them).
//!
//! Screenshots go to `target/screenshots` unless `ELSE_SCREENSHOTS` names a folder (to refresh
//! the committed ones: `ELSE_SCREENSHOTS=$PWD/docs/screenshots cargo test -p elsed --test browser`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use else_tests::PgCluster;

const ELSED: &str = env!("CARGO_BIN_EXE_elsed");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `elsed serve`, stopped when the test ends however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs elsed with an empty configuration file, so the machine's settings never leak in.
fn elsed(args: &[&str], config: &Path) -> String {
    let output = Command::new(ELSED)
        .env_remove("ELSE_DATABASE_URL")
        .env("ELSE_CONFIG", config)
        .args(args)
        .output()
        .expect("elsed runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "elsed {} failed: {}{}",
        args.join(" "),
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

use else_tests::free_port;

/// Polls `/healthz` until it answers 200 (or the server died, or 30 s passed).
fn wait_healthy(server: &mut Server, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("elsed serve exited early: {status}");
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "elsed serve did not become healthy on port {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Playwright comes from web/package-lock.json; `cargo build` ran `npm ci` (build/web.rs), but a
/// prebuilt ELSE_WEB_DIST may have skipped it.
fn playwright(web: &Path) -> PathBuf {
    let bin = web.join("node_modules/.bin/playwright");
    if !bin.exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(web)
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "npm ci in {} failed: the browser tests need Node.js and npm (scripts/setup-debian.sh)",
            web.display()
        );
    }
    bin
}

/// out1 gets an SNMP agent whose latest sample (now) counts 700 deferred messages: the first
/// cycle of `elsed serve`'s evaluator opens a real `queue` alert for it (threshold 500), which the
/// overview and alerts scenarios find.
async fn seed_queue_alert(url: &str) {
    let (mut db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let today = omelse::parse::Timestamp::now().unix_seconds().div_euclid(86_400);
    omelse::store::ensure_days(&mut db, &std::collections::BTreeSet::from([today]))
        .await
        .unwrap();
    db.batch_execute(
        "INSERT INTO snmp_agents (server_id, host, version, secrets)
         SELECT id, '127.0.0.1', '2c', '\\x00' FROM servers WHERE name = 'out1';
         INSERT INTO snmp_samples (ts, server_id, reachable, active_count, deferred_count, hold_count,
                                   master_alive, load1, spool_used_pct, state, reasons)
         SELECT now(), id, true, 12, 700, 3, true, 0.5, 12, 'warning', '{\"700 deferred (warning at 100)\"}'
         FROM servers WHERE name = 'out1'",
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scenarios() {
    let chromium = std::env::var("ELSE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: the browser tests drive Debian's chromium (scripts/setup-debian.sh installs it)"
    );
    let web = workspace().join("web");
    let playwright = playwright(&web);

    let scratch = std::env::temp_dir().join(format!("elsed-browser-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // Nothing of the machine's settings; the SNMP sample seeded below stays fresh for the whole run
    // (no poller runs here: without this, its age would open an "agent" alert after 10 minutes).
    let config = scratch.join("elsed.toml");
    std::fs::write(&config, "[alerts.queues]\nagent_silent_minutes = 1440\n").unwrap();
    let url = PgCluster::shared().create_database().await;

    // The project's fixture (mx1 and out1), read in UTC, in 2024; and the real MX log when present.
    let fixture = workspace().join("tests/fixtures/mail.log");
    let fixture = fixture.to_str().unwrap();
    elsed(
        &[
            "import",
            "--force",
            "--database-url",
            &url,
            "--timezone",
            "UTC",
            "--year-reference",
            "2024-06-01T00:00:00Z",
            fixture,
        ],
        &config,
    );
    let corpus = else_tests::corpora::dir_or_skip().map(|dir| dir.join("postfix-logsums/mail.log.gz"));
    if let Some(log) = &corpus {
        elsed(
            &["import", "--force", "--database-url", &url, log.to_str().unwrap()],
            &config,
        );
    } else {
        println!("the dashboard scenario uses the fixture only");
    }

    seed_queue_alert(&url).await;

    // The administrator, from the command line as on a new installation; the scenarios create
    // the other users and the group through the admin screens.
    let password = format!("admin-{}-{}", std::process::id(), free_port());
    let password_file = scratch.join("admin.password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    // A secret file: its owner's alone.
    let secret = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&password_file, secret).unwrap();
    elsed(
        &[
            "user",
            "add",
            "--database-url",
            &url,
            "--role",
            "admin",
            "--password-file",
            password_file.to_str().unwrap(),
            "admin",
        ],
        &config,
    );

    let report = |since: &str, until: &str| {
        elsed(
            &[
                "report",
                "--database-url",
                &url,
                "--timezone",
                "UTC",
                "--since",
                since,
                "--until",
                until,
                "--format",
                "json",
            ],
            &config,
        )
    };
    let report_fixture = report("2024-03-14T00:00:00Z", "2024-03-15T00:00:00Z");
    let report_corpus = corpus
        .as_ref()
        .map(|_| report("2023-03-13T00:00:00Z", "2023-03-17T00:00:00Z"));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(ELSED)
        .env_remove("ELSE_DATABASE_URL")
        .env("ELSE_CONFIG", &config)
        // A read replica that is none (the primary itself): reads stay on the primary, and the
        // Servers page says why the replica is skipped.
        .env("ELSE_DATABASE__READ_URL", &url)
        .args(["serve", "--database-url", &url, "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("elsed serve starts");
    let mut server = Server(child);
    wait_healthy(&mut server, port);

    let screenshots = std::env::var("ELSE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/screenshots"));
    let report_corpus = report_corpus.unwrap_or_default();
    let playwright_test = |filter: [&str; 2]| {
        Command::new(&playwright)
            .arg("test")
            .args(filter)
            .current_dir(&web)
            .env("ELSE_BASE_URL", format!("http://{listen}"))
            .env("ELSE_CHROMIUM", &chromium)
            .env("ELSE_ADMIN_LOGIN", "admin")
            .env("ELSE_ADMIN_PASSWORD", &password)
            .env("ELSE_SCREENSHOTS", &screenshots)
            .env("ELSE_TEST_OUTPUT", scratch.join("playwright"))
            .env("ELSE_CORPUS", if corpus.is_some() { "1" } else { "0" })
            .env("ELSE_REPORT_FIXTURE", &report_fixture)
            .env("ELSE_REPORT_CORPUS", &report_corpus)
            .env("CI", "1")
            .status()
            .expect("playwright runs")
    };
    // Every scenario but those tagged @locked, which need a partition of `messages` locked.
    let status = playwright_test(["--grep-invert", "@locked"]);
    assert!(
        status.success(),
        "browser scenarios failed (Playwright's report is above)"
    );
    // A search made slow for real: a partition of `messages` locked by another session, so a
    // search planned over every partition waits until `search_time_limit_ms` and answers
    // `cut_short`; the @locked scenarios check what the screen says then.
    let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    db.batch_execute(
        "BEGIN;
         DO $$ BEGIN EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE',
             (SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'messages'::regclass LIMIT 1)); END $$;",
    )
    .await
    .unwrap();
    let status = playwright_test(["--grep", "@locked"]);
    db.batch_execute("ROLLBACK").await.unwrap();
    drop(server);
    assert!(
        status.success(),
        "the scenarios with a locked partition failed (Playwright's report is above)"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
