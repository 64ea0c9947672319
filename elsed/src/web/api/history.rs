//! Each user's search history (`GET /search-history`): the searches they made, newest first, so
//! that a search is one click away the next day. The table `search_history` comes with the
//! accounts (migration 5); only the last [`KEPT`] searches of each user are kept.

use axum::extract::State;
use axum::Json;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Client;
use utoipa_axum::routes;

use crate::access::Caller;
use crate::web::error::ApiResult;
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

/// Searches kept per user (and listed).
pub const KEPT: i64 = 50;

/// The kinds of search the history tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Quick,
    Extended,
    Rejects,
    Bulk,
    Logs,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Quick => "quick",
            Kind::Extended => "extended",
            Kind::Rejects => "rejects",
            Kind::Bulk => "bulk",
            Kind::Logs => "logs",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryItem {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// quick, extended, rejects, bulk or logs.
    pub kind: String,
    /// The search's parameters without paging (`{count}` for a bulk search).
    #[schema(value_type = HashMap<String, serde_json::Value>)]
    pub params: serde_json::Value,
}

/// Adds a search to the user's history and forgets the ones beyond [`KEPT`].
pub async fn record(
    client: &Client,
    user_id: i64,
    kind: Kind,
    params: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "WITH added AS (
                 INSERT INTO search_history (user_id, at, kind, params) VALUES ($1, now(), $2, $3)
             )
             DELETE FROM search_history
             WHERE user_id = $1
               AND id < (SELECT min(id) FROM (SELECT id FROM search_history WHERE user_id = $1
                                               ORDER BY id DESC LIMIT $4::bigint - 1) AS newest)",
            &[&user_id, &kind.name(), params, &KEPT],
        )
        .await?;
    Ok(())
}

/// Records a search the caller made; a failure is logged, never the search's failure.
pub async fn record_quietly(client: &Client, caller: &Caller, kind: Kind, params: &serde_json::Value) {
    if let Err(e) = record(client, caller.user_id, kind, params).await {
        tracing::warn!(error = %e, user = caller.user_id, "search history not recorded");
    }
}

/// The user's searches, newest first.
pub async fn list(client: &Client, user_id: i64) -> Result<Vec<HistoryItem>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id::bigint, at, kind, params FROM search_history WHERE user_id = $1
             ORDER BY at DESC, id DESC LIMIT $2",
            &[&user_id, &KEPT],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| HistoryItem {
            id: row.get::<_, i64>(0).to_string(),
            at: row.get(1),
            kind: row.get(2),
            params: row.get(3),
        })
        .collect())
}

/// The caller's own searches, newest first (the last 50 are kept).
#[utoipa::path(get, path = "/search-history", tag = "search", operation_id = "search_history",
    responses((status = 200, body = Vec<HistoryItem>)))]
async fn get_history(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<HistoryItem>>> {
    let client = state.db.get().await?;
    Ok(Json(list(&client, caller.user_id).await?))
}

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(get_history))
}
