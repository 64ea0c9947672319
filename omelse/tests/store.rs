//! The PostgreSQL store against a real server (a throwaway cluster from `else-tests`).

use std::collections::BTreeMap;
use std::time::Duration;

use else_tests::PgCluster;
use omelse::keys::hash_parts;
use omelse::parse::Timestamp;
use omelse::store::{
    self, Batch, DeliveryRow, EventRow, LinkRow, MessageRow, RecipientRow, RejectRow, SessionRow, StoreError, Writer,
    LATEST_SCHEMA_VERSION, PARTITIONED_TABLES,
};
use tokio_postgres::Client;

const SECOND: i64 = 1_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn at(text: &str) -> Timestamp {
    Timestamp(text.parse::<jiff::Timestamp>().unwrap().as_microsecond())
}

async fn fresh_db() -> Client {
    let url = PgCluster::shared().create_database().await;
    let mut client = store::connect(&url).await.unwrap();
    store::migrate(&mut client).await.unwrap();
    client
}

const FLOWS: [Option<&str>; 4] = [Some("inbound"), Some("outbound"), Some("internal"), None];
const STATUSES: [&str; 4] = ["sent", "deferred", "bounced", "expired"];

/// A consistent batch: `n` messages on `host` from `base` on, 7 minutes apart (so several hours
/// and, for large `n`, days), each with two recipients, their delivery attempts, log lines, an
/// smtpd session, and for some a reject or a link.
fn sample_batch(host: &str, base: Timestamp, n: usize) -> Batch {
    let mut b = Batch::default();
    for i in 0..n {
        let start = Timestamp(base.0 + i as i64 * 7 * MINUTE);
        let uid = hash_parts(&[host.as_bytes(), &i.to_le_bytes(), b"message"]);
        let queue_id = format!("Q{i:05X}");
        let closed = i % 5 != 0;
        let flow = FLOWS[i % 4];
        let size = 1000 + i as i64;
        b.messages.push(MessageRow {
            uid,
            started_at: start,
            host: host.into(),
            queue_id: queue_id.clone(),
            first_seen: start,
            last_seen: Timestamp(start.0 + MINUTE),
            sender: Some(if i % 3 == 0 {
                String::new()
            } else {
                format!("User{i}@Sender{}.Example", i % 4)
            }),
            size: Some(size),
            nrcpt: Some(2),
            message_id: Some(format!("<{i}@mid.example>")),
            client_name: Some("client.example".into()),
            client_ip: Some(if i % 2 == 0 {
                format!("192.0.2.{}", i % 250)
            } else {
                "2001:db8::1".into()
            }),
            client_port: Some(40000 + i as i32),
            sasl_method: None,
            sasl_username: (i % 7 == 0).then(|| "alice".into()),
            origin: "smtpd",
            flow,
            state: if closed { "sent" } else { "deferred" },
            state_reason: (i % 10 == 0).then(|| format!("reason {i}")),
            closed,
            removed_at: closed.then_some(Timestamp(start.0 + MINUTE)),
            version: 5,
        });
        for j in 0..2 {
            let address = format!("rcpt{j}@Dom{}.test", (i + j) % 3);
            let status = STATUSES[(i + j) % 4];
            let attempt_at = Timestamp(start.0 + 30 * SECOND + j as i64 * SECOND);
            b.recipients.push(RecipientRow {
                message_uid: uid,
                message_started_at: start,
                address: address.clone(),
                orig_address: None,
                status,
                dsn: Some("2.0.0".into()),
                relay: Some("mx.dom.test[198.51.100.7]:25".into()),
                status_text: Some("250 ok".into()),
                delay: Some(1.5),
                attempts: 1,
                last_attempt_at: attempt_at,
                flow: if j == 0 { flow } else { None },
            });
            if status != "expired" {
                b.deliveries.push(DeliveryRow {
                    time: attempt_at,
                    line_key: hash_parts(&[&uid.to_le_bytes(), &[j as u8], b"delivery"]),
                    message_uid: uid,
                    message_started_at: start,
                    host: host.into(),
                    queue_id: queue_id.clone(),
                    daemon: "smtp".into(),
                    recipient: address,
                    orig_recipient: None,
                    relay: "mx.dom.test[198.51.100.7]:25".into(),
                    relay_ip: Some("198.51.100.7".into()),
                    delay: 1.5,
                    delays: Some([0.1, 0.2, 0.3, 0.9]),
                    dsn: "2.0.0".into(),
                    status,
                    status_text: "250 ok".into(),
                    queued_as: None,
                });
            }
        }
        b.events.push(EventRow {
            time: start,
            line_key: hash_parts(&[&uid.to_le_bytes(), b"event"]),
            host: host.into(),
            program: "postfix/qmgr".into(),
            pid: Some(42),
            queue_id: Some(queue_id.clone()),
            kind: "qmgr_from",
            message_uid: Some(uid),
            session_uid: None,
            raw: format!("{queue_id}: from=<x>, size={size}, nrcpt=2 (queue active)"),
        });
        let session_uid = hash_parts(&[host.as_bytes(), &i.to_le_bytes(), b"session"]);
        b.sessions.push(SessionRow {
            uid: session_uid,
            host: host.into(),
            program: "postfix/smtpd".into(),
            pid: 1000 + i as i32,
            connected_at: Timestamp(start.0 - SECOND),
            disconnected_at: closed.then_some(Timestamp(start.0 + 2 * SECOND)),
            client_name: Some("client.example".into()),
            client_ip: Some("192.0.2.9".into()),
            client_port: Some(5555),
            tls_protocol: Some("TLSv1.3".into()),
            tls_cipher: None,
            sasl_username: None,
            sasl_failures: 0,
            messages: 1,
            rejects: i32::from(i % 2 == 0),
            end: closed.then(|| "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5".into()),
            last_seen: Timestamp(start.0 + 2 * SECOND),
            version: 3,
        });
        if i % 2 == 0 {
            b.rejects.push(RejectRow {
                time: Timestamp(start.0 + 5 * SECOND),
                line_key: hash_parts(&[&uid.to_le_bytes(), b"reject"]),
                host: host.into(),
                program: "postfix/smtpd".into(),
                pid: Some(1000 + i as i32),
                session_uid: Some(session_uid),
                // Every fourth one is a header check on the queued message: it has a flow.
                message_uid: (i % 4 == 0).then_some(uid),
                queue_id: None,
                action: if i % 6 == 0 { "warn" } else { "reject" },
                source: "smtpd",
                stage: "RCPT".into(),
                client_name: Some("bad.example".into()),
                client_ip: Some(if i % 8 == 2 {
                    "unknown".into()
                } else {
                    "203.0.113.5".into()
                }),
                code: Some(550),
                enhanced: Some("5.1.1".into()),
                reason: "<x@dom.test>: Recipient address rejected: User unknown".into(),
                sender: Some("spam@Bad.Example".into()),
                recipient: Some(format!("x{i}@Dom{}.test", i % 3)),
                proto: Some("ESMTP".into()),
                helo: Some("bad".into()),
            });
        }
        if i % 3 == 1 {
            b.links.push(LinkRow {
                time: Timestamp(start.0 + 30 * SECOND),
                line_key: hash_parts(&[&uid.to_le_bytes(), b"link"]),
                kind: "relay",
                from_uid: Some(uid),
                from_host: host.into(),
                from_queue_id: queue_id,
                to_host: Some("mx.dom.test".into()),
                to_queue_id: format!("R{i:05X}"),
                relay: Some("mx.dom.test[198.51.100.7]:25".into()),
            });
        }
    }
    b
}

