//! postscreen verdicts and dnsblog answers.

use super::event::{EventKind, Peer};
use super::fields::{number, peer, stage_from_peer, whole_peer};
use super::{service, smtpd};

/// Protocol violations postscreen names in capitals, `NAME from [ip]:port after STAGE[: detail]`.
const VIOLATIONS: &[&str] = &[
    "COMMAND PIPELINING",
    "NON-SMTP COMMAND",
    "BARE NEWLINE",
    "COMMAND TIME LIMIT",
    "COMMAND COUNT LIMIT",
    "COMMAND LENGTH LIMIT",
];

/// Permanent list verdicts, `NAME [ip]:port` (old and new Postfix spellings).
const LISTS: &[&str] = &[
    "WHITELISTED",
    "ALLOWLISTED",
    "BLACKLISTED",
    "DENYLISTED",
    "WHITELIST VETO",
    "ALLOWLIST VETO",
];

pub(super) fn parse(text: &str) -> Option<EventKind<'_>> {
    if let Some(rest) = text.strip_prefix("CONNECT from ") {
        let (client, rest) = peer(rest)?;
        let server = rest.strip_prefix(" to ").and_then(whole_peer);
        return Some(EventKind::ScreenConnect { client, server });
    }
    if let Some(rest) = text.strip_prefix("PASS ") {
        let (age, rest) = rest.split_once(' ')?;
        return Some(EventKind::ScreenPass {
            client: whole_peer(rest)?,
            new: age == "NEW",
        });
    }
    if let Some(rest) = text.strip_prefix("DISCONNECT ") {
        return Some(EventKind::ScreenDisconnect {
            client: whole_peer(rest)?,
        });
    }
    if let Some(rest) = text.strip_prefix("DNSBL rank ") {
        let (rank, rest) = number(rest)?;
        return Some(EventKind::ScreenDnsblRank {
            client: whole_peer(rest.strip_prefix(" for ")?)?,
            rank,
        });
    }
    if let Some(rest) = text.strip_prefix("PREGREET ") {
        let (bytes, rest) = number(rest)?;
        let (after, client, text) = timed(rest)?;
        return Some(EventKind::ScreenPregreet {
            client,
            bytes,
            after,
            text: text.strip_prefix(": ").unwrap_or(text),
        });
    }
    if let Some(rest) = text.strip_prefix("HANGUP") {
        let (after, client, rest) = timed(rest)?;
        let stage = rest.strip_prefix(" in ").unwrap_or(rest.trim_start());
        return Some(EventKind::ScreenHangup { client, after, stage });
    }
    if let Some(kind) = violation(text).or_else(|| list(text)) {
        return Some(kind);
    }
    // `reject: RCPT from …` once split_queue_id took the NOQUEUE away; the cache sweep is shared
    // with verify.
    smtpd::decision(text).or_else(|| service::cache_cleanup(text))
}

/// ` after 0.07 from [ip]:port` + rest, the delay before the client misbehaved.
fn timed(text: &str) -> Option<(f32, Peer<'_>, &str)> {
    let rest = text.strip_prefix(" after ")?;
    let (seconds, rest) = rest.split_once(" from ")?;
    let (client, rest) = peer(rest)?;
    Some((seconds.parse().ok()?, client, rest))
}

fn violation(text: &str) -> Option<EventKind<'_>> {
    let name = VIOLATIONS.iter().find(|v| text.starts_with(**v))?;
    let (_, client, rest) = stage_from_peer(text)?;
    let rest = rest.strip_prefix(" after ").unwrap_or(rest);
    // The stage is one word; the client's bytes follow `: ` and may hold anything, even `: `.
    let (after, detail) = match rest.find(": ") {
        Some(at) if !rest[..at].contains(' ') => (&rest[..at], &rest[at + 2..]),
        _ => (rest.strip_suffix(':').unwrap_or(rest), ""),
    };
    Some(EventKind::ScreenViolation {
        violation: name,
        client,
        after: (!after.is_empty()).then_some(after),
        detail,
    })
}

fn list(text: &str) -> Option<EventKind<'_>> {
    let name = LISTS.iter().find(|l| text.starts_with(**l))?;
    let client = whole_peer(text[name.len()..].strip_prefix(' ')?)?;
    Some(EventKind::ScreenList { list: name, client })
}

