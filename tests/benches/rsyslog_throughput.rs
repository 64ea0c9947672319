//! `make bench`: lines per second into PostgreSQL, three ways, on one input, in one run:
//! - rsyslogd → omelse, with the shipped stanza (`rsyslog-conf/else-server.conf`: its ruleset and
//!   action queues; plain TCP in instead of RELP);
//! - rsyslogd → rsyslog's own ompgsql (one raw INSERT per line), the same ruleset queue, the
//!   action with its own disk queue (`OMPGSQL_QUEUE`);
//! - `elsed import` of the same lines from a file.
//!
//! The inputs: `dense` (the recorded Postfix pair, `tests/fixtures/dense/`, replicated as
//! `--fleets` independent fleets interleaved in time, `--lines` in all; see `else_tests::dense`)
//! and `sparse` (the real MX log of `../shared/corpora`, under other host names until `--lines`).
//! PostgreSQL runs as installed: fsync on, synchronous commits, 128 MB of shared buffers, with
//! `pg_stat_statements`. Each way runs `--warmup` times (default once), then `--runs` times, each
//! on a fresh database; the medians of the measured runs and the ratio are printed last. Every run
//! is checked: the lines in the database equal the lines sent and, on the dense input, the
//! messages equal the replication's count.
//!
//! Beside the rates, each run prints where the time went: the CPU seconds of rsyslogd (or elsed)
//! and of PostgreSQL per 100,000 lines, and the statements that took most of PostgreSQL's time
//! (pg_stat_statements, reset after the warm-up). `--perf DIR` also records `perf` profiles of
//! rsyslogd and its PostgreSQL backends (omelse runs) and of elsed (import runs) and prints their
//! top symbols.
//!
//! `cargo build --release --workspace && cargo bench -p else-tests --bench rsyslog_throughput --
//! --input dense --runs 3` (the bench loads `target/release/libomelse.so` and runs
//! `target/release/elsed`).

#![deny(unsafe_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use else_tests::bench::{cpu_seconds, rsyslogd_pid, tree_cpu_seconds};
use else_tests::dense::{Fixture, Replication, Stream};
use else_tests::rsyslogd::{free_port, send_tcp, wait_until, Rsyslogd};
use else_tests::shipped::else_server_over_tcp;
use else_tests::{block_on, count, PgCluster};

