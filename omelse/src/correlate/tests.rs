//! Scenarios built from hand-made events (the daemon parsers are tested on their own): what a mail
//! administrator would say happened, checked on the rows.

use super::*;
use crate::parse::event::{
    Action, ActionSource, Decision, Delivery, DeliveryStatus, Direction, FilterVerdict, NotificationKind,
    QueueOperation,
};
use crate::parse::{Event, EventKind, Peer, Program, SyslogLine};
use crate::store::{MessageRow, RecipientRow};

const T0: i64 = 1_700_000_000;

fn peer<'a>(name: &'a str, ip: &'a str, port: Option<u16>) -> Peer<'a> {
    Peer { name, ip, port }
}

fn client<'a>(c: Peer<'a>) -> EventKind<'a> {
    EventKind::Client {
        client: c,
        sasl_method: None,
        sasl_username: None,
        sasl_sender: None,
        orig_queue_id: None,
        orig_client: None,
    }
}

fn sasl_client<'a>(c: Peer<'a>, user: &'a str) -> EventKind<'a> {
    EventKind::Client {
        client: c,
        sasl_method: Some("PLAIN"),
        sasl_username: Some(user),
        sasl_sender: None,
        orig_queue_id: None,
        orig_client: None,
    }
}

fn delivery<'a>(
    to: &'a str,
    relay: &'a str,
    relay_peer: Option<Peer<'a>>,
    status: DeliveryStatus,
    queued_as: Option<&'a str>,
) -> EventKind<'a> {
    let dsn = match status {
        DeliveryStatus::Sent | DeliveryStatus::Deliverable => "2.0.0",
        DeliveryStatus::Deferred => "4.0.0",
        _ => "5.1.1",
    };
    EventKind::Delivery(Delivery {
        to,
        orig_to: None,
        relay,
        relay_peer,
        conn_use: None,
        delay: 0.5,
        delays: Some([0.1, 0.0, 0.2, 0.2]),
        dsn,
        status,
        status_text: "text",
        queued_as,
    })
}

fn decision<'a>(action: Action, source: ActionSource, stage: &'a str, to: Option<&'a str>) -> Decision<'a> {
    Decision {
        action,
        source,
        stage,
        client: Some(peer("bad.example", "203.0.113.66", None)),
        code: Some(550),
        enhanced: Some("5.7.1"),
        reason: "no thanks",
        content: None,
        from: Some("spammer@bad.example"),
        to,
        proto: Some("ESMTP"),
        helo: Some("bad"),
    }
}

/// Feeds hand-made lines, numbering them as line keys.
struct Feed {
    correlator: Correlator,
    batch: Batch,
    next_key: i64,
}

impl Feed {
    fn new() -> Self {
        Feed::with(Correlator::new())
    }

    fn with(correlator: Correlator) -> Self {
        Feed {
            correlator,
            batch: Batch::default(),
            next_key: 1,
        }
    }

    /// One line at `T0 + seconds` from `program[pid]` on `host`.
    fn at(
        &mut self,
        seconds: i64,
        host: &str,
        program: &str,
        pid: u32,
        queue_id: Option<&str>,
        kind: EventKind<'_>,
    ) -> &mut Self {
        let parsed = ParsedLine {
            line: SyslogLine {
                time: Timestamp::from_unix_seconds(T0 + seconds),
                host,
                program,
                pid: Some(pid),
                message: "raw text",
            },
            program: Program::split(program),
            event: Event::new(queue_id, kind),
        };
        self.correlator.ingest(&parsed, self.next_key, &mut self.batch);
        self.next_key += 1;
        self
    }

    fn flush(&mut self) -> &mut Self {
        self.correlator.flush(&mut self.batch);
        self
    }

    fn take(&mut self) -> Batch {
        self.flush();
        std::mem::take(&mut self.batch)
    }
}

/// The last snapshot of each message, by queue id, in order of first appearance.
fn last_messages(batch: &Batch) -> Vec<MessageRow> {
    let mut out: Vec<MessageRow> = Vec::new();
    for row in &batch.messages {
        match out.iter_mut().find(|m| m.uid == row.uid) {
            Some(m) => {
                assert!(row.version >= m.version, "versions never go back");
                *m = row.clone();
            }
            None => out.push(row.clone()),
        }
    }
    out
}

fn message<'b>(messages: &'b [MessageRow], queue_id: &str) -> &'b MessageRow {
    let found: Vec<_> = messages.iter().filter(|m| m.queue_id == queue_id).collect();
    assert_eq!(found.len(), 1, "one life of {queue_id}");
    found[0]
}

fn last_recipient(batch: &Batch, uid: i64, address: &str) -> RecipientRow {
    batch
        .recipients
        .iter()
        .rev()
        .find(|r| r.message_uid == uid && r.address == address)
        .cloned()
        .expect("recipient snapshot")
}

