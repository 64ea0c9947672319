//! SNMP: watch every Postfix server's queues and health, and act on them.
//!
//! On each Postfix host snmpd runs `else-pfagent` (queue statistics, control objects; see
//! [`mib`], the `else-pfagent` crate's, and packaging/postfix-host/). Here: net-snmp through bindings generated at build time
//! (`ffi`), used by one thread that owns every session (`engine`, `session`); the poller stores a
//! sample per server per interval with a state (ok / warning / down) from the thresholds of
//! `[snmp]` (`poller`); actions are SETs by the server's control user, audited in `audit_log`.
//!
//! The web layer calls: [`SnmpHandle::start`], [`latest_states`], [`samples`], [`act`],
//! [`prometheus_text`], [`agents`] and [`set_agent`]; `elsed snmp …` is the command line (`cli`).

mod action;
pub mod cli;
mod engine;
mod ffi;
pub mod poller;
mod prometheus;
pub mod secret;
mod session;
mod store;

#[cfg(test)]
mod tests_agent;

use std::path::PathBuf;
use std::time::Duration;

use omelse::parse::Timestamp;
use serde::{Deserialize, Serialize};

/// Tells net-snmp to load no MIB module (`MIBS` empty; ELSE uses numeric OIDs only). Without
/// it, net-snmp reads its built-in module list when it starts, finds none of them (no MIB
/// directory) and logs `MIB search path: …`. Called by `elsed`'s `main` before any thread
/// exists, since the environment is process-wide.
pub fn load_no_mib_modules() {
    std::env::set_var("MIBS", "");
}

pub use action::act;
/// Where else-pfagent's objects live: the contract between elsed and the agent, owned by the
/// agent's crate.
pub use else_pfagent::mib;
pub use mib::ActionKind;
pub use prometheus::prometheus_text;
pub use secret::{AgentSecrets, SecretKey};
// The web layer's API (the CLI uses part of it).
#[allow(unused_imports)]
pub use store::{agents, check_settings, latest_states, samples, set_agent};

/// The `[snmp]` table of elsed.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnmpConfig {
    /// Seconds between polls.
    pub interval_secs: u64,
    /// Milliseconds to wait for an answer, per attempt.
    pub timeout_ms: u64,
    /// Attempts after the first.
    pub retries: u32,
    /// Seconds an action may take on the agent (postsuper on a big queue is slow).
    pub action_timeout_secs: u64,
    /// The key that encrypts the stored SNMP credentials (see `secret.rs`).
    pub key_file: PathBuf,
    /// Deferred messages from which a server is in warning / down.
    pub warning_deferred: u64,
    pub down_deferred: u64,
    /// Age in seconds of the oldest deferred message from which a server is in warning / down.
    pub warning_oldest_secs: u64,
    pub down_oldest_secs: u64,
    /// Percent used of the spool's file system from which a server is in warning / down.
    pub warning_disk_percent: u64,
    pub down_disk_percent: u64,
}

impl Default for SnmpConfig {
    fn default() -> Self {
        SnmpConfig {
            interval_secs: 60,
            timeout_ms: 2000,
            retries: 1,
            action_timeout_secs: 30,
            key_file: PathBuf::from("/etc/else/snmp.key"),
            warning_deferred: 100,
            down_deferred: 2000,
            warning_oldest_secs: 4 * 3600,
            down_oldest_secs: 3 * 86400,
            warning_disk_percent: 85,
            down_disk_percent: 95,
        }
    }
}

