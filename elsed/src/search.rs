//! `elsed search`: messages by sender, recipient, Message-ID, queue id, host, client, status and
//! time, with their recipients and the links to the other hops of their journey.
//!
//! Every value reaches PostgreSQL as a bound parameter; only the shape of the query is built here.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::Args;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Client;

use crate::access::Scope;
use crate::message_query::{
    self, entries_from_where, entries_page_from_where, statuses, EntryRow, FilterError, MessageFilter, MessageRow,
    RecipientRow, Refusal, SearchEntryKind, ServerRef, TextFilter,
};
use crate::{db, Settings};

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

/// One entry as `--json` prints it: a message, or mail refused before it was queued (`kind`
/// `refused`, queue id `NOQUEUE`, state `rejected`, the refused recipient, the reply in
/// `refusal`).
#[derive(Debug, Serialize)]
struct Found {
    kind: SearchEntryKind,
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
    state_reason: Option<String>,
    recipients: Vec<RecipientRow>,
    links: Vec<FoundLink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Refusal>,
    #[serde(skip)]
    key: MessageKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct MessageKey {
    uid: i64,
    server_id: i32,
}

#[derive(Debug, Serialize)]
struct FoundLink {
    kind: String,
    /// `to`: the hop after this message; `from`: the hop before it.
    direction: &'static str,
    host: Option<String>,
    queue_id: String,
}

/// What the options ask for.
fn build_filter(args: &SearchArgs, zone: &jiff::tz::TimeZone) -> anyhow::Result<MessageFilter> {
    let filter = MessageFilter {
        sender: args.sender.as_deref().map(TextFilter::is),
        recipient: args.recipient.as_deref().map(TextFilter::is),
        client: args.client.as_deref().map(TextFilter::is),
        message_id: args.message_id.as_deref().map(TextFilter::is),
        queue_id: args.queue_id.as_deref().map(TextFilter::is),
        server: args.host.clone().map(ServerRef::Name),
        status: args.status.clone(),
        since: args
            .since
            .as_deref()
            .map(|t| crate::time::parse_time(t, zone))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| crate::time::parse_time(t, zone))
            .transpose()?,
        ..Default::default()
    };
    // Checked now, before connecting: a bad value is the user's mistake, not the database's.
    entries_from_where(&Scope::All, &filter).map_err(option_error)?;
    Ok(filter)
}

/// A refused value, named as the option that gave it.
fn option_error(e: FilterError) -> anyhow::Error {
    anyhow::anyhow!("--{}: {}", e.field.replace('_', "-"), e.message)
}

