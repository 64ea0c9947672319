//! Greylisting (docs/api.md, "Greylisting"): statistics and the decisions list, read from
//! GreyLSE's decisions log and narrowed by [`Scope::greylist_condition`]; the administrators'
//! whitelists and opt-in/out entries (the database ones, editable and audited, and the
//! configuration file's, shown read-only). GreyLSE re-reads the database lists every
//! `lists_refresh_secs`, so a change takes effect within a minute by default.

use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_postgres::{Client, Row};
use utoipa_axum::routes;

use super::params::{rfc3339, time_param};
use crate::access::{Caller, Scope};
use crate::greylist::config::{DomainMode, GreylistConfig};
use crate::greylist::lists::{check_address_pattern, check_client_pattern};
use crate::greylist::store::{self, StaticList};
use crate::sql::Query;
use crate::web::audit::audited;
use crate::web::auth::Admin;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{JsonBody, PathParam, QueryParams};
use crate::web::openapi::ApiRoutes;
use crate::web::paging::{page_of, Page, PageParams};
use crate::web::AppState;

#[cfg(test)]
#[path = "greylist_tests.rs"]
mod tests;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(stats_handler))
        .add(routes!(decisions_handler))
        .add(routes!(whitelist_handler, add_handler))
        .add(routes!(remove_handler))
}

/// Decisions of one period or domain, by what became of the request.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = GreylistCounts)]
pub struct Counts {
    /// Refused for now (a first attempt, or a retry before the delay).
    pub deferred: i64,
    /// The first retry after the delay: accepted with the X-Greylist header.
    pub passed_after_delay: i64,
    /// A triplet that had passed before.
    pub passed_known: i64,
    /// Let through by the auto-whitelist (sender or domain from that client network).
    pub passed_awl: i64,
    /// Let through by a static client or recipient whitelist.
    pub passed_whitelisted: i64,
    /// Not greylisted: the recipient's domain opted out (or not in), or a request without
    /// the attributes greylisting needs.
    pub not_greylisted: i64,
    /// Answered DUNNO because the database did not answer in time.
    pub failed_open: i64,
    /// Every way of passing: after the delay, known, auto-whitelisted, whitelisted.
    pub passed: i64,
}

/// The aggregates read into [`Counts`], over `greylist_decisions d`.
const COUNT_COLUMNS: &str = "count(*) FILTER (WHERE d.action = 'greylist'),
    count(*) FILTER (WHERE d.action = 'pass' AND d.reason = 'triplet passed'),
    count(*) FILTER (WHERE d.action = 'pass' AND d.reason <> 'triplet passed'),
    count(*) FILTER (WHERE d.action = 'awl'),
    count(*) FILTER (WHERE d.action = 'whitelist'),
    count(*) FILTER (WHERE d.action = 'skip' AND d.reason <> 'database unavailable'),
    count(*) FILTER (WHERE d.reason = 'database unavailable')";

