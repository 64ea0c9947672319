//! `elsed snmp …`: poll, act, configure agents, make the credentials key, show states and metrics.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{poller, store, Action, AgentSecrets, AgentSettings, SecretKey, SnmpHandle};
use crate::{db, Settings};

#[derive(Debug, Args)]
pub struct SnmpArgs {
    #[command(subcommand)]
    command: SnmpCommand,
}

#[derive(Debug, Subcommand)]
enum SnmpCommand {
    /// Poll every enabled agent every [snmp] interval_secs (or once) and store the samples
    Poll {
        /// One poll, then exit
        #[arg(long)]
        once: bool,
    },
    /// Act on a server's queue through its SNMP control user (audited; actor = this Unix user)
    Act {
        /// Server name
        #[arg(long)]
        server: String,
        /// flush, delete-deferred, hold, release, requeue or delete
        #[arg(long)]
        action: String,
        /// The message's queue id (hold, release, requeue, delete)
        #[arg(long)]
        queue_id: Option<String>,
        /// Print the outcome as JSON
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a server's SNMP agent settings; secrets come from the environment
    /// (ELSE_SNMP_READ_COMMUNITY, ELSE_SNMP_CONTROL_COMMUNITY for 2c; ELSE_SNMP_READ_AUTH_PASS,
    /// ELSE_SNMP_READ_PRIV_PASS, ELSE_SNMP_CONTROL_AUTH_PASS, ELSE_SNMP_CONTROL_PRIV_PASS for 3)
    SetAgent(SetAgentArgs),
    /// Write a new key for the stored SNMP credentials (else:else when run as root, mode 0600; never overwrites)
    Keygen { path: PathBuf },
    /// The latest state of every server with an agent
    States {
        #[arg(long)]
        json: bool,
    },
    /// The latest values in Prometheus text format
    Metrics,
}

#[derive(Debug, Args)]
struct SetAgentArgs {
    #[arg(long)]
    server: String,
    /// snmpd's address (its agentAddress)
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = 161)]
    port: u16,
    /// 2c or 3
    #[arg(long, default_value = "3")]
    version: String,
    #[arg(long)]
    read_user: Option<String>,
    #[arg(long)]
    control_user: Option<String>,
    /// SHA or SHA-256 (privacy is AES)
    #[arg(long, default_value = "SHA")]
    auth_protocol: String,
    /// Keep the settings but do not poll
    #[arg(long)]
    disabled: bool,
}

pub async fn run(args: &SnmpArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let config = &settings.config.snmp;
    if let SnmpCommand::Keygen { path } = &args.command {
        let owner = SecretKey::generate(path)?;
        println!(
            "wrote {} ({owner}, mode 0600); name it in [snmp] key_file",
            path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // A wrong action is said before anything is opened.
    let action = match &args.command {
        SnmpCommand::Act { action, queue_id, .. } => {
            Some(Action::new(action, queue_id.as_deref()).map_err(|e| anyhow::anyhow!(e))?)
        }
        _ => None,
    };
    let mut client = db::connect(&settings.database()?).await?;
    db::migrate(&mut client).await?;
    db::sync_servers(&client, &settings.config.servers).await?;
    match &args.command {
        SnmpCommand::Keygen { .. } => unreachable!("handled above"),
        SnmpCommand::States { json } => {
            let states = store::latest_states(&client).await?;
            if *json {
                println!("{}", serde_json::to_string(&states)?);
            } else {
                for s in &states {
                    println!(
                        "{:<30} {:<8} {}",
                        s.server,
                        s.state.name(),
                        s.sample.as_ref().map_or(String::new(), |x| x.reasons.join("; "))
                    );
                }
            }
        }
        SnmpCommand::Metrics => print!("{}", super::prometheus_text(&client).await?),
        SnmpCommand::Poll { once } => {
            let handle = SnmpHandle::start(config)?;
            // As a service (else-snmp-poll), SIGTERM stops it cleanly, as the other units.
            let polling = async {
                poller::run(client, settings, &handle, *once).await?;
                Ok(ExitCode::SUCCESS)
            };
            return crate::shutdown::or_signal("snmp poll", polling).await;
        }
        SnmpCommand::SetAgent(a) => {
            let handle = SnmpHandle::start(config)?;
            let server_id = store::server_id(&client, &a.server).await?;
            let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
            let secrets = AgentSecrets {
                read_community: env("ELSE_SNMP_READ_COMMUNITY"),
                control_community: env("ELSE_SNMP_CONTROL_COMMUNITY"),
                read_auth_pass: env("ELSE_SNMP_READ_AUTH_PASS"),
                read_priv_pass: env("ELSE_SNMP_READ_PRIV_PASS"),
                control_auth_pass: env("ELSE_SNMP_CONTROL_AUTH_PASS"),
                control_priv_pass: env("ELSE_SNMP_CONTROL_PRIV_PASS"),
            };
            let agent = AgentSettings {
                enabled: !a.disabled,
                host: a.host.clone(),
                port: a.port,
                version: a.version.clone(),
                read_user: a.read_user.clone(),
                control_user: a.control_user.clone(),
                auth_protocol: a.auth_protocol.clone(),
            };
            store::set_agent(&client, &handle, server_id, &agent, &secrets).await?;
            println!("SNMP agent of {} set", a.server);
        }
        SnmpCommand::Act { server, json, .. } => {
            let action = action.expect("parsed above");
            let handle = SnmpHandle::start(config)?;
            let server_id = store::server_id(&client, server).await?;
            let outcome = super::act(&client, &handle, &unix_actor(), server_id, action).await?;
            if *json {
                println!("{}", serde_json::to_string(&outcome)?);
            } else {
                println!(
                    "{}: {} ({}){}",
                    server,
                    outcome.result,
                    outcome.snmp_status,
                    outcome
                        .agent_text
                        .as_deref()
                        .map_or(String::new(), |t| format!(": {t}"))
                );
            }
            if outcome.result != "done" {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `unix:NAME` of the real user running this command (from /proc and /etc/passwd: no libc here).
fn unix_actor() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        })
        .unwrap_or_else(|| "?".into());
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|p| {
        p.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            (fields.get(2) == Some(&uid.as_str())).then(|| fields[0].to_owned())
        })
    });
    format!("unix:{}", name.unwrap_or(format!("uid {uid}")))
}
