//! omelse.so inside a real rsyslogd, writing to a real PostgreSQL: the same records as an import,
//! nothing lost or doubled through a database crash or an rsyslogd restart, RELP forwarding with
//! the shipped stanzas, bad lines, and a panic that stays inside the module.

#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use else_tests::dense::{Fixture, Replication, Stream};
use else_tests::records::{differences, elsed_import, message_records, stored_lines, tables};
use else_tests::rsyslogd::{
    check_config, free_port, host_inputs, omelse_module, relp_certificates, rsyslogd_binary, send_tcp, shipped_stanza,
    wait_until, wait_until_received, Rsyslogd, STATS,
};
use else_tests::shipped::{else_server_over_tcp, QueueParams};
use else_tests::topology::IMRELP;
use else_tests::{block_on, count, PgCluster};

/// 100,000 lines: the real 3-day MX log, then its beginning again as a second host.
/// `count` real lines (the corpus, then again as a second host), or `None` without the corpora.
fn real_lines(count: usize) -> Option<Vec<String>> {
    let text = else_tests::corpora::read_text(&else_tests::corpora::dir_or_skip()?.join("postfix-logsums/mail.log.gz"));
    let first: Vec<&str> = text.lines().collect();
    let mut lines: Vec<String> = first.iter().map(|l| l.to_string()).collect();
    let mut again = first.iter().map(|l| l.replacen(" helga ", " helga-b ", 1));
    while lines.len() < count {
        lines.push(again.next().expect("the corpus gives the lines asked for, twice over"));
    }
    lines.truncate(count);
    Some(lines)
}

/// Syslog over TCP needs a priority: mail.info.
fn as_syslog(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| format!("<22>{l}")).collect()
}

/// The action these tests use: the shipped action's queue (on disk, its batches and worker,
/// read from rsyslog-conf/else-server.conf) and, as shipped, a `spool.file` (in the test's
/// directory; `extra` may give its own, or `spool.file=""` for none), retried every second
/// instead of every 5 (the tests that stop PostgreSQL then wait less for the reconnection, and
/// what they check is the same). Their plain TCP input stands for a relay (lines of any server,
/// from the corpora), so the lines of that unbound input are accepted.
fn omelse_action(conninfo: &str, extra: &str) -> String {
    let spool = if extra.contains("spool.file=") {
        ""
    } else {
        r#"spool.file="{dir}/omelse.spool""#
    };
    format!(
        r#"action(type="omelse" name="else" conninfo="{conninfo}" stats.interval="1" host.binding="relay"
       {queue} {spool} {extra})"#,
        queue = QueueParams::shipped_action().set("action.resumeInterval", "1")
    )
}

fn server_config(module: &Path, tcp_port: u16, conninfo: &str) -> String {
    server_config_with(module, tcp_port, conninfo, "")
}

/// [`server_config`] with more parameters for the omelse action.
fn server_config_with(module: &Path, tcp_port: u16, conninfo: &str, extra: &str) -> String {
    format!(
        r#"global(maxMessageSize="2m")
module(load="imtcp")
module(load="{module}")
input(type="imtcp" port="{tcp_port}" ruleset="else")
ruleset(name="else" {ruleset}) {{
    {action}
}}"#,
        module = module.display(),
        ruleset = QueueParams::shipped_ruleset(),
        action = omelse_action(conninfo, extra)
    )
}

fn wait_for_rows(url: &str, expected: i64, limit: Duration) -> i64 {
    let mut last = 0;
    wait_until(limit, || {
        last = count(url, "SELECT count(*) FROM log_events");
        last >= expected
    });
    last
}

/// Waits up to `limit` for `expected` lines in log_events, then asserts that exactly that many
/// are stored, each once (a line written twice would count twice but be one `(ts, line_key)`).
fn assert_every_line_stored_once(url: &str, expected: usize, limit: Duration, daemon: &Rsyslogd) {
    let stored = wait_for_rows(url, expected as i64, limit);
    assert_eq!(stored, expected as i64, "rsyslogd log:\n{}", daemon.own_log());
    let distinct = count(url, "SELECT count(DISTINCT (ts, line_key)) FROM log_events");
    assert_eq!(distinct, expected as i64, "every line exactly once");
}

