//! The typed events that one Postfix log line becomes.
//!
//! Every field borrows from the line, so parsing allocates nothing; the correlator copies what it
//! keeps. The serde form (`kind` tag plus the fields of that kind) is what `elsed parse` prints.

use serde::Serialize;

/// A network peer as Postfix prints it: `name[ip]`, `name[ip]:port` or `[ip]:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Peer<'a> {
    /// Reverse name, `unknown` when Postfix could not resolve it, empty for postscreen's `[ip]:port`.
    pub name: &'a str,
    pub ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// What a policy decision did to the mail (`reject:`, `warn:`, `hold:` … in smtpd and cleanup lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Reject,
    /// `warn:` (smtpd) and `warning:` (cleanup header/body checks): logged, mail not stopped.
    Warn,
    Hold,
    Discard,
    Redirect,
    Filter,
    Replace,
    Prepend,
    Info,
    Bcc,
}

/// Where a policy decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionSource {
    /// smtpd access restrictions (`NOQUEUE: reject: RCPT from …`), also postscreen's NOQUEUE.
    Smtpd,
    /// cleanup `header_checks` / `mime_header_checks` / `nested_header_checks`.
    Header,
    /// cleanup `body_checks`.
    Body,
    /// A milter (`milter-reject:`, `milter-hold:`, `milter-discard:`).
    Milter,
}

/// The outcome Postfix reports for one delivery attempt of one recipient (`status=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Deferred,
    Bounced,
    /// `status=expired` in a delivery line (rare: most expiries are a qmgr line).
    Expired,
    /// Address verification probes (`status=deliverable` / `undeliverable`).
    Deliverable,
    Undeliverable,
}

/// Which notification the bounce daemon generated (`sender non-delivery notification: QID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    NonDelivery,
    Delay,
    /// `delivery status notification` (success DSN, `NOTIFY=SUCCESS`).
    Success,
    /// Copies for the postmaster (`postmaster non-delivery notification`).
    PostmasterNonDelivery,
    PostmasterDelay,
}

/// Severity of a diagnostic line (`warning:`, `error:`, `fatal:`, `panic:`), or `Info` for a
/// daemon's notice without a prefix (`using backwards-compatible default setting …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A plain notice about a session that carries no mail-flow meaning, e.g. smtp's
    /// `discarding EHLO keywords: 8BITMIME STARTTLS`.
    Info,
    Warning,
    Error,
    Fatal,
    Panic,
}

/// What postsuper did (`QID: placed on hold`, summaries like `Deleted: 3 messages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueOperation {
    Held,
    Released,
    Requeued,
    Deleted,
}

/// Direction of a TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// `… established from client` (smtpd, tlsproxy).
    Incoming,
    /// `… established to server` (smtp, lmtp).
    Outgoing,
}

/// A policy decision (smtpd restriction, postscreen, header/body check, milter).
///
/// Shapes covered: `NOQUEUE: reject: RCPT from c[ip]: 550 5.1.1 <x>: Recipient address rejected: …;
/// from=<a> to=<b> proto=ESMTP helo=<h>` and `QID: reject: header Subject: … from c[ip];
/// from=<a> to=<b> proto=ESMTP helo=<h>: 5.7.1 text`, and `QID: milter-reject: END-OF-MESSAGE from …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision<'a> {
    pub action: Action,
    pub source: ActionSource,
    /// SMTP stage (`CONNECT`, `EHLO`, `MAIL`, `RCPT`, `DATA`, `END-OF-MESSAGE`, `VRFY`…); empty for
    /// header/body checks.
    pub stage: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<Peer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced: Option<&'a str>,
    /// The reply text after the codes, e.g. `<x@y>: Recipient address rejected: User unknown`.
    pub reason: &'a str,
    /// The header or body text that matched (header/body checks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub helo: Option<&'a str>,
}

/// One delivery attempt of one recipient (smtp, lmtp, local, virtual, pipe, error, discard, retry).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Delivery<'a> {
    pub to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orig_to: Option<&'a str>,
    /// As logged: `mx.example.com[192.0.2.1]:25`, `local`, `none`, `dovecot`, `private/dovecot-lmtp`.
    pub relay: &'a str,
    /// The relay as a peer when it has the `name[ip]` form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_peer: Option<Peer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_use: Option<u32>,
    pub delay: f64,
    /// `delays=a/b/c/d`: before queue manager, in queue manager, connection setup, transmission.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delays: Option<[f32; 4]>,
    pub dsn: &'a str,
    pub status: DeliveryStatus,
    /// The text in parentheses after the status, e.g. `250 2.0.0 Ok: queued as 4Fh3k`.
    pub status_text: &'a str,
    /// The next hop's queue id when its reply says so (`queued as X`, `Ok: queued as X`, `OK (X)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_as: Option<&'a str>,
}

