//! The `action(type="omelse" …)` parameters: names, defaults, validation. Safe code: the FFI layer
//! hands it the values rsyslog parsed and reports what it says back to rsyslog.

use std::fmt;

use crate::correlate::IpNet;

/// How rsyslog parses a parameter's value before we see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any string.
    String,
    /// One word (no white space).
    Word,
    /// A positive integer.
    PositiveInt,
    /// `on` / `off`.
    Binary,
}

/// One parameter omelse accepts, as declared to rsyslog.
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamType,
    pub help: &'static str,
}

/// Everything `action(type="omelse")` accepts. Names are rsyslog style: lower case, dotted.
pub const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "conninfo",
        kind: ParamType::String,
        help: "libpq connection string or postgresql:// URL",
    },
    ParamSpec {
        name: "server",
        kind: ParamType::Word,
        help: "database host (when conninfo is not given)",
    },
    ParamSpec {
        name: "port",
        kind: ParamType::PositiveInt,
        help: "database port",
    },
    ParamSpec {
        name: "db",
        kind: ParamType::Word,
        help: "database name",
    },
    ParamSpec {
        name: "user",
        kind: ParamType::Word,
        help: "database user",
    },
    ParamSpec {
        name: "pwd",
        kind: ParamType::String,
        help: "database password",
    },
    ParamSpec {
        name: "internal.networks",
        kind: ParamType::String,
        help: "the organisation's networks, comma-separated (default: loopback and private ranges)",
    },
    ParamSpec {
        name: "server.role",
        kind: ParamType::Word,
        help: "role of hosts first seen here: unknown, incoming, outgoing, both, relay, filter",
    },
    ParamSpec {
        name: "hostname.source",
        kind: ParamType::Word,
        help: "hostname (from the line), fromhost (sender's name) or fromhost-ip",
    },
    ParamSpec {
        name: "host.binding",
        kind: ParamType::Word,
        help: "input (default: a line's server name must be one its input is named after, \
               else-host:NAME[,NAME]) or relay (lines of inputs not named so are accepted)",
    },
    ParamSpec {
        name: "programs",
        kind: ParamType::Word,
        help: "mail (Postfix and its neighbours, default) or all",
    },
    ParamSpec {
        name: "batch.maxlines",
        kind: ParamType::PositiveInt,
        help: "most lines written in one database transaction",
    },
    ParamSpec {
        name: "commit.timeout",
        kind: ParamType::PositiveInt,
        help: "seconds a worker waits for its commit before suspending",
    },
    ParamSpec {
        name: "stats.interval",
        kind: ParamType::PositiveInt,
        help: "seconds between counter reports in rsyslog's log (0: never)",
    },
    ParamSpec {
        name: "rollups.interval",
        kind: ParamType::PositiveInt,
        help:
            "seconds between refreshes of the dashboards' rollups by the module (0, the default: elsed serve does it)",
    },
    ParamSpec {
        name: "spool.file",
        kind: ParamType::String,
        help: "omelse's own queue on disk: every batch is appended here before rsyslog is answered and \
               leaves once committed, so that the database being away or rsyslogd stopping loses nothing \
               (default: none; rsyslog is then answered after each commit, and keeps the rest in its queue)",
    },
    ParamSpec {
        name: "spool.max_megabytes",
        kind: ParamType::PositiveInt,
        help: "most megabytes of lines waiting in spool.file; beyond, batches stay in rsyslog's queue (default 4096)",
    },
    ParamSpec {
        name: "memory.max_open",
        kind: ParamType::PositiveInt,
        help: "most messages the module holds in memory (open, or just closed); beyond it the least recently \
               named go back to the database and return when a line names them (default 20000)",
    },
    ParamSpec {
        name: "migrate",
        kind: ParamType::Binary,
        help: "create or upgrade the schema on first connect (default on)",
    },
];

/// A value rsyslog handed over for one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamValue {
    Text(String),
    Number(i64),
}

/// Where the host name of a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostnameSource {
    /// The host field of the syslog line (`%hostname%`).
    Hostname,
    /// The name of the machine that sent it to rsyslog (`%fromhost%`).
    FromHost,
    /// Its address (`%fromhost-ip%`).
    FromHostIp,
}

/// Which server names a line may carry (see `identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostBinding {
    /// Only the names its input is bound to; lines of unbound inputs are refused.
    Input,
    /// As `Input` for bound inputs; lines of the others keep the name they carry (an intermediate
    /// rsyslog relays them).
    Relay,
}

/// Which lines the action takes; the others are skipped cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramFilter {
    /// Postfix programs and the neighbours ELSE knows (amavis, dovecot, opendkim …).
    Mail,
    All,
}

