//! The collector over real sockets against a real PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use else_tests::PgCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::server::{self, Listener, Service};
use super::*;

pub(crate) async fn database(cluster: &PgCluster) -> String {
    let url = cluster.create_database().await;
    let mut client = omelse::store::connect(&url).await.unwrap();
    omelse::store::migrate(&mut client).await.unwrap();
    url
}

/// Starts the collector on a free loopback port; returns its address.
pub(super) async fn collector(url: &str, spec: &str, cfg: NdrConfig) -> std::net::SocketAddr {
    let listener = Listener::bind(spec).await.unwrap();
    let addr = listener.tcp.local_addr().unwrap();
    let pool = crate::db::pool(
        &crate::db::Target::url(url),
        "elsed-test",
        2,
        crate::db::Commit::Durable,
    )
    .unwrap();
    let service = Arc::new(Service::new(cfg, pool).unwrap());
    tokio::spawn(server::run(service, vec![listener]));
    addr
}

pub(super) fn config() -> NdrConfig {
    NdrConfig {
        hostname: "ndr.test".into(),
        max_size: 64 * 1024,
        command_timeout_secs: 2,
        ..Default::default()
    }
}

/// Sends `input` at once, reads until the server closes (or `replies` lines came).
async fn converse(addr: std::net::SocketAddr, input: &[u8], replies: usize) -> Vec<String> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(input).await.unwrap();
    read_replies(&mut stream, replies).await
}

async fn read_replies<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, replies: usize) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut text = String::new();
    while got.len() < replies {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("server answers")
            .unwrap();
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        while let Some(i) = text.find("\r\n") {
            let line: String = text.drain(..i + 2).collect();
            // Multi-line replies count once, at their last line.
            if line.as_bytes().get(3) != Some(&b'-') {
                got.push(line.trim_end().to_owned());
            }
        }
    }
    got
}

const NDR: &str = "Subject: Undelivered Mail Returned to Sender\r
Received: by mx1.example (Postfix) id 5E1F2A0B3C; Sat, 28 Nov 2026 18:55:52 +0000 (UTC)\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r
\r
--b\r
Content-Type: text/plain; charset=utf-8\r
\r
..a line that starts with a dot, and 8-bit: d\u{e9}j\u{e0} vu\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx1.example\r
X-Postfix-Queue-ID: 4F1A23B0C5\r
X-Postfix-Sender: rfc822; alice@example.org\r
Arrival-Date: Sat, 28 Nov 2026 18:55:50 +0000 (UTC)\r
\r
Final-Recipient: rfc822; bob@remote.test\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 unknown\r
--b--\r
";

fn transaction(rcpts: &[&str]) -> Vec<u8> {
    let mut s = String::from("LHLO client.test\r\nMAIL FROM:<> SIZE=900 BODY=8BITMIME\r\n");
    for r in rcpts {
        s.push_str(&format!("RCPT TO:<{r}>\r\n"));
    }
    s.push_str("DATA\r\n");
    s.push_str(NDR);
    s.push_str(".\r\nQUIT\r\n");
    s.into_bytes()
}

