//! RELP through a compressing SSH tunnel, set up by running the four blocks of
//! docs/transport.md ("Setting up the tunnel") as written, as root, with this machine's paths: the
//! real tunnel account (`else-tunnel`, made by the documented `useradd` and removed at the end),
//! a private sshd reading the shipped `packaging/ssh/else-tunnel.conf` through Debian's own
//! `sshd_config`, and the shipped unit's `ExecStart` as `systemctl enable --now` would run it.
//!
//! A line of the docs the test does not know how to run fails the test: docs and test cannot
//! drift apart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::rsyslogd::{free_port, stanza_text, wait_until};
use crate::wire::CountingRelay;

/// The tunnel account the docs create on the ELSE server.
pub const ACCOUNT: &str = "else-tunnel";
/// The port of the docs' stanzas and commands: the first host's input on the ELSE server, and the
/// tunnel's end on the host.
const DOCUMENTED_PORT: &str = "2524";
const SSHD: &str = "/usr/sbin/sshd";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `sh` blocks of docs/transport.md's "Setting up the tunnel", in order.
pub fn documented_blocks() -> Vec<Vec<String>> {
    let doc = std::fs::read_to_string(repo().join("docs/transport.md")).expect("docs/transport.md");
    let start = doc.find("### Setting up the tunnel").expect("the docs' tunnel set-up");
    let section = &doc[start..];
    let section = &section[..section[4..].find("\n#").map_or(section.len(), |end| end + 4)];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("a closed block");
        blocks.push(
            body[..close]
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect(),
        );
        rest = &body[close + 3..];
    }
    assert_eq!(blocks.len(), 4, "four set-up blocks in docs/transport.md");
    blocks
}

/// A tunnel from a Postfix host's `local_port` to the ELSE server's tunnel input, as documented.
/// Dropping it stops ssh and sshd and removes the tunnel account.
pub struct SshTunnel {
    dir: PathBuf,
    /// The host's end: where postfix-host-ssh-tunnel.conf sends.
    pub local_port: u16,
    sshd_port: u16,
    /// Counts the bytes between ssh and sshd, when asked for.
    relay: Option<CountingRelay>,
    sshd: Option<Child>,
    ssh: Option<Child>,
    /// The unit's ExecStart, its variables expanded.
    command: Vec<String>,
}

impl SshTunnel {
    /// Runs the documented set-up in `dir` for a host whose input on the ELSE server is
    /// `input_port` (else-ssh-tunnel.conf's), with a relay counting the SSH bytes if `counted`,
    /// and starts the tunnel.
    pub fn set_up_as_documented(dir: &Path, input_port: u16, counted: bool) -> SshTunnel {
        assert!(remove_account(), "the tunnel account {ACCOUNT} of an earlier run stays");
        let sshd_port = free_port();
        let relay = counted.then(|| CountingRelay::start(sshd_port));
        let mut tunnel = SshTunnel {
            dir: dir.to_owned(),
            local_port: free_port(),
            sshd_port,
            relay,
            sshd: None,
            ssh: None,
            command: Vec::new(),
        };
        for sub in ["sshd_config.d", "rsyslog.d", "systemd", "etc-else"] {
            std::fs::create_dir_all(dir.join(sub)).expect("a directory of the set-up");
        }
        // What the packages install, disabled.
        for (shipped, installed) in [
            ("else-ssh-tunnel.conf", "else-ssh-tunnel.conf.disabled"),
            (
                "postfix-host-ssh-tunnel.conf",
                "else-postfix-host-ssh-tunnel.conf.disabled",
            ),
        ] {
            std::fs::write(dir.join("rsyslog.d").join(installed), stanza_text(shipped)).expect("a stanza");
        }
        let ssh_port = tunnel.ssh_port();
        let here = |path: &str| format!("{}/{path}", dir.display());
        let substitutions = [
            (
                "/usr/share/doc/else-server/examples/".to_owned(),
                format!("{}/packaging/", repo().display()),
            ),
            (
                "/usr/share/doc/else-postfix-agent/examples/".to_owned(),
                format!("{}/packaging/", repo().display()),
            ),
            ("/etc/ssh/sshd_config.d/".to_owned(), here("sshd_config.d/")),
            ("/etc/rsyslog.d/".to_owned(), here("rsyslog.d/")),
            ("/etc/systemd/system/".to_owned(), here("systemd/")),
            ("/etc/else/".to_owned(), here("etc-else/")),
            ("-p 22 else.example.org".to_owned(), format!("-p {ssh_port} 127.0.0.1")),
            (
                "ELSE_SERVER=else.example.org".to_owned(),
                "ELSE_SERVER=127.0.0.1".to_owned(),
            ),
            (
                format!("permitopen=\\\"127.0.0.1:{DOCUMENTED_PORT}\\\""),
                format!("permitopen=\\\"127.0.0.1:{input_port}\\\""),
            ),
            (
                format!("ELSE_TUNNEL_PORT={DOCUMENTED_PORT}"),
                format!("ELSE_TUNNEL_PORT={input_port}"),
            ),
            (
                "$(cat mx1.pub)".to_owned(),
                format!("$(cat {})", here("etc-else/tunnel/id_ed25519.pub")),
            ),
        ];
        for line in documented_blocks().concat() {
            let line = substitutions
                .iter()
                .fold(line, |line, (from, to)| line.replace(from.as_str(), to));
            match line.as_str() {
                "sshd -t && systemctl reload ssh" => tunnel.start_sshd(),
                "systemctl daemon-reload" => {}
                "systemctl enable --now else-log-tunnel" => {
                    tunnel.command = tunnel.unit_command();
                    tunnel.start_again();
                }
                // The caller starts both rsyslogds on the shipped stanzas; the copy the docs made
                // must be the shipped one.
                "rsyslogd -N1 && systemctl restart rsyslog" => {
                    let enabled = std::fs::read_dir(dir.join("rsyslog.d"))
                        .expect("rsyslog.d")
                        .filter_map(|entry| entry.ok().map(|e| e.path()))
                        .filter(|path| path.extension().is_some_and(|ext| ext == "conf"))
                        .count();
                    assert!(enabled > 0, "the docs enabled a stanza before restarting rsyslog");
                }
                _ => run_shell(&line),
            }
        }
        assert!(tunnel.ssh.is_some(), "the docs started the tunnel");
        tunnel
    }

