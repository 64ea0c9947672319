//! `elsed.toml`: the settings that outlive one command line.
//!
//! Precedence is flag > environment > file > default. The flags and their variables
//! (`ELSE_DATABASE_URL`, `ELSE_CONFIG`) are clap's business (see `main.rs`); this module reads the
//! file, lays the environment's `ELSE_<TABLE>__<KEY>` variables over it (`ELSE_RETENTION__DAYS=30`,
//! and `ELSE_TIMEZONE` for the one top-level key) and fills in the defaults. Unknown keys are
//! refused so that a typo is an error rather than a setting silently ignored, and every error
//! names the key (`retention.days`), the problem and, when it came from there, the variable.
//!
//! ```toml
//! timezone = "Europe/Paris"          # of RFC 3164 log lines; default: the machine's
//! internal_networks = ["192.0.2.0/24", "10.0.0.0/8"]   # default: loopback and private ranges
//!
//! [database]
//! # ca_file = "/etc/else/tls/db-ca.pem"   # TLS to PostgreSQL, server certificate verified
//! url = "host=/run/postgresql dbname=else user=else"
//! # read_url = "host=standby.example.org dbname=else user=else"   # reads of elsed serve
//! # read_max_lag_secs = 30           # a standby further behind is skipped
//!
//! [import]
//! batch_lines = 20000                # lines per transaction
//!
//! [retention]
//! days = 90                          # partitions older than this are dropped
//!
//! [greylist]                         # GreyLSE, see greylist/config.rs
//! delay_secs = 300
//!
//! [ndr]                              # elsed ndr, see ndr/mod.rs
//! listen = ["10.0.0.5:2424"]
//! allowed_clients = ["10.0.0.0/24"]
//! tls_cert_file = "/etc/else/ndr.pem" # optional: STARTTLS offered with this certificate
//! tls_key_file = "/etc/else/ndr.key"
//!
//! [snmp]                            # elsed snmp, see snmp/mod.rs
//! interval_secs = 60
//! key_file = "/etc/else/snmp.key"    # encrypts the stored SNMP credentials
//! [web]                              # elsed serve, see config/web.rs
//! listen = "127.0.0.1:8080"
//!
//! [alerts]                           # elsed serve, see alerts/config.rs and docs/alerts.md
//! interval_secs = 60
//!
//! [[servers]]
//! name = "mx1"                       # the host name its log lines carry
//! role = "incoming"                  # unknown, incoming, outgoing, both, relay, filter
//! addresses = ["192.0.2.10"]
//! ```

pub mod web;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use omelse::correlate::ServerRole;
use serde::Deserialize;

/// Where the file is looked for when `--config` is not given; a missing file there is no error.
pub const DEFAULT_PATH: &str = "/etc/else/elsed.toml";

/// Prefix of the variables that set a configuration key.
pub const ENV_PREFIX: &str = "ELSE_";

/// Top-level keys that a single-segment variable sets (`ELSE_TIMEZONE`, `ELSE_INTERNAL_NETWORKS`); other single-segment
/// variables (`ELSE_CONFIG`, `ELSE_DATABASE_URL`) belong to the command line.
const TOP_LEVEL_ENV_KEYS: &[&str] = &["timezone", "internal_networks"];

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the settings came from (not a key of the file).
    #[serde(skip)]
    pub origin: Origin,
    /// IANA zone of the year-less RFC 3164 timestamps (`Europe/Paris`, `UTC`).
    pub timezone: Option<String>,
    /// The organisation's networks (CIDR): their clients and relays are internal, which decides
    /// flows. Default: loopback and the private ranges. Give the same list to omelse
    /// (`internal.networks`) so that imports and the live stream agree.
    pub internal_networks: Option<Vec<String>>,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub import: ImportConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub servers: Vec<ServerConfig>,
    /// GreyLSE, the greylisting policy service.
    #[serde(default)]
    pub greylist: crate::greylist::GreylistConfig,
    /// The NDR collector (`elsed ndr`).
    #[serde(default)]
    pub ndr: crate::ndr::NdrConfig,
    /// The SNMP poller and queue actions (`elsed snmp`).
    #[serde(default)]
    pub snmp: crate::snmp::SnmpConfig,
    /// The web application (`elsed serve`).
    #[serde(default)]
    pub web: web::WebConfig,
    /// Where client IP addresses are located (`[geoip] database = "…mmdb"`).
    #[serde(default)]
    pub geoip: crate::geo::GeoipConfig,
    /// How scheduled reports are mailed (`elsed serve` sends them).
    #[serde(default)]
    pub reports: crate::schedule::ReportsConfig,
    /// Delivery insights and alerts (`elsed serve` evaluates them).
    #[serde(default)]
    pub alerts: crate::alerts::AlertsConfig,
}

