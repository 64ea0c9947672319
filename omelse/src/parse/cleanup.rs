//! cleanup: message-id, header/body checks, milter decisions.
//!
//! Header/body checks log `QID: ACTION: CLASS CONTENT from ORIGIN; from=<a> to=<b> proto=P
//! helo=<h>[: TEXT]` where ORIGIN is `name[ip]`, `local` or `unknown`; Postfix's own
//! `milter_header_checks` log the same with `milter-CLASS-ACTION:`. Milter replies log
//! `QID: milter-reject: STAGE from name[ip]: 5.7.1 TEXT; from=<a> to=<b> proto=P helo=<h>`.

use super::event::{Action, ActionSource, Decision, EventKind};
use super::fields::{self, Envelope};

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, text: &'a str) -> Option<EventKind<'a>> {
    if let Some(id) = text.strip_prefix("message-id=") {
        return Some(EventKind::MessageId {
            message_id: strip_angles(id),
        });
    }
    if let Some(id) = text.strip_prefix("resent-message-id=") {
        return Some(EventKind::ResentMessageId {
            message_id: strip_angles(id),
        });
    }
    let (word, rest) = text.split_once(": ")?;
    if let Some(milter) = word.strip_prefix("milter-") {
        return match milter {
            "reject" => milter_decision(Action::Reject, rest),
            "hold" => milter_decision(Action::Hold, rest),
            "discard" => milter_decision(Action::Discard, rest),
            // `milter-header-redirect:`: milter_header_checks on the headers a milter added.
            _ => {
                let (class, action) = milter.split_once('-')?;
                check_decision(action, rest).filter(|_| rest.starts_with(class))
            }
        };
    }
    check_decision(word, rest)
}

/// The id as logged, without its angle brackets. Postfix logs the header value verbatim, so it
/// may be empty (`message-id=<>`, `message-id=`), bare, encoded, or cut short (`<abc` without `>`).
fn strip_angles(id: &str) -> &str {
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id)
}

/// A header/body check: `CLASS CONTENT from ORIGIN; envelope[: TEXT]`, `rest` starting at CLASS.
fn check_decision<'a>(action_word: &str, rest: &'a str) -> Option<EventKind<'a>> {
    let action = match action_word {
        "reject" => Action::Reject,
        "warning" => Action::Warn,
        "hold" => Action::Hold,
        "discard" => Action::Discard,
        "redirect" => Action::Redirect,
        "filter" => Action::Filter,
        "replace" => Action::Replace,
        "prepend" => Action::Prepend,
        "info" => Action::Info,
        "bcc" => Action::Bcc,
        _ => return None,
    };
    let (class, rest) = rest.split_once(' ')?;
    let source = match class {
        "header" => ActionSource::Header,
        // `content` is cleanup's class for a match that is neither a header nor a body line.
        "body" | "content" => ActionSource::Body,
        _ => return None,
    };
    // The content is the client's own text and may contain `; `: only a `;` that follows
    // ` from ORIGIN` and starts an envelope block ends it.
    let (head, env, tail) = fields::split_envelope(rest, |head| origin(head).is_some())?;
    let (content, origin) = origin(head)?;
    let client = fields::whole_peer(origin).filter(|p| !p.ip.is_empty());
    // A reject's text always carries a status code (`5.7.1 text`); other actions' text is theirs
    // (the prepended header, the redirect target, the filter, the warning's note).
    let (code, enhanced, reason) = match action {
        Action::Reject => fields::smtp_reply(tail),
        _ => (None, None, tail),
    };
    Some(decision(
        action,
        source,
        "",
        client,
        code,
        enhanced,
        reason,
        Some(content),
        env,
    ))
}

/// Splits `CONTENT from ORIGIN` at its last ` from `; ORIGIN has no space.
fn origin(head: &str) -> Option<(&str, &str)> {
    let at = head.rfind(" from ")?;
    let origin = &head[at + " from ".len()..];
    (!origin.is_empty() && !origin.contains(' ')).then(|| (&head[..at], origin))
}

/// `STAGE from name[ip]: 5.7.1 TEXT; envelope` (milter-reject, milter-hold, milter-discard).
fn milter_decision(action: Action, rest: &str) -> Option<EventKind<'_>> {
    let (stage, rest) = rest.split_once(" from ")?;
    let (client, rest) = fields::peer(rest)?;
    let rest = rest.strip_prefix(": ")?;
    let (reply, env, _) = fields::split_envelope(rest, |_| true)?;
    let (code, enhanced, reason) = fields::smtp_reply(reply);
    Some(decision(
        action,
        ActionSource::Milter,
        stage,
        Some(client),
        code,
        enhanced,
        reason,
        None,
        env,
    ))
}

