//! What makes a greylisting triplet: the client's network (a retry from another host of the
//! same pool is recognised) and the sender as it will look on the retry (addresses that change
//! with every message, as VERP, SRS, BATV and `+tag` do, are folded into one).

use std::net::IpAddr;

/// The client network key: `192.0.2.0/24`, `2001:db8:1:2::/64`. IPv4-mapped IPv6 addresses
/// count as IPv4.
pub fn client_network(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> String {
    let (net, prefix) = network(ip, v4_prefix, v6_prefix);
    format!("{net}/{prefix}")
}

/// The network address of `ip` under the prefix for its family.
pub fn network(ip: IpAddr, v4_prefix: u8, v6_prefix: u8) -> (IpAddr, u8) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let prefix = v4_prefix.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            (IpAddr::V4((u32::from(v4) & mask).into()), prefix)
        }
        IpAddr::V6(v6) => {
            let prefix = v6_prefix.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            (IpAddr::V6((u128::from(v6) & mask).into()), prefix)
        }
    }
}

/// Whether `ip` lies in `net/prefix` (families must match; mapped IPv4 counts as IPv4).
pub fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    match (net, ip) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => network(ip, prefix, prefix).0 == net,
        _ => false,
    }
}

/// The domain of an address, lower-cased (`""` for the null sender or a bare local part).
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())
        .unwrap_or_default()
}

/// The sender as greylisting keys it: lower-cased, with the per-message parts replaced.
///
/// - SRS (`SRS0=hash=tt=orig.domain=orig-local@forwarder`, `SRS1=…==…`): the original sender,
///   whose address does not change every day as the SRS one does.
/// - BATV (`prvs=tag=local`, also the swapped `prvs=local=tag` seen in the wild, `msprvs1=`):
///   the local part without its tag (Postgrey's rule).
/// - `local+extension`: the extension is dropped (mailing-list VERP).
/// - VERP and bounce ids: in the local part split at `. _ - = /`, tokens of digits only (as
///   Postgrey's `\b\d+\b`), hexadecimal tokens of 4+ with a digit, and long alphanumeric tokens
///   with three digits or more become `#`; what follows a `bounce-`/`bounces-`/`return-`/`bo-`
///   prefix becomes `#` altogether (Mailchimp/SES style per-message addresses).
pub fn normalize_sender(sender: &str) -> String {
    let sender = sender.to_ascii_lowercase();
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return sender;
    };
    if let Some((orig_local, orig_domain)) = srs_original(local) {
        return format!("{}@{orig_domain}", normalize_local(orig_local));
    }
    format!("{}@{domain}", normalize_local(batv_strip(local)))
}

/// The original `(local, domain)` of an SRS0/SRS1 local part.
fn srs_original(local: &str) -> Option<(&str, &str)> {
    let rest = local.strip_prefix("srs0").or_else(|| local.strip_prefix("srs1"))?;
    let sep = rest.chars().next()?;
    if !matches!(sep, '=' | '+' | '-') {
        return None;
    }
    // SRS1=hash=forwarder==hash=tt=domain=local: the part after "==" is an SRS0 tail.
    let tail = match rest.find("==") {
        Some(i) if local.starts_with("srs1") => &rest[i + 2..],
        _ => &rest[1..],
    };
    // hash=tt=domain=local (the local part may itself contain '=').
    let mut parts = tail.splitn(4, '=');
    let (_hash, _tt, domain, orig) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (!domain.is_empty() && !orig.is_empty()).then_some((orig, domain))
}

/// The local part of a BATV address without its tag.
fn batv_strip(local: &str) -> &str {
    let Some(rest) = local.strip_prefix("prvs=").or_else(|| local.strip_prefix("msprvs1=")) else {
        return local;
    };
    let Some((a, b)) = rest.split_once('=') else {
        return local;
    };
    let looks_tag = |s: &str| s.len() >= 10 && s[..10].bytes().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase());
    // The standard order is tag=local; when only the second part looks like a tag, swap.
    if looks_tag(b) && !looks_tag(a) {
        a
    } else {
        b
    }
}

