//! The bound on what the correlator holds: at most `max_open` lives of messages (open, or closed
//! and in their grace) in memory. Beyond it, after a commit (every life's last snapshot is then in
//! the database), the least recently named lives are evicted: dropped from memory, with a small
//! entry that says where to find them again. A line that names an evicted life has it brought back
//! from the database before the line is applied (the store loads every life the lines of a commit
//! name in one query, by uid), so the rows come out as if it had never left.
//!
//! What a snapshot does not carry (where the message came from, its session, when it closed) stays
//! in the entry; what the next hops of a life need from it (its origin side) is handed to them when
//! it leaves, as a forgotten life hands it (see `Correlator::sweep`).

use std::collections::HashMap;

use crate::parse::{EventKind, ParsedLine, Timestamp};
use crate::store::OpenState;

use super::flow::{Dest, Side};
use super::message::{queue_key, Message, QueueSlot, Upstream, FORGET_CLOSED, FORGET_OPEN};
use super::Correlator;

/// An evicted life: what the database does not hold, and what says when it would be forgotten.
#[derive(Debug, Clone, Copy)]
pub(super) struct Evicted {
    pub uid: i64,
    pub started_at: Timestamp,
    pub last_seen: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub session_uid: Option<i64>,
    pub origin: Option<Side>,
    pub restored: bool,
}

/// Evicted lives by queue key, and the ones the next lines need back.
#[derive(Default)]
pub(super) struct Memory {
    evicted: HashMap<i64, Evicted>,
    /// Queue keys of evicted lives named by lines about to be applied.
    wanted: Vec<i64>,
    /// The latest time of the lines about to be applied: evicted lives the sweep would forget by
    /// then come back too, so that they end as they would have in memory.
    horizon: Timestamp,
    pub evictions: u64,
    pub reloads: u64,
    /// Open smtpd sessions forgotten to keep the bound.
    pub session_evictions: u64,
}

/// Lives evicted at once go down to this share of the bound, so that a commit does not evict one
/// life at a time.
const EVICT_TO: f64 = 0.875;

/// A life of a message the store should load: (uid, started_at).
pub type LifeKey = (i64, Timestamp);

impl Correlator {
    /// Notes the evicted lives a line names (before it is applied; see [`Correlator::wanted_lives`]).
    pub fn note_names(&mut self, line: &ParsedLine<'_>) {
        let time = line.line.time;
        if time > self.memory.horizon {
            self.memory.horizon = time;
        }
        if self.memory.evicted.is_empty() {
            return;
        }
        let host = line.line.host;
        let mut keys: Vec<i64> = Vec::new();
        if let Some(queue_id) = line.event.queue_id {
            keys.push(queue_key(host, queue_id));
        }
        match line.event.kind {
            EventKind::Filter(verdict) => {
                keys.extend(verdict.queue_id.map(|q| queue_key(host, q)));
                keys.extend(verdict.queued_as.map(|q| queue_key(host, q)));
            }
            EventKind::Client { orig_queue_id, .. } => keys.extend(orig_queue_id.map(|q| queue_key(host, q))),
            EventKind::Notification {
                notification_queue_id, ..
            } => keys.push(queue_key(host, notification_queue_id)),
            EventKind::Delivery(delivery) => {
                if let Some(to) = delivery.queued_as {
                    keys.push(queue_key(host, to));
                    let hop = self.delivery_hop(host, &line.program, &delivery, to, time);
                    keys.push(queue_key(&hop.to_host, to));
                }
            }
            _ => {}
        }
        // A life in memory whose recipients went on to an evicted life shows that life's
        // destinations in its snapshot.
        let mut next = Vec::new();
        for key in &keys {
            if let Some(life) = self.messages.latest_life(*key) {
                next.extend(life.recipients.iter().filter_map(|r| match r.dest {
                    Dest::Via(via) => Some(via),
                    _ => None,
                }));
            }
        }
        keys.extend(next);
        for key in keys {
            if self.memory.evicted.contains_key(&key) && !self.memory.wanted.contains(&key) {
                self.memory.wanted.push(key);
            }
        }
    }

    /// The evicted lives to bring back before the noted lines are applied: those they name and
    /// those the sweep would forget meanwhile.
    pub fn wanted_lives(&self) -> Vec<LifeKey> {
        let horizon = self.memory.horizon.0;
        let mut lives: Vec<LifeKey> = self
            .memory
            .wanted
            .iter()
            .filter_map(|key| self.memory.evicted.get(key))
            .map(|e| (e.uid, e.started_at))
            .collect();
        lives.extend(
            self.memory
                .evicted
                .values()
                .filter(|e| e.closed_at.is_none() && horizon - e.last_seen.0 > FORGET_OPEN)
                .map(|e| (e.uid, e.started_at)),
        );
        lives.sort_unstable();
        lives.dedup();
        lives
    }

