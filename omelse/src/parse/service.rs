//! Postfix's service daemons: master, anvil, scache, tlsproxy, verify and the rest.
//!
//! Most of what these daemons say is a `warning:` (left to the diagnostic parser); what is theirs
//! alone is the master's life cycle, the periodic `statistics:` of anvil and scache, cache sweeps
//! and tlsproxy's sessions.

use super::event::EventKind;
use super::fields::{field, whole_peer};
use super::smtpd;

pub(super) fn parse<'a>(daemon: &str, _queue_id: Option<&'a str>, text: &'a str) -> Option<EventKind<'a>> {
    match daemon {
        "master" => master(text),
        "tlsproxy" => tlsproxy(text),
        "postfix-script" | "postlog" => script(text),
        _ => None,
    }
    .or_else(|| statistics(text))
    .or_else(|| cache_cleanup(text))
}

/// `daemon started -- version 3.7.2, configuration /etc/postfix`, `reload -- version …`,
/// `terminating on signal 15`.
fn master(text: &str) -> Option<EventKind<'_>> {
    let (event, version) = if let Some(rest) = text.strip_prefix("daemon started") {
        ("started", rest)
    } else if let Some(rest) = text.strip_prefix("reload") {
        ("reload", rest)
    } else if text.starts_with("terminating on signal ") {
        ("terminating", "")
    } else {
        return None;
    };
    let version = version
        .strip_prefix(" -- version ")
        .map(|v| v.split_once(',').map_or(v, |(v, _)| v));
    Some(EventKind::Master { event, version })
}

/// postfix-script (via postlog since Postfix 3.4): `starting the Postfix mail system`,
/// `stopping …`, `refreshing …`, `the Postfix mail system is running: PID: 95072` (or `is not
/// running`); reported as the master's life cycle they announce.
fn script(text: &str) -> Option<EventKind<'_>> {
    if let Some(state) = text.strip_prefix("the Postfix mail system is ") {
        let event = if state.starts_with("running") {
            "running"
        } else {
            "not running"
        };
        return state
            .contains("running")
            .then_some(EventKind::Master { event, version: None });
    }
    let (event, rest) = text.split_once(' ')?;
    let known = matches!(event, "starting" | "stopping" | "refreshing") && rest.starts_with("the Postfix mail system");
    known.then_some(EventKind::Master { event, version: None })
}

/// tlsproxy: `CONNECT from [ip]:port`, `DISCONNECT [ip]:port`, the TLS summary and handshake
/// failures (`TLS handshake failed for service=smtpd peer=[ip]:port`).
fn tlsproxy(text: &str) -> Option<EventKind<'_>> {
    if let Some(rest) = text.strip_prefix("CONNECT from ") {
        return Some(EventKind::Connect {
            client: whole_peer(rest)?,
        });
    }
    if let Some(rest) = text.strip_prefix("DISCONNECT ") {
        let client = whole_peer(rest)?;
        return Some(EventKind::Disconnect {
            client,
            counters: "",
            commands_ok: None,
            commands_total: None,
        });
    }
    if text.starts_with("TLS handshake failed ") {
        let peer = field(text, "peer=").and_then(whole_peer);
        return Some(EventKind::TlsError { peer, text });
    }
    super::fields::tls_established(text).or_else(|| smtpd::ssl_error(text))
}

/// anvil: `statistics: max connection rate 1/60s for (smtpd:192.0.2.1) at Oct 26 18:13:50`,
/// `statistics: max cache size 1 at …`; scache: `statistics: domain lookup hits=0 miss=1
/// success=0%`, `statistics: max simultaneous domains=1 …`, `statistics: start interval Dec 6 …`.
fn statistics(text: &str) -> Option<EventKind<'_>> {
    let rest = text.strip_prefix("statistics: ")?;
    let rest = rest.strip_prefix("max ").unwrap_or(rest);
    if let Some(value) = rest.strip_prefix("start interval ") {
        return Some(EventKind::Statistics {
            metric: "start interval",
            value,
            service: None,
            client: None,
        });
    }
    // The metric is the words before the first one that holds a number or a `key=value`.
    let mut value_at = None;
    let mut at = 0;
    for word in rest.split(' ') {
        if word.starts_with(|c: char| c.is_ascii_digit()) || word.contains('=') {
            value_at = Some(at);
            break;
        }
        at += word.len() + 1;
    }
    let at = value_at.filter(|&at| at > 0)?;
    let metric = &rest[..at - 1];
    let rest = &rest[at..];
    let (value, who) = match rest.split_once(" for (") {
        Some((value, who)) => (value, who.split_once(')').map(|(who, _)| who)),
        None => (rest.split_once(" at ").map_or(rest, |(value, _)| value), None),
    };
    let (service, client) = match who.map(split_service) {
        Some((service, client)) => (Some(service), Some(client)),
        None => (None, None),
    };
    Some(EventKind::Statistics {
        metric,
        value,
        service,
        client,
    })
}

/// anvil's `service:client` key; the service is a master.cf name (`smtpd`, `submission`) or a
/// listener address with its port (`127.0.0.1:2525`, `[::1]:2525`), the client may be IPv6.
fn split_service(who: &str) -> (&str, &str) {
    let first = who.find(':').unwrap_or(who.len());
    let name = &who[..first];
    let service_end = if name.starts_with('[') {
        who.find("]:")
            .and_then(|close| who[close + 2..].find(':').map(|c| close + 2 + c))
    } else if name.contains('.') {
        who[first + 1..].find(':').map(|c| first + 1 + c)
    } else {
        Some(first)
    };
    match service_end {
        Some(end) if end < who.len() => (&who[..end], &who[end + 1..]),
        _ => (who, ""),
    }
}