/// One action's settings, read-only once built (shared by all its worker threads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionConfig {
    pub conninfo: String,
    /// CA certificate(s) for a TLS connection to PostgreSQL; `sslmode=require` without it trusts
    /// the system's store.
    pub tls_ca_file: Option<String>,
    pub server_role: String,
    /// Clients and relays inside the organisation (flows); `None`: loopback and private ranges.
    pub internal_networks: Option<Vec<IpNet>>,
    pub hostname_source: HostnameSource,
    pub host_binding: HostBinding,
    pub programs: ProgramFilter,
    pub batch_max_lines: usize,
    pub commit_timeout_secs: u64,
    pub stats_interval_secs: u64,
    /// Seconds between rollup refreshes in the writer; 0: left to `elsed serve`, so that a slow
    /// refresh (seconds on a busy hour) never holds up the commits rsyslog waits for.
    pub rollups_interval_secs: u64,
    /// Where the lines of failed batches wait to be written (see `spool`); `None`: in memory.
    pub spool_file: Option<String>,
    /// Most bytes of lines waiting in the spool file.
    pub spool_max_bytes: u64,
    /// The bound on messages held in memory (see `correlate/memory.rs`).
    pub max_open: usize,
    pub migrate: bool,
}

impl Default for ActionConfig {
    fn default() -> Self {
        ActionConfig {
            conninfo: String::new(),
            tls_ca_file: None,
            server_role: "unknown".into(),
            internal_networks: None,
            hostname_source: HostnameSource::Hostname,
            host_binding: HostBinding::Input,
            programs: ProgramFilter::Mail,
            batch_max_lines: 50_000,
            commit_timeout_secs: 30,
            stats_interval_secs: 300,
            rollups_interval_secs: 0,
            spool_file: None,
            spool_max_bytes: DEFAULT_SPOOL_MEGABYTES << 20,
            max_open: DEFAULT_MAX_OPEN,
            migrate: true,
        }
    }
}

/// A configuration mistake, naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub param: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "omelse: parameter '{}': {}", self.param, self.problem)
    }
}

/// Messages held in memory by default: about 70 MiB of rsyslogd at 3.4 KB each (docs/benchmarks.md),
/// and far more than the few dozen a busy server has open at once; a deferred-queue storm beyond
/// it costs a database lookup per commit, not memory.
pub const DEFAULT_MAX_OPEN: usize = 20_000;

/// Megabytes of lines the spool file holds at most by default: what rsyslog's disk queue of the
/// shipped stanza held before (`queue.maxDiskSpace="4g"`), hours of a large fleet's lines.
pub const DEFAULT_SPOOL_MEGABYTES: u64 = 4096;

const ROLES: &[&str] = &["unknown", "incoming", "outgoing", "both", "relay", "filter"];

