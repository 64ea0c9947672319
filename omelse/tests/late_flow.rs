//! Rollups when a later line changes what an hour already refreshed counts: the next hop's
//! delivery decides where an earlier delivery went (its flow), or an expiry days later counts a
//! recipient at its last attempt. Written line by line with a refresh after each, the rollups
//! must end as they are when every line is known before the first refresh.

use else_tests::PgCluster;
use omelse::correlate::CorrelatorConfig;
use omelse::ingest::{self, Pipeline};
use omelse::parse::{Clock, Timestamp};
use omelse::store::{self, Writer};
use tokio_postgres::Client;

/// out1 submits a message for erin (external: outbound at once) and carol. carol's first attempt
/// (10:10) cannot reach mx1 (`relay=none`: external, outbound); the next one (11:59) hands her to
/// mx1, whose delivery at 12:30 decides she was internal. Her 10:10 deferral, in an hour neither
/// the message's start nor her last attempt, moves from outbound to internal; the message's flow
/// (outbound, erin's) does not change.
const LATE: &str = "\
Mar 14 09:58:00 out1 postfix/submission/smtpd[4301]: connect from laptop.example.com[192.0.2.50]
Mar 14 09:58:01 out1 postfix/submission/smtpd[4301]: 4ZdR8m2Tc3z7Kx: client=laptop.example.com[192.0.2.50], sasl_method=PLAIN, sasl_username=alice
Mar 14 09:58:01 out1 postfix/cleanup[4305]: 4ZdR8m2Tc3z7Kx: message-id=<late-flow@example.com>
Mar 14 09:58:01 out1 postfix/qmgr[3010]: 4ZdR8m2Tc3z7Kx: from=<alice@example.com>, size=3000, nrcpt=2 (queue active)
Mar 14 09:58:01 out1 postfix/submission/smtpd[4301]: disconnect from laptop.example.com[192.0.2.50] ehlo=2 starttls=1 auth=1 mail=1 rcpt=2 data=1 quit=1 commands=9
Mar 14 09:58:02 out1 postfix/smtp[4310]: 4ZdR8m2Tc3z7Kx: to=<erin@example.net>, relay=mail.example.net[198.51.100.23]:25, delay=1.1, delays=0.1/0.01/0.5/0.49, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 6D6E7F8092)
Mar 14 10:10:00 out1 postfix/smtp[4311]: 4ZdR8m2Tc3z7Kx: to=<carol@example.com>, relay=none, delay=720, delays=0.1/0.01/720/0, dsn=4.4.1, status=deferred (connect to mx1.example.com[192.0.2.10]:25: Connection refused)
Mar 14 11:59:59 out1 postfix/smtp[4312]: 4ZdR8m2Tc3z7Kx: to=<carol@example.com>, relay=mx1.example.com[192.0.2.10]:25, delay=7318, delays=7316/0.01/0.1/2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 8E0A1B2D3F)
Mar 14 11:59:59 out1 postfix/qmgr[3010]: 4ZdR8m2Tc3z7Kx: removed
Mar 14 12:00:01 mx1 postfix/smtpd[1240]: connect from out1.example.com[192.0.2.11]
Mar 14 12:00:01 mx1 postfix/smtpd[1240]: 8E0A1B2D3F: client=out1.example.com[192.0.2.11]
Mar 14 12:00:01 mx1 postfix/cleanup[1210]: 8E0A1B2D3F: message-id=<late-flow@example.com>
Mar 14 12:00:01 mx1 postfix/qmgr[815]: 8E0A1B2D3F: from=<alice@example.com>, size=3210, nrcpt=1 (queue active)
Mar 14 12:00:01 mx1 postfix/smtpd[1240]: disconnect from out1.example.com[192.0.2.11] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 12:30:00 mx1 postfix/lmtp[1220]: 8E0A1B2D3F: to=<carol@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=1799, delays=1799/0.01/0.02/0.17, dsn=2.0.0, status=sent (250 2.0.0 <carol@example.com> Saved)
Mar 14 12:30:00 mx1 postfix/qmgr[815]: 8E0A1B2D3F: removed
";

/// The fixture of the other tests (a content filter, out1 relaying to mx1, a bounce) and `late`
/// (the late decision above, or it days later), in time order as one log.
fn lines(late: &str) -> Vec<String> {
    let fixture = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/mail.log")).unwrap();
    let mut lines: Vec<String> = fixture.lines().chain(late.lines()).map(str::to_owned).collect();
    lines.sort_by_key(|line| line.get(..15).unwrap_or_default().to_owned());
    lines
}

/// A database with the fixture's servers and a group owning example.com (rows per domain too).
async fn database() -> Client {
    let url = PgCluster::shared().create_database().await;
    let mut client = store::connect(&url).await.unwrap();
    store::migrate(&mut client).await.unwrap();
    else_tests::register_fixture_servers(&url).await;
    client
        .batch_execute(
            "INSERT INTO groups (id, name) OVERRIDING SYSTEM VALUE VALUES (1, 'example');
             INSERT INTO group_domains VALUES (1, 'example.com');",
        )
        .await
        .unwrap();
    client
}

