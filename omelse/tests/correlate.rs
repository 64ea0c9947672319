//! The Lightmeter scenario logs through the whole pipeline (parse + correlate): what a mail
//! administrator would say happened to each message, checked on the rows.

use std::collections::HashMap;
use std::path::PathBuf;

use jiff::tz::TimeZone;
use omelse::correlate::{Correlator, CorrelatorConfig, ServerRole};
use omelse::ingest::Pipeline;
use omelse::parse::{Clock, Timestamp};
use omelse::store::{Batch, LinkRow, MessageRow, RecipientRow};

/// `lightmeter-ControlCenter/individual_files` of the corpora.
fn scenarios() -> Option<PathBuf> {
    Some(else_tests::corpora::dir_or_skip()?.join("lightmeter-ControlCenter/individual_files"))
}

/// The outcome of one or more scenario logs: the last snapshot of every message and recipient.
struct Outcome {
    batch: Batch,
    messages: Vec<MessageRow>,
    recipients: HashMap<(i64, String), RecipientRow>,
}

impl Outcome {
    /// Every life of a queue id, in order.
    fn lives(&self, queue_id: &str) -> Vec<&MessageRow> {
        self.messages.iter().filter(|m| m.queue_id == queue_id).collect()
    }

    /// The only life of a queue id.
    fn message(&self, queue_id: &str) -> &MessageRow {
        let lives = self.lives(queue_id);
        assert_eq!(lives.len(), 1, "one life of {queue_id}");
        lives[0]
    }

    fn recipient(&self, queue_id: &str, address: &str) -> &RecipientRow {
        let uid = self.message(queue_id).uid;
        self.recipients
            .get(&(uid, address.to_owned()))
            .unwrap_or_else(|| panic!("recipient {address} of {queue_id}"))
    }

    fn links(&self) -> Vec<(&'static str, &str, &str)> {
        self.batch
            .links
            .iter()
            .map(|l: &LinkRow| (l.kind, l.from_queue_id.as_str(), l.to_queue_id.as_str()))
            .collect()
    }
}

/// Feeds the named logs (merged in time order, as a central syslog would receive them), flushing
/// every `flush_every` lines like the writer does.
fn run_with(files: &[&str], config: CorrelatorConfig, flush_every: usize) -> Option<Outcome> {
    let dir = scenarios()?;
    let mut lines: Vec<String> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
    }
    if files.len() > 1 {
        // Same month in these logs: the `Mmm dd hh:mm:ss` prefix orders them; the sort is stable.
        lines.sort_by(|a, b| a.get(..15).cmp(&b.get(..15)));
    }
    // The logs carry no year; the end of 2021 puts all of them in one year.
    let clock = Clock::new(TimeZone::UTC, Timestamp::from_unix_seconds(1_640_995_200));
    let mut pipeline = Pipeline::new(clock, Correlator::with_config(config));
    let mut batch = Batch::default();
    for (i, line) in lines.iter().enumerate() {
        pipeline.push_line(line);
        if (i + 1) % flush_every == 0 {
            batch.append(pipeline.take_batch());
        }
    }
    batch.append(pipeline.take_batch());
    assert_eq!(batch.events.len(), lines.len(), "every line is an event row");
    let mut messages: Vec<MessageRow> = Vec::new();
    for row in &batch.messages {
        match messages.iter_mut().find(|m| m.uid == row.uid) {
            Some(m) => {
                assert!(row.version >= m.version, "snapshots of {} never go back", row.queue_id);
                *m = row.clone();
            }
            None => messages.push(row.clone()),
        }
    }
    let mut recipients = HashMap::new();
    for row in &batch.recipients {
        recipients.insert((row.message_uid, row.address.clone()), row.clone());
    }
    Some(Outcome {
        batch,
        messages,
        recipients,
    })
}

fn run(file: &str) -> Option<Outcome> {
    run_with(&[file], CorrelatorConfig::default(), usize::MAX)
}

