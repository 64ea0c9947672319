//! NDRs (docs/api.md, "NDRs"): the list with its filters, one NDR laid out, its raw source.
//! Every query is narrowed by [`Scope::ndrs_condition`]; an NDR outside the caller's scope is a
//! 404, as if it did not exist.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio_postgres::{Client, Row};
use utoipa_axum::routes;

use super::params::{rfc3339, time_param};
use crate::access::{Caller, Scope};
use crate::ndr::dsn;
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{PathParam, QueryParams};
use crate::web::openapi::ApiRoutes;
use crate::web::paging::{page_of, Page, PageParams, Sort};
use crate::web::AppState;

#[cfg(test)]
#[path = "ndrs_tests.rs"]
mod tests;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(list_handler))
        .add(routes!(detail_handler))
        .add(routes!(raw_handler))
}

/// One failed (or delayed) recipient of an NDR.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FailedRecipient {
    pub address: Option<String>,
    pub original_address: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic: Option<String>,
}

/// An NDR in a list, and on the message detail page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct NdrSummary {
    pub id: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The reporting server as ELSE knows it (by name or address), else null.
    pub server: Option<String>,
    pub server_id: Option<i32>,
    pub reporting_mta: Option<String>,
    /// The bounced message's queue id on the reporting server.
    pub queue_id: Option<String>,
    pub original_sender: Option<String>,
    pub original_message_id: Option<String>,
    pub failed_recipients: Vec<FailedRecipient>,
    /// The returned original's subject (the NDR's own subject when none came back).
    pub subject: Option<String>,
    /// The linked message's id, or null while unlinked.
    pub message_id: Option<String>,
    /// Not a parsable DSN (stored raw all the same); `problem` says why.
    pub flagged: bool,
    pub problem: Option<String>,
}

/// One NDR laid out: the summary, its header fields, the delivery-status fields and the
/// returned original's header fields (repeated fields joined by a line break).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct NdrDetail {
    #[serde(flatten)]
    pub summary: NdrSummary,
    /// dsn, not_dsn or malformed.
    pub kind: String,
    /// queue_id or notification; null while unlinked.
    pub linked_by: Option<String>,
    pub client_ip: String,
    pub protocol: String,
    pub headers: BTreeMap<String, String>,
    /// `{message: {field: value}, recipients: [{field: value}]}`, field names lower-case.
    pub dsn: DsnFields,
    /// headers or message: how much of the original came back.
    pub returned: Option<String>,
    pub returned_headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DsnFields {
    pub message: BTreeMap<String, String>,
    pub recipients: Vec<BTreeMap<String, String>>,
}

/// The list's filters (docs/api.md); `page`/`per_page` are [`PageParams`], read beside them.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NdrFilter {
    /// Received at or after (RFC 3339).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Received before (RFC 3339).
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// The reporting server's id.
    pub server: Option<i32>,
    /// The original sender: an address, or `@domain` for a whole domain.
    pub sender: Option<String>,
    /// A failed recipient: an address, or `@domain`.
    pub recipient: Option<String>,
    /// A DSN status (`5.1.1`), a class or prefix (`5`, `5.1`), or an action (`failed`, `delayed`).
    pub status: Option<String>,
    /// Linked to a message (true) or not yet (false).
    pub linked: Option<bool>,
    /// `received_at` or `-received_at` (the default, newest first).
    pub sort: Option<String>,
}

/// The columns every NDR query reads, for [`summary`]. `n` is `ndrs`, `srv` the reporting
/// server (lateral, may be null), `m` the linked message (may be null).
const SUMMARY_COLUMNS: &str = "n.id, n.received_at, srv.name, srv.id, n.reporting_mta, n.postfix_queue_id,
     coalesce(n.postfix_sender, m.sender), n.orig_message_id, coalesce(n.orig_subject, n.subject),
     m.uid, n.kind, n.problem,
     coalesce((SELECT json_agg(json_build_object('address', r.final_recipient,
                                   'original_address', r.original_recipient, 'action', r.action,
                                   'status', r.status, 'remote_mta', r.remote_mta,
                                   'diagnostic', r.diagnostic_code) ORDER BY r.position)
               FROM ndr_recipients r WHERE r.ndr_received_at = n.received_at AND r.ndr_id = n.id),
              '[]')";

