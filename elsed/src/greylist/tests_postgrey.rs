//! Side by side with Debian's postgrey (1.37) on the same requests, with matching settings
//! (delay 300 s, retry window 2 days, max age 35 days, /24 and /64, no auto-whitelist, no
//! whitelists). Postgrey takes the time from the `policy_test_time` attribute (meant for its
//! test script); GreyLSE ignores that attribute and is given the same time by its clock.
//! Same decisions, except where GreyLSE differs by design (asserted, and listed in the report).
//! Needs root and postgrey installed (Debian package `postgrey`); skipped otherwise.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::tests::{database, served_on, ManualClock};
use super::*;

const POSTGREY: &str = "/usr/sbin/postgrey";

/// A postgrey process on a private database directory, killed on drop.
pub(super) struct Postgrey {
    child: Child,
    dir: std::path::PathBuf,
}

impl Postgrey {
    pub(super) fn start(port: u16) -> Postgrey {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("greylse-postgrey-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).unwrap();
        std::fs::write(dir.join("empty"), "").unwrap();
        let chown = Command::new("chown")
            .args(["-R", "postgrey:"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let d = dir.display();
        let child = Command::new(POSTGREY)
            .arg(format!("--inet=127.0.0.1:{port}"))
            .arg(format!("--dbdir={d}/db"))
            .args(["--user=postgrey", "--group=postgrey", "--delay=300", "--max-age=35"])
            .args(["--retry-window=2", "--auto-whitelist-clients=0", "--hostname=pg"])
            .arg(format!("--whitelist-clients={d}/empty"))
            .arg(format!("--whitelist-recipients={d}/empty"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Postgrey { child, dir }
    }
}

impl Postgrey {
    /// The server's process id (postgrey serves every connection from this one process).
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Postgrey {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(addr: &str) -> TcpStream {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(e) if std::time::Instant::now() > deadline => panic!("{addr}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Sends one request and reads its reply (without `action=`).
async fn ask(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\n\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.push(byte[0]);
    }
    let text = String::from_utf8(buf).unwrap();
    text.trim_end().strip_prefix("action=").unwrap_or(&text).to_owned()
}

/// The decision, without the wording: `DEFER`, `PREPEND <seconds>`, `DUNNO`.
fn class(reply: &str) -> String {
    if reply.starts_with("DEFER_IF_PERMIT 4.2.0 ") {
        "DEFER".into()
    } else if let Some(rest) = reply.strip_prefix("PREPEND X-Greylist: delayed ") {
        format!("PREPEND {}", rest.split(' ').next().unwrap_or(""))
    } else {
        reply.to_owned()
    }
}

#[tokio::test]
async fn same_decisions_as_postgrey_except_by_design() {
    if else_tests::require::tool(POSTGREY, "postgrey").is_none()
        || !else_tests::require::root("postgrey changes to its own user")
    {
        return;
    }
    let port = else_tests::free_port();
    let _postgrey = Postgrey::start(port);
    let clock = ManualClock::new();
    let url = database().await;
    let cfg = GreylistConfig {
        awl_sender_passes: 0,
        hostname: "gl".into(),
        ..Default::default()
    };
    let greylse_addr = served_on(&url, cfg, clock.clone()).await;
    let mut pg = connect(&format!("127.0.0.1:{port}")).await;
    let mut gl = connect(&greylse_addr).await;

    const DAY: i64 = 86_400;
    // (seconds to advance, client, sender, recipient, postgrey's decision, GreyLSE's).
    let steps: &[(i64, &str, &str, &str, &str, &str)] = &[
        (0, "192.0.2.10", "alice@s.example", "bob@r.example", "DEFER", "DEFER"),
        (60, "192.0.2.10", "alice@s.example", "bob@r.example", "DEFER", "DEFER"),
        (
            240,
            "192.0.2.10",
            "alice@s.example",
            "bob@r.example",
            "PREPEND 300",
            "PREPEND 300",
        ),
        (10, "192.0.2.10", "alice@s.example", "bob@r.example", "DUNNO", "DUNNO"),
        // Same /24, another host of the pool.
        (0, "192.0.2.99", "alice@s.example", "bob@r.example", "DUNNO", "DUNNO"),
        (0, "192.0.3.10", "alice@s.example", "bob@r.example", "DEFER", "DEFER"),
        // IPv6, grouped by /64.
        (
            0,
            "2001:db8:1:2::1",
            "alice@s.example",
            "bob@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "2001:db8:1:2::99",
            "alice@s.example",
            "bob@r.example",
            "PREPEND 300",
            "PREPEND 300",
        ),
        // VERP numbers, +extension, BATV, the null sender.
        (
            0,
            "192.0.2.10",
            "list-123@lists.example",
            "bob@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "192.0.2.10",
            "list-456@lists.example",
            "bob@r.example",
            "PREPEND 300",
            "PREPEND 300",
        ),
        (
            0,
            "192.0.2.10",
            "alice+a@s.example",
            "carol@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "192.0.2.10",
            "alice+b@s.example",
            "carol@r.example",
            "PREPEND 300",
            "PREPEND 300",
        ),
        (
            0,
            "192.0.2.10",
            "prvs=0123456789=dave@s.example",
            "erin@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "192.0.2.10",
            "prvs=9876543210=dave@s.example",
            "erin@r.example",
            "PREPEND 300",
            "PREPEND 300",
        ),
        (0, "192.0.2.10", "", "frank@r.example", "DEFER", "DEFER"),
        (300, "192.0.2.10", "", "frank@r.example", "PREPEND 300", "PREPEND 300"),
        // First retry after the retry window: greylisted anew.
        (0, "192.0.2.10", "alice@s.example", "ginny@r.example", "DEFER", "DEFER"),
        (
            2 * DAY + 1,
            "192.0.2.10",
            "alice@s.example",
            "ginny@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "192.0.2.10",
            "alice@s.example",
            "ginny@r.example",
            "PREPEND 300",
            "PREPEND 300",
        ),
        // By design: SRS addresses change every day; GreyLSE keys the original sender.
        (
            0,
            "192.0.2.10",
            "SRS0=aaaa=T1=orig.example=hank@fwd.example",
            "ivy@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "192.0.2.10",
            "SRS0=bbbb=T2=orig.example=hank@fwd.example",
            "ivy@r.example",
            "DEFER",
            "PREPEND 300",
        ),
        // By design: per-message bounce addresses (ESP style) fold into one sender.
        (
            0,
            "192.0.2.10",
            "bounce-mc.us5_4765.a1b2c3-ivy=r.example@esp.example",
            "ivy@r.example",
            "DEFER",
            "DEFER",
        ),
        (
            300,
            "192.0.2.10",
            "bounce-mc.us5_4765.d4e5f6-ivy=r.example@esp.example",
            "ivy@r.example",
            "DEFER",
            "PREPEND 300",
        ),
        // By design: max age is checked on every lookup; Postgrey forgets only when its
        // nightly maintenance runs, so until then the old triplet still passes.
        (
            36 * DAY,
            "192.0.2.10",
            "alice@s.example",
            "bob@r.example",
            "DUNNO",
            "DEFER",
        ),
    ];
    let mut table = String::new();
    for (i, &(advance, client, sender, rcpt, want_pg, want_gl)) in steps.iter().enumerate() {
        clock.advance(advance);
        let request = format!(
            "request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address={client}\n\
             client_name=unknown\nreverse_client_name=unknown\nsender={sender}\n\
             recipient={rcpt}\netrn_domain=\ninstance=step{i}\npolicy_test_time={}\n\n",
            clock.now()
        );
        let got_pg = class(&ask(&mut pg, &request).await);
        let got_gl = class(&ask(&mut gl, &request).await);
        table.push_str(&format!(
            "{i:2} +{advance:>7}s {client:>17} {sender:>50} -> {rcpt:<16} postgrey={got_pg:<12} greylse={got_gl}\n"
        ));
        assert_eq!(
            (got_pg.as_str(), got_gl.as_str()),
            (want_pg, want_gl),
            "step {i}\n{table}"
        );
    }
    eprintln!("{table}");
}
