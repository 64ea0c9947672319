//! `elsed search`: messages by sender, recipient, Message-ID, queue id, host, client, status and
//! time, with their recipients and the links to the other hops of their journey.
//!
//! Every value reaches PostgreSQL as a bound parameter; only the shape of the query is built here.

use std::collections::HashMap;
use std::net::IpAddr;
use std::process::ExitCode;

use clap::Args;
use omelse::parse::Timestamp;
use omelse::store;
use serde::Serialize;
use tokio_postgres::Client;

use crate::sql::Query;
use crate::{db, Settings};

/// Message states and recipient statuses, as the store writes them.
fn statuses() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = store::MESSAGE_STATES.to_vec();
    all.extend(
        store::RECIPIENT_STATUSES
            .iter()
            .filter(|s| !store::MESSAGE_STATES.contains(s)),
    );
    all
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Envelope sender (any case); `@example.com` for a whole domain, `<>` for bounces
    #[arg(long, value_name = "ADDRESS")]
    sender: Option<String>,
    /// Recipient or original recipient (any case); `@example.com` for a whole domain
    #[arg(long, value_name = "ADDRESS")]
    recipient: Option<String>,
    /// Message-ID, with or without angle brackets
    #[arg(long, value_name = "ID")]
    message_id: Option<String>,
    /// Postfix queue id
    #[arg(long, value_name = "ID")]
    queue_id: Option<String>,
    /// Server that logged the message
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Client IP address, network (192.0.2.0/24) or reverse name
    #[arg(long, value_name = "CLIENT")]
    client: Option<String>,
    /// State of the message or status of one of its recipients
    #[arg(long, value_name = "STATUS", value_parser = clap::builder::PossibleValuesParser::new(statuses()))]
    status: Option<String>,
    /// Messages still active at or after this time (RFC 3339, local `2024-03-14 10:00`, or an age: 2h, 7d)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Messages first seen before this time
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many messages, newest first
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    limit: i64,
    /// One JSON object per message instead of a table
    #[arg(long)]
    json: bool,
}

/// One message as `--json` prints it.
#[derive(Debug, Serialize)]
struct Found {
    host: String,
    queue_id: String,
    message_id: Option<String>,
    sender: Option<String>,
    size: Option<i64>,
    client_ip: Option<String>,
    client_name: Option<String>,
    first_seen: Timestamp,
    last_seen: Timestamp,
    flow: Option<String>,
    state: String,
    recipients: Vec<FoundRecipient>,
    links: Vec<FoundLink>,
    #[serde(skip)]
    key: MessageKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MessageKey {
    started_at: Timestamp,
    uid: i64,
    server_id: i32,
}

#[derive(Debug, Serialize)]
struct FoundRecipient {
    address: String,
    orig_address: Option<String>,
    status: String,
    relay: Option<String>,
    dsn: Option<String>,
    delay: Option<f64>,
    status_text: Option<String>,
    /// The last attempt (or when the recipient was known, before any).
    at: Timestamp,
}

#[derive(Debug, Serialize)]
struct FoundLink {
    kind: String,
    /// `to`: the hop after this message; `from`: the hop before it.
    direction: &'static str,
    host: Option<String>,
    queue_id: String,
}

/// `@example.com` → the domain; otherwise the address without angle brackets.
enum AddressPattern {
    Domain(String),
    Exact(String),
}

fn address_pattern(text: &str) -> AddressPattern {
    let text = text.trim();
    match text.strip_prefix('@') {
        Some(domain) => AddressPattern::Domain(domain.to_lowercase()),
        None => AddressPattern::Exact(strip_angles(text).to_owned()),
    }
}

fn strip_angles(text: &str) -> &str {
    text.strip_prefix('<').and_then(|t| t.strip_suffix('>')).unwrap_or(text)
}

/// The WHERE clause of the message query.
fn build_query(args: &SearchArgs, zone: &jiff::tz::TimeZone) -> anyhow::Result<Query> {
    let mut q = Query::default();
    if let Some(sender) = &args.sender {
        let condition = match address_pattern(sender) {
            AddressPattern::Domain(domain) => format!("else_domain(m.sender) = {}", q.bind(domain)),
            AddressPattern::Exact(address) => {
                format!("lower(m.sender) = lower({})", q.bind(address))
            }
        };
        q.conditions.push(condition);
    }
    if let Some(recipient) = &args.recipient {
        let matches = match address_pattern(recipient) {
            AddressPattern::Domain(domain) => {
                let p = q.bind(domain);
                format!("else_domain(r.address) = {p} OR else_domain(r.orig_address) = {p}")
            }
            AddressPattern::Exact(address) => {
                let p = q.bind(address);
                format!("lower(r.address) = lower({p}) OR lower(r.orig_address) = lower({p})")
            }
        };
        q.conditions.push(format!(
            "EXISTS (SELECT 1 FROM recipients r
                     WHERE r.message_started_at = m.started_at AND r.message_uid = m.uid AND ({matches}))"
        ));
    }
    if let Some(id) = &args.message_id {
        let condition = format!("m.message_id = {}", q.bind(strip_angles(id.trim()).to_owned()));
        q.conditions.push(condition);
    }
    if let Some(id) = &args.queue_id {
        let condition = format!("m.queue_id = {}", q.bind(id.trim().to_owned()));
        q.conditions.push(condition);
    }
    if let Some(host) = &args.host {
        let condition = format!("lower(s.name) = lower({})", q.bind(host.trim().to_owned()));
        q.conditions.push(condition);
    }
    if let Some(client) = &args.client {
        let client = client.trim();
        let condition = if let Ok(ip) = client.parse::<IpAddr>() {
            format!("m.client_ip = {}", q.bind(ip))
        } else if client.contains('/') {
            anyhow::ensure!(
                is_network(client),
                "--client {client}: not an address, a network or a name"
            );
            format!("m.client_ip <<= {}::text::inet", q.bind(client.to_owned()))
        } else {
            format!("lower(m.client_name) = lower({})", q.bind(client.to_owned()))
        };
        q.conditions.push(condition);
    }
    if let Some(status) = &args.status {
        let p = q.bind(status.clone());
        q.conditions.push(format!(
            "(m.state = {p} OR EXISTS (SELECT 1 FROM recipients r
                     WHERE r.message_started_at = m.started_at AND r.message_uid = m.uid AND r.status = {p}))"
        ));
    }
    if let Some(since) = &args.since {
        let since = crate::time::parse_time(since, zone)?;
        let condition = format!("m.last_seen >= {}", q.bind(since));
        q.conditions.push(condition);
    }
    if let Some(until) = &args.until {
        let until = crate::time::parse_time(until, zone)?;
        let condition = format!("m.first_seen < {}", q.bind(until));
        q.conditions.push(condition);
    }
    Ok(q)
}

