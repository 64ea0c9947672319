//! The contract between elsed and `else-pfagent`: where the objects live and what a queue id is.
//! The library of the `else-pfagent` crate, which elsed depends on, so the two never disagree.
//! Standard library only: the agent links neither net-snmp nor the database.
//!
//! ELSE's subtree is `.1.3.6.1.4.1.99999.1` — **a placeholder** under the private enterprises arc,
//! beyond the numbers IANA has assigned so far, until ELSE registers its own Private Enterprise
//! Number; change [`ELSE_ENTERPRISE`] (and the snmpd snippet) then.
//!
//! ```text
//! BASE = .1.3.6.1.4.1.99999.1.1                 else-pfagent (pass_persist)
//!   BASE.1.Q.1   Gauge32   messages in queue Q     (Q: 1 incoming, 2 active, 3 deferred, 4 hold)
//!   BASE.1.Q.2   Gauge32   bytes in queue Q         (saturates at 2^32-1: pass_persist has no Counter64)
//!   BASE.1.Q.3   Gauge32   age in seconds of the oldest message of Q (0 when empty)
//!   BASE.2.0     INTEGER   Postfix master process alive: 1 yes, 0 no
//!   BASE.3.0     STRING    why the statistics could not be read (empty when they could)
//!   BASE.4.0     Gauge32   percent used of the file system holding the queue directory
//!   BASE.10      control subtree (the write user's view)
//!     .1.0  INTEGER  flush: set 1 runs `postqueue -f`
//!     .2.0  INTEGER  delete deferred: set 1 runs `postsuper -d ALL deferred`
//!     .3.0  STRING   hold ID      `postsuper -h ID`
//!     .4.0  STRING   release ID   `postsuper -H ID`
//!     .5.0  STRING   requeue ID   `postsuper -r ID`
//!     .6.0  STRING   delete ID    `postsuper -d ID`
//!     .7.0  INTEGER  last action's status: 0 none yet, 1 done, 2 failed (read-only)
//!     .8.0  STRING   last action's text: the command and what it printed (read-only)
//!     .9.0  Counter32 number of actions run since the agent started (read-only)
//! ```
//! The trigger objects read as 0 or "": reads never act.

/// The placeholder enterprise arc (see the module documentation).
pub const ELSE_ENTERPRISE: &[u32] = &[1, 3, 6, 1, 4, 1, 99999, 1];

/// else-pfagent's subtree, the `pass_persist` registration.
pub const AGENT_BASE: &[u32] = &[1, 3, 6, 1, 4, 1, 99999, 1, 1];

/// The queues, in the order of their index (1-based) under `BASE.1`.
pub const QUEUES: [&str; 4] = ["incoming", "active", "deferred", "hold"];

/// Columns of the queue table.
pub const COL_COUNT: u32 = 1;
pub const COL_BYTES: u32 = 2;
pub const COL_OLDEST: u32 = 3;

/// Sub-identifiers under `BASE`.
pub const QUEUE_TABLE: u32 = 1;
pub const MASTER_ALIVE: u32 = 2;
pub const STATS_ERROR: u32 = 3;
pub const SPOOL_DISK: u32 = 4;
pub const CONTROL: u32 = 10;

/// Sub-identifiers under `BASE.10`.
pub const LAST_STATUS: u32 = 7;
pub const LAST_TEXT: u32 = 8;
pub const ACTION_COUNT: u32 = 9;

/// The actions, each with its sub-identifier under `BASE.10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Flush,
    DeleteDeferred,
    Hold,
    Release,
    Requeue,
    Delete,
}

impl ActionKind {
    pub const ALL: [ActionKind; 6] = [
        ActionKind::Flush,
        ActionKind::DeleteDeferred,
        ActionKind::Hold,
        ActionKind::Release,
        ActionKind::Requeue,
        ActionKind::Delete,
    ];

    /// The name used on command lines, in the audit log and in the web API.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Flush => "flush",
            ActionKind::DeleteDeferred => "delete-deferred",
            ActionKind::Hold => "hold",
            ActionKind::Release => "release",
            ActionKind::Requeue => "requeue",
            ActionKind::Delete => "delete",
        }
    }

    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Sub-identifier of its object under `BASE.10`.
    pub fn subid(self) -> u32 {
        match self {
            ActionKind::Flush => 1,
            ActionKind::DeleteDeferred => 2,
            ActionKind::Hold => 3,
            ActionKind::Release => 4,
            ActionKind::Requeue => 5,
            ActionKind::Delete => 6,
        }
    }

    pub fn from_subid(subid: u32) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|a| a.subid() == subid)
    }

    /// True for the actions on one message (a STRING queue id); the others are INTEGER 1.
    pub fn takes_queue_id(self) -> bool {
        !matches!(self, ActionKind::Flush | ActionKind::DeleteDeferred)
    }

    /// The full OID of its object (`BASE.10.N.0`).
    pub fn oid(self) -> Vec<u32> {
        control_oid(self.subid())
    }
}

