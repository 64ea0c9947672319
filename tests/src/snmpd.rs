//! A real snmpd for tests: Debian's snmpd started privately with the shipped snippet
//! (packaging/postfix-host/snmpd.conf.d/else.conf, its address templated) running else-pfagent
//! against a [`PrivatePostfix`], with two SNMPv3 users ([`RO`], [`CTL`]); killed on drop.
//! Used by elsed's SNMP acceptance tests and by the three-server deployment.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::postfix::PrivatePostfix;

pub const SNMPD: &str = "/usr/sbin/snmpd";
/// The poll user: (name, auth passphrase, privacy passphrase); SHA and AES, as the snippet says.
pub const RO: (&str, &str, &str) = ("else-ro", "ro-auth-passphrase", "ro-priv-passphrase");
/// The control user, same form.
pub const CTL: (&str, &str, &str) = ("else-ctl", "ctl-auth-passphrase", "ctl-priv-passphrase");

/// True when snmpd is installed, else false after [`crate::require`]'s notice (a failure in CI).
pub fn available() -> bool {
    crate::require::tool(SNMPD, "snmpd").is_some()
}

/// A free UDP port on `ip`.
pub fn free_udp_port(ip: &str) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .expect("bind a UDP port")
        .local_addr()
        .expect("local address")
        .port()
}

/// else-pfagent's environment: the private Postfix, its syslog socket in `dir` (nobody reads it:
/// the machine's log stays clean), and a command prefix instead of `sudo -n` when given.
pub fn agent_env(dir: &Path, postfix: &PrivatePostfix, prefix: Option<&Path>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (
            "ELSE_PFAGENT_POSTFIX_CONFIG",
            postfix.dir.join("etc").display().to_string(),
        ),
        ("ELSE_PFAGENT_SYSLOG_SOCKET", dir.join("syslog").display().to_string()),
    ];
    if let Some(prefix) = prefix {
        env.push(("ELSE_PFAGENT_COMMAND_PREFIX", prefix.display().to_string()));
    }
    env
}

/// A private snmpd: the shipped snippet with this address and port, its users, its own
/// persistent directory (nothing written to /var/lib/snmp).
pub struct Snmpd {
    child: Child,
    pub dir: PathBuf,
    pub ip: &'static str,
    pub port: u16,
}

impl Snmpd {
    /// Starts snmpd in a fresh directory `<tmp>/<name>-<pid>`, listening on `ip` (a free port).
    /// `agent`: the else-pfagent binary; `pass_persist`: another program for the snippet's
    /// pass_persist line; `env`: else-pfagent's environment ([`agent_env`]); `extra`:
    /// configuration lines added to the snippet's.
    pub fn start(
        name: &str,
        ip: &'static str,
        agent: &Path,
        pass_persist: Option<&Path>,
        env: &[(&str, String)],
        extra: &str,
    ) -> Snmpd {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("persist")).expect("snmpd directory");
        let port = free_udp_port(ip);
        let snippet = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/postfix-host/snmpd.conf.d/else.conf"),
        )
        .expect("the shipped snmpd snippet");
        let mut conf = snippet.replace("udp:192.0.2.10:161", &format!("udp:{ip}:{port}"));
        if let Some(program) = pass_persist {
            conf = conf.replace("/usr/bin/else-pfagent pass-persist", &program.display().to_string());
        }
        conf = conf.replace("/usr/bin/else-pfagent", &agent.display().to_string());
        assert!(conf.contains(&format!("udp:{ip}:{port}")) && conf.contains("pass_persist"));
        conf.push_str(extra);
        for (user, auth, privacy) in [RO, CTL] {
            conf.push_str(&format!("createUser {user} SHA \"{auth}\" AES \"{privacy}\"\n"));
        }
        std::fs::write(dir.join("snmpd.conf"), conf).expect("snmpd.conf");
        let log = std::fs::File::create(dir.join("log")).expect("snmpd log");
        let child = Command::new(SNMPD)
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(dir.join("snmpd.conf"))
            .arg("-p")
            .arg(dir.join("pid"))
            .env("SNMP_PERSISTENT_DIR", dir.join("persist"))
            .env("MIBS", "")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("snmpd log"))
            .stderr(log)
            .spawn()
            .expect("start snmpd");
        let snmpd = Snmpd { child, dir, ip, port };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !snmpd.log().contains("NET-SNMP version") {
            assert!(Instant::now() < deadline, "snmpd did not start:\n{}", snmpd.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        snmpd
    }

    /// What snmpd (and else-pfagent on its standard error) wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
