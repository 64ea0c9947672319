//! The fleet as the database knows it: each server's role and address, set by an administrator
//! (web UI, `elsed migrate` from the configuration's `[[servers]]`). The correlator needs them to
//! tell inbound from outbound and to recognise a hop between two ELSE servers; rsyslogd's module
//! reads them at connect and again every minute, so a role set in the UI applies without a
//! restart.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::Result;
use crate::correlate::{CorrelatorConfig, ServerRole};

/// Roles (only those not `unknown`) and addresses of the servers table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    pub roles: HashMap<String, ServerRole>,
    /// Address (as logged) → server name.
    pub addresses: HashMap<String, String>,
}

impl Fleet {
    /// Adds the fleet to a configuration: what the configuration itself names wins.
    pub fn apply_to(&self, config: &mut CorrelatorConfig) {
        for (name, role) in &self.roles {
            config.roles.entry(name.clone()).or_insert(*role);
        }
        for (address, name) in &self.addresses {
            config
                .server_addresses
                .entry(address.clone())
                .or_insert_with(|| name.clone());
        }
    }
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
