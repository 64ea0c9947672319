//! The servers' health from the SNMP poller, and the queue actions (the original's double-click
//! on a server): `GET /servers/{id}/samples`, `POST /admin/servers/{id}/actions`, and the
//! Prometheus text of `/metrics` (outside `/api/v1`, for users who already run Prometheus).

use std::collections::BTreeMap;

use axum::extract::State;
use std::net::IpAddr;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use omelse::parse::Timestamp;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa_axum::routes;

use super::params::Params;
use crate::access::audit;
use crate::access::Caller;
use crate::allow_list::AllowList;
use crate::snmp::{self, Action, AgentSecrets, AgentSettings, Sample};
use crate::sql::Query;
use crate::web::auth::{Admin, ClientIp};
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::extract::{JsonBody, PathParam};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(samples))
        .add(routes!(act))
        .add(routes!(agent, set_agent))
}

/// `/metrics`, mounted beside `/healthz`.
pub fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// One sample as the browser draws it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SampleView {
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    pub reachable: bool,
    pub master_alive: Option<bool>,
    pub load: Option<f32>,
    pub spool_disk_pct: Option<i16>,
    pub state: String,
    pub reasons: Vec<String>,
    pub error: Option<String>,
    /// By queue name: incoming, active, deferred, hold (those the agent answered for).
    pub queues: BTreeMap<String, QueueView>,
}

/// One queue of a sample.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueView {
    pub count: i64,
    pub bytes: i64,
    /// Age in seconds of the oldest message, 0 when empty.
    pub oldest_age: i64,
}

/// A server's samples, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Samples {
    pub items: Vec<SampleView>,
}

impl From<&Sample> for SampleView {
    fn from(sample: &Sample) -> Self {
        let queues = sample
            .queues()
            .iter()
            .filter_map(|(name, queue)| {
                queue.map(|q| {
                    let view = QueueView {
                        count: q.count,
                        bytes: q.bytes,
                        oldest_age: q.oldest_secs,
                    };
                    ((*name).to_owned(), view)
                })
            })
            .collect();
        SampleView {
            ts: sample.ts,
            reachable: sample.reachable,
            master_alive: sample.master_alive,
            load: sample.load1,
            spool_disk_pct: sample.spool_used_pct,
            state: sample.state.name().to_owned(),
            reasons: sample.reasons.clone(),
            error: sample.error.clone(),
            queues,
        }
    }
}

/// Whether the caller may see server `id` (404 otherwise: it does not exist for them).
async fn visible_server(client: &tokio_postgres::Client, caller: &Caller, id: i32) -> ApiResult<String> {
    let mut q = Query::default();
    let bound = q.bind(id);
    q.and(format!("s.id = {bound}"));
    let visible = caller.scope.servers_condition(&mut q, "s.id");
    q.and(visible);
    client
        .query_opt(
            &format!("SELECT s.name FROM servers s {}", q.where_clause()),
            &q.params(),
        )
        .await?
        .map(|row| row.get(0))
        .ok_or_else(ApiError::not_found)
}

/// `since` and `until` of the samples, by default the last 24 hours.
pub fn read_period(params: &mut Params) -> ApiResult<(Timestamp, Timestamp)> {
    let until = params.time("until")?.unwrap_or_else(Timestamp::now);
    let since = params
        .time("since")?
        .unwrap_or(Timestamp(until.0 - 86_400 * Timestamp::MICROS_PER_SECOND));
    Ok((since, until))
}

/// The SNMP poller's samples of one server over a time range (default: the last 24 hours).
#[utoipa::path(get, path = "/servers/{id}/samples", tag = "servers", operation_id = "server_samples",
    params(("id" = i32, Path, description = "Server id"),
        ("since" = Option<String>, Query, format = DateTime), ("until" = Option<String>, Query, format = DateTime)),
    responses(
        (status = 200, body = Samples),
        (status = 400, description = "A bad or unknown parameter", body = ErrorBody),
        (status = 404, description = "No such server, or outside the caller's scope", body = ErrorBody),
    ))]
