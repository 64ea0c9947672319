//! The shipped rsyslog stanzas running on this machine: an ELSE server as its package sets it up
//! (else-server.conf and else-server-compressed.conf, omelse into a test database) and a Postfix
//! host's rsyslogd with one of the Postfix-host stanzas; the server's stanza over plain TCP, for a
//! relay's stream of many servers.

use std::path::Path;

use crate::rsyslogd::{free_port, shipped_stanza, shipped_stanza_loading, Rsyslogd};

/// An ELSE server's rsyslogd: RELP/TLS on `relp_port`, the compressed stream on
/// `compressed_port`, both into omelse, both the inputs of one Postfix host (`mx1`'s certificate).
pub struct ElseServer {
    pub daemon: Rsyslogd,
    pub relp_port: u16,
    pub compressed_port: u16,
}

impl ElseServer {
    /// Starts it in `dir` with `identity`'s certificate (see
    /// [`crate::rsyslogd::relp_certificates`]), writing into `url`; its inputs are bound to
    /// `server_name`, the name the host's lines carry (install.md, "Host identity").
    pub fn start(dir: &Path, certs: &Path, identity: &str, url: &str, server_name: &str) -> ElseServer {
        ElseServer::start_changed(dir, certs, identity, url, server_name, |text| text)
    }

    /// [`ElseServer::start`] with the stanzas' text changed by `change` first.
    pub fn start_changed(
        dir: &Path,
        certs: &Path,
        identity: &str,
        url: &str,
        server_name: &str,
        change: impl Fn(String) -> String,
    ) -> ElseServer {
        let (relp_port, compressed_port) = (free_port(), free_port());
        let config = change(format!(
            "{}\n{}",
            shipped_stanza("else-server-compressed.conf", certs, identity, compressed_port, url),
            shipped_stanza("else-server.conf", certs, identity, relp_port, url)
        ))
        .replace("name=\"else-host:mx1\"", &format!("name=\"else-host:{server_name}\""));
        ElseServer {
            daemon: Rsyslogd::start(dir, &config),
            relp_port,
            compressed_port,
        }
    }
}

/// The shipped else-server.conf loading `module` and writing into `url`, with plain TCP in instead
/// of RELP with TLS, on the port `{port}` stands for: a relay of many servers
/// (`host.binding="relay"`), its ruleset and action queues as shipped.
pub fn else_server_over_tcp(module: &Path, url: &str) -> String {
    let stanza = shipped_stanza_loading(module, "else-server.conf", Path::new("/nonexistent"), "server", 0, url);
    let start = stanza.find("input(type=\"imrelp\"").expect("the stanza's imrelp input");
    let end = start + stanza[start..].find("])").expect("the end of the imrelp input") + 2;
    format!(
        "{}input(type=\"imtcp\" port=\"{{port}}\" ruleset=\"else\"){}",
        &stanza[..start],
        &stanza[end..]
    )
    .replace("module(load=\"imrelp\")", "module(load=\"imtcp\")")
    .replace("# host.binding=\"relay\"", "host.binding=\"relay\"")
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
