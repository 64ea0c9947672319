//! qmgr: queue entry (`from=, size=, nrcpt=`), `removed`, expiry.

use super::event::EventKind;

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, _text: &'a str) -> Option<EventKind<'a>> {
    None
}
