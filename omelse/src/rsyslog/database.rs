//! The action's side of the database, owned by the commit thread: the connection (made, migrated
//! and checked on demand), the pipeline resumed from what the database holds, and what is not
//! written yet.
//!
//! With a spool file (`spool.file`, as shipped) every batch is appended to it before rsyslog is
//! answered: the file is the action's queue. While the database keeps up, a batch is parsed and
//! correlated at once and written beside the commit thread while the next one is parsed
//! ([`InFlight`]); while it is away or behind, the lines wait in the file and are read back in
//! chunks, in order, when it returns. A failed write rewinds to the first line not committed and
//! the pipeline starts again from what the database holds, so the file alone says what is left.
//!
//! Without a spool file rsyslog is answered after the commit: a failed batch's rows stay in
//! `pending` and its lines in memory ([`Retained`]), and rsyslog's re-delivery of them is dropped
//! by `%uuid%`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tokio::runtime::Handle;
use tokio_postgres::Client;

use super::in_flight::InFlight;
use super::retained::Retained;
use super::sink::{Outcome, Severity, Shared};
use super::spool::{Mark, Spool};
use super::template;
use crate::correlate::CorrelatorConfig;
use crate::ingest::{self, Pipeline};
use crate::parse::Clock;
use crate::store::{self, Batch};

/// How long after a failed write the database is tried again when lines wait in the spool file
/// (rsyslog's `action.resumeInterval` of the shipped stanza).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Most lines read back from the spool file at once (a batch appended whole is handed out whole).
const READ_AT_ONCE_LINES: usize = 10_000;

pub(super) struct Database<'a> {
    shared: &'a Shared,
    /// Where a batch is written beside the commit thread.
    runtime: Handle,
    /// None while a write is in flight (it borrows the connection).
    client: Option<Client>,
    batch_writer: store::Writer,
    /// Built at the first connection, from the open state in the database.
    pipeline: Option<Pipeline>,
    /// Rows not written yet: parsed ahead of the write in flight (spool file), or whose write
    /// failed, written first next time (without one).
    pending: Batch,
    /// When rsyslog is answered for a batch, and what this side keeps meanwhile.
    flow: Flow,
}

/// The two ways a batch goes (see the module's doc).
enum Flow {
    /// `spool.file`: rsyslog is answered once a batch is in the file.
    Spooled(Spooled),
    /// No spool file (none configured, or it cannot be opened): rsyslog is answered after the
    /// commit, and delivers a failed batch again.
    AfterCommit(AfterCommit),
}

/// The spool file's way: the action's queue on disk, read back in order toward the database.
struct Spooled {
    spool: Spool,
    /// The write of the last batch, while the next one is parsed.
    in_flight: Option<InFlight>,
    /// Lines parsed into `pending` while a write was in flight.
    parsed_ahead: usize,
    /// The spool's lines before this mark are in `pending`, in flight or committed.
    parsed_through: Mark,
    /// When the database, found away, is tried again for the lines waiting in the file.
    retry_at: Option<Instant>,
    /// The file's trouble was said in rsyslog's log (once, until it takes a batch again).
    complained: bool,
}

/// Without a spool file: what rsyslog was told is not written yet.
#[derive(Default)]
struct AfterCommit {
    /// The lines of `pending`, and those that came before the first connection.
    retained: Retained,
    /// Lines whose write failed before they reached the pipeline (evicted lives to bring back
    /// first): written first next time, since rsyslog may not send them again.
    unpushed: Vec<String>,
}

impl Spooled {
    fn new(spool: Spool) -> Self {
        Spooled {
            spool,
            in_flight: None,
            parsed_ahead: 0,
            parsed_through: Mark::default(),
            retry_at: None,
            complained: false,
        }
    }

    /// The database was found away and is not to be tried again yet.
    fn waits_for_retry(&self) -> bool {
        self.retry_at.is_some_and(|at| Instant::now() < at)
    }

    /// The spool's lines before `mark` are in the database.
    fn committed_through(&mut self, shared: &Shared, mark: Mark) {
        if let Err(e) = self.spool.committed_through(mark) {
            self.trouble(shared, format!("cannot mark the written lines in spool.file: {e}"));
            return;
        }
        if self.spool.has_room() {
            shared.spool_takes.store(true, Ordering::Relaxed);
        }
    }

    fn fine(&mut self, shared: &Shared) {
        shared.spool_takes.store(true, Ordering::Relaxed);
        if std::mem::take(&mut self.complained) {
            (shared.log)(Severity::Info, "omelse: spool.file takes batches again");
        }
    }

