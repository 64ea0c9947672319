//! `make bench`: the memory of omelse inside rsyslogd holding 100,000 open messages, beside the
//! same rsyslogd and omelse given as many lines whose messages close, and beside rsyslogd with no
//! omelse action at all. Prints the figures for docs/benchmarks.md.
//!
//! `cargo bench -p else-tests --bench omelse_memory` (build omelse.so in release first:
//! `cargo build --release -p omelse`). `OMELSE_MEMORY_MESSAGES` changes the count (default 100,000).
//!
//! Each message is seven lines, one message a second of log time (so 100,000 span 28 hours, ending
//! now; see `else_tests::bench::message_lines`): the same five lines, then two deferred attempts
//! (the message stays open: no `removed`) or a delivery and `removed`. The resident set of rsyslogd
//! (VmRSS, and its peak VmHWM, from /proc) is read once the module is loaded and connected, and
//! again once every message is in PostgreSQL.

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use else_tests::bench::{memory_kib, message_lines, rsyslogd_pid, Ending};
use else_tests::rsyslogd::{free_port, send_tcp, wait_until, Rsyslogd};
use else_tests::PgCluster;
use else_tests::{block_on, count};

/// What one run measured, in KiB.
struct Run {
    before: u64,
    after: u64,
    peak: u64,
}

/// Starts rsyslogd on `config`, sends one warm-up line and waits for `ready`; reads its memory,
/// sends `lines`, waits for `done`, waits two seconds more for the last commit, reads it again.
fn run(name: &str, config: &str, lines: &[String], ready: impl Fn() -> bool, done: impl Fn() -> bool) -> Run {
    let dir = std::env::temp_dir().join(format!("else-bench-memory-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let daemon = Rsyslogd::start(&dir, &config.replace("{port}", &port.to_string()));
    let pid = rsyslogd_pid(&dir);
    send_tcp(
        port,
        &["<22>2026-01-01T00:00:00+00:00 mx1 postfix/anvil[1]: statistics: warm-up".to_owned()],
    );
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
    send_tcp(port, lines);
    wait(1200, &done);
    std::thread::sleep(Duration::from_secs(2));
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
    let omelse_config = |url: &str| {
        format!(
            r#"module(load="imtcp")
module(load="{module}")
input(type="imtcp" port="{{port}}" ruleset="r")
ruleset(name="r" queue.type="LinkedList" queue.workerThreads="1" queue.size="100000") {{
  action(type="omelse" conninfo="{url}" action.resumeRetryCount="-1"
         queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="10000" queue.workerThreads="2")
}}"#,
            module = module.display()
        )
    };
    println!(
        "omelse-memory: {messages} messages, 7 lines each, rsyslogd {} with the ruleset and action queues of rsyslog-conf/else-server.conf",
        rsyslog_version()
    );

    let mut runs = Vec::new();
    let mut closed_lines = Vec::new();
    for (name, ending, done) in [
        (
            "omelse, open",
            Ending::Open,
            "SELECT count(*) FROM messages WHERE NOT closed",
        ),
        (
            "omelse, closed",
            Ending::Closed,
            "SELECT count(*) FROM messages WHERE closed",
        ),
    ] {
        let url = block_on(cluster.create_database());
        let lines = syslog(message_lines(messages, ending));
        runs.push(run(
            name,
            &omelse_config(&url),
            &lines,
            || count(&url, "SELECT count(*) FROM log_events") >= 1,
            || count(&url, done) >= messages as i64,
        ));
        closed_lines = lines;
    }
    let (open, closed) = (&runs[0], &runs[1]);

    // The same lines to a file (one byte each): rsyslogd's own cost of receiving and queueing them.
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
    let total = closed_lines.len() as u64 + 1;
    let bare = run(
        "no omelse action",
        &file_config,
        &closed_lines,
        || size() >= 1,
        || size() >= total,
    );
    let _ = std::fs::remove_file(&out);

    let per_message = |a: u64, b: u64| (a as f64 - b as f64) * 1024.0 / messages as f64;
    println!(
        "omelse-memory: growth with {messages} open messages: {:.0} bytes per message (after - before); {:.0} bytes per message more than the closed run",
        per_message(open.after, open.before),
        per_message(open.after, closed.after)
    );
    println!(
        "omelse-memory: ratio of resident sets after: open / closed = {:.2}, open / no omelse = {:.2}; peaks: open / closed = {:.2}",
        open.after as f64 / closed.after as f64,
        open.after as f64 / bare.after as f64,
        open.peak as f64 / closed.peak as f64
    );
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
