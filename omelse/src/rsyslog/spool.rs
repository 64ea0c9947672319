//! The lines of batches whose write failed, kept in a file (`spool.file`) until they are written.
//!
//! rsyslog marks a batch's messages done in its queue *before* our commit runs (module ABI notes
//! §8.4): when the database is down and rsyslogd stops, the batch in flight is neither written
//! nor saved with the queue. Its lines are in this file instead, fsynced before the commit
//! answers, and the next rsyslogd replays them before anything else. A line also re-delivered by
//! rsyslog is dropped by its `%uuid%`, as any re-delivery is.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Lines not yet in the database, in arrival order, mirrored to `path` when there is one.
#[derive(Debug, Default)]
pub struct Spool {
    path: Option<PathBuf>,
    lines: Vec<String>,
    keys: HashSet<String>,
    /// Lines kept since the file was last written.
    unsaved: bool,
    /// The file exists (read at open, or written since): only then does a commit remove it, so
    /// that the commits of a healthy database touch no file at all.
    on_disk: bool,
}

impl Spool {
    /// The spool at `path` (none: kept in memory only), with the lines a previous process left.
    pub fn open(path: Option<PathBuf>) -> io::Result<Spool> {
        let mut spool = Spool {
            path,
            ..Spool::default()
        };
        if let Some(path) = &spool.path {
            match File::options().read(true).custom_flags(libc::O_NOFOLLOW).open(path) {
                Ok(file) => {
                    let mut kept = Vec::new();
                    for line in BufReader::new(file).lines() {
                        kept.push(unescape(&line?));
                    }
                    spool.keep(&kept);
                    spool.unsaved = false;
                    spool.on_disk = true;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(spool)
    }

    /// Whether the lines are kept in a file (`spool.file`), not in memory only.
    pub fn on_file(&self) -> bool {
        self.path.is_some()
    }

    /// The lines kept, oldest first.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Keeps `lines` (those not kept already: rsyslog re-drives a failed batch).
    pub fn keep(&mut self, lines: &[String]) {
        for line in lines {
            if self.keys.insert(source_key(line).to_owned()) {
                self.lines.push(line.clone());
                self.unsaved = true;
            }
        }
    }

    /// Writes the kept lines to the file and syncs it, if any were kept since the last time.
    pub fn save(&mut self) -> io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if !self.unsaved {
            return Ok(());
        }
        let temporary = path.with_extension("tmp");
        let mut file = io::BufWriter::new(create_private(&temporary)?);
        for line in &self.lines {
            file.write_all(escape(line).as_bytes())?;
            file.write_all(b"\n")?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, path)?;
        sync_directory(path)?;
        self.unsaved = false;
        self.on_disk = true;
        Ok(())
    }

    /// Everything kept is in the database now.
    pub fn clear(&mut self) -> io::Result<()> {
        self.lines.clear();
        self.keys.clear();
        self.unsaved = false;
        match &self.path {
            Some(path) if self.on_disk => {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                self.on_disk = false;
                Ok(())
            }
            _ => Ok(()),
        }
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

/// One line per message in the file: backslashes and line breaks escaped.
fn escape(line: &str) -> String {
    line.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A new file at `path` for its owner only (0600: the lines are mail logs): a stale one (a
/// process stopped while writing) is removed first, and nothing there is followed or reused, so
/// a link planted in the directory cannot send the lines elsewhere.
fn create_private(path: &Path) -> io::Result<File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// A rename is durable once the directory holding it is synced.
fn sync_directory(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("omelse-spool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("omelse.spool")
    }

    const UUID_A: &str = "0123456789abcdef0123456789abcdef";
    const UUID_B: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn kept_lines_survive_the_process_and_clear_removes_them() {
        let path = temp_path("survive");
        let lines = vec![
            format!("{UUID_A} 2026-11-29T10:00:00Z mx1 postfix/smtpd[1]: a \\ backslash"),
            format!("{UUID_B} 2026-11-29T10:00:01Z mx1 postfix/smtpd[1]: two\nlines\r"),
        ];
        let mut spool = Spool::open(Some(path.clone())).unwrap();
        assert!(spool.lines().is_empty());
        spool.keep(&lines);
        spool.keep(&lines[..1]); // rsyslog re-drives the first line
        spool.save().unwrap();

        let reopened = Spool::open(Some(path.clone())).unwrap();
        assert_eq!(reopened.lines(), lines.as_slice());

        let mut spool = reopened;
        spool.clear().unwrap();
        assert!(!path.exists());
        assert!(Spool::open(Some(path)).unwrap().lines().is_empty());
    }

    #[test]
    fn lines_without_a_uuid_are_told_apart_by_their_text() {
        let mut spool = Spool::open(None).unwrap();
        spool.keep(&[
            "same line".to_string(),
            "same line".to_string(),
            "other line".to_string(),
        ]);
        assert_eq!(spool.lines(), ["same line", "other line"]);
        spool.save().unwrap();
        spool.clear().unwrap();
    }

    /// The spool holds mail logs: its owner's only, and a link planted where it or its temporary
    /// file go is neither followed nor written through.
    #[test]
    fn the_spool_is_private_and_follows_no_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let path = temp_path("private");
        let target = path.with_file_name("elsewhere");
        std::fs::write(&target, "not the spool\n").unwrap();
        symlink(&target, path.with_extension("tmp")).unwrap();
        let mut spool = Spool::open(Some(path.clone())).unwrap();
        spool.keep(&[format!("{UUID_A} a line")]);
        spool.save().unwrap();
        let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not the spool\n");

        std::fs::remove_file(&path).unwrap();
        symlink(&target, &path).unwrap();
        let refused = Spool::open(Some(path)).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ELOOP), "{refused}");
    }

    #[test]
    fn an_unwritable_spool_says_why() {
        let mut spool = Spool::open(Some(PathBuf::from("/nonexistent-dir/omelse.spool"))).unwrap();
        spool.keep(&["a line".to_string()]);
        let error = spool.save().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }
}
