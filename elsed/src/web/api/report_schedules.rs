//! `/admin/report-schedules`: the daily reports mailed per group (administrators only). The
//! scheduler of `elsed serve` ([`crate::schedule`]) sends them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tokio_postgres::Client;
use utoipa_axum::routes;

use crate::schedule::{self, Schedule, COLUMNS};
use crate::web::audit;
use crate::web::auth::Admin;
use crate::web::caller::Caller;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{JsonBody, PathParam};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(list_schedules, create_schedule_handler))
        .add(routes!(update_schedule, delete_schedule))
}

/// What a POST gives (`group_id` and `recipients` at least) or a PATCH changes (any of it).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub group_id: Option<i64>,
    /// 1 to 100 e-mail addresses.
    pub recipients: Option<Vec<String>>,
    /// 0 to 23, UTC (default 6).
    pub hour: Option<i32>,
    /// text (default), html or json.
    pub format: Option<String>,
}

impl Change {
    fn check(&self) -> ApiResult<()> {
        if let Some(recipients) = &self.recipients {
            if recipients.is_empty() || recipients.len() > 100 {
                return Err(ApiError::bad_param("recipients", "recipients: 1 to 100 addresses"));
            }
            for address in recipients {
                address
                    .parse::<lettre::Address>()
                    .map_err(|_| ApiError::bad_param("recipients", format!("not an e-mail address: {address}")))?;
            }
        }
        if self.hour.is_some_and(|h| !(0..=23).contains(&h)) {
            return Err(ApiError::bad_param("hour", "hour: 0 to 23 (UTC)"));
        }
        if self
            .format
            .as_deref()
            .is_some_and(|f| !["text", "html", "json"].contains(&f))
        {
            return Err(ApiError::bad_param("format", "format: text, html or json"));
        }
        Ok(())
    }
}

/// Records a change of the schedules in the audit log.
async fn audit(client: &Client, admin: &Caller, action: &str, schedule: &Schedule) -> ApiResult<()> {
    let details = serde_json::json!({
        "group_id": schedule.group_id, "recipients": schedule.recipients,
        "hour": schedule.hour, "format": schedule.format,
    });
    audit::record(
        client,
        &admin.login,
        action,
        Some(&schedule.id.to_string()),
        details,
        "ok",
    )
    .await?;
    Ok(())
}

/// Every group's daily report schedule.
#[utoipa::path(get, path = "/admin/report-schedules", tag = "admin", operation_id = "list_report_schedules",
    responses((status = 200, body = Vec<Schedule>)))]
async fn list_schedules(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Vec<Schedule>>> {
    let client = state.db.get().await?;
    Ok(Json(schedule::list(&client).await?))
}

/// Mail a group's report of the previous UTC day every day at `hour`.
#[utoipa::path(post, path = "/admin/report-schedules", tag = "admin", operation_id = "create_report_schedule",
    request_body = Change,
    responses((status = 201, body = Schedule), (status = 400, description = "A missing or bad field (named)", body = ErrorBody)))]
async fn create_schedule_handler(
    State(state): State<AppState>,
    Admin(caller): Admin,
    JsonBody(change): JsonBody<Change>,
) -> ApiResult<Response> {
    let client = state.db.get().await?;
    let created = create_schedule(&client, &change).await?;
    audit(&client, &caller, "report_schedule.create", &created).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Creates a schedule from a complete [`Change`].
pub async fn create_schedule(client: &Client, change: &Change) -> ApiResult<Schedule> {
    change.check()?;
    let group_id = change
        .group_id
        .ok_or_else(|| ApiError::bad_param("group_id", "group_id is required"))?;
    let recipients = change
        .recipients
        .clone()
        .ok_or_else(|| ApiError::bad_param("recipients", "recipients is required"))?;
    let row = client
        .query_one(
            &format!(
                "INSERT INTO report_schedules (group_id, recipients, hour, format) VALUES ($1, $2, $3, $4)
                 RETURNING {COLUMNS}"
            ),
            &[
                &group_id,
                &recipients,
                &change.hour.unwrap_or(6),
                &change.format.clone().unwrap_or_else(|| "text".into()),
            ],
        )
        .await?;
    Ok(Schedule::from_row(&row))
}

/// Change a schedule.
#[utoipa::path(patch, path = "/admin/report-schedules/{id}", tag = "admin", operation_id = "update_report_schedule",
    params(("id" = i64, Path, description = "Schedule id")),
    request_body = Change,
    responses((status = 200, body = Schedule), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_schedule(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParam(id): PathParam<i64>,
    JsonBody(change): JsonBody<Change>,
) -> ApiResult<Json<Schedule>> {
    change.check()?;
    let client = state.db.get().await?;
    let row = client
        .query_opt(
            &format!(
                "UPDATE report_schedules SET group_id = coalesce($2, group_id), recipients = coalesce($3, recipients),
                        hour = coalesce($4, hour), format = coalesce($5, format)
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &change.group_id, &change.recipients, &change.hour, &change.format],
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    let updated = Schedule::from_row(&row);
    audit(&client, &caller, "report_schedule.update", &updated).await?;
    Ok(Json(updated))
}

/// Stop mailing a report.
#[utoipa::path(delete, path = "/admin/report-schedules/{id}", tag = "admin", operation_id = "delete_report_schedule",
    params(("id" = i64, Path, description = "Schedule id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_schedule(
    State(state): State<AppState>,
    Admin(caller): Admin,
    PathParam(id): PathParam<i64>,
) -> ApiResult<StatusCode> {
    let client = state.db.get().await?;
    let row = client
        .query_opt(
            &format!("DELETE FROM report_schedules WHERE id = $1 RETURNING {COLUMNS}"),
            &[&id],
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    audit(&client, &caller, "report_schedule.delete", &Schedule::from_row(&row)).await?;
    Ok(StatusCode::NO_CONTENT)
}
