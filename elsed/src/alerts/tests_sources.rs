//! The detectors whose evidence does not come from the mail log: SNMP samples stored as the
//! poller stores them, greylisting decided by GreyLSE itself (with a clock the test moves), and
//! the log stream's own timing (silence, then lag) over two real imports.

use std::time::{Duration, Instant};

use omelse::parse::Timestamp;
use tokio_postgres::Client;

use super::config::AlertsConfig;
use super::detectors::{self, Finding};
use super::lifecycle;

fn at(text: &str) -> Timestamp {
    let ts: jiff::Timestamp = text.parse().unwrap();
    Timestamp(ts.as_microsecond())
}

fn keys(findings: &[Finding]) -> Vec<(&str, &str)> {
    let mut keys: Vec<(&str, &str)> = findings.iter().map(|f| (f.rule, f.key.as_str())).collect();
    keys.sort();
    keys
}

async fn server(client: &Client, name: &str) -> i32 {
    client
        .query_one("INSERT INTO servers (name) VALUES ($1) RETURNING id", &[&name])
        .await
        .unwrap()
        .get(0)
}

fn sample(server_id: i32, ts: &str, deferred: i64, active: i64) -> crate::snmp::Sample {
    let queue = |count| {
        Some(crate::snmp::QueueSample {
            count,
            bytes: count * 4096,
            oldest_secs: if count > 0 { 1800 } else { 0 },
        })
    };
    crate::snmp::Sample {
        server_id,
        ts: at(ts),
        reachable: true,
        error: None,
        incoming: queue(0),
        active: queue(active),
        deferred: queue(deferred),
        hold: queue(0),
        master_alive: Some(true),
        load1: Some(0.5),
        spool_used_pct: Some(20),
        state: crate::snmp::State::Ok,
        reasons: Vec::new(),
    }
}

#[tokio::test]
async fn queues_past_their_thresholds_and_a_silent_agent_are_found_in_the_samples() {
    let url = crate::ndr::tests::database(else_tests::PgCluster::shared()).await;
    let mut client = omelse::store::connect(&url).await.unwrap();
    let (mx1, mx2, mx3) = (
        server(&client, "mx1").await,
        server(&client, "mx2").await,
        server(&client, "mx3").await,
    );
    for id in [mx1, mx2, mx3] {
        client
            .execute(
                "INSERT INTO snmp_agents (server_id, host, version, secrets) VALUES ($1, '127.0.0.1', '2c', '\\x00')",
                &[&id],
            )
            .await
            .unwrap();
    }
    let mut unreachable = sample(mx3, "2024-05-01T09:55:00Z", 0, 0);
    unreachable.reachable = false;
    unreachable.error = Some("timeout".into());
    let samples = [
        // mx1: its deferred queue grows past 500, then 4 × 500.
        sample(mx1, "2024-05-01T09:50:00Z", 120, 3),
        sample(mx1, "2024-05-01T09:55:00Z", 700, 3),
        sample(mx1, "2024-05-01T10:00:00Z", 2600, 250),
        // mx2: calm, its last answer at 09:50 (11 minutes old at 10:01).
        sample(mx2, "2024-05-01T09:50:00Z", 4, 1),
        // mx3: answered once, then could not be reached.
        sample(mx3, "2024-05-01T09:50:00Z", 4, 1),
        unreachable,
    ];
    let mut ensured = None;
    for s in &samples {
        crate::snmp::poller::store_sample(&mut client, s, &mut ensured)
            .await
            .unwrap();
    }
    let rule = AlertsConfig::default().queues;
    let at_0955 = detectors::queues::detect(&client, &rule, at("2024-05-01T09:56:00Z"))
        .await
        .unwrap();
    assert_eq!(
        keys(&at_0955),
        [("agent", "mx3"), ("queue", "mx1/deferred")],
        "{at_0955:#?}"
    );
    assert_eq!(at_0955[1].severity, detectors::Severity::Warning);
    let found = detectors::queues::detect(&client, &rule, at("2024-05-01T10:01:00Z"))
        .await
        .unwrap();
    assert_eq!(
        keys(&found),
        [
            ("agent", "mx2"),
            ("agent", "mx3"),
            ("queue", "mx1/active"),
            ("queue", "mx1/deferred")
        ],
        "{found:#?}"
    );
    let deferred = found.iter().find(|f| f.key == "mx1/deferred").unwrap();
    assert_eq!(deferred.severity, detectors::Severity::Critical);
    assert_eq!(deferred.evidence["count"], 2600);
    assert_eq!(deferred.evidence["oldest_deferred_secs"], 1800);
    let mx3_down = found.iter().find(|f| f.key == "mx3").unwrap();
    assert!(mx3_down.title.contains("timeout"), "{}", mx3_down.title);
    // An agent switched off is not watched.
    client
        .execute("UPDATE snmp_agents SET enabled = false WHERE server_id = $1", &[&mx2])
        .await
        .unwrap();
    let found = detectors::queues::detect(&client, &rule, at("2024-05-01T10:01:00Z"))
        .await
        .unwrap();
    assert!(!keys(&found).contains(&("agent", "mx2")), "{found:#?}");
}

