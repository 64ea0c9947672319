//! The `elsed` binary as users run it: help, `parse`, the configuration's precedence and errors,
//! and `import` then `search` against a real PostgreSQL (a private cluster from `else-tests`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use else_tests::PgCluster;
use serde_json::Value;

const ELSED: &str = env!("CARGO_BIN_EXE_elsed");

/// The fixture log of the repository (authored for ELSE, two servers: mx1 and out1).
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log")
}

/// A private directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elsed-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs elsed with `args` and `stdin`, isolated from the machine's settings: no `ELSE_*`
/// variables and, unless the test gives one, an empty configuration file instead of /etc's.
fn elsed(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let empty = scratch("empty").join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let mut command = Command::new(ELSED);
    command
        .env_remove("ELSE_DATABASE_URL")
        .env_remove("ELSE_CONFIG")
        .env("ELSE_CONFIG", &empty)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("elsed runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json_lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "elsed failed: {}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn help_names_every_subcommand_and_the_database_option() {
    let output = elsed(&["--help"], b"", &[]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for word in ["migrate", "import", "parse", "search", "--database-url", "--config"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let output = elsed(&["import", "--help"], b"", &[]);
    let help = text(&output.stdout);
    for word in ["--host", "--timezone", "--json", "FILE"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    let output = elsed(&["import"], b"", &[]);
    assert!(!output.status.success(), "import without a file is a usage error");
}

#[test]
fn parse_prints_one_json_object_per_line() {
    let input = b"Mar 14 10:00:08 mx1 postfix/qmgr[815]: 3A1F42C0D1: from=<carol@example.net>, size=4711, nrcpt=2 (queue active)\n\
        2024-03-14T10:00:11.250000+01:00 mx1 postfix-in/lmtp[1220]: 7B2E19A4F3: to=<bob@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=0.21, delays=0.05/0.01/0.02/0.13, dsn=2.0.0, status=sent (250 2.0.0 <bob@example.com> Saved)\n\
        garbage \xff\xfe without envelope\n";
    let output = elsed(
        &[
            "parse",
            "--timezone",
            "Europe/Paris",
            "--year-reference",
            "2024-12-31T00:00:00Z",
        ],
        input,
        &[],
    );
    let values = json_lines(&output);
    assert_eq!(values.len(), 3);
    // Paris is UTC+1 in March: the local 10:00:08 is 09:00:08 UTC, in the year of the reference.
    assert_eq!(values[0]["time"], "2024-03-14T09:00:08.000000Z");
    assert_eq!(values[0]["host"], "mx1");
    assert_eq!(values[0]["program"], "postfix/qmgr");
    assert_eq!(
        (values[0]["instance"].as_str(), values[0]["daemon"].as_str()),
        (Some("postfix"), Some("qmgr"))
    );
    assert_eq!(values[0]["pid"], 815);
    assert_eq!(values[0]["queue_id"], "3A1F42C0D1");
    assert_eq!(values[0]["kind"], "queued");
    assert_eq!(
        (&values[0]["from"], &values[0]["size"], &values[0]["nrcpt"]),
        (&"carol@example.net".into(), &4711.into(), &2.into())
    );
    assert_eq!(values[1]["time"], "2024-03-14T09:00:11.250000Z");
    assert_eq!(values[1]["instance"], "postfix-in");
    assert_eq!(values[1]["kind"], "delivery");
    assert_eq!(values[1]["status"], "sent");
    assert_eq!(values[1]["to"], "bob@example.com");
    assert_eq!(values[2]["kind"], "unparsed");
    assert_eq!(values[2]["raw"], "garbage \u{fffd}\u{fffd} without envelope");
}

#[test]
fn parse_reads_the_whole_fixture() {
    let log = std::fs::read(fixture()).unwrap();
    let lines = log.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    let values = json_lines(&elsed(&["parse", "--timezone", "UTC"], &log, &[]));
    assert_eq!(values.len(), lines, "one object per line");
    let kinds = |kind: &str| values.iter().filter(|v| v["kind"] == kind).count();
    assert_eq!(kinds("unparsed"), 1);
    assert_eq!(kinds("delivery"), 12);
    assert_eq!(kinds("notification"), 1);
    assert_eq!(kinds("unknown"), 0, "every line of the fixture is understood");
}

#[test]
fn a_bad_configuration_stops_with_the_key_and_the_problem() {
    let dir = scratch("badconfig");
    for (content, key, problem) in [
        ("[retention]\ndays = -3\n", "retention.days", "invalid value"),
        ("[import]\nbatch_size = 10\n", "import.batch_size", "unknown key"),
        ("timezone = \"Nowhere/Special\"\n", "timezone", "not a known time zone"),
    ] {
        let path = dir.join("elsed.toml");
        std::fs::write(&path, content).unwrap();
        let output = elsed(&["--config", path.to_str().unwrap(), "parse"], b"", &[]);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{content} was accepted");
        assert!(stderr.contains(key) && stderr.contains(problem), "{content}: {stderr}");
    }
    let output = elsed(&["--config", "/nonexistent/elsed.toml", "parse"], b"", &[]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("/nonexistent/elsed.toml"));
}

/// Flag over environment over file: each unreachable database names itself in the error.
#[test]
fn the_database_url_comes_from_flag_then_environment_then_file() {
    let dir = scratch("precedence");
    let config = dir.join("elsed.toml");
    std::fs::write(
        &config,
        "[database]\nurl = \"host=127.0.0.1 port=1 dbname=from_file connect_timeout=2\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [(
        "ELSE_DATABASE_URL",
        "host=127.0.0.1 port=1 dbname=from_env connect_timeout=2",
    )];
    let flag = "host=127.0.0.1 port=1 dbname=from_flag connect_timeout=2";
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &["--config", config, "migrate", "--database-url", flag],
            &env,
            "from_flag",
        ),
        (&["--config", config, "migrate"], &env, "from_env"),
        (&["--config", config, "migrate"], &[], "from_file"),
        (&["migrate"], &[], "no database given"),
    ];
    for (args, env, expected) in cases {
        let output = elsed(args, b"", env);
        let stderr = text(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}

fn run_with_database(url: &str, args: &[&str]) -> Output {
    let mut all = vec!["--database-url", url];
    all.extend_from_slice(args);
    elsed(&all, b"", &[])
}

fn import_fixture(url: &str) -> Value {
    let fixture = fixture();
    let output = run_with_database(
        url,
        &[
            "import",
            "--force",
            "--json",
            "--timezone",
            "UTC",
            "--year-reference",
            "2024-12-31T00:00:00Z",
            fixture.to_str().unwrap(),
        ],
    );
    let mut values = json_lines(&output);
    assert_eq!(values.len(), 1, "one summary object");
    values.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_repeatable_and_search_finds_messages_with_their_journey() {
    let url = PgCluster::shared().create_database().await;
    let first = import_fixture(&url);
    assert_eq!(first["lines"], 62);
    assert_eq!(first["files"][0]["lines"], 62);
    assert_eq!(first["unparsed_lines"], 1);
    assert_eq!(first["unknown_lines"], 0);
    assert_eq!(first["events_by_kind"]["delivery"], 12);
    assert_eq!(first["written"]["events"], 62, "every line is stored: {first}");
    assert_eq!(first["messages"], 7, "seven queue ids: {first}");
    assert!(first["lines_per_second"].as_f64().unwrap() > 0.0);
    // The summary says what part of the time the dashboards' rollups took (done at the end).
    let rollups = first["rollups_seconds"].as_f64().expect("rollups_seconds");
    assert!(
        rollups > 0.0 && rollups < first["duration_seconds"].as_f64().unwrap(),
        "{first}"
    );

    let second = import_fixture(&url);
    assert_eq!(second["lines"], 62);
    for (table, count) in second["written"].as_object().unwrap() {
        assert_eq!(count, 0, "a second import of the same file wrote {table}: {second}");
    }

    // The bounced message: its recipient, and the notification it caused.
    let found = json_lines(&run_with_database(
        &url,
        &["search", "--json", "--queue-id", "4ZdQ9m3Tf5zK2L"],
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    let bounced = &found[0];
    assert_eq!(bounced["host"], "out1");
    assert_eq!(bounced["sender"], "alice@example.com");
    assert_eq!(bounced["message_id"], "20240314102000.4ZdQ9m3Tf5zK2L@out1.example.com");
    assert_eq!(bounced["first_seen"], "2024-03-14T10:20:00.000000Z");
    let recipient = &bounced["recipients"][0];
    assert_eq!(
        (&recipient["address"], &recipient["status"], &recipient["dsn"]),
        (&"gone@example.org".into(), &"bounced".into(), &"5.1.1".into())
    );
    assert!(recipient["status_text"].as_str().unwrap().contains("User unknown"));
    assert!(
        bounced["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "notification" && l["queue_id"] == "4ZdQ9n4Vg6zM3Q"),
        "{bounced}"
    );

    // Recipients match in any case; the bounce went to alice through out1, then mx1.
    let to_bob = json_lines(&run_with_database(
        &url,
        &["search", "--json", "--recipient", "BOB@Example.COM"],
    ));
    let ids: Vec<&str> = to_bob.iter().map(|m| m["queue_id"].as_str().unwrap()).collect();
    for id in ["3A1F42C0D1", "7B2E19A4F3", "4ZdQ7k1Rc2z9Hw", "9C0A1B2D3E"] {
        assert!(ids.contains(&id), "{id} not among {ids:?}");
    }
    let by_sender = json_lines(&run_with_database(
        &url,
        &["search", "--json", "--sender", "<>", "--host", "MX1"],
    ));
    assert_eq!(by_sender.len(), 1, "{by_sender:?}");
    assert_eq!(by_sender[0]["queue_id"], "A1B2C3D4E5");

    // Message-ID with angle brackets, and a time window that excludes everything.
    let by_id = json_lines(&run_with_database(
        &url,
        &[
            "search",
            "--json",
            "--message-id",
            "<5f1c2a9e-77b3-4e0a-9d41-0c6b8e2f1a33@example.com>",
        ],
    ));
    let hosts: Vec<&str> = by_id.iter().map(|m| m["host"].as_str().unwrap()).collect();
    assert_eq!(by_id.len(), 2, "both hops of the mail alice sent: {hosts:?}");
    let none = json_lines(&run_with_database(
        &url,
        &["search", "--json", "--until", "2024-03-14T09:00:00Z"],
    ));
    assert!(none.is_empty());

    // The table for people says the same.
    let table = run_with_database(&url, &["search", "--host", "out1", "--status", "bounced"]);
    let table = text(&table.stdout);
    assert!(
        table.contains("4ZdQ9m3Tf5zK2L") && table.contains("1 message(s)"),
        "{table}"
    );

    // Mail refused at RCPT (NOQUEUE) is found like a message, with the reply Postfix gave: the
    // README's commands, as written.
    let [table, json] = documented_commands("search-refused")
        .try_into()
        .expect("the README's search-refused block has two commands");
    let table = text(&run_with_database(&url, &table).stdout);
    assert!(
        table.contains("NOQUEUE")
            && table.contains("rejected")
            && table.contains("promo@spam.example.org -> nobody@example.com (550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown")
            && table.contains("client unknown[203.0.113.77]")
            && table.contains("0 message(s), 1 refused"),
        "{table}"
    );
    let refused = json_lines(&run_with_database(&url, &json));
    assert_eq!(refused.len(), 1, "{refused:?}");
    let refusal = &refused[0];
    assert_eq!(
        (
            &refusal["kind"],
            &refusal["queue_id"],
            &refusal["state"],
            &refusal["host"]
        ),
        (&"refused".into(), &"NOQUEUE".into(), &"rejected".into(), &"mx1".into())
    );
    assert_eq!(
        (
            &refusal["refusal"]["code"],
            &refusal["refusal"]["enhanced"],
            &refusal["refusal"]["stage"]
        ),
        (&550.into(), &"5.1.1".into(), &"RCPT".into())
    );
    assert!(
        refusal["refusal"]["reason"].as_str().unwrap().contains("User unknown"),
        "{refusal}"
    );
    assert_eq!(refusal["client_ip"], "203.0.113.77");
    assert_eq!(refusal["first_seen"], "2024-03-14T10:02:31.000000Z");
    assert_eq!(refusal["recipients"][0]["address"], "nobody@example.com");
    assert_eq!(refusal["recipients"][0]["status"], "rejected");
}

/// The `elsed` commands of the README's block marked `<!-- test: NAME -->`, as argument lists
/// without the leading `elsed` (the block's words have no quotes to interpret).
fn documented_commands(name: &str) -> Vec<Vec<&'static str>> {
    let readme: &'static str = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .unwrap()
        .leak();
    let marker = format!("<!-- test: {name} -->");
    let block = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        .1;
    let block = block.split_once("```sh\n").unwrap().1.split_once("```").unwrap().0;
    block
        .lines()
        .filter_map(|line| line.strip_prefix("elsed "))
        .map(|args| {
            assert!(!args.contains(['\'', '"']), "quotes in a tested README command: {args}");
            args.split_whitespace().collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_the_schema_once_and_search_needs_it() {
    let url = PgCluster::shared().create_database().await;
    let before = run_with_database(&url, &["search", "--json"]);
    assert!(!before.status.success());
    assert!(
        text(&before.stderr).contains("elsed migrate"),
        "{}",
        text(&before.stderr)
    );
    let first = run_with_database(&url, &["migrate"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("applied migration"));
    let again = run_with_database(&url, &["migrate"]);
    assert!(text(&again.stdout).contains("up to date"), "{}", text(&again.stdout));
    let empty = run_with_database(&url, &["search", "--json"]);
    assert!(json_lines(&empty).is_empty());
}

/// The real 3-day MX log of the corpora: every line stored, and a second import adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_log_imports_once_whatever_the_number_of_imports() {
    let Some(corpora) = else_tests::corpora::dir_or_skip() else {
        return;
    };
    let log = corpora.join("postfix-logsums/mail.log.gz");
    let url = PgCluster::shared().create_database().await;
    let import = || {
        let output = run_with_database(&url, &["import", "--force", "--json", log.to_str().unwrap()]);
        json_lines(&output).remove(0)
    };
    let first = import();
    assert_eq!(first["lines"], 69_861);
    assert_eq!(first["written"]["events"], 69_861, "{first}");
    let messages = first["messages"].as_u64().unwrap();
    assert!(messages > 0, "{first}");
    assert_eq!(first["written"]["messages"], messages, "one row per message: {first}");
    assert_eq!(first["unknown_lines"], 0, "{first}");
    let second = import();
    for (table, count) in second["written"].as_object().unwrap() {
        assert_eq!(count, 0, "the second import wrote {table}: {second}");
    }
}

/// Roles and addresses reach the correlator, from the configuration or as an administrator set
/// them in the database: mail from out1 to mx1 is internal only when ELSE knows 192.0.2.11 is
/// out1, one of its own servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_roles_from_the_configuration_or_the_database_settle_flows() {
    let config = scratch("roles").join("elsed.toml");
    std::fs::write(
        &config,
        "[[servers]]\nname = \"mx1\"\nrole = \"incoming\"\naddresses = [\"192.0.2.10\"]\n\
         [[servers]]\nname = \"out1\"\nrole = \"outgoing\"\naddresses = [\"192.0.2.11\"]\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let fixture = fixture();
    let mut flows = Vec::new();
    for source in ["nowhere", "configuration", "database"] {
        let url = PgCluster::shared().create_database().await;
        let mut args = vec!["--database-url", url.as_str()];
        match source {
            "configuration" => args.extend(["--config", config]),
            "database" => {
                let mut migrate = args.clone();
                migrate.push("migrate");
                assert!(elsed(&migrate, b"", &[]).status.success());
                else_tests::register_fixture_servers(&url).await;
            }
            _ => {}
        }
        let mut import = args.clone();
        import.extend([
            "import",
            "--force",
            "--timezone",
            "UTC",
            "--year-reference",
            "2024-12-31T00:00:00Z",
            fixture.to_str().unwrap(),
        ]);
        assert!(elsed(&import, b"", &[]).status.success());
        let mut search = args.clone();
        search.extend(["search", "--json", "--queue-id", "9C0A1B2D3E"]);
        let found = json_lines(&elsed(&search, b"", &[]));
        flows.push(found[0]["flow"].clone());
    }
    assert_eq!(flows, ["inbound", "internal", "internal"]);
}

/// A log rotated in the middle of a message's life (deferred in `mail.log.1`, delivered in
/// `mail.log`): given in any order in one import, or imported one file after the other, the
/// message ends as it does when the log is imported whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_logs_continue_the_messages_they_share() {
    let log = std::fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let dir = scratch("rotated");
    let (older, newer) = (dir.join("mail.log.1.gz"), dir.join("mail.log"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all((lines[..40].join("\n") + "\n").as_bytes()).unwrap();
    std::fs::write(&older, gz.finish().unwrap()).unwrap();
    std::fs::write(&newer, lines[40..].join("\n") + "\n").unwrap();
    let (older, newer, whole) = (older.to_str().unwrap(), newer.to_str().unwrap(), fixture());
    let common = [
        "import",
        "--force",
        "--timezone",
        "UTC",
        "--year-reference",
        "2024-12-31T00:00:00Z",
    ];

    let mut results = Vec::new();
    let runs: [&[&[&str]]; 3] = [&[&[whole.to_str().unwrap()]], &[&[newer, older]], &[&[older], &[newer]]];
    for imports in runs {
        let url = PgCluster::shared().create_database().await;
        for files in imports {
            let mut args = common.to_vec();
            args.extend_from_slice(files);
            let output = run_with_database(&url, &args);
            assert!(output.status.success(), "{}", text(&output.stderr));
        }
        let found = json_lines(&run_with_database(
            &url,
            &["search", "--json", "--queue-id", "4ZdQ7k1Rc2z9Hw"],
        ));
        assert_eq!(found.len(), 1, "one life of the queue id: {found:?}");
        results.push(found.into_iter().next().unwrap());
    }
    let frank = results[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "frank@example.org");
    assert_eq!(frank.unwrap()["status"], "sent", "{}", results[0]);
    assert_eq!(results[1], results[0], "one import of both files, newest given first");
    assert_eq!(
        results[2], results[0],
        "two imports, the open message restored from the database"
    );
}

/// Lines older than `retention.days` are refused unless `--force`, which imports them and says how
/// many the next `elsed maintain` drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_or_with_force_warns_of_the_lines_the_next_maintain_would_drop() {
    let url = PgCluster::shared().create_database().await;
    let dir = scratch("retention");
    let config = dir.join("elsed.toml");
    std::fs::write(&config, "[retention]\ndays = 30\n").unwrap();
    let env = [("ELSE_CONFIG", config.to_str().unwrap())];
    let now = jiff::Timestamp::now();
    let line = |at: jiff::Timestamp, text: &str| format!("{} somebox postfix/qmgr[11]: {text}\n", at);
    // Two lines of 40 days ago, one of an hour ago.
    let old = now - jiff::SignedDuration::from_hours(40 * 24);
    let lines = line(
        old,
        "5E6F7A8B9C: from=<zoe@example.com>, size=900, nrcpt=1 (queue active)",
    ) + &line(old, "5E6F7A8B9C: removed")
        + &line(now - jiff::SignedDuration::from_hours(1), "6A7B8C9D0E: removed");
    // Without --force: refused before anything is written, saying why and what to do.
    let output = elsed(&["--database-url", &url, "import", "-"], lines.as_bytes(), &env);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("import refused: 2 line(s) from ")
            && stderr.contains("are older than retention.days (30 days")
            && stderr.contains("nothing was written")
            && stderr.contains("pass --force"),
        "{stderr}"
    );
    let client = omelse::store::connect(&url).await.unwrap();
    let stored: i64 = client
        .query_one("SELECT count(*) FROM log_events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0, "nothing written");

    // With --force: imported, with the warning and the count.
    let output = elsed(
        &["--database-url", &url, "import", "--json", "--force", "-"],
        lines.as_bytes(),
        &env,
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("warning: 2 line(s) are older than retention.days (30 days")
            && stderr.contains("the next `elsed maintain` drops them"),
        "{stderr}"
    );
    let summary = json_lines(&output).remove(0);
    assert_eq!(summary["retention"]["older_lines"], 2);
    assert_eq!(summary["retention"]["days"], 30);

    // Recent lines only: no warning.
    let recent = line(now - jiff::SignedDuration::from_hours(2), "7B8C9D0E1F: removed");
    let output = elsed(&["--database-url", &url, "import", "-"], recent.as_bytes(), &env);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!text(&output.stderr).contains("retention"), "{}", text(&output.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_input_imports_under_the_given_host() {
    let url = PgCluster::shared().create_database().await;
    let lines = b"2024-05-02T08:00:00Z somebox postfix/qmgr[11]: 5E6F7A8B9C: from=<Zoe@Example.com>, size=900, nrcpt=1 (queue active)\n\
        2024-05-02T08:00:01Z somebox postfix/qmgr[11]: 5E6F7A8B9C: removed\n";
    let output = elsed(
        &[
            "--database-url",
            &url,
            "import",
            "--force",
            "--json",
            "--host",
            "relay9",
            "-",
        ],
        lines,
        &[],
    );
    let summary = json_lines(&output).remove(0);
    assert_eq!(summary["files"][0]["name"], "-");
    assert_eq!(summary["lines"], 2);
    let found = json_lines(&run_with_database(
        &url,
        &["search", "--json", "--sender", "zoe@example.COM"],
    ));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (&found[0]["host"], &found[0]["queue_id"]),
        (&"relay9".into(), &"5E6F7A8B9C".into())
    );
    assert!(json_lines(&run_with_database(&url, &["search", "--json", "--host", "somebox"])).is_empty());
}

/// `elsed maintain` drops the partitions older than `retention.days` and keeps the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintain_drops_only_partitions_older_than_the_retention() {
    let url = PgCluster::shared().create_database().await;
    let now = jiff::Timestamp::now();
    let old = (now - jiff::SignedDuration::from_hours(24 * 60)).strftime("%Y-%m-%dT%H:%M:%S+00:00");
    let recent = now.strftime("%Y-%m-%dT%H:%M:%S+00:00");
    let log = format!(
        "{old} mx1 postfix/smtpd[1]: connect from a[192.0.2.1]\n{recent} mx1 postfix/smtpd[2]: connect from b[192.0.2.2]\n"
    );
    let import = elsed(
        &["import", "--force", "--database-url", &url, "--host", "mx1", "-"],
        log.as_bytes(),
        &[],
    );
    assert!(import.status.success(), "{}", text(&import.stderr));
    let config = scratch("maintain").join("elsed.toml");
    std::fs::write(&config, "[retention]\ndays = 30\n").unwrap();
    let config = config.display().to_string();
    let maintain = elsed(&["maintain", "--database-url", &url, "--config", &config], b"", &[]);
    assert!(maintain.status.success(), "{}", text(&maintain.stderr));
    let client = omelse::store::connect(&url).await.unwrap();
    let rows: Vec<String> = client
        .query("SELECT raw FROM log_events ORDER BY ts", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        vec!["connect from b[192.0.2.2]".to_string()],
        "{}",
        text(&maintain.stderr)
    );
}