/// The bounce scenario: an authenticated submission goes through amavis, the re-injected copy
/// bounces at the remote MX, the bounce goes back to the sender's mailbox.
fn bounce_through_amavis(feed: &mut Feed) {
    let h = "mail";
    let user = peer("some.domain.name", "1.2.3.4", None);
    let local = peer("localhost", "127.0.0.1", None);
    feed.at(
        0,
        h,
        "postfix/submission/smtpd",
        9708,
        None,
        EventKind::Connect { client: user },
    )
    .at(
        0,
        h,
        "postfix/submission/smtpd",
        9708,
        None,
        EventKind::Tls {
            direction: Direction::Incoming,
            peer: user,
            level: "Anonymous",
            protocol: "TLSv1.2",
            cipher: "ECDHE",
            bits: Some(256),
        },
    )
    .at(
        0,
        h,
        "postfix/submission/smtpd",
        9708,
        Some("4AA091855DA0"),
        sasl_client(user, "user@sender.com"),
    )
    .at(
        0,
        h,
        "postfix/cleanup",
        9709,
        Some("4AA091855DA0"),
        EventKind::MessageId {
            message_id: "<ca10@mail.sender.com>",
        },
    )
    .at(
        0,
        h,
        "postfix/qmgr",
        1005,
        Some("4AA091855DA0"),
        EventKind::Queued {
            from: "user@sender.com",
            size: 391,
            nrcpt: 1,
        },
    )
    .at(
        0,
        h,
        "postfix/submission/smtpd",
        9708,
        None,
        EventKind::Disconnect {
            client: user,
            counters: "ehlo=2 mail=1 rcpt=1 data=1 quit=1 commands=6",
            commands_ok: Some(6),
            commands_total: Some(6),
        },
    )
    .at(0, h, "postfix/smtpd", 9715, None, EventKind::Connect { client: local })
    .at(0, h, "postfix/smtpd", 9715, Some("776E41855DB2"), client(local))
    .at(
        0,
        h,
        "postfix/cleanup",
        9716,
        Some("776E41855DB2"),
        EventKind::MessageId {
            message_id: "<ca10@mail.sender.com>",
        },
    )
    .at(
        0,
        h,
        "postfix/qmgr",
        1005,
        Some("776E41855DB2"),
        EventKind::Queued {
            from: "user@sender.com",
            size: 1111,
            nrcpt: 1,
        },
    )
    .at(
        0,
        h,
        "postfix/smtpd",
        9715,
        None,
        EventKind::Disconnect {
            client: local,
            counters: "ehlo=1 quit=1 commands=2",
            commands_ok: Some(2),
            commands_total: Some(2),
        },
    )
    .at(
        0,
        h,
        "amavis",
        2279,
        None,
        EventKind::Filter(FilterVerdict {
            verdict: "Passed CLEAN",
            queue_id: Some("4AA091855DA0"),
            queued_as: Some("776E41855DB2"),
            message_id: None,
            from: None,
            to: None,
            size: Some(888),
        }),
    )
    .at(
        0,
        h,
        "postfix/smtp",
        9710,
        Some("4AA091855DA0"),
        delivery(
            "invalid@example.com",
            "127.0.0.1[127.0.0.1]:10024",
            Some(peer("127.0.0.1", "127.0.0.1", Some(10024))),
            DeliveryStatus::Sent,
            Some("776E41855DB2"),
        ),
    )
    .at(0, h, "postfix/qmgr", 1005, Some("4AA091855DA0"), EventKind::Removed);
    feed.flush();
    feed.at(
        2,
        h,
        "postfix/smtp",
        9890,
        Some("776E41855DB2"),
        delivery(
            "invalid@example.com",
            "mx.example.com[11.22.33.44]:25",
            Some(peer("mx.example.com", "11.22.33.44", Some(25))),
            DeliveryStatus::Bounced,
            None,
        ),
    )
    .at(
        2,
        h,
        "postfix/cleanup",
        9716,
        Some("A48191855DA0"),
        EventKind::MessageId {
            message_id: "<20200603104059.A48191855DA0@mail.sender.com>",
        },
    )
    .at(
        2,
        h,
        "postfix/qmgr",
        1005,
        Some("A48191855DA0"),
        EventKind::Queued {
            from: "",
            size: 3147,
            nrcpt: 1,
        },
    )
    .at(
        2,
        h,
        "postfix/bounce",
        9719,
        Some("776E41855DB2"),
        EventKind::Notification {
            notification: NotificationKind::NonDelivery,
            notification_queue_id: "A48191855DA0",
        },
    )
    .at(2, h, "postfix/qmgr", 1005, Some("776E41855DB2"), EventKind::Removed)
    .at(
        2,
        h,
        "postfix/lmtp",
        9717,
        Some("A48191855DA0"),
        delivery(
            "user@sender.com",
            "mail.sender.com[/var/run/dovecot/lmtp]",
            Some(peer("mail.sender.com", "/var/run/dovecot/lmtp", None)),
            DeliveryStatus::Sent,
            None,
        ),
    )
    .at(2, h, "postfix/qmgr", 1005, Some("A48191855DA0"), EventKind::Removed);
}

