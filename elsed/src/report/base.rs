//! The two groupings most sections read: messages received and delivery attempts, grouped by
//! what the sections tell apart (address, client, status), so that a report reads each table once
//! and its totals, domain summaries and top lists come from the same numbers.

use tokio_postgres::Client;

use super::dedup;
use super::scope::{Params, Scope};

/// Messages that entered a server (smtpd, pickup) with the same sender, client and fate.
#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope sender as logged (`''` is the null sender); `None` when no `from=` line was seen.
    pub sender: Option<String>,
    pub origin: String,
    pub client_name: String,
    pub client_ip: String,
    /// A filter's re-injection of a message counted already.
    pub reinjected: bool,
    pub messages: i64,
    /// Messages of the group whose size is known (the queue manager's `from=… size=` line).
    pub sized: i64,
    pub bytes: i64,
}

/// Delivery attempts with the same recipient, daemon, relay and outcome.
#[derive(Debug, Clone)]
pub struct Attempts {
    pub recipient: String,
    pub status: String,
    /// `status=sent (forwarded as …)`: local(8) forwarded it to another address.
    pub forwarded: bool,
    /// Handed to a content filter on the same server ([`dedup::handoff`]); a local forward
    /// (`forwarded as`, also a hop to a new queue id) is not.
    pub handoff: bool,
    pub lines: i64,
    /// Sum of the message sizes, where known.
    pub bytes: i64,
    pub delay_sum: f64,
    pub delay_max: f64,
}

pub async fn received(client: &Client, scope: &Scope) -> anyhow::Result<Vec<Received>> {
    let mut params = Params::default();
    let filter = scope.filter(&mut params, &super::totals::received_columns());
    let sql = format!(
        "SELECT m.sender, m.origin, coalesce(m.client_name, ''), coalesce(host(m.client_ip), ''),
                {reinjected}, count(*), count(m.size), coalesce(sum(m.size), 0)::int8
         FROM messages m
         WHERE m.origin IN ('smtpd', 'pickup') AND {filter}
         GROUP BY 1, 2, 3, 4, 5",
        reinjected = dedup::reinjected("m"),
    );
    let rows = client.query(&sql, &params.as_refs()).await?;
    Ok(rows
        .iter()
        .map(|row| Received {
            sender: row.get(0),
            origin: row.get(1),
            client_name: row.get(2),
            client_ip: row.get(3),
            reinjected: row.get(4),
            messages: row.get(5),
            sized: row.get(6),
            bytes: row.get(7),
        })
        .collect())
}

pub async fn attempts(client: &Client, scope: &Scope) -> anyhow::Result<Vec<Attempts>> {
    let mut params = Params::default();
    let filter = scope.filter(&mut params, &super::totals::delivery_columns());
    let sql = format!(
        "SELECT d.recipient, d.status, {forwarded},
                NOT {forwarded} AND {handoff}, count(*), coalesce(sum(m.size), 0)::int8, sum(d.delay), max(d.delay)
         FROM deliveries d
         LEFT JOIN messages m ON m.uid = d.message_uid AND m.started_at = d.message_started_at
         WHERE d.status IN ('sent', 'deferred', 'bounced') AND {filter}
         GROUP BY 1, 2, 3, 4",
        handoff = dedup::handoff("d"),
        forwarded = dedup::forwarded("d"),
    );
    let rows = client.query(&sql, &params.as_refs()).await?;
    Ok(rows
        .iter()
        .map(|row| Attempts {
            recipient: row.get(0),
            status: row.get(1),
            forwarded: row.get(2),
            handoff: row.get(3),
            lines: row.get(4),
            bytes: row.get(5),
            delay_sum: row.get(6),
            delay_max: row.get(7),
        })
        .collect())
}
