//! `GET /database`: where the web application's reads go, and how far behind the primary the
//! read replica is (`database.read_url`; see [`crate::replica`]).
//!
//! Administrators get the whole state. Every other account gets how fresh its searches are
//! (whether the standby is in use, its lag in seconds, the threshold) and nothing of why: on a
//! shared installation the reason text can carry the standby's connection error (its host,
//! port or role), and the WAL bytes and a paused replay are the operators' business, which
//! they also have from `elsed status`. Not a 403: the lag bounds how recent the results of a
//! search are, which a customer reading the Servers page is entitled to know.

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

/// Where reads go now and the read replica's lag (checked every second). Administrators see
/// why a standby is skipped (`reason`), its WAL bytes behind and whether its replay is paused;
/// for other accounts these are null.
#[utoipa::path(get, path = "/database", tag = "servers",
    responses(
        (status = 200, body = DatabaseView),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
async fn database(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DatabaseView>> {
    let status = state.reads.status();
    let read_replica = if caller.is_admin() {
        status
    } else {
        freshness_only(status)
    };
    let reads_from = if read_replica.in_use { "standby" } else { "primary" };
    Ok(Json(DatabaseView {
        reads_from: reads_from.into(),
        read_replica,
    }))
}

/// What an account that is not an administrator sees: how fresh reads are, not why. Every
/// field is named, so that a field added to [`ReplicaStatus`] does not compile here until
/// someone decides whether other accounts may see it.
fn freshness_only(status: ReplicaStatus) -> ReplicaStatus {
    let ReplicaStatus {
        configured,
        in_use,
        lag_seconds,
        lag_bytes: _,
        replay_paused: _,
        max_lag_seconds,
        reason: _,
        checked_at,
    } = status;
    ReplicaStatus {
        configured,
        in_use,
        lag_seconds,
        lag_bytes: None,
        replay_paused: None,
        max_lag_seconds,
        reason: None,
        checked_at,
    }
}