/// The file read (if any) and the environment variables that set keys, for `elsed check-config`.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub file: Option<PathBuf>,
    /// (variable, dotted key) in the order applied.
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A libpq URL (`postgresql://else@localhost/else`) or `key=value` string.
    pub url: Option<String>,
    /// PEM file of the CA that signed PostgreSQL's certificate: the connection then uses TLS and
    /// verifies the server (as `sslmode=require` does with the system's certificate store).
    pub ca_file: Option<std::path::PathBuf>,
    /// A hot standby of `url` (streaming replication) for the web application's reads:
    /// searches, reports, statistics, log lists (see `replica.rs`).
    pub read_url: Option<String>,
    /// Past this many seconds behind the primary the standby is skipped.
    #[serde(default = "default_read_max_lag_secs")]
    pub read_max_lag_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            ca_file: None,
            read_url: None,
            read_max_lag_secs: default_read_max_lag_secs(),
        }
    }
}

/// Half a minute: a search a little older than the live view is fine, one that misses the last
/// minutes of a morning's incident is not.
fn default_read_max_lag_secs() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Lines per batch (one transaction each).
    #[serde(default = "default_batch_lines")]
    pub batch_lines: usize,
}

impl Default for ImportConfig {
    fn default() -> Self {
        ImportConfig {
            batch_lines: default_batch_lines(),
        }
    }
}

fn default_batch_lines() -> usize {
    20_000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    #[serde(default = "default_retention_days")]
    pub days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            days: default_retention_days(),
        }
    }
}

fn default_retention_days() -> u32 {
    90
}

/// A Postfix server of the fleet, as its log lines name it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub name: String,
    #[serde(default = "default_role")]
    pub role: String,
    /// Its IP addresses, to recognise it as a client or relay of another server.
    #[serde(default)]
    pub addresses: Vec<String>,
}

fn default_role() -> String {
    "unknown".to_owned()
}

impl ServerConfig {
    /// The role, checked when the file was read.
    pub fn role(&self) -> ServerRole {
        self.role.parse().unwrap_or_default()
    }
}

