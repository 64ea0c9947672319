//! `warning:`, `error:`, `fatal:`, `panic:` lines of any Postfix daemon.
//!
//! Two warnings matter beyond their text: failed SASL logins (brute force shows up there) and TLS
//! library failures; they get their own kinds, the rest stays a diagnostic with its severity.

use super::event::{EventKind, Severity};
use super::fields::{peer, split_queue_id};
use super::smtpd;

/// The diagnostic and the queue id it names (`warning: 9BECF3F19D: sender_canonical_maps map
/// lookup problem …`), so that the correlator can attach it to that message.
pub(super) fn parse(text: &str) -> Option<(Option<&str>, EventKind<'_>)> {
    let (severity, rest) = if let Some(rest) = text.strip_prefix("warning: ") {
        (Severity::Warning, rest)
    } else if let Some(rest) = text.strip_prefix("error: ") {
        (Severity::Error, rest)
    } else if let Some(rest) = text.strip_prefix("fatal: ") {
        (Severity::Fatal, rest)
    } else if let Some(rest) = text.strip_prefix("panic: ") {
        (Severity::Panic, rest)
    } else {
        return notice(text).map(|kind| (None, kind));
    };
    let (queue_id, rest) = split_queue_id(rest);
    Some((
        queue_id,
        sasl_failed(rest)
            .or_else(|| tls_error(rest))
            .unwrap_or(EventKind::Diagnostic { severity, text: rest }),
    ))
}

/// Notices any daemon may log without a severity prefix; they say nothing about a mail.
fn notice(text: &str) -> Option<EventKind<'_>> {
    let known = text.starts_with("using backwards-compatible default setting ")
        || text.starts_with("discarding EHLO keywords: ")
        || text.starts_with("table ") && text.ends_with(" has changed -- restarting");
    known.then_some(EventKind::Diagnostic {
        severity: Severity::Info,
        text,
    })
}

/// `c[ip]: SASL LOGIN authentication failed: UGFzc3dvcmQ6` (the reason may be base64 or text).
fn sasl_failed(text: &str) -> Option<EventKind<'_>> {
    let (client, rest) = peer(text)?;
    let rest = rest.strip_prefix(": SASL ")?;
    let (method, reason) = rest.split_once(" authentication failed")?;
    let reason = reason.strip_prefix(':').unwrap_or(reason).trim_start();
    Some(EventKind::SaslFailed { client, method, reason })
}

/// `TLS library problem: error:0A000126:SSL routines::unexpected eof while reading:…` and
/// `SSL_accept error from c[ip]: …` when a warning carries it.
fn tls_error(text: &str) -> Option<EventKind<'_>> {
    if let Some(rest) = text.strip_prefix("TLS library problem: ") {
        return Some(EventKind::TlsError { peer: None, text: rest });
    }
    smtpd::ssl_error(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<EventKind<'_>> {
        parse(text).map(|(_, kind)| kind)
    }

    #[test]
    fn a_warning_names_its_message() {
        let (queue_id, kind) = parse("warning: 9BECF3F19D: sender_canonical_maps map lookup problem for a@b -- message not accepted, try again later").unwrap();
        assert_eq!(queue_id, Some("9BECF3F19D"));
        assert!(
            matches!(kind, EventKind::Diagnostic { severity: Severity::Warning, text } if text.starts_with("sender_canonical_maps"))
        );
    }
    use crate::parse::event::Peer;

    #[test]
    fn severities() {
        assert_eq!(
            kind("warning: hostname exemple.com does not resolve to address 185.14.29.32"),
            Some(EventKind::Diagnostic {
                severity: Severity::Warning,
                text: "hostname exemple.com does not resolve to address 185.14.29.32"
            })
        );
        assert_eq!(
            kind("fatal: root(0): message file too big"),
            Some(EventKind::Diagnostic {
                severity: Severity::Fatal,
                text: "root(0): message file too big"
            })
        );
        assert!(matches!(
            kind("error: open database /etc/postfix/x.db: No such file"),
            Some(EventKind::Diagnostic {
                severity: Severity::Error,
                ..
            })
        ));
        assert!(matches!(
            kind("panic: myfree: corrupt or unallocated memory block"),
            Some(EventKind::Diagnostic {
                severity: Severity::Panic,
                ..
            })
        ));
        assert_eq!(kind("connect from x[1.2.3.4]"), None);
        assert_eq!(
            kind("discarding EHLO keywords: CHUNKING ETRN DSN 8BITMIME"),
            Some(EventKind::Diagnostic {
                severity: Severity::Info,
                text: "discarding EHLO keywords: CHUNKING ETRN DSN 8BITMIME"
            })
        );
        assert!(matches!(
            kind("using backwards-compatible default setting respectful_logging=no for client [192.0.2.1]:58320"),
            Some(EventKind::Diagnostic {
                severity: Severity::Info,
                ..
            })
        ));
        assert!(matches!(
            kind("table hash:/etc/postfix/virtual_mailbox_maps(0,lock|fold_fix) has changed -- restarting"),
            Some(EventKind::Diagnostic {
                severity: Severity::Info,
                ..
            })
        ));
    }

    #[test]
    fn sasl() {
        assert_eq!(
            kind("warning: ec2-3-84-57-208.compute-1.amazonaws.com[3.84.57.208]: SASL LOGIN authentication failed: UGFzc3dvcmQ6"),
            Some(EventKind::SaslFailed {
                client: Peer { name: "ec2-3-84-57-208.compute-1.amazonaws.com", ip: "3.84.57.208", port: None },
                method: "LOGIN",
                reason: "UGFzc3dvcmQ6"
            })
        );
        assert!(matches!(
            kind("warning: unknown[192.0.2.9]: SASL PLAIN authentication failed: authentication failure, sasl_username=bob"),
            Some(EventKind::SaslFailed { method: "PLAIN", reason: "authentication failure, sasl_username=bob", .. })
        ));
        assert!(matches!(
            kind("warning: unknown[192.0.2.237]:55729: SASL Plain authentication failed:"),
            Some(EventKind::SaslFailed { method: "Plain", reason: "", client }) if client.port == Some(55729)
        ));
    }

    #[test]
    fn tls() {
        assert_eq!(
            kind("warning: TLS library problem: error:0A000126:SSL routines::unexpected eof while reading:../ssl/record/rec_layer_s3.c:317:"),
            Some(EventKind::TlsError { peer: None, text: "error:0A000126:SSL routines::unexpected eof while reading:../ssl/record/rec_layer_s3.c:317:" })
        );
    }
}
