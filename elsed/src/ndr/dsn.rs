//! What an NDR says: MIME structure by `mail-parser`, the RFC 3464 `message/delivery-status` part
//! by a small field-block reader (mail-parser hands that part over as opaque bytes), the returned
//! original (`text/rfc822-headers` or `message/rfc822`) for its Message-ID, Subject, From and Date.
//!
//! Never fails: mail without a report is `NotDsn`, bytes that are no message `Malformed`, and the
//! caller stores the raw source whatever the verdict.

use mail_parser::{Message, MessageParser, MimeHeaders};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dsn,
    NotDsn,
    Malformed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Dsn => "dsn",
            Kind::NotDsn => "not_dsn",
            Kind::Malformed => "malformed",
        }
    }
}

/// One `Final-Recipient` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientReport {
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    pub action: Option<String>,
    pub status: Option<String>,
    pub remote_mta: Option<String>,
    pub diagnostic_code: Option<String>,
}

/// Everything read from one NDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: Kind,
    /// Why it is flagged (`None` for a well-formed DSN).
    pub problem: Option<String>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    /// The NDR's own queue id, from Postfix's `Received: by HOST (Postfix) id QID` header.
    pub ndr_queue_id: Option<String>,
    /// `Reporting-MTA` without its `dns;` type.
    pub reporting_mta: Option<String>,
    pub postfix_queue_id: Option<String>,
    pub postfix_sender: Option<String>,
    /// `Arrival-Date` as Unix seconds.
    pub arrival_date: Option<i64>,
    pub recipients: Vec<RecipientReport>,
    /// `headers` or `message`: what of the original came back.
    pub returned: Option<&'static str>,
    pub orig_message_id: Option<String>,
    pub orig_subject: Option<String>,
    pub orig_from: Option<String>,
    pub orig_date: Option<String>,
}

impl Report {
    fn empty(kind: Kind, problem: &str) -> Report {
        Report {
            kind,
            problem: Some(problem.to_owned()),
            subject: None,
            message_id: None,
            ndr_queue_id: None,
            reporting_mta: None,
            postfix_queue_id: None,
            postfix_sender: None,
            arrival_date: None,
            recipients: Vec::new(),
            returned: None,
            orig_message_id: None,
            orig_subject: None,
            orig_from: None,
            orig_date: None,
        }
    }
}

/// Reads an NDR (the DATA of one transaction, dot-unstuffed).
pub fn parse(raw: &[u8]) -> Report {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Report::empty(Kind::Malformed, "no message headers");
    };
    if message.headers().is_empty() {
        return Report::empty(Kind::Malformed, "no message headers");
    }
    let mut report = Report::empty(Kind::NotDsn, "no message/delivery-status part");
    report.subject = message.subject().map(str::to_owned);
    report.message_id = message.message_id().map(str::to_owned);
    report.ndr_queue_id = message.header_raw("Received").and_then(postfix_received_id);

    let (status_part, returned) = report_parts(&message);
    if let Some(returned) = &returned {
        report.returned = Some(returned.kind());
        original(&mut report, returned.message());
    }
    if let Some(bytes) = status_part {
        delivery_status(&mut report, bytes);
    }
    report
}

/// What of the original message came back in a report.
enum Returned<'a> {
    /// `text/rfc822-headers`: its header fields only.
    Headers(Message<'a>),
    /// `message/rfc822`: all of it.
    Message(&'a Message<'a>),
}

impl Returned<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Returned::Headers(_) => "headers",
            Returned::Message(_) => "message",
        }
    }

    fn message(&self) -> &Message<'_> {
        match self {
            Returned::Headers(m) => m,
            Returned::Message(m) => m,
        }
    }
}

/// The first delivery-status part of a report and the first returned original.
fn report_parts<'a>(message: &'a Message<'a>) -> (Option<&'a [u8]>, Option<Returned<'a>>) {
    let (mut status, mut returned) = (None, None);
    for part in &message.parts {
        let Some(ct) = part.content_type() else { continue };
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match (ct.ctype().to_ascii_lowercase().as_str(), sub.as_str()) {
            ("message", "delivery-status") | ("message", "global-delivery-status") if status.is_none() => {
                status = Some(part.contents());
            }
            ("text", "rfc822-headers") if returned.is_none() => {
                returned = MessageParser::default()
                    .parse_headers(part.contents())
                    .map(Returned::Headers);
            }
            ("message", "rfc822") | ("message", "global") if returned.is_none() => {
                returned = part.message().map(Returned::Message);
            }
            _ => {}
        }
    }
    (status, returned)
}

