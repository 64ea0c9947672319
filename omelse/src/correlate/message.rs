//! Messages: one life of one queue id on one host.
//!
//! Postfix reuses short queue ids (they are derived from the inode and the time), so a queue id
//! names a message only for one life: from its first line to `removed`. A closed life is kept a
//! little while so that lines logged out of order in the same second still land on it; after that
//! grace a line that can only open a message (smtpd `client=`, pickup, cleanup `message-id=`, a
//! qmgr `from=` after a pause) starts a new life.
//!
//! Lives restored from the database after a restart may meet their own lines again: a log
//! imported twice, or imported after the live stream carried it. Such a replay must find each
//! queue id as the first reading did at that point, so a restored life stays out of sight of the
//! lines from before its beginning (see [`Messages::current`]) and is built again from its own
//! lines, under its own uid, when the replay reaches the line that began it.

use std::collections::HashMap;

use crate::keys::hash_parts;
use crate::parse::Timestamp;
use crate::store::{MessageRow, RecipientRow};

use super::flow::{Dest, Side};

const SECOND: i64 = Timestamp::MICROS_PER_SECOND;
/// How long after `removed` a closed life still takes a life-starting line (out-of-order syslog).
pub(super) const CLOSED_GRACE: i64 = 2 * SECOND;
/// How long a closed life is remembered (log time), for stragglers and for links that name it.
pub(super) const FORGET_CLOSED: i64 = 600 * SECOND;
/// An open life not seen for this long is forgotten: its `removed` line was lost.
pub const FORGET_OPEN: i64 = 10 * 86_400 * SECOND;

/// The final states that are not a delivery outcome: the message will never be (further)
/// delivered, for the reason kept beside the state.
pub(super) const TERMINAL_STATES: &[&str] = &["rejected", "discarded", "deleted", "abandoned", "vanished"];

/// The origin side a life rebuilt from its snapshot takes: the one its flow implies.
pub(super) fn restored_origin(row: &MessageRow) -> Option<Side> {
    row.flow.and_then(Side::origin_of_flow)
}

/// When a life rebuilt from its snapshot ended, if it did.
pub(super) fn restored_closed_at(row: &MessageRow) -> Option<Timestamp> {
    row.closed.then(|| row.removed_at.unwrap_or(row.last_seen))
}

/// The kinds of lines that open a message; each may open a new life of a reused queue id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// smtpd/qmqpd `client=`.
    Client,
    /// pickup `uid= from=`.
    Pickup,
    /// cleanup `message-id=`.
    MessageId,
    /// qmgr `from=, size=, nrcpt=`: logged again on every retry, so it opens a life only on a
    /// closed queue id after the grace.
    Queued,
    /// The queue id bounce gives a notification it generated.
    Notification,
}

/// Where a message came from, for its origin side: another message (content filter, relay,
/// re-injection) or a side remembered when that message was forgotten or before a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Upstream {
    Message(i64),
    Side(Side),
}

pub(super) struct Recipient {
    pub row: RecipientRow,
    pub dest: Dest,
    pub touched: bool,
}

pub(super) struct Message {
    /// The snapshot fields; `state` and `flow` are derived when a snapshot is taken.
    pub row: MessageRow,
    pub recipients: Vec<Recipient>,
    pub touched: bool,
    /// qmgr took it (`from=, size=, nrcpt=`).
    pub queued: bool,
    /// On hold (postsuper, cleanup/milter `hold`), until released.
    pub held: bool,
    /// qmgr `status=expired, returned to sender`.
    pub expired: bool,
    /// `rejected`, `discarded`, `deleted`, `abandoned` or `vanished`: the message will never be
    /// delivered (why: `row.state_reason`).
    pub terminal: Option<&'static str>,
    pub upstream: Option<Upstream>,
    /// Messages whose upstream is this one (to hand them its origin when it is forgotten).
    pub downstream: Vec<i64>,
    /// `orig_client=` of a re-injection (XFORWARD): the client the original came from.
    pub orig_client_ip: Option<String>,
    /// The smtpd session that received it.
    pub session_uid: Option<i64>,
    /// When the life ended (`removed`, a reject, or a newer life on the same queue id).
    pub closed_at: Option<Timestamp>,
    /// Restored from the database and met by no line since.
    pub restored: bool,
}

