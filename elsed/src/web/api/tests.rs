//! The search API's data functions against a real PostgreSQL filled by `elsed import` of the
//! repository's two-server fixture log (mx1 and out1), with every kind of scope.

use std::path::Path;

use else_tests::PgCluster;
use tokio_postgres::Client;

use super::listing::{self, Listing};
use super::logs::LogList;
use super::messages::{self, MessageList};
use super::params::{Paging, Params};
use super::rejects::RejectList;
use super::{live, message_detail};
use crate::access::{GroupScope, Scope};
use crate::message_query::{entries_page_from_where, MessageFilter, SearchEntryKind, TextFilter};
use crate::ndr::tests::{database, import_file};
use crate::recipient_lookup::RecipientLookup;

const FIXTURE_YEAR: &str = "2024-12-31T00:00:00Z";
/// The mail alice sent through out1 to erin (remote), frank (remote, greylisted once) and bob (mx1).
const ALICE_MESSAGE_ID: &str = "5f1c2a9e-77b3-4e0a-9d41-0c6b8e2f1a33@example.com";

/// A database with the fixture imported, and a connection to it.
async fn fixture_database() -> (String, Client) {
    let url = database(PgCluster::shared()).await;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log");
    import_file(&url, &fixture, FIXTURE_YEAR).await;
    let client = omelse::store::connect(&url).await.unwrap();
    (url, client)
}

async fn server_id(client: &Client, name: &str) -> i32 {
    client
        .query_one("SELECT id FROM servers WHERE name = $1", &[&name])
        .await
        .unwrap()
        .get(0)
}

async fn uid_of(client: &Client, queue_id: &str) -> i64 {
    client
        .query_one("SELECT uid FROM messages WHERE queue_id = $1", &[&queue_id])
        .await
        .unwrap()
        .get(0)
}

/// A member of one group: these servers, these domains.
fn group(server_ids: Vec<i32>, domains: &[&str]) -> Scope {
    Scope::Groups(vec![GroupScope {
        server_ids,
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    }])
}

