//! The JSON API, versioned under `/api/v1`: one module per screen, each contributing its routes.

use axum::Router;

use super::AppState;

pub mod greylist;
pub mod ndrs;
pub mod paging;

/// Every endpoint of `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().merge(ndrs::routes()).merge(greylist::routes())
}