/// The same lines through the library, as `elsed import` feeds them.
async fn import(url: &str, lines: &[String]) {
    let mut client = omelse::store::connect(url).await.expect("connect");
    omelse::store::migrate(&mut client).await.expect("migrate");
    let clock = omelse::parse::Clock::new(jiff::tz::TimeZone::UTC, omelse::parse::Timestamp::now());
    let mut pipeline = omelse::ingest::Pipeline::new(clock, omelse::correlate::Correlator::new());
    let mut writer = omelse::store::Writer::new();
    for chunk in lines.chunks(20_000) {
        for line in chunk {
            pipeline.push_line(line);
        }
        writer
            .write_batch(&mut client, &pipeline.take_batch())
            .await
            .expect("write");
    }
    omelse::store::refresh_rollups(&mut client).await.expect("rollups");
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("else-rsyslog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rsyslogd_with_omelse_stores_what_an_import_stores() {
    let (Some(_), Some(lines)) = (rsyslogd_binary(), real_lines(100_000)) else {
        return;
    };
    let cluster = PgCluster::shared();
    let live = block_on(cluster.create_database());
    let imported = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("same-as-import");
    // The module refreshes the rollups itself here (by default elsed serve does).
    let config = server_config_with(&omelse_module(), port, &live, r#"rollups.interval="5""#);
    let daemon = Rsyslogd::start(&dir, &config);
    send_tcp(port, &as_syslog(&lines));
    let stored = wait_for_rows(&live, lines.len() as i64, Duration::from_secs(240));
    assert_eq!(stored, lines.len() as i64, "rsyslogd log:\n{}", daemon.own_log());
    block_on(import(&imported, &lines));
    let (live_messages, live_recipients) = message_records(&live);
    let (import_messages, import_recipients) = message_records(&imported);
    assert!(
        live_messages.len() > 500,
        "the real log has hundreds of messages, got {}",
        live_messages.len()
    );
    assert_eq!(live_messages, import_messages);
    assert_eq!(live_recipients, import_recipients);
    // The hourly rollups behind the dashboards are kept current by the module as well.
    let rollups = |url: &str| {
        block_on(async {
            let client = omelse::store::connect(url).await.unwrap();
            client
                .query(
                    "SELECT concat_ws('|', t.hour, s.name, t.flow, t.domain, t.metric, t.messages, t.bytes)
                     FROM traffic_hourly t JOIN servers s ON s.id = t.server_id ORDER BY 1",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        })
    };
    assert!(
        wait_until(Duration::from_secs(60), || count(
            &live,
            "SELECT count(*) FROM rollup_dirty"
        ) == 0),
        "the module refreshes the rollups; log:\n{}",
        daemon.own_log()
    );
    let (live_rollups, imported_rollups) = (rollups(&live), rollups(&imported));
    assert!(!live_rollups.is_empty());
    let differences: Vec<_> = live_rollups
        .iter()
        .zip(&imported_rollups)
        .filter(|(a, b)| a != b)
        .take(5)
        .collect();
    assert_eq!(
        (live_rollups.len(), differences),
        (imported_rollups.len(), vec![]),
        "rollups live vs imported"
    );
    // A line has the same key live and imported: importing the file into the live database
    // (an administrator catching up on the log) adds no event.
    block_on(import(&live, &lines));
    assert_eq!(count(&live, "SELECT count(*) FROM log_events"), lines.len() as i64);
}

/// Every table a stream of mail lines fills, all rows as text (see
/// [`else_tests::records::tables`]), without `schema_migrations` (when the schema was made) and
/// `ingest_counters` (how the lines came: the module's counters of batches, commits and
/// duplicates, which an import does not keep).
fn mail_tables(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut all = tables(url);
    all.retain(|name, _| !matches!(name.as_str(), "schema_migrations" | "ingest_counters"));
    all
}

/// The tables of `got` that differ from `expected`'s, each with a few of the rows that differ.
fn differing_tables(got: &BTreeMap<String, Vec<String>>, expected: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    expected
        .iter()
        .filter(|(table, rows)| got.get(*table) != Some(rows))
        .map(|(table, rows)| format!("{table}: {}", differences(&got[table], rows)))
        .collect()
}

/// Stress test for order (issue 18): the shipped stanza (its ruleset and action queues as shipped,
/// plain TCP in; see [`else_server_over_tcp`]) with small batches (a batch boundary every 64
/// lines, some 470 batches) fed a dense stream of 24 hosts (the recorded Postfix pair as 12 fleets
/// interleaved line by line, so that every batch holds pieces of the stories of many messages and
/// sessions of many hosts), three runs: every table equals a single clean `elsed import` of the
/// same lines, every run.
#[test]
fn the_shipped_stanza_with_small_batches_stores_what_an_import_stores_every_run() {
    live_tables_equal_the_import_every_run(None);
}

/// The same with two workers on the ruleset's queue (which calls the action directly) made to
/// take turns often (the second started at once):
/// omelse puts their batches back in dequeue order. Known gap, so not in `make test` (and why the
/// shipped stanza has one worker): a worker descheduled between its dequeue and its first line
/// lets the other begin first, and a session is then cut in two (seen in 1 of 3 runs on a loaded
/// machine; in 1 of 7 on this stream: two consecutive batches swapped some 17,800 lines in, three
/// sessions cut at their `client=` line). Run with `--ignored`.
#[test]
#[ignore = "known gap of two workers: see the doc comment"]
fn two_workers_with_small_batches_store_what_an_import_stores_every_run() {
    live_tables_equal_the_import_every_run(Some(2));
}

/// The stress test with the shipped ruleset's workers, or `workers`.
fn live_tables_equal_the_import_every_run(workers: Option<u32>) {
    rsyslogd_binary().expect("rsyslogd");
    let fixture = Fixture::committed();
    let lines: Vec<String> = Stream::new(&fixture, Replication::ending_now(&fixture, 12, 30_000))
        .map(|line| line.text)
        .collect();
    let cluster = PgCluster::shared();
    let imported = block_on(cluster.create_database());
    let dir = test_dir(&format!("order-{}", workers.unwrap_or(0)));
    elsed_import(&imported, &lines, &dir);
    let expected = mail_tables(&imported);
    let hosts = count(&imported, "SELECT count(*) FROM servers");
    assert_eq!(hosts, 24, "two hosts a fleet");
    assert!(
        expected["messages"].len() > 2_000,
        "messages: {}",
        expected["messages"].len()
    );
    assert!(
        expected["sessions"].len() > 1_000,
        "sessions: {}",
        expected["sessions"].len()
    );
    for run in 1..=3 {
        let live = block_on(cluster.create_database());
        let port = free_port();
        let mut config = else_server_over_tcp(&omelse_module(), &live)
            .replace("{port}", &port.to_string())
            .replace("queue.dequeueBatchSize=\"10000\"", "queue.dequeueBatchSize=\"64\"");
        assert!(config.contains("dequeueBatchSize=\"64\""), "{config}");
        if let Some(workers) = workers {
            let shipped = "queue.workerThreads=\"1\" ";
            assert!(config.contains(shipped), "the ruleset's workers as shipped: {config}");
            config = config.replacen(
                shipped,
                &format!("queue.workerThreads=\"{workers}\" queue.workerThreadMinimumMessages=\"1\" "),
                1,
            );
        }
        let started = std::time::Instant::now();
        let daemon = Rsyslogd::start(&dir.join(format!("run-{run}")), &config);
        send_tcp(port, &as_syslog(&lines));
        let stored = wait_for_rows(&live, lines.len() as i64, Duration::from_secs(300));
        assert_eq!(
            stored,
            lines.len() as i64,
            "run {run}; rsyslogd log:\n{}",
            daemon.own_log()
        );
        // What `elsed serve` does every minute, and `elsed import` at its end.
        block_on(async {
            let mut client = omelse::store::connect(&live).await.expect("connect");
            omelse::store::refresh_rollups(&mut client).await.expect("rollups");
        });
        let got = mail_tables(&live);
        println!(
            "run {run}: {} lines of {hosts} hosts in {:.1} s, {} messages, {} sessions",
            lines.len(),
            started.elapsed().as_secs_f64(),
            got["messages"].len(),
            got["sessions"].len()
        );
        let differing = differing_tables(&got, &expected);
        assert!(
            differing.is_empty(),
            "run {run}, live (left) vs import (right):\n{}",
            differing.join("\n")
        );
    }
}

/// PostgreSQL killed mid-stream: the lines wait in the spool file (as shipped) and are written
/// once it is back.
#[test]
fn a_database_crash_mid_stream_loses_and_doubles_nothing() {
    database_crash_mid_stream("", "lines wait in spool.file until the database is back");
}

/// The same without a spool file: rsyslog's queue keeps the lines, omelse the failed batch.
#[test]
fn a_database_crash_mid_stream_without_a_spool_file_loses_and_doubles_nothing() {
    database_crash_mid_stream(r#"spool.file="""#, "suspending until the database is back");
}

fn database_crash_mid_stream(extra: &str, noticed: &str) {
    let (Some(_), Some(lines)) = (rsyslogd_binary(), real_lines(100_000)) else {
        return;
    };
    let cluster = PgCluster::start().expect("private cluster");
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir(if extra.is_empty() {
        "db-crash"
    } else {
        "db-crash-no-spool"
    });
    let daemon = Rsyslogd::start(&dir, &server_config_with(&omelse_module(), port, &url, extra));
    let syslog = as_syslog(&lines);
    let (first, second) = syslog.split_at(30_000);
    send_tcp(port, first);
    wait_for_rows(&url, 10_000, Duration::from_secs(120));
    cluster.kill().expect("kill PostgreSQL");
    send_tcp(port, second);
    std::thread::sleep(Duration::from_secs(30));
    cluster.restart().expect("restart PostgreSQL");
    assert_every_line_stored_once(&url, lines.len(), Duration::from_secs(300), &daemon);
    assert!(
        daemon.own_log().contains(noticed),
        "the outage was noticed ({noticed}):\n{}",
        daemon.own_log()
    );
}

/// rsyslog counts the batch in flight as done before omelse commits it (module ABI notes §8.4):
/// stopping rsyslogd while the database is down would lose that batch, saveOnShutdown or not.
/// omelse keeps its lines in `spool.file` and the next rsyslogd writes them first.
#[test]
fn stopping_rsyslogd_while_the_database_is_down_loses_and_doubles_nothing() {
    let (Some(_), Some(lines)) = (rsyslogd_binary(), real_lines(20_000)) else {
        return;
    };
    let cluster = PgCluster::start().expect("private cluster");
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("outage-stop");
    let spool = dir.join("omelse.spool");
    let config = server_config_with(
        &omelse_module(),
        port,
        &url,
        &format!("spool.file=\"{}\"", spool.display()),
    );
    let mut daemon = Rsyslogd::start(&dir, &config);
    let syslog = as_syslog(&lines);
    let (first, second) = syslog.split_at(5_000);
    send_tcp(port, first);
    assert_eq!(wait_for_rows(&url, 5_000, Duration::from_secs(120)), 5_000);
    cluster.kill().expect("kill PostgreSQL");
    send_tcp(port, second);
    assert!(
        wait_until(Duration::from_secs(60), || spool.exists()),
        "the failed batch is spooled:\n{}",
        daemon.own_log()
    );
    daemon.stop();
    cluster.restart().expect("restart PostgreSQL");
    daemon.restart();
    assert_every_line_stored_once(&url, lines.len(), Duration::from_secs(300), &daemon);
    assert!(
        wait_until(Duration::from_secs(30), || !spool.exists()),
        "the spool is removed once written"
    );
}

/// omelse answers rsyslog for a batch as soon as its lines are in `spool.file`, before
/// PostgreSQL commits them, so that rsyslog dequeues and renders the next batch meanwhile
/// (issue 17): from then on the lines are omelse's alone to keep. Here rsyslogd is killed
/// (SIGKILL) while the commit of such a batch waits on a lock; its memory queue had nothing left
/// of it. The next rsyslogd writes the batch from the spool, each line once.
#[test]
fn lines_answered_before_their_commit_survive_rsyslogd_being_killed() {
    let (Some(_), Some(lines)) = (rsyslogd_binary(), real_lines(12_000)) else {
        return;
    };
    let cluster = PgCluster::shared();
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("answered-ahead");
    let spool = dir.join("omelse.spool");
    // Batches of exactly 3,000 lines, in memory: after the kill rsyslog has nothing to send again.
    let config = format!(
        r#"global(maxMessageSize="2m")
module(load="imtcp")
module(load="{module}")
input(type="imtcp" port="{port}" ruleset="else")
ruleset(name="else") {{
    action(type="omelse" name="else" conninfo="{url}" stats.interval="1" host.binding="relay"
           spool.file="{spool}" action.resumeInterval="1" queue.type="LinkedList" queue.size="100000" queue.workerThreads="1"
           queue.dequeueBatchSize="3000" queue.minDequeueBatchSize="3000"
           queue.minDequeueBatchSize.timeout="60000")
}}"#,
        module = omelse_module().display(),
        spool = spool.display(),
    );
    let mut daemon = Rsyslogd::start(&dir, &config);
    let syslog = as_syslog(&lines);
    send_tcp(port, &syslog[..6_000]);
    assert_eq!(wait_for_rows(&url, 6_000, Duration::from_secs(120)), 6_000);
    // The next commit waits: another session holds every log_events partition.
    let mut locker = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-Xqc",
            "BEGIN; LOCK TABLE log_events IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600);",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("psql");
    let locked = "SELECT count(*) FROM pg_locks WHERE relation = 'log_events'::regclass AND mode = 'AccessExclusiveLock' AND granted";
    assert!(wait_until(Duration::from_secs(30), || count(&url, locked) == 1));
    send_tcp(port, &syslog[6_000..9_000]);
    // The file's lines after its header line.
    let spooled = || std::fs::read_to_string(&spool).map_or(0, |text| text.lines().count().saturating_sub(1));
    assert!(
        wait_until(Duration::from_secs(60), || spooled() == 3_000),
        "the batch is in the spool before its commit ({} lines):\n{}",
        spooled(),
        daemon.own_log()
    );
    daemon.kill();
    let unlock = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'BEGIN; LOCK TABLE log_events%'";
    assert_eq!(count(&url, unlock), 1);
    let _ = locker.wait();
    daemon.start_again();
    // The spool is written with the next batch that comes.
    send_tcp(port, &syslog[9_000..]);
    assert_every_line_stored_once(&url, lines.len(), Duration::from_secs(120), &daemon);
    assert!(
        wait_until(Duration::from_secs(30), || !spool.exists()),
        "the spool is removed once written"
    );
}

/// Issue 18, the promise of the shipped else-server.conf: a PostgreSQL outage loses and doubles
/// nothing, and the records are an import's. omelse appends every batch to its `spool.file`
/// before it answers rsyslog, so the outage's lines wait there, in log order however long the
/// outage (a memory queue with a `queue.filename` did not keep it, past its high watermark: see
/// the stanza's comment), and stay there across an rsyslogd restart during the outage; rsyslog's
/// only queue (the ruleset's, in memory: the action has none) stays empty. The shipped stanza as it is (plain TCP in, see
/// [`else_server_over_tcp`]), a dense stream of 24 hosts with the times the shipped Postfix-host
/// stanzas forward (microseconds): 20,000 lines stored, PostgreSQL stopped, 230,000 more,
/// rsyslogd restarted, PostgreSQL back; every line is stored once, under the key a clean `elsed
/// import` of the same lines gives it, every table equals the import's, rsyslog leaves no queue
/// file at the stop, and the spool file is gone once everything in it is committed.
#[test]
fn an_outage_goes_to_disk_and_gives_the_records_of_an_import() {
    outage_on_disk(true, true);
}

/// The same with whole-second times (RFC 3164 senders, a relay forwarding without the fraction),
/// the lines only. Known gap, so not in `make test`: two identical lines of one host and second
/// (an smtpd serving the same client twice) are told apart only by their count in that second
/// (`omelse::keys::LineKeys`), and the count starts again in a new process. With the disk queue
/// (shipped from 2026-12-04 to 2026-12-05),
/// one run lost 55 of the 250,000 lines, each a later copy of an identical line whose first copy
/// was stored before the outage, the later one written by the restarted rsyslogd (counted 0
/// again: the first copy's key, which the database already had). The disk-assisted queue shipped
/// before lost 126: 71 more where it had reordered the lines. Counting from the database at a
/// restart would make the opposite mistake, a batch rsyslog sends again after a crash stored
/// twice. Run with `--ignored`.
#[test]
#[ignore = "known gap of whole-second times: see the doc comment"]
fn an_outage_with_whole_seconds_loses_nothing() {
    outage_on_disk(false, false);
}

/// The outage test: the stream's times with microseconds or whole seconds; every table compared
/// with the import's, or the lines only.
fn outage_on_disk(microseconds: bool, every_table: bool) {
    rsyslogd_binary().expect("rsyslogd");
    let fixture = Fixture::committed();
    let stream = Stream::new(&fixture, Replication::ending_now(&fixture, 12, 250_000));
    let stream = if microseconds {
        stream.with_microseconds()
    } else {
        stream
    };
    let lines: Vec<String> = stream.map(|line| line.text).collect();
    let (before, during) = lines.split_at(20_000);
    let dir = test_dir("outage-disk");
    let imported = block_on(PgCluster::shared().create_database());
    elsed_import(&imported, &lines, &dir);
    let cluster = PgCluster::start().expect("private cluster");
    let live = block_on(cluster.create_database());
    let port = free_port();
    let stanza = else_server_over_tcp(&omelse_module(), &live).replace("{port}", &port.to_string());
    for shipped in [
        "queue.type=\"Direct\"",
        "queue.timeoutShutdown=\"60000\"",
        "queue.workerThreads=\"1\"",
        "action.resumeRetryCount=\"-1\"",
        "spool.file=\"{dir}/omelse-else.spool\"",
    ] {
        assert!(stanza.contains(shipped), "the shipped stanza has {shipped}:\n{stanza}");
    }
    let mut daemon = Rsyslogd::start(&dir.join("rsyslogd"), &format!("{STATS}\n{stanza}"));
    let (work, spool) = (daemon.dir.join("work"), daemon.dir.join("omelse-else.spool"));
    let queue_files = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&work)
            .expect("the work directory")
            .map(|entry| entry.expect("an entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("omelse"))
            .collect();
        names.sort();
        names
    };
    send_tcp(port, &as_syslog(before));
    let stored = wait_for_rows(&live, before.len() as i64, Duration::from_secs(120));
    assert_eq!(stored, before.len() as i64, "rsyslogd log:\n{}", daemon.own_log());

    cluster.stop().expect("stop PostgreSQL");
    send_tcp(port, &as_syslog(during));
    // Every line is in omelse's spool file: imtcp passed them all on, and rsyslog's only queue
    // (the ruleset's, in memory; the action has none) is empty.
    let passed_on = wait_until(Duration::from_secs(180), || {
        daemon.stat(&format!("imtcp({port})"), "submitted") == Some(lines.len() as i64)
            && daemon.stat("else", "size") == Some(0)
    });
    assert!(passed_on, "rsyslogd took every line; its log:\n{}", daemon.own_log());
    let spooled = std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0);
    let sent_bytes: usize = during.iter().map(String::len).sum();
    assert!(
        spooled as usize > sent_bytes,
        "the lines wait in omelse's spool file: {spooled} bytes for {sent_bytes} bytes of lines"
    );
    println!(
        "outage: {} lines queued, {} MB in omelse's spool file",
        during.len(),
        spooled / 1_000_000
    );

    // An rsyslogd restart while PostgreSQL is still away: the lines stay in the spool file.
    daemon.stop();
    assert_eq!(
        std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0),
        spooled,
        "the spool file is kept whole at the stop; log:\n{}",
        daemon.own_log()
    );
    daemon.start_again();
    std::thread::sleep(Duration::from_secs(10));

    cluster.restart().expect("restart PostgreSQL");
    let back = std::time::Instant::now();
    // Until every line is there, or the queue is empty and nothing came for 10 s.
    let (mut stored, mut changed) = (0, std::time::Instant::now());
    let mut drained = Duration::ZERO;
    wait_until(Duration::from_secs(600), || {
        let now = count(&live, "SELECT count(*) FROM log_events");
        if now != stored {
            (stored, changed, drained) = (now, std::time::Instant::now(), back.elapsed());
        }
        let empty = !spool.exists();
        stored >= lines.len() as i64 || (empty && changed.elapsed() > Duration::from_secs(10))
    });
    assert_eq!(stored, lines.len() as i64, "rsyslogd log:\n{}", daemon.own_log());
    println!(
        "{} lines stored {:.1} s after PostgreSQL was started again",
        lines.len(),
        drained.as_secs_f64()
    );
    assert!(
        wait_until(Duration::from_secs(60), || !spool.exists()),
        "the spool file goes once every line in it is committed"
    );
    daemon.stop();
    assert_eq!(
        queue_files(),
        Vec::<String>::new(),
        "an empty queue leaves no file at the stop"
    );
    assert_eq!(
        count(&live, "SELECT count(*) FROM log_events"),
        lines.len() as i64,
        "nothing twice"
    );
    assert_eq!(
        count(&live, "SELECT count(DISTINCT (ts, line_key)) FROM log_events"),
        lines.len() as i64,
        "every line exactly once"
    );
    let (got, expected) = (stored_lines(&live), stored_lines(&imported));
    assert!(
        got == expected,
        "lines live (left) vs import (right): {}",
        differences(&got, &expected)
    );
    if every_table {
        // What `elsed serve` does every minute, and `elsed import` at its end.
        block_on(async {
            let mut client = omelse::store::connect(&live).await.expect("connect");
            omelse::store::refresh_rollups(&mut client).await.expect("rollups");
        });
        let differing = differing_tables(&mail_tables(&live), &mail_tables(&imported));
        assert!(
            differing.is_empty(),
            "live (left) vs import (right):\n{}",
            differing.join("\n")
        );
    }
    // The file imported (40 MB) is kept only when the test fails.
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped stanza at its spool's bound, PostgreSQL away: omelse refuses batches once
/// `spool.max_megabytes` is reached (and says so in rsyslog's log), the ruleset's queue fills and
/// then holds the TCP input back instead of discarding (rsyslog delays inputs that can wait: a
/// second a line past 70 % of the queue, none past 97 %), and once PostgreSQL is back every line is stored once. A bound
/// of 1 MB and a queue of 2,000 lines stand for the shipped 8,192 MB and 100,000.
#[test]
fn a_full_spool_holds_the_input_back_and_loses_nothing() {
    rsyslogd_binary().expect("rsyslogd");
    let fixture = Fixture::committed();
    let lines: Vec<String> = Stream::new(&fixture, Replication::ending_now(&fixture, 2, 30_000))
        .with_microseconds()
        .map(|line| line.text)
        .collect();
    let cluster = PgCluster::start().expect("private cluster");
    let live = block_on(cluster.create_database());
    let port = free_port();
    let mut stanza = else_server_over_tcp(&omelse_module(), &live).replace("{port}", &port.to_string());
    for (shipped, small) in [
        ("queue.size=\"100000\"", "queue.size=\"2000\""),
        ("spool.max_megabytes=\"8192\"", "spool.max_megabytes=\"1\""),
    ] {
        assert!(stanza.contains(shipped), "the shipped stanza has {shipped}:\n{stanza}");
        stanza = stanza.replace(shipped, small);
    }
    let dir = test_dir("spool-full");
    let daemon = Rsyslogd::start(&dir, &format!("{STATS}\n{stanza}"));
    let spool = daemon.dir.join("omelse-else.spool");
    // The first lines make omelse connect; then the database goes away.
    send_tcp(port, &as_syslog(&lines[..100]));
    assert_eq!(wait_for_rows(&live, 100, Duration::from_secs(60)), 100);
    cluster.stop().expect("stop PostgreSQL");
    let rest = as_syslog(&lines[100..]);
    let sender = std::thread::spawn(move || send_tcp(port, &rest));
    let held_back = wait_until(Duration::from_secs(120), || {
        daemon.stat("else", "size").unwrap_or(0) >= 1_400
    });
    assert!(
        held_back,
        "the ruleset's queue fills; rsyslogd log:\n{}",
        daemon.own_log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let submitted = daemon.stat(&format!("imtcp({port})"), "submitted").unwrap_or(0);
    assert!(
        submitted < lines.len() as i64 - 10_000,
        "the input is held back: {submitted} of {} lines taken",
        lines.len()
    );
    assert_eq!(daemon.stat("else", "discarded.full"), Some(0), "nothing discarded");
    assert_eq!(daemon.stat("else", "discarded.nf"), Some(0), "nothing discarded");
    let spooled = std::fs::metadata(&spool).map(|m| m.len()).unwrap_or(0);
    assert!(
        (1 << 20..4 << 20).contains(&spooled),
        "the spool stops near its bound: {spooled} bytes"
    );
    assert!(
        daemon.own_log().contains("spool.file is full"),
        "rsyslog's log says why: {}",
        daemon.own_log()
    );

    cluster.restart().expect("restart PostgreSQL");
    sender.join().expect("the sender");
    assert_every_line_stored_once(&live, lines.len(), Duration::from_secs(300), &daemon);
    assert!(
        wait_until(Duration::from_secs(60), || !spool.exists()),
        "the spool file goes once every line in it is committed"
    );
}

#[test]
fn an_rsyslogd_restart_mid_stream_loses_and_doubles_nothing() {
    let (Some(_), Some(lines)) = (rsyslogd_binary(), real_lines(100_000)) else {
        return;
    };
    let cluster = PgCluster::shared();
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("restart");
    let mut daemon = Rsyslogd::start(&dir, &server_config(&omelse_module(), port, &url));
    send_tcp(port, &as_syslog(&lines));
    wait_for_rows(&url, 5_000, Duration::from_secs(120));
    // Lines still in the kernel's socket buffer when rsyslogd stops are plain TCP's loss, not the
    // queues' (docs/transport.md): the ruleset's queue holds the input back while it fills, so
    // the restart waits until rsyslogd has read every byte. Everything after is rsyslog's queues
    // and omelse: every line must be there, once.
    assert!(
        wait_until_received(port, Duration::from_secs(120)),
        "rsyslogd did not read the whole stream"
    );
    daemon.restart();
    let stored = wait_for_rows(&url, lines.len() as i64, Duration::from_secs(300));
    assert_eq!(stored, lines.len() as i64, "rsyslogd log:\n{}", daemon.own_log());
    let distinct = count(&url, "SELECT count(DISTINCT (ts, line_key)) FROM log_events");
    assert_eq!(distinct, lines.len() as i64);
}

#[test]
fn malformed_huge_and_binary_lines_are_stored_raw_and_hurt_nothing() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let cluster = PgCluster::shared();
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("bad-lines");
    let mut daemon = Rsyslogd::start(&dir, &server_config(&omelse_module(), port, &url));
    let huge = format!(
        "<22>2026-11-28T10:00:00+00:00 mx1 postfix/smtpd[1]: warning: {}",
        "x".repeat(1 << 20)
    );
    let lines = vec![
        "<22>2026-11-28T10:00:00+00:00 mx1 postfix/smtpd[1]: connect from a[192.0.2.1]".to_string(),
        "<22>2026-11-28T10:00:01+00:00 mx1 postfix/smtpd[1]: 0F0F0F0F0F: client=a[192.0.2.1], garbage=\u{1}\u{2}\u{7f}"
            .to_string(),
        "<22>2026-11-28T10:00:02+00:00 mx1 postfix/qmgr[2]: \u{fffd}\u{fffd}\u{0}binary\u{ff}".to_string(),
        "<22>2026-11-28T10:00:03+00:00 mx1 postfix/cleanup[3]: ][[:=<<>>,,;;".to_string(),
        huge,
        "<22>2026-11-28T10:00:05+00:00 mx1 postfix/smtpd[1]: disconnect from a[192.0.2.1] ehlo=1 quit=1 commands=2"
            .to_string(),
    ];
    send_tcp(port, &lines);
    let stored = wait_for_rows(&url, lines.len() as i64, Duration::from_secs(60));
    assert_eq!(stored, lines.len() as i64, "rsyslogd log:\n{}", daemon.own_log());
    assert!(daemon.is_running());
    let longest = count(&url, "SELECT max(length(raw))::bigint FROM log_events");
    assert!(longest >= 1 << 20, "the 1 MiB line is kept whole, got {longest}");
    // The counters reach the operator: rsyslog's log and the ingest_counters table.
    let counted = wait_until(Duration::from_secs(30), || {
        count(
            &url,
            "SELECT coalesce(max(value), 0) FROM ingest_counters WHERE name LIKE 'omelse.%.lines'",
        ) == lines.len() as i64
    });
    assert!(counted, "ingest_counters shows the lines; log:\n{}", daemon.own_log());
    assert!(daemon.own_log().contains("omelse: lines=6"), "{}", daemon.own_log());
    // … and `elsed status` shows them.
    let status = std::process::Command::new(else_tests::rsyslogd::elsed_binary())
        .args(["status", "--json", "--database-url", &url])
        .env("ELSE_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let lines = status["counters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with(".lines"));
    assert_eq!(
        lines.map(|c| c["value"].clone()),
        Some(serde_json::json!(6)),
        "{status}"
    );
    assert_eq!(status["servers"][0]["name"], "mx1");
}

#[test]
fn omelse_ext_behind_omprog_stores_the_lines_once() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let ext = omelse_module().with_file_name("omelse-ext");
    assert!(ext.exists(), "{} missing: cargo build builds it", ext.display());
    let cluster = PgCluster::shared();
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("ext");
    let config = format!(
        r#"module(load="imtcp")
module(load="omprog")
template(name="OmElseFormat" type="string"
         string="%uuid%@%inputname% %timereported:::date-rfc3339% %hostname% %fromhost% %fromhost-ip% %syslogtag%%msg%\n")
input(type="imtcp" port="{port}" ruleset="else")
ruleset(name="else" queue.type="LinkedList" queue.workerThreads="1") {{
    action(type="omprog" binary="{ext} conninfo={url} host.binding=relay" template="OmElseFormat"
           confirmMessages="on" useTransactions="on" output="{{dir}}/omelse-ext.err"
           action.resumeRetryCount="-1" action.resumeInterval="1"
           queue.type="Disk" queue.filename="omelse-ext" queue.size="10000000")
}}"#,
        ext = ext.display(),
        // omprog splits its command line on spaces: omelse-ext reads commas as spaces.
        url = url.replace(' ', ",")
    );
    let daemon = Rsyslogd::start(&dir, &config);
    let lines: Vec<String> = (0..500)
        .map(|n| {
            format!(
                "<22>2026-11-28T10:{:02}:{:02}+00:00 mx1 postfix/smtpd[{}]: connect from c{n}[192.0.2.{}]",
                n / 60,
                n % 60,
                100 + n % 7,
                n % 250
            )
        })
        .collect();
    send_tcp(port, &lines);
    let stored = wait_for_rows(&url, lines.len() as i64, Duration::from_secs(60));
    assert_eq!(stored, lines.len() as i64, "rsyslogd log:\n{}", daemon.own_log());
    let distinct = count(&url, "SELECT count(DISTINCT raw) FROM log_events");
    assert_eq!(distinct, lines.len() as i64);
}

#[test]
fn a_panic_inside_the_module_does_not_cross_into_rsyslogd() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let (_url, port, mut daemon) = fault_injection_daemon("panic");
    send_tcp(
        port,
        &[
            "<22>2026-11-28T10:00:00+00:00 mx1 postfix/smtpd[1]: connect from a[192.0.2.1] OMELSE-FAULT-PANIC"
                .to_string(),
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || daemon
            .own_log()
            .contains("internal error caught at the rsyslog boundary")),
        "the panic was reported:\n{}",
        daemon.own_log()
    );
    send_tcp(
        port,
        &["<22>2026-11-28T10:00:01+00:00 mx1 postfix/smtpd[1]: connect from b[192.0.2.2]".to_string()],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(daemon.is_running(), "rsyslogd survived the panic");
}

/// Issue 16: a line whose parsing panics (a bug, injected here) costs that line only: it is
/// stored as an `unknown` line, counted, and every other line of its batch and after it arrives
/// once; rsyslog does not resend the batch forever.
#[test]
fn a_panic_while_parsing_one_line_costs_that_line_only() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let (url, port, mut daemon) = fault_injection_daemon("parse-panic");
    let lines: Vec<String> = (0..300)
        .map(|n| {
            let marker = if n == 150 { " OMELSE-FAULT-PARSE-PANIC" } else { "" };
            format!(
                "<22>2026-11-28T10:{:02}:{:02}+00:00 mx1 postfix/smtpd[7]: connect from c{n}[192.0.2.{}]{marker}",
                n / 60,
                n % 60,
                n % 250
            )
        })
        .collect();
    send_tcp(port, &lines);
    let stored = wait_for_rows(&url, lines.len() as i64, Duration::from_secs(60));
    assert_eq!(stored, lines.len() as i64, "rsyslogd log:\n{}", daemon.own_log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count(&url, "SELECT count(*) FROM log_events"), 300, "nothing twice");
    assert_eq!(count(&url, "SELECT count(DISTINCT raw) FROM log_events"), 300);
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM log_events WHERE raw LIKE '%OMELSE-FAULT-PARSE-PANIC' AND kind = 'unknown'"
        ),
        1,
        "the panicking line, kept"
    );
    assert!(
        wait_until(Duration::from_secs(10), || count(
            &url,
            "SELECT coalesce(max(value), -1) FROM ingest_counters WHERE name LIKE 'omelse.%.panicked'"
        ) == 1),
        "counted in ingest_counters"
    );
    assert!(daemon.is_running());
}

/// rsyslogd with the fault-injection module, listening on TCP for a new database: its URL, the
/// port and the daemon.
fn fault_injection_daemon(name: &str) -> (String, u16, Rsyslogd) {
    let module = fault_injection_module();
    let url = block_on(PgCluster::shared().create_database());
    let port = free_port();
    let daemon = Rsyslogd::start(&test_dir(name), &server_config(&module, port, &url));
    (url, port, daemon)
}

/// Builds omelse.so with the `fault-injection` feature into its own target directory.
fn fault_injection_module() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = workspace.join("target/fault-injection");
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "omelse",
            "--lib",
            "--features",
            "fault-injection",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(&workspace)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the fault-injection module failed");
    target.join("debug/libomelse.so")
}