fn end_user(addresses: &[&str]) -> Scope {
    Scope::Addresses(addresses.iter().map(|a| a.to_string()).collect())
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// The queue ids `/messages` lists for these parameters, in its order.
async fn found(client: &Client, scope: &Scope, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut p = params(pairs);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p
        .paging(&[("first_seen", "m.first_seen"), ("size", "m.size")], "first_seen")
        .unwrap();
    p.finish().unwrap();
    let page = MessageList::page(client.into(), scope, &filter, &paging).await.unwrap();
    assert!(!page.total_capped);
    page.items.into_iter().map(|m| m.message.queue_id).collect()
}

#[tokio::test]
async fn every_search_mode_finds_its_messages_and_no_more_than_the_scope_allows() {
    let (_url, client) = fixture_database().await;
    let all = Scope::All;
    // Quick search: Message-ID with or without brackets (both hops), queue id.
    let both_hops = found(&client, &all, &[("q", &format!("<{ALICE_MESSAGE_ID}>"))]).await;
    assert_eq!(both_hops, ["4ZdQ7k1Rc2z9Hw", "9C0A1B2D3E"]);
    assert_eq!(found(&client, &all, &[("q", ALICE_MESSAGE_ID)]).await, both_hops);
    assert_eq!(found(&client, &all, &[("q", "3A1F42C0D1")]).await, ["3A1F42C0D1"]);
    // Extended: each operator.
    assert_eq!(
        found(&client, &all, &[("sender", "@Example.COM")]).await,
        ["4ZdQ7k1Rc2z9Hw", "9C0A1B2D3E", "4ZdQ9m3Tf5zK2L"]
    );
    assert_eq!(
        found(&client, &all, &[("recipient", "BOB"), ("recipient_op", "starts")]).await,
        ["3A1F42C0D1", "7B2E19A4F3", "4ZdQ7k1Rc2z9Hw", "9C0A1B2D3E"]
    );
    assert_eq!(
        found(
            &client,
            &all,
            &[("recipient", "example.org"), ("recipient_op", "contains")]
        )
        .await,
        ["4ZdQ7k1Rc2z9Hw", "4ZdQ9m3Tf5zK2L"]
    );
    let not_carol = found(&client, &all, &[("sender", "carol@example.net"), ("sender_op", "not")]).await;
    // …the refused mail from someone else too.
    assert_eq!(not_carol.len(), 6, "{not_carol:?}");
    assert!(not_carol.iter().any(|q| q == "NOQUEUE"));
    assert!(!not_carol.iter().any(|q| q == "3A1F42C0D1"));
    assert_eq!(
        found(&client, &all, &[("client", "192.0.2.0/24")]).await,
        ["4ZdQ7k1Rc2z9Hw", "9C0A1B2D3E", "A1B2C3D4E5"]
    );
    assert_eq!(
        found(&client, &all, &[("client", "mail.example.net")]).await,
        ["3A1F42C0D1"]
    );
    assert_eq!(found(&client, &all, &[("status", "bounced")]).await, ["4ZdQ9m3Tf5zK2L"]);
    // A status is the latest one: frank's deferral was followed by a delivery.
    assert!(found(&client, &all, &[("status", "deferred")]).await.is_empty());
    assert_eq!(
        found(&client, &all, &[("size_min", "2000"), ("size_max", "3000")]).await,
        ["9C0A1B2D3E", "4ZdQ9n4Vg6zM3Q", "A1B2C3D4E5"]
    );
    let mx1 = server_id(&client, "mx1").await;
    let out1 = server_id(&client, "out1").await;
    assert_eq!(
        found(
            &client,
            &all,
            &[("server", &out1.to_string()), ("flow", "outbound"), ("sender", "<>")]
        )
        .await,
        ["4ZdQ9n4Vg6zM3Q"]
    );
    assert_eq!(
        found(
            &client,
            &all,
            &[("since", "2024-03-14T10:10:00Z"), ("until", "2024-03-14T10:20:01Z")]
        )
        .await,
        ["4ZdQ7k1Rc2z9Hw", "4ZdQ9m3Tf5zK2L"]
    );
    // SQL metacharacters are text like any other.
    assert!(found(&client, &all, &[("sender", "x' OR '1'='1")]).await.is_empty());
    assert!(
        found(&client, &all, &[("recipient", "%"), ("recipient_op", "contains")])
            .await
            .is_empty()
    );

    // Paging and sorting on the server.
    let mut p = params(&[("sort", "-size"), ("per_page", "2"), ("page", "2")]);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(MessageList::SORTS, MessageList::DEFAULT_SORT).unwrap();
    let page = MessageList::page((&client).into(), &all, &filter, &paging)
        .await
        .unwrap();
    // Seven messages and the refused mail (which has no size: the smallest, on the last page).
    assert_eq!((page.total, page.page, page.items.len()), (8, 2, 2));
    let sizes: Vec<Option<i64>> = page.items.iter().map(|m| m.message.size).collect();
    assert_eq!(sizes, [Some(2790), Some(2484)], "third and fourth largest");

    // A group member of mx1 and example.com: mx1's messages from or to example.com only, and the
    // mail mx1 refused for example.com.
    let mx1_group = group(vec![mx1], &["example.com"]);
    assert_eq!(
        found(&client, &mx1_group, &[]).await,
        ["3A1F42C0D1", "7B2E19A4F3", "NOQUEUE", "9C0A1B2D3E", "A1B2C3D4E5"]
    );
    assert_eq!(
        found(&client, &mx1_group, &[("q", ALICE_MESSAGE_ID)]).await,
        ["9C0A1B2D3E"]
    );
    // The same domain on the other server, or another domain on the same server: nothing in common.
    assert!(found(&client, &group(vec![mx1], &["example.org"]), &[])
        .await
        .is_empty());
    assert_eq!(
        found(&client, &group(vec![out1], &["example.org"]), &[]).await,
        ["4ZdQ7k1Rc2z9Hw", "4ZdQ9m3Tf5zK2L"]
    );
    // An end user: mail from or to the address, in any case.
    assert_eq!(
        found(&client, &end_user(&["frank@example.org"]), &[]).await,
        ["4ZdQ7k1Rc2z9Hw"]
    );
    assert!(
        found(&client, &end_user(&["frank@example.org"]), &[("q", "3A1F42C0D1")])
            .await
            .is_empty()
    );
}

/// The refused entries `/messages` lists for these parameters, as (recipient, code, enhanced).
async fn refused_found(client: &Client, scope: &Scope, pairs: &[(&str, &str)]) -> Vec<(String, i32, String)> {
    let mut p = params(pairs);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(MessageList::SORTS, MessageList::DEFAULT_SORT).unwrap();
    p.finish().unwrap();
    let page = MessageList::page(client.into(), scope, &filter, &paging).await.unwrap();
    page.items
        .into_iter()
        .filter_map(|m| {
            let refusal = m.refusal?;
            assert_eq!(m.kind, SearchEntryKind::Refused);
            assert_eq!(
                (m.message.state.as_str(), m.message.queue_id.as_str()),
                ("rejected", "NOQUEUE")
            );
            assert_eq!(m.recipients.len(), 1);
            assert_eq!(Some(&m.recipients[0].address), refusal.recipient.as_ref());
            Some((
                refusal.recipient.unwrap(),
                refusal.code.unwrap(),
                refusal.enhanced.unwrap(),
            ))
        })
        .collect()
}

#[tokio::test]
async fn refused_mail_is_found_like_messages_within_the_rejects_scope() {
    let (_url, client) = fixture_database().await;
    let all = Scope::All;
    let nobody = vec![("nobody@example.com".to_owned(), 550, "5.1.1".to_owned())];
    // Every filter a refusal has finds it.
    for pairs in [
        vec![("recipient", "nobody@example.com")],
        vec![("recipient", "@EXAMPLE.com")],
        vec![("sender", "promo@spam.example.org")],
        vec![("client", "203.0.113.0/24")],
        vec![("status", "rejected")],
        vec![("since", "2024-03-14T10:02:00Z"), ("until", "2024-03-14T10:03:00Z")],
        vec![("message_id", "x@y"), ("message_id_op", "not")],
    ] {
        assert_eq!(refused_found(&client, &all, &pairs).await, nobody, "{pairs:?}");
    }
    let mx1 = server_id(&client, "mx1").await;
    let out1 = server_id(&client, "out1").await;
    assert_eq!(
        refused_found(&client, &all, &[("server", &mx1.to_string())]).await,
        nobody
    );
    // …and what it does not match leaves it out.
    for pairs in [
        vec![("server", out1.to_string())],
        vec![("recipient", "bob@example.com".into())],
        vec![("status", "sent".into())],
        vec![("flow", "inbound".into())],
        vec![("size_min", "1".into())],
        vec![("q", "3A1F42C0D1".into())],
        vec![("until", "2024-03-14T10:02:00Z".into())],
    ] {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(refused_found(&client, &all, &pairs).await.is_empty(), "{pairs:?}");
    }
    // Only the refusal has status rejected: the page is it alone, a JSON entry of its own.
    let mut p = params(&[("status", "rejected")]);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(MessageList::SORTS, MessageList::DEFAULT_SORT).unwrap();
    let page = MessageList::page((&client).into(), &all, &filter, &paging)
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    let json = serde_json::to_value(&page.items[0]).unwrap();
    assert_eq!(json["kind"], "refused");
    assert_eq!(json["refusal"]["stage"], "RCPT");
    assert_eq!(json["refusal"]["helo"], "bulk.example.org");
    assert!(
        json["refusal"]["reason"].as_str().unwrap().contains("User unknown"),
        "{json}"
    );
    assert_eq!(json["client_ip"], "203.0.113.77");

    // Merged with the messages in time order: 10:02:31 between mx1's messages.
    let around = found(
        &client,
        &all,
        &[
            ("since", "2024-03-14T10:00:00Z"),
            ("until", "2024-03-14T10:30:00Z"),
            ("server", &mx1.to_string()),
        ],
    )
    .await;
    let refused_at = around
        .iter()
        .position(|q| q == "NOQUEUE")
        .expect("the refusal is listed");
    assert!(refused_at > 0 && refused_at < around.len() - 1, "{around:?}");

    // The scope of the rejects: the group of mx1 and the refused recipient's domain, the refused
    // address. Not another customer's group, nor the sender's domain (an unauthenticated client
    // claimed it: anyone can), nor the recipient's domain on another server.
    for scope in [group(vec![mx1], &["example.com"]), end_user(&["nobody@example.com"])] {
        assert_eq!(refused_found(&client, &scope, &[]).await, nobody, "{scope:?}");
    }
    for scope in [
        group(vec![out1], &["example.com"]),
        group(vec![mx1], &["example.net"]),
        group(vec![mx1], &["spam.example.org"]),
        end_user(&["alice@example.com"]),
        end_user(&["promo@spam.example.org"]),
    ] {
        assert!(refused_found(&client, &scope, &[]).await.is_empty(), "{scope:?}");
    }
}

/// The ids of one page of `/messages` (the API's own sorts), and its total.
async fn page_ids(client: &Client, pairs: &[(&str, &str)]) -> (i64, Vec<String>) {
    let mut p = params(pairs);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(MessageList::SORTS, MessageList::DEFAULT_SORT).unwrap();
    p.finish().unwrap();
    let page = MessageList::page(client.into(), &Scope::All, &filter, &paging)
        .await
        .unwrap();
    (page.total, page.items.into_iter().map(|m| m.id).collect())
}

#[tokio::test]
async fn pages_merge_messages_and_refusals_without_gap_or_repeat() {
    let (_url, client) = fixture_database().await;
    for sort in ["-first_seen", "first_seen", "size", "-size", "sender", "-sender"] {
        let (total, all) = page_ids(&client, &[("sort", sort), ("per_page", "500")]).await;
        assert_eq!(total, 8, "seven messages and one refusal");
        let refused_at = all.iter().position(|id| id.starts_with("refused-")).unwrap();
        // Every page size, so that a boundary falls just before, on and after the refusal.
        for per_page in 1..=total {
            let mut paged = Vec::new();
            for page in 1..=(total + per_page - 1) / per_page {
                let (_, ids) = page_ids(
                    &client,
                    &[
                        ("sort", sort),
                        ("per_page", &per_page.to_string()),
                        ("page", &page.to_string()),
                    ],
                )
                .await;
                paged.extend(ids);
            }
            assert_eq!(paged, all, "sort {sort}, {per_page} per page (refusal at {refused_at})");
        }
    }
    // In time order the refusal (10:02:31) sits between messages, not at either end.
    let (_, newest_first) = page_ids(&client, &[("per_page", "500")]).await;
    let refused_at = newest_first.iter().position(|id| id.starts_with("refused-")).unwrap();
    assert!(
        refused_at > 0 && refused_at < newest_first.len() - 1,
        "{newest_first:?}"
    );
}

/// The uids and kinds of the first `rows` entries (newest first) a recipient filter finds with
/// `lookup`.
async fn entries_with(client: &Client, recipient: &str, lookup: RecipientLookup, rows: i64) -> Vec<(i64, String)> {
    let filter = MessageFilter {
        recipient: Some(TextFilter::is(recipient)),
        recipient_lookup: lookup,
        ..Default::default()
    };
    entries_of(client, &filter, rows).await
}

/// [`entries_with`] the newest recipients, their bound found first by a statement of its own, as
/// the API pages them ([`RecipientLookup::RecipientsSince`]).
async fn entries_since_their_bound(client: &Client, recipient: &str, rows: i64) -> Vec<(i64, String)> {
    let mut filter = MessageFilter {
        recipient: Some(TextFilter::is(recipient)),
        recipient_lookup: RecipientLookup::NewestRecipients,
        ..Default::default()
    };
    messages::bound_newest_recipients(client, &Scope::All, &mut filter, rows)
        .await
        .unwrap();
    assert_ne!(
        filter.recipient_lookup,
        RecipientLookup::NewestRecipients,
        "the bound was found"
    );
    entries_of(client, &filter, rows).await
}

/// The first `rows` entries `filter` finds, newest first.
async fn entries_of(client: &Client, filter: &MessageFilter, rows: i64) -> Vec<(i64, String)> {
    let order_by = "ORDER BY m.first_seen DESC, m.kind DESC, m.uid DESC";
    let (from_where, q) = entries_page_from_where(&Scope::All, filter, order_by, rows).unwrap();
    let sql = format!("SELECT m.uid, m.kind {from_where} {order_by} LIMIT {rows}");
    client
        .query(&sql, &q.params())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// `recipient_lookup` chooses between reading the matching recipients first (all of them, or
/// the newest only) and reading the messages newest first by cost alone: for every address and
/// domain of the fixture, and pages of 1 to 3 entries and of 100, all find the same entries in
/// the same order. One message was first seen long before it started (its first line came
/// last): reading the newest recipients by start alone would put it first.
#[tokio::test]
async fn every_recipient_lookup_finds_the_same_entries() {
    let (_url, client) = fixture_database().await;
    let moved = client
        .execute(
            "UPDATE messages SET first_seen = (SELECT min(first_seen) - interval '1 hour' FROM messages)
             WHERE (started_at, uid) = (SELECT message_started_at, message_uid FROM recipients
                                        ORDER BY message_started_at DESC, message_uid DESC LIMIT 1)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(moved, 1);
    let values: Vec<String> = client
        .query(
            "SELECT DISTINCT v FROM recipients r,
                 LATERAL (VALUES (lower(r.address)), ('@' || else_domain(r.address)), (lower(r.orig_address))) x(v)
             WHERE v IS NOT NULL ORDER BY v",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(values.len() > 5, "{values:?}");
    let mut paged_by_the_bound = 0;
    for value in &values {
        for rows in [1, 2, 3, 100] {
            let all = entries_with(&client, value, RecipientLookup::Recipients, rows).await;
            assert!(!all.is_empty(), "{value} found nothing");
            let each_message = entries_with(&client, value, RecipientLookup::EachMessage, rows).await;
            assert_eq!(all, each_message, "{value}, {rows} rows, each message");
            let newest = entries_with(&client, value, RecipientLookup::NewestRecipients, rows).await;
            assert_eq!(all, newest, "{value}, {rows} rows, newest recipients");
            let newest_since = entries_since_their_bound(&client, value, rows).await;
            assert_eq!(
                all, newest_since,
                "{value}, {rows} rows, newest recipients since their bound"
            );
            paged_by_the_bound += usize::from(all.len() == rows as usize);
        }
    }
    // Pages the bound cut (as many matching messages as rows), not only whole lists.
    assert!(paged_by_the_bound > 10, "{paged_by_the_bound}");
}

/// `n` more recipients `{prefix}{i}@example.com` of one message of the domain, analyzed.
async fn more_recipients_of_example_com(client: &Client, prefix: &str, n: i32) {
    client
        .execute(
            "INSERT INTO recipients (message_started_at, message_uid, address, status, attempts, last_attempt_at)
             SELECT r.message_started_at, r.message_uid, $1 || g || '@example.com', r.status, r.attempts,
                    r.last_attempt_at
             FROM (SELECT * FROM recipients WHERE else_domain(address) = 'example.com' LIMIT 1) r,
                  generate_series(1, $2) g",
            &[&prefix, &n],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE recipients").await.unwrap();
}

/// A recipient's domain paged as the API pages it, with the lookup `choose` takes for small
/// pages (the newest recipients, then a count of them all): every page size gives the whole
/// list once, in order, with the same total.
#[tokio::test]
async fn a_recipient_domain_pages_without_gap_or_repeat() {
    let (_url, client) = fixture_database().await;
    // One message of the domain to forty more of its addresses: enough matches for the newest
    // recipients to be worth their planning.
    more_recipients_of_example_com(&client, "list", 40).await;
    let domain = [("recipient", "@example.com")];
    let mut filter = MessageFilter {
        recipient: Some(TextFilter::is("@example.com")),
        ..Default::default()
    };
    crate::recipient_lookup::choose(&client, &mut filter, 2, true)
        .await
        .unwrap();
    assert_eq!(filter.recipient_lookup, RecipientLookup::NewestRecipients);
    let (total, all) = page_ids(&client, &[domain[0], ("per_page", "500")]).await;
    assert!(total >= 4, "{all:?}");
    for per_page in 1..=total {
        let mut paged = Vec::new();
        for page in 1..=(total + per_page - 1) / per_page {
            let (page_total, ids) = page_ids(
                &client,
                &[
                    domain[0],
                    ("per_page", &per_page.to_string()),
                    ("page", &page.to_string()),
                ],
            )
            .await;
            assert_eq!(page_total, total, "{per_page} per page, page {page}");
            paged.extend(ids);
        }
        assert_eq!(paged, all, "{per_page} per page");
    }

    // More recipients of the domain than a count counts: at scale it could not end in its box,
    // so it is not started and the total is what the page shows, "more than". (Here it would
    // end, and say how many messages: the 12,000 recipients are of one message.)
    more_recipients_of_example_com(&client, "many", 12_000).await;
    let mut p = params(&[domain[0], ("per_page", "1")]);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(MessageList::SORTS, MessageList::DEFAULT_SORT).unwrap();
    let page = MessageList::page((&client).into(), &Scope::All, &filter, &paging)
        .await
        .unwrap();
    assert_eq!((page.total, page.total_capped, page.items.len()), (1, true, 1));
}

#[tokio::test]
async fn a_temporary_refusal_followed_by_the_message_is_not_listed() {
    let (_url, client) = fixture_database().await;
    let mx1 = server_id(&client, "mx1").await;
    // A greylisting deferral of carol's mail to bob, which came back and was accepted
    // (3A1F42C0D1, 10:00:03), and one to zoe that never came back.
    for (line_key, recipient) in [(1_i64, "bob@example.com"), (2, "zoe@example.com")] {
        client
            .execute(
                "INSERT INTO rejects (ts, line_key, server_id, program, action, source, stage, client_ip,
                                      code, enhanced, reason, sender, recipient)
                 VALUES ('2024-03-14T09:55:00Z', $1, $2, 'smtpd', 'reject', 'smtpd', 'RCPT', '198.51.100.7',
                         450, '4.7.1', 'Greylisted', 'Carol@example.net', $3)",
                &[&line_key, &mx1, &recipient],
            )
            .await
            .unwrap();
    }
    let deferred = refused_found(&client, &Scope::All, &[("sender", "carol@example.net")]).await;
    assert_eq!(deferred, [("zoe@example.com".to_owned(), 450, "4.7.1".to_owned())]);
}

#[tokio::test]
async fn a_summary_lists_recipients_and_a_bulk_search_says_what_it_did_not_find() {
    let (_url, client) = fixture_database().await;
    let ids: Vec<String> = [
        format!("<{ALICE_MESSAGE_ID}>"),
        ALICE_MESSAGE_ID.to_owned(),
        "".into(),
        " nobody-sent-this@example.com ".into(),
        "20240314100005.GA4411@mail.example.net".into(),
    ]
    .into();
    let result = messages::bulk(&client, &Scope::All, &ids).await.unwrap();
    let queue_ids: Vec<&str> = result.items.iter().map(|m| m.message.queue_id.as_str()).collect();
    assert_eq!(queue_ids, ["3A1F42C0D1", "7B2E19A4F3", "4ZdQ7k1Rc2z9Hw", "9C0A1B2D3E"]);
    assert_eq!(result.not_found, ["nobody-sent-this@example.com"]);
    let alice = &result.items[2];
    assert_eq!(alice.recipient_count, 3);
    let statuses: Vec<(&str, &str)> = alice
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.status.as_str()))
        .collect();
    assert!(statuses.contains(&("frank@example.org", "sent")), "{statuses:?}");
    // The id is the message's uid as a string, as the detail route takes it.
    assert_eq!(alice.id, uid_of(&client, "4ZdQ7k1Rc2z9Hw").await.to_string());
    let json = serde_json::to_value(alice).unwrap();
    for field in [
        "id",
        "server",
        "server_id",
        "queue_id",
        "message_id",
        "sender",
        "first_seen",
        "state",
        "flow",
    ] {
        assert!(json.get(field).is_some(), "{field} missing in {json}");
    }
    // An end user's bulk search: the other Message-IDs are not found, for them.
    let theirs = messages::bulk(&client, &end_user(&["erin@example.net"]), &ids)
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
    assert_eq!(theirs.not_found.len(), 2);
    // Too many ids: 400 naming the field.
    let many = vec!["x@y".to_owned(); messages::MAX_BULK + 1];
    let error = messages::bulk(&client, &Scope::All, &many).await.unwrap_err();
    assert_eq!(error.field, Some("message_ids"));
}

#[tokio::test]
async fn the_detail_follows_every_hop_and_shows_only_the_hops_in_scope() {
    let (_url, client) = fixture_database().await;
    let alice = uid_of(&client, "4ZdQ7k1Rc2z9Hw").await;
    let detail = message_detail::detail(&client, &Scope::All, alice).await.unwrap();
    let hops: Vec<(&str, Option<&str>, Option<&str>)> = detail
        .journey
        .iter()
        .map(|h| {
            (
                h.server.as_str(),
                h.detail.as_ref().map(|d| d.queue_id.as_str()),
                h.link_kind.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        hops,
        [
            ("out1", Some("4ZdQ7k1Rc2z9Hw"), None),
            ("mx1", Some("9C0A1B2D3E"), Some("relay"))
        ]
    );
    // frank was greylisted once, then accepted: both attempts, with the remote replies.
    let out1_hop = detail.journey[0].detail.as_ref().unwrap();
    let frank = out1_hop
        .recipients
        .iter()
        .find(|r| r.address == "frank@example.org")
        .unwrap();
    let attempts: Vec<(&str, &str)> = frank
        .attempts
        .iter()
        .map(|a| (a.status.as_str(), a.dsn.as_str()))
        .collect();
    assert_eq!(attempts, [("deferred", "4.7.1"), ("sent", "2.0.0")]);
    assert!(frank.attempts[0].status_text.contains("Greylisted"));
    assert_eq!(frank.attempts[0].delays, [Some(0.1), Some(0.01), Some(1.2), Some(0.7)]);
    // The lines of both servers, in time order.
    let servers: std::collections::BTreeSet<&str> = detail.lines.iter().map(|l| l.server.as_str()).collect();
    assert_eq!(servers.into_iter().collect::<Vec<_>>(), ["mx1", "out1"]);
    assert!(detail.lines.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert!(
        detail.lines.iter().any(|l| l.raw.contains("Saved")),
        "mx1's delivery line"
    );
    assert!(!detail.lines_truncated);

    // Reached from the last hop, the journey is the same.
    let bob = uid_of(&client, "9C0A1B2D3E").await;
    let from_bob = message_detail::detail(&client, &Scope::All, bob).await.unwrap();
    assert_eq!(from_bob.journey.len(), 2);
    assert_eq!(from_bob.message.message.queue_id, "9C0A1B2D3E");

    // Content filter on one server; a bounce's notification and its relay to mx1.
    let carol = uid_of(&client, "3A1F42C0D1").await;
    let filtered = message_detail::detail(&client, &Scope::All, carol).await.unwrap();
    let kinds: Vec<Option<&str>> = filtered.journey.iter().map(|h| h.link_kind.as_deref()).collect();
    assert_eq!(kinds, [None, Some("content_filter")]);
    let bounced = uid_of(&client, "4ZdQ9m3Tf5zK2L").await;
    let bounce = message_detail::detail(&client, &Scope::All, bounced).await.unwrap();
    let kinds: Vec<(&str, Option<&str>)> = bounce
        .journey
        .iter()
        .map(|h| (h.server.as_str(), h.link_kind.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [("out1", None), ("out1", Some("notification")), ("mx1", Some("relay"))]
    );

    // A member of mx1/example.com sees bob's hop, and that it came from out1, nothing of out1's.
    let mx1 = server_id(&client, "mx1").await;
    let member = group(vec![mx1], &["example.com"]);
    let seen = message_detail::detail(&client, &member, bob).await.unwrap();
    let restricted: Vec<(&str, bool, bool)> = seen
        .journey
        .iter()
        .map(|h| (h.server.as_str(), h.restricted, h.detail.is_some()))
        .collect();
    assert_eq!(restricted, [("out1", true, false), ("mx1", false, true)]);
    assert!(seen.lines.iter().all(|l| l.server == "mx1"), "no line of out1");
    let json = serde_json::to_value(&seen.journey[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"server": "out1", "link_kind": null, "restricted": true})
    );
    // Out1's hop itself is out of their scope: 404, as an id that does not exist.
    let error = message_detail::detail(&client, &member, alice).await.unwrap_err();
    assert_eq!(error.status, axum::http::StatusCode::NOT_FOUND);
    let error = message_detail::detail(&client, &Scope::All, 42).await.unwrap_err();
    assert_eq!(error.status, axum::http::StatusCode::NOT_FOUND);

    // frank (an end user) sees alice's hop with him in it, not bob's delivery on mx1.
    let frank = end_user(&["frank@example.org"]);
    let seen = message_detail::detail(&client, &frank, alice).await.unwrap();
    let restricted: Vec<bool> = seen.journey.iter().map(|h| h.restricted).collect();
    assert_eq!(restricted, [false, true]);
    assert!(message_detail::detail(&client, &frank, bob).await.is_err());
}

/// The rejects a scope sees, as (server, recipient).
async fn rejects_seen(client: &Client, scope: &Scope, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut p = params(pairs);
    let filter = RejectList::read_filter(&mut p).unwrap();
    let paging = p.paging(&[("ts", "r.ts")], "-ts").unwrap();
    p.finish().unwrap();
    let page = RejectList::page(client.into(), scope, &filter, &paging).await.unwrap();
    page.items
        .into_iter()
        .map(|r| format!("{} {}", r.server, r.recipient.unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn rejects_are_found_by_their_fields_within_scope() {
    let (_url, client) = fixture_database().await;
    let all = Scope::All;
    let one = ["mx1 nobody@example.com"];
    assert_eq!(rejects_seen(&client, &all, &[]).await, one);
    assert_eq!(
        rejects_seen(
            &client,
            &all,
            &[
                ("code", "550"),
                ("reason", "USER UNKNOWN"),
                ("client", "203.0.113.0/24"),
                ("sender", "@spam.example.org"),
                ("action", "reject")
            ]
        )
        .await,
        one
    );
    assert!(rejects_seen(&client, &all, &[("code", "450")]).await.is_empty());
    assert!(rejects_seen(
        &client,
        &all,
        &[("recipient", "nobody@example.com"), ("recipient_op", "not")]
    )
    .await
    .is_empty());
    let mx1 = server_id(&client, "mx1").await;
    let out1 = server_id(&client, "out1").await;
    assert_eq!(
        rejects_seen(&client, &group(vec![mx1], &["example.com"]), &[]).await,
        one
    );
    // The sender's domain is not: an unauthenticated client claimed it (anyone can).
    assert!(rejects_seen(&client, &group(vec![mx1], &["spam.example.org"]), &[])
        .await
        .is_empty());
    assert!(rejects_seen(&client, &group(vec![out1], &["example.com"]), &[])
        .await
        .is_empty());
    assert!(rejects_seen(&client, &group(vec![mx1], &["example.net"]), &[])
        .await
        .is_empty());
    assert_eq!(
        rejects_seen(&client, &end_user(&["nobody@example.com"]), &[]).await,
        one
    );
    assert!(rejects_seen(&client, &end_user(&["alice@example.com"]), &[])
        .await
        .is_empty());
}

/// The lines `/logs` lists, as (server, program, raw).
async fn lines_seen(client: &Client, scope: &Scope, pairs: &[(&str, &str)]) -> Vec<(String, String, String)> {
    let mut p = params(pairs);
    let filter = LogList::read_filter(&mut p).unwrap();
    let paging: Paging = p.paging(&[("ts", "e.ts")], "ts").unwrap();
    p.finish().unwrap();
    let page = LogList::page(client.into(), scope, &filter, &paging).await.unwrap();
    page.items.into_iter().map(|l| (l.server, l.program, l.raw)).collect()
}

#[tokio::test]
async fn log_lines_are_searched_by_substring_and_program_within_scope() {
    let (_url, mut client) = fixture_database().await;
    // The finished day gets its trigram index (once); today's partition does not.
    let today = omelse::parse::Timestamp::now().0.div_euclid(86_400_000_000);
    omelse::store::ensure_days(&mut client, &[today].into()).await.unwrap();
    let indexed = omelse::store::index_finished_log_days(&client).await.unwrap();
    assert_eq!(indexed, ["log_events_p20240314"]);
    assert!(omelse::store::index_finished_log_days(&client)
        .await
        .unwrap()
        .is_empty());
    client.batch_execute("SET enable_seqscan = off").await.unwrap();
    let plan: Vec<String> = client
        .query("EXPLAIN SELECT * FROM log_events WHERE raw ILIKE '%queued as%'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.iter().any(|l| l.contains("log_events_p20240314_raw_trgm")),
        "{plan:?}"
    );
    client.batch_execute("RESET enable_seqscan").await.unwrap();

    let all = Scope::All;
    let queued = lines_seen(&client, &all, &[("q", "QUEUED AS 9c0a1b2d3e"), ("per_page", "500")]).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(queued[0].2.contains("to=<bob@example.com>"));
    // `smtpd` is every smtpd: the plain one, submission's and the re-injection listener's.
    let smtpd = lines_seen(
        &client,
        &all,
        &[("program", "smtpd"), ("q", "connect from"), ("per_page", "500")],
    )
    .await;
    let programs: std::collections::BTreeSet<(&str, &str)> =
        smtpd.iter().map(|(s, p, _)| (s.as_str(), p.as_str())).collect();
    assert_eq!(
        programs.into_iter().collect::<Vec<_>>(),
        [
            ("mx1", "postfix/10025/smtpd"),
            ("mx1", "postfix/smtpd"),
            ("out1", "postfix/submission/smtpd")
        ]
    );
    // Wildcards in q are literal.
    assert!(lines_seen(&client, &all, &[("q", "%%%")]).await.is_empty());
    // Too short for the trigram index.
    let mut p = params(&[("q", "ab")]);
    assert_eq!(LogList::read_filter(&mut p).unwrap_err().field, Some("q"));

    // A group member: their servers' lines only.
    let mx1 = server_id(&client, "mx1").await;
    let theirs = lines_seen(&client, &group(vec![mx1], &["example.com"]), &[("per_page", "500")]).await;
    assert!(!theirs.is_empty() && theirs.iter().all(|(s, _, _)| s == "mx1"));
    // An end user: the lines of their messages only (frank's mail went out through out1).
    let franks = lines_seen(&client, &end_user(&["frank@example.org"]), &[("per_page", "500")]).await;
    assert!(!franks.is_empty());
    assert!(
        franks.iter().all(|(_, _, raw)| raw.contains("4ZdQ7k1Rc2z9Hw")),
        "{franks:?}"
    );
}

#[tokio::test]
async fn live_gives_the_last_lines_then_only_new_ones_within_scope() {
    let (url, client) = fixture_database().await;
    let total: i64 = client
        .query_one("SELECT count(*) FROM log_events", &[])
        .await
        .unwrap()
        .get(0);
    let first = live::live(&client, &Scope::All, None).await.unwrap();
    assert_eq!(first.events.len() as i64, total.min(live::FIRST));
    assert!(first
        .events
        .windows(2)
        .all(|w| (w[0].ts, w[0].line_key) < (w[1].ts, w[1].line_key)));
    let cursor = live::Cursor::parse(&first.cursor).unwrap();
    let nothing = live::live(&client, &Scope::All, Some(cursor)).await.unwrap();
    assert!(nothing.events.is_empty());
    assert_eq!(nothing.cursor, first.cursor, "the cursor stays where it was");

    // New lines on both servers: each watcher gets what is theirs.
    let dir = std::env::temp_dir().join(format!("web-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let later = dir.join("later.log");
    std::fs::write(
        &later,
        "Mar 14 11:00:00 mx1 postfix/smtpd[1300]: connect from unknown[203.0.113.9]\n\
         Mar 14 11:00:01 out1 postfix/smtpd[3400]: connect from unknown[203.0.113.10]\n",
    )
    .unwrap();
    import_file(&url, &later, FIXTURE_YEAR).await;
    let news = live::live(&client, &Scope::All, Some(cursor)).await.unwrap();
    let raws: Vec<&str> = news.events.iter().map(|e| e.raw.as_str()).collect();
    assert_eq!(raws.len(), 2, "{raws:?}");
    assert!(raws[0].contains("203.0.113.9") && raws[1].contains("203.0.113.10"));
    let mx1 = server_id(&client, "mx1").await;
    // The connections belong to no message: a group member sees them only on a server the group
    // owns whole.
    let member = live::live(&client, &group(vec![mx1], &["example.com"]), Some(cursor))
        .await
        .unwrap();
    assert!(member.events.is_empty(), "{:?}", member.events);
    let owner = Scope::Groups(vec![GroupScope {
        server_ids: vec![mx1],
        domains: vec!["example.com".into()],
        whole_server_ids: vec![mx1],
    }]);
    let owner = live::live(&client, &owner, Some(cursor)).await.unwrap();
    assert_eq!(owner.events.len(), 1);
    assert_eq!(owner.events[0].server, "mx1");
    // An end user sees no connection line: it belongs to no message of theirs.
    let end = live::live(&client, &end_user(&["bob@example.com"]), Some(cursor))
        .await
        .unwrap();
    assert!(end.events.is_empty());
    assert!(live::Cursor::parse("yesterday").is_none());
}

#[tokio::test]
async fn csv_exports_stream_every_row_with_a_header() {
    let (url, _client) = fixture_database().await;
    let settings = crate::Settings {
        config: Default::default(),
        database_url: Some(url),
    };
    let pool = crate::db::pool(&settings.database().unwrap(), "web-test", 2, crate::db::Commit::Durable).unwrap();
    let mut p = params(&[("recipient", "@example.com"), ("sort", "first_seen")]);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(&[("first_seen", "m.first_seen")], "-first_seen").unwrap();
    let slot = super::export::Exports::new(1, std::time::Duration::from_secs(30))
        .claim(1)
        .await
        .unwrap();
    let response = listing::csv::<MessageList>(pool.get().await.unwrap(), slot, &Scope::All, &filter, &paging)
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let mut reader = csv::Reader::from_reader(&body[..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header[..4], ["id", "server", "server_id", "queue_id"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let queue_ids: Vec<&str> = rows.iter().map(|r| &r[3]).collect();
    assert_eq!(
        queue_ids,
        [
            "3A1F42C0D1",
            "7B2E19A4F3",
            "NOQUEUE",
            "4ZdQ7k1Rc2z9Hw",
            "9C0A1B2D3E",
            "4ZdQ9n4Vg6zM3Q",
            "A1B2C3D4E5"
        ]
    );
    // The refused mail to nobody@example.com, with its reply.
    let refused = &rows[2];
    assert!(refused[0].starts_with("refused-"), "{refused:?}");
    assert_eq!(&refused[6], "nobody@example.com (rejected)");
    assert_eq!(&refused[7], "1");
    // Its state reason is the reply, as Postfix gave it; then kind, code and enhanced code.
    assert!(
        refused[15].starts_with("550 5.1.1 ") && refused[15].contains("User unknown"),
        "{refused:?}"
    );
    assert_eq!((&refused[16], &refused[17], &refused[18]), ("refused", "550", "5.1.1"));
    let alice = &rows[3];
    assert_eq!(&alice[7], "3");
    assert!(alice[6].contains("frank@example.org (sent)"), "{:?}", &alice[6]);
    assert!(alice[11].starts_with("2024-03-14T10:05:02"), "{:?}", &alice[11]);
}

#[tokio::test]
async fn the_history_keeps_each_users_last_searches() {
    let (_url, client) = fixture_database().await;
    let user = |login: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(
                    "INSERT INTO users (login, role, password_hash) VALUES ($1, 'user', 'x') RETURNING id",
                    &[&login],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let (alice, bob) = (user("alice").await, user("bob").await);
    for i in 0..(super::history::KEPT + 5) {
        let params = serde_json::json!({ "q": format!("search {i}") });
        super::history::record(&client, alice, super::history::Kind::Quick, &params)
            .await
            .unwrap();
    }
    super::history::record(&client, bob, super::history::Kind::Logs, &serde_json::json!({}))
        .await
        .unwrap();
    let mine = super::history::list(&client, alice).await.unwrap();
    assert_eq!(mine.len() as i64, super::history::KEPT);
    assert_eq!(mine[0].params["q"], format!("search {}", super::history::KEPT + 4));
    assert_eq!(mine[0].kind, "quick");
    let stored: i64 = client
        .query_one("SELECT count(*) FROM search_history WHERE user_id = $1", &[&alice])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, super::history::KEPT, "older searches are forgotten");
    assert_eq!(super::history::list(&client, bob).await.unwrap().len(), 1);
}

/// A client that stops reading an export loses it: after the idle time the connection leaves the
/// pool (no half-read result is handed on) and the body ends with an error, not as a short file;
/// the account's slot is free again.
#[tokio::test]
async fn an_export_nobody_reads_gives_its_connection_up() {
    let url = database(PgCluster::shared()).await;
    let pool = crate::db::pool(&crate::db::Target::url(url), "web-test", 1, crate::db::Commit::Durable).unwrap();
    let exports = super::export::Exports::new(1, std::time::Duration::from_millis(300));
    let slot = exports.claim(7).await.unwrap();
    assert_eq!(
        exports.claim(7).await.unwrap_err().status,
        axum::http::StatusCode::TOO_MANY_REQUESTS
    );
    assert!(exports.claim(8).await.is_ok(), "another account has its own slots");
    let select = "SELECT g::text, repeat('x', 200) FROM generate_series(1, 1000000) g";
    let response = super::export::csv_response(
        pool.get().await.unwrap(),
        slot,
        select,
        &crate::sql::Query::default(),
        &["n", "filler"],
        "big.csv",
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while pool.status().size > 0 || exports.claim(7).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "still held: {:?}", pool.status());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let fresh = pool.get().await.unwrap();
    assert_eq!(fresh.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
    let read = axum::body::to_bytes(response.into_body(), 1 << 30).await;
    assert!(read.is_err(), "the cut export ends with an error");
}