#[derive(Parser)]
struct Args {
    /// Which input: the dense replicated pair, the sparse real MX log, or both (one after the other).
    #[arg(long, value_enum, default_value = "both")]
    input: Input,
    /// Measured runs of each way (at least one: the medians are theirs).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Runs of each way before the measured ones, checked and printed but left out of the
    /// medians: the first run after a change of way is slower (caches, PostgreSQL's buffers).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Fleets of the dense input.
    #[arg(long, default_value_t = 16)]
    fleets: usize,
    /// Lines of each input.
    #[arg(long, default_value_t = 245_000)]
    lines: usize,
    /// Which ways to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "ompgsql,omelse,import")]
    only: Vec<Way>,
    /// Worker threads of the ruleset's queue, which calls the action directly (default: the
    /// shipped stanza's).
    #[arg(long)]
    workers: Option<u32>,
    /// Record perf profiles into this directory (needs `perf`, Debian's linux-perf).
    #[arg(long)]
    perf: Option<PathBuf>,
    /// Another omelse.so than target/release's (a build kept from before a change).
    #[arg(long)]
    module: Option<PathBuf>,
    /// Another elsed binary than target/release's.
    #[arg(long)]
    elsed: Option<PathBuf>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Input {
    Dense,
    Sparse,
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Way {
    Ompgsql,
    Omelse,
    Import,
}

/// The lines of one input, and what the database must hold once they are in.
struct Lines {
    name: String,
    /// `RFC3339-or-RFC3164-time host program[pid]: message`, without a priority.
    lines: Vec<String>,
    /// Messages omelse must count (the dense input's replication says).
    messages: Option<usize>,
}

fn dense(fleets: usize, lines: usize) -> Lines {
    let fixture = Fixture::committed();
    let mut stream = Stream::new(&fixture, Replication::ending_now(&fixture, fleets, lines));
    let lines: Vec<String> = stream.by_ref().map(|l| l.text).collect();
    Lines {
        name: format!(
            "dense: the recorded Postfix pair as {fleets} fleets, {} lines, {} messages",
            lines.len(),
            stream.messages()
        ),
        messages: Some(stream.messages()),
        lines,
    }
}

/// The real log, repeated with other host names until `count` lines.
fn sparse(count: usize) -> Lines {
    let dir = else_tests::corpora::dir_or_skip().expect("../shared/corpora is needed for the sparse input");
    let text = else_tests::corpora::read_text(&dir.join("postfix-logsums/mail.log.gz"));
    let base: Vec<&str> = text.lines().collect();
    let lines = (0..count)
        .map(|i| base[i % base.len()].replacen(" helga ", &format!(" helga{} ", i / base.len()), 1))
        .collect();
    Lines {
        name: format!("sparse: the real MX log of the corpora, {count} lines"),
        lines,
        messages: None,
    }
}

/// PostgreSQL as a new user runs it, plus pg_stat_statements (every statement, also those that
/// functions run).
const SERVER_SETTINGS: &[&str] = &[
    "fsync=on",
    "synchronous_commit=on",
    "full_page_writes=on",
    "shared_buffers=128MB",
    "checkpoint_timeout=5min",
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track=all",
];

/// What one way measured in one run.
struct Measure {
    lines_per_second: f64,
    /// `elsed import` only: the rate until its last line was written, without the refresh of
    /// the dashboards' rollups at its end (which the live path leaves to `elsed serve`): the
    /// same work as omelse's measure.
    to_last_line: Option<f64>,
    /// CPU seconds per 100,000 lines: the client (rsyslogd or elsed) and PostgreSQL.
    client_cpu: f64,
    server_cpu: f64,
}

struct Bench<'a> {
    args: &'a Args,
    cluster: PgCluster,
    module: PathBuf,
    elsed: PathBuf,
    work: PathBuf,
    failures: RefCell<Vec<String>>,
}

impl Bench<'_> {
    fn run(&self, way: Way, input: &Lines, run: usize) -> Measure {
        let url = block_on(self.cluster.create_database());
        execute(&url, "CREATE EXTENSION pg_stat_statements");
        // What the run before left to write out (ompgsql's 245,000 INSERTs leave a lot of WAL)
        // is written now, not during this run.
        execute(&url, "CHECKPOINT");
        let label = match self.measured(run) {
            Some(measured) => format!("{way:?} run {measured}"),
            None => format!("{way:?} warm-up {run}"),
        }
        .to_lowercase();
        let measure = match way {
            Way::Ompgsql => {
                let config = self.with_workers(ompgsql_config(&url));
                self.through_rsyslogd(&label, &url, &config, "raw_lines", input)
            }
            Way::Omelse => {
                let config = self.with_workers(else_server_over_tcp(&self.module, &url));
                self.through_rsyslogd(&label, &url, &config, "log_events", input)
            }
            Way::Import => self.import(&label, &url, input),
        };
        print_statements(&url);
        drop_database(self.cluster.admin_url(), &url);
        measure
    }

    /// The number of run `run` (counted from 1, warm-ups first) among the measured ones; none for
    /// a warm-up.
    fn measured(&self, run: usize) -> Option<usize> {
        run.checked_sub(self.args.warmup).filter(|&measured| measured > 0)
    }

    /// The ruleset queue's workers as --workers says.
    fn with_workers(&self, config: String) -> String {
        match self.args.workers {
            Some(n) => {
                let shipped = "queue.workerThreads=\"1\"";
                assert!(config.contains(shipped), "the shipped stanza's ruleset has {shipped}");
                config.replace(shipped, &format!("queue.workerThreads=\"{n}\""))
            }
            None => config,
        }
    }

    /// Sends the lines to an rsyslogd over TCP and times them until the last is in `table`.
    fn through_rsyslogd(&self, label: &str, url: &str, config: &str, table: &str, input: &Lines) -> Measure {
        if table == "raw_lines" {
            execute(
                url,
                "CREATE TABLE raw_lines (received timestamptz, host text, tag text, msg text)",
            );
        }
        let dir = self.work.join(label.replace(' ', "-"));
        let _ = std::fs::remove_dir_all(&dir);
        let port = free_port();
        let daemon = Rsyslogd::start(&dir, &config.replace("{port}", &port.to_string()));
        let lines: Vec<String> = input.lines.iter().map(|l| format!("<22>{l}")).collect();
        // Warm up (module, connection, schema) with one line, then time the rest.
        send_tcp(port, &lines[..1]);
        let stored = || count(url, &format!("SELECT count(*) FROM {table}"));
        assert!(
            wait_until(Duration::from_secs(60), || stored() >= 1),
            "{label}: {}",
            daemon.own_log()
        );
        let rsyslogd = rsyslogd_pid(&dir);
        let server = self.cluster.server_pid().expect("a private cluster");
        let profile = self.perf_start(label, &backends_and(url, rsyslogd));
        execute(url, "SELECT pg_stat_statements_reset()");
        let (client_before, server_before) = (cpu_seconds(rsyslogd), tree_cpu_seconds(server));
        let started = Instant::now();
        send_tcp(port, &lines[1..]);
        let last_row = wait_for_rows(stored, lines.len() as i64);
        let elapsed = (last_row - started).as_secs_f64();
        let (client, server) = (
            cpu_seconds(rsyslogd) - client_before,
            tree_cpu_seconds(server) - server_before,
        );
        perf_stop(profile);
        if !self.check(label, url, table, input) {
            println!("    {label}: rsyslogd's own log:\n{}", daemon.own_log());
        }
        report(label, lines.len() - 1, elapsed, ("rsyslogd", client), server)
    }