#[test]
fn shipped_stanzas_pass_rsyslog_config_check() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let dir = test_dir("stanzas");
    let tls = relp_certificates(&dir, &["mx1", "mx2"]);
    // Each file as it is enabled: the compressed listener beside else-server.conf, whose ruleset
    // it feeds.
    for (files, identity) in [
        (&["else-server.conf"][..], "server"),
        (&["else-server-compressed.conf", "else-server.conf"], "server"),
        // In the order of their names in /etc/rsyslog.d/: the tunnel's inputs use the imrelp that
        // else-server.conf loads.
        (&["else-server.conf", "else-ssh-tunnel.conf"], "server"),
        (&["postfix-host.conf"], "client"),
        (&["postfix-host-maillog.conf"], "client"),
        (&["postfix-host-compressed.conf"], "client"),
        (&["postfix-host-failover.conf"], "client"),
        (&["postfix-host-ssh-tunnel.conf"], "client"),
    ] {
        let mut text = format!("global(workDirectory=\"{}\")\n", dir.display());
        for file in files {
            text.push_str(&shipped_stanza(
                file,
                &tls,
                identity,
                free_port(),
                "host=127.0.0.1 dbname=else",
            ));
        }
        let path = dir.join(files.join("+"));
        std::fs::write(&path, text).unwrap();
        let (ok, output) = check_config(&path);
        assert!(ok, "rsyslogd -N1 rejects {files:?}:\n{output}");
    }
    // And a mistake is refused with the parameter named.
    let bad = shipped_stanza("else-server.conf", &tls, "server", free_port(), "host=127.0.0.1")
        .replace("server.role=\"unknown\"", "server.role=\"mailhub\"");
    let path = dir.join("bad.conf");
    std::fs::write(&path, format!("global(workDirectory=\"{}\")\n{bad}", dir.display())).unwrap();
    let (ok, output) = check_config(&path);
    assert!(!ok);
    assert!(output.contains("parameter 'server.role'"), "{output}");
    // Two actions cannot share one spool file: their queues would mix.
    let stanza = shipped_stanza("else-server.conf", &tls, "server", free_port(), "host=127.0.0.1");
    let start = stanza.find("action(type=\"omelse\"").expect("the omelse action");
    let end = start + stanza[start..].find("\")\n").expect("the end of the omelse action") + 2;
    let twice = stanza.replacen(&stanza[start..end], &format!("{0}\n{0}", &stanza[start..end]), 1);
    std::fs::write(&path, format!("global(workDirectory=\"{}\")\n{twice}", dir.display())).unwrap();
    let (ok, output) = check_config(&path);
    assert!(!ok, "{twice}");
    assert!(output.contains("is already another action's"), "{output}");
    // The README's smallest form, as a postmaster copies it.
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let marker = "The smallest form:\n\n```\n";
    let start = readme.find(marker).expect("the README's smallest form") + marker.len();
    let smallest = &readme[start..start + readme[start..].find("```").expect("its end")];
    let smallest = smallest
        .replace(
            "module(load=\"omelse\")",
            &format!("module(load=\"{}\")", omelse_module().display()),
        )
        .replace("/var/spool/rsyslog/", &format!("{}/", dir.display()));
    std::fs::write(
        &path,
        format!("global(workDirectory=\"{}\")\n{smallest}", dir.display()),
    )
    .unwrap();
    let (ok, output) = check_config(&path);
    assert!(
        ok,
        "rsyslogd -N1 rejects the README's smallest form:\n{smallest}\n{output}"
    );
}

