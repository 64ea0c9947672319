//! Idle lives kept small. A life no line has named for a while (a deferred message between two
//! attempts, a closed one in its grace) is held as its last snapshot, encoded in one byte string,
//! instead of as a [`Message`](super::message::Message) with a dozen heap strings and spare
//! capacity: about a tenth of the memory. It comes back exactly as a life evicted to the database
//! comes back from its rows (`memory.rs`), so the two paths share every rule but where the rows
//! are kept.
//!
//! The encoding is private to one process: lengths and integers as LEB128 varints, signed ones
//! zigzagged, times as offsets from the life's beginning, the words of known sets as their index
//! (a word outside the set reads back as the set's fallback, as the database's `known` does).

use crate::parse::Timestamp;
use crate::store::{MessageRow, RecipientRow, FLOWS, MESSAGE_STATES, ORIGINS, RECIPIENT_STATUSES};

/// A life's last snapshot rows, encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot(Box<[u8]>);

/// The index written for a word outside its set, and for an absent optional word.
const UNKNOWN_WORD: u8 = u8::MAX;
const NO_WORD: u8 = u8::MAX - 1;

impl Snapshot {
    pub fn encode(row: &MessageRow, recipients: &[RecipientRow]) -> Snapshot {
        let mut out = Writer {
            bytes: Vec::with_capacity(128 + 96 * recipients.len()),
            base: row.started_at.0,
        };
        out.signed(row.uid);
        out.signed(row.started_at.0);
        out.text(&row.host);
        out.text(&row.queue_id);
        out.time(row.first_seen);
        out.time(row.last_seen);
        out.optional_text(row.sender.as_deref());
        out.optional_int(row.size);
        out.optional_int(row.nrcpt.map(i64::from));
        out.optional_text(row.message_id.as_deref());
        out.optional_text(row.client_name.as_deref());
        out.optional_text(row.client_ip.as_deref());
        out.optional_int(row.client_port.map(i64::from));
        out.optional_text(row.sasl_method.as_deref());
        out.optional_text(row.sasl_username.as_deref());
        out.word(Some(row.origin), ORIGINS);
        out.word(row.flow, FLOWS);
        out.word(Some(row.state), MESSAGE_STATES);
        out.optional_text(row.state_reason.as_deref());
        out.bytes.push(u8::from(row.closed));
        out.optional_time(row.removed_at);
        out.signed(i64::from(row.version));
        out.unsigned(recipients.len() as u64);
        for r in recipients {
            out.text(&r.address);
            out.optional_text(r.orig_address.as_deref());
            out.word(Some(r.status), RECIPIENT_STATUSES);
            out.optional_text(r.dsn.as_deref());
            out.optional_text(r.relay.as_deref());
            out.optional_text(r.status_text.as_deref());
            match r.delay {
                Some(delay) => {
                    out.bytes.push(1);
                    out.bytes.extend_from_slice(&delay.to_le_bytes());
                }
                None => out.bytes.push(0),
            }
            out.signed(i64::from(r.attempts));
            out.time(r.last_attempt_at);
            out.word(r.flow, FLOWS);
        }
        Snapshot(out.bytes.into_boxed_slice())
    }

    pub fn decode(&self) -> (MessageRow, Vec<RecipientRow>) {
        let mut input = Reader {
            bytes: &self.0,
            at: 0,
            base: 0,
        };
        let uid = input.signed();
        let started_at = Timestamp(input.signed());
        input.base = started_at.0;
        let row = MessageRow {
            uid,
            started_at,
            host: input.text(),
            queue_id: input.text(),
            first_seen: input.time(),
            last_seen: input.time(),
            sender: input.optional_text(),
            size: input.optional_int(),
            nrcpt: input.optional_int().map(|n| n as i32),
            message_id: input.optional_text(),
            client_name: input.optional_text(),
            client_ip: input.optional_text(),
            client_port: input.optional_int().map(|p| p as i32),
            sasl_method: input.optional_text(),
            sasl_username: input.optional_text(),
            origin: input.word(ORIGINS, "unknown").unwrap_or("unknown"),
            flow: input.word(FLOWS, "unknown"),
            state: input.word(MESSAGE_STATES, "queued").unwrap_or("queued"),
            state_reason: input.optional_text(),
            closed: input.byte() != 0,
            removed_at: input.optional_time(),
            version: input.signed() as i32,
        };
        let count = input.unsigned() as usize;
        let mut recipients = Vec::with_capacity(count);
        for _ in 0..count {
            recipients.push(RecipientRow {
                message_uid: uid,
                message_started_at: started_at,
                address: input.text(),
                orig_address: input.optional_text(),
                status: input.word(RECIPIENT_STATUSES, "queued").unwrap_or("queued"),
                dsn: input.optional_text(),
                relay: input.optional_text(),
                status_text: input.optional_text(),
                delay: (input.byte() != 0).then(|| f64::from_le_bytes(input.array())),
                attempts: input.signed() as i32,
                last_attempt_at: input.time(),
                flow: input.word(FLOWS, "unknown"),
            });
        }
        (row, recipients)
    }

