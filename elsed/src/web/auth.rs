//! Logging in and out, and who is asking: the session cookie, CSRF, the login rate limit.
//!
//! A login gives the browser a random token in the `else_session` cookie (HttpOnly,
//! SameSite=Strict, Secure over TLS) and a CSRF token in the answer; the database keeps only the
//! token's SHA-256. The [`Caller`] extractor reads the cookie on every request, checks the idle
//! timeout and the absolute lifetime, loads the account's role and scope, and, for a request
//! that changes something, requires `X-CSRF-Token` to match: a handler that takes a `Caller`
//! cannot forget any of it. [`Admin`] adds the administrator check.
//!
//! Password attempts are counted in the database per login name and per client address (per /64
//! for IPv6), each claimed before the password is looked at; past the limit the answer is 429
//! with `Retry-After`. No database connection is held while argon2 works.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_postgres::Client;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::JsonBody;
use super::openapi::ApiRoutes;
use super::AppState;
use crate::access::accounts::{self, AccountError};
use crate::access::audit;
use crate::access::{Caller, GroupScope, Role, Scope, Session};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "else_session";
/// The header that must carry the session's CSRF token on POST, PUT, PATCH and DELETE.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Longer logins cannot exist; refused before any work.
const MAX_LOGIN_INPUT: usize = 256;

/// `/auth/*`.
pub fn routes() -> ApiRoutes {
    ApiRoutes::new()
        .add(routes!(login))
        .add(routes!(logout))
        .add(routes!(me))
        .add(routes!(password))
}

// ---- tokens and cookies ------------------------------------------------------------------

/// 256 random bits, URL-safe base64.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a cookie's token.
fn token_id(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The session token of the request's cookies, if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|token| !token.is_empty() && token.len() <= 128)
}

/// Whether the cookie gets `Secure`: served over TLS, or behind a TLS proxy by configuration.
fn secure(state: &AppState) -> bool {
    state.config.web.tls() || state.config.web.secure_cookie
}

fn set_cookie(token: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}"
    ))
    .expect("a cookie of URL-safe characters")
}

/// The client's address: the peer, or what a trusted reverse proxy says the client was.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_canonical());
        Ok(ClientIp(peer.map(|peer| {
            forwarded_client(&parts.headers, peer, &state.config.web.trusted_proxies)
        })))
    }
}

/// The right-most address of `X-Forwarded-For` that is not a trusted proxy, when the peer is one.
fn forwarded_client(headers: &HeaderMap, peer: IpAddr, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(|a| a.to_canonical())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

// ---- who is asking -----------------------------------------------------------------------

/// GET, HEAD and OPTIONS change nothing: everything else needs the CSRF token.
fn changes_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let token = cookie_token(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let id = token_id(token);
        let client = state.db.get().await?;
        let idle = i32::try_from(state.config.web.session_idle_minutes).unwrap_or(i32::MAX);
        let row = client
            .query_opt(
                "SELECT s.user_id, s.csrf_token, u.login, u.role, s.last_seen < now() - interval '1 minute'
                 FROM web_sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.id = $1 AND NOT u.disabled AND s.expires_at > now()
                   AND s.last_seen > now() - make_interval(mins => $2)",
                &[&id, &idle],
            )
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let csrf_token: String = row.get(1);
        if changes_something(&parts.method) {
            let given = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes);
            let matches = given.is_some_and(|given| bool::from(given.ct_eq(csrf_token.as_bytes())));
            if !matches {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "missing or wrong X-CSRF-Token header",
                ));
            }
        }
        // The idle clock moves at most once a minute: one write per minute, not per request.
        if row.get::<_, bool>(4) {
            client
                .execute("UPDATE web_sessions SET last_seen = now() WHERE id = $1", &[&id])
                .await?;
        }
        let user_id: i64 = row.get(0);
        let role = row.get::<_, &str>(3).parse::<Role>().map_err(ApiError::internal)?;
        Ok(Caller {
            user_id,
            login: row.get(2),
            role,
            scope: load_scope(&client, user_id, role).await?,
            session: Session { id, csrf_token },
        })
    }
}

