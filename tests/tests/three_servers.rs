//! The deployment ELSE exists for, run for real on loopback addresses: an INCOMING Postfix (MX for
//! example.test, mailboxes, greylisting through GreyLSE), an OUTGOING Postfix (relays to a third
//! Postfix that plays the Internet, hands mail for example.test back to the INCOMING one, sends
//! its NDRs to elsed), and the ELSE server (rsyslogd with imrelp and omelse, PostgreSQL, elsed).
//! Both Postfix hosts write `maillog_file`, which their own rsyslogd forwards over RELP (TLS) with
//! the shipped stanza.
//!
//! Traffic from swaks covers each case a mail administrator tracks: inbound delivered after
//! greylisting, inbound rejected (unknown user, blocked client), outbound delivered, bounced
//! (with its NDR) and deferred then delivered, internal to internal across both servers. Then
//! every message sent is looked up in the database and checked: found, right flow, both hops
//! linked, right final status, NDR linked.
//!
//! Needs root, Postfix, rsyslog-relp and swaks (make test installs them); skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use else_tests::postfix::{self, PrivatePostfix};
use else_tests::rsyslogd::{elsed_binary, free_port, relp_certificates, shipped_stanza, wait_until, Rsyslogd};
use else_tests::PgCluster;

/// Addresses on the loopback network: the servers, and the clients that send to them.
const IN1: &str = "127.0.10.1";
const OUT1: &str = "127.0.10.2";
const INTERNET: &str = "127.0.40.1";
/// The organisation's networks: its servers and its workstations.
const INTERNAL_NETWORKS: &str = "127.0.10.0/24, 127.0.30.0/24";
/// A client out on the Internet, one that a map blocks, and a workstation of the organisation.
const REMOTE_CLIENT: &str = "127.0.20.1";
const BLOCKED_CLIENT: &str = "127.0.20.66";
const WORKSTATION: &str = "127.0.30.1";
const SMTP_PORT: u16 = 25;
/// GreyLSE's delay: short, so that the test's retry passes.
const GREYLIST_DELAY_SECS: u64 = 2;