    /// Bytes held (the byte string alone).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

struct Writer {
    bytes: Vec<u8>,
    /// The life's beginning: times are written as offsets from it.
    base: i64,
}

impl Writer {
    fn unsigned(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    fn signed(&mut self, value: i64) {
        self.unsigned(((value << 1) ^ (value >> 63)) as u64);
    }

    fn time(&mut self, time: Timestamp) {
        self.signed(time.0.wrapping_sub(self.base));
    }

    fn optional_time(&mut self, time: Option<Timestamp>) {
        self.bytes.push(u8::from(time.is_some()));
        if let Some(time) = time {
            self.time(time);
        }
    }

    fn optional_int(&mut self, value: Option<i64>) {
        self.bytes.push(u8::from(value.is_some()));
        if let Some(value) = value {
            self.signed(value);
        }
    }

    fn text(&mut self, text: &str) {
        self.unsigned(text.len() as u64);
        self.bytes.extend_from_slice(text.as_bytes());
    }

    /// Absent is length 0, present is its length + 1 (so `Some("")`, the null sender, stays).
    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.unsigned(text.len() as u64 + 1);
                self.bytes.extend_from_slice(text.as_bytes());
            }
            None => self.unsigned(0),
        }
    }

    fn word(&mut self, word: Option<&str>, set: &[&str]) {
        let index = match word {
            None => NO_WORD,
            Some(word) => set.iter().position(|&w| w == word).map_or(UNKNOWN_WORD, |i| i as u8),
        };
        self.bytes.push(index);
    }
}

/// Reads what [`Writer`] wrote; the bytes never leave the process that wrote them, so a short or
/// malformed string is a bug, and panics (the caller's `catch_unwind` keeps it to one line).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    base: i64,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.bytes[self.at];
        self.at += 1;
        byte
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let array = self.bytes[self.at..self.at + N].try_into().expect("N bytes");
        self.at += N;
        array
    }

    fn unsigned(&mut self) -> u64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte();
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return value;
            }
            shift += 7;
        }
    }

    fn signed(&mut self) -> i64 {
        let value = self.unsigned();
        ((value >> 1) as i64) ^ -((value & 1) as i64)
    }

    fn time(&mut self) -> Timestamp {
        Timestamp(self.base.wrapping_add(self.signed()))
    }

    fn optional_time(&mut self) -> Option<Timestamp> {
        (self.byte() != 0).then(|| self.time())
    }

    fn optional_int(&mut self) -> Option<i64> {
        (self.byte() != 0).then(|| self.signed())
    }

    fn str_of(&mut self, len: usize) -> String {
        let text = std::str::from_utf8(&self.bytes[self.at..self.at + len]).expect("written from a str");
        self.at += len;
        text.to_owned()
    }

    fn text(&mut self) -> String {
        let len = self.unsigned() as usize;
        self.str_of(len)
    }

    fn optional_text(&mut self) -> Option<String> {
        match self.unsigned() as usize {
            0 => None,
            len => Some(self.str_of(len - 1)),
        }
    }

    fn word(&mut self, set: &[&'static str], fallback: &'static str) -> Option<&'static str> {
        match self.byte() {
            NO_WORD => None,
            index => Some(set.get(index as usize).copied().unwrap_or(fallback)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_row() -> (MessageRow, Vec<RecipientRow>) {
        let started_at = Timestamp(1_733_300_000_123_456);
        let row = MessageRow {
            uid: -4_611_686_018_427_387_903,
            started_at,
            host: "mx1.example.com".into(),
            queue_id: "4jgvZz5YfNz1T5WZ".into(),
            first_seen: Timestamp(started_at.0 - 3),
            last_seen: Timestamp(started_at.0 + 86_400_000_000),
            sender: Some(String::new()),
            size: Some(i64::MAX),
            nrcpt: Some(2),
            message_id: Some("<é@example.net>".into()),
            client_name: Some("client.example.net".into()),
            client_ip: Some("2001:db8::1".into()),
            client_port: Some(65535),
            sasl_method: Some("PLAIN".into()),
            sasl_username: Some("alice".into()),
            origin: "smtpd",
            flow: Some("outbound"),
            state: "partial",
            state_reason: Some("why".into()),
            closed: true,
            removed_at: Some(Timestamp(started_at.0 + 5)),
            version: 17,
        };
        let recipients = vec![
            RecipientRow {
                message_uid: row.uid,
                message_started_at: started_at,
                address: "bob@example.org".into(),
                orig_address: Some("list@example.org".into()),
                status: "sent",
                dsn: Some("2.0.0".into()),
                relay: Some("mx.example.org[192.0.2.1]:25".into()),
                status_text: Some("250 2.0.0 Ok".into()),
                delay: Some(0.25),
                attempts: 3,
                last_attempt_at: Timestamp(started_at.0 + 4),
                flow: Some("outbound"),
            },
            RecipientRow {
                message_uid: row.uid,
                message_started_at: started_at,
                address: "carol@example.org".into(),
                status: "bounced",
                ..RecipientRow::default()
            },
        ];
        (row, recipients)
    }

    #[test]
    fn every_field_comes_back() {
        let (row, recipients) = full_row();
        let snapshot = Snapshot::encode(&row, &recipients);
        assert_eq!(snapshot.decode(), (row, recipients));
    }

    #[test]
    fn absent_fields_stay_absent_and_the_row_is_small() {
        let row = MessageRow {
            uid: 7,
            started_at: Timestamp(1),
            host: "mx1".into(),
            queue_id: "3A1F42C0D1".into(),
            origin: "unknown",
            state: "received",
            ..MessageRow::default()
        };
        let snapshot = Snapshot::encode(&row, &[]);
        assert_eq!(snapshot.decode(), (row, Vec::new()));
        assert!(snapshot.len() < 40, "{} bytes", snapshot.len());
    }

    #[test]
    fn a_word_outside_its_set_reads_back_as_the_fallback() {
        let (mut row, mut recipients) = full_row();
        row.state = "teleported";
        recipients[0].status = "beamed";
        let (back, rcpts) = Snapshot::encode(&row, &recipients).decode();
        assert_eq!((back.state, rcpts[0].status), ("queued", "queued"));
    }
}
