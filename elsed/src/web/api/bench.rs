//! Latency on a big database, through the same data functions as the API: the message search
//! (issue #4, `GET /messages`: count capped, first page of 50, recipients), run by
//! `scripts/bench-search.sh` on generated messages; and the raw lines a group member may see
//! (issue 16, `GET /logs`: every line checked against the caller's scope), run by
//! `scripts/bench-logs.sh` on imported dense traffic. Both scripts set `ELSE_BENCH_DATABASE_URL`.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::listing::Listing;
use super::logs::LogList;
use super::messages::MessageList;
use super::params::Params;
use crate::access::{GroupScope, Scope};
use crate::db;
use crate::replica::Reads;
use crate::web::paging::Readers;

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

/// Runs the listing `L` (`/messages`, `/logs`) with `pairs` for each value, as `scope`, with
/// connections taken from `reads` as the API takes them (the page's, and a spare one for its
/// count while the pool has room); the latencies, sorted. `found` checks each page (a search
/// that finds nothing measures nothing).
async fn measure_listing<L: Listing>(
    reads: &Reads,
    scope: &Scope,
    values: &[String],
    pairs: impl Fn(&str) -> Vec<(String, String)>,
    found: impl Fn(&str, i64),
) -> Vec<Duration> {
    let mut times = Vec::new();
    for value in values {
        let mut p = Params::new(pairs(value));
        let filter = L::read_filter(&mut p).unwrap();
        let paging = p.paging(L::SORTS, L::DEFAULT_SORT).unwrap();
        let client = reads.get().await.unwrap();
        let start = Instant::now();
        let readers = Readers {
            page: &client,
            count: reads.spare().await,
        };
        let page = L::page(readers, scope, &filter, &paging).await.unwrap();
        times.push(start.elapsed());
        found(value, page.total);
    }
    times.sort();
    times
}

/// [`measure_listing`] of `/messages`; an administrator's search always finds its value.
async fn measure(
    reads: &Reads,
    scope: &Scope,
    values: &[String],
    pairs: impl Fn(&str) -> Vec<(String, String)>,
) -> Vec<Duration> {
    measure_listing::<MessageList>(reads, scope, values, pairs, |value, total| {
        assert!(total > 0 || matches!(scope, Scope::Groups(_)), "{value} found nothing")
    })
    .await
}

/// A connection with the settings that matter of the web application's sessions (`web::pool`):
/// no JIT compilation.
async fn web_session(url: &str) -> Client {
    let client = omelse::store::connect(url).await.unwrap();
    client.batch_execute("SET jit = off").await.unwrap();
    client
}