/// `+extension` dropped, bounce prefixes and per-message tokens replaced by `#`.
fn normalize_local(local: &str) -> String {
    let local = local.split_once('+').map_or(local, |(l, _)| l);
    for prefix in ["bounces", "bounce", "return", "bo"] {
        if let Some(rest) = local.strip_prefix(prefix) {
            if rest.len() > 1 && matches!(rest.as_bytes()[0], b'-' | b'.' | b'_') {
                return format!("{prefix}{}#", &rest[..1]);
            }
        }
    }
    let mut out = String::with_capacity(local.len());
    let mut token_start = 0;
    for (i, c) in local.char_indices().chain(std::iter::once((local.len(), '.'))) {
        if matches!(c, '.' | '_' | '-' | '=' | '/') {
            let token = &local[token_start..i];
            out.push_str(if is_per_message(token) { "#" } else { token });
            if i < local.len() {
                out.push(c);
            }
            token_start = i + c.len_utf8();
        }
    }
    out
}

/// A token that is an id rather than a name.
fn is_per_message(token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let digits = token.bytes().filter(u8::is_ascii_digit).count();
    if digits == token.len() {
        return true;
    }
    let hex = token.bytes().all(|b| b.is_ascii_hexdigit());
    let alnum = token.bytes().all(|b| b.is_ascii_alphanumeric());
    (hex && token.len() >= 4 && digits > 0) || (alnum && token.len() >= 12 && digits >= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        let v4: IpAddr = "192.0.2.77".parse().unwrap();
        assert_eq!(client_network(v4, 24, 64), "192.0.2.0/24");
        assert_eq!(client_network(v4, 32, 64), "192.0.2.77/32");
        assert_eq!(client_network(v4, 0, 64), "0.0.0.0/0");
        let mapped: IpAddr = "::ffff:192.0.2.77".parse().unwrap();
        assert_eq!(client_network(mapped, 24, 64), "192.0.2.0/24");
        let v6: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
        assert_eq!(client_network(v6, 24, 64), "2001:db8:1:2::/64");
        assert_eq!(client_network(v6, 24, 48), "2001:db8:1::/48");
        let net: IpAddr = "10.1.0.0".parse().unwrap();
        assert!(contains(net, 16, "10.1.200.3".parse().unwrap()));
        assert!(!contains(net, 16, "10.2.0.1".parse().unwrap()));
        assert!(!contains(net, 16, "::1".parse().unwrap()));
    }

    #[test]
    fn per_message_senders_fold_into_one() {
        let cases = [
            ("Alice@Example.ORG", "alice@example.org"),
            ("", ""),
            ("alice+list-123@example.org", "alice@example.org"),
            // Postgrey's digits rule.
            ("list-12345@lists.example.org", "list-#@lists.example.org"),
            ("owner-list-7@lists.example.org", "owner-list-#@lists.example.org"),
            ("user123@example.org", "user123@example.org"),
            // BATV, both orders.
            ("prvs=0123456789=bob@example.net", "bob@example.net"),
            ("prvs=bob=0123456789@example.net", "bob@example.net"),
            ("msprvs1=17865abcdeq=bounces-42@example.net", "bounces-#@example.net"),
            // SRS0 and SRS1 give back the original sender.
            ("SRS0=HHH=TT=orig.example=carol@forwarder.example", "carol@orig.example"),
            ("SRS0+xYz1=Ab=orig.example=carol@fwd.example", "carol@orig.example"),
            (
                "SRS1=HHH=fwd1.example==HHH=TT=orig.example=carol@fwd2.example",
                "carol@orig.example",
            ),
            // Per-message bounce addresses.
            (
                "bounce-mc.us5_47654921.1447481-abcdef=example.com@mail123.rsgsv.net",
                "bounce-#@mail123.rsgsv.net",
            ),
            (
                "0100018c1f2e3a4b-5c6d7e8f-1a2b-4c3d-9e8f-000000@amazonses.com",
                "#-#-#-#-#-#@amazonses.com",
            ),
            ("newsletter.a1b2c3d4e5@news.example", "newsletter.#@news.example"),
            ("info@example.com", "info@example.com"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_sender(input), want, "{input}");
        }
        // Two SES messages from the same sender share one key.
        assert_eq!(
            normalize_sender("010001aa11bb22cc-0000-1111@amazonses.com"),
            normalize_sender("010001dd33ee44ff-9999-2222@amazonses.com")
        );
        assert_eq!(domain_of("x@Example.Org"), "example.org");
        assert_eq!(domain_of(""), "");
    }
}
