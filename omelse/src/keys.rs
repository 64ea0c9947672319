//! Stable 64-bit keys: the hash that names lines, message lives, sessions and queue ids, and the
//! content key that makes a line stored once however often it arrives. xxh3 is specified, so keys
//! stay the same across versions (the database's primary keys are made of them).

use std::collections::{BTreeMap, HashMap};

use xxhash_rust::xxh3::Xxh3;

use crate::parse::{SyslogLine, Timestamp};

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

/// Line keys: the hash of a line's content (time, host, program, pid, text). So a line RELP or
/// omfwd sent twice, one replayed from a queue file, or a log file imported after the live stream
/// carried it, gets the key it had the first time.
///
/// A time with a fraction of a second (RFC 3339 with microseconds, as the shipped stanzas forward)
/// names its line: two lines equal in all of that are one line seen twice, whenever the second
/// copy comes, and share one key. Only whole-second times (RFC 3164, or a clock without a
/// fraction) cannot tell identical lines apart: those are told apart by how many came before.
///
/// The counts are kept per sending host, for that host's newest second and the one before it
/// ([`LineKeys::KEPT_SECONDS`]): each host's lines arrive in its own order (one action worker, as
/// shipped), so two identical lines of one second (an smtpd serving the same client twice) count
/// 0 and 1 even when other hosts' lines, of other seconds, come between them; and a line sent
/// again once its host has moved on (RELP resending after a reconnect, rsyslog retrying a batch
/// after a suspension) counts 0 again and keeps its first key. All hosts together keep at most
/// [`LineKeys::REMEMBERED`] contents, which bounds the memory whatever the input.
#[derive(Debug, Default)]
pub struct LineKeys {
    /// Per host, per second, how many lines of each content it had so far.
    hosts: HashMap<String, BTreeMap<i64, HashMap<u64, u32>>>,
    /// The contents counted, all hosts and seconds together.
    remembered: usize,
}

impl LineKeys {
    /// Contents whose counts are kept: far more than any host logs in two seconds, about 2 MB.
    pub const REMEMBERED: usize = 65_536;

    /// How many seconds behind its host's newest second a second's counts are kept: one, for the
    /// lines of a second boundary that reach the host's syslog slightly out of order.
    pub const KEPT_SECONDS: i64 = 1;

    /// The key of the next line: its content alone when its time has a fraction of a second
    /// (see [`LineKeys`]), else [`LineKeys::counted_key`].
    pub fn key(&mut self, line: &SyslogLine<'_>) -> i64 {
        if line.time.0.rem_euclid(Timestamp::MICROS_PER_SECOND) != 0 {
            return content_key(line) as i64;
        }
        self.counted_key(line)
    }

    /// The key of the next line, told apart from the identical lines of its host and second that
    /// came before it (a line whose time is borrowed, as an unreadable line's, takes this one).
    pub fn counted_key(&mut self, line: &SyslogLine<'_>) -> i64 {
        let content = content_key(line);
        // One lookup per line; the host's name is copied only the first time it is seen.
        let seconds = match self.hosts.get_mut(line.host) {
            Some(seconds) => seconds,
            None => self.hosts.entry(line.host.to_owned()).or_default(),
        };
        let counts = seconds.entry(line.time.unix_seconds()).or_default();
        let ordinal = counts.entry(content).or_insert_with(|| {
            self.remembered += 1;
            0
        });
        let key = content ^ u64::from(*ordinal).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *ordinal += 1;
        self.remembered -= forget_before_kept(seconds);
        if self.remembered > Self::REMEMBERED {
            self.forget_other_hosts(line.host);
        }
        key as i64
    }

    /// Past the bound (many hosts, or a host with a huge second): only `host`'s newest second stays,
    /// or nothing when that second alone is past it.
    fn forget_other_hosts(&mut self, host: &str) {
        self.hosts.retain(|name, _| name == host);
        if let Some(seconds) = self.hosts.get_mut(host) {
            while seconds.len() > 1 {
                seconds.pop_first();
            }
        }
        self.remembered = self.hosts.values().flat_map(|s| s.values()).map(HashMap::len).sum();
        if self.remembered > Self::REMEMBERED {
            // One second of one host holds more: its counts start again (a repeat of a line
            // counted before this point could then be taken for it).
            self.hosts.clear();
            self.remembered = 0;
        }
    }
}

/// The hash of what a line is: its time, host, program, pid and text.
fn content_key(line: &SyslogLine<'_>) -> u64 {
    let pid = line.pid.unwrap_or(u32::MAX).to_le_bytes();
    let time = line.time.0.to_le_bytes();
    hash_parts(&[
        &time,
        line.host.as_bytes(),
        line.program.as_bytes(),
        &pid,
        line.message.as_bytes(),
    ]) as u64
}