/// Every row of every table, as text, in a stable order: what "nothing changed" compares.
async fn dump(client: &Client) -> BTreeMap<String, Vec<String>> {
    let mut tables = omelse::store::partitioned_table_names();
    tables.extend(["servers", "traffic_hourly"]);
    let mut out = BTreeMap::new();
    for table in tables {
        let rows = client
            .query(&format!("SELECT t::text FROM {table} t ORDER BY 1"), &[])
            .await
            .unwrap();
        out.insert(table.to_owned(), rows.iter().map(|r| r.get(0)).collect());
    }
    out
}

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM ({sql}) x"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn migrate_fresh_then_again_is_a_no_op() {
    let url = PgCluster::shared().create_database().await;
    let mut client = store::connect(&url).await.unwrap();
    assert_eq!(store::schema_version(&client).await.unwrap(), 0);
    assert_eq!(
        store::migrate(&mut client).await.unwrap(),
        (1..=LATEST_SCHEMA_VERSION).collect::<Vec<_>>()
    );
    assert_eq!(store::schema_version(&client).await.unwrap(), LATEST_SCHEMA_VERSION);
    assert_eq!(store::migrate(&mut client).await.unwrap(), Vec::<i32>::new());
    for table in [
        "servers",
        "log_events",
        "messages",
        "recipients",
        "deliveries",
        "rejects",
        "sessions",
        "links",
        "traffic_hourly",
        "rollup_dirty",
    ] {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .unwrap()
            .get(0);
        assert!(exists, "{table}");
    }
}

