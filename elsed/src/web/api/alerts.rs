//! `/alerts`: the alerts the caller may see, their history, and acknowledging or silencing them
//! (audited). An administrator sees every alert; a group member those the screens behind their
//! evidence would show them ([`visible`]); an end user none (their view is their mail, not the
//! fleet).

use axum::extract::State;
use axum::Json;
use omelse::parse::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;

use super::params::Params;
use crate::access::{audit, Caller, Scope};
use crate::alerts::lifecycle::{self, ActionError};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{JsonBody, PathParam, QueryParams};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(list_alerts))
        .add(routes!(alert_detail))
        .add(routes!(acknowledge))
        .add(routes!(silence))
}

/// A condition ELSE noticed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: i64,
    /// destination, blocklist, volume, silent, ingest_lag, queue, agent, bounce_rate, reject_rate, greylist.
    pub rule: String,
    /// What it is about within the rule (`out1/example.net`).
    pub key: String,
    pub server_id: Option<i32>,
    pub server: Option<String>,
    pub domain: Option<String>,
    /// warning or critical.
    pub severity: String,
    /// open or resolved.
    pub state: String,
    pub title: String,
    /// The counts, remote replies and links (search URLs, queue ids) behind it.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: Timestamp,
    /// The last evaluation that found the condition.
    #[schema(value_type = String, format = DateTime)]
    pub held_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub resolved_at: Option<Timestamp>,
    /// How many times it opened (a condition that returns soon after it resolved reopens it).
    pub occurrences: i32,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub silenced_until: Option<Timestamp>,
    pub silenced_by: Option<String>,
}

const COLUMNS: &str = "a.id, a.rule, a.key, a.server_id, s.name, a.domain, a.severity, a.state, a.title, a.evidence,
    a.opened_at, a.held_at, a.resolved_at, a.occurrences, a.acknowledged_at, a.acknowledged_by, a.silenced_until,
    a.silenced_by";

impl Alert {
    fn from_row(r: &tokio_postgres::Row) -> Alert {
        Alert {
            id: r.get(0),
            rule: r.get(1),
            key: r.get(2),
            server_id: r.get(3),
            server: r.get(4),
            domain: r.get(5),
            severity: r.get(6),
            state: r.get(7),
            title: r.get(8),
            evidence: r.get(9),
            opened_at: r.get(10),
            held_at: r.get(11),
            resolved_at: r.get(12),
            occurrences: r.get(13),
            acknowledged_at: r.get(14),
            acknowledged_by: r.get(15),
            silenced_until: r.get(16),
            silenced_by: r.get(17),
        }
    }
}

/// A condition on an `alerts` row aliased `a`: the caller may see the alert. Binds into `q`.
///
/// Alerts follow the rules of the screens their evidence comes from: a server's health
/// ([`HEALTH_RULES`], as on the servers page) is for the members of a group with that server;
/// what is counted over a whole server's mail (volumes, rejects, blocklistings, a remote
/// destination's failures, which mix every customer's messages) for the groups that own the
/// server whole, as the server-wide rollups are; an alert about a group's domain (a bounce spike,
/// or a destination that is that domain, on one of the group's servers) for that group. An
/// alert about nobody's domain on no server (greylisting harm: its evidence counts every
/// recipient's triplets) is for administrators.
///
/// [`HEALTH_RULES`]: crate::alerts::detectors::HEALTH_RULES
pub fn visible(scope: &Scope, q: &mut Query, a: &str) -> String {
    match scope {
        Scope::All => "TRUE".into(),
        Scope::Groups(groups) => {
            let health = q.bind(
                crate::alerts::detectors::HEALTH_RULES
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>(),
            );
            let on_server = scope.servers_condition(q, &format!("{a}.server_id"));
            let whole = q.bind(Scope::whole_servers(groups));
            let (servers, domains) = Scope::pairs(groups);
            let servers = q.bind(servers);
            let domains = q.bind(domains);
            format!(
                "(({a}.rule = ANY({health}::text[]) AND {on_server})
                  OR {a}.server_id = ANY({whole}::int[])
                  OR EXISTS (SELECT 1 FROM unnest({servers}::int[], {domains}::text[]) AS scope(server_id, domain)
                             WHERE scope.domain = {a}.domain
                               AND ({a}.server_id IS NULL OR scope.server_id = {a}.server_id)))"
            )
        }
        Scope::Addresses(_) => "FALSE".into(),
    }
}

