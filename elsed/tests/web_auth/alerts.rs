//! The alerts API as a browser meets it: a group member lists and opens only the alerts of their
//! scope (docs/alerts.md, "Who sees what"), acknowledges and silences them with the CSRF token,
//! and each action is in the audit log and the alert's history; an end user sees no alert.
//!
//! The alerts are written into the database as the evaluator writes them (one row and its
//! `opened` step): the detectors that find them are tested in elsed's `alerts` module.

use super::*;

/// The alerts this test writes are all there is: `elsed serve` evaluates no rule (it would
/// resolve them, and it keeps `alert_server_watch` for itself).
const NO_EVALUATION: &str = "\n[alerts]\nenabled = false";

/// Inserts an open (or resolved) alert with its `opened` step; its id.
async fn insert_alert(
    db: &tokio_postgres::Client,
    rule: &str,
    key: &str,
    server_id: Option<i32>,
    domain: Option<&str>,
    state: &str,
) -> i64 {
    let id: i64 = db
        .query_one(
            "INSERT INTO alerts (rule, key, server_id, domain, severity, state, title, evidence,
                                 opened_at, held_at, resolved_at)
             VALUES ($1, $2, $3, $4, 'warning', $5, $1 || ' ' || $2, '{\"failures\": 7}',
                     now() - interval '30 minutes', now() - interval '1 minute',
                     CASE WHEN $5 = 'resolved' THEN now() END)
             RETURNING id",
            &[&rule, &key, &server_id, &domain, &state],
        )
        .await
        .unwrap()
        .get(0);
    db.execute(
        "INSERT INTO alert_events (alert_id, at, kind, details) VALUES ($1, now() - interval '30 minutes', 'opened', '{}')",
        &[&id],
    )
    .await
    .unwrap();
    id
}

/// The fixture's servers (mx1 and out1: their ids); group a with mx1 (shared with other
/// customers) and the domain example.com, and its member `member-a`; `ann`, an end user of
/// example.com.
async fn callers(elsed: &Elsed, db: &tokio_postgres::Client) -> (i32, i32) {
    elsed.import_fixture();
    ok(elsed.cli(&["group", "add", "a"], ""));
    ok(elsed.cli(&["group", "add-server", "a", "mx1"], ""));
    ok(elsed.cli(&["group", "add-domain", "a", "example.com"], ""));
    ok(elsed.cli(
        &["user", "add", "member-a", "--group", "a", "--password-file", "-"],
        "a member's password\n",
    ));
    let end_user = [
        "user",
        "add",
        "ann",
        "--role",
        "enduser",
        "--address",
        "ann@example.com",
    ];
    ok(elsed.cli(
        &[&end_user[..], &["--password-file", "-"]].concat(),
        "an end user's password\n",
    ));
    let mut ids = Vec::new();
    for name in ["mx1", "out1"] {
        let row = db
            .query_one("SELECT id FROM servers WHERE name = $1", &[&name])
            .await
            .unwrap();
        ids.push(row.get::<_, i32>(0));
    }
    (ids[0], ids[1])
}

