//! What each kind of line does to the message it names, and the rows it adds (deliveries,
//! rejects, links).

use crate::parse::event::{Action, ActionSource, Decision, Delivery, DeliveryStatus, QueueOperation};
use crate::parse::{EventKind, ParsedLine, Timestamp};
use crate::store::{Batch, DeliveryRow, RejectRow};

use super::message::{queue_key, Message, Start, Upstream};
use super::session::PendingHold;
use super::Correlator;

pub(super) fn status_name(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Deferred => "deferred",
        DeliveryStatus::Bounced => "bounced",
        DeliveryStatus::Expired => "expired",
        DeliveryStatus::Deliverable => "deliverable",
        DeliveryStatus::Undeliverable => "undeliverable",
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Reject => "reject",
        Action::Warn => "warn",
        Action::Hold => "hold",
        Action::Discard => "discard",
        Action::Redirect => "redirect",
        Action::Filter => "filter",
        Action::Replace => "replace",
        Action::Prepend => "prepend",
        Action::Info => "info",
        Action::Bcc => "bcc",
    }
}

fn source_name(source: ActionSource) -> &'static str {
    match source {
        ActionSource::Smtpd => "smtpd",
        ActionSource::Header => "header",
        ActionSource::Body => "body",
        ActionSource::Milter => "milter",
    }
}

/// What smtpd and cleanup log (as a warning) when a message outgrew `message_size_limit`.
const SIZE_LIMIT_EXCEEDED: &str = "queue file size limit exceeded";

/// Why a decision was taken, as the log said it: the reply with its codes, the daemon that took
/// it (`cleanup`, a milter) and the header or body text a check matched.
fn decision_reason(decision: &Decision<'_>) -> String {
    let mut reason = String::new();
    for part in [
        decision.code.map(|c| c.to_string()).as_deref(),
        decision.enhanced,
        Some(decision.reason),
    ]
    .into_iter()
    .flatten()
    .filter(|p| !p.is_empty())
    {
        if !reason.is_empty() {
            reason.push(' ');
        }
        reason.push_str(part);
    }
    let by = match decision.source {
        ActionSource::Smtpd if decision.stage.is_empty() => None,
        ActionSource::Smtpd => Some(format!("smtpd at {}", decision.stage)),
        ActionSource::Header | ActionSource::Body => Some(format!(
            "{}_checks: {}",
            source_name(decision.source),
            decision.content.unwrap_or("")
        )),
        ActionSource::Milter => Some("milter".to_owned()),
    };
    match by {
        Some(by) if reason.is_empty() => by,
        Some(by) => format!("{reason} ({by})"),
        None => reason,
    }
}

/// True for a decision that refuses the whole message (not one recipient at RCPT time).
fn rejects_message(decision: &Decision<'_>) -> bool {
    decision.source != ActionSource::Smtpd || matches!(decision.stage, "DATA" | "END-OF-MESSAGE" | "BDAT")
}

