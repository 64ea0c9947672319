//! The deployment ELSE exists for, run for real on loopback addresses ([`else_tests::topology`]):
//! an INCOMING Postfix, an OUTGOING Postfix, a Postfix that plays the Internet, and the ELSE
//! server, the Postfix hosts forwarding their logs over RELP with the shipped stanza.
//!
//! Traffic from swaks covers each case a mail administrator tracks: inbound delivered after
//! greylisting, inbound rejected (unknown user, blocked client), outbound delivered, bounced
//! (with its NDR) and deferred then delivered, internal to internal across both servers. Then
//! every message sent is looked up in the database and checked: found, right flow, both hops
//! linked, right final status, NDR linked.
//!
//! Needs root, Postfix, rsyslog-relp and swaks (make test installs them); skipped otherwise.

use std::time::Duration;

use else_tests::topology::{self, swaks, ThreeServers, BLOCKED_CLIENT, IN1, OUT1, REMOTE_CLIENT, WORKSTATION};
use else_tests::PgCluster;

/// GreyLSE's delay: short, so that the test's retry passes.
const GREYLIST_DELAY_SECS: u64 = 2;

/// One row per hop of the message with this Message-ID: (server, flow, state, recipients'
/// statuses by address).
#[derive(Debug, Clone, PartialEq)]
struct Hop {
    server: String,
    queue_id: String,
    flow: Option<String>,
    state: String,
    recipients: Vec<(String, String)>,
}

