//! `/admin/*`: users, groups, servers and the audit log. Administrators only (the [`Admin`]
//! extractor answers 403 to anyone else), and every change is written to the audit log with its
//! outcome, refused ones included.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omelse::correlate::ServerRole;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::routes;

use super::servers::{Server, SERVER_COLUMNS};
use crate::access::accounts::{self, AccountError, Group, GroupChanges, NewUser, User, UserChanges};
use crate::web::audit::{self, audited, target, AuditEntry};
use crate::web::auth::Admin;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::{JsonBody, PathParam, QueryParams};
use crate::web::openapi::ApiRoutes;
use crate::web::paging::{Page, PageParams};
use crate::web::AppState;

pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(list_users, create_user))
        .add(routes!(update_user, delete_user))
        .add(routes!(list_groups, create_group))
        .add(routes!(update_group, delete_group))
        .add(routes!(update_server))
        .add(routes!(list_audit))
}

// ---- users -------------------------------------------------------------------------------

/// Every account.
#[utoipa::path(get, path = "/admin/users", tag = "admin",
    responses((status = 200, body = Vec<User>)))]
async fn list_users(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Vec<User>>> {
    let client = state.db.get().await?;
    Ok(Json(accounts::list_users(&**client).await?))
}

/// Create an account.
#[utoipa::path(post, path = "/admin/users", tag = "admin", request_body = NewUser,
    responses(
        (status = 201, body = User),
        (status = 400, description = "A field breaks a rule (named)", body = ErrorBody),
        (status = 409, description = "The login is taken", body = ErrorBody),
    ))]
async fn create_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(new): JsonBody<NewUser>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let client = state.db.get().await?;
    let details = json!({ "login": new.login, "name": new.name, "role": new.role,
                          "groups": new.groups, "addresses": new.addresses });
    let login = new.login.clone();
    let outcome = accounts::create_user(&client, new).await;
    let id = audited(&**client, &admin.login, "user.create", &login, details, outcome).await?;
    Ok((StatusCode::CREATED, Json(accounts::get_user(&**client, id).await?)))
}

/// Change an account. A new password or disabling ends its sessions.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", request_body = UserChanges,
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, body = User),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "It would leave no enabled administrator", body = ErrorBody),
    ))]
async fn update_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    PathParam(id): PathParam<i64>,
    JsonBody(changes): JsonBody<UserChanges>,
) -> ApiResult<Json<User>> {
    let mut client = state.db.get().await?;
    let details = json!({ "name": changes.name, "role": changes.role, "disabled": changes.disabled,
                          "password": changes.password.as_ref().map(|_| "changed"),
                          "groups": changes.groups, "addresses": changes.addresses });
    let outcome = accounts::update_user(&mut client, id, changes).await;
    let login = target(&outcome, |user| user.login.clone(), "user", id);
    audited(&**client, &admin.login, "user.update", &login, details, outcome)
        .await
        .map(Json)
}

/// Delete an account.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last enabled administrator", body = ErrorBody),
    ))]
async fn delete_user(
    State(state): State<AppState>,
    Admin(admin): Admin,
    PathParam(id): PathParam<i64>,
) -> ApiResult<StatusCode> {
    let mut client = state.db.get().await?;
    let outcome = accounts::delete_user(&mut client, id).await;
    let login = target(&outcome, Clone::clone, "user", id);
    audited(
        &**client,
        &admin.login,
        "user.delete",
        &login,
        json!({ "id": id }),
        outcome,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- groups ------------------------------------------------------------------------------

/// What the audit log keeps of a group's changes.
fn group_details(changes: &GroupChanges) -> serde_json::Value {
    json!({ "name": changes.name, "server_ids": changes.server_ids, "whole_server_ids": changes.whole_server_ids,
            "domains": changes.domains, "user_ids": changes.user_ids })
}

/// Every group.
#[utoipa::path(get, path = "/admin/groups", tag = "admin",
    responses((status = 200, body = Vec<Group>)))]
async fn list_groups(State(state): State<AppState>, _: Admin) -> ApiResult<Json<Vec<Group>>> {
    let client = state.db.get().await?;
    Ok(Json(accounts::list_groups(&**client).await?))
}

