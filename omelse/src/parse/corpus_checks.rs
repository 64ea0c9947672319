//! Checks of the session-side parsers (smtpd, postscreen, dnsblog, service daemons, diagnostics,
//! amavis) as a whole: against the real corpora in `../shared/corpora` (skipped when absent), and
//! against mangled lines, which must never make them panic.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

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

/// `../shared/corpora` beside the workspace; `ELSE_CORPORA` points elsewhere (git worktrees).
fn corpora() -> Option<PathBuf> {
    let dir = std::env::var_os("ELSE_CORPORA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: ../shared/corpora not found");
        None
    }
}

#[test]
fn logsums_log_has_no_unknown_line_from_our_daemons() {
    let Some(dir) = corpora() else { return };
    let file = std::fs::File::open(dir.join("postfix-logsums/mail.log.gz")).expect("mail.log.gz");
    let mut clock = Clock::with_zone_name("UTC", Timestamp::from_unix_seconds(1_680_000_000)).unwrap();
    let (mut lines, mut unknown, mut verdicts) = (0, Vec::new(), 0);
    for line in BufReader::new(flate2::read::GzDecoder::new(file)).split(b'\n') {
        // A few lines carry a client's raw bytes (postscreen's COMMAND PIPELINING).
        let line = String::from_utf8_lossy(&line.expect("read")).into_owned();
        lines += 1;
        let parsed = parse_line(&line, &mut clock).expect("envelope");
        if parsed.event.kind == EventKind::Unknown && OURS.contains(&parsed.program.daemon) {
            unknown.push(line.clone());
        }
        if parsed.program.daemon == "amavis" && line.contains(") Passed ") {
            let EventKind::Filter(verdict) = parsed.event.kind else {
                panic!("not a verdict: {line}")
            };
            assert!(verdict.queued_as.is_some() && verdict.from.is_some(), "{line}");
            assert_eq!(parsed.event.queue_id, verdict.queue_id, "{line}");
            // Mail that entered amavis without a Postfix queue id (local pickup) logs none.
            let has_id = line.contains(", Queue-ID: ");
            assert_eq!(
                verdict.queue_id.is_some_and(super::fields::is_queue_id),
                has_id,
                "{line}"
            );
            verdicts += 1;
        }
    }
    assert_eq!(lines, 69_861);
    assert!(verdicts > 100, "only {verdicts} amavis verdicts");
    assert!(
        unknown.is_empty(),
        "{} unknown lines, first: {:?}",
        unknown.len(),
        &unknown[..unknown.len().min(5)]
    );
}

