//! omelse's own queue on disk (`spool.file`): every batch rsyslog hands over is appended here
//! before rsyslog is answered, and leaves once PostgreSQL has committed it.
//!
//! rsyslog marks a batch done as soon as the module answers (module ABI notes §8.4), so from
//! then on the lines are ours: while the database keeps up they are parsed and written at once,
//! and the file is removed whenever every line in it is committed; while it is away (or behind)
//! they wait here, in arrival order, and are read back in chunks when it returns. The next
//! rsyslogd goes on where a stopped or killed one was. This is what rsyslog's disk queue did
//! for the action before, at a fraction of its cost: rsyslog serializes every property of every
//! message into its queue files, this file holds the rendered line only.
//!
//! The file: a header line with the byte offset of the first line not committed yet (rewritten
//! in place after each commit), then one line per message, backslashes and line breaks escaped.
//! Writes are not synced, as rsyslog's own queue files are not unless `queue.syncQueueFiles` is
//! set: the file survives rsyslogd being stopped or killed, not the machine losing power before
//! the kernel wrote it out.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `{offset:020}\n`: where the lines not committed yet begin.
const HEADER_LEN: u64 = 21;

/// A place in the spool: the lines before it (this process read them) or the whole file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(u64);

/// The spool file and three places in it: committed ≤ read ≤ end.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    /// Open while the file exists (it is removed whenever everything in it is committed).
    file: Option<File>,
    /// The first line not committed yet.
    committed: u64,
    /// The first line not handed to the pipeline yet.
    read: u64,
    /// The end of the file.
    end: u64,
    /// Most bytes of lines not committed yet; beyond, batches are refused (rsyslog keeps them).
    max_bytes: u64,
    /// The unread lines as they were appended, when all of them are here (not read back from
    /// the file then): none a previous process left, or after a rewind, or beyond
    /// [`UNREAD_IN_MEMORY`] lines.
    unread: Option<VecDeque<(Vec<String>, u64)>>,
}

/// Most unread lines kept in memory beside the file: a few batches parsed ahead of the write.
const UNREAD_IN_MEMORY: usize = 50_000;

impl Spool {
    /// Whether the spool file at `path` holds lines not committed yet (a previous process's),
    /// read from its header without taking the file: a plain file only, never through a link.
    pub fn holds_lines(path: impl AsRef<Path>) -> bool {
        let Ok(file) = open_existing(path.as_ref(), false) else {
            return false;
        };
        match read_header(&file) {
            Ok((end, Some(committed))) => committed < end,
            // Without a header (the former format, or a torn one) the whole file is lines.
            Ok((end, None)) => end > 0,
            Err(_) => false,
        }
    }

