//! `GET /servers`: the servers of the fleet the caller may see. Servers register themselves
//! from their first log line (role `unknown` until an administrator sets it).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use omelse::parse::Timestamp;
use serde::Serialize;

use crate::sql::Query;
use crate::web::caller::Caller;
use crate::web::error::{ApiResult, ErrorBody};
use crate::web::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/servers", get(list))
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
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Server>>> {
    let mut q = Query::default();
    let visible = caller.scope.servers_condition(&mut q, "s.id");
    q.and(visible);
    let client = state.db.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {SERVER_COLUMNS} FROM servers s {} ORDER BY s.name",
                q.where_clause()
            ),
            &q.params(),
        )
        .await?;
    Ok(Json(rows.iter().map(Server::from_row).collect()))
}