/// `192.0.2.0/24`, `2001:db8::/32`: checked here so that PostgreSQL never sees a bad cast.
fn is_network(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

pub async fn run(args: &SearchArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let zone = settings.timezone(None)?;
    let query = build_query(args, &zone)?;
    let client = db::connect(settings).await?;
    db::require_schema(&client).await?;
    let found = search(&client, query, args.limit).await?;
    let mut out = String::new();
    if args.json {
        for message in &found {
            out.push_str(&serde_json::to_string(message)?);
            out.push('\n');
        }
    } else {
        out = render_table(&found, &zone);
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}

async fn search(client: &Client, mut query: Query, limit: i64) -> anyhow::Result<Vec<Found>> {
    let filter = if query.conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", query.conditions.join(" AND "))
    };
    let limit = query.bind(limit);
    let sql = format!(
        "SELECT m.started_at, m.uid, m.server_id, s.name, m.queue_id, m.message_id, m.sender, m.size,
                host(m.client_ip), m.client_name, m.first_seen, m.last_seen, m.flow, m.state
         FROM messages m JOIN servers s ON s.id = m.server_id
         {filter}
         ORDER BY m.first_seen DESC, m.uid
         LIMIT {limit}"
    );
    let rows = client.query(&sql, &query.params()).await?;
    let mut found: Vec<Found> = rows
        .iter()
        .map(|row| Found {
            key: MessageKey {
                started_at: row.get(0),
                uid: row.get(1),
                server_id: row.get(2),
            },
            host: row.get(3),
            queue_id: row.get(4),
            message_id: row.get(5),
            sender: row.get(6),
            size: row.get(7),
            client_ip: row.get(8),
            client_name: row.get(9),
            first_seen: row.get(10),
            last_seen: row.get(11),
            flow: row.get(12),
            state: row.get(13),
            recipients: Vec::new(),
            links: Vec::new(),
        })
        .collect();
    if found.is_empty() {
        return Ok(found);
    }
    add_recipients(client, &mut found).await?;
    add_links(client, &mut found).await?;
    Ok(found)
}

async fn add_recipients(client: &Client, found: &mut [Found]) -> anyhow::Result<()> {
    let started: Vec<Timestamp> = found.iter().map(|f| f.key.started_at).collect();
    let uids: Vec<i64> = found.iter().map(|f| f.key.uid).collect();
    let index: HashMap<i64, usize> = uids.iter().enumerate().map(|(i, &uid)| (uid, i)).collect();
    let rows = client
        .query(
            "SELECT r.message_uid, r.address, r.orig_address, r.status, r.relay, r.dsn, r.delay, r.status_text,
                    r.last_attempt_at
             FROM unnest($1::timestamptz[], $2::bigint[]) AS k(started_at, uid)
             JOIN recipients r ON r.message_started_at = k.started_at AND r.message_uid = k.uid
             ORDER BY r.message_uid, r.last_attempt_at, r.address",
            &[&started, &uids],
        )
        .await?;
    for row in rows {
        let Some(&i) = index.get(&row.get::<_, i64>(0)) else {
            continue;
        };
        found[i].recipients.push(FoundRecipient {
            address: row.get(1),
            orig_address: row.get(2),
            status: row.get(3),
            relay: row.get(4),
            dsn: row.get(5),
            delay: row.get(6),
            status_text: row.get(7),
            at: row.get(8),
        });
    }
    Ok(())
}

/// Links from each message to the next hop (by its uid), and to it from the hop before (by its
/// host and queue id, near its lifetime: short queue ids are reused).
async fn add_links(client: &Client, found: &mut [Found]) -> anyhow::Result<()> {
    let uids: Vec<i64> = found.iter().map(|f| f.key.uid).collect();
    let index: HashMap<i64, usize> = uids.iter().enumerate().map(|(i, &uid)| (uid, i)).collect();
    let hosts: Vec<&str> = found.iter().map(|f| f.host.as_str()).collect();
    let queue_ids: Vec<&str> = found.iter().map(|f| f.queue_id.as_str()).collect();
    let first: Vec<Timestamp> = found.iter().map(|f| f.first_seen).collect();
    let last: Vec<Timestamp> = found.iter().map(|f| f.last_seen).collect();
    let server_ids: Vec<i32> = found.iter().map(|f| f.key.server_id).collect();
    let rows = client
        .query(
            "SELECT l.from_uid, l.kind, 'to', l.to_host, l.to_queue_id, l.ts
             FROM links l WHERE l.from_uid = ANY($1)
             UNION ALL
             SELECT k.uid, l.kind, 'from', fs.name, l.from_queue_id, l.ts
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int[])
                  AS k(uid, host, queue_id, first_seen, last_seen, server_id)
             JOIN links l ON l.to_queue_id = k.queue_id
                  AND l.ts >= k.first_seen - interval '1 hour' AND l.ts <= k.last_seen + interval '1 hour'
                  AND (lower(l.to_host) = lower(k.host) OR (l.to_host IS NULL AND l.from_server_id = k.server_id))
             JOIN servers fs ON fs.id = l.from_server_id
             ORDER BY 6, 2",
            &[&uids, &hosts, &queue_ids, &first, &last, &server_ids],
        )
        .await?;
    for row in rows {
        let Some(&i) = row.get::<_, Option<i64>>(0).and_then(|uid| index.get(&uid)) else {
            continue;
        };
        let direction = if row.get::<_, &str>(2) == "to" { "to" } else { "from" };
        found[i].links.push(FoundLink {
            kind: row.get(1),
            direction,
            host: row.get(3),
            queue_id: row.get(4),
        });
    }
    Ok(())
}

