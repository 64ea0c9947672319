//! `warning:`, `error:`, `fatal:`, `panic:` lines of any Postfix daemon.

use super::event::EventKind;

pub(super) fn parse(_text: &str) -> Option<EventKind<'_>> {
    None
}