    /// Said once, until the spool file takes a batch again; meanwhile rsyslog keeps them in
    /// its queue ([`super::sink::Sink::takes_batches`]) and tries again every resumeInterval.
    fn trouble(&mut self, shared: &Shared, problem: String) {
        shared.spool_takes.store(false, Ordering::Relaxed);
        if !std::mem::replace(&mut self.complained, true) {
            (shared.log)(Severity::Error, &format!("omelse: {problem}"));
        }
    }
}

impl<'a> Database<'a> {
    /// Not connected yet; the spool a previous process left is opened now.
    pub fn new(shared: &'a Shared, runtime: Handle) -> Self {
        let spool = shared.config.spool_file.as_ref().and_then(|path| {
            Spool::open(path.into(), shared.config.spool_max_bytes)
                .map_err(|e| {
                    (shared.log)(
                        Severity::Error,
                        &format!(
                            "omelse: spool.file {path} cannot be opened ({e}); rsyslog is answered after each commit instead"
                        ),
                    )
                })
                .ok()
        });
        shared
            .spool_takes
            .store(spool.as_ref().is_some_and(Spool::has_room), Ordering::Relaxed);
        Database {
            shared,
            runtime,
            client: None,
            batch_writer: store::Writer::new(),
            pipeline: None,
            pending: Batch::default(),
            flow: match spool {
                Some(spool) => Flow::Spooled(Spooled::new(spool)),
                None => Flow::AfterCommit(AfterCommit::default()),
            },
        }
    }

    /// The connection, when there is one, once the write in flight has ended.
    pub async fn client(&mut self) -> Option<&mut Client> {
        self.settle().await;
        self.client.as_mut()
    }

    /// The pipeline, once the first connection resumed it.
    pub fn pipeline(&mut self) -> Option<&mut Pipeline> {
        self.pipeline.as_mut()
    }

    /// The spool file's way, when the action has one.
    fn spooled(&self) -> Option<&Spooled> {
        match &self.flow {
            Flow::Spooled(spooled) => Some(spooled),
            Flow::AfterCommit(_) => None,
        }
    }

    /// Bytes of lines in the spool file not committed yet.
    pub fn spool_waiting(&self) -> u64 {
        self.spooled().map_or(0, |spooled| spooled.spool.waiting_bytes())
    }

    /// Ready once the write in flight has ended; none when no write is in flight.
    pub fn in_flight(&self) -> Option<&Receiver<()>> {
        self.spooled()?.in_flight.as_ref().map(InFlight::done)
    }

