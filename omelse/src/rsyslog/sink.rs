//! One action's way to PostgreSQL: rsyslog's worker threads hand their batches to a single writer
//! thread, which owns the pipeline (parse + correlate) and the database connection, group-commits
//! whatever is waiting into one transaction, and answers each worker only after the commit.
//!
//! A batch whose write failed is kept (its rows in memory, its lines in the spool file) and
//! written first next time, and rsyslog's re-delivery of its lines is dropped by `%uuid%`, so
//! nothing is lost and nothing is written twice, even when rsyslogd stops during the outage.

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::config::{ActionConfig, HostnameSource, ProgramFilter};
use super::spool::Spool;
use crate::correlate::CorrelatorConfig;
use crate::ingest::{self, Pipeline};
use crate::parse::{self, header, Clock, Program, SyslogLine};
use crate::store::{self, Batch};

/// The fields omelse's own template renders, separated by spaces (none of the first five can
/// contain one); the tag and message come last, whatever they contain.
pub const TEMPLATE: &str = "%uuid% %timereported:::date-rfc3339% %hostname% %fromhost% %fromhost-ip% %syslogtag%%msg%";
pub const TEMPLATE_NAME: &str = "OmElseFormat";

/// How often the servers' roles and addresses are read again (an administrator may change them).
const FLEET_EVERY: Duration = Duration::from_secs(60);

/// What a worker thread's commit came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// The database is unreachable (or too slow): rsyslog keeps the messages and retries.
    Suspended(String),
}

/// How the module reports to rsyslog's own log; the FFI layer provides it.
pub type Logger = fn(severity: Severity, text: &str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// Counters an operator sees (rsyslog's log every `stats.interval`, and `elsed`).
#[derive(Debug, Default)]
pub struct Counters {
    pub lines: AtomicU64,
    pub skipped: AtomicU64,
    pub batches: AtomicU64,
    pub failed_commits: AtomicU64,
    pub last_commit_micros: AtomicU64,
    pub unknown: AtomicU64,
    pub duplicates: AtomicU64,
}

struct Shared {
    config: ActionConfig,
    log: Logger,
    down: AtomicBool,
    reconnect: AtomicBool,
    counters: Counters,
}

enum Request {
    Lines {
        lines: Vec<String>,
        reply: Sender<Outcome>,
    },
    /// Reconnect if needed and check the database answers.
    Ping {
        reply: Sender<Outcome>,
    },
}

/// One rsyslog action's connection to ELSE's database. Shared by the action's worker threads.
pub struct Sink {
    shared: Arc<Shared>,
    writer: Mutex<Option<(Sender<Request>, JoinHandle<()>)>>,
}

impl Sink {
    /// Creates the sink; no thread or connection until the first message (rsyslog may still fork).
    pub fn new(config: ActionConfig, log: Logger) -> Self {
        Sink {
            shared: Arc::new(Shared {
                config,
                log,
                down: AtomicBool::new(false),
                reconnect: AtomicBool::new(false),
                counters: Counters::default(),
            }),
            writer: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &ActionConfig {
        &self.shared.config
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// True once a write failed and until a check succeeds: beginTransaction answers SUSPENDED
    /// then, which is what keeps rsyslog's queue from losing the batch on shutdown.
    pub fn is_down(&self) -> bool {
        self.shared.down.load(Ordering::Relaxed)
    }

    /// SIGHUP: reconnect before the next write.
    pub fn request_reconnect(&self) {
        self.shared.reconnect.store(true, Ordering::Relaxed);
    }

    /// Whether a rendered line concerns mail at all (cheap, before it is copied).
    pub fn wants(&self, rendered: &[u8]) -> bool {
        match self.shared.config.programs {
            ProgramFilter::All => true,
            ProgramFilter::Mail => {
                let tag = rendered.splitn(6, |&b| b == b' ').nth(5).unwrap_or_default();
                let end = tag.iter().position(|&b| b == b'[' || b == b':').unwrap_or(tag.len());
                std::str::from_utf8(&tag[..end]).is_ok_and(|name| {
                    let program = Program::split(name);
                    program.is_postfix() || parse::is_mail_neighbour(program.daemon)
                })
            }
        }
    }

    /// Writes the lines of one rsyslog batch; returns once they are committed or known not to be.
    pub fn commit(&self, lines: Vec<String>) -> Outcome {
        if lines.is_empty() {
            return Outcome::Committed;
        }
        let (reply, answer) = bounded(1);
        self.ask(Request::Lines { lines, reply }, answer)
    }

    /// rsyslog's tryResume: reconnects and checks; OK only if the database really answers.
    pub fn try_resume(&self) -> Outcome {
        let (reply, answer) = bounded(1);
        self.ask(Request::Ping { reply }, answer)
    }

    fn ask(&self, request: Request, answer: Receiver<Outcome>) -> Outcome {
        let sender = match self.writer_sender() {
            Ok(sender) => sender,
            Err(e) => return Outcome::Suspended(e),
        };
        if sender.send(request).is_err() {
            self.restart_writer();
            return Outcome::Suspended("omelse writer thread stopped; restarted".into());
        }
        let timeout = Duration::from_secs(self.shared.config.commit_timeout_secs);
        match answer.recv_timeout(timeout) {
            Ok(outcome) => outcome,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Outcome::Suspended(format!("no commit within {}s", timeout.as_secs()))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.restart_writer();
                Outcome::Suspended("omelse writer thread stopped; restarted".into())
            }
        }
    }

    fn writer_sender(&self) -> Result<Sender<Request>, String> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sender, handle)) = writer.as_ref() {
            if !handle.is_finished() {
                return Ok(sender.clone());
            }
        }
        let (sender, receiver) = bounded(64);
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("omelse writer".into())
            .spawn(move || writer_thread(shared, receiver))
            .map_err(|e| format!("cannot start the omelse writer thread: {e}"))?;
        *writer = Some((sender.clone(), handle));
        Ok(sender)
    }

    fn restart_writer(&self) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        *writer = None;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let writer = self.writer.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((sender, handle)) = writer {
            drop(sender);
            let _ = handle.join();
        }
    }
}

