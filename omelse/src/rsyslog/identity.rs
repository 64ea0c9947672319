//! Host identity: which server names a line may carry, from the rsyslog input it came in by.
//!
//! The server name of a line comes from its syslog header, which the sender writes: any Postfix
//! host allowed to send could log under another server's name. rsyslog does not hand an output
//! module the TLS peer's certificate name (rsyslog issues #436, #3567), but it does hand over the
//! name of the input a line came in by (`%inputname%`). So the ELSE server listens with one input
//! per Postfix host, each admitting only that host's certificate (`tls.permittedPeer`) and named
//! after the server names that host may use: `name="else-host:mx1"` (a relay carrying several
//! hosts' lines: `else-host:mx1,mx2`). A line whose name is not one of its input's is refused.
//!
//! Lines of an input not named so: refused by default (`host.binding="input"`), accepted with
//! `host.binding="relay"`, for an intermediate rsyslog whose own input cannot tell its senders
//! apart.

use std::collections::HashSet;
use std::sync::Mutex;

use super::config::HostBinding;

/// The prefix of the input names that bind an input to server names.
pub const BOUND_INPUT_PREFIX: &str = "else-host:";

/// How many distinct (input, name) refusals are logged one by one; the counter counts them all.
const LOGGED_REFUSALS: usize = 1000;

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Its input is bound to other names.
    NotBound,
    /// Its input binds no name, and the binding is required.
    UnboundInput,
}

/// Whether a line that came by `input` may carry the server name `host`.
pub fn check(binding: HostBinding, input: &str, host: &str) -> Result<(), Refusal> {
    match input.strip_prefix(BOUND_INPUT_PREFIX) {
        Some(names) => {
            if names.split(',').any(|name| name.trim().eq_ignore_ascii_case(host)) {
                Ok(())
            } else {
                Err(Refusal::NotBound)
            }
        }
        None if binding == HostBinding::Relay => Ok(()),
        None => Err(Refusal::UnboundInput),
    }
}

/// Says each new kind of refusal once in rsyslog's log (a refused host sends many lines).
#[derive(Default)]
pub struct RefusalLog {
    said: Mutex<HashSet<(String, String)>>,
}

impl RefusalLog {
    /// The text to log for this refusal, or `None` when it was said already.
    pub fn first_time(&self, refusal: &Refusal, input: &str, host: &str) -> Option<String> {
        let mut said = self.said.lock().unwrap_or_else(|e| e.into_inner());
        if said.len() >= LOGGED_REFUSALS || !said.insert((input.to_owned(), host.to_owned())) {
            return None;
        }
        Some(match refusal {
            Refusal::NotBound => format!(
                "omelse: refused lines of server '{host}' from input '{input}', which is bound to other \
                 names (host identity; further refusals are counted as refused_host)"
            ),
            Refusal::UnboundInput => format!(
                "omelse: refused lines of server '{host}' from input '{input}', which binds no server name: \
                 name it {BOUND_INPUT_PREFIX}<server names>, or set host.binding=\"relay\" (refusals are \
                 counted as refused_host)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_input_admits_its_names_only() {
        for binding in [HostBinding::Input, HostBinding::Relay] {
            assert_eq!(check(binding, "else-host:mx1", "mx1"), Ok(()));
            assert_eq!(check(binding, "else-host:mx1", "MX1"), Ok(()));
            assert_eq!(check(binding, "else-host:mx1,mx2", "mx2"), Ok(()));
            assert_eq!(check(binding, "else-host:mx1", "mx2"), Err(Refusal::NotBound));
            assert_eq!(check(binding, "else-host:mx1", "mx1x"), Err(Refusal::NotBound));
            assert_eq!(check(binding, "else-host:", "mx1"), Err(Refusal::NotBound));
        }
    }

    #[test]
    fn an_unbound_input_is_refused_unless_relaying() {
        assert_eq!(check(HostBinding::Input, "imrelp", "mx1"), Err(Refusal::UnboundInput));
        assert_eq!(check(HostBinding::Input, "", "mx1"), Err(Refusal::UnboundInput));
        assert_eq!(check(HostBinding::Relay, "imrelp", "mx1"), Ok(()));
    }

    #[test]
    fn each_refusal_is_said_once() {
        let log = RefusalLog::default();
        assert!(log.first_time(&Refusal::NotBound, "else-host:mx1", "mx2").is_some());
        assert!(log.first_time(&Refusal::NotBound, "else-host:mx1", "mx2").is_none());
        assert!(log.first_time(&Refusal::NotBound, "else-host:mx1", "mx3").is_some());
    }
}
