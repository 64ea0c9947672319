//! `make bench`: the memory of omelse inside rsyslogd holding 100,000 open messages, beside the
//! same rsyslogd and omelse given as many lines whose messages close, and beside rsyslogd with no
//! omelse action at all. Prints the figures for docs/benchmarks.md.
//!
//! A third run gives the open messages to an action with the default `memory.max_open`: what the
//! bound saves; then that rsyslogd is started again on the same database, and its memory read once
//! the module has resumed (every open message read back): the restart's cost and peak.
//!
//! `cargo bench -p else-tests --bench omelse_memory` (build omelse.so in release first:
//! `cargo build --release -p omelse`). `OMELSE_MEMORY_MESSAGES` changes the count (default 100,000);
//! `OMELSE_MEMORY_RUNS` chooses the runs (default `open,closed,bound,file`; `make bench` runs
//! `bound` alone with 1,000,000 messages too).
//!
//! Each message is seven lines, one message a second of log time (so 100,000 span 28 hours, ending
//! now; see `else_tests::bench::message_lines`): the same five lines, then two deferred attempts
//! (the message stays open: no `removed`) or a delivery and `removed`. The resident set of rsyslogd
//! (VmRSS, and its peak VmHWM, from /proc) is read once the module is loaded and connected, and
//! again once every message is in PostgreSQL and the module's idle chores ran (12 s later).

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use else_tests::bench::{memory_kib, message_lines, rsyslogd_pid, Ending};
use else_tests::rsyslogd::{free_port, send_tcp, wait_until, Rsyslogd};
use else_tests::shipped::QueueParams;
use else_tests::PgCluster;
use else_tests::{block_on, count};
use omelse::rsyslog::DEFAULT_MAX_OPEN;

/// A bound no run reaches: the correlator's cost without eviction.
const UNBOUNDED: usize = 100_000_000;

/// What one run measured, in KiB.
struct Run {
    before: u64,
    after: u64,
    peak: u64,
}

/// The warm-up line of a run called `name` (a restart's is found by its text).
fn warm_up(name: &str) -> String {
    format!("<22>2026-01-01T00:00:00+00:00 mx1 postfix/anvil[1]: statistics: warm-up {name}")
}

