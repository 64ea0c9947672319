//! The SQL of the SNMP feature: agents (settings and sealed secrets), samples, states.

use omelse::parse::Timestamp;
use tokio_postgres::{Client, Row};

use super::engine::Role;
use super::secret::AgentSecrets;
use super::session::{AuthProtocol, Credentials, Target};
use super::{AgentSettings, QueueSample, Sample, ServerState, SnmpHandle, State};

/// Every server with an SNMP agent, with its settings (no secrets), by server name.
#[allow(dead_code)] // for the web layer's inventory
pub async fn agents(db: &Client) -> anyhow::Result<Vec<(i32, String, AgentSettings)>> {
    let rows = db
        .query(
            "SELECT s.id, s.name, a.enabled, a.host, a.port, a.version, a.read_user, a.control_user, a.auth_protocol
             FROM snmp_agents a JOIN servers s ON s.id = a.server_id ORDER BY s.name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let settings = AgentSettings {
                enabled: r.get(2),
                host: r.get(3),
                port: r.get::<_, i32>(4) as u16,
                version: r.get(5),
                read_user: r.get(6),
                control_user: r.get(7),
                auth_protocol: r.get(8),
            };
            (r.get(0), r.get(1), settings)
        })
        .collect())
}

/// Creates or replaces a server's agent. The secrets needed by the version must all be given
/// (SNMPv2c: both communities; SNMPv3: both users' passphrases, 8 characters at least).
pub async fn set_agent(
    db: &Client,
    handle: &SnmpHandle,
    server_id: i32,
    settings: &AgentSettings,
    secrets: &AgentSecrets,
) -> anyhow::Result<()> {
    check_settings(settings, secrets).map_err(|e| anyhow::anyhow!("SNMP agent settings: {e}"))?;
    let sealed = handle.key.seal(secrets);
    db.execute(
        "INSERT INTO snmp_agents (server_id, enabled, host, port, version, read_user, control_user, auth_protocol, secrets)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (server_id) DO UPDATE SET enabled = EXCLUDED.enabled, host = EXCLUDED.host,
             port = EXCLUDED.port, version = EXCLUDED.version, read_user = EXCLUDED.read_user,
             control_user = EXCLUDED.control_user, auth_protocol = EXCLUDED.auth_protocol,
             secrets = EXCLUDED.secrets, updated_at = now()",
        &[
            &server_id,
            &settings.enabled,
            &settings.host,
            &i32::from(settings.port),
            &settings.version,
            &settings.read_user,
            &settings.control_user,
            &settings.auth_protocol,
            &sealed,
        ],
    )
    .await?;
    Ok(())
}

pub fn check_settings(settings: &AgentSettings, secrets: &AgentSecrets) -> Result<(), String> {
    if settings.host.trim().is_empty() || settings.host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(format!("host {:?} is not a host name or address", settings.host));
    }
    if settings.port == 0 {
        return Err("port 0".into());
    }
    if AuthProtocol::parse(&settings.auth_protocol).is_none() {
        return Err(format!("auth protocol {:?}: SHA or SHA-256", settings.auth_protocol));
    }
    let given = |value: &Option<String>, what: &str, min: usize| match value {
        Some(v) if v.len() >= min => Ok(()),
        _ => Err(format!(
            "{what} is missing{}",
            if min > 1 { " or shorter than 8 characters" } else { "" }
        )),
    };
    match settings.version.as_str() {
        // A community travels in clear and is often guessed: good enough to read queue sizes,
        // not to flush or delete mail.
        "2c" if secrets.control_community.is_some() => {
            Err("SNMPv2c is for polling only: queue actions need SNMPv3 (a control user)".into())
        }
        "2c" => given(&secrets.read_community, "the read community", 1),
        "3" => {
            given(&settings.read_user, "the read user", 1)?;
            given(&settings.control_user, "the control user", 1)?;
            given(&secrets.read_auth_pass, "the read user's auth passphrase", 8)?;
            given(&secrets.read_priv_pass, "the read user's privacy passphrase", 8)?;
            given(&secrets.control_auth_pass, "the control user's auth passphrase", 8)?;
            given(&secrets.control_priv_pass, "the control user's privacy passphrase", 8)
        }
        other => Err(format!("version {other:?}: 2c or 3")),
    }
}

