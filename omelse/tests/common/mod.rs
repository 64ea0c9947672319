//! What the conformance tests over the pipeline share: lines in through [`Pipeline`], the final
//! state of every message and recipient out, as the database would hold it after the writes.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::HashMap;

use omelse::correlate::Correlator;
use omelse::ingest::Pipeline;
use omelse::parse::Clock;
use omelse::store::{Batch, DeliveryRow, MessageRow, RecipientRow};

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
