//! The decision: lists first, then the auto-whitelist, then the triplet (delay, retry window and
//! max age as in Postgrey). Never `OK`: a request that is not greylisted gets `DUNNO` so that
//! the restrictions after `check_policy_service` still run. The database is given a short time;
//! past it, or on any error, the answer is `DUNNO` (fail open) and the failure is logged.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::db::Pool;
use tokio::sync::mpsc;

use super::batcher::Batcher;
use super::config::GreylistConfig;
use super::lists::{DbLists, Lists};
use super::protocol::Request;
use super::store::{self, DecisionRow, Key, SenderAwlRow, Snapshot, TripletRow};
use super::triplet::{client_network, domain_of, normalize_sender};
use super::Clock;

/// Passes of one sender are counted at most once an hour (Postgrey's rule), so that a burst of
/// messages does not whitelist at once.
const COUNT_INTERVAL: i64 = 3_600;
/// Auto-whitelist `last_seen` is refreshed at most this often (saves a write per request).
const TOUCH_INTERVAL: i64 = 3_600;

/// What the triplet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TripletOutcome {
    /// Still greylisted: `new` for a first attempt (or one after the retry window), with the
    /// seconds left.
    Greylist { new: bool, remaining: i64 },
    /// The first retry after the delay: passes, with the X-Greylist header.
    FirstPass { delayed: i64 },
    /// A triplet that passed before.
    KnownPass,
}

/// Postgrey's triplet rule, as a pure function: the new row and the outcome.
pub fn step_triplet(old: Option<TripletRow>, now: i64, cfg: &GreylistConfig) -> (TripletRow, TripletOutcome) {
    let fresh = TripletRow {
        first_seen: now,
        last_seen: now,
        passed_at: None,
        attempts: 0,
    };
    // A triplet unseen for max_age is forgotten even before cleanup removes it.
    let mut row = old.filter(|o| now - o.last_seen <= cfg.max_age_secs).unwrap_or(fresh);
    row.attempts = row.attempts.saturating_add(1);
    row.last_seen = now;
    if row.passed_at.is_some() {
        return (row, TripletOutcome::KnownPass);
    }
    // No retry within the window, or a first-seen in the future (clock skew): start over.
    if now - row.first_seen > cfg.retry_window_secs || row.first_seen > now {
        row.first_seen = now;
    }
    let waited = now - row.first_seen;
    if waited < cfg.delay_secs {
        let outcome = TripletOutcome::Greylist {
            new: waited == 0,
            remaining: cfg.delay_secs - waited,
        };
        return (row, outcome);
    }
    row.passed_at = Some(now);
    (row, TripletOutcome::FirstPass { delayed: waited })
}

/// Counts a pass of the sender from the network: `None` when this pass does not count (one an
/// hour), else the new row. An expired entry starts over.
pub fn count_sender_pass(old: Option<SenderAwlRow>, now: i64, cfg: &GreylistConfig) -> Option<SenderAwlRow> {
    match old.filter(|o| now - o.last_seen <= cfg.awl_max_age_secs) {
        Some(o) if now - o.last_counted < COUNT_INTERVAL && o.last_counted <= now => None,
        Some(o) => Some(SenderAwlRow {
            last_seen: now,
            last_counted: now,
            passes: o.passes.saturating_add(1),
            ..o
        }),
        None => Some(SenderAwlRow {
            first_seen: now,
            last_seen: now,
            last_counted: now,
            passes: 1,
        }),
    }
}

/// The outcome of the database part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Triplet(TripletOutcome),
    AwlSender,
    AwlDomain,
}

/// Per-connection memory: the last message (`instance`) that got an X-Greylist header, so that
/// a message to several recipients gets one header (as Postgrey does).
#[derive(Debug, Default)]
pub struct ConnState {
    last_prepend_instance: Option<String>,
}

/// Counters, for logs and tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub greylisted: AtomicU64,
    pub fail_open: AtomicU64,
    pub decisions_dropped: AtomicU64,
    /// Connections closed at once: a client outside `allowed_clients`, past its share of the
    /// connections, or past `max_connections`.
    pub refused: AtomicU64,
}

/// The policy service's shared state: one per process, used by every connection.
pub struct Policy {
    cfg: GreylistConfig,
    hostname: String,
    pool: Pool,
    batcher: Batcher,
    clock: Arc<dyn Clock>,
    lists: RwLock<Arc<Lists>>,
    log: Option<mpsc::Sender<DecisionRow>>,
    started: Instant,
    /// Milliseconds since `started` before which the database is not tried again.
    db_down_until: AtomicU64,
    db_down: AtomicBool,
    pub counters: Counters,
}

