//! The JSON API, versioned under `/api/v1`: one module per screen, each contributing its routes.

pub mod admin;
pub mod servers;

use axum::routing::get;
use axum::Router;

use super::{auth, openapi, AppState};

/// Every endpoint of `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .merge(auth::routes())
        .merge(servers::routes())
        .merge(admin::routes())
}
