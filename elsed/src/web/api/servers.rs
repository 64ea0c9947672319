//! `GET /servers`: the servers of the fleet the caller may see. Servers register themselves
//! from their first log line (role `unknown` until an administrator sets it).

use axum::extract::State;
use axum::Json;
use omelse::parse::Timestamp;
use serde::Serialize;
use utoipa_axum::routes;

use crate::access::{Caller, Scope};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(list_servers))
}

/// A Postfix server of the fleet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Server {
    pub id: i32,
    /// The host name its log lines carry.
    pub name: String,
    /// unknown, incoming, outgoing, both, relay or filter.
    pub role: String,
    pub address: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<Timestamp>,
    /// What the SNMP poller last saw (`GET /servers` only; absent for servers without an agent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub health: Option<Health>,
}

/// A server's state by the SNMP poller's thresholds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// ok, warning, down, or unknown (never polled yet).
    pub state: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<Timestamp>,
    /// Why it is not ok, in words.
    pub reason: Option<String>,
    /// Messages in each queue at that sample (absent when the agent did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub queues: Option<QueueSizes>,
}

/// The number of messages in Postfix's queues, as the latest SNMP sample counted them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueSizes {
    pub incoming: Option<i64>,
    pub active: Option<i64>,
    pub deferred: Option<i64>,
    pub hold: Option<i64>,
}

/// The columns [`Server::from_row`] reads, of `servers` aliased `s`.
pub const SERVER_COLUMNS: &str = "s.id, s.name, s.role, host(s.address), s.description, s.first_seen, s.last_seen";

impl Server {
    pub fn from_row(row: &tokio_postgres::Row) -> Server {
        Server {
            id: row.get(0),
            name: row.get(1),
            role: row.get(2),
            address: row.get(3),
            description: row.get(4),
            first_seen: row.get(5),
            last_seen: row.get(6),
            health: None,
        }
    }
}

/// The servers the caller may see: administrators all, group members their groups' servers,
/// end users none.
#[utoipa::path(get, path = "/servers", tag = "servers",
    responses(
        (status = 200, body = Vec<Server>),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
async fn list_servers(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Server>>> {
    let client = state.db.get().await?;
    Ok(Json(visible(&client, &caller.scope).await?))
}

/// The servers `scope` may see, by name, each with what the SNMP poller last saw of it (the
/// servers list and the overview page).
pub async fn visible(client: &tokio_postgres::Client, scope: &Scope) -> ApiResult<Vec<Server>> {
    let mut q = Query::default();
    let visible = scope.servers_condition(&mut q, "s.id");
    q.and(visible);
    let rows = client
        .query(
            &format!(
                "SELECT {SERVER_COLUMNS} FROM servers s {} ORDER BY s.name",
                q.where_clause()
            ),
            &q.params(),
        )
        .await?;
    let mut servers: Vec<Server> = rows.iter().map(Server::from_row).collect();
    let states = crate::snmp::latest_states(client).await.map_err(ApiError::internal)?;
    for server in &mut servers {
        server.health = states
            .iter()
            .find(|s| s.server_id == server.id && s.enabled)
            .map(|s| Health {
                state: s.state.name().to_owned(),
                at: s.sample.as_ref().map(|sample| sample.ts),
                reason: s
                    .sample
                    .as_ref()
                    .and_then(|sample| (!sample.reasons.is_empty()).then(|| sample.reasons.join("; "))),
                queues: s
                    .sample
                    .as_ref()
                    .filter(|sample| sample.reachable)
                    .map(|sample| QueueSizes {
                        incoming: sample.incoming.map(|q| q.count),
                        active: sample.active.map(|q| q.count),
                        deferred: sample.deferred.map(|q| q.count),
                        hold: sample.hold.map(|q| q.count),
                    }),
            });
    }
    Ok(servers)
}
