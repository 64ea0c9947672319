//! Acceptance through a real Postfix: a private instance (own config and queue directories)
//! with two smtpd listeners on 127.0.0.2 and 127.0.0.3 (named in master.cf;
//! `inet_interfaces` only accepts configured interface addresses, so it stays loopback-only), each asking its own GreyLSE ("MX 1"
//! and "MX 2") with `check_policy_service`; both GreyLSE share one PostgreSQL database.
//! Needs root and Postfix installed (Debian package `postfix`); skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::tests::{database, served_on};
use super::*;

const POSTFIX: &str = "/usr/sbin/postfix";

/// A private Postfix instance, stopped and removed on drop.
struct Postfix {
    dir: PathBuf,
}

impl Postfix {
    fn start(policy1: &str, policy2: &str, port1: u16, port2: u16) -> Postfix {
        let dir = std::env::temp_dir().join(format!("greylse-postfix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["etc", "spool", "data"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        std::fs::write(
            dir.join("etc/main.cf"),
            format!(
                "compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.greylse.test
mydestination =
relay_domains = rcpt.example
alias_maps =
alias_database =
biff = no
smtpd_data_restrictions = check_client_access static:HOLD
mx1_restrictions = reject_unauth_destination, check_policy_service inet:{policy1}
mx2_restrictions = reject_unauth_destination, check_policy_service inet:{policy2}
"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("etc/master.cf"),
            format!(
                "127.0.0.2:{port1} inet n - n - - smtpd -o syslog_name=mx1 -o smtpd_recipient_restrictions=$mx1_restrictions
127.0.0.3:{port2} inet n - n - - smtpd -o syslog_name=mx2 -o smtpd_recipient_restrictions=$mx2_restrictions
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"
            ),
        )
        .unwrap();
        // The master's lock file lives in data_directory, which postfix must own.
        let chown = Command::new("chown")
            .arg("postfix:")
            .arg(dir.join("data"))
            .status()
            .unwrap();
        assert!(chown.success());
        let postfix = Postfix { dir };
        postfix.run(&["start"]);
        postfix
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "postfix {args:?}: {text}");
        text
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("maillog")).unwrap_or_default()
    }

    /// The queue file of a message, as `postcat` shows it.
    fn postcat(&self, queue_id: &str) -> String {
        let out = Command::new("/usr/sbin/postcat")
            .arg("-c")
            .arg(self.dir.join("etc"))
            .args(["-q", queue_id])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .arg("abort")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port on a loopback address (the race with another taker is acceptable in tests).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal SMTP client: one line per command, the last reply line returned.
struct Smtp {
    stream: BufReader<TcpStream>,
}

impl Smtp {
    async fn connect(addr: &str) -> Smtp {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(addr).await {
                Ok(s) => break s,
                Err(e) if std::time::Instant::now() > deadline => panic!("{addr}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let mut smtp = Smtp {
            stream: BufReader::new(stream),
        };
        let banner = smtp.reply().await;
        assert!(banner.starts_with("220"), "{banner}");
        smtp
    }

    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            tokio::time::timeout(Duration::from_secs(30), self.stream.read_line(&mut line))
                .await
                .expect("SMTP reply in time")
                .unwrap();
            assert!(!line.is_empty(), "SMTP connection closed");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_owned();
            }
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }
}

/// One attempt: the RCPT reply, and the queue id if the message was accepted.
async fn attempt(addr: &str, sender: &str, rcpt: &str) -> (String, Option<String>) {
    let mut smtp = Smtp::connect(addr).await;
    assert!(smtp.command("EHLO client.example").await.starts_with("250"));
    assert!(smtp.command(&format!("MAIL FROM:<{sender}>")).await.starts_with("250"));
    let rcpt_reply = smtp.command(&format!("RCPT TO:<{rcpt}>")).await;
    let mut queue_id = None;
    if rcpt_reply.starts_with("250") {
        assert!(smtp.command("DATA").await.starts_with("354"));
        let done = smtp.command("Subject: greylisting test\r\n\r\nHello.\r\n.").await;
        assert!(done.starts_with("250"), "{done}");
        queue_id = done.rsplit(' ').next().map(str::to_owned);
    }
    let _ = smtp.command("QUIT").await;
    (rcpt_reply, queue_id)
}

fn skip_reason() -> Option<&'static str> {
    if !Path::new(POSTFIX).exists() {
        return Some("postfix not installed");
    }
    // Effective uid, from /proc (no libc dependency for one test).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        == Some("0");
    (!root).then_some("not root (the postfix master needs it)")
}

#[tokio::test]
async fn postfix_smtpd_greylists_and_two_mx_share_the_state() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let url = database().await;
    let cfg = |host: &str| GreylistConfig {
        hostname: host.into(),
        delay_secs: 2,
        awl_sender_passes: 0,
        ..Default::default()
    };
    let policy1 = served_on(&url, cfg("mx1.greylse.test"), Arc::new(SystemClock)).await;
    let policy2 = served_on(&url, cfg("mx2.greylse.test"), Arc::new(SystemClock)).await;
    let (port1, port2) = (free_port("127.0.0.2"), free_port("127.0.0.3"));
    let postfix = Postfix::start(&policy1, &policy2, port1, port2);
    let mx1 = format!("127.0.0.2:{port1}");
    let mx2 = format!("127.0.0.3:{port2}");

    let (first, _) = attempt(&mx1, "alice@sender.example", "bob@rcpt.example").await;
    assert!(
        first.starts_with("450 4.2.0 <bob@rcpt.example>: Recipient address rejected: Greylisted by GreyLSE"),
        "{first}\n{}",
        postfix.log()
    );
    let (early, _) = attempt(&mx2, "alice@sender.example", "bob@rcpt.example").await;
    assert!(early.starts_with("450 4.2.0"), "{early}");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    // The retry goes to the other MX, which knows the triplet from the shared database.
    let (retry, queue_id) = attempt(&mx2, "alice@sender.example", "bob@rcpt.example").await;
    assert!(retry.starts_with("250"), "{retry}\n{}", postfix.log());
    let queue_id = queue_id.expect("queued");
    let mut message = String::new();
    for _ in 0..50 {
        message = postfix.postcat(&queue_id);
        if message.contains("X-Greylist") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        message.contains("X-Greylist: delayed 2 seconds by GreyLSE at mx2.greylse.test; ")
            || message.contains("X-Greylist: delayed 3 seconds by GreyLSE at mx2.greylse.test; "),
        "{message}"
    );
    let log = postfix.log();
    assert!(
        log.contains("mx1/smtpd") && log.contains("NOQUEUE: reject: RCPT from") && log.contains("450 4.2.0"),
        "{log}"
    );
}