    /// `elsed import` of the lines from a file (migrated first, as a new user would).
    fn import(&self, label: &str, url: &str, input: &Lines) -> Measure {
        let file = self.work.join("import.log");
        std::fs::write(&file, input.lines.join("\n") + "\n").expect("write the input file");
        let migrate = Command::new(&self.elsed)
            .args(["migrate", "--database-url", url])
            .output()
            .expect("run elsed migrate");
        assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
        execute(url, "SELECT pg_stat_statements_reset()");
        let server = self.cluster.server_pid().expect("a private cluster");
        let (children_before, server_before) = (else_tests::sys::children_cpu_seconds(), tree_cpu_seconds(server));
        let started = Instant::now();
        let mut command = match &self.args.perf {
            Some(dir) => {
                let mut perf = Command::new("perf");
                perf.args(["record", "-e", "cpu-clock", "-F", "999", "-g", "-q", "-o"])
                    .arg(dir.join(format!("{}.data", label.replace(' ', "-"))))
                    .arg("--")
                    .arg(&self.elsed);
                perf
            }
            None => Command::new(&self.elsed),
        };
        let output = command
            .args(["import", "--force", "--database-url", url, "--json"])
            .arg(&file)
            .output()
            .expect("run elsed import");
        let elapsed = started.elapsed().as_secs_f64();
        let (client, server) = (
            else_tests::sys::children_cpu_seconds() - children_before,
            tree_cpu_seconds(server) - server_before,
        );
        assert!(
            output.status.success(),
            "elsed import: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.check(label, url, "log_events", input);
        if let Some(dir) = &self.args.perf {
            print_perf_top(&dir.join(format!("{}.data", label.replace(' ', "-"))), None);
        }
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the import's JSON summary");
        let rollups = summary["rollups_seconds"]
            .as_f64()
            .expect("rollups_seconds in the summary");
        let to_last_line = input.lines.len() as f64 / (elapsed - rollups);
        println!("  {label:>14}: {to_last_line:.0} lines/s to the last line, then {rollups:.2} s of rollups");
        Measure {
            to_last_line: Some(to_last_line),
            ..report(label, input.lines.len(), elapsed, ("elsed", client), server)
        }
    }

    /// Whether the database holds every line, and on the dense input every message; a failure is
    /// printed at once and fails the bench at the end (the other measures still run).
    fn check(&self, label: &str, url: &str, table: &str, input: &Lines) -> bool {
        let mut failures = Vec::new();
        let stored = count(url, &format!("SELECT count(*) FROM {table}"));
        if stored != input.lines.len() as i64 {
            failures.push(format!(
                "{label}: {stored} lines in {table}, {} sent",
                input.lines.len()
            ));
        }
        if let (Some(messages), "log_events") = (input.messages, table) {
            // The last commit may be on its way just after the last line's.
            let counted = || count(url, "SELECT count(*) FROM messages");
            poll(Duration::from_secs(30), || counted() >= messages as i64);
            let counted = counted();
            if counted != messages as i64 {
                failures.push(format!("{label}: {counted} messages, {messages} in the replication"));
            }
        }
        for failure in &failures {
            println!("    CHECK FAILED: {failure}");
        }
        let ok = failures.is_empty();
        self.failures.borrow_mut().extend(failures);
        ok
    }

    /// Starts `perf record` on `pids` when --perf is given.
    fn perf_start(&self, label: &str, pids: &[u32]) -> Option<(Child, PathBuf)> {
        let dir = self.args.perf.as_ref()?;
        let data = dir.join(format!("{}.data", label.replace(' ', "-")));
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let child = Command::new("perf")
            .args([
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "999",
                "-g",
                "-q",
                "-p",
                &pids.join(","),
                "-o",
            ])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run perf");
        std::thread::sleep(Duration::from_millis(500));
        Some((child, data))
    }
}

/// Stops a `perf record` (SIGINT writes its file) and prints its top symbols per process.
fn perf_stop(profile: Option<(Child, PathBuf)>) {
    let Some((mut child, data)) = profile else {
        return;
    };
    else_tests::sys::signal(child.id(), libc::SIGINT);
    let _ = child.wait();
    for comm in [None, Some("postgres")] {
        print_perf_top(&data, comm);
    }
}

fn print_perf_top(data: &Path, comm: Option<&str>) {
    let mut command = Command::new("perf");
    command
        .args(["report", "--stdio", "--no-children", "-q", "--percent-limit", "1.5"])
        .args(["--sort", "comm,dso,sym", "-g", "none", "-i"])
        .arg(data);
    if let Some(comm) = comm {
        command.args(["--comms", comm]);
    }
    let out = command.output().expect("run perf report");
    println!("    perf {} ({}):", data.display(), comm.unwrap_or("all"));
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(25)
    {
        println!("      {}", line.trim_end());
    }
}

/// The pids of the backends serving `url`'s database, and `others`.
fn backends_and(url: &str, others: u32) -> Vec<u32> {
    let mut pids = vec![others];
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        pids.extend(rows.iter().map(|r| r.get::<_, i32>(0) as u32));
    });
    pids
}

