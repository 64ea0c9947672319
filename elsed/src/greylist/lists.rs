//! Static lists, from the configuration and the database: client and recipient whitelists and
//! the recipient domains opted in or out. Held in memory and swapped whole on refresh, so that a
//! request never waits for them.

use std::net::IpAddr;

use super::config::{DomainMode, GreylistConfig};
use super::triplet::{contains, network};

/// One client whitelist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientPattern {
    /// An address, a CIDR block or a partial IPv4 address (`10.1` = `10.1.0.0/16`).
    Net(IpAddr, u8),
    /// A reverse name: matches it and its subdomains.
    Name(String),
    /// A reverse-name glob with `*` and `?`.
    Glob(String),
}

impl ClientPattern {
    fn parse(pattern: &str) -> Option<ClientPattern> {
        let p = pattern.trim().to_ascii_lowercase();
        if p.is_empty() || p.starts_with('#') {
            return None;
        }
        if p.starts_with('/') {
            // Postgrey's regular expressions are not supported: they cost every request a scan.
            tracing::warn!("greylist: client whitelist regex {p:?} ignored (use names or globs)");
            return None;
        }
        if let Ok(ip) = p.parse::<IpAddr>() {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            return Some(ClientPattern::Net(ip.to_canonical(), prefix));
        }
        if let Some((addr, prefix)) = p.split_once('/') {
            let ip = addr.parse::<IpAddr>().ok()?.to_canonical();
            let prefix: u8 = prefix.parse().ok()?;
            let (net, prefix) = network(ip, prefix, prefix);
            return Some(ClientPattern::Net(net, prefix));
        }
        let octets: Vec<&str> = p.split('.').collect();
        if octets.len() < 4
            && octets
                .iter()
                .all(|o| !o.is_empty() && o.len() <= 3 && o.parse::<u8>().is_ok())
        {
            let mut full = octets.clone();
            full.resize(4, "0");
            let ip: IpAddr = full.join(".").parse().ok()?;
            return Some(ClientPattern::Net(ip, 8 * octets.len() as u8));
        }
        let p = p.trim_start_matches('.').to_owned();
        Some(if p.contains(['*', '?']) {
            ClientPattern::Glob(p)
        } else {
            ClientPattern::Name(p)
        })
    }

    fn matches(&self, ip: IpAddr, name: &str) -> bool {
        match self {
            ClientPattern::Net(net, prefix) => contains(*net, *prefix, ip),
            ClientPattern::Name(n) => in_domain(name, n),
            ClientPattern::Glob(g) => glob(g.as_bytes(), name.as_bytes()),
        }
    }
}

/// An address pattern in access(5) style, for recipient whitelists and opt-in/out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AddressPattern {
    /// `user@domain`, also matching `user+ext@domain`.
    Address(String, String),
    /// `user@`, any domain.
    User(String),
    /// `domain`, also its subdomains.
    Domain(String),
}

impl AddressPattern {
    fn parse(pattern: &str) -> Option<AddressPattern> {
        let p = pattern.trim().to_ascii_lowercase();
        if p.is_empty() || p.starts_with('#') || p.starts_with('/') {
            return None;
        }
        Some(match p.rsplit_once('@') {
            Some((user, "")) => AddressPattern::User(user.to_owned()),
            Some((user, domain)) => AddressPattern::Address(user.to_owned(), domain.to_owned()),
            None => AddressPattern::Domain(p.trim_start_matches('.').to_owned()),
        })
    }

    /// `address` must be lower-case.
    fn matches(&self, address: &str) -> bool {
        let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
        let user = local.split_once('+').map_or(local, |(u, _)| u);
        match self {
            AddressPattern::Address(u, d) => (local == u || user == u) && domain == d,
            AddressPattern::User(u) => local == u || user == u,
            AddressPattern::Domain(d) => in_domain(domain, d),
        }
    }
}

