//! What several end-to-end tests do the same way against a real `elsed serve`.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use reqwest::header::SET_COOKIE;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A session `POST /api/v1/auth/login` opened: its cookie and CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// Logs in through the API as a browser would: the session, or the status and body that refused it.
pub async fn login(http: &reqwest::Client, base: &str, login: &str, password: &str) -> Result<Session, String> {
    let response = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("else_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let csrf = body["csrf_token"].as_str().map(str::to_owned);
    match (status, cookie, csrf) {
        (StatusCode::OK, Some(cookie), Some(csrf)) => Ok(Session { cookie, csrf }),
        _ => Err(format!("{status} {body}")),
    }
}
