//! The servers' health from the SNMP poller, and the queue actions (the original's double-click
//! on a server): `GET /servers/{id}/samples`, `POST /admin/servers/{id}/actions`, and the
//! Prometheus text of `/metrics` (outside `/api/v1`, for users who already run Prometheus).

use axum::extract::{Query as UrlQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use omelse::parse::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::params::Params;
use crate::snmp::{self, Action, AgentSecrets, AgentSettings, Sample};
use crate::sql::Query;
use crate::web::audit;
use crate::web::auth::Admin;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ApiResult};
use crate::web::extract::{JsonBody, PathParam};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/servers/{id}/samples", get(samples))
        .route("/admin/servers/{id}/actions", post(act))
        .route("/admin/servers/{id}/snmp", get(agent).put(set_agent))
}

/// `/metrics`, mounted beside `/healthz`.
pub fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// One sample as the browser draws it.
#[derive(Debug, Serialize)]
pub struct SampleView {
    pub ts: Timestamp,
    pub reachable: bool,
    pub master_alive: Option<bool>,
    pub load: Option<f32>,
    pub spool_disk_pct: Option<i16>,
    pub state: String,
    pub reasons: Vec<String>,
    pub error: Option<String>,
    pub queues: serde_json::Map<String, Value>,
}

impl From<&Sample> for SampleView {
    fn from(sample: &Sample) -> Self {
        let queues = sample
            .queues()
            .iter()
            .filter_map(|(name, queue)| {
                queue.map(|q| {
                    (
                        (*name).to_owned(),
                        json!({ "count": q.count, "bytes": q.bytes, "oldest_age": q.oldest_secs }),
                    )
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

/// The samples of one server over a time range (default: the last 24 hours).
async fn samples(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<i32>,
    UrlQuery(pairs): UrlQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut params = Params::new(pairs);
    let until = params.time("until")?.unwrap_or_else(Timestamp::now);
    let since = params
        .time("since")?
        .unwrap_or(Timestamp(until.0 - 86_400 * Timestamp::MICROS_PER_SECOND));
    params.finish()?;
    let client = state.db.get().await?;
    visible_server(&client, &caller, id).await?;
    let samples = snmp::samples(&client, id, since, until)
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<SampleView> = samples.iter().map(SampleView::from).collect();
    Ok(Json(json!({ "items": items })))
}

/// What an administrator asks the server's agent to do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// flush, delete_deferred, hold, release, requeue, delete (`-` or `_`).
    pub action: String,
    pub queue_id: Option<String>,
    /// Must be true: the client asked the administrator first.
    #[serde(default)]
    pub confirm: bool,
}

/// Runs a queue action through the server's agent; audited whatever its outcome.
async fn act(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParam(id): PathParam<i32>,
    JsonBody(request): JsonBody<ActionRequest>,
) -> ApiResult<Json<Value>> {
    if !request.confirm {
        return Err(ApiError::bad_param(
            "confirm",
            "confirm must be true: queue actions are confirmed",
        ));
    }
    let name = request.action.replace('_', "-");
    let action =
        Action::new(&name, request.queue_id.as_deref().map(str::trim)).map_err(|e| ApiError::bad_param("action", e))?;
    let Some(handle) = state.snmp.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SNMP is not configured on this server (snmp.key_file)",
        ));
    };
    let client = state.db.get().await?;
    visible_server(&client, &caller, id).await?;
    let outcome = snmp::act(&client, handle, &caller.login, id, action)
        .await
        .map_err(ApiError::internal)?;
    let answer = outcome
        .agent_text
        .clone()
        .unwrap_or_else(|| outcome.snmp_status.clone());
    Ok(Json(json!({
        "ok": outcome.result == "done",
        "result": outcome.result,
        "answer": answer,
        "audit_id": outcome.audit_id,
    })))
}

/// The poller's latest values in Prometheus' text format.
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let client = state.db.get().await?;
    let text = snmp::prometheus_text(&client).await.map_err(ApiError::internal)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// The server's SNMP agent as the inventory shows it: settings, never the secrets.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRequest {
    pub settings: AgentSettings,
    pub secrets: AgentSecrets,
}

/// Sets (or replaces) the server's agent; audited with its settings, never its secrets.
async fn set_agent(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParam(id): PathParam<i32>,
    JsonBody(request): JsonBody<AgentRequest>,
) -> ApiResult<Json<AgentSettings>> {
    snmp::check_settings(&request.settings, &request.secrets).map_err(|e| ApiError::bad_param("settings", e))?;
    let Some(handle) = state.snmp.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SNMP is not configured on this server (snmp.key_file)",
        ));
    };
    let client = state.db.get().await?;
    let name = visible_server(&client, &caller, id).await?;
    snmp::set_agent(&client, handle, id, &request.settings, &request.secrets)
        .await
        .map_err(ApiError::internal)?;
    let details = serde_json::to_value(&request.settings).map_err(ApiError::internal)?;
    audit::record(&*client, &caller.login, "snmp.agent.set", Some(&name), details, "ok").await?;
    Ok(Json(request.settings))
}
