//! `make bench`: bytes on the wire per log line between a Postfix host and the ELSE server, for
//! the shipped transports: RELP over TLS (postfix-host.conf → else-server.conf), plain TCP, and
//! rsyslog's zlib stream compression (postfix-host-compressed.conf → else-server-compressed.conf)
//! at several zipLevels, with and without the flush at the end of each batch, and RELP through a
//! compressing SSH tunnel (postfix-host-ssh-tunnel.conf → else-ssh-tunnel.conf, set up as
//! docs/transport.md says; the relay counts the SSH bytes). Every line of the
//! real 3-day MX log of the corpora goes from a real sending rsyslogd through a counting relay
//! to a real receiving rsyslogd with omelse, twice: at once (a backlog after an outage: large
//! batches) and at 1,000 lines a second (a live server: small batches). Prints the table of
//! docs/transport.md.
//!
//! `cargo bench -p else-tests --bench transport`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use else_tests::rsyslogd::{
    adapt_stanza, relp_certificates, send_tcp, send_tcp_paced, stanza_text, wait_until, Rsyslogd,
};
use else_tests::shipped::{ElseServer, PostfixHost};
use else_tests::ssh_tunnel::SshTunnel;
use else_tests::wire::CountingRelay;
use else_tests::{block_on, count, PgCluster};

const LIVE_RATE: usize = 1_000;

/// One transport: the Postfix-host stanza and how the ELSE server's stanzas change for it.
struct Transport {
    name: &'static str,
    relp: bool,
    /// RELP through the SSH tunnel: the relay sits between ssh and sshd.
    ssh_tunnel: bool,
    /// Compressed lines wait in the compressor until it is full or the stream ends.
    holds_lines: bool,
    sender: String,
    receiver_change: fn(String) -> String,
}

fn unchanged(text: String) -> String {
    text
}

fn uncompressed(text: String) -> String {
    text.replace("compression.mode=\"stream:always\"", "compression.mode=\"none\"")
}

fn transports() -> Vec<Transport> {
    let compressed = stanza_text("postfix-host-compressed.conf");
    let level = |n: u32| compressed.replace("zipLevel=\"6\"", &format!("zipLevel=\"{n}\""));
    vec![
        Transport {
            name: "RELP/TLS (postfix-host.conf)",
            relp: true,
            ssh_tunnel: false,
            holds_lines: false,
            sender: stanza_text("postfix-host.conf"),
            receiver_change: unchanged,
        },
        Transport {
            name: "RELP through ssh -C (postfix-host-ssh-tunnel.conf)",
            relp: true,
            ssh_tunnel: true,
            holds_lines: false,
            sender: stanza_text("postfix-host-ssh-tunnel.conf"),
            receiver_change: unchanged,
        },
        Transport {
            name: "plain TCP (omfwd, no compression)",
            relp: false,
            ssh_tunnel: false,
            holds_lines: false,
            sender: uncompressed(compressed.replace("zipLevel=\"6\"", "zipLevel=\"0\"")),
            receiver_change: uncompressed,
        },
        Transport {
            name: "zlib stream, zipLevel 1",
            relp: false,
            ssh_tunnel: false,
            holds_lines: false,
            sender: level(1),
            receiver_change: unchanged,
        },
        Transport {
            name: "zlib stream, zipLevel 6 (postfix-host-compressed.conf)",
            relp: false,
            ssh_tunnel: false,
            holds_lines: false,
            sender: compressed.clone(),
            receiver_change: unchanged,
        },
        Transport {
            name: "zlib stream, zipLevel 9",
            relp: false,
            ssh_tunnel: false,
            holds_lines: false,
            sender: level(9),
            receiver_change: unchanged,
        },
        Transport {
            name: "zlib stream, zipLevel 6, flushOnTXEnd off",
            relp: false,
            ssh_tunnel: false,
            holds_lines: true,
            sender: compressed.replace(
                "compression.stream.flushOnTXEnd=\"on\"",
                "compression.stream.flushOnTXEnd=\"off\"",
            ),
            receiver_change: unchanged,
        },
    ]
}

