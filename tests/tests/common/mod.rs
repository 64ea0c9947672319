//! What several end-to-end tests do the same way against a real `elsed serve`.

// Each test binary that includes this module uses part of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use else_tests::topology::Web;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{RequestBuilder, StatusCode};
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

/// An administrator's session with elsed's API: its cookie and CSRF token.
pub struct Api {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Api {
    pub async fn login(web: &Web, user: &str, password: &str) -> Api {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        let session = login(&http, &web.base, user, password)
            .await
            .unwrap_or_else(|e| panic!("login: {e}\n{}", web.daemon.output()));
        Api {
            http,
            base: web.base.clone(),
            cookie: session.cookie,
            csrf: session.csrf,
        }
    }

    /// `GET /api/v1{path}?{query}`: the JSON answer (any other status fails, saying the answer).
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1{path}", self.base), query)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let request = self.http.get(url).header(COOKIE, &self.cookie);
        answer(request, path).await
    }

    /// `PUT /api/v1{path}` with the CSRF token.
    pub async fn put(&self, path: &str, body: Value) -> Value {
        let request = self
            .http
            .put(format!("{}/api/v1{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .json(&body);
        answer(request, path).await
    }

    /// The quick search for a Message-ID and the detail of the first message found:
    /// `{"search": page, "detail": MessageDetail or null}`.
    pub async fn message(&self, message_id: &str) -> Value {
        let search = self.get("/messages", &[("q", message_id)]).await;
        let detail = match search["items"][0]["id"].as_str() {
            Some(id) => self.get(&format!("/messages/{id}"), &[]).await,
            None => Value::Null,
        };
        json!({ "search": search, "detail": detail })
    }

    /// The id of the server called `name` (`GET /servers`).
    pub async fn server_id(&self, name: &str) -> i64 {
        let servers = self.get("/servers", &[]).await;
        servers
            .as_array()
            .and_then(|list| list.iter().find(|s| s["name"] == name))
            .and_then(|s| s["id"].as_i64())
            .unwrap_or_else(|| panic!("server {name} in {servers}"))
    }
}

async fn answer(request: RequestBuilder, path: &str) -> Value {
    let response = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// Asks (every half second, for at most `limit`) until `done` holds for the answer: `Ok` with
/// it, or `Err` with the last answer, for the failure's message.
pub async fn eventually<F: Future<Output = Value>>(
    limit: Duration,
    mut ask: impl FnMut() -> F,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    let deadline = Instant::now() + limit;
    loop {
        let last = ask().await;
        if done(&last) {
            return Ok(last);
        }
        if Instant::now() > deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
