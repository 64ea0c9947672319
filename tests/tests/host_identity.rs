//! Host identity with the shipped stanzas: real rsyslogd on the ELSE server and on each Postfix
//! host, RELP over TLS with certificates of a private CA, omelse.so into a real PostgreSQL. A
//! Postfix host writes under its own server name only; an intermediate rsyslog relays when told.

use std::path::PathBuf;
use std::time::Duration;

use else_tests::rsyslogd::{
    free_port, host_inputs, relp_certificates, rsyslogd_binary, send_tcp, shipped_stanza, wait_until, Rsyslogd,
};
use else_tests::topology::IMRELP;
use else_tests::{block_on, count, PgCluster};

fn ready() -> bool {
    rsyslogd_binary().is_some() && else_tests::require::tool(IMRELP, "rsyslog-relp").is_some()
}

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("else-identity-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shipped ELSE server stanza into `url`, reporting its counters every second.
fn server_stanza(certs: &std::path::Path, port: u16, url: &str) -> String {
    shipped_stanza("else-server.conf", certs, "server", port, url).replace(
        "server.role=\"unknown\"",
        "server.role=\"unknown\" stats.interval=\"1\"",
    )
}

/// A Postfix host's rsyslogd with the shipped stanza and `certificate`'s certificate, sending to
/// `relp_port`; returns it with the TCP port its local lines come in on.
fn postfix_host(dir: &std::path::Path, certs: &std::path::Path, certificate: &str, relp_port: u16) -> (Rsyslogd, u16) {
    let tcp_port = free_port();
    let stanza = shipped_stanza("postfix-host.conf", certs, certificate, relp_port, "");
    let config = format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{tcp_port}\")\n{stanza}");
    (Rsyslogd::start(&dir.join(certificate), &config), tcp_port)
}

/// `n` smtpd lines under the server name `host`, told apart by `pid`s from `first_pid`.
fn lines(host: &str, first_pid: usize, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "<22>2026-11-28T10:00:{:02}+00:00 {host} postfix/smtpd[{}]: connect from c{i}[192.0.2.{}]",
                i % 60,
                first_pid + i,
                i % 250
            )
        })
        .collect()
}

/// Lines stored under the server name `server` with a pid in `pids`.
fn stored(url: &str, server: &str, pids: std::ops::Range<usize>) -> i64 {
    count(
        url,
        &format!(
            "SELECT count(*) FROM log_events e JOIN servers s ON s.id = e.server_id \
             WHERE s.name = '{server}' AND e.pid >= {} AND e.pid < {}",
            pids.start, pids.end
        ),
    )
}

/// Lines stored with a pid in `pids`, under any name.
fn stored_anywhere(url: &str, pids: std::ops::Range<usize>) -> i64 {
    count(
        url,
        &format!(
            "SELECT count(*) FROM log_events WHERE pid >= {} AND pid < {}",
            pids.start, pids.end
        ),
    )
}

/// The highest refused_host counter the module reported.
fn refused(url: &str) -> i64 {
    count(
        url,
        "SELECT coalesce(max(value), -1) FROM ingest_counters WHERE name LIKE 'omelse.%.refused_host'",
    )
}