/// An NDR laid out for reading: its own header fields, the delivery-status field blocks (the
/// per-message block first) and the header fields of the returned original, each in order, with
/// names as written and values unfolded. Empty parts where the mail has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections {
    pub headers: Vec<(String, String)>,
    pub delivery_status: Vec<Vec<(String, String)>>,
    pub returned_headers: Vec<(String, String)>,
}

/// Reads the [`Sections`] of an NDR; never fails (a malformed one has empty sections).
pub fn sections(raw: &[u8]) -> Sections {
    let mut out = Sections::default();
    let Some(message) = MessageParser::default().parse(raw) else {
        return out;
    };
    let fields = |m: &Message<'_>| -> Vec<(String, String)> {
        m.headers_raw()
            .map(|(name, value)| (name.to_owned(), unfold(value.trim())))
            .collect()
    };
    out.headers = fields(&message);
    let (status, returned) = report_parts(&message);
    if let Some(bytes) = status {
        out.delivery_status = field_blocks(&String::from_utf8_lossy(bytes));
    }
    if let Some(returned) = returned {
        out.returned_headers = fields(returned.message());
    }
    out
}

/// The returned original's identifying headers.
fn original(report: &mut Report, message: &Message<'_>) {
    report.orig_message_id = message.message_id().map(str::to_owned);
    report.orig_subject = message.subject().map(str::to_owned);
    report.orig_from = raw_header(message, "From");
    report.orig_date = raw_header(message, "Date");
}

fn raw_header(message: &Message<'_>, name: &str) -> Option<String> {
    message
        .header_raw(name)
        .map(|v| unfold(v.trim()))
        .filter(|v| !v.is_empty())
}

/// `by host (Postfix) id 4F1A23B0C5; date` → `4F1A23B0C5`; only Postfix's own header qualifies.
fn postfix_received_id(value: &str) -> Option<String> {
    if !value.contains("(Postfix") {
        return None;
    }
    let mut words = value.split_whitespace();
    words.find(|w| *w == "id")?;
    let id = words.next()?.trim_end_matches(';');
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| id.to_owned())
}

/// Reads the per-message block and the per-recipient blocks of a delivery-status body.
fn delivery_status(report: &mut Report, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let mut blocks = field_blocks(&text).into_iter();
    let Some(message_fields) = blocks.next() else {
        report.problem = Some("empty message/delivery-status part".into());
        return;
    };
    for (name, value) in message_fields {
        match name.as_str() {
            "reporting-mta" => report.reporting_mta = Some(typed_value(&value)),
            "x-postfix-queue-id" => report.postfix_queue_id = Some(value),
            "x-postfix-sender" => report.postfix_sender = Some(typed_value(&value)),
            "arrival-date" => {
                report.arrival_date = mail_parser::DateTime::parse_rfc822(&value).map(|d| d.to_timestamp())
            }
            _ => {}
        }
    }
    for fields in blocks {
        let mut rcpt = RecipientReport::default();
        for (name, value) in fields {
            let slot = match name.as_str() {
                "final-recipient" => &mut rcpt.final_recipient,
                "original-recipient" => &mut rcpt.original_recipient,
                "action" => &mut rcpt.action,
                "status" => &mut rcpt.status,
                "remote-mta" => &mut rcpt.remote_mta,
                "diagnostic-code" => &mut rcpt.diagnostic_code,
                _ => continue,
            };
            *slot = Some(match name.as_str() {
                "final-recipient" | "original-recipient" | "remote-mta" => typed_value(&value),
                "action" => value.to_ascii_lowercase(),
                _ => value,
            });
        }
        report.recipients.push(rcpt);
    }
    report.kind = Kind::Dsn;
    report.problem = if report.recipients.is_empty() {
        Some("delivery-status without recipient blocks".into())
    } else if report.recipients.iter().any(|r| r.final_recipient.is_none()) {
        Some("recipient block without Final-Recipient".into())
    } else {
        None
    };
}

/// `rfc822; user@example.com` → `user@example.com` (the address type is always rfc822 or dns).
fn typed_value(value: &str) -> String {
    match value.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') => rest.trim().to_owned(),
        _ => value.trim().to_owned(),
    }
}

