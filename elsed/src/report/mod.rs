//! `elsed report`: pflogsumm's report (grand totals, traffic per day and hour, host/domain
//! summaries, top senders and recipients, deferral/bounce/reject detail, smtpd connections,
//! warnings) computed from the database, for a time range, a server and a domain, as text, JSON or
//! HTML. Totals use pflogsumm's definitions, except that a message passing through a content
//! filter is counted once (see [`dedup`]).

mod base;
mod dedup;
mod diagnostics;
mod domains;
mod html;
mod names;
mod problems;
mod scope;
mod sections;
mod smtpd;
mod text;
pub mod totals;
mod traffic;

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde::Serialize;

use tokio_postgres::Client;

use crate::{db, Settings};
pub use scope::Scope;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// From this time on (RFC 3339, local `2024-03-14 10:00`, a date, or an age: 2h, 7d)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Before this time
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this server
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Only messages from or to this domain
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Time zone of the days and hours [default: `timezone` of the config file, else the machine's]
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// At most this many rows per list (0: all)
    #[arg(long, default_value_t = 0, value_name = "N")]
    top: usize,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Text,
    Json,
    Html,
}

/// What the report covers, as given.
#[derive(Debug, Serialize)]
pub struct Covered {
    pub since: Option<String>,
    pub until: Option<String>,
    pub host: Option<String>,
    pub domain: Option<String>,
    pub timezone: String,
}

/// The whole report; the JSON format is this structure.
#[derive(Debug, Serialize)]
pub struct Report {
    scope: Covered,
    pub grand_totals: totals::Totals,
    /// Content-filter hops, which pflogsumm adds to received and delivered (not in the totals).
    filter_hops: totals::FilterHops,
    traffic: traffic::Traffic,
    #[serde(flatten)]
    summaries: domains::Summaries,
    #[serde(flatten)]
    problems: problems::Problems,
    smtpd: smtpd::SmtpdStats,
    diagnostics: Vec<diagnostics::Diagnostic>,
    /// No message was received or delivered in the scope (all zeros, and why is worth saying).
    #[serde(skip)]
    empty: bool,
}

pub async fn run(args: &ReportArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let zone = settings.timezone(args.timezone.as_deref())?;
    let scope = Scope {
        since: args
            .since
            .as_deref()
            .map(|t| crate::time::parse_time(t, &zone))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| crate::time::parse_time(t, &zone))
            .transpose()?,
        host: args.host.clone(),
        domain: args.domain.as_deref().map(|d| d.trim_start_matches('@').to_lowercase()),
        ..Scope::default()
    };
    let client = db::connect(&settings.database()?).await?;
    db::require_schema(&client).await?;
    let covered = Covered {
        since: args.since.clone(),
        until: args.until.clone(),
        host: scope.host.clone(),
        domain: scope.domain.clone(),
        timezone: zone.iana_name().unwrap_or("UTC").to_owned(),
    };
    let report = build(&client, &scope, covered, args.top).await?;
    print!("{}", render(&report, args.format)?);
    if report.empty {
        eprintln!("{}", where_the_mail_is(&client).await?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Why a report is all zeros: the range holds no mail; where the database has some.
async fn where_the_mail_is(client: &Client) -> anyhow::Result<String> {
    let row = client
        .query_one(
            "SELECT to_char(min(first_seen), 'YYYY-MM-DD HH24:MI'),
                    to_char(max(last_seen), 'YYYY-MM-DD HH24:MI'),
                    to_char(min(first_seen), 'YYYY-MM-DD')
             FROM messages",
            &[],
        )
        .await?;
    let (first, last, day): (Option<String>, Option<String>, Option<String>) = (row.get(0), row.get(1), row.get(2));
    Ok(match (first, last, day) {
        (Some(first), Some(last), Some(day)) => format!(
            "elsed report: no mail in this range; the database holds mail from {first} to {last} \
             (try --since {day})"
        ),
        _ => "elsed report: no mail in this range; the database holds no message yet (elsed import, \
              or the rsyslog stanza, brings some)"
            .to_owned(),
    })
}

/// The report of `scope`, days and hours in `covered.timezone` (set on this connection's session).
pub async fn build(client: &Client, scope: &Scope, covered: Covered, top: usize) -> anyhow::Result<Report> {
    client
        .execute("SELECT set_config('TimeZone', $1, false)", &[&covered.timezone])
        .await?;
    let received = base::received(client, scope).await?;
    let attempts = base::attempts(client, scope).await?;
    let (grand_totals, filter_hops) = totals::compute(client, scope, &received, &attempts).await?;
    let empty = received.is_empty() && attempts.is_empty();
    Ok(Report {
        empty,
        scope: covered,
        grand_totals,
        filter_hops,
        traffic: traffic::compute(client, scope).await?,
        summaries: domains::compute(&received, &attempts, top),
        problems: problems::compute(client, scope, top).await?,
        smtpd: smtpd::compute(client, scope, top).await?,
        diagnostics: diagnostics::compute(client, scope, top).await?,
    })
}

/// The report as text (pflogsumm's layout), JSON or HTML.
pub fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Text => text::render(report),
        Format::Html => html::render(report),
    })
}