pub async fn run(args: &SearchArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let zone = settings.timezone(None)?;
    let filter = build_filter(args, &zone)?;
    let client = db::connect(&settings.database()?).await?;
    db::require_schema(&client).await?;
    // A search is short but planned over every partition with high costs: JIT compiling it took
    // 4 s for a 5 ms search of a big domain (the web application's pool turns it off too).
    client.batch_execute("SET jit = off").await?;
    let found = search(&client, &filter, args.limit).await?;
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

/// The newest `limit` entries `filter` finds (messages and refused mail), with their recipients
/// and the messages' links.
async fn search(client: &Client, filter: &MessageFilter, limit: i64) -> anyhow::Result<Vec<Found>> {
    let order_by = "ORDER BY m.first_seen DESC, m.kind, m.uid";
    let mut filter = filter.clone();
    crate::recipient_lookup::choose(client, &mut filter, limit, true).await?;
    let (from_where, mut query) =
        entries_page_from_where(&Scope::All, &filter, order_by, limit).map_err(option_error)?;
    let limit = query.bind(limit);
    let sql = format!("SELECT {} {from_where} {order_by} LIMIT {limit}", EntryRow::COLUMNS);
    let entries: Vec<EntryRow> = client
        .query(&sql, &query.params())
        .await?
        .iter()
        .map(EntryRow::from_row)
        .collect();
    let messages: Vec<MessageRow> = entries
        .iter()
        .filter(|e| e.refusal.is_none())
        .map(|e| e.row.clone())
        .collect();
    // The command line is the administrator's: every recipient.
    let mut recipients = message_query::recipients(client, &Scope::All, &messages, None).await?;
    let mut found: Vec<Found> = entries
        .into_iter()
        .map(|entry| {
            let kind = entry.kind();
            let m = entry.row;
            let recipients = match &entry.refusal {
                None => recipients.remove(&m.uid).map(|(list, _)| list).unwrap_or_default(),
                Some(refusal) => refused_recipient(refusal, &m),
            };
            Found {
                kind,
                refusal: entry.refusal,
                key: MessageKey {
                    uid: m.uid,
                    server_id: m.server_id,
                },
                recipients,
                host: m.server,
                queue_id: m.queue_id,
                message_id: m.message_id,
                sender: m.sender,
                size: m.size,
                client_ip: m.client_ip,
                client_name: m.client_name,
                first_seen: m.first_seen,
                last_seen: m.last_seen,
                flow: m.flow,
                state: m.state,
                state_reason: m.state_reason,
                links: Vec::new(),
            }
        })
        .collect();
    add_links(client, &mut found).await?;
    Ok(found)
}

/// The recipient of a refused entry, as a recipient row: status `rejected`, the reply as its
/// DSN and text.
fn refused_recipient(refusal: &Refusal, entry: &MessageRow) -> Vec<RecipientRow> {
    let Some(address) = &refusal.recipient else {
        return Vec::new();
    };
    vec![RecipientRow {
        address: address.clone(),
        orig_address: None,
        status: entry.state.clone(),
        relay: None,
        dsn: refusal.enhanced.clone(),
        delay: None,
        status_text: Some(refusal.reply()),
        at: entry.first_seen,
    }]
}

/// Links from each message to the next hop (by its uid), and to it from the hop before (by its
/// host and queue id, near its lifetime: short queue ids are reused). Refused mail has none.
async fn add_links(client: &Client, found: &mut [Found]) -> anyhow::Result<()> {
    let messages: Vec<usize> = (0..found.len()).filter(|&i| found[i].refusal.is_none()).collect();
    if messages.is_empty() {
        return Ok(());
    }
    let uids: Vec<i64> = messages.iter().map(|&i| found[i].key.uid).collect();
    let index: HashMap<i64, usize> = messages.iter().map(|&i| (found[i].key.uid, i)).collect();
    let hosts: Vec<&str> = messages.iter().map(|&i| found[i].host.as_str()).collect();
    let queue_ids: Vec<&str> = messages.iter().map(|&i| found[i].queue_id.as_str()).collect();
    let first: Vec<Timestamp> = messages.iter().map(|&i| found[i].first_seen).collect();
    let last: Vec<Timestamp> = messages.iter().map(|&i| found[i].last_seen).collect();
    let server_ids: Vec<i32> = messages.iter().map(|&i| found[i].key.server_id).collect();
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
        let recipients = match (&f.refusal, f.recipients.as_slice()) {
            // Refused mail: who was refused, the reply, and the client it was given to.
            (Some(refusal), recipients) => format!(
                "{} ({}) client {}[{}]",
                recipients.first().map_or("-", |r| r.address.as_str()),
                refusal.reply(),
                f.client_name.as_deref().unwrap_or("unknown"),
                f.client_ip.as_deref().unwrap_or("?"),
            ),
            (None, []) => "-".to_owned(),
            (None, [one]) => format!("{} ({})", one.address, one.status),
            (None, [first, rest @ ..]) => format!("{} ({}) +{}", first.address, first.status, rest.len()),
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
    let refused = found.iter().filter(|f| f.refusal.is_some()).count();
    let _ = writeln!(out, "{} message(s), {refused} refused", found.len() - refused);
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

    /// The SQL the options give (messages, then refused mail).
    fn query(argv: &[&str]) -> anyhow::Result<String> {
        let wrapper = Wrapper::try_parse_from(std::iter::once("search").chain(argv.iter().copied()))?;
        let filter = build_filter(&wrapper.args, &jiff::tz::TimeZone::UTC)?;
        Ok(entries_from_where(&Scope::All, &filter)?.0)
    }

    #[test]
    fn options_become_the_shared_filter() {
        let sql = query(&["--sender", "@Example.com", "--host", "mx1", "--client", "192.0.2.0/24"]).unwrap();
        assert!(sql.contains("else_domain(m.sender) = $1"), "{sql}");
        assert!(sql.contains("m.client_ip <<= $2::text::inet"), "{sql}");
        assert!(sql.contains("lower(name) = lower($3)"), "{sql}");
        // The same question of the refused mail, with its own placeholders.
        assert!(sql.contains("else_domain(r.sender) = $4"), "{sql}");
        assert!(sql.contains("r.client_ip <<= $5::text::inet"), "{sql}");
        let error = query(&["--client", "not/a-network"]).err().unwrap().to_string();
        assert!(error.starts_with("--client:"), "{error}");
        assert!(query(&["--status", "lost"]).is_err());
        assert!(query(&["--since", "someday"]).is_err());
        // A queue id is a message's: the refused mail is not asked.
        assert!(!query(&["--queue-id", "3A1F42C0D1"]).unwrap().contains("rejects"));
        assert!(query(&["--status", "rejected"]).unwrap().contains("FROM rejects r"));
        assert!(!query(&["--status", "sent"]).unwrap().contains("rejects"));
    }
}