/// The FROM clause that goes with [`SUMMARY_COLUMNS`].
fn summary_from() -> String {
    format!(
        "ndrs n
         LEFT JOIN LATERAL (SELECT s.id, s.name FROM servers s WHERE {} ORDER BY s.id LIMIT 1) srv ON TRUE
         LEFT JOIN messages m ON m.started_at = n.message_started_at AND m.uid = n.message_uid",
        crate::ndr::store::reported_by("n", "s")
    )
}

fn summary(row: &Row) -> NdrSummary {
    let received: SystemTime = row.get(1);
    let recipients: serde_json::Value = row.get(12);
    let kind: String = row.get(10);
    NdrSummary {
        id: row.get::<_, i64>(0).to_string(),
        received_at: rfc3339(received),
        server: row.get(2),
        server_id: row.get(3),
        reporting_mta: row.get(4),
        queue_id: row.get(5),
        original_sender: row.get(6),
        original_message_id: row.get(7),
        subject: row.get(8),
        message_id: row.get::<_, Option<i64>>(9).map(|uid| uid.to_string()),
        flagged: kind != "dsn" || row.get::<_, Option<String>>(11).is_some(),
        problem: row.get(11),
        // Built by SUMMARY_COLUMNS with exactly these fields: it cannot fail to read.
        failed_recipients: serde_json::from_value(recipients).unwrap_or_default(),
    }
}

/// `address` (case-insensitive) or `@domain` (every address of that domain) as a condition on
/// the SQL expression `column`.
fn address_condition(q: &mut Query, column: &str, value: &str) -> String {
    let value = value.trim().to_lowercase();
    match value.strip_prefix('@') {
        Some(domain) => format!("else_domain({column}) = {}", q.bind(domain.to_owned())),
        None => format!("lower({column}) = {}", q.bind(value)),
    }
}

/// The list's WHERE conditions, scope first.
fn filter_query(scope: &Scope, f: &NdrFilter) -> ApiResult<Query> {
    let mut q = Query::default();
    let visible = scope.ndrs_condition(&mut q, "n");
    q.and(visible);
    if let Some(since) = time_param("since", f.since.as_deref())? {
        let p = q.bind(since);
        q.and(format!("n.received_at >= {p}"));
    }
    if let Some(until) = time_param("until", f.until.as_deref())? {
        let p = q.bind(until);
        q.and(format!("n.received_at < {p}"));
    }
    if let Some(server) = f.server {
        let p = q.bind(server);
        q.and(format!("srv.id = {p}"));
    }
    if let Some(sender) = f.sender.as_deref().filter(|s| !s.trim().is_empty()) {
        let cond = address_condition(&mut q, "coalesce(n.postfix_sender, m.sender)", sender);
        q.and(cond);
    }
    let mut recipient_conds = Vec::new();
    if let Some(rcpt) = f.recipient.as_deref().filter(|s| !s.trim().is_empty()) {
        let a = address_condition(&mut q, "r.final_recipient", rcpt);
        let b = address_condition(&mut q, "r.original_recipient", rcpt);
        recipient_conds.push(format!("({a} OR {b})"));
    }
    if let Some(status) = f.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        if status.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let exact = q.bind(status.to_owned());
            let prefix = q.bind(format!("{}.%", crate::sql::like_escape(status)));
            recipient_conds.push(format!("(r.status = {exact} OR r.status LIKE {prefix})"));
        } else if status.bytes().all(|b| b.is_ascii_alphabetic()) {
            let p = q.bind(status.to_ascii_lowercase());
            recipient_conds.push(format!("r.action = {p}"));
        } else {
            return Err(ApiError::bad_param(
                "status",
                "status is a DSN code such as 5.1.1 or 5, or an action such as failed",
            ));
        }
    }
    if !recipient_conds.is_empty() {
        q.and(format!(
            "EXISTS (SELECT 1 FROM ndr_recipients r WHERE r.ndr_received_at = n.received_at AND r.ndr_id = n.id
                     AND {})",
            recipient_conds.join(" AND ")
        ));
    }
    match f.linked {
        Some(true) => q.and("n.message_uid IS NOT NULL"),
        Some(false) => q.and("n.message_uid IS NULL"),
        None => {}
    }
    Ok(q)
}