    /// The spool at `path`, with the lines a previous process left (none read yet).
    pub fn open(path: PathBuf, max_bytes: u64) -> io::Result<Spool> {
        let mut spool = Spool {
            path,
            file: None,
            committed: HEADER_LEN,
            read: HEADER_LEN,
            end: HEADER_LEN,
            max_bytes,
            unread: Some(VecDeque::new()),
        };
        let file = match open_existing(&spool.path, true) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(spool),
            Err(e) => return Err(e),
        };
        let (end, committed) = read_header(&file)?;
        match committed {
            Some(committed) => {
                let end = without_torn_tail(&file, committed, end)?;
                spool.file = Some(file);
                (spool.committed, spool.read, spool.end) = (committed, committed, end);
                spool.unread = (committed == end).then(VecDeque::new);
                if committed == end {
                    spool.remove()?;
                }
            }
            // A file without the header: the lines a module before this format left (all of
            // them unwritten), or a header torn by a crash. Kept whole, in this format.
            None => spool.rewrite_whole(file)?,
        }
        Ok(spool)
    }

    /// Whether more lines may come: those not committed are under the bound.
    pub fn has_room(&self) -> bool {
        self.waiting_bytes() < self.max_bytes
    }

    /// Bytes of lines not committed yet.
    pub fn waiting_bytes(&self) -> u64 {
        self.end - self.committed
    }

    /// Whether lines wait that this process has not read (a previous process's, or those
    /// appended while the database was away).
    pub fn has_unread(&self) -> bool {
        self.read < self.end
    }

    /// Where the lines read so far end.
    pub fn read_mark(&self) -> Mark {
        Mark(self.read)
    }

    /// Appends a batch behind the other lines, unread. Not appended, the lines come back with
    /// the error (the caller then goes without the file).
    pub fn append(&mut self, lines: Vec<String>) -> Result<(), (io::Error, Vec<String>)> {
        let mut bytes = Vec::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
        for line in &lines {
            escape_into(&mut bytes, line);
            bytes.push(b'\n');
        }
        if let Err(e) = self.write_at_end(&bytes) {
            return Err((e, lines));
        }
        let length = bytes.len() as u64;
        self.end += length;
        if let Some(unread) = self.unread.as_mut() {
            if unread.iter().map(|(batch, _)| batch.len()).sum::<usize>() + lines.len() <= UNREAD_IN_MEMORY {
                unread.push_back((lines, length));
            } else {
                self.unread = None;
            }
        }
        Ok(())
    }

    /// Writes `bytes` at the end of the file (made when there is none).
    fn write_at_end(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(create_private(&self.path)?);
            self.write_header()?;
        }
        let file = self.file.as_ref().expect("opened above");
        if let Err(e) = file.write_all_at(bytes, self.end) {
            // Whatever part was written is cut off again: the next append starts at `end`.
            let _ = file.set_len(self.end);
            return Err(e);
        }
        Ok(())
    }

    /// Reads up to `max_lines` unread lines (oldest first; a whole batch when it is still in
    /// memory) and counts them as read.
    pub fn read_unread(&mut self, max_lines: usize) -> io::Result<Vec<String>> {
        if let Some(unread) = self.unread.as_mut() {
            let (batch, length) = unread.pop_front().unwrap_or_default();
            self.read += length;
            return Ok(batch);
        }
        let Some(file) = self.file.as_ref() else {
            return Ok(Vec::new());
        };
        let mut lines = Vec::new();
        let mut chunk = vec![0u8; 1 << 20];
        let mut partial: Vec<u8> = Vec::new();
        let mut at = self.read;
        while at < self.end && lines.len() < max_lines {
            let want = chunk.len().min((self.end - at) as usize);
            file.read_exact_at(&mut chunk[..want], at)?;
            partial.extend_from_slice(&chunk[..want]);
            let mut start = 0;
            while let Some(newline) = partial[start..].iter().position(|&b| b == b'\n') {
                if lines.len() == max_lines {
                    break;
                }
                lines.push(unescape(&String::from_utf8_lossy(&partial[start..start + newline])));
                start += newline + 1;
            }
            self.read += start as u64;
            partial.drain(..start);
            at = self.read + partial.len() as u64;
        }
        if self.read == self.end {
            self.unread = Some(VecDeque::new());
        }
        Ok(lines)
    }

    /// The lines before `mark` are committed: the header says so, and the file goes once
    /// nothing in it waits.
    pub fn committed_through(&mut self, mark: Mark) -> io::Result<()> {
        self.committed = mark.0.clamp(self.committed, self.end);
        if self.committed == self.end {
            return self.remove();
        }
        self.write_header()
    }

    /// The lines read but not committed are to be read again (their write failed, and the
    /// pipeline starts again from what the database holds).
    pub fn rewind(&mut self) {
        self.read = self.committed;
        self.unread = (self.read == self.end).then(VecDeque::new);
    }

    fn write_header(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.write_all_at(format!("{:020}\n", self.committed).as_bytes(), 0),
            None => Ok(()),
        }
    }

    /// Nothing waits: the file is removed (a commit of a database that keeps up touches no file
    /// but its own batch's).
    fn remove(&mut self) -> io::Result<()> {
        self.file = None;
        self.unread = Some(VecDeque::new());
        (self.committed, self.read, self.end) = (HEADER_LEN, HEADER_LEN, HEADER_LEN);
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Rewrites a file without a valid header as unwritten lines in this format.
    fn rewrite_whole(&mut self, file: File) -> io::Result<()> {
        let mut lines = Vec::new();
        for line in BufReader::new(file).lines() {
            lines.push(unescape(&line?));
        }
        let temporary = self.path.with_extension("tmp");
        self.file = Some(create_private(&temporary)?);
        self.write_header()?;
        self.append(lines).map_err(|(e, _)| e)?;
        self.file.as_ref().expect("created above").sync_all()?;
        std::fs::rename(&temporary, &self.path)?;
        self.rewind();
        Ok(())
    }
}

