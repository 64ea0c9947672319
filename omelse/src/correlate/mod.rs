//! Events to per-message state: smtpd sessions by pid, messages by queue id (with reuse of short
//! ids), and the links between hops. Owns the open-message state; emits table rows.
//!
//! - `session`: smtpd sessions (connect … disconnect), by host, program and pid.
//! - `message`: lives of queue ids, their recipients and derived state.
//! - `apply`: what each kind of line does to a message (and the reject rows).
//! - `links`: hops between queue ids (content filter, relay, re-injection, notification).
//! - `flow`: inbound / outbound / internal / relayed, from origin and destination.
//! - `net`: internal networks.
//! - `memory`: the bound on lives held in memory (eviction to the database, and back), and idle
//!   lives kept compact.
//! - `compact`: the encoding of a compact life's last snapshot.
//!
//! State lives in plain maps keyed by small hashes or uids; every row the correlator emits is a
//! function of the lines it was given, in order, so a replay gives the same rows.

mod apply;
mod compact;
mod flow;
mod links;
mod memory;
mod message;
mod net;
mod session;

use std::collections::{HashMap, HashSet};

pub use flow::{flow_name, Side};
pub use memory::{LifeKey, COMPACT_AFTER};
pub use net::{IpNet, IpNetError};

use crate::parse::{ParsedLine, Timestamp};
/// What the store loads after a restart: the last snapshots of the messages still open, of their
/// recipients, and of the sessions still open ([`Correlator::restore`] takes it).
pub use crate::store::OpenState;
/// The role a server plays in the fleet (the servers table's `role`).
pub use crate::store::ServerRole;

use crate::store::{Batch, EventRow, Fleet, MessageRow, RecipientRow};

pub use message::FORGET_OPEN;
use message::{Message, Messages, Upstream, FORGET_CLOSED};
use session::Sessions;

/// What the correlator knows about the fleet.
#[derive(Debug, Clone)]
pub struct CorrelatorConfig {
    /// Roles of the ELSE servers by host name (as their lines name them).
    pub roles: HashMap<String, ServerRole>,
    /// The role of hosts not in `roles`.
    pub default_role: ServerRole,
    /// Addresses of ELSE servers (IP as logged → host name), to recognise them as clients and
    /// relays.
    pub server_addresses: HashMap<String, String>,
    /// Networks whose clients and relays are inside the organisation.
    pub internal_networks: Vec<IpNet>,
    /// The most lives of messages held in memory (see `memory.rs`); `None`: no bound (the
    /// caller cannot bring evicted lives back from a database).
    pub max_open: Option<usize>,
    /// Log time without a line after which a life is kept compact (see `memory.rs`); `None`:
    /// never (the tests' reference runs).
    pub compact_after: Option<i64>,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        CorrelatorConfig {
            roles: HashMap::new(),
            default_role: ServerRole::Unknown,
            server_addresses: HashMap::new(),
            internal_networks: IpNet::private_defaults(),
            max_open: None,
            compact_after: Some(COMPACT_AFTER),
        }
    }
}

impl CorrelatorConfig {
    /// Adds the fleet as the database knows it: what the configuration itself names wins.
    pub fn add_fleet(&mut self, fleet: &Fleet) {
        for (name, role) in &fleet.roles {
            self.roles.entry(name.clone()).or_insert(*role);
        }
        for (address, name) in &fleet.addresses {
            self.server_addresses
                .entry(address.clone())
                .or_insert_with(|| name.clone());
        }
    }

    pub fn role(&self, host: &str) -> ServerRole {
        self.roles.get(host).copied().unwrap_or(self.default_role)
    }

    /// The configured server a peer is, by address or by name (see [`matches_host`]).
    pub fn known_server(&self, name: Option<&str>, ip: Option<&str>) -> Option<&str> {
        if let Some(host) = ip.and_then(|ip| self.server_addresses.get(ip)) {
            return Some(host);
        }
        let name = name?;
        self.roles
            .keys()
            .find(|host| matches_host(name, host))
            .map(String::as_str)
    }
}

/// A peer name names a host when they are equal (ignoring case), or when the host is a short name
/// (no dot, as syslog usually prints it) and is the peer's first label (`mail2.example.com` is
/// `mail2`).
pub fn matches_host(name: &str, host: &str) -> bool {
    if name.is_empty() || name == "unknown" {
        return false;
    }
    name.eq_ignore_ascii_case(host)
        || (!host.contains('.')
            && name
                .split('.')
                .next()
                .is_some_and(|first| first.eq_ignore_ascii_case(host)))
}

/// Log time between two sweeps of forgotten state (at each multiple of it).
const SWEEP_EVERY: i64 = 60 * Timestamp::MICROS_PER_SECOND;

/// The correlator: one per pipeline, single-threaded.
#[derive(Default)]
pub struct Correlator {
    config: CorrelatorConfig,
    messages: Messages,
    sessions: Sessions,
    links: links::Links,
    memory: memory::Memory,
    /// Hosts whose lines arrived: ELSE servers even when not configured.
    hosts: HashSet<String>,
    /// The latest log time of the lines seen (not of what was restored): the correlator's clock
    /// for forgetting.
    now: Timestamp,
}

