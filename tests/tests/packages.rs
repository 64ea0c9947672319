//! The packages as an administrator meets them: `make packages`' script builds the four files; the
//! two .deb are installed on this machine with `apt-get install ./….deb` (dependencies resolved
//! by apt), rsyslogd loads omelse.so from the packaged path with the packaged stanza enabled,
//! `elsed setup` makes the database, the services start from their units' ExecStart lines as the
//! `else` user and stop cleanly, and `apt-get purge` leaves none of the packages' files. The .rpm
//! files are read with `rpm -qp`.
//!
//! It changes the machine, so it runs only as root on a Debian-like system (CI is both), never
//! when an else-server package is already installed, and always purges what it installed — even
//! when an assertion fails. Services stay off during the install (policy-rc.d, as
//! scripts/setup-debian.sh does).

#![deny(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use else_tests::rsyslogd::{check_config, free_port};
use else_tests::{sys, PgCluster};

const PACKAGES: [&str; 2] = ["else-server", "else-postfix-agent"];
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

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
    ] {
        if !run("sh", &["-c", &format!("command -v {tool}")]).status.success() {
            return Some(format!("{tool} not found (make setup installs it)"));
        }
    }
    let status = run("dpkg-query", &["-W", "-f=${db:Status-Status}", "else-server"]);
    if String::from_utf8_lossy(&status.stdout) == "installed" {
        return Some("an else-server package is already installed here; the test would remove it".into());
    }
    None
}

/// What the test installed, purged when dropped (an assertion failing included), and the
/// policy-rc.d it made.
struct Installed {
    made_policy: bool,
}

impl Installed {
    fn install(debs: &[PathBuf]) -> Installed {
        let made_policy = !Path::new(POLICY_RC_D).exists();
        if made_policy {
            std::fs::write(POLICY_RC_D, "#!/bin/sh\nexit 101\n").unwrap();
            ok("chmod", &["755", POLICY_RC_D]);
        }
        let installed = Installed { made_policy };
        let mut args = vec![
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=300",
        ];
        let paths: Vec<String> = debs.iter().map(|p| p.display().to_string()).collect();
        args.extend(paths.iter().map(String::as_str));
        ok("apt-get", &args);
        installed
    }

