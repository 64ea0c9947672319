//! A real rsyslogd for tests: writes a configuration into a private directory, starts
//! `rsyslogd -n` on it, and stops it (SIGTERM, then SIGKILL) when dropped.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The rsyslogd binary, or `None` when it is not installed ([`crate::require`]: a failure in CI).
pub fn rsyslogd_binary() -> Option<PathBuf> {
    crate::require::tool("/usr/sbin/rsyslogd", "rsyslog")
}

/// Builds the workspace's libraries and binaries (what `make build` builds, so that the two
/// share every artifact) in this test binary's profile and target directory, once per test
/// binary; returns `target/<profile>`. A test build of a dependent crate builds omelse's rlib
/// only, so the module and the binaries are (re)built here. Test binaries live in
/// `target/<profile>/deps/`, the demo's binary in `target/<profile>/`.
fn built_workspace() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_workspace).clone()
}

fn build_workspace() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let mut profile_dir = exe.parent().expect("target/<profile>/[deps/]<binary>").to_owned();
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir.pop();
    }
    let target_dir = profile_dir.parent().expect("target directory");
    let mut command = Command::new(env!("CARGO"));
    command.args(["build", "--workspace", "--target-dir"]).arg(target_dir);
    if profile_dir.file_name().is_some_and(|name| name == "release") {
        command.arg("--release");
    }
    // Under `cargo test` the environment carries the test crate's CARGO_* variables; some build
    // scripts watch them, and would rebuild their crates here and again in the next `cargo build`.
    for (name, _) in std::env::vars_os() {
        if name
            .to_str()
            .is_some_and(|n| n.starts_with("CARGO_") && n != "CARGO_HOME")
        {
            command.env_remove(name);
        }
    }
    let status = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --workspace failed");
    profile_dir
}

/// The `omelse.so` of this build (`target/<profile>/libomelse.so`).
pub fn omelse_module() -> PathBuf {
    built_workspace().join("libomelse.so")
}

/// The `elsed` binary of this build.
pub fn elsed_binary() -> PathBuf {
    built_workspace().join("elsed")
}

/// The `else-pfagent` binary of this build (snmpd's pass_persist program).
pub fn pfagent_binary() -> PathBuf {
    built_workspace().join("else-pfagent")
}

pub use crate::ports::free_port;

/// One running rsyslogd with its own directory (config, pid file, work directory, logs).
pub struct Rsyslogd {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Rsyslogd {
    /// Starts rsyslogd on `config`, which may use `{dir}` for its own directory; a catch-all
    /// action writing rsyslog's own messages to `{dir}/rsyslogd.log` is appended.
    pub fn start(dir: &Path, config: &str) -> Rsyslogd {
        std::fs::create_dir_all(dir.join("work")).expect("create rsyslog dir");
        let config = config.replace("{dir}", &dir.display().to_string());
        let config = format!(
            "global(workDirectory=\"{dir}/work\" processInternalMessages=\"on\")\n{config}\nsyslog.* action(type=\"omfile\" file=\"{dir}/rsyslogd.log\")\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("rsyslog.conf"), config).expect("write rsyslog.conf");
        let mut daemon = Rsyslogd {
            dir: dir.to_owned(),
            child: None,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let stderr = std::fs::File::create(self.dir.join("stderr.log")).expect("stderr log");
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(self.dir.join("rsyslog.conf"))
            .arg("-i")
            .arg(self.dir.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
    }

    /// Stops it gracefully (SIGTERM, so queues are saved) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::sys::signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it (SIGKILL: a crash, nothing saved) and waits; [`Rsyslogd::start_again`] follows.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same configuration (its disk queues are picked up).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Sends SIGHUP (what logrotate does): outputs reopen their files and connections.
    pub fn hup(&self) {
        if let Some(child) = &self.child {
            crate::sys::signal(child.id(), libc::SIGHUP);
        }
    }

    /// Starts it again after [`Rsyslogd::stop`].
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }

    /// CPU time it has used so far (user and system, all threads), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let Some(child) = &self.child else {
            return 0.0;
        };
        crate::sys::process_cpu_seconds(child.id())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last value rsyslog's impstats wrote (see [`STATS`]) for `counter` of the object
    /// `name` (`else queue`: the action `else`'s queue, `else queue[DA]`: the disk part of a
    /// disk-assisted one; `else`: the ruleset's queue, or the action itself, whichever has `counter`; an input
    /// such as `imtcp(514)`), `None` before the first report. Reports of an earlier
    /// run of the same daemon come first in the file.
    pub fn stat(&self, name: &str, counter: &str) -> Option<i64> {
        let text = std::fs::read_to_string(self.dir.join("impstats.log")).unwrap_or_default();
        text.lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(&line[line.find('{')?..]).ok())
            .find_map(|object| (object["name"] == name).then(|| object[counter].as_i64()).flatten())
    }

