//! The dashboard benchmark (`scripts/bench-dashboard.sh`, ignored by `cargo test`): 30 days of
//! 10 million messages, generated in SQL into the *base tables* one day at a time, rolled up by
//! the real refresh (the same code as the live pipeline), then every statistics endpoint's data
//! function timed over the 30 days, as an administrator and as a group member.
//!
//! To stay within a test machine's disk, a day's base rows are removed once its rollups are
//! made (dashboards read only the rollups); today keeps its own. To stay within a test session's
//! time, only the last `ELSE_BENCH_REAL_DAYS` days (default: all) are generated and rolled up
//! that way; the days before are copies of the oldest generated day's rollups (same sizes and
//! shapes, shifted in time) — `docs/benchmarks.md` says which way each published number was made.
//! The shape of the traffic: half inbound on two MX (senders from 30 000 outside domains,
//! recipients in 300 domains of the organisation), half outbound on two relays; addresses,
//! domains, clients and sizes log-uniformly spread (a few very frequent, a long tail); 20 % of
//! messages with two recipients, 7 % deferred once, 3 % bounced; 0.4 rejects and 0.5
//! postscreen lines per message.

use std::collections::BTreeSet;
use std::time::Instant;

use omelse::parse::Timestamp;
use tokio_postgres::Client;

use super::filter::RawParams;
use crate::access::{GroupScope, Scope};

const DAY: i64 = 86_400_000_000;

fn env(name: &str, default: i64) -> i64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One day of traffic in the base tables.
const GENERATE: &str = "
CREATE TEMP TABLE gen ON COMMIT DROP AS
SELECT g.*,
       CASE WHEN inbound THEN 'u' || sender_n || '@w' || world_n || '.example'
            ELSE 'p' || peer_n || '@corp' || corp_n || '.example' END AS sender,
       CASE WHEN inbound THEN 'p' || peer_n || '@corp' || corp_n || '.example'
            ELSE 'u' || sender_n || '@w' || world_n || '.example' END AS recipient,
       CASE WHEN inbound THEN '0.0.0.0'::inet + (16777216 + (ip_n::int8 * 2654435761) % 3690987520)
            ELSE '10.1.0.0'::inet + ip_n % 4000 END AS client_ip,
       CASE WHEN inbound THEN 'lmtp.corp.example[10.0.0.' || (1 + peer_n % 4) || ']:24'
            ELSE 'mx.w' || world_n || '.example[' || host('0.0.0.0'::inet + (16777216 + (world_n::int8 * 40503) % 3690987520)) || ']:25' END AS relay,
       exp(random() * ln(3600)) AS delay
FROM (
    SELECT $1::int8 + i AS uid,
           $2::timestamptz + (random() * 86000) * interval '1 second' AS t,
           ($3::int[])[1 + i % 4] AS server_id,
           i % 4 < 2 AS inbound,
           floor(exp(random() * ln(200000)))::int AS sender_n,
           floor(exp(random() * ln(300)))::int AS corp_n,
           floor(exp(random() * ln(30000)))::int AS world_n,
           floor(exp(random() * ln(100000)))::int AS peer_n,
           floor(exp(ln(800) + random() * ln(20000)))::int8 AS size,
           floor(exp(random() * ln(50000)))::int AS ip_n,
           random() AS r1, random() AS r2
    FROM generate_series(1, $4::int) i
) g;

INSERT INTO messages (started_at, uid, server_id, queue_id, first_seen, last_seen, sender, size, nrcpt, message_id,
                      client_name, client_ip, client_port, origin, flow, state, closed, removed_at, version)
SELECT t, uid, server_id, upper(to_hex(uid)), t, t + interval '2 seconds', sender, size, 1 + (r1 < 0.2)::int,
       '<' || uid || '@gen.example>', 'client' || ip_n || '.example', client_ip, 25, 'smtpd',
       CASE WHEN inbound THEN 'inbound' ELSE 'outbound' END, 'delivered', true,
       t + delay * interval '1 second', 1
FROM gen;

CREATE TEMP TABLE gen_rcpt ON COMMIT DROP AS
SELECT uid, t, server_id, inbound, size, relay, delay, r2, recipient AS address FROM gen
UNION ALL
SELECT uid, t, server_id, inbound, size, relay, delay, r2, 'x' || recipient FROM gen WHERE r1 < 0.2;