struct Measured {
    to_receiver: u64,
    to_sender: u64,
    sender_cpu: f64,
    receiver_cpu: f64,
    connections: u64,
}

fn stored(url: &str) -> i64 {
    count(url, "SELECT count(*) FROM log_events")
}

/// Sends `lines` through `transport` (at once, or at `rate` lines a second) until every line is
/// stored; what the relay counted and the two daemons' CPU time.
fn measure(transport: &Transport, lines: &[String], rate: Option<usize>, work: &Path, certs: &Path) -> Measured {
    let url = block_on(PgCluster::shared().create_database());
    let dir = work.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = ElseServer::start_changed(
        &dir.join("else"),
        certs,
        "server",
        &url,
        "helga",
        transport.receiver_change,
    );
    let (wire, stanza): (Wire, String) = if transport.ssh_tunnel {
        let tunnel = SshTunnel::set_up_as_documented(&dir.join("setup"), server.tunnel_port, true);
        let stanza = tunnel.host_stanza();
        (Wire::Tunnel(tunnel), stanza)
    } else {
        let relay = CountingRelay::start(if transport.relp {
            server.relp_port
        } else {
            server.compressed_port
        });
        let stanza = adapt_stanza(&transport.sender, certs, "mx1", relay.port(), &url);
        (Wire::Relay(relay), stanza)
    };
    let mut host = PostfixHost::start(&dir.join("mx1"), &stanza);
    let syslog: Vec<String> = lines.iter().map(|l| format!("<22>{l}")).collect();
    // The tunnel's ssh counts as the sender's, its sshd as the server's.
    let cpu = |host: &Rsyslogd, server: &Rsyslogd| {
        let (ssh, sshd) = wire.cpu_seconds();
        (host.cpu_seconds() + ssh, server.cpu_seconds() + sshd)
    };
    let bytes_before = wire.bytes();
    let before = cpu(&host.daemon, &server.daemon);
    match rate {
        Some(rate) => send_tcp_paced(host.input_port, &syslog, rate),
        None => send_tcp(host.input_port, &syslog),
    }
    let all = lines.len() as i64;
    let still = |limit: Duration| {
        let mut last = (stored(&url), Instant::now());
        wait_until(limit, || {
            let now = stored(&url);
            if now != last.0 {
                last = (now, Instant::now());
            }
            now >= all || last.1.elapsed() > Duration::from_secs(10)
        });
        stored(&url) >= all
    };
    let mut arrived = still(Duration::from_secs(900));
    let after = cpu(&host.daemon, &server.daemon);
    // Without the flush at the end of each batch the last lines wait in the compressor until the
    // stream ends, which a clean stop of the sender does (lines still queued are saved and sent
    // by the next start).
    for _ in 0..3 {
        if arrived || !transport.holds_lines {
            break;
        }
        host.daemon.stop();
        arrived = still(Duration::from_secs(120));
        host.daemon.start_again();
    }
    assert!(
        arrived,
        "{}: {} of {all} lines stored; receiver:\n{}\nsender:\n{}",
        transport.name,
        stored(&url),
        server.daemon.own_log(),
        host.daemon.own_log()
    );
    assert_eq!(stored(&url), all, "{}: every line once", transport.name);
    let bytes = wire.bytes();
    Measured {
        to_receiver: bytes.0 - bytes_before.0,
        to_sender: bytes.1 - bytes_before.1,
        sender_cpu: after.0 - before.0,
        receiver_cpu: after.1 - before.1,
        connections: bytes.2 - bytes_before.2,
    }
}

/// What the bytes cross: a counting relay to the receiver, or the SSH tunnel (counted between ssh
/// and sshd; the caller subtracts what its set-up sent, the key scan and the login).
enum Wire {
    Relay(CountingRelay),
    Tunnel(SshTunnel),
}