#[test]
fn two_postfix_hosts_forward_over_relp_with_the_shipped_stanzas() {
    if rsyslogd_binary().is_none() || else_tests::require::tool(IMRELP, "rsyslog-relp").is_none() {
        return;
    }
    let cluster = PgCluster::shared();
    let url = block_on(cluster.create_database());
    let dir = test_dir("relp");
    let tls = relp_certificates(&dir, &["mx1", "mx2"]);
    // One input per host, as install.md says: each with its port and certificate name.
    let relp_ports = [("mx1", free_port()), ("mx2", free_port())];
    let server_text = host_inputs(
        &shipped_stanza("else-server.conf", &tls, "server", relp_ports[0].1, &url),
        &relp_ports,
    );
    let _server = Rsyslogd::start(&dir.join("else"), &server_text);
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for (host, relp_port) in relp_ports {
        let tcp_port = free_port();
        let client_text = shipped_stanza("postfix-host.conf", &tls, host, relp_port, &url);
        let config = format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{tcp_port}\")\n{client_text}");
        hosts.push(Rsyslogd::start(&dir.join(host), &config));
        ports.push(tcp_port);
    }
    for (i, (host, port)) in ["mx1", "mx2"].iter().zip(&ports).enumerate() {
        let lines: Vec<String> = (0..50)
            .map(|n| {
                format!(
                    "<22>2026-11-28T10:{i:02}:{:02}+00:00 {host} postfix/smtpd[{}]: connect from c{n}[192.0.2.{n}]",
                    n % 60,
                    100 + n
                )
            })
            .collect();
        send_tcp(*port, &lines);
    }
    let stored = wait_for_rows(&url, 100, Duration::from_secs(60));
    assert_eq!(stored, 100, "server log:\n{}", _server.own_log());
    let per_host = block_on(async {
        let client = omelse::store::connect(&url).await.unwrap();
        client
            .query(
                "SELECT s.name, count(*) FROM log_events e JOIN servers s ON s.id = e.server_id GROUP BY 1 ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
            .collect::<Vec<_>>()
    });
    assert_eq!(per_host, vec![("mx1".to_string(), 50), ("mx2".to_string(), 50)]);
}

