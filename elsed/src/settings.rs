//! The settings every subcommand runs with: the configuration (file, `ELSE_*` environment,
//! defaults) and the database the command line names, resolved in that order.

use crate::config::Config;
use crate::db;

/// Settings resolved from flags, environment, file and defaults.
pub struct Settings {
    pub config: Config,
    /// `--database-url` / `ELSE_DATABASE_URL`: wins over `database.url` of the file.
    pub(crate) database_url: Option<String>,
}

impl Settings {
    pub fn new(config: Config, database_url: Option<String>) -> Settings {
        Settings { config, database_url }
    }

    /// The database to use, or an error that says how to give one.
    pub fn database_url(&self) -> anyhow::Result<&str> {
        self.database_url
            .as_deref()
            .or(self.config.database.url.as_deref())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no database given: use --database-url, ELSE_DATABASE_URL or database.url in the configuration file"
                )
            })
    }

    /// What connecting needs: the database and the CA file its certificate is checked against.
    pub fn database(&self) -> anyhow::Result<db::Target> {
        Ok(db::Target {
            url: self.database_url()?.to_owned(),
            ca_file: self.config.database.ca_file.clone(),
        })
    }

    /// The hot standby of `database.read_url`, with the primary's CA file.
    pub fn read_database(&self) -> Option<db::Target> {
        self.config.database.read_url.as_ref().map(|url| db::Target {
            url: url.clone(),
            ca_file: self.config.database.ca_file.clone(),
        })
    }

    /// The zone of year-less timestamps: the flag, else `timezone` of the file, else the machine's.
    pub fn timezone(&self, flag: Option<&str>) -> anyhow::Result<jiff::tz::TimeZone> {
        match flag.or(self.config.timezone.as_deref()) {
            Some(name) => {
                jiff::tz::TimeZone::get(name).map_err(|e| anyhow::anyhow!("'{name}' is not a known time zone: {e}"))
            }
            None => Ok(jiff::tz::TimeZone::system()),
        }
    }
}
