//! The one door both the rsyslog module and `elsed import` use: lines in, batches out, and the
//! correlator resumed from what the database holds.

use std::collections::{BTreeMap, HashSet, VecDeque};

use tokio_postgres::Client;

use crate::correlate::{Correlator, CorrelatorConfig, LifeKey, FORGET_OPEN};
use crate::keys::{hash_parts, LineKeys};
use crate::parse::{self, Clock, EventKind, SyslogLine, Timestamp};
use crate::store::{self, Batch, EventRow};

/// What a pipeline has seen so far: the figures `elsed import` prints and omelse reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub lines: u64,
    /// Lines whose syslog envelope could not be read (stored raw).
    pub unparsed: u64,
    /// Lines whose parsing or correlating panicked (a bug): stored as `unknown` lines, so that
    /// one line costs itself only, never the writer.
    pub panicked: u64,
    /// Lines dropped because they were seen before: rsyslog re-delivering a batch (the same
    /// `%uuid%`), or the same line again (the same [`LineKeys`] key: a batch resent by the
    /// sender, lines replayed from a queue file, a log file read twice).
    pub duplicates: u64,
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Lines from Postfix programs that no parser understood, by program tag.
    pub unknown_by_program: BTreeMap<String, u64>,
}

/// The server of unreadable lines that come before any readable one (`elsed import --host` names it).
pub const UNKNOWN_HOST: &str = "unknown";

/// How many source ids (rsyslog `%uuid%`) a pipeline remembers to drop re-delivered lines.
const REMEMBERED_SOURCE_IDS: usize = 1 << 20;

/// How many line keys a pipeline remembers to drop a line it saw already: more than the queues in
/// front of omelse hold (the shipped action queue holds 200,000 lines), about 7 MB.
const REMEMBERED_LINE_KEYS: usize = 1 << 18;

/// A correlator that picks the story up where the database left it, after a restart of rsyslogd
/// or before an import: the fleet's roles and addresses added to `config` (what `config` names
/// wins), and the messages and sessions still open that were seen within [`FORGET_OPEN`] before
/// `from` (older ones would be forgotten at once). `from` is the first line about to be read, or,
/// with `None`, the newest stored message (the live stream goes on from there).
pub async fn resume(
    client: &Client,
    mut config: CorrelatorConfig,
    from: Option<Timestamp>,
) -> store::Result<Correlator> {
    let from = match from {
        Some(time) => time,
        None => store::newest_message_time(client).await?.unwrap_or_default(),
    };
    config.add_fleet(&store::load_fleet(client).await?);
    let since = Timestamp(from.0 - FORGET_OPEN);
    let mut correlator = Correlator::with_config(config);
    // A page at a time, each kept compact and the bound kept after each: a restart with a
    // million open messages never holds them all as rows or as lives.
    let mut after = None;
    loop {
        let (messages, recipients) = store::load_open_messages(client, since, after, RESTORE_PAGE).await?;
        let Some(last) = messages.iter().map(|m| (m.last_seen, m.uid)).max() else {
            break;
        };
        let full = messages.len() as i64 == RESTORE_PAGE;
        after = Some(last);
        correlator.restore(store::OpenState {
            messages,
            recipients,
            sessions: Vec::new(),
        });
        correlator.evict();
        if !full {
            break;
        }
    }
    correlator.restore(store::OpenState {
        sessions: store::load_open_sessions(client, since).await?,
        ..store::OpenState::default()
    });
    Ok(correlator)
}

/// Open messages read at once when a pipeline resumes (see [`resume`]).
const RESTORE_PAGE: i64 = 10_000;

/// Lines in, batches out: parsing, line identity, correlation.
pub struct Pipeline {
    clock: Clock,
    correlator: Correlator,
    stats: Stats,
    batch: Batch,
    /// Replaces the host of every line (`elsed import --host`).
    host_override: Option<String>,
    /// The host of the last readable line: an unreadable line is filed under it.
    last_host: String,
    line_keys: LineKeys,
    recent_sources: Recent,
    /// The keys of the lines correlated lately: a line seen again is not correlated twice.
    recent_lines: Recent,
    last_time: Timestamp,
}

impl Pipeline {
    pub fn new(clock: Clock, correlator: Correlator) -> Self {
        Pipeline {
            clock,
            correlator,
            stats: Stats::default(),
            batch: Batch::default(),
            host_override: None,
            last_host: String::new(),
            line_keys: LineKeys::default(),
            recent_sources: Recent::new(REMEMBERED_SOURCE_IDS),
            recent_lines: Recent::new(REMEMBERED_LINE_KEYS),
            last_time: Timestamp::default(),
        }
    }

    pub fn with_host_override(mut self, host: Option<String>) -> Self {
        self.host_override = host;
        self
    }

