//! `GET /database`: where the web application's reads go, and how far behind the primary the
//! read replica is (`database.read_url`; see [`crate::replica`]). It names no host and holds no
//! mail data: every logged-in account may ask, as the servers' health view does.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa_axum::routes;

use crate::access::Caller;
use crate::replica::ReplicaStatus;
use crate::web::error::{ApiResult, ErrorBody};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(database))
}

/// The database as the web application uses it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DatabaseView {
    /// `standby` while the read replica is in use, else `primary`.
    pub reads_from: String,
    pub read_replica: ReplicaStatus,
}

/// Where reads go now and the read replica's lag (checked every second).
#[utoipa::path(get, path = "/database", tag = "servers",
    responses(
        (status = 200, body = DatabaseView),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
async fn database(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<DatabaseView>> {
    let read_replica = state.reads.status();
    let reads_from = if read_replica.in_use { "standby" } else { "primary" };
    Ok(Json(DatabaseView {
        reads_from: reads_from.into(),
        read_replica,
    }))
}