/// Folded whitespace (CRLF + blanks) becomes one space.
fn unfold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Blocks of `Name: value` fields separated by blank lines, names lower-cased, values unfolded.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    for block in &mut blocks {
        for (_, value) in block.iter_mut() {
            *value = unfold(value);
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of the research samples (`../shared/research/samples`).
    fn sample(name: &str) -> Option<Vec<u8>> {
        let path = else_tests::shared("research/samples")?.join(name);
        Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    #[test]
    fn postmaster_copy_with_returned_headers() {
        let Some(raw) = sample("postmaster-copy-notify_classes-bounce.eml") else {
            return;
        };
        let r = parse(&raw);
        assert_eq!(r.kind, Kind::Dsn);
        assert_eq!(r.problem, None);
        assert_eq!(r.subject.as_deref(), Some("Postmaster Copy: Undelivered Mail"));
        assert_eq!(r.ndr_queue_id.as_deref(), Some("D4EEFC48F4"));
        assert_eq!(r.reporting_mta.as_deref(), Some("probe.localdomain"));
        assert_eq!(r.postfix_queue_id.as_deref(), Some("C038AC48EE"));
        assert_eq!(r.postfix_sender.as_deref(), Some("alice@probe.localdomain"));
        // Sat, 28 Nov 2026 18:55:52 +0000
        assert_eq!(r.arrival_date, Some(1_795_892_152));
        assert_eq!(r.recipients.len(), 3);
        let first = &r.recipients[0];
        assert_eq!(first.final_recipient.as_deref(), Some("victim@reject.test"));
        assert_eq!(first.original_recipient.as_deref(), Some("victim@reject.test"));
        assert_eq!(first.action.as_deref(), Some("failed"));
        assert_eq!(first.status.as_deref(), Some("5.1.1"));
        assert_eq!(first.remote_mta.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            first.diagnostic_code.as_deref(),
            Some("smtp; 550 5.1.1 <victim@reject.test>: Recipient address rejected: User unknown")
        );
        assert_eq!(r.recipients[1].remote_mta, None);
        assert_eq!(
            r.recipients[2].diagnostic_code.as_deref(),
            Some("X-Postfix; outbound mail disabled (probe)")
        );
        assert_eq!(r.returned, Some("headers"));
        assert_eq!(r.orig_message_id.as_deref(), Some("ndr-probe-1@probe.localdomain"));
        assert_eq!(r.orig_subject.as_deref(), Some("NDR probe message 1"));
        assert_eq!(r.orig_from.as_deref(), Some("Alice <alice@probe.localdomain>"));
        assert_eq!(r.orig_date.as_deref(), Some("Sat, 28 Nov 2026 18:55:52 +0000 (UTC)"));
    }

    #[test]
    fn sections_lay_out_headers_report_fields_and_the_returned_headers() {
        let raw = b"Subject: Undelivered\r\nReceived: by a\r\n (Postfix) id X\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; bob@x.example\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.org\r\nMessage-ID: <m1@example.org>\r\n\r\n--b--\r\n";
        let s = sections(raw);
        assert_eq!(s.headers[0], ("Subject".into(), "Undelivered".into()));
        assert_eq!(s.headers[1], ("Received".into(), "by a (Postfix) id X".into()));
        assert_eq!(s.delivery_status.len(), 2);
        assert_eq!(s.delivery_status[1][1], ("status".into(), "5.1.1".into()));
        assert_eq!(s.returned_headers[1], ("Message-ID".into(), "<m1@example.org>".into()));
        assert_eq!(sections(b""), Sections::default());
    }

    #[test]
    fn sender_ndr_with_the_whole_original() {
        let Some(raw) = sample("sender-ndr-full-via-header_checks-BCC.eml") else {
            return;
        };
        let r = parse(&raw);
        assert_eq!(r.kind, Kind::Dsn);
        assert_eq!(r.problem, None);
        assert_eq!(r.returned, Some("message"));
        assert!(r.postfix_queue_id.is_some());
        assert!(r.orig_message_id.is_some());
        assert!(!r.recipients.is_empty());
        assert!(r.recipients.iter().all(|x| x.action.as_deref() == Some("failed")));
    }

    #[test]
    fn mail_without_a_report_is_flagged_not_refused() {
        let r = parse(b"From: someone@example.com\r\nSubject: hello\r\n\r\nnot a bounce\r\n");
        assert_eq!(r.kind, Kind::NotDsn);
        assert_eq!(r.subject.as_deref(), Some("hello"));
        assert!(r.problem.is_some());
        let r = parse(b"");
        assert_eq!(r.kind, Kind::Malformed);
    }

    #[test]
    fn a_report_without_recipients_is_flagged() {
        let raw = b"Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\nX-Postfix-Queue-ID: ABC123\r\n\r\n--b--\r\n";
        let r = parse(raw);
        assert_eq!(r.kind, Kind::Dsn);
        assert_eq!(r.postfix_queue_id.as_deref(), Some("ABC123"));
        assert_eq!(r.reporting_mta.as_deref(), Some("mx.example"));
        assert_eq!(r.problem.as_deref(), Some("delivery-status without recipient blocks"));
    }
}
