//! `elsed serve`: the JSON API under `/api/v1` and the browser application, one axum router.
//!
//! Layout: `auth` (sessions, login, the `Caller` and `Admin` extractors), `audit` (the audit log
//! as the API writes and reads it), `error` and `extract` (how failures reach the client),
//! `paging`, `openapi` (the document of `/api/v1`), `assets` (the browser application), `api/`
//! (one module per screen's endpoints). The access model itself (accounts, groups, the caller
//! and its scope) is [`crate::access`]'s; `[web]` of the configuration is
//! [`crate::config::web`]'s. Every handler takes a [`Caller`], and every query it runs is
//! narrowed by the caller's [`crate::access::Scope`] in SQL.

pub(crate) mod account_limit;
pub(crate) mod api;
pub(crate) mod assets;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod error;
pub(crate) mod extract;
pub(crate) mod openapi;
pub(crate) mod paging;

/// The JSON API's OpenAPI document on standard output (`elsed openapi`, read by web/'s `npm run api-types`).
pub use openapi::print as print_openapi;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use serde_json::json;

use crate::{db, Settings};

/// Request bodies beyond this are refused with 413 (the largest legitimate one, a bulk search
/// of 10 000 Message-IDs, is well under it).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on [default: `listen` of [web], else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR:PORT", env = "ELSE_LISTEN")]
    pub listen: Option<SocketAddr>,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The primary: everything that writes, and what must see its own writes.
    pub db: db::Pool,
    /// Searches, reports, statistics and log lists: a hot standby when there is one.
    pub reads: crate::replica::Reads,
    pub config: Arc<crate::config::Config>,
    /// The SNMP thread for queue actions; `None` when SNMP is not set up (no `snmp.key_file`).
    pub snmp: Option<crate::snmp::SnmpHandle>,
    /// The CSV exports running, per account.
    pub exports: Arc<api::export::Exports>,
    /// The reads running, per account (`[web] queries_per_user`): see [`AppState::read_for`].
    pub queries: Arc<account_limit::AccountLimit>,
    /// Who may read `/metrics`.
    pub metrics: Arc<api::health::MetricsAccess>,
}

impl AppState {
    /// The state of `config`'s web application over `db`, every read on it too; fails when
    /// `[web]` names a metrics token file that cannot be read.
    pub fn new(
        db: db::Pool,
        config: crate::config::Config,
        snmp: Option<crate::snmp::SnmpHandle>,
    ) -> anyhow::Result<AppState> {
        AppState::with_reads(crate::replica::Reads::primary_only(db.clone()), db, config, snmp)
    }

    /// A read connection (where reads go) for `caller`'s account, which may hold
    /// `[web] queries_per_user` at once: one more waits `pool_wait_ms` for one of them, without
    /// a connection, then gets 429; the pool is never one account's.
    pub async fn read_for(&self, caller: &crate::access::Caller) -> error::ApiResult<account_limit::AccountRead> {
        self.counted(caller, self.reads.get()).await
    }

    /// The same on the primary, for what is read there (NDRs, GreyLSE's decisions).
    pub async fn primary_for(&self, caller: &crate::access::Caller) -> error::ApiResult<account_limit::AccountRead> {
        self.counted(caller, self.db.get()).await
    }

    /// `connection` (not yet taken) once `caller`'s account has a place among its queries.
    async fn counted(
        &self,
        caller: &crate::access::Caller,
        connection: impl std::future::Future<Output = Result<db::Pooled, db::PoolError>>,
    ) -> error::ApiResult<account_limit::AccountRead> {
        let place = self.queries.claim(caller.user_id).await?;
        Ok(account_limit::AccountRead::new(connection.await?, place))
    }

