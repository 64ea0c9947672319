//! Who may talk to a listener: the addresses and CIDR blocks of a configuration list
//! (`[ndr] allowed_clients`, `[greylist] allowed_clients`, `[web] metrics_allowed_clients`).

use std::net::IpAddr;

use crate::greylist::triplet::{contains, network};

/// Client networks; an address alone is a network of one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<(IpAddr, u8)>);

impl AllowList {
    /// The networks of `entries` (`192.0.2.7`, `192.0.2.0/24`, `2001:db8::/32`), or the entry
    /// that is not an address or CIDR block.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        entries
            .iter()
            .map(|entry| {
                let (addr, prefix) = match entry.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (entry.as_str(), None),
                };
                let ip: IpAddr = addr
                    .trim()
                    .parse()
                    .map_err(|_| format!("{entry:?} is not an IP address or CIDR block"))?;
                let ip = ip.to_canonical();
                let full = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    Some(p) => p
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= full)
                        .ok_or_else(|| format!("{entry:?} has a bad prefix length"))?,
                    None => full,
                };
                Ok(network(ip, prefix, prefix))
            })
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as IPv4) is in one of the networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|&(net, prefix)| contains(net, prefix, ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::AllowList;

    #[test]
    fn addresses_and_blocks_allow_their_clients_only() {
        let list = AllowList::parse(&["192.0.2.0/24".into(), "::1".into(), " 10.1.2.3 ".into()]).unwrap();
        for (ip, allowed) in [
            ("192.0.2.200", true),
            ("::ffff:192.0.2.1", true),
            ("192.0.3.1", false),
            ("::1", true),
            ("::2", false),
            ("10.1.2.3", true),
            ("10.1.2.4", false),
        ] {
            assert_eq!(list.allows(ip.parse().unwrap()), allowed, "{ip}");
        }
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(AllowList::parse(&["mx1.example".into()]).is_err());
        assert!(AllowList::parse(&[]).unwrap().is_empty());
    }
}