/// Drops a host's seconds more than [`LineKeys::KEPT_SECONDS`] behind its newest; returns how many
/// contents went.
fn forget_before_kept(seconds: &mut BTreeMap<i64, HashMap<u64, u32>>) -> usize {
    let Some(&newest) = seconds.keys().next_back() else {
        return 0;
    };
    let mut forgotten = 0;
    while let Some(entry) = seconds.first_entry() {
        if *entry.key() >= newest - LineKeys::KEPT_SECONDS {
            break;
        }
        forgotten += entry.remove().len();
    }
    forgotten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(host: &'a str, second: i64, message: &'a str) -> SyslogLine<'a> {
        SyslogLine {
            time: Timestamp::from_unix_seconds(second),
            host,
            program: "postfix/smtpd",
            pid: Some(7),
            message,
        }
    }

    fn keys(order: &[(&str, i64, &str)]) -> Vec<i64> {
        let mut keys = LineKeys::default();
        order
            .iter()
            .map(|&(host, second, text)| keys.key(&line(host, second, text)))
            .collect()
    }

    const CONNECT: &str = "connect from ws1.example.test[10.0.30.1]";

    #[test]
    fn identical_lines_of_a_second_get_distinct_keys_whatever_other_hosts_log_between() {
        let alone = keys(&[("mx1", 10, CONNECT), ("mx1", 10, CONNECT)]);
        assert_ne!(alone[0], alone[1]);
        // Another host, its clock a few seconds on, logs between them: the same two keys.
        let interleaved = keys(&[("mx1", 10, CONNECT), ("out1", 14, "other"), ("mx1", 10, CONNECT)]);
        assert_eq!((interleaved[0], interleaved[2]), (alone[0], alone[1]));
    }

    #[test]
    fn a_line_sent_again_after_its_host_moved_on_keeps_its_first_key() {
        let later = 10 + LineKeys::KEPT_SECONDS + 1;
        let resent = keys(&[("mx1", 10, CONNECT), ("mx1", later, "newer"), ("mx1", 10, CONNECT)]);
        assert_eq!(resent[0], resent[2]);
        // Within the kept seconds, the same line twice is two lines.
        let kept = 10 + LineKeys::KEPT_SECONDS;
        let repeated = keys(&[("mx1", 10, CONNECT), ("mx1", kept, "newer"), ("mx1", 10, CONNECT)]);
        assert_ne!(repeated[0], repeated[2]);
    }

    /// A line with a fraction of a second is named by its content: seen again, at once (an
    /// omfwd batch resent to the rsyslogd that replays the same lines from its queue file) or
    /// later, it keeps its key; two distinct lines of the same microsecond keep theirs.
    #[test]
    fn a_line_timed_to_the_microsecond_keeps_its_key_however_often_it_comes() {
        let mut keys = LineKeys::default();
        let at = |micros| SyslogLine {
            time: Timestamp(10 * Timestamp::MICROS_PER_SECOND + micros),
            ..line("mx1", 0, CONNECT)
        };
        let first = keys.key(&at(165_000));
        let other = keys.key(&SyslogLine {
            message: "other",
            ..at(165_000)
        });
        assert_eq!(keys.key(&at(165_000)), first);
        assert_eq!(keys.key(&at(165_000)), first);
        assert_ne!(other, first);
        assert_ne!(keys.key(&at(165_001)), first);
        // A whole second cannot tell the same line from its twin: those still count.
        assert_ne!(keys.key(&at(0)), keys.key(&at(0)));
    }

    #[test]
    fn memory_stays_bounded_whatever_the_input() {
        let mut keys = LineKeys::default();
        let texts: Vec<String> = (0..LineKeys::REMEMBERED + 10).map(|i| format!("line {i}")).collect();
        // Every line of one host in one second, then many hosts.
        for text in &texts {
            keys.key(&line("mx1", 5, text));
        }
        assert!(keys.remembered <= LineKeys::REMEMBERED, "{}", keys.remembered);
        let hosts: Vec<String> = (0..LineKeys::REMEMBERED + 10).map(|i| format!("h{i}")).collect();
        for host in &hosts {
            keys.key(&line(host, 5, CONNECT));
        }
        assert!(keys.remembered <= LineKeys::REMEMBERED, "{}", keys.remembered);
        assert!(keys.hosts.len() <= LineKeys::REMEMBERED);
        let counted: usize = keys.hosts.values().flat_map(|s| s.values()).map(HashMap::len).sum();
        assert_eq!(counted, keys.remembered);
    }
}