/// A compact table for people: one line per message, times in the configured zone.
fn render_table(found: &[Found], zone: &jiff::tz::TimeZone) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<19}  {:<12}  {:<14}  {:<10}  {:<9}  SENDER -> RECIPIENTS",
        "FIRST SEEN", "HOST", "QUEUE ID", "STATE", "FLOW"
    );
    for f in found {
        let time = f
            .first_seen
            .to_jiff()
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string();
        let sender = match f.sender.as_deref() {
            Some("") => "<>",
            Some(sender) => sender,
            None => "?",
        };
        let recipients = match f.recipients.as_slice() {
            [] => "-".to_owned(),
            [one] => format!("{} ({})", one.address, one.status),
            [first, rest @ ..] => format!("{} ({}) +{}", first.address, first.status, rest.len()),
        };
        let _ = writeln!(
            out,
            "{time:<19}  {:<12}  {:<14}  {:<10}  {:<9}  {sender} -> {recipients}",
            f.host,
            f.queue_id,
            f.state,
            f.flow.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(out, "{} message(s)", found.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: SearchArgs,
    }

    fn query(argv: &[&str]) -> anyhow::Result<Query> {
        let wrapper = Wrapper::try_parse_from(std::iter::once("search").chain(argv.iter().copied()))?;
        build_query(&wrapper.args, &jiff::tz::TimeZone::UTC)
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let q = query(&[
            "--sender",
            "x'; DROP TABLE messages; --@Example.com",
            "--client",
            "192.0.2.0/24",
        ])
        .unwrap();
        let sql = q.conditions.join(" AND ");
        assert!(!sql.contains("DROP"), "{sql}");
        assert_eq!(q.params.len(), 2);
        assert!(
            sql.contains("lower(m.sender) = lower($1)") && sql.contains("m.client_ip <<= $2::text::inet"),
            "{sql}"
        );
    }

    #[test]
    fn forms_of_each_filter() {
        let q = query(&[
            "--recipient",
            "@Example.COM",
            "--message-id",
            "<a@b>",
            "--status",
            "bounced",
        ])
        .unwrap();
        let sql = q.conditions.join(" AND ");
        assert!(sql.contains("else_domain(r.address) = $1"), "{sql}");
        assert_eq!(format!("{:?}", q.params[0]), "\"example.com\"");
        assert_eq!(format!("{:?}", q.params[1]), "\"a@b\"");
        assert!(query(&["--client", "not/a-network"]).is_err());
        assert!(query(&["--status", "lost"]).is_err());
        assert!(query(&["--since", "someday"]).is_err());
        assert!(query(&[]).unwrap().conditions.is_empty());
    }
}
