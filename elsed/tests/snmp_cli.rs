//! `elsed snmp …` and `else-pfagent` as administrators run them: the credentials key, an agent's
//! settings (secrets from the environment, stored encrypted), states and metrics before the first
//! poll, an action refused before anything opens, an action on an agent that does not answer
//! (audited as unreachable). And what the Postfix-host package ships: else-pfagent links neither
//! net-snmp nor a database client, and the sudoers rules allow exactly the pinned commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use else_tests::PgCluster;

const ELSED: &str = env!("CARGO_BIN_EXE_elsed");

/// The else-pfagent binary of this build (a crate of its own: cargo builds it on demand).
fn pfagent() -> PathBuf {
    else_tests::rsyslogd::pfagent_binary()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elsed-snmp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn elsed(config: &Path, url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(ELSED)
        .env("ELSE_CONFIG", config)
        .env("ELSE_DATABASE_URL", url)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn agents_are_configured_and_acted_on_from_the_command_line() {
    let dir = scratch("cli");
    let url = PgCluster::shared().create_database().await;
    let key = dir.join("snmp.key");
    let config = dir.join("elsed.toml");
    std::fs::write(
        &config,
        format!(
            "[snmp]\nkey_file = \"{}\"\ntimeout_ms = 300\nretries = 0\naction_timeout_secs = 1\n\n[[servers]]\nname = \"mx1\"\n",
            key.display()
        ),
    )
    .unwrap();
    let out = elsed(&config, &url, &["snmp", "keygen", key.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let again = elsed(&config, &url, &["snmp", "keygen", key.to_str().unwrap()], &[]);
    assert!(!again.status.success(), "a key is never overwritten");

    // Nothing listens on this port: the agent is down.
    let port = else_tests::free_port();
    let port = port.to_string();
    let set = |secrets: &[(&str, &str)]| {
        elsed(
            &config,
            &url,
            &[
                "snmp",
                "set-agent",
                "--server",
                "mx1",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--read-user",
                "else-ro",
                "--control-user",
                "else-ctl",
            ],
            secrets,
        )
    };
    let out = set(&[("ELSE_SNMP_READ_AUTH_PASS", "short")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("passphrase"), "{}", text(&out.stderr));
    let secrets = [
        ("ELSE_SNMP_READ_AUTH_PASS", "read-auth-secret"),
        ("ELSE_SNMP_READ_PRIV_PASS", "read-priv-secret"),
        ("ELSE_SNMP_CONTROL_AUTH_PASS", "ctl-auth-secret"),
        ("ELSE_SNMP_CONTROL_PRIV_PASS", "ctl-priv-secret"),
    ];
    let out = set(&secrets);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Stored encrypted: no passphrase in the database.
    let client = omelse::store::connect(&url).await.unwrap();
    let row = client.query_one("SELECT secrets FROM snmp_agents", &[]).await.unwrap();
    let sealed: Vec<u8> = row.get(0);
    assert!(!String::from_utf8_lossy(&sealed).contains("secret"));

    let out = elsed(&config, &url, &["snmp", "states", "--json"], &[]);
    let states: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(states[0]["server"], "mx1");
    assert_eq!(states[0]["state"], "unknown");
    let out = elsed(&config, &url, &["snmp", "metrics"], &[]);
    assert!(text(&out.stdout).contains("else_server_state{server=\"mx1\",state=\"unknown\"} 1"));

    // Refused before anything is opened.
    for (args, message) in [
        (&["--action", "reboot"][..], "unknown action"),
        (
            &["--action", "hold", "--queue-id", "AB;rm -rf /"],
            "not a Postfix queue id",
        ),
        (&["--action", "hold"], "needs a queue id"),
    ] {
        let mut all = vec!["snmp", "act", "--server", "mx1"];
        all.extend(args);
        let out = elsed(&config, "postgresql://nobody@127.0.0.1:1/none", &all, &[]);
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains(message), "{args:?}: {}", text(&out.stderr));
    }

    // The agent does not answer: the action fails, and the audit log says so, with its actor.
    let out = elsed(
        &config,
        &url,
        &["snmp", "act", "--server", "mx1", "--action", "flush", "--json"],
        &[],
    );
    assert!(!out.status.success());
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["result"], "unreachable", "{outcome}");
    let row = client
        .query_one("SELECT actor, action, target, result FROM audit_log", &[])
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3)
        ),
        (
            "unix:root".into(),
            "snmp.flush".into(),
            "mx1".into(),
            "unreachable".into()
        )
    );

    // One poll: the server is down, and says why.
    let out = elsed(&config, &url, &["snmp", "poll", "--once"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = elsed(&config, &url, &["snmp", "states", "--json"], &[]);
    let states: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(states[0]["state"], "down", "{states}");
    assert_eq!(states[0]["sample"]["reachable"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn else_pfagent_links_neither_net_snmp_nor_a_database_client() {
    let out = Command::new("ldd").arg(pfagent()).output().unwrap();
    let libraries = text(&out.stdout);
    assert!(out.status.success() && libraries.contains("libc.so"), "{libraries}");
    for forbidden in ["netsnmp", "libpq", "libssl", "libcrypto"] {
        assert!(
            !libraries.contains(forbidden),
            "else-pfagent links {forbidden}:\n{libraries}"
        );
    }
    let out = Command::new("ldd").arg(ELSED).output().unwrap();
    assert!(
        text(&out.stdout).contains("libnetsnmp"),
        "elsed itself does link net-snmp"
    );
}

#[test]
fn else_pfagent_refuses_a_bad_command_line() {
    let out = Command::new(pfagent()).arg("serve").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage:"), "{}", text(&out.stderr));
    let out = Command::new(pfagent())
        .args(["--command-prefix", "sudo -n; rm -rf /", "extend"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not given to a shell"),
        "{}",
        text(&out.stderr)
    );
}

/// The shipped sudoers file, checked by visudo and then by sudo itself: in a private mount
/// namespace it stands in for /etc/sudoers, and `sudo -l -U Debian-snmp CMD` says whether the
/// snmpd user may run CMD (nothing is run). Needs root, sudo, unshare and the Debian-snmp user
/// (package snmpd); skipped otherwise.
#[test]
fn sudoers_rules_allow_exactly_the_pinned_commands() {
    let sudoers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/postfix-host/sudoers.d/else-pfagent");
    let user = Command::new("id")
        .arg("Debian-snmp")
        .output()
        .map(|o| o.status.success());
    if !else_tests::require::root("sudo -l -U and a private mount namespace")
        || else_tests::require::tool("/usr/sbin/visudo", "sudo").is_none()
        || !else_tests::require_that(user.ok() == Some(true), "the Debian-snmp user (Debian package snmpd)")
    {
        return;
    }
    let out = Command::new("/usr/sbin/visudo")
        .arg("-cf")
        .arg(&sudoers)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "visudo: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let dir = scratch("sudoers");
    let copy = dir.join("sudoers");
    std::fs::copy(&sudoers, &copy).unwrap();
    let cases = [
        ("/usr/sbin/postqueue -f", true),
        ("/usr/sbin/postsuper -d ALL deferred", true),
        ("/usr/sbin/postsuper -h 4F1A23B0C5", true),
        ("/usr/sbin/postsuper -H 4F1A23B0C5", true),
        ("/usr/sbin/postsuper -r 4Xt6sM0ntGz6Cm", true),
        ("/usr/sbin/postsuper -d 4Xt6sM0ntGz6Cm", true),
        ("/usr/sbin/postsuper -h 4F1A23B0C5 -d ALL", false),
        ("/usr/sbin/postsuper -d ALL", false),
        ("/usr/sbin/postsuper -d ALL hold", false),
        ("/usr/sbin/postsuper -h ALL", false),
        ("/usr/sbin/postsuper -h 4f1a;id", false),
        ("/usr/sbin/postqueue -p", false),
        ("/bin/sh -c id", false),
    ];
    let mut script = format!("mount --bind '{}' /etc/sudoers || exit 99\n", copy.display());
    for (command, _) in &cases {
        // Each word quoted: `4f1a;id` is one argument, as else-pfagent would pass it.
        let words: Vec<String> = command.split(' ').map(|w| format!("'{w}'")).collect();
        script.push_str(&format!(
            "if sudo -l -U Debian-snmp {} >/dev/null 2>&1; then echo allowed; else echo refused; fi\n",
            words.join(" ")
        ));
    }
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    if out.status.code() == Some(99) || !out.status.success() {
        else_tests::missing(format_args!("a private mount namespace: {}", text(&out.stderr)));
        return;
    }
    let verdicts: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    for ((command, allowed), verdict) in cases.iter().zip(&verdicts) {
        assert_eq!(verdict == "allowed", *allowed, "{command}: {verdict}");
    }
    assert_eq!(verdicts.len(), cases.len());
    let _ = std::fs::remove_dir_all(&dir);
}
