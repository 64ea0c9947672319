//! The statistics endpoints against a real database filled by importing real logs: the totals of
//! `/stats/traffic` equal `elsed report`'s for the same range (content-filter hops counted once
//! by both), scope narrows to a group's servers and domains, end users get 403.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use omelse::parse::Timestamp;
use tokio_postgres::Client;

use super::filter::RawParams;
use crate::access::{GroupScope, Scope};
use crate::report::{self, Covered};
use crate::test_fixtures::{group, imported};
use crate::web::api::listing::Listing;
use crate::web::api::messages::MessageList;
use crate::web::api::rejects::RejectList;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log")
}

/// The corpus file as a plain file the importer reads (it gunzips by itself).
fn corpus(relative: &str) -> Option<PathBuf> {
    let path = else_tests::corpora::dir_or_skip()?.join(relative);
    assert!(path.is_file(), "{} is not in the corpora", path.display());
    Some(path)
}

fn params(pairs: &[(&str, &str)]) -> RawParams {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect::<HashMap<_, _>>()
}

/// Whole hours around all the imported traffic.
async fn whole_range(client: &Client) -> (String, String) {
    let row = client
        .query_one(
            "SELECT date_trunc('hour', least(min(m.first_seen), (SELECT min(ts) FROM rejects), (SELECT min(ts) FROM deliveries)), 'UTC'),
                    date_trunc('hour', greatest(max(m.last_seen), (SELECT max(ts) FROM rejects), (SELECT max(ts) FROM deliveries)), 'UTC') + interval '1 hour'
             FROM messages m",
            &[],
        )
        .await
        .unwrap();
    let (since, until): (Timestamp, Timestamp) = (row.get(0), row.get(1));
    (since.to_jiff().to_string(), until.to_jiff().to_string())
}

async fn report_totals(client: &Client, scope: &report::Scope) -> serde_json::Value {
    let covered = Covered {
        since: None,
        until: None,
        host: None,
        domain: None,
        timezone: "UTC".into(),
    };
    let built = report::build(client, scope, covered, 0).await.unwrap();
    serde_json::to_value(&built.grand_totals).unwrap()
}

fn rfc3339(t: &str) -> Timestamp {
    Timestamp(t.parse::<jiff::Timestamp>().unwrap().as_microsecond())
}

/// `/stats/traffic` totals equal the report's over the same hours, within `scope`.
async fn assert_traffic_agrees(
    client: &Client,
    scope: &Scope,
    pairs: Option<(Vec<i32>, Vec<String>)>,
) -> serde_json::Value {
    let (since, until) = whole_range(client).await;
    let traffic = super::traffic(
        client,
        scope,
        &params(&[("since", &since), ("until", &until), ("bucket", "day")]),
    )
    .await
    .unwrap();
    let report_scope = report::Scope {
        since: Some(rfc3339(&since)),
        until: Some(rfc3339(&until)),
        pairs,
        ..report::Scope::default()
    };
    let ours = serde_json::to_value(&traffic.totals).unwrap();
    let theirs = report_totals(client, &report_scope).await;
    for (mine, report_key) in [
        ("received", "received"),
        ("delivered", "delivered"),
        ("forwarded", "forwarded"),
        ("deferred", "deferrals"),
        ("bounced", "bounced"),
        ("rejected", "rejected"),
        ("bytes_received", "bytes_received"),
        ("bytes_delivered", "bytes_delivered"),
    ] {
        assert_eq!(
            ours[mine], theirs[report_key],
            "{mine} vs report's {report_key}: {ours} / {theirs}"
        );
    }
    // The series adds up to the totals.
    let received: i64 = traffic.series.iter().map(|p| p.counts.received).sum();
    assert_eq!(received, traffic.totals.received);
    ours
}