/// What an account may see, from its role, groups and addresses.
pub async fn load_scope(client: &Client, user_id: i64, role: Role) -> Result<Scope, tokio_postgres::Error> {
    Ok(match role {
        Role::Admin => Scope::All,
        Role::User => {
            let rows = client
                .query(
                    "SELECT ARRAY(SELECT server_id FROM group_servers s WHERE s.group_id = gu.group_id ORDER BY 1),
                            ARRAY(SELECT domain FROM group_domains d WHERE d.group_id = gu.group_id ORDER BY 1),
                            ARRAY(SELECT server_id FROM group_servers s
                                  WHERE s.group_id = gu.group_id AND s.owns_whole ORDER BY 1)
                     FROM group_users gu WHERE gu.user_id = $1 ORDER BY gu.group_id",
                    &[&user_id],
                )
                .await?;
            Scope::Groups(
                rows.iter()
                    .map(|row| GroupScope {
                        server_ids: row.get(0),
                        domains: row.get(1),
                        whole_server_ids: row.get(2),
                    })
                    .collect(),
            )
        }
        Role::Enduser => {
            let rows = client
                .query(
                    "SELECT address FROM user_addresses WHERE user_id = $1 ORDER BY address",
                    &[&user_id],
                )
                .await?;
            Scope::Addresses(rows.iter().map(|row| row.get(0)).collect())
        }
    })
}

/// An administrator: the handlers of `/admin/*` take this instead of a [`Caller`], anyone else
/// gets 403.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Admin> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Admin(caller))
        } else {
            Err(ApiError::forbidden())
        }
    }
}

// ---- rate limit --------------------------------------------------------------------------

/// The client network a login throttle counts: the address, or its /64 for IPv6 (one
/// subscriber has a whole /64 to pick addresses from).
fn throttled_network(ip: IpAddr) -> IpAddr {
    crate::greylist::triplet::network(ip, 32, 64).0
}

/// One claim at a time in this process: racing logins queue here, not on the pool (a claim
/// waiting for the database's lock would hold a connection meanwhile). Claims take a few
/// milliseconds; the database's locks keep several `elsed serve` just as exact.
static CLAIMS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Claims one password attempt for `login` from `ip` before the password is looked at, or says
/// how many seconds to wait when the login or the client network is over its limit. The claim
/// is recorded as a failure at once, under a lock per login name and per client network, so
/// that logins racing in parallel each see the ones before them: N parallel wrong passwords get
/// exactly the limit's tries. A right password clears its login's count ([`clear_attempts`]).
async fn claim_attempt(state: &AppState, login: &str, ip: Option<IpAddr>) -> ApiResult<Option<i64>> {
    let web = &state.config.web;
    let window = i32::try_from(web.login_window_minutes).unwrap_or(i32::MAX);
    let network = ip.map(throttled_network);
    let _one_at_a_time = CLAIMS.lock().await;
    let mut client = state.db.get().await?;
    let transaction = client.transaction().await?;
    // Always the login's lock first, then the network's: no two claims wait on each other in a cycle.
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('else-login:' || lower($1), 0)),
                    pg_advisory_xact_lock(hashtextextended('else-login-ip:' || coalesce($2::inet::text, ''), 0))",
            &[&login, &network],
        )
        .await?;
    let row = transaction
        .query_one(
            "WITH w AS (SELECT make_interval(mins => $3) AS span),
                  by_login AS (SELECT count(*) AS n, min(at) AS first FROM login_failures, w
                               WHERE lower(login) = lower($1) AND at > now() - w.span),
                  by_ip AS (SELECT count(*) AS n, min(at) AS first FROM login_failures, w
                            WHERE $2::inet IS NOT NULL AND client_ip = $2 AND at > now() - w.span)
             SELECT by_login.n, ceil(extract(epoch FROM by_login.first + w.span - now()))::bigint,
                    by_ip.n, ceil(extract(epoch FROM by_ip.first + w.span - now()))::bigint
             FROM by_login, by_ip, w",
            &[&login, &network, &window],
        )
        .await?;
    let mut wait: Option<i64> = None;
    for (count, retry, limit) in [
        (
            row.get::<_, i64>(0),
            row.get::<_, Option<i64>>(1),
            web.login_failures_per_login,
        ),
        (
            row.get::<_, i64>(2),
            row.get::<_, Option<i64>>(3),
            web.login_failures_per_address,
        ),
    ] {
        if count >= i64::from(limit) {
            let retry = retry.unwrap_or(1).max(1);
            wait = Some(wait.map_or(retry, |w| w.max(retry)));
        }
    }
    if wait.is_none() {
        transaction
            .execute(
                "INSERT INTO login_failures (login, client_ip) VALUES ($1, $2)",
                &[&login, &network],
            )
            .await?;
        transaction
            .execute(
                "DELETE FROM login_failures WHERE at < now() - make_interval(mins => $1)",
                &[&window],
            )
            .await?;
    }
    transaction.commit().await?;
    Ok(wait)
}

