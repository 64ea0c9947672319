//! The cost of evaluating every alert rule (`scripts/bench-alerts.sh`, ignored by `cargo test`),
//! over a database filled by scripts/bench-alerts-data.sql (30 days of 10 million messages: what
//! the rules read). Issue 20's goal: one evaluation of all rules under 1 s.
//!
//! Prints, with the documented default thresholds: the first cycles of a fresh start (the
//! destination rule rolls up to 24 finished hours of `deliveries` per cycle until its baseline
//! days are rolled), a steady cycle (p50, p95, max over `ELSE_BENCH_RUNS`), a cycle that rolls the
//! hour just finished (once an hour), and each detector alone. Each query over 50 ms is explained
//! in the server's log (auto_explain), which the script prints.

use std::time::Instant;

use omelse::parse::Timestamp;

use super::config::AlertsConfig;
use super::detectors;
use super::lifecycle;

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// p50, p95 and max of `times` (sorted here).
fn summary(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    format!(
        "p50 {:.0} ms | p95 {:.0} ms | max {:.0} ms",
        at(0.5),
        at(0.95),
        times[times.len() - 1]
    )
}

async fn rolled_hours(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM alert_rolled_hours", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
#[ignore = "benchmark: scripts/bench-alerts.sh"]
async fn evaluation_of_all_rules_over_30_days_of_10_million_messages() {
    let url = std::env::var("ELSE_BENCH_DATABASE_URL").expect(
        "ELSE_BENCH_DATABASE_URL: a database filled by scripts/bench-alerts-data.sql (scripts/bench-alerts.sh)",
    );
    let runs: usize = std::env::var("ELSE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut client = omelse::store::connect(&url).await.unwrap();
    client
        .batch_execute(
            "LOAD 'auto_explain';
             SET auto_explain.log_min_duration = '50ms';
             SET auto_explain.log_analyze = on;
             SET auto_explain.log_buffers = on;
             SET auto_explain.log_nested_statements = on;",
        )
        .await
        .unwrap();
    let config = AlertsConfig::default();
    let sizes = client
        .query(
            "SELECT c.relname, coalesce(sum(s.n_live_tup), 0)::int8,
                    pg_size_pretty(coalesce(sum(pg_total_relation_size(s.relid)), 0)::int8)
             FROM (VALUES ('deliveries'), ('traffic_hourly'), ('greylist_triplets'), ('snmp_samples')) c(relname)
             LEFT JOIN pg_stat_user_tables s ON s.relname = c.relname OR s.relname LIKE c.relname || '\\_p%'
             GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    for row in &sizes {
        println!(
            "bench-alerts: {} {} rows, {}",
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            row.get::<_, String>(2)
        );
    }

    // A fresh start: the destination rule rolls its baseline days, 24 hours a cycle.
    let mut cycle = 0;
    loop {
        let before = rolled_hours(&client).await;
        let start = Instant::now();
        let (findings, changes) = lifecycle::evaluate(&mut client, &config, Timestamp::now())
            .await
            .unwrap()
            .expect("no other evaluator");
        let took = ms(start);
        let rolled = rolled_hours(&client).await - before;
        cycle += 1;
        println!(
            "bench-alerts: first start, cycle {cycle}: {took:.0} ms, {rolled} hours rolled, {} findings, {} opened",
            findings.len(),
            changes.opened.len()
        );
        if rolled == 0 {
            break;
        }
    }

    // Steady cycles: nothing to roll, the findings updated.
    let mut times = Vec::new();
    let mut findings = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let (found, _) = lifecycle::evaluate(&mut client, &config, Timestamp::now())
            .await
            .unwrap()
            .unwrap();
        times.push(ms(start));
        findings = found.len();
    }
    println!(
        "bench-alerts: steady cycle ({runs} runs, {findings} findings): {}",
        summary(&mut times)
    );

    // The cycle after an hour ends rolls that hour.
    let mut times = Vec::new();
    for _ in 0..5 {
        client
            .batch_execute(
                "WITH h AS (DELETE FROM alert_rolled_hours
                            WHERE hour = (SELECT max(hour) FROM alert_rolled_hours) RETURNING hour)
                 DELETE FROM alert_destination_hourly WHERE hour IN (SELECT hour FROM h)",
            )
            .await
            .unwrap();
        let start = Instant::now();
        lifecycle::evaluate(&mut client, &config, Timestamp::now())
            .await
            .unwrap()
            .unwrap();
        times.push(ms(start));
    }
    println!(
        "bench-alerts: cycle that rolls the finished hour (5 runs): {}",
        summary(&mut times)
    );

    // Each detector alone (the destination rule's roll apart: nothing to roll here).
    let now = Timestamp::now();
    macro_rules! each {
        ($name:expr, $call:expr) => {{
            let mut times = Vec::new();
            for _ in 0..runs {
                let start = Instant::now();
                $call.await.unwrap();
                times.push(ms(start));
            }
            println!("bench-alerts: {} | {}", $name, summary(&mut times));
        }};
    }
    let c = &client;
    each!(
        "destination (roll check)",
        detectors::destination::roll_finished_hours(c, &config.destination, now)
    );
    each!(
        "destination",
        detectors::destination::detect(c, &config.destination, now)
    );
    each!("blocklist", detectors::blocklist::detect(c, &config.blocklist, now));
    each!(
        "volume, silent, ingest_lag",
        detectors::flow::detect(c, &config.flow, now)
    );
    each!("queue, agent", detectors::queues::detect(c, &config.queues, now));
    each!(
        "bounce_rate, reject_rate",
        detectors::rates::detect(c, &config.rates, now)
    );
    each!("greylist", detectors::greylist::detect(c, &config.greylist, now));
}
