//! The poller (one GET per server per interval, all servers at once, each sample stored as soon
//! as its answer is in, with its state) and the queue actions (a SET by the control user).

use std::collections::BTreeSet;
use std::time::Duration;

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::Client;

use super::engine::Role;
use super::mib;
use super::session::{error_status_name, Response, SetValue, SnmpError};
use super::{store, Action, ActionOutcome, QueueSample, Sample, SnmpConfig, SnmpHandle, State};

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
    for sample in &samples {
        store_sample(db, sample).await?;
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
        store_sample(db, &sample).await?;
        samples.push(sample);
    }
    Ok(samples)
}

async fn store_sample(db: &mut Client, sample: &Sample) -> anyhow::Result<()> {
    let day = sample.ts.unix_seconds().div_euclid(86_400);
    omelse::store::ensure_days(db, &BTreeSet::from([day])).await?;
    store::insert_sample(db, sample).await
}

/// `elsed snmp poll`: polls every interval (or once), forever.
pub async fn run(db: &mut Client, handle: &SnmpHandle, once: bool) -> anyhow::Result<()> {
    let interval = Duration::from_secs(handle.config().interval_secs);
    loop {
        let started = tokio::time::Instant::now();
        match poll_once(db, handle).await {
            Ok(samples) => {
                for s in &samples {
                    tracing::info!(server_id = s.server_id, state = s.state.name(), reasons = ?s.reasons, "polled");
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
    if let Some(d) = s.deferred {
        let count = d.count as u64;
        let oldest = d.oldest_secs as u64;
        if count >= config.down_deferred {
            down.push(format!("{count} deferred messages (down at {})", config.down_deferred));
        } else if count >= config.warning_deferred {
            warning.push(format!(
                "{count} deferred messages (warning at {})",
                config.warning_deferred
            ));
        }
        if oldest >= config.down_oldest_secs {
            down.push(format!(
                "oldest deferred message {oldest} s old (down at {})",
                config.down_oldest_secs
            ));
        } else if oldest >= config.warning_oldest_secs {
            warning.push(format!(
                "oldest deferred message {oldest} s old (warning at {})",
                config.warning_oldest_secs
            ));
        }
    }
    if let Some(pct) = s.spool_used_pct {
        let pct = pct as u64;
        if pct >= config.down_disk_percent {
            down.push(format!("spool disk {pct}% used (down at {})", config.down_disk_percent));
        } else if pct >= config.warning_disk_percent {
            warning.push(format!(
                "spool disk {pct}% used (warning at {})",
                config.warning_disk_percent
            ));
        }
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

/// See [`super::act`].
pub(super) async fn act(
    db: &Client,
    handle: &SnmpHandle,
    actor: &str,
    server_id: i32,
    action: Action,
) -> anyhow::Result<ActionOutcome> {
    let (server, target) = store::control_target(db, handle, server_id).await?;
    let name = format!("snmp.{}", action.kind.name());
    let mut details = json!({"server_id": server_id, "queue_id": action.queue_id});
    let record = |result: &str, snmp_status: String, agent_text: Option<String>, mut details: serde_json::Value| {
        details["snmp_status"] = json!(snmp_status);
        details["agent_text"] = json!(agent_text);
        let result = result.to_owned();
        let (name, server) = (name.clone(), server.clone());
        async move {
            let audit_id = super::audit(db, actor, &name, Some(&server), &details, &result).await?;
            Ok(ActionOutcome {
                audit_id,
                result,
                snmp_status,
                agent_text,
            })
        }
    };
    // Checked here too (an Action can be deserialised from a web request without `Action::new`).
    if let Err(e) = Action::new(action.kind.name(), action.queue_id.as_deref()) {
        return record("refused", format!("not sent: {e}"), None, details).await;
    }
    let target = match target {
        Ok(target) => target,
        Err(e) => return record("refused", format!("not sent: {e:#}"), None, details).await,
    };
    let value = match (&action.queue_id, action.kind) {
        (Some(id), _) => SetValue::Text(id.clone()),
        (None, _) => SetValue::Integer(1),
    };
    let verdict = vec![mib::control_oid(mib::LAST_STATUS), mib::control_oid(mib::LAST_TEXT)];
    let (set, after) = handle
        .engine
        .set((server_id, Role::Control), target, action.kind.oid(), value, verdict)
        .await;
    let agent_text = after
        .and_then(Result::ok)
        .and_then(|r| r.get(&mib::control_oid(mib::LAST_TEXT)).and_then(|v| v.as_text()));
    match set {
        Ok(response) => {
            let status = error_status_name(response.error_status).to_owned();
            details["error_index"] = json!(response.error_index);
            let result = match response.error_status {
                0 => "done",
                // commitFailed: the agent ran the command and it failed.
                14 => "failed",
                _ => "refused",
            };
            // After a refusal, lastActionText is about an earlier action: not this one's answer.
            let text = if result == "refused" { None } else { agent_text };
            record(result, status, text, details).await
        }
        Err(SnmpError::Timeout(peer)) => record("unreachable", format!("no answer from {peer}"), None, details).await,
        Err(SnmpError::Failed(e)) if e.contains("Timeout") => record("unreachable", e, None, details).await,
        Err(SnmpError::Failed(e)) => record("refused", e, None, details).await,
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
