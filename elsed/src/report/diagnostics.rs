//! Warnings, fatal errors and panics Postfix logged, by daemon and text: the lines that say the
//! mail system itself has a problem. Not scoped by domain (they concern the server).

use serde::Serialize;
use tokio_postgres::Client;

use super::domains::truncate;
use super::scope::{Columns, Params, Scope};

#[derive(Debug, Serialize)]
pub struct Diagnostic {
    /// `warning`, `fatal`, `panic`.
    pub severity: String,
    /// The daemon (`smtpd`, `postscreen` …), without the instance or service prefix.
    pub daemon: String,
    pub text: String,
    pub count: i64,
}

pub async fn compute(client: &Client, scope: &Scope, top: usize) -> anyhow::Result<Vec<Diagnostic>> {
    let mut params = Params::default();
    let filter = scope.filter(
        &mut params,
        &Columns {
            time: "e.ts",
            server: "e.server_id",
            domain: None,
        },
    );
    let sql = format!(
        "SELECT substring(e.raw FROM '^(warning|fatal|panic):'), regexp_replace(e.program, '^.*/', ''),
                substring(e.raw FROM '^[a-z]+: (.*)$'), count(*)
         FROM log_events e
         WHERE e.raw ~ '^(warning|fatal|panic): ' AND e.program LIKE 'postfix%' AND {filter}
         GROUP BY 1, 2, 3
         ORDER BY CASE substring(e.raw FROM '^(warning|fatal|panic):') WHEN 'panic' THEN 0 WHEN 'fatal' THEN 1 ELSE 2 END,
                  4 DESC, 2, 3"
    );
    let mut list: Vec<Diagnostic> = client
        .query(&sql, &params.as_refs())
        .await?
        .iter()
        .map(|r| Diagnostic {
            severity: r.get(0),
            daemon: r.get(1),
            text: r.get(2),
            count: r.get(3),
        })
        .collect();
    truncate(&mut list, top);
    Ok(list)
}
