//! What an operator relies on, with the real binary: `elsed check-config` names the key, the
//! problem and the variable; `elsed setup` creates the role, the database and the schema owned by
//! that role, and does nothing twice; the long-running services stop cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use else_tests::rsyslogd::free_port;
use else_tests::PgCluster;

const ELSED: &str = env!("CARGO_BIN_EXE_elsed");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elsed-ops-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A password file as elsed accepts one: the caller's own, mode 0600.
fn write_secret(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// elsed with `args`, the configuration file `config` and only the `ELSE_*` variables given.
fn elsed_command(config: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let file = scratch("config").join(format!("{:x}.toml", fxhash(config)));
    std::fs::write(&file, config).unwrap();
    let mut command = Command::new(ELSED);
    for (key, _) in std::env::vars() {
        if key.starts_with("ELSE_") {
            command.env_remove(key);
        }
    }
    command.env("ELSE_CONFIG", &file).envs(env.iter().copied()).args(args);
    command
}

fn elsed(config: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    elsed_command(config, args, env).output().expect("elsed runs")
}

/// A file name per configuration text (tests run in parallel).
fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_says_ok_and_where_the_settings_came_from() {
    let output = elsed(
        "[retention]\ndays = 30\n[database]\nurl = \"postgresql://else:secret@db/else\"\n",
        &["check-config"],
        &[("ELSE_GREYLIST__DELAY_SECS", "60")],
    );
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}{}", stdout, text(&output.stderr));
    assert!(stdout.contains(": OK"), "{stdout}");
    assert!(
        stdout.contains("greylist.delay_secs: set by the environment variable ELSE_GREYLIST__DELAY_SECS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("postgresql://else:***@db/else") && !stdout.contains("secret"),
        "{stdout}"
    );
}

#[test]
fn check_config_fails_naming_the_key_the_problem_and_the_variable() {
    // (configuration file, environment, words the message must hold)
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
    );
    let cases: [Case; 5] = [
        (
            "[retention]\ndays = 0\n",
            &[],
            &["retention.days", "must be at least 1"],
        ),
        (
            "[greylist]\ndealy_secs = 5\n",
            &[],
            &["greylist.dealy_secs", "unknown key", "delay_secs"],
        ),
        (
            "[ndr]\nallowed_clients = [\"10.0.0.0/99\"]\n",
            &[],
            &["ndr.allowed_clients", "bad prefix"],
        ),
        (
            "",
            &[("ELSE_RETENTION__DAYS", "soon")],
            &["retention.days", "invalid type", "ELSE_RETENTION__DAYS"],
        ),
        ("[database\n", &[], &["not valid TOML (line 1)"]),
    ];
    for (config, env, words) in cases {
        let output = elsed(config, &["check-config"], env);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{config:?} {env:?}: {stderr}");
        for word in words {
            assert!(stderr.contains(word), "{word:?} missing: {stderr}");
        }
    }
    // A file given explicitly must exist.
    let output = Command::new(ELSED)
        .args(["--config", "/nonexistent/elsed.toml", "check-config"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("/nonexistent/elsed.toml: cannot be read"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_the_role_the_database_and_the_schema_once() {
    let cluster = PgCluster::shared();
    let name = format!("else_setup_{}", std::process::id());
    let password_file = scratch("setup").join("password");
    write_secret(&password_file, "s3cret\n");
    let setup = |extra: &[&str]| {
        let mut args = vec![
            "--database-url",
            cluster.admin_url(),
            "setup",
            "--owner-role",
            &name,
            "--database",
            &name,
        ];
        args.extend_from_slice(extra);
        elsed("", &args, &[])
    };
    let admin_file = scratch("setup").join("admin-password");
    write_secret(&admin_file, "correct horse battery\n");
    let first = setup(&[
        "--owner-password-file",
        password_file.to_str().unwrap(),
        "--admin-user",
        "chief",
        "--admin-password-file",
        admin_file.to_str().unwrap(),
    ]);
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{stdout}{}", text(&first.stderr));
    for line in [
        format!("role {name}: created"),
        format!("role {name}: password set"),
        format!("database {name}: created, owned by {name}"),
        "admin account chief: created".to_owned(),
    ] {
        assert!(stdout.contains(&line), "{line:?} missing: {stdout}");
    }

    // The role owns every table, and its password is stored as a SCRAM verifier.
    let admin = connect(cluster.admin_url()).await;
    let verifier: String = admin
        .query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&name])
        .await
        .unwrap()
        .get(0);
    assert!(verifier.starts_with("SCRAM-SHA-256$"), "{verifier}");
    let as_owner = connect(&format!("{} user={name} dbname={name}", cluster.admin_url())).await;
    let row = as_owner
        .query_one(
            "SELECT (SELECT max(version) FROM schema_migrations),
                    count(*) FILTER (WHERE tableowner <> current_user),
                    count(*)
             FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap();
    let (version, foreign, tables): (i32, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(version, omelse::store::LATEST_SCHEMA_VERSION);
    assert!(tables > 5, "{tables} tables");
    assert_eq!(foreign, 0, "tables not owned by {name}");
    let row = as_owner
        .query_one(
            "SELECT role, password_hash, (SELECT count(*) FROM audit_log WHERE action = 'user.create')
             FROM users WHERE login = 'chief'",
            &[],
        )
        .await
        .unwrap();
    let (role, hash, audited): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(role, "admin");
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains("correct horse"),
        "{hash}"
    );
    assert_eq!(audited, 1, "the account's creation is audited");

    // Again: nothing to do, and said so.
    let again = setup(&[
        "--admin-user",
        "chief",
        "--admin-password-file",
        admin_file.to_str().unwrap(),
    ]);
    let stdout = text(&again.stdout);
    assert!(again.status.success(), "{stdout}{}", text(&again.stderr));
    assert!(stdout.contains(&format!("role {name}: exists")), "{stdout}");
    assert!(stdout.contains(&format!("database {name}: exists")), "{stdout}");
    assert!(stdout.contains("schema: up to date"), "{stdout}");
    assert!(stdout.contains("admin account chief: exists"), "{stdout}");
    // A password the account rules refuse is refused by setup too, with the field named.
    write_secret(&admin_file, "short\n");
    let output = setup(&[
        "--admin-user",
        "second",
        "--admin-password-file",
        admin_file.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("admin account second: password"),
        "{}",
        text(&output.stderr)
    );

    // Without the privileges, or with a name that is not an identifier: a clear refusal.
    let owner_url = format!("{} user={name}", cluster.admin_url());
    let output = elsed("", &["--database-url", &owner_url, "setup", "--database", "other"], &[]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("may not create roles and databases"),
        "{}",
        text(&output.stderr)
    );
    let output = elsed(
        "",
        &[
            "--database-url",
            cluster.admin_url(),
            "setup",
            "--owner-role",
            "x; DROP",
        ],
        &[],
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--owner-role \"x; DROP\""),
        "{}",
        text(&output.stderr)
    );
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Starts a service, waits until it accepts on `port`, sends SIGTERM and expects a clean exit.
fn stops_cleanly_on_sigterm(mut command: Command, port: u16, what: &str) {
    let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        assert!(child.try_wait().unwrap().is_none(), "{what} exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stderr: Vec<String> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{what} after SIGTERM: {status}; {stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|l| l.contains(&format!("{what}: SIGTERM received, stopping"))),
        "{stderr:?}"
    );
    // Not a terminal: no colour codes in what journald stores.
    assert!(stderr.iter().all(|l| !l.contains('\u{1b}')), "{stderr:?}");
}

#[test]
fn greylist_and_ndr_stop_cleanly_on_sigterm() {
    // A database that is not there: both services listen anyway (they fail open / defer).
    let nowhere = "host=127.0.0.1 port=1 dbname=else user=else connect_timeout=1";
    let port = free_port();
    let listen = format!("[\"inet:127.0.0.1:{port}\"]");
    let greylist = elsed_command(
        "",
        &["greylist"],
        &[("ELSE_DATABASE_URL", nowhere), ("ELSE_GREYLIST__LISTEN", &listen)],
    );
    stops_cleanly_on_sigterm(greylist, port, "greylist");

    let port = free_port();
    let ndr = elsed_command(
        "",
        &["ndr", "--listen", &format!("127.0.0.1:{port}")],
        &[("ELSE_DATABASE_URL", nowhere)],
    );
    stops_cleanly_on_sigterm(ndr, port, "ndr");
}