impl Counts {
    /// The [`COUNT_COLUMNS`] starting at column `at`.
    fn read(row: &Row, at: usize) -> Counts {
        let mut c = Counts {
            deferred: row.get(at),
            passed_after_delay: row.get(at + 1),
            passed_known: row.get(at + 2),
            passed_awl: row.get(at + 3),
            passed_whitelisted: row.get(at + 4),
            not_greylisted: row.get(at + 5),
            failed_open: row.get(at + 6),
            passed: 0,
        };
        c.passed = c.passed_after_delay + c.passed_known + c.passed_awl + c.passed_whitelisted;
        c
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeriesPoint {
    #[schema(format = DateTime)]
    pub t: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DomainCounts {
    pub domain: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Auto-whitelist entries now in force (administrators only: they are not anyone's mail).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AwlEntries {
    pub senders: i64,
    pub domains: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct GreylistStats {
    #[schema(format = DateTime)]
    pub since: String,
    #[schema(format = DateTime)]
    pub until: String,
    pub bucket: String,
    pub totals: Counts,
    /// Mean wait of the messages that passed after the delay, in seconds.
    pub mean_delay_secs: Option<f64>,
    pub series: Vec<SeriesPoint>,
    /// The recipient domains with the most decisions, at most 50.
    pub by_domain: Vec<DomainCounts>,
    pub awl_entries: Option<AwlEntries>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Default: 24 hours before `until`.
    pub since: Option<String>,
    /// Default: now.
    pub until: Option<String>,
    /// Only this recipient domain.
    pub domain: Option<String>,
    /// `hour` or `day`; default `hour` up to three days, `day` beyond.
    pub bucket: Option<String>,
}

/// `since`/`until` with their defaults: `until` now, `since` `default_span` before it.
fn period(since: Option<&str>, until: Option<&str>, default_span: Duration) -> ApiResult<(SystemTime, SystemTime)> {
    let until = time_param("until", until)?.unwrap_or_else(SystemTime::now);
    let since = time_param("since", since)?.unwrap_or_else(|| until - default_span);
    if since >= until {
        return Err(ApiError::bad_param("since", "since must be before until"));
    }
    Ok((since, until))
}

const DAY: Duration = Duration::from_secs(86_400);

/// `GET /greylist/stats`.
pub async fn stats(client: &Client, scope: &Scope, p: &StatsParams) -> ApiResult<GreylistStats> {
    let (since, until) = period(p.since.as_deref(), p.until.as_deref(), DAY)?;
    let bucket = match p.bucket.as_deref() {
        Some("hour") => "hour",
        Some("day") => "day",
        None if until.duration_since(since).unwrap_or_default() <= 3 * DAY => "hour",
        None => "day",
        Some(_) => return Err(ApiError::bad_param("bucket", "bucket is hour or day")),
    };
    let mut q = Query::default();
    let visible = scope.greylist_condition(&mut q, "d");
    q.and(visible);
    let (s, u) = (q.bind(since), q.bind(until));
    q.and(format!("d.ts >= {s} AND d.ts < {u}"));
    if let Some(domain) = p.domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        let d = q.bind(domain.trim_start_matches('@').to_lowercase());
        q.and(format!("d.recipient_domain = {d}"));
    }
    let filter = q.where_clause();
    let totals = client
        .query_one(
            &format!(
                "SELECT {COUNT_COLUMNS}, avg(d.delay_secs) FILTER (WHERE d.action = 'pass' AND d.reason = 'triplet passed')::float8
                 FROM greylist_decisions d {filter}"
            ),
            &q.params(),
        )
        .await?;
    let by_domain = client
        .query(
            &format!(
                "SELECT coalesce(d.recipient_domain, ''), {COUNT_COLUMNS} FROM greylist_decisions d {filter}
                 GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 50"
            ),
            &q.params(),
        )
        .await?;
    let b = q.bind(bucket.to_owned());
    let series = client
        .query(
            &format!(
                "SELECT date_trunc({b}, d.ts), {COUNT_COLUMNS} FROM greylist_decisions d {filter}
                 GROUP BY 1 ORDER BY 1"
            ),
            &q.params(),
        )
        .await?;
    let awl_entries = match scope {
        Scope::All => {
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM greylist_sender_awl), (SELECT count(*) FROM greylist_domain_awl)",
                    &[],
                )
                .await?;
            Some(AwlEntries {
                senders: row.get(0),
                domains: row.get(1),
            })
        }
        _ => None,
    };
    Ok(GreylistStats {
        since: rfc3339(since),
        until: rfc3339(until),
        bucket: bucket.to_owned(),
        totals: Counts::read(&totals, 0),
        mean_delay_secs: totals.get(7),
        series: series
            .iter()
            .map(|r| SeriesPoint {
                t: rfc3339(r.get(0)),
                counts: Counts::read(r, 1),
            })
            .collect(),
        by_domain: by_domain
            .iter()
            .map(|r| DomainCounts {
                domain: r.get(0),
                counts: Counts::read(r, 1),
            })
            .collect(),
        awl_entries,
    })
}

/// One decision of GreyLSE.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct GreylistDecision {
    #[schema(format = DateTime)]
    pub ts: String,
    /// The policy service that decided.
    pub mx: String,
    pub client_ip: Option<String>,
    pub client_name: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    /// `greylist` (deferred), `pass`, `awl`, `whitelist` or `skip` (not greylisted).
    pub decision: String,
    pub reason: String,
    /// Deferred: seconds before a retry passes.
    pub delay_remaining: Option<i32>,
    /// Passed after the delay: seconds it waited.
    pub delayed: Option<i32>,
    pub queue_id: Option<String>,
}

const DECISION_COLUMNS: &str = "d.ts, d.mx, host(d.client_address), d.client_name, d.sender, d.recipient,
    d.action, d.reason, d.delay_secs, d.queue_id";

fn decision(row: &Row) -> GreylistDecision {
    let action: String = row.get(6);
    let delay: Option<i32> = row.get(8);
    GreylistDecision {
        ts: rfc3339(row.get(0)),
        mx: row.get(1),
        client_ip: row.get(2),
        client_name: row.get(3),
        sender: row.get(4),
        recipient: row.get(5),
        delay_remaining: delay.filter(|_| action == "greylist"),
        delayed: delay.filter(|_| action == "pass"),
        decision: action,
        reason: row.get(7),
        queue_id: row.get(9),
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionFilter {
    /// Default: 24 hours before `until` (the log is large; a period keeps the query short).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Sender or recipient, case-insensitive.
    pub address: Option<String>,
    /// Only this decision (`greylist`, `pass`, `awl`, `whitelist`, `skip`).
    pub decision: Option<String>,
    /// Only this client address.
    pub client: Option<String>,
}

/// `GET /greylist/decisions`: newest first.
pub async fn decisions(
    client: &Client,
    scope: &Scope,
    f: &DecisionFilter,
    page: PageParams,
) -> ApiResult<Page<GreylistDecision>> {
    let window = page.window()?;
    let (since, until) = period(f.since.as_deref(), f.until.as_deref(), DAY)?;
    let mut q = Query::default();
    let visible = scope.greylist_condition(&mut q, "d");
    q.and(visible);
    let (s, u) = (q.bind(since), q.bind(until));
    q.and(format!("d.ts >= {s} AND d.ts < {u}"));
    if let Some(address) = f.address.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        let a = q.bind(address.to_lowercase());
        q.and(format!("(d.recipient = {a} OR lower(d.sender) = {a})"));
    }
    if let Some(action) = f.decision.as_deref().filter(|a| !a.is_empty()) {
        if !["greylist", "pass", "awl", "whitelist", "skip"].contains(&action) {
            return Err(ApiError::bad_param(
                "decision",
                "decision is greylist, pass, awl, whitelist or skip",
            ));
        }
        let a = q.bind(action.to_owned());
        q.and(format!("d.action = {a}"));
    }
    if let Some(ip) = f.client.as_deref().filter(|c| !c.is_empty()) {
        let ip: std::net::IpAddr = ip
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_param("client", "client is an IP address"))?;
        let c = q.bind(ip.to_canonical());
        q.and(format!("d.client_address = {c}"));
    }
    let from_where = format!("FROM greylist_decisions d {}", q.where_clause());
    let order_by = "ORDER BY d.ts DESC, d.recipient, d.sender";
    page_of(client, DECISION_COLUMNS, &from_where, q, window, order_by, decision).await
}

/// The decisions that led to these messages (the hops of one journey), oldest first, each once:
/// those about a message's sender and one of its recipients (as addressed, before any
/// rewriting) in the two days before it was received, which covers Postgrey's default retry
/// window, that the caller may see ([`Scope::greylist_condition`]: not the decisions about
/// other recipients of the same mail). For the message detail page; one query for all of them.
pub async fn greylist_decisions_for_messages(
    client: &Client,
    scope: &Scope,
    message_uids: &[i64],
) -> ApiResult<Vec<GreylistDecision>> {
    let mut q = Query::default();
    let uids = q.bind(message_uids.to_vec());
    let visible = scope.greylist_condition(&mut q, "d");
    let sql = format!(
        "WITH m AS (SELECT DISTINCT ON (uid) started_at, uid, sender, first_seen FROM messages
                    WHERE uid = ANY({uids}::bigint[]) ORDER BY uid, started_at DESC)
         SELECT DISTINCT {DECISION_COLUMNS} FROM m
         JOIN greylist_decisions d
           ON d.ts >= m.first_seen - interval '2 days' AND d.ts <= m.first_seen + interval '1 minute'
          AND lower(d.sender) = lower(m.sender)
          AND d.recipient IN (SELECT lower(r.address) FROM recipients r
                              WHERE r.message_started_at = m.started_at AND r.message_uid = m.uid
                              UNION
                              SELECT lower(r.orig_address) FROM recipients r
                              WHERE r.message_started_at = m.started_at AND r.message_uid = m.uid
                                AND r.orig_address IS NOT NULL)
         WHERE {visible}
         ORDER BY d.ts"
    );
    let rows = client.query(&sql, &q.params()).await?;
    Ok(rows.iter().map(decision).collect())
}

