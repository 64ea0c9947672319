//! What the correlator hands the writer: plain rows, one struct per table, owned.
//!
//! Rows of append-only tables (events, deliveries, rejects, links) carry the line key of the line
//! they come from, so writing a batch twice inserts nothing new. Rows of state tables (messages,
//! recipients, sessions) are snapshots of the correlator's state, applied only when they are not
//! older than what the database holds, so replays never move state backwards.

use crate::parse::Timestamp;

/// The words the store writes in `messages.origin`.
pub const ORIGINS: &[&str] = &["smtpd", "pickup", "bounce", "qmqpd", "sendmail", "local", "unknown"];
/// The words of `flow` columns.
pub const FLOWS: &[&str] = &["inbound", "outbound", "internal", "relayed", "unknown"];
/// The words of `messages.state`.
pub const MESSAGE_STATES: &[&str] = &[
    "received",
    "queued",
    "sent",
    "deferred",
    "bounced",
    "expired",
    "rejected",
    "held",
    "discarded",
    "deleted",
    "partial",
    "abandoned",
    "vanished",
];
/// The words of `recipients.status`.
pub const RECIPIENT_STATUSES: &[&str] = &[
    "sent",
    "deferred",
    "bounced",
    "expired",
    "rejected",
    "held",
    "discarded",
    "deleted",
    "deliverable",
    "undeliverable",
    "queued",
    "abandoned",
    "vanished",
];

/// One log line, as received: the raw text is always kept.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub time: Timestamp,
    /// Identity of the line: a hash of its content (time, host, program, pid, message) plus the
    /// number of identical lines before it in the same second. The same line gets the same key
    /// whether it came live through rsyslog or from a file, so it is stored once.
    pub line_key: i64,
    pub host: String,
    /// The program tag (`postfix/submission/smtpd`); empty when the envelope was not readable.
    pub program: String,
    pub pid: Option<i32>,
    pub queue_id: Option<String>,
    /// [`crate::parse::EventKind::name`], or `unparsed` for a line without a readable envelope.
    pub kind: &'static str,
    /// The message (life of a queue id) this line belongs to, if any.
    pub message_uid: Option<i64>,
    /// The smtpd session this line belongs to, if any: what lets a group member read the
    /// session lines of their own mail (elsed's access scope).
    pub session_uid: Option<i64>,
    /// The message text after `prog[pid]: `, or the whole line when the envelope was not readable.
    pub raw: String,
}

/// The state of one message: one queue id, on one host, for one life (short queue ids are reused).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageRow {
    /// Stable id: a hash of host, queue id and `started_at`.
    pub uid: i64,
    /// Time of the first line of this life the correlator saw; fixed for the life, partition key.
    pub started_at: Timestamp,
    pub host: String,
    pub queue_id: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Envelope sender; `Some("")` is the null sender of bounces.
    pub sender: Option<String>,
    pub size: Option<i64>,
    pub nrcpt: Option<i32>,
    pub message_id: Option<String>,
    pub client_name: Option<String>,
    pub client_ip: Option<String>,
    pub client_port: Option<i32>,
    pub sasl_method: Option<String>,
    pub sasl_username: Option<String>,
    /// How it entered this host: `smtpd`, `pickup` (local submission), `bounce` (a notification
    /// Postfix generated), `qmqpd`, or `unknown` (life started before the log did).
    pub origin: &'static str,
    /// `inbound`, `outbound`, `internal`, `relayed`, once a recipient tells where it went.
    pub flow: Option<&'static str>,
    /// `received`, `queued`, `sent`, `deferred`, `bounced`, `expired`, `rejected`, `held`,
    /// `discarded`, `deleted`, `partial` (some recipients sent, some bounced), `abandoned` (the
    /// client went away before the message was queued), `vanished` (its queue file went without
    /// a `removed` line). docs/api.md lists them with what each means.
    pub state: &'static str,
    /// Why a message is in a final state other than delivered (the reply, the check, the
    /// command), or on hold: what the log said.
    pub state_reason: Option<String>,
    /// `removed` was seen: this life is over.
    pub closed: bool,
    pub removed_at: Option<Timestamp>,
    /// How many lines of the log this snapshot reflects; a replayed older snapshot has fewer.
    pub version: i32,
}

