//! The NDR data functions against a real PostgreSQL, NDRs stored by the collector's own code and
//! the message of the logs imported by elsed's import, under each kind of scope.

use std::collections::BTreeSet;
use std::sync::Mutex;

use axum::http::StatusCode;
use else_tests::PgCluster;

use super::*;
use crate::access::GroupScope;
use crate::ndr::store::{self, Incoming};
use crate::ndr::tests::{database, import_lines};

/// A Postfix-style NDR: reported by `mta` about `queue_id` from `sender`, one recipient block.
fn ndr(mta: &str, queue_id: &str, sender: &str, rcpt: &str, action: &str, status: &str) -> Vec<u8> {
    format!(
        "Subject: Undelivered Mail Returned to Sender\r
From: MAILER-DAEMON@{mta} (Mail Delivery System)\r
Received: by {mta} (Postfix) id N{queue_id}; Sat, 28 Nov 2026 18:55:52 +0000 (UTC)\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r
\r
--b\r
Content-Type: text/plain\r
\r
I'm sorry to have to inform you...\r
--b\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; {mta}\r
X-Postfix-Queue-ID: {queue_id}\r
X-Postfix-Sender: rfc822; {sender}\r
Arrival-Date: Sat, 28 Nov 2026 18:55:50 +0000 (UTC)\r
\r
Final-Recipient: rfc822; {rcpt}\r
Action: {action}\r
Status: {status}\r
Diagnostic-Code: smtp; 550 {status} no such user\r
--b\r
Content-Type: text/rfc822-headers\r
\r
From: {sender}\r
Subject: Quarterly figures\r
Message-ID: <m-{queue_id}@example.org>\r
\r
--b--\r
"
    )
    .into_bytes()
}

async fn store_ndr(url: &str, raw: &[u8]) -> i64 {
    let mut client = omelse::store::connect(url).await.unwrap();
    let incoming = Incoming {
        received_at: jiff::Timestamp::now().as_second(),
        client_ip: "127.0.0.1".parse().unwrap(),
        helo: Some("mx"),
        protocol: "lmtp",
        sender: "",
        recipients: &["ndr@ndr.else.invalid".to_owned()],
        raw,
    };
    store::insert(&mut client, &Mutex::new(BTreeSet::new()), &incoming)
        .await
        .unwrap()
}

struct Fixture {
    client: Client,
    /// Linked, mx1, alice@example.org (submitted locally: vouched for) → bob@remote.test, 5.1.1.
    a: i64,
    /// Unlinked, mx2, carol@other.test → dave@example.org, delayed 4.2.2.
    b: i64,
    /// Not a DSN at all.
    c: i64,
    raw_a: Vec<u8>,
    mx1: i32,
    mx2: i32,
    message_uid: i64,
}

async fn fixture() -> Fixture {
    let url = database(PgCluster::shared()).await;
    import_lines(
        &url,
        &[
            "Nov 28 18:55:49 mx1 postfix/pickup[101]: 4F1A23B0C5: uid=1000 from=<alice@example.org>",
            "Nov 28 18:55:50 mx1 postfix/qmgr[102]: 4F1A23B0C5: from=<alice@example.org>, size=300, nrcpt=1 (queue active)",
            "Nov 28 18:55:51 mx1 postfix/smtp[103]: 4F1A23B0C5: to=<bob@remote.test>, relay=remote.test[192.0.2.7]:25, delay=1, delays=0/0/0.5/0.5, dsn=5.1.1, status=bounced (host remote.test[192.0.2.7] said: 550 5.1.1 unknown (in reply to RCPT TO command))",
            "Nov 28 18:55:52 mx1 postfix/qmgr[102]: 4F1A23B0C5: removed",
            "Nov 28 18:56:00 mx2 postfix/qmgr[7]: 7A7A7A7A7A: from=<erin@third.test>, size=10, nrcpt=1 (queue active)",
        ],
    )
    .await;
    let raw_a = ndr(
        "mx1",
        "4F1A23B0C5",
        "alice@example.org",
        "bob@remote.test",
        "failed",
        "5.1.1",
    );
    let a = store_ndr(&url, &raw_a).await;
    let b = store_ndr(
        &url,
        &ndr(
            "mx2",
            "5B5B5B5B5B",
            "carol@other.test",
            "Dave@Example.org",
            "delayed",
            "4.2.2",
        ),
    )
    .await;
    let c = store_ndr(&url, b"Subject: hello\r\n\r\nnot a bounce\r\n").await;
    let client = omelse::store::connect(&url).await.unwrap();
    let server = |name: &'static str| {
        let client = &client;
        async move {
            client
                .query_one("SELECT id FROM servers WHERE name = $1", &[&name])
                .await
                .unwrap()
                .get::<_, i32>(0)
        }
    };
    let (mx1, mx2) = (server("mx1").await, server("mx2").await);
    let message_uid = client
        .query_one("SELECT uid FROM messages WHERE queue_id = '4F1A23B0C5'", &[])
        .await
        .unwrap()
        .get(0);
    Fixture {
        client,
        a,
        b,
        c,
        raw_a,
        mx1,
        mx2,
        message_uid,
    }
}