/// The ids of a list answer, in its order.
async fn listed(elsed: &Elsed, path: &str, session: &Session) -> Vec<i64> {
    let response = elsed.get(path, Some(session)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let body: Value = response.json().await.unwrap();
    body.as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sees_and_handles_only_the_alerts_of_their_scope() {
    let elsed = Elsed::start("alerts", NO_EVALUATION).await;
    let db = elsed.db().await;
    let (mx1, out1) = callers(&elsed, &db).await;

    let mx1_queue = insert_alert(&db, "queue", "mx1/deferred", Some(mx1), None, "open").await;
    let out1_queue = insert_alert(&db, "queue", "out1/deferred", Some(out1), None, "open").await;
    let own_destination = insert_alert(
        &db,
        "destination",
        "mx1/example.com",
        Some(mx1),
        Some("example.com"),
        "open",
    )
    .await;
    let other_destination = insert_alert(
        &db,
        "destination",
        "out1/example.org",
        Some(out1),
        Some("example.org"),
        "open",
    )
    .await;
    let mx1_volume = insert_alert(&db, "volume", "mx1/inbound", Some(mx1), None, "open").await;
    let greylist = insert_alert(&db, "greylist", "forged.example", None, None, "open").await;
    let resolved = insert_alert(&db, "silent", "mx1", Some(mx1), None, "resolved").await;

    let admin = elsed.admin().await;
    let member = elsed.session("member-a", "a member's password").await;
    let ann = elsed.session("ann", "an end user's password").await;

    // Lists: the administrator every open alert; the member their server's health and their own
    // domain's destination, not mx1's volume (every customer's mail) nor anything of out1.
    let mut everything = listed(&elsed, "/alerts", &admin).await;
    everything.sort();
    assert_eq!(
        everything,
        [
            mx1_queue,
            out1_queue,
            own_destination,
            other_destination,
            mx1_volume,
            greylist
        ]
    );
    let mut mine = listed(&elsed, "/alerts", &member).await;
    mine.sort();
    assert_eq!(mine, [mx1_queue, own_destination]);
    assert_eq!(listed(&elsed, "/alerts?state=resolved", &member).await, [resolved]);
    let all = listed(&elsed, "/alerts?state=all", &member).await;
    assert_eq!(all.last(), Some(&resolved), "open ones first: {all:?}");
    assert_eq!(all.len(), 3);
    let body = error(
        elsed.get("/alerts?state=closed", Some(&member)).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(body["field"], "state", "{body}");
    // An end user sees no alert, and none exists for them.
    assert!(listed(&elsed, "/alerts?state=all", &ann).await.is_empty());
    error(
        elsed.get(&format!("/alerts/{mx1_queue}"), Some(&ann)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    error(elsed.get("/alerts", None).await, StatusCode::UNAUTHORIZED).await;

    // Details: outside the scope, or unknown, is 404; the member's own has its history.
    for id in [out1_queue, other_destination, mx1_volume, greylist, 999_999] {
        error(
            elsed.get(&format!("/alerts/{id}"), Some(&member)).await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    let detail: Value = elsed
        .get(&format!("/alerts/{greylist}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["alert"]["rule"], "greylist", "{detail}");

    // Acknowledging needs the CSRF token; outside the scope it is 404 and nothing is recorded.
    let ack = |id: i64| format!("/alerts/{id}/acknowledge");
    let refused = elsed
        .request(Method::POST, &ack(mx1_queue), Some(&member), false)
        .send()
        .await
        .unwrap();
    let body = error(refused, StatusCode::FORBIDDEN).await;
    assert!(body["error"].as_str().unwrap().contains("CSRF"), "{body}");
    for id in [out1_queue, greylist, 999_999] {
        error(
            elsed.send(Method::POST, &ack(id), &member, json!({})).await,
            StatusCode::NOT_FOUND,
        )
        .await;
        error(
            elsed
                .send(
                    Method::POST,
                    &format!("/alerts/{id}/silence"),
                    &member,
                    json!({"minutes": 60}),
                )
                .await,
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    error(
        elsed.send(Method::POST, &ack(mx1_queue), &ann, json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let untouched: (Option<String>, Option<String>) = {
        let row = db
            .query_one("SELECT max(acknowledged_by), max(silenced_by) FROM alerts", &[])
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(untouched, (None, None), "refusals changed nothing");

    let response = elsed.send(Method::POST, &ack(mx1_queue), &member, json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let acknowledged: Value = response.json().await.unwrap();
    assert_eq!(acknowledged["acknowledged_by"], "member-a", "{acknowledged}");
    assert!(acknowledged["acknowledged_at"].is_string());

    // Silencing: a clear error for a bad duration, then an hour, then lifted.
    let silence = format!("/alerts/{mx1_queue}/silence");
    for (body, says) in [
        (json!({"minutes": 0}), "between 1 and 43200"),
        (json!({"minutes": 43_201}), "between 1 and 43200"),
        (json!({"minutes": "sixty"}), "minutes"),
        (json!({"minutes": 60, "until": "tomorrow"}), "until"),
    ] {
        let answer = error(
            elsed.send(Method::POST, &silence, &member, body.clone()).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(answer["error"].as_str().unwrap().contains(says), "{body} → {answer}");
    }
    let refused = elsed
        .request(Method::POST, &silence, Some(&member), false)
        .json(&json!({"minutes": 60}))
        .send()
        .await
        .unwrap();
    error(refused, StatusCode::FORBIDDEN).await;
    let response = elsed
        .send(Method::POST, &silence, &member, json!({"minutes": 60}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let silenced: Value = response.json().await.unwrap();
    assert_eq!(silenced["silenced_by"], "member-a");
    let until: jiff::Timestamp = silenced["silenced_until"].as_str().unwrap().parse().unwrap();
    let from_now = until.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((59 * 60..=60 * 60).contains(&from_now), "{from_now} s");
    let response = elsed
        .send(Method::POST, &silence, &member, json!({"minutes": null}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let lifted: Value = response.json().await.unwrap();
    assert!(lifted["silenced_until"].is_null(), "{lifted}");

    // The alert's history and the audit log say who did what.
    let detail: Value = elsed
        .get(&format!("/alerts/{mx1_queue}"), Some(&member))
        .await
        .json()
        .await
        .unwrap();
    let steps: Vec<(&str, Option<&str>)> = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["actor"].as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("opened", None),
            ("acknowledged", Some("member-a")),
            ("silenced", Some("member-a")),
            ("unsilenced", Some("member-a")),
        ]
    );
    let audit: Value = elsed
        .get("/admin/audit?per_page=100", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let alert_actions: Vec<(&str, &str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("alert."))
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
            )
        })
        .collect();
    let target = mx1_queue.to_string();
    assert_eq!(
        alert_actions,
        [
            ("member-a", "alert.unsilence", target.as_str()),
            ("member-a", "alert.silence", target.as_str()),
            ("member-a", "alert.acknowledge", target.as_str()),
        ],
        "newest first, refusals outside the scope not recorded"
    );
}

/// `GET /overview` within each caller's scope: the administrator's picture of the fleet, a group
/// member's of their server and domain (their alerts, their server, their domain's traffic against
/// its usual level, the remote hosts their mail fails to reach), and none for an end user.
///
/// The rollups are written as `elsed serve` writes them, for this hour and the same hour of the
/// four previous weeks; the log lines of the last minutes as omelse writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_answers_each_caller_within_their_scope() {
    let elsed = Elsed::start("overview", NO_EVALUATION).await;
    let mut db = elsed.db().await;
    let today = omelse::parse::Timestamp::now().unix_seconds().div_euclid(86_400);
    omelse::store::ensure_days(&mut db, &std::collections::BTreeSet::from([today]))
        .await
        .unwrap();
    let (mx1, out1) = callers(&elsed, &db).await;
    let mx1_queue = insert_alert(&db, "queue", "mx1/deferred", Some(mx1), None, "open").await;
    let out1_queue = insert_alert(&db, "queue", "out1/deferred", Some(out1), None, "open").await;
    db.execute("UPDATE alerts SET severity = 'critical' WHERE id = $1", &[&out1_queue])
        .await
        .unwrap();
    insert_alert(&db, "silent", "mx1", Some(mx1), None, "resolved").await;
    // Inbound on mx1, this hour: 10 messages in all, 6 of them for example.com; the same hour of
    // the previous weeks 4, 8, none, 8 in all (usual 5) and 4, –, –, – for example.com (usual 1);
    // 3 days ago (another weekday) 100, which is not the usual level of today. Outbound on out1: 3.
    db.batch_execute(&format!(
        "INSERT INTO traffic_hourly (hour, server_id, flow, by_domain, domain, metric, messages, bytes)
         SELECT date_trunc('hour', now()) - make_interval(days => d), server, flow, by_domain, domain, 'received', n, n * 1000
         FROM (VALUES (0, {mx1}, 'inbound', false, '', 10), (7, {mx1}, 'inbound', false, '', 4),
                      (14, {mx1}, 'inbound', false, '', 8), (28, {mx1}, 'inbound', false, '', 8),
                      (3, {mx1}, 'inbound', false, '', 100),
                      (0, {mx1}, 'inbound', true, 'example.com', 6), (7, {mx1}, 'inbound', true, 'example.com', 4),
                      (0, {out1}, 'outbound', false, '', 3))
              AS v(d, server, flow, by_domain, domain, n);
         INSERT INTO stats_hourly (kind, hour, server_id, flow, by_domain, domain, key, messages, bytes)
         SELECT kind, date_trunc('hour', now()), server, 'outbound', by_domain, domain, key, n, 0
         FROM (VALUES ('deferred_host', {out1}, false, '', 'mx.busy.example', 9),
                      ('bounced_host', {out1}, false, '', 'mx.busy.example', 2),
                      ('deferred_host', {out1}, false, '', 'mx.slow.example', 4),
                      ('deferred_host', {mx1}, false, '', 'mx.other.example', 1),
                      ('deferred_host', {mx1}, true, 'example.com', 'mx.customer.example', 5))
              AS v(kind, server, by_domain, domain, key, n);
         INSERT INTO log_events (ts, line_key, server_id, program, kind, raw)
         SELECT now() - interval '1 minute', n, {mx1}, 'postfix/smtpd', 'other', 'a line'
         FROM generate_series(1, 60) n;
         INSERT INTO alert_server_watch (server_id, last_seen, observed_at, moved_at)
         VALUES ({mx1}, now() - interval '90 seconds', now(), now()),
                ({out1}, now() - interval '2 days', now(), now() - interval '1 day');"
    ))
    .await
    .unwrap();

    let admin = elsed.admin().await;
    let member = elsed.session("member-a", "a member's password").await;
    let ann = elsed.session("ann", "an end user's password").await;
    let overview = |session: &Session| {
        let session = session.clone();
        let elsed = &elsed;
        async move {
            let response = elsed.get("/overview", Some(&session)).await;
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let flow = |o: &Value, name: &str| {
        o["traffic"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["flow"] == name)
            .map(|f| (f["today"].as_i64().unwrap(), f["usual"].as_f64().unwrap()))
    };
    let names = |o: &Value, list: &str, field: &str| -> Vec<String> {
        o[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| field.split('.').fold(x, |v, k| &v[k]).as_str().unwrap().to_owned())
            .collect()
    };

    let all = overview(&admin).await;
    assert_eq!(
        (all["alerts"]["critical"].as_i64(), all["alerts"]["warning"].as_i64()),
        (Some(1), Some(1)),
        "{all}"
    );
    let top: Vec<i64> = all["alerts"]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(top, [out1_queue, mx1_queue], "critical first");
    assert_eq!(names(&all, "servers", "server.name"), ["mx1", "out1"]);
    let mx1_view = &all["servers"][0];
    assert_eq!(
        mx1_view["lines_per_second"].as_f64(),
        Some(0.2),
        "60 lines in 5 minutes"
    );
    let lag = mx1_view["lag_seconds"].as_i64().unwrap();
    assert!((89..=91).contains(&lag), "{lag}");
    assert!(
        all["servers"][1]["lag_seconds"].is_null(),
        "out1's lines did not move: no lag to tell"
    );
    assert_eq!(flow(&all, "inbound"), Some((10, 5.0)));
    assert_eq!(flow(&all, "outbound"), Some((3, 0.0)));
    assert_eq!(
        names(&all, "trouble", "host")[..3],
        ["mx.busy.example", "mx.slow.example", "mx.other.example"]
    );
    assert_eq!(
        (
            all["trouble"][0]["deferred"].as_i64(),
            all["trouble"][0]["bounced"].as_i64()
        ),
        (Some(9), Some(2))
    );

    // The member: their server's health alert, their server, their domain's counts only.
    let mine = overview(&member).await;
    assert_eq!(
        (mine["alerts"]["critical"].as_i64(), mine["alerts"]["warning"].as_i64()),
        (Some(0), Some(1)),
        "{mine}"
    );
    assert_eq!(mine["alerts"]["top"][0]["id"].as_i64(), Some(mx1_queue));
    assert_eq!(names(&mine, "servers", "server.name"), ["mx1"]);
    assert_eq!(flow(&mine, "inbound"), Some((6, 1.0)));
    assert_eq!(flow(&mine, "outbound"), None);
    assert_eq!(names(&mine, "trouble", "host"), ["mx.customer.example"]);

    error(elsed.get("/overview", Some(&ann)).await, StatusCode::FORBIDDEN).await;
    error(elsed.get("/overview", None).await, StatusCode::UNAUTHORIZED).await;
}
