//! axum's extractors with the API's errors: a malformed body, query or path answers
//! `{"error": ...}` with 400 (413 for a body over the limit, 415 for one that is not JSON),
//! like every other failure, instead of axum's plain-text rejections.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body (`Content-Type: application/json`, within the body limit).
pub struct JsonBody<T>(pub T);

/// The query string, deserialized.
pub struct QueryParams<T>(pub T);

/// The path's parameters, deserialized (`/admin/users/{id}` → `PathParam(id): PathParam<i64>`).
pub struct PathParam<T>(pub T);

/// axum's status, except that a body that is well-formed but of the wrong shape (422) is a bad
/// parameter like any other (400).
fn rejected(status: StatusCode, text: String) -> ApiError {
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    ApiError::new(status, text)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(e @ JsonRejection::MissingJsonContentType(_)) => Err(rejected(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{}: send Content-Type: application/json", e.body_text()),
            )),
            Err(e) => Err(rejected(e.status(), e.body_text())),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| QueryParams(q.0))
            .map_err(|e: QueryRejection| rejected(e.status(), e.body_text()))
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PathParam(p.0))
            .map_err(|e: PathRejection| rejected(e.status(), e.body_text()))
    }
}
