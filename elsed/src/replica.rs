//! Reads on a hot standby (`database.read_url`): the searches, reports, statistics and log
//! lists of `elsed serve` go there while it is no more than `database.read_max_lag_secs` behind
//! the primary; everything that writes (sessions, audit, settings, acknowledgements, the search
//! history) stays on the primary. A standby that lags, is down, or is no standby (promoted) is
//! skipped, and its state is what `GET /api/v1/database` and `elsed status` show.
//!
//! Lag is measured without writing anything and without trusting clocks: every second the
//! watcher notes the primary's WAL position (`pg_current_wal_lsn`) beside the time it saw it,
//! and asks the standby how far it has replayed (`pg_last_wal_replay_lsn`). The standby is as
//! old as the newest noted position it has replayed: lag = now − the time of that note (zero
//! when it has replayed all the primary had). An idle primary therefore never makes a paused
//! standby look fresh, nor a caught-up one look old, which `now() − pg_last_xact_replay_timestamp()`
//! would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omelse::parse::Timestamp;
use omelse::store::with_causes;
use serde::Serialize;

use crate::db;

/// How often the watcher compares the two servers.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a read waits for a new connection to the standby before it goes to the primary: a
/// standby that does not answer costs a request this much once, then the watcher skips it.
const STANDBY_CONNECT: Duration = Duration::from_secs(2);

/// Notes kept while the standby is behind: a day of them at one a second (about 2 MB); past
/// that the oldest go and the lag shown is a lower bound (it is far past any threshold anyway).
const MAX_NOTES: usize = 86_400;

/// Where the reads of the web application go.
#[derive(Clone)]
pub struct Reads {
    primary: db::Pool,
    standby: Option<Arc<Standby>>,
}

struct Standby {
    pool: db::Pool,
    max_lag: Duration,
    state: Mutex<ReplicaStatus>,
}

/// The read replica's state, as `GET /api/v1/database` shows it to administrators (other
/// accounts get no `reason`, `lag_bytes` or `replay_paused`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplicaStatus {
    /// Whether `database.read_url` names a standby at all.
    pub configured: bool,
    /// Whether reads go to the standby now (else to the primary).
    pub in_use: bool,
    /// How far behind the primary the standby is, in seconds (none: not measured yet, or down).
    pub lag_seconds: Option<f64>,
    /// WAL bytes the standby has still to replay (administrators only: null for other accounts).
    pub lag_bytes: Option<i64>,
    /// Whether its replay is paused (`pg_wal_replay_pause()`: it then falls behind;
    /// administrators only: null for other accounts).
    pub replay_paused: Option<bool>,
    /// Past this lag the standby is skipped (`database.read_max_lag_secs`).
    pub max_lag_seconds: Option<u64>,
    /// Why it is skipped, in words: a connection error can name the standby's host, port or
    /// role (administrators only: null for other accounts).
    pub reason: Option<String>,
    /// When the watcher last compared the two.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<Timestamp>,
}

impl ReplicaStatus {
    fn unconfigured() -> ReplicaStatus {
        ReplicaStatus {
            configured: false,
            in_use: false,
            lag_seconds: None,
            lag_bytes: None,
            replay_paused: None,
            max_lag_seconds: None,
            reason: None,
            checked_at: None,
        }
    }
}

impl Reads {
    /// Every read on `primary` (no `database.read_url`).
    pub fn primary_only(primary: db::Pool) -> Reads {
        Reads { primary, standby: None }
    }

    /// Reads on `standby` while it lags at most `max_lag`; not used until the watcher
    /// ([`Reads::watch`]) has seen it caught up enough.
    pub fn with_standby(primary: db::Pool, standby: db::Pool, max_lag: Duration) -> Reads {
        let state = ReplicaStatus {
            configured: true,
            max_lag_seconds: Some(max_lag.as_secs()),
            reason: Some("not checked yet".into()),
            ..ReplicaStatus::unconfigured()
        };
        Reads {
            primary,
            standby: Some(Arc::new(Standby {
                pool: standby,
                max_lag,
                state: Mutex::new(state),
            })),
        }
    }