    /// Replaces the clock of year-less timestamps: `elsed import` gives each file its own year
    /// reference (the file's modification time), so old rotated logs get the right year.
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn correlator_mut(&mut self) -> &mut Correlator {
        &mut self.correlator
    }

    /// A whole syslog line (`elsed import`, `omelse-ext`).
    pub fn push_line(&mut self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        match parse::split_line(text, &mut self.clock) {
            Some(line) => self.push_split(line, None),
            None => self.push_unparsed(text),
        }
    }

    /// A line whose envelope is already split (rsyslog). `source_id` is rsyslog's `%uuid%`: a line
    /// seen with the same id before is a re-delivery and is dropped.
    pub fn push_split(&mut self, line: SyslogLine<'_>, source_id: Option<&str>) {
        // Taken out for the call so that the line may borrow it while `self` is changed.
        let host_override = self.host_override.take();
        let line = match host_override.as_deref() {
            Some(host) => SyslogLine { host, ..line },
            None => line,
        };
        self.push_own_host(line, source_id);
        self.host_override = host_override;
    }

    fn push_own_host(&mut self, line: SyslogLine<'_>, source_id: Option<&str>) {
        self.stats.lines += 1;
        // rsyslog delivers at least once: a line whose `%uuid%` was seen is a re-delivery.
        if let Some(id) = source_id {
            if !self.recent_sources.first_time(hash_parts(&[id.as_bytes()])) {
                self.stats.lines -= 1;
                self.stats.duplicates += 1;
                return;
            }
        }
        // The key is the line's content either way, so that a line sent twice (a new uuid: a
        // batch omfwd or RELP resent, a queue file replayed) or a log file imported after the
        // live stream carried it is stored once; seen again by this pipeline, it is dropped
        // before the correlator counts it twice.
        let line_key = self.line_keys.key(&line);
        if !self.recent_lines.first_time(line_key) {
            self.stats.lines -= 1;
            self.stats.duplicates += 1;
            return;
        }
        self.last_time = line.time;
        if self.last_host != line.host {
            self.last_host.clear();
            self.last_host.push_str(line.host);
        }
        // A panic here is a bug for one line: rsyslog would resend the same batch forever if it
        // crossed the writer. The correlator may keep a half-applied line; the line itself is kept raw.
        let (stats, correlator, batch) = (&mut self.stats, &mut self.correlator, &mut self.batch);
        let ingested = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fault_injection(line.message);
            let parsed = parse::parse_fields(line);
            let kind = parsed.event.kind;
            *stats.events_by_kind.entry(kind.name()).or_default() += 1;
            if matches!(kind, EventKind::Unknown) && parsed.program.is_postfix() {
                *stats
                    .unknown_by_program
                    .entry(parsed.program.name.to_owned())
                    .or_default() += 1;
            }
            correlator.ingest(&parsed, line_key, batch);
        }));
        if ingested.is_err() {
            self.stats.panicked += 1;
            self.batch.events.push(EventRow {
                time: line.time,
                line_key,
                host: line.host.to_owned(),
                program: line.program.to_owned(),
                pid: line.pid.map(|p| p as i32),
                queue_id: None,
                kind: EventKind::Unknown.name(),
                message_uid: None,
                session_uid: None,
                raw: line.message.to_owned(),
            });
        }
    }

    /// A line without a readable envelope: kept raw, at the time and under the host of the line
    /// before it (a file's first line under [`UNKNOWN_HOST`]), so that it is found beside it.
    fn push_unparsed(&mut self, text: &str) {
        self.stats.lines += 1;
        self.stats.unparsed += 1;
        let host = match (&self.host_override, self.last_host.is_empty()) {
            (Some(host), _) => host.clone(),
            (None, false) => self.last_host.clone(),
            (None, true) => UNKNOWN_HOST.to_owned(),
        };
        let time = self.last_time;
        // Its time is borrowed: identical unreadable lines are told apart by their count.
        let line_key = self.line_keys.counted_key(&SyslogLine {
            time,
            host: &host,
            program: "",
            pid: None,
            message: text,
        });
        self.batch.events.push(EventRow {
            time,
            line_key,
            host,
            program: String::new(),
            pid: None,
            queue_id: None,
            kind: "unparsed",
            message_uid: None,
            session_uid: None,
            raw: text.to_owned(),
        });
    }

    /// Notes, before [`Pipeline::push_line`] takes it, the evicted lives a line names (see
    /// [`Pipeline::reload`]).
    pub fn note_line(&mut self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        // A copy of the clock: the line is read again, for real, by `push_line`.
        let mut clock = self.clock.clone();
        if let Some(line) = parse::split_line(text, &mut clock) {
            self.note_split(line);
        }
    }

    /// Notes, before [`Pipeline::push_split`] takes it, the evicted lives a line names.
    pub fn note_split(&mut self, line: SyslogLine<'_>) {
        let line = match self.host_override.as_deref() {
            Some(host) => SyslogLine { host, ..line },
            None => line,
        };
        let correlator = &mut self.correlator;
        // Reading a line for its names must cost no more than that line: a bug stays with it.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            correlator.note_names(&parse::parse_fields(line));
        }));
    }

    /// Brings back from the database the evicted lives the noted lines name, in one query, before
    /// they are pushed. With no bound on lives in memory there are none.
    pub async fn reload(&mut self, client: &Client) -> store::Result<()> {
        let wanted = self.wanted_lives();
        let state = if wanted.is_empty() {
            store::OpenState::default()
        } else {
            store::load_lives(client, &wanted).await?
        };
        self.reload_from(state);
        Ok(())
    }

    /// The evicted lives the noted lines need back (what [`Pipeline::reload`] loads).
    pub fn wanted_lives(&self) -> Vec<LifeKey> {
        self.correlator.wanted_lives()
    }

    /// Puts back the wanted lives from their last snapshots (see [`Pipeline::reload`]).
    pub fn reload_from(&mut self, state: store::OpenState) {
        self.correlator.reload(state);
    }

    /// Once the last batch is committed: evicts lives beyond the correlator's bound (their state
    /// is in the database). Returns how many.
    pub fn evict(&mut self) -> usize {
        self.correlator.evict()
    }

    pub fn correlator(&self) -> &Correlator {
        &self.correlator
    }

    /// Everything gathered since the last call, with the correlator's state snapshots.
    pub fn take_batch(&mut self) -> Batch {
        self.correlator.flush(&mut self.batch);
        std::mem::take(&mut self.batch)
    }

    /// Lines pushed since the last [`Pipeline::take_batch`].
    pub fn pending_lines(&self) -> usize {
        self.batch.events.len()
    }
}

