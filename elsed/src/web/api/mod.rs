//! The JSON API, versioned under `/api/v1`: one module per screen, each contributing its routes.

pub mod admin;
pub mod alerts;
pub mod database;
pub mod export;
pub mod greylist;
pub mod health;
pub mod history;
pub mod listing;
pub mod live;
pub mod logs;
pub mod message_detail;
pub mod messages;
pub mod ndrs;
pub mod overview;
pub mod params;
pub mod rejects;
pub mod report_schedules;
pub mod servers;
pub mod stats;

#[cfg(test)]
mod bench;
#[cfg(test)]
mod tests;

use axum::http::header;
use axum::routing::get;
use axum::Router;

use super::openapi::ApiRoutes;
use super::{auth, AppState};

/// Every endpoint of `/api/v1`, each with its document.
pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .merge(auth::routes())
        .merge(servers::routes())
        .merge(database::routes())
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
        .merge(alerts::routes())
        .merge(overview::routes())
}

/// The router of `/api/v1`, and `GET /openapi.json`: public, it describes the API and holds no
/// data (written once, here).
pub fn router() -> Router<AppState> {
    let (router, doc) = routes().split();
    let json = serde_json::to_string(&doc).expect("the OpenAPI document is JSON");
    router.route(
        "/openapi.json",
        get(move || {
            let json = json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], json) }
        }),
    )
}

/// The document's query parameters of the endpoints that refuse unknown ones are exactly those
/// their readers take: a parameter documented but refused, or read but undocumented, fails here.
#[cfg(test)]
mod documented_parameters {
    use std::collections::BTreeSet;

    use super::listing::{ListRequest, Listing};
    use super::logs::LogList;
    use super::messages::MessageList;
    use super::params::Params;
    use super::rejects::RejectList;
    use super::{health, live};
    use crate::web::error::ApiResult;

    fn documented(path: &str) -> BTreeSet<String> {
        let doc = serde_json::to_value(crate::web::openapi::document()).unwrap();
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has no parameters"))
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// What a list endpoint reads: its filters, then `format`, `page`, `per_page`, `sort`.
    fn list<L: Listing>() -> BTreeSet<String> {
        let request = ListRequest::read(Vec::new(), L::read_filter, &[("any", "any")], "any").unwrap();
        request.params.names()
    }

    fn other<F>(read: impl FnOnce(&mut Params) -> ApiResult<F>) -> BTreeSet<String> {
        let mut params = Params::new(Vec::new());
        read(&mut params).unwrap();
        params.names()
    }

    #[test]
    fn the_document_names_the_parameters_the_handlers_read() {
        assert_eq!(documented("/messages"), list::<MessageList>());
        assert_eq!(documented("/rejects"), list::<RejectList>());
        assert_eq!(documented("/logs"), list::<LogList>());
        assert_eq!(documented("/live"), other(live::read_after));
        assert_eq!(documented("/servers/{id}/samples"), other(health::read_period));
    }
}
