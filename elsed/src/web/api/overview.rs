//! `GET /overview`: the landing page's picture of the fleet in one answer, within the caller's
//! scope: the open alerts, each server's health and queues, the ingest, today's traffic against
//! its usual level, and the destinations with the most trouble now. Each part is read by the
//! function of the screen it summarises (alerts, servers, statistics), with that screen's scope.

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use axum::Json;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Client;
use utoipa_axum::routes;

use super::alerts::{self, Alert};
use super::servers::{self, Server};
use super::stats::data;
use super::stats::filter::{Filter, RawParams};
use crate::access::{Caller, Scope};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(overview))
}

const SECOND: i64 = Timestamp::MICROS_PER_SECOND;
const HOUR: i64 = 3_600 * SECOND;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// The usual level is the mean of the same hours of the week over this many weeks.
const USUAL_WEEKS: i64 = 4;
/// Lines per second are counted over this window.
const INGEST_WINDOW_SECS: i64 = 300;
/// How many alerts and destinations the page shows.
const NEWEST_ALERTS: usize = 5;
const TROUBLE_DESTINATIONS: usize = 5;

/// The landing page's picture of the fleet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Overview {
    pub alerts: OpenAlerts,
    pub servers: Vec<ServerOverview>,
    pub traffic: Vec<FlowTraffic>,
    /// Remote hosts with the most deferrals and bounces in the current and the previous hour,
    /// most first (at most 5).
    pub trouble: Vec<Trouble>,
}

/// The open alerts the caller may see.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenAlerts {
    pub critical: i64,
    pub warning: i64,
    /// The first few, as the alerts page lists them (critical first, then newest).
    pub top: Vec<Alert>,
}

/// A server with its ingest.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ServerOverview {
    /// As `GET /servers` gives it: `last_seen` is the time of its last line; `health` its
    /// SNMP state and queue sizes.
    pub server: Server,
    /// Its log lines per second over the last 5 minutes (by the lines' own time).
    pub lines_per_second: f64,
    /// How far behind the clock its lines were when they last arrived, in seconds, as the alerts
    /// evaluator saw it (absent when they did not move at its last cycle, or `elsed serve` does
    /// not evaluate alerts).
    pub lag_seconds: Option<i64>,
}

/// One flow's messages received today, hour by hour, against the usual level.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlowTraffic {
    /// inbound, outbound, internal, relayed or unknown.
    pub flow: String,
    /// Messages received since midnight UTC.
    pub today: i64,
    /// The mean of the same hours of the same weekday over the previous four weeks.
    pub usual: f64,
    pub hours: Vec<HourTraffic>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HourTraffic {
    #[schema(value_type = String, format = DateTime)]
    pub hour: Timestamp,
    pub today: i64,
    pub usual: f64,
}

/// A remote host our mail has trouble reaching.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Trouble {
    pub host: String,
    pub deferred: i64,
    pub bounced: i64,
}

/// The overview: open alerts, servers with their health, queues and ingest, today's traffic per
/// flow against the usual level, the destinations in trouble. End users have no overview (their
/// view is their mail, not the fleet): 403.
#[utoipa::path(get, path = "/overview", tag = "overview",
    responses((status = 200, body = Overview),
        (status = 401, description = "Not logged in", body = ErrorBody),
        (status = 403, description = "An end user", body = ErrorBody)))]
