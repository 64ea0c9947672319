//! The commit thread's periodic chores, each on its own timer, run after every group commit and
//! at least every `stats.interval` (at most a minute) when no line comes: the counters report,
//! the hourly rollups, the fleet's roles read again, and freed heap given back to the system.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::database::Database;
use super::sink::{Severity, Shared};
use crate::store;

/// How often the servers' roles and addresses are read again (an administrator may change them).
const FLEET_EVERY: Duration = Duration::from_secs(60);
/// How often freed heap is given back (see `heap.rs`): a walk of the allocator's free lists.
const TRIM_EVERY: Duration = Duration::from_secs(10);

pub(super) struct Upkeep<'a> {
    shared: &'a Shared,
    last_report: Instant,
    last_rollup: Instant,
    last_fleet: Instant,
    last_trim: Instant,
}

impl<'a> Upkeep<'a> {
    pub fn new(shared: &'a Shared) -> Self {
        let now = Instant::now();
        Upkeep {
            shared,
            last_report: now,
            last_rollup: now,
            last_fleet: now,
            last_trim: now,
        }
    }

    /// Whatever is due.
    pub async fn run_due(&mut self, database: &mut Database<'_>) {
        self.report_if_due(database).await;
        self.refresh_rollups_if_due(database).await;
        self.refresh_fleet_if_due(database).await;
        if self.last_trim.elapsed() >= TRIM_EVERY {
            self.last_trim = Instant::now();
            super::heap::give_back();
        }
    }

    /// Every `stats.interval`: the counters to rsyslog's log and to `ingest_counters`.
    async fn report_if_due(&mut self, database: &mut Database<'_>) {
        let interval = self.shared.config.stats_interval_secs;
        if interval == 0 || self.last_report.elapsed() < Duration::from_secs(interval) {
            return;
        }
        self.last_report = Instant::now();
        let counters = &self.shared.counters;
        let turned_away = counters.refused_host.load(Ordering::Relaxed) + counters.skipped.load(Ordering::Relaxed);
        if database.pipeline().is_none() && turned_away > 0 {
            // Lines came, but none for the database (all refused or skipped), so nothing connected
            // yet: connect now, so that the counters say so (a host whose every line is refused).
            let _ = database.write(Vec::new()).await;
        }
        let spool_bytes = database.spool_waiting();
        let Some(pipeline) = database.pipeline() else {
            return;
        };
        let stats = pipeline.stats();
        let correlator = pipeline.correlator();
        let (evictions, reloads) = correlator.eviction_counters();
        let (in_memory, evicted) = (correlator.lives_in_memory() as u64, correlator.evicted_lives() as u64);
        let (session_evictions, processes) = correlator.session_counters();
        let unknown: u64 = stats.unknown_by_program.values().sum();
        counters.unknown.store(unknown, Ordering::Relaxed);
        counters.duplicates.store(stats.duplicates, Ordering::Relaxed);
        let figures = [
            ("lines", stats.lines),
            ("unknown", unknown),
            ("unparsed", stats.unparsed),
            ("panicked", stats.panicked),
            ("duplicates", stats.duplicates),
            ("skipped", counters.skipped.load(Ordering::Relaxed)),
            ("refused_host", counters.refused_host.load(Ordering::Relaxed)),
            ("batches", counters.batches.load(Ordering::Relaxed)),
            ("failed_commits", counters.failed_commits.load(Ordering::Relaxed)),
            ("last_commit_us", counters.last_commit_micros.load(Ordering::Relaxed)),
            ("messages_in_memory", in_memory),
            ("messages_compact", correlator.compact_lives() as u64),
            ("messages_evicted", evicted),
            ("evictions", evictions),
            ("reloads", reloads),
            ("smtpd_processes", processes as u64),
            ("session_evictions", session_evictions),
            ("spool_bytes", spool_bytes),
        ];
        let text: Vec<String> = figures.iter().map(|(name, value)| format!("{name}={value}")).collect();
        (self.shared.log)(Severity::Info, &format!("omelse: {}", text.join(" ")));
        if let Some(client) = database.client().await {
            let prefix = format!("omelse.{}", machine_name());
            let rows: Vec<(String, i64)> = figures
                .iter()
                .map(|(name, value)| (format!("{prefix}.{name}"), *value as i64))
                .collect();
            // Best effort: the next report tries again.
            let _ = store::record_counters(client, &rows).await;
        }
    }

    /// Keeps the hourly rollups current when `rollups.interval` asks the module to (dashboards read
    /// them, never raw events): the hours the last writes touched, not after every batch.
    async fn refresh_rollups_if_due(&mut self, database: &mut Database<'_>) {
        let every = self.shared.config.rollups_interval_secs;
        if every == 0 || self.last_rollup.elapsed() < Duration::from_secs(every) {
            return;
        }
        self.last_rollup = Instant::now();
        if let Some(client) = database.client().await {
            if let Err(e) = store::refresh_rollups(client).await {
                (self.shared.log)(Severity::Warning, &format!("omelse: rollups not refreshed: {e}"));
            }
        }
    }

    /// Picks up the roles and addresses an administrator set since the last reading.
    async fn refresh_fleet_if_due(&mut self, database: &mut Database<'_>) {
        if self.last_fleet.elapsed() < FLEET_EVERY {
            return;
        }
        self.last_fleet = Instant::now();
        if database.pipeline().is_none() {
            return;
        }
        let Some(client) = database.client().await else {
            return;
        };
        match store::load_fleet(client).await {
            Ok(fleet) => {
                let mut config = database.correlator_config();
                config.add_fleet(&fleet);
                if let Some(pipeline) = database.pipeline() {
                    pipeline.correlator_mut().set_config(config);
                }
            }
            Err(e) => (self.shared.log)(Severity::Warning, &format!("omelse: servers not read again: {e}")),
        }
    }
}

/// This machine's host name, to tell the counters of several ELSE servers apart.
fn machine_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}