/// The right password was given: the login's claimed attempts are forgotten.
async fn clear_attempts(client: &Client, login: &str) -> ApiResult<()> {
    client
        .execute("DELETE FROM login_failures WHERE lower(login) = lower($1)", &[&login])
        .await?;
    Ok(())
}

fn too_many(retry_after: i64) -> Response {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed attempts; try again in {retry_after} s"),
    )
    .retry_after(u64::try_from(retry_after).unwrap_or(1))
    .into_response()
}

// ---- endpoints ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

/// A group as its members see it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupRef {
    pub id: i64,
    pub name: String,
}

/// The logged-in account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: Role,
    /// To send back in `X-CSRF-Token` with every request that changes something.
    pub csrf_token: String,
    pub groups: Vec<GroupRef>,
    pub addresses: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    pub user: Me,
    pub csrf_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    pub current: String,
    pub new: String,
}

async fn load_me(client: &Client, user_id: i64, csrf_token: String) -> ApiResult<Me> {
    let row = client
        .query_opt(
            "SELECT u.id, u.login, u.name, u.role,
                    coalesce((SELECT json_agg(json_build_object('id', g.id, 'name', g.name) ORDER BY g.name)
                              FROM group_users gu JOIN groups g ON g.id = gu.group_id
                              WHERE gu.user_id = u.id), '[]'::json),
                    ARRAY(SELECT address FROM user_addresses WHERE user_id = u.id ORDER BY address)
             FROM users u WHERE u.id = $1",
            &[&user_id],
        )
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let groups: serde_json::Value = row.get(4);
    Ok(Me {
        id: row.get(0),
        login: row.get(1),
        name: row.get(2),
        role: row.get::<_, &str>(3).parse().map_err(ApiError::internal)?,
        csrf_token,
        groups: serde_json::from_value(groups).map_err(ApiError::internal)?,
        addresses: row.get(5),
    })
}

