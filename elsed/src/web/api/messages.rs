//! `GET /messages` (quick and extended search, paged, sorted, CSV) and `POST /messages/bulk` (a
//! pasted list of Message-IDs). The filters are `elsed search`'s ([`crate::message_query`]); every
//! query is narrowed by the caller's scope.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use utoipa_axum::routes;

use super::history::{self, Kind};
use super::listing::{self, Listing};
use super::params::{sql_time, ListParams, Paging, Params, MAX_VALUE_CHARS};
use crate::access::{Caller, Scope};
use crate::message_query::{
    self, entries_from_where, entries_page_from_where, newest_bound_query, statuses, EntryRow, FilterError,
    MessageFilter, MessageRow, Refusal, SearchEntryKind, ServerRef, FLOWS,
};
use crate::recipient_lookup::{self, RecipientLookup};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::openapi::ApiRoutes;
use crate::web::paging::{read_page, FromWhere, Page, Readers, COUNT_CAP};
use crate::web::AppState;

/// A search's results are counted for this long at most (when they fill more than the page):
/// counting the messages of a big domain means reading ten thousand of them, the page only
/// fifty; past it the total says "more than" what the pages shown hold (docs/benchmarks.md,
/// "Message search latency").
const SEARCH_COUNT_TIME_BOX: std::time::Duration = std::time::Duration::from_millis(50);

/// Recipients listed with each message of a list (`recipient_count` says how many in all).
pub const RECIPIENTS_LISTED: i64 = 20;
/// Message-IDs one bulk search takes.
pub const MAX_BULK: usize = 10_000;
/// Messages one bulk search returns at most (each Message-ID may have several hops).
const MAX_BULK_ITEMS: i64 = 50_000;

/// One entry of a list: a message, or (`kind` `refused`, in searches) mail refused before it was
/// queued, with `state` `rejected`, `queue_id` `NOQUEUE`, the refused recipient (status
/// `rejected`) and the reply in `refusal`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageSummary {
    /// The message's uid, as a string (64-bit integers do not survive JavaScript); for a refused
    /// entry `refused-` and its log line's key (no message detail: the Rejects page has it).
    pub id: String,
    pub kind: SearchEntryKind,
    #[serde(flatten)]
    pub message: MessageRow,
    pub recipients: Vec<RecipientBrief>,
    pub recipient_count: i64,
    /// Why the mail was refused (refused entries only).
    pub refusal: Option<Refusal>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecipientBrief {
    pub address: String,
    pub status: String,
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        ApiError::bad_param(e.field, e.message)
    }
}

/// Messages with their first recipients (of those `scope` lets the caller see).
pub async fn summaries(client: &Client, scope: &Scope, rows: Vec<MessageRow>) -> ApiResult<Vec<MessageSummary>> {
    let entries = rows.into_iter().map(|row| EntryRow { row, refusal: None }).collect();
    entry_summaries(client, scope, entries).await
}

/// Entries of a search with their first recipients (a refused entry's: the one refused, which
/// the scope of rejects already let the caller see).
pub async fn entry_summaries(client: &Client, scope: &Scope, entries: Vec<EntryRow>) -> ApiResult<Vec<MessageSummary>> {
    let messages: Vec<MessageRow> = entries
        .iter()
        .filter(|e| e.refusal.is_none())
        .map(|e| e.row.clone())
        .collect();
    let mut recipients = message_query::recipients(client, scope, &messages, Some(RECIPIENTS_LISTED)).await?;
    Ok(entries
        .into_iter()
        .map(|entry| {
            let kind = entry.kind();
            let message = entry.row;
            let (id, recipients, recipient_count) = match &entry.refusal {
                None => {
                    let (list, count) = recipients.remove(&message.uid).unwrap_or_default();
                    let list = list
                        .into_iter()
                        .map(|r| RecipientBrief {
                            address: r.address,
                            status: r.status,
                        })
                        .collect();
                    (message.uid.to_string(), list, count)
                }
                Some(refusal) => {
                    let list: Vec<RecipientBrief> = refusal
                        .recipient
                        .iter()
                        .map(|address| RecipientBrief {
                            address: address.clone(),
                            status: message.state.clone(),
                        })
                        .collect();
                    let count = list.len() as i64;
                    (format!("refused-{}", message.uid), list, count)
                }
            };
            MessageSummary {
                id,
                kind,
                recipients,
                recipient_count,
                message,
                refusal: entry.refusal,
            }
        })
        .collect())
}