    /// The state with the reads of `reads` (a hot standby, [`reads`]).
    pub fn with_reads(
        reads: crate::replica::Reads,
        db: db::Pool,
        config: crate::config::Config,
        snmp: Option<crate::snmp::SnmpHandle>,
    ) -> anyhow::Result<AppState> {
        let web = &config.web;
        Ok(AppState {
            exports: api::export::Exports::new(web.exports_per_user, Duration::from_secs(web.export_idle_secs)),
            queries: Arc::new(account_limit::AccountLimit::new(
                web.queries_per_user,
                Duration::from_millis(web.pool_wait_ms),
                "database queries",
                1,
            )),
            metrics: Arc::new(api::health::MetricsAccess::new(web)?),
            db,
            reads,
            config: Arc::new(config),
            snmp,
        })
    }
}

/// The web application's pool: callers wait `pool_wait_ms` at most, queries run
/// `statement_timeout_secs` at most, and are not JIT-compiled.
pub fn pool(settings: &Settings) -> anyhow::Result<db::Pool> {
    db::pool_with(&settings.database()?, "elsed-web", pool_options(settings))
}

fn pool_options(settings: &Settings) -> db::PoolOptions {
    let web = &settings.config.web;
    db::PoolOptions {
        wait: Duration::from_millis(web.pool_wait_ms),
        statement_timeout: Some(Duration::from_secs(web.statement_timeout_secs)),
        jit: false,
        ..db::PoolOptions::new(web.pool_size, db::Commit::Durable)
    }
}

/// Where the reads go: `database.read_url`'s standby (a pool like the primary's) while it keeps
/// up, else the primary.
pub fn reads(settings: &Settings, primary: &db::Pool) -> anyhow::Result<crate::replica::Reads> {
    let Some(standby) = settings.read_database() else {
        return Ok(crate::replica::Reads::primary_only(primary.clone()));
    };
    let pool = db::pool_with(&standby, "elsed-web-reads", pool_options(settings))
        .map_err(|e| anyhow::anyhow!("database.read_url: {e:#}"))?;
    let max_lag = Duration::from_secs(settings.config.database.read_max_lag_secs);
    Ok(crate::replica::Reads::with_standby(primary.clone(), pool, max_lag))
}

/// How long `/healthz` waits for a connection: a load balancer's probe gets its answer, busy
/// or not, instead of queueing behind the requests.
const HEALTH_WAIT: Duration = Duration::from_millis(500);

/// The whole application: health, API, and the embedded browser application.
pub fn router(state: AppState) -> Router {
    // Unknown paths and methods answer in JSON like everything else.
    let api = api::router()
        .fallback(|| async { error::ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        });
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api::health::metrics_routes())
        .nest("/api/v1", api)
        .merge(assets::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Around every request: refuses a cross-site request that changes something (the browser says
/// so in `Sec-Fetch-Site`; SameSite cookies and the CSRF token are the other two locks), and
/// puts the security headers on every answer. The framing policy (CSP and `X-Frame-Options`)
/// is a handler's when it sets one: the HTML report, which the report page frames.
async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let cross_site = request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|site| site.as_bytes() == b"cross-site");
    // A body announced too large is refused before a byte of it is read (a client that sent
    // `Expect: 100-continue` is spared sending it); bodies without a length are cut by
    // `DefaultBodyLimit` as they arrive.
    let too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|length| length > BODY_LIMIT as u64);
    let changes = !matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    let mut response = if cross_site && changes {
        error::ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused").into_response()
    } else if too_large {
        error::ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {BODY_LIMIT} bytes"),
        )
        .into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    let set = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    let unless_set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in unless_set {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    // Answers carry people's mail traffic: no cache keeps them unless a handler says otherwise.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if state.config.web.tls() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Up, and the database answers: what load balancers and the package's checks ask. Every
/// connection busy is `"busy": true` with 503, within [`HEALTH_WAIT`] (plus the query).
async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let timeouts = deadpool_postgres::Timeouts {
        wait: Some(HEALTH_WAIT),
        ..state.db.timeouts()
    };
    let (database, busy) = match state.db.timeout_get(&timeouts).await {
        Ok(client) => {
            let answered = tokio::time::timeout(Duration::from_secs(2), client.simple_query("SELECT 1")).await;
            (matches!(answered, Ok(Ok(_))), false)
        }
        Err(db::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)) => (false, true),
        Err(_) => (false, false),
    };
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut body = json!({ "status": if database { "ok" } else { "degraded" }, "database": database });
    if busy {
        body["busy"] = true.into();
    }
    (status, Json(body))
}

