//! The greylisting data functions against a real PostgreSQL, the decisions made by the real
//! GreyLSE policy (with a hand-moved clock) and logged by its own writer, under each scope.

use axum::http::StatusCode;

use super::*;
use crate::access::{GroupScope, Role};
use crate::greylist::tests::{ask, config, database, decisions as logged, is_defer, service, ManualClock};
use crate::greylist::{Clock, GreylistConfig};

/// 2025-11-24T16:00:00Z, where ManualClock starts.
const T0: i64 = 1_764_000_000;

fn at(secs: i64) -> Option<String> {
    Some(jiff::Timestamp::from_second(secs).unwrap().to_string())
}

fn greylist_cfg() -> GreylistConfig {
    GreylistConfig {
        optout: vec!["quiet.example".into()],
        ..config("mx7")
    }
}

/// Five decisions: two deferred, one passed after 300 s, one opted out (16:00–16:05), and one
/// deferred an hour later from another sender. Returns the database URL and the service.
async fn five_decisions() -> (String, std::sync::Arc<crate::greylist::Policy>) {
    let url = database().await;
    let clock = ManualClock::new();
    assert_eq!(clock.now(), T0);
    let policy = service(&url, greylist_cfg(), clock.clone()).await;
    assert!(is_defer(
        &ask(&policy, "192.0.2.1", "a@s.example", "Bob@R.example").await
    ));
    assert!(is_defer(
        &ask(&policy, "192.0.2.1", "b@s.example", "bob@r.example").await
    ));
    clock.advance(300);
    assert!(ask(&policy, "192.0.2.1", "a@s.example", "bob@r.example")
        .await
        .starts_with("PREPEND"));
    assert_eq!(
        ask(&policy, "192.0.2.1", "a@s.example", "x@quiet.example").await,
        "DUNNO"
    );
    clock.advance(3_600);
    assert!(is_defer(
        &ask(&policy, "198.51.100.9", "Carol@Other.example", "dave@s.example").await
    ));
    assert_eq!(logged(&url, 5).await.len(), 5);
    (url, policy)
}

fn period() -> StatsParams {
    StatsParams {
        since: at(T0 - 60),
        until: at(T0 + 4_000),
        ..Default::default()
    }
}

fn groups(domains: &[&str]) -> Scope {
    Scope::Groups(vec![GroupScope {
        server_ids: vec![1],
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    }])
}

fn addresses(list: &[&str]) -> Scope {
    Scope::Addresses(list.iter().map(|a| a.to_string()).collect())
}

