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
//!
//! Lives no line named for [`COMPACT_AFTER`] of log time leave the same way at each sweep, but
//! their last snapshot stays in the entry, encoded (`compact.rs`): a line that names one brings it
//! back at once, from memory, by the same rules. They count towards `max_open`; beyond it the
//! least recent of them let go of their snapshot first (it is in the database by then).

use std::collections::HashMap;

use crate::parse::{EventKind, ParsedLine, Timestamp};
use crate::store::{Batch, MessageRow, OpenState, RecipientRow};

use super::compact::Snapshot;
use super::flow::{Dest, Side};
use super::message::{
    queue_key, restored_closed_at, restored_origin, Message, QueueSlot, Upstream, FORGET_CLOSED, FORGET_OPEN,
};
use super::Correlator;

/// Log time without a line after which a life is kept compact (see `compact.rs`): longer than the
/// seconds a message's lines usually span, shorter than Postfix's first retry (5 minutes).
pub const COMPACT_AFTER: i64 = 60 * Timestamp::MICROS_PER_SECOND;

/// A life out of memory: what the database does not hold, and what says when it would be
/// forgotten. Packed in 40 bytes: a deferred-queue storm leaves one per open message (a compact
/// life's snapshot is beside it, in `Memory::snapshots`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Evicted {
    pub uid: i64,
    pub started_at: Timestamp,
    /// When it closed (`CLOSED` set), else when a line last named it.
    when: Timestamp,
    /// The smtpd session that received it, when `SESSION` is set.
    session_uid: i64,
    flags: u8,
}

const CLOSED: u8 = 1;
const SESSION: u8 = 2;
const RESTORED: u8 = 4;
const INTERNAL: u8 = 8;
const EXTERNAL: u8 = 16;

impl Evicted {
    fn new(life: &Message, origin: Option<Side>) -> Self {
        let row = &life.row;
        Evicted::packed(
            (row.uid, row.started_at, row.last_seen),
            life.closed_at,
            life.session_uid,
            origin,
            life.restored,
        )
    }

    /// From `(uid, started_at, last_seen)` and the rest.
    fn packed(
        (uid, started_at, last_seen): (i64, Timestamp, Timestamp),
        closed_at: Option<Timestamp>,
        session_uid: Option<i64>,
        origin: Option<Side>,
        restored: bool,
    ) -> Self {
        let mut flags = 0;
        flags |= if closed_at.is_some() { CLOSED } else { 0 };
        flags |= if session_uid.is_some() { SESSION } else { 0 };
        flags |= if restored { RESTORED } else { 0 };
        flags |= match origin {
            Some(Side::Internal) => INTERNAL,
            Some(Side::External) => EXTERNAL,
            None => 0,
        };
        Evicted {
            uid,
            started_at,
            when: closed_at.unwrap_or(last_seen),
            session_uid: session_uid.unwrap_or_default(),
            flags,
        }
    }

    pub fn closed_at(&self) -> Option<Timestamp> {
        (self.flags & CLOSED != 0).then_some(self.when)
    }

    /// When a line last named an open life (see [`Evicted::closed_at`] for a closed one).
    pub fn last_seen(&self) -> Option<Timestamp> {
        (self.flags & CLOSED == 0).then_some(self.when)
    }

    /// When it was last named or closed: which entries are the least recent.
    fn recency(&self) -> Timestamp {
        self.when
    }

    pub fn session_uid(&self) -> Option<i64> {
        (self.flags & SESSION != 0).then_some(self.session_uid)
    }

    pub fn origin(&self) -> Option<Side> {
        match self.flags & (INTERNAL | EXTERNAL) {
            INTERNAL => Some(Side::Internal),
            EXTERNAL => Some(Side::External),
            _ => None,
        }
    }

    pub fn restored(&self) -> bool {
        self.flags & RESTORED != 0
    }

    /// True when the sweep at `now` forgets it: a closed life after its grace, an open one not
    /// named for [`FORGET_OPEN`].
    fn forgotten_by(&self, now: Timestamp) -> bool {
        match self.closed_at() {
            Some(closed) => now.0 - closed.0 > FORGET_CLOSED,
            None => now.0 - self.when.0 > FORGET_OPEN,
        }
    }
}