impl Wire {
    /// To the receiver, back, connections.
    fn bytes(&self) -> (u64, u64, u64) {
        match self {
            Wire::Relay(relay) => (relay.to_receiver(), relay.to_sender(), relay.connections()),
            Wire::Tunnel(tunnel) => tunnel.bytes().expect("counted"),
        }
    }

    fn cpu_seconds(&self) -> (f64, f64) {
        match self {
            Wire::Relay(_) => (0.0, 0.0),
            Wire::Tunnel(tunnel) => tunnel.cpu_seconds(),
        }
    }
}

/// The same bytes as the sender writes, through one compressor that never flushes: the floor
/// for stream compression of this log.
fn whole_stream_references(lines: &[String]) -> Vec<(String, usize)> {
    use std::io::Write;
    let stream: Vec<u8> = lines.iter().flat_map(|l| format!("<22>{l}\n").into_bytes()).collect();
    let mut references = vec![("uncompressed".to_string(), stream.len())];
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    zlib.write_all(&stream).expect("compress");
    references.push(("zlib 6, one stream".into(), zlib.finish().expect("compress").len()));
    // zstd only as a reference (this rsyslog's omfwd has no zstd), from the zstd tool if present.
    let zstd = std::process::Command::new("zstd")
        .args(["-3", "-c", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    if let Ok(mut child) = zstd {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&stream)
            .expect("zstd input");
        let output = child.wait_with_output().expect("zstd");
        references.push(("zstd 3, one stream (zstd tool)".into(), output.stdout.len()));
    } else {
        references.push(("zstd 3, one stream: zstd tool not installed".into(), 0));
    }
    references
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let corpora = else_tests::corpora::dir_or_skip().expect("../shared/corpora is needed for this benchmark");
    let text = else_tests::corpora::read_text(&corpora.join("postfix-logsums/mail.log.gz"));
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let work: PathBuf = std::env::temp_dir().join(format!("else-bench-transport-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work directory");
    let certs = relp_certificates(&work, &["mx1"]);
    let n = lines.len() as f64;
    println!(
        "{} lines of postfix-logsums/mail.log.gz; bytes are TCP payload counted by a relay on the loopback",
        lines.len()
    );
    for (name, bytes) in whole_stream_references(&lines) {
        println!("reference, {name}: {:.1} bytes/line", bytes as f64 / n);
    }
    let mut table = Vec::new();
    let mut plain = [0.0; 2];
    let mut relp = [0.0; 2];
    // ELSE_BENCH_TRANSPORTS=zipLevel measures only the transports whose name contains it.
    let only = std::env::var("ELSE_BENCH_TRANSPORTS").unwrap_or_default();
    for transport in transports().into_iter().filter(|t| t.name.contains(&only)) {
        for (regime, rate) in [(0, None), (1, Some(LIVE_RATE))] {
            let started = Instant::now();
            let m = measure(&transport, &lines, rate, &work, &certs);
            let total = (m.to_receiver + m.to_sender) as f64 / n;
            if transport.name.starts_with("plain") {
                plain[regime] = total;
            }
            if transport.relp && !transport.ssh_tunnel {
                relp[regime] = total;
            }
            eprintln!(
                "{} / {}: {:.1} s, {} connection(s)",
                transport.name,
                ["at once", "live"][regime],
                started.elapsed().as_secs_f64(),
                m.connections
            );
            table.push((transport.name, regime, m, total));
        }
    }
    println!("| transport | regime | bytes/line to the server | back | total | vs plain TCP | vs RELP/TLS | sender CPU s | server CPU s |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, regime, m, total) in &table {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
            ["backlog, at once", "live, 1,000 lines/s"][*regime],
            m.to_receiver as f64 / n,
            m.to_sender as f64 / n,
            total,
            total / plain[*regime],
            total / relp[*regime],
            m.sender_cpu,
            m.receiver_cpu
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
