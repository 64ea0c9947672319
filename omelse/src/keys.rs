//! Stable 64-bit keys: the hash that names lines, message lives, sessions and queue ids, and the
//! content key that makes a line stored once however often it arrives. xxh3 is specified, so keys
//! stay the same across versions (the database's primary keys are made of them).

use std::collections::{BTreeMap, HashMap};

use xxhash_rust::xxh3::Xxh3;

use crate::parse::SyslogLine;

/// A stable 64-bit hash of several byte strings (each length-prefixed, so parts cannot run into
/// each other).
pub fn hash_parts(parts: &[&[u8]]) -> i64 {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.digest() as i64
}

/// Line keys: the hash of a line's content, told apart from identical lines of the same second
/// by how many came before it. So a line RELP sent twice, or a log file imported after the live
/// stream carried it, gets the key it had the first time.
///
/// The counts of the recent seconds are kept, not only the last one's: rsyslog's action workers
/// hand over their batches in any order, so the stream goes back a second or more at a batch's
/// edge, and two identical lines of a second (an smtpd serving the same client twice) must still
/// count 0 and 1 when other seconds came between them, or the second would be taken for the
/// first and dropped. But only the recent seconds: a second more than [`LineKeys::KEPT_SECONDS`]
/// behind the newest line is forgotten, so a line sent again later (RELP resending after a
/// reconnect, rsyslog retrying a batch after a suspension, at least its resume interval later)
/// counts 0 again and keeps its first key. The oldest second is also forgotten once
/// [`LineKeys::REMEMBERED`] lines are counted, which bounds the memory whatever the rate.
#[derive(Debug, Default)]
pub struct LineKeys {
    /// Per second, how many lines of each content it had so far.
    seconds: BTreeMap<i64, HashMap<u64, u32>>,
    /// The contents counted in `seconds`, all seconds together.
    remembered: usize,
}

impl LineKeys {
    /// Lines whose counts are kept: more than two of rsyslog's largest batches (10,000 lines each
    /// in the shipped stanza), about 2 MB.
    pub const REMEMBERED: usize = 65_536;

    /// How far behind the newest line's second a second's counts are kept: more than the log
    /// time two handed-over batches span on a live stream, less than the 30 s after which rsyslog
    /// resumes a suspended action or RELP resends.
    pub const KEPT_SECONDS: i64 = 10;

    /// The key of the next line.
    pub fn key(&mut self, line: &SyslogLine<'_>) -> i64 {
        let pid = line.pid.unwrap_or(u32::MAX).to_le_bytes();
        let time = line.time.0.to_le_bytes();
        let content = hash_parts(&[
            &time,
            line.host.as_bytes(),
            line.program.as_bytes(),
            &pid,
            line.message.as_bytes(),
        ]) as u64;
        let counts = self.seconds.entry(line.time.unix_seconds()).or_default();
        let ordinal = counts.entry(content).or_insert_with(|| {
            self.remembered += 1;
            0
        });
        let key = content ^ u64::from(*ordinal).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *ordinal += 1;
        self.forget_old_seconds();
        key as i64
    }

    /// Drops the seconds too far behind the newest one, and the oldest beyond the line bound.
    fn forget_old_seconds(&mut self) {
        let Some(newest) = self.seconds.last_key_value().map(|(second, _)| *second) else {
            return;
        };
        while let Some((&oldest, counts)) = self.seconds.first_key_value() {
            let too_old = oldest < newest - Self::KEPT_SECONDS;
            let too_many = self.remembered > Self::REMEMBERED && self.seconds.len() > 1;
            if !too_old && !too_many {
                break;
            }
            self.remembered -= counts.len();
            self.seconds.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Timestamp;

    fn line(second: i64, message: &str) -> SyslogLine<'_> {
        SyslogLine {
            time: Timestamp::from_unix_seconds(second),
            host: "mx1",
            program: "postfix/smtpd",
            pid: Some(7),
            message,
        }
    }

    fn keys(order: &[(i64, &str)]) -> Vec<i64> {
        let mut keys = LineKeys::default();
        order
            .iter()
            .map(|&(second, text)| keys.key(&line(second, text)))
            .collect()
    }

    #[test]
    fn identical_lines_of_a_second_get_distinct_keys_in_any_order() {
        let connect = "connect from ws1.example.test[10.0.30.1]";
        let in_order = keys(&[(10, connect), (10, connect), (11, connect)]);
        assert_ne!(in_order[0], in_order[1]);
        // A later batch first, then the earlier one, then the rest of second 10: the same keys.
        let shuffled = keys(&[(11, connect), (10, connect), (12, "other"), (10, connect)]);
        assert_eq!(
            (shuffled[1], shuffled[3], shuffled[0]),
            (in_order[0], in_order[1], in_order[2])
        );
    }

    #[test]
    fn a_line_sent_again_after_the_stream_moved_on_keeps_its_first_key() {
        let connect = "connect from ws1.example.test[10.0.30.1]";
        let later = 10 + LineKeys::KEPT_SECONDS + 1;
        let resent = keys(&[(10, connect), (11, "other"), (later, "newer"), (10, connect)]);
        assert_eq!(resent[0], resent[3]);
        // Within the kept seconds, the same line twice is two lines.
        let repeated = keys(&[
            (10, connect),
            (11, "other"),
            (10 + LineKeys::KEPT_SECONDS, "newer"),
            (10, connect),
        ]);
        assert_ne!(repeated[0], repeated[3]);
    }

    #[test]
    fn the_oldest_seconds_are_forgotten_beyond_the_bound() {
        let mut keys = LineKeys::default();
        let texts: Vec<String> = (0..LineKeys::REMEMBERED + 10).map(|i| format!("line {i}")).collect();
        for (i, text) in texts.iter().enumerate() {
            keys.key(&line(i as i64 / 1000, text));
        }
        assert!(keys.remembered <= LineKeys::REMEMBERED);
        assert!(keys.seconds.len() < LineKeys::REMEMBERED / 1000 + 1);
        assert!(!keys.seconds.contains_key(&0));
    }
}