    /// The port ssh connects to: the relay's, or sshd's.
    fn ssh_port(&self) -> u16 {
        self.relay.as_ref().map_or(self.sshd_port, CountingRelay::port)
    }

    /// `sshd -t && systemctl reload ssh`: a private sshd on Debian's sshd_config, including this
    /// set-up's sshd_config.d instead of /etc/ssh's, on its own port and host key.
    fn start_sshd(&mut self) {
        let dir = &self.dir;
        let host_key = dir.join("ssh_host_ed25519_key");
        if !host_key.exists() {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&host_key));
        }
        let debian = std::fs::read_to_string("/etc/ssh/sshd_config").expect("Debian's /etc/ssh/sshd_config");
        let include = "Include /etc/ssh/sshd_config.d/*.conf";
        assert!(debian.contains(include), "Debian's sshd_config includes sshd_config.d");
        let config = format!(
            "Port {}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}/sshd.pid\n{}",
            self.sshd_port,
            host_key.display(),
            dir.display(),
            debian.replace(include, &format!("Include {}/sshd_config.d/*.conf", dir.display()))
        );
        let config_file = dir.join("sshd_config");
        std::fs::write(&config_file, config).expect("sshd_config");
        // systemd's RuntimeDirectory for the real service: the privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        run(Command::new(SSHD).arg("-t").arg("-f").arg(&config_file));
        let sshd = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config_file)
            .arg("-E")
            .arg(dir.join("sshd.log"))
            // Its sessions outlive it: they must not hold the test's own output open.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        self.sshd = Some(sshd);
        assert!(
            wait_until(Duration::from_secs(10), || listening(self.sshd_port)),
            "sshd listens: {}",
            self.log()
        );
    }

    /// The shipped unit's ExecStart (as the docs copied it), its `${VAR}`s from its
    /// Environment= and EnvironmentFile=, with two for this machine: the tunnel's end on the
    /// host (the ELSE server's input is on the same loopback here) and sshd's port.
    fn unit_command(&self) -> Vec<String> {
        let unit = std::fs::read_to_string(self.dir.join("systemd/else-log-tunnel.service")).expect("the copied unit");
        let unit = unit.replace("\\\n", " ");
        let value = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("the unit has {key}"))
                .to_owned()
        };
        let mut env: HashMap<String, String> = HashMap::new();
        let mut set = |pair: &str| {
            if let Some((k, v)) = pair.split_once('=') {
                env.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        };
        value("Environment=").split_whitespace().for_each(&mut set);
        let file = value("EnvironmentFile=").replace("/etc/else/", &format!("{}/etc-else/", self.dir.display()));
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("the unit's EnvironmentFile {file}: {e}"))
            .lines()
            .for_each(&mut set);
        set(&format!("ELSE_LOCAL_PORT={}", self.local_port));
        set(&format!("ELSE_SSH_PORT={}", self.ssh_port()));
        value("ExecStart=")
            .split_whitespace()
            .map(|word| {
                let word = word.replace("/etc/else/", &format!("{}/etc-else/", self.dir.display()));
                env.iter()
                    .fold(word, |word, (k, v)| word.replace(&format!("${{{k}}}"), v))
            })
            .inspect(|word| assert!(!word.contains("${"), "an unknown variable in the unit: {word}"))
            .collect()
    }

    /// Starts ssh as the unit does (and as systemd's Restart=always does after a failure);
    /// returns once the tunnel's end listens.
    pub fn start_again(&mut self) {
        let (program, args) = self.command.split_first().expect("the unit's command");
        let log = std::fs::File::create(self.dir.join("ssh.log")).expect("ssh.log");
        let ssh = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ssh");
        self.ssh = Some(ssh);
        assert!(
            wait_until(Duration::from_secs(20), || listening(self.local_port)),
            "the tunnel's end listens: {}",
            self.log()
        );
    }

    /// Starts ssh as the unit runs it (the host's key, the server's known host key, its port and
    /// account) with `extra` instead of the unit's `-N … -L …`: what else a stolen host key could
    /// ask of the ELSE server.
    pub fn ssh_as_the_host(&self, extra: &[&str]) -> Probe {
        let (destination, options) = self.command.split_last().expect("the unit's command");
        let mut args: Vec<&str> = Vec::new();
        let mut words = options[1..].iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                "-N" => {}
                "-L" => {
                    words.next();
                }
                other => args.push(other),
            }
        }
        let (out, err) = (self.dir.join("probe.out"), self.dir.join("probe.err"));
        let child = Command::new(&self.command[0])
            .args(&args)
            .args(extra)
            .arg(destination)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("probe.out"))
            .stderr(std::fs::File::create(&err).expect("probe.err"))
            .spawn()
            .expect("run ssh");
        Probe { child, out, err }
    }

    /// Kills ssh (`kill -9`: a crash, or a path that broke).
    pub fn kill(&mut self) {
        if let Some(mut ssh) = self.ssh.take() {
            let _ = ssh.kill();
            let _ = ssh.wait();
        }
    }

    /// The SSH bytes towards the ELSE server and back, and the connections, if counted.
    pub fn bytes(&self) -> Option<(u64, u64, u64)> {
        self.relay
            .as_ref()
            .map(|r| (r.to_receiver(), r.to_sender(), r.connections()))
    }

    /// The CPU seconds ssh (the host's side) and every sshd (the ELSE server's side: the
    /// listener and its sessions, none other on a test machine) have used.
    pub fn cpu_seconds(&self) -> (f64, f64) {
        let ssh = self
            .ssh
            .as_ref()
            .map_or(0.0, |ssh| crate::sys::process_cpu_seconds(ssh.id()));
        (ssh, crate::sys::command_cpu_seconds("sshd"))
    }

    /// The shipped postfix-host-ssh-tunnel.conf sending to this tunnel's end (its disk queue in
    /// the host's `{dir}`).
    pub fn host_stanza(&self) -> String {
        stanza_text("postfix-host-ssh-tunnel.conf")
            .replace(
                &format!("port=\"{DOCUMENTED_PORT}\""),
                &format!("port=\"{}\"", self.local_port),
            )
            .replace("/var/spool/rsyslog/", "{dir}/")
    }

    /// ssh's and sshd's logs.
    pub fn log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("ssh:\n{}\nsshd:\n{}", read("ssh.log"), read("sshd.log"))
    }
}