    /// A connection for a read: the standby's while it is in use, else (or when it gives none)
    /// the primary's.
    pub async fn get(&self) -> Result<db::Pooled, db::PoolError> {
        if let Some(standby) = self.standby.as_ref().filter(|s| s.in_use()) {
            let timeouts = deadpool_postgres::Timeouts {
                create: Some(STANDBY_CONNECT),
                ..standby.pool.timeouts()
            };
            match standby.pool.timeout_get(&timeouts).await {
                Ok(client) => return Ok(client),
                Err(e) => standby.skip(format!("no connection: {}", pool_error(&e))),
            }
        }
        self.primary.get().await
    }

    /// One more connection where reads go, at once, only when the pool could still give
    /// another after it and nobody waits: a page's count runs on it beside the page
    /// ([`crate::web::paging::Readers`]). `None` costs the page only time, never anyone a
    /// connection.
    pub async fn spare(&self) -> Option<db::Pooled> {
        let pool = match self.standby.as_ref().filter(|s| s.in_use()) {
            Some(standby) => &standby.pool,
            None => &self.primary,
        };
        let status = pool.status();
        let free = status.available + status.max_size.saturating_sub(status.size);
        if status.waiting > 0 || free < 2 {
            return None;
        }
        let at_once = deadpool_postgres::Timeouts {
            wait: Some(Duration::ZERO),
            ..pool.timeouts()
        };
        pool.timeout_get(&at_once).await.ok()
    }

    /// The standby's state now.
    pub fn status(&self) -> ReplicaStatus {
        match &self.standby {
            Some(standby) => standby.state.lock().expect("replica state").clone(),
            None => ReplicaStatus::unconfigured(),
        }
    }

    /// Compares the standby with the primary every [`WATCH_EVERY`], for ever (nothing to do
    /// without a standby).
    pub async fn watch(self) {
        let Some(standby) = self.standby else {
            return;
        };
        let mut clock = LagClock::default();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let measured = measure(&self.primary, &standby.pool, &mut clock).await;
            standby.update(measured);
        }
    }
}

/// How far behind the standby is.
struct Lag {
    time: Duration,
    /// WAL bytes it has still to replay.
    bytes: i64,
    /// Its replay is paused (`pg_wal_replay_pause()`).
    paused: bool,
}

/// One comparison: the lag, or why there is none.
type Measured = Result<Lag, String>;

async fn measure(primary: &db::Pool, standby: &db::Pool, clock: &mut LagClock) -> Measured {
    // The primary first: whatever the standby has replayed by the time it answers is then
    // compared with a position at least as old, never a newer one.
    let primary_lsn = {
        let client = primary
            .get()
            .await
            .map_err(|e| format!("primary: {}", pool_error(&e)))?;
        wal_position(&client)
            .await
            .map_err(|e| format!("primary: {}", with_causes(&e)))?
    };
    let seen = Instant::now();
    let client = standby
        .get()
        .await
        .map_err(|e| format!("no connection: {}", pool_error(&e)))?;
    let replay = replay_state(&client).await?;
    let lag = clock.observe(seen, primary_lsn, replay.position);
    Ok(Lag {
        time: lag,
        bytes: (primary_lsn - replay.position).max(0),
        paused: replay.paused,
    })
}

/// Why a pool gave no connection, with the server's own words (`role "…" does not exist`,
/// `Connection refused`: tokio_postgres's message is only the kind, `db error`). They may name
/// the standby's host or role: `GET /database` shows them to administrators only.
fn pool_error(error: &db::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(backend) => with_causes(backend),
        other => other.to_string(),
    }
}

/// What a standby has replayed, as it says.
pub struct Replay {
    /// WAL position replayed (bytes from 0/0).
    pub position: i64,
    pub paused: bool,
    /// When the primary committed the last transaction it replayed.
    pub last_commit: Option<Timestamp>,
}

/// What `standby` has replayed; an error in words when it is no standby.
pub async fn replay_state(standby: &tokio_postgres::Client) -> Result<Replay, String> {
    let row = standby
        .query_one(
            "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0')::bigint,
                    CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
                    pg_last_xact_replay_timestamp()",
            &[],
        )
        .await
        .map_err(|e| with_causes(&e))?;
    if !row.get::<_, bool>(0) {
        return Err("not a standby (not in recovery): it was promoted, or read_url names a primary".into());
    }
    Ok(Replay {
        position: row.get::<_, Option<i64>>(1).ok_or("has replayed nothing yet")?,
        paused: row.get::<_, Option<bool>>(2) == Some(true),
        last_commit: row.get(3),
    })
}

/// The primary's current WAL position (bytes from 0/0).
pub async fn wal_position(primary: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    let row = primary
        .query_one("SELECT (pg_current_wal_lsn() - '0/0')::bigint", &[])
        .await?;
    Ok(row.get(0))
}

