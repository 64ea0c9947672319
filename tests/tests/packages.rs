//! The install path of docs/install.md, run as written: the blocks of that file marked
//! `<!-- test: NAME -->` are extracted and run by bash, as root, on this machine — install the two
//! .deb files with apt-get, `sudo -u postgres elsed setup`, test certificates with openssl, the
//! stanzas enabled and checked by `rsyslogd -N1`, rsyslogd on them carrying a message over
//! RELP/TLS into the database (what `systemctl restart rsyslog` would start), every unit's
//! ExecStart started as its `User=` (what `systemctl enable --now UNIT` would do), an import of a
//! real log, a login over the API, an SNMP poll of a real snmpd with the shipped snippet and
//! else-pfagent from the package, the upgrade, the backup, and the removal — every command exits
//! 0 and the purge leaves nothing behind (files, users, keys, files owned by the deleted user).
//! The only changes to a block are the test's addresses for the documented ones (free ports
//! instead of 8080, the test's snmpd instead of 192.0.2.10, the fixture log instead of
//! /var/log/mail.log*, this version for NEW): [`Substitutions`] lists them.
//!
//! PostgreSQL is a private cluster with its socket where Debian's is (`/run/postgresql`, port
//! 5432, peer authentication as Debian configures it), so that the documented connection strings
//! and `pg_hba.conf`/`pg_ident.conf` lines are the ones used. The .rpm files are read with `rpm -qp`,
//! and their scripts compared with the .deb's.
//!
//! It changes the machine, so it runs only as root on a Debian-like system (CI is both), never
//! when an else-server package is already installed or a PostgreSQL listens on /run/postgresql,
//! and always undoes what it did — even when an assertion fails. Services stay off during the
//! install (policy-rc.d, as scripts/setup-debian.sh does).

#![deny(unsafe_code)]

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use else_tests::postfix::PrivatePostfix;
use else_tests::rsyslogd::{free_port, send_tcp, wait_until, Rsyslogd};
use else_tests::snmpd::{self, Snmpd};
use else_tests::sys;

const PACKAGES: [&str; 2] = ["else-server", "else-postfix-agent"];
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The nftables table of install.md's "Connection limits", as the package installs it.
const RELP_LIMITS: &str = "/usr/share/doc/else-server/examples/nftables/else-relp.nft";
/// Debian's PostgreSQL socket, which the documented connection strings name.
const PG_SOCKET: &str = "/run/postgresql/.s.PGSQL.5432";
/// What the documented steps create outside the packages, removed by the documented removal
/// (and by [`Installed`]'s drop when the test fails before it).
const CREATED: [&str; 5] = [
    "/etc/rsyslog.d/else-server.conf",
    "/etc/rsyslog.d/else-postfix-host.conf",
    "/etc/else/tls",
    "/root/else-admin-password",
    BACKUP,
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn ok(program: &str, args: &[&str]) -> String {
    let output = run(program, args);
    assert!(output.status.success(), "{program} {args:?}: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Why this machine cannot take the test, if it cannot.
fn unsuitable() -> Option<String> {
    if !sys::is_root() {
        return Some("not root (the test installs the .deb packages)".into());
    }
    for tool in [
        "apt-get",
        "dpkg",
        "dpkg-deb",
        "rpmbuild",
        "rpm",
        "help2man",
        "/usr/sbin/rsyslogd",
        "sudo",
        "setpriv",
        "openssl",
        "curl",
        snmpd::SNMPD,
        "/usr/lib/postgresql/15/bin/initdb",
    ] {
        if !run("sh", &["-c", &format!("command -v {tool}")]).status.success() {
            return Some(format!("{tool} not found (make setup installs it)"));
        }
    }
    if run("getent", &["passwd", "else"]).status.success() {
        return Some("a user else exists here; the purge the test runs would delete it".into());
    }
    let status = run("dpkg-query", &["-W", "-f=${db:Status-Status}", "else-server"]);
    if String::from_utf8_lossy(&status.stdout) == "installed" {
        return Some("an else-server package is already installed here; the test would remove it".into());
    }
    if Path::new(PG_SOCKET).exists() {
        return Some(format!(
            "{PG_SOCKET} exists: a PostgreSQL runs where the test would put its own"
        ));
    }
    None
}

/// What the test installed, purged when dropped (an assertion failing included), and the
/// policy-rc.d it made.
struct Installed {
    made_policy: bool,
}

impl Installed {
    /// Services off during the install (policy-rc.d); the documented block installs.
    fn prepare() -> Installed {
        let made_policy = !Path::new(POLICY_RC_D).exists();
        if made_policy {
            std::fs::write(POLICY_RC_D, "#!/bin/sh\nexit 101\n").unwrap();
            ok("chmod", &["755", POLICY_RC_D]);
        }
        Installed { made_policy }
    }

    fn purge(&self) -> Output {
        let mut args = vec!["purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"];
        args.extend(PACKAGES);
        run("apt-get", &args)
    }
}

impl Drop for Installed {
    /// What the documented steps made goes first (as in the documented removal), so that the
    /// purge finds /etc/else empty and removes it.
    fn drop(&mut self) {
        for path in CREATED {
            let _ = std::fs::remove_dir_all(path).or_else(|_| std::fs::remove_file(path));
        }
        let installed = PACKAGES.iter().any(|p| {
            String::from_utf8_lossy(&run("dpkg-query", &["-W", "-f=${db:Status-Status}", p]).stdout) == "installed"
        });
        if installed {
            let output = self.purge();
            if !output.status.success() {
                eprintln!("apt-get purge failed: {}", text(&output));
            }
        }
        if self.made_policy {
            let _ = std::fs::remove_file(POLICY_RC_D);
        }
    }
}

/// Version of the workspace, as the script reads it.
fn version() -> String {
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    let section = manifest.split("[workspace.package]").nth(1).unwrap();
    let line = section.lines().find(|l| l.starts_with("version")).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

fn multiarch() -> String {
    let output = run("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"]);
    let value = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if value.is_empty() {
        "x86_64-linux-gnu".into()
    } else {
        value
    }
}

/// The blocks of docs/install.md marked `<!-- test: NAME -->`, by name, their indentation
/// removed.
fn documented_blocks() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workspace().join("docs/install.md")).unwrap();
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- test: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().unwrap_or_default();
        let indent = fence.len() - fence.trim_start().len();
        assert_eq!(fence.trim(), "```sh", "the block marked {name} is not a ```sh block");
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            body.push_str(line.get(indent..).unwrap_or(line.trim_start()));
            body.push('\n');
        }
        blocks.push((name.to_owned(), body));
    }
    blocks
}

