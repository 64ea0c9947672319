//! Neighbours that share the mail log: amavis (linked), dovecot, opendkim, rspamd … (ignored on
//! purpose, not counted as unknown Postfix lines).

use super::event::{Event, Program};

pub(super) fn parse<'a>(_program: &Program<'a>, _message: &'a str) -> Option<Event<'a>> {
    None
}
