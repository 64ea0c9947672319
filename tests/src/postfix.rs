//! A private Postfix instance for tests: its own configuration, queue and log directories under
//! the temporary directory, listening on loopback only, started with `postfix -c DIR start` and
//! aborted and removed on drop. Needs root and Debian's `postfix` (make test installs it).

use std::path::PathBuf;
use std::process::Command;

pub const POSTFIX: &str = "/usr/sbin/postfix";

/// The daemons every instance runs; a test adds its listeners and may leave some out (to define
/// them its own way, as the NDR variant does for `bounce` and `defer`).
const SERVICES: &[&str] = &[
    "pickup    unix  n       -       n       60      1       pickup",
    "cleanup   unix  n       -       n       -       0       cleanup",
    "qmgr      unix  n       -       n       300     1       qmgr",
    "rewrite   unix  -       -       n       -       -       trivial-rewrite",
    "bounce    unix  -       -       n       -       0       bounce",
    "defer     unix  -       -       n       -       0       bounce",
    "trace     unix  -       -       n       -       0       bounce",
    "verify    unix  -       -       n       -       1       verify",
    "flush     unix  n       -       n       1000?   0       flush",
    "proxymap  unix  -       -       n       -       -       proxymap",
    "showq     unix  n       -       n       -       -       showq",
    "error     unix  -       -       n       -       -       error",
    "retry     unix  -       -       n       -       -       error",
    "discard   unix  -       -       n       -       -       discard",
    "smtp      unix  -       -       n       -       -       smtp",
    "relay     unix  -       -       n       -       -       smtp",
    "lmtp      unix  -       -       n       -       -       lmtp",
    "anvil     unix  -       -       n       -       1       anvil",
    "scache    unix  -       -       n       -       1       scache",
    "tlsmgr    unix  -       -       n       1000?   1       tlsmgr",
    "postlog   unix-dgram n  -       n       -       1       postlogd",
];

/// True when this machine can run a private Postfix (root, and the package installed), else
/// false after [`crate::require`]'s notice (a failure in CI).
pub fn available() -> bool {
    crate::require::root("a private Postfix") && crate::require::tool(POSTFIX, "postfix").is_some()
}

/// A private Postfix; see the module documentation.
pub struct PrivatePostfix {
    pub dir: PathBuf,
    /// `maillog_file`: `dir/maillog` unless [`Self::log_to`] named another file.
    maillog: PathBuf,
}

impl PrivatePostfix {
    /// Makes the instance's directories (`etc`, `spool`, `data`) under a fresh `name` directory;
    /// nothing runs yet, so that a test can place files in `dir` before [`Self::start`].
    pub fn prepare(name: &str) -> PrivatePostfix {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["etc", "spool", "data"] {
            std::fs::create_dir_all(dir.join(sub)).expect("postfix directories");
        }
        PrivatePostfix {
            maillog: dir.join("maillog"),
            dir,
        }
    }

    /// Logs to `file` instead of `dir/maillog`: several instances may share one file (each
    /// record is one append), which then has their lines in the order they were logged.
    pub fn log_to(mut self, file: &std::path::Path) -> PrivatePostfix {
        self.maillog = file.to_owned();
        self
    }

    /// Writes main.cf (a loopback-only base plus `main`) and master.cf (`listeners`, then the
    /// standard services but those named in `omit`), and starts the instance.
    pub fn start(self, main: &str, listeners: &str, omit: &[&str]) -> PrivatePostfix {
        let d = self.dir.display();
        let base = format!(
            "compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
maillog_file = {maillog}
maillog_file_prefixes = {d}, {maillog_dir}
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
alias_maps =
alias_database =
biff = no
",
            maillog = self.maillog.display(),
            maillog_dir = self.maillog.parent().unwrap_or(&self.dir).display(),
        );
        std::fs::write(self.dir.join("etc/main.cf"), format!("{base}{main}")).expect("main.cf");
        let services: Vec<&str> = SERVICES
            .iter()
            .filter(|line| !omit.iter().any(|name| line.split_whitespace().next() == Some(*name)))
            .copied()
            .collect();
        std::fs::write(
            self.dir.join("etc/master.cf"),
            format!("{listeners}{}\n", services.join("\n")),
        )
        .expect("master.cf");
        // The master's lock file lives in data_directory, which postfix must own.
        let chown = Command::new("chown")
            .arg("postfix:")
            .arg(self.dir.join("data"))
            .status()
            .expect("chown");
        assert!(chown.success());
        self.run(&["start"]);
        self
    }

    /// Runs `postfix -c DIR/etc ARGS…`; returns what it printed, fails the test if it failed.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .args(args)
            .output()
            .expect("postfix");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "postfix {args:?}: {text}");
        text
    }

    /// The instance's log (`maillog_file`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Runs `postsuper -c DIR/etc ARGS…` (`-h QID` puts a message on hold); fails the test if it
    /// failed.
    pub fn postsuper(&self, args: &[&str]) {
        let out = Command::new("/usr/sbin/postsuper")
            .arg("-c")
            .arg(self.dir.join("etc"))
            .args(args)
            .output()
            .expect("postsuper");
        assert!(
            out.status.success(),
            "postsuper {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A queued message as `postcat -q` shows it.
    pub fn postcat(&self, queue_id: &str) -> String {
        let out = Command::new("/usr/sbin/postcat")
            .arg("-c")
            .arg(self.dir.join("etc"))
            .args(["-q", queue_id])
            .output()
            .expect("postcat");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PrivatePostfix {
    fn drop(&mut self) {
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.dir.join("etc"))
            .arg("abort")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