#[test]
fn bounce_through_content_filter() {
    let mut feed = Feed::new();
    bounce_through_amavis(&mut feed);
    let batch = feed.take();
    assert_eq!(batch.events.len(), 21);
    let messages = last_messages(&batch);
    assert_eq!(messages.len(), 3, "submission, re-injected copy, bounce");

    let submitted = message(&messages, "4AA091855DA0");
    assert_eq!(submitted.sender.as_deref(), Some("user@sender.com"));
    assert_eq!(submitted.message_id.as_deref(), Some("<ca10@mail.sender.com>"));
    assert_eq!(submitted.sasl_username.as_deref(), Some("user@sender.com"));
    assert_eq!(submitted.origin, "smtpd");
    assert_eq!(submitted.state, "sent", "handed to amavis");
    assert!(submitted.closed);
    assert_eq!(submitted.flow, Some("outbound"), "its copy left for the Internet");

    let copy = message(&messages, "776E41855DB2");
    assert_eq!(copy.state, "bounced");
    assert_eq!(copy.size, Some(1111));
    assert_eq!(
        copy.flow,
        Some("outbound"),
        "origin taken from the authenticated original, not from localhost"
    );
    assert_eq!(
        last_recipient(&batch, copy.uid, "invalid@example.com").dsn.as_deref(),
        Some("5.1.1")
    );

    let bounce = message(&messages, "A48191855DA0");
    assert_eq!(bounce.origin, "bounce");
    assert_eq!(bounce.sender.as_deref(), Some(""));
    assert_eq!(bounce.state, "sent");
    assert_eq!(bounce.flow, Some("internal"), "back to the local mailbox");

    let links: Vec<_> = batch
        .links
        .iter()
        .map(|l| {
            (
                l.kind,
                l.from_queue_id.as_str(),
                l.to_queue_id.as_str(),
                l.to_host.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        links,
        vec![
            ("content_filter", "4AA091855DA0", "776E41855DB2", Some("mail")),
            ("notification", "776E41855DB2", "A48191855DA0", Some("mail"))
        ],
        "amavis' verdict and the delivery name the same hop once"
    );
    assert_eq!(batch.links[0].from_uid, Some(submitted.uid));
    assert_eq!(batch.deliveries.len(), 3);
    assert_eq!(batch.deliveries[0].relay_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(batch.deliveries[1].status, "bounced");

    // Every line about a message carries its uid; the amavis line belongs to the original.
    let amavis = batch.events.iter().find(|e| e.program == "amavis").unwrap();
    assert_eq!(amavis.message_uid, Some(submitted.uid));
    assert_eq!(amavis.kind, "filter");
    let connect = batch.events.iter().find(|e| e.kind == "connect").unwrap();
    assert_eq!(connect.message_uid, None);

    let session = batch
        .sessions
        .iter()
        .rev()
        .find(|s| s.program == "postfix/submission/smtpd")
        .unwrap();
    assert_eq!(session.messages, 1);
    assert_eq!(session.sasl_username.as_deref(), Some("user@sender.com"));
    assert_eq!(session.tls_protocol.as_deref(), Some("TLSv1.2"));
    assert!(session.disconnected_at.is_some());
    assert_eq!(feed.correlator.open_messages(), 0);
    assert_eq!(feed.correlator.open_sessions(), 0);
}

#[test]
fn same_lines_same_rows() {
    let run = |flush_midway: bool| {
        let mut feed = Feed::new();
        bounce_through_amavis(&mut feed);
        if flush_midway {
            feed.flush();
        }
        feed.take()
    };
    assert_eq!(run(false), run(false));
    let (a, b) = (run(false), run(true));
    assert_eq!(
        last_messages(&a),
        last_messages(&b),
        "the final state does not depend on when flushes happen"
    );
    assert_eq!(a.links, b.links);
    assert_eq!(a.events, b.events);
}

#[test]
fn reused_queue_id_starts_a_new_life() {
    let h = "smtpnode06";
    let c = peer("client.example", "198.51.100.7", None);
    let mut feed = Feed::new();
    feed.at(0, h, "postfix/smtpd", 1, Some("BABABABABA"), client(c))
        .at(
            0,
            h,
            "postfix/qmgr",
            2,
            Some("BABABABABA"),
            EventKind::Queued {
                from: "a@x",
                size: 10,
                nrcpt: 1,
            },
        )
        .at(
            0,
            h,
            "postfix/smtp",
            3,
            Some("BABABABABA"),
            delivery(
                "r@y",
                "mx.y[192.0.2.1]:25",
                Some(peer("mx.y", "192.0.2.1", Some(25))),
                DeliveryStatus::Sent,
                None,
            ),
        )
        .at(0, h, "postfix/qmgr", 2, Some("BABABABABA"), EventKind::Removed)
        // Out of order in the same second: still the first life.
        .at(
            0,
            h,
            "postfix/cleanup",
            4,
            Some("BABABABABA"),
            EventKind::MessageId {
                message_id: "<first@x>",
            },
        )
        // A minute later the queue id comes back.
        .at(61, h, "postfix/smtpd", 1, Some("BABABABABA"), client(c))
        .at(
            61,
            h,
            "postfix/cleanup",
            4,
            Some("BABABABABA"),
            EventKind::MessageId {
                message_id: "<second@x>",
            },
        )
        .at(
            61,
            h,
            "postfix/qmgr",
            2,
            Some("BABABABABA"),
            EventKind::Queued {
                from: "b@x",
                size: 20,
                nrcpt: 1,
            },
        );
    let batch = feed.take();
    let lives = last_messages(&batch);
    assert_eq!(lives.len(), 2);
    assert_ne!(lives[0].uid, lives[1].uid);
    assert_eq!(lives[0].message_id.as_deref(), Some("<first@x>"));
    assert_eq!((lives[0].state, lives[0].closed, lives[0].version), ("sent", true, 5));
    assert_eq!(lives[1].message_id.as_deref(), Some("<second@x>"));
    assert_eq!(
        (lives[1].state, lives[1].closed, lives[1].sender.as_deref()),
        ("queued", false, Some("b@x"))
    );
    assert_eq!(feed.correlator.open_messages(), 1);
}

#[test]
fn reuse_within_one_second_gets_distinct_uids() {
    let h = "mx";
    let c = peer("client.example", "198.51.100.7", None);
    let mut feed = Feed::new();
    feed.at(0, h, "postfix/smtpd", 1, Some("ABCDE"), client(c))
        .at(0, h, "postfix/qmgr", 2, Some("ABCDE"), EventKind::Removed)
        .at(0, h, "postfix/smtpd", 1, Some("ABCDE"), client(c));
    let lives = last_messages(&feed.take());
    assert_eq!(
        lives.len(),
        2,
        "a second client= on a queue id that had one is a new life"
    );
    assert_ne!(lives[0].uid, lives[1].uid);
    assert!(lives[1].started_at > lives[0].started_at);
}

#[test]
fn deferred_retries_then_expiry() {
    let h = "smtpnode16";
    let mx = Some(peer("mx.remote", "3.155.237.60", Some(25)));
    let mut feed = Feed::new();
    feed.at(
        0,
        h,
        "postfix/smtpd",
        1,
        Some("23EBE3D5C0"),
        client(peer("h", "239.58.50.50", None)),
    )
    .at(
        0,
        h,
        "postfix/qmgr",
        2,
        Some("23EBE3D5C0"),
        EventKind::Queued {
            from: "s@x",
            size: 5,
            nrcpt: 1,
        },
    )
    .at(
        2,
        h,
        "postfix/smtp",
        3,
        Some("23EBE3D5C0"),
        delivery(
            "r@remote",
            "mx.remote[3.155.237.60]:25",
            mx,
            DeliveryStatus::Deferred,
            None,
        ),
    );
    let first = feed.take();
    assert_eq!(last_messages(&first)[0].state, "deferred");
    feed.at(
        2000,
        h,
        "postfix/qmgr",
        2,
        Some("23EBE3D5C0"),
        EventKind::Queued {
            from: "s@x",
            size: 5,
            nrcpt: 1,
        },
    )
    .at(
        2002,
        h,
        "postfix/smtp",
        3,
        Some("23EBE3D5C0"),
        delivery(
            "r@remote",
            "mx.remote[3.155.237.60]:25",
            mx,
            DeliveryStatus::Deferred,
            None,
        ),
    )
    .at(
        440_000,
        h,
        "postfix/qmgr",
        2,
        Some("23EBE3D5C0"),
        EventKind::Queued {
            from: "s@x",
            size: 5,
            nrcpt: 1,
        },
    )
    .at(
        440_002,
        h,
        "postfix/smtp",
        3,
        Some("23EBE3D5C0"),
        delivery(
            "r@remote",
            "mx.remote[3.155.237.60]:25",
            mx,
            DeliveryStatus::Deferred,
            None,
        ),
    )
    .at(
        440_002,
        h,
        "postfix/qmgr",
        2,
        Some("23EBE3D5C0"),
        EventKind::Expired { from: "s@x" },
    )
    .at(
        440_002,
        h,
        "postfix/cleanup",
        4,
        Some("A7E673C067"),
        EventKind::MessageId { message_id: "<ndr@x>" },
    )
    .at(
        440_002,
        h,
        "postfix/bounce",
        5,
        Some("23EBE3D5C0"),
        EventKind::Notification {
            notification: NotificationKind::NonDelivery,
            notification_queue_id: "A7E673C067",
        },
    )
    .at(440_002, h, "postfix/qmgr", 2, Some("23EBE3D5C0"), EventKind::Removed)
    .at(
        440_002,
        h,
        "postfix/local",
        6,
        Some("A7E673C067"),
        delivery("s@x", "local", None, DeliveryStatus::Sent, None),
    );
    let batch = feed.take();
    let lives = last_messages(&batch);
    assert_eq!(lives.len(), 2, "retries are one life; the bounce is another");
    let original = message(&lives, "23EBE3D5C0");
    assert_eq!((original.state, original.closed), ("expired", true));
    let rcpt = last_recipient(&batch, original.uid, "r@remote");
    assert_eq!((rcpt.status, rcpt.attempts), ("expired", 3));
    assert_eq!(
        rcpt.flow,
        Some("relayed"),
        "an outside client sent it to an outside domain"
    );
    let ndr = message(&lives, "A7E673C067");
    assert_eq!((ndr.origin, ndr.state, ndr.flow), ("bounce", "sent", Some("internal")));
}

#[test]
fn partial_and_pending_recipients() {
    let h = "mail";
    let mx = Some(peer("mx.remote", "198.51.100.25", Some(25)));
    let mut feed = Feed::new();
    feed.at(
        0,
        h,
        "postfix/pickup",
        1,
        Some("08ACF1541B01"),
        EventKind::Pickup { uid: 0, from: "root" },
    )
    .at(
        0,
        h,
        "postfix/qmgr",
        2,
        Some("08ACF1541B01"),
        EventKind::Queued {
            from: "root@mail",
            size: 5,
            nrcpt: 2,
        },
    )
    .at(
        1,
        h,
        "postfix/smtp",
        3,
        Some("08ACF1541B01"),
        delivery(
            "a@remote",
            "mx.remote[198.51.100.25]:25",
            mx,
            DeliveryStatus::Sent,
            None,
        ),
    );
    let first = feed.take();
    let pending = &last_messages(&first)[0];
    assert_eq!(
        (pending.origin, pending.state),
        ("pickup", "queued"),
        "one of two recipients not tried yet"
    );
    assert_eq!(pending.flow, Some("outbound"));
    feed.at(
        1,
        h,
        "postfix/smtp",
        3,
        Some("08ACF1541B01"),
        delivery(
            "b@remote",
            "mx.remote[198.51.100.25]:25",
            mx,
            DeliveryStatus::Bounced,
            None,
        ),
    )
    .at(1, h, "postfix/qmgr", 2, Some("08ACF1541B01"), EventKind::Removed);
    let done = &last_messages(&feed.take())[0];
    assert_eq!(done.state, "partial");
    assert!(done.version > pending.version);
}

#[test]
fn sessions_and_noqueue_rejects() {
    let h = "mx";
    let bad = peer("bad.example", "203.0.113.66", None);
    let good = peer("good.example", "198.51.100.1", None);
    let mut feed = Feed::new();
    feed.at(0, h, "postfix/smtpd", 77, None, EventKind::Connect { client: bad })
        .at(
            0,
            h,
            "postfix/smtpd",
            77,
            None,
            EventKind::Reject(decision(Action::Reject, ActionSource::Smtpd, "RCPT", Some("u@mx"))),
        )
        .at(
            0,
            h,
            "postfix/smtpd",
            77,
            None,
            EventKind::SaslFailed {
                client: bad,
                method: "LOGIN",
                reason: "UGFzc3dvcmQ6",
            },
        )
        .at(
            0,
            h,
            "postfix/smtpd",
            77,
            None,
            EventKind::LostConnection {
                client: bad,
                after: "RCPT",
            },
        )
        .at(
            0,
            h,
            "postfix/smtpd",
            77,
            None,
            EventKind::Disconnect {
                client: bad,
                counters: "ehlo=1 rcpt=0/1 commands=1/2",
                commands_ok: Some(1),
                commands_total: Some(2),
            },
        )
        // The same process serves the next client in the same second: another session.
        .at(0, h, "postfix/smtpd", 77, None, EventKind::Connect { client: good })
        .at(0, h, "postfix/smtpd", 77, Some("11111A"), client(good))
        .at(0, h, "postfix/smtpd", 77, Some("22222B"), client(good));
    let batch = feed.take();
    let first = batch
        .sessions
        .iter()
        .rev()
        .find(|s| s.client_ip.as_deref() == Some("203.0.113.66"))
        .unwrap();
    assert_eq!((first.rejects, first.sasl_failures, first.messages), (1, 1, 0));
    assert_eq!(
        first.end.as_deref(),
        Some("lost connection after RCPT; ehlo=1 rcpt=0/1 commands=1/2")
    );
    assert!(first.disconnected_at.is_some());
    let second = batch
        .sessions
        .iter()
        .rev()
        .find(|s| s.client_ip.as_deref() == Some("198.51.100.1"))
        .unwrap();
    assert_ne!(first.uid, second.uid);
    assert_eq!((second.messages, second.disconnected_at), (2, None));
    assert_eq!(batch.rejects.len(), 1);
    let reject = &batch.rejects[0];
    assert_eq!(reject.session_uid, Some(first.uid));
    assert_eq!(
        (reject.action, reject.source, reject.message_uid),
        ("reject", "smtpd", None)
    );
    assert_eq!(reject.recipient.as_deref(), Some("u@mx"));
    assert_eq!(reject.client_ip.as_deref(), Some("203.0.113.66"));
    assert_eq!(last_messages(&batch).len(), 2, "two messages in one session");
    assert_eq!(feed.correlator.open_sessions(), 1);
}

#[test]
fn rejects_on_queued_messages() {
    let h = "mx";
    let c = peer("h-72f5", "117.165.155.187", None);
    let mut feed = Feed::new();
    feed.at(0, h, "postfix/smtpd", 1, None, EventKind::Connect { client: c })
        .at(0, h, "postfix/smtpd", 1, Some("769FF2E0760"), client(c))
        .at(
            0,
            h,
            "postfix/smtpd",
            1,
            Some("769FF2E0760"),
            EventKind::Reject(decision(Action::Reject, ActionSource::Smtpd, "RCPT", Some("nobody@mx"))),
        )
        .at(
            0,
            h,
            "postfix/cleanup",
            2,
            Some("769FF2E0760"),
            EventKind::MessageId { message_id: "<spam@x>" },
        );
    let before = feed.take();
    let life = &last_messages(&before)[0];
    assert_eq!(
        life.state, "received",
        "one refused recipient does not reject the message"
    );
    assert_eq!(last_recipient(&before, life.uid, "nobody@mx").status, "rejected");
    feed.at(
        1,
        h,
        "postfix/cleanup",
        2,
        Some("769FF2E0760"),
        EventKind::Reject(decision(
            Action::Reject,
            ActionSource::Milter,
            "END-OF-MESSAGE",
            Some("user@mx"),
        )),
    )
    .at(
        2,
        h,
        "postfix/cleanup",
        2,
        Some("769FF2E0760"),
        EventKind::Reject(decision(
            Action::Reject,
            ActionSource::Milter,
            "END-OF-MESSAGE",
            Some("user@mx"),
        )),
    );
    let after = feed.take();
    let lives = last_messages(&after);
    assert_eq!(lives.len(), 1, "the repeated milter line is the same life");
    assert_eq!((lives[0].state, lives[0].closed), ("rejected", true));
    assert!(after
        .rejects
        .iter()
        .all(|r| r.message_uid == Some(life.uid) && r.queue_id.as_deref() == Some("769FF2E0760")));
    let session_uid = before.sessions[0].uid;
    assert!(
        after.rejects.iter().all(|r| r.session_uid == Some(session_uid)),
        "cleanup's rejects know the session through the message"
    );
    assert_eq!(feed.correlator.open_messages(), 0);
}

#[test]
fn hold_release_and_delete() {
    let h = "mx";
    let mut feed = Feed::new();
    feed.at(
        0,
        h,
        "postfix/pickup",
        1,
        Some("ABCDEF"),
        EventKind::Pickup { uid: 0, from: "root" },
    )
    .at(
        0,
        h,
        "postfix/cleanup",
        2,
        Some("ABCDEF"),
        EventKind::Reject(decision(Action::Hold, ActionSource::Header, "", None)),
    );
    assert_eq!(last_messages(&feed.take())[0].state, "held");
    feed.at(
        5,
        h,
        "postfix/postsuper",
        3,
        Some("ABCDEF"),
        EventKind::QueueOperation {
            operation: QueueOperation::Released,
            count: None,
        },
    )
    .at(
        5,
        h,
        "postfix/qmgr",
        4,
        Some("ABCDEF"),
        EventKind::Queued {
            from: "root@mx",
            size: 1,
            nrcpt: 1,
        },
    );
    assert_eq!(last_messages(&feed.take())[0].state, "queued");
    feed.at(9, h, "postfix/postsuper", 3, Some("ABCDEF"), EventKind::Removed);
    let last = &last_messages(&feed.take())[0];
    assert_eq!((last.state, last.closed), ("deleted", true));
}

/// `NOQUEUE: hold: RCPT …` comes before the queue id (Postfix opens the queue file once the
/// recipient is accepted); the message is held from its `client=` line on, and keeps the sender
/// and recipient of that line: no qmgr or delivery line names them while it stays on hold, nor
/// after `postsuper -d` deletes it.
#[test]
fn held_at_rcpt_before_the_queue_id_keeps_its_sender_and_recipient() {
    let h = "mx";
    let sender = peer("client.test", "192.0.2.7", None);
    let mut feed = Feed::new();
    feed.at(0, h, "postfix/smtpd", 41, None, EventKind::Connect { client: sender })
        .at(
            0,
            h,
            "postfix/smtpd",
            41,
            None,
            EventKind::Reject(decision(Action::Hold, ActionSource::Smtpd, "RCPT", Some("later@mx"))),
        )
        .at(0, h, "postfix/smtpd", 41, Some("HELD1"), client(sender))
        .at(
            0,
            h,
            "postfix/cleanup",
            42,
            Some("HELD1"),
            EventKind::MessageId {
                message_id: "<h@client.test>",
            },
        );
    let batch = feed.take();
    let held = message(&last_messages(&batch), "HELD1").clone();
    assert_eq!(held.state, "held");
    assert_eq!(held.sender.as_deref(), Some("spammer@bad.example"));
    let recipients: Vec<_> = batch.recipients.iter().filter(|r| r.message_uid == held.uid).collect();
    assert!(
        !recipients.is_empty(),
        "the held recipient is a recipient of the message"
    );
    assert!(recipients
        .iter()
        .all(|r| (r.address.as_str(), r.status) == ("later@mx", "held")));

    feed.at(60, h, "postfix/postsuper", 43, Some("HELD1"), EventKind::Removed);
    let batch = feed.take();
    let deleted = message(&last_messages(&batch), "HELD1").clone();
    assert_eq!((deleted.state, deleted.closed), ("deleted", true));
    assert_eq!(deleted.sender.as_deref(), Some("spammer@bad.example"));
    let last = batch
        .recipients
        .iter()
        .rev()
        .find(|r| r.message_uid == held.uid)
        .expect("recipient row");
    assert_eq!((last.address.as_str(), last.status), ("later@mx", "deleted"));

    // The next transaction of the session is not held by the first one's decision.
    feed.at(61, h, "postfix/smtpd", 41, Some("NEXT2"), client(sender));
    assert_eq!(message(&last_messages(&feed.take()), "NEXT2").state, "received");
}

#[test]
fn flows_follow_networks_and_roles() {
    let mut config = CorrelatorConfig::default();
    config.internal_networks.push("198.18.0.0/15".parse().unwrap());
    config.roles.insert("mx1".into(), ServerRole::Incoming);
    let mut feed = Feed::with(Correlator::with_config(config));
    let outside = peer("mail.outside", "192.0.2.10", None);
    let office = peer("pc.office", "198.18.3.4", None);
    let mailbox = Some(peer("store.internal", "10.0.0.5", Some(25)));
    feed
        // Internet → MX → internal mailbox server: inbound.
        .at(0, "mx1", "postfix/smtpd", 1, Some("AAAAA1"), client(outside))
        .at(
            0,
            "mx1",
            "postfix/smtp",
            2,
            Some("AAAAA1"),
            delivery(
                "u@corp",
                "store.internal[10.0.0.5]:25",
                mailbox,
                DeliveryStatus::Sent,
                None,
            ),
        )
        // Office network → Internet: outbound.
        .at(0, "relay", "postfix/smtpd", 1, Some("BBBBB1"), client(office))
        .at(
            0,
            "relay",
            "postfix/smtp",
            2,
            Some("BBBBB1"),
            delivery(
                "x@world",
                "mx.world[192.0.2.99]:25",
                Some(peer("mx.world", "192.0.2.99", Some(25))),
                DeliveryStatus::Sent,
                None,
            ),
        )
        // Began before the log on the incoming MX: its role says the Internet.
        .at(
            0,
            "mx1",
            "postfix/local",
            3,
            Some("CCCCC1"),
            delivery("u@corp", "local", None, DeliveryStatus::Sent, None),
        )
        // Same on a host without a role: unknown.
        .at(
            0,
            "other",
            "postfix/local",
            3,
            Some("DDDDD1"),
            delivery("u@corp", "local", None, DeliveryStatus::Sent, None),
        )
        // The incoming MX as a client of another server: mail it passes on came from outside.
        .at(
            0,
            "store",
            "postfix/smtpd",
            1,
            Some("EEEEE1"),
            client(peer("mx1.corp.example", "10.0.0.1", None)),
        )
        .at(
            0,
            "store",
            "postfix/lmtp",
            2,
            Some("EEEEE1"),
            delivery("u@corp", "private/dovecot-lmtp", None, DeliveryStatus::Sent, None),
        );
    let lives = last_messages(&feed.take());
    assert_eq!(message(&lives, "AAAAA1").flow, Some("inbound"));
    assert_eq!(message(&lives, "BBBBB1").flow, Some("outbound"));
    assert_eq!(message(&lives, "CCCCC1").flow, Some("inbound"));
    assert_eq!(message(&lives, "DDDDD1").flow, None);
    assert_eq!(message(&lives, "EEEEE1").flow, Some("inbound"));
}

#[test]
fn relay_to_another_else_server() {
    let mut config = CorrelatorConfig::default();
    config.roles.insert("lightmetermail".into(), ServerRole::Outgoing);
    config.roles.insert("mail2".into(), ServerRole::Relay);
    let mut feed = Feed::with(Correlator::with_config(config));
    let user = peer("unknown", "11.11.11.11", None);
    feed.at(
        0,
        "lightmetermail",
        "postfix/smtpd",
        1,
        Some("670FCA58C8"),
        sasl_client(user, "sender@sender.com"),
    )
    .at(
        0,
        "lightmetermail",
        "postfix/qmgr",
        2,
        Some("670FCA58C8"),
        EventKind::Queued {
            from: "sender@sender.com",
            size: 852,
            nrcpt: 1,
        },
    )
    .at(
        0,
        "mail2",
        "postfix/smtpd",
        1,
        Some("F27E789349"),
        client(peer("unknown", "22.22.22.22", None)),
    )
    .at(
        1,
        "lightmetermail",
        "postfix/smtp",
        3,
        Some("670FCA58C8"),
        delivery(
            "r@recipient.com",
            "mail2.example.com[33.33.33.33]:587",
            Some(peer("mail2.example.com", "33.33.33.33", Some(587))),
            DeliveryStatus::Sent,
            Some("F27E789349"),
        ),
    )
    .at(
        1,
        "mail2",
        "postfix/smtp",
        3,
        Some("F27E789349"),
        delivery(
            "r@recipient.com",
            "gmail[44.44.44.44]:25",
            Some(peer("gmail", "44.44.44.44", Some(25))),
            DeliveryStatus::Sent,
            None,
        ),
    );
    let batch = feed.take();
    assert_eq!(batch.links.len(), 1);
    let link = &batch.links[0];
    assert_eq!(
        (link.kind, link.to_host.as_deref(), link.to_queue_id.as_str()),
        ("relay", Some("mail2"), "F27E789349")
    );
    assert_eq!(link.relay.as_deref(), Some("mail2.example.com[33.33.33.33]:587"));
    let lives = last_messages(&batch);
    assert_eq!(
        message(&lives, "F27E789349").flow,
        Some("outbound"),
        "the NATed client is the authenticated sender's server"
    );
    assert_eq!(message(&lives, "670FCA58C8").flow, Some("outbound"));
}

#[test]
fn relay_to_an_unknown_host_names_the_relay() {
    let mut feed = Feed::new();
    // A host named `spool` sends its lines too, but a short name does not claim a relay's name.
    feed.at(0, "spool", "postfix/qmgr", 1, Some("ABCDE1"), EventKind::Removed);
    feed.at(
        0,
        "mail",
        "postfix/smtp",
        3,
        Some("BA8BA30001C7"),
        delivery(
            "m@another.com",
            "spool.mail.gandi.net[217.70.178.1]:25",
            Some(peer("spool.mail.gandi.net", "217.70.178.1", Some(25))),
            DeliveryStatus::Sent,
            Some("00AC27401BF"),
        ),
    );
    let batch = feed.take();
    assert_eq!(batch.links[0].to_host.as_deref(), Some("spool.mail.gandi.net"));
    assert_eq!(batch.links[0].kind, "relay");
}

/// Several hosts on one machine (or a lab) listen on loopback addresses other than 127.0.0.1: a
/// relay to a configured server's address is that server, even on a port that looks like a
/// filter's; any other such address on port 25 is a remote MTA, not this host.
#[test]
fn loopback_addresses_of_other_hosts_are_not_this_host() {
    let mut config = CorrelatorConfig {
        internal_networks: vec!["127.0.10.0/24".parse().unwrap(), "127.0.30.0/24".parse().unwrap()],
        ..CorrelatorConfig::default()
    };
    config.roles.insert("out1".into(), ServerRole::Outgoing);
    config.roles.insert("in1".into(), ServerRole::Incoming);
    config.server_addresses.insert("127.0.10.1".into(), "in1".into());
    let mut feed = Feed::with(Correlator::with_config(config));
    let workstation = peer("unknown", "127.0.30.1", None);
    let in1 = peer("in1.example.test", "127.0.10.1", Some(2525));
    let remote = peer("127.0.40.1", "127.0.40.1", Some(25));
    feed.at(0, "out1", "postfix/smtpd", 1, Some("AAAA01"), client(workstation))
        .at(0, "out1", "postfix/smtpd", 1, Some("AAAA02"), client(workstation))
        .at(
            0,
            "in1",
            "postfix/smtpd",
            5,
            Some("BBBB01"),
            client(peer("out1.example.test", "127.0.10.2", None)),
        )
        .at(
            1,
            "out1",
            "postfix/smtp",
            2,
            Some("AAAA01"),
            delivery(
                "bob@example.test",
                "in1.example.test[127.0.10.1]:2525",
                Some(in1),
                DeliveryStatus::Sent,
                Some("BBBB01"),
            ),
        )
        .at(
            1,
            "in1",
            "postfix/virtual",
            6,
            Some("BBBB01"),
            delivery("bob@example.test", "virtual", None, DeliveryStatus::Sent, None),
        )
        .at(
            1,
            "out1",
            "postfix/smtp",
            2,
            Some("AAAA02"),
            delivery(
                "dave@remote.test",
                "127.0.40.1[127.0.40.1]:25",
                Some(remote),
                DeliveryStatus::Sent,
                Some("CCCC01"),
            ),
        );
    let batch = feed.take();
    let hops: Vec<(&str, Option<&str>, bool)> = batch
        .links
        .iter()
        .map(|l| (l.kind, l.to_host.as_deref(), l.to_queue_id == "BBBB01"))
        .collect();
    assert_eq!(
        hops,
        [("relay", Some("in1"), true), ("relay", Some("127.0.40.1"), false)]
    );
    let lives = last_messages(&batch);
    assert_eq!(message(&lives, "AAAA01").flow, Some("internal"));
    assert_eq!(message(&lives, "BBBB01").flow, Some("internal"));
    assert_eq!(message(&lives, "AAAA02").flow, Some("outbound"));
}

#[test]
fn reinjection_with_orig_queue_id() {
    let h = "mx";
    let mut feed = Feed::new();
    feed.at(
        0,
        h,
        "postfix/smtpd",
        1,
        Some("AAAA1"),
        sasl_client(peer("pc", "192.0.2.50", None), "me"),
    )
    .at(
        1,
        h,
        "postfix/smtpd",
        2,
        Some("BBBB2"),
        EventKind::Client {
            client: peer("localhost", "127.0.0.1", None),
            sasl_method: None,
            sasl_username: None,
            sasl_sender: None,
            orig_queue_id: Some("AAAA1"),
            orig_client: Some(peer("pc", "192.0.2.50", None)),
        },
    )
    .at(
        2,
        h,
        "postfix/smtp",
        3,
        Some("BBBB2"),
        delivery(
            "x@world",
            "mx.world[192.0.2.99]:25",
            Some(peer("mx.world", "192.0.2.99", Some(25))),
            DeliveryStatus::Sent,
            None,
        ),
    );
    let batch = feed.take();
    let lives = last_messages(&batch);
    let (a, b) = (message(&lives, "AAAA1"), message(&lives, "BBBB2"));
    assert_eq!(batch.links.len(), 1);
    assert_eq!(
        (batch.links[0].kind, batch.links[0].from_uid),
        ("reinjection", Some(a.uid))
    );
    assert_eq!(b.flow, Some("outbound"));
}

/// AAAAA1 delivered to u@corp and removed at `at`, its client's session (smtpd pid 1) over a
/// second later.
fn delivered_and_disconnected(feed: &mut Feed, at: i64, client: Peer<'_>) {
    let h = "mx";
    feed.at(
        at,
        h,
        "postfix/lmtp",
        3,
        Some("AAAAA1"),
        delivery("u@corp", "private/dovecot-lmtp", None, DeliveryStatus::Sent, None),
    )
    .at(at, h, "postfix/qmgr", 2, Some("AAAAA1"), EventKind::Removed)
    .at(
        at + 1,
        h,
        "postfix/smtpd",
        1,
        None,
        EventKind::Disconnect {
            client,
            counters: "quit=1 commands=1",
            commands_ok: None,
            commands_total: None,
        },
    );
}

#[test]
fn restart_continues_from_saved_state() {
    let h = "mx";
    let c = peer("mail.outside", "192.0.2.10", None);
    let mut feed = Feed::new();
    received_and_queued(&mut feed, 0, c);
    feed.at(
        1,
        h,
        "postfix/lmtp",
        3,
        Some("AAAAA1"),
        delivery("u@corp", "private/dovecot-lmtp", None, DeliveryStatus::Deferred, None),
    );
    let saved = feed.take();
    let messages = last_messages(&saved);
    let open = OpenState {
        messages: messages.clone(),
        recipients: vec![last_recipient(&saved, messages[0].uid, "u@corp")],
        sessions: vec![saved.sessions.last().unwrap().clone()],
    };
    let mut restarted = Correlator::new();
    restarted.restore(open);
    assert_eq!((restarted.open_messages(), restarted.open_sessions()), (1, 1));
    let mut feed = Feed::with(restarted);
    delivered_and_disconnected(&mut feed, 600, c);
    let batch = feed.take();
    let life = &last_messages(&batch)[0];
    assert_eq!(life.uid, messages[0].uid, "the same life goes on");
    assert_eq!(
        (life.state, life.flow, life.version),
        ("sent", Some("inbound"), messages[0].version + 2)
    );
    let rcpt = last_recipient(&batch, life.uid, "u@corp");
    assert_eq!((rcpt.status, rcpt.attempts), ("sent", 2));
    assert_eq!(batch.sessions.last().unwrap().uid, saved.sessions[0].uid);
    assert!(batch.sessions.last().unwrap().disconnected_at.is_some());
}

/// AAAAA1 received from `client` in a session of smtpd pid 1, and queued, at `at`.
fn received_and_queued(feed: &mut Feed, at: i64, client_peer: Peer<'_>) {
    let h = "mx";
    feed.at(
        at,
        h,
        "postfix/smtpd",
        1,
        None,
        EventKind::Connect { client: client_peer },
    )
    .at(at, h, "postfix/smtpd", 1, Some("AAAAA1"), client(client_peer))
    .at(
        at,
        h,
        "postfix/qmgr",
        2,
        Some("AAAAA1"),
        EventKind::Queued {
            from: "s@outside",
            size: 9,
            nrcpt: 1,
        },
    );
}

/// One whole life of AAAAA1 and its session, from `start` to `start + 3`.
fn finished_life(feed: &mut Feed, start: i64, client: Peer<'_>) {
    received_and_queued(feed, start, client);
    delivered_and_disconnected(feed, start + 2, client);
}

/// A replay of older lines (a log imported again after a later one) rebuilds the lives it holds
/// under their own uids and leaves the restored ones of the same queue id and smtpd process
/// alone; the lines that come after it continue those.
#[test]
fn a_replay_of_older_lines_sets_restored_state_aside() {
    let (h, c) = ("mx", peer("mail.outside", "192.0.2.10", None));
    let mut feed = Feed::new();
    finished_life(&mut feed, 0, c);
    let older = feed.take();
    // A newer life of the reused queue id, in a session of the same smtpd process, both open.
    feed.at(100, h, "postfix/smtpd", 1, None, EventKind::Connect { client: c })
        .at(100, h, "postfix/smtpd", 1, Some("AAAAA1"), client(c))
        .at(
            101,
            h,
            "postfix/lmtp",
            3,
            Some("AAAAA1"),
            delivery("u@corp", "private/dovecot-lmtp", None, DeliveryStatus::Deferred, None),
        );
    let newer = feed.take();
    let open_life = last_messages(&newer)[0].clone();
    let open_session = newer.sessions.last().unwrap().clone();
    let mut restarted = Correlator::new();
    restarted.restore(OpenState {
        messages: vec![open_life.clone()],
        recipients: vec![last_recipient(&newer, open_life.uid, "u@corp")],
        sessions: vec![open_session.clone()],
    });
    let mut replay = Feed::with(restarted);
    finished_life(&mut replay, 0, c);
    let replayed = replay.take();
    assert_eq!(
        last_messages(&replayed),
        last_messages(&older),
        "the older life, rebuilt as it was"
    );
    assert_eq!(replayed.sessions, older.sessions);
    // The stream goes on after the newer life's beginning: it is that life's, and its session's.
    delivered_and_disconnected(&mut replay, 200, c);
    let after = replay.take();
    let life = &last_messages(&after)[0];
    assert_eq!(
        (life.uid, life.state, life.version),
        (open_life.uid, "sent", open_life.version + 2)
    );
    let session = after.sessions.last().unwrap();
    assert_eq!(
        (session.uid, session.disconnected_at),
        (open_session.uid, Some(Timestamp::from_unix_seconds(T0 + 201)))
    );
}

#[test]
fn forgets_lost_lives_after_ten_days() {
    let mut feed = Feed::new();
    feed.at(
        0,
        "mx",
        "postfix/qmgr",
        2,
        Some("AAAAA1"),
        EventKind::Queued {
            from: "s@x",
            size: 9,
            nrcpt: 1,
        },
    )
    .at(
        0,
        "mx",
        "postfix/qmgr",
        2,
        Some("BBBBB1"),
        EventKind::Queued {
            from: "s@x",
            size: 9,
            nrcpt: 1,
        },
    )
    .at(1, "mx", "postfix/qmgr", 2, Some("BBBBB1"), EventKind::Removed);
    feed.flush();
    assert_eq!(feed.correlator.open_messages(), 1);
    feed.at(
        3600,
        "mx",
        "postfix/qmgr",
        2,
        Some("CCCCC1"),
        EventKind::Queued {
            from: "s@x",
            size: 9,
            nrcpt: 1,
        },
    )
    .flush();
    assert_eq!(
        feed.correlator.lives_in_memory(),
        2,
        "the closed life is forgotten after a while"
    );
    assert_eq!(
        feed.correlator.compact_lives(),
        1,
        "the open one, idle for an hour, is compact"
    );
    feed.at(
        11 * 86_400,
        "mx",
        "postfix/qmgr",
        2,
        Some("DDDDD1"),
        EventKind::Queued {
            from: "s@x",
            size: 9,
            nrcpt: 1,
        },
    )
    .flush();
    assert_eq!(feed.correlator.open_messages(), 1, "only the fresh one is left");
}

#[test]
fn server_role_names() {
    assert_eq!("Incoming".parse::<ServerRole>(), Ok(ServerRole::Incoming));
    assert_eq!("filter".parse::<ServerRole>().unwrap().to_string(), "filter");
    assert!("mx".parse::<ServerRole>().is_err());
    assert!(matches_host("mail2.example.com", "mail2"));
    assert!(!matches_host("mail2.example.com", "mail"));
    assert!(!matches_host("unknown", "unknown"));
}

#[test]
fn before_queue_filter_reject() {
    let proxy = |accepted| EventKind::Proxy {
        accepted,
        stage: "END-OF-MESSAGE",
        code: Some(if accepted { 250 } else { 554 }),
        enhanced: None,
        reason: "text",
        from: Some("a@x"),
        to: Some("b@y"),
        proto: Some("ESMTP"),
        helo: None,
        filter_id: None,
    };
    let c = peer("c", "192.0.2.1", None);
    let mut feed = Feed::new();
    feed.at(0, "mx", "postfix/smtpd", 1, Some("AAAAA1"), client(c))
        .at(1, "mx", "postfix/smtpd", 1, Some("AAAAA1"), proxy(false))
        .at(2, "mx", "postfix/smtpd", 1, Some("BBBBB1"), client(c))
        .at(3, "mx", "postfix/smtpd", 1, Some("BBBBB1"), proxy(true));
    let lives = last_messages(&feed.take());
    let (refused, accepted) = (message(&lives, "AAAAA1"), message(&lives, "BBBBB1"));
    assert_eq!((refused.state, refused.closed), ("rejected", true));
    assert_eq!((accepted.state, accepted.closed), ("received", false));
}

#[test]
fn messages_of_a_session_without_data_are_closed() {
    let h = "sm02";
    let c = peer("unknown", "30.207.11.100", None);
    let mut feed = Feed::new();
    feed.at(
        0,
        h,
        "postfix/submission/smtpd",
        9,
        None,
        EventKind::Connect { client: c },
    )
    .at(
        0,
        h,
        "postfix/submission/smtpd",
        9,
        Some("D155CDC24C3"),
        sasl_client(c, "u"),
    )
    .at(
        0,
        h,
        "postfix/submission/smtpd",
        9,
        Some("D155CDC24C3"),
        EventKind::Reject(decision(Action::Reject, ActionSource::Smtpd, "RCPT", Some("x@y"))),
    )
    .at(
        0,
        h,
        "postfix/submission/smtpd",
        9,
        None,
        EventKind::Disconnect {
            client: c,
            counters: "ehlo=2 mail=1 rcpt=1/2 quit=1 commands=7/8",
            commands_ok: Some(7),
            commands_total: Some(8),
        },
    )
    // The same process, next session: DATA went through, its message is not closed by the
    // disconnect (qmgr may log after it).
    .at(
        5,
        h,
        "postfix/submission/smtpd",
        9,
        None,
        EventKind::Connect { client: c },
    )
    .at(
        5,
        h,
        "postfix/submission/smtpd",
        9,
        Some("E8759DC24C3"),
        sasl_client(c, "u"),
    )
    .at(
        5,
        h,
        "postfix/submission/smtpd",
        9,
        None,
        EventKind::Disconnect {
            client: c,
            counters: "ehlo=2 mail=1 rcpt=1 data=1 quit=1 commands=6",
            commands_ok: Some(6),
            commands_total: Some(6),
        },
    );
    let lives = last_messages(&feed.take());
    let refused = message(&lives, "D155CDC24C3");
    assert_eq!((refused.state, refused.closed), ("rejected", true));
    assert!(!message(&lives, "E8759DC24C3").closed);
    assert_eq!(feed.correlator.open_messages(), 1);
}

#[test]
fn content_filter_rule() {
    use super::links::is_content_filter;
    let d = |relay, peer| match delivery("a@b", relay, peer, DeliveryStatus::Sent, Some("ABCDE1")) {
        EventKind::Delivery(d) => d,
        _ => unreachable!(),
    };
    let smtp = Program::split("postfix/smtp");
    let amavis10024 = d(
        "127.0.0.1[127.0.0.1]:10024",
        Some(peer("127.0.0.1", "127.0.0.1", Some(10024))),
    );
    assert!(is_content_filter(&smtp, &amavis10024));
    let loopback25 = d(
        "localhost[127.0.0.1]:25",
        Some(peer("localhost", "127.0.0.1", Some(25))),
    );
    assert!(
        !is_content_filter(&smtp, &loopback25),
        "plain SMTP to the local Postfix"
    );
    assert!(is_content_filter(&Program::split("postfix/amavis/smtp"), &loopback25));
    let remote = d(
        "inbound.spamfilter.example[192.0.2.5]:25",
        Some(peer("inbound.spamfilter.example", "192.0.2.5", Some(25))),
    );
    assert!(
        !is_content_filter(&smtp, &remote),
        "a remote filtering service is another MTA"
    );
    assert!(is_content_filter(&smtp, &d("amavis", None)));
}
