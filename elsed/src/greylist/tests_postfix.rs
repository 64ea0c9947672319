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

use else_tests::postfix::PrivatePostfix;

use super::tests::{database, served_on};
use super::*;

/// The private Postfix: two smtpd listeners ("MX 1" and "MX 2"), each asking its own GreyLSE.
fn start_postfix(policy1: &str, policy2: &str, port1: u16, port2: u16) -> PrivatePostfix {
    let main = format!(
        "myhostname = mx.greylse.test
relay_domains = rcpt.example
smtpd_data_restrictions = check_client_access static:HOLD
mx1_restrictions = reject_unauth_destination, check_policy_service inet:{policy1}
mx2_restrictions = reject_unauth_destination, check_policy_service inet:{policy2}
"
    );
    let listeners = format!(
        "127.0.0.2:{port1} inet n - n - - smtpd -o syslog_name=mx1 -o smtpd_recipient_restrictions=$mx1_restrictions
127.0.0.3:{port2} inet n - n - - smtpd -o syslog_name=mx2 -o smtpd_recipient_restrictions=$mx2_restrictions
"
    );
    PrivatePostfix::prepare("greylse-postfix").start(&main, &listeners, &[])
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

#[tokio::test]
async fn postfix_smtpd_greylists_and_two_mx_share_the_state() {
    if !else_tests::postfix::available() {
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
    let postfix = start_postfix(&policy1, &policy2, port1, port2);
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
