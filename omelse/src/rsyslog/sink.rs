//! The handoff from rsyslog's worker threads to the action's commit thread: workers hand over
//! the lines of their batches and wait; the commit thread owns the [`Database`] side (pipeline and
//! connection), group-commits whatever is waiting into one transaction, answers each worker only
//! after the commit, and runs the [`Upkeep`] between commits. Batches are correlated in the order
//! rsyslog dequeued them ([`super::turns`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use super::config::{ActionConfig, ProgramFilter};
use super::database::Database;
use super::identity::{self, RefusalLog};
use super::spool::Spool;
use super::template;
use super::turns::{Turns, WAIT_FOR_TURN};
use super::upkeep::Upkeep;
use crate::parse::{self, Program};

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
    /// Lines refused because their server name is not one their input is bound to (`identity`).
    pub refused_host: AtomicU64,
}

/// What the workers, the commit thread and its parts share.
pub(super) struct Shared {
    pub config: ActionConfig,
    pub log: Logger,
    /// A write failed, and no check has succeeded since.
    pub down: AtomicBool,
    /// `spool.file` takes batches: configured, not full, and its last append worked.
    pub spool_takes: AtomicBool,
    /// SIGHUP asked for a new connection.
    pub reconnect: AtomicBool,
    pub counters: Counters,
    /// The next turn a beginning transaction takes.
    pub turns_taken: AtomicU64,
    /// The first turn the commit thread has not released yet (a restarted thread goes on there).
    pub turns_released: AtomicU64,
    /// The host identity refusals said in rsyslog's log already.
    pub refusals: RefusalLog,
}

enum Request {
    /// A worker's batch, with its turn. No reply: a batch that had no line for omelse, whose
    /// turn passes.
    Lines {
        turn: Option<u64>,
        lines: Vec<String>,
        reply: Option<Sender<Outcome>>,
    },
    /// Reconnect if needed and check the database answers.
    Ping { reply: Sender<Outcome> },
}

/// One rsyslog action's way to ELSE's database. Shared by the action's worker threads.
pub struct Sink {
    shared: Arc<Shared>,
    /// The commit thread and the way to it, started with the first request.
    commit_thread: Mutex<Option<(Sender<Request>, JoinHandle<()>)>>,
}