/// The writer thread: owns the pipeline and the connection; exits when the sink is dropped.
fn writer_thread(shared: Arc<Shared>, requests: Receiver<Request>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            (shared.log)(Severity::Error, &format!("omelse: cannot start its runtime: {e}"));
            return;
        }
    };
    let spool = Spool::open(shared.config.spool_file.as_ref().map(Into::into)).unwrap_or_else(|e| {
        (shared.log)(
            Severity::Error,
            &format!("omelse: spool.file cannot be read ({e}); failed batches are kept in memory only"),
        );
        Spool::default()
    });
    let mut writer = Writer {
        shared: &shared,
        spool,
        spool_failing: false,
        client: None,
        store: store::Writer::new(),
        pipeline: None,
        pending: Batch::default(),
        last_report: Instant::now(),
        last_rollup: Instant::now(),
        last_fleet: Instant::now(),
    };
    let tick = Duration::from_secs(shared.config.stats_interval_secs.clamp(1, 60));
    loop {
        // Wake up at least every `tick` so that counters are reported when no line comes.
        let first = match requests.recv_timeout(tick) {
            Ok(request) => request,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                runtime.block_on(writer.report_if_due());
                runtime.block_on(writer.refresh_rollups_if_due());
                runtime.block_on(writer.refresh_fleet_if_due());
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let mut replies = Vec::new();
        let mut lines = Vec::new();
        let collect = |request: Request, lines: &mut Vec<String>, replies: &mut Vec<Sender<Outcome>>| match request {
            Request::Lines { lines: mut more, reply } => {
                lines.append(&mut more);
                replies.push(reply);
            }
            Request::Ping { reply } => replies.push(reply),
        };
        collect(first, &mut lines, &mut replies);
        // Group commit: whatever the other workers queued meanwhile goes into the same transaction.
        while lines.len() < shared.config.batch_max_lines {
            match requests.try_recv() {
                Ok(request) => collect(request, &mut lines, &mut replies),
                Err(_) => break,
            }
        }
        let outcome = runtime.block_on(writer.write(lines));
        for reply in replies {
            let _ = reply.send(outcome.clone());
        }
        runtime.block_on(writer.report_if_due());
        runtime.block_on(writer.refresh_rollups_if_due());
        runtime.block_on(writer.refresh_fleet_if_due());
    }
}