/// Starts rsyslogd on `config`, sends one warm-up line and waits for `ready`; reads its memory,
/// sends `lines`, waits for `done`, waits two seconds more for the last commit, reads it again.
fn run(name: &str, config: &str, lines: &[String], ready: impl Fn() -> bool, done: impl Fn() -> bool) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "else-bench-memory-{}-{}",
        name.replace(' ', "-"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let daemon = Rsyslogd::start(&dir, &config.replace("{port}", &port.to_string()));
    let pid = rsyslogd_pid(&dir);
    send_tcp(port, &[warm_up(name)]);
    let wait = |seconds: u64, probe: &dyn Fn() -> bool| {
        assert!(
            wait_until(Duration::from_secs(seconds), probe),
            "{name}: {}",
            daemon.own_log()
        )
    };
    wait(60, &ready);
    std::thread::sleep(Duration::from_secs(2));
    let (before, _) = memory_kib(&pid.to_string());
    if !lines.is_empty() {
        send_tcp(port, lines);
    }
    wait(1200, &done);
    // The last commit, then the module's next chores (every 5 s here when idle: `stats.interval`),
    // which give freed heap back to the system.
    std::thread::sleep(Duration::from_secs(12));
    let (after, peak) = memory_kib(&pid.to_string());
    println!(
        "omelse-memory: {name:>16}: VmRSS {:.1} MiB before, {:.1} MiB after, VmHWM {:.1} MiB",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    drop(daemon);
    Run { before, after, peak }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let module = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libomelse.so");
    assert!(module.exists(), "build it first: cargo build --release -p omelse");
    let messages: usize = std::env::var("OMELSE_MEMORY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let cluster = PgCluster::start().expect("PostgreSQL");
    let omelse_config = |url: &str, max_open: usize| {
        format!(
            r#"module(load="imtcp")
module(load="{module}")
input(type="imtcp" port="{{port}}" ruleset="r")
ruleset(name="r" {ruleset}) {{
  action(type="omelse" conninfo="{url}" host.binding="relay" memory.max_open="{max_open}" stats.interval="5"
         spool.file="{{dir}}/omelse.spool" {action})
}}"#,
            module = module.display(),
            ruleset = QueueParams::shipped_ruleset(),
            action = QueueParams::shipped_action()
        )
    };
    println!(
        "omelse-memory: {messages} messages, 7 lines each, rsyslogd {} with the ruleset and action queues of rsyslog-conf/else-server.conf and a spool.file",
        rsyslog_version()
    );

    let chosen = std::env::var("OMELSE_MEMORY_RUNS").unwrap_or_else(|_| "open,closed,bound,file".into());
    let chosen: Vec<&str> = chosen.split(',').map(str::trim).collect();
    let mut runs = std::collections::HashMap::new();
    let open = "SELECT count(*) FROM messages WHERE NOT closed";
    for (key, name, ending, max_open, done) in [
        ("open", "omelse, open", Ending::Open, UNBOUNDED, open),
        (
            "closed",
            "omelse, closed",
            Ending::Closed,
            UNBOUNDED,
            "SELECT count(*) FROM messages WHERE closed",
        ),
        ("bound", "open, bound", Ending::Open, DEFAULT_MAX_OPEN, open),
    ] {
        if !chosen.contains(&key) {
            continue;
        }
        let url = block_on(cluster.create_database());
        let lines = syslog(message_lines(messages, ending));
        let config = omelse_config(&url, max_open);
        runs.insert(
            key,
            run(
                name,
                &config,
                &lines,
                || count(&url, "SELECT count(*) FROM log_events") >= 1,
                || count(&url, done) >= messages as i64,
            ),
        );
        if key == "bound" {
            // The same rsyslogd again on that database: it reads the open messages back.
            let again = "restarted, bound";
            let marker = format!("SELECT count(*) FROM log_events WHERE raw LIKE '%warm-up {again}'");
            runs.insert(
                "restart",
                run(again, &config, &[], || count(&url, &marker) >= 1, || true),
            );
        }
    }

    if chosen.contains(&"file") {
        // The same lines to a file (one byte each): rsyslogd's own cost of receiving and queueing them.
        let lines = syslog(message_lines(messages, Ending::Closed));
        let out = std::env::temp_dir().join(format!("else-bench-memory-{}.out", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let file_config = format!(
            r#"module(load="imtcp")
template(name="one" type="string" string="x")
input(type="imtcp" port="{{port}}" ruleset="r")
ruleset(name="r" queue.type="LinkedList" queue.workerThreads="1" queue.size="100000") {{
  action(type="omfile" file="{out}" template="one"
         queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="10000" queue.workerThreads="2")
}}"#,
            out = out.display()
        );
        let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        let total = lines.len() as u64 + 1;
        runs.insert(
            "file",
            run(
                "no omelse action",
                &file_config,
                &lines,
                || size() >= 1,
                || size() >= total,
            ),
        );
        let _ = std::fs::remove_file(&out);
    }

    let per_message = |a: u64, b: u64| (a as f64 - b as f64) * 1024.0 / messages as f64;
    if let Some(open) = runs.get("open") {
        println!(
            "omelse-memory: growth with {messages} open messages: {:.0} bytes per message (after - before)",
            per_message(open.after, open.before)
        );
        if let Some(closed) = runs.get("closed") {
            println!(
                "omelse-memory: {:.0} bytes per open message more than the closed run; resident sets after, open / closed = {:.2}; peaks, open / closed = {:.2}",
                per_message(open.after, closed.after),
                open.after as f64 / closed.after as f64,
                open.peak as f64 / closed.peak as f64
            );
        }
        if let Some(bare) = runs.get("file") {
            println!(
                "omelse-memory: resident sets after, open / no omelse = {:.2}",
                open.after as f64 / bare.after as f64
            );
        }
    }
    if let Some(bound) = runs.get("bound") {
        let growth = bound.after.saturating_sub(bound.before);
        let budget = bound_budget_kib(messages);
        println!(
            "omelse-memory: with memory.max_open={DEFAULT_MAX_OPEN} (the default): growth {:.1} MiB (budget {:.1} MiB), {:.0} bytes per message of the {messages}",
            growth as f64 / 1024.0,
            budget as f64 / 1024.0,
            per_message(bound.after, bound.before)
        );
        assert!(
            growth <= budget,
            "rsyslogd grew by {growth} KiB with the default bound, more than its budget of {budget} KiB"
        );
    }
    if let Some(restart) = runs.get("restart") {
        println!(
            "omelse-memory: restarted with {messages} open messages in the database: VmRSS {:.1} MiB once resumed, peak {:.1} MiB",
            restart.before as f64 / 1024.0,
            restart.peak as f64 / 1024.0
        );
    }
}

/// What rsyslogd may grow by, in KiB, holding `messages` open messages with the default bound:
/// [`DEFAULT_MAX_OPEN`] lives at their uncompacted size (about 3.7 KB each, 3,662 bytes measured
/// before lives were kept compact), and for every message beyond the bound its entry out of memory
/// (40 bytes, in a hash map that may be twice their count, and the map's growth) at 128 bytes.
fn bound_budget_kib(messages: usize) -> u64 {
    let lives = DEFAULT_MAX_OPEN as u64 * 4_096;
    let evicted = messages.saturating_sub(DEFAULT_MAX_OPEN) as u64 * 128;
    (lives + evicted) / 1024
}

/// As a Postfix host's rsyslogd forwards them: `<22>` (mail.info) in front.
fn syslog(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().map(|l| format!("<22>{l}")).collect()
}

fn rsyslog_version() -> String {
    std::process::Command::new("/usr/sbin/rsyslogd")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default()
}
