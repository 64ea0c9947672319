//! Delivery agents (smtp, lmtp, local, virtual, pipe, error, discard, retry): attempts and
//! next-hop trouble.

use super::event::{Delivery, DeliveryStatus, EventKind, Severity};
use super::fields;

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, text: &'a str) -> Option<EventKind<'a>> {
    if text.starts_with("to=") {
        return attempt(text).map(EventKind::Delivery);
    }
    if let Some(tls) = fields::tls_established(text) {
        return Some(tls);
    }
    if text.starts_with("discarding EHLO keywords: ") || text.starts_with("Host offered STARTTLS: ") {
        // smtp_discard_ehlo_keywords and smtp_tls_note_starttls_offer at work: notices, not
        // problems with the next hop.
        return Some(EventKind::Diagnostic {
            severity: Severity::Info,
            text,
        });
    }
    tls_error(text).or_else(|| remote_error(text))
}

/// One recipient's delivery attempt: `to=<a>, orig_to=<b>, relay=mx[ip]:25, conn_use=2,
/// delay=0.5, delays=0.1/0/0.2/0.2, tls=…, dsn=2.0.0, status=sent (reply)`. Shared with qmgr,
/// which logs the recipients it defers or bounces itself in the same format.
pub(super) fn attempt(text: &str) -> Option<Delivery<'_>> {
    let status_at = fields::find_key(text, "status=")?;
    // The fields come before the status; the reply after it is the remote's free text.
    let head = &text[..status_at];
    let after = &text[status_at + "status=".len()..];
    let (word, rest) = after.split_once(' ').unwrap_or((after, ""));
    let status = match word {
        "sent" => DeliveryStatus::Sent,
        // soft_bounce=yes turns bounces into deferrals and logs them as `SOFTBOUNCE`.
        "deferred" | "SOFTBOUNCE" => DeliveryStatus::Deferred,
        "bounced" => DeliveryStatus::Bounced,
        "expired" => DeliveryStatus::Expired,
        // `undeliverable-but-not-cached`: a verify probe whose result was not cached.
        w if w.starts_with("undeliverable") => DeliveryStatus::Undeliverable,
        w if w.starts_with("deliverable") => DeliveryStatus::Deliverable,
        _ => return None,
    };
    let rest = rest.trim_end();
    let status_text = match rest.strip_prefix('(') {
        Some(inner) => inner.strip_suffix(')').unwrap_or(inner),
        None => rest,
    };
    let to = fields::field_angle(head, "to=<").or_else(|| fields::field(head, "to="))?;
    let orig_to = fields::field_angle(head, "orig_to=<").or_else(|| fields::field(head, "orig_to="));
    let relay = fields::field(head, "relay=")?;
    Some(Delivery {
        to,
        orig_to,
        relay,
        relay_peer: fields::whole_peer(relay).filter(|p| fields::is_ip_like(p.ip)),
        conn_use: fields::field(head, "conn_use=").and_then(|v| v.parse().ok()),
        delay: fields::field(head, "delay=")?.parse().ok()?,
        delays: fields::field(head, "delays=").and_then(delays),
        dsn: fields::field(head, "dsn=").unwrap_or(""),
        status,
        status_text,
        queued_as: (status == DeliveryStatus::Sent)
            .then(|| fields::queued_as(status_text))
            .flatten(),
    })
}

/// `delays=a/b/c/d`.
fn delays(text: &str) -> Option<[f32; 4]> {
    let mut parts = text.split('/');
    let mut out = [0.0; 4];
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The peer at the start of `text`, when it is a real address (not `name[private/dovecot-lmtp]`).
fn peer_at(text: &str) -> Option<super::event::Peer<'_>> {
    fields::peer(text).map(|(p, _)| p).filter(|p| fields::is_ip_like(p.ip))
}

/// TLS handshake or verification failures towards the next hop.
fn tls_error(text: &str) -> Option<EventKind<'_>> {
    const PREFIXES: &[&str] = &[
        "SSL_connect error to ",
        "certificate verification failed for ",
        "server certificate verification failed for ",
    ];
    let prefix = PREFIXES.iter().find(|p| text.starts_with(**p))?;
    Some(EventKind::TlsError {
        peer: peer_at(&text[prefix.len()..]),
        text,
    })
}

