//! `GET /database` on a shared installation: administrators see why the read replica is
//! skipped, the other accounts (a customer scoped to its domain, a user of no group, an end
//! user) see how fresh reads are and nothing that names the standby.

use super::*;

/// A role the test server does not have: connecting as it fails with the server's own words,
/// which name it, as they would name a real standby's role.
const STANDBY_ROLE: &str = "else_standby_probe";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_administrators_see_why_the_read_replica_is_skipped() {
    let server: tokio_postgres::Config = PgCluster::shared().admin_url().parse().unwrap();
    let host = match &server.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(host) => host.clone(),
        other => panic!("the test server is reached over TCP: {other:?}"),
    };
    let port = server.get_ports()[0];
    let read_url = format!("host={host} port={port} user={STANDBY_ROLE} dbname=else connect_timeout=2");
    let elsed = Elsed::start(
        "database",
        &format!("\n[database]\nread_url = \"{read_url}\"\nread_max_lag_secs = 7"),
    )
    .await;
    ok(elsed.cli(&["group", "add", "a"], ""));
    ok(elsed.cli(&["group", "add-domain", "a", "customer-a.example"], ""));
    let admin = elsed.admin().await;
    let groups: Value = elsed.get("/admin/groups", Some(&admin)).await.json().await.unwrap();
    let group = groups[0]["id"].as_i64().unwrap();
    for (login, role, groups, addresses) in [
        ("member-a", "user", vec![group], vec![]),
        ("ann", "enduser", vec![], vec!["ann@customer-a.example"]),
    ] {
        let user = json!({ "login": login, "role": role, "password": "a good password",
                           "groups": groups, "addresses": addresses });
        elsed.create_user(&admin, user).await;
    }

    // The watcher has tried the standby once it names the role (it checks every second).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let full = loop {
        let body: Value = elsed.get("/database", Some(&admin)).await.json().await.unwrap();
        if body["read_replica"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(STANDBY_ROLE))
        {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reason never named the role: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(full["reads_from"], "primary", "{full}");
    assert_eq!(full["read_replica"]["configured"], true, "{full}");
    assert_eq!(full["read_replica"]["in_use"], false, "{full}");
    assert!(full["read_replica"]["checked_at"].is_string(), "{full}");

    let customers = [
        ("member-a", elsed.session("member-a", "a good password").await),
        ("viewer", elsed.viewer(&admin).await),
        ("ann", elsed.session("ann", "a good password").await),
    ];
    for (name, session) in &customers {
        let response = elsed.get("/database", Some(session)).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let body: Value = response.json().await.unwrap();
        // Every text but the time of the check (whose digits could hold the port's by chance).
        let mut text = body.clone();
        text["read_replica"]["checked_at"] = Value::Null;
        let text = text.to_string();
        for secret in [
            STANDBY_ROLE,
            &host,
            &port.to_string(),
            "does not exist",
            "no connection",
        ] {
            assert!(!text.contains(secret), "{name} learns {secret:?}: {body}");
        }
        // How fresh its searches are, as the administrator sees it; nothing of why.
        assert_eq!(body["reads_from"], "primary", "{name}: {body}");
        let replica = &body["read_replica"];
        for field in ["configured", "in_use", "max_lag_seconds"] {
            assert_eq!(replica[field], full["read_replica"][field], "{name}: {field}");
        }
        assert_eq!(replica["max_lag_seconds"], 7, "{name}: {body}");
        assert!(replica["checked_at"].is_string(), "{name}: {body}");
        for field in ["reason", "lag_bytes", "replay_paused"] {
            assert!(replica[field].is_null(), "{name}: {field}: {body}");
        }
    }
    error(elsed.get("/database", None).await, StatusCode::UNAUTHORIZED).await;
}
