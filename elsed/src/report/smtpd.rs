//! smtpd connection statistics: how many sessions, how long, per day, hour and client domain
//! (pflogsumm's `--smtpd-stats`). A session counts when its disconnect was seen, at that time.
//! Every smtpd service counts, a content filter's re-injection listener too: its connections are
//! load on the server (pflogsumm reads only `postfix/smtpd`, `smtps/smtpd` and `submission/smtpd`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use tokio_postgres::Client;

use super::domains::truncate;
use super::names;
use super::scope::{Columns, Params, Scope};

#[derive(Debug, Default, Clone, Serialize)]
pub struct Connections {
    pub connections: i64,
    pub total_seconds: f64,
    pub max_seconds: f64,
}

impl Connections {
    fn add(&mut self, count: i64, seconds: f64, max: f64) {
        self.connections += count;
        self.total_seconds += seconds;
        self.max_seconds = self.max_seconds.max(max);
    }
}

#[derive(Debug, Serialize)]
pub struct Keyed {
    /// A date (`YYYY-MM-DD`), an hour (`1300-1400`) or a client domain.
    pub key: String,
    #[serde(flatten)]
    pub connections: Connections,
}

#[derive(Debug, Serialize)]
pub struct SmtpdStats {
    #[serde(flatten)]
    pub total: Connections,
    /// Distinct client domains.
    pub hosts: i64,
    pub per_day: Vec<Keyed>,
    pub per_hour: Vec<Keyed>,
    pub per_domain: Vec<Keyed>,
}

pub async fn compute(client: &Client, scope: &Scope, top: usize) -> anyhow::Result<SmtpdStats> {
    let mut params = Params::default();
    let filter = scope.filter(
        &mut params,
        &Columns {
            time: "s.disconnected_at",
            server: "s.server_id",
            domain: None,
        },
    );
    let sql = format!(
        "SELECT to_char(s.disconnected_at, 'YYYY-MM-DD'), extract(hour FROM s.disconnected_at)::int4,
                coalesce(s.client_name, ''), coalesce(host(s.client_ip), ''), count(*),
                sum(extract(epoch FROM s.disconnected_at - s.connected_at))::float8,
                max(extract(epoch FROM s.disconnected_at - s.connected_at))::float8
         FROM sessions s
         WHERE s.disconnected_at IS NOT NULL AND s.program LIKE '%smtpd' AND {filter}
         GROUP BY 1, 2, 3, 4"
    );
    let mut total = Connections::default();
    let mut days: BTreeMap<String, Connections> = BTreeMap::new();
    let mut hours: BTreeMap<i32, Connections> = BTreeMap::new();
    let mut domains: HashMap<String, Connections> = HashMap::new();
    for row in client.query(&sql, &params.as_refs()).await? {
        let (count, seconds, max): (i64, f64, f64) = (row.get(4), row.get(5), row.get(6));
        let domain = names::client_domain(row.get(2), row.get(3));
        total.add(count, seconds, max);
        days.entry(row.get(0)).or_default().add(count, seconds, max);
        hours.entry(row.get(1)).or_default().add(count, seconds, max);
        domains.entry(domain).or_default().add(count, seconds, max);
    }
    let hosts = domains.keys().collect::<HashSet<_>>().len() as i64;
    let mut per_domain: Vec<Keyed> = domains
        .into_iter()
        .map(|(key, connections)| Keyed { key, connections })
        .collect();
    per_domain.sort_by(|a, b| (b.connections.connections, &a.key).cmp(&(a.connections.connections, &b.key)));
    truncate(&mut per_domain, top);
    let keyed = |(key, connections): (String, Connections)| Keyed { key, connections };
    Ok(SmtpdStats {
        total,
        hosts,
        per_day: days.into_iter().map(keyed).collect(),
        per_hour: hours
            .into_iter()
            .map(|(h, c)| keyed((format!("{h:02}00-{:02}00", h + 1), c)))
            .collect(),
        per_domain,
    })
}
