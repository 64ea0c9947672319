//! What the conformance tests over the pipeline share: lines in through [`Pipeline`], the final
//! state of every message and recipient out, as the database would hold it after the writes.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::{BTreeMap, BTreeSet, HashMap};

use omelse::correlate::Correlator;
use omelse::ingest::Pipeline;
use omelse::parse::{Clock, Timestamp};
use omelse::store::{
    Batch, DeliveryRow, EventRow, LinkRow, MessageRow, OpenState, RecipientRow, RejectRow, SessionRow,
};

/// The rows a run of the pipeline produced, with the last snapshot of each message and recipient.
pub struct Outcome {
    pub batch: Batch,
    /// The last snapshot of every message, in the order they were first seen.
    pub messages: Vec<MessageRow>,
    /// The last snapshot of every recipient, keyed by message uid and address.
    pub recipients: HashMap<(i64, String), RecipientRow>,
}

impl Outcome {
    /// Pushes the lines through a fresh pipeline, taking a batch every `flush_every` lines as the
    /// writer does, and folds the snapshots the way the store applies them (newest version wins).
    pub fn run<'a>(lines: impl IntoIterator<Item = &'a str>, clock: Clock, flush_every: usize) -> Outcome {
        let mut pipeline = Pipeline::new(clock, Correlator::new());
        let mut batch = Batch::default();
        for (i, line) in lines.into_iter().enumerate() {
            pipeline.push_line(line);
            if (i + 1) % flush_every == 0 {
                batch.append(pipeline.take_batch());
            }
        }
        batch.append(pipeline.take_batch());
        let mut messages: Vec<MessageRow> = Vec::new();
        for row in &batch.messages {
            match messages.iter_mut().find(|m| m.uid == row.uid) {
                Some(m) if row.version >= m.version => *m = row.clone(),
                Some(_) => {}
                None => messages.push(row.clone()),
            }
        }
        let mut recipients = HashMap::new();
        for row in &batch.recipients {
            recipients.insert((row.message_uid, row.address.clone()), row.clone());
        }
        Outcome {
            batch,
            messages,
            recipients,
        }
    }

    /// Every life of a queue id (short queue ids are reused), in order.
    pub fn lives(&self, queue_id: &str) -> Vec<&MessageRow> {
        self.messages.iter().filter(|m| m.queue_id == queue_id).collect()
    }

    /// The only life of a queue id; panics with what there is otherwise.
    pub fn message(&self, queue_id: &str) -> &MessageRow {
        let lives = self.lives(queue_id);
        assert_eq!(
            lives.len(),
            1,
            "one message with queue id {queue_id}; messages: {:?}",
            self.messages.iter().map(|m| (&m.host, &m.queue_id)).collect::<Vec<_>>()
        );
        lives[0]
    }

    /// The recipients of a message, sorted by address.
    pub fn recipients_of(&self, uid: i64) -> Vec<&RecipientRow> {
        let mut rows: Vec<_> = self.recipients.values().filter(|r| r.message_uid == uid).collect();
        rows.sort_by(|a, b| a.address.cmp(&b.address));
        rows
    }

    /// One recipient of the only life of a queue id.
    pub fn recipient(&self, queue_id: &str, address: &str) -> &RecipientRow {
        let uid = self.message(queue_id).uid;
        self.recipients.get(&(uid, address.to_owned())).unwrap_or_else(|| {
            panic!(
                "recipient {address} of {queue_id}; it has {:?}",
                self.recipients_of(uid).iter().map(|r| &r.address).collect::<Vec<_>>()
            )
        })
    }

    /// Every delivery attempt logged for a queue id.
    pub fn deliveries(&self, queue_id: &str) -> Vec<&DeliveryRow> {
        self.batch
            .deliveries
            .iter()
            .filter(|d| d.queue_id == queue_id)
            .collect()
    }

    /// The links as `(kind, from queue id, to queue id)`.
    pub fn links(&self) -> Vec<(&'static str, &str, &str)> {
        self.batch
            .links
            .iter()
            .map(|l| (l.kind, l.from_queue_id.as_str(), l.to_queue_id.as_str()))
            .collect()
    }
}