/// The test's addresses for the documented ones, applied to a block before it runs.
struct Substitutions(Vec<(String, String)>);

impl Substitutions {
    fn apply(&self, name: &str, block: &str) -> String {
        let mut text = block.to_owned();
        for (documented, here) in &self.0 {
            text = text.replace(documented, here);
        }
        assert!(
            !text.contains("192.0.2."),
            "block {name}: a documentation address is left:\n{text}"
        );
        text
    }
}

/// Runs a documented block (or one line of it) with bash, as root, in target/packages; it must
/// exit 0. Returns what it printed (standard output and error).
fn run_block(name: &str, script: &str, env: &[(&str, String)]) -> String {
    let apt_config = std::env::temp_dir().join(format!("else-packages-apt-{}.conf", std::process::id()));
    std::fs::write(
        &apt_config,
        "DPkg::Lock::Timeout \"300\";\nAPT::Install-Recommends \"false\";\n",
    )
    .unwrap();
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(workspace().join("target/packages"))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("APT_CONFIG", &apt_config)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let _ = std::fs::remove_file(apt_config);
    let printed = text(&output);
    assert!(
        output.status.success(),
        "documented block {name} failed ({}):\n{script}\n---\n{printed}",
        output.status
    );
    printed
}

/// A PostgreSQL cluster where Debian's listens (socket in /run/postgresql, port 5432, local
/// peer authentication), run by the `postgres` OS user; stopped and removed when dropped.
struct DebianLikeCluster {
    dir: PathBuf,
    /// Whether the test made /run/postgresql (as postgresql-common does), to remove it after.
    made_socket_dir: bool,
}

