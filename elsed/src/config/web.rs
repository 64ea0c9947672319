//! `[web]` of `elsed.toml`: where `elsed serve` listens, its TLS, and how long sessions live.
//!
//! ```toml
//! [web]
//! listen = "0.0.0.0:8443"            # default 127.0.0.1:8080; --listen overrides
//! tls_cert = "/etc/else/tls/web.pem" # both or neither: HTTPS, and the cookie is Secure
//! tls_key = "/etc/else/tls/web.key"
//! session_idle_minutes = 60          # a session unused this long ends
//! session_max_hours = 12             # and every session ends this long after login
//! pool_size = 16                     # database connections of the web application
//! trusted_proxies = ["127.0.0.1"]    # reverse proxies whose X-Forwarded-For is believed
//! pool_wait_ms = 5000                # a request waits this long for a connection, then 503
//! statement_timeout_secs = 120       # no query of the web application runs longer
//! export_idle_secs = 30              # a CSV export whose client stops reading this long ends
//! exports_per_user = 2               # concurrent CSV exports of one account, then 429
//! queries_per_user = 4               # concurrent searches, statistics… of one account, then 429
//! search_time_limit_ms = 2000        # a search's page: the rows found by then ("cut_short")
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`, elsed serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    pub session_idle_minutes: u32,
    pub session_max_hours: u32,
    pub pool_size: usize,
    /// Peers whose `X-Forwarded-For` names the client (for the login rate limit and the sessions'
    /// client address); nobody else's is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Marks the session cookie Secure without TLS here: for a TLS-terminating reverse proxy.
    pub secure_cookie: bool,
    /// Failed logins of one login name within `login_window_minutes` before 429.
    pub login_failures_per_login: u32,
    /// Failed logins from one client address within the window before 429 (offices share one).
    pub login_failures_per_address: u32,
    pub login_window_minutes: u32,
    /// Milliseconds a request waits for a database connection when all are busy; then 503 with
    /// `Retry-After` rather than a queue that never ends.
    pub pool_wait_ms: u64,
    /// The web sessions' `statement_timeout`, in seconds.
    pub statement_timeout_secs: u64,
    /// A streamed CSV export whose client has not taken the next chunk for this long loses its
    /// database connection and its stream.
    pub export_idle_secs: u64,
    /// Concurrent CSV exports of one account; one more is answered 429.
    pub exports_per_user: u32,
    /// Concurrent database reads of one account (a page of search, statistics, a report, a
    /// message's detail); one more waits `pool_wait_ms` for a place, then is answered 429, so
    /// one account never holds the whole pool.
    pub queries_per_user: u32,
    /// How long a page of messages, refusals or log lines is searched for: then the rows found
    /// so far are the page, marked `cut_short` (a substring over months never runs for minutes).
    pub search_time_limit_ms: u64,
    /// `/metrics` for whoever shows this bearer token (a file of its own, like every secret).
    pub metrics_token_file: Option<PathBuf>,
    /// `/metrics` for these addresses or CIDR blocks (without a token).
    pub metrics_allowed_clients: Vec<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            session_idle_minutes: 60,
            session_max_hours: 12,
            pool_size: 16,
            trusted_proxies: Vec::new(),
            secure_cookie: false,
            login_failures_per_login: 5,
            login_failures_per_address: 20,
            login_window_minutes: 15,
            pool_wait_ms: 5000,
            statement_timeout_secs: 120,
            export_idle_secs: 30,
            exports_per_user: 2,
            queries_per_user: 4,
            search_time_limit_ms: 2000,
            metrics_token_file: None,
            metrics_allowed_clients: Vec::new(),
        }
    }
}

impl WebConfig {
    /// The checks types alone do not make: `(key, problem)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let positive = [
            ("session_idle_minutes", u64::from(self.session_idle_minutes)),
            ("session_max_hours", u64::from(self.session_max_hours)),
            ("login_failures_per_login", u64::from(self.login_failures_per_login)),
            ("login_failures_per_address", u64::from(self.login_failures_per_address)),
            ("login_window_minutes", u64::from(self.login_window_minutes)),
            ("exports_per_user", u64::from(self.exports_per_user)),
            ("queries_per_user", u64::from(self.queries_per_user)),
            ("search_time_limit_ms", self.search_time_limit_ms),
            ("pool_wait_ms", self.pool_wait_ms),
            ("statement_timeout_secs", self.statement_timeout_secs),
            ("export_idle_secs", self.export_idle_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err((format!("web.{key}"), "must be at least 1".into()));
            }
        }
        if self.pool_size == 0 {
            return Err(("web.pool_size".into(), "must be at least 1".into()));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(("web.tls_key".into(), "missing: tls_cert needs it".into())),
            (None, Some(_)) => Err(("web.tls_cert".into(), "missing: tls_key needs it".into())),
            _ => Ok(()),
        }
    }

    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}