/// Every stored line pays for each index of `log_events`: each one kept has a reader.
#[tokio::test]
async fn every_index_of_the_stored_lines_has_a_reader() {
    let url = PgCluster::shared().create_database().await;
    let mut client = store::connect(&url).await.unwrap();
    store::migrate(&mut client).await.unwrap();
    let rows = client
        .query(
            "SELECT regexp_replace(pg_get_indexdef(indexrelid), '^.* USING btree ', '')
             FROM pg_index WHERE indrelid = 'log_events'::regclass",
            &[],
        )
        .await
        .unwrap();
    let mut indexes: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    indexes.sort();
    assert_eq!(
        indexes,
        [
            // A message's lines (message detail, the tenant scope of the log view).
            "(message_uid) WHERE (message_uid IS NOT NULL)",
            // A session's lines (the tenant scope of the log view).
            "(session_uid) WHERE (session_uid IS NOT NULL)",
            // postscreen's hours (the rollup refresh).
            "(ts) WHERE (program ~~ '%postscreen'::text)",
            // The line's identity: a line written twice is stored once.
            "(ts, line_key)",
        ]
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_error() {
    // A port nobody listens on: what a stopped database looks like.
    let port = else_tests::free_port();
    let error = store::connect(&format!("host=127.0.0.1 port={port} user=postgres"))
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error}");
    let mut client = fresh_db().await;
    let error = client
        .batch_execute("SELECT 1/0")
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert!(!error.is_transient(), "{error}");
    // An empty batch is no work at all.
    assert_eq!(
        Writer::new().write_batch(&mut client, &Batch::default()).await.unwrap(),
        Default::default()
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let mut client = fresh_db().await;
    client
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES (99, 'future')",
            &[],
        )
        .await
        .unwrap();
    let error = store::migrate(&mut client).await.unwrap_err();
    assert!(matches!(error, StoreError::SchemaTooNew { database: 99, binary } if binary == LATEST_SCHEMA_VERSION));
    assert_eq!(
        error.to_string(),
        format!("database schema version 99 is newer than this binary ({LATEST_SCHEMA_VERSION}); upgrade ELSE")
    );
}

#[tokio::test]
async fn every_table_reads_back_what_was_written() {
    let mut client = fresh_db().await;
    let batch = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 12);
    let stats = Writer::new().write_batch(&mut client, &batch).await.unwrap();
    assert_eq!(stats.events, 12);
    assert_eq!(stats.messages, 12);
    assert_eq!(stats.recipients, 24);
    assert_eq!(stats.deliveries as usize, batch.deliveries.len());
    assert_eq!(stats.rejects as usize, batch.rejects.len());
    assert_eq!(stats.sessions, 12);
    assert_eq!(stats.links as usize, batch.links.len());
    assert_eq!(stats.new_servers, 1);

    let e = &batch.events[3];
    let row = client
        .query_one(
            "SELECT l.ts, s.name, l.program, l.pid, l.queue_id, l.kind, l.message_uid, l.raw
             FROM log_events l JOIN servers s ON s.id = l.server_id WHERE l.line_key = $1",
            &[&e.line_key],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Timestamp>(0), e.time);
    assert_eq!(row.get::<_, String>(1), e.host);
    assert_eq!(row.get::<_, String>(2), e.program);
    assert_eq!(row.get::<_, Option<i32>>(3), e.pid);
    assert_eq!(row.get::<_, Option<String>>(4), e.queue_id);
    assert_eq!(row.get::<_, &str>(5), e.kind);
    assert_eq!(row.get::<_, Option<i64>>(6), e.message_uid);
    assert_eq!(row.get::<_, String>(7), e.raw);

    let m = &batch.messages[4];
    let row = client
        .query_one(
            "SELECT sender, size, host(client_ip), state, removed_at, version, first_seen FROM messages WHERE uid = $1",
            &[&m.uid],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0), m.sender);
    assert_eq!(row.get::<_, Option<i64>>(1), m.size);
    assert_eq!(row.get::<_, Option<String>>(2), m.client_ip);
    assert_eq!(row.get::<_, &str>(3), m.state);
    assert_eq!(row.get::<_, Option<Timestamp>>(4), m.removed_at);
    assert_eq!(row.get::<_, i32>(5), m.version);
    assert_eq!(row.get::<_, Timestamp>(6), m.first_seen);

    let d = &batch.deliveries[1];
    let row = client
        .query_one(
            "SELECT recipient, host(relay_ip), delay, delay_before_qmgr, delay_in_qmgr, delay_conn_setup,
                    delay_transmission, status, message_started_at
             FROM deliveries WHERE line_key = $1",
            &[&d.line_key],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), d.recipient);
    assert_eq!(row.get::<_, Option<String>>(1), d.relay_ip);
    assert_eq!(row.get::<_, f64>(2), d.delay);
    let delays: [f32; 4] = std::array::from_fn(|k| row.get::<_, f32>(3 + k));
    assert_eq!(Some(delays), d.delays);
    assert_eq!(row.get::<_, &str>(7), d.status);
    assert_eq!(row.get::<_, Timestamp>(8), d.message_started_at);

    let r = &batch.rejects[1];
    let row = client
        .query_one(
            "SELECT action, code, enhanced, recipient, host(client_ip), session_uid FROM rejects WHERE line_key = $1",
            &[&r.line_key],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), r.action);
    assert_eq!(row.get::<_, Option<i32>>(1), r.code);
    assert_eq!(row.get::<_, Option<String>>(2), r.enhanced);
    assert_eq!(row.get::<_, Option<String>>(3), r.recipient);
    assert_eq!(
        row.get::<_, Option<String>>(4),
        None,
        "client_ip 'unknown' is stored as NULL"
    );
    assert_eq!(row.get::<_, Option<i64>>(5), r.session_uid);

    let l = &batch.links[0];
    let row = client
        .query_one(
            "SELECT l.kind, l.from_uid, s.name, l.from_queue_id, l.to_host, l.to_queue_id, l.relay
             FROM links l JOIN servers s ON s.id = l.from_server_id WHERE l.line_key = $1",
            &[&l.line_key],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), l.kind);
    assert_eq!(row.get::<_, Option<i64>>(1), l.from_uid);
    assert_eq!(row.get::<_, String>(2), l.from_host);
    assert_eq!(row.get::<_, String>(3), l.from_queue_id);
    assert_eq!(row.get::<_, Option<String>>(4), l.to_host);
    assert_eq!(row.get::<_, String>(5), l.to_queue_id);
    assert_eq!(row.get::<_, Option<String>>(6), l.relay);

    // Recipients and sessions come back whole through the open-state loader; closed ones here.
    let rc = &batch.recipients[5];
    let row = client
        .query_one(
            "SELECT status, attempts, last_attempt_at, flow, delay FROM recipients WHERE message_uid = $1 AND address = $2",
            &[&rc.message_uid, &rc.address],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), rc.status);
    assert_eq!(row.get::<_, i32>(1), rc.attempts);
    assert_eq!(row.get::<_, Timestamp>(2), rc.last_attempt_at);
    assert_eq!(row.get::<_, Option<&str>>(3), rc.flow);
    assert_eq!(row.get::<_, Option<f64>>(4), rc.delay);
    let s = &batch.sessions[1];
    let row = client
        .query_one(
            "SELECT disconnected_at, ending, tls_protocol FROM sessions WHERE uid = $1",
            &[&s.uid],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<Timestamp>>(0), s.disconnected_at);
    assert_eq!(row.get::<_, Option<String>>(1), s.end);
    assert_eq!(row.get::<_, Option<String>>(2), s.tls_protocol);

    let (first, last): (Timestamp, Timestamp) = {
        let row = client
            .query_one(
                "SELECT first_seen, last_seen FROM servers WHERE name = 'mx1.example'",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(first, batch.sessions[0].connected_at);
    assert_eq!(last, batch.messages.iter().map(|m| m.last_seen).max().unwrap());
}

#[tokio::test]
async fn writing_a_batch_twice_changes_nothing() {
    let mut client = fresh_db().await;
    let batch = sample_batch("mx1.example", at("2026-03-14T22:00:00Z"), 30);
    let first = Writer::new().write_batch(&mut client, &batch).await.unwrap();
    assert!(first.rows() > 0);
    store::refresh_rollups(&mut client).await.unwrap();
    let before = dump(&client).await;
    // A fresh writer (a restarted process) as well as the same one.
    let mut writer = Writer::new();
    for _ in 0..2 {
        let again = writer.write_batch(&mut client, &batch).await.unwrap();
        assert_eq!(again.rows(), 0, "{again:?}");
        assert_eq!(again.new_servers, 0);
    }
    store::refresh_rollups(&mut client).await.unwrap();
    assert_eq!(dump(&client).await, before);
}

/// Migration 9's else_domain (split_part) gives what migration 1's regular expression gave, so
/// the expression indexes built before it stay valid.
#[tokio::test]
async fn else_domain_is_what_the_regular_expression_gave() {
    let client = fresh_db().await;
    let inputs = [
        None,
        Some(""),
        Some("local"),
        Some("a@"),
        Some("@b.example"),
        Some("a@b@C.Example"),
        Some("Ann@Example.ORG"),
        Some("a@b.example\n"),
        Some("a\n@b\nc"),
        Some("Jürgen@Bücher.DE"),
        Some("<>"),
        Some("a@@"),
    ];
    for input in inputs {
        let row = client
            .query_one(
                "SELECT else_domain($1::text),
                        CASE WHEN strpos($1::text, '@') > 0 THEN lower(substring($1::text FROM '@([^@]*)$')) ELSE '' END",
                &[&input],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<String>>(1),
            "{input:?}"
        );
    }
}

/// A batch of which some lines are stored already (a replay running into new lines) adds the new
/// ones once, and marks their hours for the rollups, as if it had been written alone.
#[tokio::test]
async fn a_batch_overlapping_stored_lines_adds_only_the_new_ones() {
    let batch = sample_batch("mx1.example", at("2026-03-14T22:00:00Z"), 30);
    let mut half = batch.clone();
    half.events.truncate(batch.events.len() / 2);
    half.deliveries.truncate(batch.deliveries.len() / 2);
    half.rejects.truncate(batch.rejects.len() / 2);
    half.links.truncate(batch.links.len() / 2);
    assert!(half.deliveries.len() < batch.deliveries.len() && half.rejects.len() < batch.rejects.len());
    assert!(half.links.len() < batch.links.len());
    let mut client = fresh_db().await;
    let mut writer = Writer::new();
    writer.write_batch(&mut client, &half).await.unwrap();
    store::refresh_rollups(&mut client).await.unwrap();
    let stats = writer.write_batch(&mut client, &batch).await.unwrap();
    let new = |all: usize, before: usize| (all - before) as u64;
    assert_eq!(stats.events, new(batch.events.len(), half.events.len()));
    assert_eq!(stats.deliveries, new(batch.deliveries.len(), half.deliveries.len()));
    assert_eq!(stats.rejects, new(batch.rejects.len(), half.rejects.len()));
    assert_eq!(stats.links, new(batch.links.len(), half.links.len()));
    store::refresh_rollups(&mut client).await.unwrap();

    let mut once = fresh_db().await;
    Writer::new().write_batch(&mut once, &batch).await.unwrap();
    store::refresh_rollups(&mut once).await.unwrap();
    assert_eq!(dump(&client).await, dump(&once).await);
}

#[tokio::test]
async fn an_older_snapshot_does_not_move_state_backwards() {
    let mut client = fresh_db().await;
    let mut writer = Writer::new();
    let newer = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 3);
    let mut older = newer.clone();
    for m in &mut older.messages {
        m.version = 2;
        m.state = "queued";
        m.closed = false;
        m.removed_at = None;
    }
    for r in &mut older.recipients {
        r.status = "queued";
        r.attempts = 0;
        r.last_attempt_at = Timestamp(r.last_attempt_at.0 - 20 * SECOND);
    }
    for s in &mut older.sessions {
        s.version = 1;
        s.disconnected_at = None;
    }
    writer.write_batch(&mut client, &newer).await.unwrap();
    let before = dump(&client).await;
    let stats = writer.write_batch(&mut client, &older).await.unwrap();
    assert_eq!((stats.messages, stats.recipients, stats.sessions), (0, 0, 0));
    assert_eq!(dump(&client).await, before);

    // The other way round, the newer snapshot wins.
    let mut client = fresh_db().await;
    let mut writer = Writer::new();
    writer.write_batch(&mut client, &older).await.unwrap();
    let stats = writer.write_batch(&mut client, &newer).await.unwrap();
    assert_eq!((stats.messages, stats.recipients, stats.sessions), (3, 6, 3));
    let states: Vec<String> = client
        .query("SELECT state FROM messages ORDER BY started_at", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(states, newer.messages.iter().map(|m| m.state).collect::<Vec<_>>());
}

#[tokio::test]
async fn snapshots_of_one_row_in_one_batch_keep_the_newest() {
    let mut client = fresh_db().await;
    let batch = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 1);
    let mut merged = Batch::default();
    for (version, state) in [(7, "sent"), (3, "queued"), (7, "bounced"), (5, "deferred")] {
        let mut b = batch.clone();
        b.messages[0].version = version;
        b.messages[0].state = state;
        b.recipients[0].attempts = version;
        b.sessions[0].version = version;
        merged.append(b);
    }
    let stats = Writer::new().write_batch(&mut client, &merged).await.unwrap();
    assert_eq!(
        (stats.messages, stats.recipients, stats.sessions, stats.events),
        (1, 2, 1, 1)
    );
    let row = client
        .query_one("SELECT version, state FROM messages", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, &str>(1)),
        (7, "bounced"),
        "latest of the highest version"
    );
    let attempts: i32 = client
        .query_one("SELECT max(attempts) FROM recipients", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(attempts, 7);
}

