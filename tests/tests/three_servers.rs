//! The deployment ELSE exists for, run for real on loopback addresses ([`else_tests::topology`]):
//! an INCOMING Postfix, an OUTGOING Postfix, a Postfix that plays the Internet, and the ELSE
//! server, the Postfix hosts forwarding their logs over RELP with the shipped stanza and running
//! snmpd with else-pfagent, which elsed polls.
//!
//! Traffic from swaks covers each case a mail administrator tracks: inbound delivered after
//! greylisting, inbound rejected (unknown user, blocked client), outbound delivered, bounced
//! (with its NDR) and deferred then delivered, internal to internal across both servers. Then
//! the test asks elsed's API, as an administrator logged in through `/auth/login`, what a user
//! would ask:
//! - every message sent, by its Message-ID: found, with the right flow, every hop of its journey
//!   linked (the internal mail's relay out1 → in1, the bounce's notification back to the
//!   sender's mailbox), the right final status per recipient; the bounce's NDR linked to it
//!   (NDR list and message detail); the rejects (greylisting, unknown user, blocked client);
//! - the queue counts over SNMP: out1's deferred queue at one or more while the remote refused,
//!   at zero once it accepted;
//! - the dashboard's totals (`/stats/traffic` per flow, `/stats/rejects`) equal to what was sent;
//! - and `elsed report` over the same hosts against Debian's pflogsumm on the maillog files the
//!   two Postfix hosts wrote (issue #5's "logs a real Postfix produced in a test").
//!
//! The test runs in a network namespace of its own, so that it can run beside `make demo`.
//! Needs root, Postfix, rsyslog-relp, swaks, snmpd and pflogsumm (make test installs them);
//! skipped otherwise.

#![deny(unsafe_code)]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use else_tests::pflogsumm;
use else_tests::rsyslogd::elsed_binary;
use else_tests::snmpd::{self, CTL, RO};
use else_tests::topology::{
    self, swaks, Snmp, ThreeServers, Web, BLOCKED_CLIENT, IN1, OUT1, REMOTE_CLIENT, WORKSTATION,
};
use else_tests::PgCluster;
use serde_json::{json, Value};

mod common;

/// GreyLSE's delay: short, so that the test's retry passes.
const GREYLIST_DELAY_SECS: u64 = 2;
const ADMIN_PASSWORD: &str = "end-to-end administrator";
/// How long any awaited outcome may take (log forwarding, retries, rollups every 10 s).
const LIMIT: Duration = Duration::from_secs(60);

fn time(value: &Value) -> jiff::Timestamp {
    value
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {value}"))
}

/// One hop of a journey as the message detail shows it: server, how it was reached, flow, and
/// each recipient's final status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct HopView {
    server: String,
    link_kind: Option<String>,
    flow: Option<String>,
    recipients: Vec<(String, String)>,
}

fn hop(server: &str, link_kind: Option<&str>, flow: &str, recipients: &[(&str, &str)]) -> HopView {
    HopView {
        server: server.to_owned(),
        link_kind: link_kind.map(str::to_owned),
        flow: Some(flow.to_owned()),
        recipients: recipients
            .iter()
            .map(|(a, s)| ((*a).to_owned(), (*s).to_owned()))
            .collect(),
    }
}

