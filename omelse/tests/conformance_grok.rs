//! Acceptance: every postfix-grok-patterns case (`postfix-grok-patterns/all_cases.jsonl`, 191
//! cases; `data` is the message text after the syslog tag, `pattern` names the daemon, `results`
//! are grok's captures) that is a whole line of a daemon we parse gives the values grok captured,
//! for every field we share. [`MAPPING`] is the one table from grok fields to ours; cases that are
//! not whole lines are listed in [`NOT_APPLICABLE`] with the reason.

use std::collections::BTreeMap;

use else_tests::corpora;
use omelse::parse::{parse_message, Program};
use serde_json::Value;

/// Cases not applicable (by grok pattern), and why.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "POSTFIX_COMMAND_COUNTER_DATA",
        "a fragment (the counters of smtpd's `disconnect` line), not a line; whole disconnect \
         lines (smtpd_0028, 0032, 0034, 0035) check the counters",
    ),
    (
        "POSTFIX_DELAYS",
        "a fragment (`delays=a/b/c/d` of a delivery line), not a line; the delivery-agent cases \
         check whole delivery lines",
    ),
    (
        "POSTFIX_RELAY",
        "a fragment (`relay=name[service]` of a delivery line), not a line",
    ),
    (
        "POSTFIX_TLS_FEATURES",
        "a fragment (the TLS security-level notation `dane/!requiretls:nostarttls` of Postfix \
         3.10+ TLS feature logging), not a line",
    ),
];

/// How a grok field is found in our event, seen in its serde form (what `elsed parse` prints).
#[derive(Clone, Copy)]
enum Rule {
    /// The same value at the first of these JSON pointers that holds a scalar (numbers compare
    /// as numbers, so grok's `63` is our `63.0`).
    Same(&'static [&'static str]),
    /// Grok's text is part of the text at the first of these pointers that holds one (grok splits
    /// a reply into pieces we keep whole, e.g. `status_data` + `status_message` in `reason`).
    Within(&'static [&'static str]),
    /// A comparison that needs the event's kind or rebuilds a text.
    By(fn(&Value, &str) -> bool),
    /// A grok-only field the event model does not keep; the reason says what is kept instead.
    NotModelled(&'static str),
}

use Rule::{By, NotModelled, Same, Within};

const CLIENT_NAME: &[&str] = &["/client/name", "/peer/name"];
const CLIENT_IP: &[&str] = &["/client/ip", "/peer/ip", "/ip", "/client"];
const CLIENT_PORT: &[&str] = &["/client/port", "/peer/port"];
const RELAY_NAME: &[&str] = &["/relay_peer/name", "/peer/name"];
const RELAY_IP: &[&str] = &["/relay_peer/ip", "/peer/ip"];
const RELAY_PORT: &[&str] = &["/relay_peer/port", "/peer/port"];
const TLS_DETAIL: &str = "TLS handshake details (key exchange, server signature and digest): the \
                          event keeps level, protocol, cipher and bits";