#[tokio::test]
async fn rows_land_in_daily_partitions_created_on_demand() {
    let mut client = fresh_db().await;
    // 600 messages, 7 minutes apart: about three days, starting late in the evening.
    let batch = sample_batch("mx1.example", at("2026-03-14T21:30:00Z"), 600);
    Writer::new().write_batch(&mut client, &batch).await.unwrap();
    let partitions: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'messages'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        partitions,
        [
            "messages_p20260314",
            "messages_p20260315",
            "messages_p20260316",
            "messages_p20260317"
        ]
    );
    // Every row is in the partition of its own UTC day.
    for (table, key) in PARTITIONED_TABLES {
        let misplaced = count(
            &client,
            &format!("SELECT 1 FROM {table} WHERE tableoid::regclass::text <> '{table}_p' || to_char({key} AT TIME ZONE 'UTC', 'YYYYMMDD')"),
        )
        .await;
        assert_eq!(misplaced, 0, "{table}");
    }
    assert_eq!(count(&client, "SELECT 1 FROM messages").await, 600);
}

#[tokio::test]
async fn concurrent_writers_create_the_same_partitions_safely() {
    let url = PgCluster::shared().create_database().await;
    let mut setup = store::connect(&url).await.unwrap();
    store::migrate(&mut setup).await.unwrap();
    let mut tasks = Vec::new();
    for host in ["mx1.example", "mx2.example", "mx3.example", "mx4.example"] {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = store::connect(&url).await.unwrap();
            let batch = sample_batch(host, at("2026-05-01T20:00:00Z"), 300);
            Writer::new().write_batch(&mut client, &batch).await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().messages, 300);
    }
    assert_eq!(count(&setup, "SELECT 1 FROM messages").await, 1200);
    assert_eq!(count(&setup, "SELECT 1 FROM servers").await, 4);
}