/// The certificate chain and key of `[web]`, as a rustls server configuration (ring, the
/// provider the rest of ELSE uses).
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("web.tls_cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("web.tls_cert {}: no certificate in it", cert.display());
    }
    crate::secret_file::check(key, "web.tls_key")?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("web.tls_key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("web.tls_cert and web.tls_key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// How often the dashboards' rollups catch up with what the writers marked dirty.
const ROLLUP_EVERY: Duration = Duration::from_secs(10);

/// Recomputes the rollups of the hours the writers touched (omelse only marks them, so that a
/// slow refresh never holds up rsyslog's commits); several elsed serve share the work under the
/// store's lock.
async fn keep_rollups_current(db: db::Pool) {
    let mut tick = tokio::time::interval(ROLLUP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(mut client) = db.get().await else {
            continue;
        };
        if let Err(e) = omelse::store::refresh_rollups(&mut client).await {
            tracing::warn!("rollups not refreshed: {e}");
        }
    }
}

/// The SNMP thread, when the credentials' key is there: queue actions need it, the rest of the
/// application does not.
fn snmp_handle(config: &crate::snmp::SnmpConfig) -> Option<crate::snmp::SnmpHandle> {
    if !config.key_file.exists() {
        tracing::info!(key_file = %config.key_file.display(), "SNMP not set up: queue actions unavailable");
        return None;
    }
    match crate::snmp::SnmpHandle::start(config) {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!("SNMP: {e:#}; queue actions unavailable");
            None
        }
    }
}

/// `elsed serve`: migrates the schema when the database is there (it serves anyway when it is
/// not: /healthz says so, and it answers again once the database is back), then listens.
pub async fn run(args: &ServeArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let web = &settings.config.web;
    let listen = args.listen.unwrap_or(web.listen);
    crate::geo::init(&settings.config.geoip)?;
    let tls = match (&web.tls_cert, &web.tls_key) {
        (Some(cert), Some(key)) => Some(axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(
            tls_config(cert, key)?,
        ))),
        _ => None,
    };
    match db::connect(&settings.database()?).await {
        Ok(mut client) => {
            db::migrate(&mut client).await?;
        }
        Err(e) => tracing::warn!("serve: {e:#}; serving anyway, answers 503 until it is back"),
    }
    let primary = pool(settings)?;
    let state = AppState::with_reads(
        reads(settings, &primary)?,
        primary,
        settings.config.clone(),
        snmp_handle(&settings.config.snmp),
    )?;
    tokio::spawn(state.reads.clone().watch());
    tokio::spawn(crate::schedule::run(state.db.clone(), settings.config.reports.clone()));
    tokio::spawn(keep_rollups_current(state.db.clone()));
    tokio::spawn(crate::alerts::run(
        state.db.clone(),
        settings.config.alerts.clone(),
        settings.config.reports.clone(),
    ));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        match crate::shutdown::stop_requested().await {
            Ok(name) => tracing::info!("serve: {name} received, finishing the requests in flight"),
            Err(e) => {
                tracing::warn!("serve: cannot wait for stop signals: {e}");
                return;
            }
        }
        on_signal.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let on_listening = handle.clone();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn(async move {
        if let Some(address) = on_listening.listening().await {
            tracing::info!("serving the web application on {scheme}://{address}/");
        }
    });
    let served = match tls {
        Some(tls) => axum_server::bind_rustls(listen, tls).handle(handle).serve(app).await,
        None => axum_server::bind(listen).handle(handle).serve(app).await,
    };
    served.map_err(|e| anyhow::anyhow!("cannot serve on {listen}: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