/// `/messages` as a list: see [`listing`]. The filters are `elsed search`'s.
pub struct MessageList;

impl Listing for MessageList {
    type Filter = MessageFilter;
    type Item = MessageSummary;
    const SORTS: &'static [(&'static str, &'static str)] = &[
        ("first_seen", "m.first_seen"),
        // Refused mail has no size: it sorts as the smallest.
        ("size", "coalesce(m.size, 0)"),
        ("sender", "m.sender"),
    ];
    const DEFAULT_SORT: &'static str = "-first_seen";
    /// Messages and refused mail share the relation `m` of [`entries_from_where`].
    const TIE: &'static str = "m.kind, m.uid";
    /// A [`MessageSummary`]'s columns, recipients as `address (status)` joined with `; `.
    const CSV_HEADER: &'static [&'static str] = &[
        "id",
        "server",
        "server_id",
        "queue_id",
        "message_id",
        "sender",
        "recipients",
        "recipient_count",
        "size",
        "client_ip",
        "client_name",
        "first_seen",
        "last_seen",
        "flow",
        "state",
        "state_reason",
        "kind",
        "code",
        "enhanced",
    ];
    const CSV_FILE: &'static str = "messages.csv";

    fn read_filter(p: &mut Params) -> ApiResult<MessageFilter> {
        let filter = MessageFilter {
            quick: p.text("q")?,
            sender: p.text_filter("sender", "sender_op")?,
            recipient: p.text_filter("recipient", "recipient_op")?,
            client: p.text_filter("client", "client_op")?,
            message_id: p.text_filter("message_id", "message_id_op")?,
            queue_id: p.text_filter("queue_id", "queue_id_op")?,
            server: p.number("server", 1..=i32::MAX)?.map(ServerRef::Id),
            flow: p.choice("flow", &FLOWS)?,
            status: p.choice("status", &statuses())?,
            size_min: p.number("size_min", 0..=i64::MAX)?,
            size_max: p.number("size_max", 0..=i64::MAX)?,
            since: p.time("since")?,
            until: p.time("until")?,
            ..Default::default()
        };
        if let (Some(since), Some(until)) = (filter.since, filter.until) {
            if until <= since {
                return Err(ApiError::bad_param("until", "until must be after since"));
            }
        }
        Ok(filter)
    }

    /// Quick when only `q` is given, extended otherwise.
    fn kind(filter: &MessageFilter) -> Kind {
        let quick_only = filter.quick.is_some()
            && MessageFilter {
                quick: None,
                ..filter.clone()
            } == MessageFilter::default();
        if quick_only {
            Kind::Quick
        } else {
            Kind::Extended
        }
    }

    async fn page(
        readers: Readers<'_>,
        scope: &Scope,
        filter: &MessageFilter,
        paging: &Paging,
    ) -> ApiResult<Page<MessageSummary>> {
        let client = readers.page;
        let order_by = paging.order_by(Self::TIE);
        // The rows up to the page's end and the one after it (page_of's sign that more follow).
        let rows = paging.window.offset() + paging.window.limit() + 1;
        let mut filter = filter.clone();
        let newest_first = paging.sort.column == "m.first_seen" && paging.sort.descending;
        let matching = recipient_lookup::choose(client, &mut filter, rows, newest_first).await?;
        bound_newest_recipients(client, scope, &mut filter, rows).await?;
        // A count of more recipients than it counts at most cannot end within its box (each
        // costs a visit to its message: 300 ms for 10,000 at 30 million messages), and would
        // answer "more than the page" 50 ms later: it is not started.
        let count_time_box = if matching.is_some_and(|m| m > COUNT_CAP as f64) {
            std::time::Duration::ZERO
        } else {
            SEARCH_COUNT_TIME_BOX
        };
        let filter = &filter;
        let (count_from_where, q) = entries_from_where(scope, filter)?;
        let (page_from_where, _same_parameters) = entries_page_from_where(scope, filter, &order_by, rows)?;
        let from_where = FromWhere {
            count: &count_from_where,
            page: &page_from_where,
        };
        let mut read = read_page(
            readers,
            EntryRow::COLUMNS,
            from_where,
            q,
            paging.window.counting_within(count_time_box),
            &order_by,
            EntryRow::from_row,
        )
        .await?;
        // The page's recipients are read while its total is still being counted beside it.
        let summaries = entry_summaries(client, scope, std::mem::take(&mut read.items)).await?;
        Ok(read.with_total().await?.with_items(summaries))
    }

    fn csv_select(scope: &Scope, filter: &MessageFilter, order_by: &str) -> ApiResult<(String, Query)> {
        let (from_where, mut q) = entries_from_where(scope, filter)?;
        // A refused entry's recipient is the one refused; a message's, those the caller may see
        // (the scope reads the `messages` row itself: `m` here is the union of both kinds).
        let shown = scope.recipients_condition(&mut q, "rm", "r");
        let recipients_of_m = "FROM messages rm JOIN recipients r ON r.message_started_at = rm.started_at
                                                          AND r.message_uid = rm.uid
                 WHERE rm.started_at = m.started_at AND rm.uid = m.uid";
        let select = format!(
            "SELECT CASE m.kind WHEN 'refused' THEN 'refused-' ELSE '' END || m.uid::text,
                s.name, m.server_id::text, m.queue_id, m.message_id, m.sender,
                CASE m.kind WHEN 'refused' THEN m.refused_recipient || ' (' || m.state || ')' ELSE
                (SELECT string_agg(r.address || ' (' || r.status || ')', '; ' ORDER BY r.last_attempt_at, r.address)
                 {recipients_of_m} AND {shown}) END,
                CASE m.kind WHEN 'refused' THEN (m.refused_recipient IS NOT NULL)::int ELSE
                (SELECT count(*) {recipients_of_m} AND {shown}) END::text,
                m.size::text, host(m.client_ip), m.client_name, {}, {}, m.flow, m.state,
                m.state_reason, m.kind, m.code::text, m.enhanced
         {from_where} {order_by}",
            sql_time("m.first_seen"),
            sql_time("m.last_seen"),
        );
        Ok((select, q))
    }
}