async fn stored(url: &str) -> Vec<(String, Vec<u8>, Option<String>)> {
    let client = omelse::store::connect(url).await.unwrap();
    client
        .query("SELECT kind, raw, postfix_queue_id FROM ndrs ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn pipelined_lmtp_transaction_with_dot_stuffing_and_8bit_is_stored_once_even_if_sent_again() {
    let url = database(PgCluster::shared()).await;
    let addr = collector(&url, "127.0.0.1:0", config()).await;
    // Everything in one write: the client does not wait for any reply (PIPELINING).
    let replies = converse(addr, &transaction(&["ndr@collector.test", "copy@collector.test"]), 9).await;
    assert!(replies[0].starts_with("220 ndr.test"), "{replies:?}");
    assert!(replies[1].starts_with("250 ENHANCEDSTATUSCODES"), "{replies:?}");
    assert_eq!(replies[2], "250 2.1.0 Ok");
    assert_eq!(replies[3], "250 2.1.5 Ok");
    assert_eq!(replies[4], "250 2.1.5 Ok");
    assert!(replies[5].starts_with("354"));
    // LMTP: one reply per recipient.
    assert_eq!(replies[6], "250 2.0.0 Ok: stored");
    assert_eq!(replies[7], "250 2.0.0 Ok: stored");
    assert_eq!(replies[8], "221 2.0.0 Bye");
    // The same copy again, as after a lost reply: accepted, not stored twice.
    let replies = converse(addr, &transaction(&["ndr@collector.test"]), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    let rows = stored(&url).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "dsn");
    assert_eq!(rows[0].2.as_deref(), Some("4F1A23B0C5"));
    // Dot-stuffing undone, 8-bit bytes kept as sent.
    let raw = String::from_utf8(rows[0].1.clone()).unwrap();
    assert!(raw.contains("\r\n.a line that starts with a dot, and 8-bit: d\u{e9}j\u{e0} vu\r\n"));
    assert!(!raw.contains("..a line"));
    let client = omelse::store::connect(&url).await.unwrap();
    let row = client
        .query_one("SELECT final_recipient, status, action FROM ndr_recipients", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "bob@remote.test");
    assert_eq!(row.get::<_, String>(1), "5.1.1");
    assert_eq!(row.get::<_, String>(2), "failed");
}

#[tokio::test]
async fn smtp_listener_gives_one_reply_and_bad_commands_get_clear_errors() {
    let url = database(PgCluster::shared()).await;
    let addr = collector(&url, "smtp:127.0.0.1:0", config()).await;
    let input = "LHLO x\r\nMAIL FROM:<>\r\nEHLO client.test\r\nRCPT TO:<a@b>\r\nMAIL FROM:<> SIZE=999999999\r\nMAIL FROM <>\r\nFROB\r\nMAIL FROM:<> XFOO=1\r\nMAIL FROM:<>\r\nDATA\r\nRCPT TO:<ndr@c.test>\r\nDATA\r\nSubject: hello\r\n\r\nnot a bounce at all\r\n.\r\nQUIT\r\n";
    let replies = converse(addr, input.as_bytes(), 15).await;
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["220", "500", "503", "250", "503", "552", "501", "500", "555", "250", "554", "250", "354", "250", "221"],
        "{replies:?}"
    );
    assert!(replies[1].contains("use EHLO"));
    let rows = stored(&url).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "not_dsn", "stored and flagged, not refused");
}

/// Issue 16: only the null sender and the double-bounce address deliver reports by default; a
/// forged report from anyone else is refused at MAIL and nothing is stored.
#[tokio::test]
async fn only_bounce_senders_may_deliver_a_report() {
    let url = database(PgCluster::shared()).await;
    let addr = collector(&url, "127.0.0.1:0", config()).await;
    let input = "LHLO c\r\nMAIL FROM:<mallory@evil.example>\r\nMAIL FROM:<Double-Bounce@mx1.example>\r\nRSET\r\nMAIL FROM:<double-bounce.x@mx1.example>\r\nQUIT\r\n";
    let replies = converse(addr, input.as_bytes(), 30).await;
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes[codes.len() - 5..],
        ["550", "250", "250", "550", "221"],
        "{replies:?}"
    );
    assert!(replies
        .iter()
        .any(|r| r.starts_with("550 5.7.1 <mallory@evil.example>")));
    assert!(stored(&url).await.is_empty());
    let cfg = NdrConfig {
        accepted_senders: vec!["<>".into(), "reports@else.example".into()],
        ..config()
    };
    for (sender, accepted) in [
        ("", true),
        ("reports@ELSE.example", true),
        ("double-bounce@mx1.example", false),
        ("x@else.example", false),
    ] {
        assert_eq!(cfg.accepts_sender(sender), accepted, "{sender:?}");
    }
}