impl DebianLikeCluster {
    fn start() -> DebianLikeCluster {
        let dir = scratch("cluster");
        ok("chown", &["postgres:postgres", dir.to_str().unwrap()]);
        let socket_dir = Path::new(PG_SOCKET).parent().unwrap();
        let made_socket_dir = !socket_dir.exists();
        if made_socket_dir {
            ok(
                "install",
                &[
                    "-d",
                    "-o",
                    "postgres",
                    "-g",
                    "postgres",
                    "-m",
                    "2775",
                    socket_dir.to_str().unwrap(),
                ],
            );
        }
        let cluster = DebianLikeCluster { dir, made_socket_dir };
        let data = cluster.data();
        ok(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                &format!("{PG_BIN}/initdb"),
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
            ],
        );
        let options = "-c listen_addresses='' -c unix_socket_directories=/run/postgresql -c port=5432 -c fsync=off";
        cluster.pg_ctl(&["-o", options, "-l", &format!("{data}/log"), "-w", "start"]);
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) {
        let (data, pg_ctl) = (self.data(), format!("{PG_BIN}/pg_ctl"));
        let command = [&["-u", "postgres", "--", pg_ctl.as_str(), "-D", &data], args].concat();
        ok("runuser", &command);
    }

    /// Adds what `elsed setup` printed to pg_ident.conf and, first, to pg_hba.conf; reloads.
    fn allow(&self, setup_output: &str) {
        let section = |title: &str| -> Vec<String> {
            setup_output
                .lines()
                .skip_while(|l| !l.trim_start().starts_with(title))
                .skip(1)
                .take_while(|l| l.starts_with("    "))
                .map(|l| l.trim().to_owned())
                .collect()
        };
        let (ident, hba) = (section("pg_ident.conf:"), section("pg_hba.conf"));
        assert!(
            !ident.is_empty() && !hba.is_empty(),
            "setup printed no lines:\n{setup_output}"
        );
        let data = self.dir.join("data");
        let mut ident_text = std::fs::read_to_string(data.join("pg_ident.conf")).unwrap();
        ident_text.push_str(&(ident.join("\n") + "\n"));
        std::fs::write(data.join("pg_ident.conf"), ident_text).unwrap();
        let hba_text = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        std::fs::write(data.join("pg_hba.conf"), hba.join("\n") + "\n" + &hba_text).unwrap();
        self.pg_ctl(&["reload"]);
    }
}

impl Drop for DebianLikeCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                &format!("{PG_BIN}/pg_ctl"),
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
        if self.made_socket_dir {
            let _ = std::fs::remove_dir_all(Path::new(PG_SOCKET).parent().unwrap());
        }
    }
}

/// The services started as their units would start them; killed when dropped.
#[derive(Default)]
struct Services(Vec<(String, Child)>);