/// `BASE.10.sub.0`.
pub fn control_oid(sub: u32) -> Vec<u32> {
    let mut oid = AGENT_BASE.to_vec();
    oid.extend([CONTROL, sub, 0]);
    oid
}

/// `BASE.1.queue.column` (queue 1-based, in [`QUEUES`] order).
pub fn queue_oid(queue: usize, column: u32) -> Vec<u32> {
    let mut oid = AGENT_BASE.to_vec();
    oid.extend([QUEUE_TABLE, queue as u32 + 1, column]);
    oid
}

/// `BASE.sub.0` for the scalars.
pub fn scalar_oid(sub: u32) -> Vec<u32> {
    let mut oid = AGENT_BASE.to_vec();
    oid.extend([sub, 0]);
    oid
}

/// Digits and consonants: the alphabet of Postfix's long queue ids (mail_queue.h encodes the
/// time in base 52 without vowels, so that no word is spelled; the inode number in base 51, the
/// same without `z`, which separates the two).
fn long_id_char(b: u8) -> bool {
    b.is_ascii_digit() || (b.is_ascii_alphabetic() && !b"AEIOUaeiou".contains(&b))
}

/// The time part of a long queue id: 6 characters of seconds and 4 of microseconds, padded.
const LONG_ID_TIME_CHARS: usize = 10;

/// True for a Postfix queue id, short (`enable_long_queue_ids = no`: 6 to 16 upper-case hex
/// digits) or long (10 characters of time, which may hold a `z`, then the separator `z`, then
/// the inode number without `z`, 12 to 32 characters in all). Anything else — spaces, shell
/// metacharacters, options (`-d`), `ALL` — is refused before it reaches a command line.
pub fn valid_queue_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let short =
        (6..=16).contains(&bytes.len()) && bytes.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b));
    let long = (12..=32).contains(&bytes.len())
        && bytes[LONG_ID_TIME_CHARS] == b'z'
        && bytes[..LONG_ID_TIME_CHARS].iter().all(|&b| long_id_char(b))
        && bytes[LONG_ID_TIME_CHARS + 1..]
            .iter()
            .all(|&b| long_id_char(b) && b != b'z');
    short || long
}

/// `.1.3.6…` of an OID.
pub fn format_oid(oid: &[u32]) -> String {
    oid.iter().map(|n| format!(".{n}")).collect()
}

/// Parses `.1.3.6…` or `1.3.6…`; `None` for anything else.
pub fn parse_oid(text: &str) -> Option<Vec<u32>> {
    let text = text.trim();
    let text = text.strip_prefix('.').unwrap_or(text);
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split('.').map(|n| n.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_queue_ids_are_accepted() {
        for id in [
            "4F1A23B0C5",
            "ABCDEF",
            "0123456789ABCDEF",
            "4Xt6sM0ntGz6Cm",
            "4P7Lpg3KLbzHQL2",
            // The time part may hold a `z` (a real Postfix 3.7 queue id): the separator is the 11th.
            "4jgvZz5YfNz1T5WZ",
            "4Xt6zM0ntGz6Cm",
        ] {
            assert!(valid_queue_id(id), "{id}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for id in [
            "",
            "ABCDE",
            "4f1a23b0c5",
            "4F1A23B0C5;",
            "a;b",
            "x; rm -rf /",
            "ALL",
            "-d ALL",
            "$(reboot)",
            "`id`",
            "4F1A 23B0",
            "4F1A23B0C5\n",
            "0123456789ABCDEF0",
            "4Xt6sM0ntG6Cm",
            "4Xt6sM0nzGt6Cm",
            "4Xt6sM0ntGzz",
            "aeiouaeizbc",
            "4Xt6sM0ntGz6C\u{e9}",
            "../../etc/x",
        ] {
            assert!(!valid_queue_id(id), "{id:?}");
        }
    }

    #[test]
    fn oids_round_trip() {
        let oid = ActionKind::Hold.oid();
        assert_eq!(format_oid(&oid), ".1.3.6.1.4.1.99999.1.1.10.3.0");
        assert_eq!(parse_oid(&format_oid(&oid)), Some(oid));
        assert_eq!(parse_oid("1.3.x"), None);
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(kind.name()), Some(kind));
            assert_eq!(ActionKind::from_subid(kind.subid()), Some(kind));
        }
    }
}
