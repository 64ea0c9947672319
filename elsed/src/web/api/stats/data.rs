//! The data of each statistics endpoint, from the rollups only: `traffic_hourly` for the series
//! and totals, `stats_daily` + `stats_hourly` for everything counted by a key. Each function takes
//! a [`Filter`] already narrowed to the caller's scope.

use std::collections::BTreeMap;
use std::net::IpAddr;

use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Client;

use super::filter::Filter;
use crate::sql::Query;
use crate::web::error::ApiResult;

/// Counts of one bucket of time, or of the whole range.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = TrafficCounts)]
pub struct Counts {
    pub received: i64,
    pub delivered: i64,
    pub forwarded: i64,
    /// Deferral attempts (the report's `deferrals`; its `deferred` counts distinct messages).
    pub deferred: i64,
    pub bounced: i64,
    pub rejected: i64,
    pub expired: i64,
    pub bytes_received: i64,
    pub bytes_delivered: i64,
}

impl Counts {
    fn add(&mut self, metric: &str, messages: i64, bytes: i64) {
        match metric {
            "received" => {
                self.received += messages;
                self.bytes_received += bytes;
            }
            "delivered" => {
                self.delivered += messages;
                self.bytes_delivered += bytes;
            }
            "forwarded" => self.forwarded += messages,
            "deferred" => self.deferred += messages,
            "bounced" => self.bounced += messages,
            "rejected" => self.rejected += messages,
            "expired" => self.expired += messages,
            _ => {}
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Point {
    #[schema(value_type = String, format = DateTime)]
    pub t: Timestamp,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Traffic {
    /// hour or day.
    pub bucket: &'static str,
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub until: Timestamp,
    pub series: Vec<Point>,
    pub totals: Counts,
}

/// `/stats/traffic`: one point per hour or UTC day of the range (empty ones included).
pub async fn traffic(client: &Client, filter: &Filter, bucket: &'static str) -> ApiResult<Traffic> {
    let mut q = Query::default();
    let (since, until) = (q.bind(filter.since), q.bind(filter.until));
    let unit = q.bind(bucket.to_owned());
    let rows = filter.rows(&mut q, "t", true);
    let sql = format!(
        "SELECT date_trunc({unit}::text, t.hour, 'UTC'), t.metric, sum(t.messages)::int8, sum(t.bytes)::int8
         FROM traffic_hourly t
         WHERE t.hour >= {since} AND t.hour < {until} AND {rows}
         GROUP BY 1, 2"
    );
    let step = if bucket == "day" { 86_400_000_000 } else { 3_600_000_000 };
    let first = filter.since.0.div_euclid(step) * step;
    let mut points: BTreeMap<i64, Counts> = (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t < filter.until.0)
        .map(|t| (t, Counts::default()))
        .collect();
    let mut totals = Counts::default();
    for row in client.query(&sql, &q.params()).await? {
        let (t, metric, messages, bytes): (Timestamp, String, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        points.entry(t.0).or_default().add(&metric, messages, bytes);
        totals.add(&metric, messages, bytes);
    }
    Ok(Traffic {
        bucket,
        since: filter.since,
        until: filter.until,
        series: points
            .into_iter()
            .map(|(t, counts)| Point {
                t: Timestamp(t),
                counts,
            })
            .collect(),
        totals,
    })
}

/// One key of a keyed rollup and its sums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Keyed {
    pub key: String,
    pub messages: i64,
    pub bytes: i64,
}

/// Sums of a `kind` of `stats_daily`/`stats_hourly` over the filter, by key, largest first
/// (`by_bytes`: by bytes), at most `limit` keys (all with `None`). The rollups keep each hour's
/// top [`omelse::store::KEYS_PER_HOUR`] and each past day's top [`omelse::store::KEYS_PER_DAY`]
/// keys per server, flow and domain: a key's count leaves out the hours it was not among them.
pub async fn keyed(
    client: &Client,
    filter: &Filter,
    kind: &str,
    has_domains: bool,
    by_bytes: bool,
    limit: Option<i64>,
) -> ApiResult<Vec<Keyed>> {
    let mut q = Query::default();
    let k = q.bind(kind.to_owned());
    // A past day's keys beyond its top ones are summed under OTHER_KEY: not a key to list.
    let other = q.bind(omelse::store::OTHER_KEY.to_owned());
    let (days, hours) = filter.day_and_hours(&mut q, "t.day", "t.hour");
    let daily_rows = filter.rows(&mut q, "t", has_domains);
    let hourly_rows = filter.rows(&mut q, "t", has_domains);
    let limit = match limit {
        Some(n) => format!("LIMIT {}", q.bind(n)),
        None => String::new(),
    };
    let order = if by_bytes { "3 DESC, 2 DESC" } else { "2 DESC, 3 DESC" };
    let sql = format!(
        "SELECT key, sum(messages)::int8, sum(bytes)::int8 FROM (
             SELECT t.key, t.messages, t.bytes FROM stats_daily t WHERE t.kind = {k} AND {days} AND {daily_rows}
             UNION ALL
             SELECT t.key, t.messages, t.bytes FROM stats_hourly t WHERE t.kind = {k} AND {hours} AND {hourly_rows}
         ) x WHERE key <> {other} GROUP BY key ORDER BY {order}, key {limit}"
    );
    Ok(client
        .query(&sql, &q.params())
        .await?
        .iter()
        .map(|row| Keyed {
            key: row.get(0),
            messages: row.get(1),
            bytes: row.get(2),
        })
        .collect())
}

/// A count by key (`/stats/rejects`, `/stats/problems`, `/stats/postscreen`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

pub fn counts(keyed: Vec<Keyed>) -> Vec<Count> {
    keyed
        .into_iter()
        .map(|k| Count {
            key: k.key,
            count: k.messages,
        })
        .collect()
}

/// A bucket of a histogram: the values `<= le` (and above the previous bucket's); `le` null is
/// the last bucket, above every bound.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    pub le: Option<f64>,
    pub count: i64,
}

/// The histogram of a bucketed kind (`delay`, `size`, `queue_life`) in bound order, every
/// bucket listed.
pub async fn histogram(client: &Client, filter: &Filter, kind: &str, bounds: &[f64]) -> ApiResult<Vec<Bucket>> {
    let found: BTreeMap<String, i64> = keyed(client, filter, kind, true, false, None)
        .await?
        .into_iter()
        .map(|k| (k.key, k.messages))
        .collect();
    let count_of = |bound: Option<f64>| {
        let key = bound.map_or_else(|| "inf".to_owned(), |b| b.to_string());
        found.get(&key).copied().unwrap_or(0)
    };
    Ok(bounds
        .iter()
        .map(|b| Some(*b))
        .chain([None])
        .map(|le| Bucket {
            le,
            count: count_of(le),
        })
        .collect())
}

/// Percentiles read from a histogram: the upper bound of the bucket the percentile falls in
/// (null in the last, unbounded bucket).
#[derive(Debug, Default, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// The upper bound of the highest bucket with a count.
    pub max: Option<f64>,
}

pub fn percentiles(histogram: &[Bucket]) -> Percentiles {
    let total: i64 = histogram.iter().map(|b| b.count).sum();
    if total == 0 {
        return Percentiles::default();
    }
    let at = |p: f64| {
        let wanted = (p * total as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for bucket in histogram {
            seen += bucket.count;
            if seen >= wanted {
                return bucket.le;
            }
        }
        None
    };
    Percentiles {
        p50: at(0.50),
        p90: at(0.90),
        p95: at(0.95),
        p99: at(0.99),
        max: histogram.iter().rev().find(|b| b.count > 0).and_then(|b| b.le),
    }
}

/// Messages by the country of their client address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CountryCount {
    pub country: String,
    pub country_name: String,
    pub messages: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Countries {
    /// The GeoIP database and its licence; null when none is installed.
    pub database: Option<String>,
    pub items: Vec<CountryCount>,
    /// Messages whose client the database does not place (private addresses, unlisted).
    pub unlocated: i64,
}

/// Groups the counts of client addresses (`client_ip` or `reject_client`) by country.
pub async fn countries(client: &Client, filter: &Filter, kind: &str) -> ApiResult<Countries> {
    let Some(db) = crate::geo::database() else {
        return Ok(Countries {
            database: None,
            items: Vec::new(),
            unlocated: 0,
        });
    };
    let mut by_country: BTreeMap<String, CountryCount> = BTreeMap::new();
    let mut unlocated = 0;
    for k in keyed(client, filter, kind, true, false, None).await? {
        match k.key.parse::<IpAddr>().ok().and_then(|ip| db.lookup(ip)) {
            Some(country) => {
                by_country
                    .entry(country.code.clone())
                    .or_insert_with(|| CountryCount {
                        country: country.code,
                        country_name: country.name,
                        messages: 0,
                    })
                    .messages += k.messages;
            }
            None => unlocated += k.messages,
        }
    }
    let mut items: Vec<CountryCount> = by_country.into_values().collect();
    items.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.country.cmp(&b.country)));
    Ok(Countries {
        database: Some(db.description.clone()),
        items,
        unlocated,
    })
}
