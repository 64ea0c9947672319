//! Addresses and client names as pflogsumm counts them, so that "senders" or "recipient
//! hosts/domains" mean the same thing in both reports.

/// `User@Example.COM` → `User@example.com` (the domain part, from the first `@`, is lower case);
/// the null sender is `from=<>`.
pub fn address(raw: &str) -> String {
    if raw.is_empty() {
        return "from=<>".to_owned();
    }
    match raw.find('@') {
        Some(at) => format!("{}{}", &raw[..at], raw[at..].to_lowercase()),
        None => raw.to_owned(),
    }
}

/// The domain of a normalised address: what follows `local@`, or `None` when there is no local
/// part and `@` (the null sender, a bare local name).
pub fn address_domain(address: &str) -> Option<&str> {
    let at = address.find('@')?;
    (at > 0 && at + 1 < address.len()).then(|| &address[at + 1..])
}

/// The domain a recipient counts under: its domain, else the whole address (`root`).
pub fn recipient_domain(address: &str) -> &str {
    address_domain(address).unwrap_or(address)
}

/// A client's "host/domain": its IP address when it has no name, else its name shortened to the
/// registered domain (`mail.out.example.com` → `example.com`, `a.b.example.co.uk` →
/// `example.co.uk`) by pflogsumm's rule: two labels when the last has three letters, or three
/// when they end in `xx.yy`/`xxx.yy`; other names are kept as they are.
pub fn client_domain(name: &str, ip: &str) -> String {
    if name.is_empty() || name == "unknown" {
        return ip.to_owned();
    }
    let labels: Vec<&str> = name.split('.').collect();
    let n = labels.len();
    let tail_len = |k: usize| labels[n - k..].join(".");
    // `^(.*)\.([^.]+)\.([^.]{3}|[^.]{2,3}\.[^.]{2})$`: at least one label before the kept ones,
    // the longest prefix first (so the short tail wins when both fit).
    if n >= 3 && labels[n - 1].chars().count() == 3 && !labels[n - 2].is_empty() {
        return tail_len(2).to_lowercase();
    }
    if n >= 4
        && labels[n - 1].chars().count() == 2
        && (2..=3).contains(&labels[n - 2].chars().count())
        && !labels[n - 3].is_empty()
    {
        return tail_len(3).to_lowercase();
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_counted_like_pflogsumm() {
        assert_eq!(address("Bob@Example.COM"), "Bob@example.com");
        assert_eq!(address(""), "from=<>");
        assert_eq!(address("root"), "root");
        assert_eq!(address_domain("from=<>"), None);
        assert_eq!(address_domain("@example.com"), None);
        assert_eq!(recipient_domain("bob@example.com"), "example.com");
        assert_eq!(recipient_domain("root"), "root");
    }

    #[test]
    fn client_names_shorten_to_their_domain() {
        assert_eq!(client_domain("mail.out.Example.com", "192.0.2.1"), "example.com");
        assert_eq!(client_domain("a.b.example.co.uk", "192.0.2.1"), "example.co.uk");
        assert_eq!(client_domain("x.co.uk", "192.0.2.1"), "x.co.uk");
        assert_eq!(client_domain("host1.uhu-banane.de", "192.0.2.1"), "host1.uhu-banane.de");
        assert_eq!(client_domain("localhost", "127.0.0.1"), "localhost");
        assert_eq!(client_domain("unknown", "192.0.2.7"), "192.0.2.7");
        assert_eq!(client_domain("", "2001:db8::1"), "2001:db8::1");
    }
}
