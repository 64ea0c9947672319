//! Acceptance through a real Postfix on loopback, configured with the shipped headers-only
//! snippet (packaging/postfix/headers-only): a message to an unknown remote user bounces at a
//! local sink that answers 550, the postmaster copy reaches the collector, which is down at first
//! (Postfix defers and retries) and stores it once when it is up; the NDR is then linked to the
//! bounced message imported from that Postfix's own log. Needs root and Postfix; skipped otherwise.

use std::path::Path;
use std::time::Duration;

use else_tests::postfix::PrivatePostfix;
use else_tests::PgCluster;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::tests::{certificates, collector, config, database, import_file, tls_config};

/// A private Postfix (directory named after `test`) configured with the shipped files of
/// packaging/postfix/`variant` (`headers-only` or `full`) and `extra_main`: smtpd on
/// `smtpd_port`, NDR copies to the collector on `ndr_port`, mail for remote.test to the sink on
/// `sink_port`.
fn start_postfix(test: &str, variant: &str, ports: (u16, u16, u16), extra_main: &str) -> PrivatePostfix {
    let (smtpd_port, ndr_port, sink_port) = ports;
    let postfix = PrivatePostfix::prepare(&format!("else-ndr-postfix-{test}"));
    let d = postfix.dir.display().to_string();
    let packaging = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/postfix")
        .join(variant);
    let snippet = std::fs::read_to_string(packaging.join("main.cf"))
        .unwrap()
        .replace("hash:/etc/postfix/", &format!("texthash:{d}/etc/"));
    std::fs::copy(
        packaging.join("../ndr_recipient_access"),
        postfix.dir.join("etc/ndr_recipient_access"),
    )
    .unwrap();
    let transport = std::fs::read_to_string(packaging.join("transport"))
        .unwrap()
        .replace("else.example.net:2424", &format!("127.0.0.1:{ndr_port}"));
    std::fs::write(
        postfix.dir.join("etc/transport"),
        format!("{transport}remote.test smtp:[127.0.0.1]:{sink_port}\nndr.test discard:\n"),
    )
    .unwrap();
    let main = format!(
        "myhostname = mx1.ndr.test
mynetworks = 127.0.0.0/8
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
smtp_dns_support_level = disabled
{snippet}{extra_main}"
    );
    // The full variant's own bounce/defer services (through its BCC cleanup), made to run
    // unchrooted from this private directory.
    let mut listeners = format!("127.0.0.1:{smtpd_port} inet n - n - - smtpd\n");
    let mut omit: &[&str] = &[];
    if variant == "full" {
        std::fs::copy(
            packaging.join("ndr_bcc_header_checks"),
            postfix.dir.join("etc/ndr_bcc_header_checks"),
        )
        .unwrap();
        let services = std::fs::read_to_string(packaging.join("master.cf"))
            .unwrap()
            .replace("regexp:/etc/postfix/", &format!("regexp:{d}/etc/"))
            .replace("       y       ", "       n       ");
        listeners = format!("{services}{listeners}");
        omit = &["bounce", "defer"];
    }
    postfix.start(&main, &listeners, omit)
}

