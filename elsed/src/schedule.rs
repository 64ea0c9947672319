//! Scheduled reports: each schedule (`report_schedules`, managed by administrators through
//! `/admin/report-schedules`) mails the previous UTC day's report of one group to its
//! recipients, through the SMTP relay of `[reports]`, at its hour.
//!
//! The scheduler is a task of `elsed serve` rather than a systemd timer: the web application
//! already holds the database pool and the configuration, schedules change at run time (an
//! administrator adds one, it runs the same day) and there is one service fewer to install.
//! A schedule is claimed with an UPDATE of its `last_sent_on` before the report is sent, so two
//! daemons never send one day twice.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// The SMTP relay reports go through.
    #[serde(default = "default_relay_host")]
    pub relay_host: String,
    #[serde(default = "default_relay_port")]
    pub relay_port: u16,
    /// The From: address of the reports.
    #[serde(default = "default_from")]
    pub from: String,
    /// STARTTLS required with the relay (its certificate verified against the system's CAs).
    #[serde(default)]
    pub starttls: bool,
    /// How often the scheduler looks for reports due, seconds.
    #[serde(default = "default_check_seconds")]
    pub check_seconds: u64,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        ReportsConfig {
            relay_host: default_relay_host(),
            relay_port: default_relay_port(),
            from: default_from(),
            starttls: false,
            check_seconds: default_check_seconds(),
        }
    }
}

fn default_relay_host() -> String {
    "localhost".into()
}

fn default_relay_port() -> u16 {
    25
}

fn default_from() -> String {
    "else-reports@localhost".into()
}

fn default_check_seconds() -> u64 {
    60
}

impl ReportsConfig {
    pub fn check_interval(&self) -> Duration {
        Duration::from_secs(self.check_seconds.max(1))
    }
}