/// The one table: grok field → our event field.
const MAPPING: &[(&str, Rule)] = &[
    // --- queue ids and envelope ---------------------------------------------------------------
    ("postfix_queueid", By(queue_id)),
    ("postfix_message-id", Same(&["/message_id"])),
    ("postfix_from", Same(&["/from"])),
    ("postfix_keyvalue_data", By(keyvalue_data)),
    // --- peers --------------------------------------------------------------------------------
    ("postfix_client_hostname", Same(CLIENT_NAME)),
    ("postfix_client_ip", Same(CLIENT_IP)),
    ("postfix_client_ip_unknown", Same(CLIENT_IP)),
    ("postfix_client_port", Same(CLIENT_PORT)),
    ("postfix_server_ip", Same(&["/server/ip"])),
    ("postfix_server_port", Same(&["/server/port"])),
    ("postfix_relay_hostname", Same(RELAY_NAME)),
    ("postfix_relay_ip", Same(RELAY_IP)),
    ("postfix_relay_port", Same(RELAY_PORT)),
    // --- decisions (smtpd, postscreen, cleanup) ---------------------------------------------------
    ("postfix_action", By(action)),
    ("postfix_smtp_stage", By(smtp_stage)),
    ("postfix_status_code", Same(&["/code"])),
    ("postfix_status_code_enhanced", Same(&["/enhanced"])),
    ("postfix_status_data", Within(&["/reason"])),
    ("postfix_status_message", Within(&["/reason"])),
    ("postfix_milter_result", By(milter_result)),
    ("postfix_milter_message", By(|e, want| rebuilt_check(e) == want)),
    ("postfix_milter_data", Same(&["/reason"])),
    (
        "postfix_prepend_type",
        By(|e, want| kind(e) == "reject" && text(e, "source") == want),
    ),
    ("postfix_prepend_trigger", Same(&["/content"])),
    ("postfix_prepend_value", Same(&["/reason"])),
    // --- smtpd sessions -------------------------------------------------------------------------
    ("postfix_smtpd_lostconn_data", By(smtpd_lostconn)),
    ("postfix_command_counter_data", Same(&["/counters"])),
    ("postfix_discarded_ehlo_keywords", Within(&["/text"])),
    (
        "postfix_proxy_result",
        By(|e, want| e["accepted"] == (want == "accept")),
    ),
    ("postfix_proxy_smtp_stage", Same(&["/stage"])),
    ("postfix_proxy_message", By(proxy_message)),
    ("postfix_proxy_status_code", Same(&["/code"])),
    ("postfix_proxy_status_code_enhanced", Same(&["/enhanced"])),
    // --- TLS ------------------------------------------------------------------------------------
    ("postfix_tls_trustlevel", Same(&["/level"])),
    ("postfix_tls_version", Same(&["/protocol"])),
    ("postfix_tls_cipher", Same(&["/cipher"])),
    (
        "postfix_tls_cipher_size",
        By(|e, want| want.starts_with(&format!("{}/", as_text(&e["bits"])))),
    ),
    ("postfix_tls_key_exchange", NotModelled(TLS_DETAIL)),
    ("postfix_tls_server_signature", NotModelled(TLS_DETAIL)),
    ("postfix_tls_server_signature_curve", NotModelled(TLS_DETAIL)),
    ("postfix_tls_server_signature_size", NotModelled(TLS_DETAIL)),
    ("postfix_tls_server_digest", NotModelled(TLS_DETAIL)),
    ("postfix_tls_error", Within(&["/text"])),
    // --- postscreen and dnsblog -----------------------------------------------------------------
    ("postfix_postscreen_access", By(postscreen_access)),
    ("postfix_postscreen_violation", By(postscreen_violation)),
    ("postfix_postscreen_violation_time", Same(&["/after"])),
    ("postfix_postscreen_dnsbl_rank", Same(&["/rank"])),
    ("postfix_postscreen_toobusy_data", Within(&["/reason"])),
    (
        "postfix_postscreen_cache_retained",
        By(|e, w| counter(e, "retained", w)),
    ),
    ("postfix_postscreen_cache_dropped", By(|e, w| counter(e, "dropped", w))),
    ("postfix_dnsbl_domain", Same(&["/domain"])),
    ("postfix_dnsbl_result", Same(&["/answer"])),
    // --- delivery agents, qmgr, bounce, postsuper -----------------------------------------------
    ("postfix_status", By(status)),
    ("postfix_smtp_response", By(response)),
    ("postfix_local_response", By(response)),
    ("postfix_pipe_response", By(response)),
    ("postfix_error_response", By(response)),
    ("postfix_smtp_lostconn_data", Within(&["/text"])),
    ("postfix_smtp_lostconn_reason", Within(&["/text"])),
    ("postfix_pix_workaround", Within(&["/text"])),
    ("postfix_bounce_queueid", Same(&["/notification_queue_id"])),
    ("postfix_bounce_recipient", By(bounce_recipient)),
    ("postfix_bounce_reason", By(bounce_reason)),
    ("postfix_postsuper_action", By(postsuper_action)),
    ("postfix_postsuper_summary_action", By(postsuper_action)),
    ("postfix_postsuper_summary_count", Same(&["/count"])),
    // --- any daemon's free text -------------------------------------------------------------------
    ("postfix_message", By(message)),
    ("postfix_message_level", By(message_level)),
    // --- service daemons --------------------------------------------------------------------------
    ("postfix_version", Same(&["/version"])),
    (
        "postfix_config_path",
        NotModelled("the configuration directory of `daemon started`: the event keeps the version"),
    ),
    (
        "postfix_termination_signal",
        By(|e, _| kind(e) == "master" && text(e, "event") == "terminating"),
    ),
    ("postfix_service", Same(&["/service"])),
    ("postfix_anvil_conn_count", Same(&["/value"])),
    ("postfix_anvil_cache_size", Same(&["/value"])),
    (
        "postfix_anvil_conn_rate",
        By(|e, want| text(e, "value").starts_with(&format!("{want}/"))),
    ),
    (
        "postfix_anvil_conn_period",
        By(|e, want| text(e, "value").ends_with(&format!("/{want}"))),
    ),
    (
        "postfix_anvil_timestamp",
        NotModelled("anvil's own `at Mmm dd hh:mm:ss` (when the maximum was reached): the line's time is kept"),
    ),
    ("postfix_scache_hits", By(|e, w| counter(e, "hits", w))),
    ("postfix_scache_miss", By(|e, w| counter(e, "miss", w))),
    (
        "postfix_scache_success",
        By(|e, w| counter(e, "success", &format!("{w}%"))),
    ),
    ("postfix_scache_domains", By(|e, w| counter(e, "domains", w))),
    ("postfix_scache_addresses", By(|e, w| counter(e, "addresses", w))),
    ("postfix_scache_connection", By(|e, w| counter(e, "connection", w))),
    ("postfix_scache_timestamp", Same(&["/value"])),
    (
        "postfix_verify_cleanup_type",
        By(|e, want| text(e, "metric").starts_with(&format!("{want} "))),
    ),
    ("postfix_verify_cache_retained", By(|e, w| counter(e, "retained", w))),
    ("postfix_verify_cache_dropped", By(|e, w| counter(e, "dropped", w))),
];