fn group(servers: &[i32], domains: &[&str]) -> Scope {
    Scope::Groups(vec![GroupScope {
        server_ids: servers.to_vec(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    }])
}

fn addresses(list: &[&str]) -> Scope {
    Scope::Addresses(list.iter().map(|a| a.to_string()).collect())
}

async fn ids(f: &Fixture, scope: &Scope, filter: NdrFilter) -> Vec<i64> {
    let page = list(&f.client, scope, &filter, PageParams::default()).await.unwrap();
    assert_eq!(page.total as usize, page.items.len(), "one page holds them all here");
    page.items.iter().map(|n| n.id.parse().unwrap()).collect()
}

#[tokio::test]
async fn each_scope_sees_its_own_ndrs_and_nothing_else() {
    let f = fixture().await;
    let all = NdrFilter::default;
    assert_eq!(ids(&f, &Scope::All, all()).await, [f.c, f.b, f.a], "newest first");
    // Group members: a server of the group and a domain of the group (failed recipient, or sender
    // when vouched for: the NDR is linked to a message submitted locally).
    assert_eq!(ids(&f, &group(&[f.mx1], &["example.org"]), all()).await, [f.a]);
    assert_eq!(ids(&f, &group(&[f.mx1], &["remote.test"]), all()).await, [f.a]);
    assert_eq!(ids(&f, &group(&[f.mx2], &["example.org"]), all()).await, [f.b]);
    // Not linked: its original sender is whatever the NDR says, which anyone can forge.
    assert!(ids(&f, &group(&[f.mx2], &["other.test"]), all()).await.is_empty());
    assert!(ids(&f, &addresses(&["carol@other.test"]), all()).await.is_empty());
    assert!(ids(&f, &group(&[f.mx2], &["remote.test"]), all()).await.is_empty());
    assert!(ids(&f, &group(&[f.mx1], &["other.test"]), all()).await.is_empty());
    // Pairs, not a cross product: mx1 with other.test and mx2 with remote.test see nothing.
    let crossed = Scope::Groups(vec![
        GroupScope {
            server_ids: vec![f.mx1],
            domains: vec!["other.test".into()],
            ..Default::default()
        },
        GroupScope {
            server_ids: vec![f.mx2],
            domains: vec!["remote.test".into()],
            ..Default::default()
        },
    ]);
    assert!(ids(&f, &crossed, all()).await.is_empty());
    // End users: their addresses as original sender or failed recipient, any case.
    assert_eq!(ids(&f, &addresses(&["alice@example.org"]), all()).await, [f.a]);
    assert_eq!(ids(&f, &addresses(&["bob@remote.test"]), all()).await, [f.a]);
    assert_eq!(ids(&f, &addresses(&["dave@example.org"]), all()).await, [f.b]);
    assert!(ids(&f, &addresses(&["erin@third.test"]), all()).await.is_empty());

    // Detail and raw: 404 outside the scope, as for an id that does not exist.
    let outsider = addresses(&["erin@third.test"]);
    let id = f.a.to_string();
    assert_eq!(
        detail(&f.client, &outsider, &id).await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&f.client, &outsider, &id).await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&f.client, &Scope::All, "999999").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&f.client, &Scope::All, "x; DROP").await.unwrap_err().status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        raw(&f.client, &addresses(&["alice@example.org"]), &id).await.unwrap(),
        f.raw_a
    );
    assert!(detail(&f.client, &group(&[f.mx1], &["example.org"]), &id).await.is_ok());
}