/// A content filter's verdict on a message (amavis `Passed CLEAN … Queue-ID: X … queued_as: Y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FilterVerdict<'a> {
    /// `Passed CLEAN`, `Blocked SPAM`, `Passed BAD-HEADER-0` …
    pub verdict: &'a str,
    /// The queue id of the message the filter received (on the sending Postfix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<&'a str>,
    /// The queue id the filter re-injected into (on the receiving Postfix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_as: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    /// The recipients as logged (`<a@x>,<b@y>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What a line says, by kind. Lines of one kind share one shape whatever daemon logged them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind<'a> {
    // --- smtpd / lmtpd / tlsproxy sessions -------------------------------------------------------
    /// `connect from c[ip]` (smtpd) or `CONNECT from [ip]:port` (tlsproxy).
    Connect {
        client: Peer<'a>,
    },
    /// `disconnect from c[ip] ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=3/5`.
    Disconnect {
        client: Peer<'a>,
        /// The raw counters after the peer (`ehlo=1 mail=1 …`), empty on old Postfix.
        counters: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        commands_ok: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        commands_total: Option<u32>,
    },
    /// `lost connection after DATA (0 bytes) from c[ip]`.
    LostConnection {
        client: Peer<'a>,
        after: &'a str,
    },
    /// `timeout after END-OF-MESSAGE from c[ip]`.
    Timeout {
        client: Peer<'a>,
        after: &'a str,
    },
    /// `too many errors after RCPT from c[ip]`.
    TooManyErrors {
        client: Peer<'a>,
        after: &'a str,
    },
    /// `improper command pipelining after CONNECT from c[ip]: …`.
    Pipelining {
        client: Peer<'a>,
        after: &'a str,
    },
    /// `QID: client=c[ip], sasl_method=PLAIN, sasl_username=u` and the re-injection form
    /// `client=localhost[127.0.0.1], orig_queue_id=X, orig_client=c[ip]`.
    Client {
        client: Peer<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sasl_method: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sasl_username: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sasl_sender: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        orig_queue_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        orig_client: Option<Peer<'a>>,
    },
    /// A policy decision: smtpd/postscreen NOQUEUE, header/body checks, milters.
    Reject(Decision<'a>),
    /// Before-queue content filter result: `proxy-accept: END-OF-MESSAGE: 250 …; from=<> to=<>…`.
    Proxy {
        accepted: bool,
        stage: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<u16>,
        #[serde(skip_serializing_if = "Option::is_none")]
        enhanced: Option<&'a str>,
        reason: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        from: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        proto: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        helo: Option<&'a str>,
        /// The filter's own id when the reply carries one (`250 2.5.0 OK (381C…)`).
        #[serde(skip_serializing_if = "Option::is_none")]
        filter_id: Option<&'a str>,
    },
    /// `Anonymous TLS connection established from c[ip]: TLSv1.3 with cipher X (256/256 bits)`.
    Tls {
        direction: Direction,
        peer: Peer<'a>,
        /// `Anonymous`, `Untrusted`, `Trusted`, `Verified`.
        level: &'a str,
        protocol: &'a str,
        cipher: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        bits: Option<u16>,
    },
    /// A TLS failure: `SSL_accept error from c[ip]: …`, `TLS library problem: …`.
    TlsError {
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<Peer<'a>>,
        text: &'a str,
    },
    /// `warning: c[ip]: SASL LOGIN authentication failed: …`.
    SaslFailed {
        client: Peer<'a>,
        method: &'a str,
        reason: &'a str,
    },

    // --- postscreen and dnsblog -----------------------------------------------------------------
    /// `CONNECT from [ip]:port to [ip]:port`.
    ScreenConnect {
        client: Peer<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        server: Option<Peer<'a>>,
    },
    /// `PASS NEW [ip]:port` / `PASS OLD [ip]:port`.
    ScreenPass {
        client: Peer<'a>,
        new: bool,
    },
    /// `DNSBL rank 3 for [ip]:port`.
    ScreenDnsblRank {
        client: Peer<'a>,
        rank: u32,
    },
    /// `PREGREET 11 after 0.07 from [ip]:port: EHLO x\r\n`.
    ScreenPregreet {
        client: Peer<'a>,
        bytes: u32,
        after: f32,
        text: &'a str,
    },
    /// `HANGUP after 0.5 from [ip]:port in tests after SMTP handshake`.
    ScreenHangup {
        client: Peer<'a>,
        after: f32,
        stage: &'a str,
    },
    /// `COMMAND PIPELINING from [ip]:port after EHLO: …`, `NON-SMTP COMMAND …`, `BARE NEWLINE …`,
    /// `COMMAND TIME LIMIT …`, `COMMAND COUNT LIMIT …`, `COMMAND LENGTH LIMIT …`.
    ScreenViolation {
        violation: &'a str,
        client: Peer<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<&'a str>,
        detail: &'a str,
    },
    /// `WHITELISTED`/`ALLOWLISTED`/`BLACKLISTED`/`DENYLISTED`/`WHITELIST VETO` `[ip]:port`.
    ScreenList {
        list: &'a str,
        client: Peer<'a>,
    },
    /// `DISCONNECT [ip]:port`.
    ScreenDisconnect {
        client: Peer<'a>,
    },
    /// dnsblog: `addr 192.0.2.1 listed by domain zen.spamhaus.org as 127.0.0.4`.
    DnsblListed {
        ip: &'a str,
        domain: &'a str,
        answer: &'a str,
    },

    // --- cleanup ---------------------------------------------------------------------------------
    /// `QID: message-id=<x@y>` (possibly empty or without angle brackets).
    MessageId {
        message_id: &'a str,
    },
    /// `QID: resent-message-id=<x@y>`.
    ResentMessageId {
        message_id: &'a str,
    },

    // --- qmgr ------------------------------------------------------------------------------------
    /// `QID: from=<a>, size=123, nrcpt=2 (queue active)`.
    Queued {
        from: &'a str,
        size: u64,
        nrcpt: u32,
    },
    /// `QID: removed` (qmgr after the last recipient, and postsuper deletions).
    Removed,
    /// `QID: from=<a>, status=expired, returned to sender`.
    Expired {
        from: &'a str,
    },
    /// `QID: skipped, still being delivered`.
    Skipped,

    // --- delivery agents ---------------------------------------------------------------------------
    Delivery(Delivery<'a>),
    /// smtp/lmtp trouble reaching or talking to the next hop:
    /// `connect to mx[ip]:25: Connection refused`, `QID: host mx[ip] said: 450 … (in reply to RCPT TO
    /// command)`, `QID: lost connection with mx[ip] while sending RCPT TO`, `… timed out while …`.
    RemoteError {
        #[serde(skip_serializing_if = "Option::is_none")]
        peer: Option<Peer<'a>>,
        text: &'a str,
    },

    // --- bounce, pickup, postsuper, content filters --------------------------------------------------
    /// `QID: sender non-delivery notification: NQID` — the original's id is the line's queue id.
    Notification {
        notification: NotificationKind,
        notification_queue_id: &'a str,
    },
    /// pickup: `QID: uid=1000 from=<user>`.
    Pickup {
        uid: u32,
        from: &'a str,
    },
    /// postsuper: `QID: placed on hold`, `QID: released from hold`, `QID: requeued`; summaries
    /// (`Deleted: 3 messages`) have no queue id and a count.
    QueueOperation {
        operation: QueueOperation,
        #[serde(skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
    },
    /// A content filter's verdict (amavis); links the filter's input and output queue ids.
    Filter(FilterVerdict<'a>),

    // --- daemons' own life ---------------------------------------------------------------------------
    /// master: `daemon started -- version 3.7.2, configuration /etc/postfix`, `reload -- …`,
    /// `terminating on signal 15`.
    Master {
        /// `started`, `reload`, `terminating`.
        event: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        version: Option<&'a str>,
    },
    /// anvil: `statistics: max connection rate 1/60s for (smtpd:192.0.2.1) at Oct 26 18:13:50`.
    Statistics {
        /// `connection rate`, `connection count`, `message rate`, `recipient rate`, `newtls rate`,
        /// `cache size`, `auth rate`; scache: `domain lookup hits`, … (the words after `max`/`start`).
        metric: &'a str,
        value: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        service: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client: Option<&'a str>,
    },
    /// `warning: …`, `error: …`, `fatal: …`, `panic: …` not covered by a more precise kind.
    Diagnostic {
        severity: Severity,
        text: &'a str,
    },

    /// A line from a neighbour that shares the mail log (dovecot, opendkim, rspamd, spamd …) which we
    /// recognise and leave alone on purpose; not counted as an unknown Postfix line.
    Foreign,
    /// Anything else: kept raw and counted per program, never an error.
    Unknown,
}

impl EventKind<'_> {
    /// The snake_case name used in the database's `kind` column and in summaries.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Connect { .. } => "connect",
            EventKind::Disconnect { .. } => "disconnect",
            EventKind::LostConnection { .. } => "lost_connection",
            EventKind::Timeout { .. } => "timeout",
            EventKind::TooManyErrors { .. } => "too_many_errors",
            EventKind::Pipelining { .. } => "pipelining",
            EventKind::Client { .. } => "client",
            EventKind::Reject(_) => "reject",
            EventKind::Proxy { .. } => "proxy",
            EventKind::Tls { .. } => "tls",
            EventKind::TlsError { .. } => "tls_error",
            EventKind::SaslFailed { .. } => "sasl_failed",
            EventKind::ScreenConnect { .. } => "screen_connect",
            EventKind::ScreenPass { .. } => "screen_pass",
            EventKind::ScreenDnsblRank { .. } => "screen_dnsbl_rank",
            EventKind::ScreenPregreet { .. } => "screen_pregreet",
            EventKind::ScreenHangup { .. } => "screen_hangup",
            EventKind::ScreenViolation { .. } => "screen_violation",
            EventKind::ScreenList { .. } => "screen_list",
            EventKind::ScreenDisconnect { .. } => "screen_disconnect",
            EventKind::DnsblListed { .. } => "dnsbl_listed",
            EventKind::MessageId { .. } => "message_id",
            EventKind::ResentMessageId { .. } => "resent_message_id",
            EventKind::Queued { .. } => "queued",
            EventKind::Removed => "removed",
            EventKind::Expired { .. } => "expired",
            EventKind::Skipped => "skipped",
            EventKind::Delivery(_) => "delivery",
            EventKind::RemoteError { .. } => "remote_error",
            EventKind::Notification { .. } => "notification",
            EventKind::Pickup { .. } => "pickup",
            EventKind::QueueOperation { .. } => "queue_operation",
            EventKind::Filter(_) => "filter",
            EventKind::Master { .. } => "master",
            EventKind::Statistics { .. } => "statistics",
            EventKind::Diagnostic { .. } => "diagnostic",
            EventKind::Foreign => "foreign",
            EventKind::Unknown => "unknown",
        }
    }
}