INSERT INTO recipients (message_started_at, message_uid, address, status, dsn, relay, status_text, delay,
                        attempts, last_attempt_at, flow)
SELECT t, uid, address, CASE WHEN r2 < 0.03 THEN 'bounced' ELSE 'sent' END, '2.0.0', relay, '250 2.0.0 Ok',
       delay, 1 + (r2 < 0.10)::int, t + delay * interval '1 second', CASE WHEN inbound THEN 'inbound' ELSE 'outbound' END
FROM gen_rcpt;

INSERT INTO deliveries (ts, line_key, message_uid, message_started_at, server_id, queue_id, daemon, recipient, relay,
                        delay, dsn, status, status_text)
SELECT least(t + delay * interval '1 second', date_trunc('day', t, 'UTC') + interval '86399 seconds'),
       uid * 4 + length(address) % 2, uid, t, server_id, upper(to_hex(uid)),
       CASE WHEN inbound THEN 'lmtp' ELSE 'smtp' END, address, relay, delay,
       CASE WHEN r2 < 0.03 THEN '5.1.1' ELSE '2.0.0' END, CASE WHEN r2 < 0.03 THEN 'bounced' ELSE 'sent' END,
       CASE WHEN r2 < 0.03 THEN '550 5.1.1 <' || address || '>: Recipient address rejected: User unknown'
            ELSE '250 2.0.0 Ok: queued' END
FROM gen_rcpt
UNION ALL
SELECT t + interval '5 seconds', uid * 4 + 2 + length(address) % 2, uid, t, server_id, upper(to_hex(uid)), 'smtp',
       address, relay, 5, '4.4.1', 'deferred',
       (ARRAY['connect to ' || split_part(relay, '[', 1) || ': Connection timed out',
              '451 4.7.1 Greylisted, try again later', '421 4.7.0 Too many connections'])[1 + (uid % 3)::int]
FROM gen_rcpt WHERE r2 >= 0.03 AND r2 < 0.10;

INSERT INTO rejects (ts, line_key, server_id, program, action, source, stage, client_name, client_ip, code, enhanced,
                     reason, sender, recipient)
SELECT $2::timestamptz + (random() * 86000) * interval '1 second', i, ($3::int[])[1 + i % 2],
       CASE WHEN i % 10 = 0 THEN 'postfix/postscreen' ELSE 'postfix/smtpd' END, 'reject', 'smtpd', 'RCPT',
       'unknown', '0.0.0.0'::inet + (16777216 + (floor(exp(random() * ln(80000)))::int8 * 2654435761) % 3690987520),
       (ARRAY[550, 554, 450, 504])[1 + i % 4], (ARRAY['5.7.1', '5.7.1', '4.7.1', '5.5.2'])[1 + i % 4],
       (ARRAY['Client host rejected: cannot find your hostname', 'Service unavailable; Client host blocked using zen.spamhaus.org',
              'Recipient address rejected: Greylisted', 'Helo command rejected: need fully-qualified hostname',
              'Recipient address rejected: User unknown in virtual mailbox table'])[1 + i % 5],
       'spam' || i % 5000 || '@w' || i % 3000 || '.example', 'p' || i % 1000 || '@corp' || i % 300 || '.example'
FROM generate_series(1, ($4::int * 2) / 5) i;

INSERT INTO log_events (ts, line_key, server_id, program, pid, kind, raw)
SELECT $2::timestamptz + (random() * 86000) * interval '1 second', i, ($3::int[])[1 + i % 2], 'postfix/postscreen', 1,
       k.kind, k.raw
FROM generate_series(1, $4::int / 2) i
CROSS JOIN LATERAL (SELECT (ARRAY['screen_connect', 'screen_pass', 'screen_pass', 'screen_dnsbl_rank', 'screen_pregreet',
                                  'screen_hangup'])[1 + i % 6] AS kind,
                           (ARRAY['CONNECT from [192.0.2.1]:1', 'PASS NEW [192.0.2.1]:1', 'PASS OLD [192.0.2.1]:1',
                                  'DNSBL rank 3 for [192.0.2.1]:1', 'PREGREET 11 after 0.1 from [192.0.2.1]:1: EHLO x',
                                  'HANGUP after 1 from [192.0.2.1]:1 in tests after SMTP handshake'])[1 + i % 6] AS raw) k;