#[tokio::test]
async fn retention_drops_old_partitions_only() {
    let mut client = fresh_db().await;
    let today = Timestamp::now().0.div_euclid(DAY) * DAY;
    let mut writer = Writer::new();
    for days_ago in [12, 6, 4, 0] {
        let batch = sample_batch("mx1.example", Timestamp(today - days_ago * DAY + HOUR), 5);
        writer.write_batch(&mut client, &batch).await.unwrap();
    }
    let before = count(&client, "SELECT 1 FROM messages").await;
    assert_eq!(before, 20);
    let dropped = store::drop_partitions_older_than(&mut client, 5).await.unwrap();
    let day = |days_ago: i64| {
        let date = jiff::Timestamp::from_microsecond(today - days_ago * DAY).unwrap();
        date.strftime("%Y%m%d").to_string()
    };
    let mut expected: Vec<String> = Vec::new();
    for days_ago in [12, 6] {
        expected.extend(
            PARTITIONED_TABLES
                .iter()
                .map(|(t, _)| format!("{t}_p{}", day(days_ago))),
        );
    }
    let mut dropped_sorted = dropped.clone();
    dropped_sorted.sort();
    expected.sort();
    assert_eq!(dropped_sorted, expected);
    assert_eq!(count(&client, "SELECT 1 FROM messages").await, 10);
    assert_eq!(count(&client, "SELECT 1 FROM log_events").await, 10);
    assert!(store::drop_partitions_older_than(&mut client, 5)
        .await
        .unwrap()
        .is_empty());
    // The writer had those days cached: it notices they are gone and creates them again.
    let batch = sample_batch("mx1.example", Timestamp(today - 6 * DAY + HOUR), 5);
    writer.write_batch(&mut client, &batch).await.unwrap();
    assert_eq!(count(&client, "SELECT 1 FROM messages").await, 15);
}

/// `elsed maintain` freezes a day's partitions once the day after it is over, once, within a
/// time budget per run: their pages are all-frozen afterwards (so the anti-wraparound vacuum
/// skips them), and the newer days' are left to the writers.
#[tokio::test]
async fn finished_days_are_frozen_once_a_day_after_they_end() {
    let mut client = fresh_db().await;
    let today = Timestamp::now().0.div_euclid(DAY) * DAY;
    let mut writer = Writer::new();
    for days_ago in [2, 1, 0] {
        let batch = sample_batch("mx1.example", Timestamp(today - days_ago * DAY + HOUR), 5);
        writer.write_batch(&mut client, &batch).await.unwrap();
    }
    let day = |days_ago: i64| {
        let date = jiff::Timestamp::from_microsecond(today - days_ago * DAY).unwrap();
        date.strftime("%Y%m%d").to_string()
    };
    // Out of time at once: one partition is frozen all the same, the rest wait for the next run.
    let first = store::freeze_finished_days(&client, Duration::ZERO).await.unwrap();
    assert_eq!(first.partitions.len(), 1);
    assert_eq!(first.left, PARTITIONED_TABLES.len() - 1);
    let rest = store::freeze_finished_days(&client, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(rest.left, 0);
    let mut frozen = [first.partitions, rest.partitions].concat();
    frozen.sort();
    let mut expected: Vec<String> = PARTITIONED_TABLES
        .iter()
        .map(|(t, _)| format!("{t}_p{}", day(2)))
        .collect();
    expected.sort();
    assert_eq!(frozen, expected);

    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_visibility")
        .await
        .unwrap();
    let all_frozen = |days_ago: i64| {
        let sql = format!(
            "SELECT bool_and(all_frozen) FROM pg_visibility_map('messages_p{}')",
            day(days_ago)
        );
        let client = &client;
        async move { client.query_one(&sql, &[]).await.unwrap().get::<_, bool>(0) }
    };
    assert!(all_frozen(2).await, "the day before yesterday is frozen");
    assert!(!all_frozen(1).await, "yesterday is still the writers'");
    assert!(!all_frozen(0).await, "today is still the writers'");
    assert!(
        store::freeze_finished_days(&client, Duration::from_secs(3600))
            .await
            .unwrap()
            .partitions
            .is_empty(),
        "a frozen day is not visited again"
    );
}

/// Domain of an address as the rollups define it.
fn domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default()
}

