//! The deployment ELSE exists for, on loopback addresses of one machine: an INCOMING Postfix (MX
//! for example.test, mailboxes, greylisting through GreyLSE), an OUTGOING Postfix (relays the
//! workstations' mail to a third Postfix that plays the Internet, hands mail for example.test back
//! to the INCOMING one, sends its NDRs to elsed), and the ELSE server (rsyslogd with imrelp and
//! omelse, PostgreSQL, elsed's GreyLSE and NDR collector). Both Postfix hosts write
//! `maillog_file`, which their own rsyslogd forwards over RELP (TLS) with the shipped stanza.
//! On demand: `elsed serve` ([`ThreeServers::serve`], accounts with [`ThreeServers::add_user`]),
//! and snmpd with else-pfagent on both Postfix hosts plus elsed's poller
//! ([`ThreeServers::start_snmp`]; elsed.toml has `[snmp]` with its key, the agents are
//! registered by the caller).
//!
//! The end-to-end test and `make demo` start the same [`ThreeServers`]; both need root (Postfix
//! binds port 25 on 127.0.10.x and runs its daemons as `postfix`), and only one deployment can
//! run on a machine at a time (fixed addresses: [`ThreeServers::start`] says so when they are
//! taken).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::postfix::{self, PrivatePostfix};
use crate::rsyslogd::{
    elsed_binary, free_port, host_inputs, pfagent_binary, relp_certificates, shipped_stanza, wait_until, Rsyslogd,
};
use crate::snmpd::{self, Snmpd};

/// The INCOMING server's address.
pub const IN1: &str = "127.0.10.1";
/// The OUTGOING server's address.
pub const OUT1: &str = "127.0.10.2";
/// The Postfix that plays the Internet (mailboxes of remote.test).
pub const INTERNET: &str = "127.0.40.1";
/// The organisation's networks: its servers and its workstations.
pub const INTERNAL_NETWORKS: &str = "127.0.10.0/24, 127.0.30.0/24";
/// A client out on the Internet.
pub const REMOTE_CLIENT: &str = "127.0.20.1";
/// A client that INCOMING's access map blocks.
pub const BLOCKED_CLIENT: &str = "127.0.20.66";
/// A workstation of the organisation, which sends through OUTGOING.
pub const WORKSTATION: &str = "127.0.30.1";
/// Every smtpd listens on the SMTP port of its own address.
pub const SMTP_PORT: u16 = 25;

/// rsyslog's RELP input (Debian package rsyslog-relp).
pub const IMRELP: &str = "/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so";

/// Why the three servers cannot run here, if they cannot (a test hands it to
/// [`crate::missing`], the demo says it and stops).
pub fn unavailable() -> Option<&'static str> {
    let ready = crate::sys::is_root()
        && Path::new(postfix::POSTFIX).exists()
        && Path::new(IMRELP).exists()
        && Path::new("/usr/bin/swaks").exists();
    (!ready).then_some("the three servers need root, Postfix, rsyslog-relp and swaks (make test installs them)")
}

/// Set in the test process that runs inside its own network namespace.
const NAMESPACED: &str = "ELSE_TOPOLOGY_NETNS";