async fn samples(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<i32>,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Json<Samples>> {
    let mut params = Params::new(pairs);
    let (since, until) = read_period(&mut params)?;
    params.finish()?;
    let client = state.db.get().await?;
    visible_server(&client, &caller, id).await?;
    let samples = snmp::samples(&client, id, since, until)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(Samples {
        items: samples.iter().map(SampleView::from).collect(),
    }))
}

/// What an administrator asks the server's agent to do.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// flush, delete_deferred, hold, release, requeue, delete (`-` or `_`).
    pub action: String,
    pub queue_id: Option<String>,
    /// Must be true: the client asked the administrator first.
    #[serde(default)]
    pub confirm: bool,
}

/// How a queue action ended.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActionAnswer {
    pub ok: bool,
    /// done, failed, refused or unreachable.
    pub result: String,
    /// What the agent answered.
    pub answer: String,
    /// The action's entry in the audit log.
    pub audit_id: i64,
}

/// What the operations through a server's agent may refuse besides a bad body.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum SnmpRefusals {
    /// No such server, or outside the caller's scope.
    #[response(status = 404)]
    NoServer(ErrorBody),
    /// SNMP is not set up (`snmp.key_file`), or the database is unavailable.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The SNMP thread, or 503 when SNMP is not set up.
fn snmp_handle(state: &AppState) -> ApiResult<&snmp::SnmpHandle> {
    state.snmp.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SNMP is not configured on this server (snmp.key_file)",
        )
    })
}

/// Run a queue action (flush, delete_deferred, hold, release, requeue, delete) through the
/// server's agent; audited whatever its outcome.
#[utoipa::path(post, path = "/admin/servers/{id}/actions", tag = "admin", operation_id = "queue_action",
    params(("id" = i32, Path, description = "Server id")),
    request_body = ActionRequest,
    responses(
        (status = 200, body = ActionAnswer),
        (status = 400, description = "No `confirm: true`, an unknown action, or not a queue id", body = ErrorBody),
        SnmpRefusals,
    ))]
async fn act(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParam(id): PathParam<i32>,
    JsonBody(request): JsonBody<ActionRequest>,
) -> ApiResult<Json<ActionAnswer>> {
    if !request.confirm {
        return Err(ApiError::bad_param(
            "confirm",
            "confirm must be true: queue actions are confirmed",
        ));
    }
    let name = request.action.replace('_', "-");
    let action =
        Action::new(&name, request.queue_id.as_deref().map(str::trim)).map_err(|e| ApiError::bad_param("action", e))?;
    let handle = snmp_handle(&state)?;
    let client = state.db.get().await?;
    visible_server(&client, &caller, id).await?;
    let outcome = snmp::act(&client, handle, &caller.login, id, action)
        .await
        .map_err(ApiError::internal)?;
    let answer = outcome
        .agent_text
        .clone()
        .unwrap_or_else(|| outcome.snmp_status.clone());
    Ok(Json(ActionAnswer {
        ok: outcome.result == "done",
        result: outcome.result,
        answer,
        audit_id: outcome.audit_id,
    }))
}

/// Who may read `/metrics` (server names and queue sizes are not for anyone): whoever shows the
/// bearer token of `[web] metrics_token_file`, or a client of `[web] metrics_allowed_clients`;
/// Prometheus' scrape configuration does either (`authorization` with `credentials_file`).
#[derive(Debug, Default)]
pub struct MetricsAccess {
    token: Option<String>,
    allowed: AllowList,
}

