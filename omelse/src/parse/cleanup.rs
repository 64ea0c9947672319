//! cleanup: message-id, header/body checks, milter decisions.

use super::event::EventKind;

pub(super) fn parse<'a>(_queue_id: Option<&'a str>, _text: &'a str) -> Option<EventKind<'a>> {
    None
}