    /// Puts back evicted lives from their last snapshots, as they were.
    pub fn reload(&mut self, state: OpenState) {
        self.memory.wanted.clear();
        let mut keys = HashMap::new();
        for row in state.messages {
            let key = queue_key(&row.host, &row.queue_id);
            let Some(entry) = self.memory.evicted.get(&key).copied().filter(|e| e.uid == row.uid) else {
                continue;
            };
            self.memory.evicted.remove(&key);
            self.memory.reloads += 1;
            let mut life = Message::from_row(row);
            life.restored = entry.restored;
            life.closed_at = entry.closed_at;
            life.session_uid = entry.session_uid;
            life.upstream = entry.origin.map(Upstream::Side);
            keys.insert(life.row.uid, key);
            if self
                .messages
                .latest
                .get(&key)
                .is_none_or(|slot| slot.started_at < entry.started_at)
            {
                self.messages.latest.insert(
                    key,
                    QueueSlot {
                        uid: entry.uid,
                        started_at: entry.started_at,
                    },
                );
            }
            self.messages.lives.insert(entry.uid, life);
        }
        for row in state.recipients {
            if keys.contains_key(&row.message_uid) {
                self.restore_recipient(row);
            }
        }
    }

    /// After a commit: evicts the least recently named lives beyond `max_open`, and forgets the
    /// smtpd processes beyond the same count (see `Sessions::evict`). Returns how many lives.
    pub fn evict(&mut self) -> usize {
        let Some(max) = self.config.max_open else {
            return 0;
        };
        self.memory.session_evictions += self.sessions.evict(max) as u64;
        if self.messages.lives.len() <= max {
            return 0;
        }
        let keep = ((max as f64 * EVICT_TO) as usize).max(1);
        // Lives not queued yet of a session still open stay: the session's end may still decide
        // their fate (`Correlator::close_abandoned`). So do the queue ids a replay set aside (see
        // `message.rs`).
        let mut candidates: Vec<(Timestamp, i64)> = self
            .messages
            .lives
            .values()
            .filter(|life| {
                !life.touched
                    && (life.queued
                        || life.closed_at.is_some()
                        || life.session_uid.is_none_or(|s| !self.sessions.holds(s)))
            })
            .filter(|life| {
                !self
                    .messages
                    .is_set_aside(queue_key(&life.row.host, &life.row.queue_id))
            })
            .map(|life| (life.row.last_seen, life.row.uid))
            .collect();
        let count = self.messages.lives.len().saturating_sub(keep).min(candidates.len());
        if count == 0 {
            return 0;
        }
        if count < candidates.len() {
            candidates.select_nth_unstable(count);
            candidates.truncate(count);
        }
        candidates.sort_unstable();
        let mut origins = HashMap::new();
        for &(_, uid) in &candidates {
            let Some(life) = self.messages.lives.get(&uid) else {
                continue;
            };
            origins.insert(uid, self.origin_side(life, 0));
        }
        for (_, uid) in candidates {
            let origin = origins.get(&uid).copied().flatten();
            self.settle_handed_over(uid);
            self.hand_over(uid, origin);
            if let Some(side) = origin {
                self.links.hand_over(uid, side);
            }
            let Some(life) = self.messages.lives.get(&uid) else {
                continue;
            };
            let key = queue_key(&life.row.host, &life.row.queue_id);
            let latest = self.messages.latest.get(&key).is_some_and(|slot| slot.uid == uid);
            let entry = Evicted {
                uid,
                started_at: life.row.started_at,
                last_seen: life.row.last_seen,
                closed_at: life.closed_at,
                session_uid: life.session_uid,
                origin,
                restored: life.restored,
            };
            self.messages.forget(uid);
            // An older life of a reused queue id is only reached through its links: forgotten.
            if latest {
                self.memory.evicted.insert(key, entry);
            }
            self.memory.evictions += 1;
        }
        count
    }

    /// The lives that come out of `uid` take its origin side, as when a life is forgotten.
    pub(super) fn hand_over(&mut self, uid: i64, origin: Option<Side>) {
        let Some(side) = origin else {
            return;
        };
        let downstream = self
            .messages
            .lives
            .get(&uid)
            .map(|life| life.downstream.clone())
            .unwrap_or_default();
        for d in downstream {
            if let Some(down) = self.messages.lives.get_mut(&d) {
                if down.upstream == Some(Upstream::Message(uid)) {
                    down.upstream = Some(Upstream::Side(side));
                }
            }
        }
    }

    /// Drops the entries of evicted lives the sweep would have forgotten by `now`: closed ones
    /// after their grace (open ones came back to be swept: see [`Correlator::wanted_lives`]).
    pub(super) fn sweep_evicted(&mut self, now: Timestamp) {
        self.memory.evicted.retain(|_, e| match e.closed_at {
            Some(closed) => now.0 - closed.0 <= FORGET_CLOSED,
            None => now.0 - e.last_seen.0 <= FORGET_OPEN,
        });
    }

    /// Lives evicted and not brought back (nor forgotten) yet.
    pub fn evicted_lives(&self) -> usize {
        self.memory.evicted.len()
    }

    /// Lives evicted so far, and brought back from the database.
    pub fn eviction_counters(&self) -> (u64, u64) {
        (self.memory.evictions, self.memory.reloads)
    }

    /// Open smtpd sessions forgotten to keep the bound, and processes remembered now.
    pub fn session_counters(&self) -> (u64, usize) {
        (self.memory.session_evictions, self.sessions.processes())
    }

    /// Lives of messages in memory, open or in their grace.
    pub fn lives_in_memory(&self) -> usize {
        self.messages.lives.len()
    }
}
