//! Stable 64-bit keys: the hash that names lines, message lives, sessions and queue ids, and the
//! content key that makes a line stored once however often it arrives. xxh3 is specified, so keys
//! stay the same across versions (the database's primary keys are made of them).

use std::collections::BTreeMap;

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
#[derive(Debug)]
pub struct LineKeys {
    /// The second being numbered, and how many lines of each content it had so far.
    same_second: (i64, BTreeMap<u64, u32>),
}

impl Default for LineKeys {
    fn default() -> Self {
        LineKeys {
            same_second: (i64::MIN, BTreeMap::new()),
        }
    }
}

impl LineKeys {
    /// The key of the next line, given in log order.
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
        let second = line.time.unix_seconds();
        if self.same_second.0 != second {
            self.same_second = (second, BTreeMap::new());
        }
        let ordinal = self.same_second.1.entry(content).or_default();
        let key = content ^ u64::from(*ordinal).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        *ordinal += 1;
        key as i64
    }
}
