//! Small scanners for the pieces every Postfix daemon prints the same way: queue ids, peers
//! (`name[ip]:port`), `key=value` and `key=<value>` fields, SMTP replies. Byte searches only: no
//! regex, no allocation.

use super::event::{Direction, EventKind, Peer};

/// Characters of a long (base-52) queue id besides its `z` separator, as Postfix encodes them.
fn is_long_queue_id_char(b: u8) -> bool {
    b.is_ascii_digit() || (b.is_ascii_alphabetic() && !b"AEIOUaeiou".contains(&b))
}

/// True for a Postfix queue id: short (upper-case hex, 5 to 21 characters: five for the
/// microseconds, then the inode number, up to 16 digits on 64-bit inode file systems) or long
/// (base-52, at least 12 characters with the `z` that separates time and inode).
pub fn is_queue_id(text: &str) -> bool {
    let b = text.as_bytes();
    let short = (5..=21).contains(&b.len()) && b.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
    short || (b.len() >= 12 && b.len() <= 20 && b.contains(&b'z') && b.iter().all(|&c| is_long_queue_id_char(c)))
}

/// Splits `QID: rest` into the queue id and the rest; `NOQUEUE: rest` gives no id and the rest.
/// A message without a queue id prefix comes back whole.
pub fn split_queue_id(message: &str) -> (Option<&str>, &str) {
    let bytes = message.as_bytes();
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(bytes.len());
    if bytes.get(end) == Some(&b':') && bytes.get(end + 1).is_none_or(|&b| b == b' ') {
        let candidate = &message[..end];
        let rest = message.get(end + 2..).unwrap_or("");
        if candidate == "NOQUEUE" {
            return (None, rest);
        }
        if is_queue_id(candidate) {
            return (Some(candidate), rest);
        }
    }
    (None, message)
}

/// Parses a peer at the start of `text`: `name[ip]`, `name[ip]:port` or `[ip]:port`. Returns it and
/// the text after it.
pub fn peer(text: &str) -> Option<(Peer<'_>, &str)> {
    let open = memchr::memchr(b'[', text.as_bytes())?;
    let name = &text[..open];
    if name.contains(' ') {
        return None;
    }
    let close = open + memchr::memchr(b']', &text.as_bytes()[open..])?;
    let ip = &text[open + 1..close];
    let mut rest = &text[close + 1..];
    let mut port = None;
    if let Some(after_colon) = rest.strip_prefix(':') {
        let len = after_colon.bytes().take_while(u8::is_ascii_digit).count();
        if len > 0 {
            port = after_colon[..len].parse().ok();
            rest = &after_colon[len..];
        }
    }
    Some((Peer { name, ip, port }, rest))
}

/// Parses a whole text as a peer (nothing may follow).
pub fn whole_peer(text: &str) -> Option<Peer<'_>> {
    match peer(text) {
        Some((p, "")) => Some(p),
        _ => None,
    }
}

/// The value of `key=<value>` anywhere in `text` (without the angle brackets), e.g. `from=<a@b>`.
/// `key` must include the `=<`: `field_angle(text, "from=<")`.
pub fn field_angle<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = find_key(text, key)? + key.len();
    let len = memchr::memchr(b'>', &text.as_bytes()[start..])?;
    Some(&text[start..start + len])
}

/// The value of `key=value` anywhere in `text`, up to the next `,`, space or end. `key` must
/// include the `=`: `field(text, "relay=")`.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = find_key(text, key)? + key.len();
    let len = text.as_bytes()[start..]
        .iter()
        .position(|&b| b == b',' || b == b' ')
        .unwrap_or(text.len() - start);
    Some(&text[start..start + len])
}

/// Position of `key` in `text` where it starts a field (at the start, or after a space or comma),
/// so that `to=` does not match inside `orig_to=`.
pub fn find_key(text: &str, key: &str) -> Option<usize> {
    let finder = memchr::memmem::find_iter(text.as_bytes(), key.as_bytes());
    finder
        .into_iter()
        .find(|&i| i == 0 || matches!(text.as_bytes()[i - 1], b' ' | b',' | b';'))
}

