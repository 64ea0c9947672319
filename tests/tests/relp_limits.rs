//! The RELP listeners' connection limits, as install.md deploys them: imrelp has no session
//! limit nor handshake timeout, so the shipped nftables table (`packaging/nftables/else-relp.nft`)
//! admits only the Postfix hosts to the RELP ports, at most 8 connections each. Real rsyslogd
//! with the shipped ELSE server stanza (RELP over TLS, omelse into a real PostgreSQL), a real
//! Postfix host's rsyslogd, and the table loaded with `nft -f` after the edit install.md asks for.
//!
//! The table is the host's firewall (tests run as root in CI): it only matches this test's
//! ports, and is deleted when the test ends.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use else_tests::nftables::{edited_table, Table, NFT};
use else_tests::rsyslogd::{
    free_port, host_inputs, relp_certificates, rsyslogd_binary, send_tcp, shipped_stanza, wait_until, Rsyslogd,
};
use else_tests::topology::IMRELP;
use else_tests::{block_on, count, require, PgCluster};

/// The per-host cap of the shipped table.
const PER_HOST: usize = 8;

fn ready() -> bool {
    rsyslogd_binary().is_some()
        && require::tool(IMRELP, "rsyslog-relp").is_some()
        && require::tool(NFT, "nftables").is_some()
        && require::root("nft loads a firewall table")
}

/// A TCP connection to `port` of 127.0.0.1 from the address `from`, or the error.
fn connect_from(from: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(from, 0)).into())?;
    let to = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

fn refused(attempt: &std::io::Result<TcpStream>) -> bool {
    matches!(attempt, Err(e) if e.kind() == ErrorKind::ConnectionRefused)
}

fn test_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("else-relp-limits-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn one_client_cannot_hold_the_relp_listener_and_strangers_are_refused() {
    if !ready() {
        return;
    }
    let url = block_on(PgCluster::shared().create_database());
    let dir = test_dir();
    let certs = relp_certificates(&dir, &["mx1", "mx2"]);
    let ports = [("mx1", free_port()), ("mx2", free_port())];
    let server_stanza = shipped_stanza("else-server.conf", &certs, "server", ports[0].1, &url);
    let _server = Rsyslogd::start(&dir.join("else"), &host_inputs(&server_stanza, &ports));
    // mx1 sends from 127.0.0.1; 127.0.0.2 is mx2's address, taken over by an attacker who holds
    // connections open without a word of TLS; 127.0.0.3 is nobody's.
    let table_file = dir.join("else-relp.nft");
    std::fs::write(
        &table_file,
        edited_table(&[
            ("relp_ports", vec![ports[0].1.to_string(), ports[1].1.to_string()]),
            ("postfix_hosts_v4", vec!["127.0.0.1".into(), "127.0.0.2".into()]),
        ]),
    )
    .unwrap();
    let table = Table::load(&table_file);
    // Loading it again (after an edit) replaces it, as install.md says.
    let table = {
        drop(table);
        Table::load(&table_file)
    };

    let mx2 = Ipv4Addr::new(127, 0, 0, 2);
    let attempts: Vec<_> = (0..PER_HOST + 12).map(|_| connect_from(mx2, ports[0].1)).collect();
    let held: Vec<&TcpStream> = attempts.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(
        held.len(),
        PER_HOST,
        "one host holds at most {PER_HOST} connections: {attempts:?}"
    );
    assert!(
        attempts[PER_HOST..].iter().all(refused),
        "the rest are refused: {attempts:?}"
    );
    let stranger = connect_from(Ipv4Addr::new(127, 0, 0, 3), ports[0].1);
    assert!(
        refused(&stranger),
        "an address that is no Postfix host is refused: {stranger:?}"
    );
    // While the attacker holds its connections, mx1 still delivers its lines over RELP and TLS.
    let host_tcp = free_port();
    let host_stanza = shipped_stanza("postfix-host.conf", &certs, "mx1", ports[0].1, "");
    let _mx1 = Rsyslogd::start(
        &dir.join("mx1"),
        &format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{host_tcp}\")\n{host_stanza}"),
    );
    let lines: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "<22>2026-11-28T10:00:{i:02}+00:00 mx1 postfix/smtpd[{}]: connect from c[192.0.2.1]",
                5000 + i
            )
        })
        .collect();
    send_tcp(host_tcp, &lines);
    let stored = || count(&url, "SELECT count(*) FROM log_events WHERE pid BETWEEN 5000 AND 5019");
    assert!(
        wait_until(Duration::from_secs(60), || stored() == 20),
        "mx1's lines arrive while another host holds its cap: {} of 20",
        stored()
    );

    // The refusals are counted where the postmaster looks (`nft list table inet else_relp`).
    let stranger_rule = table.rule("ip saddr !=");
    assert!(stranger_rule.contains("packets 1 "), "one stranger: {stranger_rule}");
    let cap_rule = table.rule("add @hosts_v4");
    assert!(cap_rule.contains("packets 12 "), "12 over the cap: {cap_rule}");

    // Once the attacker lets go, rsyslogd closes its side and the host may connect again.
    drop(attempts);
    assert!(
        wait_until(Duration::from_secs(30), || connect_from(mx2, ports[0].1).is_ok()),
        "the cap counts open connections only:\n{}",
        table.listing()
    );
}