/// How to reach a server's agent as `role`, from its row; errors say what is wrong.
fn target(handle: &SnmpHandle, row: &Row, role: Role) -> anyhow::Result<Target> {
    let host: String = row.get("host");
    let port: i32 = row.get("port");
    let version: String = row.get("version");
    let secrets = handle.key.open(row.get::<_, &[u8]>("secrets"))?;
    let missing = || anyhow::anyhow!("SNMP credentials incomplete");
    let credentials = if version == "2c" {
        if role == Role::Control {
            anyhow::bail!("queue actions need SNMPv3: this server's agent is set up with SNMPv2c (polling only)");
        }
        Credentials::Community(secrets.read_community.ok_or_else(missing)?)
    } else {
        let (user, auth_pass, priv_pass) = match role {
            Role::Poll => (row.get("read_user"), secrets.read_auth_pass, secrets.read_priv_pass),
            Role::Control => (
                row.get("control_user"),
                secrets.control_auth_pass,
                secrets.control_priv_pass,
            ),
        };
        let user: Option<String> = user;
        Credentials::Usm {
            user: user.ok_or_else(missing)?,
            auth: AuthProtocol::parse(row.get("auth_protocol")).ok_or_else(missing)?,
            auth_pass: auth_pass.ok_or_else(missing)?,
            priv_pass: priv_pass.ok_or_else(missing)?,
        }
    };
    let peer = if host.contains(':') {
        format!("udp6:[{host}]:{port}")
    } else {
        format!("udp:{host}:{port}")
    };
    let config = &handle.config;
    let (timeout, retries) = match role {
        Role::Poll => (config.timeout(), config.retries),
        // An action waits for the command on the agent; it is not retried (it could run twice).
        Role::Control => (std::time::Duration::from_secs(config.action_timeout_secs.max(1)), 0),
    };
    Ok(Target {
        peer,
        credentials,
        timeout,
        retries,
    })
}

/// The enabled agents to poll: `(server_id, target or why there is none)`.
pub(super) async fn poll_targets(
    db: &Client,
    handle: &SnmpHandle,
) -> anyhow::Result<Vec<(i32, anyhow::Result<Target>)>> {
    let rows = db
        .query("SELECT * FROM snmp_agents WHERE enabled ORDER BY server_id", &[])
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get("server_id"), target(handle, r, Role::Poll)))
        .collect())
}

/// A server's name and its agent as the control user.
pub(super) async fn control_target(
    db: &Client,
    handle: &SnmpHandle,
    server_id: i32,
) -> anyhow::Result<(String, anyhow::Result<Target>)> {
    let row = db
        .query_opt(
            "SELECT s.name, a.* FROM servers s LEFT JOIN snmp_agents a ON a.server_id = s.id WHERE s.id = $1",
            &[&server_id],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("no server with id {server_id}"))?;
    let name: String = row.get("name");
    if row.get::<_, Option<i32>>("server_id").is_none() {
        return Ok((
            name.clone(),
            Err(anyhow::anyhow!("server {name} has no SNMP agent configured")),
        ));
    }
    Ok((name, target(handle, &row, Role::Control)))
}

/// The id of a server by name.
pub async fn server_id(db: &Client, name: &str) -> anyhow::Result<i32> {
    db.query_opt("SELECT id FROM servers WHERE name = $1", &[&name])
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| anyhow::anyhow!("no server named {name:?} (elsed migrate records those of the configuration)"))
}