#[test]
fn sighup_makes_omelse_reconnect_and_lose_nothing() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let cluster = PgCluster::shared();
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("hup");
    let daemon = Rsyslogd::start(&dir, &server_config(&omelse_module(), port, &url));
    let line = |n: usize| {
        format!(
            "<22>2026-11-28T10:00:{:02}+00:00 mx1 postfix/smtpd[{n}]: connect from c[192.0.2.{n}]",
            n % 60
        )
    };
    let backend = || {
        block_on(async {
            let client = omelse::store::connect(&url).await.unwrap();
            let row = client
                .query_opt("SELECT pid::bigint FROM pg_stat_activity WHERE application_name = 'omelse' AND datname = current_database()", &[])
                .await
                .unwrap();
            row.map(|r| r.get::<_, i64>(0))
        })
    };
    send_tcp(port, &(1..=10).map(line).collect::<Vec<_>>());
    assert_eq!(
        wait_for_rows(&url, 10, Duration::from_secs(30)),
        10,
        "{}",
        daemon.own_log()
    );
    let before = backend().expect("omelse's connection is named in pg_stat_activity");
    daemon.hup();
    std::thread::sleep(Duration::from_millis(500));
    send_tcp(port, &(11..=20).map(line).collect::<Vec<_>>());
    assert_eq!(
        wait_for_rows(&url, 20, Duration::from_secs(30)),
        20,
        "{}",
        daemon.own_log()
    );
    let after = backend().expect("omelse reconnected");
    assert_ne!(before, after, "a new connection after SIGHUP");
}

