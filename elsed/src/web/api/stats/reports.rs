//! `GET /reports?since&until&server&domain&format=json|html|text`: `elsed report` in the browser,
//! narrowed to the caller's scope (a group member's report covers their groups' servers and
//! domains; an end user gets 403). Days and hours are UTC.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio_postgres::Client;

use super::filter::{choice, number, text, time, RawParams};
use crate::access::{Caller, Scope};
use crate::report::{self, Covered, Format};
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::AppState;

/// The HTML report is shown in a frame of the report page, with its own styles: only this
/// application may frame it, it may use its inline `<style>` and nothing else (no script, no
/// resource), and it runs sandboxed, in an origin of its own.
pub const FRAMED_REPORT_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox";

/// The pflogsumm-style report (as `elsed report`, UTC) of the caller's servers and domains, read
/// from the base tables.
#[utoipa::path(get, path = "/reports", tag = "stats", operation_id = "report",
    params(
        ("since" = Option<String>, Query, format = DateTime), ("until" = Option<String>, Query, format = DateTime),
        ("server" = Option<i32>, Query, description = "A server id"),
        ("domain" = Option<String>, Query),
        ("format" = Option<String>, Query, description = "json (default), html or text"),
        ("top" = Option<i64>, Query, description = "Lines of each top list, 0 to 10 000 (default 50)"),
    ),
    responses(
        (status = 200, description = "The report in the asked format", content(
            (Object = "application/json"), (String = "text/html"), (String = "text/plain"))),
        (status = 400, body = ErrorBody),
        (status = 403, description = "End users", body = ErrorBody),
    ))]
pub async fn report_handler(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(params): QueryParams<RawParams>,
) -> Response {
    let result = async {
        let client = state.read_for(&caller).await?;
        report(&client, &caller.scope, &params).await
    }
    .await;
    let mut response = match result {
        Ok((format, body)) => {
            let content_type = match format {
                Format::Json => "application/json",
                Format::Html => "text/html; charset=utf-8",
                Format::Text => "text/plain; charset=utf-8",
            };
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(e) => e.into_response(),
    };
    // The report page frames the HTML report, and shows an error in the same frame.
    if text(&params, "format") == Some("html") {
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            header::HeaderValue::from_static(FRAMED_REPORT_POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("SAMEORIGIN"));
    }
    response
}

/// The report of `params` within `scope`, rendered in the asked format.
pub async fn report(client: &Client, scope: &Scope, params: &RawParams) -> ApiResult<(Format, String)> {
    let (pairs, whole_servers) = match scope {
        Scope::All => (None, Vec::new()),
        Scope::Groups(groups) => (Some(Scope::pairs(groups)), Scope::whole_servers(groups)),
        Scope::Addresses(_) => return Err(ApiError::forbidden()),
    };
    let format = match choice(params, "format", &["json", "html", "text"], "json")? {
        "html" => Format::Html,
        "text" => Format::Text,
        _ => Format::Json,
    };
    let server_id = text(params, "server")
        .map(|s| {
            s.parse::<i32>()
                .map_err(|_| ApiError::bad_param("server", "server must be a server id"))
        })
        .transpose()?;
    let top = number(params, "top", 0, 10_000, 50)? as usize;
    let scope = report::Scope {
        since: time(params, "since")?,
        until: time(params, "until")?,
        domain: text(params, "domain").map(|d| d.trim_start_matches('@').to_lowercase()),
        server_id,
        pairs,
        whole_servers,
        ..report::Scope::default()
    };
    let covered = Covered {
        since: text(params, "since").map(str::to_owned),
        until: text(params, "until").map(str::to_owned),
        host: server_id.map(|id| id.to_string()),
        domain: scope.domain.clone(),
        timezone: "UTC".into(),
    };
    let built = report::build(client, &scope, covered, top).await;
    // The connection goes back to the pool: leave its session in UTC.
    client
        .execute("SELECT set_config('TimeZone', 'UTC', false)", &[])
        .await?;
    let built = built.map_err(ApiError::internal)?;
    let body = report::render(&built, format).map_err(ApiError::internal)?;
    Ok((format, body))
}
