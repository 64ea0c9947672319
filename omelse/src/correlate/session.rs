//! smtpd sessions: from `connect from` to `disconnect from`, keyed by host, program and pid (one
//! smtpd process serves one client at a time, and many in turn).
//!
//! A session restored from the database stays out of sight of the lines from before its
//! `connect` (a replay of older lines), as a restored message does (see `message.rs`).

use std::collections::HashMap;

use crate::keys::hash_parts;
use crate::parse::event::{Action, Direction};
use crate::parse::{EventKind, ParsedLine, Peer, Timestamp};
use crate::store::{Batch, SessionRow};

const SECOND: i64 = Timestamp::MICROS_PER_SECOND;
/// An open session not seen for this long lost its `disconnect` line.
const FORGET_OPEN: i64 = 86_400 * SECOND;

pub(super) struct Session {
    pub row: SessionRow,
    pub touched: bool,
    pub closed: bool,
    /// The messages (queue ids) this session opened.
    pub messages: Vec<i64>,
    /// Restored from the database and met by no line since.
    pub restored: bool,
    /// Recipients put on hold at RCPT before the message had a queue id (`NOQUEUE: hold: RCPT`):
    /// the next `QID: client=` line of the session is their message, and no later line names them.
    pub pending_holds: Vec<PendingHold>,
}

/// A `NOQUEUE: hold: RCPT` decision, waiting for the queue id Postfix assigns right after it.
pub(super) struct PendingHold {
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub reason: String,
}

/// One smtpd process: its open session, and when its last session began (so two sessions that
/// begin in the same second still get distinct uids).
#[derive(Debug, Clone, Copy)]
struct PidSlot {
    open: Option<i64>,
    last_connected_at: Timestamp,
    last_seen: Timestamp,
}

#[derive(Default)]
pub(super) struct Sessions {
    live: HashMap<i64, Session>,
    pids: HashMap<i64, PidSlot>,
    touched: Vec<i64>,
    /// Processes whose restored open session a replay of older lines displaced, by pid key: the
    /// session is theirs again once a line from after its `connect` comes.
    set_aside: HashMap<i64, PidSlot>,
}

/// True when the `disconnect` counters (`ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5`) show a
/// DATA or BDAT command that succeeded at least once. No counters (old Postfix): assume it did.
fn data_accepted(end: &str) -> bool {
    if !end.contains("commands=") {
        return true;
    }
    end.split([' ', ';']).any(|word| {
        let value = word.strip_prefix("data=").or_else(|| word.strip_prefix("bdat="));
        value.is_some_and(|v| v.split('/').next().is_some_and(|ok| ok != "0"))
    })
}

/// True for the daemons whose lines make sessions.
pub(super) fn is_session_daemon(daemon: &str) -> bool {
    daemon == "smtpd"
}

fn pid_key(host: &str, program: &str, pid: u32) -> i64 {
    hash_parts(&[b"pid", host.as_bytes(), program.as_bytes(), &pid.to_le_bytes()])
}

fn set_client(row: &mut SessionRow, client: &Peer<'_>) {
    if !client.ip.is_empty() {
        row.client_name = Some(client.name.to_owned());
        row.client_ip = Some(client.ip.to_owned());
        row.client_port = client.port.map(i32::from);
    }
}

