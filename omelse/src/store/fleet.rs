//! The fleet as the database knows it: each server's role and address, set by an administrator
//! (web UI, `elsed migrate` from the configuration's `[[servers]]`). The correlator needs them to
//! tell inbound from outbound and to recognise a hop between two ELSE servers; rsyslogd's module
//! reads them at connect and again every minute, so a role set in the UI applies without a
//! restart.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use tokio_postgres::Client;

use super::Result;

/// What a server does in the fleet; it settles flows the log alone cannot (see `correlate/flow.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ServerRole {
    #[default]
    Unknown,
    /// MX: receives mail from the Internet.
    Incoming,
    /// Submission / smarthost: sends the organisation's mail out.
    Outgoing,
    Both,
    /// Passes mail between internal servers.
    Relay,
    /// A content-filtering hop.
    Filter,
}

impl ServerRole {
    pub fn name(self) -> &'static str {
        match self {
            ServerRole::Unknown => "unknown",
            ServerRole::Incoming => "incoming",
            ServerRole::Outgoing => "outgoing",
            ServerRole::Both => "both",
            ServerRole::Relay => "relay",
            ServerRole::Filter => "filter",
        }
    }
}

impl fmt::Display for ServerRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ServerRole {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "unknown" | "" => ServerRole::Unknown,
            "incoming" => ServerRole::Incoming,
            "outgoing" => ServerRole::Outgoing,
            "both" => ServerRole::Both,
            "relay" => ServerRole::Relay,
            "filter" => ServerRole::Filter,
            other => {
                return Err(format!(
                    "'{other}' is not a server role (unknown, incoming, outgoing, both, relay, filter)"
                ))
            }
        })
    }
}

/// Roles (only those not `unknown`) and addresses of the servers table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    pub roles: HashMap<String, ServerRole>,
    /// Address (as logged) → server name.
    pub addresses: HashMap<String, String>,
}

/// Reads the fleet; a role the binary does not know (a newer schema's) counts as unknown.
pub async fn load_fleet(client: &Client) -> Result<Fleet> {
    let rows = client
        .query("SELECT name, role, host(address) FROM servers ORDER BY id", &[])
        .await?;
    let mut fleet = Fleet::default();
    for row in rows {
        let name: String = row.get(0);
        let role: ServerRole = row.get::<_, String>(1).parse().unwrap_or_default();
        if role != ServerRole::Unknown {
            fleet.roles.insert(name.clone(), role);
        }
        if let Some(address) = row.get::<_, Option<String>>(2) {
            fleet.addresses.insert(address, name);
        }
    }
    Ok(fleet)
}
