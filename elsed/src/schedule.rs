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

use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use omelse::parse::Timestamp;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::report;

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

    /// The From: address of what elsed mails (reports, alerts).
    pub fn sender_mailbox(&self) -> anyhow::Result<lettre::message::Mailbox> {
        self.from.parse().map_err(|e| anyhow::anyhow!("reports.from: {e}"))
    }

    /// Sends a message through the relay (reports and alerts alike).
    pub async fn send(&self, message: Message) -> anyhow::Result<()> {
        let transport = if self.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&self.relay_host)?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.relay_host)
        }
        .port(self.relay_port)
        .timeout(Some(Duration::from_secs(60)))
        .build();
        transport
            .send(message)
            .await
            .map_err(|e| anyhow::anyhow!("relay {}:{}: {e}", self.relay_host, self.relay_port))?;
        Ok(())
    }
}

/// A daily report of one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: i64,
    pub group_id: i64,
    pub recipients: Vec<String>,
    /// UTC hour at which the previous day's report goes out.
    pub hour: i32,
    /// `text`, `html` or `json`.
    pub format: String,
    pub last_sent_on: Option<String>,
    pub last_error: Option<String>,
}

impl Schedule {
    pub fn from_row(row: &tokio_postgres::Row) -> Schedule {
        Schedule {
            id: row.get("id"),
            group_id: row.get("group_id"),
            recipients: row.get("recipients"),
            hour: row.get("hour"),
            format: row.get("format"),
            last_sent_on: row.get("last_sent_on"),
            last_error: row.get("last_error"),
        }
    }
}

/// The columns of [`Schedule`], dates as text.
pub const COLUMNS: &str = "id, group_id, recipients, hour, format, last_sent_on::text AS last_sent_on, last_error";

pub async fn list(client: &Client) -> Result<Vec<Schedule>, tokio_postgres::Error> {
    let rows = client
        .query(&format!("SELECT {COLUMNS} FROM report_schedules ORDER BY id"), &[])
        .await?;
    Ok(rows.iter().map(Schedule::from_row).collect())
}

/// A schedule refused: the field at fault and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(field: &'static str, message: impl Into<String>) -> Invalid {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Why a change of the schedules did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// What a POST gives (`group_id` and `recipients` at least) or a PATCH changes (any of it).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub group_id: Option<i64>,
    /// 1 to 100 e-mail addresses.
    pub recipients: Option<Vec<String>>,
    /// 0 to 23, UTC (default 6).
    pub hour: Option<i32>,
    /// text (default), html or json.
    pub format: Option<String>,
}

impl Change {
    pub fn check(&self) -> Result<(), Invalid> {
        if let Some(recipients) = &self.recipients {
            if recipients.is_empty() || recipients.len() > 100 {
                return Err(Invalid::new("recipients", "recipients: 1 to 100 addresses"));
            }
            for address in recipients {
                address
                    .parse::<lettre::Address>()
                    .map_err(|_| Invalid::new("recipients", format!("not an e-mail address: {address}")))?;
            }
        }
        if self.hour.is_some_and(|h| !(0..=23).contains(&h)) {
            return Err(Invalid::new("hour", "hour: 0 to 23 (UTC)"));
        }
        if self
            .format
            .as_deref()
            .is_some_and(|f| !["text", "html", "json"].contains(&f))
        {
            return Err(Invalid::new("format", "format: text, html or json"));
        }
        Ok(())
    }
}

/// Creates a schedule from a complete [`Change`].
pub async fn create(client: &Client, change: &Change) -> Result<Schedule, ChangeError> {
    change.check()?;
    let group_id = change
        .group_id
        .ok_or_else(|| Invalid::new("group_id", "group_id is required"))?;
    let recipients = change
        .recipients
        .clone()
        .ok_or_else(|| Invalid::new("recipients", "recipients is required"))?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO report_schedules (group_id, recipients, hour, format) VALUES ($1, $2, $3, $4)
                 RETURNING {COLUMNS}"
            ),
            &[
                &group_id,
                &recipients,
                &change.hour.unwrap_or(6),
                &change.format.clone().unwrap_or_else(|| "text".into()),
            ],
        )
        .await?;
    Ok(Schedule::from_row(&row))
}

/// Applies the fields a [`Change`] gives to schedule `id`; `None` when there is no such schedule.
pub async fn update(client: &Client, id: i64, change: &Change) -> Result<Option<Schedule>, ChangeError> {
    change.check()?;
    let row = client
        .query_opt(
            &format!(
                "UPDATE report_schedules SET group_id = coalesce($2, group_id), recipients = coalesce($3, recipients),
                        hour = coalesce($4, hour), format = coalesce($5, format)
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &change.group_id, &change.recipients, &change.hour, &change.format],
        )
        .await?;
    Ok(row.as_ref().map(Schedule::from_row))
}