async fn overview(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Overview>> {
    if matches!(caller.scope, Scope::Addresses(_)) {
        return Err(ApiError::forbidden());
    }
    let now = Timestamp::now();
    let client = state.db.get().await?;
    let reads = state.read_for(&caller).await?;
    let open = alerts::list(&client, &caller.scope, "open", 1000).await?;
    let servers = servers::visible(&client, &caller.scope).await?;
    Ok(Json(Overview {
        alerts: OpenAlerts {
            critical: open.iter().filter(|a| a.severity == "critical").count() as i64,
            warning: open.iter().filter(|a| a.severity != "critical").count() as i64,
            top: open.into_iter().take(NEWEST_ALERTS).collect(),
        },
        servers: ingest(&client, servers, now).await?,
        traffic: traffic(&reads, &caller.scope, now).await?,
        trouble: trouble(&reads, &caller.scope, now).await?,
    }))
}

/// The statistics' filter of `scope` over `[since, until)` (whole hours).
async fn filter(client: &Client, scope: &Scope, since: Timestamp, until: Timestamp) -> ApiResult<Filter> {
    let params: RawParams = [("since", since), ("until", until)]
        .into_iter()
        .map(|(name, t)| (name.to_owned(), t.to_rfc3339()))
        .collect();
    Filter::new(client, scope, &params).await
}

/// Each server's lines per second and lag.
async fn ingest(client: &Client, servers: Vec<Server>, now: Timestamp) -> ApiResult<Vec<ServerOverview>> {
    let ids: Vec<i32> = servers.iter().map(|s| s.id).collect();
    let since = Timestamp(now.0 - INGEST_WINDOW_SECS * SECOND);
    let lines: HashMap<i32, i64> = client
        .query(
            "SELECT server_id, count(*) FROM log_events WHERE ts >= $1 AND ts <= $2 AND server_id = ANY($3)
             GROUP BY server_id",
            &[&since, &now, &ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let lags: HashMap<i32, i64> = client
        .query(
            "SELECT server_id, extract(epoch FROM observed_at - last_seen)::int8 FROM alert_server_watch
             WHERE moved_at = observed_at AND last_seen IS NOT NULL AND server_id = ANY($1)",
            &[&ids],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(servers
        .into_iter()
        .map(|server| ServerOverview {
            lines_per_second: lines.get(&server.id).copied().unwrap_or(0) as f64 / INGEST_WINDOW_SECS as f64,
            lag_seconds: lags.get(&server.id).copied(),
            server,
        })
        .collect())
}

/// Today's received messages per flow and hour, and the mean of the same hours of the week over
/// the previous [`USUAL_WEEKS`] weeks, from `traffic_hourly`.
async fn traffic(client: &Client, scope: &Scope, now: Timestamp) -> ApiResult<Vec<FlowTraffic>> {
    let midnight = now.0.div_euclid(DAY) * DAY;
    let filter = filter(client, scope, Timestamp(midnight - USUAL_WEEKS * WEEK), now).await?;
    let hours_today = (filter.until.0 - midnight) / HOUR;
    let mut q = Query::default();
    let (since, until) = (q.bind(filter.since), q.bind(filter.until));
    let rows = filter.rows(&mut q, "t", true);
    let sql = format!(
        "SELECT t.flow, t.hour, sum(t.messages)::int8 FROM traffic_hourly t
         WHERE t.hour >= {since} AND t.hour < {until} AND t.metric = 'received' AND {rows}
         GROUP BY 1, 2"
    );
    // flow → hour of today → (today, sum of the same hours in the previous weeks)
    let mut flows: BTreeMap<String, BTreeMap<i64, (i64, i64)>> = BTreeMap::new();
    for row in client.query(&sql, &q.params()).await? {
        let (flow, hour, messages): (String, Timestamp, i64) = (row.get(0), row.get(1), row.get(2));
        let offset = hour.0 - midnight;
        let hours = flows
            .entry(flow)
            .or_insert_with(|| (0..hours_today).map(|h| (midnight + h * HOUR, (0, 0))).collect());
        if offset >= 0 {
            hours.entry(hour.0).or_default().0 += messages;
        } else {
            let same = offset.rem_euclid(WEEK);
            if same < hours_today * HOUR {
                hours.entry(midnight + same).or_default().1 += messages;
            }
        }
    }
    Ok(flows
        .into_iter()
        .map(|(flow, hours)| {
            let hours: Vec<HourTraffic> = hours
                .into_iter()
                .map(|(hour, (today, past))| HourTraffic {
                    hour: Timestamp(hour),
                    today,
                    usual: past as f64 / USUAL_WEEKS as f64,
                })
                .collect();
            FlowTraffic {
                flow,
                today: hours.iter().map(|h| h.today).sum(),
                usual: hours.iter().map(|h| h.usual).sum(),
                hours,
            }
        })
        .collect())
}

/// The remote hosts with the most deferrals and bounces in the current and the previous hour
/// (the keyed rollups of `/stats/problems`).
async fn trouble(client: &Client, scope: &Scope, now: Timestamp) -> ApiResult<Vec<Trouble>> {
    let filter = filter(client, scope, Timestamp(now.0 - HOUR), now).await?;
    let mut hosts: BTreeMap<String, Trouble> = BTreeMap::new();
    for kind in ["deferred_host", "bounced_host"] {
        for keyed in data::keyed(client, &filter, kind, true, false, Some(100)).await? {
            let entry = hosts.entry(keyed.key.clone()).or_insert_with(|| Trouble {
                host: keyed.key,
                deferred: 0,
                bounced: 0,
            });
            if kind == "deferred_host" {
                entry.deferred += keyed.messages;
            } else {
                entry.bounced += keyed.messages;
            }
        }
    }
    let mut hosts: Vec<Trouble> = hosts.into_values().collect();
    hosts.sort_by(|a, b| {
        (b.deferred + b.bounced)
            .cmp(&(a.deferred + a.bounced))
            .then(a.host.cmp(&b.host))
    });
    hosts.truncate(TROUBLE_DESTINATIONS);
    Ok(hosts)
}