/// The roles and addresses an administrator gave the servers (in the database, from the web UI or
/// `elsed migrate`) reach the module: mail from out1 to mx1 is internal, not inbound.
#[test]
fn roles_set_in_the_database_reach_the_module() {
    if rsyslogd_binary().is_none() {
        return;
    }
    let url = block_on(PgCluster::shared().create_database());
    block_on(async {
        let mut client = omelse::store::connect(&url).await.unwrap();
        omelse::store::migrate(&mut client).await.unwrap();
        else_tests::register_fixture_servers(&url).await;
    });
    let fixture = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail.log")).unwrap();
    let lines: Vec<String> = fixture.lines().map(|line| format!("<22>{line}")).collect();
    let port = free_port();
    let daemon = Rsyslogd::start(&test_dir("fleet"), &server_config(&omelse_module(), port, &url));
    send_tcp(port, &lines);
    // The message ends (removed from the queue) late in the fixture.
    let ended = wait_until(Duration::from_secs(60), || {
        count(
            &url,
            "SELECT count(*) FROM messages WHERE queue_id = '9C0A1B2D3E' AND closed",
        ) == 1
    });
    assert!(ended, "rsyslogd said:\n{}", daemon.own_log());
    let flow = block_on(async {
        let client = omelse::store::connect(&url).await.unwrap();
        let row = client
            .query_one("SELECT flow FROM messages WHERE queue_id = '9C0A1B2D3E'", &[])
            .await
            .unwrap();
        row.get::<_, Option<String>>(0)
    });
    assert_eq!(flow.as_deref(), Some("internal"));
}