impl MetricsAccess {
    pub fn new(web: &crate::config::web::WebConfig) -> anyhow::Result<MetricsAccess> {
        let token = match &web.metrics_token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("web.metrics_token_file {}: {e}", path.display()))?;
                let token = text.trim();
                if token.len() < 16 {
                    anyhow::bail!(
                        "web.metrics_token_file {}: the token must have at least 16 characters",
                        path.display()
                    );
                }
                Some(token.to_owned())
            }
            None => None,
        };
        let allowed = AllowList::parse(&web.metrics_allowed_clients)
            .map_err(|e| anyhow::anyhow!("web.metrics_allowed_clients: {e}"))?;
        Ok(MetricsAccess { token, allowed })
    }

    /// `None` lets the request through; otherwise the refusal: 401 asking for the token when
    /// there is one, 403 otherwise.
    fn refusal(&self, headers: &HeaderMap, client: Option<IpAddr>) -> Option<Response> {
        if client.is_some_and(|ip| self.allowed.allows(ip)) {
            return None;
        }
        let Some(token) = &self.token else {
            return Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "/metrics is served to web.metrics_allowed_clients or with web.metrics_token_file's token only",
                )
                .into_response(),
            );
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        if given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(token.as_bytes()))) {
            return None;
        }
        let mut refused = ApiError::new(StatusCode::UNAUTHORIZED, "/metrics needs its bearer token").into_response();
        refused
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        Some(refused)
    }
}

/// The poller's latest values in Prometheus' text format.
async fn metrics(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(refused) = state.metrics.refusal(&headers, ip) {
        return Ok(refused);
    }
    let client = state.db.get().await?;
    let text = snmp::prometheus_text(&client).await.map_err(ApiError::internal)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// The server's SNMP agent as the inventory shows it: settings, never the secrets.
#[utoipa::path(get, path = "/admin/servers/{id}/snmp", tag = "admin", operation_id = "snmp_agent",
    params(("id" = i32, Path, description = "Server id")),
    responses((status = 200, body = AgentSettings), (status = 404, description = "No agent set up yet", body = ErrorBody)))]
async fn agent(
    State(state): State<AppState>,
    Admin(_): Admin,
    PathParam(id): PathParam<i32>,
) -> ApiResult<Json<AgentSettings>> {
    let client = state.db.get().await?;
    let agents = snmp::agents(&client).await.map_err(ApiError::internal)?;
    agents
        .into_iter()
        .find(|(server_id, _, _)| *server_id == id)
        .map(|(_, _, settings)| Json(settings))
        .ok_or_else(ApiError::not_found)
}

/// What an administrator sets for a server's agent: its settings and its secrets (communities
/// or SNMPv3 passphrases), stored encrypted with `snmp.key_file`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    pub settings: AgentSettings,
    pub secrets: AgentSecrets,
}

/// Set (or replace) the server's agent; audited with its settings, never its secrets.
#[utoipa::path(put, path = "/admin/servers/{id}/snmp", tag = "admin", operation_id = "set_snmp_agent",
    params(("id" = i32, Path, description = "Server id")),
    request_body = AgentRequest,
    responses(
        (status = 200, body = AgentSettings),
        (status = 400, description = "Settings or secrets that do not fit the version", body = ErrorBody),
        SnmpRefusals,
    ))]
async fn set_agent(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParam(id): PathParam<i32>,
    JsonBody(request): JsonBody<AgentRequest>,
) -> ApiResult<Json<AgentSettings>> {
    snmp::check_settings(&request.settings, &request.secrets).map_err(|e| ApiError::bad_param("settings", e))?;
    let handle = snmp_handle(&state)?;
    let client = state.db.get().await?;
    let name = visible_server(&client, &caller, id).await?;
    snmp::set_agent(&client, handle, id, &request.settings, &request.secrets)
        .await
        .map_err(ApiError::internal)?;
    let details = serde_json::to_value(&request.settings).map_err(ApiError::internal)?;
    audit::record(&**client, &caller.login, "snmp.agent.set", Some(&name), details, "ok").await?;
    Ok(Json(request.settings))
}