const SAMPLE_COLUMNS: &str = "server_id, ts, reachable, error, \
     incoming_count, incoming_bytes, incoming_oldest, active_count, active_bytes, active_oldest, \
     deferred_count, deferred_bytes, deferred_oldest, hold_count, hold_bytes, hold_oldest, \
     master_alive, load1, spool_used_pct, state, reasons";

/// Stores a sample (its day's partition must exist: see the poller).
pub(super) async fn insert_sample(db: &Client, s: &Sample) -> anyhow::Result<()> {
    let q = |q: Option<QueueSample>| q.map_or([None; 3], |q| [Some(q.count), Some(q.bytes), Some(q.oldest_secs)]);
    let [ic, ib, io] = q(s.incoming);
    let [ac, ab, ao] = q(s.active);
    let [dc, db_, do_] = q(s.deferred);
    let [hc, hb, ho] = q(s.hold);
    db.execute(
        &format!(
            "INSERT INTO snmp_samples ({SAMPLE_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ),
        &[
            &s.server_id,
            &s.ts,
            &s.reachable,
            &s.error,
            &ic,
            &ib,
            &io,
            &ac,
            &ab,
            &ao,
            &dc,
            &db_,
            &do_,
            &hc,
            &hb,
            &ho,
            &s.master_alive,
            &s.load1,
            &s.spool_used_pct,
            &s.state.name(),
            &s.reasons,
        ],
    )
    .await?;
    Ok(())
}

/// A sample from a row whose first columns are [`SAMPLE_COLUMNS`] (`server_id` NULL: none).
fn sample_from_row(r: &Row) -> Option<Sample> {
    let server_id: Option<i32> = r.get(0);
    let queue = |i: usize| {
        let count: Option<i64> = r.get(i);
        count.map(|count| QueueSample {
            count,
            bytes: r.get::<_, Option<i64>>(i + 1).unwrap_or(0),
            oldest_secs: r.get::<_, Option<i64>>(i + 2).unwrap_or(0),
        })
    };
    Some(Sample {
        server_id: server_id?,
        ts: r.get(1),
        reachable: r.get(2),
        error: r.get(3),
        incoming: queue(4),
        active: queue(7),
        deferred: queue(10),
        hold: queue(13),
        master_alive: r.get(16),
        load1: r.get(17),
        spool_used_pct: r.get(18),
        state: State::parse(r.get(19)),
        reasons: r.get(20),
    })
}

/// Every server with an SNMP agent and its latest sample (the state `unknown` before the first).
pub async fn latest_states(db: &Client) -> anyhow::Result<Vec<ServerState>> {
    let columns: Vec<String> = SAMPLE_COLUMNS.split(", ").map(|c| format!("l.{}", c.trim())).collect();
    let rows = db
        .query(
            &format!(
                "SELECT {}, s.id, s.name, a.enabled
                 FROM snmp_agents a JOIN servers s ON s.id = a.server_id
                 LEFT JOIN LATERAL (SELECT * FROM snmp_samples x WHERE x.server_id = s.id ORDER BY ts DESC LIMIT 1) l ON true
                 ORDER BY s.name",
                columns.join(", ")
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let sample = sample_from_row(r);
            ServerState {
                server_id: r.get(21),
                server: r.get(22),
                enabled: r.get(23),
                state: sample.as_ref().map_or(State::Unknown, |s| s.state),
                sample,
            }
        })
        .collect())
}

/// A server's samples in `[since, until)`, oldest first (for graphs).
#[allow(dead_code)] // for the web layer's graphs
pub async fn samples(db: &Client, server_id: i32, since: Timestamp, until: Timestamp) -> anyhow::Result<Vec<Sample>> {
    let rows = db
        .query(
            &format!(
                "SELECT {SAMPLE_COLUMNS} FROM snmp_samples WHERE server_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts"
            ),
            &[&server_id, &since, &until],
        )
        .await?;
    Ok(rows.iter().filter_map(sample_from_row).collect())
}