/// What the database holds after batches were written the way the store writes them: an appended
/// row (event, delivery, reject, link) once per key, the first one; a state row (message,
/// recipient, session) the newest snapshot, where a snapshot at least as new replaces it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stored {
    pub events: BTreeMap<(Timestamp, i64), EventRow>,
    pub messages: BTreeMap<(Timestamp, i64), MessageRow>,
    pub recipients: BTreeMap<(Timestamp, i64, String), RecipientRow>,
    pub deliveries: BTreeMap<(Timestamp, i64), DeliveryRow>,
    pub rejects: BTreeMap<(Timestamp, i64), RejectRow>,
    pub sessions: BTreeMap<(Timestamp, i64), SessionRow>,
    pub links: BTreeMap<(Timestamp, i64, &'static str, String), LinkRow>,
}

impl Stored {
    pub fn write(&mut self, batch: &Batch) {
        for e in &batch.events {
            self.events.entry((e.time, e.line_key)).or_insert_with(|| e.clone());
        }
        for d in &batch.deliveries {
            self.deliveries.entry((d.time, d.line_key)).or_insert_with(|| d.clone());
        }
        for r in &batch.rejects {
            self.rejects.entry((r.time, r.line_key)).or_insert_with(|| r.clone());
        }
        for l in &batch.links {
            let key = (l.time, l.line_key, l.kind, l.to_queue_id.clone());
            self.links.entry(key).or_insert_with(|| l.clone());
        }
        for m in &batch.messages {
            newest(&mut self.messages, (m.started_at, m.uid), m, |m| m.version);
        }
        for r in &batch.recipients {
            let key = (r.message_started_at, r.message_uid, r.address.clone());
            newest(&mut self.recipients, key, r, |r| (r.attempts, r.last_attempt_at));
        }
        for s in &batch.sessions {
            newest(&mut self.sessions, (s.connected_at, s.uid), s, |s| s.version);
        }
    }

    /// What `store::load_open_state` reads back after a restart: the messages not closed with
    /// their recipients, and the sessions not disconnected.
    pub fn open_state(&self) -> OpenState {
        let messages: Vec<MessageRow> = self.messages.values().filter(|m| !m.closed).cloned().collect();
        let open: Vec<(Timestamp, i64)> = messages.iter().map(|m| (m.started_at, m.uid)).collect();
        OpenState {
            recipients: self
                .recipients
                .values()
                .filter(|r| open.contains(&(r.message_started_at, r.message_uid)))
                .cloned()
                .collect(),
            messages,
            sessions: self
                .sessions
                .values()
                .filter(|s| s.disconnected_at.is_none())
                .cloned()
                .collect(),
        }
    }

    /// The tables that differ from `other`'s, each with the keys of its rows that differ.
    pub fn differences(&self, other: &Stored) -> Vec<String> {
        fn table<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
            name: &str,
            a: &BTreeMap<K, V>,
            b: &BTreeMap<K, V>,
            out: &mut Vec<String>,
        ) {
            let keys: BTreeSet<&K> = a.keys().chain(b.keys()).collect();
            let differing: Vec<&&K> = keys.iter().filter(|k| a.get(k) != b.get(k)).collect();
            if let Some(first) = differing.first() {
                out.push(format!(
                    "{name}: {} rows differ, first {first:?}: {:?} / {:?}",
                    differing.len(),
                    a.get(first),
                    b.get(first)
                ));
            }
        }
        let mut out = Vec::new();
        table("log_events", &self.events, &other.events, &mut out);
        table("messages", &self.messages, &other.messages, &mut out);
        table("recipients", &self.recipients, &other.recipients, &mut out);
        table("deliveries", &self.deliveries, &other.deliveries, &mut out);
        table("rejects", &self.rejects, &other.rejects, &mut out);
        table("sessions", &self.sessions, &other.sessions, &mut out);
        table("links", &self.links, &other.links, &mut out);
        out
    }
}

/// The store's rule for state rows: a snapshot at least as new (by `order`) replaces the row.
fn newest<K: Ord, V: Clone, O: PartialOrd>(table: &mut BTreeMap<K, V>, key: K, row: &V, order: impl Fn(&V) -> O) {
    match table.get_mut(&key) {
        Some(stored) if order(row) >= order(stored) => *stored = row.clone(),
        Some(_) => {}
        None => {
            table.insert(key, row.clone());
        }
    }
}
