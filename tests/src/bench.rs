//! What the benchmarks share (`make bench`): the resident memory and CPU time of processes, and
//! the synthetic messages of the memory benchmark.

use std::path::Path;
use std::time::Duration;

/// VmRSS and VmHWM (peak) of a process (`pid`, or `"self"`), in KiB, from `/proc/PID/status`.
pub fn memory_kib(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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

/// The pid of the rsyslogd started in `dir` ([`crate::rsyslogd::Rsyslogd::start`]).
pub fn rsyslogd_pid(dir: &Path) -> u32 {
    let file = dir.join("rsyslogd.pid");
    assert!(
        crate::rsyslogd::wait_until(Duration::from_secs(20), || file.exists()),
        "no rsyslogd.pid"
    );
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    text.trim().parse().expect("rsyslogd.pid")
}

/// The fields of `/proc/PID/stat` after the command name (the first is the state), or none when
/// the process is gone.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 2..];
    Some(
        after_name
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / crate::sys::clock_ticks_per_second()
}

/// CPU time (user + system, seconds) process `pid` has used, all its threads together.
pub fn cpu_seconds(pid: u32) -> f64 {
    // After the state: ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt, majflt, cmajflt, utime, stime.
    stat_fields(pid).map_or(0.0, |f| ticks_to_seconds(f[10] + f[11]))
}

/// CPU time (seconds) of a server and its children: its own, its children's that it waited for
/// (PostgreSQL's backends that exited), and its live children's. A difference of two readings is
/// what the server spent meanwhile.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    let Some(own) = stat_fields(pid) else {
        return 0.0;
    };
    let children: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat_fields)
        .filter(|f| f[0] == u64::from(pid))
        .map(|f| f[10] + f[11])
        .sum();
    ticks_to_seconds(own[10] + own[11] + own[12] + own[13] + children)
}

/// How each synthetic message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Two deferred attempts and no `removed`: the correlator keeps the message open.
    Open,
    /// Delivered and `removed`: the correlator forgets the message ten minutes of log time later.
    Closed,
}

/// `messages` messages of seven syslog lines each (RFC 3339 times, host `mx1`, no `<PRI>`), one
/// message a second of log time ending a minute ago (several a second beyond 100,000, so that they
/// span at most 28 hours: an open message not named for 10 days would be forgotten, `vanished`):
/// one smtpd session each (connect, `client=`, disconnect), cleanup `message-id=`, qmgr `from=…
/// nrcpt=1`, then two `status=deferred` attempts ([`Ending::Open`]) or `status=sent` and qmgr
/// `removed` ([`Ending::Closed`]).
pub fn message_lines(messages: usize, ending: Ending) -> Vec<String> {
    let per_second = messages.div_ceil(100_000).max(1);
    let seconds = messages.div_ceil(per_second) as i64;
    let start = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(seconds + 60);
    let mut out = Vec::with_capacity(messages * 7);
    for i in 0..messages {
        let offset = (i / per_second) as i64;
        let t = (start + jiff::SignedDuration::from_secs(offset)).strftime("%Y-%m-%dT%H:%M:%S+00:00");
        let queue_id = format!("{:X}", 0x10_0000_0000u64 + i as u64);
        let pid = 10_000 + i % 20_000;
        let client = format!("client{}.example.net[198.51.100.{}]", i % 5000, 1 + i % 250);
        let head = |program: &str, pid: usize| format!("{t} mx1 postfix/{program}[{pid}]: ");
        out.push(format!("{}connect from {client}", head("smtpd", pid)));
        out.push(format!("{}{queue_id}: client={client}", head("smtpd", pid)));
        out.push(format!(
            "{}{queue_id}: message-id=<{i}.bench@example.net>",
            head("cleanup", 500)
        ));
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