/// A configuration that cannot be used: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// Dotted key (`retention.days`, `servers[1].role`), empty when the file as a whole is at fault.
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "configuration {}: {}", self.path.display(), self.problem)
        } else {
            write!(
                f,
                "configuration {}: {}: {}",
                self.path.display(),
                self.key,
                self.problem
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// The process's environment, sorted (the `ELSE_*` variables are picked from it).
fn process_environment() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    env.sort();
    env
}

impl Config {
    /// Reads the configuration: the file given (which must exist), else [`DEFAULT_PATH`] if it
    /// exists, else the defaults; the process's `ELSE_*` variables over it.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_with_env(explicit, &process_environment())
    }

    /// The defaults and the `ELSE_*` variables, no file: what `elsed setup` runs with unless
    /// `--config` names one (it runs as the PostgreSQL superuser, which may not read the
    /// services' file, root:else 0640).
    pub fn load_environment_only() -> Result<Config, ConfigError> {
        Config::parse_with_env("", Path::new("(no configuration file)"), &process_environment())
    }

    /// [`Config::load`] with the given environment.
    pub fn load_with_env(explicit: Option<&Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
        let (text, file) = match std::fs::read_to_string(path) {
            Ok(text) => (text, Some(path.to_owned())),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
            Err(e) => {
                return Err(ConfigError {
                    path: path.to_owned(),
                    key: String::new(),
                    problem: format!("cannot be read: {e}"),
                })
            }
        };
        let mut config = Config::parse_with_env(&text, path, env)?;
        config.origin.file = file;
        Ok(config)
    }

    /// Parses and checks the text of a configuration file (`path` is for messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, path, &[])
    }

    /// Parses the text of a configuration file, sets the keys the `ELSE_*` variables of `env`
    /// name, and checks the result.
    pub fn parse_with_env(text: &str, path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut from_env: Vec<(String, String)> = Vec::new();
        // A key set from the environment is named with its variable, so that nobody looks for
        // the mistake in the file.
        let error = |key: String, problem: String, from_env: &[(String, String)]| {
            let variable = from_env.iter().rev().find(|(_, k)| {
                // The key itself, a part of it, or (an unknown table) the table it is in.
                key == *k
                    || key.starts_with(&format!("{k}."))
                    || key.starts_with(&format!("{k}["))
                    || k.starts_with(&format!("{key}."))
            });
            let problem = match variable {
                Some((variable, _)) => format!("{problem} (set by the environment variable {variable})"),
                None => problem,
            };
            ConfigError {
                path: path.to_owned(),
                key,
                problem,
            }
        };
        // Syntax first (toml's own message says where), then the shape, with the key's path.
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(0, |span| text[..span.start].matches('\n').count() + 1);
            error(
                String::new(),
                format!("not valid TOML (line {line}): {}", e.message()),
                &[],
            )
        })?;
        for (variable, value) in env {
            if let Some(key) = env_key(variable) {
                set_from_env(&mut table, &key, value)
                    .map_err(|problem| error(key.join("."), problem, &[(variable.clone(), key.join("."))]))?;
                from_env.push((variable.clone(), key.join(".")));
            }
        }
        let error = |key: String, problem: String| error(key, problem, &from_env);
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let problem = e.into_inner().message().to_owned();
            let key = if key == "." { String::new() } else { key };
            if problem.starts_with("unknown field") {
                // The path already ends with the unknown key; serde's list of expected keys is
                // the useful part of its message.
                let expected = problem
                    .split_once(", expected ")
                    .map_or(String::new(), |(_, e)| format!(" (expected {e})"));
                return error(key, format!("unknown key{expected}"));
            }
            error(key, problem)
        })?;
        config.check().map_err(|(key, problem)| error(key, problem))?;
        config.origin.env = from_env;
        Ok(config)
    }

    /// `internal_networks` parsed; `None` when not given (the correlator's defaults apply).
    pub fn internal_networks(&self) -> Result<Option<Vec<omelse::correlate::IpNet>>, String> {
        self.internal_networks
            .as_ref()
            .map(|list| list.iter().map(|net| net.parse().map_err(|e| format!("{e}"))).collect())
            .transpose()
    }

    /// The checks types alone do not make.
    fn check(&self) -> Result<(), (String, String)> {
        if let Some(zone) = &self.timezone {
            jiff::tz::TimeZone::get(zone).map_err(|e| {
                (
                    "timezone".to_owned(),
                    format!("'{zone}' is not a known time zone ({e})"),
                )
            })?;
        }
        self.internal_networks()
            .map_err(|e| ("internal_networks".to_owned(), e))?;
        if self.database.url.as_deref().is_some_and(|url| url.trim().is_empty()) {
            return Err(("database.url".to_owned(), "is empty".to_owned()));
        }
        if self
            .database
            .read_url
            .as_deref()
            .is_some_and(|url| url.trim().is_empty())
        {
            return Err(("database.read_url".to_owned(), "is empty".to_owned()));
        }
        self.ndr
            .allowed()
            .map_err(|problem| ("ndr.allowed_clients".to_owned(), problem))?;
        self.greylist
            .allowed()
            .map_err(|problem| ("greylist.allowed_clients".to_owned(), problem))?;
        if self.import.batch_lines == 0 {
            return Err(("import.batch_lines".to_owned(), "must be at least 1".to_owned()));
        }
        if self.retention.days == 0 {
            return Err(("retention.days".to_owned(), "must be at least 1".to_owned()));
        }
        self.snmp.check()?;
        self.web.check()?;
        self.alerts.check()?;
        for (i, server) in self.servers.iter().enumerate() {
            if server.name.trim().is_empty() {
                return Err((format!("servers[{i}].name"), "is empty".to_owned()));
            }
            if let Err(problem) = server.role.parse::<ServerRole>() {
                return Err((format!("servers[{i}].role"), problem));
            }
            for (j, address) in server.addresses.iter().enumerate() {
                if address.parse::<IpAddr>().is_err() {
                    return Err((
                        format!("servers[{i}].addresses[{j}]"),
                        format!("'{address}' is not an IP address"),
                    ));
                }
            }
            if self.servers[..i].iter().any(|other| other.name == server.name) {
                return Err((
                    format!("servers[{i}].name"),
                    format!("'{}' is listed twice", server.name),
                ));
            }
        }
        Ok(())
    }
}