/// Waits until GreyLSE has stored `n` triplets (its writes are batched).
async fn triplets(client: &Client, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stored: i64 = client
            .query_one("SELECT count(*) FROM greylist_triplets", &[])
            .await
            .unwrap()
            .get(0);
        if stored >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{stored} of {n} triplets stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sender_that_used_to_retry_and_stops_is_found_and_a_spammer_that_never_did_is_not() {
    use crate::greylist::tests::{ask, config, is_defer, service, ManualClock};
    let url = crate::greylist::tests::database().await;
    let client = omelse::store::connect(&url).await.unwrap();
    let clock = ManualClock::new();
    let policy = service(&url, config("mx1.example"), clock.clone()).await;
    let recipient = |n: usize| format!("user{n}@customer.example");
    // Three days before: six triplets of sender.example, each retried after the delay; six of
    // spam.example, never retried.
    for n in 0..6 {
        let client_ip = format!("198.51.{n}.10");
        assert!(is_defer(
            &ask(&policy, &client_ip, "news@sender.example", &recipient(n)).await
        ));
        assert!(is_defer(
            &ask(&policy, "203.0.113.66", &format!("x{n}@spam.example"), &recipient(n)).await
        ));
    }
    clock.advance(400);
    for n in 0..6 {
        let client_ip = format!("198.51.{n}.10");
        let pass = ask(&policy, &client_ip, "news@sender.example", &recipient(n)).await;
        assert!(!is_defer(&pass), "{pass}");
    }
    // Today: six new triplets of each, none retried.
    clock.advance(3 * 86_400);
    for n in 6..12 {
        let client_ip = format!("198.51.{n}.10");
        assert!(is_defer(
            &ask(&policy, &client_ip, "news@sender.example", &recipient(n)).await
        ));
        assert!(is_defer(
            &ask(&policy, "203.0.113.66", &format!("x{n}@spam.example"), &recipient(n)).await
        ));
    }
    triplets(&client, 24).await;
    let passed: i64 = client
        .query_one(
            "SELECT count(*) FROM greylist_triplets WHERE passed_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(passed, 6);
    let rule = AlertsConfig::default().greylist;
    let now = |clock: &ManualClock| {
        use crate::greylist::Clock;
        Timestamp(clock.now() * Timestamp::MICROS_PER_SECOND)
    };
    // Within the grace given to retry, nothing is judged yet.
    clock.advance(30 * 60);
    let early = detectors::greylist::detect(&client, &rule, now(&clock)).await.unwrap();
    assert!(early.is_empty(), "{early:#?}");
    clock.advance(90 * 60);
    let found = detectors::greylist::detect(&client, &rule, now(&clock)).await.unwrap();
    assert_eq!(keys(&found), [("greylist", "sender.example")], "{found:#?}");
    let evidence = &found[0].evidence;
    assert_eq!(
        (
            &evidence["greylisted"],
            &evidence["never_retried"],
            &evidence["usual_share"]
        ),
        (&6.into(), &6.into(), &serde_json::Value::from(0.0))
    );
    // A sender domain is what the client claimed: the alert is for administrators.
    assert_eq!((found[0].server_id, &found[0].domain), (None, &None));
}

async fn open(client: &Client) -> Vec<String> {
    let rows = client
        .query("SELECT rule, key FROM alerts WHERE state = 'open' ORDER BY rule", &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| format!("{} {}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect()
}

/// A log of `lines` smtpd connections of `server`, one a minute from `start`.
fn log(server: &str, start: &str, lines: usize) -> String {
    let start: jiff::Timestamp = start.parse().unwrap();
    (0..lines)
        .map(|n| {
            let time = start + jiff::SignedDuration::from_secs(n as i64 * 60);
            format!(
                "{} {server} postfix/smtpd[{}]: connect from unknown[192.0.2.{}]\n",
                time.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"),
                1000 + n,
                n % 200 + 1
            )
        })
        .collect()
}

#[tokio::test]
async fn a_server_that_stops_logging_is_silent_and_one_whose_lines_come_late_lags() {
    let dir = std::env::temp_dir().join(format!("else-alerts-lag-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = dir.join("first.log");
    std::fs::write(&first, log("mx1", "2024-05-01T09:00:00Z", 30)).unwrap();
    let (mut client, url) = crate::test_fixtures::imported(&first).await;
    let config = AlertsConfig::default();
    // Its last line is 09:29: at 09:40 it is not silent yet; at 09:50 it is.
    lifecycle::evaluate(&mut client, &config, at("2024-05-01T09:40:00Z"))
        .await
        .unwrap();
    assert!(open(&client).await.is_empty());
    lifecycle::evaluate(&mut client, &config, at("2024-05-01T09:50:00Z"))
        .await
        .unwrap();
    assert_eq!(open(&client).await, ["silent mx1"]);
    // The lines of 09:30-09:39 arrive at 10:05 (a forwarding queue drained): the stream moves,
    // it is no longer silent, but 26 minutes behind the clock.
    let second = dir.join("second.log");
    std::fs::write(&second, log("mx1", "2024-05-01T09:30:00Z", 10)).unwrap();
    crate::ndr::tests::import_file(&url, &second, "2024-12-31T00:00:00Z").await;
    let (findings, _) = lifecycle::evaluate(&mut client, &config, at("2024-05-01T10:05:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys(&findings), [("ingest_lag", "mx1")], "{findings:#?}");
    assert_eq!(findings[0].evidence["minutes_behind"], 26);
    // The silence resolves once it has not been found for clear_minutes.
    lifecycle::evaluate(&mut client, &config, at("2024-05-01T10:06:00Z"))
        .await
        .unwrap();
    assert_eq!(open(&client).await, ["ingest_lag mx1", "silent mx1"]);
    let _ = std::fs::remove_dir_all(&dir);
}