/// The alerts of `state` (`open`, `resolved` or `all`) the caller may see, newest first.
pub async fn list(
    client: &tokio_postgres::Client,
    scope: &Scope,
    state: &str,
    limit: i64,
) -> Result<Vec<Alert>, tokio_postgres::Error> {
    let mut q = Query::default();
    let condition = visible(scope, &mut q, "a");
    q.and(condition);
    if state != "all" {
        let state = q.bind(state.to_owned());
        q.and(format!("a.state = {state}"));
    }
    let limit = q.bind(limit);
    let rows = client
        .query(
            &format!(
                "SELECT {COLUMNS} FROM alerts a LEFT JOIN servers s ON s.id = a.server_id {}
                 ORDER BY a.state = 'open' DESC, a.severity = 'critical' DESC, a.opened_at DESC, a.id DESC LIMIT {limit}",
                q.where_clause()
            ),
            &q.params(),
        )
        .await?;
    Ok(rows.iter().map(Alert::from_row).collect())
}

/// The alert `id` if the caller may see it.
pub async fn find(
    client: &tokio_postgres::Client,
    scope: &Scope,
    id: i64,
) -> Result<Option<Alert>, tokio_postgres::Error> {
    find_in(client, scope, id).await
}

/// [`find`] within a transaction.
async fn find_in(
    client: &impl tokio_postgres::GenericClient,
    scope: &Scope,
    id: i64,
) -> Result<Option<Alert>, tokio_postgres::Error> {
    let mut q = Query::default();
    let bound = q.bind(id);
    q.and(format!("a.id = {bound}"));
    let condition = visible(scope, &mut q, "a");
    q.and(condition);
    let row = client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM alerts a LEFT JOIN servers s ON s.id = a.server_id {}",
                q.where_clause()
            ),
            &q.params(),
        )
        .await?;
    Ok(row.as_ref().map(Alert::from_row))
}

/// The alert `id` if the caller may see it, 404 otherwise (it does not exist for them).
async fn visible_alert(client: &tokio_postgres::Client, scope: &Scope, id: i64) -> ApiResult<Alert> {
    find(client, scope, id).await?.ok_or_else(ApiError::not_found)
}

/// The alerts: open ones first (critical first), then the resolved (default: open only).
#[utoipa::path(get, path = "/alerts", tag = "alerts", operation_id = "list_alerts",
    params(("state" = Option<String>, Query, description = "open (default), resolved or all"),
        ("limit" = Option<i64>, Query, description = "1 to 1000 (default 200)")),
    responses((status = 200, body = Vec<Alert>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Json<Vec<Alert>>> {
    let mut params = Params::new(pairs);
    let wanted = params
        .choice("state", &["open", "resolved", "all"])?
        .unwrap_or_else(|| "open".into());
    let limit = params.number("limit", 1..=1000i64)?.unwrap_or(200);
    params.finish()?;
    let client = state.db.get().await?;
    Ok(Json(list(&client, &caller.scope, &wanted, limit).await?))
}

/// One step of an alert's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertEvent {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// opened, reopened, updated, resolved, acknowledged, silenced or unsilenced.
    pub kind: String,
    /// Who acknowledged or silenced; absent for the evaluator's steps.
    pub actor: Option<String>,
    /// The evidence of the moment, or the silence's end.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// An alert and its history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    pub alert: Alert,
    pub events: Vec<AlertEvent>,
}

/// An alert with its history, oldest step first.
#[utoipa::path(get, path = "/alerts/{id}", tag = "alerts", operation_id = "alert_detail",
    params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = AlertDetail), (status = 404, description = "No such alert, or outside the caller's scope", body = ErrorBody)))]