impl Message {
    fn new(uid: i64, host: &str, queue_id: &str, started_at: Timestamp) -> Self {
        Message {
            row: MessageRow {
                uid,
                started_at,
                host: host.to_owned(),
                queue_id: queue_id.to_owned(),
                first_seen: started_at,
                last_seen: started_at,
                origin: "unknown",
                state: "received",
                ..MessageRow::default()
            },
            recipients: Vec::new(),
            touched: false,
            queued: false,
            held: false,
            expired: false,
            terminal: None,
            upstream: None,
            downstream: Vec::new(),
            orig_client_ip: None,
            session_uid: None,
            closed_at: None,
            restored: false,
        }
    }

    /// Rebuilds an open message from its last snapshot (after a restart).
    pub fn from_row(row: MessageRow) -> Self {
        let upstream = restored_origin(&row).map(Upstream::Side);
        let queued = row.nrcpt.is_some();
        let held = row.state == "held";
        let expired = row.state == "expired";
        let terminal = TERMINAL_STATES.iter().copied().find(|&state| state == row.state);
        let closed_at = restored_closed_at(&row);
        Message {
            row,
            recipients: Vec::new(),
            touched: false,
            queued,
            held,
            expired,
            terminal,
            upstream,
            downstream: Vec::new(),
            orig_client_ip: None,
            session_uid: None,
            closed_at,
            restored: true,
        }
    }

    /// True when this life already holds what a line of kind `start` would bring: the line then
    /// belongs to a new life of the same queue id.
    fn already_has(&self, start: Start) -> bool {
        match start {
            Start::Client | Start::Pickup => self.row.client_ip.is_some() || self.row.origin == "pickup",
            Start::MessageId => self.row.message_id.is_some(),
            Start::Queued => false,
            Start::Notification => self.row.origin == "bounce",
        }
    }

    /// True when a line of kind `start` belongs to this closed life however late it comes (while
    /// the life is remembered): the `message-id=` cleanup logs of a message whose client left
    /// during DATA. Postfix 3.7 logs it after smtpd's `disconnect` (seen with the tests' private
    /// Postfix), so on a loaded server it may come later than [`CLOSED_GRACE`]; a new life of the
    /// queue id begins with `client=` or `uid=`, not with it.
    fn expects_late(&self, start: Start) -> bool {
        start == Start::MessageId && self.terminal == Some("abandoned") && self.row.message_id.is_none()
    }

    pub fn close(&mut self, time: Timestamp) {
        self.row.closed = true;
        self.closed_at.get_or_insert(time);
    }

    /// Decides the message's fate for good (`rejected`, `discarded`, …) and why, and ends its
    /// life: every recipient not delivered yet shares that fate. The first fate stays (smtpd and
    /// cleanup both log a size limit; a rejected message's session ends without DATA).
    pub fn end_as(&mut self, fate: &'static str, reason: String, time: Timestamp) {
        if self.terminal.is_none() {
            self.terminal = Some(fate);
            self.row.state_reason = Some(reason);
            self.touch_recipients();
        }
        self.close(time);
    }

    /// A life that ends without `removed` while it was still in the queue (a new life of its
    /// queue id began, or no line came for [`FORGET_OPEN`]): its queue file went some other way.
    /// A life whose recipients were all dealt with keeps the state they give it.
    pub fn vanish(&mut self, reason: &str, time: Timestamp) {
        if self.terminal.is_none() && matches!(self.state(), "received" | "queued" | "deferred" | "held") {
            self.end_as("vanished", reason.to_owned(), time);
        } else {
            self.close(time);
        }
    }

    /// Puts the message on hold (`Some(reason)`) or releases it (`None`).
    pub fn hold(&mut self, reason: Option<String>) {
        self.held = reason.is_some();
        if self.terminal.is_none() {
            self.row.state_reason = reason;
        }
        self.touch_recipients();
    }