/// Create a group (name required).
#[utoipa::path(post, path = "/admin/groups", tag = "admin", request_body = GroupChanges,
    responses(
        (status = 201, body = Group),
        (status = 400, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
async fn create_group(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(changes): JsonBody<GroupChanges>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    let mut client = state.db.get().await?;
    let details = group_details(&changes);
    let name = changes.name.clone().unwrap_or_default();
    let outcome = accounts::create_group(&mut client, changes).await;
    let group = audited(&**client, &admin.login, "group.create", &name, details, outcome).await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Change a group.
#[utoipa::path(patch, path = "/admin/groups/{id}", tag = "admin", request_body = GroupChanges,
    params(("id" = i64, Path, description = "Group id")),
    responses(
        (status = 200, body = Group),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
    ))]
async fn update_group(
    State(state): State<AppState>,
    Admin(admin): Admin,
    PathParam(id): PathParam<i64>,
    JsonBody(changes): JsonBody<GroupChanges>,
) -> ApiResult<Json<Group>> {
    let mut client = state.db.get().await?;
    let details = group_details(&changes);
    let outcome = accounts::update_group(&mut client, id, changes).await;
    let name = target(&outcome, |group| group.name.clone(), "group", id);
    audited(&**client, &admin.login, "group.update", &name, details, outcome)
        .await
        .map(Json)
}

/// Delete a group (its members keep their accounts).
#[utoipa::path(delete, path = "/admin/groups/{id}", tag = "admin",
    params(("id" = i64, Path, description = "Group id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody)))]
async fn delete_group(
    State(state): State<AppState>,
    Admin(admin): Admin,
    PathParam(id): PathParam<i64>,
) -> ApiResult<StatusCode> {
    let client = state.db.get().await?;
    let outcome = accounts::delete_group(&**client, id).await;
    let name = target(&outcome, Clone::clone, "group", id);
    audited(
        &**client,
        &admin.login,
        "group.delete",
        &name,
        json!({ "id": id }),
        outcome,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- servers -----------------------------------------------------------------------------

/// Any of the fields; an empty address or description clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    /// unknown, incoming, outgoing, both, relay or filter.
    pub role: Option<String>,
    /// An IP address.
    pub address: Option<String>,
    pub description: Option<String>,
}

/// The checked values of an [`UpdateServer`]: `None` leaves a field, `Some(None)` clears it.
struct ServerChanges {
    role: Option<String>,
    address: Option<Option<std::net::IpAddr>>,
    description: Option<Option<String>>,
}

fn server_changes(request: &UpdateServer) -> Result<ServerChanges, AccountError> {
    let invalid = |field, message: String| AccountError::Invalid { field, message };
    let role = request
        .role
        .as_deref()
        .map(|role| role.parse::<ServerRole>().map(|r| r.name().to_owned()))
        .transpose()
        .map_err(|problem| invalid("role", problem))?;
    let address = request
        .address
        .as_deref()
        .map(str::trim)
        .map(|a| match a {
            "" => Ok(None),
            a => a
                .parse()
                .map(Some)
                .map_err(|_| invalid("address", format!("'{a}' is not an IP address"))),
        })
        .transpose()?;
    let description = match request.description.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(text) if text.chars().count() > 500 || text.chars().any(char::is_control) => {
            return Err(invalid(
                "description",
                "at most 500 characters, no control characters".into(),
            ))
        }
        Some(text) => Some(Some(text.to_owned())),
    };
    Ok(ServerChanges {
        role,
        address,
        description,
    })
}

async fn apply_server_changes(
    client: &tokio_postgres::Client,
    id: i32,
    request: &UpdateServer,
) -> Result<Server, AccountError> {
    let ServerChanges {
        role,
        address,
        description,
    } = server_changes(request)?;
    let row = client
        .query_opt(
            &format!(
                "UPDATE servers s SET role = coalesce($2, s.role),
                        address = CASE WHEN $3 THEN $4 ELSE s.address END,
                        description = CASE WHEN $5 THEN $6 ELSE s.description END
                 WHERE s.id = $1 RETURNING {SERVER_COLUMNS}"
            ),
            &[
                &id,
                &role,
                &address.is_some(),
                &address.flatten(),
                &description.is_some(),
                &description.flatten(),
            ],
        )
        .await?;
    row.map(|row| Server::from_row(&row))
        .ok_or_else(|| AccountError::NotFound(format!("server {id}")))
}

/// Set a server's role, address or description.
#[utoipa::path(patch, path = "/admin/servers/{id}", tag = "admin", request_body = UpdateServer,
    params(("id" = i32, Path, description = "Server id")),
    responses(
        (status = 200, body = Server),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
async fn update_server(
    State(state): State<AppState>,
    Admin(admin): Admin,
    PathParam(id): PathParam<i32>,
    JsonBody(request): JsonBody<UpdateServer>,
) -> ApiResult<Json<Server>> {
    let client = state.db.get().await?;
    let details = json!({ "role": request.role, "address": request.address, "description": request.description });
    let outcome = apply_server_changes(&client, id, &request).await;
    let name = target(&outcome, |server| server.name.clone(), "server", id);
    audited(&**client, &admin.login, "server.update", &name, details, outcome)
        .await
        .map(Json)
}

// ---- audit -------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this actor's operations.
    pub actor: Option<String>,
    /// Only this action (`user.create`, `queue.flush`, …).
    pub action: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", params(AuditQuery, PageParams),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    _: Admin,
    QueryParams(query): QueryParams<AuditQuery>,
    QueryParams(page): QueryParams<PageParams>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let window = page.window()?;
    for (field, value) in [("actor", &query.actor), ("action", &query.action)] {
        if value.as_ref().is_some_and(|v| v.len() > 200) {
            return Err(ApiError::bad_param(field, "at most 200 characters"));
        }
    }
    let client = state.db.get().await?;
    Ok(Json(
        audit::list(&**client, query.actor.as_deref(), query.action.as_deref(), window).await?,
    ))
}