#[test]
fn bounce_simple() {
    let Some(out) = run("1_bounce_simple.log") else {
        return;
    };
    assert_eq!(
        out.messages.len(),
        3,
        "the submission, amavis' re-injected copy, the bounce"
    );
    let sent = out.message("4AA091855DA0");
    assert_eq!(sent.sender.as_deref(), Some("user@sender.com"));
    assert_eq!(
        sent.message_id.as_deref(),
        Some("ca10035e-2951-bfd5-ec7e-1a5773fce1cd@mail.sender.com")
    );
    assert_eq!(sent.sasl_username.as_deref(), Some("user@sender.com"));
    assert_eq!((sent.origin, sent.state, sent.closed), ("smtpd", "sent", true));
    let copy = out.message("776E41855DB2");
    assert_eq!(copy.message_id, sent.message_id, "same message-id after the filter");
    assert_eq!((copy.state, copy.flow), ("bounced", Some("outbound")));
    let rcpt = out.recipient("776E41855DB2", "invalid.email@example.com");
    assert_eq!((rcpt.status, rcpt.dsn.as_deref()), ("bounced", Some("5.1.1")));
    let bounce = out.message("A48191855DA0");
    assert_eq!(
        (bounce.origin, bounce.state, bounce.sender.as_deref()),
        ("bounce", "sent", Some(""))
    );
    assert_eq!(out.recipient("A48191855DA0", "user@sender.com").status, "sent");
    assert_eq!(
        out.links(),
        vec![
            ("content_filter", "4AA091855DA0", "776E41855DB2"),
            ("notification", "776E41855DB2", "A48191855DA0")
        ]
    );
}

#[test]
fn multiple_recipients_some_bounces() {
    let Some(out) = run("2_multiple_recipients_some_bounces.log") else {
        return;
    };
    assert_eq!(out.messages.len(), 3);
    let copy = out.message("1310930001DB");
    assert_eq!((copy.nrcpt, copy.state), (Some(5), "partial"));
    for (address, status) in [
        ("recipient42@example.com", "bounced"),
        ("recipient1@dst4.example.com", "bounced"),
        ("recipient1@dst3.example.com", "bounced"),
        ("recipient1@dst1.example.com", "sent"),
        ("recipient1@dst2.example.com", "sent"),
    ] {
        assert_eq!(out.recipient("1310930001DB", address).status, status, "{address}");
        assert_eq!(
            out.recipient("BA8F630001DA", address).status,
            "sent",
            "{address} handed to amavis"
        );
    }
    assert_eq!(out.message("C7B4530001DA").origin, "bounce");
    assert!(out.links().contains(&("notification", "1310930001DB", "C7B4530001DA")));
    assert!(out
        .links()
        .contains(&("content_filter", "BA8F630001DA", "1310930001DB")));
}