fn hour(t: Timestamp) -> i64 {
    t.0.div_euclid(HOUR) * HOUR
}

type Rollup = BTreeMap<(i64, String, String, bool, String, String), (i64, i64)>;

/// `traffic_hourly` computed in Rust from a batch, the way the rollup is documented: each event
/// once over all domains (`by_domain` false, domain '') and once per distinct group domain it
/// touches (`group_domains`).
fn expected_rollup(batches: &[&Batch], group_domains: &[&str]) -> Rollup {
    let mut out = Rollup::new();
    let mut add = |t: Timestamp, host: &str, flow: Option<&str>, domains: Vec<String>, metric: &str, bytes: i64| {
        let mut keys: Vec<(bool, String)> = vec![(false, String::new())];
        let distinct: std::collections::BTreeSet<String> = domains.into_iter().collect();
        keys.extend(
            distinct
                .into_iter()
                .filter(|d| group_domains.contains(&d.as_str()))
                .map(|d| (true, d)),
        );
        for (by_domain, domain) in keys {
            let e = out
                .entry((
                    hour(t),
                    host.into(),
                    flow.unwrap_or("unknown").into(),
                    by_domain,
                    domain,
                    metric.into(),
                ))
                .or_default();
            e.0 += 1;
            e.1 += bytes;
        }
    };
    let messages: BTreeMap<i64, &MessageRow> = batches.iter().flat_map(|b| &b.messages).map(|m| (m.uid, m)).collect();
    let recipients: BTreeMap<(i64, &str), &RecipientRow> = batches
        .iter()
        .flat_map(|b| &b.recipients)
        .map(|r| ((r.message_uid, r.address.as_str()), r))
        .collect();
    let sender_domain = |m: &MessageRow| domain(m.sender.as_deref().unwrap_or(""));
    for m in messages
        .values()
        .filter(|m| m.origin == "smtpd" || m.origin == "pickup")
    {
        let mut domains = vec![sender_domain(m)];
        domains.extend(
            recipients
                .values()
                .filter(|r| r.message_uid == m.uid)
                .map(|r| domain(&r.address)),
        );
        add(m.started_at, &m.host, m.flow, domains, "received", m.size.unwrap_or(0));
    }
    for d in batches.iter().flat_map(|b| &b.deliveries) {
        let m = messages[&d.message_uid];
        let flow = recipients
            .get(&(d.message_uid, d.recipient.as_str()))
            .and_then(|r| r.flow)
            .or(m.flow);
        let metric = if d.status == "sent" { "delivered" } else { d.status };
        let domains = vec![domain(&d.recipient), sender_domain(m)];
        add(d.time, &d.host, flow, domains, metric, m.size.unwrap_or(0));
    }
    for r in recipients.values().filter(|r| r.status == "expired") {
        let m = messages[&r.message_uid];
        let domains = vec![domain(&r.address), sender_domain(m)];
        add(
            r.last_attempt_at,
            &m.host,
            r.flow.or(m.flow),
            domains,
            "expired",
            m.size.unwrap_or(0),
        );
    }
    for j in batches.iter().flat_map(|b| &b.rejects) {
        let metric = match j.action {
            "reject" => "rejected",
            "warn" => "reject_warning",
            "hold" => "held",
            "discard" => "discarded",
            _ => continue,
        };
        let flow = j.message_uid.and_then(|uid| messages[&uid].flow);
        let domains = vec![
            domain(j.recipient.as_deref().unwrap_or("")),
            domain(j.sender.as_deref().unwrap_or("")),
        ];
        add(j.time, &j.host, flow, domains, metric, 0);
    }
    out
}

async fn stored_rollup(client: &Client) -> Rollup {
    client
        .query(
            "SELECT t.hour, s.name, t.flow, t.by_domain, t.domain, t.metric, t.messages, t.bytes
             FROM traffic_hourly t JOIN servers s ON s.id = t.server_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r.get::<_, Timestamp>(0).0,
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                ),
                (r.get(6), r.get(7)),
            )
        })
        .collect()
}

