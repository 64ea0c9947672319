//! `elsed.toml`: the settings that outlive one command line.
//!
//! Precedence is flag > environment > file > default; the flags and `ELSE_*` variables are
//! clap's business (see `main.rs`), this module reads the file and fills in the defaults. Unknown
//! keys are refused so that a typo is an error rather than a setting silently ignored, and every
//! error names the key (`retention.days`) and the problem.
//!
//! ```toml
//! timezone = "Europe/Paris"          # of RFC 3164 log lines; default: the machine's
//!
//! [database]
//! # ca_file = "/etc/else/tls/db-ca.pem"   # TLS to PostgreSQL, server certificate verified
//! url = "host=/run/postgresql dbname=else user=else"
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
//! [[servers]]
//! name = "mx1"                       # the host name its log lines carry
//! role = "incoming"                  # unknown, incoming, outgoing, both, relay, filter
//! addresses = ["192.0.2.10"]
//! ```

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use omelse::correlate::ServerRole;
use serde::Deserialize;

/// Where the file is looked for when `--config` is not given; a missing file there is no error.
pub const DEFAULT_PATH: &str = "/etc/else/elsed.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// IANA zone of the year-less RFC 3164 timestamps (`Europe/Paris`, `UTC`).
    pub timezone: Option<String>,
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
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A libpq URL (`postgresql://else@localhost/else`) or `key=value` string.
    pub url: Option<String>,
    /// PEM file of the CA that signed PostgreSQL's certificate: the connection then uses TLS and
    /// verifies the server (as `sslmode=require` does with the system's certificate store).
    pub ca_file: Option<std::path::PathBuf>,
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

impl Config {
    /// Reads the configuration: the file given (which must exist), else [`DEFAULT_PATH`] if it
    /// exists, else the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_PATH));
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if explicit.is_none() && e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(ConfigError {
                path: path.to_owned(),
                key: String::new(),
                problem: format!("cannot be read: {e}"),
            }),
        }
    }

    /// Parses and checks the text of a configuration file (`path` is for messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let error = |key: String, problem: String| ConfigError {
            path: path.to_owned(),
            key,
            problem,
        };
        // Syntax first (toml's own message says where), then the shape, with the key's path.
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e.span().map_or(0, |span| text[..span.start].matches('\n').count() + 1);
            error(String::new(), format!("not valid TOML (line {line}): {}", e.message()))
        })?;
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
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
        Ok(config)
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
        if self.database.url.as_deref().is_some_and(|url| url.trim().is_empty()) {
            return Err(("database.url".to_owned(), "is empty".to_owned()));
        }
        if self.import.batch_lines == 0 {
            return Err(("import.batch_lines".to_owned(), "must be at least 1".to_owned()));
        }
        if self.retention.days == 0 {
            return Err(("retention.days".to_owned(), "must be at least 1".to_owned()));
        }
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

    #[test]
    fn only_an_explicit_file_must_exist() {
        let e = Config::load(Some(Path::new("/nonexistent/elsed.toml"))).unwrap_err();
        assert!(e.problem.contains("cannot be read"), "{e}");
    }
}
