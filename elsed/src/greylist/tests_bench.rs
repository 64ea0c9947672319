//! Benchmark, GreyLSE beside postgrey in the same run: many concurrent persistent connections,
//! each sending requests one after the other (as smtpd does), every request a new triplet (the
//! costliest case: a read and an insert). Prints requests/s and latency percentiles.
//!
//! Besides the rates, it measures the CPU time each server spends per request (postgrey's
//! process; GreyLSE's share of this process plus the PostgreSQL backends), which is what a
//! machine shared with other work does not distort: on a busy machine a single-process server
//! such as postgrey gets a smaller share of the cores than a multi-process one, and the ratio of
//! rates grows with the load.
//!
//! Ignored by default; run it in release mode, as root with postgrey installed:
//! `cargo test --release -p elsed --lib bench_ -- --ignored --nocapture`
//! (`GREYLSE_BENCH_CONNECTIONS`, `GREYLSE_BENCH_REQUESTS` change the load).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::tests::{database, served_on};
use super::tests_postgrey::Postgrey;
use super::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `connections` clients of `per_connection` requests each; returns (req/s, latencies).
async fn load(addr: &str, tag: &str, connections: usize, per_connection: usize) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        let addr = addr.to_owned();
        let tag = tag.to_owned();
        tasks.spawn(async move {
            let stream = loop {
                match TcpStream::connect(&addr).await {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            stream.set_nodelay(true).unwrap();
            let mut stream = BufReader::new(stream);
            let mut latencies = Vec::with_capacity(per_connection);
            let mut line = String::new();
            for r in 0..per_connection {
                let request = format!(
                    "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
                     client_address=10.{}.{}.7\nclient_name=unknown\nreverse_client_name=unknown\n\
                     helo_name=h.example\nsender=s{c}@{tag}.example\nrecipient=r{r}@dest.example\n\
                     etrn_domain=\ninstance={c}.{r}\nqueue_id=\nsize=0\n\n",
                    c % 250,
                    r % 250
                );
                let t = Instant::now();
                stream.get_mut().write_all(request.as_bytes()).await.unwrap();
                // `action=…` then the empty line.
                for _ in 0..2 {
                    line.clear();
                    let n = stream.read_line(&mut line).await.unwrap();
                    assert!(n > 0, "connection closed");
                }
                latencies.push(t.elapsed());
            }
            latencies
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// CPU seconds (user + system, every thread) a process has used so far; 0 once it is gone.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // /proc reports in USER_HZ, 100 on Linux whatever the kernel's tick.
    (ticks(14) + ticks(15)) / 100.0
}

/// The processes of the PostgreSQL server behind `url` (backends and background workers).
async fn postgres_pids(url: &str) -> Vec<u32> {
    let client = omelse::store::connect(url).await.unwrap();
    client
        .query("SELECT pid FROM pg_stat_activity", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, i32>(0) as u32)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn line(name: &str, rate: f64, lat: &[Duration]) -> String {
    format!(
        "| {name} | {rate:.0} | {:.2} | {:.2} | {:.2} |",
        percentile(lat, 0.5).as_secs_f64() * 1e3,
        percentile(lat, 0.99).as_secs_f64() * 1e3,
        lat.last().unwrap().as_secs_f64() * 1e3
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run in release mode with --ignored"]
async fn bench_greylse_beside_postgrey() {
    if else_tests::require::tool("/usr/sbin/postgrey", "postgrey").is_none() {
        return;
    }
    let connections = env("GREYLSE_BENCH_CONNECTIONS", 100);
    let per_connection = env("GREYLSE_BENCH_REQUESTS", 100);
    let port = else_tests::free_port();
    let postgrey_server = Postgrey::start(port);
    let url = database().await;
    let cfg = GreylistConfig {
        pool_size: 16,
        max_connections: connections + 10,
        ..Default::default()
    };
    let greylse = served_on(&url, cfg, Arc::new(SystemClock)).await;
    let postgrey = format!("127.0.0.1:{port}");
    // Warm-up (postgrey's first connection, GreyLSE's pool and prepared statements).
    load(&postgrey, "warm", 4, 10).await;
    load(&greylse, "warm", 4, 10).await;

    let this = std::process::id();
    let requests = (connections * per_connection) as f64;
    let (self0, postgrey0) = (cpu_secs(this), cpu_secs(postgrey_server.pid()));
    let (pg_rate, pg_lat) = load(&postgrey, "pg", connections, per_connection).await;
    let (self1, postgrey1) = (cpu_secs(this), cpu_secs(postgrey_server.pid()));
    let pids = postgres_pids(&url).await;
    let sql0: f64 = pids.iter().map(|&p| cpu_secs(p)).sum();
    let (gl_rate, gl_lat) = load(&greylse, "gl", connections, per_connection).await;
    let self2 = cpu_secs(this);
    let sql1: f64 = pids.iter().map(|&p| cpu_secs(p)).sum();
    // The load generator shares this process with GreyLSE: its cost is counted against GreyLSE
    // (an upper bound; alone, during postgrey's run, it is shown for comparison).
    let per_k = |secs: f64| secs / requests * 1e6;
    let postgrey_cpu = per_k(postgrey1 - postgrey0);
    let greylse_cpu = per_k(self2 - self1);
    let generator = per_k(self1 - self0);
    let sql_cpu = per_k(sql1 - sql0);
    eprintln!(
        "{connections} connections x {per_connection} requests, every request a new triplet\n\
         | server | requests/s | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n{}\n{}\n\
         ratio of rates: {:.1}x\n\
         CPU ms per 1000 requests: postgrey {postgrey_cpu:.0}; GreyLSE with the load generator \
         {greylse_cpu:.0} + PostgreSQL {sql_cpu:.0} = {:.0} (the generator alone: {generator:.0})\n\
         ratio of CPU per request: {:.1}x; load average {}",
        line("postgrey 1.37 (BerkeleyDB)", pg_rate, &pg_lat),
        line("GreyLSE (PostgreSQL)", gl_rate, &gl_lat),
        gl_rate / pg_rate,
        greylse_cpu + sql_cpu,
        postgrey_cpu / (greylse_cpu + sql_cpu).max(f64::EPSILON),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    );
}