impl Services {
    /// `systemctl enable --now UNIT`: the unit's ExecStart as its User= (with NoNewPrivileges),
    /// the test's ports in the environment as a drop-in would give them; waits until it listens
    /// on `port`, if it has one, or has run a moment.
    fn start(&mut self, unit: &str, env: &[(&str, String)], port: Option<u16>) {
        let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}.service"))
            .unwrap_or_else(|e| panic!("{unit}.service: {e}"));
        let user = text.lines().find_map(|l| l.strip_prefix("User=")).expect("User=");
        let mut child = Command::new("setpriv")
            .args([
                &format!("--reuid={user}"),
                &format!("--regid={user}"),
                "--init-groups",
                "--no-new-privs",
                "--",
            ])
            .args(exec_start(&format!("{unit}.service")))
            .current_dir("/")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("setpriv runs");
        let deadline = Instant::now() + Duration::from_secs(30);
        let settle = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
                panic!("{unit} exited ({status}): {stderr}");
            }
            match port {
                Some(port) if TcpStream::connect(("127.0.0.1", port)).is_ok() => break,
                None if Instant::now() > settle => break,
                _ => {}
            }
            assert!(Instant::now() < deadline, "{unit} never listened on {port:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let running_as = ok("ps", &["-o", "user=", "-p", &child.id().to_string()]);
        assert_eq!(running_as.trim(), user, "{unit} runs as {running_as}");
        self.0.push((unit.to_owned(), child));
    }

    /// `systemctl stop`: SIGTERM, and each exits 0.
    fn stop(mut self) {
        for (unit, mut child) in self.0.drain(..) {
            ok("kill", &["-TERM", &child.id().to_string()]);
            let status = child.wait().unwrap();
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            assert!(status.success(), "{unit} after SIGTERM: {status}: {stderr}");
            for noise in ["MIB search path", "Ok(", "CleanupStats {"] {
                assert!(!stderr.contains(noise), "{unit} logs {noise:?}:\n{stderr}");
            }
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn the_documented_install_path_works_as_written() {
    if let Some(reason) = unsuitable() {
        else_tests::missing(reason);
        return;
    }
    // The script builds the release binaries (nothing to do when target/release is current).
    let status = Command::new("bash")
        .arg(workspace().join("packaging/build-packages.sh"))
        .current_dir(workspace())
        .status()
        .expect("run packaging/build-packages.sh");
    assert!(status.success(), "packaging/build-packages.sh failed");
    let out = workspace().join("target/packages");
    let version = version();
    let debs: Vec<PathBuf> = PACKAGES
        .iter()
        .map(|p| out.join(format!("{p}_{version}_amd64.deb")))
        .collect();
    let rpms: Vec<PathBuf> = PACKAGES
        .iter()
        .map(|p| out.join(format!("{p}-{version}-1.x86_64.rpm")))
        .collect();
    for file in debs.iter().chain(&rpms) {
        assert!(file.exists(), "{} not built", file.display());
    }
    check_rpms(&rpms);
    compare_scripts(&debs[0], &rpms[0]);

    let blocks = documented_blocks();
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "install",
            "setup",
            "certificates",
            "stanzas",
            "rsyslog",
            "services",
            "import",
            "login",
            "snmp",
            "upgrade",
            "backup",
            "removal"
        ],
        "the documented path changed: update this test with it"
    );
    let block = |name: &str| blocks.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone()).unwrap();
    assert!(
        block("install").contains(&format!("_{version}_amd64.deb")),
        "docs/install.md installs another version than {version}"
    );
    let web_port = free_port();
    let fixture = workspace().join("tests/fixtures/mail.log").display().to_string();
    let mut substitutions = Substitutions(vec![
        ("127.0.0.1:8080".into(), format!("127.0.0.1:{web_port}")),
        // The fixture is older than the default retention: the documented --force keeps it.
        (
            "/var/log/mail.log.1 /var/log/mail.log".into(),
            format!("--force {fixture}"),
        ),
    ]);
    let module = format!("/usr/lib/{}/rsyslog/omelse.so", multiarch());
    let had_module = Path::new(&module).exists();

    let cluster = DebianLikeCluster::start();
    let installed = Installed::prepare();
    // Files changed before the install cannot be the packages' doing, even if a user that
    // existed earlier had the uid the else user is given now.
    let install_start = std::env::temp_dir().join(format!("else-packages-since-{}", std::process::id()));
    std::fs::write(&install_start, b"").unwrap();
    run_block("install", &substitutions.apply("install", &block("install")), &[]);
    for path in [
        "/usr/bin/elsed",
        "/usr/bin/else-pfagent",
        module.as_str(),
        "/etc/rsyslog.d/else-postfix-host-maillog.conf.disabled",
        "/lib/systemd/system/else-snmp-poll.service",
        "/usr/share/man/man1/elsed.1.gz",
        "/usr/share/doc/else-server/install.md",
        "/lib/systemd/system/else-elsed.service",
        "/lib/systemd/system/else-greylist.service",
        "/lib/systemd/system/else-ndr.service",
        "/lib/systemd/system/else-maintain.service",
        "/etc/rsyslog.d/else-server.conf.disabled",
        "/etc/rsyslog.d/else-server-compressed.conf.disabled",
        "/etc/rsyslog.d/else-ssh-tunnel.conf.disabled",
        "/usr/share/doc/else-server/examples/ssh/else-tunnel.conf",
        "/etc/rsyslog.d/else-postfix-host.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-compressed.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-failover.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-ssh-tunnel.conf.disabled",
        "/usr/share/doc/else-postfix-agent/examples/postfix-host/ssh-tunnel/else-log-tunnel.service",
        "/usr/share/doc/else-server/transport.md",
        "/usr/share/doc/else-postfix-agent/README",
        "/usr/share/doc/else-postfix-agent/examples/postfix/headers-only/main.cf",
        "/usr/share/doc/else-postfix-agent/examples/postfix/greylist/main.cf",
        RELP_LIMITS,
    ] {
        assert!(Path::new(path).exists(), "{path} not installed");
    }
    // install.md's connection limits: the installed table is valid as shipped (`-c` checks
    // without loading; tests/tests/relp_limits.rs loads it edited and tries it).
    ok("nft", &["-c", "-f", RELP_LIMITS]);
    assert!(ok("getent", &["passwd", "else"]).contains("/usr/sbin/nologin"));
    assert_eq!(
        ok("stat", &["-c", "%a %U %G", "/etc/else/elsed.toml"]).trim(),
        "640 root else"
    );
    // The one rule for secrets, as postinst made the SNMP key.
    assert_eq!(
        ok("stat", &["-c", "%a %U %G", "/etc/else/snmp.key"]).trim(),
        "600 else else"
    );
    let before: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| ok("dpkg", &["-L", p]).lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| l.starts_with('/') && l != "/.")
        .collect();

    // elsed setup as the postgres superuser, the password on standard input.
    let setup = run_block("setup", &substitutions.apply("setup", &block("setup")), &[]);
    assert!(setup.contains("database else: created, owned by else"), "{setup}");
    assert!(setup.contains("admin account admin: created"), "{setup}");
    // Before the printed lines are in place, root is refused as role else, and told why.
    let refused = run("/usr/bin/elsed", &["status"]);
    let message = text(&refused);
    assert!(
        !refused.status.success(),
        "root connects as else without the map:\n{message}"
    );
    for words in [
        "as role else",
        "Peer authentication failed",
        "pg_ident.conf",
        "elsed setup",
    ] {
        assert!(
            message.contains(words),
            "the refusal does not say {words:?}:\n{message}"
        );
    }
    cluster.allow(&setup);
    ok("/usr/bin/elsed", &["status"]);

    run_block("certificates", &block("certificates"), &[]);
    assert_eq!(
        ok("stat", &["-c", "%a %U", "/etc/else/tls/server.key"]).trim(),
        "600 root"
    );
    run_block("stanzas", &block("stanzas"), &[]);

    // `systemctl restart rsyslog`: rsyslogd on the two enabled stanzas, as Debian's rsyslog.conf
    // includes them, with a TCP input for the test's lines; a message given to the Postfix
    // host's stanza goes over RELP/TLS (the test certificates) to the server's, and omelse
    // stores it; then the block's other lines (`elsed status`) as written.
    let rsyslog = start_rsyslog(&block("rsyslog"));
    let status = run_block("rsyslog", &rsyslog.rest, &[]);
    let relp_host = relp_host();
    assert!(
        status
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{relp_host} "))),
        "elsed status does not list {relp_host}, whose lines came over RELP:\n{status}"
    );

    // The services: each `systemctl enable --now UNIT` line starts the unit's ExecStart as its
    // user; the other lines run as written.
    let (greylist_port, ndr_port) = (free_port(), free_port());
    let mut services = Services::default();
    for line in substitutions.apply("services", &block("services")).lines() {
        let command = line.split('#').next().unwrap().trim();
        if let Some(unit) = command.strip_prefix("systemctl enable --now ") {
            let (env, port): (Vec<(&str, String)>, Option<u16>) = match unit {
                "else-elsed" => (vec![("ELSE_LISTEN", format!("127.0.0.1:{web_port}"))], Some(web_port)),
                "else-greylist" => (
                    vec![("ELSE_GREYLIST__LISTEN", format!("[\"inet:127.0.0.1:{greylist_port}\"]"))],
                    Some(greylist_port),
                ),
                "else-ndr" => (
                    vec![("ELSE_NDR__LISTEN", format!("[\"127.0.0.1:{ndr_port}\"]"))],
                    Some(ndr_port),
                ),
                _ => (Vec::new(), None),
            };
            services.start(unit, &env, port);
        } else if !command.is_empty() {
            let answer = run_block("services", line, &[]);
            assert!(
                !line.contains("/healthz") || answer.contains("\"database\":true"),
                "{answer}"
            );
        }
    }
    assert_eq!(services.0.len(), 5, "five units started");

    let imported = run_block("import", &substitutions.apply("import", &block("import")), &[]);
    let messages = ok(
        "sudo",
        &[
            "-u",
            "postgres",
            "psql",
            "-d",
            "else",
            "-tAc",
            "SELECT count(*) FROM messages",
        ],
    );
    assert!(
        messages.trim().parse::<u64>().unwrap() > 0,
        "nothing imported:\n{imported}"
    );
    // The fixture is older than a day: today's report holds the one message that came over RELP.
    assert!(imported.lines().any(|l| l.trim() == "1 received"), "{imported}");

    let login = run_block("login", &substitutions.apply("login", &block("login")), &[]);
    assert!(login.contains("csrf_token"), "{login}");

    // SNMP: a real snmpd with the shipped snippet, running the packaged else-pfagent.
    let dir = scratch("snmp");
    let postfix = PrivatePostfix::prepare("else-packages-postfix");
    let agent = Snmpd::start(
        "else-packages-snmpd",
        "127.0.0.1",
        Path::new("/usr/bin/else-pfagent"),
        None,
        &snmpd::agent_env(&dir, &postfix, None),
        "",
    );
    substitutions.0.push((
        "--host 192.0.2.10".into(),
        format!("--host 127.0.0.1 --port {}", agent.port),
    ));
    let passphrases = [
        ("RO_AUTH", snmpd::RO.1.to_owned()),
        ("RO_PRIV", snmpd::RO.2.to_owned()),
        ("CTL_AUTH", snmpd::CTL.1.to_owned()),
        ("CTL_PRIV", snmpd::CTL.2.to_owned()),
    ];
    let polled = run_block("snmp", &substitutions.apply("snmp", &block("snmp")), &passphrases);
    assert!(
        polled.lines().any(|l| l.starts_with("mx1 ")),
        "no state for mx1:\n{polled}"
    );
    assert!(!polled.contains("MIB search path"), "{polled}");
    drop(agent);

    // An upgrade, as written (the same version again: apt-get has nothing to do), then the
    // backup, checked by reading it back.
    substitutions
        .0
        .push(("_NEW_amd64.deb".into(), format!("_{version}_amd64.deb")));
    let mut rsyslog = rsyslog;
    for line in substitutions.apply("upgrade", &block("upgrade")).lines() {
        if line.split('#').next().unwrap().trim() == "systemctl restart rsyslog" {
            rsyslog.daemon.restart();
        } else {
            let said = run_block("upgrade", line, &[]);
            assert!(
                !line.starts_with("elsed migrate") || said.contains("schema up to date"),
                "{said}"
            );
        }
    }
    run_block("backup", &block("backup"), &[]);
    let backup = Path::new(BACKUP);
    let file = |suffix: &str| {
        std::fs::read_dir(backup)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("no *{suffix} in {BACKUP}"))
    };
    let listed = ok("pg_restore", &["--list", file(".dump").to_str().unwrap()]);
    assert!(listed.contains("TABLE public messages"), "{listed}");
    let archived = ok("tar", &["-tzvf", file(".tar.gz").to_str().unwrap()]);
    assert!(
        archived
            .lines()
            .any(|l| l.starts_with("-rw------- else/else") && l.ends_with("etc/else/snmp.key")),
        "{archived}"
    );
    std::fs::remove_dir_all(backup).unwrap();

    services.stop();
    drop(rsyslog.daemon);
    let else_ids = (
        ok("id", &["-u", "else"]).trim().to_owned(),
        ok("id", &["-g", "else"]).trim().to_owned(),
    );
    run_block("removal", &block("removal"), &[]);

    // Nothing left: the packages' files, the key, /etc/else, the user and group, what the
    // documented steps made, the database.
    let mut left = BTreeSet::new();
    for path in &before {
        let p = Path::new(path);
        if p.exists() && !(p.is_dir() && run("dpkg", &["-S", path]).status.success()) {
            left.insert(path.clone());
        }
    }
    for path in ["/etc/else", "/etc/else/snmp.key", "/usr/share/doc/else-server"]
        .iter()
        .chain(&CREATED)
    {
        if Path::new(path).exists() {
            left.insert((*path).to_owned());
        }
    }
    assert!(left.is_empty(), "left after purge: {left:?}");
    // No file anywhere the packages or the documented steps write, changed since the install
    // began, is owned by the deleted user or group.
    let owned = run(
        "find",
        &[
            "/etc",
            "/var",
            "/run",
            "/usr",
            "/opt",
            "/srv",
            "/root",
            "/home",
            "/tmp",
            "-xdev",
            "-cnewer",
            install_start.to_str().unwrap(),
            "(",
            "-uid",
            &else_ids.0,
            "-o",
            "-gid",
            &else_ids.1,
            ")",
            "-print",
        ],
    );
    let owned = String::from_utf8_lossy(&owned.stdout).into_owned();
    assert!(
        owned.trim().is_empty(),
        "owned by the deleted else user ({}) or group ({}):\n{owned}",
        else_ids.0,
        else_ids.1
    );
    std::fs::remove_file(&install_start).unwrap();
    assert_eq!(Path::new(&module).exists(), had_module, "omelse.so after purge");
    for database in ["passwd", "group"] {
        assert!(
            !run("getent", &[database, "else"]).status.success(),
            "the else {database} entry is left after purge"
        );
    }
    let databases = ok(
        "sudo",
        &[
            "-u",
            "postgres",
            "psql",
            "-tAc",
            "SELECT datname FROM pg_database WHERE datname = 'else'",
        ],
    );
    assert!(databases.trim().is_empty(), "the database is left: {databases}");
    drop(installed);
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
    drop(postfix);
}

