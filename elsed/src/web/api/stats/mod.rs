//! `/stats/*` and `/reports`: the statistics screens and the pflogsumm-style report, narrowed to
//! the caller's scope (see [`filter`] for the rules). The endpoints read the rollups, never the
//! raw events; the report reads the base tables, as `elsed report` does.
//!
//! Each endpoint is a data function `(client, &Scope, params) -> ApiResult<T>`, tested against a
//! real database, and a thin axum handler around it.

#[cfg(test)]
mod bench;
pub mod data;
pub mod filter;
mod reports;
#[cfg(test)]
pub mod tests;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio_postgres::Client;
use utoipa_axum::routes;

use self::data::{Bucket, Count, Countries, Keyed, Percentiles, Traffic};
use self::filter::{choice, number, Filter, RawParams};
use crate::access::{Caller, Scope};
use crate::web::error::{ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(handlers::traffic))
        .add(routes!(handlers::top))
        .add(routes!(handlers::rejects))
        .add(routes!(handlers::problems))
        .add(routes!(handlers::delays))
        .add(routes!(handlers::sizes))
        .add(routes!(handlers::postscreen))
        .add(routes!(handlers::countries))
        .add(routes!(reports::report_handler))
}

/// What every statistics endpoint reads (for the document; [`filter::Filter`] reads them).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct StatsParams {
    /// RFC 3339; default 24 hours before `until`; rounded out to whole hours, at most 400 days.
    #[param(format = DateTime)]
    since: Option<String>,
    /// RFC 3339; default now.
    #[param(format = DateTime)]
    until: Option<String>,
    /// A server id.
    server: Option<i32>,
    /// inbound, outbound, internal, relayed or unknown.
    flow: Option<String>,
    /// A domain of some group (rollups are kept per domain for the groups' domains only).
    domain: Option<String>,
    /// A group id.
    group: Option<i64>,
}

/// What every statistics endpoint may refuse.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum Refusals {
    /// A bad parameter (named in `field`), or a domain of no group.
    #[response(status = 400)]
    BadParameter(ErrorBody),
    /// End users: rollups count per server and domain, their own mail is a search.
    #[response(status = 403)]
    EndUser(ErrorBody),
}

/// The axum handlers: a pooled connection, the caller's scope, the data function, JSON.
mod handlers {
    use super::*;

    macro_rules! json_handlers {
        ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
            $(#[$doc])*
            pub async fn $name(State(state): State<AppState>, caller: Caller, QueryParams(params): QueryParams<RawParams>) -> Response {
                let result = async {
                    let client = state.read_for(&caller).await?;
                    super::$name(&client, &caller.scope, &params).await
                }
                .await;
                match result {
                    Ok(value) => Json(value).into_response(),
                    Err(e) => e.into_response(),
                }
            }
        )*};
    }

    json_handlers!(
        /// Messages and bytes over time, one point per bucket, and the totals.
        #[utoipa::path(get, path = "/stats/traffic", tag = "stats", operation_id = "stats_traffic",
            params(StatsParams, ("bucket" = Option<String>, Query, description = "hour (default) or day")),
            responses((status = 200, body = Traffic), Refusals))]
        traffic,
        /// The busiest senders, recipients, their domains, clients or relays.
        #[utoipa::path(get, path = "/stats/top", tag = "stats", operation_id = "stats_top",
            params(StatsParams,
                ("kind" = Option<String>, Query, description = "senders (default), recipients, sender_domains, recipient_domains, clients or relays"),
                ("by" = Option<String>, Query, description = "count (default) or bytes"),
                ("limit" = Option<i64>, Query, description = "1 to 1000 (default 20)")),
            responses((status = 200, body = Top), Refusals))]
        top,
        /// Rejects grouped by code, enhanced code, reason, client or country.
        #[utoipa::path(get, path = "/stats/rejects", tag = "stats", operation_id = "stats_rejects",
            params(StatsParams,
                ("group_by" = Option<String>, Query, description = "code (default), enhanced, reason, client or country"),
                ("limit" = Option<i64>, Query, description = "1 to 1000 (default 50)")),
            responses((status = 200, body = Items<Count>), Refusals))]
        rejects,
        /// Deferrals or bounces grouped by host or reason.
        #[utoipa::path(get, path = "/stats/problems", tag = "stats", operation_id = "stats_problems",
            params(StatsParams,
                ("kind" = Option<String>, Query, description = "deferred (default) or bounced"),
                ("group_by" = Option<String>, Query, description = "host (default) or reason"),
                ("limit" = Option<i64>, Query, description = "1 to 1000 (default 50)")),
            responses((status = 200, body = Items<Count>), Refusals))]
        problems,
        /// Delivery delays and queue life times: percentiles and histograms, in seconds.
        #[utoipa::path(get, path = "/stats/delays", tag = "stats", operation_id = "stats_delays",
            params(StatsParams),
            responses((status = 200, body = Delays), Refusals))]
        delays,
        /// Sizes of received messages, a histogram in bytes.
        #[utoipa::path(get, path = "/stats/sizes", tag = "stats", operation_id = "stats_sizes",
            params(StatsParams),
            responses((status = 200, body = Sizes), Refusals))]
        sizes,
        /// Postscreen's outcomes: connections, passes, DNSBL hits, pregreets, hangups, rejects.
        #[utoipa::path(get, path = "/stats/postscreen", tag = "stats", operation_id = "stats_postscreen",
            params(StatsParams),
            responses((status = 200, body = Items<Outcome>), Refusals))]
        postscreen,
        /// Messages received or rejected by the country of their client.
        #[utoipa::path(get, path = "/stats/countries", tag = "stats", operation_id = "stats_countries",
            params(StatsParams, ("metric" = Option<String>, Query, description = "received (default) or rejected")),
            responses((status = 200, body = Countries), Refusals))]
        countries,
    );
}

