//! How failures reach the client: a status code and `{"error": "..."}` (plus `field` when one
//! parameter is at fault). Internal errors are logged in full and answered with a short message,
//! never with SQL or stack details.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::access::accounts::AccountError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub field: Option<&'static str>,
    /// Seconds the client should wait before trying again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What an error looks like on the wire (for the OpenAPI document).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The parameter at fault, when one is.
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// The same error, telling the client when to try again.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// A bad parameter: 400 naming it.
    pub fn bad_param(field: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: Some(field),
            retry_after: None,
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "not logged in")
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "not allowed")
    }

    /// Also what a caller gets for an id outside their scope: it does not exist for them.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    /// Logs the cause; the client learns only that it failed.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (see the server's log)",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(field) => json!({ "error": self.message, "field": field }),
            None => json!({ "error": self.message }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        ApiError::internal(e)
    }
}

/// A refused account operation: the field, the conflict or the missing one, as the API says them.
impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid { field, message } => ApiError::bad_param(field, message),
            AccountError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, message),
            AccountError::NotFound(_) => ApiError::not_found(),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::db::PoolError> for ApiError {
    fn from(e: crate::db::PoolError) -> Self {
        // The cause (host, user, PostgreSQL's words) is for the log, not for anonymous clients.
        if matches!(e, crate::db::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) {
            tracing::warn!("every database connection is busy: request refused");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is busy; try again shortly",
            )
            .retry_after(2);
        }
        tracing::warn!(cause = %e, "database unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database unavailable").retry_after(10)
    }
}