impl Sessions {
    /// Applies one smtpd line; returns the session it belongs to.
    pub fn apply(&mut self, line: &ParsedLine<'_>) -> Option<i64> {
        let pid = line.line.pid?;
        let (host, program, time) = (line.line.host, line.program.name, line.line.time);
        let key = pid_key(host, program, pid);
        let kind = &line.event.kind;
        let opens = matches!(
            kind,
            EventKind::Connect { .. }
                | EventKind::Disconnect { .. }
                | EventKind::LostConnection { .. }
                | EventKind::Timeout { .. }
                | EventKind::TooManyErrors { .. }
                | EventKind::Pipelining { .. }
                | EventKind::Client { .. }
                | EventKind::Reject(_)
                | EventKind::Proxy { .. }
                | EventKind::Tls {
                    direction: Direction::Incoming,
                    ..
                }
                | EventKind::TlsError { .. }
                | EventKind::SaslFailed { .. }
        );
        self.take_back(key, time);
        let uid = match kind {
            EventKind::Connect { .. } => {
                if self.unmet(key, time).is_none() {
                    self.close_open(key, None);
                }
                Some(self.open(key, host, program, pid, time))
            }
            _ => match self.pids.get(&key).and_then(|slot| slot.open) {
                Some(uid) if self.unmet(key, time).is_none() => Some(uid),
                // The session began before the log did.
                _ if opens => Some(self.open(key, host, program, pid, time)),
                _ => None,
            },
        }?;
        if let Some(slot) = self.pids.get_mut(&key) {
            slot.last_seen = slot.last_seen.max(time);
        }
        let session = self.live.get_mut(&uid)?;
        session.restored = false;
        let row = &mut session.row;
        row.version += 1;
        if time > row.last_seen {
            row.last_seen = time;
        }
        let mut close = false;
        match kind {
            EventKind::Connect { client } | EventKind::Pipelining { client, .. } => set_client(row, client),
            EventKind::Disconnect { client, counters, .. } => {
                if row.client_ip.is_none() {
                    set_client(row, client);
                }
                row.end = Some(match row.end.take() {
                    Some(abnormal) if !counters.is_empty() => format!("{abnormal}; {counters}"),
                    Some(abnormal) => abnormal,
                    None => counters.to_string(),
                });
                row.disconnected_at = Some(time);
                close = true;
            }
            EventKind::LostConnection { after, .. } => {
                row.end = Some(format!("lost connection after {after}"));
                row.disconnected_at = Some(time);
            }
            EventKind::Timeout { after, .. } => {
                row.end = Some(format!("timeout after {after}"));
                row.disconnected_at = Some(time);
            }
            EventKind::TooManyErrors { after, .. } => {
                row.end = Some(format!("too many errors after {after}"));
            }
            EventKind::Client {
                client, sasl_username, ..
            } => {
                if row.client_ip.is_none() {
                    set_client(row, client);
                }
                row.messages += 1;
                if let Some(user) = sasl_username {
                    row.sasl_username = Some((*user).to_owned());
                }
            }
            EventKind::Reject(decision) if decision.action == Action::Reject => row.rejects += 1,
            EventKind::Tls { protocol, cipher, .. } => {
                row.tls_protocol = Some((*protocol).to_owned());
                row.tls_cipher = Some((*cipher).to_owned());
            }
            EventKind::SaslFailed { .. } => row.sasl_failures += 1,
            _ => {}
        }
        self.touch(uid);
        if close {
            self.close_open(key, Some(time));
        }
        Some(uid)
    }

    fn open(&mut self, key: i64, host: &str, program: &str, pid: u32, time: Timestamp) -> i64 {
        let unmet = self.unmet(key, time);
        let connected_at = match self.pids.get(&key) {
            Some(slot) if unmet.is_none() && time <= slot.last_connected_at => Timestamp(slot.last_connected_at.0 + 1),
            _ => time,
        };
        let uid = hash_parts(&[
            host.as_bytes(),
            program.as_bytes(),
            &pid.to_le_bytes(),
            &connected_at.0.to_le_bytes(),
        ]);
        match unmet {
            // A replay reached the `connect` of a restored session: it is built again from there.
            Some(restored) if restored == uid => {}
            // A restored session from after this line steps aside while the replay goes on.
            Some(_) => {
                let slot = self.pids[&key];
                self.set_aside.insert(key, slot);
            }
            None => {}
        }
        if self.set_aside.get(&key).is_some_and(|aside| aside.open == Some(uid)) {
            self.set_aside.remove(&key);
        }
        self.live.insert(
            uid,
            Session {
                row: SessionRow {
                    uid,
                    host: host.to_owned(),
                    program: program.to_owned(),
                    pid: pid as i32,
                    connected_at,
                    last_seen: time,
                    ..SessionRow::default()
                },
                touched: false,
                closed: false,
                messages: Vec::new(),
                pending_holds: Vec::new(),
                restored: false,
            },
        );
        self.pids.insert(
            key,
            PidSlot {
                open: Some(uid),
                last_connected_at: connected_at,
                last_seen: time,
            },
        );
        uid
    }

