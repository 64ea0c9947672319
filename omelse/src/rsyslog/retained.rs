//! Without a spool file: the lines of a batch whose write failed, kept in memory until they are
//! written (rsyslog is answered only after the commit then, and keeps everything else in its
//! queue). rsyslog re-drives a failed batch: a line kept already is not kept twice.

use std::collections::HashSet;

/// Lines not yet in the database, in arrival order.
#[derive(Debug, Default)]
pub struct Retained {
    lines: Vec<String>,
    keys: HashSet<String>,
}

impl Retained {
    /// The lines kept, oldest first.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Keeps `lines` (those not kept already).
    pub fn keep(&mut self, lines: &[String]) {
        for line in lines {
            if self.keys.insert(source_key(line).to_owned()) {
                self.lines.push(line.clone());
            }
        }
    }

    /// Everything kept is in the database now.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.keys.clear();
    }
}

/// What tells two deliveries of a line apart: rsyslog's `%uuid%` (the template's first field),
/// else the whole line.
fn source_key(line: &str) -> &str {
    match line.split_once(' ').map(|(first, _)| super::template::uuid(first)) {
        Some(uuid) if uuid.len() == 32 && uuid.bytes().all(|b| b.is_ascii_hexdigit()) => uuid,
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_driven_line_is_kept_once_and_lines_without_a_uuid_by_their_text() {
        let uuid = "0123456789abcdef0123456789abcdef";
        let mut retained = Retained::default();
        retained.keep(&[format!("{uuid}@in a line"), "same line".into()]);
        retained.keep(&[format!("{uuid}@in a line"), "same line".into(), "other line".into()]);
        assert_eq!(
            retained.lines(),
            [format!("{uuid}@in a line"), "same line".into(), "other line".into()]
        );
        retained.clear();
        assert!(retained.lines().is_empty());
    }
}
