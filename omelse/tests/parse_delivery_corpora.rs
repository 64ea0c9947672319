//! The queue-side daemons (cleanup, qmgr, delivery agents, bounce, pickup, postsuper) over the real
//! corpora: no line of theirs stays unknown, and every postfix-grok-patterns case of theirs gives
//! the values grok extracts.

use std::io::Read;
use std::path::{Path, PathBuf};

use omelse::parse::{parse_line, parse_message, Clock, EventKind, Program, Timestamp};
use serde_json::Value;

const OUR_DAEMONS: &[&str] = &[
    "cleanup",
    "qmgr",
    "oqmgr",
    "smtp",
    "lmtp",
    "local",
    "virtual",
    "pipe",
    "error",
    "discard",
    "retry",
    "bounce",
    "pickup",
    "postsuper",
];

/// `shared/corpora` in the nearest ancestor of the workspace that has one.
fn corpora() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = manifest
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/corpora"))
        .find(|dir| dir.is_dir());
    if found.is_none() {
        println!("skipped: ../shared/corpora not found");
    }
    found
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("gzip");
    out
}

/// The files of a ustar archive, gunzipped when they are gzip files themselves.
fn tar_files(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut at = 0;
    while at + 512 <= archive.len() && archive[at] != 0 {
        let header = &archive[at..at + 512];
        let name = String::from_utf8_lossy(&header[..100])
            .trim_end_matches('\0')
            .to_owned();
        let size_field = String::from_utf8_lossy(&header[124..136]);
        let size =
            usize::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
                .unwrap_or(0);
        let data = &archive[at + 512..at + 512 + size];
        if header[156] == b'0' || header[156] == 0 {
            let data = if data.starts_with(&[0x1f, 0x8b]) {
                gunzip(data)
            } else {
                data.to_vec()
            };
            files.push((name, data));
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    files
}

/// Every log line of the corpora, with the file it came from.
fn corpus_lines(dir: &Path) -> Vec<(String, String)> {
    let mut texts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add_dir = |sub: &str, keep: &dyn Fn(&str) -> bool| {
        let mut entries: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && keep(&name) {
                texts.push((format!("{sub}/{name}"), std::fs::read(&path).unwrap()));
            }
        }
    };
    add_dir("lightmeter-ControlCenter/individual_files", &|n| {
        n.ends_with(".log")
    });
    add_dir("lightmeter-ControlCenter/logparser_corpus", &|n| {
        n.ends_with(".txt")
    });
    add_dir("pmg-log-tracker", &|n| n.starts_with("test_input_"));
    add_dir("postfix-grok-patterns/test-legacy-logs", &|_| true);
    add_dir("postfix_exporter", &|n| n.ends_with(".log"));
    add_dir("digineo-postfix_exporter", &|n| n == "mail.log");
    let logsums = std::fs::read(dir.join("postfix-logsums/mail.log.gz")).unwrap();
    texts.push(("postfix-logsums/mail.log.gz".into(), gunzip(&logsums)));
    let complete = std::fs::read(dir.join("lightmeter-ControlCenter/complete.tar.gz")).unwrap();
    texts.extend(tar_files(&gunzip(&complete)));
    texts
        .into_iter()
        .flat_map(|(file, bytes)| {
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(|l| (file.clone(), l.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Diagnostics (`warning: …`) belong to the diagnostic parser, not to the daemons' own.
fn is_diagnostic(text: &str) -> bool {
    ["warning: ", "error: ", "fatal: ", "panic: "]
        .iter()
        .any(|p| text.starts_with(p))
}

#[test]
fn no_line_of_ours_stays_unknown() {
    let Some(dir) = corpora() else { return };
    let lines = corpus_lines(&dir);
    let mut clock = Clock::new(
        jiff::tz::TimeZone::UTC,
        Timestamp::from_unix_seconds(1_700_000_000),
    );
    let (mut ours, mut unknown) = (0, Vec::new());
    for (file, line) in &lines {
        let Some(parsed) = parse_line(line, &mut clock) else {
            continue;
        };
        if !parsed.program.is_postfix() || !OUR_DAEMONS.contains(&parsed.program.daemon) {
            continue;
        }
        ours += 1;
        let (_, text) = omelse::parse::fields::split_queue_id(parsed.line.message);
        if matches!(parsed.event.kind, EventKind::Unknown) && !is_diagnostic(text) {
            unknown.push(format!("{file}: {line}"));
        }
    }
    assert!(
        ours > 3_000,
        "only {ours} lines of our daemons found in {} lines",
        lines.len()
    );
    // pmg-log-tracker's deliberately misleading lines: tags of ours over junk text.
    let junk = ["CLEANUP99:", "STATISTICS1:", "DELIVERY1:"];
    unknown.retain(|l| {
        !(l.starts_with("pmg-log-tracker/test_input_foreign_lines")
            && junk.iter().any(|j| l.ends_with(j)))
    });
    assert!(
        unknown.is_empty(),
        "{} unknown lines:\n{}",
        unknown.len(),
        unknown.join("\n")
    );
}

/// The daemon a postfix-grok-patterns pattern is about, when it is one of ours.
fn daemon_of(pattern: &str) -> Option<&'static str> {
    let name = pattern.strip_prefix("^%{POSTFIX_")?.split('}').next()?;
    Some(match name {
        "SMTP" => "smtp",
        "LMTP" => "lmtp",
        "LOCAL" => "local",
        "VIRTUAL" => "virtual",
        "PIPE" => "pipe",
        "ERROR" => "error",
        "DISCARD" => "discard",
        "BOUNCE" => "bounce",
        "PICKUP" => "pickup",
        "POSTSUPER" => "postsuper",
        "QMGR" => "qmgr",
        "CLEANUP" => "cleanup",
        _ => return None,
    })
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The peer of an event, whichever field holds it.
fn peer(event: &Value) -> &Value {
    ["relay_peer", "peer", "client"]
        .iter()
        .map(|k| &event[*k])
        .find(|v| !v.is_null())
        .unwrap_or(&Value::Null)
}

/// A decision's text as cleanup wrote it: `header CONTENT from ORIGIN` for header checks,
/// `STAGE from CLIENT: 5.7.1 TEXT` for milter replies.
fn rebuilt_check(event: &Value) -> String {
    let origin = match peer(event) {
        Value::Null => "local".to_owned(),
        p => format!(
            "{}[{}]",
            p["name"].as_str().unwrap(),
            p["ip"].as_str().unwrap()
        ),
    };
    let text = |k: &str| event[k].as_str().unwrap_or_default().to_owned();
    match event["content"].as_str() {
        Some(content) => format!("{} {content} from {origin}", text("source")),
        None => format!(
            "{} from {origin}: {} {}",
            text("stage"),
            text("enhanced"),
            text("reason")
        ),
    }
}

/// Checks one field grok extracted against the event; panics on a mismatch or an unmapped field.
fn check(case: &str, event: &Value, key: &str, expected: &Value) {
    let want = as_text(expected);
    let kind = event["kind"].as_str().unwrap();
    let text_of = |k: &str| event[k].as_str().unwrap_or_default().to_owned();
    let ok = match key {
        "postfix_queueid" => text_of("queue_id") == want,
        "postfix_message-id" => text_of("message_id") == want,
        "postfix_bounce_queueid" => text_of("notification_queue_id") == want,
        "postfix_bounce_recipient" => {
            text_of("notification").starts_with("postmaster") == (want == "postmaster")
        }
        "postfix_bounce_reason" => {
            let n = text_of("notification");
            let n = n.trim_start_matches("postmaster_");
            matches!(
                (want.as_str(), n),
                ("non-delivery", "non_delivery")
                    | ("delay", "delay")
                    | ("delivery status", "success")
            )
        }
        "postfix_status" => match kind {
            "delivery" => want.starts_with(&text_of("status")),
            other => other == want,
        },
        "postfix_smtp_response"
        | "postfix_local_response"
        | "postfix_pipe_response"
        | "postfix_error_response" => match kind {
            "delivery" => text_of("status_text") == want,
            _ => text_of("text").contains(&want),
        },
        "postfix_smtp_lostconn_data"
        | "postfix_smtp_lostconn_reason"
        | "postfix_tls_error"
        | "postfix_pix_workaround" => text_of("text").contains(&want),
        "postfix_smtp_stage" => text_of("text").contains(&format!("(in reply to {want} command)")),
        "postfix_relay_hostname" => peer(event)["name"] == want.as_str(),
        "postfix_relay_ip" => peer(event)["ip"] == want.as_str(),
        "postfix_relay_port" => as_text(&peer(event)["port"]) == want,
        "postfix_tls_trustlevel" => text_of("level") == want,
        "postfix_tls_version" => text_of("protocol") == want,
        "postfix_tls_cipher" => text_of("cipher") == want,
        "postfix_tls_cipher_size" => want.starts_with(&format!("{}/", as_text(&event["bits"]))),
        // Handshake details the event model does not keep.
        "postfix_tls_key_exchange"
        | "postfix_tls_server_signature"
        | "postfix_tls_server_signature_curve"
        | "postfix_tls_server_signature_size"
        | "postfix_tls_server_digest" => true,
        "postfix_from" => text_of("from") == want,
        "postfix_message" if kind == "reject" => rebuilt_check(event) == want,
        "postfix_message" => matches!(
            (want.as_str(), kind),
            ("removed", "removed") | ("skipped, still being delivered", "skipped")
        ),
        // A header check's action (`warning:`, `info:`), which grok reads as a log level.
        "postfix_message_level" => text_of("action") == want.trim_end_matches("ing"),
        "postfix_postsuper_action" | "postfix_postsuper_summary_action" => {
            let op = match want.to_lowercase().as_str() {
                "removed" => return assert_eq!(kind, "removed", "{case}"),
                "deleted" => "deleted",
                "requeued" => "requeued",
                "placed on hold" => "held",
                "released from hold" => "released",
                other => panic!("{case}: postsuper action {other}"),
            };
            text_of("operation") == op
        }
        "postfix_postsuper_summary_count" => as_text(&event["count"]) == want,
        "postfix_milter_result" => {
            let action = want.rsplit('-').next().unwrap();
            let source = if want.contains('-') {
                want.split('-').next().unwrap()
            } else {
                "milter"
            };
            text_of("action") == action && text_of("source") == source
        }
        "postfix_milter_message" => rebuilt_check(event) == want,
        "postfix_milter_data" | "postfix_prepend_value" => text_of("reason") == want,
        "postfix_prepend_type" => kind == "reject" && text_of("source") == want,
        "postfix_prepend_trigger" => text_of("content") == want,
        "postfix_keyvalue_data" => {
            // Every address and envelope field we extracted is the one grok saw.
            let pairs = [
                ("to", "to"),
                ("orig_to", "orig_to"),
                ("from", "from"),
                ("helo", "helo"),
            ];
            pairs
                .iter()
                .all(|(ours, theirs)| match event[*ours].as_str() {
                    Some(v) => {
                        want.contains(&format!("{theirs}=<{v}>"))
                            || want.contains(&format!("{theirs}={v},"))
                    }
                    None => {
                        !want.contains(&format!(" {theirs}="))
                            && !want.starts_with(&format!("{theirs}="))
                    }
                })
                && event["relay"]
                    .as_str()
                    .is_none_or(|r| want.contains(&format!("relay={r},")))
                && event["dsn"]
                    .as_str()
                    .is_none_or(|d| want.contains(&format!("dsn={d}")))
                && (kind != "pickup"
                    || want == format!("uid={} from=<{}>", as_text(&event["uid"]), text_of("from")))
                && (kind != "queued"
                    || want
                        == format!(
                            "from=<{}>, size={}, nrcpt={}",
                            text_of("from"),
                            event["size"],
                            event["nrcpt"]
                        ))
        }
        other => panic!("{case}: unmapped grok field {other}"),
    };
    assert!(ok, "{case}: {key} = {want:?} but event is {event}");
}

#[test]
fn grok_cases_of_our_daemons_give_grok_values() {
    let Some(dir) = corpora() else { return };
    let cases = std::fs::read_to_string(dir.join("postfix-grok-patterns/all_cases.jsonl")).unwrap();
    let mut checked = 0;
    for line in cases.lines() {
        let case: Value = serde_json::from_str(line).unwrap();
        let Some(daemon) = daemon_of(case["pattern"].as_str().unwrap()) else {
            continue;
        };
        let name = case["file"].as_str().unwrap();
        let data = case["data"].as_str().unwrap();
        let results = case["results"].as_object().unwrap();
        let program = format!("postfix/{daemon}");
        let event = serde_json::to_value(parse_message(&Program::split(&program), data)).unwrap();
        // Diagnostics (`postfix_message_level` without a decision) are the diagnostic parser's.
        if results.contains_key("postfix_message_level") && event["kind"] != "reject" {
            continue;
        }
        assert_ne!(event["kind"], "unknown", "{name}: {data}");
        for (key, expected) in results {
            check(name, &event, key, expected);
        }
        checked += 1;
    }
    println!("{checked} grok cases checked");
    assert!(checked >= 60, "only {checked} grok cases checked");
}