/// The dotted key an `ELSE_*` variable sets: `ELSE_GREYLIST__DELAY_SECS` is `greylist.delay_secs`,
/// `ELSE_TIMEZONE` is `timezone`; `None` for the other variables.
fn env_key(variable: &str) -> Option<Vec<String>> {
    let rest = variable.strip_prefix(ENV_PREFIX)?;
    let key: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    match key.len() {
        1 if TOP_LEVEL_ENV_KEYS.contains(&key[0].as_str()) => Some(key),
        1 => None,
        _ => Some(key),
    }
}

/// Sets `key` in the file's table to the variable's value: a TOML value (`30`, `true`,
/// `["a", "b"]`, `"quoted"`), or else the text as a string (`host=/run/postgresql dbname=else`).
fn set_from_env(table: &mut toml::Table, key: &[String], value: &str) -> Result<(), String> {
    let value = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, tables) = key.split_last().expect("a key has at least one segment");
    let mut current = table;
    for segment in tables {
        if segment.is_empty() {
            return Err("is not a key (empty segment between __)".to_owned());
        }
        let entry = current
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(format!(
                    "cannot be set from the environment: `{segment}` is not a table"
                ))
            }
        };
    }
    if last.is_empty() {
        return Err("is not a key (empty segment between __)".to_owned());
    }
    current.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("t.toml"))
    }

    #[test]
    fn defaults_apply_to_an_empty_file() {
        let config = parse("").unwrap();
        assert_eq!(config.import.batch_lines, 20_000);
        assert_eq!(config.retention.days, 90);
        assert!(config.database.url.is_none() && config.timezone.is_none() && config.servers.is_empty());
    }

    #[test]
    fn a_full_file_is_read() {
        let config = parse(
            r#"timezone = "Europe/Paris"
[database]
url = "host=/run/postgresql dbname=else"
[import]
batch_lines = 500
[retention]
days = 30
[[servers]]
name = "mx1"
role = "incoming"
addresses = ["192.0.2.10", "2001:db8::1"]
"#,
        )
        .unwrap();
        assert_eq!(config.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(config.database.url.as_deref(), Some("host=/run/postgresql dbname=else"));
        assert_eq!((config.import.batch_lines, config.retention.days), (500, 30));
        assert_eq!(config.servers[0].role, "incoming");
        assert_eq!(config.servers[0].addresses.len(), 2);
    }

    #[test]
    fn errors_name_the_key_and_the_problem() {
        let cases = [
            ("[retention]\ndays = \"ninety\"", "retention.days", "invalid type"),
            ("[import]\nbatch_line = 5", "import.batch_line", "unknown key"),
            ("[ndr]\nmax_bytes = 5", "ndr.max_bytes", "unknown key"),
            ("colour = 1", "colour", "unknown key"),
            ("[greylist]\ndealy_secs = 1", "greylist.dealy_secs", "unknown key"),
            ("[snmp]\ninterval = 5", "snmp.interval", "unknown key"),
            ("[snmp]\ntimeout_ms = 0", "snmp.timeout_ms", "between"),
            ("[web]\nlisten = \"localhost\"", "web.listen", "invalid"),
            ("[web]\ntls_cert = \"/x.pem\"", "web.tls_key", "missing"),
            (
                "[web]\nsession_idle_minutes = 0",
                "web.session_idle_minutes",
                "at least 1",
            ),
            ("[retention]\ndays = 0", "retention.days", "at least 1"),
            ("timezone = \"Mars/Olympus\"", "timezone", "not a known time zone"),
            (
                "[[servers]]\nname = \"a\"\n[[servers]]\nname = \"b\"\nrole = \"boss\"",
                "servers[1].role",
                "not a server role",
            ),
            (
                "[[servers]]\nname = \"a\"\naddresses = [\"x\"]",
                "servers[0].addresses[0]",
                "not an IP",
            ),
        ];
        for (text, key, problem) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.problem.contains(problem), "{text}: {e}");
            assert!(e.to_string().contains(key), "{e}");
        }
        let e = parse("[database\nurl=").unwrap_err();
        assert!(e.problem.starts_with("not valid TOML"), "{e}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_environment_sets_keys_over_the_file() {
        let text = "[retention]\ndays = 30\n[greylist]\ndelay_secs = 60\n";
        let vars = env(&[
            ("ELSE_RETENTION__DAYS", "7"),
            ("ELSE_DATABASE__URL", "host=/run/postgresql dbname=else"),
            (
                "ELSE_GREYLIST__LISTEN",
                r#"["inet:0.0.0.0:10023", "unix:/run/else/g.sock"]"#,
            ),
            ("ELSE_TIMEZONE", "Europe/Paris"),
            ("ELSE_NDR__HOSTNAME", r#""123""#),
            // The command line's own variables and strangers are not keys.
            ("ELSE_DATABASE_URL", "ignored"),
            ("ELSE_CONFIG", "ignored"),
            ("PATH", "/bin"),
        ]);
        let config = Config::parse_with_env(text, Path::new("t.toml"), &vars).unwrap();
        assert_eq!(config.retention.days, 7);
        assert_eq!(config.greylist.delay_secs, 60, "the file's other keys stay");
        assert_eq!(config.database.url.as_deref(), Some("host=/run/postgresql dbname=else"));
        assert_eq!(config.greylist.listen, ["inet:0.0.0.0:10023", "unix:/run/else/g.sock"]);
        assert_eq!(config.timezone.as_deref(), Some("Europe/Paris"));
        assert_eq!(config.ndr.hostname, "123");
        let keys: Vec<&str> = config.origin.env.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "retention.days",
                "database.url",
                "greylist.listen",
                "timezone",
                "ndr.hostname"
            ]
        );
    }

    #[test]
    fn errors_from_the_environment_name_the_variable() {
        let cases = [
            ("ELSE_RETENTION__DAYS", "0", "retention.days", "at least 1"),
            ("ELSE_RETENTION__DAYS", "many", "retention.days", "invalid type"),
            ("ELSE_RETENTON__DAYS", "5", "retenton", "unknown key"),
            ("ELSE_GREYLIST__DEALY_SECS", "5", "greylist.dealy_secs", "unknown key"),
            ("ELSE_SERVERS__NAME", "mx1", "servers.name", "not a table"),
            ("ELSE_IMPORT__", "5", "import.", "not a key"),
        ];
        let text = "[[servers]]\nname = \"a\"\n";
        for (variable, value, key, problem) in cases {
            let e = Config::parse_with_env(text, Path::new("t.toml"), &env(&[(variable, value)])).unwrap_err();
            assert_eq!(e.key, key, "{variable}: {e}");
            assert!(e.problem.contains(problem), "{variable}: {e}");
            assert!(e.to_string().contains(variable), "{e}");
        }
    }

    /// The keys of a table as serde lists them when it refuses an unknown one: every key the
    /// code reads, so a key added to the code without documentation fails the tests below.
    fn keys_of(header: &str) -> Vec<String> {
        let e = parse(&format!("{header}zzz_not_a_key = 1")).unwrap_err();
        assert!(e.problem.starts_with("unknown key"), "{e}");
        e.problem.split('`').skip(1).step_by(2).map(str::to_owned).collect()
    }

    /// (table as written in a file, its keys), the top level first.
    fn every_table() -> Vec<(&'static str, Vec<String>)> {
        [
            ("", ""),
            ("database", "[database]\n"),
            ("import", "[import]\n"),
            ("retention", "[retention]\n"),
            ("servers", "[[servers]]\nname = \"a\"\n"),
            ("greylist", "[greylist]\n"),
            ("ndr", "[ndr]\n"),
            ("snmp", "[snmp]\n"),
            ("web", "[web]\n"),
            ("geoip", "[geoip]\n"),
            ("reports", "[reports]\n"),
            ("alerts", "[alerts]\n"),
            ("alerts.destination", "[alerts.destination]\n"),
            ("alerts.blocklist", "[alerts.blocklist]\n"),
            ("alerts.flow", "[alerts.flow]\n"),
            ("alerts.queues", "[alerts.queues]\n"),
            ("alerts.rates", "[alerts.rates]\n"),
            ("alerts.greylist", "[alerts.greylist]\n"),
            ("alerts.channels", "[alerts.channels]\n"),
        ]
        .into_iter()
        .map(|(table, header)| (table, keys_of(header)))
        .collect()
    }

    fn repository_file(path: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The packaged /etc/else/elsed.toml shows every key, commented out, with its default: with
    /// every `# key = value` line uncommented it is a valid file that changes nothing but the
    /// examples (database, servers, time zone).
    #[test]
    fn the_packaged_file_shows_every_key_with_its_default() {
        let text = repository_file("packaging/elsed.toml");
        let mut shown: Vec<(String, String)> = Vec::new();
        let mut table = String::new();
        let mut uncommented = String::new();
        for line in text.lines() {
            let bare = line.strip_prefix("# ").unwrap_or(line);
            let is_header = bare.starts_with('[');
            let key = bare.split_once(" = ").map(|(k, _)| k).filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
            if is_header {
                table = bare.trim_matches(|c| c == '[' || c == ']').to_owned();
            } else if let Some(key) = key {
                shown.push((table.clone(), key.to_owned()));
            }
            uncommented.push_str(if is_header || key.is_some() { bare } else { line });
            uncommented.push('\n');
        }
        let tables = every_table();
        for (table, keys) in &tables {
            for key in keys {
                // Tables are shown as their headers, not as `key =` lines.
                let dotted = if table.is_empty() {
                    key.clone()
                } else {
                    format!("{table}.{key}")
                };
                if tables.iter().any(|(t, _)| *t == dotted) {
                    assert!(
                        text.contains(&format!("[{dotted}]")),
                        "[{dotted}] missing from packaging/elsed.toml"
                    );
                } else {
                    let wanted = (table.to_string(), key.clone());
                    assert!(
                        shown.contains(&wanted),
                        "{table}.{key} missing from packaging/elsed.toml"
                    );
                }
            }
        }
        let config = parse(&uncommented).unwrap_or_else(|e| panic!("uncommented packaging/elsed.toml: {e}"));
        let defaults = Config::default();
        assert_eq!(format!("{:?}", config.greylist), format!("{:?}", defaults.greylist));
        // The STARTTLS files are examples: without them (the default) no STARTTLS is offered.
        let mut ndr = config.ndr.clone();
        (ndr.tls_cert_file, ndr.tls_key_file) = (None, None);
        assert_eq!(format!("{ndr:?}"), format!("{:?}", defaults.ndr));
        assert_eq!(format!("{:?}", config.import), format!("{:?}", defaults.import));
        assert_eq!(format!("{:?}", config.retention), format!("{:?}", defaults.retention));
        assert_eq!(format!("{:?}", config.snmp), format!("{:?}", defaults.snmp));
        assert_eq!(format!("{:?}", config.reports), format!("{:?}", defaults.reports));
        assert_eq!(format!("{:?}", config.alerts), format!("{:?}", defaults.alerts));
        assert_eq!(config.servers[0].role, default_role());
    }

    /// docs/configuration.md has a section per table that names each of its keys.
    #[test]
    fn the_documentation_names_every_key() {
        let text = repository_file("docs/configuration.md");
        for (table, keys) in every_table() {
            let heading = if table.is_empty() {
                "## Top level".to_owned()
            } else {
                format!("[{table}]")
            };
            let start = text
                .lines()
                .position(|l| l.starts_with("## ") && l.contains(&heading))
                .unwrap_or_else(|| panic!("docs/configuration.md has no heading with {heading}"));
            let section: Vec<&str> = text
                .lines()
                .skip(start + 1)
                .take_while(|l| !l.starts_with("## "))
                .collect();
            let section = section.join("\n");
            for key in keys {
                assert!(
                    section.contains(&format!("`{key}`")),
                    "docs/configuration.md, section {heading}: `{key}` missing"
                );
            }
        }
    }

    #[test]
    fn only_an_explicit_file_must_exist() {
        let e = Config::load(Some(Path::new("/nonexistent/elsed.toml"))).unwrap_err();
        assert!(e.problem.contains("cannot be read"), "{e}");
    }
}