#[tokio::test]
async fn statistics_count_each_outcome_by_period_domain_and_scope() {
    let (url, _policy) = five_decisions().await;
    let db = omelse::store::connect(&url).await.unwrap();
    let s = stats(&db, &Scope::All, &period()).await.unwrap();
    assert_eq!(s.bucket, "hour");
    let t = s.totals;
    assert_eq!(
        (t.deferred, t.passed_after_delay, t.not_greylisted, t.passed),
        (3, 1, 1, 1)
    );
    assert_eq!(
        (t.passed_known, t.passed_awl, t.passed_whitelisted, t.failed_open),
        (0, 0, 0, 0)
    );
    assert_eq!(s.mean_delay_secs, Some(300.0));
    let series: Vec<(&str, i64, i64)> = s
        .series
        .iter()
        .map(|p| (p.t.as_str(), p.counts.deferred, p.counts.passed))
        .collect();
    assert_eq!(series, [("2025-11-24T16:00:00Z", 2, 1), ("2025-11-24T17:00:00Z", 1, 0)]);
    let by_domain: Vec<(&str, i64, i64, i64)> = s
        .by_domain
        .iter()
        .map(|d| {
            (
                d.domain.as_str(),
                d.counts.deferred,
                d.counts.passed_after_delay,
                d.counts.not_greylisted,
            )
        })
        .collect();
    assert_eq!(
        by_domain,
        [
            ("r.example", 2, 1, 0),
            ("quiet.example", 0, 0, 1),
            ("s.example", 1, 0, 0)
        ]
    );
    assert_eq!(s.awl_entries, Some(AwlEntries { senders: 0, domains: 0 }));

    let one_domain = StatsParams {
        domain: Some("R.example".into()),
        bucket: Some("day".into()),
        ..period()
    };
    let s = stats(&db, &Scope::All, &one_domain).await.unwrap();
    assert_eq!((s.totals.deferred, s.totals.passed, s.series.len()), (2, 1, 1));
    assert_eq!(s.series[0].t, "2025-11-24T00:00:00Z");

    // Scopes: a group's domains as recipient domain; an end user's addresses. The sender grants
    // nothing (greylisting judges unauthenticated mail: anyone can claim it): other.example (the
    // sender of the decision to dave@s.example) sees none; s.example, sender of four, only that one.
    let s = stats(&db, &groups(&["other.example"]), &period()).await.unwrap();
    assert_eq!((s.totals.deferred, s.totals.passed, s.awl_entries), (0, 0, None));
    let s = stats(&db, &groups(&["s.example"]), &period()).await.unwrap();
    assert_eq!((s.totals.deferred, s.totals.passed, s.awl_entries), (1, 0, None));
    let s = stats(&db, &groups(&["quiet.example"]), &period()).await.unwrap();
    assert_eq!((s.totals.deferred, s.totals.not_greylisted), (0, 1));
    let s = stats(&db, &addresses(&["bob@r.example"]), &period()).await.unwrap();
    assert_eq!(
        (s.totals.deferred, s.totals.passed_after_delay, s.totals.not_greylisted),
        (2, 1, 0)
    );
    let s = stats(&db, &addresses(&["nobody@r.example"]), &period()).await.unwrap();
    assert_eq!(s.totals, Counts::default());
    assert!(s.series.is_empty() && s.by_domain.is_empty());

    let bad = |p: StatsParams| {
        let db = &db;
        async move { stats(db, &Scope::All, &p).await.unwrap_err().field }
    };
    assert_eq!(
        bad(StatsParams {
            bucket: Some("minute".into()),
            ..period()
        })
        .await,
        Some("bucket")
    );
    assert_eq!(
        bad(StatsParams {
            since: at(T0 + 5_000),
            ..period()
        })
        .await,
        Some("since")
    );
    assert_eq!(
        bad(StatsParams {
            until: Some("soon".into()),
            ..period()
        })
        .await,
        Some("until")
    );
}

#[tokio::test]
async fn decisions_list_filters_and_scopes() {
    let (url, _policy) = five_decisions().await;
    let db = omelse::store::connect(&url).await.unwrap();
    let filter = || DecisionFilter {
        since: at(T0 - 60),
        until: at(T0 + 4_000),
        ..Default::default()
    };
    let list = |scope: Scope, f: DecisionFilter| {
        let db = &db;
        async move { decisions(db, &scope, &f, PageParams::default()).await }
    };
    let page = list(Scope::All, filter()).await.unwrap();
    assert_eq!((page.total, page.total_capped, page.items.len()), (5, false, 5));
    let newest = &page.items[0];
    assert_eq!(newest.sender.as_deref(), Some("Carol@Other.example"));
    assert_eq!((newest.decision.as_str(), newest.reason.as_str()), ("greylist", "new"));
    assert_eq!((newest.delay_remaining, newest.delayed), (Some(300), None));
    assert_eq!(newest.client_ip.as_deref(), Some("198.51.100.9"));
    assert_eq!(newest.mx, "mx7");
    assert_eq!(newest.ts, "2025-11-24T17:05:00Z");
    let pass = page.items.iter().find(|d| d.decision == "pass").unwrap();
    assert_eq!((pass.delayed, pass.delay_remaining), (Some(300), None));

    let count = |scope: Scope, set: fn(&mut DecisionFilter)| {
        let mut f = filter();
        set(&mut f);
        let list = &list;
        async move { list(scope, f).await.unwrap().total }
    };
    assert_eq!(count(Scope::All, |f| f.decision = Some("pass".into())).await, 1);
    assert_eq!(count(Scope::All, |f| f.address = Some("BOB@r.example".into())).await, 3);
    assert_eq!(
        count(Scope::All, |f| f.address = Some("carol@other.example".into())).await,
        1
    );
    assert_eq!(count(Scope::All, |f| f.client = Some("198.51.100.9".into())).await, 1);
    assert_eq!(count(addresses(&["bob@r.example"]), |_| {}).await, 3);
    // Carol only claimed to send it; dave is its recipient.
    assert_eq!(count(addresses(&["carol@other.example"]), |_| {}).await, 0);
    assert_eq!(count(addresses(&["dave@s.example"]), |_| {}).await, 1);
    assert_eq!(count(addresses(&["erin@r.example"]), |_| {}).await, 0);
    assert_eq!(count(groups(&["r.example", "quiet.example"]), |_| {}).await, 4);
    assert_eq!(
        count(groups(&["r.example"]), |f| f.decision = Some("greylist".into())).await,
        2
    );
    // Without a period: the last 24 hours, where this clock's decisions are not.
    let recent = list(Scope::All, DecisionFilter::default()).await.unwrap();
    assert_eq!(recent.total, 0);
    // Paging.
    let paged = PageParams {
        page: Some(3),
        per_page: Some(2),
    };
    let page = decisions(&db, &Scope::All, &filter(), paged).await.unwrap();
    assert_eq!((page.total, page.items.len()), (5, 1));
    assert_eq!(page.items[0].ts, "2025-11-24T16:00:00Z", "the oldest last");

    let bad = |set: fn(&mut DecisionFilter)| {
        let mut f = filter();
        set(&mut f);
        let list = &list;
        async move { list(Scope::All, f).await.unwrap_err() }
    };
    let e = bad(|f| f.decision = Some("ok".into())).await;
    assert_eq!((e.status, e.field), (StatusCode::BAD_REQUEST, Some("decision")));
    assert_eq!(bad(|f| f.client = Some("a.b".into())).await.field, Some("client"));
    let too_small = PageParams {
        per_page: Some(0),
        ..Default::default()
    };
    let e = decisions(&db, &Scope::All, &filter(), too_small).await.unwrap_err();
    assert_eq!(e.field, Some("per_page"));
}