/// grok's captures for the daemons we own: every case parses to a known kind, and the values grok
/// extracts (client, stage, codes, queue id, …) are the ones in our event.
#[test]
fn grok_cases_of_our_daemons_parse_with_grok_values() {
    let Some(dir) = corpora() else { return };
    let file = std::fs::File::open(dir.join("postfix-grok-patterns/all_cases.jsonl")).expect("all_cases.jsonl");
    let mut checked = 0;
    for line in BufReader::new(file).lines() {
        let case: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let pattern = case["pattern"].as_str().unwrap();
        let Some((name, _)) = pattern.strip_prefix("^%{POSTFIX_").and_then(|p| p.split_once('}')) else {
            continue;
        };
        let daemon = match name {
            "SCRIPT" => "postfix-script".to_string(),
            other => other.to_ascii_lowercase().replace('_', "-"),
        };
        if !OURS.contains(&daemon.as_str()) {
            continue;
        }
        let program = format!("postfix/{daemon}");
        let data = case["data"].as_str().unwrap();
        let event = parse_message(&Program::split(&program), data);
        assert_ne!(event.kind, EventKind::Unknown, "{data}");
        let json = serde_json::to_value(event).unwrap();
        let results = case["results"].as_object().unwrap();
        for (key, expected) in results {
            let expected = match expected {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            // Where our event keeps what grok captured under `key`.
            let paths: &[&str] = match key.as_str() {
                "postfix_queueid" if expected != "NOQUEUE" => &["/queue_id"],
                "postfix_client_ip" => &["/client/ip", "/peer/ip", "/ip", "/client"],
                "postfix_client_hostname" => &["/client/name", "/peer/name"],
                "postfix_client_port" => &["/client/port", "/peer/port"],
                "postfix_server_ip" => &["/server/ip"],
                "postfix_server_port" => &["/server/port"],
                "postfix_smtp_stage" => &["/after", "/stage"],
                "postfix_status_code" => &["/code"],
                "postfix_status_code_enhanced" => &["/enhanced"],
                "postfix_action" => &["/action"],
                "postfix_service" => &["/service"],
                "postfix_version" => &["/version"],
                "postfix_dnsbl_domain" => &["/domain"],
                "postfix_dnsbl_result" => &["/answer"],
                "postfix_tls_cipher" => &["/cipher"],
                "postfix_tls_version" => &["/protocol"],
                "postfix_tls_trustlevel" => &["/level"],
                "postfix_postscreen_dnsbl_rank" => &["/rank"],
                "postfix_postscreen_access" if expected.starts_with("PASS ") => {
                    assert_eq!(json["new"], expected == "PASS NEW", "{key}={expected}: {json}");
                    continue;
                }
                "postfix_postscreen_access" => &["/list"],
                "postfix_proxy_smtp_stage" => &["/stage"],
                "postfix_proxy_status_code" => &["/code"],
                "postfix_proxy_status_code_enhanced" => &["/enhanced"],
                "postfix_anvil_conn_count" | "postfix_anvil_cache_size" => &["/value"],
                "postfix_from" => &["/from"],
                "postfix_to" => &["/to"],
                "postfix_helo" => &["/helo"],
                "postfix_proto" => &["/proto"],
                // PREGREET, HANGUP and DNSBL have a kind of their own, the rest are violations.
                "postfix_postscreen_violation" => {
                    let kind = json["kind"].as_str().unwrap();
                    let own = kind.contains(&expected.to_ascii_lowercase());
                    assert!(
                        own || json["violation"] == expected.as_str(),
                        "{key}={expected}: {json}"
                    );
                    continue;
                }
                "postfix_anvil_conn_period" => {
                    let value = json["value"].as_str().unwrap();
                    assert!(value.ends_with(&format!("/{expected}")), "{key}={expected}: {json}");
                    continue;
                }
                _ => continue,
            };
            let ours = paths.iter().find_map(|p| json.pointer(p)).map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            });
            // grok keeps smtpd's words: `reject_warning` is our `warn`, `milter-reject` our
            // `reject` from a milter.
            let expected = match expected.strip_prefix("milter-") {
                Some(action) => {
                    assert_eq!(json["source"], "milter", "{data}");
                    action.to_string()
                }
                None if expected == "reject_warning" => "warn".to_string(),
                None => expected,
            };
            assert_eq!(ours.as_deref(), Some(expected.as_str()), "{key} for {data}: {json}");
        }
        checked += 1;
    }
    assert!(checked >= 80, "only {checked} grok cases of our daemons");
}

/// fail2ban's Postfix filter test log: every line it marks `"match": true` names an abusive host;
/// ours must parse into a known kind that carries that host's address.
#[test]
fn fail2ban_matches_parse_with_their_host() {
    let Some(dir) = corpora() else { return };
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
        // The message is what is checked here; a few dates (`Mar 7`, one space) are split by hand.
        let (program, event) = match parse_line(line, &mut clock) {
            Some(parsed) => (parsed.program, parsed.event),
            None => {
                let (tag, message) = line.split_once("]: ").expect("program[pid]: message");
                let name = tag.rsplit(' ').next().unwrap().split('[').next().unwrap();
                let program = Program::split(name);
                (program, parse_message(&program, message))
            }
        };
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