/// Prints and returns the rate; prints the CPU per 100,000 lines.
fn report(label: &str, lines: usize, seconds: f64, client: (&str, f64), server: f64) -> Measure {
    let rate = lines as f64 / seconds;
    let per = |cpu: f64| cpu * 100_000.0 / lines as f64;
    println!(
        "  {label:>14}: {lines} lines in {seconds:.2} s = {rate:.0} lines/s; CPU per 100k lines: {} {:.2} s, PostgreSQL {:.2} s",
        client.0,
        per(client.1),
        per(server)
    );
    Measure {
        lines_per_second: rate,
        to_last_line: None,
        client_cpu: per(client.1),
        server_cpu: per(server),
    }
}

/// The statements that took most of PostgreSQL's execution time since the last reset.
fn print_statements(url: &str) {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g'),
                        sum(total_exec_time) OVER ()
                   FROM pg_stat_statements
                  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE 'SELECT count(*) FROM %'
                  ORDER BY total_exec_time DESC LIMIT 8",
                &[],
            )
            .await
            .expect("pg_stat_statements");
        let Some(total) = rows.first().map(|r| r.get::<_, f64>(4)) else {
            return;
        };
        println!(
            "    statements: {:.2} s of execution in all; the top ones:",
            total / 1000.0
        );
        for row in rows {
            let (calls, ms, returned, query): (i64, f64, i64, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let query: String = query.chars().take(110).collect();
            println!(
                "    {:5.1} % {:8.0} ms {calls:7} calls {returned:9} rows  {query}",
                100.0 * ms / total,
                ms
            );
        }
    });
}