/// Lives out of memory by queue key (compact or evicted), and the ones the next lines need back.
#[derive(Default)]
pub(super) struct Memory {
    evicted: HashMap<i64, Evicted>,
    /// The last snapshots of compact lives (see `compact.rs`), by queue key; an entry of
    /// `evicted` without one is in the database only.
    snapshots: HashMap<i64, Snapshot>,
    /// Queue keys of evicted lives named by lines about to be applied.
    wanted: Vec<i64>,
    /// The queue keys one line names (kept to reuse its allocation).
    named: Vec<i64>,
    /// The latest time of the lines about to be applied: evicted lives the sweep would forget by
    /// then come back too, so that they end as they would have in memory.
    horizon: Timestamp,
    pub evictions: u64,
    pub reloads: u64,
    /// Lives made compact, and brought back from their snapshots.
    pub compactions: u64,
    pub thaws: u64,
    /// Open smtpd sessions forgotten to keep the bound.
    pub session_evictions: u64,
}

/// Lives evicted at once go down to this share of the bound, so that a commit does not evict one
/// life at a time.
const EVICT_TO: f64 = 0.875;

/// A life of a message the store should load: (uid, started_at).
pub type LifeKey = (i64, Timestamp);

impl Memory {
    fn insert(&mut self, key: i64, entry: Evicted, snapshot: Option<Snapshot>) {
        self.evicted.insert(key, entry);
        match snapshot {
            Some(snapshot) => self.snapshots.insert(key, snapshot),
            None => self.snapshots.remove(&key),
        };
    }

    fn remove(&mut self, key: i64) -> Option<(Evicted, Option<Snapshot>)> {
        let entry = self.evicted.remove(&key)?;
        Some((entry, self.snapshots.remove(&key)))
    }

    fn is_compact(&self, key: i64) -> bool {
        self.snapshots.contains_key(&key)
    }

    fn in_database(&self, key: i64) -> bool {
        self.evicted.contains_key(&key) && !self.is_compact(key)
    }

    /// Entries whose life is in the database only.
    fn in_database_count(&self) -> usize {
        self.evicted.len() - self.snapshots.len()
    }
}

impl Correlator {
    /// Notes the evicted lives a line names (before it is applied; see [`Correlator::wanted_lives`]).
    pub fn note_names(&mut self, line: &ParsedLine<'_>) {
        let time = line.line.time;
        if time > self.memory.horizon {
            self.memory.horizon = time;
        }
        if self.memory.in_database_count() == 0 {
            return;
        }
        let keys = self.named_keys(line);
        for &key in &keys {
            if self.memory.in_database(key) && !self.memory.wanted.contains(&key) {
                self.memory.wanted.push(key);
            }
        }
        self.memory.named = keys;
    }

    /// Brings back, from their snapshots, the compact lives a line names, before it is applied.
    pub(super) fn thaw_named(&mut self, line: &ParsedLine<'_>) {
        if self.memory.snapshots.is_empty() {
            return;
        }
        let keys = self.named_keys(line);
        for &key in &keys {
            if self.memory.is_compact(key) {
                self.thaw(key);
            }
        }
        self.memory.named = keys;
    }

    /// Brings back a compact life.
    fn thaw(&mut self, key: i64) {
        let Some((entry, Some(snapshot))) = self.memory.remove(key) else {
            return;
        };
        let (row, recipients) = snapshot.decode();
        self.memory.thaws += 1;
        self.revive(key, entry, row, recipients);
    }

    /// The queue keys a line names (its own, `queued as`, `orig_queue_id`, a notification's), and
    /// those its lives' recipients went on to (a life in memory shows their destinations in its
    /// snapshot). The vector is `memory.named`, taken: give it back when done.
    fn named_keys(&mut self, line: &ParsedLine<'_>) -> Vec<i64> {
        let mut keys = std::mem::take(&mut self.memory.named);
        keys.clear();
        let host = line.line.host;
        let time = line.line.time;
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
        let named = keys.len();
        for i in 0..named {
            if let Some(life) = self.messages.latest_life(keys[i]) {
                for rcpt in &life.recipients {
                    if let Dest::Via(via) = rcpt.dest {
                        keys.push(via);
                    }
                }
            }
        }
        keys
    }