/// `addr 192.0.2.1 listed by domain zen.spamhaus.org as 127.0.0.4`.
pub(super) fn parse_dnsblog(text: &str) -> Option<EventKind<'_>> {
    let rest = text.strip_prefix("addr ")?;
    let (ip, rest) = rest.split_once(" listed by domain ")?;
    let (domain, answer) = rest.split_once(" as ")?;
    Some(EventKind::DnsblListed { ip, domain, answer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::event::{Action, ActionSource};
    use crate::parse::fields::split_queue_id;

    fn client(ip: &str, port: u16) -> Peer<'_> {
        Peer {
            name: "",
            ip,
            port: Some(port),
        }
    }

    #[test]
    fn sessions() {
        assert_eq!(
            parse("CONNECT from [185.48.118.128]:36942 to [188.34.187.246]:25"),
            Some(EventKind::ScreenConnect {
                client: client("185.48.118.128", 36942),
                server: Some(client("188.34.187.246", 25))
            })
        );
        assert_eq!(
            parse("PASS NEW [2607:f8b0:4003:c01::23a]:36051"),
            Some(EventKind::ScreenPass {
                client: client("2607:f8b0:4003:c01::23a", 36051),
                new: true
            })
        );
        assert_eq!(
            parse("PASS OLD [61.238.241.86]:53024"),
            Some(EventKind::ScreenPass {
                client: client("61.238.241.86", 53024),
                new: false
            })
        );
        assert_eq!(
            parse("DISCONNECT [216.81.72.72]:43421"),
            Some(EventKind::ScreenDisconnect {
                client: client("216.81.72.72", 43421)
            })
        );
        assert_eq!(
            parse("DNSBL rank 3 for [111.73.45.149]:1038"),
            Some(EventKind::ScreenDnsblRank {
                client: client("111.73.45.149", 1038),
                rank: 3
            })
        );
    }

    #[test]
    fn tests_and_violations() {
        assert_eq!(
            parse("PREGREET 11 after 0.07 from [45.141.85.146]:60844: EHLO ylmf-pc\\r\\n"),
            Some(EventKind::ScreenPregreet {
                client: client("45.141.85.146", 60844),
                bytes: 11,
                after: 0.07,
                text: "EHLO ylmf-pc\\r\\n"
            })
        );
        assert_eq!(
            parse("HANGUP after 63 from [111.73.45.149]:1038 in tests after SMTP handshake"),
            Some(EventKind::ScreenHangup {
                client: client("111.73.45.149", 1038),
                after: 63.0,
                stage: "tests after SMTP handshake"
            })
        );
        assert_eq!(
            parse("NON-SMTP COMMAND from [93.174.93.51]:45284 after CONNECT: GET http://ipv4scan.com/hello/check.txt HTTP/1.1"),
            Some(EventKind::ScreenViolation {
                violation: "NON-SMTP COMMAND",
                client: client("93.174.93.51", 45284),
                after: Some("CONNECT"),
                detail: "GET http://ipv4scan.com/hello/check.txt HTTP/1.1"
            })
        );
        assert!(matches!(
            parse("COMMAND PIPELINING from [88.208.233.4]:42606 after .: "),
            Some(EventKind::ScreenViolation {
                violation: "COMMAND PIPELINING",
                after: Some("."),
                detail: "",
                ..
            })
        ));
        assert!(matches!(
            parse("COMMAND TIME LIMIT from [182.246.250.243]:51799 after AUTH"),
            Some(EventKind::ScreenViolation {
                violation: "COMMAND TIME LIMIT",
                after: Some("AUTH"),
                detail: "",
                ..
            })
        ));
        assert_eq!(
            parse("WHITELIST VETO [61.238.241.86]:53024"),
            Some(EventKind::ScreenList {
                list: "WHITELIST VETO",
                client: client("61.238.241.86", 53024)
            })
        );
        assert!(matches!(
            parse("BLACKLISTED [61.238.241.86]:53024"),
            Some(EventKind::ScreenList {
                list: "BLACKLISTED",
                ..
            })
        ));
    }

    #[test]
    fn noqueue() {
        let text = "NOQUEUE: reject: RCPT from [27.157.200.233]:4984: 550 5.7.1 Service unavailable; client [27.157.200.233] blocked using zen.spamhaus.org; from=<hcdvbnm@qhhn.com>, to=<4ECEA00F.9040306@example.com>, proto=ESMTP, helo=<ylmf-pc>";
        let Some(EventKind::Reject(d)) = parse(split_queue_id(text).1) else {
            panic!()
        };
        assert_eq!(
            (d.action, d.source, d.stage),
            (Action::Reject, ActionSource::Smtpd, "RCPT")
        );
        assert_eq!(d.client, Some(client("27.157.200.233", 4984)));
        assert_eq!((d.code, d.enhanced), (Some(550), Some("5.7.1")));
        assert_eq!(
            d.reason,
            "Service unavailable; client [27.157.200.233] blocked using zen.spamhaus.org"
        );
        assert_eq!(
            (d.from, d.to, d.proto, d.helo),
            (
                Some("hcdvbnm@qhhn.com"),
                Some("4ECEA00F.9040306@example.com"),
                Some("ESMTP"),
                Some("ylmf-pc")
            )
        );
        let Some(EventKind::Reject(d)) =
            parse(split_queue_id("NOQUEUE: reject: CONNECT from [1.2.3.4]:1337: too many connections").1)
        else {
            panic!()
        };
        assert_eq!(
            (d.stage, d.code, d.reason, d.from),
            ("CONNECT", None, "too many connections", None)
        );
    }

    #[test]
    fn dnsblog() {
        assert_eq!(
            parse_dnsblog("addr 2607:f8b0:4003:c01::23a listed by domain list.dnswl.org as 127.0.5.1"),
            Some(EventKind::DnsblListed {
                ip: "2607:f8b0:4003:c01::23a",
                domain: "list.dnswl.org",
                answer: "127.0.5.1"
            })
        );
        assert_eq!(parse_dnsblog("addr 1.2.3.4 something else"), None);
    }
}