/// An ssh started by [`SshTunnel::ssh_as_the_host`].
pub struct Probe {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Probe {
    /// Waits until ssh ends (or `limit` passes, then kills it); its stdout and stderr.
    pub fn finish(mut self, limit: Duration) -> (String, String) {
        wait_until(limit, || self.child.try_wait().is_ok_and(|status| status.is_some()));
        self.stop();
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        (read(&self.out), read(&self.err))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A probe a failed assertion left running is stopped too.
impl Drop for Probe {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for SshTunnel {
    fn drop(&mut self) {
        self.kill();
        if let Some(mut sshd) = self.sshd.take() {
            let _ = sshd.kill();
            let _ = sshd.wait();
        }
        if !remove_account() {
            eprintln!("the tunnel account {ACCOUNT} could not be removed");
        }
    }
}

/// Removes the tunnel account and its home (left by a run that was killed, or at the end), with
/// its sshd sessions first: they outlive the listener, and `userdel` refuses a logged-in user.
/// Whether it is gone.
fn remove_account() -> bool {
    if crate::sys::user_ids(ACCOUNT).is_some() {
        let _ = Command::new("pkill").args(["-KILL", "-u", ACCOUNT]).status();
        wait_until(Duration::from_secs(10), || {
            !Command::new("pgrep")
                .args(["-u", ACCOUNT])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let _ = Command::new("userdel")
            .args(["-r", ACCOUNT])
            .stderr(Stdio::null())
            .status();
    }
    crate::sys::user_ids(ACCOUNT).is_none()
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a command");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One documented line, as the postmaster's shell runs it.
fn run_shell(line: &str) {
    run(Command::new("sh").args(["-ec", line]));
}