impl Correlator {
    pub fn new() -> Self {
        Correlator::default()
    }

    pub fn with_config(config: CorrelatorConfig) -> Self {
        Correlator {
            config,
            ..Correlator::default()
        }
    }

    pub fn config(&self) -> &CorrelatorConfig {
        &self.config
    }

    /// Replaces what the correlator knows about the fleet (an administrator changed a role);
    /// messages already open keep the flow they were given.
    pub fn set_config(&mut self, config: CorrelatorConfig) {
        self.config = config;
    }

    /// Takes one parsed line: records its event row and updates state.
    pub fn ingest(&mut self, line: &ParsedLine<'_>, line_key: i64, batch: &mut Batch) {
        let time = line.line.time;
        if time > self.now {
            // Forgetting follows log time alone, on a fixed grid: never where a batch ended nor
            // what a restart restored, so that a line finds the same lives whatever the path.
            let due = time.0.div_euclid(SWEEP_EVERY) != self.now.0.div_euclid(SWEEP_EVERY);
            self.now = time;
            if due {
                self.sweep(batch);
            }
        }
        // After the sweep, which may have made compact a life this line names.
        self.thaw_named(line);
        if !self.hosts.contains(line.line.host) {
            self.hosts.insert(line.line.host.to_owned());
        }
        let session_uid = if session::is_session_daemon(line.program.daemon) {
            self.sessions.apply(line)
        } else {
            None
        };
        let (message_uid, queue_id) = self.apply_line(line, line_key, session_uid, batch);
        if let (Some(session), crate::parse::EventKind::Disconnect { .. }) = (session_uid, line.event.kind) {
            self.close_abandoned(session, line.line.time);
        }
        batch.events.push(EventRow {
            time,
            line_key,
            host: line.line.host.to_owned(),
            program: line.program.name.to_owned(),
            pid: line.line.pid.map(|p| p as i32),
            queue_id: queue_id.map(str::to_owned),
            kind: line.event.kind.name(),
            message_uid,
            session_uid,
            raw: line.line.message.to_owned(),
        });
    }

    /// Appends snapshots of every message, recipient and session touched since the last flush.
    pub fn flush(&mut self, batch: &mut Batch) {
        let touched = std::mem::take(&mut self.messages.touched);
        for uid in touched {
            self.snapshot(uid, batch);
        }
        self.sessions.flush(batch);
    }

    /// Appends the snapshot of a touched life and of its touched recipients, and marks them clean.
    fn snapshot(&mut self, uid: i64, batch: &mut Batch) {
        let Some(life) = self.messages.lives.get(&uid).filter(|life| life.touched) else {
            return;
        };
        let origin = self.origin_side(life, 0);
        let (row, recipients) = self.snapshot_rows(life, origin, false);
        batch.messages.push(row);
        batch.recipients.extend(recipients);
        if let Some(life) = self.messages.lives.get_mut(&uid) {
            life.touched = false;
            for rcpt in &mut life.recipients {
                rcpt.touched = false;
            }
        }
    }

    /// A life's snapshot rows: the message, with the state and flow derived now, and its recipients
    /// (only those touched since the last flush unless `all`).
    fn snapshot_rows(&self, life: &Message, origin: Option<Side>, all: bool) -> (MessageRow, Vec<RecipientRow>) {
        let mut row = life.row.clone();
        row.state = life.state();
        row.flow = self.message_flow(origin, life);
        let recipients = life
            .recipients
            .iter()
            .filter(|r| all || r.touched)
            .map(|rcpt| {
                let mut row = rcpt.row.clone();
                row.status = life.shown_status(row.status);
                row.flow = self.recipient_flow(origin, life, &rcpt.row.address);
                row
            })
            .collect();
        (row, recipients)
    }

    /// Puts back the state saved before a restart (see [`OpenState`]).
    pub fn restore(&mut self, state: OpenState) {
        let mut recipients: HashMap<i64, Vec<RecipientRow>> = HashMap::new();
        for row in state.recipients {
            recipients.entry(row.message_uid).or_default().push(row);
        }
        for row in state.messages {
            if !self.hosts.contains(&row.host) {
                self.hosts.insert(row.host.clone());
            }
            let rcpts = recipients.remove(&row.uid).unwrap_or_default();
            self.restore_life(row, rcpts);
        }
        for row in state.sessions {
            self.sessions.restore(row);
        }
    }

    /// Puts a recipient back into its restored life, from its last snapshot.
    fn restore_recipient(&mut self, mut row: crate::store::RecipientRow) {
        let Some(life) = self.messages.lives.get_mut(&row.message_uid) else {
            return;
        };
        let dest = match row.flow.and_then(Side::destination_of_flow) {
            Some(side) => flow::Dest::Side(side),
            None => flow::Dest::Unknown,
        };
        life.recipients.retain(|r| r.row.address != row.address);
        // A held message's recipients were shown `held`: their own status comes back.
        if row.status == "held" {
            row.status = if row.attempts > 0 { "deferred" } else { "queued" };
        }
        life.recipients.push(message::Recipient {
            row,
            dest,
            touched: false,
        });
    }