/// The last `capacity` keys seen, oldest forgotten first.
struct Recent {
    capacity: usize,
    set: HashSet<i64>,
    order: VecDeque<i64>,
}

impl Recent {
    fn new(capacity: usize) -> Self {
        Recent {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Remembers `key`; false when it was remembered already.
    fn first_time(&mut self, key: i64) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

/// Test builds only (feature `fault-injection`): a line containing `OMELSE-FAULT-PARSE-PANIC`
/// panics while it is parsed, to prove that it costs that line only.
#[cfg(feature = "fault-injection")]
fn fault_injection(message: &str) {
    if message.contains("OMELSE-FAULT-PARSE-PANIC") {
        panic!("omelse fault injection: panic while parsing a line");
    }
}

#[cfg(not(feature = "fault-injection"))]
fn fault_injection(_message: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_lines_are_filed_under_the_host_before_them() {
        let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
        let mut pipeline = Pipeline::new(clock, Correlator::new());
        pipeline.push_line("\u{1}garbage before anything");
        pipeline.push_line("Mar 14 10:05:02 out1 postfix/qmgr[3010]: 4ZdQ7k1Rc2z9Hw: removed");
        pipeline.push_line("\u{1}garbage after out1");
        let batch = pipeline.take_batch();
        let hosts: Vec<(&str, &str)> = batch
            .events
            .iter()
            .map(|event| (event.kind, event.host.as_str()))
            .collect();
        assert_eq!(
            hosts,
            [("unparsed", UNKNOWN_HOST), ("removed", "out1"), ("unparsed", "out1")]
        );
    }

    /// What the transport test saw across a receiver restart: a line the new rsyslogd replayed
    /// from its queue file came again from the sender (a resent batch, a new `%uuid%`) while its
    /// second was still the newest. It is the same line: one row, counted once by the
    /// correlator, whatever came between the two copies.
    #[test]
    fn a_line_seen_again_by_the_same_pipeline_is_dropped_not_counted_twice() {
        let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
        let mut pipeline = Pipeline::new(clock, Correlator::new());
        let lines = [
            "2023-03-15T06:50:22.165000+01:00 helga postfix/smtpd[426346]: 4Pbzy618v9z3tBr: client=mail-yw1-x112f.google.com[2607:f8b0:4864:20::112f]",
            "2023-03-15T06:50:22.169718+01:00 helga postfix/cleanup[430952]: 4Pbzy618v9z3tBr: message-id=<20230315055012.06d57753e4d318fb@discover.pinterest.com>",
        ];
        for line in lines.iter().chain(&lines).chain(&lines[1..]) {
            pipeline.push_line(line);
        }
        let batch = pipeline.take_batch();
        assert_eq!(batch.events.len(), 2);
        assert_eq!(pipeline.stats().duplicates, 3);
        assert_eq!(pipeline.stats().lines, 2);
        let started: Vec<_> = batch.messages.iter().map(|m| m.started_at).collect();
        assert!(started.windows(2).all(|w| w[0] == w[1]), "one life: {started:?}");
    }
}