/// Where the documented backup goes.
const BACKUP: &str = "/root/else-backup";

/// The host name of the Postfix host whose lines go over RELP in the first hour: this machine's,
/// as its rsyslogd writes it, which install.md binds the server stanza's input to.
fn relp_host() -> String {
    ok("hostname", &["-s"]).trim().to_owned()
}
/// Their queue ID.
const RELP_QUEUE_ID: &str = "4B2C19A4F9";

/// rsyslogd as `systemctl restart rsyslog` starts it, and the block's lines after that one.
struct RsyslogStarted {
    daemon: Rsyslogd,
    rest: String,
}

/// The `rsyslog` block's `systemctl restart rsyslog`: rsyslogd on the enabled stanzas (and a TCP
/// input); returns once a message sent to it is in the database, having gone from the Postfix
/// host's stanza over RELP/TLS to the server's and omelse.
fn start_rsyslog(block: &str) -> RsyslogStarted {
    let (first, rest) = block.split_once('\n').unwrap_or((block, ""));
    assert_eq!(
        first.split('#').next().unwrap().trim(),
        "systemctl restart rsyslog",
        "the rsyslog block changed:\n{block}"
    );
    let port = free_port();
    let daemon = Rsyslogd::start(
        &scratch("rsyslog"),
        &format!(
            "module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n\
             include(file=\"/etc/rsyslog.d/else-server.conf\")\n\
             include(file=\"/etc/rsyslog.d/else-postfix-host.conf\")\n"
        ),
    );
    let now = ok("date", &["+%b %e %H:%M:%S"]);
    let (now, id, relp_host) = (now.trim(), RELP_QUEUE_ID, relp_host());
    let lines: Vec<String> = [
        "postfix/smtpd[2001]: connect from client.example.net[198.51.100.40]".to_owned(),
        format!("postfix/smtpd[2001]: {id}: client=client.example.net[198.51.100.40]"),
        format!("postfix/cleanup[2002]: {id}: message-id=<first-hour@example.net>"),
        format!("postfix/qmgr[2003]: {id}: from=<alice@example.net>, size=1000, nrcpt=1 (queue active)"),
        format!(
            "postfix/smtp[2004]: {id}: to=<bob@example.org>, relay=mx.example.org[203.0.113.5]:25, \
             delay=0.5, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)"
        ),
        format!("postfix/qmgr[2003]: {id}: removed"),
    ]
    .iter()
    .map(|l| format!("<22>{now} {relp_host} {l}"))
    .collect();
    send_tcp(port, &lines);
    let stored = wait_until(Duration::from_secs(60), || {
        let count = run(
            "sudo",
            &[
                "-u",
                "postgres",
                "psql",
                "-d",
                "else",
                "-tAc",
                &format!("SELECT count(*) FROM messages WHERE queue_id = '{id}'"),
            ],
        );
        String::from_utf8_lossy(&count.stdout).trim() == "1"
    });
    assert!(
        stored,
        "the message sent over RELP is not in the database; rsyslogd said:\n{}",
        daemon.own_log()
    );
    RsyslogStarted {
        daemon,
        rest: rest.to_owned(),
    }
}

