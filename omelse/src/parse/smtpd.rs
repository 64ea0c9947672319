//! smtpd (and qmqpd): sessions, `client=`, NOQUEUE decisions, proxy filters, TLS and SASL.

use super::event::EventKind;

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, _text: &'a str) -> Option<EventKind<'a>> {
    None
}
