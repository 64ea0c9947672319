//! `make bench`: lines per second from a TCP sender through rsyslogd into PostgreSQL, omelse
//! (parse + correlate + structured records) beside rsyslog's own ompgsql (one raw INSERT per line),
//! in the same run, on the same PostgreSQL cluster. Prints the figures for docs/benchmarks.md.
//!
//! `cargo bench -p else-tests --bench rsyslog_throughput` (build omelse.so in release first:
//! `cargo build --release -p omelse`; the bench loads `target/release/libomelse.so`).

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use else_tests::rsyslogd::{free_port, send_tcp, wait_until, Rsyslogd};
use else_tests::PgCluster;
use else_tests::{block_on, count};

const LINES: usize = 300_000;

/// The real log, repeated with other host names until `LINES` lines.
fn lines() -> Vec<String> {
    let dir = else_tests::corpora::dir_or_skip().expect("../shared/corpora is needed for this benchmark");
    let text = else_tests::corpora::read_text(&dir.join("postfix-logsums/mail.log.gz"));
    let base: Vec<&str> = text.lines().collect();
    (0..LINES)
        .map(|i| {
            format!(
                "<22>{}",
                base[i % base.len()].replacen(" helga ", &format!(" helga{} ", i / base.len()), 1)
            )
        })
        .collect()
}

fn run(name: &str, config: &str, url: &str, table: &str, lines: &[String]) -> f64 {
    let dir = std::env::temp_dir().join(format!("else-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let daemon = Rsyslogd::start(&dir, &config.replace("{port}", &port.to_string()));
    // Warm up (connection, schema) with one line, then time the rest.
    send_tcp(port, &lines[..1]);
    assert!(
        wait_until(Duration::from_secs(60), || count(
            url,
            &format!("SELECT count(*) FROM {table}")
        ) >= 1),
        "{name}: {}",
        daemon.own_log()
    );
    let started = Instant::now();
    send_tcp(port, &lines[1..]);
    let done = wait_until(Duration::from_secs(900), || {
        count(url, &format!("SELECT count(*) FROM {table}")) >= lines.len() as i64
    });
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        done,
        "{name} stored {} of {} lines: {}",
        count(url, &format!("SELECT count(*) FROM {table}")),
        lines.len(),
        daemon.own_log()
    );
    let rate = (lines.len() - 1) as f64 / elapsed;
    println!(
        "{name:>8}: {} lines in {elapsed:.2} s = {rate:.0} lines/s",
        lines.len() - 1
    );
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let module = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/libomelse.so");
    assert!(module.exists(), "build it first: cargo build --release -p omelse");
    let lines = lines();
    let cluster = PgCluster::start().expect("PostgreSQL");
    let omelse_url = block_on(cluster.create_database());
    let pgsql_url = block_on(cluster.create_database());
    block_on(async {
        let client = omelse::store::connect(&pgsql_url).await.unwrap();
        client
            .batch_execute("CREATE TABLE raw_lines (received timestamptz, host text, tag text, msg text)")
            .await
            .unwrap();
    });
    let pg = tokio_postgres::Config::from_str_url(&pgsql_url);
    let omelse_config = format!(
        r#"module(load="imtcp")
module(load="{module}")
input(type="imtcp" port="{{port}}" ruleset="r")
ruleset(name="r" queue.type="LinkedList" queue.workerThreads="1" queue.size="500000") {{
  action(type="omelse" conninfo="{omelse_url}" action.resumeRetryCount="-1"
         queue.type="LinkedList" queue.size="500000" queue.dequeueBatchSize="10000" queue.workerThreads="{workers}")
}}"#,
        module = module.display(),
        workers = std::env::var("OMELSE_BENCH_WORKERS").unwrap_or_else(|_| "2".into())
    );
    let pgsql_config = format!(
        r#"module(load="imtcp")
module(load="ompgsql")
template(name="raw" type="string" option.stdsql="on"
         string="INSERT INTO raw_lines (received, host, tag, msg) VALUES ('%timereported:::date-rfc3339%', '%hostname%', '%syslogtag%', '%msg%')")
input(type="imtcp" port="{{port}}" ruleset="r")
ruleset(name="r" queue.type="LinkedList" queue.workerThreads="1" queue.size="500000") {{
  action(type="ompgsql" server="127.0.0.1" port="{port}" db="{db}" uid="postgres" pwd="" template="raw"
         action.resumeRetryCount="-1" queue.type="LinkedList" queue.size="500000" queue.dequeueBatchSize="10000")
}}"#,
        port = pg.0,
        db = pg.1
    );
    println!(
        "rsyslogd -> PostgreSQL, {} real Postfix lines, 2 cores",
        lines.len() - 1
    );
    let ompgsql = run("ompgsql", &pgsql_config, &pgsql_url, "raw_lines", &lines);
    let omelse = run("omelse", &omelse_config, &omelse_url, "log_events", &lines);
    println!("   ratio: omelse / ompgsql = {:.1}", omelse / ompgsql);
}

/// Port and database name of a `postgresql://…:port/db` URL, for ompgsql's separate fields.
trait FromUrl {
    fn from_str_url(url: &str) -> (u16, String);
}

impl FromUrl for tokio_postgres::Config {
    fn from_str_url(url: &str) -> (u16, String) {
        let config: tokio_postgres::Config = url.parse().expect("database URL");
        (
            config.get_ports()[0],
            config.get_dbname().unwrap_or("postgres").to_owned(),
        )
    }
}