/// What a whitelist or opt-in/out entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A client not greylisted: address, CIDR block, partial IPv4, reverse name or glob.
    Client,
    /// A recipient not greylisted: `user@domain`, `user@` or a domain.
    Recipient,
    /// A recipient domain (or address) not greylisted while the service greylists all others.
    DomainOptout,
    /// A recipient domain (or address) greylisted while the service greylists only those.
    DomainOptin,
}

impl EntryKind {
    fn name(self) -> &'static str {
        match self {
            EntryKind::Client => "client",
            EntryKind::Recipient => "recipient",
            EntryKind::DomainOptout => "domain_optout",
            EntryKind::DomainOptin => "domain_optin",
        }
    }

    /// The store's list of a whitelist kind; `None` for the domains' settings.
    fn list(self) -> Option<StaticList> {
        match self {
            EntryKind::Client => Some(StaticList::Clients),
            EntryKind::Recipient => Some(StaticList::Recipients),
            EntryKind::DomainOptout | EntryKind::DomainOptin => None,
        }
    }

    /// Whether the service's mode reads entries of this kind.
    fn active(self, mode: DomainMode) -> bool {
        match self {
            EntryKind::DomainOptout => mode == DomainMode::Optout,
            EntryKind::DomainOptin => mode == DomainMode::Optin,
            _ => true,
        }
    }

    fn check(self, value: &str) -> Result<(), String> {
        match self {
            EntryKind::Client => check_client_pattern(value),
            _ => check_address_pattern(value),
        }
    }
}