/// Log in with a login name and password: the session cookie and the CSRF token.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, security(()),
    responses(
        (status = 200, description = "Logged in; the `else_session` cookie is set", body = LoginAnswer),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Wrong login or password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts (see `Retry-After`)", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(request): JsonBody<LoginRequest>,
) -> ApiResult<Response> {
    let login = request.login.trim();
    if login.is_empty() || login.len() > MAX_LOGIN_INPUT {
        return Err(ApiError::bad_param("login", "give a login name"));
    }
    if request.password.len() > accounts::MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_param("password", "too long"));
    }
    // The connection is held only for the queries: not while argon2 works.
    let account = {
        if let Some(retry_after) = claim_attempt(&state, login, ip).await? {
            tracing::warn!(login, ?ip, "login refused: too many failed attempts");
            return Ok(too_many(retry_after));
        }
        state
            .db
            .get()
            .await?
            .query_opt(
                "SELECT id, password_hash, disabled FROM users WHERE lower(login) = lower($1)",
                &[&login],
            )
            .await?
    };
    let hash = account.as_ref().map(|row| row.get::<_, &str>(1));
    let verified = accounts::verify_password(&request.password, hash).await;
    let enabled = account.as_ref().is_some_and(|row| !row.get::<_, bool>(2));
    let Some(account) = account.filter(|_| verified && enabled) else {
        tracing::info!(login, ?ip, "failed login");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong login or password"));
    };
    let user_id: i64 = account.get(0);

    let web = &state.config.web;
    let token = random_token();
    let csrf_token = random_token();
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|agent| agent.chars().take(300).collect::<String>());
    let max_hours = i32::try_from(web.session_max_hours).unwrap_or(i32::MAX);
    let idle = i32::try_from(web.session_idle_minutes).unwrap_or(i32::MAX);
    let client = state.db.get().await?;
    client
        .execute(
            "DELETE FROM web_sessions WHERE expires_at < now() OR last_seen < now() - make_interval(mins => $1)",
            &[&idle],
        )
        .await?;
    client
        .execute(
            "INSERT INTO web_sessions (id, user_id, csrf_token, expires_at, client_ip, user_agent)
             VALUES ($1, $2, $3, now() + make_interval(hours => $4), $5, $6)",
            &[&token_id(&token), &user_id, &csrf_token, &max_hours, &ip, &user_agent],
        )
        .await?;
    client
        .execute("UPDATE users SET last_login = now() WHERE id = $1", &[&user_id])
        .await?;
    clear_attempts(&client, login).await?;
    let me = load_me(&client, user_id, csrf_token.clone()).await?;
    tracing::info!(login = me.login, ?ip, "logged in");
    let cookie = set_cookie(&token, u64::from(web.session_max_hours) * 3600, secure(&state));
    Ok(([(SET_COOKIE, cookie)], Json(LoginAnswer { user: me, csrf_token })).into_response())
}

/// End this session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Logged out; the cookie is cleared"),
    ))]
async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let client = state.db.get().await?;
    client
        .execute("DELETE FROM web_sessions WHERE id = $1", &[&caller.session.id])
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, set_cookie("", 0, secure(&state)))],
    )
        .into_response())
}

/// The logged-in account, its groups and addresses, and the CSRF token.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses(
        (status = 200, body = Me),
    ))]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Me>> {
    let client = state.db.get().await?;
    Ok(Json(load_me(&client, caller.user_id, caller.session.csrf_token).await?))
}

/// Change one's own password; every other session of the account ends.
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordRequest,
    responses(
        (status = 204, description = "Changed"),
        (status = 400, description = "Wrong current password, or the new one is too short", body = ErrorBody),
        (status = 429, description = "Too many failed attempts (see `Retry-After`)", body = ErrorBody),
    ))]
