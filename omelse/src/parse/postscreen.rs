//! postscreen verdicts and dnsblog answers.

use super::event::EventKind;

pub(super) fn parse(_text: &str) -> Option<EventKind<'_>> {
    None
}

pub(super) fn parse_dnsblog(_text: &str) -> Option<EventKind<'_>> {
    None
}