/// The program that logged a line, split the way Postfix builds it from `syslog_name`.
///
/// `postfix/submission/smtpd` → instance `postfix`, service `submission`, daemon `smtpd`;
/// `postfix-in/smtpd` → instance `postfix-in`, no service, daemon `smtpd`; `amavis` → instance
/// `amavis`, daemon `amavis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Program<'a> {
    /// The whole tag before `[pid]`.
    pub name: &'a str,
    /// The first element (`postfix`, `postfix-in`).
    pub instance: &'a str,
    /// The elements between the instance and the daemon, if any (`submission`, `amavis`, `10025`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a str>,
    /// The last element: the Postfix daemon (`smtpd`, `qmgr`…) or the whole name for other programs.
    pub daemon: &'a str,
}

impl<'a> Program<'a> {
    pub fn split(name: &'a str) -> Self {
        let instance_end = name.find('/').unwrap_or(name.len());
        let daemon_start = name.rfind('/').map_or(0, |i| i + 1);
        let service = (daemon_start > instance_end + 1).then(|| &name[instance_end + 1..daemon_start - 1]);
        Program {
            name,
            instance: &name[..instance_end],
            service,
            daemon: &name[daemon_start..],
        }
    }

    /// True for programs whose tag has the Postfix shape (`something/daemon`) or is a bare Postfix
    /// daemon name; these are the lines a Postfix parser is expected to understand.
    pub fn is_postfix(&self) -> bool {
        self.name.contains('/') || crate::parse::is_postfix_daemon(self.daemon)
    }
}

/// The parse of one message text: the queue id it concerns, if any, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Event<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_id: Option<&'a str>,
    #[serde(flatten)]
    pub kind: EventKind<'a>,
}

impl<'a> Event<'a> {
    pub fn new(queue_id: Option<&'a str>, kind: EventKind<'a>) -> Self {
        Event { queue_id, kind }
    }

    pub fn unknown() -> Self {
        Event::new(None, EventKind::Unknown)
    }
}
