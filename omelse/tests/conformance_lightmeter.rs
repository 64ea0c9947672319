//! Acceptance: the Lightmeter scenario logs (36 files; the corpus note counts 37) (lightmeter-ControlCenter/individual_files), each
//! through the whole pipeline, with what a mail administrator would say happened, checked on the
//! rows ELSE stores. Upstream's own expectations live in its Go tests (not shipped); the ones here
//! were written by reading each log.

mod common;

use common::Outcome;
use else_tests::corpora;
use omelse::parse::{Clock, Timestamp};
use omelse::store::MessageRow;

const DIR: &str = "lightmeter-ControlCenter/individual_files";

/// Runs the scenario logs (several are merged in time order, as a central syslog receives them).
fn run(files: &[&str]) -> Option<Outcome> {
    let dir = corpora::dir_or_skip()?.join(DIR);
    let mut lines: Vec<String> = Vec::new();
    for file in files {
        let text = corpora::read_text(&dir.join(file));
        lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
    }
    if files.len() > 1 {
        // `Mmm dd hh:mm:ss` in the same month: the prefix orders them; the sort is stable.
        lines.sort_by(|a, b| a.get(..15).cmp(&b.get(..15)));
    }
    // The logs carry no year; 2022-01-01 as reference puts each in one year.
    let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::from_unix_seconds(1_640_995_200));
    let out = Outcome::run(lines.iter().map(String::as_str), clock, 10);
    assert_eq!(
        out.batch.events.len(),
        lines.len(),
        "every line is kept as an event row"
    );
    Some(out)
}

fn state(m: &MessageRow) -> (&'static str, bool) {
    (m.state, m.closed)
}

/// `(status, dsn, relay)` of one recipient.
fn outcome<'a>(out: &'a Outcome, queue_id: &str, rcpt: &str) -> (&'static str, Option<&'a str>, Option<&'a str>) {
    let r = out.recipient(queue_id, rcpt);
    (r.status, r.dsn.as_deref(), r.relay.as_deref())
}

fn has_link(out: &Outcome, kinds: &[&str], from: &str, to: &str) -> bool {
    out.links()
        .iter()
        .any(|(k, f, t)| kinds.contains(k) && *f == from && *t == to)
}

/// The logs this file covers; [`every_scenario_is_covered`] checks the directory has no other.
const SCENARIOS: &[&str] = &[
    "1_bounce_simple.log",
    "2_multiple_recipients_some_bounces.log",
    "2_multiple_recipients_some_bounces_no_last_remove.log",
    "3_local_delivery.log",
    "4_lost_queue.log",
    "5_zimbra_amavisd.log",
    "6_deferred_message_retry.log",
    "7_only_connections_and_disconnections.log",
    "8_weird_log_file.log",
    "9_mixed_messages.log",
    "10_pickup.log",
    "11_single_successful_delivery.log",
    "12_two_independent_deliveries_in_the_same_smtpd_process_in_order.log",
    "12_two_independent_deliveries_in_the_same_smtpd_process_mixed.log",
    "13_empty_msgid_issue_388.log",
    "14_reuse_of_queueid.log",
    "15_milter-reject.log",
    "16_corrupted_messageid.log",
    "17-smtpd-reject.log",
    "17-smtpd-reject-with-milter-reject.log",
    "18_expired.log",
    "18_pickup2.log",
    "19_postfix_version.log",
    "20_rejected.log",
    "21_deliveries_with_local_daemon.log",
    "22_virtual_delivery.log",
    "25_authclean_cleanup.log",
    "26_two_recipients.log",
    "27_one_sent_one_received.log",
    "28_received_bounce.log",
    "29_inbound_relayed_message_server_1.log",
    "29_inbound_relayed_message_server_2.log",
    "30_in_reply_to_header.log",
    "31_inbound_reply.log",
    "31_relayed_bounce.log",
    "33_delivery_with_remote_id.log",
];