    /// The restored open session of a process that no line has met yet, when a line at `time`
    /// is not after its `connect`: that line comes from a replay of older lines, which must not
    /// see the session (nor take its `connect` as the process's last).
    fn unmet(&self, key: i64, time: Timestamp) -> Option<i64> {
        let uid = self.pids.get(&key)?.open?;
        let session = self.live.get(&uid)?;
        (session.restored && time <= session.row.connected_at).then_some(uid)
    }

    /// Gives a process back the restored session a replay set aside, once a line from after that
    /// session's `connect` comes; the replay's own session ends there, as a `connect` ends it.
    fn take_back(&mut self, key: i64, time: Timestamp) {
        let Some(&aside) = self.set_aside.get(&key) else {
            return;
        };
        if time <= aside.last_connected_at {
            return;
        }
        self.set_aside.remove(&key);
        self.close_open(key, None);
        self.pids.insert(key, aside);
    }

    /// Ends the open session of a process: at its `disconnect`, or (time `None`) because a new
    /// `connect` shows the process moved on without logging one.
    fn close_open(&mut self, key: i64, time: Option<Timestamp>) {
        let Some(slot) = self.pids.get_mut(&key) else {
            return;
        };
        let Some(uid) = slot.open.take() else { return };
        if let Some(t) = time {
            slot.last_seen = t;
        }
        if let Some(session) = self.live.get_mut(&uid) {
            session.closed = true;
            if time.is_none() {
                let row = &mut session.row;
                row.disconnected_at.get_or_insert(row.last_seen);
                row.end.get_or_insert_with(|| "no disconnect logged".to_owned());
            }
        }
        self.touch(uid);
    }

    /// True while the session is held (open, or closed and not flushed yet).
    pub fn holds(&self, session: i64) -> bool {
        self.live.contains_key(&session)
    }

    /// The client of a session, as its `connect` line named it (name, address).
    pub fn client(&self, session: i64) -> Option<(&str, &str)> {
        let row = &self.live.get(&session)?.row;
        Some((row.client_name.as_deref().unwrap_or(""), row.client_ip.as_deref()?))
    }

    /// How a session ended (`lost connection after DATA (0 bytes); ehlo=1 … commands=3/4`).
    pub fn end(&self, session: i64) -> Option<&str> {
        self.live.get(&session)?.row.end.as_deref()
    }

    /// Notes that a session opened a message (its `client=` line).
    pub fn add_message(&mut self, session: i64, message: i64) {
        if let Some(s) = self.live.get_mut(&session) {
            if !s.messages.contains(&message) {
                s.messages.push(message);
            }
        }
    }

    /// Keeps a recipient held at RCPT before its message had a queue id, for that message.
    pub fn add_pending_hold(&mut self, session: i64, hold: PendingHold) {
        if let Some(s) = self.live.get_mut(&session) {
            s.pending_holds.push(hold);
        }
    }

    /// The holds waiting for the message the session just opened (its `client=` line).
    pub fn take_pending_holds(&mut self, session: i64) -> Vec<PendingHold> {
        self.live
            .get_mut(&session)
            .map(|s| std::mem::take(&mut s.pending_holds))
            .unwrap_or_default()
    }

    /// The messages of a session that just ended without any successful DATA (or BDAT): none of
    /// them reached the queue, and no `removed` will ever be logged for them.
    pub fn abandoned_messages(&self, session: i64) -> &[i64] {
        match self.live.get(&session) {
            Some(s) if s.closed && !s.messages.is_empty() && !data_accepted(s.row.end.as_deref().unwrap_or("")) => {
                &s.messages
            }
            _ => &[],
        }
    }

