//! Accounts and sessions of `elsed serve` as a browser and a curious user meet them: the real
//! binary serving a real PostgreSQL (a private cluster from `else-tests`), spoken to over HTTP
//! (and HTTPS) with reqwest.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use else_tests::PgCluster;
use reqwest::header::{HeaderMap, COOKIE, SET_COOKIE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

#[path = "web_auth/alerts.rs"]
mod alerts;
#[path = "web_auth/database.rs"]
mod database;
#[path = "web_auth/fates.rs"]
mod fates;
#[path = "web_auth/tenants.rs"]
mod tenants;

const ELSED: &str = env!("CARGO_BIN_EXE_elsed");
const ADMIN_PASSWORD: &str = "admin password 1";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elsed-web-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs an elsed command against the test's database and configuration.
fn elsed(config: &Path, url: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(ELSED)
        .env_remove("ELSE_DATABASE_URL")
        .env("ELSE_CONFIG", config)
        .arg("--database-url")
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("elsed runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A configuration file whose `[web]` table has `web` in it.
fn write_config(name: &str, web: &str) -> PathBuf {
    let config = scratch(name).join("elsed.toml");
    std::fs::write(&config, format!("[web]\n{web}\n")).unwrap();
    config
}

fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "elsed failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A running `elsed serve` on a fresh database with one administrator, `admin`.
struct Elsed {
    child: Child,
    base: String,
    url: String,
    config: PathBuf,
    http: reqwest::Client,
}

impl Drop for Elsed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A logged-in browser: its cookie and CSRF token.
#[derive(Clone, Debug)]
struct Session {
    cookie: String,
    csrf: String,
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Elsed {
    /// `web` is the body of the `[web]` table.
    async fn start(name: &str, web: &str) -> Elsed {
        install_crypto();
        Self::start_with(name, web, reqwest::Client::builder()).await
    }

    async fn start_with(name: &str, web: &str, http: reqwest::ClientBuilder) -> Elsed {
        let url = PgCluster::shared().create_database().await;
        let config = write_config(name, web);
        ok(elsed(
            &config,
            &url,
            &["user", "add", "admin", "--role", "admin", "--password-file", "-"],
            &format!("{ADMIN_PASSWORD}\n"),
        ));
        Self::launch(url, config, http)
    }

    /// `elsed serve` on a free port of the loopback.
    fn launch(url: String, config: PathBuf, http: reqwest::ClientBuilder) -> Elsed {
        let mut child = Command::new(ELSED)
            .env("ELSE_CONFIG", &config)
            .env("RUST_LOG", "info")
            .args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("elsed serve runs");
        // The address it listens on, from its log; the rest of the log is drained meanwhile.
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, rest)) = line.split_once("serving the web application on ") {
                    let _ = tx.send(rest.trim().trim_end_matches('/').to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("elsed serve says where it listens");
        let http = http
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Elsed {
            child,
            base,
            url,
            config,
            http,
        }
    }

    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        elsed(&self.config, &self.url, args, stdin)
    }

    /// Imports the repository's fixture log: servers mx1 and out1 register themselves.
    fn import_fixture(&self) {
        self.import(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log"));
    }

    /// Imports a log of the fixture's year (2024, UTC).
    fn import(&self, log: &Path) {
        let args = [
            "import",
            "--force",
            "--timezone",
            "UTC",
            "--year-reference",
            "2024-12-31T00:00:00Z",
            log.to_str().unwrap(),
        ];
        ok(self.cli(&args, ""));
    }

    async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A request to `/api/v1{path}`, with the session's cookie and (if `csrf`) its token.
    fn request(&self, method: Method, path: &str, session: Option<&Session>, csrf: bool) -> RequestBuilder {
        let mut request = self.http.request(method, format!("{}/api/v1{path}", self.base));
        if let Some(session) = session {
            request = request.header(COOKIE, &session.cookie);
            if csrf {
                request = request.header("X-CSRF-Token", &session.csrf);
            }
        }
        request
    }

    async fn get(&self, path: &str, session: Option<&Session>) -> Response {
        self.request(Method::GET, path, session, false).send().await.unwrap()
    }

    /// A change, with the CSRF token.
    async fn send(&self, method: Method, path: &str, session: &Session, body: Value) -> Response {
        self.request(method, path, Some(session), true)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, login: &str, password: &str) -> Response {
        self.request(Method::POST, "/auth/login", None, false)
            .json(&json!({ "login": login, "password": password }))
            .send()
            .await
            .unwrap()
    }

    async fn session(&self, login: &str, password: &str) -> Session {
        let response = self.login(login, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {login}");
        let cookie = session_cookie(response.headers()).expect("a session cookie");
        let body: Value = response.json().await.unwrap();
        Session {
            cookie: cookie.split(';').next().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn admin(&self) -> Session {
        self.session("admin", ADMIN_PASSWORD).await
    }

    /// Creates an account through the API; returns its id.
    /// A plain user in no group ("viewer"), logged in.
    async fn viewer(&self, admin: &Session) -> Session {
        self.create_user(
            admin,
            json!({ "login": "viewer", "role": "user", "password": "a good password" }),
        )
        .await;
        self.session("viewer", "a good password").await
    }

    async fn create_user(&self, admin: &Session, body: Value) -> i64 {
        let response = self.send(Method::POST, "/admin/users", admin, body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("else_session="))
        .map(str::to_owned)
}

/// The error of a JSON error answer, after checking its status.
async fn error(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.url());
    let body: Value = response.json().await.expect("errors are JSON");
    assert!(body["error"].is_string(), "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_gives_a_strict_cookie_and_a_csrf_token() {
    let elsed = Elsed::start("login", "").await;
    let response = elsed.login("ADMIN", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK, "logins ignore case");
    for (name, value) in [
        ("content-security-policy", "default-src 'self'"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        let header = response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        assert!(
            header.as_deref().is_some_and(|h| h.starts_with(value)),
            "{name}: {header:?}"
        );
    }
    let cookie = session_cookie(response.headers()).unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["login"], "admin");
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["csrf_token"], body["csrf_token"]);
    let session = Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    };

    let me: Value = elsed.get("/auth/me", Some(&session)).await.json().await.unwrap();
    assert_eq!(
        (&me["login"], &me["csrf_token"]),
        (&json!("admin"), &body["csrf_token"])
    );
    error(elsed.get("/auth/me", None).await, StatusCode::UNAUTHORIZED).await;
    let forged = Session {
        cookie: "else_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ..session.clone()
    };
    error(elsed.get("/auth/me", Some(&forged)).await, StatusCode::UNAUTHORIZED).await;

    // The database knows the token only by its SHA-256.
    let token = session.cookie.trim_start_matches("else_session=");
    let db = elsed.db().await;
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE id = sha256(convert_to($1, 'UTF8'))),
                    count(*) FILTER (WHERE encode(id, 'escape') LIKE '%' || $1 || '%' OR csrf_token = $1)
             FROM web_sessions",
            &[&token],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (1, 0));
    let hash: String = db
        .query_one("SELECT password_hash FROM users WHERE login = 'admin'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // A session past its idle time, or past its absolute end, is over.
    db.execute("UPDATE web_sessions SET last_seen = now() - interval '61 minutes'", &[])
        .await
        .unwrap();
    error(elsed.get("/auth/me", Some(&session)).await, StatusCode::UNAUTHORIZED).await;
    let session = elsed.admin().await;
    db.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'", &[])
        .await
        .unwrap();
    error(elsed.get("/auth/me", Some(&session)).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_login_and_per_address() {
    let elsed = Elsed::start(
        "ratelimit",
        "login_failures_per_login = 3\nlogin_failures_per_address = 5",
    )
    .await;
    let admin = elsed.admin().await;
    elsed
        .create_user(
            &admin,
            json!({ "login": "bob", "role": "user", "password": "bob's password" }),
        )
        .await;
    let unknown = error(elsed.login("nobody", "whatever it is").await, StatusCode::UNAUTHORIZED).await;
    let wrong = error(elsed.login("bob", "not the password").await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(unknown, wrong, "an unknown login and a wrong password look alike");
    error(elsed.login("BOB", "not the password").await, StatusCode::UNAUTHORIZED).await;
    error(elsed.login("bob", "not the password").await, StatusCode::UNAUTHORIZED).await;
    // Three failures for bob: even the right password waits now.
    let response = elsed.login("bob", "bob's password").await;
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15 * 60).contains(&retry), "Retry-After {retry}");
    error(response, StatusCode::TOO_MANY_REQUESTS).await;
    // Four failures from this address: one more login may fail, then the address waits.
    elsed.session("admin", ADMIN_PASSWORD).await;
    error(elsed.login("carol", "whatever it is").await, StatusCode::UNAUTHORIZED).await;
    error(
        elsed.login("admin", ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    // Past the window, bob is welcome again.
    let db = elsed.db().await;
    db.execute("UPDATE login_failures SET at = at - interval '16 minutes'", &[])
        .await
        .unwrap();
    elsed.session("bob", "bob's password").await;
}

/// An IPv6 client owns a /64 (it picks any address in it): its addresses share one budget of
/// failed logins, and another /64 has its own. The clients come through a trusted proxy, which
/// names them in `X-Forwarded-For`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_share_the_login_budget_of_their_64() {
    let elsed = Elsed::start(
        "ipv6-logins",
        "trusted_proxies = [\"127.0.0.1\"]\nlogin_failures_per_login = 1000\nlogin_failures_per_address = 3",
    )
    .await;
    let login_from = |client: &'static str, login: &'static str, password: &'static str| {
        elsed
            .request(Method::POST, "/auth/login", None, false)
            .header("X-Forwarded-For", client)
            .json(&json!({ "login": login, "password": password }))
            .send()
    };
    // Three failures from two addresses of 2001:db8:1:2::/64 spend its budget.
    for (client, login) in [
        ("2001:db8:1:2::1", "alice"),
        ("2001:db8:1:2::2", "bob"),
        ("2001:db8:1:2::1", "carol"),
    ] {
        error(
            login_from(client, login, "not the password").await.unwrap(),
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    // A third address of that /64 waits, even with the right password.
    let response = login_from("2001:db8:1:2:ffff:ffff:ffff:fffe", "admin", ADMIN_PASSWORD)
        .await
        .unwrap();
    assert!(response.headers().contains_key("retry-after"));
    error(response, StatusCode::TOO_MANY_REQUESTS).await;
    // The next /64 has a budget of its own; so has an IPv4 client.
    for client in ["2001:db8:1:3::1", "192.0.2.7"] {
        let response = login_from(client, "admin", ADMIN_PASSWORD).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "a login from {client}");
    }
    error(
        login_from("2001:db8:1:3::1", "dave", "not the password").await.unwrap(),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

/// `/metrics` names servers and their queues: the addresses of `metrics_allowed_clients` get it,
/// any other gets 403 (or 401 asking for the token when there is one, which then opens it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_to_the_allowed_clients_only() {
    let token_file = scratch("metrics-allowed-token").join("metrics.token");
    std::fs::write(&token_file, "a-metrics-token-for-prometheus\n").unwrap();
    let allowed_only = Elsed::start("metrics-allowed", "metrics_allowed_clients = [\"127.0.0.1/32\"]").await;
    let with_token = Elsed::start(
        "metrics-allowed-or-token",
        &format!("metrics_allowed_clients = [\"127.0.0.1\"]\nmetrics_token_file = {token_file:?}"),
    )
    .await;
    // The whole of 127/8 is this machine's: a client bound to 127.0.0.2 is another address.
    let metrics = |elsed: &Elsed, from: &str, token: Option<&str>| {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let request = client.get(format!("{}/metrics", elsed.base));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    for elsed in [&allowed_only, &with_token] {
        let response = metrics(elsed, "127.0.0.1", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
    }
    let refused = metrics(&allowed_only, "127.0.0.2", None).await;
    assert!(!refused.headers().contains_key("www-authenticate"));
    let body = error(refused, StatusCode::FORBIDDEN).await;
    assert!(
        body["error"].as_str().unwrap().contains("metrics_allowed_clients"),
        "{body}"
    );
    error(
        metrics(&allowed_only, "127.0.0.2", Some("a-metrics-token-for-prometheus")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let asked = metrics(&with_token, "127.0.0.2", None).await;
    assert_eq!(asked.headers()["www-authenticate"], "Bearer");
    error(asked, StatusCode::UNAUTHORIZED).await;
    let served = metrics(&with_token, "127.0.0.2", Some("a-metrics-token-for-prometheus")).await;
    assert_eq!(served.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_need_the_csrf_token_and_logout_ends_the_session() {
    let elsed = Elsed::start("csrf", "").await;
    let session = elsed.admin().await;
    let logout = |csrf: Option<&str>| {
        let mut request = elsed.request(Method::POST, "/auth/logout", Some(&session), false);
        if let Some(csrf) = csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        request.send()
    };
    let body = error(logout(None).await.unwrap(), StatusCode::FORBIDDEN).await;
    assert!(body["error"].as_str().unwrap().contains("CSRF"), "{body}");
    error(logout(Some("wrong")).await.unwrap(), StatusCode::FORBIDDEN).await;
    error(logout(Some("")).await.unwrap(), StatusCode::FORBIDDEN).await;
    // Another session's token is no good either.
    let other = elsed.admin().await;
    error(logout(Some(&other.csrf)).await.unwrap(), StatusCode::FORBIDDEN).await;
    // A cross-site request is refused even with the token.
    let response = elsed
        .request(Method::POST, "/auth/logout", Some(&session), true)
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    error(response, StatusCode::FORBIDDEN).await;
    // Every refusal left the session alive; the real logout ends it.
    assert_eq!(elsed.get("/auth/me", Some(&session)).await.status(), StatusCode::OK);
    let response = logout(Some(&session.csrf)).await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(session_cookie(response.headers()).unwrap().contains("Max-Age=0"));
    error(elsed.get("/auth/me", Some(&session)).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(elsed.get("/auth/me", Some(&other)).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_password_ends_the_other_sessions() {
    let elsed = Elsed::start("password", "").await;
    let here = elsed.admin().await;
    let elsewhere = elsed.admin().await;
    let change = |current: &str, new: &str| {
        elsed.send(
            Method::POST,
            "/auth/password",
            &here,
            json!({ "current": current, "new": new }),
        )
    };
    let body = error(
        change("wrong password", "a new password").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["field"], "current");
    let body = error(change(ADMIN_PASSWORD, "short").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "new");
    assert_eq!(elsed.get("/auth/me", Some(&elsewhere)).await.status(), StatusCode::OK);
    assert_eq!(
        change(ADMIN_PASSWORD, "a new password").await.status(),
        StatusCode::NO_CONTENT
    );
    error(elsed.get("/auth/me", Some(&elsewhere)).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(elsed.get("/auth/me", Some(&here)).await.status(), StatusCode::OK);
    error(elsed.login("admin", ADMIN_PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    elsed.session("admin", "a new password").await;
    let audit: Value = elsed
        .get("/admin/audit?action=user.password", Some(&here))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["total"], 1, "{audit}");
}

/// Every path and method under /admin in the OpenAPI document (so the endpoints other parts
/// add are held to the same rule).
async fn admin_operations(elsed: &Elsed) -> Vec<(Method, String)> {
    let doc: Value = elsed.get("/openapi.json", None).await.json().await.unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/admin/") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            // `{id}` and the like: an id that may well exist.
            let path = path
                .split('/')
                .map(|part| if part.starts_with('{') { "1" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            operations.push((method, path));
        }
    }
    operations
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_reach_the_admin_endpoints() {
    let elsed = Elsed::start("admin403", "").await;
    let admin = elsed.admin().await;
    for (login, role) in [("user1", "user"), ("end1", "enduser")] {
        elsed
            .create_user(
                &admin,
                json!({ "login": login, "role": role, "password": "a good password" }),
            )
            .await;
    }
    let operations = admin_operations(&elsed).await;
    assert!(operations.len() >= 10, "{operations:?}");
    for login in ["user1", "end1"] {
        let session = elsed.session(login, "a good password").await;
        for (method, path) in &operations {
            let response = elsed
                .request(method.clone(), path, Some(&session), true)
                .json(&json!({ "login": "x", "role": "admin", "password": "0123456789abc", "name": "x" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{login}: {method} {path}");
        }
        // The 403s changed nothing: still one administrator, the user still a user.
        let users: Value = elsed.get("/admin/users", Some(&admin)).await.json().await.unwrap();
        let admins = users
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "admin")
            .count();
        assert_eq!((admins, users.as_array().unwrap().len()), (1, 3), "{users}");
    }
    for (method, path) in &operations {
        let response = elsed.request(method.clone(), path, None, false).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "anonymous {method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_manage_accounts_groups_and_servers_and_it_is_audited() {
    let elsed = Elsed::start("admin", "").await;
    // Servers register themselves from their log lines: mx1 and out1, role unknown.
    elsed.import_fixture();
    let admin = elsed.admin().await;
    let servers: Value = elsed.get("/servers", Some(&admin)).await.json().await.unwrap();
    let names: Vec<(&str, &str)> = servers
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["role"].as_str().unwrap()))
        .collect();
    for server in [("mx1", "unknown"), ("out1", "unknown")] {
        assert!(names.contains(&server), "{server:?} in {names:?}");
    }
    let id_of = |name: &str| {
        servers.as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (mx1, out1) = (id_of("mx1"), id_of("out1"));

    let response = elsed
        .send(
            Method::PATCH,
            &format!("/admin/servers/{mx1}"),
            &admin,
            json!({ "role": "incoming", "address": "192.0.2.10", "description": "the MX" }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let server: Value = response.json().await.unwrap();
    assert_eq!(
        (&server["role"], &server["address"], &server["description"]),
        (&json!("incoming"), &json!("192.0.2.10"), &json!("the MX"))
    );
    let body = error(
        elsed
            .send(
                Method::PATCH,
                &format!("/admin/servers/{mx1}"),
                &admin,
                json!({ "role": "boss" }),
            )
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["field"], "role");

    // A group of mx1 and example.com; a member sees mx1 only, an end user no server.
    let response = elsed
        .send(
            Method::POST,
            "/admin/groups",
            &admin,
            json!({ "name": "inbound", "server_ids": [mx1], "domains": ["Example.COM"] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let group: Value = response.json().await.unwrap();
    assert_eq!(group["domains"], json!(["example.com"]));
    let gid = group["id"].as_i64().unwrap();
    let member = elsed
        .create_user(
            &admin,
            json!({ "login": "gina", "name": "Gina", "role": "user", "password": "gina's password", "groups": [gid] }),
        )
        .await;
    elsed
        .create_user(
            &admin,
            json!({ "login": "eve", "role": "enduser", "password": "eve's password", "addresses": ["Eve@Example.com"] }),
        )
        .await;
    let gina = elsed.session("gina", "gina's password").await;
    let seen: Value = elsed.get("/servers", Some(&gina)).await.json().await.unwrap();
    assert_eq!(seen.as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(seen[0]["id"], mx1);
    let me: Value = elsed.get("/auth/me", Some(&gina)).await.json().await.unwrap();
    assert_eq!(me["groups"], json!([{ "id": gid, "name": "inbound" }]));
    let eve = elsed.session("eve", "eve's password").await;
    let seen: Value = elsed.get("/servers", Some(&eve)).await.json().await.unwrap();
    assert_eq!(seen, json!([]));
    let me: Value = elsed.get("/auth/me", Some(&eve)).await.json().await.unwrap();
    assert_eq!(me["addresses"], json!(["eve@example.com"]));
    // The group gains out1: so does gina, at her next request.
    let response = elsed
        .send(
            Method::PATCH,
            &format!("/admin/groups/{gid}"),
            &admin,
            json!({ "server_ids": [mx1, out1] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = elsed.get("/servers", Some(&gina)).await.json().await.unwrap();
    assert_eq!(seen.as_array().unwrap().len(), 2, "{seen}");

    // Conflicts and the last administrator.
    let body = error(
        elsed
            .send(
                Method::POST,
                "/admin/users",
                &admin,
                json!({ "login": "GINA", "role": "user", "password": "0123456789" }),
            )
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert!(body["error"].as_str().unwrap().contains("taken"), "{body}");
    let users: Value = elsed.get("/admin/users", Some(&admin)).await.json().await.unwrap();
    let admin_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "admin")
        .unwrap()["id"]
        .clone();
    for change in [json!({ "disabled": true }), json!({ "role": "user" })] {
        error(
            elsed
                .send(Method::PATCH, &format!("/admin/users/{admin_id}"), &admin, change)
                .await,
            StatusCode::CONFLICT,
        )
        .await;
    }
    error(
        elsed
            .send(Method::DELETE, &format!("/admin/users/{admin_id}"), &admin, json!({}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;

    // Disabling gina ends her session and her logins.
    let response = elsed
        .send(
            Method::PATCH,
            &format!("/admin/users/{member}"),
            &admin,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);
    error(elsed.get("/servers", Some(&gina)).await, StatusCode::UNAUTHORIZED).await;
    error(elsed.login("gina", "gina's password").await, StatusCode::UNAUTHORIZED).await;
    let response = elsed
        .send(Method::DELETE, &format!("/admin/users/{member}"), &admin, json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = elsed
        .send(Method::DELETE, &format!("/admin/groups/{gid}"), &admin, json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // Every change is in the audit log, newest first, refusals included, never a password.
    let audit: Value = elsed
        .get("/admin/audit?per_page=100", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["result"].as_str().unwrap()))
        .collect();
    for expected in [
        ("server.update", "ok"),
        ("group.create", "ok"),
        ("user.create", "ok"),
        ("group.update", "ok"),
        ("user.update", "ok"),
        ("user.delete", "ok"),
        ("group.delete", "ok"),
    ] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    assert!(actions
        .iter()
        .any(|(a, r)| *a == "user.create" && r.starts_with("refused")));
    assert_eq!(actions[0], ("group.delete", "ok"), "newest first");
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "admin" || e["actor"].as_str().unwrap().starts_with("cli:")));
    assert!(!audit.to_string().contains("gina's password"));
    let page: Value = elsed
        .get("/admin/audit?action=user.create&per_page=1&page=2", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["per_page"], 1);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["total"].as_i64().unwrap() >= 3, "{page}");
}

/// Announces a login body of `length` bytes (`Expect: 100-continue`, as curl does for large
/// uploads) and returns the status and body of the answer. Over raw TCP: a client that sends
/// a huge body regardless races the server's early answer against its own writing.
async fn announce_huge_body(base: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_curious_user_gets_clear_errors_and_never_a_500() {
    let elsed = Elsed::start("curious", "").await;
    let admin = elsed.admin().await;
    // SQL metacharacters are only text.
    for login in ["' OR '1'='1", "admin'--", "admin\"; DROP TABLE users; --", "%", "_dmin"] {
        error(elsed.login(login, ADMIN_PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    }
    let body = error(elsed.login(&"a".repeat(300), "x").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["field"], "login");
    error(elsed.login("admin", &"p".repeat(5000)).await, StatusCode::BAD_REQUEST).await;
    // Bodies: too large, not JSON, malformed, of the wrong shape.
    let post = |body: reqwest::Body, content_type: &str| {
        elsed
            .request(Method::POST, "/auth/login", None, false)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = announce_huge_body(&elsed.base, 3 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(),
        "{body}"
    );
    error(
        post("login=admin".into(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    error(
        post("{\"login\": ".into(), "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    error(
        post("{\"login\": 5, \"password\": []}".into(), "application/json")
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    error(
        post(
            "{\"login\": \"admin\", \"password\": \"x\", \"role\": \"admin\"}".into(),
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Admin bodies and ids.
    let weird = "Robert'); DROP TABLE users;-- <script>";
    let response = elsed
        .send(
            Method::POST,
            "/admin/groups",
            &admin,
            json!({ "name": weird, "domains": ["it's.example"] }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["name"],
        weird,
        "stored as given"
    );
    let cases: Vec<(Method, String, Value, StatusCode, Option<&str>)> = vec![
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x'--", "role": "user", "password": "0123456789" }),
            StatusCode::BAD_REQUEST,
            Some("login"),
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x", "role": "root", "password": "0123456789" }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x", "role": "user", "password": "012345678" }),
            StatusCode::BAD_REQUEST,
            Some("password"),
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x", "role": "user", "password": "0123456789", "groups": [424242] }),
            StatusCode::BAD_REQUEST,
            Some("groups"),
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x", "role": "enduser", "password": "0123456789", "addresses": ["not an address"] }),
            StatusCode::BAD_REQUEST,
            Some("addresses"),
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x", "role": "enduser", "password": "0123456789", "addresses": vec!["a@b.example"; 1001] }),
            StatusCode::BAD_REQUEST,
            Some("addresses"),
        ),
        (
            Method::POST,
            "/admin/users".into(),
            json!({ "login": "x", "role": "user", "password": "0123456789", "groups": [1e30] }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/admin/groups".into(),
            json!({ "name": "g", "server_ids": [99999] }),
            StatusCode::BAD_REQUEST,
            Some("server_ids"),
        ),
        (
            Method::POST,
            "/admin/groups".into(),
            json!({ "name": "g", "user_ids": [-1] }),
            StatusCode::BAD_REQUEST,
            Some("user_ids"),
        ),
        (
            Method::POST,
            "/admin/groups".into(),
            json!({ "name": "" }),
            StatusCode::BAD_REQUEST,
            Some("name"),
        ),
        (
            Method::POST,
            "/admin/groups".into(),
            json!({ "name": "x".repeat(100_000) }),
            StatusCode::BAD_REQUEST,
            Some("name"),
        ),
        (
            Method::PATCH,
            "/admin/users/abc".into(),
            json!({}),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::PATCH,
            "/admin/users/99999999999999999999999".into(),
            json!({}),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::PATCH,
            "/admin/users/424242".into(),
            json!({ "name": "x" }),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PATCH,
            "/admin/users/-1".into(),
            json!({ "name": "x" }),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            "/admin/users/424242".into(),
            json!({}),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::DELETE,
            "/admin/groups/1%27%20OR%201=1".into(),
            json!({}),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::PATCH,
            "/admin/servers/424242".into(),
            json!({ "role": "relay" }),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PATCH,
            "/admin/servers/1".into(),
            json!({ "address": "1.2.3.4'; --" }),
            StatusCode::BAD_REQUEST,
            Some("address"),
        ),
        (
            Method::GET,
            "/admin/audit?per_page=100000".into(),
            json!(null),
            StatusCode::BAD_REQUEST,
            Some("per_page"),
        ),
        (
            Method::GET,
            "/admin/audit?page=0".into(),
            json!(null),
            StatusCode::BAD_REQUEST,
            Some("page"),
        ),
        (
            Method::GET,
            "/admin/audit?page=-3".into(),
            json!(null),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::GET,
            format!("/admin/audit?actor={}", "a".repeat(5000)),
            json!(null),
            StatusCode::BAD_REQUEST,
            Some("actor"),
        ),
        (
            Method::GET,
            "/admin/audit?actor=%27%20OR%201%3D1--".into(),
            json!(null),
            StatusCode::OK,
            None,
        ),
        (
            Method::GET,
            "/no/such/endpoint".into(),
            json!(null),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            Method::PUT,
            "/admin/users".into(),
            json!({}),
            StatusCode::METHOD_NOT_ALLOWED,
            None,
        ),
    ];
    for (method, path, body, status, field) in cases {
        let mut request = elsed.request(method.clone(), &path, Some(&admin), true);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let got = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{method} {path} {body}: {answer}");
        if status != StatusCode::OK {
            assert!(answer["error"].is_string(), "{method} {path}: {answer}");
        }
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{method} {path}: {answer}");
        }
    }
    // Nothing of it reached the tables.
    let users: Value = elsed.get("/admin/users", Some(&admin)).await.json().await.unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
}

/// The report page frames the HTML report with its styles: that answer alone may be framed, by
/// this application only, sandboxed, with its inline styles and nothing else; every other answer
/// may not be framed at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_html_report_may_be_framed_and_only_by_the_application() {
    let elsed = Elsed::start("framing", "").await;
    elsed.import_fixture();
    let admin = elsed.admin().await;
    let header = |response: &Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let html = elsed.get("/reports?format=html", Some(&admin)).await;
    assert_eq!(html.status(), StatusCode::OK);
    assert!(header(&html, "content-type").starts_with("text/html"));
    assert_eq!(header(&html, "x-frame-options"), "SAMEORIGIN");
    let policy = header(&html, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "frame-ancestors 'self'",
        "sandbox",
    ] {
        assert!(policy.contains(directive), "{directive}: {policy}");
    }
    assert!(!policy.contains("script-src"), "{policy}");
    assert!(
        html.text().await.unwrap().contains("<style>"),
        "the report's own styles"
    );
    // An error of the framed report shows in the frame too.
    let bad = elsed.get("/reports?format=html&since=yesterday", Some(&admin)).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&bad, "x-frame-options"), "SAMEORIGIN");
    for path in [
        "/reports?format=json",
        "/reports?format=text",
        "/auth/me",
        "/servers",
        "/",
    ] {
        let response = elsed.get(path, Some(&admin)).await;
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{path}");
        assert!(
            header(&response, "content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_the_endpoints() {
    let elsed = Elsed::start("openapi", "").await;
    let response = elsed.get("/openapi.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("valid JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{}", doc["openapi"]);
    assert_eq!(doc["servers"][0]["url"], "/api/v1");
    for (path, method) in [
        ("/auth/login", "post"),
        ("/auth/logout", "post"),
        ("/auth/me", "get"),
        ("/auth/password", "post"),
        ("/servers", "get"),
        ("/admin/users", "post"),
        ("/admin/users/{id}", "patch"),
        ("/admin/groups/{id}", "delete"),
        ("/admin/servers/{id}", "patch"),
        ("/admin/audit", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing");
    }
    assert!(doc["components"]["schemas"]["Me"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["session"]["name"], "else_session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_cookie_is_secure() {
    install_crypto();
    let dir = scratch("tls");
    else_tests::tls::certificates(&dir, "ELSE test CA", &[("web", "localhost")]);
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let web = format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"",
        dir.join("web.pem").display(),
        dir.join("web.key").display()
    );
    let http = reqwest::Client::builder().tls_backend_preconfigured(tls);
    let mut elsed = Elsed::start_with("tls", &web, http).await;
    assert!(elsed.base.starts_with("https://127.0.0.1:"), "{}", elsed.base);
    // The certificate names localhost.
    elsed.base = elsed.base.replace("127.0.0.1", "localhost");
    let response = elsed.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = session_cookie(response.headers()).unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(response.headers().contains_key("strict-transport-security"));
    // Unreadable certificate files stop `elsed serve` with the key that names them.
    let config = scratch("tls").join("broken.toml");
    std::fs::write(
        &config,
        "[web]\ntls_cert = \"/nonexistent/web.pem\"\ntls_key = \"/nonexistent/web.key\"\n",
    )
    .unwrap();
    let broken = self::elsed(&config, &elsed.url, &["serve", "--listen", "127.0.0.1:0"], "");
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("web.tls_cert /nonexistent/web.pem"), "{stderr}");
    // Plain HTTP to the TLS port gets nowhere.
    let plain = reqwest::Client::new()
        .get(elsed.base.replace("https://", "http://") + "/healthz")
        .send()
        .await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_manages_accounts_and_groups() {
    let elsed = Elsed::start("cli", "").await;
    elsed.import_fixture();
    let short = elsed.cli(&["user", "add", "tom", "--password-file", "-"], "short\n");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
    ok(elsed.cli(&["group", "add", "outbound"], ""));
    ok(elsed.cli(&["group", "add-server", "outbound", "out1"], ""));
    ok(elsed.cli(&["group", "add-domain", "outbound", "@Example.com"], ""));
    let missing = elsed.cli(&["group", "add-server", "outbound", "mx9"], "");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("server 'mx9' not found"));
    ok(elsed.cli(
        &[
            "user",
            "add",
            "tom",
            "--name",
            "Tom T",
            "--group",
            "outbound",
            "--password-file",
            "-",
        ],
        "tom's password\n",
    ));
    let password_file = scratch("cli").join("password");
    std::fs::write(&password_file, "end user password\n").unwrap();
    let add_ann = [
        "user",
        "add",
        "ann",
        "--role",
        "enduser",
        "--address",
        "Ann@Example.com",
        "--password-file",
        password_file.to_str().unwrap(),
    ];
    // A password file others may read is refused, with the fix.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let readable = elsed.cli(&add_ann, "");
    assert!(!readable.status.success());
    let refusal = String::from_utf8_lossy(&readable.stderr);
    assert!(
        refusal.contains("mode 0644") && refusal.contains("chmod 600"),
        "{refusal}"
    );
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    ok(elsed.cli(&add_ann, ""));
    let list = ok(elsed.cli(&["user", "list", "--json"], ""));
    let users: Vec<Value> = list.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let logins: Vec<&str> = users.iter().map(|u| u["login"].as_str().unwrap()).collect();
    assert_eq!(logins, ["admin", "ann", "tom"]);
    assert_eq!(users[1]["addresses"], json!(["ann@example.com"]));
    let groups = ok(elsed.cli(&["group", "list"], ""));
    assert!(
        groups.contains("outbound")
            && groups.contains("out1")
            && groups.contains("example.com")
            && groups.contains("tom"),
        "{groups}"
    );

    let tom = elsed.session("tom", "tom's password").await;
    let seen: Value = elsed.get("/servers", Some(&tom)).await.json().await.unwrap();
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["name"], "out1");
    ok(elsed.cli(&["user", "passwd", "tom", "--password-file", "-"], "another password\n"));
    error(elsed.get("/servers", Some(&tom)).await, StatusCode::UNAUTHORIZED).await;
    let tom = elsed.session("tom", "another password").await;
    ok(elsed.cli(&["user", "disable", "tom"], ""));
    error(elsed.get("/servers", Some(&tom)).await, StatusCode::UNAUTHORIZED).await;
    ok(elsed.cli(&["user", "disable", "--enable", "tom"], ""));
    elsed.session("tom", "another password").await;
    let last = elsed.cli(&["user", "delete", "admin"], "");
    assert!(String::from_utf8_lossy(&last.stderr).contains("last enabled administrator"));
    ok(elsed.cli(&["user", "delete", "tom"], ""));
    ok(elsed.cli(&["group", "delete", "outbound"], ""));
    let admin = elsed.admin().await;
    let audit: Value = elsed
        .get("/admin/audit?per_page=50", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let cli_entries = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().unwrap().starts_with("cli:"))
        .count();
    assert!(cli_entries >= 10, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_database_elsed_serves_503() {
    install_crypto();
    let config = write_config("nodb", "");
    let url = "host=127.0.0.1 port=1 dbname=else connect_timeout=2".to_owned();
    let elsed = Elsed::launch(url, config, reqwest::Client::builder());
    let response = elsed.http.get(format!("{}/healthz", elsed.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.unwrap()["database"], false);
    let body = error(
        elsed.login("admin", ADMIN_PASSWORD).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(
        body["error"].as_str().unwrap().contains("database unavailable"),
        "{body}"
    );
    let session = Session {
        cookie: "else_session=x".into(),
        csrf: "y".into(),
    };
    error(
        elsed.get("/servers", Some(&session)).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    // The document needs no database.
    assert_eq!(elsed.get("/openapi.json", None).await.status(), StatusCode::OK);
}

/// The SNMP poller's view through the API: health on `/servers`, samples of a server the caller
/// may see (404 for one they may not), queue actions for administrators only, confirmed, and a
/// clear 503 when SNMP is not set up; `/metrics` in Prometheus' text format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_health_samples_actions_and_metrics() {
    let token_file = scratch("health-token").join("metrics.token");
    std::fs::write(&token_file, "a-metrics-token-for-prometheus\n").unwrap();
    // SNMP not set up whatever this machine holds: a key file of the test's own, absent (the
    // default, /etc/else/snmp.key, exists where the packages are installed).
    let key_file = scratch("health-token").join("no-snmp.key");
    let elsed = Elsed::start(
        "health",
        &format!("metrics_token_file = {token_file:?}\n\n[snmp]\nkey_file = {key_file:?}"),
    )
    .await;
    elsed.import_fixture();
    let mut db = elsed.db().await;
    omelse::store::ensure_days(&mut db, &std::collections::BTreeSet::from([19796]))
        .await
        .unwrap();
    let mx1: i32 = db
        .query_one("SELECT id FROM servers WHERE name = 'mx1'", &[])
        .await
        .unwrap()
        .get(0);
    db.batch_execute(&format!(
        "INSERT INTO snmp_agents (server_id, host, version, secrets) VALUES ({mx1}, '127.0.0.1', '2c', '\\x00');
         INSERT INTO snmp_samples (ts, server_id, reachable, deferred_count, deferred_bytes, deferred_oldest,
                                   hold_count, hold_bytes, hold_oldest, master_alive, load1, spool_used_pct,
                                   state, reasons)
         VALUES ('2024-03-14T10:00:00Z', {mx1}, true, 120, 480000, 3600, 2, 8000, 60, true, 0.5, 12,
                 'warning', '{{\"120 deferred (warning at 100)\"}}')"
    ))
    .await
    .unwrap();
    let admin = elsed.admin().await;
    let servers: Value = elsed.get("/servers", Some(&admin)).await.json().await.unwrap();
    let mx1_view = servers.as_array().unwrap().iter().find(|s| s["name"] == "mx1").unwrap();
    assert_eq!(mx1_view["health"]["state"], "warning", "{servers}");
    assert_eq!(mx1_view["health"]["reason"], "120 deferred (warning at 100)");
    // The queue sizes of that sample (the agent did not read the active and incoming queues).
    assert_eq!(
        mx1_view["health"]["queues"],
        json!({"incoming": null, "active": null, "deferred": 120, "hold": 2})
    );

    let path = format!("/servers/{mx1}/samples?since=2024-03-14T00:00:00Z&until=2024-03-15T00:00:00Z");
    let samples: Value = elsed.get(&path, Some(&admin)).await.json().await.unwrap();
    let sample = &samples["items"][0];
    assert_eq!(sample["queues"]["deferred"]["count"], 120, "{samples}");
    assert_eq!(sample["queues"]["hold"]["oldest_age"], 60);
    assert_eq!(sample["spool_disk_pct"], 12);
    error(
        elsed.get("/servers/999999/samples", Some(&admin)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    error(
        elsed
            .get(&format!("/servers/{mx1}/samples?since=yesterday"), Some(&admin))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // A group user without mx1 does not see it; nor its samples.
    let viewer = elsed.viewer(&admin).await;
    error(elsed.get(&path, Some(&viewer)).await, StatusCode::NOT_FOUND).await;

    // Actions: administrators only, confirmed, valid; without SNMP set up, a clear 503.
    let actions = format!("/admin/servers/{mx1}/actions");
    let flush = json!({ "action": "flush", "confirm": true });
    error(
        elsed.send(Method::POST, &actions, &viewer, flush.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let unconfirmed = elsed
        .send(Method::POST, &actions, &admin, json!({ "action": "flush" }))
        .await;
    assert_eq!(error(unconfirmed, StatusCode::BAD_REQUEST).await["field"], "confirm");
    for bad in [
        json!({ "action": "reboot", "confirm": true }),
        json!({ "action": "hold", "queue_id": "ABC; rm -rf /", "confirm": true }),
        json!({ "action": "flush", "queue_id": "ABCDEF123", "confirm": true }),
    ] {
        let response = elsed.send(Method::POST, &actions, &admin, bad.clone()).await;
        assert_eq!(
            error(response, StatusCode::BAD_REQUEST).await["field"],
            "action",
            "{bad}"
        );
    }
    let body = error(
        elsed.send(Method::POST, &actions, &admin, flush).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert!(body["error"].as_str().unwrap().contains("snmp.key_file"), "{body}");

    // Server names and queue sizes only for the token's holder.
    let metrics = |token: Option<&'static str>| {
        let request = elsed.http.get(format!("{}/metrics", elsed.base));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move { request.send().await.unwrap() }
    };
    let anonymous = metrics(None).await;
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    error(anonymous, StatusCode::UNAUTHORIZED).await;
    error(
        metrics(Some("a-metrics-token-for-someone-else")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let metrics = metrics(Some("a-metrics-token-for-prometheus")).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("server=\"mx1\"") && l.contains("deferred") && l.ends_with(" 120")),
        "{text}"
    );
}

/// An administrator sets a server's SNMP agent from the inventory: the settings come back, the
/// secrets never do (stored encrypted, absent from the audit log); bad settings are refused with
/// the reason, and only administrators may do it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrators_set_a_servers_snmp_agent_and_its_secrets_stay_sealed() {
    let key = scratch("agent-key").join("snmp.key");
    let _ = std::fs::remove_file(&key);
    let keygen = Command::new(ELSED).args(["snmp", "keygen"]).arg(&key).output().unwrap();
    assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
    let elsed = Elsed::start("agent", &format!("\n[snmp]\nkey_file = \"{}\"", key.display())).await;
    elsed.import_fixture();
    let db = elsed.db().await;
    let mx1: i32 = db
        .query_one("SELECT id FROM servers WHERE name = 'mx1'", &[])
        .await
        .unwrap()
        .get(0);
    let admin = elsed.admin().await;
    let path = format!("/admin/servers/{mx1}/snmp");
    error(elsed.get(&path, Some(&admin)).await, StatusCode::NOT_FOUND).await;
    let settings = json!({
        "enabled": true, "host": "192.0.2.10", "port": 161, "version": "3",
        "read_user": "else-ro", "control_user": "else-ctl", "auth_protocol": "SHA",
    });
    let secrets = json!({
        "read_auth_pass": "read-auth-secret", "read_priv_pass": "read-priv-secret",
        "control_auth_pass": "ctl-auth-secret", "control_priv_pass": "ctl-priv-secret",
    });
    let body = json!({ "settings": settings, "secrets": secrets });
    let response = elsed.send(Method::PUT, &path, &admin, body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let shown: Value = elsed.get(&path, Some(&admin)).await.json().await.unwrap();
    assert_eq!(shown, settings);

    // Sealed at rest, and out of the audit log.
    let stored: Vec<u8> = db
        .query_one("SELECT secrets FROM snmp_agents WHERE server_id = $1", &[&mx1])
        .await
        .unwrap()
        .get(0);
    assert!(!String::from_utf8_lossy(&stored).contains("ctl-auth-secret"));
    let audit: String = db
        .query_one(
            "SELECT details::text FROM audit_log WHERE action = 'snmp.agent.set'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(audit.contains("else-ctl") && !audit.contains("secret"), "{audit}");

    // A passphrase too short, a host that is not one: refused with the reason, nothing stored.
    let mut short = body.clone();
    short["secrets"]["control_priv_pass"] = json!("short");
    let refused = error(
        elsed.send(Method::PUT, &path, &admin, short).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        refused["error"].as_str().unwrap().contains("privacy passphrase"),
        "{refused}"
    );
    let mut bad_host = body.clone();
    bad_host["settings"]["host"] = json!("mx1; reboot");
    error(
        elsed.send(Method::PUT, &path, &admin, bad_host).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // Not for users.
    let viewer = elsed.viewer(&admin).await;
    error(
        elsed.send(Method::PUT, &path, &viewer, body).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    error(elsed.get(&path, Some(&viewer)).await, StatusCode::FORBIDDEN).await;
    // The key may belong to the service user (keygen as root gives it away): leave no file
    // behind that a later package purge would find owned by a deleted user.
    std::fs::remove_dir_all(key.parent().unwrap()).unwrap();
}

/// Issue 16's stall: an account opens 50 CSV exports and never reads them while 50 logins with
/// a wrong password race in parallel. The exports past the account's limit get 429, the logins
/// get exactly the configured number of tries, and `/healthz` and a right login from another
/// client still answer within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_exports_and_racing_logins_stall_nobody() {
    let elsed = Elsed::start(
        "stall",
        "pool_size = 4\nexports_per_user = 2\nexport_idle_secs = 120\nlogin_failures_per_login = 5\nlogin_failures_per_address = 1000",
    )
    .await;
    elsed.import_fixture();
    let admin = elsed.admin().await;
    elsed
        .create_user(
            &admin,
            json!({ "login": "bob", "role": "user", "password": "bob's password" }),
        )
        .await;
    // 100 000 lines of 200 bytes: an export far larger than what sockets buffer, so that an
    // export nobody reads keeps waiting for its reader.
    elsed
        .db()
        .await
        .execute(
            "INSERT INTO log_events (ts, line_key, server_id, program, pid, kind, raw)
             SELECT '2024-03-14T12:00:00Z'::timestamptz + g * interval '1 ms', 1000000 + g,
                    (SELECT id FROM servers WHERE name = 'mx1'), 'postfix/smtpd', 1,
                    (SELECT kind FROM log_events LIMIT 1), repeat('x', 200)
             FROM generate_series(1, 100000) g",
            &[],
        )
        .await
        .unwrap();

    // Opened, never read: the answers are kept, their bodies untouched.
    let exports = futures_util::future::join_all((0..50).map(|_| elsed.get("/logs?format=csv", Some(&admin)))).await;
    let opened = exports.iter().filter(|r| r.status() == StatusCode::OK).count();
    let refused: Vec<&Response> = exports
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(opened, 2, "exports running at once");
    assert_eq!(opened + refused.len(), 50, "every other export gets 429");
    assert!(refused.iter().all(|r| r.headers().contains_key("retry-after")));

    let healthz = || async {
        let started = std::time::Instant::now();
        let response = elsed.http.get(format!("{}/healthz", elsed.base)).send().await.unwrap();
        (response.status(), started.elapsed())
    };
    let (logins, health) = tokio::join!(
        futures_util::future::join_all((0..50).map(|i| {
            let elsed = &elsed;
            async move { elsed.login("bob", &format!("wrong password {i}")).await }
        })),
        healthz(),
    );
    let statuses: Vec<StatusCode> = logins.iter().map(Response::status).collect();
    let tried = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((tried, throttled), (5, 45), "{statuses:?}");
    assert_eq!(health.0, StatusCode::OK);
    assert!(
        health.1 < Duration::from_secs(1),
        "/healthz during the logins took {:?}",
        health.1
    );

    // Another client (another loopback address), the exports still unread.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (status, took) = healthz().await;
    assert_eq!(status, StatusCode::OK);
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
    let started = std::time::Instant::now();
    let response = other
        .post(format!("{}/api/v1/auth/login", elsed.base))
        .json(&json!({ "login": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(took < Duration::from_secs(1), "the right login took {took:?}");
    drop(exports);
}

/// One account's slow searches never take the whole pool: past `queries_per_user`, one more
/// waits `pool_wait_ms` for a place, then gets 429 (with `Retry-After`), and another account is
/// still answered meanwhile; quick ones beyond the limit (a screen of ten statistics panels)
/// queue and are all answered. The searches are made slow for real: the test holds a lock on
/// `messages`, so each waits with its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_slow_searches_leave_the_pool_to_the_others() {
    let elsed = Elsed::start("queries", "pool_size = 6\nqueries_per_user = 3\npool_wait_ms = 1000").await;
    elsed.import_fixture();
    let admin = elsed.admin().await;
    elsed
        .create_user(
            &admin,
            json!({ "login": "carol", "role": "admin", "password": "carol's password" }),
        )
        .await;
    let carol = elsed.session("carol", "carol's password").await;

    let mut db = elsed.db().await;
    let lock = db.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let searches = futures_util::future::join_all((0..10).map(|i| {
        let (elsed, admin) = (&elsed, &admin);
        async move {
            elsed
                .get(&format!("/messages?sender=nobody{i}@example.org"), Some(admin))
                .await
        }
    }));
    let others = async {
        // While the admin's searches wait on the lock (three with their connections, the rest
        // for a place until they are refused)…
        tokio::time::sleep(Duration::from_secs(2)).await;
        let logs = elsed.get("/logs?per_page=5", Some(&carol)).await;
        let status = logs.status();
        tokio::time::sleep(Duration::from_secs(1)).await;
        lock.rollback().await.unwrap();
        status
    };
    let (searches, carols) = tokio::join!(searches, others);
    assert_eq!(carols, StatusCode::OK, "another account's list while the searches wait");
    let statuses: Vec<StatusCode> = searches.iter().map(Response::status).collect();
    let answered = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused: Vec<&Response> = searches
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!((answered, refused.len()), (3, 7), "{statuses:?}");
    assert!(refused.iter().all(|r| r.headers().contains_key("retry-after")));

    // The places are given back with the answers; quick reads beyond them wait their turn.
    let panels = ["traffic", "top", "delays", "sizes", "countries", "postscreen"];
    let stats = futures_util::future::join_all(panels.iter().chain(&panels).map(|panel| {
        let (elsed, admin) = (&elsed, &admin);
        async move { elsed.get(&format!("/stats/{panel}"), Some(admin)).await }
    }))
    .await;
    let statuses: Vec<StatusCode> = stats.iter().map(Response::status).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

/// A search that outlasts `search_time_limit_ms` answers at its limit with what it found,
/// marked `cut_short`, instead of holding its connection until `statement_timeout_secs`. Made
/// slow for real: the test holds a lock on a partition of `messages`, so the search, planned
/// over every partition, waits until its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_stops_at_its_time_limit_with_what_it_found() {
    let elsed = Elsed::start("time-limit", "search_time_limit_ms = 500\nstatement_timeout_secs = 60").await;
    elsed.import_fixture();
    let admin = elsed.admin().await;
    let whole: Value = elsed.get("/messages", Some(&admin)).await.json().await.unwrap();
    assert_eq!(whole["cut_short"], false, "{whole}");
    assert!(whole["total"].as_i64().unwrap() > 0);

    let mut db = elsed.db().await;
    let lock = db.transaction().await.unwrap();
    let partition: String = lock
        .query_one(
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'messages'::regclass LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    lock.batch_execute(&format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE"))
        .await
        .unwrap();
    let response = elsed
        .get("/messages?sender=example.org&sender_op=contains", Some(&admin))
        .await;
    lock.rollback().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["cut_short"], true, "{page}");
    assert_eq!(page["total_capped"], true, "more may exist");
    assert_eq!(
        page["items"].as_array().unwrap().len() as i64,
        page["total"].as_i64().unwrap()
    );
}