#[tokio::test]
async fn over_size_message_is_refused_after_the_dot_and_long_lines_are_bounded() {
    let url = database(PgCluster::shared()).await;
    let cfg = NdrConfig {
        max_size: 1000,
        ..config()
    };
    let addr = collector(&url, "127.0.0.1:0", cfg).await;
    let big = "x".repeat(300);
    let mut input = String::from("LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    for _ in 0..10 {
        input.push_str(&big);
        input.push_str("\r\n");
    }
    input.push_str(".\r\n");
    input.push_str(&format!("NOOP {}\r\nNOOP\r\nQUIT\r\n", "y".repeat(5000)));
    let replies = converse(addr, input.as_bytes(), 11).await;
    assert_eq!(replies[6], "552 5.3.4 Message size exceeds fixed limit", "{replies:?}");
    assert_eq!(replies[7], "552 5.3.4 Message size exceeds fixed limit");
    assert_eq!(replies[8], "500 5.5.2 Line too long");
    assert_eq!(replies[9], "250 2.0.0 Ok");
    assert_eq!(replies[10], "221 2.0.0 Bye");
    assert!(stored(&url).await.is_empty());
}

#[tokio::test]
async fn a_stalled_client_is_disconnected_with_421() {
    let url = database(PgCluster::shared()).await;
    let cfg = NdrConfig {
        command_timeout_secs: 1,
        data_timeout_secs: 1,
        ..config()
    };
    let addr = collector(&url, "127.0.0.1:0", cfg).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // Half a command, then nothing.
    stream.write_all(b"LHLO c\r\nMAIL FR").await.unwrap();
    let replies = read_replies(&mut stream, 5).await;
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(replies[2].starts_with("421 4.4.2"), "{replies:?}");
    // Stalled in DATA too.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"LHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@b>\r\nDATA\r\nSubject: x\r\n")
        .await
        .unwrap();
    let replies = read_replies(&mut stream, 10).await;
    assert!(replies.last().unwrap().starts_with("421 4.4.2"), "{replies:?}");
    assert!(stored(&url).await.is_empty());
}

#[tokio::test]
async fn a_client_not_allowed_gets_554_on_connect() {
    let url = database(PgCluster::shared()).await;
    let cfg = NdrConfig {
        allowed_clients: vec!["192.0.2.0/24".into()],
        ..config()
    };
    let addr = collector(&url, "127.0.0.1:0", cfg).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let replies = read_replies(&mut stream, 3).await;
    assert_eq!(replies.len(), 1, "closed after the refusal: {replies:?}");
    assert!(replies[0].starts_with("554 5.7.1"), "{replies:?}");
    assert!(NdrConfig {
        allowed_clients: vec!["10.0.0.0/33".into()],
        ..config()
    }
    .allowed()
    .is_err());
}