/// `memory.max_open` inside rsyslogd: 600 deferred messages with room for 100 in memory are
/// evicted to the database; after an rsyslogd restart (which brings back what fits) their
/// deliveries and `removed` lines find each of them again, in the database: the records equal an
/// import's, every queue id has one life, and the counters say it happened.
#[test]
fn evicted_messages_come_back_across_an_rsyslogd_restart() {
    rsyslogd_binary().expect("rsyslogd");
    let head = |second: usize, program: &str| {
        format!(
            "2026-03-01T{:02}:{:02}:{:02}+00:00 out1 postfix/{program}",
            10 + second / 3600,
            second / 60 % 60,
            second % 60
        )
    };
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for i in 0..600 {
        let q = format!("{:010X}", 0x3_0000_0000u64 + i as u64);
        first.push(format!(
            "{}[2001]: {q}: client=ws.lan[10.1.0.{}]",
            head(i, "smtpd"),
            1 + i % 200
        ));
        first.push(format!("{}[410]: {q}: message-id=<{i}@lan>", head(i, "cleanup")));
        first.push(format!(
            "{}[411]: {q}: from=<s{i}@lan>, size=900, nrcpt=1 (queue active)",
            head(i, "qmgr")
        ));
        first.push(format!("{}[601]: {q}: to=<r{i}@remote.example>, relay=none, delay=30, delays=0/0/30/0, dsn=4.4.1, status=deferred (connect to mx.remote.example[192.0.2.1]:25: Connection timed out)", head(i + 1, "smtp")));
        second.push(format!("{}[602]: {q}: to=<r{i}@remote.example>, relay=mx.remote.example[192.0.2.1]:25, delay=3000, delays=0/0/0.5/0.5, dsn=2.0.0, status=sent (250 2.0.0 queued)", head(3000 + i, "smtp")));
        second.push(format!("{}[411]: {q}: removed", head(3000 + i, "qmgr")));
    }
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    let cluster = PgCluster::shared();
    let imported = block_on(cluster.create_database());
    block_on(import(&imported, &all));
    let url = block_on(cluster.create_database());
    let port = free_port();
    let dir = test_dir("evicted-restart");
    let mut daemon = Rsyslogd::start(
        &dir,
        &server_config_with(&omelse_module(), port, &url, r#"memory.max_open="100""#),
    );
    let counter = |name: &str| {
        count(
            &url,
            &format!("SELECT coalesce(max(value), 0) FROM ingest_counters WHERE name LIKE 'omelse.%.{name}'"),
        )
    };
    send_tcp(port, &as_syslog(&first));
    assert_eq!(
        wait_for_rows(&url, first.len() as i64, Duration::from_secs(120)),
        first.len() as i64
    );
    assert!(
        wait_until(Duration::from_secs(20), || counter("evictions") >= 500),
        "evictions {}; rsyslogd log:\n{}",
        counter("evictions"),
        daemon.own_log()
    );
    assert!(
        counter("messages_in_memory") <= 100,
        "{}",
        counter("messages_in_memory")
    );
    daemon.restart();
    send_tcp(port, &as_syslog(&second));
    assert_eq!(
        wait_for_rows(&url, all.len() as i64, Duration::from_secs(120)),
        all.len() as i64,
        "rsyslogd log:\n{}",
        daemon.own_log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || counter("reloads") >= 500),
        "reloads after the restart {}; rsyslogd log:\n{}",
        counter("reloads"),
        daemon.own_log()
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM messages"),
        600,
        "one life per queue id"
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM messages WHERE closed AND state = 'sent'"),
        600
    );
    let (live, expected) = (message_records(&url), message_records(&imported));
    assert!(
        live == expected,
        "messages: {}; recipients: {}",
        else_tests::records::differences(&live.0, &expected.0),
        else_tests::records::differences(&live.1, &expected.1)
    );
}
