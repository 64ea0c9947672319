//! The action's side of the database, owned by the commit thread: the connection (made, migrated
//! and checked on demand), the pipeline resumed from what the database holds, and what is not
//! written yet: rows in `pending`, their lines in the spool.
//!
//! A batch whose write failed is kept (its rows in memory, its lines in the spool file) and
//! written first next time, and rsyslog's re-delivery of its lines is dropped by `%uuid%`, so
//! nothing is lost and nothing is written twice, even when rsyslogd stops during the outage.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::sink::{Outcome, Severity, Shared};
use super::spool::Spool;
use super::template;
use crate::correlate::CorrelatorConfig;
use crate::ingest::{self, Pipeline};
use crate::parse::Clock;
use crate::store::{self, Batch};

pub(super) struct Database<'a> {
    shared: &'a Shared,
    client: Option<Client>,
    batch_writer: store::Writer,
    /// Built at the first connection, from the open state in the database.
    pipeline: Option<Pipeline>,
    /// Rows whose write failed: written first next time.
    pending: Batch,
    /// The lines not written yet (those of `pending`, and those that came before the first
    /// connection), on disk when `spool.file` is set.
    spool: Spool,
    /// Lines whose write failed before they reached the pipeline (evicted lives to bring back
    /// first): written first next time, since rsyslog may not send them again.
    unpushed: Vec<String>,
}

impl<'a> Database<'a> {
    /// Not connected yet; the spool a previous process left is read now.
    pub fn new(shared: &'a Shared) -> Self {
        let spool = Spool::open(shared.config.spool_file.as_ref().map(Into::into)).unwrap_or_else(|e| {
            (shared.log)(
                Severity::Error,
                &format!("omelse: spool.file cannot be read ({e}); failed batches are kept in memory only"),
            );
            Spool::default()
        });
        shared.spool_on_file.store(spool.on_file(), Ordering::Relaxed);
        Database {
            shared,
            client: None,
            batch_writer: store::Writer::new(),
            pipeline: None,
            pending: Batch::default(),
            spool,
            unpushed: Vec::new(),
        }
    }

    /// The connection, when there is one.
    pub fn client(&mut self) -> Option<&mut Client> {
        self.client.as_mut()
    }

    /// The pipeline, once the first connection resumed it.
    pub fn pipeline(&mut self) -> Option<&mut Pipeline> {
        self.pipeline.as_mut()
    }

    /// Keeps `lines` in the spool file before they are written, so that their workers may be
    /// answered at once (rsyslog then forgets them: they are ours until committed). Only with a
    /// `spool.file`, a pipeline that the database resumed, and a database not known to be down;
    /// false when not done (the workers then wait for the commit, as without a file).
    pub fn spool_ahead(&mut self, lines: &[String]) -> bool {
        if !self.spool.on_file() || self.pipeline.is_none() || self.shared.down.load(Ordering::Relaxed) {
            return false;
        }
        self.spool.keep(lines);
        match self.spool.save() {
            Ok(()) => {
                self.shared.spool_on_file.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.spool_trouble(format!("cannot keep a batch in spool.file before its commit: {e}"));
                false
            }
        }
    }

    /// Writes the lines of one group commit (none: a check that the database answers).
    pub async fn write(&mut self, mut lines: Vec<String>) -> Outcome {
        if !self.unpushed.is_empty() {
            let mut first = std::mem::take(&mut self.unpushed);
            first.append(&mut lines);
            lines = first;
        }
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
                    self.shared.spool_on_file.store(self.spool.on_file(), Ordering::Relaxed);
                }
            }
        }
        outcome
    }

    /// Said once, until the spool file can be written again; meanwhile failed batches are not
    /// taken while the database is down ([`super::sink::Sink::takes_batches`]).
    fn spool_trouble(&mut self, problem: String) {
        if self.shared.spool_on_file.swap(false, Ordering::Relaxed) {
            (self.shared.log)(Severity::Error, &format!("omelse: {problem}"));
        }
    }

    async fn write_lines(&mut self, lines: &[String]) -> Outcome {
        let started = Instant::now();
        // Into the pipeline first when it exists, so that the rows wait in `pending` while the
        // database is away; before the first connection they wait in the spool. Once lives were
        // evicted, the lines wait for the database: the lives they name come back from it first.
        let evicted = self
            .pipeline
            .as_ref()
            .is_some_and(|pipeline| pipeline.correlator().evicted_lives() > 0);
        let pushed = !evicted && self.push(lines);
        if let Err(e) = self.connect().await {
            if !pushed {
                self.unpushed = lines.to_vec();
            }
            return self.fail(e);
        }
        if !pushed {
            if let Err(e) = self.reload(lines).await {
                self.unpushed = lines.to_vec();
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