/// One entry of the administrators' page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WhitelistEntry {
    /// `client:ID`, `recipient:ID` or `domain:TARGET` for database entries; null for the
    /// configuration file's (edited there, not here).
    pub id: Option<String>,
    pub kind: EntryKind,
    pub value: String,
    pub comment: String,
    pub created_by: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    /// `database` or `config`.
    pub source: &'static str,
    /// False for opt-in entries while the service runs in opt-out mode, and the reverse.
    pub active: bool,
}

/// `POST /admin/greylist/whitelist`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct NewEntry {
    pub kind: EntryKind,
    pub value: String,
    #[serde(default)]
    pub comment: String,
}

/// `GET /admin/greylist/whitelist`: the database's entries, then the configuration file's.
pub async fn whitelist(client: &Client, cfg: &GreylistConfig) -> ApiResult<Vec<WhitelistEntry>> {
    let rows = client
        .query(
            "SELECT 'client:' || id, 'client', pattern, comment, created_by, created_at FROM greylist_client_whitelist
             UNION ALL
             SELECT 'recipient:' || id, 'recipient', pattern, comment, created_by, created_at
             FROM greylist_recipient_whitelist
             UNION ALL
             SELECT 'domain:' || target, 'domain_' || mode, target, comment, created_by, created_at
             FROM greylist_domain_policy
             ORDER BY 2, 3",
            &[],
        )
        .await?;
    let mut entries: Vec<WhitelistEntry> = rows
        .iter()
        .filter_map(|r| {
            let kind: EntryKind = serde_json::from_value(json!(r.get::<_, &str>(1))).ok()?;
            Some(WhitelistEntry {
                id: r.get(0),
                kind,
                value: r.get(2),
                comment: r.get(3),
                created_by: Some(r.get(4)),
                created_at: Some(rfc3339(r.get(5))),
                source: "database",
                active: kind.active(cfg.mode),
            })
        })
        .collect();
    let configured = [
        (EntryKind::Client, &cfg.whitelist_clients),
        (EntryKind::Recipient, &cfg.whitelist_recipients),
        (EntryKind::DomainOptout, &cfg.optout),
        (EntryKind::DomainOptin, &cfg.optin),
    ];
    for (kind, values) in configured {
        entries.extend(values.iter().map(|value| WhitelistEntry {
            id: None,
            kind,
            value: value.clone(),
            comment: String::new(),
            created_by: None,
            created_at: None,
            source: "config",
            active: kind.active(cfg.mode),
        }));
    }
    Ok(entries)
}