impl Correlator {
    /// Applies one line to the message it names. Returns that message and the queue id the event
    /// row carries.
    pub(super) fn apply_line<'a>(
        &mut self,
        line: &ParsedLine<'a>,
        line_key: i64,
        session_uid: Option<i64>,
        batch: &mut Batch,
    ) -> (Option<i64>, Option<&'a str>) {
        let (host, time) = (line.line.host, line.line.time);
        let kind = line.event.kind;
        if let EventKind::Filter(verdict) = kind {
            let queue_id = verdict.queue_id.or(line.event.queue_id);
            let uid = queue_id.and_then(|q| self.resolve(host, q, time, None, true));
            if let Some(uid) = uid {
                self.messages.count_line(uid, time);
            }
            if let (Some(from), Some(to)) = (verdict.queue_id, verdict.queued_as) {
                self.link(
                    batch,
                    time,
                    line_key,
                    "content_filter",
                    (uid, host, from),
                    (host, to),
                    None,
                    true,
                );
            }
            return (uid, queue_id);
        }
        let Some(queue_id) = line.event.queue_id else {
            if let Some(decision) = refusal(&kind) {
                self.reject(line, line_key, &decision, session_uid, None, batch);
            }
            return (None, None);
        };
        let daemon = line.program.daemon;
        let start = match kind {
            EventKind::Client { .. } if matches!(daemon, "smtpd" | "qmqpd") => Some(Start::Client),
            EventKind::Pickup { .. } => Some(Start::Pickup),
            EventKind::MessageId { .. } => Some(Start::MessageId),
            EventKind::Queued { .. } => Some(Start::Queued),
            _ => None,
        };
        let create = line.program.is_postfix()
            && !matches!(
                kind,
                EventKind::Unknown | EventKind::Foreign | EventKind::Diagnostic { .. }
            );
        let Some(uid) = self.resolve(host, queue_id, time, start, create) else {
            return (None, Some(queue_id));
        };
        self.messages.count_line(uid, time);
        match kind {
            EventKind::Client {
                client,
                sasl_method,
                sasl_username,
                orig_queue_id,
                orig_client,
                ..
            } => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    let row = &mut life.row;
                    if !client.ip.is_empty() {
                        row.client_name = Some(client.name.to_owned());
                        row.client_ip = Some(client.ip.to_owned());
                        row.client_port = client.port.map(i32::from);
                    }
                    row.sasl_method = sasl_method.map(str::to_owned);
                    row.sasl_username = sasl_username.map(str::to_owned);
                    if matches!(daemon, "smtpd" | "qmqpd") {
                        row.origin = "smtpd";
                    }
                    life.orig_client_ip = orig_client.map(|c| c.ip.to_owned()).filter(|ip| !ip.is_empty());
                    life.session_uid = session_uid;
                    life.touch_recipients();
                }
                if let Some(session) = session_uid {
                    self.sessions.add_message(session, uid);
                    for hold in self.sessions.take_pending_holds(session) {
                        if let Some(life) = self.messages.lives.get_mut(&uid) {
                            hold_at(life, hold);
                        }
                    }
                }
                if let Some(orig) = orig_queue_id {
                    let from_uid = self.messages.life_at(queue_key(host, orig), time).map(|m| m.row.uid);
                    self.link(
                        batch,
                        time,
                        line_key,
                        "reinjection",
                        (from_uid, host, orig),
                        (host, queue_id),
                        None,
                        false,
                    );
                    if let Some(from) = from_uid.filter(|&f| f != uid) {
                        self.attach_upstream(uid, Upstream::Message(from));
                    }
                }
            }
            EventKind::Pickup { from, .. } => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    life.row.origin = "pickup";
                    life.row.sender.get_or_insert_with(|| from.to_owned());
                    life.touch_recipients();
                }
            }
            EventKind::MessageId { message_id } => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    life.row.message_id = Some(message_id.to_owned());
                }
            }
            EventKind::Queued { from, size, nrcpt } => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    life.row.sender = Some(from.to_owned());
                    life.row.size = i64::try_from(size).ok();
                    life.row.nrcpt = i32::try_from(nrcpt).ok();
                    life.queued = true;
                }
            }
            EventKind::Removed => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    life.row.removed_at.get_or_insert(time);
                    if daemon == "postsuper" {
                        life.end_as("deleted", "deleted with postsuper -d".to_owned(), time);
                    }
                    life.close(time);
                }
            }
            // smtpd and cleanup log this when the message outgrew `message_size_limit` during
            // DATA: smtpd answers 552 5.3.4 and cleanup drops the queue file without `removed`.
            EventKind::Diagnostic { text, .. } if text == SIZE_LIMIT_EXCEEDED => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    life.end_as("rejected", SIZE_LIMIT_EXCEEDED.to_owned(), time);
                }
            }
            EventKind::Expired { .. } => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    life.expired = true;
                    for rcpt in life.recipients.iter_mut().filter(|r| r.row.status == "deferred") {
                        rcpt.row.status = "expired";
                        rcpt.touched = true;
                    }
                }
            }
            EventKind::Delivery(delivery) => self.apply_delivery(line, line_key, uid, queue_id, &delivery, batch),
            EventKind::Notification {
                notification_queue_id, ..
            } => {
                self.link(
                    batch,
                    time,
                    line_key,
                    "notification",
                    (Some(uid), host, queue_id),
                    (host, notification_queue_id),
                    None,
                    false,
                );
                if let Some(notice) = self.resolve(host, notification_queue_id, time, Some(Start::Notification), true) {
                    if let Some(life) = self.messages.lives.get_mut(&notice) {
                        life.row.origin = "bounce";
                        life.touch_recipients();
                    }
                    self.messages.touch(notice);
                }
            }
            EventKind::QueueOperation { operation, .. } => {
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    match operation {
                        QueueOperation::Held => life.hold(Some(format!("placed on hold by {daemon}"))),
                        QueueOperation::Released => life.hold(None),
                        // Summaries (`Deleted: 3 messages`) name no message; `removed` does.
                        QueueOperation::Deleted | QueueOperation::Requeued => {}
                    }
                }
            }
            EventKind::Reject(decision) => {
                self.reject(line, line_key, &decision, session_uid, Some((uid, queue_id)), batch);
            }
            // A before-queue filter refused the message: it was never queued.
            EventKind::Proxy { accepted: false, .. } => {
                if let Some(decision) = refusal(&kind) {
                    self.reject(line, line_key, &decision, session_uid, Some((uid, queue_id)), batch);
                }
                if let Some(life) = self.messages.lives.get_mut(&uid) {
                    let reason = refusal(&kind).map(|d| decision_reason(&d)).unwrap_or_default();
                    life.end_as("rejected", reason, time);
                }
            }
            _ => {}
        }
        (Some(uid), Some(queue_id))
    }

    /// The life of a queue id (see [`super::message::Messages::resolve`]); a new life takes the
    /// upstream a link named for it.
    pub(super) fn resolve(
        &mut self,
        host: &str,
        queue_id: &str,
        time: Timestamp,
        start: Option<Start>,
        create: bool,
    ) -> Option<i64> {
        let uid = self.messages.resolve(host, queue_id, time, start, create)?;
        self.claim_pending_upstream(host, queue_id, uid);
        Some(uid)
    }

    fn apply_delivery(
        &mut self,
        line: &ParsedLine<'_>,
        line_key: i64,
        uid: i64,
        queue_id: &str,
        d: &Delivery<'_>,
        batch: &mut Batch,
    ) {
        let (host, time, daemon) = (line.line.host, line.line.time, line.program.daemon);
        let hop = d
            .queued_as
            .map(|to| (to, self.delivery_hop(host, &line.program, d, to, time)));
        let via = hop
            .as_ref()
            .filter(|(_, h)| h.followed)
            .map(|(to, h)| queue_key(&h.to_host, to));
        let dest = self.classify_destination(daemon, d, via);
        let Some(life) = self.messages.lives.get_mut(&uid) else {
            return;
        };
        let started_at = life.row.started_at;
        let rcpt = life.recipient_mut(d.to);
        let row = &mut rcpt.row;
        row.status = status_name(d.status);
        row.dsn = Some(d.dsn.to_owned());
        row.relay = Some(d.relay.to_owned());
        row.status_text = Some(d.status_text.to_owned());
        row.delay = Some(d.delay);
        row.attempts += 1;
        row.last_attempt_at = time;
        if let Some(orig) = d.orig_to {
            row.orig_address = Some(orig.to_owned());
        }
        rcpt.dest = dest;
        rcpt.touched = true;
        batch.deliveries.push(DeliveryRow {
            time,
            line_key,
            message_uid: uid,
            message_started_at: started_at,
            host: host.to_owned(),
            queue_id: queue_id.to_owned(),
            daemon: daemon.to_owned(),
            recipient: d.to.to_owned(),
            orig_recipient: d.orig_to.map(str::to_owned),
            relay: d.relay.to_owned(),
            relay_ip: d.relay_peer.map(|p| p.ip.to_owned()).filter(|ip| !ip.is_empty()),
            delay: d.delay,
            delays: d.delays,
            dsn: d.dsn.to_owned(),
            status: status_name(d.status),
            status_text: d.status_text.to_owned(),
            queued_as: d.queued_as.map(str::to_owned),
        });
        if let Some((to, hop)) = hop {
            self.link(
                batch,
                time,
                line_key,
                hop.kind,
                (Some(uid), host, queue_id),
                (&hop.to_host, to),
                Some(d.relay),
                hop.followed,
            );
        }
        self.touch_upstream_chain(uid);
    }

    /// A policy decision: a reject row, and for a queued message its effect on the message.
    fn reject(
        &mut self,
        line: &ParsedLine<'_>,
        line_key: i64,
        decision: &Decision<'_>,
        session_uid: Option<i64>,
        message: Option<(i64, &str)>,
        batch: &mut Batch,
    ) {
        let time = line.line.time;
        let life_session = message
            .and_then(|(uid, _)| self.messages.lives.get(&uid))
            .and_then(|m| m.session_uid);
        let session_uid = session_uid.or(life_session);
        // A decision that does not name the client (a before-queue filter's) took place in the
        // session, whose `connect` line did.
        let client = match decision.client {
            Some(peer) => Some((peer.name, peer.ip)),
            None => session_uid.and_then(|uid| self.sessions.client(uid)),
        };
        let client_name = client.map(|(name, _)| name.to_owned());
        let client_ip = client.map(|(_, ip)| ip.to_owned());
        batch.rejects.push(RejectRow {
            time,
            line_key,
            host: line.line.host.to_owned(),
            program: line.program.name.to_owned(),
            pid: line.line.pid.map(|p| p as i32),
            session_uid,
            message_uid: message.map(|(uid, _)| uid),
            queue_id: message.map(|(_, q)| q.to_owned()),
            action: action_name(decision.action),
            source: source_name(decision.source),
            stage: decision.stage.to_owned(),
            client_name,
            client_ip,
            code: decision.code.map(i32::from),
            enhanced: decision.enhanced.map(str::to_owned),
            reason: decision.reason.to_owned(),
            sender: decision.from.map(str::to_owned),
            recipient: decision.to.map(str::to_owned),
            proto: decision.proto.map(str::to_owned),
            helo: decision.helo.map(str::to_owned),
        });
        let Some((uid, _)) = message else {
            if let (Action::Hold, Some(session)) = (decision.action, session_uid) {
                let hold = PendingHold {
                    sender: decision.from.map(str::to_owned),
                    recipient: decision.to.map(str::to_owned),
                    reason: decision_reason(decision),
                };
                self.sessions.add_pending_hold(session, hold);
            }
            return;
        };
        let Some(life) = self.messages.lives.get_mut(&uid) else {
            return;
        };
        // A decision names the envelope sender; a message refused, discarded or held before qmgr
        // saw it has no other line that does.
        if let Some(from) = decision.from {
            life.row.sender.get_or_insert_with(|| from.to_owned());
        }
        // A check on the whole message names its recipient: the recipient shares its fate.
        if matches!(decision.action, Action::Reject | Action::Discard | Action::Hold) && rejects_message(decision) {
            if let Some(to) = decision.to {
                life.recipient_mut(to).touched = true;
            }
        }
        match decision.action {
            Action::Reject if rejects_message(decision) => {
                life.end_as("rejected", decision_reason(decision), time);
            }
            Action::Reject => {
                // One recipient refused at RCPT time; the message goes on for the others.
                if let Some(to) = decision.to {
                    let rcpt = life.recipient_mut(to);
                    if rcpt.row.attempts == 0 {
                        rcpt.row.status = "rejected";
                        rcpt.row.dsn = decision.enhanced.map(str::to_owned);
                        rcpt.row.status_text = Some(decision.reason.to_owned());
                        rcpt.row.last_attempt_at = time;
                        rcpt.touched = true;
                    }
                }
            }
            Action::Discard => {
                life.end_as("discarded", decision_reason(decision), time);
            }
            Action::Hold => hold_at(
                life,
                PendingHold {
                    sender: decision.from.map(str::to_owned),
                    recipient: decision.to.filter(|_| !rejects_message(decision)).map(str::to_owned),
                    reason: decision_reason(decision),
                },
            ),
            _ => {}
        }
    }
}

/// Puts a message on hold. A hold at RCPT accepts its recipient (and names the sender), which no
/// other line will name while the message stays in the hold queue.
fn hold_at(life: &mut Message, hold: PendingHold) {
    if let Some(sender) = hold.sender {
        life.row.sender.get_or_insert(sender);
    }
    if let Some(recipient) = hold.recipient {
        life.recipient_mut(&recipient).touched = true;
    }
    life.hold(Some(hold.reason));
}

/// The policy decision a line records, if any: smtpd/cleanup/milter decisions, and a before-queue
/// filter's refusal (`proxy-reject: END-OF-MESSAGE: 554 5.7.1 …`), which is a reject too.
fn refusal<'a>(kind: &EventKind<'a>) -> Option<Decision<'a>> {
    match *kind {
        EventKind::Reject(decision) => Some(decision),
        EventKind::Proxy {
            accepted: false,
            stage,
            code,
            enhanced,
            reason,
            from,
            to,
            proto,
            helo,
            ..
        } => Some(Decision {
            action: Action::Reject,
            source: ActionSource::Smtpd,
            stage,
            client: None,
            code,
            enhanced,
            reason,
            content: None,
            from,
            to,
            proto,
            helo,
        }),
        _ => None,
    }
}