/// The daemon a grok pattern is about (`^%{POSTFIX_SMTPD}$` → `smtpd`).
fn daemon_of(pattern: &str) -> Option<&'static str> {
    let name = pattern.strip_prefix("^%{POSTFIX_")?.split('}').next()?;
    Some(match name {
        "ANVIL" => "anvil",
        "BOUNCE" => "bounce",
        "CLEANUP" => "cleanup",
        "DISCARD" => "discard",
        "DNSBLOG" => "dnsblog",
        "ERROR" => "error",
        "LMTP" => "lmtp",
        "LOCAL" => "local",
        "MASTER" => "master",
        "PICKUP" => "pickup",
        "PIPE" => "pipe",
        "POSTDROP" => "postdrop",
        "POSTMAP" => "postmap",
        "POSTSCREEN" => "postscreen",
        "POSTSUPER" => "postsuper",
        "QMGR" => "qmgr",
        "SCACHE" => "scache",
        "SCRIPT" => "postfix-script",
        "SENDMAIL" => "sendmail",
        "SMTP" => "smtp",
        "SMTPD" => "smtpd",
        "TLSMGR" => "tlsmgr",
        "TLSPROXY" => "tlsproxy",
        "TRIVIAL_REWRITE" => "trivial-rewrite",
        "VERIFY" => "verify",
        "VIRTUAL" => "virtual",
        _ => return None,
    })
}

fn kind(event: &Value) -> &str {
    event["kind"].as_str().unwrap_or_default()
}

fn text<'a>(event: &'a Value, key: &str) -> &'a str {
    event[key].as_str().unwrap_or_default()
}

fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The first of the pointers that holds a scalar.
fn first_scalar<'a>(event: &'a Value, pointers: &[&str]) -> Option<&'a Value> {
    pointers
        .iter()
        .filter_map(|p| event.pointer(p))
        .find(|v| !v.is_null() && !v.is_object() && !v.is_array())
}

fn same_value(ours: &Value, want: &Value) -> bool {
    match (ours.as_f64(), want.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * b.abs().max(1.0),
        _ => as_text(ours) == as_text(want),
    }
}

/// The word `key=N` of a `key=value` list (scache, cache cleanups) is `key=want`.
fn counter(event: &Value, key: &str, want: &str) -> bool {
    text(event, "value").split(' ').any(|w| w == format!("{key}={want}"))
}

