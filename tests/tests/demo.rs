//! `make demo`'s live part: `else-demo` starts the three servers, keeps mail flowing into the
//! database through the real pipeline, and stops every process it started on SIGTERM.
//!
//! Needs root, Postfix, rsyslog-relp and swaks (make test installs them); skipped otherwise.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use else_tests::rsyslogd::wait_until;
use else_tests::PgCluster;
use else_tests::{snmpd, topology};

/// How many messages of each kind the demo's mail reached the database with, by (server, flow,
/// state), and how many rejects.
async fn demo_traffic(client: &tokio_postgres::Client) -> (Vec<(String, String, String)>, i64) {
    let kinds = client
        .query(
            "SELECT DISTINCT s.name, coalesce(m.flow, ''), m.state FROM messages m
               JOIN servers s ON s.id = m.server_id WHERE m.message_id LIKE 'demo-%@else.demo'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let rejects = client
        .query_one("SELECT count(*) FROM rejects WHERE action = 'reject'", &[])
        .await
        .unwrap()
        .get(0);
    (kinds, rejects)
}

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

/// One count from the database, from a thread of its own (the test's runtime is busy waiting).
fn block_on_count(url: &str, sql: &str) -> i64 {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let client = omelse::store::connect(&url).await.unwrap();
            client.query_one(&sql, &[]).await.map_or(-1, |row| row.get::<_, i64>(0))
        })
    })
    .join()
    .unwrap()
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Stops the demo if the test fails half-way, so that it does not outlive the test.
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0 as i32, libc::SIGTERM) };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_keeps_mail_flowing_and_stops_cleanly() {
    if let Some(why) = topology::unavailable() {
        println!("skipped: {why}");
        return;
    }
    // The demo's fixed addresses may be taken by a `make demo` running on this machine.
    if topology::rerun_in_own_network_namespace("the_demo_keeps_mail_flowing_and_stops_cleanly") {
        return;
    }
    let url = PgCluster::shared().create_database().await;
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
    let client = omelse::store::connect(&url).await.unwrap();
    let wanted = [
        ("in1", "inbound", "sent"),
        ("out1", "outbound", "sent"),
        ("out1", "outbound", "bounced"),
        ("out1", "internal", "sent"),
        ("in1", "internal", "sent"),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let (kinds, rejects) = loop {
        let (kinds, rejects) = demo_traffic(&client).await;
        let all = wanted
            .iter()
            .all(|(s, f, st)| kinds.contains(&(s.to_string(), f.to_string(), st.to_string())));
        if (all && rejects >= 2) || Instant::now() > deadline {
            break (kinds, rejects);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for (server, flow, state) in wanted {
        assert!(
            kinds.contains(&(server.into(), flow.into(), state.into())),
            "no {flow} message {state} on {server} yet: {kinds:?}\n{}",
            output()
        );
    }
    assert!(
        rejects >= 2,
        "the unknown user and the blocked client are rejected:\n{}",
        output()
    );

    // Both hosts' queues are polled over SNMP, for the servers' pages.
    let polled = !snmpd::available()
        || wait_until(Duration::from_secs(60), || {
            block_on_count(
                &url,
                "SELECT count(DISTINCT s.name) FROM snmp_samples p JOIN servers s ON s.id = p.server_id
                          WHERE p.reachable AND s.name IN ('in1', 'out1')",
            ) == 2
        });
    assert!(polled, "in1 and out1 answer SNMP:\n{}", output());

    let masters = postfix_masters_of(demo.id());
    assert_eq!(masters.len(), 3, "in1, out1 and the Internet run");
    assert!(masters.iter().all(|&pid| alive(pid)), "{masters:?}");
    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
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
