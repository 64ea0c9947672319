//! The JSON API, versioned under `/api/v1`: one module per screen, each contributing its routes.

pub mod admin;
pub mod servers;

use axum::routing::get;
pub mod export;
pub mod history;
pub mod live;
pub mod logs;
pub mod message_detail;
pub mod messages;
pub mod params;
pub mod rejects;

#[cfg(test)]
mod bench;
pub mod report_schedules;
pub mod stats;
#[cfg(test)]
mod tests;

use axum::Router;

use super::{auth, openapi, AppState};

/// Every endpoint of `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .merge(auth::routes())
        .merge(servers::routes())
        .merge(admin::routes())
        .merge(messages::routes())
        .merge(message_detail::routes())
        .merge(rejects::routes())
        .merge(logs::routes())
        .merge(live::routes())
        .merge(history::routes())
        .merge(stats::routes())
        .merge(report_schedules::routes())
}