    /// How long the commit thread may wait for the next request: not at all while lines wait in
    /// the spool file for a database that is there, until the next try when it is away.
    pub fn idle_wait(&self, tick: Duration) -> Duration {
        let Some(spooled) = self.spooled().filter(|spooled| spooled.spool.has_unread()) else {
            return tick;
        };
        match spooled.retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()).min(tick),
            None => Duration::ZERO,
        }
    }

    /// Appends a batch to the spool file so that its workers may be answered at once: rsyslog
    /// then forgets it, and it is ours until committed. Not taken (no file, full, or it cannot
    /// be written), the lines come back.
    pub fn spool_ahead(&mut self, lines: Vec<String>) -> Result<(), Vec<String>> {
        let Flow::Spooled(spooled) = &mut self.flow else {
            return Err(lines);
        };
        if !spooled.spool.has_room() {
            let waiting = spooled.spool.waiting_bytes() >> 20;
            spooled.trouble(
                self.shared,
                format!(
                    "spool.file is full ({waiting} MB not yet in the database, spool.max_megabytes): \
                     rsyslog's queue keeps the next batches until the database takes lines again"
                ),
            );
            return Err(lines);
        }
        match spooled.spool.append(lines) {
            Ok(()) => {
                spooled.fine(self.shared);
                Ok(())
            }
            Err((e, lines)) => {
                spooled.trouble(self.shared, format!("cannot append a batch to spool.file: {e}"));
                Err(lines)
            }
        }
    }

    /// Moves the spool file's lines toward the database: takes in the write that ended, parses
    /// and correlates the unread lines (up to `batch.maxlines` ahead of the write in flight) and
    /// starts the next write beside this thread, so that PostgreSQL's work and ours overlap.
    /// Waits for PostgreSQL only where a write goes in turn: the first connection, a reconnection
    /// asked for, lives evicted (the lines may name them: they come back from the database
    /// first). After a failure, nothing until the next try.
    pub async fn advance(&mut self) {
        let Some(spooled) = self.spooled() else {
            return;
        };
        if spooled.in_flight.as_ref().is_some_and(InFlight::is_done) {
            self.settle().await;
        }
        if self.waits_for_retry() {
            return;
        }
        let batch_max_lines = self.shared.config.batch_max_lines;
        while self.spooled().is_some_and(|spooled| {
            spooled.spool.has_unread()
                && spooled.parsed_ahead < batch_max_lines
                && !(spooled.in_flight.is_some() && self.over_bound())
        }) {
            let in_turn = !self.parses_ahead();
            if in_turn {
                self.settle().await;
                if self.waits_for_retry() {
                    return;
                }
            }
            let Flow::Spooled(spooled) = &mut self.flow else {
                return;
            };
            let lines = match spooled.spool.read_unread(batch_max_lines.min(READ_AT_ONCE_LINES)) {
                Ok(lines) => lines,
                Err(e) => {
                    self.start_over_from_spool();
                    (self.shared.log)(Severity::Error, &format!("omelse: cannot read spool.file: {e}"));
                    return;
                }
            };
            spooled.parsed_through = spooled.spool.read_mark();
            if in_turn {
                // One chunk, then the requests waiting meanwhile are served.
                spooled.parsed_ahead = 0;
                let through = spooled.parsed_through;
                if let Outcome::Committed = self.write_lines(&lines).await {
                    self.committed_through(through);
                }
                return;
            }
            spooled.parsed_ahead += lines.len();
            self.push(&lines);
            self.shared
                .counters
                .lines
                .fetch_add(lines.len() as u64, Ordering::Relaxed);
        }
        let Flow::Spooled(spooled) = &mut self.flow else {
            return;
        };
        if spooled.in_flight.is_some() {
            return;
        }
        spooled.parsed_ahead = 0;
        if self.pending.is_empty() {
            // Nothing but lines seen already, or nothing at all: nothing to write.
            let through = spooled.parsed_through;
            self.committed_through(through);
            return;
        }
        let Some(client) = self.client.take() else {
            return;
        };
        spooled.in_flight = Some(InFlight::start(
            &self.runtime,
            client,
            std::mem::take(&mut self.batch_writer),
            std::mem::take(&mut self.pending),
            spooled.parsed_through,
        ));
    }

    /// Whether the next lines may be parsed ahead of the write in flight (see [`Self::advance`]).
    fn parses_ahead(&self) -> bool {
        let writing = self.spooled().is_some_and(|spooled| spooled.in_flight.is_some());
        !self.shared.reconnect.load(Ordering::Relaxed)
            && self
                .pipeline
                .as_ref()
                .is_some_and(|pipeline| pipeline.correlator().evicted_lives() == 0)
            && (writing || self.client.as_ref().is_some_and(|client| !client.is_closed()))
    }

    /// The correlator holds more lives than `memory.max_open`: they are evicted at the next
    /// write's end, with nothing parsed ahead of it.
    fn over_bound(&self) -> bool {
        self.pipeline
            .as_ref()
            .is_some_and(|pipeline| pipeline.correlator().lives_in_memory() > self.shared.config.max_open)
    }

    /// The database was found away and is not to be tried again yet (spool file).
    fn waits_for_retry(&self) -> bool {
        self.spooled().is_some_and(Spooled::waits_for_retry)
    }

    /// The spool's lines before `mark` are in the database.
    fn committed_through(&mut self, mark: Mark) {
        if let Flow::Spooled(spooled) = &mut self.flow {
            spooled.committed_through(self.shared, mark);
        }
    }

    /// Waits for the write in flight, if any, and takes in how it went: written, its lines are
    /// committed in the spool; failed, the spool rewinds and the action waits for the database.
    pub async fn settle(&mut self) {
        let Flow::Spooled(spooled) = &mut self.flow else {
            return;
        };
        let Some(in_flight) = spooled.in_flight.take() else {
            return;
        };
        let written = match in_flight.finish().await {
            Ok(written) => written,
            Err(e) => {
                self.fail(e);
                return;
            }
        };
        self.client = Some(written.client);
        self.batch_writer = written.writer;
        match written.result {
            Ok(_) => {
                self.shared.counters.batches.fetch_add(1, Ordering::Relaxed);
                self.committed_through(written.spooled);
                // The bound may evict once every life's last snapshot is in the database: not
                // while rows parsed ahead wait in `pending` (a life evicted now would come back
                // from an older snapshot). Over the bound, `advance` parses nothing ahead, so
                // the next write's end evicts.
                if self.pending.is_empty() {
                    if let Some(pipeline) = self.pipeline.as_mut() {
                        pipeline.evict();
                    }
                }
                self.succeed(written.started);
            }
            Err(e) => {
                self.fail(format!("write failed: {e}"));
            }
        }
    }

    /// Writes the lines of one group commit and waits for it (none: a check that the database
    /// answers). With a spool file, only what it did not take comes here: a batch is then
    /// refused (the lines waiting in the file go first), and a check says whether it takes
    /// batches again.
    pub async fn write(&mut self, mut lines: Vec<String>) -> Outcome {
        self.settle().await;
        let after = match &mut self.flow {
            Flow::Spooled(spooled) => {
                let has_room = spooled.spool.has_room();
                return self.answer_beside_spool(has_room, lines.is_empty()).await;
            }
            Flow::AfterCommit(after) => after,
        };
        if !after.unpushed.is_empty() {
            let mut first = std::mem::take(&mut after.unpushed);
            first.append(&mut lines);
            lines = first;
        }
        let outcome = self.write_lines(&lines).await;
        if let Flow::AfterCommit(after) = &mut self.flow {
            match outcome {
                Outcome::Committed => after.retained.clear(),
                Outcome::Suspended(_) => after.retained.keep(&lines),
            }
        }
        outcome
    }

    /// With a spool file, what the file did not take: a batch is refused (the lines waiting in
    /// the file go first), a check says whether it takes batches again.
    async fn answer_beside_spool(&mut self, has_room: bool, is_check: bool) -> Outcome {
        if !has_room {
            Outcome::Suspended("spool.file is full: the database is away or behind".into())
        } else if !is_check {
            Outcome::Suspended("spool.file cannot be written".into())
        } else {
            // rsyslog's check after a refusal: the next batch tries the file again. Never
            // connected yet (every line refused or skipped): connect, so that the counters
            // reach the database.
            self.shared.spool_takes.store(true, Ordering::Relaxed);
            if self.pipeline.is_none() && !self.waits_for_retry() {
                let _ = self.write_lines(&[]).await;
            }
            Outcome::Committed
        }
    }

    async fn write_lines(&mut self, lines: &[String]) -> Outcome {
        let started = Instant::now();
        // Into the pipeline first when it exists, so that the rows wait in `pending` while the
        // database is away (without a spool file); before the first connection they wait in
        // `retained` or the spool file. Once lives were
        // evicted, the lines wait for the database: the lives they name come back from it first.
        let evicted = self
            .pipeline
            .as_ref()
            .is_some_and(|pipeline| pipeline.correlator().evicted_lives() > 0);
        let pushed = !evicted && self.push(lines);
        if let Err(e) = self.connect().await {
            if !pushed {
                self.keep_unpushed(lines);
            }
            return self.fail(e);
        }
        if !pushed {
            if let Err(e) = self.reload(lines).await {
                self.keep_unpushed(lines);
                return self.fail(format!("cannot bring evicted messages back: {e}"));
            }
            if !self.push(lines) {
                return self.fail("no pipeline".into());
            }
        }
        let counters = &self.shared.counters;
        counters.lines.fetch_add(lines.len() as u64, Ordering::Relaxed);
        if self.pending.is_empty() && lines.is_empty() {
            // A ping: the connection is there; prove the server answers.
            let client = self.client.as_ref().expect("connected above");
            if let Err(e) = client.simple_query("SELECT 1").await {
                return self.fail(format!("database check failed: {e}"));
            }
            return self.succeed(started);
        }
        if self.pending.is_empty() {
            return self.succeed(started);
        }
        let client = self.client.as_mut().expect("connected above");
        match self.batch_writer.write_batch(client, &self.pending).await {
            Ok(_) => {
                self.pending = Batch::default();
                counters.batches.fetch_add(1, Ordering::Relaxed);
                // Every life's last snapshot is in the database now: the bound may evict.
                if let Some(pipeline) = self.pipeline.as_mut() {
                    pipeline.evict();
                }
                self.succeed(started)
            }
            Err(e) => self.fail(format!("write failed: {e}")),
        }
    }

    /// Lines that did not reach the pipeline wait for the next write (without a spool file; with
    /// one they are read from it again).
    fn keep_unpushed(&mut self, lines: &[String]) {
        if let Flow::AfterCommit(after) = &mut self.flow {
            after.unpushed = lines.to_vec();
        }
    }

    /// Brings back the evicted lives that rendered lines name (one query).
    async fn reload(&mut self, lines: &[String]) -> store::Result<()> {
        let (Some(pipeline), Some(client)) = (self.pipeline.as_mut(), self.client.as_ref()) else {
            return Ok(());
        };
        for text in lines {
            match template::split(text, self.shared.config.hostname_source) {
                Some((_, line)) => pipeline.note_split(line),
                None => pipeline.note_line(text),
            }
        }
        pipeline.reload(client).await
    }

    /// Runs rendered lines through the pipeline into `pending`; false when there is no pipeline yet.
    fn push(&mut self, lines: &[String]) -> bool {
        let Some(pipeline) = self.pipeline.as_mut() else {
            return false;
        };
        for text in lines {
            match template::split(text, self.shared.config.hostname_source) {
                Some((uuid, line)) => pipeline.push_split(line, Some(uuid)),
                None => pipeline.push_line(text),
            }
        }
        self.pending.append(pipeline.take_batch());
        true
    }

    fn connect_options(&self) -> store::ConnectOptions {
        store::ConnectOptions {
            application_name: Some("omelse".into()),
            ca_file: self.shared.config.tls_ca_file.as_ref().map(Into::into),
        }
    }

    /// Connects when there is no (working) connection; the first connection migrates (when
    /// `migrate` is set) and resumes the pipeline, then writes what the spool kept.
    async fn connect(&mut self) -> Result<(), String> {
        if self.shared.reconnect.swap(false, Ordering::Relaxed) {
            self.client = None;
        }
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        let mut client = tokio::time::timeout(
            Duration::from_secs(10),
            store::connect_with(&self.shared.config.conninfo, &self.connect_options()),
        )
        .await
        .map_err(|_| "connecting to the database timed out".to_string())?
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
        if self.shared.config.migrate {
            store::migrate(&mut client)
                .await
                .map_err(|e| format!("schema migration failed: {e}"))?;
        }
        if self.pipeline.is_none() {
            let correlator = ingest::resume(&client, self.correlator_config(), None)
                .await
                .map_err(|e| format!("cannot resume from the database: {e}"))?;
            // Timestamps from rsyslog are absolute; the clock only serves lines without one.
            let mut pipeline = Pipeline::new(Clock::system(), correlator);
            // What was open beyond the bound goes back to the database at once.
            pipeline.evict();
            self.pipeline = Some(pipeline);
            // What a stopped rsyslogd could not write, and lines from before this connection.
            let waiting = match &self.flow {
                Flow::AfterCommit(after) => after.retained.lines().to_vec(),
                Flow::Spooled(_) => Vec::new(),
            };
            if !waiting.is_empty() {
                (self.shared.log)(
                    Severity::Info,
                    &format!("omelse: writing {} spooled lines first", waiting.len()),
                );
                self.push(&waiting);
            }
        }
        self.client = Some(client);
        Ok(())
    }

    fn succeed(&mut self, started: Instant) -> Outcome {
        if let Flow::Spooled(spooled) = &mut self.flow {
            spooled.retry_at = None;
        }
        if self.shared.down.swap(false, Ordering::Relaxed) {
            (self.shared.log)(Severity::Info, "omelse: database reachable again, writing resumed");
        }
        self.shared
            .counters
            .last_commit_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Outcome::Committed
    }

    /// Every line not committed is to be read again from the spool file, through a pipeline
    /// resumed from what the database holds, [`RETRY_AFTER`] from now.
    fn start_over_from_spool(&mut self) {
        let Flow::Spooled(spooled) = &mut self.flow else {
            return;
        };
        spooled.spool.rewind();
        spooled.parsed_through = spooled.spool.read_mark();
        spooled.parsed_ahead = 0;
        spooled.retry_at = Some(Instant::now() + RETRY_AFTER);
        self.pipeline = None;
        self.pending = Batch::default();
    }

    /// A write or connection failed. With a spool file, every line not committed is read again
    /// from it, through a pipeline resumed from what the database holds, once the database is
    /// back (tried every [`RETRY_AFTER`]); without, the rows wait in `pending`.
    fn fail(&mut self, reason: String) -> Outcome {
        self.client = None;
        self.shared.counters.failed_commits.fetch_add(1, Ordering::Relaxed);
        let waiting = if self.spooled().is_some() {
            self.start_over_from_spool();
            "lines wait in spool.file until the database is back"
        } else {
            "suspending until the database is back"
        };
        if !self.shared.down.swap(true, Ordering::Relaxed) {
            (self.shared.log)(Severity::Error, &format!("omelse: {reason}; {waiting}"));
        }
        Outcome::Suspended(reason)
    }

    /// The module's own configuration (the default role, internal networks), before the fleet of
    /// the database is added.
    pub fn correlator_config(&self) -> CorrelatorConfig {
        let mut config = CorrelatorConfig {
            default_role: self.shared.config.server_role.parse().unwrap_or_default(),
            max_open: Some(self.shared.config.max_open),
            ..CorrelatorConfig::default()
        };
        if let Some(networks) = &self.shared.config.internal_networks {
            config.internal_networks = networks.clone();
        }
        config
    }
}