#[test]
fn a_postfix_host_writes_under_its_own_name_only() {
    if !ready() {
        return;
    }
    let url = block_on(PgCluster::shared().create_database());
    let dir = test_dir("bound");
    let certs = relp_certificates(&dir, &["mx1", "mx2"]);
    // One input per host, as install.md says: mx1 and mx2, each with its port and certificate.
    let ports = [("mx1", free_port()), ("mx2", free_port())];
    let server = Rsyslogd::start(
        &dir.join("else"),
        &host_inputs(&server_stanza(&certs, ports[0].1, &url), &ports),
    );
    let (_mx1, mx1_port) = postfix_host(&dir, &certs, "mx1", ports[0].1);
    let (_mx2, mx2_port) = postfix_host(&dir, &certs, "mx2", ports[1].1);
    // mx2 also takes its certificate to mx1's input: TLS refuses it there.
    let (_intruder, intruder_port) = postfix_host(&dir.join("intruder"), &certs, "mx2", ports[0].1);
    send_tcp(intruder_port, &lines("mx1", 9000, 10));
    // mx2 logs 20 lines as itself, then 10 under mx1's name; mx1 logs 20 as itself.
    send_tcp(mx2_port, &lines("mx2", 2000, 20));
    send_tcp(mx2_port, &lines("mx1", 3000, 10));
    send_tcp(mx1_port, &lines("mx1", 1000, 20));

    let arrived = wait_until(Duration::from_secs(60), || {
        stored(&url, "mx1", 1000..1020) == 20 && stored(&url, "mx2", 2000..2020) == 20 && refused(&url) == 10
    });
    assert!(
        arrived,
        "mx1 {} of 20, mx2 {} of 20, refused {} of 10; the server said:\n{}",
        stored(&url, "mx1", 1000..1020),
        stored(&url, "mx2", 2000..2020),
        refused(&url),
        server.own_log()
    );
    // What mx2 wrote under mx1's name is nowhere, under no name.
    assert_eq!(stored_anywhere(&url, 3000..4000), 0);
    let log = server.own_log();
    assert!(
        log.contains("refused lines of server 'mx1' from input 'else-host:mx2'"),
        "the refusal is said in rsyslog's log:\n{log}"
    );
    // The intruder's connection to mx1's input is refused by TLS, so its lines never come,
    // although they were sent before everything that has come.
    assert_eq!(stored_anywhere(&url, 9000..10000), 0);
    assert!(
        log.contains("mx2.mail.example.org"),
        "rsyslog names the refused peer of mx1's input:\n{log}"
    );
    assert_eq!(count(&url, "SELECT count(*) FROM log_events"), 40);
}

#[test]
fn an_input_bound_to_no_name_is_refused_unless_relaying() {
    if !ready() {
        return;
    }
    let dir = test_dir("relay");
    let certs = relp_certificates(&dir, &["relay"]);
    // An intermediate rsyslog (certificate relay.mail.example.org) carrying mx1's and mx3's lines
    // to an input that binds no server name: refused as shipped, accepted with host.binding="relay".
    for relaying in [false, true] {
        let url = block_on(PgCluster::shared().create_database());
        let port = free_port();
        let mut stanza = host_inputs(&server_stanza(&certs, port, &url), &[("relay", port)])
            .replace("name=\"else-host:relay\"", "name=\"else-relay\"");
        if relaying {
            stanza = stanza.replace("# host.binding=\"relay\"", "host.binding=\"relay\"");
        }
        let which = if relaying { "relaying" } else { "shipped" };
        let server = Rsyslogd::start(&dir.join(which).join("else"), &stanza);
        let (_relay, relay_port) = postfix_host(&dir.join(which), &certs, "relay", port);
        send_tcp(relay_port, &lines("mx1", 1000, 10));
        send_tcp(relay_port, &lines("mx3", 3000, 10));
        if relaying {
            let arrived = wait_until(Duration::from_secs(60), || {
                stored(&url, "mx1", 1000..1010) == 10 && stored(&url, "mx3", 3000..3010) == 10
            });
            assert!(arrived, "the relay's lines, under their names:\n{}", server.own_log());
            assert!(wait_until(Duration::from_secs(10), || refused(&url) == 0));
        } else {
            let counted = wait_until(Duration::from_secs(60), || refused(&url) == 20);
            assert!(counted, "refused {} of 20:\n{}", refused(&url), server.own_log());
            assert_eq!(count(&url, "SELECT count(*) FROM log_events"), 0);
            let log = server.own_log();
            assert!(
                log.contains("from input 'else-relay', which binds no server name"),
                "the refusal says why:\n{log}"
            );
        }
    }
}