    fn touch(&mut self, uid: i64) {
        if let Some(s) = self.live.get_mut(&uid) {
            if !s.touched {
                s.touched = true;
                self.touched.push(uid);
            }
        }
    }

    /// Snapshots of the sessions changed since the last flush; closed ones are then forgotten.
    pub fn flush(&mut self, batch: &mut Batch) {
        for uid in std::mem::take(&mut self.touched) {
            let Some(session) = self.live.get_mut(&uid) else {
                continue;
            };
            session.touched = false;
            batch.sessions.push(session.row.clone());
            if session.closed {
                self.live.remove(&uid);
            }
        }
    }

    /// Puts back a session that was open when the state was saved.
    pub fn restore(&mut self, row: SessionRow) {
        let key = pid_key(&row.host, &row.program, row.pid as u32);
        let closed = row.disconnected_at.is_some()
            && row
                .end
                .as_deref()
                .is_some_and(|e| !e.starts_with("lost") && !e.starts_with("timeout"));
        if closed {
            return;
        }
        if self
            .pids
            .get(&key)
            .is_some_and(|slot| slot.last_connected_at >= row.connected_at)
        {
            return;
        }
        self.pids.insert(
            key,
            PidSlot {
                open: Some(row.uid),
                last_connected_at: row.connected_at,
                last_seen: row.last_seen,
            },
        );
        self.live.insert(
            row.uid,
            Session {
                row,
                touched: false,
                closed: false,
                messages: Vec::new(),
                pending_holds: Vec::new(),
                restored: true,
            },
        );
    }

    /// Forgets processes and sessions not heard of for a day (log time), a session changed since
    /// the last flush after its last snapshot: when it is forgotten must not depend on where a
    /// batch ended.
    pub fn sweep(&mut self, now: Timestamp, batch: &mut Batch) {
        let limit = now.0 - FORGET_OPEN;
        let live = &mut self.live;
        let mut forget = |slot: &PidSlot| {
            if slot.last_seen.0 >= limit {
                return false;
            }
            if let Some(session) = slot.open.and_then(|uid| live.remove(&uid)) {
                if session.touched {
                    batch.sessions.push(session.row);
                }
            }
            true
        };
        self.pids.retain(|_, slot| !forget(slot));
        self.set_aside.retain(|_, slot| !forget(slot));
    }

    pub fn open_count(&self) -> usize {
        self.live.values().filter(|s| !s.closed).count()
    }

    /// After a commit, with more than `max` processes remembered: forgets the least recently
    /// seen down to 7/8 of it, the processes whose session ended first (what is forgotten then is
    /// only when their last session began, which matters within its second), then open sessions
    /// (their last snapshots are in the database; a later line of theirs begins a new one).
    /// Returns how many open sessions were forgotten.
    pub fn evict(&mut self, max: usize) -> usize {
        if self.pids.len() <= max {
            return 0;
        }
        let keep = max - max / 8;
        let mut slots: Vec<(bool, Timestamp, i64)> = self
            .pids
            .iter()
            .filter(|(key, slot)| {
                !self.set_aside.contains_key(key)
                    && slot
                        .open
                        .and_then(|uid| self.live.get(&uid))
                        .is_none_or(|session| !session.touched)
            })
            .map(|(key, slot)| (slot.open.is_some(), slot.last_seen, *key))
            .collect();
        slots.sort_unstable();
        let mut open = 0;
        for (_, _, key) in slots.into_iter().take(self.pids.len() - keep) {
            if let Some(uid) = self.pids.remove(&key).and_then(|slot| slot.open) {
                self.live.remove(&uid);
                open += 1;
            }
        }
        open
    }

    /// Processes remembered (with an open session or not).
    pub fn processes(&self) -> usize {
        self.pids.len()
    }
}