#[allow(clippy::too_many_arguments)]
fn decision<'a>(
    action: Action,
    source: ActionSource,
    stage: &'a str,
    client: Option<super::event::Peer<'a>>,
    code: Option<u16>,
    enhanced: Option<&'a str>,
    reason: &'a str,
    content: Option<&'a str>,
    env: Envelope<'a>,
) -> EventKind<'a> {
    EventKind::Reject(Decision {
        action,
        source,
        stage,
        client,
        code,
        enhanced,
        reason,
        content,
        from: env.from,
        to: env.to,
        proto: env.proto,
        helo: env.helo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::event::Peer;

    fn decision_of(text: &str) -> Decision<'_> {
        let (_, text) = fields::split_queue_id(text);
        match parse(None, text) {
            Some(EventKind::Reject(d)) => d,
            other => panic!("not a decision: {other:?}"),
        }
    }

    #[test]
    fn message_ids_in_all_their_shapes() {
        let id = |t| match parse(None, t) {
            Some(EventKind::MessageId { message_id }) => message_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            id("message-id=<544D2523.30609@rhsoft.net>"),
            "544D2523.30609@rhsoft.net"
        );
        assert_eq!(id("message-id=<>"), "");
        assert_eq!(id("message-id="), "");
        assert_eq!(id("message-id=bare@example.com"), "bare@example.com");
        // Cut short by the client: no closing bracket.
        assert_eq!(
            id("message-id=<eyJyZXBseV90byI6Im5? Y3ZmI"),
            "eyJyZXBseV90byI6Im5? Y3ZmI"
        );
        assert_eq!(
            id("message-id==?UTF-8?B?PDE5?=? =?UTF-8?B?MTIy?="),
            "=?UTF-8?B?PDE5?=? =?UTF-8?B?MTIy?="
        );
        assert_eq!(
            parse(None, "resent-message-id=<r@x>"),
            Some(EventKind::ResentMessageId { message_id: "r@x" })
        );
    }

    #[test]
    fn header_check_with_reply_text() {
        let d = decision_of(
            "4104E3D: reject: header Subject: Buy now from mail.example.com[192.0.2.7]; \
             from=<a@example.com> to=<b@example.net> proto=ESMTP helo=<mail.example.com>: 5.7.1 No spam",
        );
        assert_eq!(
            (d.action, d.source, d.stage),
            (Action::Reject, ActionSource::Header, "")
        );
        assert_eq!(d.content, Some("Subject: Buy now"));
        assert_eq!(
            d.client,
            Some(Peer {
                name: "mail.example.com",
                ip: "192.0.2.7",
                port: None
            })
        );
        assert_eq!((d.code, d.enhanced, d.reason), (None, Some("5.7.1"), "No spam"));
        assert_eq!((d.from, d.to), (Some("a@example.com"), Some("b@example.net")));
        assert_eq!((d.proto, d.helo), (Some("ESMTP"), Some("mail.example.com")));
    }

    #[test]
    fn header_check_warning_without_text() {
        let d = decision_of(
            "D8B07E3DB6: warning: header Subject: https://drive.google.com/file/d/0B8/view?usp=sharing \
             from o1678917x173.outbound-mail.sendgrid.net[167.89.17.173]; \
             from=<bounces+2320708-7653-frank.test=hsdjasdd.co.uk@sendgrid.net> to=<frank.test@hsdjasdd.co.uk> \
             proto=ESMTP helo=<o1678917x173.outbound-mail.sendgrid.net>",
        );
        assert_eq!(d.action, Action::Warn);
        assert_eq!(
            d.content,
            Some("Subject: https://drive.google.com/file/d/0B8/view?usp=sharing")
        );
        assert_eq!(d.client.unwrap().ip, "167.89.17.173");
        assert_eq!(d.reason, "");
        assert_eq!(
            d.from,
            Some("bounces+2320708-7653-frank.test=hsdjasdd.co.uk@sendgrid.net")
        );
    }

    #[test]
    fn header_check_from_local_submission() {
        let d = decision_of(
            "D95341E50350: info: header Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= test from local; \
             from=<from@example.com> to=<to@example.com>",
        );
        assert_eq!(d.action, Action::Info);
        assert_eq!(d.content, Some("Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe?= test"));
        assert_eq!(d.client, None);
        assert_eq!(
            (d.from, d.to, d.proto, d.helo),
            (Some("from@example.com"), Some("to@example.com"), None, None)
        );
    }

    #[test]
    fn header_content_with_semicolons_and_from() {
        // The matched header itself contains `; ` and ` from `.
        let d = decision_of(
            "77EFFC0015: replace: header Received: from smtpclient.apple (client.example.com [1.2.3.4]); \
             by mail from client.example.com[1.2.3.4]; from=<s@example.com> to=<r@example.com> \
             proto=ESMTP helo=<smtpclient.apple>: X-Received: hidden",
        );
        assert_eq!(d.action, Action::Replace);
        assert_eq!(
            d.content,
            Some("Received: from smtpclient.apple (client.example.com [1.2.3.4]); by mail")
        );
        assert_eq!(d.reason, "X-Received: hidden");
        assert_eq!(d.helo, Some("smtpclient.apple"));
    }

    #[test]
    fn prepend_and_body_checks() {
        let d = decision_of(
            "48rT2v1hQrz1J0N: prepend: header X-Spam-Status: Yes, score=45.1 required=10.0 tests=ADVANCE_FE \
             from mx2.example.org[192.0.2.41]; from=<SRS0=1sN3=5P=example.org=noreply@srs.example.org> \
             to=<recipient@example.net> proto=ESMTP helo=<mx2.example.org>: X-Spam-Status: Yes",
        );
        assert_eq!(d.action, Action::Prepend);
        assert_eq!(
            d.content,
            Some("X-Spam-Status: Yes, score=45.1 required=10.0 tests=ADVANCE_FE")
        );
        assert_eq!(d.reason, "X-Spam-Status: Yes");
        assert_eq!(d.from, Some("SRS0=1sN3=5P=example.org=noreply@srs.example.org"));

        let d = decision_of(
            "ABCDE12345: discard: body click here now from unknown[198.51.100.9]; from=<> to=<x@example.com> \
             proto=SMTP helo=<spam>",
        );
        assert_eq!((d.action, d.source), (Action::Discard, ActionSource::Body));
        assert_eq!(d.content, Some("click here now"));
        assert_eq!(d.client.unwrap().name, "unknown");
        assert_eq!(d.from, Some(""));
    }

    #[test]
    fn milter_header_checks() {
        let d = decision_of(
            "4104E3D: milter-header-redirect: header X-Spam-Status: Yes, score=39.3 required=5.0 tests=ADVANCE_FE \
             from 061238241086.static.ctinets.com[61.238.241.86]; from=<wumt5@cchfdc.com> \
             to=<voorzitter@example.com> proto=ESMTP helo=<ecsolved.com>: tom@example.com",
        );
        assert_eq!((d.action, d.source), (Action::Redirect, ActionSource::Header));
        assert_eq!(
            d.content,
            Some("X-Spam-Status: Yes, score=39.3 required=5.0 tests=ADVANCE_FE")
        );
        assert_eq!(d.reason, "tom@example.com");
        assert_eq!(d.client.unwrap().ip, "61.238.241.86");
    }

    #[test]
    fn milter_replies() {
        let d = decision_of(
            "4104E3D: milter-reject: END-OF-MESSAGE from 061238241086.static.ctinets.com[61.238.241.86]: \
             5.7.1 Blocked by SpamAssassin; from=<wumt5@cchfdc.com> to=<voorzitter@example.com> proto=ESMTP \
             helo=<ecsolved.com>",
        );
        assert_eq!(
            (d.action, d.source, d.stage),
            (Action::Reject, ActionSource::Milter, "END-OF-MESSAGE")
        );
        assert_eq!(d.client.unwrap().name, "061238241086.static.ctinets.com");
        assert_eq!(
            (d.code, d.enhanced, d.reason),
            (None, Some("5.7.1"), "Blocked by SpamAssassin")
        );
        assert_eq!(
            (d.from, d.to),
            (Some("wumt5@cchfdc.com"), Some("voorzitter@example.com"))
        );
        assert_eq!((d.content, d.helo), (None, Some("ecsolved.com")));

        let d = decision_of(
            "ABCDE12345: milter-hold: END-OF-MESSAGE from localhost[127.0.0.1]: milter triggers HOLD action; \
             from=<a@b> to=<c@d> proto=ESMTP helo=<localhost>",
        );
        assert_eq!(
            (d.action, d.enhanced, d.reason),
            (Action::Hold, None, "milter triggers HOLD action")
        );
        let d = decision_of(
            "ABCDE12345: milter-discard: END-OF-MESSAGE from x[192.0.2.1]: milter triggers DISCARD action; from=<>",
        );
        assert_eq!((d.action, d.from, d.to), (Action::Discard, Some(""), None));
    }

    #[test]
    fn warnings_that_are_not_checks_are_left_to_diagnostics() {
        assert_eq!(
            parse(None, "warning: dict_ldap_get_values[1]: DN uid=x not found, skipping "),
            None
        );
        assert_eq!(
            parse(None, "warning: 9BECF3F19D: sender_canonical_maps map lookup problem"),
            None
        );
        assert_eq!(parse(None, "CLEANUP99:"), None);
    }
}
