//! `else-pfagent`: what snmpd runs on a Postfix host for ELSE.
//!
//! ```text
//! else-pfagent [OPTIONS] extend         queue statistics, one value a line (snmpd `extend`)
//! else-pfagent [OPTIONS] pass-persist   snmpd's pass_persist protocol on stdin/stdout: the
//!                                       statistics and the control objects of ELSE's subtree
//! Options (or environment):
//!   --command-prefix "sudo -n"    ELSE_PFAGENT_COMMAND_PREFIX  what runs postqueue -f / postsuper
//!                                                              ("" to run them directly, as root)
//!   --postfix-config DIR          ELSE_PFAGENT_POSTFIX_CONFIG  a non-default Postfix instance (-c DIR)
//!   --cache-secs N                ELSE_PFAGENT_CACHE_SECS      how long statistics are reused (5)
//!   --syslog-socket PATH          ELSE_PFAGENT_SYSLOG_SOCKET   where each action is logged (/dev/log)
//! ```
//!
//! `extend` prints, in this order: for each queue (incoming, active, deferred, hold) its message
//! count, bytes and oldest age in seconds, then 1 or 0 for the master process. The objects of
//! `pass-persist` are listed in this crate's library (`mib.rs`), which elsed uses too.
//!
//! Neither mode ever runs a command from what it reads: `postqueue -j` for statistics, and for a
//! SET only a fixed argument list whose one variable part is a queue id checked against Postfix's
//! queue-id alphabet. Commands run without a shell, through `sudo -n` by default so that the
//! sudoers rules (packaging/postfix-host/sudoers.d/else-pfagent) pin their exact arguments.

#![deny(unsafe_code)]

mod persist;
mod queue;
mod run;
mod syslog;

use std::process::ExitCode;
use std::time::Duration;

use else_pfagent::mib;

const USAGE: &str =
    "usage: else-pfagent [--command-prefix PREFIX] [--postfix-config DIR] [--cache-secs N] extend|pass-persist";

fn main() -> ExitCode {
    match parse(std::env::args().skip(1).collect()) {
        Ok((options, Mode::Extend)) => {
            let stats = queue::Stats::read(&options.postfix);
            print!("{}", stats.extend_lines());
            if stats.error.is_some() {
                // snmpd shows the exit code as nsExtendResult.
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Ok((options, Mode::PassPersist)) => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            match persist::Agent::new(options).serve(stdin, stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("else-pfagent: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(message) => {
            eprintln!("else-pfagent: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Extend,
    PassPersist,
}

/// How to reach Postfix and how long statistics stay fresh.
#[derive(Debug, Clone)]
pub struct Options {
    pub postfix: run::Postfix,
    pub cache: Duration,
    /// The local syslog socket: every action run is logged on the host too.
    pub syslog: std::path::PathBuf,
}

/// The command line, with the environment as fallback for each option.
fn parse(args: Vec<String>) -> Result<(Options, Mode), String> {
    let env = |name: &str| std::env::var(name).ok();
    let mut prefix = env("ELSE_PFAGENT_COMMAND_PREFIX").unwrap_or_else(|| "sudo -n".into());
    let mut config = env("ELSE_PFAGENT_POSTFIX_CONFIG").filter(|d| !d.is_empty());
    let mut cache = env("ELSE_PFAGENT_CACHE_SECS").unwrap_or_else(|| "5".into());
    let mut syslog = env("ELSE_PFAGENT_SYSLOG_SOCKET").unwrap_or_else(|| "/dev/log".into());
    let mut mode = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--command-prefix" => prefix = value("--command-prefix")?,
            "--postfix-config" => config = Some(value("--postfix-config")?),
            "--cache-secs" => cache = value("--cache-secs")?,
            "--syslog-socket" => syslog = value("--syslog-socket")?,
            "extend" if mode.is_none() => mode = Some(Mode::Extend),
            "pass-persist" if mode.is_none() => mode = Some(Mode::PassPersist),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let cache: u64 = cache
        .parse()
        .map_err(|_| format!("--cache-secs: {cache:?} is not a number of seconds"))?;
    let mode = mode.ok_or("no mode given")?;
    let postfix = run::Postfix::new(&prefix, config.map(Into::into))?;
    Ok((
        Options {
            postfix,
            cache: Duration::from_secs(cache),
            syslog: syslog.into(),
        },
        mode,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_command_line_is_checked() {
        let (options, mode) = parse(args(&["--command-prefix", "", "--cache-secs", "0", "pass-persist"])).unwrap();
        assert_eq!(mode, Mode::PassPersist);
        assert!(options.postfix.prefix.is_empty());
        assert_eq!(options.cache, Duration::ZERO);
        for bad in [
            &[][..],
            &["serve"],
            &["extend", "extend"],
            &["--cache-secs", "x", "extend"],
            &["--postfix-config"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
        }
    }
}