/// Adds `entry` with the store's functions: its id and time, or 409 when it is there already.
async fn insert_entry(client: &Client, login: &str, entry: &NewEntry, value: &str) -> ApiResult<(String, SystemTime)> {
    entry.kind.check(value).map_err(|e| ApiError::bad_param("value", e))?;
    if entry.comment.len() > 1000 {
        return Err(ApiError::bad_param("comment", "comment is at most 1000 bytes"));
    }
    let added = match entry.kind.list() {
        Some(list) => store::add_to_whitelist(client, list, value, &entry.comment, login)
            .await
            .map(|added| added.map(|(id, at)| (format!("{}:{id}", entry.kind.name()), at))),
        None => {
            let mode = entry.kind.name().trim_start_matches("domain_");
            store::add_domain_policy(client, value, mode, &entry.comment, login)
                .await
                .map(|added| added.map(|at| (format!("domain:{value}"), at)))
        }
    };
    added
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, format!("{value} is listed already")))
}

/// `POST /admin/greylist/whitelist`: adds an entry (409 if it is there already); audited.
pub async fn add_entry(
    client: &Client,
    Admin(admin): &Admin,
    cfg: &GreylistConfig,
    entry: &NewEntry,
) -> ApiResult<WhitelistEntry> {
    let value = entry.value.trim().to_lowercase();
    let target = format!("{}:{value}", entry.kind.name());
    let details = json!({"kind": entry.kind, "value": value, "comment": entry.comment});
    let outcome = insert_entry(client, &admin.login, entry, &value).await;
    let (id, at) = audited(
        client,
        &admin.login,
        "greylist.whitelist.add",
        &target,
        details,
        outcome,
    )
    .await?;
    Ok(WhitelistEntry {
        id: Some(id),
        kind: entry.kind,
        value,
        comment: entry.comment.clone(),
        created_by: Some(admin.login.clone()),
        created_at: Some(rfc3339(at)),
        source: "database",
        active: entry.kind.active(cfg.mode),
    })
}