#[tokio::test]
async fn a_message_shows_the_greylisting_that_delayed_it() {
    let (url, _policy) = five_decisions().await;
    // The message that got through at 16:05, as smtpd and qmgr logged it.
    let dir = std::env::temp_dir().join(format!("greylist-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("maillog");
    std::fs::write(
        &file,
        "Nov 24 16:05:00 mx1 postfix/smtpd[10]: connect from unknown[192.0.2.1]\n\
         Nov 24 16:05:01 mx1 postfix/smtpd[10]: 4B4B4B4B4B: client=unknown[192.0.2.1]\n\
         Nov 24 16:05:01 mx1 postfix/qmgr[11]: 4B4B4B4B4B: from=<a@s.example>, size=300, nrcpt=1 (queue active)\n\
         Nov 24 16:05:02 mx1 postfix/local[12]: 4B4B4B4B4B: to=<bob@r.example>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n\
         Nov 24 16:05:02 mx1 postfix/qmgr[11]: 4B4B4B4B4B: removed\n\
         Nov 24 16:05:03 box1 postfix/smtpd[20]: 5C5C5C5C5C: client=mx1[192.0.2.2]\n\
         Nov 24 16:05:03 box1 postfix/qmgr[21]: 5C5C5C5C5C: from=<a@s.example>, size=400, nrcpt=1 (queue active)\n\
         Nov 24 16:05:04 box1 postfix/local[22]: 5C5C5C5C5C: to=<bob@r.example>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n\
         Nov 24 16:05:04 box1 postfix/qmgr[21]: 5C5C5C5C5C: removed\n",
    )
    .unwrap();
    crate::ndr::tests::import_file(&url, &file, "2025-11-30T00:00:00Z").await;
    let db = omelse::store::connect(&url).await.unwrap();
    let uid: i64 = db
        .query_one("SELECT uid FROM messages WHERE queue_id = '4B4B4B4B4B'", &[])
        .await
        .unwrap()
        .get(0);
    let next_hop: i64 = db
        .query_one("SELECT uid FROM messages WHERE queue_id = '5C5C5C5C5C'", &[])
        .await
        .unwrap()
        .get(0);
    let expected = [("greylist", "2025-11-24T16:00:00Z"), ("pass", "2025-11-24T16:05:00Z")];
    let seen = |uids: Vec<i64>| {
        let db = &db;
        async move {
            let history = greylist_decisions_for_messages(db, &Scope::All, &uids).await.unwrap();
            history
                .iter()
                .map(|d| (d.decision.clone(), d.ts.clone()))
                .collect::<Vec<_>>()
        }
    };
    let expected: Vec<(String, String)> = expected.iter().map(|(a, t)| (a.to_string(), t.to_string())).collect();
    assert_eq!(
        seen(vec![uid]).await,
        expected,
        "b@s.example's attempt and the later decisions are not this message's"
    );
    // Both hops of the journey carry the same triplet: each decision is listed once.
    assert_eq!(seen(vec![uid, next_hop]).await, expected);
    assert!(seen(vec![-1]).await.is_empty());
    assert!(seen(Vec::new()).await.is_empty());
}

fn caller(role: Role) -> Caller {
    Caller {
        user_id: 1,
        login: "root".into(),
        role,
        scope: if role == Role::Admin {
            Scope::All
        } else {
            groups(&["r.example"])
        },
        session: crate::access::Session {
            id: Vec::new(),
            csrf_token: String::new(),
        },
    }
}

#[tokio::test]
async fn administrators_manage_whitelists_that_the_service_obeys() {
    let (url, policy) = five_decisions().await;
    let db = omelse::store::connect(&url).await.unwrap();
    let admin = crate::web::auth::Admin(caller(Role::Admin));
    let cfg = greylist_cfg();
    let entry = |kind, value: &str| NewEntry {
        kind,
        value: value.into(),
        comment: "partner".into(),
    };
    let client = add_entry(&db, &admin, &cfg, &entry(EntryKind::Client, " 198.51.100.0/24 "))
        .await
        .unwrap();
    assert_eq!(client.value, "198.51.100.0/24");
    assert_eq!(client.created_by.as_deref(), Some("root"));
    assert!(client.id.as_deref().unwrap().starts_with("client:"));
    let again = add_entry(&db, &admin, &cfg, &entry(EntryKind::Client, "198.51.100.0/24")).await;
    assert_eq!(again.unwrap_err().status, StatusCode::CONFLICT);
    let bad = add_entry(&db, &admin, &cfg, &entry(EntryKind::Client, "10.0.0.0/33"))
        .await
        .unwrap_err();
    assert_eq!((bad.status, bad.field), (StatusCode::BAD_REQUEST, Some("value")));
    let bad = add_entry(&db, &admin, &cfg, &entry(EntryKind::Recipient, "a@b@c"))
        .await
        .unwrap_err();
    assert_eq!(bad.field, Some("value"));
    add_entry(&db, &admin, &cfg, &entry(EntryKind::Recipient, "Postmaster@"))
        .await
        .unwrap();
    let optin = add_entry(&db, &admin, &cfg, &entry(EntryKind::DomainOptin, "in.example"))
        .await
        .unwrap();
    assert!(
        !optin.active,
        "opt-in entries do nothing while the service greylists every domain"
    );
    let optout = add_entry(&db, &admin, &cfg, &entry(EntryKind::DomainOptout, "in.example")).await;
    assert_eq!(
        optout.unwrap_err().status,
        StatusCode::CONFLICT,
        "one setting per domain"
    );

    let list = whitelist(&db, &cfg).await.unwrap();
    let got: Vec<(EntryKind, &str, &str, bool)> = list
        .iter()
        .map(|e| (e.kind, e.value.as_str(), e.source, e.active))
        .collect();
    assert_eq!(
        got,
        [
            (EntryKind::Client, "198.51.100.0/24", "database", true),
            (EntryKind::DomainOptin, "in.example", "database", false),
            (EntryKind::Recipient, "postmaster@", "database", true),
            (EntryKind::DomainOptout, "quiet.example", "config", true),
        ]
    );
    assert_eq!(list[1].id.as_deref(), Some("domain:in.example"));

    // The running service reads them (here at once; by itself within lists_refresh_secs).
    policy.reload_lists().await.unwrap();
    assert_eq!(
        ask(&policy, "198.51.100.200", "new@s.example", "bob@r.example").await,
        "DUNNO"
    );
    assert_eq!(
        ask(&policy, "203.0.113.5", "new@s.example", "postmaster@r.example").await,
        "DUNNO"
    );
    assert!(is_defer(
        &ask(&policy, "203.0.113.5", "new@s.example", "bob@r.example").await
    ));

    let id = client.id.unwrap();
    remove_entry(&db, &admin, &id).await.unwrap();
    assert_eq!(
        remove_entry(&db, &admin, &id).await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        remove_entry(&db, &admin, "client:x").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        remove_entry(&db, &admin, "bogus").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    remove_entry(&db, &admin, "domain:in.example").await.unwrap();
    policy.reload_lists().await.unwrap();
    assert!(is_defer(
        &ask(&policy, "198.51.100.200", "new@s.example", "bob@r.example").await
    ));
    assert_eq!(whitelist(&db, &cfg).await.unwrap().len(), 2);
}
