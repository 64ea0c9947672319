//! Delivery agents (smtp, lmtp, local, virtual, pipe, error, discard, retry): attempts and
//! next-hop trouble.

use super::event::EventKind;

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, _text: &'a str) -> Option<EventKind<'a>> {
    None
}
