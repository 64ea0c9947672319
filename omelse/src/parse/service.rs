//! Postfix's service daemons: master, anvil, scache, tlsproxy, verify and the rest.

use super::event::EventKind;

pub(super) fn parse<'a>(
    _daemon: &str,
    _queue_id: Option<&'a str>,
    _text: &'a str,
) -> Option<EventKind<'a>> {
    None
}