    /// Ends the messages of a session that never passed DATA: smtpd had given them a queue id at
    /// the first accepted RCPT, but no message was queued. Refused recipients make it `rejected`.
    fn close_abandoned(&mut self, session: i64, time: Timestamp) {
        for &uid in self.sessions.abandoned_messages(session) {
            let Some(life) = self.messages.lives.get_mut(&uid) else {
                continue;
            };
            if life.closed_at.is_some() || life.queued {
                continue;
            }
            let refused = life.recipients.iter().find(|r| r.row.status == "rejected");
            match refused {
                Some(rcpt) => {
                    let reason = rcpt.row.status_text.clone().unwrap_or_default();
                    life.end_as("rejected", reason, time);
                }
                None => {
                    let end = self.sessions.end(session).unwrap_or("no DATA");
                    let reason = format!("the client left before the message was queued ({end})");
                    life.end_as("abandoned", reason, time);
                }
            }
            self.messages.touch(uid);
        }
    }

    /// Messages whose life is not over (no `removed` yet).
    pub fn open_messages(&self) -> usize {
        self.messages.open_count() + self.open_compact_lives()
    }

    /// smtpd sessions not disconnected yet.
    pub fn open_sessions(&self) -> usize {
        self.sessions.open_count()
    }

    /// A peer that is an ELSE server: configured by address or name (see [`matches_host`]), or a
    /// host whose lines arrived, by its exact name (a short syslog name like `mx` must not claim
    /// `mx.google.com`). Returns its host name.
    pub(crate) fn known_server<'s>(&'s self, name: Option<&str>, ip: Option<&str>) -> Option<&'s str> {
        if let Some(host) = self.config.known_server(name, ip) {
            return Some(host);
        }
        let name = name?;
        self.hosts.get(name).map(String::as_str)
    }

    /// Before the life `uid` is forgotten: the recipients its upstream message handed to it
    /// (`Dest::Via`) take the destination they have in it, so that their flow stays what it was
    /// and does not depend on when the upstream message is snapshot next (at once, or after this
    /// sweep, which a batch boundary decides).
    pub(super) fn settle_handed_over(&mut self, uid: i64) {
        let Some(life) = self.messages.lives.get(&uid) else {
            return;
        };
        let Some(Upstream::Message(up)) = life.upstream else {
            return;
        };
        let via = flow::Dest::Via(message::queue_key(&life.row.host, &life.row.queue_id));
        let Some(upstream) = self.messages.lives.get(&up) else {
            return;
        };
        let settled: Vec<(usize, Side)> = upstream
            .recipients
            .iter()
            .enumerate()
            .filter(|(_, rcpt)| rcpt.dest == via)
            .filter_map(|(index, rcpt)| Some((index, self.destination_side(life, &rcpt.row.address, 1)?)))
            .collect();
        if let Some(upstream) = self.messages.lives.get_mut(&up) {
            for (index, side) in settled {
                upstream.recipients[index].dest = flow::Dest::Side(side);
            }
        }
    }

    /// Forgets closed lives after [`FORGET_CLOSED`] (unless a message they lead to is still open)
    /// and open ones not seen for [`FORGET_OPEN`]; a forgotten life hands its origin to the
    /// messages that came out of it.
    fn sweep(&mut self, batch: &mut Batch) {
        let now = self.now;
        self.thaw_forgotten(now);
        let mut forget: Vec<(Timestamp, i64)> = self
            .messages
            .lives
            .values()
            .filter(|m| match m.closed_at {
                Some(closed) => {
                    now.0 - closed.0 > FORGET_CLOSED
                        && (now.0 - closed.0 > FORGET_OPEN
                            || !m
                                .downstream
                                .iter()
                                .any(|d| self.messages.lives.get(d).is_some_and(|d| d.closed_at.is_none())))
                }
                None => now.0 - m.row.last_seen.0 > FORGET_OPEN,
            })
            .map(|m| (m.row.started_at, m.row.uid))
            .collect();
        // In a fixed order (upstream lives first), whatever the map's.
        forget.sort_unstable();
        // Last snapshots first, while every life a flow follows is still there.
        for &(_, uid) in &forget {
            let Some(life) = self.messages.lives.get_mut(&uid) else {
                continue;
            };
            // Not seen for so long, and not on hold: its queue file is gone.
            if life.closed_at.is_none() && !life.held {
                life.vanish("no line for 10 days and no `removed` line", now);
                self.messages.touch(uid);
            }
            self.snapshot(uid, batch);
        }
        for (_, uid) in forget {
            self.settle_handed_over(uid);
            let Some(life) = self.messages.lives.get(&uid) else {
                continue;
            };
            let side = self.origin_side(life, 0);
            self.hand_over(uid, side);
            self.messages.forget(uid);
        }
        self.sessions.sweep(now, batch);
        self.sweep_links(now);
        self.sweep_evicted(now);
        self.compact_idle(batch);
    }
}

#[cfg(test)]
mod tests;
