//! The poller: one GET per server per interval, all servers at once, each sample stored as soon
//! as its answer is in, with its state by the thresholds.

use std::collections::BTreeSet;
use std::time::Duration;

use omelse::parse::Timestamp;
use tokio_postgres::Client;

use super::mib;
use super::session::{error_status_name, Response};
use super::{store, QueueSample, Sample, SnmpConfig, SnmpHandle, State};

/// UCD-SNMP-MIB laLoadInt.1: the one-minute load average × 100 (snmpd's `load` directive).
const LA_LOAD_INT_1: &[u32] = &[1, 3, 6, 1, 4, 1, 2021, 10, 1, 5, 1];

/// What a poll reads: the queue table, the master, the statistics' error, the spool, the load.
fn poll_oids() -> Vec<Vec<u32>> {
    let mut oids = Vec::new();
    for q in 0..mib::QUEUES.len() {
        for column in [mib::COL_COUNT, mib::COL_BYTES, mib::COL_OLDEST] {
            oids.push(mib::queue_oid(q, column));
        }
    }
    oids.push(mib::scalar_oid(mib::MASTER_ALIVE));
    oids.push(mib::scalar_oid(mib::STATS_ERROR));
    oids.push(mib::scalar_oid(mib::SPOOL_DISK));
    oids.push(LA_LOAD_INT_1.to_vec());
    oids
}

/// Polls every enabled agent once and stores the samples; returns them in the order they came.
pub async fn poll_once(db: &mut Client, handle: &SnmpHandle) -> anyhow::Result<Vec<Sample>> {
    let config = handle.config();
    let mut samples = Vec::new();
    let mut targets = Vec::new();
    for (server_id, target) in store::poll_targets(db, handle).await? {
        match target {
            Ok(target) => targets.push((server_id, target)),
            // Credentials that cannot be used are the server's problem, not the poll's.
            Err(e) => samples.push(unreachable(server_id, format!("{e:#}"))),
        }
    }
    // The day's partition is made once a cycle, not once a sample.
    let mut ensured = None;
    for sample in &samples {
        store_sample(db, sample, &mut ensured).await?;
    }
    // Every request ends within its timeouts; the margin covers the SNMPv3 discoveries.
    let per_request = config.timeout() * (config.retries + 1);
    let mut answers = handle
        .engine
        .poll(targets, poll_oids(), per_request + Duration::from_millis(500));
    while let Some((server_id, answer)) = answers.recv().await {
        let mut sample = match answer {
            Ok(response) => from_response(server_id, &response),
            Err(e) => unreachable(server_id, e.to_string()),
        };
        (sample.state, sample.reasons) = evaluate(&sample, config);
        store_sample(db, &sample, &mut ensured).await?;
        samples.push(sample);
    }
    Ok(samples)
}

/// Stores a sample, making its day's partition first unless `ensured` says it was (also how the
/// alerts tests store theirs).
pub(crate) async fn store_sample(db: &mut Client, sample: &Sample, ensured: &mut Option<i64>) -> anyhow::Result<()> {
    let day = sample.ts.unix_seconds().div_euclid(86_400);
    if *ensured != Some(day) {
        omelse::store::ensure_days(db, &BTreeSet::from([day])).await?;
        *ensured = Some(day);
    }
    store::insert_sample(db, sample).await
}

