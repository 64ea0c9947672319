//! smtpd (and qmqpd): sessions, `client=`, NOQUEUE decisions, proxy filters, TLS and SASL.

use super::event::{Action, ActionSource, Decision, EventKind, Peer};
use super::fields::{self, number, peer, split_reply_envelope, stage_from_peer, whole_peer};

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, text: &'a str) -> Option<EventKind<'a>> {
    if let Some(rest) = text.strip_prefix("connect from ") {
        return Some(EventKind::Connect {
            client: whole_peer(rest)?,
        });
    }
    if let Some(rest) = text.strip_prefix("disconnect from ") {
        return disconnect(rest);
    }
    if let Some(rest) = text.strip_prefix("client=") {
        return client(rest);
    }
    if let Some(rest) = text.strip_prefix("lost connection after ") {
        let (after, client) = after_from(rest)?;
        return Some(EventKind::LostConnection { client, after });
    }
    if let Some(rest) = text.strip_prefix("timeout after ") {
        let (after, client) = after_from(rest)?;
        return Some(EventKind::Timeout { client, after });
    }
    if let Some(rest) = text.strip_prefix("too many errors after ") {
        let (after, client) = after_from(rest)?;
        return Some(EventKind::TooManyErrors { client, after });
    }
    if let Some(rest) = text.strip_prefix("improper command pipelining after ") {
        let (after, client, _) = stage_from_peer(rest)?;
        return Some(EventKind::Pipelining { client, after });
    }
    if let Some(rest) = text.strip_prefix("bare <LF> received after ") {
        // Postfix 3.9 smuggling defence: the same protocol violation postscreen calls BARE NEWLINE.
        let (after, client, detail) = stage_from_peer(rest)?;
        let detail = detail.strip_prefix(": ").unwrap_or(detail);
        return Some(EventKind::ScreenViolation {
            violation: "BARE NEWLINE",
            client,
            after: Some(after),
            detail,
        });
    }
    if let Some(rest) = text.strip_prefix("proxy-accept: ") {
        return proxy(true, rest);
    }
    if let Some(rest) = text.strip_prefix("proxy-reject: ") {
        return proxy(false, rest);
    }
    if let Some(kind) = fields::tls_established(text).or_else(|| ssl_error(text)) {
        return Some(kind);
    }
    decision(text)
}

/// `ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/5` after the peer; `commands=7` when all succeeded.
fn disconnect(text: &str) -> Option<EventKind<'_>> {
    let (client, rest) = peer(text)?;
    let counters = rest.trim_start();
    let (mut commands_ok, mut commands_total) = (None, None);
    if let Some(value) = fields::field(counters, "commands=") {
        let (ok, after) = number::<u32>(value)?;
        commands_ok = Some(ok);
        commands_total = match after.strip_prefix('/') {
            Some(total) => Some(number::<u32>(total)?.0),
            None => Some(ok),
        };
    }
    Some(EventKind::Disconnect {
        client,
        counters,
        commands_ok,
        commands_total,
    })
}

/// `c[ip], sasl_method=PLAIN, sasl_username=u, sasl_sender=s` or, on re-injection,
/// `localhost[127.0.0.1], orig_queue_id=X, orig_client=c[ip]`.
fn client(text: &str) -> Option<EventKind<'_>> {
    let (client, rest) = peer(text)?;
    Some(EventKind::Client {
        client,
        sasl_method: fields::field(rest, "sasl_method="),
        sasl_username: fields::field(rest, "sasl_username="),
        sasl_sender: fields::field(rest, "sasl_sender="),
        orig_queue_id: fields::field(rest, "orig_queue_id="),
        orig_client: fields::field(rest, "orig_client=").and_then(whole_peer),
    })
}

/// `DATA (0 bytes) from c[ip]` → (`DATA`, peer): the command name only, the byte count is noise.
fn after_from(text: &str) -> Option<(&str, Peer<'_>)> {
    let (after, client, _) = stage_from_peer(text)?;
    let after = after.split_once(" (").map_or(after, |(command, _)| command);
    Some((after, client))
}