/// A process killed with the test.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn elsed(config: &Path, args: &[&str], log: PathBuf) -> Daemon {
        let child = Command::new(elsed_binary())
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("ELSE_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("start elsed");
        Daemon { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What swaks said, and whether the server accepted the message.
struct Sent {
    accepted: bool,
    transcript: String,
}

/// One message with swaks, from `client` to the smtpd at `server`.
fn swaks(server: &str, client: &str, from: &str, to: &str, message_id: &str) -> Sent {
    let output = Command::new("swaks")
        .args(["--server", &format!("{server}:{SMTP_PORT}")])
        .args(["--local-interface", client])
        .args(["--ehlo", "client.e2e.test"])
        .args(["--from", from, "--to", to])
        .args(["--header", &format!("Message-Id: <{message_id}>")])
        .args(["--header", &format!("Subject: e2e {message_id}")])
        .args(["--body", "ELSE end-to-end test message."])
        .args(["--timeout", "30"])
        .output()
        .expect("run swaks");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Sent {
        accepted: output.status.success(),
        transcript,
    }
}

/// Virtual mailboxes for `domain` (each user a Maildir under `mail/`), delivered by `virtual`.
fn mailboxes(postfix: &PrivatePostfix, domain: &str, users: &[&str]) -> String {
    let d = postfix.dir.display();
    let map: String = users.iter().map(|u| format!("{u}@{domain} {domain}/{u}/\n")).collect();
    std::fs::write(postfix.dir.join("etc/vmailbox"), map).unwrap();
    std::fs::create_dir_all(postfix.dir.join("mail")).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(postfix.dir.join("mail"))
        .status();
    assert!(chown.unwrap().success());
    format!(
        "virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_mailbox_base = {d}/mail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
"
    )
}

/// The listeners every instance has: smtpd on its address, and the virtual delivery agent.
fn listeners(address: &str) -> String {
    format!("{address}:{SMTP_PORT} inet n - n - - smtpd\nvirtual unix - n n - - virtual\n")
}

/// Settings of the servers' Postfix: fast retries, no DNS, the host name ELSE knows them by.
fn common_main(name: &str, address: &str) -> String {
    format!(
        "myhostname = {name}.example.test
smtp_bind_address = {address}
smtp_dns_support_level = disabled
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"
    )
}

/// The Internet: mailboxes of remote.test (dave, later), `later` refused with 450 while
/// `later_refused`; anyone else unknown (550).
fn start_internet(later_refused: bool) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-e2e-internet");
    let d = postfix.dir.display().to_string();
    write_internet_access(&postfix, later_refused);
    let main = format!(
        "myhostname = mx.remote.test
mynetworks = 127.0.0.0/8
{mailboxes}smtpd_recipient_restrictions = check_recipient_access texthash:{d}/etc/access, reject_unauth_destination
",
        mailboxes = mailboxes(&postfix, "remote.test", &["dave", "later"])
    );
    postfix.start(&main, &listeners(INTERNET), &[])
}

fn write_internet_access(postfix: &PrivatePostfix, later_refused: bool) {
    let access = if later_refused {
        "later@remote.test 450 4.2.1 Mailbox busy, try again later\n"
    } else {
        ""
    };
    std::fs::write(postfix.dir.join("etc/access"), access).unwrap();
}

/// INCOMING: the MX of example.test (alice, bob); clients of the Internet are greylisted,
/// 127.0.20.66 is blocked, the organisation's servers are trusted.
fn start_incoming(policy_port: u16) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-e2e-in1");
    let d = postfix.dir.display().to_string();
    std::fs::write(
        postfix.dir.join("etc/blocked"),
        format!("{BLOCKED_CLIENT} REJECT Client blocked by policy\n"),
    )
    .unwrap();
    let main = format!(
        "{common}mynetworks = 127.0.10.0/24
{mailboxes}smtpd_recipient_restrictions = permit_mynetworks,
    check_client_access texthash:{d}/etc/blocked,
    reject_unauth_destination,
    check_policy_service inet:127.0.0.1:{policy_port}
",
        common = common_main("in1", IN1),
        mailboxes = mailboxes(&postfix, "example.test", &["alice", "bob"])
    );
    postfix.start(&main, &listeners(IN1), &[])
}

/// OUTGOING: relays the workstations' mail; example.test goes back to INCOMING, remote.test to
/// the Internet; postmaster copies of its bounces go to elsed with the shipped headers-only
/// snippet.
fn start_outgoing(ndr_port: u16) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-e2e-out1");
    let d = postfix.dir.display().to_string();
    let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/postfix/headers-only");
    let snippet = std::fs::read_to_string(packaging.join("main.cf"))
        .unwrap()
        .replace("hash:/etc/postfix/transport", &format!("texthash:{d}/etc/transport"));
    let ndr_transport = std::fs::read_to_string(packaging.join("transport"))
        .unwrap()
        .replace("else.example.net:2424", &format!("127.0.0.1:{ndr_port}"));
    std::fs::write(
        postfix.dir.join("etc/transport"),
        format!("{ndr_transport}example.test smtp:[{IN1}]:{SMTP_PORT}\nremote.test smtp:[{INTERNET}]:{SMTP_PORT}\n"),
    )
    .unwrap();
    let main = format!(
        "{common}mynetworks = 127.0.30.0/24, 127.0.10.0/24
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
{snippet}",
        common = common_main("out1", OUT1),
    );
    postfix.start(&main, &listeners(OUT1), &[])
}

/// The host's own rsyslogd, forwarding its Postfix's log file with the shipped stanza.
fn start_forwarder(name: &str, postfix: &PrivatePostfix, certs: &Path, relp_port: u16, dir: &Path) -> Rsyslogd {
    let stanza = shipped_stanza("postfix-host-maillog.conf", certs, name, relp_port, "").replace(
        "/var/log/postfix.log",
        &postfix.dir.join("maillog").display().to_string(),
    );
    Rsyslogd::start(&dir.join(name), &stanza)
}

