//! IP networks (`10.0.0.0/8`, `fc00::/7`) for telling internal peers from the Internet, parsed by
//! hand: the correlator needs only "parse" and "contains".

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One CIDR block. A bare address is a /32 (IPv4) or /128 (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                // An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`) is matched by the IPv4 blocks below.
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip.to_ipv4_mapped().is_some_and(|v4| self.contains(&IpAddr::V4(v4))),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }

    /// The private and loopback blocks: 127.0.0.0/8, ::1, 10/8, 172.16/12, 192.168/16, fc00::/7.
    pub fn private_defaults() -> Vec<IpNet> {
        [
            "127.0.0.0/8",
            "::1/128",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "fc00::/7",
        ]
        .iter()
        .map(|s| s.parse().expect("valid built-in network"))
        .collect()
    }
}

/// Why a network did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpNetError(pub String);

impl fmt::Display for IpNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' is not an IP network (address/prefix)", self.0)
    }
}

impl std::error::Error for IpNetError {}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || IpNetError(text.to_owned());
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| err())?;
        let prefix = match prefix {
            Some(p) => p.trim().parse().map_err(|_| err())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(addr, prefix).ok_or_else(err)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// True when `ip` (as logged, possibly with an `IPv6:` prefix) is inside one of `nets`.
pub fn in_networks(nets: &[IpNet], ip: &str) -> bool {
    let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
    match ip.parse::<IpAddr>() {
        Ok(ip) => nets.iter().any(|n| n.contains(&ip)),
        Err(_) => false,
    }
}

/// True for a loopback address (`127.0.0.0/8`, `::1`, or the IPv4-mapped form).
pub fn is_loopback(ip: &str) -> bool {
    let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        Err(_) => false,
    }
}

/// True for the address a host reaches itself at: 127.0.0.1 or ::1 (also IPv4-mapped). Other
/// loopback addresses (127.0.0.2…) are where several instances or hosts of one machine listen,
/// so a relay there is not assumed to be this host: the next queue id's client tells.
pub fn is_this_host(ip: &str) -> bool {
    let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4 == std::net::Ipv4Addr::LOCALHOST,
        Ok(IpAddr::V6(v6)) => v6.is_loopback() || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let nets = IpNet::private_defaults();
        assert!(in_networks(&nets, "10.1.2.3"));
        assert!(in_networks(&nets, "172.31.255.1"));
        assert!(!in_networks(&nets, "172.32.0.1"));
        assert!(in_networks(&nets, "192.168.0.178"));
        assert!(in_networks(&nets, "::1"));
        assert!(in_networks(&nets, "fd12::5"));
        assert!(in_networks(&nets, "::ffff:127.0.0.1"));
        assert!(!in_networks(&nets, "2001:db8::1"));
        assert!(!in_networks(&nets, "8.8.8.8"));
        assert!(!in_networks(&nets, "/var/run/dovecot/lmtp"));
        let host: IpNet = "192.0.2.7".parse().unwrap();
        assert!(host.contains(&"192.0.2.7".parse().unwrap()));
        assert!(!host.contains(&"192.0.2.8".parse().unwrap()));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"203.0.113.9".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("nonsense/8".parse::<IpNet>().is_err());
        assert_eq!("fc00::/7".parse::<IpNet>().unwrap().to_string(), "fc00::/7");
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("::1"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