/// Why an administrator's client whitelist entry would never match, if so: an address, a CIDR
/// block, a partial IPv4 address, a reverse name or a glob (no regular expressions).
pub fn check_client_pattern(pattern: &str) -> Result<(), String> {
    let p = pattern.trim();
    if p.is_empty() || p.contains(char::is_whitespace) || p.starts_with(['#', '/']) {
        return Err(format!("{pattern:?} is not an address, CIDR block, name or glob"));
    }
    if let Some((addr, prefix)) = p.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{pattern:?}: {addr:?} is not an IP address"))?;
        let full = if ip.to_canonical().is_ipv4() { 32 } else { 128 };
        return match prefix.parse::<u8>() {
            Ok(n) if n <= full => Ok(()),
            _ => Err(format!("{pattern:?}: the prefix length is 0 to {full}")),
        };
    }
    let name_like = p
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'*' | b'?' | b':'));
    if !name_like || ClientPattern::parse(p).is_none() {
        return Err(format!("{pattern:?} is not an address, CIDR block, name or glob"));
    }
    Ok(())
}

/// Why a recipient whitelist or opt-in/out entry would never match, if so: `user@domain`,
/// `user@` or `domain`.
pub fn check_address_pattern(pattern: &str) -> Result<(), String> {
    let p = pattern.trim();
    let bad = p.is_empty()
        || p == "@"
        || p.contains(char::is_whitespace)
        || p.starts_with(['#', '/'])
        || p.matches('@').count() > 1;
    if bad || AddressPattern::parse(p).is_none() {
        return Err(format!("{pattern:?} is not user@domain, user@ or a domain"));
    }
    Ok(())
}

/// `name` is `domain` or one of its subdomains (both lower-case).
fn in_domain(name: &str, domain: &str) -> bool {
    name.len() >= domain.len()
        && name.ends_with(domain)
        && (name.len() == domain.len() || name.as_bytes()[name.len() - domain.len() - 1] == b'.')
        && !domain.is_empty()
}

/// `*` and `?` wildcard match.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    p = bp + 1;
                    t = bt + 1;
                    backtrack = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The raw entries read from the database.
#[derive(Debug, Default, Clone)]
pub struct DbLists {
    pub clients: Vec<String>,
    pub recipients: Vec<String>,
    pub optin: Vec<String>,
    pub optout: Vec<String>,
}

/// Why a request is not greylisted, if a list says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exempt {
    ClientWhitelist,
    RecipientWhitelist,
    OptedOut,
    NotOptedIn,
}

impl Exempt {
    /// `(action, reason)` in the decisions log.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Exempt::ClientWhitelist => ("whitelist", "client whitelist"),
            Exempt::RecipientWhitelist => ("whitelist", "recipient whitelist"),
            Exempt::OptedOut => ("skip", "opted out"),
            Exempt::NotOptedIn => ("skip", "not opted in"),
        }
    }
}

/// The compiled lists.
#[derive(Debug, Clone)]
pub struct Lists {
    mode: DomainMode,
    clients: Vec<ClientPattern>,
    recipients: Vec<AddressPattern>,
    opted: Vec<AddressPattern>,
}

impl Lists {
    /// The configuration's entries plus the database's.
    pub fn build(cfg: &GreylistConfig, db: &DbLists) -> Lists {
        let opted = match cfg.mode {
            DomainMode::Optout => cfg.optout.iter().chain(&db.optout),
            DomainMode::Optin => cfg.optin.iter().chain(&db.optin),
        };
        Lists {
            mode: cfg.mode,
            clients: cfg
                .whitelist_clients
                .iter()
                .chain(&db.clients)
                .filter_map(|p| ClientPattern::parse(p))
                .collect(),
            recipients: cfg
                .whitelist_recipients
                .iter()
                .chain(&db.recipients)
                .filter_map(|p| AddressPattern::parse(p))
                .collect(),
            opted: opted.filter_map(|p| AddressPattern::parse(p)).collect(),
        }
    }

