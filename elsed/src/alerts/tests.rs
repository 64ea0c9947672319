//! The detectors and the lifecycle on a real log: the three days of a real MX
//! (../shared/corpora/postfix-logsums/mail.log.gz) imported with episodes injected after its end —
//! copies of its own lines turned into a deferral burst, blocklist replies, a reject burst, and
//! a silence at the end — then every rule evaluated at chosen times.

use std::path::PathBuf;

use omelse::parse::Timestamp;
use serde_json::Value;
use tokio_postgres::Client;

use super::config::AlertsConfig;
use super::lifecycle::{self, Changes};

/// A time of the injected day, UTC.
fn at(text: &str) -> Timestamp {
    let ts: jiff::Timestamp = text.parse().unwrap();
    Timestamp(ts.as_microsecond())
}

/// The real outbound message of the corpus the episodes copy (all its lines but amavis's).
const TEMPLATE_QUEUE_ID: &str = "4Pbf0B6jCRz3tG3";

/// `copies` messages like the template, `spacing_secs` apart from `start`, each with a distinct
/// queue id and Message-ID, to `to`, whose delivery line ends in `outcome` (e.g.
/// `dsn=4.2.0, status=deferred (host … said: …)`).
fn episode(
    corpus: &str,
    start: &str,
    copies: usize,
    spacing_secs: i64,
    tag: &str,
    to: &str,
    outcome: &str,
) -> Vec<String> {
    let template: Vec<&str> = corpus
        .lines()
        .filter(|l| l.contains(&format!(" {TEMPLATE_QUEUE_ID}: ")) && !l.contains(" amavis["))
        .collect();
    assert_eq!(template.len(), 5, "the template message in the corpus: {template:#?}");
    let start: jiff::Timestamp = start.parse().unwrap();
    let mut lines = Vec::new();
    for n in 0..copies {
        let time = start + jiff::SignedDuration::from_secs(n as i64 * spacing_secs);
        let stamp = time.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
        // Postfix's long queue ids have no vowels.
        const DIGITS: &[u8] = b"bcdfghjkmnpqrstvwxy";
        let digit = |i: usize| DIGITS[i % DIGITS.len()] as char;
        let queue_id = format!("4P{tag}{}{}B6jCRz3tG3", digit(n / DIGITS.len()), digit(n));
        for line in &template {
            if line.contains("qmgr") && line.contains("removed") && !outcome.contains("status=sent") {
                continue;
            }
            let (_, rest) = line.split_once(' ').unwrap();
            let mut rest = rest
                .replace(TEMPLATE_QUEUE_ID, &queue_id)
                .replace("external01.user@gmx.de", to);
            rest = rest.replace("9ff2fa8fe462473e88b0ea6ad10797e6", &format!("{tag}{n:030}"));
            if let Some((head, _)) = rest.split_once(", dsn=") {
                rest = format!("{head}, {outcome}");
            }
            lines.push(format!("{stamp} {rest}"));
        }
    }
    lines
}

