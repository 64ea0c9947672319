//! Grand totals, with pflogsumm's definitions (see its source): "received" is a message that
//! entered through smtpd or pickup, "delivered" a `status=sent` line that is not a forward,
//! "deferred" a message with at least one deferral, "bounced" a `status=bounced` line, "rejected"
//! a reject line (NOQUEUE or header/body/milter); senders and recipients are distinct addresses.
//! Unlike pflogsumm, a message re-injected by a content filter is received and delivered once.

use std::collections::HashSet;

use serde::Serialize;
use tokio_postgres::Client;

use super::base::{Attempts, Received};
use super::names;
use super::scope::{Columns, Params, Scope};
use crate::access;

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub received: i64,
    pub delivered: i64,
    pub forwarded: i64,
    /// Messages with at least one deferral.
    pub deferred: i64,
    /// Deferral lines.
    pub deferrals: i64,
    pub bounced: i64,
    pub rejected: i64,
    /// Of delivered + rejected + discarded, truncated (as pflogsumm prints it).
    pub rejected_percent: i64,
    pub reject_warnings: i64,
    pub held: i64,
    pub discarded: i64,
    pub discarded_percent: i64,
    pub bytes_received: i64,
    pub bytes_delivered: i64,
    pub senders: i64,
    pub sending_domains: i64,
    pub recipients: i64,
    pub recipient_domains: i64,
}

/// What pflogsumm would add to the totals by counting each content-filter hop as traffic.
#[derive(Debug, Default, Serialize)]
pub struct FilterHops {
    /// Re-injections by a filter (received a second time).
    pub reinjected: i64,
    pub bytes_reinjected: i64,
    /// Deliveries into a filter (delivered a first time).
    pub handed_to_filter: i64,
    pub bytes_handed_to_filter: i64,
}

/// The sender's "host/domain" of a received message: its domain, else (null sender, bare name)
/// the client's domain, or the address itself for a local submission.
pub fn sending_domain(group: &Received, address: &str) -> String {
    match names::address_domain(address) {
        Some(domain) => domain.to_owned(),
        None if group.origin == "pickup" => address.to_owned(),
        None => names::client_domain(&group.client_name, &group.client_ip),
    }
}

pub async fn compute(
    client: &Client,
    scope: &Scope,
    received: &[Received],
    attempts: &[Attempts],
) -> anyhow::Result<(Totals, FilterHops)> {
    let mut totals = Totals::default();
    let mut hops = FilterHops::default();
    let (mut senders, mut sending_domains) = (HashSet::new(), HashSet::new());
    for group in received {
        if group.reinjected {
            hops.reinjected += group.messages;
            hops.bytes_reinjected += group.bytes;
            continue;
        }
        totals.received += group.messages;
        totals.bytes_received += group.bytes;
        // pflogsumm knows a sender from the queue manager's `from=` line only.
        if let (Some(sender), true) = (&group.sender, group.sized > 0) {
            let address = names::address(sender);
            sending_domains.insert(sending_domain(group, &address));
            senders.insert(address);
        }
    }
    let (mut recipients, mut recipient_domains) = (HashSet::new(), HashSet::new());
    for group in attempts {
        match group.status.as_str() {
            "sent" if group.handoff => {
                hops.handed_to_filter += group.lines;
                hops.bytes_handed_to_filter += group.bytes;
            }
            "sent" if group.forwarded => totals.forwarded += group.lines,
            "sent" => {
                totals.delivered += group.lines;
                totals.bytes_delivered += group.bytes;
                let address = names::address(&group.recipient);
                recipient_domains.insert(names::recipient_domain(&address).to_owned());
                recipients.insert(address);
            }
            "deferred" => totals.deferrals += group.lines,
            "bounced" => totals.bounced += group.lines,
            _ => {}
        }
    }
    totals.senders = senders.len() as i64;
    totals.sending_domains = sending_domains.len() as i64;
    totals.recipients = recipients.len() as i64;
    totals.recipient_domains = recipient_domains.len() as i64;
    totals.deferred = deferred_messages(client, scope).await?;
    for (action, count) in policy_actions(client, scope).await? {
        match action.as_str() {
            "reject" => totals.rejected = count,
            "warn" => totals.reject_warnings = count,
            "hold" => totals.held = count,
            "discard" => totals.discarded = count,
            _ => {}
        }
    }
    let refused_or_delivered = totals.delivered + totals.rejected + totals.discarded;
    if refused_or_delivered > 0 {
        totals.rejected_percent = totals.rejected * 100 / refused_or_delivered;
        totals.discarded_percent = totals.discarded * 100 / refused_or_delivered;
    }
    Ok((totals, hops))
}

async fn deferred_messages(client: &Client, scope: &Scope) -> anyhow::Result<i64> {
    let mut params = Params::default();
    let filter = scope.filter(&mut params, &delivery_columns());
    let sql = format!(
        "SELECT count(DISTINCT d.message_uid) FROM deliveries d
         LEFT JOIN messages m ON m.uid = d.message_uid AND m.started_at = d.message_started_at
         WHERE d.status = 'deferred' AND {filter}"
    );
    Ok(client.query_one(&sql, &params.as_refs()).await?.get(0))
}

/// Rejects, reject warnings, holds and discards.
async fn policy_actions(client: &Client, scope: &Scope) -> anyhow::Result<Vec<(String, i64)>> {
    let mut params = Params::default();
    let filter = scope.filter(&mut params, &reject_columns());
    let sql = format!(
        "SELECT r.action, count(*) FROM rejects r
         WHERE r.action IN ('reject', 'warn', 'hold', 'discard') AND {filter} GROUP BY 1"
    );
    let rows = client.query(&sql, &params.as_refs()).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A received message is in a domain when one of its recipients is, or its sender when the way
/// it came in vouches for it (the sender is forgeable: [`crate::access::sender_vouched`]).
pub fn received_columns() -> Columns<'static> {
    Columns {
        time: "m.first_seen",
        server: "m.server_id",
        domain: Some(format!(
            "(else_domain(m.sender) = {{d}} AND {}) OR EXISTS (SELECT 1 FROM recipients r
               WHERE r.message_uid = m.uid AND r.message_started_at = m.started_at
                 AND else_domain(r.address) = {{d}})",
            access::sender_vouched("m")
        )),
    }
}

pub fn delivery_columns() -> Columns<'static> {
    Columns {
        time: "d.ts",
        server: "d.server_id",
        domain: Some(format!(
            "else_domain(d.recipient) = {{d}} OR (else_domain(m.sender) = {{d}} AND {})",
            access::sender_vouched("m")
        )),
    }
}

pub fn reject_columns() -> Columns<'static> {
    Columns {
        time: "r.ts",
        server: "r.server_id",
        domain: Some(format!(
            "(else_domain(r.sender) = {{d}} AND {}) OR else_domain(r.recipient) = {{d}}",
            access::reject_sender_vouched("r")
        )),
    }
}
