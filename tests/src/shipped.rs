//! The shipped rsyslog stanzas running on this machine: an ELSE server as its package sets it up
//! (else-server.conf and else-server-compressed.conf, omelse into a test database) and a Postfix
//! host's rsyslogd with one of the Postfix-host stanzas.

use std::path::Path;

use crate::rsyslogd::{free_port, shipped_stanza, Rsyslogd};

/// An ELSE server's rsyslogd: RELP/TLS on `relp_port`, the compressed stream on
/// `compressed_port`, both into omelse.
pub struct ElseServer {
    pub daemon: Rsyslogd,
    pub relp_port: u16,
    pub compressed_port: u16,
}

impl ElseServer {
    /// Starts it in `dir` with `identity`'s certificate (see
    /// [`crate::rsyslogd::relp_certificates`]), writing into `url`.
    pub fn start(dir: &Path, certs: &Path, identity: &str, url: &str) -> ElseServer {
        ElseServer::start_changed(dir, certs, identity, url, |text| text)
    }

    /// [`ElseServer::start`] with the stanzas' text changed by `change` first.
    pub fn start_changed(
        dir: &Path,
        certs: &Path,
        identity: &str,
        url: &str,
        change: impl Fn(String) -> String,
    ) -> ElseServer {
        let (relp_port, compressed_port) = (free_port(), free_port());
        let config = change(format!(
            "{}\n{}",
            shipped_stanza("else-server-compressed.conf", certs, identity, compressed_port, url),
            shipped_stanza("else-server.conf", certs, identity, relp_port, url)
        ));
        ElseServer {
            daemon: Rsyslogd::start(dir, &config),
            relp_port,
            compressed_port,
        }
    }
}

/// A Postfix host's rsyslogd running `stanza`; Postfix's lines come in over TCP on `input_port`
/// (a stand-in for the syslog socket).
pub struct PostfixHost {
    pub daemon: Rsyslogd,
    pub input_port: u16,
}

impl PostfixHost {
    pub fn start(dir: &Path, stanza: &str) -> PostfixHost {
        let input_port = free_port();
        let config = format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{input_port}\")\n{stanza}");
        PostfixHost {
            daemon: Rsyslogd::start(dir, &config),
            input_port,
        }
    }
}