#[tokio::test]
async fn database_down_defers_then_the_retry_is_stored_once() {
    let cluster = PgCluster::start().expect("private cluster");
    let url = database(&cluster).await;
    let addr = collector(&url, "127.0.0.1:0", config()).await;
    cluster.stop().unwrap();
    let replies = converse(addr, &transaction(&["ndr@collector.test"]), 7).await;
    assert!(replies[5].starts_with("451 4.3.0"), "{replies:?}");
    cluster.restart().unwrap();
    let replies = converse(addr, &transaction(&["ndr@collector.test"]), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    assert_eq!(stored(&url).await.len(), 1);
}

#[tokio::test]
async fn ndr_is_linked_to_the_logged_message_at_insert_or_later() {
    let url = database(PgCluster::shared()).await;
    let addr = collector(&url, "127.0.0.1:0", config()).await;
    // The NDR first: the log has not arrived yet.
    let replies = converse(addr, &transaction(&["ndr@collector.test"]), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    let client = omelse::store::connect(&url).await.unwrap();
    let unlinked: i64 = client
        .query_one("SELECT count(*) FROM ndrs WHERE message_uid IS NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(unlinked, 1);
    // Then the log of mx1, through the real pipeline and writer.
    let lines = [
        "Nov 28 18:55:50 mx1 postfix/pickup[100]: 4F1A23B0C5: uid=0 from=<alice>",
        "Nov 28 18:55:50 mx1 postfix/cleanup[101]: 4F1A23B0C5: message-id=<m1@example.org>",
        "Nov 28 18:55:50 mx1 postfix/qmgr[102]: 4F1A23B0C5: from=<alice@example.org>, size=300, nrcpt=1 (queue active)",
        "Nov 28 18:55:51 mx1 postfix/smtp[103]: 4F1A23B0C5: to=<bob@remote.test>, relay=remote.test[192.0.2.7]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host remote.test[192.0.2.7] said: 550 5.1.1 unknown (in reply to RCPT TO command))",
        "Nov 28 18:55:52 mx1 postfix/bounce[104]: 4F1A23B0C5: sender non-delivery notification: 5E1F2A0B3C",
        "Nov 28 18:55:52 mx1 postfix/qmgr[102]: 4F1A23B0C5: removed",
    ];
    import_lines(&url, &lines).await;
    let linked = store::link_pending(&client, 0).await.unwrap();
    assert_eq!(linked, 1);
    let row = client
        .query_one(
            "SELECT m.queue_id, n.linked_by FROM ndrs n JOIN messages m ON m.uid = n.message_uid",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "4F1A23B0C5");
    assert_eq!(row.get::<_, String>(1), "queue_id");
}

/// Imports log lines with elsed's own import command.
pub(crate) async fn import_lines(url: &str, lines: &[&str]) {
    import_lines_of_year(url, lines, "2026-11-29T00:00:00Z").await;
}

/// Imports log lines with their syslog stamps (the first 15 characters) replaced by one a
/// minute ago, for links whose window is counted back from when an NDR arrived.
async fn import_lines_logged_a_minute_ago(url: &str, lines: &[&str]) {
    let now = jiff::Timestamp::now();
    let utc = |t: jiff::Timestamp, format: &str| t.to_zoned(jiff::tz::TimeZone::UTC).strftime(format).to_string();
    let stamp = utc(now - jiff::SignedDuration::from_secs(60), "%b %e %H:%M:%S");
    let lines: Vec<String> = lines.iter().map(|line| format!("{stamp}{}", &line[15..])).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    import_lines_of_year(url, &lines, &utc(now, "%Y-%m-%dT%H:%M:%SZ")).await;
}

/// Writes `lines` to a file of their own and imports it (see [`import_file`]).
async fn import_lines_of_year(url: &str, lines: &[&str], year_reference: &str) {
    // One file per call: tests run in parallel in one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ndr-import-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("maillog");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    import_file(url, &file, year_reference).await;
}

/// Imports a log file (UTC timestamps, their year that of `year_reference`) as `elsed import` does.
pub(crate) async fn import_file(url: &str, file: &std::path::Path, year_reference: &str) {
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: crate::import::ImportArgs,
    }
    let wrapper = <Wrapper as clap::Parser>::parse_from([
        "import",
        "--force",
        "--timezone",
        "UTC",
        "--year-reference",
        year_reference,
        file.to_str().unwrap(),
    ]);
    let settings = crate::Settings {
        config: Default::default(),
        database_url: Some(url.to_owned()),
    };
    crate::import::run(wrapper.args, &settings).await.unwrap();
}

#[tokio::test]
async fn without_a_queue_id_the_notification_line_links_and_unlinked_ones_stay_listed() {
    let url = database(PgCluster::shared()).await;
    let addr = collector(&url, "127.0.0.1:0", config()).await;
    // A report whose delivery-status lacks X-Postfix-Queue-ID: only the NDR's own queue id
    // (its Received header) and the bounce daemon's log line tie it to the message.
    let without_qid = String::from_utf8(transaction(&["ndr@collector.test"]))
        .unwrap()
        .replace("X-Postfix-Queue-ID: 4F1A23B0C5\r\n", "");
    let replies = converse(addr, without_qid.as_bytes(), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    // And one nobody logged anything about.
    let stray = String::from_utf8(transaction(&["ndr@collector.test"]))
        .unwrap()
        .replace("4F1A23B0C5", "9999999999")
        .replace("id 5E1F2A0B3C", "id 8888888888");
    let replies = converse(addr, stray.as_bytes(), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    // Logged just before the NDR came: this link's window counts back from its arrival.
    import_lines_logged_a_minute_ago(
        &url,
        &[
            "Nov 28 18:55:50 mx1 postfix/qmgr[102]: 4F1A23B0C5: from=<alice@example.org>, size=300, nrcpt=1 (queue active)",
            "Nov 28 18:55:51 mx1 postfix/smtp[103]: 4F1A23B0C5: to=<bob@remote.test>, relay=remote.test[192.0.2.7]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host remote.test[192.0.2.7] said: 550 5.1.1 unknown (in reply to RCPT TO command))",
            "Nov 28 18:55:52 mx1 postfix/bounce[104]: 4F1A23B0C5: sender non-delivery notification: 5E1F2A0B3C",
            "Nov 28 18:55:52 mx1 postfix/qmgr[102]: 4F1A23B0C5: removed",
        ],
    )
    .await;
    let client = omelse::store::connect(&url).await.unwrap();
    assert_eq!(store::link_pending(&client, 0).await.unwrap(), 1);
    let rows = client
        .query("SELECT ndr_queue_id, linked_by FROM ndrs ORDER BY ndr_queue_id", &[])
        .await
        .unwrap();
    let got: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            ("5E1F2A0B3C".to_owned(), Some("notification".to_owned())),
            ("8888888888".to_owned(), None)
        ]
    );
    // Linking again changes nothing.
    assert_eq!(store::link_pending(&client, 0).await.unwrap(), 0);
}

#[tokio::test]
async fn connections_beyond_the_limit_are_told_to_come_back() {
    let url = database(PgCluster::shared()).await;
    let cfg = NdrConfig {
        max_connections: 1,
        ..config()
    };
    let addr = collector(&url, "127.0.0.1:0", cfg).await;
    let mut first = TcpStream::connect(addr).await.unwrap();
    assert!(read_replies(&mut first, 1).await[0].starts_with("220"));
    let mut second = TcpStream::connect(addr).await.unwrap();
    let replies = read_replies(&mut second, 2).await;
    assert_eq!(replies, ["421 4.3.2 Too many connections, try again later"]);
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(read_replies(&mut third, 1).await[0].starts_with("220"));
}

#[tokio::test]
async fn retention_drops_ndr_partitions_and_the_collector_recreates_them() {
    let url = database(PgCluster::shared()).await;
    let addr = collector(&url, "127.0.0.1:0", config()).await;
    let replies = converse(addr, &transaction(&["ndr@collector.test"]), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    let mut client = omelse::store::connect(&url).await.unwrap();
    // Everything before tomorrow goes, today's partitions included.
    let tomorrow = omelse::parse::Timestamp((jiff::Timestamp::now().as_second() + 86_400) * 1_000_000);
    let dropped = omelse::store::drop_partitions_before(&mut client, tomorrow)
        .await
        .unwrap();
    assert!(dropped.iter().any(|p| p.starts_with("ndrs_p")), "{dropped:?}");
    assert!(dropped.iter().any(|p| p.starts_with("ndr_recipients_p")), "{dropped:?}");
    assert!(stored(&url).await.is_empty());
    // The collector believed today's partitions existed: it makes them again.
    let replies = converse(addr, &transaction(&["ndr@collector.test"]), 7).await;
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    assert_eq!(stored(&url).await.len(), 1);
}

/// Test certificates: a CA and `ndr.test`'s certificate; the directory holding them.
pub(super) fn certificates(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ndr-tls-{name}-{}", std::process::id()));
    else_tests::tls::certificates(&dir, "ELSE NDR test CA", &[("ndr", "ndr.test")])
}

pub(super) fn tls_config(certs: &std::path::Path) -> NdrConfig {
    NdrConfig {
        tls_cert_file: Some(certs.join("ndr.pem")),
        tls_key_file: Some(certs.join("ndr.key")),
        ..config()
    }
}

/// A rustls client trusting only the test CA.
fn tls_connector(certs: &std::path::Path) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let pem = std::fs::read(certs.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Sends LHLO and reads the greeting and the whole (multi-line) answer, as text.
async fn greeting_and_lhlo(stream: &mut TcpStream) -> String {
    stream.write_all(b"LHLO c\r\n").await.unwrap();
    let mut text = String::new();
    while !text.contains("250 ENHANCEDSTATUSCODES\r\n") {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "{text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

#[tokio::test]
async fn starttls_is_offered_only_with_a_certificate_and_plaintext_sent_before_it_is_dropped() {
    let url = database(PgCluster::shared()).await;
    // Without a certificate: not advertised, refused.
    let plain = collector(&url, "127.0.0.1:0", config()).await;
    let mut stream = TcpStream::connect(plain).await.unwrap();
    let text = greeting_and_lhlo(&mut stream).await;
    assert!(!text.contains("STARTTLS"), "{text}");
    stream.write_all(b"STARTTLS\r\n").await.unwrap();
    assert_eq!(read_replies(&mut stream, 1).await, ["502 5.5.1 STARTTLS not available"]);

    let certs = certificates("offered");
    let addr = collector(&url, "127.0.0.1:0", tls_config(&certs)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let text = greeting_and_lhlo(&mut stream).await;
    assert!(text.contains("250-STARTTLS\r\n"), "{text}");
    // A command pipelined after STARTTLS in plaintext (the injection of CVE-2011-0411) must not
    // count inside TLS.
    stream.write_all(b"STARTTLS\r\nMAIL FROM:<>\r\n").await.unwrap();
    assert_eq!(read_replies(&mut stream, 1).await, ["220 2.0.0 Ready to start TLS"]);
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("ndr.test").unwrap();
    let mut tls = tls_connector(&certs)
        .connect(name, stream)
        .await
        .expect("handshake, certificate trusted");
    tls.write_all(b"RCPT TO:<a@b>\r\nMAIL FROM:<>\r\n").await.unwrap();
    let replies = read_replies(&mut tls, 2).await;
    assert_eq!(replies[0], "503 5.5.1 Need MAIL before RCPT", "{replies:?}");
    assert_eq!(
        replies[1], "503 5.5.1 Send LHLO first",
        "the dialogue starts over inside TLS"
    );
    let mut input = transaction(&["ndr@collector.test"]);
    input.splice(0..0, b"STARTTLS\r\n".iter().copied());
    tls.write_all(&input).await.unwrap();
    let replies = read_replies(&mut tls, 7).await;
    assert_eq!(replies[0], "503 5.5.1 TLS already active", "{replies:?}");
    let lhlo = &replies[1];
    assert!(lhlo.starts_with("250 ENHANCEDSTATUSCODES"), "{replies:?}");
    assert_eq!(replies[5], "250 2.0.0 Ok: stored", "{replies:?}");
    assert_eq!(replies[6], "221 2.0.0 Bye");
    assert_eq!(stored(&url).await.len(), 1);
}

#[tokio::test]
async fn require_tls_refuses_mail_in_plaintext() {
    let url = database(PgCluster::shared()).await;
    let certs = certificates("required");
    let cfg = NdrConfig {
        require_tls: true,
        ..tls_config(&certs)
    };
    let addr = collector(&url, "127.0.0.1:0", cfg).await;
    let replies = converse(addr, b"LHLO c\r\nMAIL FROM:<>\r\nQUIT\r\n", 4).await;
    assert_eq!(
        replies[2], "530 5.7.0 Must issue a STARTTLS command first",
        "{replies:?}"
    );
    let pool = crate::db::pool(
        &crate::db::Target::url(&url),
        "elsed-test",
        1,
        crate::db::Commit::Durable,
    )
    .unwrap();
    let bad = NdrConfig {
        tls_key_file: None,
        ..tls_config(&certs)
    };
    assert!(
        Service::new(bad, pool.clone()).is_err(),
        "a certificate without its key"
    );
    let missing = NdrConfig {
        tls_key_file: Some(certs.join("nonexistent.key")),
        ..tls_config(&certs)
    };
    let error = Service::new(missing, pool).err().unwrap();
    assert!(error.contains("nonexistent.key"), "{error}");
}