/// Runs the test `test` of this test binary again in a network namespace of its own (`unshare
/// --net`, its loopback brought up), where the fixed addresses are free whatever runs on the
/// machine (`make demo`, another run of the test). Returns `true` in the outer process once the
/// inner run passed (its output printed, a failure fails the test), `false` in the inner one,
/// which goes on with the test.
pub fn rerun_in_own_network_namespace(test: &str) -> bool {
    if std::env::var_os(NAMESPACED).is_some() {
        return false;
    }
    let output = Command::new("unshare")
        .args(["--net", "--", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(NAMESPACED, "1")
        .output()
        .expect("run unshare (util-linux) and ip (iproute2)");
    println!("{}", String::from_utf8_lossy(&output.stdout));
    println!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "{test} failed in its network namespace ({}): its output is above",
        output.status
    );
    true
}

/// An elsed process (or any child) stopped when dropped.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// `elsed --config <config> <args>`, its stderr in `log`.
    pub fn elsed(config: &Path, args: &[&str], log: PathBuf) -> Daemon {
        let child = Command::new(elsed_binary())
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("ELSE_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("start elsed");
        Daemon { child, log }
    }

    /// What the daemon wrote so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        crate::sys::signal(self.child.id(), libc::SIGTERM);
        let stopped = wait_until(Duration::from_secs(5), || matches!(self.child.try_wait(), Ok(Some(_))));
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What swaks said, and whether the server accepted the message.
pub struct Sent {
    pub accepted: bool,
    pub transcript: String,
}

/// One message with swaks, from `client` to the smtpd at `server`.
pub fn swaks(server: &str, client: &str, from: &str, to: &str, message_id: &str) -> Sent {
    let output = Command::new("swaks")
        .args(["--server", &format!("{server}:{SMTP_PORT}")])
        .args(["--local-interface", client])
        .args(["--ehlo", "client.e2e.test"])
        .args(["--from", from, "--to", to])
        .args(["--header", &format!("Message-Id: <{message_id}>")])
        .args(["--header", &format!("Subject: e2e {message_id}")])
        .args(["--body", "ELSE end-to-end test message."])
        .args(["--timeout", "30"])
        .output()
        .expect("run swaks");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Sent {
        accepted: output.status.success(),
        transcript,
    }
}

/// Ports of the ELSE server's listeners.
#[derive(Debug, Clone, Copy)]
pub struct ElsePorts {
    pub policy: u16,
    pub ndr: u16,
    /// One RELP input per Postfix host (install.md, "Host identity"): the host and its port.
    pub relp: [(&'static str, u16); 2],
}

/// The three servers, running; everything stops when this is dropped.
pub struct ThreeServers {
    // Fields drop in this order: the forwarders and mail servers first, the ELSE server last.
    forwarders: [Rsyslogd; 2],
    pub out1: PrivatePostfix,
    pub in1: PrivatePostfix,
    pub internet: PrivatePostfix,
    pub central: Rsyslogd,
    pub ndr: Daemon,
    pub greylist: Daemon,
    pub dir: PathBuf,
    pub url: String,
    pub config: PathBuf,
    pub ports: ElsePorts,
}

impl ThreeServers {
    /// Starts the ELSE server on the (migrated here) database at `url`, then the mail servers and
    /// their forwarders, in `dir`; `greylist_delay_secs` is GreyLSE's delay. The Internet's
    /// `later@remote.test` answers 450 until [`ThreeServers::set_remote_busy`]`(false)`.
    pub fn start(dir: &Path, url: &str, greylist_delay_secs: u64) -> ThreeServers {
        std::fs::create_dir_all(dir).expect("create the run directory");
        // The addresses are fixed: a second deployment would talk to the first one's servers.
        for address in [IN1, OUT1, INTERNET] {
            assert!(
                std::net::TcpListener::bind((address, SMTP_PORT)).is_ok(),
                "{address}:{SMTP_PORT} is taken: another three-server deployment (make demo, or this \
                 test) is running on this machine; stop it first"
            );
        }
        let ports = ElsePorts {
            policy: free_port(),
            ndr: free_port(),
            relp: [("in1", free_port()), ("out1", free_port())],
        };
        let config = dir.join("elsed.toml");
        std::fs::write(&config, elsed_config(dir, url, ports, greylist_delay_secs)).expect("write elsed.toml");
        let migrate = Command::new(elsed_binary())
            .arg("--config")
            .arg(&config)
            .arg("migrate")
            .output()
            .expect("run elsed migrate");
        assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
        // The key of the stored SNMP credentials (`[snmp] key_file`, mode 0600; a new one each run).
        let _ = std::fs::remove_file(dir.join("snmp.key"));
        let keygen = Command::new(elsed_binary())
            .arg("--config")
            .arg(&config)
            .args(["snmp", "keygen"])
            .arg(dir.join("snmp.key"))
            .output()
            .expect("run elsed snmp keygen");
        assert!(keygen.status.success(), "{}", String::from_utf8_lossy(&keygen.stderr));
        let greylist = Daemon::elsed(&config, &["greylist"], dir.join("greylist.log"));
        let ndr = Daemon::elsed(&config, &["ndr"], dir.join("ndr.log"));
        let certs = relp_certificates(dir, &["in1", "out1"]);
        let central = Rsyslogd::start(
            &dir.join("else"),
            &host_inputs(
                &shipped_stanza("else-server.conf", &certs, "server", ports.relp[0].1, url),
                &ports.relp,
            )
            .replace(
                "# internal.networks=\"192.0.2.0/24, 198.51.100.0/24\"",
                &format!("internal.networks=\"{INTERNAL_NETWORKS}\""),
            ),
        );

        let internet = start_internet();
        let in1 = start_incoming(ports.policy, ports.ndr);
        let out1 = start_outgoing(ports.ndr);
        let forwarders = [
            start_forwarder("in1", &in1, &certs, ports.relp[0].1, dir),
            start_forwarder("out1", &out1, &certs, ports.relp[1].1, dir),
        ];
        let ready = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", ports.policy)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", ports.ndr)).is_ok()
        });
        assert!(ready, "elsed did not start:\n{}\n{}", greylist.output(), ndr.output());
        ThreeServers {
            forwarders,
            out1,
            in1,
            internet,
            central,
            ndr,
            greylist,
            dir: dir.to_path_buf(),
            url: url.to_string(),
            config,
            ports,
        }
    }

    /// Appends `toml` (whole tables, e.g. `[alerts]`) to elsed.toml: the daemons started after
    /// this ([`ThreeServers::serve`]) read it; those already running (GreyLSE, the NDR
    /// collector) keep what they read.
    pub fn configure(&self, toml: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.config)
            .expect("open elsed.toml");
        writeln!(file, "\n{toml}").expect("append to elsed.toml");
    }

    /// Whether the Internet's `later@remote.test` is refused with 450 (so mail to it is deferred).
    pub fn set_remote_busy(&self, busy: bool) {
        write_internet_access(&self.internet, busy);
        self.internet.run(&["reload"]);
    }

    /// The forwarders' rsyslogd, for a failure's message.
    pub fn forwarders(&self) -> &[Rsyslogd] {
        &self.forwarders
    }

    /// Starts `elsed serve` on a free port of 127.0.0.1 and waits until it answers; `base` is
    /// its URL (`http://127.0.0.1:PORT`).
    pub fn serve(&self) -> Web {
        let listen = format!("127.0.0.1:{}", free_port());
        let daemon = Daemon::elsed(
            &self.config,
            &["serve", "--listen", &listen],
            self.dir.join("serve.log"),
        );
        let up = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&listen).is_ok()
        });
        assert!(up, "elsed serve did not listen on {listen}:\n{}", daemon.output());
        Web {
            daemon,
            base: format!("http://{listen}"),
        }
    }

    /// Creates an account with `elsed user add` (`role`: admin, user or enduser), its password
    /// given in a file as a script would (a secret file: mode 0600).
    pub fn add_user(&self, login: &str, role: &str, password: &str) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = self.dir.join(format!("password-{login}"));
        let _ = std::fs::remove_file(&file);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| writeln!(f, "{password}"))
            .expect("write the password file");
        let output = Command::new(elsed_binary())
            .arg("--config")
            .arg(&self.config)
            .args(["user", "add", login, "--role", role, "--password-file"])
            .arg(&file)
            .env_remove("ELSE_DATABASE_URL")
            .output()
            .expect("run elsed user add");
        let _ = std::fs::remove_file(&file);
        assert!(
            output.status.success(),
            "elsed user add {login}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts snmpd with else-pfagent on each Postfix host's address (the shipped snippet, users
    /// [`snmpd::RO`] and [`snmpd::CTL`]) and elsed's poller (`elsed snmp poll`, every second).
    /// The agents still have to be registered in elsed (API or `elsed snmp set-agent`).
    pub fn start_snmp(&self) -> Snmp {
        let agent = pfagent_binary();
        let start = |name: &str, postfix: &PrivatePostfix, ip: &'static str| {
            let dir = self.dir.join(format!("snmp-{name}"));
            std::fs::create_dir_all(&dir).expect("agent directory");
            let env = snmpd::agent_env(&dir, postfix, None);
            Snmpd::start(&format!("else-e2e-snmpd-{name}"), ip, &agent, None, &env, "")
        };
        Snmp {
            in1: start("in1", &self.in1, IN1),
            out1: start("out1", &self.out1, OUT1),
            poller: Daemon::elsed(&self.config, &["snmp", "poll"], self.dir.join("snmp-poll.log")),
        }
    }

    /// Registers the agents [`ThreeServers::start_snmp`] started, with `elsed snmp set-agent` as
    /// an administrator's script would (the web application's form does the same).
    pub fn register_snmp_agents(&self, snmp: &Snmp) {
        for (server, agent) in [("in1", &snmp.in1), ("out1", &snmp.out1)] {
            let output = Command::new(elsed_binary())
                .arg("--config")
                .arg(&self.config)
                .args(["snmp", "set-agent", "--server", server, "--host", agent.ip])
                .args(["--port", &agent.port.to_string()])
                .args(["--read-user", snmpd::RO.0, "--control-user", snmpd::CTL.0])
                .env("ELSE_SNMP_READ_AUTH_PASS", snmpd::RO.1)
                .env("ELSE_SNMP_READ_PRIV_PASS", snmpd::RO.2)
                .env("ELSE_SNMP_CONTROL_AUTH_PASS", snmpd::CTL.1)
                .env("ELSE_SNMP_CONTROL_PRIV_PASS", snmpd::CTL.2)
                .env_remove("ELSE_DATABASE_URL")
                .output()
                .expect("run elsed snmp set-agent");
            assert!(
                output.status.success(),
                "elsed snmp set-agent {server}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// `elsed serve`, running.
pub struct Web {
    pub daemon: Daemon,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
}

/// The Postfix hosts' SNMP agents and elsed's poller, stopped when dropped.
pub struct Snmp {
    pub in1: Snmpd,
    pub out1: Snmpd,
    pub poller: Daemon,
}

/// elsed's configuration: the servers by name, role and address, GreyLSE, the NDR collector, and
/// SNMP polled every second (its credentials' key in `dir`).
fn elsed_config(dir: &Path, url: &str, ports: ElsePorts, greylist_delay_secs: u64) -> String {
    format!(
        "internal_networks = [\"127.0.10.0/24\", \"127.0.30.0/24\"]

[database]
url = \"{url}\"

[greylist]
listen = [\"127.0.0.1:{policy}\"]
delay_secs = {greylist_delay_secs}

[ndr]
listen = [\"127.0.0.1:{ndr}\"]
allowed_clients = [\"127.0.0.0/8\"]
relink_secs = 2

[snmp]
key_file = \"{key_file}\"
interval_secs = 1
timeout_ms = 1000
retries = 0

[[servers]]
name = \"in1\"
role = \"incoming\"
addresses = [\"{IN1}\"]

[[servers]]
name = \"out1\"
role = \"outgoing\"
addresses = [\"{OUT1}\"]
",
        policy = ports.policy,
        ndr = ports.ndr,
        key_file = dir.join("snmp.key").display(),
    )
}

/// Virtual mailboxes for `domain` (each user a Maildir under `mail/`), delivered by `virtual`.
pub fn mailboxes(postfix: &PrivatePostfix, domain: &str, users: &[&str]) -> String {
    let d = postfix.dir.display();
    let map: String = users.iter().map(|u| format!("{u}@{domain} {domain}/{u}/\n")).collect();
    std::fs::write(postfix.dir.join("etc/vmailbox"), map).unwrap();
    std::fs::create_dir_all(postfix.dir.join("mail")).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(postfix.dir.join("mail"))
        .status();
    assert!(chown.unwrap().success());
    format!(
        "virtual_mailbox_domains = {domain}
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_mailbox_base = {d}/mail
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
"
    )
}

/// The listeners every instance has: smtpd on its address, and the virtual delivery agent.
pub fn listeners(address: &str) -> String {
    format!("{address}:{SMTP_PORT} inet n - n - - smtpd\nvirtual unix - n n - - virtual\n")
}

/// Settings of the servers' Postfix: fast retries, no DNS, the host name ELSE knows them by.
fn common_main(name: &str, address: &str) -> String {
    format!(
        "myhostname = {name}.example.test
smtp_bind_address = {address}
smtp_dns_support_level = disabled
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"
    )
}

/// The Internet: mailboxes of remote.test (dave, later), `later` refused with 450 at first;
/// anyone else unknown (550).
fn start_internet() -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-e2e-internet");
    let d = postfix.dir.display().to_string();
    write_internet_access(&postfix, true);
    let main = format!(
        "myhostname = mx.remote.test
mynetworks = 127.0.0.0/8
{mailboxes}smtpd_recipient_restrictions = check_recipient_access texthash:{d}/etc/access, reject_unauth_destination
",
        mailboxes = mailboxes(&postfix, "remote.test", &["dave", "later"])
    );
    postfix.start(&main, &listeners(INTERNET), &[])
}

fn write_internet_access(postfix: &PrivatePostfix, later_refused: bool) {
    let access = if later_refused {
        "later@remote.test 450 4.2.1 Mailbox busy, try again later\n"
    } else {
        ""
    };
    std::fs::write(postfix.dir.join("etc/access"), access).unwrap();
}

/// INCOMING: the MX of example.test (alice, bob); clients of the Internet are greylisted,
/// 127.0.20.66 is blocked, the organisation's servers are trusted; its bounce notices go to elsed.
fn start_incoming(policy_port: u16, ndr_port: u16) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-e2e-in1");
    let d = postfix.dir.display().to_string();
    std::fs::write(
        postfix.dir.join("etc/blocked"),
        format!("{BLOCKED_CLIENT} REJECT Client blocked by policy\n"),
    )
    .unwrap();
    let main = format!(
        "{common}mynetworks = 127.0.10.0/24
{mailboxes}smtpd_recipient_restrictions = permit_mynetworks,
    check_client_access texthash:{d}/etc/blocked,
    reject_unauth_destination,
    check_policy_service inet:127.0.0.1:{policy_port}
{ndr}",
        common = common_main("in1", IN1),
        mailboxes = mailboxes(&postfix, "example.test", &["alice", "bob"]),
        ndr = ndr_settings(&postfix, ndr_port, ""),
    );
    postfix.start(&main, &listeners(IN1), &[])
}

/// OUTGOING: relays the workstations' mail; example.test goes back to INCOMING, remote.test to
/// the Internet; postmaster copies of its bounces go to elsed with the shipped headers-only
/// snippet.
fn start_outgoing(ndr_port: u16) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare("else-e2e-out1");
    let routes = format!("example.test smtp:[{IN1}]:{SMTP_PORT}\nremote.test smtp:[{INTERNET}]:{SMTP_PORT}\n");
    let main = format!(
        "{common}mynetworks = 127.0.30.0/24, 127.0.10.0/24
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
{ndr}",
        common = common_main("out1", OUT1),
        ndr = ndr_settings(&postfix, ndr_port, &routes),
    );
    postfix.start(&main, &listeners(OUT1), &[])
}

/// The shipped headers-only NDR snippet (packaging/postfix/headers-only) for main.cf: postmaster
/// copies of bounces to elsed's collector on `ndr_port`, through the transport map it names,
/// written here with `routes` after the collector's line, and the shipped map that keeps
/// outsiders from writing to the collector's domain.
fn ndr_settings(postfix: &PrivatePostfix, ndr_port: u16, routes: &str) -> String {
    let d = postfix.dir.display();
    let packaging = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/postfix/headers-only");
    let ndr_transport = std::fs::read_to_string(packaging.join("transport"))
        .unwrap()
        .replace("else.example.net:2424", &format!("127.0.0.1:{ndr_port}"));
    std::fs::write(postfix.dir.join("etc/transport"), format!("{ndr_transport}{routes}")).unwrap();
    std::fs::copy(
        packaging.join("../ndr_recipient_access"),
        postfix.dir.join("etc/ndr_recipient_access"),
    )
    .unwrap();
    std::fs::read_to_string(packaging.join("main.cf"))
        .unwrap()
        .replace("hash:/etc/postfix/", &format!("texthash:{d}/etc/"))
}

/// The host's own rsyslogd, forwarding its Postfix's log file with the shipped stanza.
fn start_forwarder(name: &str, postfix: &PrivatePostfix, certs: &Path, relp_port: u16, dir: &Path) -> Rsyslogd {
    let stanza = shipped_stanza("postfix-host-maillog.conf", certs, name, relp_port, "").replace(
        "/var/log/postfix.log",
        &postfix.dir.join("maillog").display().to_string(),
    );
    Rsyslogd::start(&dir.join(name), &stanza)
}
