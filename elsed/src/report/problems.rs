//! Deferral, bounce and reject detail: what went wrong, how often, grouped the way an
//! administrator acts on it (pflogsumm's "message deferral/bounce/reject detail").

use serde::Serialize;
use tokio_postgres::Client;

use super::domains::truncate;
use super::scope::{Params, Scope};
use super::totals::{delivery_columns, reject_columns};

/// Deferrals by delivery agent and reason, bounces by relay and reason.
#[derive(Debug, Serialize)]
pub struct Failure {
    /// The delivery agent (deferrals) or the relay (bounces).
    pub by: String,
    pub reason: String,
    pub count: i64,
}

/// Rejects, warnings, holds and discards by the SMTP stage or check and the reason.
#[derive(Debug, Serialize)]
pub struct Refusal {
    /// `reject`, `warn`, `hold`, `discard`.
    pub action: String,
    /// `RCPT`, `CONNECT`, `header`, `body`, `END-OF-MESSAGE` …
    pub stage: String,
    pub code: Option<i32>,
    pub reason: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct Problems {
    pub deferrals: Vec<Failure>,
    pub bounces: Vec<Failure>,
    pub refusals: Vec<Refusal>,
}

pub async fn compute(client: &Client, scope: &Scope, top: usize) -> anyhow::Result<Problems> {
    let mut deferrals = failures(client, scope, "deferred", "d.daemon").await?;
    let mut bounces = failures(client, scope, "bounced", "d.relay").await?;
    truncate(&mut deferrals, top);
    truncate(&mut bounces, top);
    let mut params = Params::default();
    let filter = scope.filter(&mut params, &reject_columns());
    let sql = format!(
        "SELECT r.action, CASE WHEN r.source IN ('header', 'body') THEN r.source ELSE r.stage END,
                r.code, r.reason, count(*)
         FROM rejects r WHERE r.action IN ('reject', 'warn', 'hold', 'discard') AND {filter}
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 5 DESC, 4"
    );
    let mut refusals: Vec<Refusal> = client
        .query(&sql, &params.as_refs())
        .await?
        .iter()
        .map(|r| Refusal {
            action: r.get(0),
            stage: r.get(1),
            code: r.get(2),
            reason: r.get(3),
            count: r.get(4),
        })
        .collect();
    truncate(&mut refusals, top);
    Ok(Problems {
        deferrals,
        bounces,
        refusals,
    })
}

async fn failures(client: &Client, scope: &Scope, status: &str, by: &str) -> anyhow::Result<Vec<Failure>> {
    let mut params = Params::default();
    let filter = scope.filter(&mut params, &delivery_columns());
    let status = params.bind(status.to_owned());
    let sql = format!(
        "SELECT {by}, d.status_text, count(*) FROM deliveries d
         LEFT JOIN messages m ON m.uid = d.message_uid AND m.started_at = d.message_started_at
         WHERE d.status = {status} AND {filter}
         GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"
    );
    Ok(client
        .query(&sql, &params.as_refs())
        .await?
        .iter()
        .map(|r| Failure {
            by: r.get(0),
            reason: r.get(1),
            count: r.get(2),
        })
        .collect())
}