/// When `filter` reads the newest recipients for a page of `rows`, finds their bound by a
/// statement of its own and gives it to the page as a value ([`RecipientLookup::RecipientsSince`];
/// [`RecipientLookup::Recipients`] when fewer messages than `rows` match).
pub(super) async fn bound_newest_recipients(
    client: &Client,
    scope: &Scope,
    filter: &mut MessageFilter,
    rows: i64,
) -> ApiResult<()> {
    if let Some((bound, q)) = newest_bound_query(scope, filter, rows)? {
        let since: Option<omelse::parse::Timestamp> = client.query_one(&bound, &q.params()).await?.get(0);
        filter.recipient_lookup = since.map_or(RecipientLookup::Recipients, RecipientLookup::RecipientsSince);
    }
    Ok(())
}

/// What a bulk search answers: the messages found, and the Message-IDs that found none.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkResult {
    pub items: Vec<MessageSummary>,
    pub not_found: Vec<String>,
}

/// The messages of a list of Message-IDs (with or without `<>`, blanks and repeats ignored).
pub async fn bulk(client: &Client, scope: &Scope, ids: &[String]) -> ApiResult<BulkResult> {
    if ids.len() > MAX_BULK {
        return Err(ApiError::bad_param(
            "message_ids",
            format!("at most {MAX_BULK} Message-IDs at once"),
        ));
    }
    let mut wanted: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let id = message_query::strip_angles(id.trim());
        if id.chars().count() > MAX_VALUE_CHARS {
            return Err(ApiError::bad_param(
                "message_ids",
                format!("a Message-ID is longer than {MAX_VALUE_CHARS} characters"),
            ));
        }
        if !id.is_empty() && seen.insert(id.to_owned()) {
            wanted.push(id.to_owned());
        }
    }
    let mut q = Query::default();
    let list = q.bind(wanted.clone());
    q.and(format!("m.message_id = ANY({list}::text[])"));
    let visible = scope.messages_condition(&mut q, "m");
    q.and(visible);
    let sql = format!(
        "SELECT {} FROM messages m JOIN servers s ON s.id = m.server_id {}
         ORDER BY m.first_seen, m.uid LIMIT {MAX_BULK_ITEMS}",
        MessageRow::COLUMNS,
        q.where_clause()
    );
    let rows: Vec<MessageRow> = client
        .query(&sql, &q.params())
        .await?
        .iter()
        .map(MessageRow::from_row)
        .collect();
    let found: std::collections::HashSet<&str> = rows.iter().filter_map(|m| m.message_id.as_deref()).collect();
    let not_found = wanted
        .iter()
        .filter(|id| !found.contains(id.as_str()))
        .cloned()
        .collect();
    Ok(BulkResult {
        items: summaries(client, scope, rows).await?,
        not_found,
    })
}

