//! GreyLSE settings, meant to sit in `elsed.toml` as a `[greylist]` table. Every field has a
//! default (Postgrey's where Postgrey has one, SQLgrey's for the auto-whitelist), so an empty
//! table is a working configuration.

use serde::Deserialize;

use crate::allow_list::AllowList;

/// Which recipient domains are greylisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainMode {
    /// Every domain, except those opted out (the Postgrey behaviour).
    Optout,
    /// Only the domains opted in.
    Optin,
}

/// The policy service's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GreylistConfig {
    /// Listening sockets: `inet:HOST:PORT` (or `HOST:PORT`) and `unix:PATH`.
    pub listen: Vec<String>,
    /// Mode of a unix socket: owner and group only by default. Postfix's smtpd runs as user
    /// `postfix`: give the socket's directory group `postfix` and the setgid bit (see
    /// docs/security.md), or widen the mode.
    pub socket_mode: u32,
    /// Client addresses or CIDR blocks that may ask (TCP); anyone else is closed at once.
    /// Unix sockets are guarded by their mode instead.
    pub allowed_clients: Vec<String>,
    /// Concurrent TCP connections of one client address; more are closed at once, so that one
    /// client cannot take the slots of every other MX.
    pub max_connections_per_client: usize,
    /// This MX's name, in the X-Greylist header and in the decisions log. Empty: the host name.
    pub hostname: String,
    /// Seconds a new triplet is refused before a retry passes (Postgrey `--delay`).
    pub delay_secs: i64,
    /// Seconds after the first attempt within which a retry must come, or it starts over
    /// (Postgrey `--retry-window`, 2 days).
    pub retry_window_secs: i64,
    /// A triplet not seen for this long is forgotten (Postgrey `--max-age`, 35 days).
    pub max_age_secs: i64,
    /// Client network grouping: IPv4 prefix length (Postgrey `--ipv4cidr`).
    pub ipv4_prefix: u8,
    /// Client network grouping: IPv6 prefix length (Postgrey `--ipv6cidr`).
    pub ipv6_prefix: u8,
    /// Passes (at most one counted per hour) after which a sender is trusted from a client
    /// network; 0 disables the auto-whitelist. SQLgrey trusts after the first pass.
    pub awl_sender_passes: i32,
    /// Distinct trusted senders of one domain from one network after which the whole domain is
    /// trusted from it (SQLgrey `group_domain_level`); 0 disables this level.
    pub awl_domain_senders: i64,
    /// Auto-whitelist entries unused for this long expire (SQLgrey `awl_age`, 60 days).
    pub awl_max_age_secs: i64,
    /// Opt-out (greylist everyone but…) or opt-in (greylist only…).
    pub mode: DomainMode,
    /// Recipient domains (or addresses) opted in, besides the database's.
    pub optin: Vec<String>,
    /// Recipient domains (or addresses) opted out, besides the database's.
    pub optout: Vec<String>,
    /// Client whitelist entries, besides the database's (IP, CIDR, `10.1`, name, `*.glob`).
    pub whitelist_clients: Vec<String>,
    /// Recipient whitelist entries, besides the database's (`user@domain`, `user@`, `domain`).
    pub whitelist_recipients: Vec<String>,
    /// The action that greylists. DEFER_IF_PERMIT lets a later permanent reject win.
    pub greylist_action: String,
    /// Text after the action; `%s` is replaced by the seconds left, `%r` by the recipient domain.
    pub greylist_text: String,
    /// Add the X-Greylist header when a greylisted triplet passes.
    pub prepend_header: bool,
    /// Longest time the database may take for one decision before the service fails open.
    pub db_timeout_ms: u64,
    /// After a database failure, answer DUNNO without trying for this long (no pile-up).
    pub db_retry_ms: u64,
    /// Database connections kept by the service.
    pub pool_size: usize,
    /// Time for a client to finish a request once it started one (slow clients are cut).
    pub request_timeout_ms: u64,
    /// Idle time between requests after which a connection is closed: shorter than Postfix's
    /// `smtpd_policy_service_max_idle` (300 s), so that idle connections do not pile up; smtpd
    /// reconnects when it needs to.
    pub idle_timeout_secs: u64,
    /// Longest `name=value` line; longer is a protocol error.
    pub max_line_bytes: usize,
    /// Most attributes in one request.
    pub max_attributes: usize,
    /// Concurrent connections; more are closed at once (smtpd retries).
    pub max_connections: usize,
    /// How often the static whitelists and opt-in/out lists are re-read from the database.
    pub lists_refresh_secs: u64,
    /// Days of the decisions log kept (whole daily partitions are dropped).
    pub decisions_retention_days: i64,
}

impl Default for GreylistConfig {
    fn default() -> Self {
        GreylistConfig {
            listen: vec!["inet:127.0.0.1:10023".into()],
            socket_mode: 0o660,
            allowed_clients: vec!["127.0.0.1".into(), "::1".into()],
            max_connections_per_client: 250,
            hostname: String::new(),
            delay_secs: 300,
            retry_window_secs: 2 * 86_400,
            max_age_secs: 35 * 86_400,
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            awl_sender_passes: 1,
            awl_domain_senders: 2,
            awl_max_age_secs: 60 * 86_400,
            mode: DomainMode::Optout,
            optin: Vec::new(),
            optout: Vec::new(),
            whitelist_clients: Vec::new(),
            whitelist_recipients: Vec::new(),
            greylist_action: "DEFER_IF_PERMIT".into(),
            greylist_text: "Greylisted by GreyLSE, please try again later".into(),
            prepend_header: true,
            db_timeout_ms: 200,
            db_retry_ms: 1_000,
            pool_size: 16,
            request_timeout_ms: 10_000,
            idle_timeout_secs: 120,
            max_line_bytes: 2_048,
            max_attributes: 100,
            max_connections: 1_000,
            lists_refresh_secs: 60,
            decisions_retention_days: 35,
        }
    }
}

impl GreylistConfig {
    /// The allowed client networks, or the entry that is not an address or CIDR block.
    pub fn allowed(&self) -> Result<AllowList, String> {
        AllowList::parse(&self.allowed_clients)
    }

    /// The configured host name, or the system's.
    pub fn effective_hostname(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_gives_postgrey_defaults() {
        let cfg: GreylistConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.delay_secs, 300);
        assert_eq!(cfg.retry_window_secs, 172_800);
        assert_eq!(cfg.max_age_secs, 35 * 86_400);
        assert_eq!((cfg.ipv4_prefix, cfg.ipv6_prefix), (24, 64));
        assert_eq!(cfg.mode, DomainMode::Optout);
        let cfg: GreylistConfig =
            toml::from_str("delay_secs = 60\nmode = \"optin\"\noptin = [\"example.org\"]").unwrap();
        assert_eq!(cfg.delay_secs, 60);
        assert_eq!(cfg.mode, DomainMode::Optin);
        assert!(toml::from_str::<GreylistConfig>("dealy_secs = 1").is_err());
    }
}
