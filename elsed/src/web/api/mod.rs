//! The JSON API, versioned under `/api/v1`: one module per screen, each contributing its routes.

pub mod admin;
pub mod export;
pub mod greylist;
pub mod health;
pub mod history;
pub mod live;
pub mod logs;
pub mod message_detail;
pub mod messages;
pub mod ndrs;
pub mod params;
pub mod rejects;
pub mod report_schedules;
pub mod servers;
pub mod stats;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

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
        .merge(messages::routes())
        .merge(message_detail::routes())
        .merge(rejects::routes())
        .merge(logs::routes())
        .merge(live::routes())
        .merge(history::routes())
        .merge(stats::routes())
        .merge(health::routes())
        .merge(report_schedules::routes())
        .merge(ndrs::routes())
        .merge(greylist::routes())
}