/// `GET /stats/traffic?bucket=hour|day`.
pub async fn traffic(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Traffic> {
    let filter = Filter::new(client, scope, params).await?;
    let bucket = choice(params, "bucket", &["hour", "day"], "hour")?;
    data::traffic(client, &filter, bucket).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Top {
    pub kind: &'static str,
    pub by: &'static str,
    pub items: Vec<Keyed>,
}

/// `GET /stats/top?kind=…&by=count|bytes&limit=20`.
pub async fn top(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Top> {
    let filter = Filter::new(client, scope, params).await?;
    let kinds = [
        "senders",
        "recipients",
        "sender_domains",
        "recipient_domains",
        "clients",
        "relays",
    ];
    let kind = choice(params, "kind", &kinds, "senders")?;
    let by = choice(params, "by", &["count", "bytes"], "count")?;
    let limit = number(params, "limit", 1, 1000, 20)?;
    // The rollup's kind is the singular.
    let rollup = kind.strip_suffix('s').unwrap_or(kind);
    let items = data::keyed(client, &filter, rollup, true, by == "bytes", Some(limit)).await?;
    Ok(Top { kind, by, items })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `GET /stats/rejects?group_by=code|enhanced|reason|client|country`.
pub async fn rejects(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Items<Count>> {
    let filter = Filter::new(client, scope, params).await?;
    let group_by = choice(
        params,
        "group_by",
        &["code", "enhanced", "reason", "client", "country"],
        "code",
    )?;
    let limit = number(params, "limit", 1, 1000, 50)?;
    if group_by == "country" {
        let countries = data::countries(client, &filter, "reject_client").await?;
        let items = countries
            .items
            .into_iter()
            .take(limit as usize)
            .map(|c| Count {
                key: c.country,
                count: c.messages,
            })
            .collect();
        return Ok(Items { items });
    }
    let kind = format!("reject_{group_by}");
    let items = data::keyed(client, &filter, &kind, true, false, Some(limit)).await?;
    Ok(Items {
        items: data::counts(items),
    })
}

/// `GET /stats/problems?kind=deferred|bounced&group_by=host|reason`.
pub async fn problems(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Items<Count>> {
    let filter = Filter::new(client, scope, params).await?;
    let kind = choice(params, "kind", &["deferred", "bounced"], "deferred")?;
    let group_by = choice(params, "group_by", &["host", "reason"], "host")?;
    let limit = number(params, "limit", 1, 1000, 50)?;
    let items = data::keyed(client, &filter, &format!("{kind}_{group_by}"), true, false, Some(limit)).await?;
    Ok(Items {
        items: data::counts(items),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Delays {
    /// Seconds; each the upper bound of the histogram bucket it falls in.
    pub percentiles: Percentiles,
    pub histogram: Vec<Bucket>,
    /// Time from arrival to removal from the queue, seconds, same buckets.
    pub queue_life: Vec<Bucket>,
}

/// `GET /stats/delays`: delivery delays (of deliveries) and queue life times (of messages).
pub async fn delays(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Delays> {
    let filter = Filter::new(client, scope, params).await?;
    let histogram = data::histogram(client, &filter, "delay", omelse::store::DELAY_BUCKETS).await?;
    let queue_life = data::histogram(client, &filter, "queue_life", omelse::store::DELAY_BUCKETS).await?;
    Ok(Delays {
        percentiles: data::percentiles(&histogram),
        histogram,
        queue_life,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sizes {
    /// Bytes.
    pub histogram: Vec<Bucket>,
}

/// `GET /stats/sizes`: sizes of received messages.
pub async fn sizes(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Sizes> {
    let filter = Filter::new(client, scope, params).await?;
    Ok(Sizes {
        histogram: data::histogram(client, &filter, "size", omelse::store::SIZE_BUCKETS).await?,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub outcome: String,
    pub count: i64,
}

/// `GET /stats/postscreen`: connections, passes (new, old), DNSBL hits, pregreets, hangups,
/// protocol violations, rejects. Postscreen happens before any domain is known: a group member
/// sees the counts of their groups' servers, and a `domain` filter leaves none.
pub async fn postscreen(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Items<Outcome>> {
    let filter = Filter::new(client, scope, params).await?;
    let items = data::keyed(client, &filter, "postscreen", false, false, None).await?;
    Ok(Items {
        items: items
            .into_iter()
            .map(|k| Outcome {
                outcome: k.key,
                count: k.messages,
            })
            .collect(),
    })
}

/// `GET /stats/countries?metric=received|rejected`.
pub async fn countries(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<Countries> {
    let filter = Filter::new(client, scope, params).await?;
    let metric = choice(params, "metric", &["received", "rejected"], "received")?;
    let kind = if metric == "received" {
        "client_ip"
    } else {
        "reject_client"
    };
    data::countries(client, &filter, kind).await
}