/// postscreen and verify sweep their caches: `cache btree:/var/lib/postfix/postscreen_cache full
/// cleanup: retained=242 dropped=7 entries` (`partial cleanup` when interrupted).
pub(super) fn cache_cleanup(text: &str) -> Option<EventKind<'_>> {
    let rest = text.strip_prefix("cache ")?;
    let (cache, rest) = rest.split_once(' ')?;
    let (scope, value) = rest.split_once(" cleanup: ")?;
    let metric = match scope {
        "full" => "full cache cleanup",
        "partial" => "partial cache cleanup",
        _ => return None,
    };
    Some(EventKind::Statistics {
        metric,
        value,
        service: Some(cache),
        client: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::event::Direction;

    fn stat<'a>(
        metric: &'a str,
        value: &'a str,
        service: Option<&'a str>,
        client: Option<&'a str>,
    ) -> Option<EventKind<'a>> {
        Some(EventKind::Statistics {
            metric,
            value,
            service,
            client,
        })
    }

    #[test]
    fn anvil() {
        assert_eq!(
            parse("anvil", None, "statistics: max cache size 1 at Oct 26 18:13:50"),
            stat("cache size", "1", None, None)
        );
        assert_eq!(
            parse(
                "anvil",
                None,
                "statistics: max connection rate 1/60s for (smtpd:61.238.241.86) at Oct 26 18:13:50"
            ),
            stat("connection rate", "1/60s", Some("smtpd"), Some("61.238.241.86"))
        );
        assert_eq!(
            parse(
                "anvil",
                None,
                "statistics: max connection count 1 for (smtpd:2604:8d00:0:1::3) at Oct 26 17:46:59"
            ),
            stat("connection count", "1", Some("smtpd"), Some("2604:8d00:0:1::3"))
        );
        assert_eq!(
            parse(
                "anvil",
                None,
                "statistics: max connection rate 1/2h for (127.0.0.1:2525:127.0.0.1) at Oct 26 18:13:50"
            ),
            stat("connection rate", "1/2h", Some("127.0.0.1:2525"), Some("127.0.0.1"))
        );
        assert_eq!(
            parse(
                "anvil",
                None,
                "statistics: max connection count 1 for (smtp:unknown) at Sep 7 07:14:19"
            ),
            stat("connection count", "1", Some("smtp"), Some("unknown"))
        );
    }

    #[test]
    fn scache_and_caches() {
        assert_eq!(
            parse("scache", None, "statistics: domain lookup hits=0 miss=1 success=0%"),
            stat("domain lookup", "hits=0 miss=1 success=0%", None, None)
        );
        assert_eq!(
            parse(
                "scache",
                None,
                "statistics: max simultaneous domains=1 addresses=1 connection=1"
            ),
            stat("simultaneous", "domains=1 addresses=1 connection=1", None, None)
        );
        assert_eq!(
            parse("scache", None, "statistics: start interval Dec  6 21:20:35"),
            stat("start interval", "Dec  6 21:20:35", None, None)
        );
        assert_eq!(
            parse(
                "verify",
                None,
                "cache btree:/var/lib/postfix/verify_cache partial cleanup: retained=1 dropped=0 entries"
            ),
            stat(
                "partial cache cleanup",
                "retained=1 dropped=0 entries",
                Some("btree:/var/lib/postfix/verify_cache"),
                None
            )
        );
    }

    #[test]
    fn master_and_script() {
        assert_eq!(
            parse(
                "master",
                None,
                "daemon started -- version 2.11.0, configuration /etc/postfix"
            ),
            Some(EventKind::Master {
                event: "started",
                version: Some("2.11.0")
            })
        );
        assert_eq!(
            parse("master", None, "reload -- version 3.7.2, configuration /etc/postfix"),
            Some(EventKind::Master {
                event: "reload",
                version: Some("3.7.2")
            })
        );
        assert_eq!(
            parse("master", None, "terminating on signal 15"),
            Some(EventKind::Master {
                event: "terminating",
                version: None
            })
        );
        assert_eq!(
            parse("postfix-script", None, "starting the Postfix mail system"),
            Some(EventKind::Master {
                event: "starting",
                version: None
            })
        );
        assert_eq!(
            parse("postlog", None, "the Postfix mail system is running: PID: 95072"),
            Some(EventKind::Master {
                event: "running",
                version: None
            })
        );
        assert_eq!(
            parse("postfix-script", None, "the Postfix mail system is not running"),
            Some(EventKind::Master {
                event: "not running",
                version: None
            })
        );
        assert_eq!(parse("master", None, "something else"), None);
    }

    #[test]
    fn tlsproxy_sessions() {
        assert!(matches!(parse("tlsproxy", None, "CONNECT from [82.118.17.142]:51637"),
            Some(EventKind::Connect { client }) if client.ip == "82.118.17.142" && client.port == Some(51637)));
        assert!(matches!(parse("tlsproxy", None, "DISCONNECT [82.118.17.142]:51637"),
            Some(EventKind::Disconnect { client, counters: "", .. }) if client.port == Some(51637)));
        assert!(matches!(
            parse("tlsproxy", None, "Anonymous TLS connection established from [45.141.85.146]:60844: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"),
            Some(EventKind::Tls { direction: Direction::Incoming, peer, bits: Some(256), .. }) if peer.port == Some(60844)));
        assert!(matches!(
            parse("tlsproxy", None, "TLS handshake failed for service=smtpd peer=[212.70.149.72]:61334"),
            Some(EventKind::TlsError { peer: Some(peer), .. }) if peer.ip == "212.70.149.72"));
    }
}