/// The latest status of one recipient of one message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecipientRow {
    pub message_uid: i64,
    pub message_started_at: Timestamp,
    pub address: String,
    pub orig_address: Option<String>,
    /// `sent`, `deferred`, `bounced`, `expired`, `rejected`, `held`, `discarded`, `deleted`,
    /// `deliverable`, `undeliverable`, `queued` (no attempt yet).
    pub status: &'static str,
    pub dsn: Option<String>,
    pub relay: Option<String>,
    pub status_text: Option<String>,
    pub delay: Option<f64>,
    pub attempts: i32,
    pub last_attempt_at: Timestamp,
    pub flow: Option<&'static str>,
}

/// One delivery attempt of one recipient (one line of a delivery agent).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub time: Timestamp,
    pub line_key: i64,
    pub message_uid: i64,
    pub message_started_at: Timestamp,
    pub host: String,
    pub queue_id: String,
    /// The delivery agent (`smtp`, `lmtp`, `local`, …).
    pub daemon: String,
    pub recipient: String,
    pub orig_recipient: Option<String>,
    pub relay: String,
    pub relay_ip: Option<String>,
    pub delay: f64,
    pub delays: Option<[f32; 4]>,
    pub dsn: String,
    pub status: &'static str,
    pub status_text: String,
    pub queued_as: Option<String>,
}

/// A policy decision: NOQUEUE rejects and warnings from smtpd/postscreen, header/body checks and
/// milter actions on a queued message.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectRow {
    pub time: Timestamp,
    pub line_key: i64,
    pub host: String,
    pub program: String,
    pub pid: Option<i32>,
    /// The smtpd session it happened in, if known.
    pub session_uid: Option<i64>,
    /// The message it concerns, when it had a queue id.
    pub message_uid: Option<i64>,
    pub queue_id: Option<String>,
    pub action: &'static str,
    pub source: &'static str,
    pub stage: String,
    pub client_name: Option<String>,
    pub client_ip: Option<String>,
    pub code: Option<i32>,
    pub enhanced: Option<String>,
    pub reason: String,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub proto: Option<String>,
    pub helo: Option<String>,
}

/// One smtpd (or postscreen) session, from connect to disconnect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionRow {
    /// Stable id: a hash of host, program, pid and `connected_at`.
    pub uid: i64,
    pub host: String,
    pub program: String,
    pub pid: i32,
    pub connected_at: Timestamp,
    pub disconnected_at: Option<Timestamp>,
    pub client_name: Option<String>,
    pub client_ip: Option<String>,
    pub client_port: Option<i32>,
    pub tls_protocol: Option<String>,
    pub tls_cipher: Option<String>,
    pub sasl_username: Option<String>,
    pub sasl_failures: i32,
    /// Messages queued in this session.
    pub messages: i32,
    pub rejects: i32,
    /// `disconnect` counters (`ehlo=1 mail=1 rcpt=0/1 …`), or how it ended (`lost connection after
    /// DATA`, `timeout after RCPT`).
    pub end: Option<String>,
    pub last_seen: Timestamp,
    pub version: i32,
}

/// A link between two queue ids: the path of one e-mail across queues and servers.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub time: Timestamp,
    pub line_key: i64,
    /// `relay` (handed to another MTA that said `queued as`), `content_filter` (amavis re-injection),
    /// `reinjection` (`orig_queue_id` from XFORWARD), `notification` (bounce/delay DSN generated for
    /// this message).
    pub kind: &'static str,
    pub from_uid: Option<i64>,
    pub from_host: String,
    pub from_queue_id: String,
    /// The host that logged `to_queue_id`, when it is known (same host, or the relay's name).
    pub to_host: Option<String>,
    pub to_queue_id: String,
    /// The relay as logged (`mx.example.com[192.0.2.1]:25`), for matching to another ELSE server.
    pub relay: Option<String>,
}

/// Everything one flush of the correlator produced, written in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub events: Vec<EventRow>,
    pub messages: Vec<MessageRow>,
    pub recipients: Vec<RecipientRow>,
    pub deliveries: Vec<DeliveryRow>,
    pub rejects: Vec<RejectRow>,
    pub sessions: Vec<SessionRow>,
    pub links: Vec<LinkRow>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Appends another batch (group commit of several workers' batches).
    pub fn append(&mut self, mut other: Batch) {
        self.events.append(&mut other.events);
        self.messages.append(&mut other.messages);
        self.recipients.append(&mut other.recipients);
        self.deliveries.append(&mut other.deliveries);
        self.rejects.append(&mut other.rejects);
        self.sessions.append(&mut other.sessions);
        self.links.append(&mut other.links);
    }
}