#[test]
fn every_scenario_is_covered() {
    let Some(dir) = corpora::dir_or_skip() else {
        return;
    };
    let mut present: Vec<String> = std::fs::read_dir(dir.join(DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    present.sort();
    let mut covered: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    covered.sort();
    // The corpus LICENSES note says 37; the directory holds 36 logs, 29_* being two servers' halves.
    assert_eq!(present.len(), 36);
    assert_eq!(covered, present);
}

/// 1: user@sender.com (authenticated) sent one message to invalid.email@example.com; after the
/// content filter the remote MX refused it with 5.1.1, and the sender got a non-delivery notice.
#[test]
fn s01_bounce_simple() {
    let Some(out) = run(&["1_bounce_simple.log"]) else {
        return;
    };
    let original = out.message("4AA091855DA0");
    assert_eq!(original.sender.as_deref(), Some("user@sender.com"));
    assert_eq!(original.sasl_username.as_deref(), Some("user@sender.com"));
    assert!(has_link(&out, &["content_filter"], "4AA091855DA0", "776E41855DB2"));
    assert_eq!(
        outcome(&out, "776E41855DB2", "invalid.email@example.com"),
        ("bounced", Some("5.1.1"), Some("mx.example.com[11.22.33.44]:25"))
    );
    assert_eq!(state(out.message("776E41855DB2")), ("bounced", true));
    assert!(has_link(&out, &["notification"], "776E41855DB2", "A48191855DA0"));
    let ndr = out.message("A48191855DA0");
    assert_eq!((ndr.origin, ndr.sender.as_deref()), ("bounce", Some("")));
    assert_eq!(out.recipient("A48191855DA0", "user@sender.com").status, "sent");
}

/// The five recipients of the filtered copy 1310930001DB: two delivered, three bounced.
const SCENARIO_2: [(&str, &str, &str); 5] = [
    ("recipient1@dst1.example.com", "sent", "2.0.0"),
    ("recipient1@dst2.example.com", "sent", "2.0.0"),
    ("recipient1@dst3.example.com", "bounced", "5.1.1"),
    ("recipient1@dst4.example.com", "bounced", "5.7.1"),
    ("recipient42@example.com", "bounced", "5.1.0"),
];

fn check_scenario_2(out: &Outcome) {
    let copy = out.message("1310930001DB");
    assert_eq!((copy.nrcpt, copy.state, copy.closed), (Some(5), "partial", true));
    for (rcpt, status, dsn) in SCENARIO_2 {
        let (s, d, _) = outcome(out, "1310930001DB", rcpt);
        assert_eq!((s, d), (status, Some(dsn)), "{rcpt}");
    }
    assert!(has_link(out, &["content_filter"], "BA8F630001DA", "1310930001DB"));
    assert!(has_link(out, &["notification"], "1310930001DB", "C7B4530001DA"));
    assert_eq!(out.message("C7B4530001DA").origin, "bounce");
}

/// 2: one message to five recipients: two delivered, three bounced (one with no MX at all), one
/// non-delivery notice for the three.
#[test]
fn s02_multiple_recipients_some_bounces() {
    let Some(out) = run(&["2_multiple_recipients_some_bounces.log"]) else {
        return;
    };
    check_scenario_2(&out);
    assert_eq!(state(out.message("C7B4530001DA")), ("sent", true));
}

/// 2 bis: the same, but the log ends before the notice's `removed`: it is delivered, still open.
#[test]
fn s02_multiple_recipients_some_bounces_no_last_remove() {
    let Some(out) = run(&["2_multiple_recipients_some_bounces_no_last_remove.log"]) else {
        return;
    };
    check_scenario_2(&out);
    let ndr = out.message("C7B4530001DA");
    assert!(!ndr.closed, "no `removed` line for the notice");
    assert_eq!(out.recipient("C7B4530001DA", "sender@mydomain.com").status, "sent");
}

/// 3: sender@example.com submitted a message for recipient@example.com; amavis passed it and the
/// re-injected copy was delivered over lmtp.
#[test]
fn s03_local_delivery() {
    let Some(out) = run(&["3_local_delivery.log"]) else {
        return;
    };
    assert!(has_link(&out, &["content_filter"], "0B73130001FB", "400643011B47"));
    assert_eq!(out.recipient("400643011B47", "recipient@example.com").status, "sent");
    for q in ["0B73130001FB", "400643011B47"] {
        assert_eq!(state(out.message(q)), ("sent", true), "{q}");
        assert_eq!(
            out.message(q).message_id.as_deref(),
            Some("414300fb-b063-fa96-4fc6-2d35b3168d61@example.com")
        );
    }
}

/// 4: four submissions in a row, each handed to the content filter and re-injected under a new
/// queue id; all eight lives end delivered, each filtered copy linked to its original.
#[test]
fn s04_lost_queue() {
    let Some(out) = run(&["4_lost_queue.log"]) else {
        return;
    };
    let hops = [
        ("99B222C0039E", "D37AE2C77B1E"),
        ("CCA402C003AA", "027BD2C77B20"),
        ("EDBD42C77B1F", "2326B2C77B22"),
        ("1E1A22C77B21", "49C582C77B1F"),
    ];
    for (from, to) in hops {
        assert!(has_link(&out, &["content_filter"], from, to), "{from} -> {to}");
        assert_eq!(state(out.message(from)), ("sent", true), "{from}");
        assert_eq!(state(out.message(to)), ("sent", true), "{to}");
        assert_eq!(out.message(from).message_id, out.message(to).message_id);
    }
    assert_eq!(out.messages.len(), 8);
}

/// 5: Zimbra: the submission passes amavis (via the dkimmilter listener) twice before going out
/// to Gmail: two filter hops, each linked once, all three lives delivered.
#[test]
fn s05_zimbra_amavisd() {
    let Some(out) = run(&["5_zimbra_amavisd.log"]) else {
        return;
    };
    let filter_links: Vec<_> = out.links().into_iter().filter(|l| l.0 == "content_filter").collect();
    assert_eq!(
        filter_links,
        [
            ("content_filter", "E8759DC24C3", "218BEDC28EC"),
            ("content_filter", "218BEDC28EC", "33DE0DC24C3")
        ]
    );
    for q in ["E8759DC24C3", "218BEDC28EC", "33DE0DC24C3"] {
        assert_eq!(state(out.message(q)), ("sent", true), "{q}");
    }
    assert_eq!(
        outcome(&out, "33DE0DC24C3", "recipient@recipient.example.com"),
        (
            "sent",
            Some("2.0.0"),
            Some("gmail-smtp-in.l.google.com[74.125.24.27]:25")
        )
    );
}

/// 6: A17F830001CA was greylisted (deferred 4.0.0), retried seven minutes later and delivered.
#[test]
fn s06_deferred_message_retry() {
    let Some(out) = run(&["6_deferred_message_retry.log"]) else {
        return;
    };
    let r = out.recipient("A17F830001CA", "recipient@recipient.com");
    assert_eq!((r.status, r.dsn.as_deref(), r.attempts), ("sent", Some("2.0.0"), 2));
    assert_eq!(state(out.message("A17F830001CA")), ("sent", true));
    let attempts: Vec<_> = out
        .deliveries("A17F830001CA")
        .iter()
        .map(|d| (d.status, d.dsn.as_str()))
        .collect();
    assert_eq!(attempts, [("deferred", "4.0.0"), ("sent", "2.0.0")]);
}

/// 7: two clients connected and left; no message was queued here.
#[test]
fn s07_only_connections_and_disconnections() {
    let Some(out) = run(&["7_only_connections_and_disconnections.log"]) else {
        return;
    };
    assert!(out.messages.is_empty() && out.batch.deliveries.is_empty() && out.batch.rejects.is_empty());
    let mut sessions: Vec<_> = out
        .batch
        .sessions
        .iter()
        .filter(|s| s.disconnected_at.is_some())
        .map(|s| (s.program.as_str(), s.client_ip.as_deref()))
        .collect();
    sessions.sort();
    sessions.dedup();
    assert_eq!(
        sessions,
        [
            ("postfix/smtpd", Some("127.0.0.1")),
            ("postfix/submission/smtpd", Some("1.2.3.4"))
        ]
    );
}

/// 8: a null-sender message from 28.55.140.112 went through amavis (`Passed SPAM`) and its copy
/// ED01244770 (`orig_queue_id=4F5C64474F`) was delivered over lmtp.
#[test]
fn s08_weird_log_file() {
    let Some(out) = run(&["8_weird_log_file.log"]) else {
        return;
    };
    assert!(has_link(
        &out,
        &["reinjection", "content_filter"],
        "4F5C64474F",
        "ED01244770"
    ));
    for q in ["4F5C64474F", "ED01244770"] {
        assert_eq!(out.message(q).sender.as_deref(), Some(""), "{q}");
        assert_eq!(state(out.message(q)), ("sent", true), "{q}");
    }
    assert_eq!(out.message("4F5C64474F").client_ip.as_deref(), Some("28.55.140.112"));
    assert_eq!(
        out.recipient("ED01244770", "h-14a52d@h-d6b1ceccbb3bc48.com").status,
        "sent"
    );
}

/// 9: scenarios 1 and 2 interleaved line by line: the same outcomes, nothing mixed up.
#[test]
fn s09_mixed_messages() {
    let Some(out) = run(&["9_mixed_messages.log"]) else {
        return;
    };
    check_scenario_2(&out);
    assert_eq!(
        out.message("4AA091855DA0").sasl_username.as_deref(),
        Some("user@sender.com")
    );
    assert_eq!(
        out.message("BA8F630001DA").sasl_username.as_deref(),
        Some("sender@mydomain.com")
    );
    assert_eq!(out.recipients_of(out.message("776E41855DB2").uid).len(), 1);
    assert_eq!(outcome(&out, "776E41855DB2", "invalid.email@example.com").0, "bounced");
    assert!(has_link(&out, &["notification"], "776E41855DB2", "A48191855DA0"));
}

/// 10: root's local mail (pickup, uid 0) was aliased to h-06819@…, filtered and delivered.
#[test]
fn s10_pickup() {
    let Some(out) = run(&["10_pickup.log"]) else {
        return;
    };
    let local = out.message("08ACF1541B01");
    assert_eq!(
        (local.origin, local.sender.as_deref()),
        ("pickup", Some("h-dc76@h-ac7182297368ddc0f.com"))
    );
    assert_eq!(
        out.recipient("08ACF1541B01", "h-06819@h-b4e62aa55116.com")
            .orig_address
            .as_deref(),
        Some("root")
    );
    assert!(has_link(&out, &["content_filter"], "08ACF1541B01", "AED441541AFC"));
    assert_eq!(
        out.recipient("AED441541AFC", "h-06819@h-b4e62aa55116.com").status,
        "sent"
    );
}

/// 11: sender@mydomain.com's message reached recipient1@dst1.example.com through Gmail's MX.
#[test]
fn s11_single_successful_delivery() {
    let Some(out) = run(&["11_single_successful_delivery.log"]) else {
        return;
    };
    assert!(has_link(&out, &["content_filter"], "BA8F630001DA", "1310930001DB"));
    assert_eq!(
        outcome(&out, "1310930001DB", "recipient1@dst1.example.com"),
        (
            "sent",
            Some("2.0.0"),
            Some("gmail-smtp-in.l.google.com[74.125.206.26]:25")
        )
    );
    assert_eq!(
        out.message("1310930001DB").sender.as_deref(),
        Some("sender@mydomain.com")
    );
}

/// 12: one submission process (pid 20040) served two clients one after the other: two sessions,
/// each message keeps its own client and sender.
fn check_scenario_12(out: &Outcome) {
    assert_eq!(out.message("BA8F630001DA").client_ip.as_deref(), Some("89.247.252.52"));
    assert_eq!(out.message("BABABABABA").client_ip.as_deref(), Some("89.247.252.53"));
    assert_eq!(
        out.message("BABABABABA").sender.as_deref(),
        Some("sender2@mydomain2.com")
    );
    assert_eq!(
        out.recipient("1310930001DB", "recipient1@dst1.example.com").status,
        "sent"
    );
    assert_eq!(out.recipient("CACACACACACA", "dst2@dst2.com").status, "sent");
    assert!(has_link(out, &["content_filter"], "BABABABABA", "CACACACACACA"));
    let mut submission: Vec<_> = out
        .batch
        .sessions
        .iter()
        .filter(|s| s.program == "postfix/submission/smtpd")
        .map(|s| (s.uid, s.client_ip.clone()))
        .collect();
    submission.sort();
    submission.dedup_by_key(|s| s.0);
    assert_eq!(submission.len(), 2, "one process, two sessions: {submission:?}");
}

#[test]
fn s12_two_deliveries_same_smtpd_process_in_order() {
    let Some(out) = run(&["12_two_independent_deliveries_in_the_same_smtpd_process_in_order.log"]) else {
        return;
    };
    check_scenario_12(&out);
}

#[test]
fn s12_two_deliveries_same_smtpd_process_mixed() {
    let Some(out) = run(&["12_two_independent_deliveries_in_the_same_smtpd_process_mixed.log"]) else {
        return;
    };
    check_scenario_12(&out);
}

/// 13: a submission with an empty `message-id=<>` is still tracked and delivered; its filtered
/// copy got a real Message-ID.
#[test]
fn s13_empty_msgid() {
    let Some(out) = run(&["13_empty_msgid_issue_388.log"]) else {
        return;
    };
    let empty = out.message("BABABABABABA");
    let id = empty.message_id.as_deref().expect("the message-id line is recorded");
    assert!(id.is_empty() || id == "<>", "kept as logged: {id:?}");
    assert_eq!(state(empty), ("sent", true));
    assert!(has_link(&out, &["content_filter"], "BABABABABABA", "CACACACA"));
    assert_eq!(
        out.message("CACACACA").message_id.as_deref(),
        Some("h-58c98222ea74bdf467d69d856d@h-028957b9aefc40.com")
    );
}

/// 14: queue id BABABABABA was used twice a minute apart: two distinct messages (other client,
/// other Message-ID); the first came back from the DKIM signer (DADADADADA relayed to it) and
/// went to Gmail, the second was delivered to the DKIM signer.
#[test]
fn s14_reuse_of_queueid() {
    let Some(out) = run(&["14_reuse_of_queueid.log"]) else {
        return;
    };
    let lives = out.lives("BABABABABA");
    assert_eq!(lives.len(), 2, "two lives of BABABABABA");
    assert_ne!(lives[0].uid, lives[1].uid);
    assert_eq!(
        lives[0].message_id.as_deref(),
        Some("h-b36847e73153e9ac645ba7cb2050cae3@h-5e67b9b4406.com")
    );
    assert_eq!(
        lives[1].message_id.as_deref(),
        Some("h-ae29580097c1f26a25dab61b5e690cfd@h-5e67b9b4406.com")
    );
    assert_eq!(lives[1].client_ip.as_deref(), Some("112.83.23.93"));
    for life in &lives {
        assert_eq!(state(life), ("sent", true));
    }
    let second = out
        .recipients
        .get(&(lives[1].uid, "h-629de2eeab377@h-05c3ae107.com".to_owned()));
    assert_eq!(second.map(|r| r.status), Some("sent"), "the second life's recipient");
    assert!(has_link(&out, &["relay", "content_filter"], "DADADADADA", "BABABABABA"));
}

/// 15: a milter refused the message at END-OF-MESSAGE with 4.7.1 (twice): never queued, the client
/// must retry.
#[test]
fn s15_milter_reject() {
    let Some(out) = run(&["15_milter-reject.log"]) else {
        return;
    };
    assert_eq!(state(out.message("B37FD2E05B9")), ("rejected", true));
    let rejects: Vec<_> = out
        .batch
        .rejects
        .iter()
        .map(|r| {
            (
                r.source,
                r.action,
                r.stage.as_str(),
                r.enhanced.as_deref(),
                r.queue_id.as_deref(),
            )
        })
        .collect();
    let one = ("milter", "reject", "END-OF-MESSAGE", Some("4.7.1"), Some("B37FD2E05B9"));
    assert_eq!(rejects, [one, one]);
    assert!(out.batch.deliveries.is_empty());
}

/// 16: a Message-ID of several hundred base64 characters is kept whole; delivered by dovecot.
#[test]
fn s16_corrupted_messageid() {
    let Some(out) = run(&["16_corrupted_messageid.log"]) else {
        return;
    };
    let m = out.message("1A3642E0C5C");
    let id = m.message_id.as_deref().unwrap_or_default();
    assert!(id.starts_with("eyJyZXBseV90byI6") && id.len() > 300, "kept whole: {id}");
    assert_eq!(state(m), ("sent", true));
    assert_eq!(
        outcome(&out, "1A3642E0C5C", "h-3595419e35f@h-ff6b5e9182fd933.com"),
        ("sent", Some("2.0.0"), Some("dovecot"))
    );
}

/// 17: the one recipient of an authenticated submission was refused at RCPT (550 5.1.1 user
/// unknown).
#[test]
fn s17_smtpd_reject() {
    let Some(out) = run(&["17-smtpd-reject.log"]) else {
        return;
    };
    let [reject] = out.batch.rejects.as_slice() else {
        panic!("one reject row: {:?}", out.batch.rejects)
    };
    assert_eq!(
        (
            reject.queue_id.as_deref(),
            reject.stage.as_str(),
            reject.code,
            reject.enhanced.as_deref()
        ),
        (Some("DE81A2E2DAA"), "RCPT", Some(550), Some("5.1.1"))
    );
    assert_eq!(reject.recipient.as_deref(), Some("h-c715634009216@h-14dc4a6d.com"));
    let (status, dsn, _) = outcome(&out, "DE81A2E2DAA", "h-c715634009216@h-14dc4a6d.com");
    assert_eq!((status, dsn), ("rejected", Some("5.1.1")));
}

/// 17 bis: two recipients refused at RCPT, then a milter refused the message itself as spam.
#[test]
fn s17_smtpd_reject_with_milter_reject() {
    let Some(out) = run(&["17-smtpd-reject-with-milter-reject.log"]) else {
        return;
    };
    assert_eq!(state(out.message("769FF2E0760")), ("rejected", true));
    let rejects: Vec<_> = out
        .batch
        .rejects
        .iter()
        .map(|r| (r.source, r.stage.as_str(), r.code))
        .collect();
    assert_eq!(
        rejects,
        [
            ("smtpd", "RCPT", Some(550)),
            ("smtpd", "RCPT", Some(550)),
            ("milter", "END-OF-MESSAGE", None)
        ]
    );
    assert!(out.batch.deliveries.is_empty());
}

/// 18: 23EBE3D5C0 was deferred (4.1.1) at every attempt for five days, then expired and went back
/// to its sender, whose notice was delivered locally.
#[test]
fn s18_expired() {
    let Some(out) = run(&["18_expired.log"]) else {
        return;
    };
    assert_eq!(state(out.message("23EBE3D5C0")), ("expired", true));
    let r = out.recipient("23EBE3D5C0", "h-664d01@h-695da2287.com");
    assert_eq!((r.status, r.attempts), ("expired", 5));
    assert!(has_link(&out, &["notification"], "23EBE3D5C0", "A7E673C067"));
    let ndr = out.message("A7E673C067");
    assert_eq!((ndr.origin, ndr.state), ("bounce", "sent"));
}

/// 18 bis: root's mail (pickup) relayed to mail.relay.example.com, which queued it as B0D3C1805DB.
#[test]
fn s18_pickup2() {
    let Some(out) = run(&["18_pickup2.log"]) else {
        return;
    };
    let m = out.message("81E343F2E2");
    assert_eq!((m.origin, m.state, m.closed), ("pickup", "sent", true));
    assert_eq!(m.sender.as_deref(), Some("root@sender.example.com"));
    assert!(has_link(&out, &["relay"], "81E343F2E2", "B0D3C1805DB"));
}

/// 19: Postfix 3.4.14 started and stopped; no mail. Every line is understood.
#[test]
fn s19_postfix_version() {
    let Some(out) = run(&["19_postfix_version.log"]) else {
        return;
    };
    assert!(out.messages.is_empty());
    let kinds: Vec<_> = out.batch.events.iter().map(|e| e.kind).collect();
    assert!(!kinds.contains(&"unknown"), "{kinds:?}");
    let started = out
        .batch
        .events
        .iter()
        .find(|e| e.raw.contains("version 3.4.14"))
        .unwrap();
    assert_eq!(started.kind, "master");
}

/// 20: an authenticated client was throttled: its recipient refused at RCPT with 450 4.7.1 (too
/// many mails); the earlier NOQUEUE `filter` action routed it to amavis. Nothing was delivered.
#[test]
fn s20_rejected() {
    let Some(out) = run(&["20_rejected.log"]) else {
        return;
    };
    let rejects: Vec<_> = out
        .batch
        .rejects
        .iter()
        .map(|r| (r.action, r.queue_id.as_deref(), r.code, r.enhanced.as_deref()))
        .collect();
    assert_eq!(
        rejects,
        [
            ("filter", None, None, None),
            ("reject", Some("D155CDC24C3"), Some(450), Some("4.7.1"))
        ]
    );
    assert_eq!(
        outcome(&out, "D155CDC24C3", "h-2d34d8bb8@h-93a1a37cd1.com").0,
        "rejected"
    );
    assert!(out.batch.deliveries.is_empty());
}

/// 21: five messages: two inbound delivered by local(8) through an alias, one inbound forwarded
/// out, two picked up from a local user (uid 2002) and sent out. All delivered.
#[test]
fn s21_deliveries_with_local_daemon() {
    let Some(out) = run(&["21_deliveries_with_local_daemon.log"]) else {
        return;
    };
    assert_eq!(out.messages.len(), 5);
    for m in &out.messages {
        assert_eq!(state(m), ("sent", true), "{}", m.queue_id);
    }
    let aliased = out.recipient("95154657C", "h-493fac8f3@h-ea3f4afa.com");
    assert_eq!(
        (aliased.orig_address.as_deref(), aliased.relay.as_deref()),
        (Some("h-195704c@h-20b651e8120a33ec11.com"), Some("local"))
    );
    assert_eq!(out.message("848F1657D").origin, "pickup");
    assert_eq!(out.message("96C82657D").origin, "pickup");
    assert_eq!(out.message("E389F657C").origin, "smtpd");
}

/// 22: a client postscreen ranked on a DNSBL (rank 2, below the threshold) still got in; its
/// message was delivered to a virtual mailbox.
#[test]
fn s22_virtual_delivery() {
    let Some(out) = run(&["22_virtual_delivery.log"]) else {
        return;
    };
    let m = out.message("EA015DF2B6");
    assert_eq!(
        (m.client_ip.as_deref(), m.sender.as_deref()),
        (Some("1.2.3.4"), Some("sender@sender.example.com"))
    );
    assert_eq!(
        outcome(&out, "EA015DF2B6", "recipient@recipient.example.com"),
        ("sent", Some("2.0.0"), Some("virtual"))
    );
}

/// 25: a submission's Received and Mime-Version headers were rewritten by a `replace` header
/// check (cleanup service `authclean`), then delivered over lmtp (RFC 3339 timestamps).
#[test]
fn s25_authclean_cleanup() {
    let Some(out) = run(&["25_authclean_cleanup.log"]) else {
        return;
    };
    let actions: Vec<_> = out.batch.rejects.iter().map(|r| (r.action, r.source)).collect();
    assert_eq!(actions, [("replace", "header"), ("replace", "header")]);
    let m = out.message("1F5A2194AA9");
    assert_eq!(
        (m.sasl_username.as_deref(), m.state),
        (Some("user@sender.example.com"), "sent")
    );
    let r = out.recipient("1F5A2194AA9", "user@recipient.example.com");
    assert_eq!(
        (r.status, r.orig_address.as_deref()),
        ("sent", Some("recipient@recipient.example.com"))
    );
    assert_eq!(m.first_seen.to_rfc3339().get(..19), Some("2022-01-08T19:42:13"));
}

/// 26: one message to two recipients at the same provider, both delivered.
#[test]
fn s26_two_recipients() {
    let Some(out) = run(&["26_two_recipients.log"]) else {
        return;
    };
    let m = out.message("B9996EABB6");
    assert_eq!((m.nrcpt, m.state, m.closed), (Some(2), "sent", true));
    for rcpt in ["recipient1@external.org", "recipient2@external.org"] {
        assert_eq!(outcome(&out, "B9996EABB6", rcpt).0, "sent", "{rcpt}");
    }
}

/// 27: one message sent out by an authenticated user, one received from outside for that user.
#[test]
fn s27_one_sent_one_received() {
    let Some(out) = run(&["27_one_sent_one_received.log"]) else {
        return;
    };
    let sent = out.message("4FA51DFCAD");
    let received = out.message("DF1C3EB916");
    assert_eq!((sent.state, sent.flow), ("sent", Some("outbound")));
    assert_eq!((received.state, received.flow), ("sent", Some("inbound")));
    assert_eq!(out.recipient("DF1C3EB916", "h-1d6e@h-08cedc5c.com").status, "sent");
}

/// 28: a bounce from Microsoft addressed to postmaster@ arrived and was delivered locally to root.
#[test]
fn s28_received_bounce() {
    let Some(out) = run(&["28_received_bounce.log"]) else {
        return;
    };
    let m = out.message("8E98A9D382");
    assert_eq!(
        m.sender.as_deref(),
        Some("bounces+YYY=76YYY=S7@microsoft.onmicrosoft.com")
    );
    assert_eq!((m.state, m.flow), ("sent", Some("inbound")));
    let r = out.recipient("8E98A9D382", "root@example.com");
    assert_eq!(
        (r.orig_address.as_deref(), r.relay.as_deref()),
        (Some("postmaster@example.com"), Some("local"))
    );
}

/// 29: server 1 (lightmetermail) relayed 670FCA58C8 to mail2, which queued it as F27E789349 and
/// sent it to Gmail: the hop from server 1 is linked to server 2's queue id.
#[test]
fn s29_inbound_relayed_message_two_servers() {
    let Some(out) = run(&[
        "29_inbound_relayed_message_server_1.log",
        "29_inbound_relayed_message_server_2.log",
    ]) else {
        return;
    };
    let hop = out
        .batch
        .links
        .iter()
        .find(|l| l.from_queue_id == "670FCA58C8")
        .expect("a link from server 1's queue id");
    assert_eq!(
        (hop.kind, hop.from_host.as_str(), hop.to_queue_id.as_str()),
        ("relay", "lightmetermail", "F27E789349")
    );
    let first = out.message("670FCA58C8");
    let second = out.message("F27E789349");
    assert_eq!((first.host.as_str(), second.host.as_str()), ("lightmetermail", "mail2"));
    assert_eq!(first.message_id, second.message_id);
    assert_eq!(state(second), ("sent", true));
    assert_eq!(outcome(&out, "F27E789349", "recipient@recipient.com").0, "sent");
}

/// 30: the message is tracked as usual; the In-Reply-To/References lines come from Lightmeter's own
/// header logger (`lightmeter/headers`), not from Postfix, and are kept raw.
#[test]
fn s30_in_reply_to_header() {
    let Some(out) = run(&["30_in_reply_to_header.log"]) else {
        return;
    };
    let m = out.message("B9996EABB6");
    assert_eq!(
        m.message_id.as_deref(),
        Some("h-74f3afb0208ad285a794d760c8feb0eee631@internal.org")
    );
    assert_eq!(outcome(&out, "B9996EABB6", "recipient2@external.org").0, "sent");
    let headers = out
        .batch
        .events
        .iter()
        .filter(|e| e.program == "lightmeter/headers")
        .count();
    assert_eq!(headers, 2);
}

/// 31: original_sender@example1.com wrote to original_recipient@example2.com (out via SES); five
/// days later the reply came in and was delivered to the original sender.
#[test]
fn s31_inbound_reply() {
    let Some(out) = run(&["31_inbound_reply.log"]) else {
        return;
    };
    let sent = out.message("97B24177716");
    assert_eq!(
        (sent.sender.as_deref(), sent.flow),
        (Some("original_sender@example1.com"), Some("outbound"))
    );
    assert_eq!(
        outcome(&out, "97B24177716", "original_recipient@example2.com").0,
        "sent"
    );
    let reply = out.message("ABD4E13D6B0");
    assert_eq!(
        (reply.sender.as_deref(), reply.flow),
        (Some("original_recipient@example2.com"), Some("inbound"))
    );
    assert_eq!(outcome(&out, "ABD4E13D6B0", "original_sender@example1.com").0, "sent");
}

/// 31 bis: a message went out through the smarthost (accepted), then the remote's bounce came
/// back as a null-sender message to the original sender, delivered. Matching the bounce to the
/// original is Lightmeter's own header parsing (`lightmeter/relayed-bounce`), not Postfix's.
#[test]
fn s31_relayed_bounce() {
    let Some(out) = run(&["31_relayed_bounce.log"]) else {
        return;
    };
    assert_eq!(outcome(&out, "202A613D2BC", "h-4258189ab6952@h-9ce99f28.com").0, "sent");
    let bounce = out.message("AC80013D2BC");
    assert_eq!((bounce.sender.as_deref(), bounce.flow), (Some(""), Some("inbound")));
    assert_eq!(outcome(&out, "AC80013D2BC", "h-77ff@h-e0a7c0355e2339add.com").0, "sent");
}

/// 33: delivered to Outlook, whose reply carries its own id (`250 Ok 1100018213535d84-…`): kept
/// with the delivery, so the message can be looked up on the receiving side.
#[test]
fn s33_delivery_with_remote_id() {
    let Some(out) = run(&["33_delivery_with_remote_id.log"]) else {
        return;
    };
    assert_eq!(outcome(&out, "B9996EABB6", "recipient1@external.org").0, "sent");
    let deliveries = out.deliveries("B9996EABB6");
    let [delivery] = deliveries.as_slice() else {
        panic!("one delivery")
    };
    assert!(delivery
        .status_text
        .contains("1100018213535d84-abcdef87-74d3-4192-a8c5-e763ee11238f-000000"));
}