INSERT INTO rollup_dirty SELECT $2::timestamptz + n * interval '1 hour', s FROM generate_series(0, 23) n, unnest($3::int[]) s
ON CONFLICT DO NOTHING;
";

/// Milliseconds at the p-th percentile of sorted `times`.
fn percentile(times: &[f64], p: f64) -> f64 {
    times[((times.len() as f64 - 1.0) * p).round() as usize]
}

async fn time_endpoint<T>(
    client: &Client,
    scope: &Scope,
    params: &RawParams,
    runs: usize,
    f: impl AsyncFn(&Client, &Scope, &RawParams) -> crate::web::error::ApiResult<T>,
) -> (f64, f64) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        f(client, scope, params).await.unwrap_or_else(|e| panic!("{e:?}"));
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (percentile(&times, 0.5), percentile(&times, 0.95))
}

#[tokio::test]
#[ignore = "benchmark: scripts/bench-dashboard.sh"]
async fn dashboard_over_30_days_of_10_million_messages() {
    let messages = env("ELSE_BENCH_MESSAGES", 10_000_000);
    let days = env("ELSE_BENCH_DAYS", 30);
    let runs = env("ELSE_BENCH_RUNS", 20) as usize;
    let url = match std::env::var("ELSE_BENCH_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => else_tests::PgCluster::shared().create_database().await,
    };
    let mut client = omelse::store::connect(&url).await.unwrap();
    omelse::store::migrate(&mut client).await.unwrap();
    let mut servers = Vec::new();
    for (name, role) in [
        ("mx1", "incoming"),
        ("mx2", "incoming"),
        ("out1", "outgoing"),
        ("out2", "outgoing"),
    ] {
        let id: i32 = client
            .query_one(
                "INSERT INTO servers (name, role) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role RETURNING id",
                &[&name, &role],
            )
            .await
            .unwrap()
            .get(0);
        servers.push(id);
    }
    // A group of the organisation's ten busiest domains (the groups' domains are rolled up per domain).
    let group_id = crate::test_fixtures::group(&mut client, servers[0], "corp1.example").await;
    for n in 2..=10 {
        client
            .execute(
                "INSERT INTO group_domains VALUES ($1, $2)",
                &[&group_id, &format!("corp{n}.example")],
            )
            .await
            .unwrap();
    }
    let real_days = env("ELSE_BENCH_REAL_DAYS", days).clamp(1, days);
    let today = Timestamp::now().0.div_euclid(DAY);
    let first = today - days + 1;
    let first_real = today - real_days + 1;
    let per_day = (messages / days) as i32;
    let started = Instant::now();
    for day in first_real..=today {
        let day_start = Timestamp(day * DAY);
        omelse::store::ensure_days(&mut client, &BTreeSet::from([day, day + 1]))
            .await
            .unwrap();
        let t = Instant::now();
        let tx = client.transaction().await.unwrap();
        let uid0 = (day - first) * 10_000_000 + 1;
        // batch_execute cannot bind: the statements run one by one with the same parameters.
        for statement in GENERATE.split(";\n\n") {
            let statement = statement.trim();
            if statement.is_empty() {
                continue;
            }
            // Each statement binds the parameters it uses, renumbered in order.
            let all: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&uid0, &day_start, &servers, &per_day];
            let used: Vec<usize> = (1..=4).filter(|n| statement.contains(&format!("${n}"))).collect();
            let mut sql = statement.to_owned();
            for (k, n) in used.iter().enumerate() {
                sql = sql.replace(&format!("${n}"), &format!("#{k}#"));
            }
            for k in 0..used.len() {
                sql = sql.replace(&format!("#{k}#"), &format!("${}", k + 1));
            }
            let params: Vec<_> = used.iter().map(|n| all[n - 1]).collect();
            tx.execute(&sql, &params)
                .await
                .unwrap_or_else(|e| panic!("{e:?}: {statement}"));
        }
        tx.commit().await.unwrap();
        let generated = t.elapsed();
        let t = Instant::now();
        omelse::store::refresh_rollups(&mut client).await.unwrap();
        let refreshed = t.elapsed();
        if day < today {
            let suffix = jiff::Timestamp::from_microsecond(day_start.0)
                .unwrap()
                .strftime("%Y%m%d")
                .to_string();
            for table in ["messages", "recipients", "deliveries", "rejects", "log_events"] {
                client
                    .batch_execute(&format!("TRUNCATE {table}_p{suffix}"))
                    .await
                    .unwrap();
            }
        }
        println!(
            "bench-dashboard: day {}/{real_days}: {per_day} messages generated in {:.1} s, rolled up in {:.1} s",
            day - first_real + 1,
            generated.as_secs_f64(),
            refreshed.as_secs_f64()
        );
    }
    client
        .batch_execute("VACUUM ANALYZE traffic_hourly, stats_daily, stats_hourly")
        .await
        .unwrap();
    let sizes = client
        .query(
            "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) FROM pg_stat_user_tables
             WHERE relname IN ('traffic_hourly', 'stats_daily', 'stats_hourly') ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    for row in &sizes {
        println!(
            "bench-dashboard: {} {} rows, {}",
            row.get::<_, String>(0),
            row.get::<_, i64>(1),
            row.get::<_, String>(2)
        );
    }
    println!(
        "bench-dashboard: data ready in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let since = jiff::Timestamp::from_microsecond(first * DAY).unwrap().to_string();
    let until = jiff::Timestamp::now().to_string();
    let group = Scope::Groups(vec![GroupScope {
        server_ids: servers.clone(),
        domains: (1..=10).map(|n| format!("corp{n}.example")).collect(),
        ..Default::default()
    }]);
    crate::geo::init(&crate::geo::GeoipConfig::default()).unwrap();
    println!("bench-dashboard: endpoint (30 days) | scope | p50 ms | p95 ms");
    for (scope_name, scope) in [("admin", &Scope::All), ("group", &group)] {
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("traffic?bucket=hour", vec![("bucket", "hour")]),
            ("traffic?bucket=day", vec![("bucket", "day")]),
            ("top?kind=senders", vec![("kind", "senders")]),
            (
                "top?kind=recipient_domains&by=bytes",
                vec![("kind", "recipient_domains"), ("by", "bytes")],
            ),
            ("top?kind=clients", vec![("kind", "clients")]),
            ("rejects?group_by=reason", vec![("group_by", "reason")]),
            (
                "problems?kind=deferred&group_by=host",
                vec![("kind", "deferred"), ("group_by", "host")],
            ),
            ("delays", vec![]),
            ("sizes", vec![]),
            ("postscreen", vec![]),
            ("countries?metric=received", vec![("metric", "received")]),
        ];
        for (name, extra) in cases {
            let mut params: RawParams = extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            params.insert("since".into(), since.clone());
            params.insert("until".into(), until.clone());
            let endpoint = name.split('?').next().unwrap();
            let (p50, p95) = match endpoint {
                "traffic" => time_endpoint(&client, scope, &params, runs, super::traffic).await,
                "top" => time_endpoint(&client, scope, &params, runs, super::top).await,
                "rejects" => time_endpoint(&client, scope, &params, runs, super::rejects).await,
                "problems" => time_endpoint(&client, scope, &params, runs, super::problems).await,
                "delays" => time_endpoint(&client, scope, &params, runs, super::delays).await,
                "sizes" => time_endpoint(&client, scope, &params, runs, super::sizes).await,
                "postscreen" => time_endpoint(&client, scope, &params, runs, super::postscreen).await,
                _ => time_endpoint(&client, scope, &params, runs, super::countries).await,
            };
            println!("bench-dashboard: /stats/{name} | {scope_name} | {p50:.0} | {p95:.0}");
        }
    }
    // One live refresh: the current hour dirty again, as the rsyslog module's sink does every 5 s.
    client
        .execute(
            "INSERT INTO rollup_dirty SELECT date_trunc('hour', now(), 'UTC') - interval '1 hour', s FROM unnest($1::int[]) s
             ON CONFLICT DO NOTHING",
            &[&servers],
        )
        .await
        .unwrap();
    let t = Instant::now();
    omelse::store::refresh_rollups(&mut client).await.unwrap();
    println!(
        "bench-dashboard: live refresh of one hour on 4 servers: {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