impl SnmpConfig {
    /// The checks types alone do not make: `(key, problem)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, problem: &str| Err((format!("snmp.{key}"), problem.to_owned()));
        if self.interval_secs == 0 {
            return bad("interval_secs", "must be at least 1");
        }
        if !(10..=60_000).contains(&self.timeout_ms) {
            return bad("timeout_ms", "must be between 10 and 60000");
        }
        if self.retries > 10 {
            return bad("retries", "must be at most 10");
        }
        if self.warning_deferred > self.down_deferred {
            return bad("warning_deferred", "is above down_deferred");
        }
        if self.warning_oldest_secs > self.down_oldest_secs {
            return bad("warning_oldest_secs", "is above down_oldest_secs");
        }
        if self.warning_disk_percent > self.down_disk_percent || self.down_disk_percent > 100 {
            return bad(
                "warning_disk_percent",
                "must be at most down_disk_percent, itself at most 100",
            );
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// What the web layer and the poller hold: the SNMP thread, the credentials key, the settings.
#[derive(Clone)]
pub struct SnmpHandle {
    engine: engine::Engine,
    key: SecretKey,
    config: SnmpConfig,
}

impl SnmpHandle {
    /// Starts the SNMP thread and reads the key file.
    pub fn start(config: &SnmpConfig) -> anyhow::Result<SnmpHandle> {
        let key = SecretKey::load(&config.key_file)?;
        Ok(SnmpHandle {
            engine: engine::Engine::start()?,
            key,
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &SnmpConfig {
        &self.config
    }
}

/// A server's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Warning,
    Down,
    /// Never polled yet.
    Unknown,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Warning => "warning",
            State::Down => "down",
            State::Unknown => "unknown",
        }
    }

    fn parse(name: &str) -> State {
        match name {
            "ok" => State::Ok,
            "warning" => State::Warning,
            "down" => State::Down,
            _ => State::Unknown,
        }
    }
}

/// One queue of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueSample {
    pub count: i64,
    pub bytes: i64,
    /// Age in seconds of the oldest message, 0 when empty.
    pub oldest_secs: i64,
}

/// One poll of one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub server_id: i32,
    pub ts: Timestamp,
    pub reachable: bool,
    /// Why the agent could not be read, or what it could not read.
    pub error: Option<String>,
    /// incoming, active, deferred, hold (None when unreachable).
    pub incoming: Option<QueueSample>,
    pub active: Option<QueueSample>,
    pub deferred: Option<QueueSample>,
    pub hold: Option<QueueSample>,
    pub master_alive: Option<bool>,
    /// One-minute load average.
    pub load1: Option<f32>,
    pub spool_used_pct: Option<i16>,
    pub state: State,
    pub reasons: Vec<String>,
}

impl Sample {
    /// The queues in `mib::QUEUES` order.
    pub fn queues(&self) -> [(&'static str, Option<QueueSample>); 4] {
        [
            ("incoming", self.incoming),
            ("active", self.active),
            ("deferred", self.deferred),
            ("hold", self.hold),
        ]
    }
}

/// The latest known health of a server with an SNMP agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerState {
    pub server_id: i32,
    pub server: String,
    pub enabled: bool,
    pub state: State,
    pub sample: Option<Sample>,
}

/// An agent's settings, without its secrets (what the inventory shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub enabled: bool,
    /// Host name or IP address of snmpd (its `agentAddress`).
    pub host: String,
    pub port: u16,
    /// `2c` or `3`.
    pub version: String,
    /// SNMPv3 users: the poller's (read-only) and the control user.
    pub read_user: Option<String>,
    pub control_user: Option<String>,
    /// `SHA` or `SHA-256` (privacy is AES-128).
    pub auth_protocol: String,
}

/// A queue action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    #[serde(with = "action_name")]
    pub kind: ActionKind,
    /// For hold, release, requeue and delete: the message's queue id.
    pub queue_id: Option<String>,
}

impl Action {
    /// An action by name (`flush`, `delete-deferred`, `hold`, `release`, `requeue`, `delete`),
    /// the queue id checked as the agent checks it.
    pub fn new(name: &str, queue_id: Option<&str>) -> Result<Action, String> {
        let kind = ActionKind::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = ActionKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown action {name:?} (one of {})", names.join(", "))
        })?;
        match (kind.takes_queue_id(), queue_id) {
            (true, Some(id)) if mib::valid_queue_id(id) => Ok(Action {
                kind,
                queue_id: Some(id.to_owned()),
            }),
            (true, Some(id)) => Err(format!("{id:?} is not a Postfix queue id")),
            (true, None) => Err(format!("{name} needs a queue id")),
            (false, Some(_)) => Err(format!("{name} acts on a whole queue and takes no queue id")),
            (false, None) => Ok(Action { kind, queue_id: None }),
        }
    }
}

/// An [`ActionKind`] as its name (`flush`, `hold`…): the MIB's crate knows no serde.
mod action_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::ActionKind;

    pub fn serialize<S: Serializer>(kind: &ActionKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ActionKind, D::Error> {
        let name = String::deserialize(d)?;
        ActionKind::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown action {name:?}")))
    }
}

/// What came of an action, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionOutcome {
    /// The `audit_log` row.
    pub audit_id: i64,
    /// `done` (the agent ran it and it succeeded), `failed` (it ran and failed), `refused` (the
    /// agent or elsed refused it: nothing ran), `unreachable` (no answer: it may or may not have run).
    pub result: String,
    /// The SNMP error status of the SET (`noError`, `wrongValue`, `noAccess`, `authorizationError`…)
    /// or the transport error.
    pub snmp_status: String,
    /// The agent's own account: the command and what Postfix printed (`lastActionText`).
    pub agent_text: Option<String>,
}