/// One row per hop of the message with this Message-ID: (server, flow, state, recipients'
/// statuses by address).
#[derive(Debug, Clone, PartialEq)]
struct Hop {
    server: String,
    queue_id: String,
    flow: Option<String>,
    state: String,
    recipients: Vec<(String, String)>,
}

async fn hops(client: &tokio_postgres::Client, message_id: &str) -> Vec<Hop> {
    let rows = client
        .query(
            "SELECT s.name, m.queue_id, m.flow, m.state,
                    coalesce(array_agg(r.address || '=' || r.status ORDER BY r.address)
                             FILTER (WHERE r.address IS NOT NULL), '{}')
               FROM messages m
               JOIN servers s ON s.id = m.server_id
               LEFT JOIN recipients r ON r.message_started_at = m.started_at AND r.message_uid = m.uid
              WHERE m.message_id = $1
              GROUP BY 1, 2, 3, 4, m.first_seen
              ORDER BY m.first_seen",
            &[&message_id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| Hop {
            server: row.get(0),
            queue_id: row.get(1),
            flow: row.get(2),
            state: row.get(3),
            recipients: row
                .get::<_, Vec<String>>(4)
                .iter()
                .map(|pair| {
                    let (address, status) = pair.split_once('=').unwrap();
                    (address.to_owned(), status.to_owned())
                })
                .collect(),
        })
        .collect()
}

/// Waits (at most `limit`) until the hops of `message_id` satisfy `done`; returns the last seen.
async fn wait_hops(
    client: &tokio_postgres::Client,
    message_id: &str,
    limit: Duration,
    done: impl Fn(&[Hop]) -> bool,
) -> Vec<Hop> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let found = hops(client, message_id).await;
        if done(&found) || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the database holds about a message, for a failure's message: its rows and raw lines.
async fn explain(client: &tokio_postgres::Client, message_id: &str) -> String {
    let rows = client
        .query(
            "SELECT format('%s %s origin=%s flow=%s state=%s', s.name, m.queue_id, m.origin, m.flow, m.state)
                    || coalesce((SELECT string_agg(format(E'\\n  rcpt %s %s flow=%s relay=%s', r.address, r.status, r.flow, r.relay), '')
                                   FROM recipients r WHERE r.message_uid = m.uid), '')
                    || coalesce((SELECT string_agg(E'\\n  | ' || e.raw, '' ORDER BY e.ts)
                                   FROM log_events e WHERE e.message_uid = m.uid), '')
               FROM messages m JOIN servers s ON s.id = m.server_id WHERE m.message_id = $1",
            &[&message_id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn statuses(hop: &Hop) -> Vec<(&str, &str)> {
    hop.recipients.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_track_every_message_end_to_end() {
    if !postfix::available()
        || !Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so").exists()
        || !Path::new("/usr/bin/swaks").exists()
    {
        println!("skipped: needs root, Postfix, rsyslog-relp and swaks (make test installs them)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("else-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // The ELSE server: database, configuration, GreyLSE, the NDR collector, rsyslogd + omelse.
    let url = PgCluster::shared().create_database().await;
    let (policy_port, ndr_port, relp_port) = (free_port(), free_port(), free_port());
    let config = dir.join("elsed.toml");
    std::fs::write(
        &config,
        format!(
            "internal_networks = [\"127.0.10.0/24\", \"127.0.30.0/24\"]

[database]
url = \"{url}\"

[greylist]
listen = [\"127.0.0.1:{policy_port}\"]
delay_secs = {GREYLIST_DELAY_SECS}

[ndr]
listen = [\"127.0.0.1:{ndr_port}\"]
allowed_clients = [\"127.0.0.0/8\"]

[[servers]]
name = \"in1\"
role = \"incoming\"
addresses = [\"{IN1}\"]

[[servers]]
name = \"out1\"
role = \"outgoing\"
addresses = [\"{OUT1}\"]
"
        ),
    )
    .unwrap();
    let migrate = Command::new(elsed_binary())
        .arg("--config")
        .arg(&config)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let greylist = Daemon::elsed(&config, &["greylist"], dir.join("greylist.log"));
    let ndr = Daemon::elsed(&config, &["ndr"], dir.join("ndr.log"));
    let certs = relp_certificates(&dir, &["in1", "out1"]);
    let central = Rsyslogd::start(
        &dir.join("else"),
        &shipped_stanza("else-server.conf", &certs, "server", relp_port, &url).replace(
            "# internal.networks=\"192.0.2.0/24, 198.51.100.0/24\"",
            &format!("internal.networks=\"{INTERNAL_NETWORKS}\""),
        ),
    );

    // The mail servers, each with its forwarder.
    let internet = start_internet(true);
    let in1 = start_incoming(policy_port);
    let out1 = start_outgoing(ndr_port);
    let _forwarders = [
        start_forwarder("in1", &in1, &certs, relp_port, &dir),
        start_forwarder("out1", &out1, &certs, relp_port, &dir),
    ];
    let ready = wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", policy_port)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", ndr_port)).is_ok()
    });
    assert!(ready, "elsed did not start:\n{}\n{}", greylist.output(), ndr.output());

    // Inbound: greylisted first, accepted on the retry after the delay.
    let first = swaks(
        IN1,
        REMOTE_CLIENT,
        "carol@remote.test",
        "alice@example.test",
        "inbound@e2e.test",
    );
    assert!(
        !first.accepted && first.transcript.contains("450"),
        "{}",
        first.transcript
    );
    tokio::time::sleep(Duration::from_secs(GREYLIST_DELAY_SECS + 1)).await;
    let retry = swaks(
        IN1,
        REMOTE_CLIENT,
        "carol@remote.test",
        "alice@example.test",
        "inbound@e2e.test",
    );
    assert!(retry.accepted, "{}", retry.transcript);
    // Inbound rejected: unknown user, blocked client.
    let unknown = swaks(
        IN1,
        REMOTE_CLIENT,
        "carol@remote.test",
        "nobody@example.test",
        "unknown@e2e.test",
    );
    assert!(
        !unknown.accepted && unknown.transcript.contains("550"),
        "{}",
        unknown.transcript
    );
    let blocked = swaks(
        IN1,
        BLOCKED_CLIENT,
        "spam@remote.test",
        "alice@example.test",
        "blocked@e2e.test",
    );
    assert!(
        !blocked.accepted && blocked.transcript.contains("554"),
        "{}",
        blocked.transcript
    );
    // Outbound: delivered, bounced, deferred (then delivered below); internal to internal.
    for (to, id) in [
        ("dave@remote.test", "outbound@e2e.test"),
        ("nobody@remote.test", "bounce@e2e.test"),
        ("later@remote.test", "deferred@e2e.test"),
        ("bob@example.test", "internal@e2e.test"),
    ] {
        let sent = swaks(OUT1, WORKSTATION, "alice@example.test", to, id);
        assert!(sent.accepted, "{}", sent.transcript);
    }

    let client = omelse::store::connect(&url).await.unwrap();
    let limit = Duration::from_secs(90);
    let central_log = || central.own_log();

    // The deferral is seen, then the remote mailbox accepts and the retry delivers.
    let deferred = wait_hops(&client, "deferred@e2e.test", limit, |h| {
        h.iter()
            .any(|hop| statuses(hop).contains(&("later@remote.test", "deferred")))
    })
    .await;
    assert!(
        deferred
            .iter()
            .any(|hop| statuses(hop).contains(&("later@remote.test", "deferred"))),
        "{deferred:?}\n{}",
        central_log()
    );
    write_internet_access(&internet, false);
    internet.run(&["reload"]);
    let deferred = wait_hops(&client, "deferred@e2e.test", limit, |h| {
        h.iter().any(|hop| statuses(hop) == [("later@remote.test", "sent")])
    })
    .await;
    let why = explain(&client, "deferred@e2e.test").await;
    assert_eq!(deferred.len(), 1, "{why}");
    assert_eq!(deferred[0].server, "out1");
    assert_eq!(deferred[0].flow.as_deref(), Some("outbound"), "{why}");
    assert_eq!(statuses(&deferred[0]), [("later@remote.test", "sent")]);

    let inbound = wait_hops(&client, "inbound@e2e.test", limit, |h| {
        h.iter().any(|hop| {
            hop.state != "queued" && !hop.recipients.is_empty() && hop.recipients.iter().all(|(_, s)| s == "sent")
        })
    })
    .await;
    assert_eq!(inbound.len(), 1, "{inbound:?}\n{}", central_log());
    assert_eq!(inbound[0].server, "in1");
    assert_eq!(inbound[0].flow.as_deref(), Some("inbound"));
    assert_eq!(statuses(&inbound[0]), [("alice@example.test", "sent")]);

    let outbound = wait_hops(&client, "outbound@e2e.test", limit, |h| {
        h.iter().any(|hop| statuses(hop) == [("dave@remote.test", "sent")])
    })
    .await;
    assert_eq!(outbound.len(), 1, "{outbound:?}");
    assert_eq!(
        (outbound[0].server.as_str(), outbound[0].flow.as_deref()),
        ("out1", Some("outbound"))
    );

    let bounce = wait_hops(&client, "bounce@e2e.test", limit, |h| {
        h.iter().any(|hop| statuses(hop) == [("nobody@remote.test", "bounced")])
    })
    .await;
    assert_eq!(bounce.len(), 1, "{bounce:?}");
    assert_eq!(
        (bounce[0].server.as_str(), bounce[0].flow.as_deref()),
        ("out1", Some("outbound"))
    );
    assert_eq!(statuses(&bounce[0]), [("nobody@remote.test", "bounced")]);

    // Internal: out1 then in1 (logged within the same second: told apart by server), the second
    // hop reached by relay from the first, both internal and delivered.
    let internal = wait_hops(&client, "internal@e2e.test", limit, |h| {
        h.len() == 2 && h.iter().all(|hop| statuses(hop) == [("bob@example.test", "sent")])
    })
    .await;
    let mut by_server: Vec<(&str, Option<&str>)> = internal
        .iter()
        .map(|h| (h.server.as_str(), h.flow.as_deref()))
        .collect();
    by_server.sort();
    assert_eq!(
        by_server,
        [("in1", Some("internal")), ("out1", Some("internal"))],
        "{}",
        explain(&client, "internal@e2e.test").await
    );
    let queue_id = |server: &str| internal.iter().find(|h| h.server == server).unwrap().queue_id.clone();
    let linked: i64 = client
        .query_one(
            "SELECT count(*) FROM links l JOIN servers s ON s.id = l.from_server_id
              WHERE s.name = 'out1' AND l.from_queue_id = $1 AND l.to_queue_id = $2 AND l.to_host = 'in1'",
            &[&queue_id("out1"), &queue_id("in1")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 1, "the relay hop out1 → in1 is linked");

    // The rejects of in1: the unknown user and the blocked client, from the right clients.
    let rejects: Vec<(String, String, Option<i32>)> = client
        .query(
            "SELECT host(client_ip), coalesce(recipient, ''), code FROM rejects r JOIN servers s ON s.id = r.server_id
              WHERE s.name = 'in1' AND action = 'reject' ORDER BY ts",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert!(
        rejects.contains(&(REMOTE_CLIENT.to_string(), "nobody@example.test".to_string(), Some(550))),
        "{rejects:?}"
    );
    assert!(
        rejects.contains(&(BLOCKED_CLIENT.to_string(), "alice@example.test".to_string(), Some(554))),
        "{rejects:?}"
    );

    // The bounce's NDR reached elsed and is linked to the bounced message.
    let bounced_queue_id = bounce[0].queue_id.clone();
    let mut ndr_linked = false;
    // The collector links at once when the log is already in, else on its next pass (a minute).
    for _ in 0..180 {
        let row = client
            .query_opt(
                "SELECT message_uid IS NOT NULL FROM ndrs WHERE postfix_queue_id = $1",
                &[&bounced_queue_id],
            )
            .await;
        if let Ok(Some(row)) = row {
            ndr_linked = row.get(0);
            if ndr_linked {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        ndr_linked,
        "NDR of {bounced_queue_id} stored and linked:\n{}",
        ndr.output()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
