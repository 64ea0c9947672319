//! `/admin/report-schedules`: the daily reports mailed per group (administrators only). The
//! scheduler of `elsed serve` ([`crate::schedule`]) sends them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio_postgres::Client;
use utoipa_axum::routes;

use crate::access::audit;
use crate::access::Caller;
use crate::schedule::{self, Change, Invalid, Schedule};
use crate::web::auth::Admin;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{JsonBody, PathParam};
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(list_schedules, create_schedule_handler))
        .add(routes!(update_schedule, delete_schedule))
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad_param(e.field, e.message)
    }
}

impl From<schedule::ChangeError> for ApiError {
    fn from(e: schedule::ChangeError) -> Self {
        match e {
            schedule::ChangeError::Invalid(invalid) => invalid.into(),
            schedule::ChangeError::Database(e) => e.into(),
        }
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
    let created = schedule::create(&client, &change).await?;
    audit(&client, &caller, "report_schedule.create", &created).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
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
    let updated = schedule::update(&client, id, &change)
        .await?
        .ok_or_else(ApiError::not_found)?;
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
    let deleted = schedule::delete(&client, id).await?.ok_or_else(ApiError::not_found)?;
    audit(&client, &caller, "report_schedule.delete", &deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}