#[tokio::test]
async fn rollups_match_the_base_tables() {
    let mut client = fresh_db().await;
    let mut writer = Writer::new();
    let mut a = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 40);
    // Deliveries and expiries hours after the messages arrived: other rollup hours.
    for d in &mut a.deliveries {
        d.time = Timestamp(d.time.0 + 3 * HOUR);
    }
    for r in &mut a.recipients {
        r.last_attempt_at = Timestamp(r.last_attempt_at.0 + 3 * HOUR);
    }
    let b = sample_batch("mx2.example", at("2026-03-14T11:30:00Z"), 25);
    writer.write_batch(&mut client, &a).await.unwrap();
    writer.write_batch(&mut client, &b).await.unwrap();
    // Two domains of a group (the accounts' table, migration 5): counted per domain as well.
    let groups = ["sender1.example", "dom2.test"];
    client
        .batch_execute(
            "INSERT INTO groups (id, name) OVERRIDING SYSTEM VALUE VALUES (1, 'one'), (2, 'two');
             INSERT INTO group_domains VALUES (1, 'sender1.example'), (1, 'dom2.test'), (2, 'dom2.test');",
        )
        .await
        .unwrap();
    assert!(store::refresh_rollups(&mut client).await.unwrap() > 0);
    let expected = expected_rollup(&[&a, &b], &groups);
    assert!(
        expected.keys().any(|k| k.3 && k.4 == "sender1.example") && expected.keys().any(|k| k.3 && k.4 == "dom2.test")
    );
    assert!(expected.keys().any(|k| k.5 == "expired") && expected.keys().any(|k| k.5 == "rejected"));
    let stored = stored_rollup(&client).await;
    let only_stored: Vec<_> = stored
        .iter()
        .filter(|(k, v)| expected.get(*k) != Some(*v))
        .take(5)
        .collect();
    let only_expected: Vec<_> = expected
        .iter()
        .filter(|(k, v)| stored.get(*k) != Some(*v))
        .take(5)
        .collect();
    assert!(
        only_stored.is_empty() && only_expected.is_empty(),
        "stored only: {only_stored:?}\nexpected only: {only_expected:?}"
    );
    assert_eq!(count(&client, "SELECT 1 FROM rollup_dirty").await, 0);
    // Nothing dirty: a refresh changes nothing.
    assert_eq!(store::refresh_rollups(&mut client).await.unwrap(), 0);
    assert_eq!(stored_rollup(&client).await, expected);

    // A later snapshot gives a message its flow: its received row and its deliveries move.
    let mut later = a.clone();
    for m in &mut later.messages {
        if m.flow.is_none() {
            m.flow = Some("relayed");
            m.version += 1;
        }
    }
    let later = Batch {
        messages: later.messages,
        ..Batch::default()
    };
    writer.write_batch(&mut client, &later).await.unwrap();
    store::refresh_rollups(&mut client).await.unwrap();
    let a_now = Batch {
        messages: later.messages.clone(),
        ..a.clone()
    };
    assert_eq!(stored_rollup(&client).await, expected_rollup(&[&a_now, &b], &groups));
}

/// The refresh in shares (one connection per core, at the end of an import) lands on what the
/// base tables say, compacts the days past as one refresh does, and leaves nothing dirty.
#[tokio::test]
async fn rollups_refreshed_in_shares_match_the_base_tables() {
    let url = PgCluster::shared().create_database().await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(store::connect(&url).await.unwrap());
    }
    store::migrate(&mut clients[0]).await.unwrap();
    let mut writer = Writer::new();
    let batches: Vec<Batch> = ["mx1.example", "mx2.example", "mx3.example", "mx4.example"]
        .iter()
        .enumerate()
        .map(|(i, host)| sample_batch(host, Timestamp(at("2026-03-14T10:00:00Z").0 + i as i64 * HOUR), 30))
        .collect();
    for batch in &batches {
        writer.write_batch(&mut clients[0], batch).await.unwrap();
    }
    let marks = count(&clients[0], "SELECT 1 FROM rollup_dirty").await;
    assert_eq!(store::refresh_rollups_on(&mut clients).await.unwrap(), marks as u64);
    assert_eq!(count(&clients[0], "SELECT 1 FROM rollup_dirty").await, 0);
    let expected = expected_rollup(&batches.iter().collect::<Vec<_>>(), &[]);
    assert_eq!(stored_rollup(&clients[0]).await, expected);
    // Those days are past: compacted into stats_daily, as one refresh would have.
    assert_eq!(count(&clients[0], "SELECT 1 FROM stats_hourly").await, 0);
    assert!(count(&clients[0], "SELECT 1 FROM stats_daily").await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_refreshed_while_writing_miss_nothing() {
    let url = PgCluster::shared().create_database().await;
    let mut client = store::connect(&url).await.unwrap();
    store::migrate(&mut client).await.unwrap();
    // Small batches that all land in the same few hours, so writer and refresher fight over marks.
    let all = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 60);
    let mut batches = Vec::new();
    for i in 0..20 {
        let part = |rows: usize| (i * rows / 20)..((i + 1) * rows / 20);
        let uids: Vec<i64> = all.messages[part(all.messages.len())].iter().map(|m| m.uid).collect();
        batches.push(Batch {
            events: all.events[part(all.events.len())].to_vec(),
            messages: all.messages[part(all.messages.len())].to_vec(),
            recipients: all
                .recipients
                .iter()
                .filter(|r| uids.contains(&r.message_uid))
                .cloned()
                .collect(),
            deliveries: all
                .deliveries
                .iter()
                .filter(|d| uids.contains(&d.message_uid))
                .cloned()
                .collect(),
            rejects: all
                .rejects
                .iter()
                .filter(|j| j.message_uid.is_none_or(|u| uids.contains(&u)))
                .cloned()
                .collect(),
            sessions: Vec::new(),
            links: Vec::new(),
        });
    }
    let writer_url = url.clone();
    let writing = tokio::spawn(async move {
        let mut client = store::connect(&writer_url).await.unwrap();
        let mut writer = Writer::new();
        for batch in &batches {
            writer.write_batch(&mut client, batch).await.unwrap();
        }
    });
    while !writing.is_finished() {
        store::refresh_rollups(&mut client).await.unwrap();
    }
    writing.await.unwrap();
    store::refresh_rollups(&mut client).await.unwrap();
    assert_eq!(stored_rollup(&client).await, expected_rollup(&[&all], &[]));
}

