//! Search latency on a big database (issue #4's benchmark): run by `scripts/bench-search.sh`,
//! which generates the messages and sets `ELSE_BENCH_DATABASE_URL`. Each search goes through the
//! same data function as `GET /messages` (count capped, first page of 50, recipients).

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::listing::Listing;
use super::messages::MessageList;
use super::params::Params;
use crate::access::{GroupScope, Scope};

/// Samples of each kind of search.
const SAMPLES: i64 = 200;

async fn column(client: &Client, sql: &str) -> Vec<String> {
    client
        .query(sql, &[&SAMPLES])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Runs `/messages` with `pairs` for each value, as `scope`; the latencies, sorted.
async fn measure(
    client: &Client,
    scope: &Scope,
    values: &[String],
    pairs: impl Fn(&str) -> Vec<(String, String)>,
) -> Vec<Duration> {
    let mut times = Vec::new();
    for value in values {
        let mut p = Params::new(pairs(value));
        let filter = MessageList::read_filter(&mut p).unwrap();
        let paging = p.paging(&[("first_seen", "m.first_seen")], "-first_seen").unwrap();
        let start = Instant::now();
        let page = MessageList::page(client, scope, &filter, &paging).await.unwrap();
        times.push(start.elapsed());
        assert!(
            page.total > 0 || matches!(scope, Scope::Groups(_)),
            "{value} found nothing"
        );
    }
    times.sort();
    times
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-search.sh runs it on a generated database"]
async fn search_latency() {
    let Ok(url) = std::env::var("ELSE_BENCH_DATABASE_URL") else {
        println!("skipped: ELSE_BENCH_DATABASE_URL not set");
        return;
    };
    let client = omelse::store::connect(&url).await.unwrap();
    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM recipients)",
            &[],
        )
        .await
        .unwrap();
    let (n_messages, n_recipients): (i64, i64) = (counts.get(0), counts.get(1));
    let addresses = column(
        &client,
        "SELECT address FROM recipients TABLESAMPLE BERNOULLI (0.05) LIMIT $1",
    )
    .await;
    let domains = column(
        &client,
        "SELECT else_domain(sender) FROM messages TABLESAMPLE BERNOULLI (0.05) WHERE sender <> '' LIMIT $1",
    )
    .await;
    let ids = column(
        &client,
        "SELECT message_id FROM messages TABLESAMPLE BERNOULLI (0.05) LIMIT $1",
    )
    .await;
    let servers: Vec<i32> = client
        .query("SELECT id FROM servers WHERE name IN ('mx1', 'mx2')", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let one = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
    let all = Scope::All;
    let mut rows = Vec::new();
    rows.push((
        "exact recipient",
        measure(&client, &all, &addresses, |a| one("recipient", a)).await,
    ));
    rows.push((
        "sender domain (@domain)",
        measure(&client, &all, &domains, |d| one("sender", &format!("@{d}"))).await,
    ));
    rows.push((
        "Message-ID (quick search, <id>)",
        measure(&client, &all, &ids, |id| one("q", &format!("<{id}>"))).await,
    ));
    // A group member (two servers, the recipient's domain and nine others): the scope's cost.
    let mut group_times = Vec::new();
    for address in &addresses {
        let domain = address.rsplit('@').next().unwrap_or_default().to_owned();
        let mut domains: Vec<String> = (1..10).map(|i| format!("d{i}.example")).collect();
        domains.push(domain);
        let scope = Scope::Groups(vec![GroupScope {
            server_ids: servers.clone(),
            domains,
            ..Default::default()
        }]);
        group_times.extend(measure(&client, &scope, std::slice::from_ref(address), |a| one("recipient", a)).await);
    }
    group_times.sort();
    rows.push(("exact recipient, group member", group_times));
    println!("{n_messages} messages, {n_recipients} recipients");
    println!("| search | samples | p50 (ms) | p95 (ms) | max (ms) |");
    println!("|---|---|---|---|---|");
    for (name, times) in rows {
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} |",
            times.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            percentile(&times, 1.0)
        );
    }
}