/// A bulk search's list as JSON (or `text/plain`, one Message-ID per line).
#[derive(Deserialize, utoipa::ToSchema)]
struct BulkBody {
    /// At most 10 000, with or without `<>`; blanks and repeats are ignored.
    message_ids: Vec<String>,
}

/// `{"message_ids": [...]}` or `text/plain`, one per line.
fn bulk_ids(headers: &HeaderMap, body: &[u8]) -> ApiResult<Vec<String>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        serde_json::from_slice::<BulkBody>(body)
            .map(|b| b.message_ids)
            .map_err(|e| ApiError::bad_param("message_ids", format!("expected {{\"message_ids\": [...]}}: {e}")))
    } else if content_type.starts_with("text/plain") {
        let text =
            std::str::from_utf8(body).map_err(|_| ApiError::bad_param("message_ids", "the list is not UTF-8 text"))?;
        Ok(text.lines().map(str::to_owned).collect())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send application/json ({\"message_ids\": [...]}) or text/plain (one per line)",
        ))
    }
}

/// Quick search (`q`: a Message-ID or a queue id) or extended search, paged and sorted
/// (`first_seen`, `size`, `sender`; default `-first_seen`), or all of it as CSV. Mail refused
/// before it was queued (`NOQUEUE: reject:`) comes as entries of its own (`kind` `refused`,
/// state `rejected`, the reply in `refusal`), merged in the same order: sender, recipient,
/// client, server, time and `status=rejected` find them; a Message-ID, a queue id, a flow or a
/// size finds messages only. Text fields take
/// an operator `<field>_op`: `is` (default; any case; `@domain` for a whole domain, `<>` the null
/// sender), `contains`, `starts`, `not`. The first page of each search goes to the history.
#[utoipa::path(get, path = "/messages", tag = "search", operation_id = "search_messages",
    params(
        ("q" = Option<String>, Query, description = "Quick search: a Message-ID (with `@` or `<>`) or a queue id"),
        ("sender" = Option<String>, Query), ("sender_op" = Option<String>, Query, description = "is, contains, starts or not"),
        ("recipient" = Option<String>, Query, description = "A final or original recipient"),
        ("recipient_op" = Option<String>, Query),
        ("client" = Option<String>, Query, description = "An IP address, a CIDR block or a host name"),
        ("client_op" = Option<String>, Query),
        ("message_id" = Option<String>, Query), ("message_id_op" = Option<String>, Query),
        ("queue_id" = Option<String>, Query), ("queue_id_op" = Option<String>, Query),
        ("server" = Option<i32>, Query, description = "A server id"),
        ("flow" = Option<String>, Query, description = "inbound, outbound, internal or relayed"),
        ("status" = Option<String>, Query, description = "A message state or a recipient's latest status (`rejected` also finds refused mail)"),
        ("size_min" = Option<i64>, Query, description = "Bytes"), ("size_max" = Option<i64>, Query, description = "Bytes"),
        ("since" = Option<String>, Query, format = DateTime, description = "Still active at or after (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "First seen before (RFC 3339)"),
        ListParams,
    ),
    responses(
        (status = 200, description = "A page of messages and refused mail (or, with `format=csv`, every matching row as CSV)",
            content((Page<MessageSummary> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad or unknown parameter (named in `field`)", body = ErrorBody),
    ))]
async fn get_messages(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Response> {
    listing::answer::<MessageList>(&state, &caller, pairs).await
}

/// The messages of a pasted or uploaded list of Message-IDs, and the ids that found none.
#[utoipa::path(post, path = "/messages/bulk", tag = "search", operation_id = "bulk_search",
    request_body(description = "`{\"message_ids\": [...]}`, or `text/plain` with one Message-ID per line",
        content((BulkBody = "application/json"), (String = "text/plain"))),
    responses(
        (status = 200, body = BulkResult),
        (status = 400, description = "More than 10 000 ids, or one longer than 1 000 characters", body = ErrorBody),
    ))]
async fn post_bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<BulkResult>> {
    let ids = bulk_ids(&headers, &body)?;
    let result = bulk(&**state.read_for(&caller).await?, &caller.scope, &ids).await?;
    let terms = serde_json::json!({ "count": ids.len() });
    history::record_quietly(&*state.db.get().await?, &caller, Kind::Bulk, &terms).await;
    Ok(Json(result))
}

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(get_messages)).add(routes!(post_bulk))
}