/// Splits an SMTP reply `550 5.1.1 text` into code, enhanced status code and text. Either code may
/// be missing (`5.7.1 text` from a milter, or plain text).
pub fn smtp_reply(text: &str) -> (Option<u16>, Option<&str>, &str) {
    let mut rest = text;
    let mut code = None;
    let b = rest.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b.get(3), None | Some(b' ') | Some(b'-')) {
        code = rest[..3].parse().ok();
        rest = rest.get(4..).unwrap_or("");
    }
    let enhanced_len = rest.find(' ').unwrap_or(rest.len());
    let candidate = &rest[..enhanced_len];
    let mut enhanced = None;
    if is_enhanced_status(candidate) {
        enhanced = Some(candidate);
        rest = rest.get(enhanced_len + 1..).unwrap_or("");
    }
    (code, enhanced, rest)
}

/// `x.y.z` with x in 2, 4, 5 and y, z numbers (RFC 3463).
pub fn is_enhanced_status(text: &str) -> bool {
    let mut parts = text.split('.');
    let class = parts.next().unwrap_or("");
    matches!(class, "2" | "4" | "5")
        && parts.clone().count() == 2
        && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses a decimal number prefix; returns the number and the rest.
pub fn number<T: std::str::FromStr>(text: &str) -> Option<(T, &str)> {
    let len = text.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 {
        return None;
    }
    Some((text[..len].parse().ok()?, &text[len..]))
}

// --- envelope blocks, TLS sessions, next-hop queue ids -------------------------------------

/// The `from=<a> to=<b> proto=ESMTP helo=<h>` block Postfix appends after a `;` to policy
/// decisions (smtpd rejects, cleanup header/body checks, milter replies). Each field is optional
/// because Postfix prints only what it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Envelope<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub proto: Option<&'a str>,
    pub helo: Option<&'a str>,
}

/// Parses an envelope block that starts right after its `;`. Returns it and the optional text
/// after it (`: text`, empty when nothing follows). `None` unless at least one field is there and
/// nothing but `: text` follows them, so free text that merely contains a `;` is not mistaken
/// for one.
pub fn envelope(text: &str) -> Option<(Envelope<'_>, &str)> {
    fn angle<'a>(rest: &mut &'a str, key: &str) -> Option<&'a str> {
        let value = rest.strip_prefix(key)?;
        let end = value.find('>')?;
        *rest = &value[end + 1..];
        Some(&value[..end])
    }
    let mut rest = text;
    let mut env = Envelope {
        from: angle(&mut rest, " from=<"),
        to: angle(&mut rest, " to=<"),
        ..Envelope::default()
    };
    if let Some(value) = rest.strip_prefix(" proto=") {
        let end = value.find([' ', ':']).unwrap_or(value.len());
        env.proto = Some(&value[..end]);
        rest = &value[end..];
    }
    env.helo = angle(&mut rest, " helo=<");
    if env == Envelope::default() {
        return None;
    }
    match rest {
        "" | ":" => Some((env, "")),
        _ => Some((env, rest.strip_prefix(": ")?)),
    }
}

/// Splits `head; from=<a> to=<b> proto=P helo=<h>[: tail]` at the first `;` that starts an
/// envelope block and whose head `accept` approves (callers check what must end the head, e.g.
/// ` from client[ip]`). Returns head, envelope and tail.
pub fn split_envelope<'a>(text: &'a str, accept: impl Fn(&'a str) -> bool) -> Option<(&'a str, Envelope<'a>, &'a str)> {
    memchr::memchr_iter(b';', text.as_bytes()).find_map(|semi| {
        let head = &text[..semi];
        let (env, tail) = envelope(&text[semi + 1..])?;
        accept(head).then_some((head, env, tail))
    })
}

/// True for the inside of a peer's brackets when it is an address (IPv4, IPv6, `unknown` is not),
/// as opposed to a socket path like `private/dovecot-lmtp`.
pub fn is_ip_like(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b'%')
}

/// `Trusted TLS connection established to mx[ip]:25: TLSv1.3 with cipher X (256/256 bits) …`
/// (smtp, lmtp: outgoing) and `… established from c[ip]: …` (smtpd, tlsproxy: incoming).
pub fn tls_established(text: &str) -> Option<EventKind<'_>> {
    let marker = " TLS connection established ";
    let at = memchr::memmem::find(text.as_bytes(), marker.as_bytes())?;
    let level = &text[..at];
    if level.is_empty() || level.contains(' ') {
        return None;
    }
    let rest = &text[at + marker.len()..];
    let (direction, rest) = if let Some(r) = rest.strip_prefix("to ") {
        (Direction::Outgoing, r)
    } else {
        (Direction::Incoming, rest.strip_prefix("from ")?)
    };
    let (peer, rest) = peer(rest)?;
    let rest = rest.strip_prefix(": ")?;
    let (protocol, rest) = rest.split_once(" with cipher ")?;
    let (cipher, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let bits = rest.strip_prefix('(').and_then(number::<u16>).map(|(bits, _)| bits);
    Some(EventKind::Tls {
        direction,
        peer,
        level,
        protocol,
        cipher,
        bits,
    })
}