    fn purge(&self) -> Output {
        let mut args = vec!["purge", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"];
        args.extend(PACKAGES);
        run("apt-get", &args)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
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

#[test]
fn packages_install_run_and_purge_without_a_trace() {
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

    let module = format!("/usr/lib/{}/rsyslog/omelse.so", multiarch());
    let stanza_dir = scratch("stanza");
    let had_module = Path::new(&module).exists();
    // Before the package, rsyslogd has no omelse to load (what makes the check below mean something).
    let bare = stanza_dir.join("bare.conf");
    std::fs::write(&bare, "module(load=\"omelse\")\n").unwrap();
    if !had_module {
        let (passes, output) = check_config(&bare);
        assert!(
            !passes,
            "rsyslogd finds an omelse before the package is installed:\n{output}"
        );
    }

    let installed = Installed::install(&debs);
    // The files where the packages say, the configuration readable by elsed only.
    for path in [
        "/usr/bin/elsed",
        module.as_str(),
        "/lib/systemd/system/else-elsed.service",
        "/lib/systemd/system/else-greylist.service",
        "/lib/systemd/system/else-ndr.service",
        "/lib/systemd/system/else-maintain.service",
        "/etc/rsyslog.d/else-server.conf.disabled",
        "/etc/rsyslog.d/else-server-compressed.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-maillog.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-compressed.conf.disabled",
        "/etc/rsyslog.d/else-postfix-host-failover.conf.disabled",
        "/usr/share/man/man1/elsed.1.gz",
        "/usr/share/doc/else-server/install.md",
        "/usr/share/doc/else-server/transport.md",
        "/usr/share/doc/else-postfix-agent/README",
        "/usr/share/doc/else-postfix-agent/examples/postfix/headers-only/main.cf",
        "/usr/share/doc/else-postfix-agent/examples/postfix/greylist/main.cf",
    ] {
        assert!(Path::new(path).exists(), "{path} not installed");
    }
    assert!(ok("getent", &["passwd", "else"]).contains("/usr/sbin/nologin"));
    let config_mode = ok("stat", &["-c", "%a %U %G", "/etc/else/elsed.toml"]);
    assert_eq!(config_mode.trim(), "640 root else");
    assert!(
        Path::new("/usr/bin/else-pfagent").exists(),
        "/usr/bin/else-pfagent not installed"
    );
    let before: Vec<String> = PACKAGES
        .iter()
        .flat_map(|p| ok("dpkg", &["-L", p]).lines().map(str::to_owned).collect::<Vec<_>>())
        .filter(|l| l.starts_with('/') && l != "/.")
        .collect();

    // rsyslogd loads omelse from its own module directory: the packaged stanzas, enabled as the
    // instructions say (certificates made here), check with `rsyslogd -N1`; the compressed
    // listener beside else-server.conf, whose ruleset it feeds; and the Postfix hosts' too.
    let tls = else_tests::tls::certificates(
        &stanza_dir.join("tls"),
        "ELSE package CA",
        &[("server", "else.example.org"), ("client", "mx1.mail.example.org")],
    );
    assert!(
        std::fs::read_to_string("/etc/rsyslog.d/else-server.conf.disabled")
            .unwrap()
            .contains("module(load=\"omelse\")"),
        "the packaged stanza loads omelse by name"
    );
    // The copies docs/transport.md tells the postmaster to make, run as written into a scratch
    // directory instead of /etc/rsyslog.d (which would enable them on this machine).
    let transport_doc = std::fs::read_to_string(workspace().join("docs/transport.md")).unwrap();
    let copies: Vec<(&str, &str)> = transport_doc
        .lines()
        .filter_map(|line| line.strip_prefix("cp /etc/rsyslog.d/"))
        .filter_map(|rest| rest.split_once(" /etc/rsyslog.d/"))
        .collect();
    assert!(
        copies.len() >= 3,
        "transport.md enables its stanzas with cp: {copies:?}"
    );
    for (from, to) in &copies {
        let status = Command::new("cp")
            .arg(format!("/etc/rsyslog.d/{from}"))
            .arg(stanza_dir.join(to))
            .status()
            .unwrap();
        assert!(status.success(), "transport.md: cp /etc/rsyslog.d/{from} fails");
        assert_eq!(
            format!("{to}.disabled"),
            *from,
            "transport.md copies a .disabled stanza"
        );
    }
    for files in [
        &["else-server.conf"][..],
        &["else-server-compressed.conf", "else-server.conf"],
        &["else-postfix-host.conf"],
        &["else-postfix-host-maillog.conf"],
        &["else-postfix-host-compressed.conf"],
        &["else-postfix-host-failover.conf"],
    ] {
        let mut enabled = format!("global(workDirectory=\"{}\")\n", stanza_dir.display());
        for name in files {
            // The copy transport.md made, where it made one.
            let copied = copies.iter().any(|(_, to)| to == name);
            let file = if copied {
                stanza_dir.join(name)
            } else {
                PathBuf::from(format!("/etc/rsyslog.d/{name}.disabled"))
            };
            let stanza = std::fs::read_to_string(file).unwrap();
            enabled.push_str(&stanza.replace("/etc/else/tls", &tls.display().to_string()));
        }
        let path = stanza_dir.join(format!("{}.checked", files.join("+")));
        std::fs::write(&path, enabled).unwrap();
        let (passes, output) = check_config(&path);
        assert!(passes, "rsyslogd -N1 rejects the packaged {files:?}:\n{output}");
    }

    // elsed setup from the package, against a throwaway PostgreSQL: role and database of its own.
    let cluster = PgCluster::shared();
    let name = format!("else_pkg_{}", std::process::id());
    let admin_password = stanza_dir.join("admin-password");
    std::fs::write(&admin_password, "package test password\n").unwrap();
    let setup = ok(
        "/usr/bin/elsed",
        &[
            "--database-url",
            cluster.admin_url(),
            "setup",
            "--owner-role",
            &name,
            "--database",
            &name,
            "--admin-user",
            "admin",
            "--admin-password-file",
            admin_password.to_str().unwrap(),
        ],
    );
    assert!(setup.contains(&format!("database {name}: created")), "{setup}");
    assert!(setup.contains("admin account admin: created"), "{setup}");
    let url = format!("{} user={name} dbname={name}", cluster.admin_url());

    // The services, from their units' ExecStart lines, as the `else` user with the packaged
    // /etc/else/elsed.toml (which only `else` may read).
    let port = free_port();
    let greylist = exec_start("else-greylist.service");
    assert_eq!(greylist, ["/usr/bin/elsed", "greylist"]);
    serves_as_else(
        &greylist,
        &[
            ("ELSE_DATABASE_URL", url.as_str()),
            ("ELSE_GREYLIST__LISTEN", &format!("[\"inet:127.0.0.1:{port}\"]")),
        ],
        port,
        |_| {},
    );
    let port = free_port();
    serves_as_else(
        &exec_start("else-ndr.service"),
        &[
            ("ELSE_DATABASE_URL", url.as_str()),
            ("ELSE_NDR__LISTEN", &format!("[\"127.0.0.1:{port}\"]")),
        ],
        port,
        |stream| {
            let mut greeting = [0u8; 4];
            stream.read_exact(&mut greeting).unwrap();
            assert_eq!(&greeting, b"220 ", "the NDR listener greets");
        },
    );
    let serve = exec_start("else-elsed.service");
    assert_eq!(serve, ["/usr/bin/elsed", "serve"]);
    let help = ok("/usr/bin/elsed", &["--help"]);
    if help.lines().any(|l| l.trim_start().starts_with("serve ")) {
        // The unit's command as it is; the address comes from the environment, as a drop-in
        // would give it.
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let env = [("ELSE_DATABASE_URL", url.as_str()), ("ELSE_LISTEN", listen.as_str())];
        serves_as_else(&serve, &env, port, |stream| {
            stream
                .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            assert!(
                answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
                "{answer}"
            );
            assert!(answer.contains("\"database\":true"), "{answer}");
        });
    } else {
        eprintln!("pending: this elsed has no `serve` subcommand yet: else-elsed.service and /healthz not run");
    }

    // The unit is hardened as documented.
    let unit = std::fs::read_to_string("/lib/systemd/system/else-elsed.service").unwrap();
    for line in [
        "User=else",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(line), "{line:?} missing from else-elsed.service");
    }

    // Purge: every file of the packages gone; a directory left is another package's.
    let output = installed.purge();
    assert!(output.status.success(), "apt-get purge: {}", text(&output));
    let mut left = BTreeSet::new();
    for path in &before {
        let p = Path::new(path);
        if !p.exists() {
            continue;
        }
        if p.is_dir() && run("dpkg", &["-S", path]).status.success() {
            continue;
        }
        left.insert(path.clone());
    }
    for path in ["/etc/else", "/etc/else/elsed.toml", "/usr/share/doc/else-server"] {
        if Path::new(path).exists() {
            left.insert(path.to_owned());
        }
    }
    assert!(left.is_empty(), "left after purge: {left:?}");
    assert_eq!(Path::new(&module).exists(), had_module, "omelse.so after purge");
    if !had_module {
        assert!(!check_config(&bare).0, "rsyslogd still loads omelse after the purge");
    }
    assert!(
        !run("getent", &["passwd", "else"]).status.success(),
        "the else user is removed on purge"
    );
    drop(installed);
    let _ = std::fs::remove_dir_all(stanza_dir);
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

/// Runs `command` as the `else` user (as systemd would, with the unit's User= and
/// NoNewPrivileges=), waits until it accepts on `port`, lets `probe` talk to it, then stops it
/// with SIGTERM and expects a clean exit.
fn serves_as_else(command: &[String], env: &[(&str, &str)], port: u16, probe: impl FnOnce(&mut TcpStream)) {
    let mut child = Command::new("setpriv")
        .args(["--reuid=else", "--regid=else", "--init-groups", "--no-new-privs", "--"])
        .args(command)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            panic!("{command:?} as else exited ({status}): {stderr}");
        }
        assert!(Instant::now() < deadline, "{command:?} never listened on {port}");
        std::thread::sleep(Duration::from_millis(50));
    };
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    probe(&mut stream);
    drop(stream);
    let user = ok("ps", &["-o", "user=", "-p", &child.id().to_string()]);
    ok("kill", &["-TERM", &child.id().to_string()]);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{command:?} after SIGTERM: {status}: {stderr}");
    // setpriv execs elsed, so the process that listened is elsed, as `else`.
    assert_eq!(user.trim(), "else", "{command:?} ran as {user}");
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
        "/etc/else/elsed.toml",
        "/etc/rsyslog.d/else-server.conf.disabled",
        "/etc/rsyslog.d/else-server-compressed.conf.disabled",
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