/// Removes schedule `id`; what it was, or `None` when there is no such schedule.
pub async fn delete(client: &Client, id: i64) -> Result<Option<Schedule>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("DELETE FROM report_schedules WHERE id = $1 RETURNING {COLUMNS}"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(Schedule::from_row))
}

/// Sends every report due at `now` (the previous UTC day's, for schedules whose hour has come and
/// that have not sent today); returns how many were sent. A failure is recorded in the
/// schedule's `last_error` and does not stop the others.
pub async fn send_due(client: &Client, config: &ReportsConfig, now: jiff::Timestamp) -> anyhow::Result<usize> {
    let utc = now.to_zoned(jiff::tz::TimeZone::UTC);
    let today = utc.date();
    let hour = i32::from(utc.hour());
    // Claimed first: another daemon looking at the same moment finds nothing to do.
    let claimed = client
        .query(
            &format!(
                "UPDATE report_schedules SET last_sent_on = $1::text::date, last_error = NULL
                 WHERE hour <= $2 AND (last_sent_on IS NULL OR last_sent_on < $1::text::date)
                 RETURNING {COLUMNS}"
            ),
            &[&today.to_string(), &hour],
        )
        .await?;
    let until = today.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp();
    let since = until - jiff::SignedDuration::from_hours(24);
    let mut sent = 0;
    for schedule in claimed.iter().map(Schedule::from_row) {
        match send_one(client, config, &schedule, since, until).await {
            Ok(()) => sent += 1,
            Err(e) => {
                tracing::warn!(schedule = schedule.id, error = %e, "scheduled report not sent");
                client
                    .execute(
                        "UPDATE report_schedules SET last_error = $2 WHERE id = $1",
                        &[&schedule.id, &format!("{e:#}")],
                    )
                    .await?;
            }
        }
    }
    Ok(sent)
}

/// The report of one group for `[since, until)`, mailed to its recipients.
async fn send_one(
    client: &Client,
    config: &ReportsConfig,
    schedule: &Schedule,
    since: jiff::Timestamp,
    until: jiff::Timestamp,
) -> anyhow::Result<()> {
    let group = client
        .query_opt(
            "SELECT g.name, ARRAY(SELECT server_id FROM group_servers WHERE group_id = g.id),
                    ARRAY(SELECT domain FROM group_domains WHERE group_id = g.id),
                    ARRAY(SELECT server_id FROM group_servers WHERE group_id = g.id AND owns_whole)
             FROM groups g WHERE g.id = $1",
            &[&schedule.group_id],
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("group {} does not exist", schedule.group_id))?;
    let (name, servers, domains): (String, Vec<i32>, Vec<String>) = (group.get(0), group.get(1), group.get(2));
    let pairs = crate::access::Scope::pairs(&[crate::access::GroupScope {
        server_ids: servers,
        domains,
        ..Default::default()
    }]);
    let scope = report::Scope {
        since: Some(Timestamp(since.as_microsecond())),
        until: Some(Timestamp(until.as_microsecond())),
        pairs: Some(pairs),
        whole_servers: group.get(3),
        ..report::Scope::default()
    };
    let covered = report::Covered {
        since: Some(since.to_string()),
        until: Some(until.to_string()),
        host: None,
        domain: None,
        timezone: "UTC".into(),
    };
    let built = report::build(client, &scope, covered, 50).await;
    client
        .execute("SELECT set_config('TimeZone', 'UTC', false)", &[])
        .await?;
    let (format, content_type) = match schedule.format.as_str() {
        "html" => (report::Format::Html, ContentType::TEXT_HTML),
        "json" => (report::Format::Json, ContentType::parse("application/json")?),
        _ => (report::Format::Text, ContentType::TEXT_PLAIN),
    };
    let body = report::render(&built?, format)?;
    let day = since.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut message = Message::builder()
        .from(config.sender_mailbox()?)
        .subject(format!("ELSE daily report: {name}, {day}"));
    for recipient in &schedule.recipients {
        message = message.to(recipient
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient {recipient}: {e}"))?);
    }
    let message = message.header(content_type).body(body)?;
    config.send(message).await?;
    tracing::info!(schedule = schedule.id, group = %name, %day, "scheduled report sent");
    Ok(())
}

/// The scheduler task of `elsed serve`: looks for reports due every `check_seconds`.
pub async fn run(pool: crate::db::Pool, config: ReportsConfig) {
    let mut tick = tokio::time::interval(config.check_interval());
    loop {
        tick.tick().await;
        let client = match pool.get().await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "scheduled reports: database unavailable");
                continue;
            }
        };
        if let Err(e) = send_due(&client, &config, jiff::Timestamp::now()).await {
            tracing::warn!(error = %e, "scheduled reports");
        }
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
