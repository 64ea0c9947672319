//! Every way Postfix ends a message without `removed` gets a final state with its reason, and a
//! recipient read alone says what happened to its mail (held, deleted, rejected, discarded). The
//! lines are Postfix 3.7's own wording; `tests/tests/fates.rs` makes a real Postfix write them.

mod common;

use common::Outcome;
use jiff::tz::TimeZone;
use omelse::parse::{Clock, Timestamp};

fn run(log: &str) -> Outcome {
    let clock = Clock::new(TimeZone::UTC, Timestamp::from_unix_seconds(1_711_000_000));
    Outcome::run(log.lines(), clock, 3)
}

/// `(state, state_reason)` of the only life of a queue id.
fn fate<'a>(outcome: &'a Outcome, queue_id: &str) -> (&'a str, Option<&'a str>, bool) {
    let m = outcome.message(queue_id);
    (m.state, m.state_reason.as_deref(), m.closed)
}

#[test]
fn a_message_over_the_size_limit_is_rejected_and_closed() {
    let outcome = run("\
Mar 14 10:00:00 mx1 postfix/smtpd[200]: connect from client.example[192.0.2.5]
Mar 14 10:00:01 mx1 postfix/smtpd[200]: 1A2B3C4D5E: client=client.example[192.0.2.5]
Mar 14 10:00:02 mx1 postfix/cleanup[201]: 1A2B3C4D5E: message-id=<big@client.example>
Mar 14 10:00:03 mx1 postfix/cleanup[201]: warning: 1A2B3C4D5E: queue file size limit exceeded
Mar 14 10:00:03 mx1 postfix/smtpd[200]: warning: 1A2B3C4D5E: queue file size limit exceeded
Mar 14 10:00:03 mx1 postfix/smtpd[200]: disconnect from client.example[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5
");
    assert_eq!(
        fate(&outcome, "1A2B3C4D5E"),
        ("rejected", Some("queue file size limit exceeded"), true)
    );
}

#[test]
fn header_checks_reject_and_discard_end_the_message_and_its_recipient() {
    let outcome = run("\
Mar 14 10:01:00 mx1 postfix/smtpd[200]: 2B3C4D5E6F: client=client.example[192.0.2.5]
Mar 14 10:01:01 mx1 postfix/cleanup[201]: 2B3C4D5E6F: reject: header Subject: BUY NOW from client.example[192.0.2.5]; from=<a@client.example> to=<u@example.org> proto=ESMTP helo=<client.example>: 5.7.1 spam is not welcome
Mar 14 10:01:01 mx1 postfix/smtpd[200]: disconnect from client.example[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 commands=4/5
Mar 14 10:02:00 mx1 postfix/smtpd[202]: 3C4D5E6F7A: client=client.example[192.0.2.5]
Mar 14 10:02:01 mx1 postfix/cleanup[201]: 3C4D5E6F7A: message-id=<junk@client.example>
Mar 14 10:02:01 mx1 postfix/cleanup[201]: 3C4D5E6F7A: discard: header Subject: junk from client.example[192.0.2.5]; from=<a@client.example> to=<v@example.org> proto=ESMTP helo=<client.example>: into the bin
Mar 14 10:02:01 mx1 postfix/smtpd[202]: disconnect from client.example[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
");
    assert_eq!(
        fate(&outcome, "2B3C4D5E6F"),
        (
            "rejected",
            Some("5.7.1 spam is not welcome (header_checks: Subject: BUY NOW)"),
            true
        )
    );
    assert_eq!(outcome.recipient("2B3C4D5E6F", "u@example.org").status, "rejected");
    assert_eq!(
        fate(&outcome, "3C4D5E6F7A"),
        ("discarded", Some("into the bin (header_checks: Subject: junk)"), true)
    );
    assert_eq!(outcome.recipient("3C4D5E6F7A", "v@example.org").status, "discarded");
}

#[test]
fn a_client_that_leaves_after_data_abandons_its_message() {
    let outcome = run("\
Mar 14 10:03:00 mx1 postfix/smtpd[200]: connect from client.example[192.0.2.5]
Mar 14 10:03:01 mx1 postfix/smtpd[200]: 4D5E6F7A8B: client=client.example[192.0.2.5]
Mar 14 10:03:02 mx1 postfix/cleanup[201]: 4D5E6F7A8B: message-id=<lost@client.example>
Mar 14 10:03:30 mx1 postfix/smtpd[200]: lost connection after DATA (120 bytes) from client.example[192.0.2.5]
Mar 14 10:03:30 mx1 postfix/smtpd[200]: disconnect from client.example[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4
");
    assert_eq!(
        fate(&outcome, "4D5E6F7A8B"),
        (
            "abandoned",
            Some(
                "the client left before the message was queued (lost connection after DATA; \
                 ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4)"
            ),
            true
        )
    );
}

/// The order a real Postfix 3.7 logs a client gone in the middle of its message (the private
/// Postfix of `elsed/tests/web_auth/fates.rs`): cleanup's `message-id=` comes after smtpd's
/// `disconnect` (here, as under load, seconds after), and stays with the abandoned message; and
/// a client gone after RCPT, once smtpd had given the queue id.
#[test]
fn a_client_gone_mid_message_or_after_rcpt_abandons_it_in_real_postfix_order() {
    let outcome = run("\
Mar 14 10:03:40 mx1 postfix/smtpd[200]: connect from localhost[127.0.0.1]
Mar 14 10:03:40 mx1 postfix/smtpd[200]: 8C63B98E027: client=localhost[127.0.0.1]
Mar 14 10:03:41 mx1 postfix/smtpd[200]: lost connection after DATA (101 bytes) from localhost[127.0.0.1]
Mar 14 10:03:41 mx1 postfix/smtpd[200]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4
Mar 14 10:03:44 mx1 postfix/cleanup[201]: 8C63B98E027: message-id=<cut@client.test>
Mar 14 10:03:45 mx1 postfix/smtpd[200]: connect from localhost[127.0.0.1]
Mar 14 10:03:45 mx1 postfix/smtpd[200]: 12ACA98E027: client=localhost[127.0.0.1]
Mar 14 10:03:45 mx1 postfix/smtpd[200]: lost connection after RCPT from localhost[127.0.0.1]
Mar 14 10:03:45 mx1 postfix/smtpd[200]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 commands=3
");
    assert_eq!(outcome.lives("8C63B98E027").len(), 1, "one life, message-id and all");
    assert_eq!(
        fate(&outcome, "8C63B98E027"),
        (
            "abandoned",
            Some(
                "the client left before the message was queued (lost connection after DATA; \
                 ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4)"
            ),
            true
        )
    );
    assert_eq!(
        outcome.message("8C63B98E027").message_id.as_deref(),
        Some("cut@client.test")
    );
    assert_eq!(
        fate(&outcome, "12ACA98E027"),
        (
            "abandoned",
            Some(
                "the client left before the message was queued (lost connection after RCPT; \
                 ehlo=1 mail=1 rcpt=1 commands=3)"
            ),
            true
        )
    );
}

const HELD_THEN_DELETED: &str = "\
Mar 14 10:04:00 mx1 postfix/smtpd[200]: 5E6F7A8B9C: client=client.example[192.0.2.5]
Mar 14 10:04:00 mx1 postfix/cleanup[201]: 5E6F7A8B9C: message-id=<held@client.example>
Mar 14 10:04:00 mx1 postfix/qmgr[102]: 5E6F7A8B9C: from=<a@client.example>, size=300, nrcpt=2 (queue active)
Mar 14 10:04:01 mx1 postfix/smtp[103]: 5E6F7A8B9C: to=<c@remote.example>, relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to remote.example[192.0.2.9]:25: Connection refused)
Mar 14 10:04:01 mx1 postfix/local[104]: 5E6F7A8B9C: to=<d@mx1.example>, relay=local, delay=1, delays=0.1/0/0/0.9, dsn=2.0.0, status=sent (delivered to mailbox)
Mar 14 10:05:00 mx1 postfix/postsuper[300]: 5E6F7A8B9C: placed on hold
Mar 14 10:05:00 mx1 postfix/postsuper[300]: Placed on hold: 1 message
";

#[test]
fn a_held_message_and_its_waiting_recipients_read_held() {
    let outcome = run(HELD_THEN_DELETED);
    assert_eq!(
        fate(&outcome, "5E6F7A8B9C"),
        ("held", Some("placed on hold by postsuper"), false)
    );
    assert_eq!(outcome.recipient("5E6F7A8B9C", "c@remote.example").status, "held");
    assert_eq!(
        outcome.recipient("5E6F7A8B9C", "d@mx1.example").status,
        "sent",
        "a recipient already delivered keeps its status"
    );
}

#[test]
fn a_message_deleted_with_postsuper_reads_deleted_down_to_its_recipients() {
    let log = format!(
        "{HELD_THEN_DELETED}\
Mar 14 10:06:00 mx1 postfix/postsuper[301]: 5E6F7A8B9C: removed
Mar 14 10:06:00 mx1 postfix/postsuper[301]: Deleted: 1 message
"
    );
    let outcome = run(&log);
    assert_eq!(
        fate(&outcome, "5E6F7A8B9C"),
        ("deleted", Some("deleted with postsuper -d"), true)
    );
    assert_eq!(outcome.recipient("5E6F7A8B9C", "c@remote.example").status, "deleted");
    assert_eq!(outcome.recipient("5E6F7A8B9C", "d@mx1.example").status, "sent");
}

#[test]
fn a_released_message_gets_its_recipients_back() {
    let log = format!(
        "{HELD_THEN_DELETED}\
Mar 14 10:06:00 mx1 postfix/postsuper[301]: 5E6F7A8B9C: released from hold
"
    );
    let outcome = run(&log);
    assert_eq!(fate(&outcome, "5E6F7A8B9C"), ("deferred", None, false));
    assert_eq!(outcome.recipient("5E6F7A8B9C", "c@remote.example").status, "deferred");
}

#[test]
fn a_queue_file_gone_without_removed_vanishes() {
    let outcome = run("\
Mar 14 10:07:00 mx1 postfix/smtpd[200]: 6F7A8B9C0D: client=client.example[192.0.2.5]
Mar 14 10:07:00 mx1 postfix/qmgr[102]: 6F7A8B9C0D: from=<a@client.example>, size=300, nrcpt=1 (queue active)
Mar 14 10:07:01 mx1 postfix/smtp[103]: 6F7A8B9C0D: to=<c@remote.example>, relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to remote.example[192.0.2.9]:25: Connection refused)
Mar 14 12:00:00 mx1 postfix/smtpd[200]: 6F7A8B9C0D: client=other.example[192.0.2.6]
Mar 14 12:00:00 mx1 postfix/smtpd[200]: 7A8B9C0D1E: client=other.example[192.0.2.6]
Mar 14 12:00:00 mx1 postfix/qmgr[102]: 7A8B9C0D1E: from=<a@other.example>, size=300, nrcpt=1 (queue active)
Mar 25 12:00:00 mx1 postfix/smtpd[200]: 8B9C0D1E2F: client=other.example[192.0.2.6]
");
    let lives = outcome.lives("6F7A8B9C0D");
    assert_eq!(lives.len(), 2, "the queue id's new life");
    assert_eq!(
        (lives[0].state, lives[0].state_reason.as_deref(), lives[0].closed),
        (
            "vanished",
            Some("its queue id began a new life without a `removed` line"),
            true
        )
    );
    assert_eq!(outcome.recipients_of(lives[0].uid)[0].status, "vanished");
    assert_eq!(
        fate(&outcome, "7A8B9C0D1E"),
        ("vanished", Some("no line for 10 days and no `removed` line"), true)
    );
}