/// The end of the last whole line: a line cut by a crash while it was appended was never
/// answered for (rsyslog still had it), and is cut off.
fn without_torn_tail(file: &File, start: u64, end: u64) -> io::Result<u64> {
    let mut chunk = [0u8; 4096];
    let mut at = end;
    while at > start {
        let from = at.saturating_sub(chunk.len() as u64).max(start);
        let part = &mut chunk[..(at - from) as usize];
        file.read_exact_at(part, from)?;
        if let Some(newline) = part.iter().rposition(|&b| b == b'\n') {
            let whole = from + newline as u64 + 1;
            if whole < end {
                file.set_len(whole)?;
            }
            return Ok(whole);
        }
        at = from;
    }
    if start < end {
        file.set_len(start)?;
    }
    Ok(start)
}

/// The file's length and, when its header is whole and points inside the file, the offset of
/// the first line not committed.
fn read_header(file: &File) -> io::Result<(u64, Option<u64>)> {
    let end = file.metadata()?.len();
    let mut header = [0u8; HEADER_LEN as usize];
    let committed = match file.read_exact_at(&mut header, 0) {
        Ok(()) => parse_header(&header).filter(|committed| (HEADER_LEN..=end).contains(committed)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
        Err(e) => return Err(e),
    };
    Ok((end, committed))
}

fn parse_header(header: &[u8]) -> Option<u64> {
    let (digits, newline) = header.split_at(header.len() - 1);
    if newline != b"\n" || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One line per message in the file: backslashes and line breaks escaped.
fn escape_into(out: &mut Vec<u8>, line: &str) {
    let bytes = line.as_bytes();
    let mut start = 0;
    for (at, byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        out.extend_from_slice(escaped);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn unescape(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_owned();
    }
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

/// The spool file a previous process left at `path`, for reading (and writing): never through a
/// link, so that one planted in the directory cannot feed or take the lines.
fn open_existing(path: &Path, write: bool) -> io::Result<File> {
    File::options()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
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
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("omelse-spool-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("omelse.spool")
    }

    fn lines(range: std::ops::Range<usize>) -> Vec<String> {
        range
            .map(|n| format!("{n:032x} 2026-11-29T10:00:00.{n:06}Z mx1 postfix/smtpd[1]: line {n} \\ with\nbreaks\r"))
            .collect()
    }

    const MANY: u64 = 1 << 40;

    /// The common case: each batch appended is read at once (the caller has it), committed, and
    /// the file goes.
    #[test]
    fn a_batch_committed_at_once_leaves_no_file() {
        let path = temp_path("at-once");
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        spool.append(lines(0..3)).unwrap();
        assert!(path.exists() && spool.has_unread());
        assert_eq!(spool.read_unread(100).unwrap(), lines(0..3));
        let through_first = spool.read_mark();
        spool.append(lines(3..5)).unwrap();
        spool.committed_through(through_first).unwrap();
        assert!(path.exists(), "the second batch waits");
        assert_eq!(spool.read_unread(100).unwrap(), lines(3..5));
        spool.committed_through(spool.read_mark()).unwrap();
        assert!(!path.exists() && !spool.has_unread());
    }

    /// Lines appended while the database is away wait unread behind those read; a new process
    /// finds every line not committed, in order, and nothing committed.
    #[test]
    fn uncommitted_lines_survive_the_process_in_order() {
        let path = temp_path("survive");
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        spool.append(lines(0..2)).unwrap();
        spool.read_unread(100).unwrap();
        spool.committed_through(spool.read_mark()).unwrap();
        spool.append(lines(2..4)).unwrap();
        assert_eq!(spool.read_unread(100).unwrap(), lines(2..4)); // the database takes them…
        spool.rewind(); // …and their write fails
        spool.append(lines(4..7)).unwrap(); // while the database is away
        assert_eq!(spool.read_unread(3).unwrap(), lines(2..5));
        drop(spool);

        let mut reopened = Spool::open(path.clone(), MANY).unwrap();
        assert!(reopened.has_unread());
        assert_eq!(reopened.read_unread(100).unwrap(), lines(2..7));
        assert!(!reopened.has_unread());
        reopened.committed_through(reopened.read_mark()).unwrap();
        assert!(!path.exists());
        assert!(!Spool::open(path, MANY).unwrap().has_unread());
    }

    /// Read in chunks smaller and larger than the reader's buffer, every line comes back once.
    #[test]
    fn reading_in_chunks_gives_every_line_once() {
        let path = temp_path("chunks");
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        spool.append(lines(0..1)).unwrap();
        spool.rewind();
        let long: Vec<String> = (0..40).map(|n| format!("{n} {}", "x".repeat(70_000))).collect();
        spool.append(long.clone()).unwrap();
        let mut read = spool.read_unread(1).unwrap();
        while spool.has_unread() {
            read.extend(spool.read_unread(7).unwrap());
        }
        let mut expected = lines(0..1);
        expected.extend(long);
        assert_eq!(read, expected);
    }

    /// What an rsyslogd starting sees: lines left, or none (no file, all committed, a link).
    #[test]
    fn holds_lines_tells_a_spool_with_lines_left() {
        let path = temp_path("holds");
        assert!(!Spool::holds_lines(&path), "no file");
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        spool.append(lines(0..3)).unwrap();
        assert!(Spool::holds_lines(&path), "three lines not committed");
        spool.read_unread(100).unwrap();
        spool.committed_through(spool.read_mark()).unwrap();
        assert!(!Spool::holds_lines(&path), "all committed");
        let elsewhere = path.with_file_name("elsewhere");
        std::fs::write(&elsewhere, "a line\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(!Spool::holds_lines(&path), "a link is not followed");
    }

    /// Beyond its bound the spool takes no more until lines are committed.
    #[test]
    fn the_bound_counts_the_lines_not_committed() {
        let path = temp_path("bound");
        let mut spool = Spool::open(path, 1_000).unwrap();
        assert!(spool.has_room());
        spool.append(lines(0..10)).unwrap();
        assert!(!spool.has_room());
        spool.read_unread(100).unwrap();
        spool.committed_through(spool.read_mark()).unwrap();
        assert!(spool.has_room());
    }

    /// A line cut by a crash while it was appended is cut off; the whole ones before it stay.
    #[test]
    fn a_torn_last_line_is_cut_off() {
        let path = temp_path("torn");
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        spool.append(lines(0..2)).unwrap();
        drop(spool);
        let mut file = File::options().append(true).open(&path).unwrap();
        file.write_all(b"half a li").unwrap();
        let mut spool = Spool::open(path, MANY).unwrap();
        assert_eq!(spool.read_unread(10).unwrap(), lines(0..2));
        spool.append(lines(2..3)).unwrap();
        spool.rewind();
        assert_eq!(spool.read_unread(10).unwrap(), lines(0..3));
    }

    /// The file an older module left (every line unwritten, no header) is read whole.
    #[test]
    fn a_spool_of_the_former_format_is_read_whole() {
        let path = temp_path("former");
        std::fs::write(&path, "a \\\\ backslash\nline\\nbreak\n").unwrap();
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        assert_eq!(spool.read_unread(10).unwrap(), ["a \\ backslash", "line\nbreak"]);
        spool.committed_through(spool.read_mark()).unwrap();
        assert!(!path.exists());
    }

    /// The spool holds mail logs: its owner's only, and a link planted where it goes is neither
    /// followed nor written through.
    #[test]
    fn the_spool_is_private_and_follows_no_link() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let path = temp_path("private");
        let target = path.with_file_name("elsewhere");
        std::fs::write(&target, "not the spool\n").unwrap();
        let mut spool = Spool::open(path.clone(), MANY).unwrap();
        symlink(&target, &path).unwrap();
        spool.append(lines(0..1)).unwrap();
        let mode = std::fs::symlink_metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "not the spool\n");

        drop(spool);
        std::fs::remove_file(&path).unwrap();
        symlink(&target, &path).unwrap();
        let refused = Spool::open(path, MANY).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ELOOP), "{refused}");
    }

    #[test]
    fn an_unwritable_spool_says_why() {
        let mut spool = Spool::open(PathBuf::from("/nonexistent-dir/omelse.spool"), MANY).unwrap();
        let (error, back) = spool.append(lines(0..1)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert_eq!(back, lines(0..1), "the lines come back");
    }
}