#[tokio::test]
async fn open_state_round_trips() {
    let mut client = fresh_db().await;
    let batch = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 20);
    Writer::new().write_batch(&mut client, &batch).await.unwrap();
    let since = at("2026-03-14T10:30:00Z");
    let state = store::load_open_state(&client, since).await.unwrap();
    let open: Vec<MessageRow> = batch
        .messages
        .iter()
        .filter(|m| !m.closed && m.last_seen >= since)
        .cloned()
        .collect();
    assert!(!open.is_empty() && open.len() < batch.messages.len());
    assert_eq!(state.messages, open);
    // A restart reads them a page at a time: the pages hold the same messages and recipients.
    assert!(open.len() > 1, "several pages");
    let (mut paged, mut paged_recipients, mut after) = (Vec::new(), Vec::new(), None);
    loop {
        let (page, recipients) = store::load_open_messages(&client, since, after, 1).await.unwrap();
        assert!(page.len() <= 1);
        let Some(last) = page.iter().map(|m| (m.last_seen, m.uid)).max() else {
            break;
        };
        after = Some(last);
        paged.extend(page);
        paged_recipients.extend(recipients);
    }
    paged.sort_by_key(|m| (m.started_at, m.uid));
    assert_eq!(paged, open);
    let mut recipients: Vec<RecipientRow> = batch
        .recipients
        .iter()
        .filter(|r| open.iter().any(|m| m.uid == r.message_uid))
        .cloned()
        .collect();
    recipients.sort_by(|x, y| {
        (x.message_started_at, x.message_uid, &x.address).cmp(&(y.message_started_at, y.message_uid, &y.address))
    });
    assert_eq!(state.recipients, recipients);
    paged_recipients.sort_by(|x, y| {
        (x.message_started_at, x.message_uid, &x.address).cmp(&(y.message_started_at, y.message_uid, &y.address))
    });
    assert_eq!(paged_recipients, recipients);
    let sessions: Vec<SessionRow> = batch
        .sessions
        .iter()
        .filter(|s| s.disconnected_at.is_none() && s.last_seen >= since)
        .cloned()
        .collect();
    assert!(!sessions.is_empty());
    assert_eq!(state.sessions, sessions);
}

#[tokio::test]
async fn garbage_addresses_and_text_do_not_fail_a_batch() {
    let mut client = fresh_db().await;
    let mut batch = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 4);
    batch.messages[0].client_ip = Some("unknown".into());
    batch.messages[1].client_ip = Some("not an address".into());
    batch.messages[2].client_ip = Some("2001:db8::zz".into());
    batch.sessions[0].client_ip = Some("999.1.2.3".into());
    batch.rejects[0].client_ip = Some("".into());
    batch.rejects[1].client_ip = Some("unknown".into());
    batch.deliveries[0].relay_ip = Some("mx.example".into());
    batch.events[0].raw = "bytes\0with a NUL".into();
    Writer::new().write_batch(&mut client, &batch).await.unwrap();
    assert_eq!(
        count(&client, "SELECT 1 FROM messages WHERE client_ip IS NULL").await,
        3
    );
    assert_eq!(
        count(&client, "SELECT 1 FROM sessions WHERE client_ip IS NULL").await,
        1
    );
    assert_eq!(count(&client, "SELECT 1 FROM rejects WHERE client_ip IS NULL").await, 2);
    assert_eq!(
        count(&client, "SELECT 1 FROM deliveries WHERE relay_ip IS NULL").await,
        1
    );
    let raw: String = client
        .query_one("SELECT raw FROM log_events WHERE raw LIKE 'bytes%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(raw, "bytes\u{FFFD}with a NUL");
}

async fn stats_daily(client: &Client) -> Vec<String> {
    client
        .query(
            "SELECT concat_ws('|', kind, day, server_id, flow, by_domain, domain, key, messages, bytes)
             FROM stats_daily ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Keyed rollups kept per hour (today: refreshed hour by hour) and per day (past days: summed
/// from their hours when the day is over, or recomputed whole for old logs) give the same day rows.
#[tokio::test]
async fn keyed_rollups_agree_between_the_hourly_and_the_daily_paths() {
    let a = sample_batch("mx1.example", at("2026-03-14T10:00:00Z"), 40);
    let b = sample_batch("mx2.example", at("2026-03-14T11:30:00Z"), 25);
    let long_ago = at("2000-01-01T00:00:00Z");
    let far_ahead = at("2100-01-01T00:00:00Z");
    let group_domains = "INSERT INTO groups (id, name) OVERRIDING SYSTEM VALUE VALUES (1, 'one');
                         INSERT INTO group_domains VALUES (1, 'sender1.example'), (1, 'dom2.test');";
    let mut hot = fresh_db().await;
    hot.batch_execute(group_domains).await.unwrap();
    let mut writer = Writer::new();
    writer.write_batch(&mut hot, &a).await.unwrap();
    store::refresh_rollups_hot_since(&mut hot, long_ago).await.unwrap();
    writer.write_batch(&mut hot, &b).await.unwrap();
    // A later snapshot of a's messages dirties their hours again: subtracted and added back.
    writer.write_batch(&mut hot, &a).await.unwrap();
    store::refresh_rollups_hot_since(&mut hot, long_ago).await.unwrap();
    assert!(count(&hot, "SELECT 1 FROM stats_hourly").await > 0);
    assert_eq!(count(&hot, "SELECT 1 FROM stats_daily").await, 0);

    let mut cold = fresh_db().await;
    cold.batch_execute(group_domains).await.unwrap();
    let mut writer = Writer::new();
    writer.write_batch(&mut cold, &a).await.unwrap();
    writer.write_batch(&mut cold, &b).await.unwrap();
    store::refresh_rollups_hot_since(&mut cold, far_ahead).await.unwrap();
    assert_eq!(count(&cold, "SELECT 1 FROM stats_hourly").await, 0);

    let days = stats_daily(&cold).await;
    assert!(days.iter().any(|r| r.starts_with("sender|")) && days.iter().any(|r| r.starts_with("delay|")));
    assert!(
        days.iter().any(|r| r.contains("|t|dom2.test|")),
        "per group domain rows"
    );
    // The day is over: its hours summed into day rows (fewer keys than are kept), hour rows gone.
    store::refresh_rollups_hot_since(&mut hot, far_ahead).await.unwrap();
    assert_eq!(count(&hot, "SELECT 1 FROM stats_hourly").await, 0);
    assert_eq!(stats_daily(&hot).await, days);
}