/// Connections as the web application's pool gives them (`web::pool`: no JIT), where its reads
/// go.
fn web_reads(url: &str) -> Reads {
    let options = db::PoolOptions {
        jit: false,
        ..db::PoolOptions::new(4, db::Commit::Durable)
    };
    Reads::primary_only(db::pool_with(&db::Target::url(url), "elsed-bench", options).unwrap())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// The database the benchmark measures: the scripts set it; run by hand without it, the benchmark
/// fails rather than pass having measured nothing.
fn bench_database_url() -> String {
    std::env::var("ELSE_BENCH_DATABASE_URL")
        .expect("ELSE_BENCH_DATABASE_URL: the database to measure (scripts/bench-search.sh and bench-logs.sh set it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-search.sh runs it on a generated database"]
async fn search_latency() {
    let client = web_session(&bench_database_url()).await;
    let reads = web_reads(&bench_database_url());
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
    let queue_ids = column(
        &client,
        "SELECT queue_id FROM messages TABLESAMPLE BERNOULLI (0.05) LIMIT $1",
    )
    .await;
    let clients = column(
        &client,
        "SELECT host(client_ip) FROM messages TABLESAMPLE BERNOULLI (0.05) WHERE client_ip IS NOT NULL LIMIT $1",
    )
    .await;
    let client_names = column(
        &client,
        "SELECT client_name FROM messages TABLESAMPLE BERNOULLI (0.05) WHERE client_name IS NOT NULL LIMIT $1",
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
        measure(&reads, &all, &addresses, |a| one("recipient", a)).await,
    ));
    rows.push((
        "recipient domain (@domain)",
        measure(&reads, &all, &addresses, |a| {
            one("recipient", &format!("@{}", a.rsplit('@').next().unwrap_or_default()))
        })
        .await,
    ));
    rows.push((
        "sender domain (@domain)",
        measure(&reads, &all, &domains, |d| one("sender", &format!("@{d}"))).await,
    ));
    rows.push((
        "Message-ID (quick search, <id>)",
        measure(&reads, &all, &ids, |id| one("q", &format!("<{id}>"))).await,
    ));
    rows.push((
        "queue id (quick search)",
        measure(&reads, &all, &queue_ids, |id| one("q", id)).await,
    ));
    rows.push((
        "client address",
        measure(&reads, &all, &clients, |ip| one("client", ip)).await,
    ));
    rows.push((
        "client name",
        measure(&reads, &all, &client_names, |name| one("client", name)).await,
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
        group_times.extend(measure(&reads, &scope, std::slice::from_ref(address), |a| one("recipient", a)).await);
    }
    group_times.sort();
    rows.push(("exact recipient, group member", group_times));
    println!("{n_messages} messages, {n_recipients} recipients");
    let state = std::env::var("ELSE_BENCH_STATE").unwrap_or_else(|_| "search".to_owned());
    print_table(&state, rows);
}

/// The table of docs/benchmarks.md: p50, p95 and max of each row, in milliseconds.
fn print_table(what: &str, rows: Vec<(&str, Vec<Duration>)>) {
    println!("| {what} | samples | p50 (ms) | p95 (ms) | max (ms) |");
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

/// The servers whose names match the SQL `LIKE` pattern.
async fn server_ids(client: &Client, pattern: &str) -> Vec<i32> {
    client
        .query("SELECT id FROM servers WHERE name LIKE $1 ORDER BY id", &[&pattern])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A group member's scope: `domains` on `servers`.
fn member(servers: &[i32], domains: &[&str]) -> Scope {
    Scope::Groups(vec![GroupScope {
        server_ids: servers.to_vec(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    }])
}

/// `GET /logs` (the newest 50 lines before a moment, and a substring search) as an administrator
/// and as group members who see all, most or little of their servers' lines: the cost of checking
/// each line against the scope (issue 16). Needs the dense fleets of `else-dense replicate`
/// (`in1-fNN`/`out1-fNN`, local domain `example-fNN.test`, forwarded `fwd.example-fNN.test`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench-logs.sh runs it on imported dense traffic"]
async fn logs_latency() {
    let client = web_session(&bench_database_url()).await;
    let reads = web_reads(&bench_database_url());
    let lines: i64 = client
        .query_one("SELECT count(*) FROM log_events", &[])
        .await
        .unwrap()
        .get(0);
    // Moments spread over the whole log: each sample pages back from one of them.
    let moments = column(
        &client,
        "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
         FROM log_events TABLESAMPLE BERNOULLI (1) ORDER BY random() LIMIT $1",
    )
    .await;
    let addresses = column(
        &client,
        "SELECT address FROM recipients TABLESAMPLE BERNOULLI (5) \
         WHERE address LIKE '%@example-f00.test' ORDER BY random() LIMIT $1",
    )
    .await;
    let fleet = server_ids(&client, "%1-f00").await;
    let every = server_ids(&client, "%").await;
    assert!(
        fleet.len() == 2 && every.len() > 2,
        "the dense fleets' servers: {fleet:?} of {every:?}"
    );
    let cases: [(&str, Scope); 4] = [
        ("administrator", Scope::All),
        (
            "member: its fleet's domain on its 2 servers",
            member(&fleet, &["example-f00.test"]),
        ),
        (
            "member: a small domain on its 2 servers",
            member(&fleet, &["fwd.example-f00.test"]),
        ),
        (
            "member: one domain on all servers (shared pair)",
            member(&every, &["example-f00.test"]),
        ),
    ];
    let before = |t: &str| vec![("until".to_owned(), t.to_owned())];
    let search = |a: &str| vec![("q".to_owned(), a.to_owned())];
    let mut rows = Vec::new();
    for (who, scope) in &cases {
        let page =
            measure_listing::<LogList>(&reads, scope, &moments[..moments.len().min(100)], before, |_, _| {}).await;
        rows.push((format!("newest 50 before a moment, {who}"), page));
        let text = measure_listing::<LogList>(
            &reads,
            scope,
            &addresses[..addresses.len().min(20)],
            search,
            |a, total| assert!(total > 0 || !matches!(scope, Scope::All), "{a} found nothing"),
        )
        .await;
        rows.push((format!("substring (a recipient), {who}"), text));
    }
    println!("{lines} lines in log_events");
    print_table("lines", rows.iter().map(|(n, t)| (n.as_str(), t.clone())).collect());
}
