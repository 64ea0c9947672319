//! Queue statistics from `postqueue -j` (Postfix ≥ 3.1: one JSON object a message), whether the
//! master process runs (its pid file, `pid/master.pid` under the queue directory, names a live
//! process called `master`) and how full the spool's file system is (`df -P`: snmpd's own `disk`
//! only knows mount points, and the spool seldom is one). All work without privileges.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::mib::QUEUES;
use crate::run::Postfix;

/// One queue's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStat {
    pub count: u64,
    pub bytes: u64,
    /// Age in seconds of its oldest message, 0 when empty.
    pub oldest: u64,
}

/// What the agent reports: the four queues in [`QUEUES`] order, the master, and why the queues
/// could not be read (their numbers are then zeros).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub queues: [QueueStat; 4],
    pub master_alive: bool,
    /// Percent used of the queue directory's file system, when `df` could tell.
    pub spool_percent: Option<u64>,
    pub error: Option<String>,
}

impl Stats {
    pub fn read(postfix: &Postfix) -> Stats {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut stats = match postfix.queue_json() {
            Ok(text) => Stats::from_json(&text, now),
            Err(e) => Stats {
                error: Some(e),
                ..Stats::default()
            },
        };
        if let Ok(dir) = postfix.queue_directory() {
            stats.master_alive = master_alive(&dir);
            stats.spool_percent = spool_percent(&dir);
        }
        stats
    }

    /// Counts the lines of `postqueue -j`. `maildrop` (posted, not yet picked up) counts as
    /// incoming; a line that is not a message object is an error, not a silent zero.
    pub fn from_json(text: &str, now: u64) -> Stats {
        let mut stats = Stats::default();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let parsed: Result<Value, _> = serde_json::from_str(line);
            let Some(message) = parsed.ok().filter(Value::is_object) else {
                stats.error = Some(format!("postqueue -j: line {} is not a JSON object", n + 1));
                continue;
            };
            let name = message["queue_name"].as_str().unwrap_or("");
            let name = if name == "maildrop" { "incoming" } else { name };
            let Some(index) = QUEUES.iter().position(|q| *q == name) else {
                continue;
            };
            let queue = &mut stats.queues[index];
            queue.count += 1;
            queue.bytes += message["message_size"].as_u64().unwrap_or(0);
            if let Some(arrival) = message["arrival_time"].as_u64() {
                queue.oldest = queue.oldest.max(now.saturating_sub(arrival));
            }
        }
        stats
    }

    /// The `extend` output: count, bytes, oldest for each queue, then the master (1 or 0) and the
    /// spool's disk use (percent, empty when unknown), one a line.
    pub fn extend_lines(&self) -> String {
        let mut out = String::new();
        for q in &self.queues {
            out.push_str(&format!("{}\n{}\n{}\n", q.count, q.bytes, q.oldest));
        }
        out.push_str(if self.master_alive { "1\n" } else { "0\n" });
        if let Some(percent) = self.spool_percent {
            out.push_str(&percent.to_string());
        }
        out.push('\n');
        out
    }
}

/// True when `pid/master.pid` under the queue directory names a running `master`.
fn master_alive(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("pid/master.pid")) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "master")
}

/// `df -P DIR`: the capacity column of its one file system line (`66%`).
fn spool_percent(dir: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-P").arg(dir).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().nth(1)?;
    line.split_whitespace().nth(4)?.strip_suffix('%')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_counted_with_bytes_and_oldest_age() {
        let text = r#"{"queue_name": "deferred", "queue_id": "A1", "arrival_time": 1000, "message_size": 300}
{"queue_name": "deferred", "queue_id": "A2", "arrival_time": 1500, "message_size": 200}
{"queue_name": "hold", "queue_id": "B1", "arrival_time": 1900, "message_size": 50}
{"queue_name": "maildrop", "queue_id": "C1", "arrival_time": 1990, "message_size": 7}
{"queue_name": "active", "queue_id": "D1", "arrival_time": 1999, "message_size": 1}
"#;
        let stats = Stats::from_json(text, 2000);
        assert_eq!(stats.error, None);
        let [incoming, active, deferred, hold] = stats.queues;
        assert_eq!((deferred.count, deferred.bytes, deferred.oldest), (2, 500, 1000));
        assert_eq!((hold.count, hold.bytes, hold.oldest), (1, 50, 100));
        assert_eq!((incoming.count, active.count), (1, 1));
        assert_eq!(
            Stats {
                master_alive: true,
                ..stats
            }
            .extend_lines(),
            "1\n7\n10\n1\n1\n1\n2\n500\n1000\n1\n50\n100\n1\n\n"
        );
    }

    #[test]
    fn the_spool_disk_use_is_a_percentage() {
        let percent = spool_percent(Path::new("/")).unwrap();
        assert!(percent <= 100);
        assert_eq!(spool_percent(Path::new("/nonexistent/dir")), None);
    }

    #[test]
    fn an_empty_queue_is_zeros_and_garbage_is_an_error() {
        assert_eq!(Stats::from_json("", 5), Stats::default());
        let stats = Stats::from_json("postqueue: fatal: oops\n", 5);
        assert!(stats.error.unwrap().contains("line 1"));
    }
}