/// `GET /ndrs`: the NDRs the caller may see that match `f`, newest first by default.
pub async fn list(client: &Client, scope: &Scope, f: &NdrFilter, page: PageParams) -> ApiResult<Page<NdrSummary>> {
    let window = page.window()?;
    let sort = Sort::read(f.sort.as_deref(), &[("received_at", "n.received_at")], "-received_at")?;
    let q = filter_query(scope, f)?;
    let from_where = format!("FROM {} {}", summary_from(), q.where_clause());
    page_of(
        client,
        SUMMARY_COLUMNS,
        &from_where,
        q,
        window,
        &sort.order_by("n.id"),
        summary,
    )
    .await
}

/// The id of a path, or 404 (an id that cannot exist is as unknown as one that does not).
fn ndr_id(id: &str) -> ApiResult<i64> {
    id.parse().map_err(|_| ApiError::not_found())
}

/// One visible NDR's summary columns plus `extra`, or 404.
async fn one(client: &Client, scope: &Scope, id: i64, extra: &str) -> ApiResult<Row> {
    let mut q = Query::default();
    let visible = scope.ndrs_condition(&mut q, "n");
    q.and(visible);
    let p = q.bind(id);
    q.and(format!("n.id = {p}"));
    client
        .query_opt(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, {extra} FROM {} {}",
                summary_from(),
                q.where_clause()
            ),
            &q.params(),
        )
        .await?
        .ok_or_else(ApiError::not_found)
}

/// Fields in order, a name seen again joined to the first with a line break.
fn field_map(fields: Vec<(String, String)>) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in fields {
        map.entry(name)
            .and_modify(|v| {
                v.push('\n');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    map
}

/// `GET /ndrs/{id}`.
pub async fn detail(client: &Client, scope: &Scope, id: &str) -> ApiResult<NdrDetail> {
    let row = one(
        client,
        scope,
        ndr_id(id)?,
        "n.linked_by, host(n.client_ip), n.protocol, n.returned, n.raw",
    )
    .await?;
    let sections = dsn::sections(row.get::<_, &[u8]>(17));
    let mut blocks = sections.delivery_status.into_iter();
    Ok(NdrDetail {
        kind: row.get(10),
        linked_by: row.get(13),
        client_ip: row.get(14),
        protocol: row.get(15),
        returned: row.get(16),
        headers: field_map(sections.headers),
        dsn: DsnFields {
            message: blocks.next().map(field_map).unwrap_or_default(),
            recipients: blocks.map(field_map).collect(),
        },
        returned_headers: field_map(sections.returned_headers),
        summary: summary(&row),
    })
}

/// `GET /ndrs/{id}/raw`: the NDR as received.
pub async fn raw(client: &Client, scope: &Scope, id: &str) -> ApiResult<Vec<u8>> {
    let row = one(client, scope, ndr_id(id)?, "n.raw").await?;
    Ok(row.get(13))
}

/// The NDRs the caller may see, newest first by default.
#[utoipa::path(get, path = "/ndrs", tag = "ndr", operation_id = "list_ndrs", params(NdrFilter, PageParams),
    responses((status = 200, body = Page<NdrSummary>), (status = 400, description = "A bad parameter (named)", body = ErrorBody)))]
async fn list_handler(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<NdrFilter>,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<NdrSummary>>> {
    let client = state.primary_for(&caller).await?;
    Ok(Json(list(&client, &caller.scope, &filter, page).await?))
}

/// One NDR laid out: its summary, header fields, delivery-status fields, returned headers.
#[utoipa::path(get, path = "/ndrs/{id}", tag = "ndr", operation_id = "ndr_detail",
    params(("id" = String, Path, description = "NDR id")),
    responses((status = 200, body = NdrDetail), (status = 404, description = "No such NDR, or outside the caller's scope", body = ErrorBody)))]
async fn detail_handler(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> ApiResult<Json<NdrDetail>> {
    let client = state.primary_for(&caller).await?;
    Ok(Json(detail(&client, &caller.scope, &id).await?))
}

/// The NDR as received, as an attachment.
#[utoipa::path(get, path = "/ndrs/{id}/raw", tag = "ndr", operation_id = "ndr_raw",
    params(("id" = String, Path, description = "NDR id")),
    responses((status = 200, description = "The message as received", content_type = "message/rfc822", body = String),
              (status = 404, body = ErrorBody)))]
async fn raw_handler(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> ApiResult<impl IntoResponse> {
    let client = state.db.get().await?;
    let bytes = raw(&client, &caller.scope, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "message/rfc822".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"ndr-{id}.eml\""),
            ),
        ],
        bytes,
    ))
}