    /// What rsyslogd said about itself (its own messages and stderr).
    pub fn own_log(&self) -> String {
        let mut text = std::fs::read_to_string(self.dir.join("rsyslogd.log")).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default());
        text
    }
}

impl Drop for Rsyslogd {
    /// Stops the daemon and removes its directory, unless the test failed: then the directory
    /// (configuration, queues, rsyslogd's own log) is kept for the post-mortem.
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// rsyslog's counters (impstats), every second as JSON into the daemon's directory, for
/// [`Rsyslogd::stat`]: a line to add to a configuration given to [`Rsyslogd::start`].
pub const STATS: &str =
    r#"module(load="impstats" interval="1" format="json" log.syslog="off" log.file="{dir}/impstats.log")"#;

/// Runs `rsyslogd -N1` on a configuration file; returns (success, what it printed).
pub fn check_config(config_file: &Path) -> (bool, String) {
    let output = Command::new("/usr/sbin/rsyslogd")
        .arg("-N1")
        .arg("-f")
        .arg(config_file)
        .output()
        .expect("run rsyslogd -N1");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Sends lines over plain TCP syslog (octet-stuffed by newlines) to `port`, waiting for the
/// listener to come up first.
pub fn send_tcp(port: u16, lines: &[String]) {
    let mut stream = connect_when_listening(port);
    let mut buffer = Vec::with_capacity(1 << 20);
    for line in lines {
        buffer.extend_from_slice(line.as_bytes());
        buffer.push(b'\n');
        if buffer.len() > 1 << 20 {
            stream.write_all(&buffer).expect("send");
            buffer.clear();
        }
    }
    stream.write_all(&buffer).expect("send");
    stream.flush().expect("flush");
}

/// Waits until every byte sent to the listener on `port` was read by its process (no connection
/// to it has anything left in its kernel receive queue, `/proc/net/tcp`); false when `limit`
/// passes first. A process stopped before reading loses what is there: a test that restarts the
/// receiver and counts on every line must wait for this first.
pub fn wait_until_received(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if unread_bytes(port) == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Bytes waiting in the kernel receive queues of the connections accepted on `port`.
fn unread_bytes(port: u16) -> u64 {
    const LISTEN: &str = "0A";
    let mut unread = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx_queue:rx_queue ...
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(queues)) = (fields.get(1), fields.get(3), fields.get(4)) else {
                continue;
            };
            let local_port = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port != Some(port) || *state == LISTEN {
                continue;
            }
            let rx = queues.split(':').nth(1).and_then(|q| u64::from_str_radix(q, 16).ok());
            unread += rx.unwrap_or(0);
        }
    }
    unread
}

/// [`send_tcp`] at a steady `per_second` lines, one write per line, as a live mail server logs
/// rather than a backlog.
pub fn send_tcp_paced(port: u16, lines: &[String], per_second: usize) {
    let mut stream = connect_when_listening(port);
    let started = Instant::now();
    for (n, line) in lines.iter().enumerate() {
        let due = started + Duration::from_secs_f64(n as f64 / per_second as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        stream.write_all(format!("{line}\n").as_bytes()).expect("send");
    }
}

fn connect_when_listening(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => return stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("rsyslogd did not listen on {port}: {e}"),
        }
    }
}

/// Waits until `probe` returns true, checking every 200 ms, for at most `limit`.
pub fn wait_until(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    probe()
}

/// A private CA, the ELSE servers' certificates (`server`: else.example.org, `backup`:
/// else-backup.example.org) and one client certificate per Postfix host (`mx1` →
/// mx1.mail.example.org), as the shipped stanzas expect; returns their directory.
pub fn relp_certificates(dir: &Path, hosts: &[&str]) -> PathBuf {
    let servers = [("server", "else.example.org"), ("backup", "else-backup.example.org")];
    let names: Vec<(String, String)> = servers
        .iter()
        .map(|(file, name)| (file.to_string(), name.to_string()))
        .chain(hosts.iter().map(|h| (h.to_string(), format!("{h}.mail.example.org"))))
        .collect();
    let leaves: Vec<(&str, &str)> = names.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    crate::tls::certificates(&dir.join("tls"), "ELSE test CA", &leaves)
}