/// The rpm's scripts do what the deb's do on install and erase: the same `else` user, the same
/// SNMP key made the same way, and removed on erase.
fn compare_scripts(deb: &Path, rpm: &Path) {
    let control = scratch("control");
    ok(
        "dpkg-deb",
        &["--control", deb.to_str().unwrap(), control.to_str().unwrap()],
    );
    let deb_scripts: String = ["postinst", "prerm", "postrm"]
        .iter()
        .map(|s| std::fs::read_to_string(control.join(s)).unwrap())
        .collect();
    let rpm_scripts = ok("rpm", &["-qp", "--scripts", rpm.to_str().unwrap()]);
    let keygen = |scripts: &str| -> Vec<String> {
        scripts
            .lines()
            .filter_map(|l| l.find("elsed --config").map(|i| l[i..].trim().to_owned()))
            .collect()
    };
    assert_eq!(
        keygen(&deb_scripts),
        keygen(&rpm_scripts),
        "the key is made differently"
    );
    assert_eq!(keygen(&deb_scripts).len(), 1, "{deb_scripts}");
    for (what, deb_word, rpm_word) in [
        ("the user", "adduser --system", "useradd -r"),
        (
            "the key on removal",
            "rm -f /etc/else/snmp.key",
            "rm -f /etc/else/snmp.key",
        ),
        ("/etc/else on removal", "rmdir /etc/else", "rmdir /etc/else"),
        (
            "the units",
            "systemctl --no-reload disable",
            "systemctl --no-reload disable",
        ),
    ] {
        assert!(
            deb_scripts.contains(deb_word),
            "the deb's scripts lack {what}:\n{deb_scripts}"
        );
        assert!(
            rpm_scripts.contains(rpm_word),
            "the rpm's scripts lack {what}:\n{rpm_scripts}"
        );
    }
    let units = |scripts: &str| scripts.matches("else-snmp-poll.service").count() > 0;
    assert!(
        units(&deb_scripts) && units(&rpm_scripts),
        "else-snmp-poll is not among the units"
    );
    let _ = std::fs::remove_dir_all(control);
}

