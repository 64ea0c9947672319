//! `make demo`'s live part: `else-demo` starts the three servers, keeps mail flowing into the
//! database through the real pipeline, and stops every process it started on SIGTERM.
//!
//! Needs root, Postfix, rsyslog-relp and swaks (make test installs them); skipped otherwise.

#![deny(unsafe_code)]

use std::process::{Command, Stdio};
use std::time::Duration;

use else_tests::rsyslogd::wait_until;
use else_tests::{block_on, count, PgCluster};
use else_tests::{snmpd, sys, topology};

/// The process ids of the Postfix masters that the demo with process id `pid` started (their
/// instances live in `<tmp>/else-e2e-<name>-<pid>`).
fn postfix_masters_of(pid: u32) -> Vec<i32> {
    ["in1", "out1", "internet"]
        .iter()
        .filter_map(|name| {
            let file = std::env::temp_dir().join(format!("else-e2e-{name}-{pid}/spool/pid/master.pid"));
            std::fs::read_to_string(file).ok()?.trim().parse().ok()
        })
        .collect()
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Stops the demo if the test fails half-way, so that it does not outlive the test.
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        sys::signal(self.0, libc::SIGTERM);
    }
}

#[test]
fn the_demo_keeps_mail_flowing_and_stops_cleanly() {
    if let Some(why) = topology::unavailable() {
        else_tests::missing(why);
        return;
    }
    // The demo's fixed addresses may be taken by a `make demo` running on this machine.
    if topology::rerun_in_own_network_namespace("the_demo_keeps_mail_flowing_and_stops_cleanly") {
        return;
    }
    let url = block_on(PgCluster::shared().create_database());
    let dir = std::env::temp_dir().join(format!("else-demo-test-{}", std::process::id()));
    let log = dir.with_extension("log");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_else-demo"))
        .args(["--database-url", &url, "--dir"])
        .arg(&dir)
        .args(["--interval", "1", "--greylist-delay", "2", "--busy-period", "10"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start else-demo");
    let stop = Stop(demo.id());
    let output = || std::fs::read_to_string(&log).unwrap_or_default();

    let started = wait_until(Duration::from_secs(120), || output().contains("else-demo: INCOMING"));
    assert!(started, "else-demo starts the servers:\n{}", output());
    // Each kind of mail the demo sends reaches the database: (server, flow, final state).
    let wanted = [
        ("in1", "inbound", "sent"),
        ("out1", "outbound", "sent"),
        ("out1", "outbound", "bounced"),
        ("out1", "internal", "sent"),
        ("in1", "internal", "sent"),
    ];
    let missing = || -> Vec<(&str, &str, &str)> {
        let found = |(server, flow, state): &(&str, &str, &str)| {
            count(
                &url,
                &format!(
                    "SELECT count(*) FROM messages m JOIN servers s ON s.id = m.server_id
                      WHERE m.message_id LIKE 'demo-%@else.demo'
                        AND s.name = '{server}' AND m.flow = '{flow}' AND m.state = '{state}'"
                ),
            ) > 0
        };
        wanted.iter().filter(|kind| !found(kind)).copied().collect()
    };
    let rejects = || count(&url, "SELECT count(*) FROM rejects WHERE action = 'reject'");
    wait_until(Duration::from_secs(120), || missing().is_empty() && rejects() >= 2);
    let missing = missing();
    assert!(missing.is_empty(), "no such message yet: {missing:?}\n{}", output());
    assert!(
        rejects() >= 2,
        "the unknown user and the blocked client are rejected:\n{}",
        output()
    );

    // Both hosts' queues are polled over SNMP, for the servers' pages.
    let polled = !snmpd::available()
        || wait_until(Duration::from_secs(60), || {
            count(
                &url,
                "SELECT count(DISTINCT s.name) FROM snmp_samples p JOIN servers s ON s.id = p.server_id
                          WHERE p.reachable AND s.name IN ('in1', 'out1')",
            ) == 2
        });
    assert!(polled, "in1 and out1 answer SNMP:\n{}", output());

    let masters = postfix_masters_of(demo.id());
    assert_eq!(masters.len(), 3, "in1, out1 and the Internet run");
    assert!(masters.iter().all(|&pid| alive(pid)), "{masters:?}");
    sys::signal(demo.id(), libc::SIGTERM);
    let stopped = wait_until(Duration::from_secs(60), || matches!(demo.try_wait(), Ok(Some(_))));
    assert!(stopped, "else-demo stops on SIGTERM:\n{}", output());
    assert!(demo.wait().unwrap().success(), "{}", output());
    std::mem::forget(stop);
    assert!(
        wait_until(Duration::from_secs(10), || !masters.iter().any(|&pid| alive(pid))),
        "its Postfix instances are stopped"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&log);
}