fn queue_id(event: &Value, want: &str) -> bool {
    match want {
        // `NOQUEUE` is Postfix's word for "no queue id yet".
        "NOQUEUE" => event["queue_id"].is_null(),
        _ => text(event, "queue_id") == want,
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

/// A cleanup decision's text as Postfix wrote it: `header CONTENT from ORIGIN` for header checks,
/// `STAGE from CLIENT: 5.7.1 TEXT` for milter replies.
fn rebuilt_check(event: &Value) -> String {
    let origin = match peer(event) {
        Value::Null => "local".to_owned(),
        p => format!("{}[{}]", text(p, "name"), text(p, "ip")),
    };
    match event["content"].as_str() {
        Some(content) => format!("{} {content} from {origin}", text(event, "source")),
        None => format!(
            "{} from {origin}: {} {}",
            text(event, "stage"),
            text(event, "enhanced"),
            text(event, "reason")
        ),
    }
}

fn action(event: &Value, want: &str) -> bool {
    let (action, milter) = match want.strip_prefix("milter-") {
        Some(action) => (action, true),
        None => (want, false),
    };
    // `reject_warning` (warn_if_reject) rejects nothing: a warning.
    let action = if action == "reject_warning" { "warn" } else { action };
    kind(event) == "reject" && text(event, "action") == action && (text(event, "source") == "milter") == milter
}

fn milter_result(event: &Value, want: &str) -> bool {
    let (source, action) = want.split_once('-').unwrap_or(("milter", want));
    text(event, "action") == action && text(event, "source") == source
}

/// The SMTP stage: of a decision or session event, or of the reply a next hop gave.
fn smtp_stage(event: &Value, want: &str) -> bool {
    match first_scalar(event, &["/stage", "/after"]) {
        Some(stage) => as_text(stage) == want,
        None => text(event, "text").contains(&format!("(in reply to {want} command)")),
    }
}

fn smtpd_lostconn(event: &Value, want: &str) -> bool {
    match want {
        "lost connection" => kind(event) == "lost_connection",
        "timeout" => kind(event) == "timeout",
        // smtpd's only TLS failure with a client peer; the event keeps the reason after it.
        "SSL_accept error" => kind(event) == "tls_error" && !event["peer"].is_null(),
        // Postfix 3.9's smuggling defence: the protocol violation postscreen calls BARE NEWLINE.
        "bare <LF> received" => text(event, "violation") == "BARE NEWLINE",
        other => panic!("smtpd lost-connection variant {other}"),
    }
}

/// `250 2.0.0 from MTA(…): 250 2.0.0 Ok: queued as X`: code, enhanced code and reason as logged.
fn proxy_message(event: &Value, want: &str) -> bool {
    let parts = [
        as_text(&event["code"]),
        text(event, "enhanced").to_owned(),
        text(event, "reason").to_owned(),
    ];
    let rebuilt: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty() && *p != "null")
        .collect();
    rebuilt.join(" ") == want
}

fn postscreen_access(event: &Value, want: &str) -> bool {
    match want {
        "PASS OLD" => kind(event) == "screen_pass" && event["new"] == false,
        "PASS NEW" => kind(event) == "screen_pass" && event["new"] == true,
        list => kind(event) == "screen_list" && text(event, "list") == list,
    }
}

fn postscreen_violation(event: &Value, want: &str) -> bool {
    match want {
        "PREGREET" => kind(event) == "screen_pregreet",
        "DNSBL" => kind(event) == "screen_dnsbl_rank",
        "HANGUP" => kind(event) == "screen_hangup",
        violation => kind(event) == "screen_violation" && text(event, "violation") == violation,
    }
}

fn status(event: &Value, want: &str) -> bool {
    match kind(event) {
        "delivery" => want.starts_with(text(event, "status")),
        other => other == want,
    }
}

fn response(event: &Value, want: &str) -> bool {
    match kind(event) {
        "delivery" => text(event, "status_text") == want,
        _ => text(event, "text").contains(want),
    }
}

fn bounce_recipient(event: &Value, want: &str) -> bool {
    text(event, "notification").starts_with("postmaster") == (want == "postmaster")
}

fn bounce_reason(event: &Value, want: &str) -> bool {
    let ours = text(event, "notification").trim_start_matches("postmaster_");
    matches!(
        (want, ours),
        ("non-delivery", "non_delivery") | ("delay", "delay") | ("delivery status", "success")
    )
}

fn postsuper_action(event: &Value, want: &str) -> bool {
    let operation = match want.to_lowercase().as_str() {
        "removed" => return kind(event) == "removed",
        "deleted" => "deleted",
        "requeued" => "requeued",
        "placed on hold" => "held",
        "released from hold" => "released",
        other => panic!("postsuper action {other}"),
    };
    text(event, "operation") == operation
}

/// grok's catch-all text, by what the line is.
fn message(event: &Value, want: &str) -> bool {
    match kind(event) {
        "reject" => rebuilt_check(event) == want,
        "removed" => want == "removed",
        "skipped" => want == "skipped, still being delivered",
        "sasl_failed" => {
            format!(
                "SASL {} authentication failed: {}",
                text(event, "method"),
                text(event, "reason")
            ) == want
        }
        "diagnostic" => text(event, "text") == want,
        _ => false,
    }
}

/// A diagnostic's severity, or a header check's action (`warning:`, `info:`) that grok reads as a
/// log level.
fn message_level(event: &Value, want: &str) -> bool {
    match kind(event) {
        "reject" => text(event, "action") == want.trim_end_matches("ing"),
        _ => text(event, "severity") == want,
    }
}

/// grok keeps `from=<a>, to=<b>, relay=…` whole; every such field we extracted is the one grok saw.
fn keyvalue_data(event: &Value, want: &str) -> bool {
    let pairs = [
        ("to", "to"),
        ("orig_to", "orig_to"),
        ("from", "from"),
        ("helo", "helo"),
        ("proto", "proto"),
    ];
    let fields_agree = pairs.iter().all(|(ours, theirs)| match event[*ours].as_str() {
        Some(v) => want.contains(&format!("{theirs}=<{v}>")) || want.contains(&format!("{theirs}={v}")),
        None => !want.contains(&format!(" {theirs}=")) && !want.starts_with(&format!("{theirs}=")),
    });
    let relay = event["relay"]
        .as_str()
        .is_none_or(|r| want.contains(&format!("relay={r},")));
    let dsn = event["dsn"].as_str().is_none_or(|d| want.contains(&format!("dsn={d}")));
    let whole = match kind(event) {
        "pickup" => want == format!("uid={} from=<{}>", as_text(&event["uid"]), text(event, "from")),
        "queued" => {
            want == format!(
                "from=<{}>, size={}, nrcpt={}",
                text(event, "from"),
                event["size"],
                event["nrcpt"]
            )
        }
        "client" => {
            let c = &event["client"];
            want.starts_with(&format!("client={}[{}]", text(c, "name"), text(c, "ip")))
        }
        _ => true,
    };
    fields_agree && relay && dsn && whole
}

/// Checks one case: the number of fields compared, or what disagrees.
fn check_case(case: &Value, daemon: &str) -> Result<usize, Vec<String>> {
    let data = case["data"].as_str().unwrap();
    let program = format!("postfix/{daemon}");
    let event = serde_json::to_value(parse_message(&Program::split(&program), data)).unwrap();
    if kind(&event) == "unknown" {
        return Err(vec![format!("not understood: {data:?}")]);
    }
    let mut wrong = Vec::new();
    let mut shared = 0;
    for (field, expected) in case["results"].as_object().unwrap() {
        let Some((_, rule)) = MAPPING.iter().find(|(f, _)| f == field) else {
            panic!("grok field {field} is not in MAPPING: add where we keep it, or why not");
        };
        let want = as_text(expected);
        let ok = match *rule {
            Same(pointers) => first_scalar(&event, pointers).is_some_and(|v| same_value(v, expected)),
            Within(pointers) => first_scalar(&event, pointers).is_some_and(|v| as_text(v).contains(&want)),
            By(check) => check(&event, &want),
            NotModelled(_) => continue,
        };
        shared += 1;
        if !ok {
            wrong.push(format!("{field} = {want:?}"));
        }
    }
    if wrong.is_empty() {
        Ok(shared)
    } else {
        wrong.push(format!("event: {event}"));
        Err(wrong)
    }
}

#[test]
fn grok_cases_give_grok_values() {
    let Some(dir) = corpora::dir_or_skip() else {
        return;
    };
    let cases = corpora::read_text(&dir.join("postfix-grok-patterns/all_cases.jsonl"));
    // daemon → (checked, fields compared, not applicable)
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut total = 0;
    for line in cases.lines().filter(|l| !l.trim().is_empty()) {
        total += 1;
        let case: Value = serde_json::from_str(line).unwrap();
        let file = case["file"].as_str().unwrap();
        let pattern = case["pattern"].as_str().unwrap();
        let name = pattern.trim_start_matches("^%{").split('}').next().unwrap();
        if NOT_APPLICABLE.iter().any(|(n, _)| *n == name) {
            counts.entry(format!("({name})")).or_default().2 += 1;
            continue;
        }
        let daemon = daemon_of(pattern).unwrap_or_else(|| panic!("{file}: pattern {pattern} names no daemon"));
        let entry = counts.entry(daemon.to_owned()).or_default();
        match check_case(&case, daemon) {
            Ok(fields) => {
                entry.0 += 1;
                entry.1 += fields;
            }
            Err(why) => failures.push(format!("{file} ({daemon}): {}", why.join("; "))),
        }
    }
    println!("postfix-grok-patterns: {total} cases");
    println!(
        "{:<22} {:>7} {:>7} {:>14}",
        "daemon", "checked", "fields", "not applicable"
    );
    for (daemon, (checked, fields, na)) in &counts {
        println!("{daemon:<22} {checked:>7} {fields:>7} {na:>14}");
    }
    for (pattern, reason) in NOT_APPLICABLE {
        println!("not applicable {pattern}: {reason}");
    }
    for (field, rule) in MAPPING {
        if let NotModelled(reason) = rule {
            println!("grok-only field {field}: {reason}");
        }
    }
    assert_eq!(total, 191, "all_cases.jsonl has 191 cases");
    assert!(
        failures.is_empty(),
        "{} grok cases disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