fn journey(detail: &Value) -> Vec<HopView> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    detail["journey"]
        .as_array()
        .map(|hops| {
            hops.iter()
                .map(|h| HopView {
                    server: text(&h["server"]).unwrap_or_default(),
                    link_kind: text(&h["link_kind"]),
                    flow: text(&h["flow"]),
                    recipients: h["recipients"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| {
                            (
                                text(&r["address"]).unwrap_or_default(),
                                text(&r["status"]).unwrap_or_default(),
                            )
                        })
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `found` has the hops of `expected` in journey order: the same hops, the first one
/// first, and each hop reached by relay after a hop on another server that sent the mail to its
/// recipients. (Two notifications of one bounce are siblings: either may come first.)
fn same_journey(found: &[HopView], expected: &[HopView]) -> bool {
    let sorted = |hops: &[HopView]| {
        let mut hops = hops.to_vec();
        hops.sort();
        hops
    };
    let relays_ordered = found.iter().enumerate().all(|(i, hop)| {
        hop.link_kind.as_deref() != Some("relay")
            || found[..i]
                .iter()
                .any(|before| before.server != hop.server && before.recipients == hop.recipients)
    });
    found.first() == expected.first() && sorted(found) == sorted(expected) && relays_ordered
}

/// The recipient `address` of the hop on `server` in `detail`'s journey.
fn recipient<'a>(detail: &'a Value, server: &str, address: &str) -> Option<&'a Value> {
    detail["journey"]
        .as_array()?
        .iter()
        .filter(|h| h["server"] == server)
        .flat_map(|h| h["recipients"].as_array().into_iter().flatten())
        .find(|r| r["address"] == address)
}

/// Everything the ELSE server's daemons said, for a failure's message.
fn logs(fleet: &ThreeServers, web: &Web, snmp: &Snmp) -> String {
    format!(
        "--- central rsyslogd\n{}\n--- elsed serve\n{}\n--- elsed ndr\n{}\n--- elsed snmp poll\n{}\n--- snmpd out1\n{}",
        fleet.central.own_log(),
        web.daemon.output(),
        fleet.ndr.output(),
        snmp.poller.output(),
        snmp.out1
            .log()
            .lines()
            .filter(|l| !l.starts_with("Connection from"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The SNMP agent settings of a host for `PUT /admin/servers/{id}/snmp` (SNMPv3 authPriv).
fn agent(snmpd: &snmpd::Snmpd) -> Value {
    json!({
        "settings": {
            "enabled": true, "host": snmpd.ip, "port": snmpd.port, "version": "3",
            "read_user": RO.0, "control_user": CTL.0, "auth_protocol": "SHA",
        },
        "secrets": {
            "read_auth_pass": RO.1, "read_priv_pass": RO.2,
            "control_auth_pass": CTL.1, "control_priv_pass": CTL.2,
        },
    })
}

/// The last sample's queue `name` count of a samples answer, with its time.
fn latest_queue(samples: &Value, name: &str) -> Option<(jiff::Timestamp, i64)> {
    let last = samples["items"].as_array()?.last()?;
    Some((time(&last["ts"]), last["queues"][name]["count"].as_i64()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_track_every_message_end_to_end() {
    if let Some(why) = topology::unavailable() {
        else_tests::missing(why);
        return;
    }
    if !snmpd::available() || topology::rerun_in_own_network_namespace("three_servers_track_every_message_end_to_end") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("else-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = PgCluster::shared().create_database().await;
    let started = jiff::Timestamp::now();
    let fleet = ThreeServers::start(&dir, &url, GREYLIST_DELAY_SECS);
    fleet.add_user("admin", "admin", ADMIN_PASSWORD);
    let web = fleet.serve();
    let api = common::Api::login(&web, "admin", ADMIN_PASSWORD).await;
    let (in1, out1) = (api.server_id("in1").await, api.server_id("out1").await);
    // Both hosts' agents registered through the API, as the server page does.
    let snmp = fleet.start_snmp();
    for (id, agent) in [(in1, agent(&snmp.in1)), (out1, agent(&snmp.out1))] {
        let saved = api.put(&format!("/admin/servers/{id}/snmp"), agent.clone()).await;
        assert_eq!(saved, agent["settings"], "the settings come back, never the secrets");
    }
    let logs = || logs(&fleet, &web, &snmp);

    let clock = Instant::now();
    let phase = |name: &str| println!("{:5.1} s  {name}", clock.elapsed().as_secs_f64());
    send_traffic();
    phase("traffic sent");
    deferred_mail_is_seen_in_the_queue_over_snmp(&api, out1, &fleet, &logs).await;
    phase("deferred mail seen over SNMP, then delivered");
    let found = every_message_is_tracked(&api, &logs).await;
    phase("every message tracked");
    let rejects = rejects_are_listed(&api, in1, &logs).await;
    let notices = in1_sends_its_postmaster_notices_to_elsed(&api, &logs).await;
    phase("in1's postmaster notices delivered to elsed");
    dashboard_totals_match_what_was_sent(&api, &found, &notices, &rejects, started, &logs).await;
    phase("dashboard totals");
    report_agrees_with_pflogsumm(&api, &fleet, [("in1", in1), ("out1", out1)], started, &logs).await;
    phase("report and pflogsumm");
    drop((api, snmp, web, fleet));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every case, with swaks; each server's answer is checked here (the 4xx and 5xx a client sees).
fn send_traffic() {
    // Inbound: greylisted first, accepted on the retry after the delay.
    let inbound = || {
        swaks(
            IN1,
            REMOTE_CLIENT,
            "carol@remote.test",
            "alice@example.test",
            "inbound@e2e.test",
        )
    };
    let first = inbound();
    assert!(
        !first.accepted && first.transcript.contains("450"),
        "{}",
        first.transcript
    );
    std::thread::sleep(Duration::from_secs(GREYLIST_DELAY_SECS + 1));
    let retry = inbound();
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
    // Outbound: delivered, bounced, deferred (then delivered); internal to internal.
    for (to, id) in [
        ("dave@remote.test", "outbound@e2e.test"),
        ("nobody@remote.test", "bounce@e2e.test"),
        ("later@remote.test", "deferred@e2e.test"),
        ("bob@example.test", "internal@e2e.test"),
    ] {
        let sent = swaks(OUT1, WORKSTATION, "alice@example.test", to, id);
        assert!(sent.accepted, "{}", sent.transcript);
    }
}

/// While the remote mailbox refuses (450), out1's deferred queue is seen at one or more over
/// SNMP, in a sample taken after the first deferral; once it accepts and the retry delivers, a
/// later sample says zero.
async fn deferred_mail_is_seen_in_the_queue_over_snmp(
    api: &common::Api,
    out1: i64,
    fleet: &ThreeServers,
    logs: &impl Fn() -> String,
) {
    let samples_path = format!("/servers/{out1}/samples");
    let ask = || async {
        json!({
            "message": api.message("deferred@e2e.test").await,
            "samples": api.get(&samples_path, &[]).await,
        })
    };
    let first_deferral = |v: &Value| -> Option<jiff::Timestamp> {
        let detail = &v["message"]["detail"];
        let attempts = recipient(detail, "out1", "later@remote.test")?["attempts"].as_array()?;
        let deferral = attempts.iter().find(|a| a["status"] == "deferred")?;
        Some(time(&deferral["ts"]))
    };
    let seen = common::eventually(LIMIT, ask, |v| {
        v["message"]["detail"].is_object()
            && first_deferral(v).is_some_and(|deferred_at| {
                latest_queue(&v["samples"], "deferred").is_some_and(|(ts, count)| ts > deferred_at && count >= 1)
            })
    })
    .await
    .unwrap_or_else(|last| {
        panic!(
            "deferred@e2e.test deferred and seen in out1's deferred queue: {last:#}\n{}",
            logs()
        )
    });
    let (_, count) = latest_queue(&seen["samples"], "deferred").unwrap();
    println!("out1's deferred queue over SNMP while the remote refused: {count}");
    let servers = api.get("/servers", &[]).await;
    let health = servers
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == out1))
        .map(|s| s["health"].clone());
    assert!(
        health
            .as_ref()
            .is_some_and(|h| h["state"].is_string() && h["at"].is_string()),
        "out1's health from the poller in /servers: {servers:#}"
    );

    fleet.set_remote_busy(false);
    let sent_at = |v: &Value| -> Option<jiff::Timestamp> {
        let detail = &v["message"]["detail"];
        let later = recipient(detail, "out1", "later@remote.test")?;
        let sent = later["attempts"].as_array()?.iter().find(|a| a["status"] == "sent")?;
        (later["status"] == "sent").then(|| time(&sent["ts"]))
    };
    // Log times are whole seconds: a sample of the same second may predate the delivery.
    let second = jiff::SignedDuration::from_secs(1);
    common::eventually(LIMIT, ask, |v| {
        sent_at(v).is_some_and(|sent| {
            latest_queue(&v["samples"], "deferred").is_some_and(|(ts, count)| ts > sent + second && count == 0)
        })
    })
    .await
    .unwrap_or_else(|last| panic!("delivered, and out1's deferred queue back to 0: {last:#}\n{}", logs()));
}

/// What each message sent must look like through the API, in journey order. Returns the
/// details found, by Message-ID.
async fn every_message_is_tracked(api: &common::Api, logs: &impl Fn() -> String) -> BTreeMap<&'static str, Value> {
    let cases: [(&str, Vec<HopView>); 5] = [
        (
            "inbound@e2e.test",
            vec![hop("in1", None, "inbound", &[("alice@example.test", "sent")])],
        ),
        (
            "outbound@e2e.test",
            vec![hop("out1", None, "outbound", &[("dave@remote.test", "sent")])],
        ),
        (
            "deferred@e2e.test",
            vec![hop("out1", None, "outbound", &[("later@remote.test", "sent")])],
        ),
        // The bounce, then its two notifications on out1: the postmaster copy to elsed's NDR
        // collector and the NDR to the sender, which out1 relays to her mailbox on in1.
        (
            "bounce@e2e.test",
            vec![
                hop("out1", None, "outbound", &[("nobody@remote.test", "bounced")]),
                hop(
                    "out1",
                    Some("notification"),
                    "internal",
                    &[("ndr@ndr.else.invalid", "sent")],
                ),
                hop(
                    "out1",
                    Some("notification"),
                    "internal",
                    &[("alice@example.test", "sent")],
                ),
                hop("in1", Some("relay"), "internal", &[("alice@example.test", "sent")]),
            ],
        ),
        // Internal: out1 then in1 (logged within the same second: told apart by server), the
        // second hop reached by relay from the first, both internal and delivered.
        (
            "internal@e2e.test",
            vec![
                hop("out1", None, "internal", &[("bob@example.test", "sent")]),
                hop("in1", Some("relay"), "internal", &[("bob@example.test", "sent")]),
            ],
        ),
    ];
    let mut found = BTreeMap::new();
    for (message_id, expected) in cases {
        let answer = common::eventually(
            LIMIT,
            || api.message(message_id),
            |m| same_journey(&journey(&m["detail"]), &expected),
        )
        .await
        .unwrap_or_else(|last| {
            panic!(
                "{message_id}: expected the journey {expected:#?}, the API says {:#?}\n{last:#}\n{}",
                journey(&last["detail"]),
                logs()
            )
        });
        // The quick search lists every hop of the journey that carries this Message-ID (the
        // notifications have their own), each with its flow.
        let pairs = |list: &Value| -> Vec<(String, String)> {
            let mut pairs: Vec<(String, String)> = list
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["message_id"] == message_id)
                .map(|m| {
                    let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
                    (text("server"), text("flow"))
                })
                .collect();
            pairs.sort();
            pairs
        };
        let listed = pairs(&answer["search"]["items"]);
        assert!(
            !listed.is_empty()
                && listed == pairs(&answer["detail"]["journey"])
                && answer["search"]["total"] == listed.len(),
            "{message_id}: the search lists {listed:?}: {:#}",
            answer["search"]
        );
        found.insert(message_id, answer["detail"].clone());
    }
    // The deferred mail's recipient shows its deferral(s), then the delivery.
    let later = recipient(&found["deferred@e2e.test"], "out1", "later@remote.test")
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<&str> = later["attempts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["status"].as_str())
        .collect();
    assert!(
        statuses.len() >= 2
            && statuses[..statuses.len() - 1].iter().all(|s| *s == "deferred")
            && statuses.last() == Some(&"sent"),
        "{later:#}"
    );
    bounce_ndr_is_linked(api, &mut found, logs).await;
    found
}

/// The bounce's NDR (the postmaster copy out1 sent to elsed's collector) is linked to the
/// bounced message: in the NDR list and in the message's detail.
async fn bounce_ndr_is_linked(
    api: &common::Api,
    found: &mut BTreeMap<&'static str, Value>,
    logs: &impl Fn() -> String,
) {
    let bounced = found["bounce@e2e.test"]["journey"][0].clone();
    let (message, queue_id) = (bounced["id"].clone(), bounced["queue_id"].clone());
    let ndrs = common::eventually(
        LIMIT,
        || api.get("/ndrs", &[("linked", "true")]),
        |page| {
            page["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|n| n["message_id"] == message))
        },
    )
    .await
    .unwrap_or_else(|last| panic!("an NDR linked to {message} ({queue_id}): {last:#}\n{}", logs()));
    let ndr = ndrs["items"]
        .as_array()
        .and_then(|items| items.iter().find(|n| n["message_id"] == message))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&ndr["server"], &ndr["queue_id"], &ndr["original_sender"]),
        (&json!("out1"), &queue_id, &json!("alice@example.test")),
        "{ndr:#}"
    );
    let failed = &ndr["failed_recipients"][0];
    assert_eq!(
        (&failed["address"], &failed["action"]),
        (&json!("nobody@remote.test"), &json!("failed")),
        "{ndr:#}"
    );
    assert!(failed["status"].as_str().is_some_and(|s| s.starts_with('5')), "{ndr:#}");
    let detail = api.message("bounce@e2e.test").await["detail"].clone();
    let linked: Vec<&Value> = detail["ndrs"].as_array().into_iter().flatten().collect();
    assert!(
        linked.len() == 1 && linked[0]["id"] == ndr["id"] && linked[0]["message_id"] == message,
        "the detail links the NDR {}: {detail:#}",
        ndr["id"]
    );
    found.insert("bounce@e2e.test", detail);
}

/// in1's rejects through the rejects search: the greylisted first try, the unknown user and the
/// blocked client, each from its client, with its code, and no message (NOQUEUE).
async fn rejects_are_listed(api: &common::Api, in1: i64, logs: &impl Fn() -> String) -> Value {
    let in1 = in1.to_string();
    let query = [("server", in1.as_str()), ("action", "reject"), ("sort", "ts")];
    let expected = [
        (REMOTE_CLIENT, "alice@example.test", 450),
        (REMOTE_CLIENT, "nobody@example.test", 550),
        (BLOCKED_CLIENT, "alice@example.test", 554),
    ];
    // Sorted: the two last ones are logged within the same second.
    let view = |page: &Value| -> Vec<(String, String, i64)> {
        let mut rejects: Vec<(String, String, i64)> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["client_ip"].as_str().unwrap_or_default().to_owned(),
                    r["recipient"].as_str().unwrap_or_default().to_owned(),
                    r["code"].as_i64().unwrap_or_default(),
                )
            })
            .collect();
        rejects.sort();
        rejects
    };
    let mut wanted: Vec<(String, String, i64)> = expected
        .iter()
        .map(|(c, r, code)| ((*c).to_owned(), (*r).to_owned(), *code))
        .collect();
    wanted.sort();
    let page = common::eventually(LIMIT, || api.get("/rejects", &query), |page| view(page) == wanted)
        .await
        .unwrap_or_else(|last| panic!("in1's rejects {wanted:?}: {last:#}\n{}", logs()));
    for item in page["items"].as_array().into_iter().flatten() {
        assert!(item["message_id"].is_null(), "{item:#}");
        assert_eq!(item["server"], "in1", "{item:#}");
    }
    // Refused before DATA: no message exists for them.
    for message_id in ["unknown@e2e.test", "blocked@e2e.test"] {
        let search = api.get("/messages", &[("q", message_id)]).await;
        assert_eq!(search["total"], 0, "{message_id}: {search:#}");
    }
    page
}

/// The counts `/stats/traffic` must show, from what the API showed of each message: per flow,
/// in1 runs the shipped NDR snippet too: its `bounce` notify class sends the postmaster (elsed's
/// collector) a transcript of each session where it rejected mail. Those notices are messages of
/// their own, on in1, delivered to the collector; returns their details.
async fn in1_sends_its_postmaster_notices_to_elsed(api: &common::Api, logs: &impl Fn() -> String) -> Vec<Value> {
    let query = [("recipient", "ndr@ndr.else.invalid"), ("per_page", "100")];
    let delivered_from_in1 = |list: &Value| -> Vec<String> {
        let items = list["items"].as_array().into_iter().flatten();
        items
            .filter(|m| m["server"] == "in1" && m["recipients"][0]["status"] == "sent")
            .filter_map(|m| m["id"].as_str().map(str::to_owned))
            .collect()
    };
    let listed = common::eventually(
        LIMIT,
        || api.get("/messages", &query),
        |list| !delivered_from_in1(list).is_empty(),
    )
    .await
    .unwrap_or_else(|last| panic!("in1's notices to ndr@ndr.else.invalid: {last:#}\n{}", logs()));
    let mut notices = Vec::new();
    for id in delivered_from_in1(&listed) {
        notices.push(api.get(&format!("/messages/{id}"), &[]).await);
    }
    notices
}

/// a hop that came in through smtpd (it has a client) is received, each attempt of a recipient
/// a delivery, deferral or bounce, with the hop's size as bytes (the rollups' definitions, which
/// are `elsed report`'s); the NOQUEUE rejects have no message, so no flow (`unknown`). The key
/// `""` is every flow together.
fn expected_traffic<'a>(
    details: impl Iterator<Item = &'a Value>,
    rejects: i64,
) -> BTreeMap<&'static str, BTreeMap<&'static str, i64>> {
    const FLOWS: [&str; 6] = ["", "inbound", "outbound", "internal", "relayed", "unknown"];
    const METRICS: [&str; 9] = [
        "received",
        "delivered",
        "forwarded",
        "deferred",
        "bounced",
        "rejected",
        "expired",
        "bytes_received",
        "bytes_delivered",
    ];
    let mut expected: BTreeMap<&str, BTreeMap<&str, i64>> = FLOWS
        .iter()
        .map(|flow| (*flow, METRICS.iter().map(|m| (*m, 0)).collect()))
        .collect();
    let mut add = |flow: &str, metric: &str, n: i64| {
        for key in ["", flow] {
            if let Some(count) = expected.get_mut(key).and_then(|counts| counts.get_mut(metric)) {
                *count += n;
            }
        }
    };
    // Each hop once, though a journey may be reached from two of the messages sent.
    let hops: BTreeMap<&str, &Value> = details
        .flat_map(|detail| detail["journey"].as_array().into_iter().flatten())
        .filter_map(|hop| Some((hop["id"].as_str()?, hop)))
        .collect();
    for hop in hops.values() {
        let flow = hop["flow"].as_str().unwrap_or("unknown");
        let size = hop["size"].as_i64().unwrap_or_default();
        if !hop["client_ip"].is_null() {
            add(flow, "received", 1);
            add(flow, "bytes_received", size);
        }
        let attempts = hop["recipients"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["attempts"].as_array().into_iter().flatten());
        for attempt in attempts {
            match attempt["status"].as_str() {
                Some("sent") => {
                    add(flow, "delivered", 1);
                    add(flow, "bytes_delivered", size);
                }
                Some(status @ ("deferred" | "bounced")) => add(flow, status, 1),
                _ => {}
            }
        }
    }
    add("unknown", "rejected", rejects);
    expected
}

/// Once every message is final, the dashboard's totals over the run, per flow, are what the
/// messages and rejects came to ([`expected_traffic`]), and the rejects by code are those sent.
/// `elsed serve` refreshes the rollups every 10 s: asked until they agree.
async fn dashboard_totals_match_what_was_sent(
    api: &common::Api,
    found: &BTreeMap<&'static str, Value>,
    notices: &[Value],
    rejects: &Value,
    started: jiff::Timestamp,
    logs: &impl Fn() -> String,
) {
    let items: Vec<&Value> = rejects["items"].as_array().into_iter().flatten().collect();
    let expected = expected_traffic(found.values().chain(notices), items.len() as i64);
    // What was sent, in words: 5 messages, the internal one received again by in1 and the
    // bounce's notification to alice received by in1; deliveries to 4 mailboxes on in1, 2 on the
    // Internet, 2 relays out1 → in1, out1's postmaster copy to elsed and in1's notices.
    assert_eq!(
        (
            expected[""]["received"],
            expected[""]["delivered"],
            expected[""]["bounced"]
        ),
        (7, 8 + notices.len() as i64, 1),
        "{expected:#?}"
    );
    let since = started.to_string();
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let range = [("since", since.as_str()), ("until", until.as_str())];
    let traffic = |flow: &'static str| async move {
        let mut query = range.to_vec();
        if !flow.is_empty() {
            query.push(("flow", flow));
        }
        api.get("/stats/traffic", &query).await["totals"].clone()
    };
    let counts = |totals: &Value, flow: &str| -> BTreeMap<&'static str, i64> {
        expected[flow]
            .keys()
            .map(|metric| (*metric, totals[*metric].as_i64().unwrap_or(-1)))
            .collect()
    };
    let all = common::eventually(LIMIT, || traffic(""), |totals| counts(totals, "") == expected[""])
        .await
        .unwrap_or_else(|last| {
            panic!(
                "/stats/traffic totals {:#?}, expected {:#?} (from {found:#?})\n{}",
                counts(&last, ""),
                expected[""],
                logs()
            )
        });
    println!("dashboard totals: {all}");
    for flow in expected.keys().filter(|flow| !flow.is_empty()) {
        let totals = traffic(flow).await;
        assert_eq!(
            counts(&totals, flow),
            expected[flow],
            "/stats/traffic?flow={flow}: {totals}"
        );
    }
    let mut by_code = BTreeMap::new();
    for item in &items {
        *by_code.entry(item["code"].to_string()).or_insert(0) += 1;
    }
    let mut query = range.to_vec();
    query.push(("group_by", "code"));
    let answer = api.get("/stats/rejects", &query).await;
    let listed: BTreeMap<String, i64> = answer["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["key"].as_str().unwrap_or_default().to_owned(),
                i["count"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(listed, by_code, "/stats/rejects?group_by=code: {answer}");
}

/// `elsed report --format json` over the run (one server, or all), UTC.
fn elsed_report(fleet: &ThreeServers, host: Option<&str>, since: &str, until: &str) -> Value {
    let mut command = Command::new(elsed_binary());
    command
        .arg("--config")
        .arg(&fleet.config)
        .env_remove("ELSE_DATABASE_URL")
        .args([
            "report",
            "--format",
            "json",
            "--timezone",
            "UTC",
            "--since",
            since,
            "--until",
            until,
        ]);
    if let Some(host) = host {
        command.args(["--host", host]);
    }
    let output = command.output().expect("run elsed report");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "elsed report: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("elsed report: {e}: {stdout}"))
}

/// Issue #5 on logs a real Postfix wrote: once elsed holds every line of the two hosts' maillog
/// files, `elsed report`'s grand totals equal Debian pflogsumm's on each file, and on both
/// together. No case where pflogsumm is wrong occurs here: there is no content filter (the
/// report says so: no filter hops), and the internal mail's relay out1 → in1 is one message
/// received and delivered by each of two servers, which both reports count on each (ELSE's
/// report, like its dashboards, deduplicates only a content filter's hop on one server) — the
/// test checks that explicitly, so that a change of definition cannot pass unnoticed.
async fn report_agrees_with_pflogsumm(
    api: &common::Api,
    fleet: &ThreeServers,
    hosts: [(&str, i64); 2],
    started: jiff::Timestamp,
    logs: &impl Fn() -> String,
) {
    let maillogs = || [fleet.in1.log(), fleet.out1.log()];
    // Postfix may log more while the reports run (a daemon's statistics): then again, at most
    // three times, on the new files.
    for _ in 0..3 {
        let maillog = maillogs();
        // Every line each host wrote is in elsed (forwarded over RELP, stored by omelse).
        for ((name, id), log) in hosts.iter().zip(&maillog) {
            let id = id.to_string();
            let query = [("server", id.as_str()), ("per_page", "1")];
            let lines = log.lines().count() as i64;
            common::eventually(
                LIMIT,
                || api.get("/logs", &query),
                |page| page["total"].as_i64() >= Some(lines),
            )
            .await
            .unwrap_or_else(|last| panic!("{name}'s {lines} log lines in elsed: {last:#}\n{}", logs()));
        }
        let compared = compare_totals(fleet, hosts, &maillog, started);
        if maillogs() == maillog {
            return compared.unwrap_or_else(|difference| panic!("{difference}"));
        }
    }
    panic!(
        "Postfix kept logging during the comparison:\n{}\n{}",
        fleet.in1.log(),
        fleet.out1.log()
    );
}

/// [`report_agrees_with_pflogsumm`] on one copy of the maillog files: `Err` says what differs.
fn compare_totals(
    fleet: &ThreeServers,
    hosts: [(&str, i64); 2],
    maillog: &[String; 2],
    started: jiff::Timestamp,
) -> Result<(), String> {
    let since = started.to_string();
    let until = jiff::Timestamp::now().to_string();
    let scopes = [
        (Some(hosts[0].0), maillog[0].clone()),
        (Some(hosts[1].0), maillog[1].clone()),
        (None, format!("{}{}", maillog[0], maillog[1])),
    ];
    let mut counted = Vec::new();
    for (host, log) in scopes {
        let report = elsed_report(fleet, host, &since, &until);
        let ours = pflogsumm::printed(&report);
        let theirs = pflogsumm::grand_totals(&pflogsumm::run(&log, &[]));
        let theirs: BTreeMap<String, String> = ours
            .keys()
            .map(|label| (label.clone(), theirs.get(label).cloned().unwrap_or_default()))
            .collect();
        let scope = host.unwrap_or("in1 and out1");
        if ours != theirs {
            return Err(format!(
                "{scope}: elsed report {ours:#?}\npflogsumm {theirs:#?}\non:\n{log}"
            ));
        }
        let hops = &report["filter_hops"];
        if (&hops["handed_to_filter"], &hops["reinjected"]) != (&json!(0), &json!(0)) {
            return Err(format!("{scope}: no content filter here, yet: {hops}"));
        }
        let number = |label: &str| ours[label].parse::<i64>().unwrap_or(-1);
        counted.push([number("received"), number("delivered")]);
    }
    let both = [counted[0][0] + counted[1][0], counted[0][1] + counted[1][1]];
    if counted[2] != both {
        return Err(format!(
            "over both servers, received and delivered {:?} are not each server's added up {both:?}: \
             the relay hop out1 → in1 counts on both",
            counted[2]
        ));
    }
    Ok(())
}
