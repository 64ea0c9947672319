//! Per-day and per-hour traffic: received, delivered, deferred, bounced, rejected, in the report's
//! time zone (pflogsumm's "Per-Day Traffic Summary" and "Per-Hour Traffic Daily Average").

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::dedup;
use super::scope::{Params, Scope};
use super::totals::{delivery_columns, received_columns, reject_columns};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub received: i64,
    pub delivered: i64,
    pub deferred: i64,
    pub bounced: i64,
    /// Rejects, reject warnings, holds and discards, as pflogsumm counts them here.
    pub rejected: i64,
}

#[derive(Debug, Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`
    pub date: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize)]
pub struct Hour {
    pub hour: u32,
    /// Sums over the days of the report.
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize)]
pub struct Traffic {
    pub days: Vec<Day>,
    /// All 24 hours, summed over the days (divide by `days.len()` for pflogsumm's daily average).
    pub hours: Vec<Hour>,
}

pub async fn compute(client: &Client, scope: &Scope) -> anyhow::Result<Traffic> {
    let mut params = Params::default();
    let received = scope.filter(&mut params, &received_columns());
    let deliveries = scope.filter(&mut params, &delivery_columns());
    let rejects = scope.filter(&mut params, &reject_columns());
    let sql = format!(
        "SELECT to_char(t, 'YYYY-MM-DD'), extract(hour FROM t)::int4, metric, count(*) FROM (
            SELECT m.first_seen AS t, 'received' AS metric FROM messages m
            WHERE m.origin IN ('smtpd', 'pickup') AND NOT {reinjected} AND {received}
          UNION ALL
            SELECT d.ts, d.status FROM deliveries d
            LEFT JOIN messages m ON m.uid = d.message_uid AND m.started_at = d.message_started_at
            WHERE d.status IN ('sent', 'deferred', 'bounced') AND {deliveries}
              AND NOT ({forwarded} OR (d.status = 'sent' AND {handoff}))
          UNION ALL
            SELECT r.ts, 'rejected' FROM rejects r
            WHERE r.action IN ('reject', 'warn', 'hold', 'discard') AND {rejects}
         ) x GROUP BY 1, 2, 3",
        reinjected = dedup::reinjected("m"),
        handoff = dedup::handoff("d"),
        forwarded = dedup::forwarded("d"),
    );
    let mut days: BTreeMap<String, Counts> = BTreeMap::new();
    let mut hours = vec![Counts::default(); 24];
    for row in client.query(&sql, &params.as_refs()).await? {
        let (date, hour, metric, count): (String, i32, String, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        for counts in [days.entry(date).or_default(), &mut hours[hour as usize]] {
            match metric.as_str() {
                "received" => counts.received += count,
                "sent" => counts.delivered += count,
                "deferred" => counts.deferred += count,
                "bounced" => counts.bounced += count,
                _ => counts.rejected += count,
            }
        }
    }
    Ok(Traffic {
        days: days.into_iter().map(|(date, counts)| Day { date, counts }).collect(),
        hours: hours
            .into_iter()
            .enumerate()
            .map(|(hour, counts)| Hour {
                hour: hour as u32,
                counts,
            })
            .collect(),
    })
}