impl Sink {
    /// Creates the sink; no thread or connection until the first message (rsyslog may still fork).
    pub fn new(config: ActionConfig, log: Logger) -> Self {
        Sink {
            shared: Arc::new(Shared {
                config,
                log,
                down: AtomicBool::new(false),
                spool_takes: AtomicBool::new(false),
                reconnect: AtomicBool::new(false),
                counters: Counters::default(),
                turns_taken: AtomicU64::new(0),
                turns_released: AtomicU64::new(0),
                refusals: RefusalLog::default(),
            }),
            commit_thread: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &ActionConfig {
        &self.shared.config
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Whether beginTransaction takes a batch: while `spool.file` takes batches (they wait there
    /// in order whatever the database does), else not while the database is down. Refused,
    /// rsyslog keeps the batch in its queue (module ABI notes §8.4).
    pub fn takes_batches(&self) -> bool {
        !self.shared.down.load(Ordering::Relaxed) || self.shared.spool_takes.load(Ordering::Relaxed)
    }

    /// Starts the commit thread now when `spool.file` holds lines (a previous rsyslogd's): they
    /// are written without waiting for the next line to come.
    pub fn start_if_spooled(&self) {
        let spooled = self.shared.config.spool_file.as_deref().is_some_and(Spool::holds_lines);
        if spooled {
            if let Err(e) = self.commit_sender() {
                (self.shared.log)(Severity::Error, &e);
            }
        }
    }

    /// SIGHUP: reconnect before the next write.
    pub fn request_reconnect(&self) {
        self.shared.reconnect.store(true, Ordering::Relaxed);
    }

    /// Whether a rendered line goes to the database (cheap, before it is copied): a line that does
    /// not concern mail is skipped, one whose server name its input may not carry is refused
    /// (`identity`); both are counted.
    pub fn admit(&self, rendered: &[u8]) -> bool {
        let counters = &self.shared.counters;
        if !self.wants(rendered) {
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let config = &self.shared.config;
        // A line without the fields is stored raw, as the pipeline does with what it cannot read.
        let Some((host, input)) = template::host_and_input(rendered, config.hostname_source) else {
            return true;
        };
        let (host, input) = (String::from_utf8_lossy(host), String::from_utf8_lossy(input));
        match identity::check(config.host_binding, &input, &host) {
            Ok(()) => true,
            Err(refusal) => {
                counters.refused_host.fetch_add(1, Ordering::Relaxed);
                if let Some(text) = self.shared.refusals.first_time(&refusal, &input, &host) {
                    (self.shared.log)(Severity::Warning, &text);
                }
                false
            }
        }
    }

    /// Whether a rendered line concerns mail at all.
    fn wants(&self, rendered: &[u8]) -> bool {
        match self.shared.config.programs {
            ProgramFilter::All => true,
            ProgramFilter::Mail => {
                let tag = template::tag_and_message(rendered);
                let end = tag.iter().position(|&b| b == b'[' || b == b':').unwrap_or(tag.len());
                std::str::from_utf8(&tag[..end]).is_ok_and(|name| {
                    let program = Program::split(name);
                    program.is_postfix() || parse::is_mail_neighbour(program.daemon)
                })
            }
        }
    }

    /// A worker's transaction begins (rsyslog's beginTransaction, right after the dequeue): the
    /// turn its batch will be correlated in.
    pub fn begin(&self) -> u64 {
        self.shared.turns_taken.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes the lines of one rsyslog batch; returns once they are committed or known not to be.
    /// `turn` is the one [`Sink::begin`] gave the batch's transaction (none: it goes as it comes).
    pub fn commit(&self, turn: Option<u64>, lines: Vec<String>) -> Outcome {
        if lines.is_empty() {
            if turn.is_some() {
                // Its turn passes; nothing to wait for.
                let _ = self.commit_sender().map(|sender| {
                    sender.send(Request::Lines {
                        turn,
                        lines,
                        reply: None,
                    })
                });
            }
            return Outcome::Committed;
        }
        let (reply, answer) = bounded(1);
        let request = Request::Lines {
            turn,
            lines,
            reply: Some(reply),
        };
        self.ask(request, answer)
    }

    /// rsyslog's tryResume: reconnects and checks; OK only if the database really answers.
    pub fn try_resume(&self) -> Outcome {
        let (reply, answer) = bounded(1);
        self.ask(Request::Ping { reply }, answer)
    }

    fn ask(&self, request: Request, answer: Receiver<Outcome>) -> Outcome {
        let sender = match self.commit_sender() {
            Ok(sender) => sender,
            Err(e) => return Outcome::Suspended(e),
        };
        if sender.send(request).is_err() {
            self.forget_commit_thread();
            return Outcome::Suspended("omelse commit thread stopped; restarted".into());
        }
        let timeout = Duration::from_secs(self.shared.config.commit_timeout_secs);
        match answer.recv_timeout(timeout) {
            Ok(outcome) => outcome,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Outcome::Suspended(format!("no commit within {}s", timeout.as_secs()))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.forget_commit_thread();
                Outcome::Suspended("omelse commit thread stopped; restarted".into())
            }
        }
    }

    /// The way to the commit thread, started (again) when it is not running.
    fn commit_sender(&self) -> Result<Sender<Request>, String> {
        let mut thread = self.commit_thread.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((sender, handle)) = thread.as_ref() {
            if !handle.is_finished() {
                return Ok(sender.clone());
            }
        }
        let (sender, receiver) = bounded(64);
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("omelse commit".into())
            .spawn(move || commit_thread(shared, receiver))
            .map_err(|e| format!("cannot start the omelse commit thread: {e}"))?;
        *thread = Some((sender.clone(), handle));
        Ok(sender)
    }

    /// The commit thread is gone: the next request starts a new one.
    fn forget_commit_thread(&self) {
        let mut thread = self.commit_thread.lock().unwrap_or_else(|e| e.into_inner());
        *thread = None;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let thread = self.commit_thread.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((sender, handle)) = thread {
            drop(sender);
            let _ = handle.join();
        }
    }
}

/// The commit thread: owns the database side; exits when the sink is dropped.
fn commit_thread(shared: Arc<Shared>, requests: Receiver<Request>) {
    // One worker thread: the connection's task, and the write of a batch while this thread
    // parses the next one (`in_flight`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("omelse write")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            (shared.log)(Severity::Error, &format!("omelse: cannot start its runtime: {e}"));
            return;
        }
    };
    let mut database = Database::new(&shared, runtime.handle().clone());
    let mut upkeep = Upkeep::new(&shared);
    let tick = Duration::from_secs(shared.config.stats_interval_secs.clamp(1, 60));
    let mut turns = Turns::starting_at(shared.turns_released.load(Ordering::Relaxed));
    loop {
        let first = if let Some(written) = database.in_flight().cloned() {
            // A batch is being written: the next request is taken as soon as it comes (its parse
            // overlaps the write), else the write's end.
            crossbeam_channel::select! {
                recv(requests) -> request => match request {
                    Ok(request) => request,
                    Err(_) => break,
                },
                recv(written) -> _ => {
                    advance_and_upkeep(&runtime, &mut database, &mut upkeep);
                    continue;
                }
            }
        } else {
            // Wake up at least every `tick` so that counters are reported when no line comes,
            // and at once while lines wait in the spool file for a database that is there.
            match requests.recv_timeout(database.idle_wait(tick)) {
                Ok(request) => request,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    advance_and_upkeep(&runtime, &mut database, &mut upkeep);
                    continue;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut ready = Vec::new();
        push(&mut turns, first, &mut ready);
        // Group commit: whatever the other workers queued meanwhile goes into the same
        // transaction; a batch that came before its turn waits for those before it.
        let deadline = Instant::now() + WAIT_FOR_TURN;
        while turns.waiting() || line_count(&ready) < shared.config.batch_max_lines {
            let next = if turns.waiting() {
                requests.recv_deadline(deadline).ok()
            } else {
                requests.try_recv().ok()
            };
            match next {
                Some(request) => push(&mut turns, request, &mut ready),
                None if turns.waiting() => turns.give_up(&mut ready),
                None => break,
            }
        }
        shared.turns_released.store(turns.next(), Ordering::Relaxed);
        let mut line_replies = Vec::new();
        let mut ping_replies = Vec::new();
        let mut lines = Vec::new();
        for request in ready {
            match request {
                Request::Lines {
                    lines: mut more, reply, ..
                } => {
                    lines.append(&mut more);
                    line_replies.extend(reply);
                }
                Request::Ping { reply } => ping_replies.push(reply),
            }
        }
        // With a spool file the workers are answered once their lines are in it, and go on
        // with their next batches while these are parsed and written: rsyslog's dequeueing and
        // rendering then overlap with our work and PostgreSQL's instead of taking turns.
        if !line_replies.is_empty() {
            match database.spool_ahead(lines) {
                Ok(()) => {
                    for reply in line_replies.drain(..) {
                        let _ = reply.send(Outcome::Committed);
                    }
                    lines = Vec::new();
                }
                Err(back) => lines = back,
            }
        }
        // Written in turn: the way without a spool file, and checks.
        if !line_replies.is_empty() || !ping_replies.is_empty() {
            let outcome = runtime.block_on(database.write(lines));
            for reply in line_replies.into_iter().chain(ping_replies) {
                let _ = reply.send(outcome.clone());
            }
        }
        advance_and_upkeep(&runtime, &mut database, &mut upkeep);
    }
    // The last batch's write ends before the action goes; what waits stays in the spool file.
    runtime.block_on(database.settle());
}

/// Between requests: the write in flight and the spool file move on ([`Database::advance`]),
/// then whatever upkeep is due runs.
fn advance_and_upkeep(runtime: &tokio::runtime::Runtime, database: &mut Database<'_>, upkeep: &mut Upkeep<'_>) {
    runtime.block_on(database.advance());
    runtime.block_on(upkeep.run_due(database));
}

/// Takes a request into the turns (a check has none).
fn push(turns: &mut Turns<Request>, request: Request, ready: &mut Vec<Request>) {
    let turn = match &request {
        Request::Lines { turn, .. } => *turn,
        Request::Ping { .. } => None,
    };
    turns.push(turn, request, ready);
}

/// The lines of the requests ready to go.
fn line_count(ready: &[Request]) -> usize {
    ready
        .iter()
        .map(|request| match request {
            Request::Lines { lines, .. } => lines.len(),
            Request::Ping { .. } => 0,
        })
        .sum()
}