async fn alert_detail(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<AlertDetail>> {
    let client = state.db.get().await?;
    let alert = visible_alert(&client, &caller.scope, id).await?;
    let events = client
        .query(
            "SELECT at, kind, actor, details FROM alert_events WHERE alert_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| AlertEvent {
            at: r.get(0),
            kind: r.get(1),
            actor: r.get(2),
            details: r.get(3),
        })
        .collect();
    Ok(Json(AlertDetail { alert, events }))
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound => ApiError::not_found(),
            ActionError::Database(e) => e.into(),
        }
    }
}

/// What a user does to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Acknowledge,
    /// Until then; `None` lifts the silence.
    Silence(Option<Timestamp>),
}

/// `login`, of `scope`, does `action` to the alert `id` at `now`: 404 when the alert is outside
/// the scope (nothing done, nothing recorded); otherwise done, kept in the alert's history and
/// in the audit log, in one transaction. The alert as it is now.
pub async fn act(
    client: &mut tokio_postgres::Client,
    scope: &Scope,
    login: &str,
    id: i64,
    action: Action,
    now: Timestamp,
) -> ApiResult<Alert> {
    let tx = client.transaction().await?;
    if find_in(&tx, scope, id).await?.is_none() {
        return Err(ApiError::not_found());
    }
    let (name, details) = match action {
        Action::Acknowledge => {
            lifecycle::acknowledge(&tx, id, login, now).await?;
            ("alert.acknowledge", serde_json::json!({}))
        }
        Action::Silence(until) => {
            lifecycle::silence(&tx, id, until, login, now).await?;
            match until {
                Some(until) => ("alert.silence", serde_json::json!({"until": until})),
                None => ("alert.unsilence", serde_json::json!({})),
            }
        }
    };
    audit::record(&tx, login, name, Some(&id.to_string()), details, "ok").await?;
    let alert = find_in(&tx, scope, id).await?.ok_or_else(ApiError::not_found)?;
    tx.commit().await?;
    Ok(alert)
}

/// Mark an alert as being handled (audited).
#[utoipa::path(post, path = "/alerts/{id}/acknowledge", tag = "alerts", operation_id = "acknowledge_alert",
    params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = Alert), (status = 404, body = ErrorBody)))]
async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<i64>,
) -> ApiResult<Json<Alert>> {
    let mut client = state.db.get().await?;
    let alert = act(
        &mut client,
        &caller.scope,
        &caller.login,
        id,
        Action::Acknowledge,
        Timestamp::now(),
    )
    .await?;
    Ok(Json(alert))
}

/// How long to silence an alert.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// 1 to 43200 (30 days); null lifts the silence.
    pub minutes: Option<i64>,
}

/// Keep an alert's openings and resolutions from the channels for a time, or lift that (audited).
#[utoipa::path(post, path = "/alerts/{id}/silence", tag = "alerts", operation_id = "silence_alert",
    params(("id" = i64, Path, description = "Alert id")),
    request_body = SilenceRequest,
    responses((status = 200, body = Alert), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn silence(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<i64>,
    JsonBody(request): JsonBody<SilenceRequest>,
) -> ApiResult<Json<Alert>> {
    if request.minutes.is_some_and(|m| !(1..=43_200).contains(&m)) {
        return Err(ApiError::bad_param("minutes", "must be between 1 and 43200"));
    }
    let now = Timestamp::now();
    let until = request
        .minutes
        .map(|m| Timestamp(now.0 + m * 60 * Timestamp::MICROS_PER_SECOND));
    let mut client = state.db.get().await?;
    let alert = act(
        &mut client,
        &caller.scope,
        &caller.login,
        id,
        Action::Silence(until),
        now,
    )
    .await?;
    Ok(Json(alert))
}
