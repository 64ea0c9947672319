//! `make bench`: the memory of omelse inside rsyslogd holding 100,000 open messages, beside the
//! same rsyslogd and omelse given as many lines whose messages close, and beside rsyslogd with no
//! omelse action at all. Prints the figures for docs/benchmarks.md.
//!
//! `cargo bench -p else-tests --bench omelse_memory` (build omelse.so in release first:
//! `cargo build --release -p omelse`). `OMELSE_MEMORY_MESSAGES` changes the count (default 100,000).
//!
//! Each message is seven lines of one smtpd session, one message a second of log time (so the
//! 100,000 span 28 hours, ending now): connect, `client=`, cleanup `message-id=`, qmgr `from=…
//! nrcpt=1`, disconnect, then either two `status=deferred` attempts (the message stays open: no
//! `removed`) or one `status=sent` and qmgr `removed` (it closes). The resident set of rsyslogd
//! (VmRSS, and its peak VmHWM, from /proc) is read once the module is loaded and connected, and
//! again once every message is in PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use else_tests::rsyslogd::{free_port, send_tcp, wait_until, Rsyslogd};
use else_tests::PgCluster;

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

async fn count(url: &str, sql: &str) -> i64 {
    let client = omelse::store::connect(url).await.expect("connect");
    client.query_one(sql, &[]).await.map(|r| r.get(0)).unwrap_or(0)
}

/// How each message ends.
#[derive(Clone, Copy, PartialEq)]
enum Ending {
    /// Two deferred attempts and no `removed`: the correlator keeps the message open.
    Open,
    /// Delivered and `removed`: the correlator forgets the message ten minutes of log time later.
    Closed,
}

/// Seven syslog lines per message, `<22>` (mail.info) with RFC 3339 times, one message a second.
fn lines(messages: usize, ending: Ending) -> Vec<String> {
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(messages as i64 + 60);
    let mut out = Vec::with_capacity(messages * 7);
    for i in 0..messages {
        let t = (start + jiff::SignedDuration::from_secs(i as i64)).strftime("%Y-%m-%dT%H:%M:%S+00:00");
        let queue_id = format!("{:X}", 0x10_0000_0000u64 + i as u64);
        let pid = 10_000 + i % 20_000;
        let client = format!("client{}.example.net[198.51.100.{}]", i % 5000, 1 + i % 250);
        let head = |program: &str, pid: usize| format!("<22>{t} mx1 postfix/{program}[{pid}]: ");
        out.push(format!("{}connect from {client}", head("smtpd", pid)));
        out.push(format!("{}{queue_id}: client={client}", head("smtpd", pid)));
        out.push(format!("{}{queue_id}: message-id=<{i}.bench@example.net>", head("cleanup", 500)));
        out.push(format!(
            "{}{queue_id}: from=<sender{}@example.net>, size={}, nrcpt=1 (queue active)",
            head("qmgr", 400),
            i % 1000,
            2000 + i % 5000
        ));
        out.push(format!(
            "{}disconnect from {client} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
            head("smtpd", pid)
        ));
        let to = format!("{}{queue_id}: to=<user{}@example.org>, ", head("smtp", 600), i % 5000);
        match ending {
            Ending::Open => {
                for delay in ["0.5", "1.2"] {
                    out.push(format!("{to}relay=none, delay={delay}, delays=0.1/0/0.4/0, dsn=4.4.1, status=deferred (connect to mx.example.org[192.0.2.1]:25: Connection refused)"));
                }
            }
            Ending::Closed => {
                out.push(format!("{to}relay=mx.example.org[192.0.2.1]:25, delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)"));
                out.push(format!("{}{queue_id}: removed", head("qmgr", 400)));
            }
        }
    }
    out
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn pid_of(dir: &Path) -> u32 {
    let file = dir.join("rsyslogd.pid");
    assert!(
        wait_until(Duration::from_secs(20), || file.exists()),
        "no rsyslogd.pid"
    );
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    text.trim().parse().expect("rsyslogd.pid")
}

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
    let pid = pid_of(&dir);
    send_tcp(port, &["<22>2026-01-01T00:00:00+00:00 mx1 postfix/anvil[1]: statistics: warm-up".to_owned()]);
    assert!(wait_until(Duration::from_secs(60), &ready), "{name}: {}", daemon.own_log());
    std::thread::sleep(Duration::from_secs(2));
    let (before, _) = memory(pid);
    send_tcp(port, lines);
    assert!(wait_until(Duration::from_secs(1200), &done), "{name}: {}", daemon.own_log());
    std::thread::sleep(Duration::from_secs(2));
    let (after, peak) = memory(pid);
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

    let open_url = block_on(cluster.create_database());
    let open_lines = lines(messages, Ending::Open);
    let open = run(
        "omelse, open",
        &omelse_config(&open_url),
        &open_lines,
        || block_on(count(&open_url, "SELECT count(*) FROM log_events")) >= 1,
        || block_on(count(&open_url, "SELECT count(*) FROM messages WHERE NOT closed")) >= messages as i64,
    );
    drop(open_lines);

    let closed_url = block_on(cluster.create_database());
    let closed_lines = lines(messages, Ending::Closed);
    let closed = run(
        "omelse, closed",
        &omelse_config(&closed_url),
        &closed_lines,
        || block_on(count(&closed_url, "SELECT count(*) FROM log_events")) >= 1,
        || block_on(count(&closed_url, "SELECT count(*) FROM messages WHERE closed")) >= messages as i64,
    );

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
    let bare = run("no omelse action", &file_config, &closed_lines, || size() >= 1, || size() >= total);
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