/// Trouble reaching or talking to the next hop. The text is kept whole: it reads as Postfix
/// wrote it, and the peer is also split out for grouping.
fn remote_error(text: &str) -> Option<EventKind<'_>> {
    // Prefixes that the peer directly follows.
    const PREFIXES: &[&str] = &[
        "connect to ",
        "host ",
        "lost connection with ",
        "conversation with ",
        "TLS is required, but was not offered by host ",
        "TLS is required, but host ",
    ];
    let peer_text = if let Some(rest) = text.strip_prefix("SASL authentication failed; ") {
        // `server mx[ip] said: …`, `cannot authenticate to server mx[ip]: no mechanism available`.
        &rest[rest.find("server ")? + "server ".len()..]
    } else if let Some(rest) = text.strip_prefix("enabling PIX workarounds: ") {
        // Postfix turns these on after a broken PIX firewall banner or a timed-out end of
        // DATA: a fact about the next hop, worth seeing per destination.
        &rest[rest.rfind(" for ")? + " for ".len()..]
    } else {
        let prefix = PREFIXES.iter().find(|p| text.starts_with(**p))?;
        &text[prefix.len()..]
    };
    Some(EventKind::RemoteError {
        peer: peer_at(peer_text),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::event::{Direction, Peer};

    fn delivery(text: &str) -> Delivery<'_> {
        match parse(None, text) {
            Some(EventKind::Delivery(d)) => d,
            other => panic!("not a delivery: {other:?}"),
        }
    }

    #[test]
    fn smtp_sent_with_every_field() {
        let d = delivery(
            "to=<jos@example.com>, orig_to=<bestuur@example.com>, relay=mail1.example.net[10.74.103.11]:25, \
             conn_use=2, delay=11, delays=5.4/0.06/5.1/0.03, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as F12DF84004)",
        );
        assert_eq!((d.to, d.orig_to), ("jos@example.com", Some("bestuur@example.com")));
        assert_eq!(d.relay, "mail1.example.net[10.74.103.11]:25");
        assert_eq!(
            d.relay_peer,
            Some(Peer {
                name: "mail1.example.net",
                ip: "10.74.103.11",
                port: Some(25)
            })
        );
        assert_eq!(
            (d.conn_use, d.delay, d.delays),
            (Some(2), 11.0, Some([5.4, 0.06, 5.1, 0.03]))
        );
        assert_eq!((d.dsn, d.status), ("2.0.0", DeliveryStatus::Sent));
        assert_eq!(d.status_text, "250 2.0.0 Ok: queued as F12DF84004");
        assert_eq!(d.queued_as, Some("F12DF84004"));
    }

    #[test]
    fn queued_as_in_its_usual_shapes() {
        let q = |reply: &str| {
            let line =
                format!("to=<a@b>, relay=x[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent ({reply})");
            delivery(&line).queued_as.map(str::to_owned)
        };
        assert_eq!(q("250 2.0.0 Ok: queued as 153053D").as_deref(), Some("153053D"));
        assert_eq!(
            q("250 2.0.0 Ok: queued as 4PbC4z6W5Qz3tG3").as_deref(),
            Some("4PbC4z6W5Qz3tG3")
        );
        assert_eq!(
            q("250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as CACACACA").as_deref(),
            Some("CACACACA")
        );
        assert_eq!(
            q("250 2.5.0 OK (3807BE5DFA39502AEF1)").as_deref(),
            Some("3807BE5DFA39502AEF1")
        );
        assert_eq!(
            q("250 2.7.0 BLOCKED (3802E45DFA503808B06)").as_deref(),
            Some("3802E45DFA503808B06")
        );
        assert_eq!(q("forwarded as 4PbMVH1yTpz3tG3").as_deref(), Some("4PbMVH1yTpz3tG3"));
        // Other MTAs' ids cannot be followed in a Postfix log.
        assert_eq!(q("250 OK id=1kmGfT-00056j-NK"), None);
        assert_eq!(
            q("250 2.0.0 OK  1678930051 a3-20020adfeec3000000b002cdbb26bb2fsi6160227wrp.756 - gsmtp"),
            None
        );
        assert_eq!(q("250 2.0.0 <user@sender.com> IkiQKTt+117kJgAAWP5Hkg Saved"), None);
        assert_eq!(q("Domain example.com does not accept mail (nullMX)"), None);
        assert_eq!(q("250 2.7.0 Ok, discarded, id=351462-17 - BANNED: .exe"), None);
    }

    #[test]
    fn local_virtual_pipe_error_discard() {
        let d = delivery(
            "to=user@hostname.example.com, orig_to=root@localhost, relay=local, delay=0.07, \
             delays=0.04/0/0/0.03, dsn=2.0.0, status=sent (delivered to command: procmail -a \"$EXTENSION\")",
        );
        assert_eq!(
            (d.to, d.orig_to, d.relay, d.relay_peer),
            ("user@hostname.example.com", Some("root@localhost"), "local", None)
        );
        assert_eq!(d.status_text, "delivered to command: procmail -a \"$EXTENSION\"");
        let d = delivery(
            "to=<tom@example.com>, relay=dovecot, delay=0.12, delays=0.03/0/0/0.08, dsn=5.4.6, \
             status=bounced (mail forwarding loop for tom@example.com)",
        );
        assert_eq!(
            (d.status, d.dsn, d.status_text),
            (
                DeliveryStatus::Bounced,
                "5.4.6",
                "mail forwarding loop for tom@example.com"
            )
        );
        let d = delivery(
            "to=<user@yahoo.com>, relay=none, delay=0.01, delays=0.01/0/0/0, dsn=5.1.1, \
             status=undeliverable-but-not-cached (User unknown in virtual alias table)",
        );
        assert_eq!(d.status, DeliveryStatus::Undeliverable);
        let d = delivery(
            "to=<george.desantis@test.example.com>, relay=none, delay=0.05, delays=0.05/0/0/0, dsn=2.0.0, \
             status=sent (test.example.com)",
        );
        assert_eq!(
            (d.relay, d.status_text, d.queued_as),
            ("none", "test.example.com", None)
        );
        let d = delivery(
            "to=<h-f16@h-ffeb17e38996c.com>, relay=h-a0c7f045560778ddf2[/var/run/dovecot/lmtp], delay=0.04, \
             delays=0.01/0/0/0.04, dsn=2.0.0, status=sent (250 2.0.0 <h-f16@h-ffeb17e38996c.com> +BlNBdfeEmA8fwAAWP5Hkg Saved)",
        );
        assert_eq!((d.relay_peer, d.queued_as), (None, None));
    }

    #[test]
    fn tls_requirement_fields_are_skipped() {
        let d = delivery(
            "to=<user@example.com>, relay=mail.example.com[1.2.3.4]:25, delay=3.6, delays=0.08/0.02/0.85/0.14, \
             tls=dane/!requiretls:nocertmatch, dsn=2.1.5, status=sent (250 2.0.0 Ok: queued as 153053D)",
        );
        assert_eq!((d.dsn, d.queued_as), ("2.1.5", Some("153053D")));
    }

    #[test]
    fn deferred_keeps_the_whole_reply() {
        let d = delivery(
            "to=<whatever-user@lists.example.org>, relay=open.example.nl[10.49.140.10]:25, delay=2.3, \
             delays=0.25/0.05/2/0.04, dsn=4.2.0, status=deferred (host open.example.nl[10.49.140.10] said: \
             450 4.2.0 <whatever-user@lists.example.org>: Recipient address rejected: Greylisted (in reply to RCPT TO command))",
        );
        assert_eq!(d.status, DeliveryStatus::Deferred);
        assert!(d
            .status_text
            .starts_with("host open.example.nl[10.49.140.10] said: 450 4.2.0"));
        assert!(d.status_text.ends_with("(in reply to RCPT TO command)"));
        assert_eq!(d.queued_as, None);
    }

    #[test]
    fn outgoing_tls() {
        let kind = parse(
            None,
            "Trusted TLS connection established to gmail-smtp-in.l.google.com[74.125.136.26]:25: \
             TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits)",
        );
        assert_eq!(
            kind,
            Some(EventKind::Tls {
                direction: Direction::Outgoing,
                peer: Peer {
                    name: "gmail-smtp-in.l.google.com",
                    ip: "74.125.136.26",
                    port: Some(25)
                },
                level: "Trusted",
                protocol: "TLSv1.2",
                cipher: "ECDHE-RSA-AES128-GCM-SHA256",
                bits: Some(128),
            })
        );
        match parse(
            None,
            "Verified TLS connection established to mail.sys4.de[2001:1578:400:111::7]:25: TLSv1.3 with cipher \
             TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (P-256) server-digest SHA256",
        ) {
            Some(EventKind::Tls { level, peer, protocol, cipher, bits, .. }) => {
                assert_eq!((level, peer.ip, protocol, cipher, bits), ("Verified", "2001:1578:400:111::7", "TLSv1.3", "TLS_AES_256_GCM_SHA384", Some(256)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn remote_errors() {
        let remote = |text| match parse(None, text) {
            Some(EventKind::RemoteError { peer, text: t }) => {
                assert_eq!(t, text);
                peer
            }
            other => panic!("not a remote error: {other:?}"),
        };
        let p = remote("connect to mail2.crabruzzo.it[2.115.207.21]:25: No route to host").unwrap();
        assert_eq!((p.name, p.ip, p.port), ("mail2.crabruzzo.it", "2.115.207.21", Some(25)));
        let p = remote("host mail2.example.com[1.74.253.23] said: 450 4.7.1 <user@example.com>: Greylisted (in reply to RCPT TO command)").unwrap();
        assert_eq!((p.name, p.ip, p.port), ("mail2.example.com", "1.74.253.23", None));
        assert_eq!(
            remote("host mg2.egov.bg[213.91.191.86] refused to talk to me: 450 4.3.2 try again later")
                .unwrap()
                .ip,
            "213.91.191.86"
        );
        assert_eq!(
            remote("lost connection with mx3.hotmail.com[65.55.37.72] while receiving the initial server greeting")
                .unwrap()
                .name,
            "mx3.hotmail.com"
        );
        assert_eq!(
            remote("conversation with mx00.gmx.com[74.208.5.4] timed out while receiving the initial server greeting")
                .unwrap()
                .ip,
            "74.208.5.4"
        );
        assert_eq!(remote("SASL authentication failed; server xyz.example.com[1.2.3.4] said: 535 5.7.8 Error: authentication failed").unwrap().ip, "1.2.3.4");
        let p = remote(
            "SASL authentication failed; cannot authenticate to server smtp.example.com[192.0.2.9]: \
             no mechanism available",
        )
        .unwrap();
        assert_eq!(p.name, "smtp.example.com");
        let p =
            remote("enabling PIX workarounds: disable_esmtp delay_dotcrlf for example.com[93.184.216.34]:25").unwrap();
        assert_eq!((p.name, p.port), ("example.com", Some(25)));
        // A unix socket is not an address.
        assert_eq!(
            remote("connect to mail[private/dovecot-lmtp]: No such file or directory"),
            None
        );
    }

    #[test]
    fn tls_errors_and_notices() {
        match parse(
            None,
            "certificate verification failed for mail.example.com[113.169.17.115]:25: self-signed certificate.",
        ) {
            Some(EventKind::TlsError { peer: Some(p), text }) => {
                assert_eq!((p.ip, p.port), ("113.169.17.115", Some(25)));
                assert!(text.ends_with("self-signed certificate."));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(None, "SSL_connect error to mail.example.org[112.63.65.2]:25: -1"),
            Some(EventKind::TlsError { peer: Some(_), .. })
        ));
        assert_eq!(
            parse(None, "discarding EHLO keywords: 8BITMIME STARTTLS"),
            Some(EventKind::Diagnostic {
                severity: Severity::Info,
                text: "discarding EHLO keywords: 8BITMIME STARTTLS"
            })
        );
        assert!(matches!(
            parse(None, "Host offered STARTTLS: [mx.example.com]"),
            Some(EventKind::Diagnostic {
                severity: Severity::Info,
                ..
            })
        ));
        assert_eq!(
            parse(None, "warning: TLS library problem: error:1425F102:SSL routines"),
            None
        );
        assert_eq!(parse(None, "DELIVERY1:"), None);
    }
}