/// `copies` of the corpus's first real postscreen reject, `spacing_secs` apart from `start`.
fn reject_burst(corpus: &str, start: &str, copies: usize, spacing_secs: i64) -> Vec<String> {
    let reject = corpus
        .lines()
        .find(|l| l.contains("postscreen") && l.contains("NOQUEUE: reject"))
        .expect("a postscreen reject in the corpus");
    let start: jiff::Timestamp = start.parse().unwrap();
    (0..copies)
        .map(|n| {
            let time = start + jiff::SignedDuration::from_secs(n as i64 * spacing_secs);
            let (_, rest) = reject.split_once(' ').unwrap();
            format!("{} {rest}", time.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
        })
        .collect()
}

const DEFERRAL: &str = "dsn=4.2.1, status=deferred (host mx01.emig.gmx.net[212.227.17.5] said: 421-gmx.net (mxgmx017) Nemesis ESMTP Service not available 421-Service unavailable 421-Reject due to temporary policy restrictions (in reply to MAIL FROM command))";
const BLOCKED: &str = "dsn=5.7.1, status=bounced (host hotmail-com.olc.protection.outlook.com[104.47.10.33] said: 550 5.7.1 Unfortunately, messages from [188.34.187.246] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com] (in reply to MAIL FROM command))";

/// The corpus with the episodes after its end (2023-03-16T22:59Z), imported.
async fn real_log_with_episodes() -> Option<(Client, String)> {
    let corpora = else_tests::corpora::dir_or_skip()?;
    let corpus = else_tests::corpora::read_text(&corpora.join("postfix-logsums/mail.log.gz"));
    let mut episodes = episode(
        &corpus,
        "2023-03-17T10:00:00Z",
        12,
        90,
        "Dd",
        "someone@gmx.de",
        DEFERRAL,
    );
    episodes.extend(episode(
        &corpus,
        "2023-03-17T12:00:00Z",
        3,
        60,
        "Bb",
        "friend@hotmail.com",
        BLOCKED,
    ));
    episodes.extend(reject_burst(&corpus, "2023-03-17T14:00:00Z", 40, 30));
    Some(imported_with(&corpus, episodes).await)
}

/// The corpus and `episodes` after it, imported as `elsed import` does.
async fn imported_with(corpus: &str, episodes: Vec<String>) -> (Client, String) {
    let mut lines: Vec<String> = corpus.lines().map(str::to_owned).collect();
    lines.extend(episodes);
    let file = std::env::temp_dir().join(format!("else-alerts-{}-{}.log", std::process::id(), lines.len()));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let imported = crate::test_fixtures::imported(&PathBuf::from(&file)).await;
    let _ = std::fs::remove_file(&file);
    imported
}

/// Thresholds for a small MX (a few messages an hour).
fn small_site() -> AlertsConfig {
    let mut config = AlertsConfig::default();
    config.destination.min_attempts = 5;
    config.destination.min_failures = 3;
    // A few messages an hour: an hour of none is news only where there are usually 3 or more.
    config.flow.volume_min_usual = 3.0;
    config.rates.min_messages = 20;
    config
}

async fn open_alerts(client: &Client) -> Vec<(String, String, String, Value)> {
    client
        .query(
            "SELECT rule, key, severity, evidence FROM alerts WHERE state = 'open' ORDER BY rule, key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

async fn evaluate(client: &mut Client, config: &AlertsConfig, now: &str) -> Changes {
    let (_, changes) = lifecycle::evaluate(client, config, at(now))
        .await
        .unwrap()
        .expect("not locked");
    changes
}

fn rules(open: &[(String, String, String, Value)]) -> Vec<(&str, &str)> {
    open.iter()
        .map(|(rule, key, _, _)| (rule.as_str(), key.as_str()))
        .collect()
}

#[tokio::test]
async fn each_detector_finds_its_episode_in_a_real_log_and_its_alert_resolves() {
    let Some((mut client, _url)) = real_log_with_episodes().await else {
        return;
    };
    let config = small_site();

    // The real log as it was: nothing to say while its mail flowed.
    evaluate(&mut client, &config, "2023-03-16T22:30:00Z").await;
    assert_eq!(rules(&open_alerts(&client).await), Vec::<(&str, &str)>::new());

    // The deferral burst: 12 attempts to gmx.de, all deferred with one reply.
    let changes = evaluate(&mut client, &config, "2023-03-17T10:20:00Z").await;
    let open = open_alerts(&client).await;
    assert!(rules(&open).contains(&("destination", "helga/gmx.de")), "{open:#?}");
    let destination = &open.iter().find(|a| a.0 == "destination").unwrap().3;
    assert_eq!(destination["failures"], destination["attempts"]);
    assert!(destination["attempts"].as_i64().unwrap() >= 5, "{destination}");
    assert_eq!(destination["top_reply"]["enhanced_code"], "4.2.1");
    assert_eq!(destination["top_reply"]["remote_host"], "mx01.emig.gmx.net");
    assert!(destination["top_reply"]["text"]
        .as_str()
        .unwrap()
        .contains("Nemesis ESMTP Service not available"));
    assert!(destination["messages"]
        .as_str()
        .unwrap()
        .starts_with("/search?recipient=%40gmx.de&server="));
    assert_eq!(
        destination["queue_ids"].as_array().unwrap().len(),
        destination["failures"].as_i64().unwrap() as usize
    );
    // No inbound mail in the hour before either, where the days before had 2 to 4.
    assert!(rules(&open).contains(&("volume", "helga/inbound")), "{open:#?}");
    assert_eq!(changes.opened.len(), 2, "{changes:?}");

    // An evaluation later, the condition holds: the same alert, updated, not a second one.
    let changes = evaluate(&mut client, &config, "2023-03-17T10:25:00Z").await;
    assert!(changes.opened.is_empty() && changes.reopened.is_empty(), "{changes:?}");
    let count: i64 = client
        .query_one("SELECT count(*) FROM alerts WHERE rule = 'destination'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);

    // The window passed without a failure: resolved by itself.
    evaluate(&mut client, &config, "2023-03-17T11:05:00Z").await;
    assert!(!rules(&open_alerts(&client).await).contains(&("destination", "helga/gmx.de")));
    let history: Vec<String> = client
        .query(
            "SELECT e.kind FROM alert_events e JOIN alerts a ON a.id = e.alert_id
             WHERE a.rule = 'destination' ORDER BY e.at, e.id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(history, ["opened", "resolved"]);

    // Microsoft's S3150 block of our IP, per server and IP.
    evaluate(&mut client, &config, "2023-03-17T12:05:00Z").await;
    let open = open_alerts(&client).await;
    let blocked = open
        .iter()
        .find(|a| a.0 == "blocklist")
        .unwrap_or_else(|| panic!("{open:#?}"));
    assert_eq!(blocked.1, "helga/Microsoft (S3140/S3150)/188.34.187.246");
    assert_eq!(blocked.2, "critical");
    assert_eq!(blocked.3["replies"], 3);
    assert_eq!(blocked.3["recipient_domains"]["hotmail.com"], 3);
    // The volume alert resolved at 11:05 (10:00-11:00 was as quiet as usual); 11:00-12:00 had no
    // inbound mail where the days before had 4 or 5: the same alert reopens, a second occurrence.
    let volume = open
        .iter()
        .find(|a| a.0 == "volume")
        .unwrap_or_else(|| panic!("{open:#?}"));
    assert_eq!(
        (volume.1.as_str(), &volume.3["messages"], &volume.3["usual"]),
        ("helga/inbound", &Value::from(0.0), &Value::from(5.0))
    );
    let occurrences: Vec<i32> = client
        .query("SELECT occurrences FROM alerts WHERE rule = 'volume'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(occurrences, [2]);

    // The reject burst: 40 rejects in half an hour where the days before had few.
    evaluate(&mut client, &config, "2023-03-17T14:25:00Z").await;
    let open = open_alerts(&client).await;
    let spike = open
        .iter()
        .find(|a| a.0 == "reject_rate")
        .unwrap_or_else(|| panic!("{open:#?}"));
    assert_eq!(spike.1, "helga");
    assert!(spike.3["share"].as_f64().unwrap() > spike.3["threshold"].as_f64().unwrap());

    // The log's last line is the burst's (14:19:30): an hour and a half later, the server is
    // silent (the silence of a server is about now: its last line does not move).
    evaluate(&mut client, &config, "2023-03-17T15:50:00Z").await;
    let open = open_alerts(&client).await;
    let silent = open
        .iter()
        .find(|a| a.0 == "silent")
        .unwrap_or_else(|| panic!("{open:#?}"));
    assert_eq!(
        (silent.1.as_str(), &silent.3["minutes_behind"]),
        ("helga", &Value::from(90))
    );
    // The deferrals and the blocklisting have resolved by themselves; the rejects of the last two
    // hours and the missing inbound mail still hold.
    assert_eq!(
        rules(&open),
        [
            ("reject_rate", "helga"),
            ("silent", "helga"),
            ("volume", "helga/inbound")
        ]
    );
    let resolved: Vec<String> = client
        .query("SELECT rule FROM alerts WHERE state = 'resolved' ORDER BY rule", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // (and the volume alert of the morning: 13:00-14:00 was as quiet as usual, and the drop of
    // 14:00-15:00 came later than the regrouping window: a new alert).
    assert_eq!(resolved, ["blocklist", "destination", "volume"]);
}

const UNKNOWN_USER: &str = "dsn=5.1.1, status=bounced (host mx.customer.example[203.0.113.25] said: 550 5.1.1 <someone@customer.example>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))";

#[tokio::test]
async fn a_group_domains_bounces_jumping_above_its_usual_share_open_an_alert() {
    let Some(corpora) = else_tests::corpora::dir_or_skip() else {
        return;
    };
    let corpus = else_tests::corpora::read_text(&corpora.join("postfix-logsums/mail.log.gz"));
    let sent = "dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 4XyZ)";
    // Mail to customer.example at 15:00 on the corpus's last two days, all delivered; on the
    // day after, 10 delivered and then 15 bounced for unknown users (an import of bad addresses).
    let mut episodes = episode(
        &corpus,
        "2023-03-15T15:00:00Z",
        15,
        120,
        "Hh",
        "a@customer.example",
        sent,
    );
    episodes.extend(episode(
        &corpus,
        "2023-03-16T15:00:00Z",
        15,
        120,
        "Jj",
        "a@customer.example",
        sent,
    ));
    episodes.extend(episode(
        &corpus,
        "2023-03-17T15:00:00Z",
        10,
        60,
        "Kk",
        "a@customer.example",
        sent,
    ));
    episodes.extend(episode(
        &corpus,
        "2023-03-17T15:20:00Z",
        15,
        60,
        "Mm",
        "someone@customer.example",
        UNKNOWN_USER,
    ));
    let (mut client, _url) = imported_with(&corpus, episodes).await;
    let helga: i32 = client
        .query_one("SELECT id FROM servers WHERE name = 'helga'", &[])
        .await
        .unwrap()
        .get(0);
    crate::test_fixtures::group(&mut client, helga, "customer.example").await;
    let rule = small_site().rates;
    let calm = super::detectors::rates::detect(&client, &rule, at("2023-03-16T15:50:00Z"))
        .await
        .unwrap();
    assert!(!calm.iter().any(|f| f.rule == "bounce_rate"), "{calm:#?}");
    let found = super::detectors::rates::detect(&client, &rule, at("2023-03-17T15:50:00Z"))
        .await
        .unwrap();
    let bounces: Vec<_> = found.iter().filter(|f| f.rule == "bounce_rate").collect();
    assert_eq!(bounces.len(), 1, "{found:#?}");
    let evidence = &bounces[0].evidence;
    assert_eq!(bounces[0].key, "customer.example");
    assert_eq!(bounces[0].domain.as_deref(), Some("customer.example"));
    assert_eq!((&evidence["failing"], &evidence["total"]), (&15.0.into(), &25.0.into()));
    assert_eq!(evidence["baseline"]["median"], 0.0);
    assert_eq!(evidence["baseline"]["days"], 2);
}

/// A webhook receiver on a loopback port: what it was sent (signature header, body), answering
/// 500 to the first `failures` requests.
async fn receiver(failures: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>) {
    receiver_at("/hook", failures).await
}

/// [`receiver`] at `path` (the address returned has it).
async fn receiver_at(
    path: &str,
    failures: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>) {
    use axum::http::{HeaderMap, StatusCode};
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let kept = received.clone();
    let app = axum::Router::new().route(
        path,
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            let attempts = attempts.clone();
            async move {
                if attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < failures {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let signature = headers
                    .get(super::channels::webhook::SIGNATURE_HEADER)
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                kept.lock().unwrap().push((signature, body.to_vec()));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}{path}"), received)
}

#[tokio::test]
async fn a_webhook_hears_one_signed_open_and_one_resolve_retried_until_it_answers() {
    let url = crate::ndr::tests::database(else_tests::PgCluster::shared()).await;
    let mut client = omelse::store::connect(&url).await.unwrap();
    let (hook, received) = receiver(1).await;
    let secret = "a secret of sixteen or more";
    let mut config = AlertsConfig::default();
    config.channels.webhooks.push(super::config::WebhookConfig {
        url: hook,
        secret: secret.to_owned(),
    });
    config.channels.backoff_secs = 30;
    let finding = super::detectors::Finding {
        rule: "destination",
        key: "out1/example.net".into(),
        server_id: None,
        domain: Some("example.net".into()),
        severity: super::detectors::Severity::Warning,
        title: "example.net stops accepting mail from out1".into(),
        evidence: serde_json::json!({"attempts": 10, "failures": 9}),
    };
    let reports = crate::schedule::ReportsConfig::default();
    let tx = client.transaction().await.unwrap();
    // Found at 10:00 and 10:05: one opening; not found at 10:10 (within clear_minutes) nor at
    // 10:16 (past it): resolved once.
    lifecycle::apply(&tx, &config, std::slice::from_ref(&finding), at("2024-05-01T10:00:00Z"))
        .await
        .unwrap();
    lifecycle::apply(&tx, &config, std::slice::from_ref(&finding), at("2024-05-01T10:05:00Z"))
        .await
        .unwrap();
    let quiet = lifecycle::apply(&tx, &config, &[], at("2024-05-01T10:10:00Z"))
        .await
        .unwrap();
    assert_eq!(quiet, Changes::default());
    tx.commit().await.unwrap();
    // The first attempt fails (500): nothing sent, the opening waits for its back-off, and the
    // resolution (queued next) waits for the opening.
    let sent = super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:10:01Z"))
        .await
        .unwrap();
    assert_eq!(sent, 0);
    let resolved = lifecycle::apply(&client, &config, &[], at("2024-05-01T10:16:00Z"))
        .await
        .unwrap();
    assert_eq!(resolved.resolved.len(), 1);
    assert_eq!(
        super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:10:20Z"))
            .await
            .unwrap(),
        0
    );
    // Past the back-off: the opening, then the resolution.
    assert_eq!(
        super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:16:01Z"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:16:02Z"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:30:00Z"))
            .await
            .unwrap(),
        0
    );
    let received = received.lock().unwrap().clone();
    let events: Vec<String> = received
        .iter()
        .map(|(signature, body)| {
            assert_eq!(*signature, super::channels::webhook::signature(secret, body));
            let body: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(body["alert"]["title"], finding.title);
            body["event"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(events, ["open", "resolve"]);
    let attempts: i32 = client
        .query_one("SELECT attempts FROM alert_notifications WHERE event = 'open'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn a_silenced_alert_is_not_notified_and_acknowledgements_are_in_its_history() {
    let url = crate::ndr::tests::database(else_tests::PgCluster::shared()).await;
    let client = omelse::store::connect(&url).await.unwrap();
    let mut config = AlertsConfig::default();
    config.channels.email_to.push("postmaster@example.org".into());
    let finding = super::detectors::Finding {
        rule: "silent",
        key: "mx1".into(),
        server_id: Some(1),
        domain: None,
        severity: super::detectors::Severity::Critical,
        title: "mx1 has sent no log line for 20 minutes".into(),
        evidence: serde_json::json!({}),
    };
    let opened = lifecycle::apply(
        &client,
        &config,
        std::slice::from_ref(&finding),
        at("2024-05-01T10:00:00Z"),
    )
    .await
    .unwrap();
    let id = opened.opened[0];
    lifecycle::acknowledge(&client, id, "alice", at("2024-05-01T10:01:00Z"))
        .await
        .unwrap();
    lifecycle::silence(
        &client,
        id,
        Some(at("2024-05-01T12:00:00Z")),
        "alice",
        at("2024-05-01T10:02:00Z"),
    )
    .await
    .unwrap();
    // Resolved, then back within the regrouping window while silenced: the same alert reopens,
    // the acknowledgement is cleared, and no channel hears of it.
    lifecycle::apply(&client, &config, &[], at("2024-05-01T10:20:00Z"))
        .await
        .unwrap();
    let again = lifecycle::apply(
        &client,
        &config,
        std::slice::from_ref(&finding),
        at("2024-05-01T10:30:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(again.reopened, [id]);
    let row = client
        .query_one(
            "SELECT occurrences, acknowledged_by, silenced_by FROM alerts WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i32>(0),
            row.get::<_, Option<String>>(1),
            row.get::<_, Option<String>>(2)
        ),
        (2, None, Some("alice".into()))
    );
    let notifications: Vec<String> = client
        .query("SELECT event FROM alert_notifications ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The first opening (before the silence) and its resolution; nothing of the reopening.
    assert_eq!(notifications, ["open", "resolve"]);
    let history: Vec<(String, Option<String>)> = client
        .query(
            "SELECT kind, actor FROM alert_events WHERE alert_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, Option<String>)> = [
        ("opened", None),
        ("acknowledged", Some("alice")),
        ("silenced", Some("alice")),
        ("resolved", None),
        ("reopened", None),
    ]
    .into_iter()
    .map(|(k, a)| (k.to_owned(), a.map(str::to_owned)))
    .collect();
    assert_eq!(history, expected);
}

#[tokio::test]
async fn a_group_member_sees_only_the_alerts_its_servers_and_domains_allow() {
    use super::detectors::{Finding, Severity};
    use crate::access::{GroupScope, Scope};
    use crate::web::api::alerts;

    let url = crate::ndr::tests::database(else_tests::PgCluster::shared()).await;
    let client = omelse::store::connect(&url).await.unwrap();
    let finding = |rule: &'static str, key: &str, server_id: Option<i32>, domain: Option<&str>| Finding {
        rule,
        key: key.into(),
        server_id,
        domain: domain.map(str::to_owned),
        severity: Severity::Warning,
        title: format!("{rule} {key}"),
        evidence: serde_json::json!({}),
    };
    let findings = [
        finding("silent", "s1", Some(1), None),
        finding("queue", "s2/deferred", Some(2), None),
        finding("volume", "s1/inbound", Some(1), None),
        finding("reject_rate", "s2", Some(2), None),
        finding("destination", "s1/a.example", Some(1), Some("a.example")),
        finding("destination", "s1/gmx.example", Some(1), Some("gmx.example")),
        finding("bounce_rate", "b.example", None, Some("b.example")),
        finding("greylist", "forged.example", None, None),
    ];
    let config = AlertsConfig::default();
    lifecycle::apply(&client, &config, &findings, at("2024-05-01T10:00:00Z"))
        .await
        .unwrap();
    // Group a: server 1 shared with others, its domain a.example. Group b: servers 1 and 2, the
    // second owned whole, its domain b.example.
    let a = Scope::Groups(vec![GroupScope {
        server_ids: vec![1],
        domains: vec!["a.example".into()],
        whole_server_ids: vec![],
    }]);
    let b = Scope::Groups(vec![GroupScope {
        server_ids: vec![1, 2],
        domains: vec!["b.example".into()],
        whole_server_ids: vec![2],
    }]);
    let end_user = Scope::Addresses(vec!["someone@a.example".into()]);
    async fn seen(client: &Client, scope: &Scope) -> Vec<String> {
        let mut keys: Vec<String> = alerts::list(client, scope, "all", 100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| format!("{} {}", a.rule, a.key))
            .collect();
        keys.sort();
        keys
    }
    assert_eq!(seen(&client, &Scope::All).await.len(), findings.len());
    // a: the health of its server, the destination that is its own domain; not the volume of
    // a server it shares, not another destination's failures (every customer's messages).
    assert_eq!(seen(&client, &a).await, ["destination s1/a.example", "silent s1"]);
    // b: the health of both servers, what is counted over the server it owns whole, its
    // domain's bounces.
    assert_eq!(
        seen(&client, &b).await,
        [
            "bounce_rate b.example",
            "queue s2/deferred",
            "reject_rate s2",
            "silent s1"
        ]
    );
    assert!(seen(&client, &end_user).await.is_empty());
    // An alert outside the scope does not exist for the caller (its detail, acknowledging and
    // silencing answer 404).
    let greylist: i64 = client
        .query_one("SELECT id FROM alerts WHERE rule = 'greylist'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(alerts::find(&client, &b, greylist).await.unwrap().is_none());
    assert!(alerts::find(&client, &Scope::All, greylist).await.unwrap().is_some());
}

/// A loopback SMTP server that accepts every message: the port, and the DATA of each message
/// received with its envelope recipients.
async fn smtp_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<(Vec<String>, String)>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
                let mut recipients = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
                    let answer: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 sink.test\r\n",
                        "RCPT" => {
                            recipients.push(line[8..].trim_matches(['<', '>', ' ']).to_owned());
                            b"250 2.1.5 Ok\r\n"
                        }
                        "DATA" => {
                            write
                                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                                .await
                                .unwrap();
                            let mut data = String::new();
                            while let Ok(Some(line)) = lines.next_line().await {
                                if line == "." {
                                    break;
                                }
                                data.push_str(&line);
                                data.push('\n');
                            }
                            kept.lock().unwrap().push((std::mem::take(&mut recipients), data));
                            b"250 2.0.0 Ok: queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 2.0.0 Bye\r\n").await;
                            return;
                        }
                        _ => b"250 2.0.0 Ok\r\n",
                    };
                    write.write_all(answer).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn e_mail_and_alertmanager_hear_the_opening_and_the_resolution() {
    let url = crate::ndr::tests::database(else_tests::PgCluster::shared()).await;
    let client = omelse::store::connect(&url).await.unwrap();
    let (smtp_port, mails) = smtp_receiver().await;
    let (alertmanager, posted) = receiver_at("/api/v2/alerts", 0).await;
    let mut config = AlertsConfig {
        link_base: "https://else.example.org/".into(),
        ..Default::default()
    };
    config.channels.email_to = vec!["postmaster@example.org".into(), "noc@example.org".into()];
    config.channels.alertmanager = vec![alertmanager.trim_end_matches("/api/v2/alerts").to_owned()];
    let reports = crate::schedule::ReportsConfig {
        relay_host: "127.0.0.1".into(),
        relay_port: smtp_port,
        starttls: false,
        from: "else@example.org".into(),
        ..Default::default()
    };
    let finding = super::detectors::Finding {
        rule: "queue",
        key: "out1/deferred".into(),
        server_id: None,
        domain: None,
        severity: super::detectors::Severity::Critical,
        title: "out1's deferred queue holds 2600 messages (threshold 500)".into(),
        evidence: serde_json::json!({"count": 2600, "threshold": 500}),
    };
    let opened = lifecycle::apply(
        &client,
        &config,
        std::slice::from_ref(&finding),
        at("2024-05-01T10:00:00Z"),
    )
    .await
    .unwrap();
    let id = opened.opened[0];
    assert_eq!(
        super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:00:01Z"))
            .await
            .unwrap(),
        2
    );
    lifecycle::apply(&client, &config, &[], at("2024-05-01T10:11:00Z"))
        .await
        .unwrap();
    assert_eq!(
        super::channels::dispatch(&client, &config, &reports, at("2024-05-01T10:11:01Z"))
            .await
            .unwrap(),
        2
    );
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    for ((recipients, data), state) in mails.iter().zip(["OPEN", "RESOLVED"]) {
        assert_eq!(recipients, &["postmaster@example.org", "noc@example.org"]);
        // Long headers are folded (RFC 5322): unfolded, the subject is the title.
        let unfolded = data.replace("\n ", " ");
        assert!(
            unfolded.contains(&format!("Subject: [ELSE {state}] {}", finding.title)),
            "{data}"
        );
        assert!(data.contains("From: else@example.org"), "{data}");
        assert!(
            data.contains(&format!("https://else.example.org/alerts/{id}")),
            "{data}"
        );
        assert!(data.contains("\"count\": 2600"), "{data}");
    }
    let posted: Vec<Value> = posted
        .lock()
        .unwrap()
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).unwrap())
        .collect();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    let (open, resolve) = (&posted[0][0], &posted[1][0]);
    assert_eq!(open["labels"]["alertname"], "else_queue");
    assert_eq!(open["labels"]["key"], "out1/deferred");
    assert_eq!(open["labels"]["severity"], "critical");
    assert_eq!(open["annotations"]["summary"], finding.title);
    assert_eq!(open["startsAt"], resolve["startsAt"]);
    assert!(open.get("endsAt").is_none(), "{open}");
    assert_eq!(resolve["labels"], open["labels"]);
    let ends: jiff::Timestamp = resolve["endsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends, "2024-05-01T10:11:00Z".parse::<jiff::Timestamp>().unwrap());
}

#[tokio::test]
async fn acknowledging_and_silencing_are_audited_and_refused_outside_the_scope() {
    use crate::access::{GroupScope, Scope};
    use crate::web::api::alerts::{act, Action};
    let url = crate::ndr::tests::database(else_tests::PgCluster::shared()).await;
    let mut client = omelse::store::connect(&url).await.unwrap();
    let finding = super::detectors::Finding {
        rule: "queue",
        key: "mx2/deferred".into(),
        server_id: Some(2),
        domain: None,
        severity: super::detectors::Severity::Warning,
        title: "mx2's deferred queue holds 700 messages (threshold 500)".into(),
        evidence: serde_json::json!({}),
    };
    let id = lifecycle::apply(
        &client,
        &AlertsConfig::default(),
        &[finding],
        at("2024-05-01T10:00:00Z"),
    )
    .await
    .unwrap()
    .opened[0];
    let on = |server| {
        Scope::Groups(vec![GroupScope {
            server_ids: vec![server],
            domains: vec!["a.example".into()],
            whole_server_ids: vec![],
        }])
    };
    // A member of a group without mx2: the alert does not exist for them; nothing is recorded.
    let refused = act(
        &mut client,
        &on(1),
        "mallory",
        id,
        Action::Acknowledge,
        at("2024-05-01T10:01:00Z"),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.status, axum::http::StatusCode::NOT_FOUND);
    let refused = act(
        &mut client,
        &on(1),
        "mallory",
        id,
        Action::Silence(None),
        at("2024-05-01T10:01:00Z"),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.status, axum::http::StatusCode::NOT_FOUND);
    // A member of mx2's group acknowledges, then silences for an hour.
    let acknowledged = act(
        &mut client,
        &on(2),
        "alice",
        id,
        Action::Acknowledge,
        at("2024-05-01T10:02:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(acknowledged.acknowledged_by.as_deref(), Some("alice"));
    let until = at("2024-05-01T11:03:00Z");
    let silenced = act(
        &mut client,
        &on(2),
        "alice",
        id,
        Action::Silence(Some(until)),
        at("2024-05-01T10:03:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(
        (silenced.silenced_until, silenced.silenced_by.as_deref()),
        (Some(until), Some("alice"))
    );
    let audited: Vec<(String, String, Option<String>)> = client
        .query("SELECT actor, action, target FROM audit_log ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let target = Some(id.to_string());
    assert_eq!(
        audited,
        [
            ("alice".to_owned(), "alert.acknowledge".to_owned(), target.clone()),
            ("alice".to_owned(), "alert.silence".to_owned(), target)
        ]
    );
    let actors: Vec<Option<String>> = client
        .query("SELECT actor FROM alert_events WHERE alert_id = $1 ORDER BY id", &[&id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actors, [None, Some("alice".into()), Some("alice".into())]);
}