/// The text of a shipped stanza of `rsyslog-conf/`.
pub fn stanza_text(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rsyslog-conf").join(file);
    std::fs::read_to_string(path).expect("read a shipped stanza")
}

/// A shipped stanza of `rsyslog-conf/` made to run here: the test's omelse module, port (of the
/// stanza's listener or target: 2514 for RELP, 2515 for the compressed stream), certificates
/// (from [`relp_certificates`]; `identity` is `server`, `client` (the server's certificate, for a
/// check of the syntax only) or a host's name) and database.
pub fn shipped_stanza(file: &str, certs: &Path, identity: &str, port: u16, conninfo: &str) -> String {
    adapt_stanza(&stanza_text(file), certs, identity, port, conninfo)
}

/// [`shipped_stanza`] loading `module`: a benchmark's release build, which `make bench` builds
/// first (building it from a benchmark would rebuild what the benchmark itself was built with).
pub fn shipped_stanza_loading(
    module: &Path,
    file: &str,
    certs: &Path,
    identity: &str,
    port: u16,
    conninfo: &str,
) -> String {
    adapt_stanza_loading(module, &stanza_text(file), certs, identity, port, conninfo)
}

/// [`shipped_stanza`] of a text: what a test changed in a shipped stanza first, such as a second
/// target.
pub fn adapt_stanza(text: &str, certs: &Path, identity: &str, port: u16, conninfo: &str) -> String {
    adapt_stanza_loading(&omelse_module(), text, certs, identity, port, conninfo)
}

fn adapt_stanza_loading(module: &Path, text: &str, certs: &Path, identity: &str, port: u16, conninfo: &str) -> String {
    let certs = certs.display().to_string();
    let identity = if identity == "client" { "server" } else { identity };
    text.replace(
        "module(load=\"omelse\")",
        &format!("module(load=\"{}\")", module.display()),
    )
    .replace("port=\"2514\"", &format!("port=\"{port}\""))
    .replace("port=\"2515\"", &format!("port=\"{port}\""))
    .replace("target=\"else.example.org\"", "target=\"127.0.0.1\"")
    // The ELSE server's address on the private link of the compressed stanzas.
    .replace("\"10.8.0.1\"", "\"127.0.0.1\"")
    .replace("/etc/else/tls/ca.pem", &format!("{certs}/ca.pem"))
    .replace("/etc/else/tls/server.pem", &format!("{certs}/{identity}.pem"))
    .replace("/etc/else/tls/server.key", &format!("{certs}/{identity}.key"))
    .replace("/etc/else/tls/client.pem", &format!("{certs}/{identity}.pem"))
    .replace("/etc/else/tls/client.key", &format!("{certs}/{identity}.key"))
    .replace("/var/spool/rsyslog/", "{dir}/")
    .replace(
        "conninfo=\"host=/var/run/postgresql dbname=else user=else\"",
        &format!("conninfo=\"{conninfo}\""),
    )
}

/// A shipped ELSE server stanza (from [`shipped_stanza`]) with its one Postfix host input, the
/// block named `else-host:mx1`, copied once per `(host, port)` as install.md tells the
/// postmaster to: the host's name, its certificate name (`host.mail.example.org`, as
/// [`relp_certificates`] makes it) and its port.
pub fn host_inputs(text: &str, hosts: &[(&str, u16)]) -> String {
    let start = text
        .find("input(type=\"imrelp\" name=\"else-host:mx1\"")
        .or_else(|| text.find("input(type=\"imptcp\" name=\"else-host:mx1\""))
        .expect("the shipped stanza has the input of mx1");
    let end = start + text[start..].find(")\n").expect("the input block ends") + 2;
    let block = &text[start..end];
    let port_at = block.find(" port=\"").expect("the input has a port") + 7;
    let port_end = port_at + block[port_at..].find('"').expect("the port is quoted");
    let copies: String = hosts
        .iter()
        .map(|(host, port)| {
            format!("{}{port}{}", &block[..port_at], &block[port_end..])
                .replace("else-host:mx1", &format!("else-host:{host}"))
                .replace("\"mx1.mail.example.org\"", &format!("\"{host}.mail.example.org\""))
        })
        .collect();
    format!("{}{copies}{}", &text[..start], &text[end..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    #[test]
    fn bytes_not_yet_read_by_the_listener_are_waited_for() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sender = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        sender.write_all(&[b'x'; 5000]).unwrap();
        assert!(!wait_until_received(port, Duration::from_millis(300)));
        let mut read = vec![0; 5000];
        receiver.read_exact(&mut read).unwrap();
        assert!(wait_until_received(port, Duration::from_secs(5)));
    }
}