    /// The evicted lives to bring back before the noted lines are applied: those they name and
    /// those the sweep would forget meanwhile.
    pub fn wanted_lives(&self) -> Vec<LifeKey> {
        let horizon = self.memory.horizon.0;
        let mut lives: Vec<LifeKey> = self
            .memory
            .wanted
            .iter()
            .filter(|&&key| self.memory.in_database(key))
            .filter_map(|key| self.memory.evicted.get(key))
            .map(|e| (e.uid, e.started_at))
            .collect();
        if self.memory.in_database_count() > 0 {
            lives.extend(
                self.memory
                    .evicted
                    .iter()
                    .filter(|(&key, _)| !self.memory.is_compact(key))
                    .filter(|(_, e)| e.last_seen().is_some_and(|seen| horizon - seen.0 > FORGET_OPEN))
                    .map(|(_, e)| (e.uid, e.started_at)),
            );
        }
        lives.sort_unstable();
        lives.dedup();
        lives
    }

    /// Puts back evicted lives from their last snapshots, as they were.
    pub fn reload(&mut self, state: OpenState) {
        self.memory.wanted.clear();
        let mut recipients: HashMap<i64, Vec<RecipientRow>> = HashMap::new();
        for row in state.recipients {
            recipients.entry(row.message_uid).or_default().push(row);
        }
        for row in state.messages {
            let key = queue_key(&row.host, &row.queue_id);
            let wanted =
                self.memory.in_database(key) && self.memory.evicted.get(&key).is_some_and(|e| e.uid == row.uid);
            let Some((entry, _)) = wanted.then(|| self.memory.remove(key)).flatten() else {
                continue;
            };
            self.memory.reloads += 1;
            let rcpts = recipients.remove(&row.uid).unwrap_or_default();
            self.revive(key, entry, row, rcpts);
        }
    }

    /// Puts back a life saved before a restart. It is idle (no line named it since), so it stays
    /// compact, unless compact lives are off or its queue id has a life here already (the two
    /// are then in memory, as they were before the restart).
    pub(super) fn restore_life(&mut self, row: MessageRow, recipients: Vec<RecipientRow>) {
        let key = queue_key(&row.host, &row.queue_id);
        let taken = self.messages.latest.contains_key(&key) || self.memory.evicted.contains_key(&key);
        if self.config.compact_after.is_none() || taken {
            if self.memory.is_compact(key) {
                self.thaw(key);
            }
            self.messages.restore(Message::from_row(row));
            for rcpt in recipients {
                self.restore_recipient(rcpt);
            }
            return;
        }
        let entry = Evicted::packed(
            (row.uid, row.started_at, row.last_seen),
            restored_closed_at(&row),
            None,
            restored_origin(&row),
            true,
        );
        self.memory
            .insert(key, entry, Some(Snapshot::encode(&row, &recipients)));
    }

    /// Puts a life back in memory from its last snapshot rows and its entry.
    fn revive(&mut self, key: i64, entry: Evicted, row: MessageRow, recipients: Vec<RecipientRow>) {
        let mut life = Message::from_row(row);
        life.restored = entry.restored();
        life.closed_at = entry.closed_at();
        life.session_uid = entry.session_uid();
        life.upstream = entry.origin().map(Upstream::Side);
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
        for row in recipients {
            self.restore_recipient(row);
        }
    }

