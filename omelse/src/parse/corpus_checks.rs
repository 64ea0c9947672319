//! Checks of the session-side parsers (smtpd, postscreen, dnsblog, service daemons, diagnostics)
//! as a whole: fail2ban's labelled log in `../shared/corpora` (skipped when absent, outside CI), and mangled
//! lines, which must never make them panic. The grok cases and the unknown-line census of every
//! corpus are in `omelse/tests/conformance_*.rs`.

use super::{parse_line, parse_message, Clock, EventKind, Program, Timestamp};

/// Daemons whose lines these parsers own; cleanup, qmgr and the delivery agents are elsewhere.
const OURS: &[&str] = &[
    "smtpd",
    "qmqpd",
    "postscreen",
    "dnsblog",
    "anvil",
    "master",
    "scache",
    "tlsproxy",
    "verify",
    "trivial-rewrite",
    "tlsmgr",
    "proxymap",
    "postfix-script",
    "postlog",
    "flush",
    "showq",
    "spawn",
];

/// fail2ban's Postfix filter test log: every line it marks `"match": true` names an abusive host;
/// ours must parse into a known kind that carries that host's address.
#[test]
fn fail2ban_matches_parse_with_their_host() {
    let Some(dir) = else_tests::corpora::dir_or_skip() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("fail2ban/postfix")).expect("fail2ban/postfix");
    let mut clock = Clock::with_zone_name("UTC", Timestamp::from_unix_seconds(1_680_000_000)).unwrap();
    let mut expect_host: Option<String> = None;
    let mut checked = 0;
    for line in text.lines() {
        if let Some(json) = line.strip_prefix("# failJSON: ") {
            let spec: serde_json::Value = serde_json::from_str(json).unwrap();
            expect_host = (spec["match"] == true).then(|| spec["host"].as_str().unwrap_or("").to_string());
            continue;
        }
        let Some(host) = expect_host.take() else {
            continue;
        };
        let parsed = parse_line(line, &mut clock).unwrap_or_else(|| panic!("no envelope: {line}"));
        let (program, event) = (parsed.program, parsed.event);
        if !OURS.contains(&program.daemon) {
            continue;
        }
        assert_ne!(event.kind, EventKind::Unknown, "{line}");
        let json = serde_json::to_string(&event).unwrap();
        assert!(
            json.contains(&format!("\"{host}\"")) || json.contains(&host),
            "{host} not in {json}"
        );
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} fail2ban matches");
}

proptest::proptest! {
    /// Truncated, spliced or arbitrary messages: every parser answers, none panics on a slice.
    #[test]
    fn mangled_messages_never_panic(
        daemon in proptest::sample::select(OURS),
        prefix in proptest::sample::select(&[
            "", "NOQUEUE: reject: RCPT from ", "connect from ", "disconnect from x[1.2.3.4] commands=",
            "client=", "proxy-accept: ", "warning: ", "statistics: max ", "cache ", "PREGREET ",
            "HANGUP after ", "COMMAND PIPELINING from ", "DNSBL rank ", "addr ", "daemon started -- version ",
            "Anonymous TLS connection established from ", "SSL_accept error from ", "lost connection after ",
        ][..]),
        tail in "[ -~é😀]{0,60}",
    ) {
        let message = format!("{prefix}{tail}");
        let program = format!("postfix/{daemon}");
        let _ = parse_message(&Program::split(&program), &message);
        let _ = parse_message(&Program::split("amavis"), &format!("(1-1) Passed CLEAN {tail}"));
    }
}