/// Every hour of 2024 is refreshed hour by hour (as today's are).
fn hot() -> Timestamp {
    Timestamp(
        "2000-01-01T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_microsecond(),
    )
}

/// A message of out1 to dave, deferred at 10:10 and for the last time at 11:40, expires five days
/// later (qmgr `status=expired`, maximal_queue_lifetime; no bounce line). The expiry counts at
/// the recipient's last attempt, 11:00, an hour that the expiry's batch has no line of: only the
/// recipient's change marks it (neither the message's start, 09:58, nor the expiry's hour).
const EXPIRY: &str = "\
Mar 14 09:58:00 out1 postfix/pickup[4300]: 7A1B2C3D4E: uid=1000 from=<bob>
Mar 14 09:58:00 out1 postfix/cleanup[4305]: 7A1B2C3D4E: message-id=<expiry@example.com>
Mar 14 09:58:00 out1 postfix/qmgr[3010]: 7A1B2C3D4E: from=<bob@example.com>, size=2000, nrcpt=1 (queue active)
Mar 14 10:10:00 out1 postfix/smtp[4320]: 7A1B2C3D4E: to=<dave@example.org>, relay=none, delay=720, delays=0.1/0.01/720/0, dsn=4.4.1, status=deferred (connect to mx.example.org[203.0.113.5]:25: Connection refused)
Mar 14 11:40:00 out1 postfix/smtp[4321]: 7A1B2C3D4E: to=<dave@example.org>, relay=none, delay=6120, delays=6119/0.01/1/0, dsn=4.4.1, status=deferred (connect to mx.example.org[203.0.113.5]:25: Connection refused)
Mar 19 13:20:00 out1 postfix/qmgr[3010]: 7A1B2C3D4E: from=<bob@example.com>, status=expired, returned to sender
";

/// Writes `lines` through the pipeline, `per_batch` lines a batch, refreshing the rollups after
/// each batch; returns the rollups' rows.
async fn rollups_written(lines: &[String], per_batch: usize) -> (Vec<String>, Vec<String>) {
    let mut client = database().await;
    let correlator = ingest::resume(&client, CorrelatorConfig::default(), None)
        .await
        .unwrap();
    let reference = Timestamp(
        "2024-03-20T00:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_microsecond(),
    );
    let mut pipeline = Pipeline::new(Clock::new(jiff::tz::TimeZone::UTC, reference), correlator);
    let mut writer = Writer::new();
    for batch in lines.chunks(per_batch) {
        for line in batch {
            pipeline.push_line(line);
        }
        writer.write_batch(&mut client, &pipeline.take_batch()).await.unwrap();
        store::refresh_rollups_hot_since(&mut client, hot()).await.unwrap();
    }
    let rows = |sql: &'static str| {
        let client = &client;
        async move {
            let mut rows: Vec<String> = client.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
            rows.sort();
            rows
        }
    };
    let traffic = rows(
        "SELECT concat_ws('|', t.hour, s.name, t.flow, t.by_domain, t.domain, t.metric, t.messages, t.bytes)
         FROM traffic_hourly t JOIN servers s ON s.id = t.server_id",
    )
    .await;
    let keys = rows(
        "SELECT concat_ws('|', t.kind, t.hour, s.name, t.flow, t.by_domain, t.domain, t.key, t.messages, t.bytes)
         FROM stats_hourly t JOIN servers s ON s.id = t.server_id",
    )
    .await;
    (traffic, keys)
}

#[tokio::test]
async fn rollups_of_a_flow_decided_late_end_as_when_it_was_known_at_once() {
    // The same story with carol's successful retry and mx1's lines two days later: the deferral
    // that moves lies in a daily partition of its own, found through the life's window.
    let days_later = LATE
        .replace("Mar 14 11:59:59", "Mar 16 11:59:59")
        .replace("Mar 14 12:", "Mar 16 12:");
    for late in [LATE, days_later.as_str()] {
        let lines = lines(late);
        let (traffic, keys) = rollups_written(&lines, usize::MAX).await;
        // The late decision is in the rows known at once: carol's 10:10 deferral is internal.
        assert!(
            traffic
                .iter()
                .any(|r| r.contains("03-14 10:00:00+00|out1|internal|f||deferred|1|")),
            "{traffic:#?}"
        );
        let (traffic_by_line, keys_by_line) = rollups_written(&lines, 1).await;
        assert_eq!(traffic_by_line, traffic);
        assert_eq!(keys_by_line, keys);
    }
}

#[tokio::test]
async fn an_expiry_days_later_counts_in_the_hour_of_the_last_attempt() {
    let lines: Vec<String> = EXPIRY.lines().map(str::to_owned).collect();
    let (traffic, keys) = rollups_written(&lines, usize::MAX).await;
    let expired: Vec<&String> = traffic.iter().filter(|r| r.contains("|expired|")).collect();
    assert!(
        !expired.is_empty() && expired.iter().all(|r| r.starts_with("2024-03-14 11:00:00+00|out1|")),
        "{traffic:#?}"
    );
    let (traffic_by_line, keys_by_line) = rollups_written(&lines, 1).await;
    assert_eq!(traffic_by_line, traffic);
    assert_eq!(keys_by_line, keys);
}
