//! `omelse-ext`: omelse behind rsyslog's omprog external-plugin protocol, for rsyslog builds whose
//! native module ABI differs from the one `omelse.so` speaks. Second choice: one more process and a
//! pipe per worker, but the same parser, correlator and writer.
//!
//! ```text
//! template(name="OmElseFormat" type="string"
//!          string="%uuid%@%inputname% %timereported:::date-rfc3339% %hostname% %fromhost% %fromhost-ip% %syslogtag%%msg%\n")
//! action(type="omprog" binary="/usr/bin/omelse-ext conninfo=host=/run/postgresql,dbname=else"
//!        template="OmElseFormat" confirmMessages="on" useTransactions="on"
//!        action.resumeRetryCount="-1" queue.type="Disk" queue.filename="omelse-ext" queue.size="10000000")
//! ```
//!
//! Arguments are the action parameters of `omelse.so` as `name=value` (commas in `conninfo` stand
//! for spaces, since omprog splits its command line on spaces). Protocol: `OK` once ready; every
//! line of a transaction is answered `DEFER_COMMIT`; `COMMIT TRANSACTION` is answered `OK` once the
//! lines are in PostgreSQL, or with the reason, which makes rsyslog send the transaction again.

use std::io::{BufRead, Write};

use omelse::rsyslog::{ActionConfig, Outcome, ParamValue, Severity, Sink, PARAMS};

const BEGIN: &str = "BEGIN TRANSACTION";
const COMMIT: &str = "COMMIT TRANSACTION";

fn main() {
    let config = match config_from_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("usage: omelse-ext conninfo=... [server.role=...] [hostname.source=...] [programs=mail|all]");
            std::process::exit(2);
        }
    };
    let sink = Sink::new(config, log_to_stderr);
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut pending: Vec<String> = Vec::new();
    let reply = |stdout: &mut std::io::StdoutLock, text: &str| {
        // rsyslog restarts the plugin when it cannot read an answer: nothing more to do then.
        if writeln!(stdout, "{text}").and_then(|_| stdout.flush()).is_err() {
            std::process::exit(0);
        }
    };
    reply(&mut stdout, "OK");
    for line in stdin.split(b'\n') {
        let Ok(bytes) = line else { break };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        match text.as_str() {
            BEGIN => {
                // rsyslog 8.2302 may start a new transaction without committing the last one
                // (its issue #2420): what was confirmed DEFER_COMMIT must not be lost.
                if !pending.is_empty() {
                    let _ = sink.commit(None, std::mem::take(&mut pending));
                }
                reply(&mut stdout, "OK");
            }
            COMMIT => match sink.commit(None, std::mem::take(&mut pending)) {
                Outcome::Committed => reply(&mut stdout, "OK"),
                Outcome::Suspended(reason) => reply(&mut stdout, &format!("Error: {}", reason.replace('\n', " "))),
            },
            _ => {
                if sink.admit(text.as_bytes()) {
                    pending.push(text);
                }
                reply(&mut stdout, "DEFER_COMMIT");
            }
        }
    }
    if !pending.is_empty() {
        let _ = sink.commit(None, pending);
    }
}

fn config_from_args(args: impl Iterator<Item = String>) -> Result<ActionConfig, String> {
    let mut given = Vec::new();
    for arg in args {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("omelse-ext: argument '{arg}' is not name=value"))?;
        let spec = PARAMS
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("omelse-ext: parameter '{name}' not known"))?;
        let value = match value.parse::<i64>() {
            Ok(n) if spec.name != "conninfo" && spec.name != "pwd" => ParamValue::Number(n),
            _ if matches!(value, "on" | "off") && spec.name == "migrate" => {
                ParamValue::Number(i64::from(value == "on"))
            }
            _ => ParamValue::Text(if spec.name == "conninfo" {
                value.replace(',', " ")
            } else {
                value.to_owned()
            }),
        };
        given.push((spec.name, value));
    }
    ActionConfig::from_params(&given).map_err(|e| e.to_string())
}

fn log_to_stderr(severity: Severity, text: &str) {
    eprintln!("{severity:?}: {text}");
}