/// `elsed snmp poll`: polls every interval (or once), forever; a lost database connection is
/// opened again at the next cycle.
pub async fn run(db: Client, settings: &crate::Settings, handle: &SnmpHandle, once: bool) -> anyhow::Result<()> {
    let interval = Duration::from_secs(handle.config().interval_secs);
    let mut db = Some(db);
    loop {
        let started = tokio::time::Instant::now();
        if db.as_ref().is_none_or(Client::is_closed) {
            db = match crate::db::connect(&settings.database()?).await {
                Ok(client) => Some(client),
                Err(e) if once => return Err(e),
                Err(e) => {
                    tracing::warn!("SNMP poll skipped: {e:#}");
                    tokio::time::sleep_until(started + interval).await;
                    continue;
                }
            };
        }
        let client = db.as_mut().expect("connected above");
        match poll_once(client, handle).await {
            Ok(samples) => {
                for s in &samples {
                    if s.state == State::Ok {
                        tracing::debug!(server_id = s.server_id, "polled: ok");
                    } else {
                        tracing::info!(server_id = s.server_id, state = s.state.name(), reasons = ?s.reasons, error = ?s.error, "polled");
                    }
                }
            }
            Err(e) if once => return Err(e),
            Err(e) => tracing::warn!("SNMP poll failed: {e:#}"),
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep_until(started + interval).await;
    }
}

fn unreachable(server_id: i32, error: String) -> Sample {
    Sample {
        server_id,
        ts: Timestamp::now(),
        reachable: false,
        error: Some(error),
        incoming: None,
        active: None,
        deferred: None,
        hold: None,
        master_alive: None,
        load1: None,
        spool_used_pct: None,
        state: State::Down,
        reasons: vec!["agent unreachable".into()],
    }
}

/// A sample from the agent's answer (state not yet evaluated).
fn from_response(server_id: i32, response: &Response) -> Sample {
    let mut sample = unreachable(server_id, String::new());
    sample.reachable = true;
    sample.error = None;
    if response.error_status != 0 {
        sample.error = Some(format!(
            "the agent answered {}",
            error_status_name(response.error_status)
        ));
        return sample;
    }
    let number = |oid: Vec<u32>| response.get(&oid).and_then(|v| v.as_u64()).map(|n| n as i64);
    let queue = |q: usize| {
        Some(QueueSample {
            count: number(mib::queue_oid(q, mib::COL_COUNT))?,
            bytes: number(mib::queue_oid(q, mib::COL_BYTES))?,
            oldest_secs: number(mib::queue_oid(q, mib::COL_OLDEST))?,
        })
    };
    [sample.incoming, sample.active, sample.deferred, sample.hold] = [queue(0), queue(1), queue(2), queue(3)];
    if sample.incoming.is_none() {
        sample.error = Some("snmpd has no else-pfagent objects (is its pass_persist line there?)".into());
        return sample;
    }
    sample.master_alive = number(mib::scalar_oid(mib::MASTER_ALIVE)).map(|n| n == 1);
    sample.spool_used_pct = number(mib::scalar_oid(mib::SPOOL_DISK)).map(|n| n.min(100) as i16);
    sample.load1 = number(LA_LOAD_INT_1.to_vec()).map(|n| n as f32 / 100.0);
    let stats_error = response
        .get(&mib::scalar_oid(mib::STATS_ERROR))
        .and_then(|v| v.as_text())
        .filter(|e| !e.is_empty());
    if let Some(e) = stats_error {
        sample.error = Some(e);
        [sample.incoming, sample.active, sample.deferred, sample.hold] = [None; 4];
    }
    sample
}

/// The state of a sample by the thresholds, and why.
pub fn evaluate(s: &Sample, config: &SnmpConfig) -> (State, Vec<String>) {
    let mut down = Vec::new();
    let mut warning = Vec::new();
    if !s.reachable {
        down.push("agent unreachable".to_owned());
    } else if let Some(e) = &s.error {
        down.push(format!("no queue statistics: {e}"));
    }
    if s.master_alive == Some(false) {
        down.push("Postfix master not running".to_owned());
    }
    let mut check = |value: u64, warn: u64, fail: u64, what: String| {
        if value >= fail {
            down.push(format!("{what} (down at {fail})"));
        } else if value >= warn {
            warning.push(format!("{what} (warning at {warn})"));
        }
    };
    if let Some(d) = s.deferred {
        let (count, oldest) = (d.count as u64, d.oldest_secs as u64);
        check(
            count,
            config.warning_deferred,
            config.down_deferred,
            format!("{count} deferred messages"),
        );
        check(
            oldest,
            config.warning_oldest_secs,
            config.down_oldest_secs,
            format!("oldest deferred message {oldest} s old"),
        );
    }
    if let Some(pct) = s.spool_used_pct {
        let pct = pct as u64;
        check(
            pct,
            config.warning_disk_percent,
            config.down_disk_percent,
            format!("spool disk {pct}% used"),
        );
    }
    if !down.is_empty() {
        down.extend(warning);
        (State::Down, down)
    } else if !warning.is_empty() {
        (State::Warning, warning)
    } else {
        (State::Ok, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        let mut s = unreachable(1, String::new());
        s.reachable = true;
        s.error = None;
        s.master_alive = Some(true);
        s.deferred = Some(QueueSample::default());
        s.spool_used_pct = Some(10);
        s
    }

    #[test]
    fn thresholds_make_the_state() {
        let config = SnmpConfig::default();
        assert_eq!(evaluate(&sample(), &config), (State::Ok, vec![]));
        let mut s = sample();
        s.deferred = Some(QueueSample {
            count: 150,
            bytes: 1,
            oldest_secs: 5 * 3600,
        });
        let (state, reasons) = evaluate(&s, &config);
        assert_eq!((state, reasons.len()), (State::Warning, 2), "{reasons:?}");
        s.spool_used_pct = Some(97);
        assert_eq!(evaluate(&s, &config).0, State::Down);
        let mut s = sample();
        s.master_alive = Some(false);
        assert_eq!(evaluate(&s, &config).1, ["Postfix master not running"]);
        assert_eq!(evaluate(&unreachable(1, "x".into()), &config).0, State::Down);
    }
}
