//! Postfix log lines to typed events: `header` reads the syslog envelope, one module per daemon
//! reads the message text, `fields` holds the scanners they share.

pub mod event;
pub mod fields;
pub mod header;

mod cleanup;
mod delivery;
mod diagnostic;
mod foreign;
mod notify;
mod postscreen;
mod qmgr;
mod service;
mod smtpd;

#[cfg(test)]
mod corpus_checks;

pub use event::{Event, EventKind, Peer, Program};
pub use header::{split_line, Clock, SyslogLine, Timestamp};

use serde::Serialize;

/// Postfix daemons whose bare name (without `postfix/`) still marks a Postfix line.
const POSTFIX_DAEMONS: &[&str] = &[
    "anvil",
    "bounce",
    "cleanup",
    "discard",
    "dnsblog",
    "error",
    "flush",
    "local",
    "lmtp",
    "master",
    "oqmgr",
    "pickup",
    "pipe",
    "postdrop",
    "postfix-script",
    "postlog",
    "postmap",
    "postqueue",
    "postscreen",
    "postsuper",
    "proxymap",
    "qmgr",
    "qmqpd",
    "retry",
    "scache",
    "sendmail",
    "showq",
    "smtp",
    "smtpd",
    "spawn",
    "tlsmgr",
    "tlsproxy",
    "trivial-rewrite",
    "verify",
    "virtual",
    "postconf",
    "postalias",
    "postcat",
    "postkick",
    "postlock",
];

/// Programs that share the mail log with Postfix and that ELSE links or ignores on purpose; with
/// `programs="mail"` omelse takes their lines too.
const MAIL_NEIGHBOURS: &[&str] = &[
    "amavis",
    "amavisd",
    "amavisd-new",
    "dovecot",
    "opendkim",
    "opendmarc",
    "policyd-spf",
    "rspamd",
    "spamd",
    "clamd",
    "postgrey",
    "sqlgrey",
    "pmg-smtp-filter",
    "saslauthd",
    "milter-greylist",
    "spamass-milter",
    "clamav-milter",
];

/// True for a program that shares the mail log with Postfix (see [`MAIL_NEIGHBOURS`]).
pub fn is_mail_neighbour(program: &str) -> bool {
    MAIL_NEIGHBOURS.iter().any(|n| program.eq_ignore_ascii_case(n))
}

/// True for the last element of a Postfix program tag (`smtpd`, `qmgr`…).
pub fn is_postfix_daemon(daemon: &str) -> bool {
    POSTFIX_DAEMONS.contains(&daemon)
}

/// A whole line, parsed: its envelope, its program and its event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParsedLine<'a> {
    #[serde(flatten)]
    pub line: SyslogLine<'a>,
    #[serde(skip)]
    pub program: Program<'a>,
    #[serde(flatten)]
    pub event: Event<'a>,
}

/// Parses a whole syslog line. `None` when the envelope itself is not recognisable; the caller
/// keeps such a line raw.
pub fn parse_line<'a>(text: &'a str, clock: &mut Clock) -> Option<ParsedLine<'a>> {
    let line = split_line(text, clock)?;
    Some(parse_fields(line))
}

/// Parses a line whose envelope rsyslog (or another caller) already split.
pub fn parse_fields(line: SyslogLine<'_>) -> ParsedLine<'_> {
    let program = Program::split(line.program);
    let event = parse_message(&program, line.message);
    ParsedLine { line, program, event }
}

/// Parses the message text of one line from the given program.
pub fn parse_message<'a>(program: &Program<'a>, message: &'a str) -> Event<'a> {
    if !program.is_postfix() {
        return foreign::parse(program, message).unwrap_or_else(Event::unknown);
    }
    let (queue_id, text) = fields::split_queue_id(message);
    let kind = match program.daemon {
        "smtpd" | "qmqpd" => smtpd::parse(queue_id, text),
        "postscreen" => postscreen::parse(text),
        "dnsblog" => postscreen::parse_dnsblog(text),
        "cleanup" => cleanup::parse(queue_id, text),
        "qmgr" | "oqmgr" => qmgr::parse(queue_id, text),
        "smtp" | "lmtp" | "local" | "virtual" | "pipe" | "error" | "discard" | "retry" => {
            delivery::parse(queue_id, text)
        }
        "bounce" | "pickup" | "postsuper" | "sendmail" | "postdrop" => notify::parse(program.daemon, queue_id, text),
        _ => service::parse(program.daemon, queue_id, text),
    };
    match kind.map(|kind| (None, kind)).or_else(|| diagnostic::parse(text)) {
        Some((named_queue_id, kind)) => Event::new(queue_id.or(named_queue_id), kind),
        None => Event::new(queue_id, EventKind::Unknown),
    }
}