    /// After a commit: evicts the least recently named lives beyond `max_open` (compact ones let
    /// go of their snapshot first), and forgets the smtpd processes beyond the same count (see
    /// `Sessions::evict`). Returns how many lives.
    pub fn evict(&mut self) -> usize {
        let Some(max) = self.config.max_open else {
            return 0;
        };
        self.memory.session_evictions += self.sessions.evict(max) as u64;
        let held = self.messages.lives.len() + self.memory.snapshots.len();
        if held <= max {
            return 0;
        }
        let keep = ((max as f64 * EVICT_TO) as usize).max(1);
        let mut excess = held - keep;
        let mut evicted = 0;
        // Compact lives are the idle ones: the least recent of them go first.
        if !self.memory.snapshots.is_empty() {
            let mut compact: Vec<(Timestamp, i64)> = self
                .memory
                .snapshots
                .keys()
                .filter_map(|key| Some((self.memory.evicted.get(key)?.recency(), *key)))
                .collect();
            let count = excess.min(compact.len());
            if count < compact.len() {
                compact.select_nth_unstable(count);
                compact.truncate(count);
            }
            for (_, key) in compact {
                self.memory.snapshots.remove(&key);
            }
            self.memory.evictions += count as u64;
            evicted += count;
            excess -= count;
        }
        if excess == 0 {
            return evicted;
        }
        let mut candidates = self.unload_candidates(false);
        let count = excess.min(candidates.len());
        if count < candidates.len() {
            candidates.select_nth_unstable(count);
            candidates.truncate(count);
        }
        candidates.sort_unstable();
        let uids: Vec<i64> = candidates.into_iter().map(|(_, uid)| uid).collect();
        self.unload(&uids, false);
        self.memory.evictions += uids.len() as u64;
        evicted + uids.len()
    }

    /// At a sweep: keeps compact the lives no line named for [`COMPACT_AFTER`] (those with
    /// changes not flushed yet give their snapshot to `batch` first).
    ///
    /// Only lives that no other life in memory still follows: a life whose upstream message is in
    /// memory, or whose next hop is still open or has not logged yet, stays as it is (the next
    /// hop's delivery re-snapshots it with the flow it decides, see `touch_upstream_chain`).
    pub(super) fn compact_idle(&mut self, batch: &mut Batch) {
        let Some(after) = self.config.compact_after else {
            return;
        };
        let now = self.now.0;
        let mut idle: Vec<(Timestamp, i64)> = self.unload_candidates(true);
        idle.retain(|&(last_seen, _)| now - last_seen.0 > after);
        if idle.is_empty() {
            return;
        }
        let awaited = self.links.awaited_upstreams();
        let lives = &self.messages.lives;
        idle.retain(|(_, uid)| {
            let Some(life) = lives.get(uid) else {
                return false;
            };
            let upstream_here = matches!(life.upstream, Some(Upstream::Message(up)) if lives.contains_key(&up));
            let downstream_open = life
                .downstream
                .iter()
                .any(|d| lives.get(d).is_some_and(|d| d.closed_at.is_none()));
            !upstream_here && !downstream_open && !awaited.contains(uid)
        });
        if idle.is_empty() {
            return;
        }
        idle.sort_unstable();
        let uids: Vec<i64> = idle.into_iter().map(|(_, uid)| uid).collect();
        for &uid in &uids {
            self.snapshot(uid, batch);
        }
        self.unload(&uids, true);
        self.memory.compactions += uids.len() as u64;
    }