/// Removes the entry of an id `client:N`, `recipient:N` or `domain:TARGET`; 404 when there is none.
async fn delete_entry(client: &Client, id: &str) -> ApiResult<()> {
    let (kind, key) = id.split_once(':').ok_or_else(ApiError::not_found)?;
    let removed = match kind {
        "client" | "recipient" => {
            let key: i64 = key.parse().map_err(|_| ApiError::not_found())?;
            let list = if kind == "client" {
                StaticList::Clients
            } else {
                StaticList::Recipients
            };
            store::remove_from_whitelist(client, list, key).await
        }
        "domain" => store::remove_domain_policy(client, key).await,
        _ => Ok(false),
    };
    match removed.map_err(ApiError::internal)? {
        true => Ok(()),
        false => Err(ApiError::not_found()),
    }
}

/// `DELETE /admin/greylist/whitelist/{id}`: 404 when there is no such entry; audited.
pub async fn remove_entry(client: &Client, Admin(admin): &Admin, id: &str) -> ApiResult<()> {
    let outcome = delete_entry(client, id).await;
    audited(
        client,
        &admin.login,
        "greylist.whitelist.remove",
        id,
        json!({}),
        outcome,
    )
    .await
}

/// GreyLSE's statistics: decisions by outcome over time and by recipient domain, the mean delay.
#[utoipa::path(get, path = "/greylist/stats", tag = "greylist", operation_id = "greylist_stats",
    params(StatsParams),
    responses((status = 200, body = GreylistStats), (status = 400, description = "A bad parameter (named)", body = ErrorBody)))]
async fn stats_handler(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<StatsParams>,
) -> ApiResult<Json<GreylistStats>> {
    let client = state.primary_for(&caller).await?;
    Ok(Json(stats(&client, &caller.scope, &params).await?))
}

/// GreyLSE's decisions, newest first (`total` counted up to 10 000).
#[utoipa::path(get, path = "/greylist/decisions", tag = "greylist", operation_id = "greylist_decisions",
    params(DecisionFilter, PageParams),
    responses((status = 200, body = Page<GreylistDecision>), (status = 400, description = "A bad parameter (named)", body = ErrorBody)))]
async fn decisions_handler(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(filter): QueryParams<DecisionFilter>,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<GreylistDecision>>> {
    let client = state.primary_for(&caller).await?;
    Ok(Json(decisions(&client, &caller.scope, &filter, page).await?))
}

/// The whitelists and opt-in/out entries: the database's (editable), then the configuration
/// file's (read-only, `id` null).
#[utoipa::path(get, path = "/admin/greylist/whitelist", tag = "admin", operation_id = "greylist_whitelist",
    responses((status = 200, body = Vec<WhitelistEntry>)))]
async fn whitelist_handler(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Vec<WhitelistEntry>>> {
    let client = state.db.get().await?;
    Ok(Json(whitelist(&client, &state.config.greylist).await?))
}

/// Add a whitelist or opt-in/out entry; GreyLSE applies it within `lists_refresh_secs`.
#[utoipa::path(post, path = "/admin/greylist/whitelist", tag = "admin", operation_id = "add_greylist_entry",
    request_body = NewEntry,
    responses(
        (status = 201, body = WhitelistEntry),
        (status = 400, description = "A pattern that could never match (`value`), or a comment over 1000 bytes", body = ErrorBody),
        (status = 409, description = "Listed already, or the domain has the other setting", body = ErrorBody),
    ))]
async fn add_handler(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(entry): JsonBody<NewEntry>,
) -> ApiResult<(StatusCode, Json<WhitelistEntry>)> {
    let client = state.db.get().await?;
    let added = add_entry(&client, &admin, &state.config.greylist, &entry).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Remove a database entry (`client:N`, `recipient:N` or `domain:TARGET`).
#[utoipa::path(delete, path = "/admin/greylist/whitelist/{id}", tag = "admin", operation_id = "remove_greylist_entry",
    params(("id" = String, Path, description = "`client:N`, `recipient:N` or `domain:TARGET`")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody)))]
async fn remove_handler(
    State(state): State<AppState>,
    admin: Admin,
    PathParam(id): PathParam<String>,
) -> ApiResult<StatusCode> {
    let client = state.db.get().await?;
    remove_entry(&client, &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