impl Standby {
    fn in_use(&self) -> bool {
        self.state.lock().expect("replica state").in_use
    }

    /// A read found no connection: skip the standby until the watcher sees it again.
    fn skip(&self, reason: String) {
        let mut state = self.state.lock().expect("replica state");
        if state.in_use {
            tracing::warn!("read replica skipped, reads go to the primary: {reason}");
        }
        state.in_use = false;
        state.reason = Some(reason);
    }

    fn update(&self, measured: Measured) {
        let mut state = self.state.lock().expect("replica state");
        let was_in_use = state.in_use;
        state.checked_at = Some(Timestamp::now());
        match measured {
            Ok(lag) => {
                state.lag_seconds = Some(lag.time.as_secs_f64());
                state.lag_bytes = Some(lag.bytes);
                state.replay_paused = Some(lag.paused);
                state.in_use = lag.time <= self.max_lag;
                state.reason = (!state.in_use).then(|| {
                    let paused = if lag.paused { " (its replay is paused)" } else { "" };
                    format!(
                        "{:.0} s behind the primary{paused}, more than read_max_lag_secs = {}",
                        lag.time.as_secs_f64(),
                        self.max_lag.as_secs()
                    )
                });
            }
            Err(reason) => {
                state.in_use = false;
                state.lag_seconds = None;
                state.lag_bytes = None;
                state.replay_paused = None;
                state.reason = Some(reason);
            }
        }
        match (was_in_use, state.in_use) {
            (true, false) => tracing::warn!(
                "read replica skipped, reads go to the primary: {}",
                state.reason.as_deref().unwrap_or_default()
            ),
            (false, true) => tracing::info!(lag_seconds = state.lag_seconds, "read replica in use"),
            _ => {}
        }
    }
}

/// The primary's WAL positions and when the watcher saw them: how old the standby's replayed
/// position is.
#[derive(Debug, Default)]
pub struct LagClock {
    /// (seen at, primary's position), oldest first, positions never decreasing.
    notes: VecDeque<(Instant, i64)>,
}

impl LagClock {
    /// Notes that the primary was at `primary` at `now` and returns how far behind a standby
    /// that has replayed up to `replayed` is.
    pub fn observe(&mut self, now: Instant, primary: i64, replayed: i64) -> Duration {
        if replayed >= primary {
            // Caught up: older notes are of no use any more.
            self.notes.clear();
            self.notes.push_back((now, primary));
            return Duration::ZERO;
        }
        if self.notes.back().is_none_or(|&(_, last)| last < primary) {
            self.notes.push_back((now, primary));
        }
        // Keep the newest note the standby has replayed (its time is the standby's age) and
        // what follows it.
        while self.notes.len() > 1 && self.notes[1].1 <= replayed {
            self.notes.pop_front();
        }
        if self.notes.len() > MAX_NOTES {
            self.notes.pop_front();
        }
        // Everything the primary had at the first note's time is there, not all that came after
        // (or, when the standby is behind even the oldest note, not even that).
        now.saturating_duration_since(self.notes[0].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lag is the age of the newest primary position the standby has replayed: an idle
    /// primary keeps a caught-up standby at zero, a paused one ages from the first write it
    /// misses, and catching up brings it back to zero.
    #[test]
    fn lag_is_the_age_of_what_the_standby_has_replayed() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut clock = LagClock::default();
        assert_eq!(clock.observe(at(0), 100, 100), Duration::ZERO);
        // An idle hour: still caught up.
        assert_eq!(clock.observe(at(3600), 100, 100), Duration::ZERO);
        // Writes from here on; the standby stays at 100.
        assert_eq!(clock.observe(at(3601), 200, 100), Duration::from_secs(1));
        assert_eq!(clock.observe(at(3610), 300, 100), Duration::from_secs(10));
        // It replays what the primary had at 3601: as old as that.
        assert_eq!(clock.observe(at(3611), 300, 200), Duration::from_secs(10));
        assert_eq!(clock.observe(at(3612), 300, 300), Duration::ZERO);
        // A watcher that starts with the standby already behind knows a lower bound only.
        let mut late = LagClock::default();
        assert_eq!(late.observe(at(0), 500, 100), Duration::ZERO);
        assert_eq!(late.observe(at(5), 500, 100), Duration::from_secs(5));
    }
}