#[tokio::test]
async fn traffic_totals_equal_the_report_on_the_fixture() {
    let (client, _) = imported(&fixture()).await;
    let totals = assert_traffic_agrees(&client, &Scope::All, None).await;
    assert!(totals["received"].as_i64().unwrap() > 0 && totals["delivered"].as_i64().unwrap() > 0);
    // The fixture's content filter: its hops are not traffic, in the rollup as in the report.
    let hops: i64 = client
        .query_one(
            "SELECT count(*) FROM links WHERE kind IN ('content_filter', 'relay')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(hops > 0, "the fixture has content-filter hops");
}

#[tokio::test]
async fn traffic_totals_equal_the_report_on_postfix_logsums() {
    let Some(log) = corpus("postfix-logsums/mail.log.gz") else {
        return;
    };
    let (mut client, _) = imported(&log).await;
    let totals = assert_traffic_agrees(&client, &Scope::All, None).await;
    assert!(totals["received"].as_i64().unwrap() > 100, "{totals}");
    // A group of one server and its busiest recipient domain sees that part only, and it
    // agrees with the report narrowed the same way.
    let row = client
        .query_one(
            "SELECT d.server_id, else_domain(d.recipient), count(*) FROM deliveries d
             GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (server, domain): (i32, String) = (row.get(0), row.get(1));
    group(&mut client, server, &domain).await;
    let group = Scope::Groups(vec![GroupScope {
        server_ids: vec![server],
        domains: vec![domain.clone()],
        ..Default::default()
    }]);
    let narrowed = assert_traffic_agrees(&client, &group, Some((vec![server], vec![domain]))).await;
    assert!(narrowed["delivered"].as_i64().unwrap() > 0);
    assert!(narrowed["delivered"].as_i64() < totals["delivered"].as_i64());
}

#[tokio::test]
async fn top_lists_problems_and_histograms_come_from_the_rollups() {
    let Some(log) = corpus("postfix-logsums/mail.log.gz") else {
        return;
    };
    let (client, _) = imported(&log).await;
    let (since, until) = whole_range(&client).await;
    let range = [("since", since.as_str()), ("until", until.as_str())];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all: Vec<(&str, &str)> = range.to_vec();
        all.extend_from_slice(extra);
        params(&all)
    };
    // Top recipients: the same counts as the base tables say.
    let top = super::top(&client, &Scope::All, &with(&[("kind", "recipients"), ("limit", "5")]))
        .await
        .unwrap();
    assert_eq!(top.items.len(), 5);
    let expected: Vec<(String, i64)> = client
        .query(
            &format!(
                "SELECT lower(d.recipient), count(*) FROM deliveries d
                 WHERE d.status = 'sent' AND NOT {forwarded} AND NOT {handoff}
                 GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5",
                forwarded = omelse::store::dedup::forwarded("d"),
                handoff = omelse::store::dedup::handoff("d"),
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let got: Vec<(String, i64)> = top.items.iter().map(|i| (i.key.clone(), i.messages)).collect();
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        expected.iter().map(|e| e.1).collect::<Vec<_>>()
    );
    // Delays: the histogram counts every delivery, percentiles are ordered.
    let delays = super::delays(&client, &Scope::All, &with(&[])).await.unwrap();
    let traffic = super::traffic(&client, &Scope::All, &with(&[])).await.unwrap();
    assert_eq!(
        delays.histogram.iter().map(|b| b.count).sum::<i64>(),
        traffic.totals.delivered
    );
    let p = &delays.percentiles;
    assert!(p.p50 <= p.p95 && p.p95.is_some() || p.p95.is_none(), "{p:?}");
    // Sizes: one per received message with a known size.
    let sizes = super::sizes(&client, &Scope::All, &with(&[])).await.unwrap();
    assert!(sizes.histogram.iter().map(|b| b.count).sum::<i64>() <= traffic.totals.received);
    assert!(sizes.histogram.iter().map(|b| b.count).sum::<i64>() > 0);
    // Rejects by code add up to the rejected total.
    let rejects = super::rejects(&client, &Scope::All, &with(&[("group_by", "code"), ("limit", "1000")]))
        .await
        .unwrap();
    let coded: i64 = rejects.items.iter().map(|i| i.count).sum();
    assert!(coded <= traffic.totals.rejected && (traffic.totals.rejected == 0 || coded > 0));
    // Deferrals by host add up to the deferral attempts.
    let deferred = super::problems(&client, &Scope::All, &with(&[("kind", "deferred"), ("limit", "1000")]))
        .await
        .unwrap();
    assert_eq!(
        deferred.items.iter().map(|i| i.count).sum::<i64>(),
        traffic.totals.deferred
    );
}

#[tokio::test]
async fn end_users_get_no_dashboard_and_bad_parameters_are_named() {
    let (client, _) = imported(&fixture()).await;
    let enduser = Scope::Addresses(vec!["a@example.com".into()]);
    let error = super::traffic(&client, &enduser, &params(&[])).await.unwrap_err();
    assert_eq!(error.status, axum::http::StatusCode::FORBIDDEN);
    let error = super::reports::report(&client, &enduser, &params(&[]))
        .await
        .unwrap_err();
    assert_eq!(error.status, axum::http::StatusCode::FORBIDDEN);
    let error = super::traffic(&client, &Scope::All, &params(&[("since", "yesterday")]))
        .await
        .unwrap_err();
    assert_eq!(error.field, Some("since"));
    let error = super::top(&client, &Scope::All, &params(&[("kind", "friends")]))
        .await
        .unwrap_err();
    assert_eq!(error.field, Some("kind"));
}

#[tokio::test]
async fn the_report_endpoint_is_the_report_narrowed_to_the_scope() {
    let (client, _) = imported(&fixture()).await;
    let (json_format, all) = super::reports::report(&client, &Scope::All, &params(&[]))
        .await
        .unwrap();
    assert_eq!(json_format, report::Format::Json);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    // A group with a server and a domain nobody mails: nothing.
    let nobody = Scope::Groups(vec![GroupScope {
        server_ids: vec![1],
        domains: vec!["nobody.invalid".into()],
        ..Default::default()
    }]);
    let (_, none) = super::reports::report(&client, &nobody, &params(&[])).await.unwrap();
    let none: serde_json::Value = serde_json::from_str(&none).unwrap();
    assert!(all["grand_totals"]["received"].as_i64().unwrap() > 0);
    assert_eq!(none["grand_totals"]["received"], 0);
    assert_eq!(none["grand_totals"]["delivered"], 0);
    let (_, text) = super::reports::report(&client, &Scope::All, &params(&[("format", "text")]))
        .await
        .unwrap();
    assert!(text.contains("Grand Totals"), "{text}");
    // The pooled connection is left in UTC.
    let zone: String = client.query_one("SHOW TimeZone", &[]).await.unwrap().get(0);
    assert_eq!(zone, "UTC");
}

/// Geography: the installed DB-IP database places each client in the search results, the rejects
/// and the countries chart; the chart counts the received messages of each country's clients.
#[tokio::test]
async fn clients_are_located_in_search_results_rejects_and_the_countries_chart() {
    crate::geo::init(&crate::geo::GeoipConfig::default()).unwrap();
    if !else_tests::require_that(
        crate::geo::database().is_some(),
        "no GeoIP database (scripts/setup-geoip.sh installs it)",
    ) {
        return;
    }
    let Some(log) = corpus("postfix-logsums/mail.log.gz") else {
        return;
    };
    let (client, _) = imported(&log).await;
    let located = |ip: &str| crate::geo::country_code(Some(ip));
    let first_located = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, String>(0))
                .find_map(|ip| Some((located(&ip)?, ip)))
                .expect("a located client in the corpus")
        }
    };
    let search_params = |pairs: &[(&str, &str)]| {
        crate::web::api::params::Params::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    };

    // Search results: every message from one located client carries its country.
    let (country, ip) =
        first_located("SELECT DISTINCT host(client_ip) FROM messages WHERE client_ip IS NOT NULL").await;
    let mut p = search_params(&[("client", &ip)]);
    let filter = MessageList::read_filter(&mut p).unwrap();
    let paging = p.paging(&[("first_seen", "m.first_seen")], "first_seen").unwrap();
    let page = MessageList::page((&client).into(), &Scope::All, &filter, &paging)
        .await
        .unwrap();
    assert!(!page.items.is_empty());
    assert!(page
        .items
        .iter()
        .all(|m| m.message.client_country.as_deref() == Some(country.as_str())));

    // Rejects: the same for a located rejected client.
    let (country, ip) = first_located("SELECT DISTINCT host(client_ip) FROM rejects WHERE client_ip IS NOT NULL").await;
    let mut p = search_params(&[("client", &ip)]);
    let filter = RejectList::read_filter(&mut p).unwrap();
    let paging = p.paging(&[("ts", "r.ts")], "-ts").unwrap();
    let page = RejectList::page((&client).into(), &Scope::All, &filter, &paging)
        .await
        .unwrap();
    assert!(!page.items.is_empty());
    assert!(page
        .items
        .iter()
        .all(|r| r.client_country.as_deref() == Some(country.as_str())));

    // The chart: countries by received messages, most first, named; with the unlocated ones they
    // are the received messages that had a client (local submissions have none).
    let (since, until) = whole_range(&client).await;
    let chart = super::countries(
        &client,
        &Scope::All,
        &params(&[("since", &since), ("until", &until), ("metric", "received")]),
    )
    .await
    .unwrap();
    assert!(chart.database.as_deref().is_some_and(|d| d.contains("DB-IP")));
    assert!(!chart.items.is_empty());
    assert!(chart.items.windows(2).all(|w| w[0].messages >= w[1].messages));
    assert!(chart
        .items
        .iter()
        .all(|c| c.country.len() == 2 && !c.country_name.is_empty()));
    let traffic = super::traffic(&client, &Scope::All, &params(&[("since", &since), ("until", &until)]))
        .await
        .unwrap();
    let located_total: i64 = chart.items.iter().map(|c| c.messages).sum();
    assert!(located_total > 0 && located_total + chart.unlocated <= traffic.totals.received);
}
