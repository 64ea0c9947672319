//! Running Postfix's own tools: never through a shell, always with a fixed argument list. The
//! privileged ones (`postqueue -f`, `postsuper`) go through the command prefix (`sudo -n` by
//! default), reading the queue (`postqueue -j`, `postconf`) needs no privilege.

use std::path::PathBuf;
use std::process::Command;

use crate::mib::{valid_queue_id, ActionKind};

const POSTQUEUE: &str = "/usr/sbin/postqueue";
const POSTSUPER: &str = "/usr/sbin/postsuper";
const POSTCONF: &str = "/usr/sbin/postconf";

/// The longest text of an action kept for `lastActionText` (Postfix's answers are one or two lines).
const MAX_TEXT: usize = 1000;

/// One Postfix instance and how to reach it.
#[derive(Debug, Clone)]
pub struct Postfix {
    /// Words put before a privileged command (`["sudo", "-n"]`), none to run it directly.
    pub prefix: Vec<String>,
    /// `-c DIR` for a non-default instance.
    pub config_dir: Option<PathBuf>,
}

/// What an action did: run with success, or not, and what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub ok: bool,
    pub text: String,
}

impl Postfix {
    /// `prefix` is split on white space (no quoting: a prefix is a program and plain options).
    pub fn new(prefix: &str, config_dir: Option<PathBuf>) -> Result<Postfix, String> {
        if prefix.contains(['"', '\'', '\\', '$', '`', ';', '|', '&']) {
            return Err(format!(
                "command prefix {prefix:?}: words only, it is not given to a shell"
            ));
        }
        Ok(Postfix {
            prefix: prefix.split_whitespace().map(str::to_owned).collect(),
            config_dir,
        })
    }

    /// `program [-c DIR] args…`, directly.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        if let Some(dir) = &self.config_dir {
            command.arg("-c").arg(dir);
        }
        command.args(args);
        command
    }

    /// The same through the prefix (`sudo -n program [-c DIR] args…`).
    fn privileged(&self, program: &str, args: &[&str]) -> Command {
        let Some((first, rest)) = self.prefix.split_first() else {
            return self.command(program, args);
        };
        let mut command = Command::new(first);
        command.args(rest).arg(program);
        if let Some(dir) = &self.config_dir {
            command.arg("-c").arg(dir);
        }
        command.args(args);
        command
    }

    /// `postqueue -j`: one JSON object a queued message.
    pub fn queue_json(&self) -> Result<String, String> {
        output(self.command(POSTQUEUE, &["-j"]), "postqueue -j")
    }

    /// `postconf -h queue_directory`.
    pub fn queue_directory(&self) -> Result<PathBuf, String> {
        let text = output(self.command(POSTCONF, &["-h", "queue_directory"]), "postconf")?;
        Ok(PathBuf::from(text.trim()))
    }

    /// The command line of an action; `None` when the queue id is missing or not a queue id.
    pub fn action_args(kind: ActionKind, queue_id: Option<&str>) -> Option<(&'static str, Vec<String>)> {
        let one = |flag: &str| {
            let id = queue_id.filter(|id| valid_queue_id(id))?;
            Some((POSTSUPER, vec![flag.to_owned(), id.to_owned()]))
        };
        match kind {
            ActionKind::Flush => Some((POSTQUEUE, vec!["-f".into()])),
            ActionKind::DeleteDeferred => Some((POSTSUPER, vec!["-d".into(), "ALL".into(), "deferred".into()])),
            ActionKind::Hold => one("-h"),
            ActionKind::Release => one("-H"),
            ActionKind::Requeue => one("-r"),
            ActionKind::Delete => one("-d"),
        }
    }

    /// Runs an action (arguments as [`Self::action_args`] made them).
    pub fn act(&self, program: &str, args: &[String]) -> Outcome {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = format!("{} {}", program.rsplit('/').next().unwrap_or(program), args.join(" "));
        let mut text = match self.privileged(program, &args).output() {
            Ok(out) => {
                let printed = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let printed = printed.trim().replace('\n', "; ");
                let status = match out.status.code() {
                    Some(code) => format!("exit {code}"),
                    None => "killed by a signal".to_owned(),
                };
                let ok = out.status.success();
                let text = if printed.is_empty() {
                    format!("{what}: {status}")
                } else {
                    format!("{what}: {status}: {printed}")
                };
                return Outcome { ok, text: cut(text) };
            }
            Err(e) => format!("{what}: cannot run: {e}"),
        };
        text = cut(text);
        Outcome { ok: false, text }
    }
}

/// Runs a reading command and returns its standard output, or why it failed.
fn output(mut command: Command, what: &str) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{what}: cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{what}: output is not UTF-8"))
}

fn cut(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_have_fixed_arguments_and_checked_ids() {
        let args = |kind, id| Postfix::action_args(kind, id).map(|(p, a)| format!("{p} {}", a.join(" ")));
        assert_eq!(args(ActionKind::Flush, None).unwrap(), "/usr/sbin/postqueue -f");
        assert_eq!(
            args(ActionKind::DeleteDeferred, Some("ignored")).unwrap(),
            "/usr/sbin/postsuper -d ALL deferred"
        );
        assert_eq!(
            args(ActionKind::Hold, Some("4F1A23B0C5")).unwrap(),
            "/usr/sbin/postsuper -h 4F1A23B0C5"
        );
        assert_eq!(
            args(ActionKind::Release, Some("4F1A23B0C5")).unwrap(),
            "/usr/sbin/postsuper -H 4F1A23B0C5"
        );
        assert_eq!(
            args(ActionKind::Requeue, Some("4F1A23B0C5")).unwrap(),
            "/usr/sbin/postsuper -r 4F1A23B0C5"
        );
        assert_eq!(
            args(ActionKind::Delete, Some("4F1A23B0C5")).unwrap(),
            "/usr/sbin/postsuper -d 4F1A23B0C5"
        );
        assert_eq!(args(ActionKind::Delete, Some("ALL")), None);
        assert_eq!(args(ActionKind::Hold, None), None);
    }

    #[test]
    fn the_prefix_goes_first_and_is_never_a_shell_line() {
        let postfix = Postfix::new("sudo -n", Some("/etc/postfix-out".into())).unwrap();
        let command = postfix.privileged(POSTSUPER, &["-h", "ABCDEF"]);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(command.get_program(), "sudo");
        assert_eq!(args, ["-n", POSTSUPER, "-c", "/etc/postfix-out", "-h", "ABCDEF"]);
        assert!(Postfix::new("sudo -n; rm", None).is_err());
        assert!(Postfix::new("", None).unwrap().prefix.is_empty());
    }

    #[test]
    fn a_missing_program_is_a_failed_action_not_a_panic() {
        let postfix = Postfix::new("/nonexistent/sudo", None).unwrap();
        let outcome = postfix.act(POSTQUEUE, &["-f".into()]);
        assert!(!outcome.ok && outcome.text.contains("cannot run"), "{outcome:?}");
    }
}