/// `END-OF-MESSAGE: 250 2.0.0 Ok: queued as X; from=<a> to=<b> proto=ESMTP helo=<h>`.
fn proxy(accepted: bool, text: &str) -> Option<EventKind<'_>> {
    let (stage, rest) = text
        .split_once(": ")
        .or_else(|| text.strip_suffix(':').map(|s| (s, "")))?;
    let (reply, envelope) = split_reply_envelope(rest);
    let (code, enhanced, reason) = fields::smtp_reply(reply);
    Some(EventKind::Proxy {
        accepted,
        stage,
        code,
        enhanced,
        reason,
        from: envelope.from,
        to: envelope.to,
        proto: envelope.proto,
        helo: envelope.helo,
        filter_id: fields::queued_as(reason),
    })
}

/// `SSL_accept error from c[ip]: -1` (the handshake failed before a session existed).
pub(super) fn ssl_error(text: &str) -> Option<EventKind<'_>> {
    let rest = text.strip_prefix("SSL_accept error from ")?;
    let (peer, rest) = peer(rest)?;
    Some(EventKind::TlsError {
        peer: Some(peer),
        text: rest.strip_prefix(": ").unwrap_or(rest),
    })
}

/// `reject: RCPT from c[ip]: 550 5.1.1 <x>: Recipient address rejected: …; from=<a> to=<b> …`
/// and the other access actions; shared with postscreen, whose NOQUEUE lines have this shape too.
pub(super) fn decision(text: &str) -> Option<EventKind<'_>> {
    let (word, rest) = text.split_once(": ")?;
    let (action, source) = match word {
        "reject" => (Action::Reject, ActionSource::Smtpd),
        "reject_warning" | "warn" => (Action::Warn, ActionSource::Smtpd),
        "hold" => (Action::Hold, ActionSource::Smtpd),
        "discard" => (Action::Discard, ActionSource::Smtpd),
        "filter" => (Action::Filter, ActionSource::Smtpd),
        "redirect" => (Action::Redirect, ActionSource::Smtpd),
        "bcc" => (Action::Bcc, ActionSource::Smtpd),
        "info" => (Action::Info, ActionSource::Smtpd),
        "milter-reject" => (Action::Reject, ActionSource::Milter),
        "milter-hold" => (Action::Hold, ActionSource::Milter),
        "milter-discard" => (Action::Discard, ActionSource::Milter),
        _ => return None,
    };
    let (stage, client, rest) = stage_from_peer(rest)?;
    let (reply, envelope) = split_reply_envelope(rest.strip_prefix(": ").unwrap_or(rest));
    let (code, enhanced, reason) = fields::smtp_reply(reply);
    Some(EventKind::Reject(Decision {
        action,
        source,
        stage,
        client: Some(client),
        code,
        enhanced,
        reason,
        content: None,
        from: envelope.from,
        to: envelope.to,
        proto: envelope.proto,
        helo: envelope.helo,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::event::Direction;

    fn p(text: &str) -> EventKind<'_> {
        let (queue_id, text) = fields::split_queue_id(text);
        parse(queue_id, text).unwrap_or(EventKind::Unknown)
    }

    #[test]
    fn sessions() {
        let EventKind::Connect { client } = p("connect from host1.uhu-banane.de[185.48.118.128]") else {
            panic!()
        };
        assert_eq!(
            (client.name, client.ip, client.port),
            ("host1.uhu-banane.de", "185.48.118.128", None)
        );

        let EventKind::Disconnect {
            client,
            counters,
            commands_ok,
            commands_total,
        } = p("disconnect from unknown[72.10.165.66] ehlo=2 starttls=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=5/7")
        else {
            panic!()
        };
        assert_eq!(client.ip, "72.10.165.66");
        assert_eq!(
            counters,
            "ehlo=2 starttls=1 mail=1 rcpt=0/1 data=0/1 quit=1 commands=5/7"
        );
        assert_eq!((commands_ok, commands_total), (Some(5), Some(7)));

        let EventKind::Disconnect {
            commands_ok,
            commands_total,
            ..
        } = p("disconnect from x[1.2.3.4] helo=1 mail=2 rcpt=1 data=1 rset=1 quit=1 commands=7")
        else {
            panic!()
        };
        assert_eq!((commands_ok, commands_total), (Some(7), Some(7)));

        let EventKind::Disconnect {
            counters, commands_ok, ..
        } = p("disconnect from 06.example.com[61.238.241.86]")
        else {
            panic!()
        };
        assert_eq!((counters, commands_ok), ("", None));

        assert_eq!(
            p("lost connection after DATA (7774180 bytes) from unknown[72.13.58.7]"),
            EventKind::LostConnection {
                client: Peer {
                    name: "unknown",
                    ip: "72.13.58.7",
                    port: None
                },
                after: "DATA"
            }
        );
        assert!(matches!(p("timeout after END-OF-MESSAGE from unknown[72.13.58.7]"),
            EventKind::Timeout { after: "END-OF-MESSAGE", client } if client.ip == "72.13.58.7"));
        assert!(matches!(
            p("too many errors after RCPT from unknown[1.2.3.4]"),
            EventKind::TooManyErrors { after: "RCPT", .. }
        ));
        assert!(matches!(
            p("improper command pipelining after EHLO from unknown[2001:968:9999:20:415c:cd2:da8e:d0cf]: MAIL FROM:<>"),
            EventKind::Pipelining { after: "EHLO", client } if client.ip == "2001:968:9999:20:415c:cd2:da8e:d0cf"));
        assert!(matches!(
            p("bare <LF> received after CONNECT from example.net[1.2.3.4]"),
            EventKind::ScreenViolation {
                violation: "BARE NEWLINE",
                after: Some("CONNECT"),
                ..
            }
        ));
    }

    #[test]
    fn clients() {
        let EventKind::Client {
            client,
            sasl_method,
            sasl_username,
            orig_queue_id,
            orig_client,
            ..
        } = p("4104E3D: client=unknown[192.0.2.7], sasl_method=PLAIN, sasl_username=user@example.com")
        else {
            panic!()
        };
        assert_eq!(client.ip, "192.0.2.7");
        assert_eq!(
            (sasl_method, sasl_username, orig_queue_id, orig_client),
            (Some("PLAIN"), Some("user@example.com"), None, None)
        );

        let EventKind::Client { orig_queue_id, orig_client, sasl_method, .. } =
            p("4PbC4z6W5Qz3tG3: client=localhost[127.0.0.1], orig_queue_id=4PbC4x469Jz3tBr, orig_client=mail.example.org[185.31.160.120]")
        else {
            panic!()
        };
        assert_eq!((orig_queue_id, sasl_method), (Some("4PbC4x469Jz3tBr"), None));
        assert_eq!(
            orig_client.map(|c| (c.name, c.ip)),
            Some(("mail.example.org", "185.31.160.120"))
        );
    }

    #[test]
    fn decisions() {
        let EventKind::Reject(d) = p("NOQUEUE: reject: RCPT from 061238241086.static.ctinets.com[61.238.241.86]: 550 5.1.1 <toernooicommissie@example.com>: Recipient address rejected: User unknown in virtual mailbox table; from=<wumt5@cchfdc.com> to=<toernooicommissie@example.com> proto=ESMTP helo=<061238241086.static.ctinets.com>") else { panic!() };
        assert_eq!(
            (d.action, d.source, d.stage),
            (Action::Reject, ActionSource::Smtpd, "RCPT")
        );
        assert_eq!(d.client.map(|c| c.ip), Some("61.238.241.86"));
        assert_eq!((d.code, d.enhanced), (Some(550), Some("5.1.1")));
        assert_eq!(
            d.reason,
            "<toernooicommissie@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
        );
        assert_eq!(
            (d.from, d.to, d.proto, d.helo),
            (
                Some("wumt5@cchfdc.com"),
                Some("toernooicommissie@example.com"),
                Some("ESMTP"),
                Some("061238241086.static.ctinets.com")
            )
        );

        let EventKind::Reject(d) = p("NOQUEUE: milter-reject: RCPT from mailrelay.example.com[8.8.8.8]: 451 4.7.1 Greylisting in action, please come back later; from=<support@example.com> to=<example@example.org> proto=ESMTP helo=<mailrelay.example.com>") else { panic!() };
        assert_eq!(
            (d.action, d.source, d.code),
            (Action::Reject, ActionSource::Milter, Some(451))
        );

        let EventKind::Reject(d) = p("NOQUEUE: filter: RCPT from unknown[85.25.255.255]: <mail@sender.com>: Sender address triggers FILTER smtp-amavis:[127.0.0.1]:10024; from=<mail@sender.com> to=<user@domain.com> proto=ESMTP helo=<plutoa>") else { panic!() };
        assert_eq!(
            (d.action, d.code, d.reason),
            (
                Action::Filter,
                None,
                "<mail@sender.com>: Sender address triggers FILTER smtp-amavis:[127.0.0.1]:10024"
            )
        );

        let EventKind::Reject(d) = p("NOQUEUE: reject_warning: RCPT from example.com[93.184.216.34]: 553 5.7.1 <sender@example.com>: Sender address rejected: not owned by user ph123; from=<sender@example.com> to=<recipient@example.com> proto=ESMTP helo=<x>") else { panic!() };
        assert_eq!(d.action, Action::Warn);

        let EventKind::Reject(d) = p("NOQUEUE: reject: VRFY from unknown[2001:968:9999:20:88b:9b7d:2a54:2bd2]: 454 4.7.1 <aap@henk.com>: Relay access denied; to=<aap@henk.com> proto=SMTP helo=<me>") else { panic!() };
        assert_eq!(
            (d.stage, d.from, d.to, d.helo),
            ("VRFY", None, Some("aap@henk.com"), Some("me"))
        );
    }

    #[test]
    fn proxies() {
        let EventKind::Proxy { accepted, stage, code, reason, from, filter_id, .. } = p("proxy-accept: END-OF-MESSAGE: 250 2.0.0 from MTA(smtp:[127.0.0.1]:10013): 250 2.0.0 Ok: queued as DF66E940333; from=<user1@test.example.com> to=<user2@example2.com> proto=ESMTP helo=<[127.0.0.1]>") else { panic!() };
        assert_eq!((accepted, stage, code), (true, "END-OF-MESSAGE", Some(250)));
        assert_eq!(
            reason,
            "from MTA(smtp:[127.0.0.1]:10013): 250 2.0.0 Ok: queued as DF66E940333"
        );
        assert_eq!((from, filter_id), (Some("user1@test.example.com"), Some("DF66E940333")));

        let EventKind::Proxy { accepted, code, reason, to, filter_id, .. } = p("proxy-reject: END-OF-MESSAGE: ; from=<user1@test.example.com> to=<user2@example2.com> proto=ESMTP helo=<[192.168.0.16]>") else { panic!() };
        assert_eq!(
            (accepted, code, reason, to, filter_id),
            (false, None, "", Some("user2@example2.com"), None)
        );

        let EventKind::Proxy { filter_id, .. } = p("proxy-accept: END-OF-MESSAGE: 250 2.5.0 OK (3204C55EC294578338F); from=<a@b> to=<c@d> proto=ESMTP helo=<h>") else { panic!() };
        assert_eq!(filter_id, Some("3204C55EC294578338F"));
    }

    #[test]
    fn tls() {
        assert_eq!(
            p("Anonymous TLS connection established from julie.example.com[10.163.89.202]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (4096 bits) server-digest SHA256"),
            EventKind::Tls {
                direction: Direction::Incoming,
                peer: Peer { name: "julie.example.com", ip: "10.163.89.202", port: None },
                level: "Anonymous",
                protocol: "TLSv1.3",
                cipher: "TLS_AES_256_GCM_SHA384",
                bits: Some(256),
            }
        );
        assert!(
            matches!(p("SSL_accept error from unknown[72.13.58.7]: lost connection"),
            EventKind::TlsError { peer: Some(peer), text: "lost connection" } if peer.ip == "72.13.58.7")
        );
        assert!(matches!(fields::tls_established("Verified TLS connection established to mail.sys4.de[2001:1578:400:111::7]:25: TLSv1 with cipher ECDHE-RSA-AES256-SHA (256/256 bits)"),
            Some(EventKind::Tls { direction: Direction::Outgoing, level: "Verified", protocol: "TLSv1", .. })));
    }
}
