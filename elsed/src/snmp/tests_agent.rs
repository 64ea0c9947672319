//! Acceptance with the real parts: Debian's snmpd started privately with the shipped snippet
//! (packaging/postfix-host/snmpd.conf.d/else.conf, addresses templated) running else-pfagent,
//! a real private Postfix with deferred and held mail, and elsed's poller and actions over
//! SNMPv3 authPriv. else-pfagent's privileged commands go through a recording wrapper instead of
//! `sudo -n`, so the tests see exactly what ran (and that nothing ran when it must not).
//! Needs root, snmpd and Postfix (make test installs them); skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use else_tests::postfix::PrivatePostfix;
use else_tests::snmpd::{agent_env, available as snmpd_available, free_udp_port, Snmpd, CTL, RO};
use else_tests::PgCluster;
use tokio_postgres::Client;

use super::engine::Role;
use super::session::{AuthProtocol, Credentials, SetValue, Target};
use super::*;

/// The else-pfagent binary of this build (a crate of its own: cargo builds it on demand).
fn pfagent() -> PathBuf {
    else_tests::rsyslogd::pfagent_binary()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A private snmpd running this build's else-pfagent (see `else_tests::snmpd`).
fn start_snmpd(
    name: &str,
    ip: &'static str,
    pass_persist: Option<&Path>,
    env: &[(&str, String)],
    extra: &str,
) -> Snmpd {
    Snmpd::start(name, ip, &pfagent(), pass_persist, env, extra)
}

/// v3 settings and secrets for an agent at `ip:port`, with this control passphrase.
fn agent_settings(ip: &str, port: u16, control_auth: &str) -> (AgentSettings, AgentSecrets) {
    (
        AgentSettings {
            enabled: true,
            host: ip.to_owned(),
            port,
            version: "3".into(),
            read_user: Some(RO.0.into()),
            control_user: Some(CTL.0.into()),
            auth_protocol: "SHA".into(),
        },
        AgentSecrets {
            read_auth_pass: Some(RO.1.into()),
            read_priv_pass: Some(RO.2.into()),
            control_auth_pass: Some(control_auth.into()),
            control_priv_pass: Some(CTL.2.into()),
            ..AgentSecrets::default()
        },
    )
}

/// A migrated database, a key, a handle with short timeouts, and servers `names`.
async fn setup(dir: &Path, names: &[&str]) -> (Client, SnmpHandle, Vec<i32>) {
    let url = PgCluster::shared().create_database().await;
    let mut db = omelse::store::connect(&url).await.unwrap();
    omelse::store::migrate(&mut db).await.unwrap();
    let key_file = dir.join("snmp.key");
    SecretKey::generate(&key_file).unwrap();
    let config = SnmpConfig {
        timeout_ms: 1000,
        retries: 0,
        key_file,
        action_timeout_secs: 20,
        ..SnmpConfig::default()
    };
    let handle = SnmpHandle::start(&config).unwrap();
    let mut ids = Vec::new();
    for name in names {
        let row = db
            .query_one("INSERT INTO servers (name) VALUES ($1) RETURNING id", &[name])
            .await
            .unwrap();
        ids.push(row.get(0));
    }
    (db, handle, ids)
}

/// The private Postfix: mail for remote.test goes to a closed port (deferred), mail whose
/// subject is "hold me" is held by header_checks; `extra` is added to main.cf.
fn start_postfix(name: &str, closed_port: u16, extra: &str) -> PrivatePostfix {
    let postfix = PrivatePostfix::prepare(name);
    let d = postfix.dir.display().to_string();
    std::fs::write(postfix.dir.join("etc/header_checks"), "/^Subject: hold me/ HOLD\n").unwrap();
    let main = format!(
        "myhostname = mx.snmp.test
mynetworks = 127.0.0.0/8
header_checks = regexp:{d}/etc/header_checks
default_transport = smtp:[127.0.0.1]:{closed_port}
smtp_dns_support_level = disabled
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 7200s
{extra}"
    );
    postfix.start(&main, "", &[])
}

fn sendmail(postfix: &PrivatePostfix, subject: &str) {
    use std::io::Write;
    let mut child = Command::new("/usr/sbin/sendmail")
        .arg("-C")
        .arg(postfix.dir.join("etc"))
        .args(["-f", "alice@snmp.test", "nobody@remote.test"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    write!(child.stdin.take().unwrap(), "Subject: {subject}\n\nHello.\n").unwrap();
    assert!(child.wait().unwrap().success());
}

/// `(queue_name, queue_id)` of every queued message, from `postqueue -j`.
fn queue(postfix: &PrivatePostfix) -> Vec<(String, String)> {
    let out = Command::new("/usr/sbin/postqueue")
        .arg("-c")
        .arg(postfix.dir.join("etc"))
        .arg("-j")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["queue_name"].as_str().unwrap().to_owned(),
                v["queue_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn in_queue(postfix: &PrivatePostfix, name: &str) -> Vec<String> {
    queue(postfix)
        .into_iter()
        .filter(|(q, _)| q == name)
        .map(|(_, id)| id)
        .collect()
}

async fn wait_queue(postfix: &PrivatePostfix, deferred: usize, hold: usize) {
    for _ in 0..300 {
        let q = queue(postfix);
        let n = |name: &str| q.iter().filter(|(q, _)| q == name).count();
        if n("deferred") == deferred && n("hold") == hold && q.len() == deferred + hold {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "queue never had {deferred} deferred and {hold} held: {:?}\n{}",
        queue(postfix),
        postfix.log()
    );
}

/// The commands else-pfagent ran through its prefix (the recording wrapper).
fn ran(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("ran")).unwrap_or_default()
}

/// A wrapper that records its arguments, then runs them (what `sudo -n` would do as root).
fn recording_wrapper(dir: &Path) -> PathBuf {
    let path = dir.join("record");
    std::fs::write(
        &path,
        format!("#!/bin/sh\necho \"$*\" >> {}/ran\nexec \"$@\"\n", dir.display()),
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&path).status().unwrap();
    path
}

#[tokio::test]
async fn poll_and_act_on_a_real_postfix_over_snmpv3() {
    if !snmpd_available() || !else_tests::postfix::available() {
        return;
    }
    let dir = temp_dir("else-snmp-accept");
    let closed_port = free_udp_port("127.0.0.1");
    let postfix = start_postfix("else-snmp-postfix-accept", closed_port, "");
    for subject in ["one", "two", "three", "hold me", "hold me too"] {
        sendmail(&postfix, subject);
    }
    wait_queue(&postfix, 3, 2).await;

    let record = recording_wrapper(&dir);
    let mut env = agent_env(&dir, &postfix, Some(&record));
    env.push(("ELSE_PFAGENT_CACHE_SECS", "0".to_owned()));
    let snmpd = start_snmpd("else-snmpd-accept", "127.0.0.61", None, &env, "");
    let (mut db, handle, ids) = setup(&dir, &["mx1"]).await;
    let id = ids[0];

    // A wrong control passphrase first (before any good session of that user): refused, nothing run.
    let (settings, secrets) = agent_settings(snmpd.ip, snmpd.port, "not-the-passphrase");
    set_agent(&db, &handle, id, &settings, &secrets).await.unwrap();
    let outcome = act(&db, &handle, "tester", id, Action::new("flush", None).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.result, "refused", "{outcome:?}");
    assert!(outcome.snmp_status.contains("uthentication"), "{outcome:?}");
    assert_eq!(ran(&dir), "", "nothing may run with a wrong password");

    let (settings, secrets) = agent_settings(snmpd.ip, snmpd.port, CTL.1);
    set_agent(&db, &handle, id, &settings, &secrets).await.unwrap();

    // The poller reads the queue counts over SNMPv3.
    let samples = poller::poll_once(&mut db, &handle).await.unwrap();
    assert_eq!(samples.len(), 1);
    let s = &samples[0];
    assert!(s.reachable && s.error.is_none(), "{s:?}\n{}", snmpd.log());
    assert_eq!(s.deferred.unwrap().count, 3, "{s:?}");
    assert_eq!(s.hold.unwrap().count, 2, "{s:?}");
    assert_eq!(s.active.unwrap().count + s.incoming.unwrap().count, 0);
    assert!(s.deferred.unwrap().bytes > 0 && s.hold.unwrap().bytes > 0);
    assert_eq!(s.master_alive, Some(true));
    assert!(s.spool_used_pct.is_some() && s.load1.is_some(), "{s:?}");
    let states = latest_states(&db).await.unwrap();
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].sample.as_ref(), Some(s));
    let metrics = prometheus_text(&db).await.unwrap();
    assert!(
        metrics.contains("else_postfix_queue_messages{server=\"mx1\",queue=\"deferred\"} 3"),
        "{metrics}"
    );
    // The `extend` line of the snippet gives the same numbers to any NMS (nsExtendOutputFull).
    let mut extend_oid = vec![1, 3, 6, 1, 4, 1, 8072, 1, 3, 2, 3, 1, 2, 12];
    extend_oid.extend("else-pfqueue".bytes().map(u32::from));
    let ro = store::poll_targets(&db, &handle).await.unwrap().remove(0).1.unwrap();
    let mut answer = handle
        .engine
        .poll(vec![(id, ro)], vec![extend_oid.clone()], Duration::from_secs(5));
    let (_, response) = answer.recv().await.unwrap();
    let text = response.unwrap().get(&extend_oid).and_then(|v| v.as_text()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!((lines[6], lines[9], lines[12]), ("3", "2", "1"), "{text}");
    assert_eq!(ran(&dir), "", "reads never act");

    // Hold one deferred message, then release it.
    let target = in_queue(&postfix, "deferred")[0].clone();
    let outcome = act(&db, &handle, "tester", id, Action::new("hold", Some(&target)).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.result, "done", "{outcome:?}");
    assert!(
        outcome
            .agent_text
            .as_deref()
            .unwrap()
            .contains(&format!("postsuper -h {target}")),
        "{outcome:?}"
    );
    assert!(in_queue(&postfix, "hold").contains(&target));
    assert_eq!(in_queue(&postfix, "deferred").len(), 2);
    let outcome = act(
        &db,
        &handle,
        "tester",
        id,
        Action::new("release", Some(&target)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.result, "done", "{outcome:?}");
    assert!(in_queue(&postfix, "deferred").contains(&target));
    assert_eq!(in_queue(&postfix, "hold").len(), 2);

    // Flush: every deferred message is tried again at once (one more refused connection each).
    let attempts = |log: &str| log.lines().filter(|l| l.contains("status=deferred")).count();
    let before = attempts(&postfix.log());
    let outcome = act(&db, &handle, "tester", id, Action::new("flush", None).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.result, "done", "{outcome:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while attempts(&postfix.log()) < before + 3 {
        assert!(
            Instant::now() < deadline,
            "flush did not retry the deferred mail\n{}",
            postfix.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_queue(&postfix, 3, 2).await;

    // Delete all deferred mail: the held messages stay.
    let outcome = act(
        &db,
        &handle,
        "tester",
        id,
        Action::new("delete-deferred", None).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.result, "done", "{outcome:?}");
    wait_queue(&postfix, 0, 2).await;
    let after = poller::poll_once(&mut db, &handle).await.unwrap();
    assert_eq!((after[0].deferred.unwrap().count, after[0].hold.unwrap().count), (0, 2));

    assert_eq!(
        ran(&dir),
        format!(
            "/usr/sbin/postsuper -c {etc} -h {target}\n/usr/sbin/postsuper -c {etc} -H {target}\n\
             /usr/sbin/postqueue -c {etc} -f\n/usr/sbin/postsuper -c {etc} -d ALL deferred\n",
            etc = postfix.dir.join("etc").display()
        )
    );
    type AuditRow = (String, String, Option<String>, Option<String>, serde_json::Value);
    let audit: Vec<AuditRow> = db
        .query(
            "SELECT actor, action, target, result, details FROM audit_log ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let summary: Vec<(&str, &str)> = audit.iter().map(|a| (a.1.as_str(), a.3.as_deref().unwrap())).collect();
    assert_eq!(
        summary,
        [
            ("snmp.flush", "refused"),
            ("snmp.hold", "done"),
            ("snmp.release", "done"),
            ("snmp.flush", "done"),
            ("snmp.delete-deferred", "done"),
        ]
    );
    for (actor, _, server, _, _) in &audit {
        assert_eq!((actor.as_str(), server.as_deref()), ("tester", Some("mx1")));
    }
    assert_eq!(audit[1].4["queue_id"], target.as_str());
    assert!(audit[1].4["agent_text"].as_str().unwrap().contains("postsuper -h"));
    drop(snmpd);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_runs() {
    if !snmpd_available() || !else_tests::postfix::available() {
        return;
    }
    let dir = temp_dir("else-snmp-bad");
    let postfix = start_postfix(
        "else-snmp-postfix-bad",
        free_udp_port("127.0.0.1"),
        "enable_long_queue_ids = yes\n",
    );
    sendmail(&postfix, "hold me");
    wait_queue(&postfix, 0, 1).await;
    let held = in_queue(&postfix, "hold")[0].clone();
    let record = recording_wrapper(&dir);
    let env = agent_env(&dir, &postfix, Some(&record));
    let snmpd = start_snmpd(
        "else-snmpd-bad",
        "127.0.0.62",
        None,
        &env,
        "createUser else-sha256 SHA-256 \"sha256-auth-pass\" AES \"sha256-priv-pass\"\nrouser else-sha256 priv -V elseRead\n",
    );
    let (db, handle, ids) = setup(&dir, &["mx2"]).await;
    let (settings, secrets) = agent_settings(snmpd.ip, snmpd.port, CTL.1);
    set_agent(&db, &handle, ids[0], &settings, &secrets).await.unwrap();

    let user = |(name, auth, privacy): (&str, &str, &str)| Target {
        peer: format!("udp:{}:{}", snmpd.ip, snmpd.port),
        credentials: Credentials::Usm {
            user: name.into(),
            auth: AuthProtocol::Sha1,
            auth_pass: auth.into(),
            priv_pass: privacy.into(),
        },
        timeout: Duration::from_secs(5),
        retries: 0,
    };
    let server = ids[0];
    let set = |role, who, kind: ActionKind, value: SetValue| {
        let engine = handle.engine.clone();
        let target = user(who);
        async move { engine.set((server, role), target, kind.oid(), value, vec![]).await.0 }
    };
    let status = |r: Result<session::Response, session::SnmpError>| {
        r.map(|r| session::error_status_name(r.error_status).to_owned())
            .unwrap_or_else(|e| e.to_string())
    };
    // The agent itself refuses, whatever elsed checks: shell metacharacters, options, wrong types.
    for bad in ["4F1A;reboot", "$(id)", "-d ALL", "ABCDEF 123456", "ALL"] {
        let answer = set(Role::Control, CTL, ActionKind::Hold, SetValue::Text(bad.into())).await;
        assert_eq!(status(answer), "wrongValue", "{bad}");
    }
    let answer = set(Role::Control, CTL, ActionKind::Hold, SetValue::Integer(1)).await;
    assert_eq!(status(answer), "wrongType");
    let answer = set(Role::Control, CTL, ActionKind::Flush, SetValue::Text("1".into())).await;
    assert_eq!(status(answer), "wrongType");
    let answer = set(Role::Control, CTL, ActionKind::Flush, SetValue::Integer(2)).await;
    assert_eq!(status(answer), "wrongValue");
    // The read-only user cannot write, even a valid action.
    let answer = set(Role::Poll, RO, ActionKind::Hold, SetValue::Text(held.clone())).await;
    assert!(
        ["noAccess", "notWritable", "authorizationError"].contains(&status(answer.clone()).as_str()),
        "{answer:?}"
    );
    // SHA-256 authentication works as well as SHA (the snippet's).
    let sha256 = Target {
        credentials: Credentials::Usm {
            user: "else-sha256".into(),
            auth: AuthProtocol::Sha256,
            auth_pass: "sha256-auth-pass".into(),
            priv_pass: "sha256-priv-pass".into(),
        },
        ..user(RO)
    };
    let hold_count = mib::queue_oid(3, mib::COL_COUNT);
    let mut answer = handle
        .engine
        .poll(vec![(ids[0], sha256)], vec![hold_count.clone()], Duration::from_secs(5));
    let response = answer.recv().await.unwrap().1.unwrap();
    assert_eq!(
        response.get(&hold_count).and_then(|v| v.as_u64()),
        Some(1),
        "{response:?}"
    );

    // elsed refuses before sending, and says so in the audit log.
    assert!(Action::new("hold", Some("4F1A;reboot")).is_err());
    assert!(Action::new("flush", Some("ABCDEF")).is_err());
    assert!(Action::new("reboot", None).is_err());
    let smuggled = Action {
        kind: ActionKind::Delete,
        queue_id: Some("$(rm -rf /)".into()),
    };
    let outcome = act(&db, &handle, "tester", ids[0], smuggled).await.unwrap();
    assert_eq!(outcome.result, "refused");
    assert!(outcome.snmp_status.starts_with("not sent"), "{outcome:?}");
    let row = db
        .query_one(
            "SELECT result, details->>'queue_id' FROM audit_log WHERE id = $1",
            &[&outcome.audit_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "refused");
    assert_eq!(row.get::<_, String>(1), "$(rm -rf /)");

    assert_eq!(ran(&dir), "", "nothing may run");
    assert_eq!(in_queue(&postfix, "hold"), std::slice::from_ref(&held));

    // A long queue id (enable_long_queue_ids) is a queue id: released for real.
    assert!(held.contains('z') && held.len() > 12, "{held}");
    let outcome = act(
        &db,
        &handle,
        "tester",
        ids[0],
        Action::new("release", Some(&held)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.result, "done", "{outcome:?}");
    assert!(ran(&dir).ends_with(&format!(" -H {held}\n")), "{}", ran(&dir));
    assert!(in_queue(&postfix, "hold").is_empty());
    drop(snmpd);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_down_or_slow_agent_does_not_stall_the_others() {
    if !snmpd_available() || !else_tests::postfix::available() {
        return;
    }
    let dir = temp_dir("else-snmp-stall");
    // A pass_persist program that takes 3 s per request: snmpd answers after our 1 s timeout.
    let slow = dir.join("slow");
    std::fs::write(
        &slow,
        "#!/bin/sh\nwhile read cmd; do case \"$cmd\" in PING) echo PONG;; get|getnext) read oid; sleep 3; echo NONE;; \
         set) read oid; read value; echo not-writable;; esac; done\n",
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&slow).status().unwrap();
    // The good agent watches a real (empty) Postfix: Postfix's tools pause a second on a fatal
    // error, which a missing configuration would be.
    let postfix = start_postfix("else-snmp-postfix-stall", free_udp_port("127.0.0.1"), "");
    let env = agent_env(&dir, &postfix, None);
    // Polled twice: over SNMPv3 and, as another server, over SNMPv2c.
    let v2c = "rocommunity else-public 127.0.0.1\nrwcommunity else-private 127.0.0.1 .1.3.6.1.4.1.99999.1.1.10\n";
    let good = start_snmpd("else-snmpd-good", "127.0.0.63", None, &env, v2c);
    let slow = start_snmpd("else-snmpd-slow", "127.0.0.64", Some(&slow), &[], "");
    let down_port = free_udp_port("127.0.0.65");
    let (mut db, handle, ids) = setup(&dir, &["down", "slow", "good", "good-v2c"]).await;
    for (id, ip, port) in [
        (ids[0], "127.0.0.65", down_port),
        (ids[1], slow.ip, slow.port),
        (ids[2], good.ip, good.port),
    ] {
        let (settings, secrets) = agent_settings(ip, port, CTL.1);
        set_agent(&db, &handle, id, &settings, &secrets).await.unwrap();
    }
    let settings = AgentSettings {
        version: "2c".into(),
        read_user: None,
        control_user: None,
        ..agent_settings(good.ip, good.port, CTL.1).0
    };
    // A control community is refused: over SNMPv2c the agent is polled, never controlled.
    let with_control = AgentSecrets {
        read_community: Some("else-public".into()),
        control_community: Some("else-private".into()),
        ..AgentSecrets::default()
    };
    let refused = set_agent(&db, &handle, ids[3], &settings, &with_control)
        .await
        .unwrap_err();
    assert!(format!("{refused:#}").contains("SNMPv3"), "{refused:#}");
    let secrets = AgentSecrets {
        control_community: None,
        ..with_control
    };
    set_agent(&db, &handle, ids[3], &settings, &secrets).await.unwrap();
    let good_id = ids[2];
    // The first cycle discovers the SNMPv3 engines (the down agent's discovery times out).
    let first = poller::poll_once(&mut db, &handle).await.unwrap();
    assert_eq!(first.len(), 4, "{first:?}");
    for id in [ids[2], ids[3]] {
        assert!(first.iter().any(|s| s.server_id == id && s.reachable), "{first:?}");
    }
    for cycle in 0..2 {
        let started = Instant::now();
        let start_ts = omelse::parse::Timestamp::now();
        let samples = poller::poll_once(&mut db, &handle).await.unwrap();
        let took = started.elapsed();
        let by_id = |id: i32| samples.iter().find(|s| s.server_id == id).unwrap();
        let good_sample = by_id(good_id);
        assert!(good_sample.reachable, "cycle {cycle}: {good_sample:?}");
        let good_after = Duration::from_micros((good_sample.ts.0 - start_ts.0) as u64);
        assert!(
            good_after < Duration::from_millis(500),
            "cycle {cycle}: the good agent waited {good_after:?} for the others"
        );
        assert_eq!(
            samples[0].server_id, good_id,
            "cycle {cycle}: answers are stored as they come"
        );
        for id in [ids[0], ids[1]] {
            let s = by_id(id);
            assert!(!s.reachable && s.state == State::Down, "cycle {cycle}: {s:?}");
        }
        // Bounded: one timeout for all the known agents, one per agent discovered (the down agent
        // is tried again in the second cycle), not one per silent agent every time.
        assert!(took < Duration::from_millis(3500), "cycle {cycle} took {took:?}");
    }
    // An action on the SNMPv2c agent is refused before anything is sent (and audited); over
    // SNMPv3 it runs, through the default prefix `sudo -n`.
    let outcome = act(&db, &handle, "tester", ids[3], Action::new("flush", None).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.result, "refused", "{outcome:?}");
    assert!(outcome.snmp_status.contains("need SNMPv3"), "{outcome:?}");
    let outcome = act(&db, &handle, "tester", good_id, Action::new("flush", None).unwrap())
        .await
        .unwrap();
    assert_eq!(outcome.result, "done", "{outcome:?}");
    assert!(
        outcome.agent_text.as_deref().unwrap().contains("postqueue -f: exit 0"),
        "{outcome:?}"
    );
    drop((good, slow));
    let _ = std::fs::remove_dir_all(&dir);
}