#[tokio::test]
async fn summaries_details_and_the_message_link() {
    let f = fixture().await;
    let page = list(&f.client, &Scope::All, &NdrFilter::default(), PageParams::default())
        .await
        .unwrap();
    let a = page.items.iter().find(|n| n.id == f.a.to_string()).unwrap();
    assert_eq!(a.server.as_deref(), Some("mx1"));
    assert_eq!(a.server_id, Some(f.mx1));
    assert_eq!(a.queue_id.as_deref(), Some("4F1A23B0C5"));
    assert_eq!(a.original_sender.as_deref(), Some("alice@example.org"));
    assert_eq!(a.subject.as_deref(), Some("Quarterly figures"));
    assert_eq!(
        a.message_id,
        Some(f.message_uid.to_string()),
        "linked to the logged message"
    );
    assert!(!a.flagged);
    assert_eq!(a.failed_recipients.len(), 1);
    let r = &a.failed_recipients[0];
    assert_eq!(r.address.as_deref(), Some("bob@remote.test"));
    assert_eq!(
        (r.action.as_deref(), r.status.as_deref()),
        (Some("failed"), Some("5.1.1"))
    );
    assert_eq!(r.diagnostic.as_deref(), Some("smtp; 550 5.1.1 no such user"));
    let c = page.items.iter().find(|n| n.id == f.c.to_string()).unwrap();
    assert!(c.flagged && c.problem.is_some(), "{c:?}");
    assert_eq!(
        c.server, None,
        "no Reporting-MTA, and 127.0.0.1 is no known server's address"
    );
    let b = page.items.iter().find(|n| n.id == f.b.to_string()).unwrap();
    assert_eq!(b.message_id, None);

    let d = detail(&f.client, &Scope::All, &f.a.to_string()).await.unwrap();
    assert_eq!(d.summary, *a);
    assert_eq!(d.kind, "dsn");
    assert_eq!(d.linked_by.as_deref(), Some("queue_id"));
    assert_eq!(d.headers["Subject"], "Undelivered Mail Returned to Sender");
    assert_eq!(d.dsn.message["reporting-mta"], "dns; mx1");
    assert_eq!(d.dsn.recipients[0]["status"], "5.1.1");
    assert_eq!(d.returned.as_deref(), Some("headers"));
    assert_eq!(d.returned_headers["Message-ID"], "<m-4F1A23B0C5@example.org>");
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(json["id"], f.a.to_string(), "the summary's fields at the top level");
}

#[tokio::test]
async fn filters_and_bad_parameters() {
    let f = fixture().await;
    let with = |set: fn(&mut NdrFilter)| {
        let mut filter = NdrFilter::default();
        set(&mut filter);
        filter
    };
    let all = Scope::All;
    assert_eq!(ids(&f, &all, with(|x| x.linked = Some(true))).await, [f.a]);
    assert_eq!(ids(&f, &all, with(|x| x.linked = Some(false))).await, [f.c, f.b]);
    assert_eq!(ids(&f, &all, with(|x| x.status = Some("5".into()))).await, [f.a]);
    assert_eq!(ids(&f, &all, with(|x| x.status = Some("4.2".into()))).await, [f.b]);
    assert!(ids(&f, &all, with(|x| x.status = Some("4.2.22".into())))
        .await
        .is_empty());
    assert_eq!(ids(&f, &all, with(|x| x.status = Some("Delayed".into()))).await, [f.b]);
    assert_eq!(
        ids(&f, &all, with(|x| x.sender = Some("ALICE@example.org".into()))).await,
        [f.a]
    );
    assert_eq!(
        ids(&f, &all, with(|x| x.recipient = Some("@example.org".into()))).await,
        [f.b]
    );
    assert_eq!(
        ids(&f, &all, with(|x| x.recipient = Some("dave@EXAMPLE.org".into()))).await,
        [f.b]
    );
    let mx1 = f.mx1;
    let page = list(
        &f.client,
        &all,
        &NdrFilter {
            server: Some(mx1),
            ..Default::default()
        },
        PageParams::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        page.items.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        [f.a.to_string()]
    );
    let page = list(
        &f.client,
        &all,
        &NdrFilter {
            server: Some(f.mx2),
            ..Default::default()
        },
        PageParams::default(),
    )
    .await
    .unwrap();
    assert_eq!(page.total, 1);
    assert!(ids(&f, &all, with(|x| x.since = Some("2999-01-01T00:00:00Z".into())))
        .await
        .is_empty());
    assert_eq!(
        ids(&f, &all, with(|x| x.until = Some("2999-01-01T00:00:00Z".into())))
            .await
            .len(),
        3
    );
    assert_eq!(
        ids(&f, &all, with(|x| x.sort = Some("received_at".into()))).await,
        [f.a, f.b, f.c]
    );
    // Paging: total counts them all, items only the page.
    let paged = PageParams {
        per_page: Some(2),
        page: Some(2),
    };
    let page = list(&f.client, &all, &NdrFilter::default(), paged).await.unwrap();
    assert_eq!((page.total, page.items.len(), page.page), (3, 1, 2));
    assert_eq!(page.items[0].id, f.a.to_string());

    let client = &f.client;
    let bad = |filter: NdrFilter| async move {
        list(client, &Scope::All, &filter, PageParams::default())
            .await
            .unwrap_err()
    };
    let e = bad(with(|x| x.since = Some("last tuesday".into()))).await;
    assert_eq!((e.status, e.field), (StatusCode::BAD_REQUEST, Some("since")));
    assert_eq!(bad(with(|x| x.sort = Some("size".into()))).await.field, Some("sort"));
    assert_eq!(bad(with(|x| x.status = Some("5%".into()))).await.field, Some("status"));
}