/// Waits (at most 30 s) until the Postfix log shows `what`.
async fn wait_log(postfix: &PrivatePostfix, what: &str, pattern: impl Fn(&str) -> bool) {
    for _ in 0..300 {
        if pattern(&postfix.log()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("Postfix log never showed {what}:\n{}", postfix.log());
}

use else_tests::free_port;

/// A remote MX where every recipient is unknown: 550 5.1.1 at RCPT.
async fn refusing_sink(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let (reader, mut writer) = stream.into_split();
            let mut lines = BufReader::new(reader).lines();
            let _ = writer.write_all(b"220 sink.remote.test ESMTP\r\n").await;
            while let Ok(Some(line)) = lines.next_line().await {
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250 sink.remote.test\r\n",
                    "RCPT" => b"550 5.1.1 <nobody@remote.test>: Recipient address rejected: User unknown\r\n",
                    "QUIT" => {
                        let _ = writer.write_all(b"221 2.0.0 Bye\r\n").await;
                        return;
                    }
                    _ => b"250 2.0.0 Ok\r\n",
                };
                if writer.write_all(reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts a [`refusing_sink`] on a free loopback port; returns the port.
async fn start_refusing_sink() -> u16 {
    let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = sink.local_addr().unwrap().port();
    tokio::spawn(refusing_sink(sink));
    port
}

/// Submits one message through the instance's smtpd.
async fn submit(port: u16) {
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Ok(s) => break s,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut expect = async |prefix: &str| {
        // Multi-line replies: read up to the last line.
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if line.as_bytes().get(3) != Some(&b'-') {
                assert!(line.starts_with(prefix), "expected {prefix}, got {line}");
                return;
            }
        }
    };
    expect("220").await;
    for (command, reply) in [
        ("EHLO client.ndr.test", "250"),
        ("MAIL FROM:<alice@ndr.test>", "250"),
        // The shipped ndr_recipient_access: nobody writes to the NDR domain from outside.
        ("RCPT TO:<ndr@ndr.else.invalid>", "554"),
        ("RCPT TO:<nobody@remote.test>", "250"),
        ("DATA", "354"),
    ] {
        writer.write_all(format!("{command}\r\n").as_bytes()).await.unwrap();
        expect(reply).await;
    }
    writer
        .write_all(
            b"From: Alice <alice@ndr.test>\r\nTo: nobody@remote.test\r\nSubject: NDR acceptance\r\n\
              Message-ID: <ndr-acceptance-1@ndr.test>\r\n\r\nHello.\r\n.\r\n",
        )
        .await
        .unwrap();
    expect("250").await;
    writer.write_all(b"QUIT\r\n").await.unwrap();
}

#[tokio::test]
async fn postfix_bounce_reaches_elsed_after_an_outage_once_and_is_linked() {
    if !else_tests::postfix::available() {
        return;
    }
    let url = database(PgCluster::shared()).await;
    let sink_port = start_refusing_sink().await;
    // elsed's port is reserved but nobody listens yet: elsed is down during the bounce.
    let (smtpd_port, ndr_port) = (free_port(), free_port());
    let postfix = start_postfix("outage", "headers-only", (smtpd_port, ndr_port, sink_port), "");
    submit(smtpd_port).await;

    wait_log(&postfix, "the bounce and the deferred postmaster copy", |log| {
        log.contains("postmaster non-delivery notification")
            && log
                .lines()
                .any(|l| l.contains("to=<ndr@ndr.else.invalid>") && l.contains("status=deferred"))
    })
    .await;

    collector(&url, &format!("127.0.0.1:{ndr_port}"), config()).await;
    postfix.run(&["flush"]);
    wait_log(&postfix, "the postmaster copy delivered to elsed", |log| {
        log.lines()
            .any(|l| l.contains("to=<ndr@ndr.else.invalid>") && l.contains("status=sent"))
    })
    .await;
    // Another queue run must not deliver it again.
    postfix.run(&["flush"]);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let client = omelse::store::connect(&url).await.unwrap();
    let rows = client
        .query(
            "SELECT kind, postfix_queue_id, orig_message_id, reporting_mta, id FROM ndrs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "stored exactly once\n{}", postfix.log());
    let row = &rows[0];
    assert_eq!(row.get::<_, String>(0), "dsn");
    let queue_id: String = row.get(1);
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("ndr-acceptance-1@ndr.test")
    );
    assert_eq!(row.get::<_, Option<String>>(3).as_deref(), Some("mx1.ndr.test"));
    let log = postfix.log();
    assert!(
        log.contains(&format!("{queue_id}: to=<nobody@remote.test>")) && log.contains("status=bounced"),
        "the report names the bounced message's queue id {queue_id}\n{log}"
    );
    let rcpt = client
        .query_one(
            "SELECT final_recipient, status, action, diagnostic_code FROM ndr_recipients",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rcpt.get::<_, String>(0), "nobody@remote.test");
    assert_eq!(rcpt.get::<_, String>(1), "5.1.1");
    assert_eq!(rcpt.get::<_, String>(2), "failed");
    assert!(rcpt.get::<_, String>(3).contains("User unknown"));

    // The log arrives afterwards: import it, then link.
    let reference = jiff::Timestamp::now().to_string();
    import_file(&url, &postfix.dir.join("maillog"), &reference).await;
    let linked = super::store::link_pending(&client, 0).await.unwrap();
    assert_eq!(linked, 1, "{log}");
    let link = client
        .query_one(
            "SELECT m.queue_id, m.message_id, n.linked_by FROM ndrs n
             JOIN messages m ON m.uid = n.message_uid AND m.started_at = n.message_started_at",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(link.get::<_, String>(0), queue_id);
    assert_eq!(
        link.get::<_, Option<String>>(1).as_deref(),
        Some("ndr-acceptance-1@ndr.test")
    );
    assert_eq!(link.get::<_, String>(2), "queue_id");
}

#[tokio::test]
async fn postfix_full_variant_copies_the_sender_ndr_with_the_whole_original() {
    if !else_tests::postfix::available() {
        return;
    }
    let url = database(PgCluster::shared()).await;
    let sink_port = start_refusing_sink().await;
    let (smtpd_port, ndr_port) = (free_port(), free_port());
    collector(&url, &format!("127.0.0.1:{ndr_port}"), config()).await;
    let postfix = start_postfix("full", "full", (smtpd_port, ndr_port, sink_port), "");
    submit(smtpd_port).await;
    wait_log(&postfix, "the BCC copy of the sender NDR delivered to elsed", |log| {
        log.lines()
            .any(|l| l.contains("to=<ndr@ndr.else.invalid>") && l.contains("status=sent"))
    })
    .await;
    let client = omelse::store::connect(&url).await.unwrap();
    let rows = client
        .query(
            "SELECT kind, returned, orig_message_id, envelope_sender, envelope_rcpts, raw FROM ndrs",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{}", postfix.log());
    let row = &rows[0];
    assert_eq!(row.get::<_, String>(0), "dsn");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("message"));
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some("ndr-acceptance-1@ndr.test")
    );
    assert_eq!(row.get::<_, String>(3), "", "the sender NDR keeps its null sender");
    assert_eq!(row.get::<_, Vec<String>>(4), ["ndr@ndr.else.invalid"]);
    let raw = String::from_utf8_lossy(row.get::<_, &[u8]>(5)).into_owned();
    assert!(raw.contains("\r\nHello.\r\n"), "the original's body came along:\n{raw}");
}

#[tokio::test]
async fn postfix_delivers_the_ndr_copy_over_starttls_when_it_must_encrypt() {
    if !else_tests::postfix::available() {
        return;
    }
    let url = database(PgCluster::shared()).await;
    let sink_port = start_refusing_sink().await;
    let certs = certificates("postfix");
    let cfg = crate::ndr::NdrConfig {
        require_tls: true,
        ..tls_config(&certs)
    };
    let (smtpd_port, ndr_port) = (free_port(), free_port());
    collector(&url, &format!("127.0.0.1:{ndr_port}"), cfg).await;
    // Postfix's LMTP client must encrypt and verify elsed's certificate against the test CA
    // (the name it checks is the one in the certificate: the transport's next hop is an address).
    let tls = format!(
        "lmtp_tls_security_level = encrypt
lmtp_tls_CAfile = {}
lmtp_tls_loglevel = 1
",
        certs.join("ca.pem").display()
    );
    let postfix = start_postfix("tls", "headers-only", (smtpd_port, ndr_port, sink_port), &tls);
    submit(smtpd_port).await;
    wait_log(&postfix, "the postmaster copy delivered to elsed", |log| {
        log.lines()
            .any(|l| l.contains("to=<ndr@ndr.else.invalid>") && l.contains("status=sent"))
    })
    .await;
    let log = postfix.log();
    assert!(
        log.lines()
            .any(|l| l.contains("Trusted TLS connection established to 127.0.0.1") && l.contains("TLSv1.3")),
        "Postfix used TLS and trusted elsed's certificate:\n{log}"
    );
    let client = omelse::store::connect(&url).await.unwrap();
    let rows = client.query("SELECT kind FROM ndrs", &[]).await.unwrap();
    assert_eq!(rows.len(), 1, "{log}");
    assert_eq!(rows[0].get::<_, String>(0), "dsn");
}