    /// The status a recipient's snapshot shows: its own, unless the message's fate (a final state
    /// or hold) decides for a recipient not delivered yet, so that a recipient read alone says
    /// what happens to its mail.
    pub fn shown_status(&self, status: &'static str) -> &'static str {
        let fate = match self.terminal {
            Some(fate) => fate,
            None if self.held => "held",
            None => return status,
        };
        match status {
            "queued" | "deferred" => fate,
            _ => status,
        }
    }

    /// The recipient with this address, created (no attempt yet) when first named.
    pub fn recipient_mut(&mut self, address: &str) -> &mut Recipient {
        let index = match self.recipients.iter().position(|r| r.row.address == address) {
            Some(i) => i,
            None => {
                self.recipients.push(Recipient {
                    row: RecipientRow {
                        message_uid: self.row.uid,
                        message_started_at: self.row.started_at,
                        address: address.to_owned(),
                        status: "queued",
                        ..RecipientRow::default()
                    },
                    dest: Dest::Unknown,
                    touched: false,
                });
                self.recipients.len() - 1
            }
        };
        &mut self.recipients[index]
    }

    pub fn touch_recipients(&mut self) {
        for r in &mut self.recipients {
            r.touched = true;
        }
    }

    /// The message's state from its queue events and its recipients' latest statuses.
    ///
    /// Terminal decisions (rejected, discarded, deleted) and hold win. Otherwise: a recipient
    /// still deferred (or not tried yet while the message is in the queue) → `deferred` /
    /// `queued`; all delivered → `sent`; some delivered, some bounced or expired → `partial`;
    /// none delivered → `expired` or `bounced`. Recipients refused at RCPT time were never queued
    /// and do not count.
    pub fn state(&self) -> &'static str {
        if let Some(terminal) = self.terminal {
            return terminal;
        }
        if self.held {
            return "held";
        }
        let (mut sent, mut bounced, mut expired, mut deferred, mut waiting) = (0u32, 0u32, 0u32, 0u32, 0u32);
        for r in &self.recipients {
            match r.row.status {
                "sent" | "deliverable" => sent += 1,
                "bounced" | "undeliverable" => bounced += 1,
                "expired" => expired += 1,
                "deferred" => deferred += 1,
                "queued" => waiting += 1,
                _ => {}
            }
        }
        let done = sent + bounced + expired;
        let untried = !self.row.closed && self.row.nrcpt.is_some_and(|n| n > 0 && (done + deferred) < n as u32);
        if deferred > 0 {
            "deferred"
        } else if untried || (waiting > 0 && !self.row.closed) {
            "queued"
        } else if sent > 0 && bounced + expired > 0 {
            "partial"
        } else if sent > 0 {
            "sent"
        } else if expired > 0 || self.expired {
            "expired"
        } else if bounced > 0 {
            "bounced"
        } else if self.queued {
            "queued"
        } else {
            "received"
        }
    }
}

/// Where the latest life of one queue id lives.
#[derive(Debug, Clone, Copy)]
pub(super) struct QueueSlot {
    pub uid: i64,
    pub started_at: Timestamp,
}

/// All lives the correlator remembers, by uid, and the latest life of each queue id.
#[derive(Default)]
pub(super) struct Messages {
    pub lives: HashMap<i64, Message>,
    /// By [`queue_key`].
    pub latest: HashMap<i64, QueueSlot>,
    /// Lives changed since the last flush, in the order they were first changed.
    pub touched: Vec<i64>,
    /// Restored lives that a replay of older lines displaced as the latest of their queue id, by
    /// queue key: each is the latest again once a line from after its beginning comes.
    set_aside: HashMap<i64, QueueSlot>,
}

/// The key of a queue id on a host.
pub(super) fn queue_key(host: &str, queue_id: &str) -> i64 {
    hash_parts(&[b"queue", host.as_bytes(), queue_id.as_bytes()])
}

impl Messages {
    /// The life a line about `queue_id` at `time` belongs to. `start` says whether the line can
    /// open a message; without it a line still opens one when `create` is set and the queue id is
    /// unknown (its first lines were before the log began).
    pub fn resolve(
        &mut self,
        host: &str,
        queue_id: &str,
        time: Timestamp,
        start: Option<Start>,
        create: bool,
    ) -> Option<i64> {
        let key = queue_key(host, queue_id);
        let mut floor = None;
        if let Some(slot) = self.current(key, time).copied() {
            if self.set_aside.get(&key).is_some_and(|aside| aside.uid == slot.uid) {
                // The stream is past the set-aside life's beginning: it is the latest again.
                self.set_aside.remove(&key);
                self.latest.insert(key, slot);
            }
            floor = Some(slot.started_at);
            if let Some(life) = self.lives.get_mut(&slot.uid) {
                life.restored = false;
                let new_life = match (start, life.closed_at) {
                    (None, _) => false,
                    (Some(start), Some(closed_at)) => {
                        (time.0 - closed_at.0 > CLOSED_GRACE && !life.expects_late(start))
                            || (start != Start::Queued && life.already_has(start))
                    }
                    (Some(start), None) => start != Start::Queued && life.already_has(start),
                };
                if !new_life {
                    return Some(slot.uid);
                }
                // The previous life never logged `removed`: it ends here.
                if life.closed_at.is_none() {
                    life.vanish("its queue id began a new life without a `removed` line", time);
                    life.row.removed_at = None;
                    self.touch(slot.uid);
                }
            }
        }
        if start.is_none() && !create {
            return None;
        }
        // Two lives of one queue id in the same microsecond (second-resolution logs) would share
        // a uid: the later one starts a microsecond later.
        let started_at = match floor {
            Some(f) if time <= f => Timestamp(f.0 + 1),
            _ => time,
        };
        let uid = hash_parts(&[host.as_bytes(), queue_id.as_bytes(), &started_at.0.to_le_bytes()]);
        match self.latest.get(&key) {
            // A replay reached the line that began a restored life: it is built again from there.
            Some(slot) if slot.uid == uid => {}
            // A restored life from after this line steps aside while the replay goes on.
            Some(&slot) if self.lives.get(&slot.uid).is_some_and(|life| life.restored) => {
                self.set_aside.insert(key, slot);
            }
            _ => {}
        }
        if self.set_aside.get(&key).is_some_and(|aside| aside.uid == uid) {
            self.set_aside.remove(&key);
        }
        self.lives.insert(uid, Message::new(uid, host, queue_id, started_at));
        self.latest.insert(key, QueueSlot { uid, started_at });
        Some(uid)
    }