/// The next hop's queue id in a reply it gave to a delivery: `250 2.0.0 Ok: queued as X` (also
/// behind a content filter's `from MTA(smtp:[127.0.0.1]:10025): …`), local's `forwarded as X`, and
/// the `250 2.5.0 OK (X)` / `BLOCKED (X)` of Proxmox's filter. Only ids that look like Postfix
/// queue ids count: other MTAs' ids (`id=1kmGfT-…`) cannot be followed in a Postfix log.
pub fn queued_as(reply: &str) -> Option<&str> {
    let bytes = reply.as_bytes();
    for marker in ["queued as ", "forwarded as "] {
        if let Some(at) = memchr::memmem::rfind(bytes, marker.as_bytes()) {
            let rest = &reply[at + marker.len()..];
            let len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
            return is_queue_id(&rest[..len]).then_some(&rest[..len]);
        }
    }
    let inner = reply.trim_end().strip_suffix(')')?;
    let open = inner.rfind(" (")?;
    let id = &inner[open + 2..];
    is_queue_id(id).then_some(id)
}

/// Splits `reply text; from=<a> to=<b> proto=ESMTP helo=<h>` at the first `; ` that starts an
/// envelope key, so a `;` inside the reply (`Service unavailable; client [ip] blocked …`) stays in
/// the reply. Without an envelope the whole text comes back.
pub fn split_reply_envelope(text: &str) -> (&str, Envelope<'_>) {
    const KEYS: [&str; 4] = ["from=<", "to=<", "proto=", "helo=<"];
    let bytes = text.as_bytes();
    for at in memchr::memmem::find_iter(bytes, b"; ") {
        let tail = &text[at + 2..];
        if KEYS.iter().any(|k| tail.starts_with(k)) {
            let envelope = Envelope {
                from: field_angle(tail, "from=<"),
                to: field_angle(tail, "to=<"),
                proto: field(tail, "proto="),
                helo: field_angle(tail, "helo=<"),
            };
            return (&text[..at], envelope);
        }
    }
    (text, Envelope::default())
}

