//! The shipped rsyslog stanzas running on this machine: an ELSE server as its package sets it up
//! (else-server.conf, else-server-compressed.conf and else-ssh-tunnel.conf, omelse into a test
//! database) and a Postfix
//! host's rsyslogd with one of the Postfix-host stanzas; the server's stanza over plain TCP, for a
//! relay's stream of many servers.

use std::fmt;
use std::path::Path;

use crate::rsyslogd::{free_port, shipped_stanza, shipped_stanza_loading, stanza_text, Rsyslogd};

/// An ELSE server's rsyslogd: RELP/TLS on `relp_port`, the compressed stream on
/// `compressed_port`, plain RELP at the end of an SSH tunnel on `tunnel_port` (loopback), all
/// into omelse, all the inputs of one Postfix host (`mx1`'s certificate).
pub struct ElseServer {
    pub daemon: Rsyslogd,
    pub relp_port: u16,
    pub compressed_port: u16,
    pub tunnel_port: u16,
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
        let (relp_port, compressed_port, tunnel_port) = (free_port(), free_port(), free_port());
        // In the order of their names in /etc/rsyslog.d/: else-ssh-tunnel.conf uses the imrelp
        // that else-server.conf loads.
        let tunnel = stanza_text("else-ssh-tunnel.conf").replace("port=\"2524\"", &format!("port=\"{tunnel_port}\""));
        let config = change(format!(
            "{}\n{}\n{tunnel}",
            shipped_stanza("else-server-compressed.conf", certs, identity, compressed_port, url),
            shipped_stanza("else-server.conf", certs, identity, relp_port, url)
        ))
        .replace("name=\"else-host:mx1\"", &format!("name=\"else-host:{server_name}\""));
        ElseServer {
            daemon: Rsyslogd::start(dir, &config),
            relp_port,
            compressed_port,
            tunnel_port,
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

/// Queue parameters (`queue.*`, and `action.*` for an action) in the order a stanza gives them,
/// rendered as rsyslog parameters (`name="value"`, space separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueParams(Vec<(String, String)>);

impl QueueParams {
    /// The queue and retry parameters of the omelse action of the shipped else-server.conf: what a
    /// test or benchmark that means "as shipped" runs with, read from the file so that they
    /// cannot drift apart.
    pub fn shipped_action() -> QueueParams {
        let text = stanza_text("else-server.conf");
        QueueParams::of(block(&text, "action(type=\"omelse\""), &["queue.", "action."])
    }

    /// The queue parameters of the shipped else-server.conf's ruleset.
    pub fn shipped_ruleset() -> QueueParams {
        let text = stanza_text("else-server.conf");
        QueueParams::of(block(&text, "ruleset(name=\"else\""), &["queue."])
    }

    /// The parameters of `block` whose names start with one of `prefixes`.
    fn of(block: &str, prefixes: &[&str]) -> QueueParams {
        let mut params = Vec::new();
        for line in block.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            let mut rest = line;
            while let Some(eq) = rest.find("=\"") {
                let name = rest[..eq].rsplit([' ', '(']).next().unwrap_or_default();
                let value_start = eq + 2;
                let value_end = value_start + rest[value_start..].find('"').expect("a closing quote");
                if prefixes.iter().any(|p| name.starts_with(p)) {
                    params.push((name.to_owned(), rest[value_start..value_end].to_owned()));
                }
                rest = &rest[value_end + 1..];
            }
        }
        assert!(!params.is_empty(), "no queue parameters in:\n{block}");
        QueueParams(params)
    }

    /// The value of a parameter, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// With `name` set to `value`: replaced where it is, or added at the end.
    pub fn set(mut self, name: &str, value: &str) -> QueueParams {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(param) => param.1 = value.to_owned(),
            None => self.0.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Without `name`.
    pub fn without(mut self, name: &str) -> QueueParams {
        self.0.retain(|(n, _)| n != name);
        self
    }
}

impl fmt::Display for QueueParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}=\"{value}\"")?;
        }
        Ok(())
    }
}

/// The text of the object that begins with `opening` in `text`, to its closing parenthesis (the
/// first `)` outside quotes and comments).
fn block<'a>(text: &'a str, opening: &str) -> &'a str {
    let start = text
        .find(opening)
        .unwrap_or_else(|| panic!("{opening} in the shipped stanza"));
    let (mut quoted, mut comment) = (false, false);
    for (i, c) in text[start..].char_indices() {
        match c {
            '\n' => comment = false,
            _ if comment => {}
            '"' => quoted = !quoted,
            '#' if !quoted => comment = true,
            ')' if !quoted => return &text[start..=start + i],
            _ => {}
        }
    }
    panic!("{opening} is not closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_queues_are_read_from_the_stanza() {
        let action = QueueParams::shipped_action();
        assert_eq!(action.get("queue.type"), Some("Direct"));
        assert_eq!(action.get("action.resumeRetryCount"), Some("-1"));
        assert_eq!(action.get("conninfo"), None, "only queue and action parameters");
        let ruleset = QueueParams::shipped_ruleset();
        assert_eq!(ruleset.get("queue.workerThreads"), Some("1"));
        assert_eq!(ruleset.get("queue.dequeueBatchSize"), Some("10000"));
        assert_eq!(ruleset.get("name"), None);
        let changed = ruleset.set("queue.dequeueBatchSize", "64").without("queue.type");
        assert!(changed.to_string().contains("queue.dequeueBatchSize=\"64\""));
        assert!(!changed.to_string().contains("queue.type"));
    }
}