struct Writer<'a> {
    shared: &'a Shared,
    client: Option<tokio_postgres::Client>,
    store: store::Writer,
    /// Built at the first connection, from the open state in the database.
    pipeline: Option<Pipeline>,
    /// Rows whose write failed: written first next time.
    pending: Batch,
    /// The lines not written yet (those of `pending`, and those that came before the first
    /// connection), on disk when `spool.file` is set.
    spool: Spool,
    /// The spool file could not be written: said once, until it can again.
    spool_failing: bool,
    last_report: Instant,
    last_rollup: Instant,
    last_fleet: Instant,
}

impl Writer<'_> {
    async fn write(&mut self, lines: Vec<String>) -> Outcome {
        let outcome = self.write_lines(&lines).await;
        match outcome {
            Outcome::Committed => {
                if let Err(e) = self.spool.clear() {
                    self.spool_trouble(format!("cannot remove the written spool: {e}"));
                }
            }
            Outcome::Suspended(_) => {
                self.spool.keep(&lines);
                if let Err(e) = self.spool.save() {
                    self.spool_trouble(format!("cannot save the failed batch to spool.file: {e}"));
                } else {
                    self.spool_failing = false;
                }
            }
        }
        outcome
    }

    fn spool_trouble(&mut self, problem: String) {
        if !std::mem::replace(&mut self.spool_failing, true) {
            (self.shared.log)(Severity::Error, &format!("omelse: {problem}"));
        }
    }

    async fn write_lines(&mut self, lines: &[String]) -> Outcome {
        let started = Instant::now();
        // Into the pipeline first when it exists, so that the rows wait in `pending` while the
        // database is away; before the first connection they wait in the spool.
        let pushed = self.push(lines);
        if let Err(e) = self.connect().await {
            return self.fail(e);
        }
        if !pushed && !self.push(lines) {
            return self.fail("no pipeline".into());
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
        match self.store.write_batch(client, &self.pending).await {
            Ok(_) => {
                self.pending = Batch::default();
                counters.batches.fetch_add(1, Ordering::Relaxed);
                self.succeed(started)
            }
            Err(e) => self.fail(format!("write failed: {e}")),
        }
    }

    /// Runs rendered lines through the pipeline into `pending`; false when there is no pipeline yet.
    fn push(&mut self, lines: &[String]) -> bool {
        let Some(pipeline) = self.pipeline.as_mut() else {
            return false;
        };
        for text in lines {
            match split_rendered(text, self.shared.config.hostname_source) {
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
            self.pipeline = Some(Pipeline::new(Clock::system(), correlator));
            // What a stopped rsyslogd could not write, and lines from before this connection.
            let waiting = self.spool.lines().to_vec();
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
        if self.shared.down.swap(false, Ordering::Relaxed) {
            (self.shared.log)(Severity::Info, "omelse: database reachable again, writing resumed");
        }
        self.shared
            .counters
            .last_commit_micros
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Outcome::Committed
    }

    fn fail(&mut self, reason: String) -> Outcome {
        self.client = None;
        self.shared.counters.failed_commits.fetch_add(1, Ordering::Relaxed);
        if !self.shared.down.swap(true, Ordering::Relaxed) {
            (self.shared.log)(
                Severity::Error,
                &format!("omelse: {reason}; suspending until the database is back"),
            );
        }
        Outcome::Suspended(reason)
    }

    /// The module's own configuration (the default role, internal networks), before the fleet of
    /// the database is added.
    fn correlator_config(&self) -> CorrelatorConfig {
        let mut config = CorrelatorConfig {
            default_role: self.shared.config.server_role.parse().unwrap_or_default(),
            ..CorrelatorConfig::default()
        };
        if let Some(networks) = &self.shared.config.internal_networks {
            config.internal_networks = networks.clone();
        }
        config
    }

    /// Picks up the roles and addresses an administrator set since the last reading.
    async fn refresh_fleet_if_due(&mut self) {
        if self.last_fleet.elapsed() < FLEET_EVERY {
            return;
        }
        self.last_fleet = Instant::now();
        let (Some(client), Some(_)) = (self.client.as_ref(), self.pipeline.as_ref()) else {
            return;
        };
        match store::load_fleet(client).await {
            Ok(fleet) => {
                let mut config = self.correlator_config();
                config.add_fleet(&fleet);
                if let Some(pipeline) = self.pipeline.as_mut() {
                    pipeline.correlator_mut().set_config(config);
                }
            }
            Err(e) => (self.shared.log)(Severity::Warning, &format!("omelse: servers not read again: {e}")),
        }
    }

    /// Keeps the hourly rollups current when `rollups.interval` asks the module to (dashboards read
    /// them, never raw events): the hours the last writes touched, not after every batch.
    async fn refresh_rollups_if_due(&mut self) {
        let every = self.shared.config.rollups_interval_secs;
        if every == 0 || self.last_rollup.elapsed() < Duration::from_secs(every) {
            return;
        }
        self.last_rollup = Instant::now();
        if let Some(client) = self.client.as_mut() {
            if let Err(e) = store::refresh_rollups(client).await {
                (self.shared.log)(Severity::Warning, &format!("omelse: rollups not refreshed: {e}"));
            }
        }
    }

    /// Every `stats.interval`: the counters to rsyslog's log and to `ingest_counters`.
    async fn report_if_due(&mut self) {
        let interval = self.shared.config.stats_interval_secs;
        if interval == 0 || self.last_report.elapsed() < Duration::from_secs(interval) {
            return;
        }
        self.last_report = Instant::now();
        let Some(pipeline) = &self.pipeline else {
            return;
        };
        let stats = pipeline.stats();
        let counters = &self.shared.counters;
        let unknown: u64 = stats.unknown_by_program.values().sum();
        counters.unknown.store(unknown, Ordering::Relaxed);
        counters.duplicates.store(stats.duplicates, Ordering::Relaxed);
        let figures = [
            ("lines", stats.lines),
            ("unknown", unknown),
            ("unparsed", stats.unparsed),
            ("duplicates", stats.duplicates),
            ("skipped", counters.skipped.load(Ordering::Relaxed)),
            ("batches", counters.batches.load(Ordering::Relaxed)),
            ("failed_commits", counters.failed_commits.load(Ordering::Relaxed)),
            ("last_commit_us", counters.last_commit_micros.load(Ordering::Relaxed)),
        ];
        let text: Vec<String> = figures.iter().map(|(name, value)| format!("{name}={value}")).collect();
        (self.shared.log)(Severity::Info, &format!("omelse: {}", text.join(" ")));
        if let Some(client) = &self.client {
            let prefix = format!("omelse.{}", machine_name());
            let rows: Vec<(String, i64)> = figures
                .iter()
                .map(|(name, value)| (format!("{prefix}.{name}"), *value as i64))
                .collect();
            // Best effort: the next report tries again.
            let _ = store::record_counters(client, &rows).await;
        }
    }
}

/// This machine's host name, to tell the counters of several ELSE servers apart.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Splits a line rendered with [`TEMPLATE`] into its uuid and envelope.
pub fn split_rendered(text: &str, source: HostnameSource) -> Option<(&str, SyslogLine<'_>)> {
    let mut fields = text.splitn(6, ' ');
    let uuid = fields.next()?;
    let (time, _) = header::parse_rfc3339(fields.next()?)?;
    let hostname = fields.next()?;
    let fromhost = fields.next()?;
    let fromhost_ip = fields.next()?;
    let host = match source {
        HostnameSource::Hostname => hostname,
        HostnameSource::FromHost => fromhost,
        HostnameSource::FromHostIp => fromhost_ip,
    };
    let (program, pid, message) = header::split_tag(fields.next()?)?;
    Some((
        uuid,
        SyslogLine {
            time,
            host,
            program,
            pid,
            message,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_line_splits_into_uuid_and_envelope() {
        let text = "0A1B 2026-11-28T20:16:47.123456+01:00 mx1 relay.example 192.0.2.7 postfix/submission/smtpd[25198]: connect from x[192.0.2.1]";
        let (uuid, line) = split_rendered(text, HostnameSource::Hostname).unwrap();
        assert_eq!(uuid, "0A1B");
        assert_eq!(
            (line.host, line.program, line.pid, line.message),
            (
                "mx1",
                "postfix/submission/smtpd",
                Some(25198),
                "connect from x[192.0.2.1]"
            )
        );
        assert_eq!(line.time.to_rfc3339(), "2026-11-28T19:16:47.123456Z");
        let (_, line) = split_rendered(text, HostnameSource::FromHostIp).unwrap();
        assert_eq!(line.host, "192.0.2.7");
    }
}