#[test]
fn deferred_message_retry() {
    // Flushed after every line, as a live stream would be.
    let Some(out) = run_with(&["6_deferred_message_retry.log"], CorrelatorConfig::default(), 1) else {
        return;
    };
    let retried = out.message("A17F830001CA");
    assert_eq!(
        (retried.state, retried.closed, retried.message_id.as_deref()),
        ("sent", true, Some("000msgid0000@example.com"))
    );
    let rcpt = out.recipient("A17F830001CA", "recipient@recipient.com");
    assert_eq!(
        (rcpt.status, rcpt.attempts),
        ("sent", 2),
        "deferred by greylisting, then sent"
    );
    let deferred_snapshot = out
        .batch
        .recipients
        .iter()
        .find(|r| r.message_uid == retried.uid && r.status == "deferred")
        .unwrap_or_else(|| {
            panic!(
                "the deferral was visible before the retry: {:?}",
                out.batch
                    .recipients
                    .iter()
                    .filter(|r| r.message_uid == retried.uid)
                    .map(|r| (r.status, r.attempts))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(deferred_snapshot.dsn.as_deref(), Some("4.0.0"));
    assert_eq!(out.message("BA8BA30001C7").state, "sent");
    assert!(
        out.links().contains(&("relay", "BA8BA30001C7", "00AC27401BF")),
        "gandi said queued as"
    );
}

#[test]
fn reuse_of_queue_id() {
    let Some(out) = run("14_reuse_of_queueid.log") else {
        return;
    };
    let text = std::fs::read_to_string(scenarios().unwrap().join("14_reuse_of_queueid.log")).unwrap();
    let starts = text.lines().filter(|l| l.contains(": client=")).count();
    assert_eq!(out.messages.len(), starts, "one message per smtpd client= line");
    let reused = out.lives("BABABABABA");
    assert_eq!(reused.len(), 2, "BABABABABA lived twice, a minute apart");
    assert_ne!(reused[0].uid, reused[1].uid);
    assert_ne!(reused[0].message_id, reused[1].message_id);
    let removed = text.lines().filter(|l| l.ends_with(": removed")).count();
    let closed: Vec<_> = out.messages.iter().filter(|m| m.closed).collect();
    assert_eq!(closed.len(), removed, "one closed life per removed line");
    assert!(closed.iter().all(|m| m.state == "sent"));
    // The log ends while the last messages wait for their delivery.
    let open: Vec<_> = out.messages.iter().filter(|m| !m.closed).collect();
    assert_eq!(open.len(), starts - removed);
    assert!(open.iter().all(|m| m.state == "queued" && m.nrcpt == Some(1)));
    // The DKIM signer on 170.55.103.23:2501 re-injects into the same Postfix.
    let hop = out
        .batch
        .links
        .iter()
        .find(|l| l.from_queue_id == "DADADADADA")
        .unwrap();
    assert_eq!(
        (hop.kind, hop.to_queue_id.as_str(), hop.to_host.as_deref()),
        ("relay", "BABABABABA", Some("smtpnode06"))
    );
}

#[test]
fn expired() {
    let Some(out) = run("18_expired.log") else {
        return;
    };
    let text = std::fs::read_to_string(scenarios().unwrap().join("18_expired.log")).unwrap();
    let attempts = text.lines().filter(|l| l.contains("23EBE3D5C0: to=<")).count() as i32;
    let expired = out.message("23EBE3D5C0");
    assert_eq!((expired.state, expired.closed), ("expired", true));
    let rcpt = out.recipient("23EBE3D5C0", "h-664d01@h-695da2287.com");
    assert_eq!((rcpt.status, rcpt.attempts), ("expired", attempts));
    let ndr = out.message("A7E673C067");
    assert_eq!((ndr.origin, ndr.state), ("bounce", "sent"));
    assert!(out.links().contains(&("notification", "23EBE3D5C0", "A7E673C067")));
}

#[test]
fn empty_message_id() {
    let Some(out) = run("13_empty_msgid_issue_388.log") else {
        return;
    };
    let empty = out.message("BABABABABABA");
    let id = empty.message_id.as_deref().expect("message-id line seen");
    assert!(id.is_empty() || id == "<>", "kept as logged: {id:?}");
    assert_eq!(empty.state, "sent");
    assert_eq!(
        out.message("CACACACA").message_id.as_deref(),
        Some("h-58c98222ea74bdf467d69d856d@h-028957b9aefc40.com")
    );
    assert_eq!(out.links(), vec![("content_filter", "BABABABABABA", "CACACACA")]);
}

#[test]
fn corrupted_message_id() {
    let Some(out) = run("16_corrupted_messageid.log") else {
        return;
    };
    let m = out.message("1A3642E0C5C");
    assert!(
        m.message_id
            .as_deref()
            .is_some_and(|id| id.starts_with("eyJyZXBseV90byI6") && id.len() > 300),
        "kept whole"
    );
    assert_eq!(
        (m.state, m.sender.as_deref()),
        ("sent", Some("h-1505422@h-8dd10a671.com"))
    );
    assert_eq!(
        out.recipient("1A3642E0C5C", "h-3595419e35f@h-ff6b5e9182fd933.com")
            .relay
            .as_deref(),
        Some("dovecot")
    );
}

#[test]
fn pickup() {
    let Some(out) = run("10_pickup.log") else {
        return;
    };
    let local = out.message("08ACF1541B01");
    assert_eq!((local.origin, local.state), ("pickup", "sent"));
    let rcpt = out.recipient("08ACF1541B01", "h-06819@h-b4e62aa55116.com");
    assert_eq!(rcpt.orig_address.as_deref(), Some("root"));
    assert_eq!(out.message("AED441541AFC").state, "sent");
    assert_eq!(out.links(), vec![("content_filter", "08ACF1541B01", "AED441541AFC")]);
}

#[test]
fn two_deliveries_in_one_smtpd_process_mixed() {
    let Some(out) = run_with(
        &["12_two_independent_deliveries_in_the_same_smtpd_process_mixed.log"],
        CorrelatorConfig::default(),
        7,
    ) else {
        return;
    };
    assert_eq!(out.messages.len(), 4);
    assert_eq!(
        out.message("BABABABABA").sender.as_deref(),
        Some("sender2@mydomain2.com")
    );
    assert_eq!(out.message("BABABABABA").client_ip.as_deref(), Some("89.247.252.53"));
    assert_eq!(out.message("BA8F630001DA").client_ip.as_deref(), Some("89.247.252.52"));
    assert!(out.messages.iter().all(|m| m.closed));
    let submission: HashMap<i64, i32> = out
        .batch
        .sessions
        .iter()
        .filter(|s| s.program == "postfix/submission/smtpd")
        .map(|s| (s.uid, s.messages))
        .collect();
    assert_eq!(submission.len(), 2, "one process, two sessions");
    assert!(submission.values().all(|&n| n == 1));
}

#[test]
fn relayed_between_two_else_servers() {
    let mut config = CorrelatorConfig::default();
    config.roles.insert("lightmetermail".into(), ServerRole::Outgoing);
    config.roles.insert("mail2".into(), ServerRole::Relay);
    let Some(out) = run_with(
        &[
            "29_inbound_relayed_message_server_1.log",
            "29_inbound_relayed_message_server_2.log",
        ],
        config,
        5,
    ) else {
        return;
    };
    assert_eq!(out.batch.links.len(), 1);
    let link = &out.batch.links[0];
    assert_eq!(
        (link.kind, link.from_host.as_str(), link.to_host.as_deref()),
        ("relay", "lightmetermail", Some("mail2"))
    );
    assert_eq!(
        (link.from_queue_id.as_str(), link.to_queue_id.as_str()),
        ("670FCA58C8", "F27E789349")
    );
    let first = out.message("670FCA58C8");
    let second = out.message("F27E789349");
    assert_eq!(first.message_id, second.message_id, "the cross-server key");
    assert_eq!(
        second.flow,
        Some("outbound"),
        "authenticated on the first server, out to Google from the second"
    );
    assert_eq!(first.flow, Some("outbound"));
}

#[test]
fn zimbra_amavisd_reinjection_chain() {
    let Some(out) = run("5_zimbra_amavisd.log") else {
        return;
    };
    assert_eq!(out.messages.len(), 3);
    assert_eq!(
        out.links(),
        vec![
            ("content_filter", "E8759DC24C3", "218BEDC28EC"),
            ("content_filter", "218BEDC28EC", "33DE0DC24C3")
        ],
        "two filter passes, each linked once"
    );
    for queue_id in ["E8759DC24C3", "218BEDC28EC", "33DE0DC24C3"] {
        let m = out.message(queue_id);
        assert_eq!((m.state, m.flow), ("sent", Some("outbound")), "{queue_id}");
        assert_eq!(m.message_id.as_deref(), Some("00000messageid00000@msgid.example.com"));
    }
    assert_eq!(
        out.recipient("33DE0DC24C3", "recipient@recipient.example.com")
            .relay
            .as_deref(),
        Some("gmail-smtp-in.l.google.com[74.125.24.27]:25")
    );
}

#[test]
fn flush_timing_does_not_change_the_outcome() {
    let Some(whole) = run("2_multiple_recipients_some_bounces.log") else {
        return;
    };
    let Some(pieces) = run_with(
        &["2_multiple_recipients_some_bounces.log"],
        CorrelatorConfig::default(),
        3,
    ) else {
        return;
    };
    assert_eq!(whole.messages, pieces.messages);
    assert_eq!(whole.batch.links, pieces.batch.links);
    assert_eq!(whole.batch.deliveries, pieces.batch.deliveries);
    assert_eq!(whole.batch.events, pieces.batch.events);
}

/// Three days of a real MX (postscreen, amavis re-injection on 10025, local delivery): nothing
/// lost, every row consistent with the others, and only the mail still in flight at the end of
/// the log left open.
#[test]
fn real_mx_log_is_consistent() {
    use std::io::Read;
    let Some(dir) = scenarios() else { return };
    let path = dir.join("../../postfix-logsums/mail.log.gz");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut raw)
        .expect("gzip");
    // A few lines carry bytes that are not UTF-8; the rsyslog door gets them lossily converted too.
    let text = String::from_utf8_lossy(&raw);
    let clock = Clock::new(TimeZone::UTC, Timestamp::from_unix_seconds(1_700_000_000));
    let mut pipeline = Pipeline::new(clock, Correlator::new());
    let mut batch = Batch::default();
    let mut lines = 0;
    for (i, line) in text.lines().enumerate() {
        pipeline.push_line(line);
        lines += 1;
        if i % 500 == 0 {
            batch.append(pipeline.take_batch());
        }
    }
    batch.append(pipeline.take_batch());
    assert_eq!(batch.events.len(), lines);
    let mut last: HashMap<i64, &MessageRow> = HashMap::new();
    for row in &batch.messages {
        if let Some(prev) = last.get(&row.uid) {
            assert!(row.version >= prev.version);
            assert_eq!(row.started_at, prev.started_at, "a life keeps its start");
        }
        last.insert(row.uid, row);
    }
    for d in &batch.deliveries {
        let m = last.get(&d.message_uid).expect("a delivery's message has a snapshot");
        assert_eq!(
            (m.queue_id.as_str(), m.started_at),
            (d.queue_id.as_str(), d.message_started_at)
        );
    }
    for r in &batch.recipients {
        assert!(
            last.contains_key(&r.message_uid),
            "a recipient's message has a snapshot"
        );
    }
    for e in batch.events.iter().filter(|e| e.message_uid.is_some()) {
        assert!(last.contains_key(&e.message_uid.unwrap()));
    }
    let open = last.values().filter(|m| !m.closed).count();
    let closed = last.len() - open;
    println!(
        "{} messages, {open} open at the end, {} links",
        last.len(),
        batch.links.len()
    );
    let removed = text.lines().filter(|l| l.ends_with(": removed")).count();
    let ended_by_removed = last.values().filter(|m| m.removed_at.is_some()).count();
    assert_eq!(ended_by_removed, removed, "one closed life per removed line");
    // The others ended with an smtpd session that never passed DATA (address probes): never
    // queued, so no removed line will come.
    for m in last.values().filter(|m| m.closed && m.removed_at.is_none()) {
        assert_eq!(
            (m.nrcpt, m.message_id.as_deref(), m.origin),
            (None, None, "smtpd"),
            "{}",
            m.queue_id
        );
    }
    assert!(closed - removed < 10);
    assert!(
        open * 20 < last.len(),
        "only mail in flight stays open: {open} of {}",
        last.len()
    );
    assert_eq!(pipeline.correlator_mut().open_messages(), open);
}

#[test]
fn rejects_at_rcpt_and_by_milter() {
    let Some(out) = run("17-smtpd-reject-with-milter-reject.log") else {
        return;
    };
    let spam = out.message("769FF2E0760");
    assert_eq!((spam.state, spam.closed), ("rejected", true));
    let rejects: Vec<_> = out
        .batch
        .rejects
        .iter()
        .map(|r| (r.source, r.stage.as_str(), r.code))
        .collect();
    assert_eq!(
        rejects,
        vec![
            ("smtpd", "RCPT", Some(550)),
            ("smtpd", "RCPT", Some(550)),
            ("milter", "END-OF-MESSAGE", None)
        ]
    );
    assert!(out
        .batch
        .rejects
        .iter()
        .all(|r| r.message_uid == Some(spam.uid) && r.session_uid.is_some()));
    assert_eq!(
        out.recipient("769FF2E0760", "h-f91a317fd08716dbf2@h-ff6b5e9182fd933.com")
            .status,
        "rejected"
    );

    let Some(out) = run("15_milter-reject.log") else {
        return;
    };
    assert_eq!(
        out.messages.len(),
        1,
        "the repeated milter line belongs to the same message"
    );
    assert_eq!(out.messages[0].state, "rejected");
    assert_eq!(out.batch.rejects.len(), 2);

    let Some(out) = run("20_rejected.log") else {
        return;
    };
    let refused = out.message("D155CDC24C3");
    assert_eq!(
        (refused.state, refused.closed),
        ("rejected", true),
        "the session ended without DATA"
    );
    let actions: Vec<_> = out
        .batch
        .rejects
        .iter()
        .map(|r| (r.action, r.message_uid.is_some(), r.code))
        .collect();
    assert_eq!(actions, vec![("filter", false, None), ("reject", true, Some(450))]);
}

#[test]
fn flows_of_a_small_server() {
    let flows = |file: &str| -> Vec<(String, Option<&'static str>)> {
        run(file)
            .map(|out| out.messages.iter().map(|m| (m.queue_id.clone(), m.flow)).collect())
            .unwrap_or_default()
    };
    if scenarios().is_none() {
        return;
    }
    let owned = |v: &[(&str, Option<&'static str>)]| v.iter().map(|(q, f)| (q.to_string(), *f)).collect::<Vec<_>>();
    assert_eq!(
        flows("27_one_sent_one_received.log"),
        owned(&[("4FA51DFCAD", Some("outbound")), ("DF1C3EB916", Some("inbound"))]),
        "an authenticated user's mail out, a stranger's mail in"
    );
    assert_eq!(
        flows("22_virtual_delivery.log"),
        owned(&[("EA015DF2B6", Some("inbound"))])
    );
    assert_eq!(
        flows("3_local_delivery.log"),
        owned(&[("0B73130001FB", Some("internal")), ("400643011B47", Some("internal"))]),
        "a user writing to a local mailbox, through amavis"
    );
}