impl ActionConfig {
    /// Builds the settings from the parameters the user gave (name, value).
    pub fn from_params(given: &[(&'static str, ParamValue)]) -> Result<Self, ConfigError> {
        let mut config = ActionConfig::default();
        let mut parts: Vec<(&str, String)> = Vec::new();
        for (name, value) in given {
            let text = || match value {
                ParamValue::Text(t) => t.clone(),
                ParamValue::Number(n) => n.to_string(),
            };
            let number = |param: &'static str| match value {
                ParamValue::Number(n) if *n > 0 => Ok(*n as u64),
                ParamValue::Number(0) if matches!(param, "stats.interval" | "rollups.interval") => Ok(0),
                _ => Err(ConfigError {
                    param,
                    problem: format!("expected a positive number, got '{}'", text()),
                }),
            };
            match *name {
                "conninfo" => config.conninfo = text(),
                "tls.cafile" => config.tls_ca_file = Some(text()),
                "server" => parts.push(("host", text())),
                "port" => parts.push(("port", text())),
                "db" => parts.push(("dbname", text())),
                "user" => parts.push(("user", text())),
                "pwd" => parts.push(("password", text())),
                "server.role" => {
                    let role = text().to_ascii_lowercase();
                    if !ROLES.contains(&role.as_str()) {
                        return Err(ConfigError {
                            param: "server.role",
                            problem: format!("'{role}' is not one of {}", ROLES.join(", ")),
                        });
                    }
                    config.server_role = role;
                }
                "internal.networks" => {
                    let networks = text()
                        .split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|part| !part.is_empty())
                        .map(str::parse)
                        .collect::<Result<Vec<IpNet>, _>>()
                        .map_err(|e| ConfigError {
                            param: "internal.networks",
                            problem: e.to_string(),
                        })?;
                    config.internal_networks = Some(networks);
                }
                "hostname.source" => {
                    config.hostname_source = one_of(
                        "hostname.source",
                        &text(),
                        &[
                            ("hostname", HostnameSource::Hostname),
                            ("fromhost", HostnameSource::FromHost),
                            ("fromhost-ip", HostnameSource::FromHostIp),
                        ],
                    )?
                }
                "host.binding" => {
                    config.host_binding = one_of(
                        "host.binding",
                        &text(),
                        &[("input", HostBinding::Input), ("relay", HostBinding::Relay)],
                    )?
                }
                "programs" => {
                    config.programs = one_of(
                        "programs",
                        &text(),
                        &[("mail", ProgramFilter::Mail), ("all", ProgramFilter::All)],
                    )?
                }
                "batch.maxlines" => config.batch_max_lines = number("batch.maxlines")? as usize,
                "commit.timeout" => config.commit_timeout_secs = number("commit.timeout")?,
                "stats.interval" => config.stats_interval_secs = number("stats.interval")?,
                "rollups.interval" => config.rollups_interval_secs = number("rollups.interval")?,
                "spool.file" => config.spool_file = Some(text()).filter(|path| !path.is_empty()),
                "spool.max_megabytes" => {
                    config.spool_max_bytes = number("spool.max_megabytes")?.saturating_mul(1 << 20)
                }
                "memory.max_open" => config.max_open = number("memory.max_open")? as usize,
                "migrate" => config.migrate = matches!(value, ParamValue::Number(1)),
                other => {
                    return Err(ConfigError {
                        param: PARAMS.iter().find(|p| p.name == other).map_or("?", |p| p.name),
                        problem: "not handled".into(),
                    })
                }
            }
        }
        if !config.conninfo.is_empty() && !parts.is_empty() {
            return Err(ConfigError {
                param: "conninfo",
                problem: "give either conninfo or server/port/db/user/pwd, not both".into(),
            });
        }
        if config.conninfo.is_empty() {
            if parts.is_empty() {
                return Err(ConfigError {
                    param: "conninfo",
                    problem: "required (or server, db, user …)".into(),
                });
            }
            config.conninfo = parts
                .iter()
                .map(|(k, v)| format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")))
                .collect::<Vec<_>>()
                .join(" ");
        }
        if let Err(e) = config.conninfo.parse::<tokio_postgres::Config>() {
            return Err(ConfigError {
                param: "conninfo",
                problem: format!("not a valid connection string: {e}"),
            });
        }
        Ok(config)
    }
}

/// The choice among `choices` that `value` names (case-insensitive), or an error listing them.
fn one_of<T: Copy>(param: &'static str, value: &str, choices: &[(&str, T)]) -> Result<T, ConfigError> {
    let value = value.to_ascii_lowercase();
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|&(_, choice)| choice)
        .ok_or_else(|| ConfigError {
            param,
            problem: format!(
                "'{value}' is not one of {}",
                choices.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_fields_make_a_conninfo() {
        let c = ActionConfig::from_params(&[
            ("server", ParamValue::Text("db.example".into())),
            ("db", ParamValue::Text("else".into())),
            ("port", ParamValue::Number(5433)),
        ])
        .unwrap();
        assert_eq!(c.conninfo, "host='db.example' dbname='else' port='5433'");
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let e = ActionConfig::from_params(&[
            ("conninfo", ParamValue::Text("host=x".into())),
            ("server.role", ParamValue::Text("mx".into())),
        ])
        .unwrap_err();
        assert_eq!(e.param, "server.role");
        assert!(e.to_string().contains("'mx' is not one of"), "{e}");
        let e = ActionConfig::from_params(&[]).unwrap_err();
        assert_eq!(e.param, "conninfo");
        let e =
            ActionConfig::from_params(&[("conninfo", ParamValue::Text("host=x port=notanumber".into()))]).unwrap_err();
        assert_eq!(e.param, "conninfo");
    }

    #[test]
    fn the_memory_bound_is_a_positive_count() {
        let c = ActionConfig::from_params(&[("conninfo", ParamValue::Text("host=x".into()))]).unwrap();
        assert_eq!(c.max_open, DEFAULT_MAX_OPEN);
        let c = ActionConfig::from_params(&[
            ("conninfo", ParamValue::Text("host=x".into())),
            ("memory.max_open", ParamValue::Number(1000)),
        ])
        .unwrap();
        assert_eq!(c.max_open, 1000);
        let e = ActionConfig::from_params(&[
            ("conninfo", ParamValue::Text("host=x".into())),
            ("memory.max_open", ParamValue::Number(0)),
        ])
        .unwrap_err();
        assert_eq!(e.param, "memory.max_open");
    }

    #[test]
    fn internal_networks_are_a_list_of_cidrs() {
        let c = ActionConfig::from_params(&[
            ("conninfo", ParamValue::Text("host=x".into())),
            (
                "internal.networks",
                ParamValue::Text("192.0.2.0/24, 2001:db8::/32 10.1.2.3".into()),
            ),
        ])
        .unwrap();
        let nets: Vec<String> = c.internal_networks.unwrap().iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["192.0.2.0/24", "2001:db8::/32", "10.1.2.3/32"]);
        let e = ActionConfig::from_params(&[
            ("conninfo", ParamValue::Text("host=x".into())),
            (
                "internal.networks",
                ParamValue::Text("192.0.2.0/24, mail.example.org".into()),
            ),
        ])
        .unwrap_err();
        assert_eq!(e.param, "internal.networks");
        assert!(e.to_string().contains("'mail.example.org' is not an IP network"), "{e}");
    }
}