/// Splits `STAGE from PEER` + rest (`after STAGE from c[ip]`, `RCPT from c[ip]: …`): the word(s)
/// before ` from `, the peer and the text after it.
pub fn stage_from_peer(text: &str) -> Option<(&str, Peer<'_>, &str)> {
    let at = memchr::memmem::find(text.as_bytes(), b" from ")?;
    let (peer, rest) = peer(&text[at + 6..])?;
    Some((&text[..at], peer, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids() {
        assert_eq!(split_queue_id("21BCE3807B6: removed"), (Some("21BCE3807B6"), "removed"));
        assert_eq!(
            split_queue_id("4LxYz3q1Zbz1vCq: removed"),
            (Some("4LxYz3q1Zbz1vCq"), "removed")
        );
        assert_eq!(split_queue_id("NOQUEUE: reject: x"), (None, "reject: x"));
        assert_eq!(split_queue_id("warning: foo"), (None, "warning: foo"));
        assert_eq!(split_queue_id("statistics: max"), (None, "statistics: max"));
    }

    #[test]
    fn peers() {
        let (p, rest) = peer("mail.example.com[192.0.2.1]:25, x").unwrap();
        assert_eq!(
            (p.name, p.ip, p.port, rest),
            ("mail.example.com", "192.0.2.1", Some(25), ", x")
        );
        let (p, _) = peer("[2001:db8::1]:4242").unwrap();
        assert_eq!((p.name, p.ip, p.port), ("", "2001:db8::1", Some(4242)));
    }

    #[test]
    fn fields() {
        let t = "to=<a@b>, orig_to=<c@d>, relay=x[1.2.3.4]:25, delay=1";
        assert_eq!(field_angle(t, "to=<"), Some("a@b"));
        assert_eq!(field_angle(t, "orig_to=<"), Some("c@d"));
        assert_eq!(field(t, "relay="), Some("x[1.2.3.4]:25"));
        assert_eq!(field(t, "delay="), Some("1"));
    }

    #[test]
    fn replies() {
        assert_eq!(smtp_reply("550 5.1.1 <x>: no"), (Some(550), Some("5.1.1"), "<x>: no"));
        assert_eq!(smtp_reply("5.7.1 Spam"), (None, Some("5.7.1"), "Spam"));
        assert_eq!(smtp_reply("Service unavailable"), (None, None, "Service unavailable"));
    }
}

#[cfg(test)]
mod parse_b_tests {
    use super::*;

    #[test]
    fn long_hex_queue_ids_of_64_bit_inodes() {
        assert!(is_queue_id("ED06590130AA1C9D6D862"));
        assert!(!is_queue_id("ED06590130AA1C9D6D8621"));
        assert_eq!(
            split_queue_id("ED06590130AA1C9D6D862: skipped, still being delivered"),
            (Some("ED06590130AA1C9D6D862"), "skipped, still being delivered")
        );
    }

    #[test]
    fn envelope_blocks() {
        let env = Envelope {
            from: Some("a@b"),
            to: Some("c@d"),
            proto: Some("ESMTP"),
            helo: Some("[192.0.2.1]"),
        };
        assert_eq!(
            envelope(" from=<a@b> to=<c@d> proto=ESMTP helo=<[192.0.2.1]>: 5.7.1 no"),
            Some((env, "5.7.1 no"))
        );
        assert_eq!(
            envelope(" from=<a@b> to=<c@d> proto=ESMTP helo=<[192.0.2.1]>"),
            Some((env, ""))
        );
        let partial = Envelope {
            proto: Some("SMTP"),
            ..Envelope::default()
        };
        assert_eq!(envelope(" proto=SMTP: text"), Some((partial, "text")));
        assert_eq!(envelope(" size=26055; from=<a@b>"), None);
        assert_eq!(envelope(" from=<a@b> and more"), None);

        let text = "x; y from c[192.0.2.1]; from=<> to=<t@x>: tail";
        let (head, env, tail) = split_envelope(text, |_| true).unwrap();
        assert_eq!(
            (head, env.from, env.to, tail),
            ("x; y from c[192.0.2.1]", Some(""), Some("t@x"), "tail")
        );
        assert_eq!(split_envelope(text, |head| head.ends_with("[192.0.2.2]")), None);
    }

    #[test]
    fn incoming_tls_sessions() {
        let tls = tls_established(
            "Anonymous TLS connection established from julie.example.com[10.163.89.202]: TLSv1.2 with cipher AECDH-AES256-SHA (256/256 bits)",
        );
        assert_eq!(
            tls,
            Some(EventKind::Tls {
                direction: Direction::Incoming,
                peer: Peer {
                    name: "julie.example.com",
                    ip: "10.163.89.202",
                    port: None
                },
                level: "Anonymous",
                protocol: "TLSv1.2",
                cipher: "AECDH-AES256-SHA",
                bits: Some(256),
            })
        );
        assert_eq!(tls_established("some TLS connection established to x"), None);
    }

    #[test]
    fn ip_like() {
        assert!(
            is_ip_like("192.0.2.1")
                && is_ip_like("2001:db8::1")
                && is_ip_like("fe80::1%eth0".split('%').next().unwrap())
        );
        assert!(!is_ip_like("private/dovecot-lmtp") && !is_ip_like("unknown") && !is_ip_like(""));
    }

    #[test]
    fn envelopes() {
        let (head, e) = split_reply_envelope(
            "550 5.7.1 Service unavailable; client [1.2.3.4] blocked using zen.spamhaus.org; from=<a@b>, to=<c@d>, proto=SMTP, helo=<h>",
        );
        assert_eq!(
            head,
            "550 5.7.1 Service unavailable; client [1.2.3.4] blocked using zen.spamhaus.org"
        );
        assert_eq!(
            (e.from, e.to, e.proto, e.helo),
            (Some("a@b"), Some("c@d"), Some("SMTP"), Some("h"))
        );
        let (head, e) = split_reply_envelope("454 4.7.1 <a@h>: Relay access denied; to=<a@h> proto=SMTP helo=<me>");
        assert_eq!(
            (head, e.from, e.to, e.helo),
            ("454 4.7.1 <a@h>: Relay access denied", None, Some("a@h"), Some("me"))
        );
        assert_eq!(split_reply_envelope("too many connections").0, "too many connections");
    }

    #[test]
    fn tls_and_queued_as() {
        assert_eq!(queued_as("250 2.0.0 Ok: queued as DF66E940333"), Some("DF66E940333"));
        assert_eq!(
            queued_as("250 2.5.0 OK (3204C55EC294578338F)"),
            Some("3204C55EC294578338F")
        );
        assert_eq!(queued_as("554 5.7.0 Reject, id=31619-02 - spam"), None);
    }
}