impl Policy {
    /// A service on `pool`; `log` receives the decisions (None: not logged).
    pub fn new(
        cfg: GreylistConfig,
        pool: Pool,
        clock: Arc<dyn Clock>,
        log: Option<mpsc::Sender<DecisionRow>>,
    ) -> Policy {
        let lists = Arc::new(Lists::build(&cfg, &DbLists::default()));
        Policy {
            hostname: cfg.effective_hostname(),
            batcher: Batcher::start(pool.clone(), cfg.clone()),
            cfg,
            pool,
            clock,
            lists: RwLock::new(lists),
            log,
            started: Instant::now(),
            db_down_until: AtomicU64::new(0),
            db_down: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &GreylistConfig {
        &self.cfg
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Re-reads the static lists from the database; on failure the current ones stay.
    pub async fn reload_lists(&self) -> Result<(), store::StoreError> {
        let client = self.pool.get().await?;
        let db = store::load_lists(&client).await?;
        let lists = Arc::new(Lists::build(&self.cfg, &db));
        *self.lists.write().unwrap_or_else(|e| e.into_inner()) = lists;
        Ok(())
    }

    /// The `action=` value for one request.
    pub async fn decide(&self, req: &Request, conn: &mut ConnState) -> String {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        // Only RCPT carries a recipient; elsewhere (a DATA check, say) there is nothing to key.
        if req
            .protocol_state
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("RCPT"))
        {
            return "DUNNO".into();
        }
        let now = self.clock.now();
        let mut row = DecisionRow {
            ts: now,
            action: "skip",
            reason: "",
            delay_secs: None,
            client_address: None,
            client_name: req.client_name.clone(),
            client_net: None,
            sender: req.sender.clone(),
            // Lower-cased: the end-user view looks addresses up case-insensitively.
            recipient: req.recipient.as_deref().map(str::to_ascii_lowercase),
            recipient_domain: req.recipient.as_deref().map(domain_of),
            queue_id: req.queue_id.clone().filter(|q| !q.is_empty()),
        };
        let (Some(sender), Some(recipient), Some(address)) = (
            req.sender.as_deref(),
            req.recipient.as_deref().filter(|r| !r.is_empty()),
            req.client_address.as_deref(),
        ) else {
            row.reason = "missing attribute";
            return self.finish(row, "DUNNO".into());
        };
        let Ok(ip) = address.parse::<IpAddr>() else {
            row.reason = "bad client address";
            return self.finish(row, "DUNNO".into());
        };
        row.client_address = Some(ip.to_canonical());
        let client_name = req.client_name.as_deref().unwrap_or("unknown");
        let lists = self.lists.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(exempt) = lists.exempt(ip, client_name, recipient) {
            (row.action, row.reason) = exempt.describe();
            return self.finish(row, "DUNNO".into());
        }
        let sender_n = normalize_sender(sender);
        let key = Key {
            client_net: client_network(ip, self.cfg.ipv4_prefix, self.cfg.ipv6_prefix),
            sender_domain: domain_of(&sender_n),
            sender: sender_n,
            recipient: recipient.to_ascii_lowercase(),
        };
        row.client_net = Some(key.client_net.clone());

        let outcome = match self.evaluate_bounded(&key, now).await {
            Some(outcome) => outcome,
            None => {
                self.counters.fail_open.fetch_add(1, Ordering::Relaxed);
                row.reason = "database unavailable";
                return self.finish(row, "DUNNO".into());
            }
        };
        let reply = match outcome {
            Outcome::AwlDomain => {
                (row.action, row.reason) = ("awl", "domain awl");
                "DUNNO".into()
            }
            Outcome::AwlSender => {
                (row.action, row.reason) = ("awl", "sender awl");
                "DUNNO".into()
            }
            Outcome::Triplet(TripletOutcome::Greylist { new, remaining }) => {
                self.counters.greylisted.fetch_add(1, Ordering::Relaxed);
                row.action = "greylist";
                row.reason = if new { "new" } else { "early-retry" };
                row.delay_secs = i32::try_from(remaining).ok();
                self.greylist_reply(req, recipient, remaining)
            }
            Outcome::Triplet(TripletOutcome::FirstPass { delayed }) => {
                (row.action, row.reason) = ("pass", "triplet passed");
                row.delay_secs = i32::try_from(delayed).ok();
                let first_of_message =
                    req.instance.is_none() || conn.last_prepend_instance.as_deref() != req.instance.as_deref();
                if self.cfg.prepend_header && first_of_message {
                    conn.last_prepend_instance = req.instance.clone();
                    self.header(delayed, now)
                } else {
                    "DUNNO".into()
                }
            }
            Outcome::Triplet(TripletOutcome::KnownPass) => {
                (row.action, row.reason) = ("pass", "triplet found");
                "DUNNO".into()
            }
        };
        self.finish(row, reply)
    }

    /// `DEFER_IF_PERMIT 4.2.0 text`, as Postgrey words it.
    fn greylist_reply(&self, req: &Request, recipient: &str, remaining: i64) -> String {
        let text = self
            .cfg
            .greylist_text
            .replace("%s", &remaining.to_string())
            .replace("%r", &domain_of(recipient));
        // Postgrey adds the 4.2.0 status when Postfix >= 2.3 (it sends etrn_domain): some
        // senders treat 4.7.1 as final.
        let code = if req.etrn_domain.is_some() && !text.starts_with(|c: char| c.is_ascii_digit()) {
            "4.2.0 "
        } else {
            ""
        };
        format!("{} {code}{text}", self.cfg.greylist_action)
    }

    /// `PREPEND X-Greylist: delayed N seconds by GreyLSE at HOST; DATE` (RFC 5322 date, UTC).
    fn header(&self, delayed: i64, now: i64) -> String {
        let date = jiff::Timestamp::from_second(now)
            .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string())
            .unwrap_or_default();
        format!(
            "PREPEND X-Greylist: delayed {delayed} seconds by GreyLSE at {}; {date}",
            self.hostname
        )
    }

    /// Logs the decision (Postgrey's log format) and queues it for the decisions table.
    fn finish(&self, row: DecisionRow, reply: String) -> String {
        tracing::info!(
            target: "greylse",
            "{}action={}, reason={}{}, client_name={}, client_address={}, sender={}, recipient={}",
            row.queue_id.as_deref().map(|q| format!("{q}: ")).unwrap_or_default(),
            row.action,
            row.reason,
            row.delay_secs.map(|d| format!(", delay={d}")).unwrap_or_default(),
            row.client_name.as_deref().unwrap_or(""),
            row.client_address.map(|a| a.to_string()).unwrap_or_default(),
            row.sender.as_deref().unwrap_or(""),
            row.recipient.as_deref().unwrap_or(""),
        );
        if let Some(log) = &self.log {
            if log.try_send(row).is_err() {
                self.counters.decisions_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        reply
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The database part under the time limit; `None` means fail open. After a failure the
    /// database is left alone for `db_retry_ms`, so that an outage costs no time per request.
    async fn evaluate_bounded(&self, key: &Key, now: i64) -> Option<Outcome> {
        if self.elapsed_ms() < self.db_down_until.load(Ordering::Relaxed) {
            return None;
        }
        let limit = Duration::from_millis(self.cfg.db_timeout_ms);
        let error = match tokio::time::timeout(limit, self.batcher.evaluate(key.clone(), now)).await {
            Ok(Ok(outcome)) => {
                if self.db_down.swap(false, Ordering::Relaxed) {
                    tracing::info!("greylist: database reachable again, greylisting resumed");
                }
                return Some(outcome);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} ms", self.cfg.db_timeout_ms),
        };
        self.db_down_until
            .store(self.elapsed_ms() + self.cfg.db_retry_ms, Ordering::Relaxed);
        if !self.db_down.swap(true, Ordering::Relaxed) {
            tracing::warn!("greylist: database unavailable ({error}): answering DUNNO (fail open)");
        } else {
            tracing::debug!("greylist: database still unavailable ({error})");
        }
        None
    }
}

/// The writes one decision asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub triplet: Option<TripletRow>,
    pub sender_awl: Option<SenderAwlRow>,
    pub touch_domain_awl: bool,
    pub touch_sender_awl: bool,
    /// The sender just became trusted: the domain may now qualify.
    pub try_promote_domain: bool,
}

/// The decision on the database state, as a pure function: the auto-whitelists, then the
/// triplet. `snap` is updated as the writes will leave it, so that a second request for the
/// same key in one batch sees the first.
pub fn plan(snap: &mut Snapshot, key: &Key, now: i64, cfg: &GreylistConfig) -> (Outcome, Plan) {
    let mut plan = Plan::default();
    let awl = cfg.awl_sender_passes > 0 && !key.sender_domain.is_empty();
    let fresh = |last_seen: i64| now - last_seen <= cfg.awl_max_age_secs;
    if awl && cfg.awl_domain_senders > 0 {
        if let Some(last_seen) = snap.domain_awl.filter(|&l| fresh(l)) {
            if now - last_seen >= TOUCH_INTERVAL {
                plan.touch_domain_awl = true;
                snap.domain_awl = Some(now);
            }
            return (Outcome::AwlDomain, plan);
        }
    }
    if awl {
        if let Some(s) = snap
            .sender_awl
            .as_mut()
            .filter(|s| s.passes >= cfg.awl_sender_passes && fresh(s.last_seen))
        {
            if now - s.last_seen >= TOUCH_INTERVAL {
                plan.touch_sender_awl = true;
                s.last_seen = now;
            }
            return (Outcome::AwlSender, plan);
        }
    }
    let (row, outcome) = step_triplet(snap.triplet, now, cfg);
    plan.triplet = Some(row);
    snap.triplet = Some(row);
    let passed = !matches!(outcome, TripletOutcome::Greylist { .. });
    if awl && passed {
        if let Some(s) = count_sender_pass(snap.sender_awl, now, cfg) {
            plan.try_promote_domain = s.passes == cfg.awl_sender_passes && cfg.awl_domain_senders > 0;
            plan.sender_awl = Some(s);
            snap.sender_awl = Some(s);
        }
    }
    (Outcome::Triplet(outcome), plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> GreylistConfig {
        GreylistConfig {
            delay_secs: 300,
            retry_window_secs: 3_600,
            max_age_secs: 86_400,
            ..Default::default()
        }
    }

    #[test]
    fn triplet_follows_postgrey() {
        let cfg = cfg();
        let (r, o) = step_triplet(None, 1_000, &cfg);
        assert_eq!(
            o,
            TripletOutcome::Greylist {
                new: true,
                remaining: 300
            }
        );
        let (r, o) = step_triplet(Some(r), 1_100, &cfg);
        assert_eq!(
            o,
            TripletOutcome::Greylist {
                new: false,
                remaining: 200
            }
        );
        assert_eq!((r.first_seen, r.attempts), (1_000, 2));
        let (r, o) = step_triplet(Some(r), 1_300, &cfg);
        assert_eq!(o, TripletOutcome::FirstPass { delayed: 300 });
        assert_eq!(r.passed_at, Some(1_300));
        let (r, o) = step_triplet(Some(r), 50_000, &cfg);
        assert_eq!(o, TripletOutcome::KnownPass);
        // Unseen for longer than max age: new again.
        let (_, o) = step_triplet(Some(r), 50_000 + 86_401, &cfg);
        assert_eq!(
            o,
            TripletOutcome::Greylist {
                new: true,
                remaining: 300
            }
        );
        // A first retry after the retry window starts over.
        let (r, _) = step_triplet(None, 0, &cfg);
        let (r, o) = step_triplet(Some(r), 3_601, &cfg);
        assert_eq!(
            o,
            TripletOutcome::Greylist {
                new: true,
                remaining: 300
            }
        );
        assert_eq!(r.first_seen, 3_601);
        // delay 0 passes at once, with a header saying 0 seconds (as Postgrey).
        let zero = GreylistConfig { delay_secs: 0, ..cfg };
        assert_eq!(step_triplet(None, 5, &zero).1, TripletOutcome::FirstPass { delayed: 0 });
    }

    #[test]
    fn sender_passes_count_once_an_hour() {
        let cfg = cfg();
        let a = count_sender_pass(None, 10_000, &cfg).unwrap();
        assert_eq!(a.passes, 1);
        assert_eq!(count_sender_pass(Some(a), 10_000 + 3_599, &cfg), None);
        let b = count_sender_pass(Some(a), 10_000 + 3_600, &cfg).unwrap();
        assert_eq!((b.passes, b.first_seen), (2, 10_000));
        let expired = count_sender_pass(Some(b), 10_000 + 3_600 + cfg.awl_max_age_secs + 1, &cfg);
        assert_eq!(expired.unwrap().passes, 1);
    }
}