    /// The life of a queue key that a line at `time` belongs with: the latest, unless it is a
    /// restored life no line has met yet and `time` is not after its beginning; then the line
    /// comes from a replay of older lines, which sees what the first reading saw at that point
    /// (the life it made, or none yet). A set-aside restored life is back once `time` is past
    /// its beginning.
    fn current(&self, key: i64, time: Timestamp) -> Option<&QueueSlot> {
        if let Some(aside) = self.set_aside.get(&key).filter(|aside| time > aside.started_at) {
            return Some(aside);
        }
        let slot = self.latest.get(&key)?;
        let unmet = self
            .lives
            .get(&slot.uid)
            .is_some_and(|life| life.restored && time <= slot.started_at);
        (!unmet).then_some(slot)
    }

    /// The life of a queue key as a line at `time` sees it (see [`Messages::current`]).
    pub fn life_at(&self, key: i64, time: Timestamp) -> Option<&Message> {
        self.current(key, time).and_then(|slot| self.lives.get(&slot.uid))
    }

    /// The latest life of a queue id, if remembered.
    pub fn latest_life(&self, key: i64) -> Option<&Message> {
        self.latest.get(&key).and_then(|slot| self.lives.get(&slot.uid))
    }

    /// Forgets a life, and where it was the latest of its queue id.
    pub fn forget(&mut self, uid: i64) {
        let Some(life) = self.lives.remove(&uid) else {
            return;
        };
        let key = queue_key(&life.row.host, &life.row.queue_id);
        if self.latest.get(&key).is_some_and(|slot| slot.uid == uid) {
            self.latest.remove(&key);
        }
        if self.set_aside.get(&key).is_some_and(|slot| slot.uid == uid) {
            self.set_aside.remove(&key);
        }
    }

    pub fn touch(&mut self, uid: i64) {
        if let Some(life) = self.lives.get_mut(&uid) {
            if !life.touched {
                life.touched = true;
                self.touched.push(uid);
            }
        }
    }

    /// Records that one more line was applied to a life.
    pub fn count_line(&mut self, uid: i64, time: Timestamp) {
        if let Some(life) = self.lives.get_mut(&uid) {
            life.row.version += 1;
            if time > life.row.last_seen {
                life.row.last_seen = time;
            }
            if time < life.row.first_seen {
                life.row.first_seen = time;
            }
        }
        self.touch(uid);
    }

    /// Puts a restored life back, as the latest of its queue id unless a later one is there.
    pub fn restore(&mut self, life: Message) {
        let key = queue_key(&life.row.host, &life.row.queue_id);
        let (uid, started_at) = (life.row.uid, life.row.started_at);
        if self.latest.get(&key).is_none_or(|slot| slot.started_at < started_at) {
            self.latest.insert(key, QueueSlot { uid, started_at });
        }
        self.lives.insert(uid, life);
    }

    /// True when a replay set a restored life of this queue key aside.
    pub fn is_set_aside(&self, key: i64) -> bool {
        self.set_aside.contains_key(&key)
    }

    pub fn open_count(&self) -> usize {
        self.lives.values().filter(|m| !m.row.closed).count()
    }
}