    /// Whether the lists exempt this request; `client_name` and `recipient` as Postfix sent
    /// them (any case).
    pub fn exempt(&self, ip: IpAddr, client_name: &str, recipient: &str) -> Option<Exempt> {
        let name = client_name.to_ascii_lowercase();
        if self.clients.iter().any(|c| c.matches(ip, &name)) {
            return Some(Exempt::ClientWhitelist);
        }
        let rcpt = recipient.to_ascii_lowercase();
        if self.recipients.iter().any(|r| r.matches(&rcpt)) {
            return Some(Exempt::RecipientWhitelist);
        }
        let listed = self.opted.iter().any(|r| r.matches(&rcpt));
        match (self.mode, listed) {
            (DomainMode::Optout, true) => Some(Exempt::OptedOut),
            (DomainMode::Optin, false) => Some(Exempt::NotOptedIn),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(clients: &[&str], recipients: &[&str], mode: DomainMode, opted: &[&str]) -> Lists {
        let cfg = GreylistConfig {
            mode,
            ..Default::default()
        };
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let db = DbLists {
            clients: s(clients),
            recipients: s(recipients),
            optin: s(opted),
            optout: s(opted),
        };
        Lists::build(&cfg, &db)
    }

    #[test]
    fn client_patterns() {
        let l = lists(
            &[
                "192.0.2.7",
                "198.51.100.0/24",
                "10.1",
                "2001:db8::/32",
                "google.com",
                "mail*.example.net",
                "/re/",
            ],
            &[],
            DomainMode::Optout,
            &[],
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let other = ip("203.0.113.1");
        let ex = |a: IpAddr, n: &str| l.exempt(a, n, "u@d.example") == Some(Exempt::ClientWhitelist);
        assert!(ex(ip("192.0.2.7"), "unknown"));
        assert!(!ex(ip("192.0.2.8"), "unknown"));
        assert!(ex(ip("198.51.100.200"), "unknown"));
        assert!(ex(ip("::ffff:198.51.100.1"), "unknown"));
        assert!(ex(ip("10.1.255.3"), "unknown"));
        assert!(!ex(ip("10.10.0.1"), "unknown"), "octet boundary, not text prefix");
        assert!(ex(ip("2001:db8:ff::1"), "unknown"));
        assert!(ex(other, "mail-a.google.com"));
        assert!(ex(other, "Google.COM"));
        assert!(!ex(other, "notgoogle.com"));
        assert!(ex(other, "mail7.example.net"));
        assert!(!ex(other, "smtp.example.net"));
        assert!(!ex(other, "re"));
    }

    #[test]
    fn recipient_patterns_and_domain_modes() {
        let l = lists(
            &[],
            &["postmaster@", "abuse@example.org", "lists.example.com"],
            DomainMode::Optout,
            &["optout.example"],
        );
        let ip: IpAddr = "203.0.113.1".parse().unwrap();
        let ex = |r: &str| l.exempt(ip, "unknown", r);
        assert_eq!(ex("Postmaster@any.example"), Some(Exempt::RecipientWhitelist));
        assert_eq!(ex("abuse+x@example.org"), Some(Exempt::RecipientWhitelist));
        assert_eq!(ex("abuse@example.net"), None);
        assert_eq!(ex("u@sub.lists.example.com"), Some(Exempt::RecipientWhitelist));
        assert_eq!(ex("u@optout.example"), Some(Exempt::OptedOut));
        assert_eq!(ex("u@example.org"), None);
        let l = lists(&[], &[], DomainMode::Optin, &["in.example", "solo@else.example"]);
        let ex = |r: &str| l.exempt(ip, "unknown", r);
        assert_eq!(ex("u@in.example"), None);
        assert_eq!(ex("solo@else.example"), None);
        assert_eq!(ex("other@else.example"), Some(Exempt::NotOptedIn));
    }

    #[test]
    fn administrators_entries_are_checked() {
        for ok in [
            "192.0.2.7",
            "198.51.100.0/24",
            "2001:db8::/32",
            "10.1",
            "google.com",
            "mail*.example.net",
        ] {
            assert_eq!(check_client_pattern(ok), Ok(()), "{ok}");
        }
        for bad in ["", " ", "/re/", "10.0.0.0/33", "x/24", "a b", "#c", "mail;rm"] {
            assert!(check_client_pattern(bad).is_err(), "{bad:?}");
        }
        for ok in ["postmaster@", "abuse@example.org", "example.org"] {
            assert_eq!(check_address_pattern(ok), Ok(()), "{ok}");
        }
        for bad in ["", "@", "a@b@c", "a b@c", "/x/"] {
            assert!(check_address_pattern(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob(b"*", b""));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"abbc"));
        assert!(glob(b"*.example.net", b"x.y.example.net"));
        assert!(!glob(b"*.example.net", b"example.net"));
    }
}
