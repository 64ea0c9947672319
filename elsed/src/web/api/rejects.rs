//! `GET /rejects`: NOQUEUE rejects and the other policy decisions (warn, hold, discard, header and
//! body checks, milters), by client, sender, recipient, code, reason, action, server and time,
//! within the caller's scope ([`Scope::rejects_condition`]).

use axum::extract::State;
use axum::response::Response;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa_axum::routes;

use super::history::Kind;
use super::listing::{self, Listing};
use super::params::{sql_time, ListParams, Paging, Params};
use crate::access::{Caller, Scope};
use crate::message_query::{address_condition, client_condition, TextFilter};
use crate::sql::{contains_pattern, Query};
use crate::web::error::{ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::openapi::ApiRoutes;
use crate::web::paging::{page_of, Page, Readers};
use crate::web::AppState;

/// One decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RejectItem {
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    pub server: String,
    pub action: String,
    pub stage: String,
    pub code: Option<i32>,
    pub enhanced: Option<String>,
    pub reason: String,
    pub client_ip: Option<String>,
    pub client_name: Option<String>,
    /// The client's country (ISO 3166-1 alpha-2) from the GeoIP database, when it lists it.
    pub client_country: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    pub helo: Option<String>,
    /// The id of the message it concerns, when one was queued (header checks, milters…).
    pub message_id: Option<String>,
}

const COLUMNS: &str = "r.ts, s.name, r.action, r.stage, r.code, r.enhanced, r.reason, host(r.client_ip), \
     r.client_name, r.sender, r.recipient, r.helo, r.message_uid";

fn from_row(row: &Row) -> RejectItem {
    let client_ip: Option<String> = row.get(7);
    RejectItem {
        client_country: crate::geo::country_code(client_ip.as_deref()),
        client_ip,
        ts: row.get(0),
        server: row.get(1),
        action: row.get(2),
        stage: row.get(3),
        code: row.get(4),
        enhanced: row.get(5),
        reason: row.get(6),
        client_name: row.get(8),
        sender: row.get(9),
        recipient: row.get(10),
        helo: row.get(11),
        message_id: row.get::<_, Option<i64>>(12).map(|uid| uid.to_string()),
    }
}

/// What `/rejects` asks for.
#[derive(Debug, Clone, Default)]
pub struct RejectFilter {
    pub client: Option<TextFilter>,
    pub sender: Option<TextFilter>,
    pub recipient: Option<TextFilter>,
    pub code: Option<i32>,
    /// A substring of the reason, in any case.
    pub reason: Option<String>,
    pub action: Option<String>,
    pub server: Option<i32>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// `FROM … WHERE …` of the decisions `filter` finds within `scope`.
fn from_where(scope: &Scope, filter: &RejectFilter) -> ApiResult<(String, Query)> {
    let mut q = Query::default();
    if let Some(client) = &filter.client {
        let condition = client_condition(&mut q, "r.client_ip", "r.client_name", client, "client")?;
        q.and(condition);
    }
    if let Some(sender) = &filter.sender {
        let condition = address_condition(&mut q, &["r.sender"], sender);
        q.and(condition);
    }
    if let Some(recipient) = &filter.recipient {
        let condition = address_condition(&mut q, &["r.recipient"], recipient);
        q.and(condition);
    }
    q.and_bound("r.code = {}", filter.code);
    q.and_bound("r.reason ILIKE {}", filter.reason.as_deref().map(contains_pattern));
    q.and_bound("r.action = {}", filter.action.clone());
    q.and_bound("r.server_id = {}", filter.server);
    q.and_bound("r.ts >= {}", filter.since);
    q.and_bound("r.ts < {}", filter.until);
    let visible = scope.rejects_condition(&mut q, "r");
    q.and(visible);
    Ok((
        format!(
            "FROM rejects r JOIN servers s ON s.id = r.server_id {}",
            q.where_clause()
        ),
        q,
    ))
}

/// `/rejects` as a list: see [`listing`].
pub struct RejectList;

impl Listing for RejectList {
    type Filter = RejectFilter;
    type Item = RejectItem;
    const SORTS: &'static [(&'static str, &'static str)] = &[("ts", "r.ts")];
    const DEFAULT_SORT: &'static str = "-ts";
    const TIE: &'static str = "r.line_key";
    const CSV_HEADER: &'static [&'static str] = &[
        "ts",
        "server",
        "action",
        "stage",
        "code",
        "enhanced",
        "reason",
        "client_ip",
        "client_name",
        "sender",
        "recipient",
        "helo",
        "message_id",
    ];
    const CSV_FILE: &'static str = "rejects.csv";

    fn read_filter(p: &mut Params) -> ApiResult<RejectFilter> {
        Ok(RejectFilter {
            client: p.text_filter("client", "client_op")?,
            sender: p.text_filter("sender", "sender_op")?,
            recipient: p.text_filter("recipient", "recipient_op")?,
            code: p.number("code", 200..=599)?,
            reason: p.text("reason")?,
            action: p.text("action")?.map(|a| a.to_lowercase()),
            server: p.number("server", 1..=i32::MAX)?,
            since: p.time("since")?,
            until: p.time("until")?,
        })
    }

    fn kind(_: &RejectFilter) -> Kind {
        Kind::Rejects
    }

    async fn page(
        readers: Readers<'_>,
        scope: &Scope,
        filter: &RejectFilter,
        paging: &Paging,
    ) -> ApiResult<Page<RejectItem>> {
        let (from_where, q) = from_where(scope, filter)?;
        let order_by = paging.order_by(Self::TIE);
        page_of(readers, COLUMNS, &from_where, q, paging.window, &order_by, from_row).await
    }

    fn csv_select(scope: &Scope, filter: &RejectFilter, order_by: &str) -> ApiResult<(String, Query)> {
        let (from_where, q) = from_where(scope, filter)?;
        let select = format!(
            "SELECT {}, s.name, r.action, r.stage, r.code::text, r.enhanced, r.reason, host(r.client_ip),
                    r.client_name, r.sender, r.recipient, r.helo, r.message_uid::text
             {from_where} {order_by}",
            sql_time("r.ts"),
        );
        Ok((select, q))
    }
}

/// NOQUEUE rejects and the other policy decisions (warn, hold, discard, checks, milters); sort
/// `ts` (default `-ts`); or all of them as CSV.
#[utoipa::path(get, path = "/rejects", tag = "search", operation_id = "search_rejects",
    params(
        ("client" = Option<String>, Query, description = "An IP address, a CIDR block or a host name"),
        ("client_op" = Option<String>, Query, description = "is, contains, starts or not"),
        ("sender" = Option<String>, Query), ("sender_op" = Option<String>, Query),
        ("recipient" = Option<String>, Query), ("recipient_op" = Option<String>, Query),
        ("code" = Option<i32>, Query, description = "The SMTP code, 200 to 599"),
        ("reason" = Option<String>, Query, description = "A substring of the reason, any case"),
        ("action" = Option<String>, Query, description = "reject, warn, hold, discard, …"),
        ("server" = Option<i32>, Query, description = "A server id"),
        ("since" = Option<String>, Query, format = DateTime), ("until" = Option<String>, Query, format = DateTime),
        ListParams,
    ),
    responses(
        (status = 200, description = "A page of decisions (or, with `format=csv`, every matching row as CSV)",
            content((Page<RejectItem> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad or unknown parameter (named in `field`)", body = ErrorBody),
    ))]
async fn get_rejects(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Response> {
    listing::answer::<RejectList>(&state, &caller, pairs).await
}

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(get_rejects))
}