    /// The lives that may leave memory, by when a line last named them: not those of a session
    /// still open that were not queued yet (the session's end may still decide their fate, see
    /// `Correlator::close_abandoned`), nor the queue ids a replay set aside (see `message.rs`),
    /// nor, unless `touched` allows, those with changes not flushed yet.
    fn unload_candidates(&self, touched: bool) -> Vec<(Timestamp, i64)> {
        self.messages
            .lives
            .values()
            .filter(|life| {
                (touched || !life.touched)
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
            .collect()
    }

    /// Takes lives out of memory, leaving an entry for each (with its snapshot when `compact`):
    /// the lives around them take what they need from them first, as when a life is forgotten.
    fn unload(&mut self, uids: &[i64], compact: bool) {
        // Origins and snapshots first, while every life they follow is still there.
        let mut leaving: HashMap<i64, (Option<Side>, Option<Snapshot>)> = HashMap::with_capacity(uids.len());
        for &uid in uids {
            let Some(life) = self.messages.lives.get(&uid) else {
                continue;
            };
            let origin = self.origin_side(life, 0);
            let snapshot = compact.then(|| {
                let (row, recipients) = self.snapshot_rows(life, origin, true);
                Snapshot::encode(&row, &recipients)
            });
            leaving.insert(uid, (origin, snapshot));
        }
        for &uid in uids {
            let Some((origin, snapshot)) = leaving.remove(&uid) else {
                continue;
            };
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
            let entry = Evicted::new(life, origin);
            self.messages.forget(uid);
            // An older life of a reused queue id is only reached through its links: forgotten.
            if latest {
                self.memory.insert(key, entry, snapshot);
            }
        }
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

    /// Before a sweep: brings back the compact lives it would forget while open, so that they
    /// end as lives in memory do (`vanished`, with their last snapshot).
    pub(super) fn thaw_forgotten(&mut self, now: Timestamp) {
        let mut due: Vec<(Timestamp, i64)> = self
            .memory
            .snapshots
            .keys()
            .filter_map(|key| Some((self.memory.evicted.get(key)?, *key)))
            .filter(|(e, _)| e.last_seen().is_some_and(|seen| now.0 - seen.0 > FORGET_OPEN))
            .map(|(e, key)| (e.started_at, key))
            .collect();
        due.sort_unstable();
        for (_, key) in due {
            self.thaw(key);
        }
    }

    /// Drops the entries of evicted lives the sweep would have forgotten by `now`: closed ones
    /// after their grace (open ones came back to be swept: see [`Correlator::wanted_lives`] and
    /// [`Correlator::thaw_forgotten`]).
    pub(super) fn sweep_evicted(&mut self, now: Timestamp) {
        let memory = &mut self.memory;
        let before = memory.evicted.len();
        memory.evicted.retain(|_, e| !e.forgotten_by(now));
        if memory.evicted.len() < before && !memory.snapshots.is_empty() {
            let evicted = &memory.evicted;
            memory.snapshots.retain(|key, _| evicted.contains_key(key));
        }
    }

    /// Lives evicted to the database and not brought back (nor forgotten) yet.
    pub fn evicted_lives(&self) -> usize {
        self.memory.in_database_count()
    }

    /// Lives made compact so far, and brought back from their snapshots.
    pub fn compaction_counters(&self) -> (u64, u64) {
        (self.memory.compactions, self.memory.thaws)
    }

    /// Lives kept compact in memory (see `compact.rs`).
    pub fn compact_lives(&self) -> usize {
        self.memory.snapshots.len()
    }

    /// Compact lives still open (no `removed` yet).
    pub(super) fn open_compact_lives(&self) -> usize {
        self.memory
            .snapshots
            .keys()
            .filter(|key| self.memory.evicted.get(key).is_some_and(|e| e.closed_at().is_none()))
            .count()
    }

    /// Lives evicted so far, and brought back from the database.
    pub fn eviction_counters(&self) -> (u64, u64) {
        (self.memory.evictions, self.memory.reloads)
    }

    /// Open smtpd sessions forgotten to keep the bound, and processes remembered now.
    pub fn session_counters(&self) -> (u64, usize) {
        (self.memory.session_evictions, self.sessions.processes())
    }

    /// Lives of messages in memory, open or in their grace, compact or not.
    pub fn lives_in_memory(&self) -> usize {
        self.messages.lives.len() + self.memory.snapshots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_keeps_what_it_packs_in_40_bytes() {
        assert_eq!(std::mem::size_of::<Evicted>(), 40);
        let seen = (-7, Timestamp(100), Timestamp(200));
        let open = Evicted::packed(seen, None, Some(0), Some(Side::External), true);
        assert_eq!(
            (
                open.closed_at(),
                open.last_seen(),
                open.session_uid(),
                open.origin(),
                open.restored()
            ),
            (None, Some(Timestamp(200)), Some(0), Some(Side::External), true)
        );
        let closed = Evicted::packed(seen, Some(Timestamp(300)), None, Some(Side::Internal), false);
        assert_eq!(
            (
                closed.closed_at(),
                closed.last_seen(),
                closed.session_uid(),
                closed.origin(),
                closed.restored()
            ),
            (Some(Timestamp(300)), None, None, Some(Side::Internal), false)
        );
        assert_eq!(Evicted::packed(seen, None, None, None, false).origin(), None);
        assert!(!closed.forgotten_by(Timestamp(300 + FORGET_CLOSED)));
        assert!(closed.forgotten_by(Timestamp(301 + FORGET_CLOSED)));
        assert!(open.forgotten_by(Timestamp(201 + FORGET_OPEN)));
    }
}
