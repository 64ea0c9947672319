//! Neighbours that share the mail log: amavis (linked), dovecot, opendkim, rspamd … (ignored on
//! purpose, not counted as unknown Postfix lines).
//!
//! Only amavis says something the correlator needs: its verdict line names the queue id it
//! received (`Queue-ID:`) and the one it re-injected into (`queued_as:`), which joins the two
//! halves of a message that went through the filter.

use super::event::{Event, EventKind, FilterVerdict, Program};
use super::fields::{field, field_angle, find_key};

/// Programs known to share the mail log; their lines are `Foreign`, not unknown.
const NEIGHBOURS: &[&str] = &[
    "amavis",
    "amavisd",
    "amavisd-new",
    "dovecot",
    "opendkim",
    "opendmarc",
    "openarc",
    "policyd-spf",
    "policyd-weight",
    "postfwd",
    "postgrey",
    "sqlgrey",
    "rspamd",
    "spamd",
    "spamc",
    "clamd",
    "clamav-milter",
    "freshclam",
    "milter-greylist",
    "mimedefang",
    "saslauthd",
    "pmg-smtp-filter",
    "pmgpolicy",
    "pmgdaemon",
    "pmgmirror",
    "pmgtunnel",
    "fetchmail",
    "cyrus",
    "mailman",
    "sympa",
];

pub(super) fn parse<'a>(program: &Program<'a>, message: &'a str) -> Option<Event<'a>> {
    if !NEIGHBOURS.contains(&program.daemon) {
        return None;
    }
    if program.daemon.starts_with("amavis") {
        if let Some(verdict) = amavis(message) {
            return Some(Event::new(verdict.queue_id, EventKind::Filter(verdict)));
        }
    }
    Some(Event::new(None, EventKind::Foreign))
}

/// `(237978-11) Passed CLEAN {RelayedInbound}, [ip]:port [ip] ESMTP/ESMTP <from> -> <to>, (…),
/// Queue-ID: X, Message-ID: <m>, mail_id: …, Hits: 2.9, size: 175061, queued_as: Y, Subject: …`.
fn amavis(message: &str) -> Option<FilterVerdict<'_>> {
    let text = message
        .strip_prefix('(')
        .and_then(|m| m.split_once(") "))
        .map_or(message, |(_, rest)| rest);
    let (action, rest) = text.split_once(' ')?;
    if !matches!(action, "Passed" | "Blocked" | "Not-Delivered") {
        return None;
    }
    // `Passed CLEAN`: the action and the first word of the content category.
    let verdict = &text[..action.len() + 1 + rest.find([' ', ',']).unwrap_or(rest.len())];
    // The subject and the headers after it are the sender's words: search the fields before them.
    let fields = find_key(rest, "Subject: ").map_or(rest, |at| &rest[..at]);
    let (from, to) = match fields.split_once(" -> ") {
        Some((before, after)) => {
            let from = before.rfind('<').and_then(|at| before[at + 1..].strip_suffix('>'));
            let to = after.split_once(", ").map_or(after, |(to, _)| to);
            (from, Some(to))
        }
        None => (None, None),
    };
    Some(FilterVerdict {
        verdict,
        queue_id: field(fields, "Queue-ID: "),
        queued_as: field(fields, "queued_as: "),
        message_id: field_angle(fields, "Message-ID: <"),
        from,
        to,
        size: field(fields, "size: ").and_then(|s| s.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(program: &'a str, message: &'a str) -> Option<Event<'a>> {
        parse(&Program::split(program), message)
    }

    #[test]
    fn amavis_passed() {
        let line = "(237978-11) Passed CLEAN {RelayedInbound}, [185.31.160.120]:41695 [45.141.85.146] ESMTP/ESMTP <ajmyjyz@nistoresio.co.cz> -> <user01.test@uhu-banane.net>, (ESMTP://[185.31.160.120]:41695 < ESMTPA://45.141.85.146), Queue-ID: 4PbC4x469Jz3tBr, Message-ID: <71816687N65284230Y01410375Q67285060N@ajmyjyz>, mail_id: VQpGETLS8yJc, b: _dAm-dg2M, Hits: 2.913, size: 175061, queued_as: 4PbC4z6W5Qz3tG3, Subject: \"queued_as: FAKE size: 1\", From: <ajmyjyz@nistoresio.co.cz>, helo=mail.nistoresio.co.cz, 2131 ms";
        let event = p("amavis", line).unwrap();
        assert_eq!(event.queue_id, Some("4PbC4x469Jz3tBr"));
        assert_eq!(
            event.kind,
            EventKind::Filter(FilterVerdict {
                verdict: "Passed CLEAN",
                queue_id: Some("4PbC4x469Jz3tBr"),
                queued_as: Some("4PbC4z6W5Qz3tG3"),
                message_id: Some("71816687N65284230Y01410375Q67285060N@ajmyjyz"),
                from: Some("ajmyjyz@nistoresio.co.cz"),
                to: Some("<user01.test@uhu-banane.net>"),
                size: Some(175061),
            })
        );
    }

    #[test]
    fn amavis_blocked_and_other() {
        let line = "(12345-02) Blocked BANNED (.exe,.exe-ms,Invoice.exe) {DiscardedInbound,Quarantined}, [192.0.2.1]:4242 [192.0.2.1] <a@example.org> -> <b@example.net>,<c@example.net>, quarantine: banned-x, Queue-ID: 4PbCNM3z5lz3tBr, Message-ID: <m@x>, mail_id: x, Hits: -, size: 3000, 12 ms";
        let Some(Event {
            queue_id,
            kind: EventKind::Filter(v),
        }) = p("amavis", line)
        else {
            panic!()
        };
        assert_eq!(
            (queue_id, v.verdict, v.queued_as),
            (Some("4PbCNM3z5lz3tBr"), "Blocked BANNED", None)
        );
        assert_eq!(
            (v.from, v.to, v.size),
            (
                Some("a@example.org"),
                Some("<b@example.net>,<c@example.net>"),
                Some(3000)
            )
        );
        assert_eq!(
            p("amavis", "(237978-11) ...no autolearn_force=no, 2131 ms").map(|e| e.kind),
            Some(EventKind::Foreign)
        );
        assert_eq!(
            p("dovecot", "imap-login: Login: user=<x>").map(|e| e.kind),
            Some(EventKind::Foreign)
        );
        assert_eq!(
            p("opendkim", "4PbC4x469Jz3tBr: DKIM-Signature field added").map(|e| e.kind),
            Some(EventKind::Foreign)
        );
        assert_eq!(p("sshd", "Accepted publickey for root"), None);
    }
}