fn execute(url: &str, sql: &str) {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

fn drop_database(admin_url: &str, url: &str) {
    let config: tokio_postgres::Config = url.parse().expect("database URL");
    let name = config.get_dbname().expect("a database name");
    execute(admin_url, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

/// Waits until `stored` reaches `target` rows, or stops growing for a minute (rows lost); returns
/// when it last grew.
fn wait_for_rows(stored: impl Fn() -> i64, target: i64) -> Instant {
    let (mut last, mut grew) = (stored(), Instant::now());
    while last < target && grew.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(250));
        let now = stored();
        if now != last {
            (last, grew) = (now, Instant::now());
        }
    }
    grew
}

/// Waits until `probe` holds, asking every quarter of a second (a `count(*)` is not free).
fn poll(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    probe()
}

/// The queue an ompgsql action gets from a careful administrator, and omelse's until 2026-12-06:
/// on disk, one worker, batches of 10,000. Not the shipped omelse action's (no queue of its own,
/// since omelse's spool file is its queue): ompgsql then writes on the ruleset's worker, between
/// its dequeues, and ran at about 13,000 lines/s instead of 20,000 on the dense input.
const OMPGSQL_QUEUE: &str = r#"action.resumeRetryCount="-1" queue.type="Disk" queue.filename="ompgsql" queue.size="10000000" queue.maxDiskSpace="4g" queue.dequeueBatchSize="10000" queue.workerThreads="1""#;

/// The shipped stanza with ompgsql writing each raw line in omelse's place: the same ruleset, and
/// the action with its own disk queue ([`OMPGSQL_QUEUE`]).
fn ompgsql_config(url: &str) -> String {
    let module = Path::new("omelse.so");
    let stanza = else_server_over_tcp(module, url);
    let start = stanza.find("action(type=\"omelse\"").expect("the omelse action");
    let end = start + stanza[start..].find("\")").expect("the end of the omelse action") + 2;
    let config: tokio_postgres::Config = url.parse().expect("database URL");
    let action = format!(
        "action(type=\"ompgsql\" server=\"127.0.0.1\" port=\"{}\" db=\"{}\" uid=\"postgres\" pwd=\"\" template=\"raw\"\n  {})",
        config.get_ports()[0],
        config.get_dbname().unwrap_or("postgres"),
        OMPGSQL_QUEUE
    );
    let template = "template(name=\"raw\" type=\"string\" option.stdsql=\"on\"
         string=\"INSERT INTO raw_lines (received, host, tag, msg) VALUES ('%timereported:::date-rfc3339%', '%hostname%', '%syslogtag%', '%msg%')\")\n";
    let module = format!("module(load=\"{}\")", module.display());
    let module_line = stanza
        .lines()
        .find(|l| l.starts_with(&module))
        .expect("the omelse module line")
        .to_owned();
    format!("{}{}{}", &stanza[..start], action, &stanza[end..])
        .replace(&module_line, &format!("module(load=\"ompgsql\")\n{template}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args = Args::parse();
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release");
    let module = args.module.clone().unwrap_or_else(|| target.join("libomelse.so"));
    let elsed = args.elsed.clone().unwrap_or_else(|| target.join("elsed"));
    assert!(
        module.exists() && elsed.exists(),
        "build them first: cargo build --release --workspace"
    );
    if let Some(dir) = &args.perf {
        std::fs::create_dir_all(dir).expect("the perf directory");
    }
    let cluster = PgCluster::start_with(SERVER_SETTINGS).expect("PostgreSQL");
    let work = std::env::temp_dir().join(format!("else-bench-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("work directory");
    let bench = Bench {
        args: &args,
        cluster,
        module,
        elsed,
        work,
        failures: RefCell::default(),
    };
    let inputs: Vec<Lines> = match args.input {
        Input::Dense => vec![dense(args.fleets, args.lines)],
        Input::Sparse => vec![sparse(args.lines)],
        Input::Both => vec![dense(args.fleets, args.lines), sparse(args.lines)],
    };
    println!(
        "rsyslogd -> PostgreSQL 15 (fsync on, synchronous_commit on, shared_buffers 128MB), the shipped stanza's queues, {} warm-up and {} measured runs, {} cores",
        args.warmup,
        args.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("omelse: {}; elsed: {}", bench.module.display(), bench.elsed.display());
    for input in &inputs {
        println!("{}", input.name);
        let mut measures: Vec<(Way, Vec<Measure>)> = args.only.iter().map(|&w| (w, Vec::new())).collect();
        for run in 1..=args.warmup + usize::from(args.runs) {
            for (way, results) in &mut measures {
                let measure = bench.run(*way, input, run);
                if bench.measured(run).is_some() {
                    results.push(measure);
                }
            }
        }
        let medians: Vec<(Way, f64)> = measures
            .iter()
            .map(|(way, results)| {
                let rate = median(results.iter().map(|m| m.lines_per_second).collect());
                let client = median(results.iter().map(|m| m.client_cpu).collect());
                let server = median(results.iter().map(|m| m.server_cpu).collect());
                println!(
                    "  median {way:?}: {rate:.0} lines/s; CPU per 100k lines: client {client:.2} s, PostgreSQL {server:.2} s"
                );
                let to_last_line: Vec<f64> = results.iter().filter_map(|m| m.to_last_line).collect();
                if !to_last_line.is_empty() {
                    println!("  median {way:?} to the last line: {:.0} lines/s", median(to_last_line));
                }
                (*way, rate)
            })
            .collect();
        let rate = |way| medians.iter().find(|(w, _)| *w == way).map(|(_, r)| *r);
        if let (Some(omelse), Some(ompgsql)) = (rate(Way::Omelse), rate(Way::Ompgsql)) {
            println!("  ratio of the medians: omelse / ompgsql = {:.1}", omelse / ompgsql);
        }
    }
    let _ = std::fs::remove_dir_all(&bench.work);
    let failures = bench.failures.into_inner();
    assert!(
        failures.is_empty(),
        "the database did not hold what was sent:\n{}",
        failures.join("\n")
    );
}
