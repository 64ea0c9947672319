//! TEMPORARY, search branch only: lets the handlers that take a [`Caller`] compile before the
//! `auth` branch (sessions, the real extractor) is merged. It refuses every request (401), so
//! nothing is served without a session. DELETE this file and its `mod` line in web/mod.rs when
//! merging `auth`: its own `impl FromRequestParts<AppState> for Caller` conflicts with this one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::caller::Caller;
use super::error::ApiError;
use super::AppState;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        Err(ApiError::unauthorized())
    }
}
