//! Benchmark, GreyLSE beside postgrey in the same run: many concurrent persistent connections,
//! each sending requests one after the other (as smtpd does), every request a new triplet (the
//! costliest case: a read and an insert). Prints requests/s and latency percentiles.
//!
//! Ignored by default; run it in release mode, as root with postgrey installed:
//! `cargo test --release -p elsed --bin elsed bench_ -- --ignored --nocapture`
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
    if !std::path::Path::new("/usr/sbin/postgrey").exists() {
        eprintln!("skipped: postgrey not installed");
        return;
    }
    let connections = env("GREYLSE_BENCH_CONNECTIONS", 100);
    let per_connection = env("GREYLSE_BENCH_REQUESTS", 100);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _postgrey = Postgrey::start(port);
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

    let (pg_rate, pg_lat) = load(&postgrey, "pg", connections, per_connection).await;
    let (gl_rate, gl_lat) = load(&greylse, "gl", connections, per_connection).await;
    eprintln!(
        "{connections} connections x {per_connection} requests, every request a new triplet\n\
         | server | requests/s | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n{}\n{}\n\
         ratio: {:.1}x",
        line("postgrey 1.37 (BerkeleyDB)", pg_rate, &pg_lat),
        line("GreyLSE (PostgreSQL)", gl_rate, &gl_lat),
        gl_rate / pg_rate
    );
}