async fn hops(client: &tokio_postgres::Client, message_id: &str) -> Vec<Hop> {
    let rows = client
        .query(
            "SELECT s.name, m.queue_id, m.flow, m.state,
                    coalesce(array_agg(r.address || '=' || r.status ORDER BY r.address)
                             FILTER (WHERE r.address IS NOT NULL), '{}')
               FROM messages m
               JOIN servers s ON s.id = m.server_id
               LEFT JOIN recipients r ON r.message_started_at = m.started_at AND r.message_uid = m.uid
              WHERE m.message_id = $1
              GROUP BY 1, 2, 3, 4, m.first_seen
              ORDER BY m.first_seen",
            &[&message_id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| Hop {
            server: row.get(0),
            queue_id: row.get(1),
            flow: row.get(2),
            state: row.get(3),
            recipients: row
                .get::<_, Vec<String>>(4)
                .iter()
                .map(|pair| {
                    let (address, status) = pair.split_once('=').unwrap();
                    (address.to_owned(), status.to_owned())
                })
                .collect(),
        })
        .collect()
}

/// Waits (at most `limit`) until the hops of `message_id` satisfy `done`; returns the last seen.
async fn wait_hops(
    client: &tokio_postgres::Client,
    message_id: &str,
    limit: Duration,
    done: impl Fn(&[Hop]) -> bool,
) -> Vec<Hop> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let found = hops(client, message_id).await;
        if done(&found) || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What the database holds about a message, for a failure's message: its rows and raw lines.
async fn explain(client: &tokio_postgres::Client, message_id: &str) -> String {
    let rows = client
        .query(
            "SELECT format('%s %s origin=%s flow=%s state=%s', s.name, m.queue_id, m.origin, m.flow, m.state)
                    || coalesce((SELECT string_agg(format(E'\\n  rcpt %s %s flow=%s relay=%s', r.address, r.status, r.flow, r.relay), '')
                                   FROM recipients r WHERE r.message_uid = m.uid), '')
                    || coalesce((SELECT string_agg(E'\\n  | ' || e.raw, '' ORDER BY e.ts)
                                   FROM log_events e WHERE e.message_uid = m.uid), '')
               FROM messages m JOIN servers s ON s.id = m.server_id WHERE m.message_id = $1",
            &[&message_id],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

fn statuses(hop: &Hop) -> Vec<(&str, &str)> {
    hop.recipients.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_track_every_message_end_to_end() {
    if let Some(why) = topology::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("else-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = PgCluster::shared().create_database().await;
    let fleet = ThreeServers::start(&dir, &url, GREYLIST_DELAY_SECS);

    // Inbound: greylisted first, accepted on the retry after the delay.
    let first = swaks(
        IN1,
        REMOTE_CLIENT,
        "carol@remote.test",
        "alice@example.test",
        "inbound@e2e.test",
    );
    assert!(
        !first.accepted && first.transcript.contains("450"),
        "{}",
        first.transcript
    );
    tokio::time::sleep(Duration::from_secs(GREYLIST_DELAY_SECS + 1)).await;
    let retry = swaks(
        IN1,
        REMOTE_CLIENT,
        "carol@remote.test",
        "alice@example.test",
        "inbound@e2e.test",
    );
    assert!(retry.accepted, "{}", retry.transcript);
    // Inbound rejected: unknown user, blocked client.
    let unknown = swaks(
        IN1,
        REMOTE_CLIENT,
        "carol@remote.test",
        "nobody@example.test",
        "unknown@e2e.test",
    );
    assert!(
        !unknown.accepted && unknown.transcript.contains("550"),
        "{}",
        unknown.transcript
    );
    let blocked = swaks(
        IN1,
        BLOCKED_CLIENT,
        "spam@remote.test",
        "alice@example.test",
        "blocked@e2e.test",
    );
    assert!(
        !blocked.accepted && blocked.transcript.contains("554"),
        "{}",
        blocked.transcript
    );
    // Outbound: delivered, bounced, deferred (then delivered below); internal to internal.
    for (to, id) in [
        ("dave@remote.test", "outbound@e2e.test"),
        ("nobody@remote.test", "bounce@e2e.test"),
        ("later@remote.test", "deferred@e2e.test"),
        ("bob@example.test", "internal@e2e.test"),
    ] {
        let sent = swaks(OUT1, WORKSTATION, "alice@example.test", to, id);
        assert!(sent.accepted, "{}", sent.transcript);
    }

    let client = omelse::store::connect(&url).await.unwrap();
    let limit = Duration::from_secs(90);
    let central_log = || fleet.central.own_log();

    // The deferral is seen, then the remote mailbox accepts and the retry delivers.
    let deferred = wait_hops(&client, "deferred@e2e.test", limit, |h| {
        h.iter()
            .any(|hop| statuses(hop).contains(&("later@remote.test", "deferred")))
    })
    .await;
    assert!(
        deferred
            .iter()
            .any(|hop| statuses(hop).contains(&("later@remote.test", "deferred"))),
        "{deferred:?}\n{}",
        central_log()
    );
    fleet.set_remote_busy(false);
    let deferred = wait_hops(&client, "deferred@e2e.test", limit, |h| {
        h.iter().any(|hop| statuses(hop) == [("later@remote.test", "sent")])
    })
    .await;
    let why = explain(&client, "deferred@e2e.test").await;
    assert_eq!(deferred.len(), 1, "{why}");
    assert_eq!(deferred[0].server, "out1");
    assert_eq!(deferred[0].flow.as_deref(), Some("outbound"), "{why}");
    assert_eq!(statuses(&deferred[0]), [("later@remote.test", "sent")]);

    let inbound = wait_hops(&client, "inbound@e2e.test", limit, |h| {
        h.iter().any(|hop| {
            hop.state != "queued" && !hop.recipients.is_empty() && hop.recipients.iter().all(|(_, s)| s == "sent")
        })
    })
    .await;
    assert_eq!(inbound.len(), 1, "{inbound:?}\n{}", central_log());
    assert_eq!(inbound[0].server, "in1");
    assert_eq!(inbound[0].flow.as_deref(), Some("inbound"));
    assert_eq!(statuses(&inbound[0]), [("alice@example.test", "sent")]);

    let outbound = wait_hops(&client, "outbound@e2e.test", limit, |h| {
        h.iter().any(|hop| statuses(hop) == [("dave@remote.test", "sent")])
    })
    .await;
    assert_eq!(outbound.len(), 1, "{outbound:?}");
    assert_eq!(
        (outbound[0].server.as_str(), outbound[0].flow.as_deref()),
        ("out1", Some("outbound"))
    );

    let bounce = wait_hops(&client, "bounce@e2e.test", limit, |h| {
        h.iter().any(|hop| statuses(hop) == [("nobody@remote.test", "bounced")])
    })
    .await;
    assert_eq!(bounce.len(), 1, "{bounce:?}");
    assert_eq!(
        (bounce[0].server.as_str(), bounce[0].flow.as_deref()),
        ("out1", Some("outbound"))
    );
    assert_eq!(statuses(&bounce[0]), [("nobody@remote.test", "bounced")]);

    // Internal: out1 then in1 (logged within the same second: told apart by server), the second
    // hop reached by relay from the first, both internal and delivered.
    let internal = wait_hops(&client, "internal@e2e.test", limit, |h| {
        h.len() == 2 && h.iter().all(|hop| statuses(hop) == [("bob@example.test", "sent")])
    })
    .await;
    let mut by_server: Vec<(&str, Option<&str>)> = internal
        .iter()
        .map(|h| (h.server.as_str(), h.flow.as_deref()))
        .collect();
    by_server.sort();
    assert_eq!(
        by_server,
        [("in1", Some("internal")), ("out1", Some("internal"))],
        "{}",
        explain(&client, "internal@e2e.test").await
    );
    let queue_id = |server: &str| internal.iter().find(|h| h.server == server).unwrap().queue_id.clone();
    let linked: i64 = client
        .query_one(
            "SELECT count(*) FROM links l JOIN servers s ON s.id = l.from_server_id
              WHERE s.name = 'out1' AND l.from_queue_id = $1 AND l.to_queue_id = $2 AND l.to_host = 'in1'",
            &[&queue_id("out1"), &queue_id("in1")],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(linked, 1, "the relay hop out1 → in1 is linked");

    // The rejects of in1: the unknown user and the blocked client, from the right clients.
    let rejects: Vec<(String, String, Option<i32>)> = client
        .query(
            "SELECT host(client_ip), coalesce(recipient, ''), code FROM rejects r JOIN servers s ON s.id = r.server_id
              WHERE s.name = 'in1' AND action = 'reject' ORDER BY ts",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert!(
        rejects.contains(&(REMOTE_CLIENT.to_string(), "nobody@example.test".to_string(), Some(550))),
        "{rejects:?}"
    );
    assert!(
        rejects.contains(&(BLOCKED_CLIENT.to_string(), "alice@example.test".to_string(), Some(554))),
        "{rejects:?}"
    );

    // The bounce's NDR reached elsed and is linked to the bounced message.
    let bounced_queue_id = bounce[0].queue_id.clone();
    let mut ndr_linked = false;
    // The collector links at once when the log is already in, else on its next pass (a minute).
    for _ in 0..180 {
        let row = client
            .query_opt(
                "SELECT message_uid IS NOT NULL FROM ndrs WHERE postfix_queue_id = $1",
                &[&bounced_queue_id],
            )
            .await;
        if let Ok(Some(row)) = row {
            ndr_linked = row.get(0);
            if ndr_linked {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        ndr_linked,
        "NDR of {bounced_queue_id} stored and linked:\n{}",
        fleet.ndr.output()
    );
    drop(fleet);
    let _ = std::fs::remove_dir_all(&dir);
}