async fn password(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    JsonBody(request): JsonBody<PasswordRequest>,
) -> ApiResult<Response> {
    if request.current.len() > accounts::MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_param("current", "too long"));
    }
    accounts::check_password(&request.new).map_err(|e| match e {
        AccountError::Invalid { message, .. } => ApiError::bad_param("new", message),
        other => ApiError::internal(other),
    })?;
    // A session left open must not become a way to guess the password. The connection is
    // held only for the queries: not while argon2 works.
    let hash: String = {
        if let Some(retry_after) = claim_attempt(&state, &caller.login, ip).await? {
            return Ok(too_many(retry_after));
        }
        state
            .db
            .get()
            .await?
            .query_one("SELECT password_hash FROM users WHERE id = $1", &[&caller.user_id])
            .await?
            .get(0)
    };
    if !accounts::verify_password(&request.current, Some(&hash)).await {
        return Err(ApiError::bad_param("current", "the current password is wrong"));
    }
    let hash = accounts::hash_password(&request.new)
        .await
        .map_err(ApiError::internal)?;
    let client = state.db.get().await?;
    clear_attempts(&client, &caller.login).await?;
    client
        .execute(
            "UPDATE users SET password_hash = $2 WHERE id = $1",
            &[&caller.user_id, &hash],
        )
        .await?;
    let ended = client
        .execute(
            "DELETE FROM web_sessions WHERE user_id = $1 AND id <> $2",
            &[&caller.user_id, &caller.session.id],
        )
        .await?;
    audit::record(
        &**client,
        &caller.login,
        "user.password",
        Some(&caller.login),
        json!({ "other_sessions_ended": ended }),
        "ok",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::accounts::{GroupChanges, NewUser};
    use crate::access::scope_tests::{scope_fixture, visible};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accounts_and_groups_give_their_scope() {
        let (mut client, s1, s2) = scope_fixture().await;
        let group = |name: &str, server: i32, domain: &str| GroupChanges {
            name: Some(name.into()),
            server_ids: Some(vec![server]),
            domains: Some(vec![domain.into()]),
            user_ids: None,
            whole_server_ids: None,
        };
        let g1 = accounts::create_group(&mut client, group("g1", s1, "One.Example"))
            .await
            .unwrap();
        let g2 = accounts::create_group(&mut client, group("g2", s2, "@three.example"))
            .await
            .unwrap();
        let user = |login: &str, role: Role, groups: Vec<i64>, addresses: Vec<String>| NewUser {
            login: login.into(),
            name: String::new(),
            role,
            password: "a long enough password".into(),
            groups,
            addresses,
        };
        let member = accounts::create_user(&client, user("member", Role::User, vec![g1.id, g2.id], vec![]))
            .await
            .unwrap();
        let loner = accounts::create_user(&client, user("loner", Role::User, vec![], vec![]))
            .await
            .unwrap();
        let end = accounts::create_user(
            &client,
            user("end", Role::Enduser, vec![], vec!["<C@One.example>".into()]),
        )
        .await
        .unwrap();
        let admin = accounts::create_user(&client, user("boss", Role::Admin, vec![], vec![]))
            .await
            .unwrap();
        for (id, role, expected) in [
            (member, Role::User, vec![1, 3, 4]),
            (loner, Role::User, vec![]),
            (end, Role::Enduser, vec![2]),
            (admin, Role::Admin, vec![1, 2, 3, 4, 5]),
        ] {
            let scope = load_scope(&client, id, role).await.unwrap();
            assert_eq!(visible(&client, &scope).await, expected, "{role:?} {scope:?}");
        }
    }

    #[test]
    fn the_session_token_is_found_among_cookies() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("theme=dark; else_session=abc123 ; x=y"),
        );
        assert_eq!(cookie_token(&headers), Some("abc123"));
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=b"));
        headers.append(COOKIE, HeaderValue::from_static("else_session=second"));
        assert_eq!(cookie_token(&headers), Some("second"));
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("else_sessionx=1; else_session="));
        assert_eq!(cookie_token(&headers), None);
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in base64url");
        assert_eq!(token_id(&a).len(), 32);
        assert_ne!(token_id(&a), a.as_bytes());
    }

    #[test]
    fn only_a_trusted_proxy_names_the_client() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1, 192.0.2.7"));
        assert_eq!(forwarded_client(&headers, proxy, &[proxy]), client);
        assert_eq!(forwarded_client(&headers, proxy, &[]), proxy, "untrusted peer");
        assert_eq!(forwarded_client(&HeaderMap::new(), proxy, &[proxy]), proxy);
    }

    #[test]
    fn cookies_carry_their_flags() {
        let cookie = set_cookie("t", 3600, true);
        let cookie = cookie.to_str().unwrap();
        for flag in [
            "else_session=t",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=3600",
            "Secure",
        ] {
            assert!(cookie.contains(flag), "{cookie}");
        }
        assert!(!set_cookie("t", 1, false).to_str().unwrap().contains("Secure"));
    }
}