/// The ExecStart= command of an installed unit, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has no ExecStart"));
    line.split_whitespace().map(str::to_owned).collect()
}

/// The .rpm files: paths, configuration files, scripts and dependencies.
fn check_rpms(rpms: &[PathBuf]) {
    let query = |args: &[&str], rpm: &Path| ok("rpm", &[&["-qp"], args, &[rpm.to_str().unwrap()]].concat());
    let server = &rpms[0];
    let files = query(&["-l"], server);
    for path in [
        "/usr/bin/elsed",
        "/usr/lib64/rsyslog/omelse.so",
        "/usr/lib/systemd/system/else-elsed.service",
        "/usr/lib/systemd/system/else-greylist.service",
        "/usr/lib/systemd/system/else-ndr.service",
        "/usr/lib/systemd/system/else-maintain.service",
        "/usr/lib/systemd/system/else-snmp-poll.service",
        "/etc/else/elsed.toml",
        "/etc/rsyslog.d/else-server.conf.disabled",
        "/etc/rsyslog.d/else-server-compressed.conf.disabled",
        "/etc/rsyslog.d/else-ssh-tunnel.conf.disabled",
        "/usr/share/man/man1/elsed.1.gz",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} missing from the else-server rpm:\n{files}"
        );
    }
    let configs = query(&["-c"], server);
    assert!(configs.contains("/etc/else/elsed.toml") && configs.contains("/etc/rsyslog.d/else-server.conf.disabled"));
    let requires = query(&["-R"], server);
    for dependency in ["rsyslog", "postgresql", "net-snmp-libs", "glibc >= "] {
        assert!(
            requires.lines().any(|l| l.starts_with(dependency)),
            "{dependency} missing from the else-server rpm's requirements:\n{requires}"
        );
    }
    let scripts = query(&["--scripts"], server);
    for word in [
        "useradd -r -g else",
        "systemctl daemon-reload",
        "systemctl --no-reload disable",
    ] {
        assert!(
            scripts.contains(word),
            "{word:?} missing from the else-server rpm's scripts:\n{scripts}"
        );
    }
    let modes = query(&["-lv"], server);
    assert!(
        modes
            .lines()
            .any(|l| l.starts_with("-rw-r-----") && l.contains(" else ") && l.ends_with("/etc/else/elsed.toml")),
        "{modes}"
    );

    let agent = &rpms[1];
    let files = query(&["-l"], agent);
    for path in [
        "/etc/rsyslog.d/else-postfix-host.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-maillog.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-compressed.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-failover.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-ssh-tunnel.conf.disabled",
        "/usr/share/doc/else-postfix-agent/README",
        "/usr/share/doc/else-postfix-agent/examples/postfix/full/master.cf",
        "/usr/share/doc/else-postfix-agent/examples/postfix/greylist/main.cf",
    ] {
        assert!(
            files.lines().any(|l| l == path),
            "{path} missing from the agent rpm:\n{files}"
        );
    }
    assert!(
        files.lines().any(|l| l == "/usr/bin/else-pfagent"),
        "/usr/bin/else-pfagent missing from the agent rpm:\n{files}"
    );
    let requires = query(&["-R"], agent);
    assert!(requires.contains("rsyslog-relp"), "{requires}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("else-packages-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The else user reads nothing here; rsyslogd -N1 runs as root.
    dir
}
